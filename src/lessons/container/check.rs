//! Check 5: a container the learner built with `unshare`: its own PID, mount, UTS and IPC
//! namespaces, its own root, hostname and /proc, a cgroup of its own with memory, CPU and
//! pids limits. The search for the container is shared with bonus 5b's check.

use crate::checks::containers::{self, Missing};
pub use crate::checks::containers::{RootId, Search};
#[cfg(test)]
use crate::checks::whose::Recorded;
use crate::kernel::cgroup::{Cgroup, Concept, Layout, Max, Reading};
use crate::kernel::container;
use crate::kernel::ns::{self, NsKind, NsSet};
use crate::kernel::pidns;
use crate::kernel::procs::{self, ProcInfo};
use crate::lesson::{Check, CheckArgs, Fact, Observation};
use crate::views;
use anyhow::{Context, Result};
use std::path::PathBuf;

pub struct ContainerCheck;

/// One limit of PID 1's cgroup as read.
#[derive(Clone, Debug, PartialEq)]
pub struct LimitSeen {
    pub concept: Concept,
    /// PID 1's directory for the limit's controller.
    pub dir: Option<PathBuf>,
    /// nslab's own directory for that controller.
    pub mine: Option<PathBuf>,
    /// The limit as read from PID 1's cgroup; `None`: unreadable.
    pub reading: Option<Reading>,
}

/// The container found, as read.
#[derive(Clone, Debug, PartialEq)]
pub struct Inside {
    /// Its PID 1's host PID.
    pub pid: i32,
    pub root: Option<RootId>,
    pub ns: NsSet,
    /// Its network namespace and nslab's (`None`: unreadable).
    pub net: Option<u64>,
    pub own_net: Option<u64>,
    /// The hostname it sees; empty when unreadable.
    pub hostname: String,
    /// The start time of the PID 1 its /proc shows (`None`: no /proc/1 inside).
    pub proc_pid1: Option<u64>,
    /// In the order of [`LIMITS`].
    pub limits: Vec<LimitSeen>,
}

/// Everything check 5 judges.
#[derive(Clone, Debug, PartialEq)]
pub struct Seen {
    pub search: Search,
    /// The host's namespaces (PID 1's where readable, else nslab's).
    pub host: NsSet,
    pub host_hostname: String,
    /// The container found by the search; `None` when there is none.
    pub inside: Option<Inside>,
}

pub(super) const FOUND: &str = "container made by unshare";
const ROOT: &str = "root directory";
const NAMESPACES: [(NsKind, &str, &str); 4] = [
    (NsKind::Pid, "PID namespace", "no-pid"),
    (NsKind::Mnt, "mount namespace", "no-mount"),
    (NsKind::Uts, "UTS namespace", "no-uts"),
    (NsKind::Ipc, "IPC namespace", "no-ipc"),
];
const HOSTNAME_FACT: &str = "hostname";
const INIT: &str = "PID 1 inside";
const PROC: &str = "/proc inside";
const CGROUP: &str = "cgroup of PID 1";
const LIMITS: [(Concept, &str, &str, &str); 3] = [
    (
        Concept::MemoryLimit,
        "memory limit",
        "memory",
        "no-memory-limit",
    ),
    (Concept::CpuQuota, "CPU limit", "cpu", "no-cpu-limit"),
    (Concept::PidsLimit, "pids limit", "pids", "no-pids-limit"),
];

/// Read the process table and the roots the search needs.
pub(super) fn observe_search(args: &CheckArgs) -> Result<Search> {
    containers::observe(args)
}

impl Check for ContainerCheck {
    type Seen = Seen;

    fn observe(args: &CheckArgs) -> Result<Seen> {
        let search = observe_search(args)?;
        let host = ns::host_reference().set;
        let inside = match find(&search) {
            Found::Init { init, .. } => Some(observe_inside(init.pid, &search)?),
            Found::Nothing(_) => None,
        };
        Ok(Seen {
            search,
            host,
            host_hostname: container::own_hostname(),
            inside,
        })
    }

    fn judge(seen: &Seen) -> Observation {
        judge(seen)
    }
}

fn observe_inside(pid: i32, search: &Search) -> Result<Inside> {
    let me = std::process::id() as i32;
    let ns = ns::of_pid(pid).context("the container's PID 1 vanished")?;
    let layout = Layout::read()?;
    let controllers = ["memory", "cpu", "pids"];
    let theirs = Cgroup::of_pid(&layout, pid, &controllers)?;
    let mine = Cgroup::of_pid(&layout, me, &controllers)?;
    let limits = LIMITS
        .iter()
        .map(|(concept, _, controller, _)| LimitSeen {
            concept: *concept,
            dir: theirs.dir_for(controller).map(|d| d.path.clone()),
            mine: mine.dir_for(controller).map(|d| d.path.clone()),
            reading: theirs.read(*concept).ok(),
        })
        .collect();
    Ok(Inside {
        pid,
        root: search
            .roots
            .iter()
            .find(|(p, _)| *p == pid)
            .and_then(|(_, r)| *r)
            .or_else(|| container::root_identity(pid).ok()),
        ns,
        net: ns::link(pid, NsKind::Net).inode,
        own_net: ns::link(me, NsKind::Net).inode,
        hostname: container::hostname_of(pid).unwrap_or_default(),
        proc_pid1: pidns::pid1_start_time_seen_by(pid),
        limits,
    })
}

pub(super) fn nothing_found(notes: Vec<String>) -> Observation {
    let mut facts = vec![Fact::new(FOUND, "not found"), Fact::new(ROOT, "-")];
    facts.extend(NAMESPACES.iter().map(|(_, name, _)| Fact::new(*name, "-")));
    for name in [HOSTNAME_FACT, INIT, PROC, CGROUP] {
        facts.push(Fact::new(name, "-"));
    }
    facts.extend(LIMITS.iter().map(|(_, name, _, _)| Fact::new(*name, "-")));
    Observation {
        judged: "no container made by unshare is running".into(),
        facts,
        problem: Some("nothing-found"),
        verify: vec![
            "ps -ef --forest | grep -A2 unshare".into(),
            "sudo lsns -t pid -t uts".into(),
        ],
        notes,
    }
}

/// What the search for the learner's container found.
pub(super) enum Found<'a> {
    /// PID 1 of the container, the process that started it, how it was chosen.
    Init {
        init: &'a ProcInfo,
        creator: Option<&'a ProcInfo>,
        notes: Vec<String>,
    },
    /// Nothing to judge: the observation that says so.
    Nothing(Observation),
}

/// Find the container the learner made with `unshare` (or the one `--pid` names). Pure.
pub(super) fn find(s: &Search) -> Found<'_> {
    match containers::find(s) {
        containers::Found::Init {
            init,
            creator,
            notes,
        } => Found::Init {
            init,
            creator,
            notes,
        },
        containers::Found::Nothing(Missing::Exited(pid)) => {
            Found::Nothing(nothing_found(vec![format!("PID {pid} has exited")]))
        }
        containers::Found::Nothing(Missing::InHost { pid, comm }) => {
            let mut obs = nothing_found(vec![]);
            obs.facts[0].value = format!("PID {pid} is in the host's PID namespace");
            obs.judged = format!("PID {pid} ({comm}), in the host's PID namespace");
            obs.problem = Some("host-namespace");
            Found::Nothing(obs)
        }
        containers::Found::Nothing(Missing::NoneRunning(notes)) => {
            Found::Nothing(nothing_found(notes))
        }
    }
}

fn judge(s: &Seen) -> Observation {
    let (init, creator, mut notes) = match find(&s.search) {
        Found::Init {
            init,
            creator,
            notes,
        } => (init, creator, notes),
        Found::Nothing(obs) => return obs,
    };
    let Some(inside) = s.inside.as_ref().filter(|i| i.pid == init.pid) else {
        return nothing_found(vec![format!(
            "PID {} was not looked into (it appeared while the check ran)",
            init.pid
        )]);
    };
    // A network namespace of its own: the bonus may be under way.
    if inside.net.is_some() && inside.net != inside.own_net {
        notes.push(
            "it has a network namespace of its own: `sudo nslab check 5b` judges the bonus (veth, NAT)"
                .into(),
        );
    }
    judge_inside(init, creator, inside, s, notes)
}

fn judge_inside(
    init: &ProcInfo,
    creator: Option<&ProcInfo>,
    inside: &Inside,
    s: &Seen,
    notes: Vec<String>,
) -> Observation {
    let mut problem: Option<&'static str> = None;
    let mut facts = vec![Fact::new(FOUND, "found")];

    let root = match (inside.root, s.search.own_root) {
        (Some(a), Some(b)) if a != b => "its own, not the host's".to_string(),
        (Some(_), Some(_)) => {
            problem = problem.or(Some("no-root"));
            "the host's /".to_string()
        }
        _ => "unreadable".to_string(),
    };
    facts.push(Fact::new(ROOT, root));

    for (kind, name, hint) in NAMESPACES {
        let v = match (inside.ns.inode(kind), s.host.inode(kind)) {
            (Some(a), Some(b)) if a != b => "its own",
            (Some(_), Some(_)) => {
                problem = problem.or(Some(hint));
                "the host's"
            }
            _ => "unreadable",
        };
        facts.push(Fact::new(name, v));
    }

    let hostname = &inside.hostname;
    let hn = if hostname.is_empty() {
        "unreadable".to_string()
    } else if *hostname == s.host_hostname {
        problem = problem.or(Some("no-hostname"));
        "the host's (not set inside)".to_string()
    } else {
        "set inside, not the host's".to_string()
    };
    facts.push(Fact::new(HOSTNAME_FACT, hn));

    let init_fact = if procs::is_shell(&init.comm) {
        "a shell, running".to_string()
    } else {
        problem = problem.or(Some("not-a-shell"));
        format!("`{}`, not a shell", init.comm)
    };
    facts.push(Fact::new(INIT, init_fact));

    let proc_fact = match inside.proc_pid1 {
        Some(t) if t == init.start_time => "mounted for this namespace".to_string(),
        Some(_) => {
            problem = problem.or(Some("no-mount-proc"));
            "the host's (ps inside lists every host process)".to_string()
        }
        None => {
            problem = problem.or(Some("no-mount-proc"));
            "none (no /proc/1 inside)".to_string()
        }
    };
    facts.push(Fact::new(PROC, proc_fact));

    // The cgroup: PID 1's, per controller, must not be the one nslab (run from another
    // terminal) is in, and must hold each limit.
    let mut own_cgroup = false;
    let mut limit_facts = Vec::new();
    let mut values = Vec::new();
    let mut dirs: Vec<PathBuf> = Vec::new();
    for (concept, name, controller, hint) in LIMITS {
        let seen = inside.limits.iter().find(|l| l.concept == concept);
        let dir = seen.and_then(|l| l.dir.clone());
        let separate = dir.is_some() && dir != seen.and_then(|l| l.mine.clone());
        own_cgroup |= separate;
        if let Some(d) = &dir {
            if !dirs.contains(d) {
                dirs.push(d.clone());
            }
        }
        let set = match seen.and_then(|l| l.reading.as_ref()) {
            Some(Reading::Limit(Max::Value(v))) => {
                values.push(format!(
                    "{name} {}",
                    if controller == "memory" {
                        views::container::human(*v)
                    } else {
                        v.to_string()
                    }
                ));
                true
            }
            Some(Reading::CpuQuota(q)) if q.quota_us.is_some() => {
                values.push(format!("{name} {:.2} CPU", q.cpus().unwrap_or(0.0)));
                true
            }
            _ => false,
        };
        let v = if set && separate {
            "set"
        } else if set {
            // A limit on nslab's own cgroup too (the machine's, not the learner's).
            problem = problem.or(Some("no-cgroup"));
            "only the cgroup everything else is in has one"
        } else {
            limit_facts.push(hint);
            "none"
        };
        facts.push(Fact::new(name, v));
    }
    let cg_fact = if own_cgroup {
        "its own"
    } else {
        problem = problem.or(Some("no-cgroup"));
        "the same as everything else's"
    };
    facts.insert(facts.len() - LIMITS.len(), Fact::new(CGROUP, cg_fact));
    if let Some(h) = limit_facts.first() {
        problem = problem.or(Some(h));
    }

    let creator = match creator {
        Some(c) => format!("started by `{}` (host PID {})", c.cmdline, c.pid),
        None => "its creator has exited".into(),
    };
    let nspid = init
        .nspid
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    let judged = format!(
        "container {creator}; its PID 1 is `{}` = host PID {} (NSpid: {nspid}), hostname {hostname:?}, cgroup {}{}",
        init.comm,
        init.pid,
        dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "),
        if values.is_empty() { String::new() } else { format!(" ({})", values.join(", ")) }
    );
    let mut verify = vec![
        format!("sudo ls -l /proc/{}/ns/ /proc/$$/ns/", init.pid),
        format!("sudo ls /proc/{}/root/", init.pid),
        format!("sudo nsenter -t {} -u hostname", init.pid),
        format!("sudo nsenter -t {} -p -m ps", init.pid),
        format!("cat /proc/{}/cgroup", init.pid),
    ];
    for d in &dirs {
        verify.push(format!("ls {}", d.display()));
    }
    Observation {
        judged,
        facts,
        problem,
        verify,
        notes,
    }
}

#[cfg(test)]
#[path = "check_tests.rs"]
pub(super) mod tests;
