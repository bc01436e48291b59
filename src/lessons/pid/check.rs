//! Check 1: a PID namespace the learner made with `unshare`, its PID 1 a shell, its own /proc.

use crate::checks::whose::{self, Recorded, Whose};
use crate::kernel::ns::{self, NsKind};
use crate::kernel::pidns;
use crate::kernel::procs::{self, ProcInfo};
use crate::lesson::{Check, CheckArgs, Fact, Observation};
use anyhow::{Context, Result};

pub struct PidCheck;

/// The process table and what it takes to judge the PID namespaces in it.
pub struct Seen {
    /// nslab's own PID namespace: the host's, as far as the learner's work goes.
    pub host_ns: u64,
    pub table: Vec<ProcInfo>,
    pub recorded: Recorded,
    /// Processes of the host's PID namespace whose `pid_for_children` differs from it:
    /// (PID, that namespace; `None` while it has no PID 1 yet — "no such namespace").
    pub pending: Vec<(i32, Option<u64>)>,
    /// For each process that is PID 1 of another namespace: the start time of the PID 1 that
    /// its /proc shows (`None`: unreadable).
    pub proc_pid1: Vec<(i32, Option<u64>)>,
    /// `--pid`.
    pub asked: Option<i32>,
}

const FOUND: &str = "PID namespace made by unshare";
const OWN: &str = "PID namespace";
const INIT: &str = "PID 1 inside";
const PROC: &str = "/proc inside";

impl Check for PidCheck {
    type Seen = Seen;

    fn observe(args: &CheckArgs) -> Result<Seen> {
        let me = std::process::id() as i32;
        let host_ns = ns::link(me, NsKind::Pid)
            .inode
            .context("reading nslab's own /proc/self/ns/pid")?;
        let table = procs::table().context("reading the process table")?;
        crate::checks::require_listed(
            &table,
            args.pid,
            "give the host PID of a process inside your namespace (ps -ef --forest)",
        )?;
        let live = |p: &&ProcInfo| !p.is_zombie();
        let pending = table
            .iter()
            .filter(live)
            .filter(|p| p.pid_ns == Some(host_ns) && !p.cmdline.is_empty())
            .filter_map(|p| {
                let l = ns::link(p.pid, NsKind::PidForChildren);
                match (l.inode, l.unreadable.as_deref()) {
                    (Some(i), _) if i != host_ns => Some((p.pid, Some(i))),
                    (None, Some("no such namespace")) => Some((p.pid, None)),
                    _ => None,
                }
            })
            .collect();
        let proc_pid1 = table
            .iter()
            .filter(live)
            .filter(|p| p.pid_ns.is_some_and(|n| n != host_ns) && p.innermost_pid() == 1)
            .map(|p| (p.pid, pidns::pid1_start_time_seen_by(p.pid)))
            .collect();
        Ok(Seen {
            host_ns,
            table,
            recorded: Recorded::read(),
            pending,
            proc_pid1,
            asked: args.pid,
        })
    }

    fn judge(s: &Seen) -> Observation {
        judge(s)
    }
}

/// A namespace someone entered: its PID 1 (host view) and who started it.
struct Entered<'a> {
    init: &'a ProcInfo,
    creator: Option<&'a ProcInfo>,
    pid_ns: u64,
}

/// A process that called unshare(CLONE_NEWPID) but stayed outside (no --fork).
struct Outside<'a> {
    shell: &'a ProcInfo,
    /// The namespace its children would enter; `None` while it has no PID 1 yet.
    pending_ns: Option<u64>,
}

fn judge(s: &Seen) -> Observation {
    let by_pid = |pid: i32| s.table.iter().find(|p| p.pid == pid);
    // nslab's own namespaces (a lesson running in another terminal) are not the learner's.
    let not_nslabs = |p: &&ProcInfo| whose::process(&s.table, p.pid, &s.recorded) != Whose::Nslab;
    let entered_all: Vec<Entered> = s
        .table
        .iter()
        .filter(|p| {
            !p.is_zombie() && p.pid_ns.is_some_and(|n| n != s.host_ns) && p.innermost_pid() == 1
        })
        .filter(not_nslabs)
        .map(|p| Entered {
            init: p,
            creator: by_pid(p.ppid),
            pid_ns: p.pid_ns.unwrap_or(0),
        })
        .collect();
    let outside_all: Vec<Outside> = s
        .pending
        .iter()
        .filter_map(|&(pid, pending_ns)| Some((by_pid(pid)?, pending_ns)))
        // `unshare --pid --fork` itself stays outside with its children's namespace set: that
        // is the correct way, not the mistake looked for here.
        .filter(|(p, _)| p.comm != "unshare")
        .filter(|(p, _)| not_nslabs(p))
        .map(|(shell, pending_ns)| Outside { shell, pending_ns })
        .collect();

    if let Some(pid) = s.asked {
        let Some(p) = by_pid(pid) else {
            return nothing_found(vec![format!("PID {pid} has exited")]);
        };
        if let Some(ns_inode) = p.pid_ns.filter(|&n| n != s.host_ns) {
            return match entered_all.iter().find(|e| e.pid_ns == ns_inode) {
                Some(e) => judge_entered(
                    e,
                    s,
                    vec![format!(
                        "judging the namespace of PID {pid}, as asked with --pid"
                    )],
                ),
                None => nothing_found(vec![format!(
                    "PID {pid} is in PID namespace {ns_inode}, which has no PID 1 visible"
                )]),
            };
        }
        if let Some(o) = outside_all.iter().find(|o| o.shell.pid == pid) {
            return judge_outside(o, s, vec![]);
        }
        let mut obs = nothing_found(vec![]);
        obs.facts[0].value = format!("PID {pid} is in the host's PID namespace");
        obs.judged = format!("PID {pid} ({}), in the host's PID namespace", p.comm);
        obs.problem = Some("host-namespace");
        return obs;
    }

    let learner: Vec<&Entered> = entered_all
        .iter()
        .filter(|e| e.creator.is_some_and(|c| c.comm == "unshare"))
        .collect();
    let strangers = entered_all.len() - learner.len();
    let mut notes = vec![
        "nslab judges a PID namespace whose first process was started by `unshare` (or a shell that ran \
         unshare without --fork); containers and services are left alone; --pid HOSTPID picks one"
            .to_string(),
    ];
    if strangers > 0 {
        notes.push(format!(
            "ignored {strangers} other PID namespace(s) not made by unshare (containers, services)"
        ));
    }
    if let Some(newest) = learner.iter().max_by_key(|e| e.init.start_time) {
        if learner.len() > 1 {
            notes.push(format!(
                "{} namespaces made by unshare are running; judging the newest",
                learner.len()
            ));
        }
        if !outside_all.is_empty() {
            notes.push(format!(
                "{} shell(s) ran unshare --pid without --fork; they are not judged",
                outside_all.len()
            ));
        }
        return judge_entered(newest, s, notes);
    }
    if let Some(newest) = outside_all.iter().max_by_key(|o| o.shell.start_time) {
        return judge_outside(newest, s, notes);
    }
    nothing_found(notes)
}

fn nothing_found(notes: Vec<String>) -> Observation {
    Observation {
        judged: "no PID namespace made by unshare is running".into(),
        facts: vec![
            Fact::new(FOUND, "not found"),
            Fact::new(OWN, "-"),
            Fact::new(INIT, "-"),
            Fact::new(PROC, "-"),
        ],
        problem: Some("nothing-found"),
        verify: vec![
            "ps -ef --forest | grep -B1 -A2 unshare".into(),
            "sudo lsns -t pid".into(),
        ],
        notes,
    }
}

fn judge_entered(e: &Entered, s: &Seen, notes: Vec<String>) -> Observation {
    let init = e.init;
    let mut problem = None;
    let init_fact = if procs::is_shell(&init.comm) {
        "a shell, running".to_string()
    } else {
        problem = Some("not-a-shell");
        format!("`{}`, not a shell", init.comm)
    };
    let seen_pid1 = s
        .proc_pid1
        .iter()
        .find(|(pid, _)| *pid == init.pid)
        .and_then(|(_, t)| *t);
    let proc_fact = match seen_pid1 {
        Some(t) if t == init.start_time => "mounted for this namespace".to_string(),
        Some(_) => {
            problem = problem.or(Some("no-mount-proc"));
            "the host's (ps inside lists every host process)".to_string()
        }
        None => {
            problem = problem.or(Some("no-mount-proc"));
            "unreadable from outside (no /proc/1 there)".to_string()
        }
    };
    let members = s
        .table
        .iter()
        .filter(|p| p.pid_ns == Some(e.pid_ns))
        .count();
    let creator = match e.creator {
        Some(c) => format!("made by `{}` (host PID {})", c.cmdline, c.pid),
        None => "its creator has exited".into(),
    };
    let nspid = init
        .nspid
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    Observation {
        judged: format!(
            "PID namespace pid:[{}] {creator}; its PID 1 is `{}` = host PID {} (NSpid: {nspid}); {members} process(es) inside",
            e.pid_ns, init.comm, init.pid
        ),
        facts: vec![
            Fact::new(FOUND, "found"),
            Fact::new(OWN, "its own, not the host's"),
            Fact::new(INIT, init_fact),
            Fact::new(PROC, proc_fact),
        ],
        problem,
        verify: vec![
            format!("sudo readlink /proc/{}/ns/pid /proc/$$/ns/pid", init.pid),
            format!("grep NSpid /proc/{}/status", init.pid),
            format!("sudo nsenter -t {} -p -m ps aux", init.pid),
        ],
        notes,
    }
}

fn judge_outside(o: &Outside, s: &Seen, notes: Vec<String>) -> Observation {
    let sh = o.shell;
    let (init_fact, problem) = match o.pending_ns {
        None => ("none yet".to_string(), "no-fork"),
        Some(ns_inode) => match s
            .table
            .iter()
            .find(|p| p.pid_ns == Some(ns_inode) && p.innermost_pid() == 1)
        {
            Some(p) => (format!("`{}`, a child of your shell", p.comm), "no-fork"),
            None => (
                "gone, the namespace can start no process".to_string(),
                "pid1-gone",
            ),
        },
    };
    Observation {
        judged: format!(
            "`{}` (host PID {}) called unshare(CLONE_NEWPID) but stayed in the host's PID namespace{}",
            sh.cmdline,
            sh.pid,
            o.pending_ns
                .map(|n| format!("; its children would go to pid:[{n}]"))
                .unwrap_or_default()
        ),
        facts: vec![
            Fact::new(FOUND, "made, but not entered (unshare ran without --fork)"),
            Fact::new(OWN, "the shell is still in the host's"),
            Fact::new(INIT, init_fact),
            Fact::new(PROC, "-"),
        ],
        problem: Some(problem),
        verify: vec![
            format!("sudo ls -l /proc/{}/ns/pid /proc/{}/ns/pid_for_children", sh.pid, sh.pid),
            format!("grep NSpid /proc/{}/status", sh.pid),
        ],
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::report;
    use crate::lessons::pid::INFO;

    const HOST: u64 = 4026531836;
    const NEW: u64 = 4026532500;

    fn p(pid: i32, ppid: i32, comm: &str, ns: u64, nspid: &[i32]) -> ProcInfo {
        ProcInfo {
            start_time: 1000 + pid as u64,
            nspid: nspid.to_vec(),
            pid_ns: Some(ns),
            ..ProcInfo::fixture(pid, ppid, comm)
        }
    }

    /// A terminal's shell, `sudo unshare --pid --fork --mount-proc bash`, and nslab checking.
    fn machine() -> Seen {
        Seen {
            host_ns: HOST,
            table: vec![
                p(1, 0, "init", HOST, &[1]),
                p(100, 1, "bash", HOST, &[100]),
                p(101, 100, "sudo", HOST, &[101]),
                p(102, 101, "unshare", HOST, &[102]),
                p(103, 102, "bash", NEW, &[103, 1]),
                p(200, 100, "nslab", HOST, &[200]),
            ],
            recorded: Recorded {
                pids: vec![200],
                ..Recorded::default()
            },
            pending: vec![(102, Some(NEW))],
            proc_pid1: vec![(103, Some(1103))],
            asked: None,
        }
    }

    /// How a test case departs from the passing machine.
    type Change = Box<dyn Fn(&mut Seen)>;

    fn verdict(s: &Seen) -> (bool, Option<&'static str>, Vec<Fact>) {
        let obs = judge(s);
        let r = report(&INFO, obs.clone());
        (r.passed, obs.problem, obs.facts)
    }

    #[test]
    fn passes_a_shell_as_pid_1_with_its_own_proc() {
        let (passed, problem, _) = verdict(&machine());
        assert!(passed);
        assert_eq!(problem, None);
    }

    #[test]
    fn each_failure_names_its_hint() {
        let cases: Vec<(&str, Change)> = vec![
            (
                "nothing-found",
                Box::new(|s: &mut Seen| s.table.truncate(3)),
            ),
            (
                "no-mount-proc",
                Box::new(|s: &mut Seen| s.proc_pid1 = vec![(103, Some(1))]),
            ),
            (
                "no-mount-proc",
                Box::new(|s: &mut Seen| s.proc_pid1 = vec![(103, None)]),
            ),
            (
                "not-a-shell",
                Box::new(|s: &mut Seen| s.table[4].comm = "sleep".into()),
            ),
            (
                // `unshare --pid bash`: the shell stays outside; its first child is PID 1.
                "no-fork",
                Box::new(|s: &mut Seen| {
                    s.table.truncate(3);
                    s.table.push(p(104, 101, "bash", HOST, &[104]));
                    s.pending = vec![(104, None)];
                }),
            ),
            (
                "pid1-gone",
                Box::new(|s: &mut Seen| {
                    s.table.truncate(3);
                    s.table.push(p(104, 101, "bash", HOST, &[104]));
                    s.pending = vec![(104, Some(NEW))];
                }),
            ),
            (
                "host-namespace",
                Box::new(|s: &mut Seen| s.asked = Some(100)),
            ),
        ];
        for (want, change) in cases {
            let mut s = machine();
            change(&mut s);
            let (passed, problem, _) = verdict(&s);
            assert!(!passed, "{want}");
            assert_eq!(problem, Some(want));
            assert!(INFO.hint(want).is_some(), "hints.md has {want}");
        }
    }

    #[test]
    fn nslabs_own_namespace_and_a_containers_are_not_the_learners() {
        let mut s = machine();
        s.table[3].comm = "nslab".into(); // nslab's lesson 1 made it, in another terminal
        s.recorded.pids.push(102);
        assert_eq!(verdict(&s).1, Some("nothing-found"));
        let mut s = machine();
        s.table[3].comm = "containerd-shim".into();
        s.pending.clear();
        let obs = judge(&s);
        assert_eq!(obs.problem, Some("nothing-found"));
        assert!(
            obs.notes.iter().any(|n| n.contains("ignored 1")),
            "{:?}",
            obs.notes
        );
    }

    #[test]
    fn the_newest_of_several_is_judged_and_said() {
        let mut s = machine();
        s.table.push(p(110, 100, "unshare", HOST, &[110]));
        s.table.push(p(111, 110, "sleep", NEW + 1, &[111, 1]));
        s.proc_pid1.push((111, Some(1111)));
        let obs = judge(&s);
        assert_eq!(obs.problem, Some("not-a-shell"), "the newest is sleep");
        assert!(obs.notes.iter().any(|n| n.contains("judging the newest")));
    }
}
