//! Check 6's judgement, pure: which shell is the learner's, and whether its hostname and
//! shared memory segment are its own, not the host's.

use super::{Seen, Spaces, FOUND, HOST, HOSTNAME, IPC, SEGMENT, UTS};
use crate::checks::whose::{self, Whose};
use crate::kernel::ipc::{self, Segment};
use crate::kernel::procs::{self, ProcInfo};
use crate::lesson::{Fact, Observation};

pub(super) enum Found<'a> {
    Shell {
        shell: &'a ProcInfo,
        notes: Vec<String>,
    },
    Nothing(Observation),
}

fn spaces_of(s: &Seen, pid: i32) -> Option<&Spaces> {
    s.spaces.iter().find(|x| x.pid == pid)
}

/// Apart from the host in UTS or IPC (unreadable counts as not apart).
fn apart(s: &Seen, sp: &Spaces) -> (bool, bool) {
    (
        sp.uts.is_some_and(|u| u != s.host_uts),
        sp.ipc.is_some_and(|i| i != s.host_ipc),
    )
}

/// Find the learner's shell (or the process `--pid` names). Pure.
pub(super) fn find(s: &Seen) -> Found<'_> {
    let by_pid = |pid: i32| s.table.iter().find(|p| p.pid == pid);
    if let Some(pid) = s.asked {
        let Some(p) = by_pid(pid) else {
            return Found::Nothing(nothing_found(vec![format!("PID {pid} has exited")]));
        };
        let (uts, ipc) = spaces_of(s, pid).map(|sp| apart(s, sp)).unwrap_or_default();
        if !uts && !ipc {
            let mut obs = nothing_found(vec![]);
            obs.facts[0].value = format!("PID {pid} is in the host's UTS and IPC namespaces");
            obs.judged = format!("PID {pid} ({}), in the host's namespaces", p.comm);
            obs.problem = Some("host-namespace");
            return Found::Nothing(obs);
        }
        return Found::Shell {
            shell: p,
            notes: vec![format!("judging PID {pid}, as asked with --pid")],
        };
    }
    let same_pair = |a: &Spaces, b: &Spaces| a.uts == b.uts && a.ipc == b.ipc;
    let mut strangers = 0;
    let mut nslabs = 0;
    let mut candidates: Vec<(&ProcInfo, (bool, bool))> = Vec::new();
    for sp in &s.spaces {
        let Some(p) = by_pid(sp.pid) else { continue };
        let (uts, ipc) = apart(s, sp);
        if !(uts || ipc) || !procs::is_shell(&p.comm) || p.is_zombie() {
            continue;
        }
        // A shell started from a shell of the same namespaces is that shell's work.
        let parent_too = by_pid(p.ppid).is_some_and(|q| {
            procs::is_shell(&q.comm) && spaces_of(s, q.pid).is_some_and(|qs| same_pair(qs, sp))
        });
        if parent_too {
            continue;
        }
        match whose::process(&s.table, p.pid, &s.recorded) {
            Whose::Learner => candidates.push((p, (uts, ipc))),
            Whose::Nslab => nslabs += 1,
            Whose::Stranger => strangers += 1,
        }
    }
    let mut notes = vec![
        "nslab judges a shell of yours (started from a terminal, as with `sudo unshare --uts --ipc bash`) in \
         a UTS or IPC namespace of its own; containers, services and nslab's own are left alone; --pid HOSTPID \
         picks one"
            .to_string(),
    ];
    if strangers > 0 {
        notes.push(format!(
            "ignored {strangers} shell(s) of containers or services in namespaces of their own"
        ));
    }
    if nslabs > 0 {
        notes.push(format!("ignored {nslabs} shell(s) nslab itself started"));
    }
    // Both namespaces apart first, then the newest.
    let Some(&(shell, _)) = candidates
        .iter()
        .max_by_key(|(p, (u, i))| (*u && *i, p.start_time))
    else {
        return Found::Nothing(nothing_found(notes));
    };
    if candidates.len() > 1 {
        notes.push(format!(
            "{} shells in namespaces of their own; judging the newest with both",
            candidates.len()
        ));
    }
    Found::Shell { shell, notes }
}

fn nothing_found(notes: Vec<String>) -> Observation {
    Observation {
        judged: "no shell of yours is in a UTS or IPC namespace of its own".into(),
        facts: vec![
            Fact::new(FOUND, "not found"),
            Fact::new(UTS, "-"),
            Fact::new(HOSTNAME, "-"),
            Fact::new(IPC, "-"),
            Fact::new(SEGMENT, "-"),
            Fact::new(HOST, "-"),
        ],
        problem: Some("nothing-found"),
        verify: vec![
            "ps -ef --forest | grep -A1 unshare".into(),
            "sudo lsns -t uts -t ipc".into(),
        ],
        notes,
    }
}

fn segments_text(segs: &[Segment]) -> String {
    segs.iter()
        .map(|g| {
            format!(
                "id {} ({} bytes, key {})",
                g.id,
                g.bytes,
                ipc::key_text(g.key)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn judge(s: &Seen) -> Observation {
    let (shell, notes) = match find(s) {
        Found::Shell { shell, notes } => (shell, notes),
        Found::Nothing(obs) => return obs,
    };
    let Some(inside) = s.inside.as_ref().filter(|i| i.pid == shell.pid) else {
        return nothing_found(vec![format!(
            "PID {} was not looked into (it appeared while the check ran)",
            shell.pid
        )]);
    };
    let sp = spaces_of(s, shell.pid).copied().unwrap_or(Spaces {
        pid: shell.pid,
        uts: None,
        ipc: None,
    });
    let (own_uts, own_ipc) = apart(s, &sp);
    let mut problem: Option<&'static str> = None;
    let mut facts = vec![Fact::new(FOUND, "found")];

    let uts = match sp.uts {
        None => "unreadable",
        Some(_) if own_uts => "its own, not the host's",
        Some(_) => {
            problem = problem.or(Some("no-uts"));
            "the host's"
        }
    };
    facts.push(Fact::new(UTS, uts));

    let hostname = if !own_uts {
        "the host's (it has no UTS namespace of its own)".to_string()
    } else if inside.hostname.is_empty() {
        "unreadable".to_string()
    } else if inside.hostname == s.host_hostname {
        problem = problem.or(Some("same-hostname"));
        "the host's (not set inside)".to_string()
    } else {
        "set inside, not the host's".to_string()
    };
    facts.push(Fact::new(HOSTNAME, hostname));

    let ipc_fact = match sp.ipc {
        None => "unreadable",
        Some(_) if own_ipc => "its own, not the host's",
        Some(_) => {
            problem = problem.or(Some("no-ipc"));
            "the host's"
        }
    };
    facts.push(Fact::new(IPC, ipc_fact));

    // The host's segments the learner made (ipcmk run outside), not nslab's or a service's.
    let learners_in_host = |g: &&Segment| {
        whose::sysv_object(&s.table, g.key, g.creator, &s.recorded) == Whose::Learner
    };
    let made_since_shell: Vec<&Segment> = s
        .host_objects
        .segments
        .iter()
        .filter(learners_in_host)
        .filter(|g| inside.started.is_some_and(|t| g.ctime >= t))
        .collect();
    let inside_segs = &inside.objects.segments;
    let (seg_fact, host_fact) = if !own_ipc {
        (
            "in the host's namespace (the shell has none of its own)".to_string(),
            "is the shell's".to_string(),
        )
    } else if inside_segs.is_empty() {
        if made_since_shell.is_empty() {
            problem = problem.or(Some("no-segment"));
            ("none".to_string(), "-".to_string())
        } else {
            problem = problem.or(Some("segment-in-host"));
            (
                "none".to_string(),
                format!(
                    "has one made since the shell started: {}",
                    segments_text(&made_since_shell.into_iter().cloned().collect::<Vec<_>>())
                ),
            )
        }
    } else {
        let same_key: Vec<Segment> = s
            .host_objects
            .segments
            .iter()
            .filter(|h| h.key != libc::IPC_PRIVATE && inside_segs.iter().any(|g| g.key == h.key))
            .cloned()
            .collect();
        let host = if same_key.is_empty() {
            "does not have it".to_string()
        } else {
            problem = problem.or(Some("segment-in-host"));
            format!("has one with the same key: {}", segments_text(&same_key))
        };
        ("made in the shell's IPC namespace".to_string(), host)
    };
    facts.push(Fact::new(SEGMENT, seg_fact));
    facts.push(Fact::new(HOST, host_fact));

    let parent = s.table.iter().find(|p| p.pid == shell.ppid);
    let started_by = match parent {
        Some(p) => format!("started by `{}` (PID {})", p.cmdline, p.pid),
        None => "its parent has exited".into(),
    };
    let ns_text = |v: Option<u64>, kind: &str| {
        v.map(|i| format!("{kind}:[{i}]"))
            .unwrap_or_else(|| format!("{kind}: unreadable"))
    };
    let judged = format!(
        "`{}` (host PID {}), {started_by}; {} {}; hostname {:?} (the host's: {:?}); segments inside: {}",
        shell.comm,
        shell.pid,
        ns_text(sp.uts, "uts"),
        ns_text(sp.ipc, "ipc"),
        inside.hostname,
        s.host_hostname,
        if inside_segs.is_empty() {
            "none".to_string()
        } else {
            segments_text(inside_segs)
        }
    );
    Observation {
        judged,
        facts,
        problem,
        verify: vec![
            format!(
                "sudo ls -l /proc/{p}/ns/uts /proc/{p}/ns/ipc /proc/$$/ns/uts /proc/$$/ns/ipc",
                p = shell.pid
            ),
            format!("sudo nsenter -t {} -u hostname", shell.pid),
            format!("sudo nsenter -t {} -i ipcs -m", shell.pid),
            "ipcs -m".into(),
        ],
        notes,
    }
}
