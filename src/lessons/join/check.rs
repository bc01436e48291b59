//! Check 9: a second process brought into a hand-built container from outside, as
//! `nsenter -t PID -a -r -w` does: it shares every namespace of the container's PID 1 and
//! its root, it did not descend from PID 1, and it has a PID of its own inside.

use crate::checks::containers::{self, Found, Missing, RootId, Search};
use crate::checks::whose::{self, Whose};
use crate::kernel::container;
use crate::kernel::ns::{self, NsKind, NsSet};
use crate::kernel::procs::{self, ProcInfo};
use crate::lesson::{Check, CheckArgs, Fact, Observation};
use anyhow::{Context, Result};

pub struct JoinCheck;

/// A process that may have joined the container, as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub pid: i32,
    pub ns: NsSet,
    /// `None`: unreadable.
    pub root: Option<RootId>,
}

/// The container found and the processes related to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inside {
    /// Its PID 1's host PID.
    pub pid: i32,
    pub ns: NsSet,
    pub root: Option<RootId>,
    /// Every other process in its PID namespace or in one of its own namespaces.
    pub members: Vec<Member>,
}

/// Everything check 9 judges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub search: Search,
    /// nslab's own namespaces: the host's, as far as the learner's work goes.
    pub own: NsSet,
    pub inside: Option<Inside>,
}

const FOUND: &str = "container made by unshare";
const SECOND: &str = "second process";
const NAMESPACES: &str = "namespaces";
const ROOT: &str = "root directory";
const PID_INSIDE: &str = "PID inside";

/// The kinds a joiner must share with PID 1 (the `_for_children` links follow from these).
const KINDS: [NsKind; 8] = [
    NsKind::Cgroup,
    NsKind::Ipc,
    NsKind::Mnt,
    NsKind::Net,
    NsKind::Pid,
    NsKind::Time,
    NsKind::User,
    NsKind::Uts,
];

/// Is a process with namespaces `theirs` related to a container whose PID 1 has `init`:
/// in one of the namespaces PID 1 has and nslab has not? Pure.
pub fn related(init: &NsSet, own: &NsSet, theirs: &NsSet) -> bool {
    KINDS.iter().any(|&k| {
        let i = init.inode(k);
        i.is_some() && i != own.inode(k) && theirs.inode(k) == i
    })
}

impl Check for JoinCheck {
    type Seen = Seen;

    fn observe(args: &CheckArgs) -> Result<Seen> {
        let search = containers::observe(args)?;
        let own = ns::of_self().context("reading nslab's own /proc/self/ns")?;
        let inside = match containers::find(&search) {
            Found::Init { init, .. } => Some(observe_inside(init, &search, &own)?),
            Found::Nothing(_) => None,
        };
        Ok(Seen {
            search,
            own,
            inside,
        })
    }

    fn judge(seen: &Seen) -> Observation {
        judge(seen)
    }
}

fn observe_inside(init: &ProcInfo, search: &Search, own: &NsSet) -> Result<Inside> {
    let ns = ns::of_pid(init.pid).context("the container's PID 1 vanished")?;
    let mut members = Vec::new();
    for p in &search.table {
        if p.pid == init.pid || p.is_zombie() {
            continue;
        }
        let Some(theirs) = ns::of_pid(p.pid) else {
            continue; // exited meanwhile
        };
        if p.pid_ns == init.pid_ns || related(&ns, own, &theirs) {
            members.push(Member {
                pid: p.pid,
                ns: theirs,
                root: container::root_identity(p.pid).ok(),
            });
        }
    }
    Ok(Inside {
        pid: init.pid,
        root: search
            .root_of(init.pid)
            .or_else(|| container::root_identity(init.pid).ok()),
        ns,
        members,
    })
}

fn observation(judged: String, values: [&str; 5], problem: &'static str) -> Observation {
    let names = [FOUND, SECOND, NAMESPACES, ROOT, PID_INSIDE];
    Observation {
        judged,
        facts: names
            .iter()
            .zip(values)
            .map(|(n, v)| Fact::new(*n, v))
            .collect(),
        problem: Some(problem),
        verify: vec![
            "ps -ef --forest | grep -A2 unshare".into(),
            "sudo lsns -t pid".into(),
        ],
        notes: Vec::new(),
    }
}

/// How the second process came to be in the container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Came {
    /// In its PID namespace, its parent outside: `nsenter` with the PID namespace.
    FromOutside,
    /// Outside its PID namespace, in some of its other namespaces.
    Partly,
    /// A descendant of PID 1: started inside.
    Inside,
}

/// Is `pid` a descendant of `of` in `table`?
fn descends(table: &[ProcInfo], pid: i32, of: i32) -> bool {
    procs::ancestors(table, pid)
        .iter()
        .any(|p| p.pid == of && p.pid != pid)
}

/// The second process to judge, and how it came in. Pure.
fn choose<'a>(
    s: &'a Search,
    init: &ProcInfo,
    inside: &'a Inside,
) -> Option<(&'a ProcInfo, &'a Member, Came)> {
    let table = &s.table;
    let in_pid_ns = |p: &ProcInfo| p.pid_ns.is_some() && p.pid_ns == init.pid_ns;
    let found: Vec<(&ProcInfo, &Member)> = inside
        .members
        .iter()
        .filter_map(|m| s.by_pid(m.pid).map(|p| (p, m)))
        .filter(|(p, _)| !p.is_zombie())
        .filter(|(p, _)| whose::process(table, p.pid, &s.recorded) != Whose::Nslab)
        // What started the container (unshare and above) is not a second process.
        .filter(|(p, _)| !descends(table, init.pid, p.pid))
        .collect();
    // Whatever started a member (nsenter, a shell) is not one either.
    let leaf = |p: &ProcInfo| !found.iter().any(|(q, _)| descends(table, q.pid, p.pid));
    let newest = |c: Came, keep: &dyn Fn(&ProcInfo) -> bool| {
        found
            .iter()
            .filter(|(p, _)| keep(p))
            .max_by_key(|(p, _)| (p.start_time, p.pid))
            .map(|(p, m)| (*p, *m, c))
    };
    newest(Came::FromOutside, &|p| {
        in_pid_ns(p)
            && !descends(table, p.pid, init.pid)
            && s.by_pid(p.ppid).map_or(true, |q| !in_pid_ns(q))
    })
    .or_else(|| newest(Came::Partly, &|p| !in_pid_ns(p) && leaf(p)))
    .or_else(|| newest(Came::Inside, &|p| in_pid_ns(p)))
}

fn judge(s: &Seen) -> Observation {
    let search = &s.search;
    let (init, creator, notes) = match containers::find(search) {
        Found::Init {
            init,
            creator,
            notes,
        } => (init, creator, notes),
        Found::Nothing(Missing::Exited(pid)) => {
            return observation(
                format!("PID {pid} has exited"),
                ["not found", "-", "-", "-", "-"],
                "nothing-found",
            )
        }
        Found::Nothing(Missing::InHost { pid, comm }) => {
            return observation(
                format!("PID {pid} ({comm}), in the host's PID namespace"),
                [
                    &format!("PID {pid} is in the host's PID namespace"),
                    "-",
                    "-",
                    "-",
                    "-",
                ],
                "host-namespace",
            )
        }
        Found::Nothing(Missing::NoneRunning(notes)) => {
            return Observation {
                notes,
                ..observation(
                    "no container made by unshare is running".into(),
                    ["not found", "-", "-", "-", "-"],
                    "nothing-found",
                )
            }
        }
    };
    let Some(inside) = s.inside.as_ref().filter(|i| i.pid == init.pid) else {
        return observation(
            format!(
                "PID {} was not looked into (it appeared while the check ran)",
                init.pid
            ),
            ["not found", "-", "-", "-", "-"],
            "nothing-found",
        );
    };
    let started = match creator {
        Some(c) => format!("started by `{}` (host PID {})", c.cmdline, c.pid),
        None => "its creator has exited".into(),
    };
    let container = format!(
        "container {started}; its PID 1 is `{}` = host PID {}",
        init.comm, init.pid
    );
    let Some((p, m, came)) = choose(search, init, inside) else {
        return Observation {
            notes,
            verify: vec![
                format!("ps -o pid,ppid,comm --ppid {}", init.pid),
                format!("sudo nsenter -t {} -a -r -w sleep 1000", init.pid),
            ],
            ..observation(
                format!("{container}; no other process is in it"),
                ["found", "none", "-", "-", "-"],
                "nothing-joined",
            )
        };
    };
    judge_second(init, inside, p, m, came, s, container, notes)
}

#[allow(clippy::too_many_arguments)]
fn judge_second(
    init: &ProcInfo,
    inside: &Inside,
    p: &ProcInfo,
    m: &Member,
    came: Came,
    s: &Seen,
    container: String,
    notes: Vec<String>,
) -> Observation {
    let mut problem: Option<&'static str> = None;
    let second = match came {
        Came::FromOutside | Came::Partly => "found, came in from outside",
        Came::Inside => {
            problem = Some("child-of-pid1");
            "a child of PID 1, started inside"
        }
    };
    let missing: Vec<&str> = KINDS
        .iter()
        .filter(|&&k| {
            let (a, b) = (inside.ns.inode(k), m.ns.inode(k));
            a.is_some() && b.is_some() && a != b
        })
        .map(|k| k.file())
        .collect();
    let namespaces = if missing.is_empty() {
        "every one of PID 1's".to_string()
    } else {
        problem = problem.or(Some("namespaces-missing"));
        format!("not joined: {}", missing.join(", "))
    };
    let root = match (m.root, inside.root) {
        (Some(a), Some(b)) if a == b => "the container's".to_string(),
        (Some(a), Some(_)) => {
            problem = problem.or(Some("root-not-container"));
            if Some(a) == s.search.own_root {
                "the host's /, not the container's".to_string()
            } else {
                "not the container's".to_string()
            }
        }
        _ => "unreadable".to_string(),
    };
    let in_pid_ns = p.pid_ns.is_some() && p.pid_ns == init.pid_ns;
    let pid_inside = if in_pid_ns && p.innermost_pid() != 1 {
        "its own, not 1".to_string()
    } else if in_pid_ns {
        "1".to_string()
    } else {
        problem = problem.or(Some("namespaces-missing"));
        "none: not in the container's PID namespace".to_string()
    };
    let parent = match s.search.by_pid(p.ppid) {
        Some(q) => format!("its parent `{}` = host PID {}", q.comm, q.pid),
        None => "its parent has exited".into(),
    };
    let nspid = p
        .nspid
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    let judged = format!(
        "{container}; second process `{}` = host PID {} (NSpid: {nspid}), {parent}",
        p.comm, p.pid
    );
    Observation {
        judged,
        facts: vec![
            Fact::new(FOUND, "found"),
            Fact::new(SECOND, second),
            Fact::new(NAMESPACES, namespaces),
            Fact::new(ROOT, root),
            Fact::new(PID_INSIDE, pid_inside),
        ],
        problem,
        verify: vec![
            format!("sudo ls -l /proc/{}/ns/ /proc/{}/ns/", init.pid, p.pid),
            format!(
                "sudo stat -c '%d %i' /proc/{}/root/ /proc/{}/root/",
                init.pid, p.pid
            ),
            format!("grep NSpid /proc/{}/status", p.pid),
            format!("ps -o pid,ppid,comm -p {},{}", p.ppid, p.pid),
            format!("sudo nsenter -t {} -a -r -w ps -o pid,ppid,comm", init.pid),
        ],
        notes,
    }
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
