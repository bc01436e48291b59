//! Check 6: the learner's shell in UTS and IPC namespaces of its own, a hostname set there
//! that differs from the host's, and a System V shared memory segment made there and not
//! in the host's namespace.

use crate::checks::whose::{self, Recorded, Whose};
use crate::kernel::container;
use crate::kernel::ipc::{self, Objects, Segment};
use crate::kernel::ns::{self, NsKind};
use crate::kernel::procs::{self, ProcInfo};
use crate::lesson::{Check, CheckArgs, Fact, Observation};
use anyhow::{Context, Result};

pub struct UtsIpcCheck;

/// The UTS and IPC namespaces of one process (`None`: unreadable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spaces {
    pub pid: i32,
    pub uts: Option<u64>,
    pub ipc: Option<u64>,
}

/// The shell chosen, looked into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inside {
    pub pid: i32,
    /// The hostname it sees; empty when unreadable.
    pub hostname: String,
    /// The System V objects of its IPC namespace.
    pub objects: Objects,
    /// When it started, in seconds since the epoch (`None`: unknown).
    pub started: Option<i64>,
}

/// Everything check 6 judges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// nslab's own UTS and IPC namespaces: the host's, as far as the learner's work goes.
    pub host_uts: u64,
    pub host_ipc: u64,
    pub host_hostname: String,
    pub host_objects: Objects,
    pub table: Vec<ProcInfo>,
    pub spaces: Vec<Spaces>,
    pub recorded: Recorded,
    /// `--pid`.
    pub asked: Option<i32>,
    /// The shell [`find`] chose, as read; `None` when there is none.
    pub inside: Option<Inside>,
}

const FOUND: &str = "shell in new namespaces";
const UTS: &str = "UTS namespace";
const HOSTNAME: &str = "hostname";
const IPC: &str = "IPC namespace";
const SEGMENT: &str = "shared memory segment";
const HOST: &str = "host's IPC namespace";

impl Check for UtsIpcCheck {
    type Seen = Seen;

    fn observe(args: &CheckArgs) -> Result<Seen> {
        let me = std::process::id() as i32;
        let host_uts = ns::link(me, NsKind::Uts)
            .inode
            .context("reading nslab's own /proc/self/ns/uts")?;
        let host_ipc = ipc::own_namespace()?;
        let table = procs::table().context("reading the process table")?;
        crate::checks::require_listed(
            &table,
            args.pid,
            "give the host PID of your unshare shell (ps -ef --forest | grep -A1 unshare)",
        )?;
        let spaces = table
            .iter()
            .filter(|p| !p.is_zombie())
            .map(|p| Spaces {
                pid: p.pid,
                uts: ns::link(p.pid, NsKind::Uts).inode,
                ipc: ns::link(p.pid, NsKind::Ipc).inode,
            })
            .collect();
        let mut seen = Seen {
            host_uts,
            host_ipc,
            host_hostname: container::own_hostname(),
            host_objects: ipc::own()?,
            table,
            spaces,
            recorded: Recorded::read(),
            asked: args.pid,
            inside: None,
        };
        if let Found::Shell { shell, .. } = find(&seen) {
            let pid = shell.pid;
            let start = shell.start_time;
            seen.inside = Some(Inside {
                pid,
                hostname: container::hostname_of(pid).unwrap_or_default(),
                objects: ipc::of_pid(pid)?,
                started: procs::started_at(start),
            });
        }
        Ok(seen)
    }

    fn judge(seen: &Seen) -> Observation {
        judge(seen)
    }
}

enum Found<'a> {
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
fn find(s: &Seen) -> Found<'_> {
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

fn judge(s: &Seen) -> Observation {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::report;
    use crate::lessons::uts_ipc::INFO;

    const HOST_UTS: u64 = 4026531838;
    const HOST_IPC: u64 = 4026531839;
    const NEW_UTS: u64 = 4026532600;
    const NEW_IPC: u64 = 4026532601;
    const STARTED: i64 = 1_700_000_000;

    fn p(pid: i32, ppid: i32, comm: &str) -> ProcInfo {
        ProcInfo {
            pid,
            ppid,
            comm: comm.into(),
            cmdline: comm.into(),
            state: 'S',
            uid: 0,
            start_time: 1000 + pid as u64,
            nspid: vec![pid],
            pid_ns: Some(1),
        }
    }

    fn seg(key: i32, id: i32, creator: i32, ctime: i64) -> Segment {
        Segment {
            key,
            id,
            perms: 0o644,
            bytes: 4096,
            creator,
            attached: 0,
            ctime,
        }
    }

    /// A terminal's shell, `sudo unshare --uts --ipc bash` with `hostname lab6` and
    /// `ipcmk -M 4096` done inside, and nslab checking from another terminal.
    fn machine() -> Seen {
        let table = vec![
            p(1, 0, "init"),
            p(100, 1, "bash"),
            p(101, 100, "sudo"),
            p(102, 101, "bash"),
            p(200, 1, "bash"),
            p(201, 200, "nslab"),
        ];
        let host = |pid| Spaces {
            pid,
            uts: Some(HOST_UTS),
            ipc: Some(HOST_IPC),
        };
        Seen {
            host_uts: HOST_UTS,
            host_ipc: HOST_IPC,
            host_hostname: "lab-host".into(),
            host_objects: Objects::default(),
            spaces: vec![
                host(1),
                host(100),
                host(101),
                Spaces {
                    pid: 102,
                    uts: Some(NEW_UTS),
                    ipc: Some(NEW_IPC),
                },
                host(200),
                host(201),
            ],
            table,
            recorded: Recorded {
                pids: vec![201],
                ..Recorded::default()
            },
            asked: None,
            inside: Some(Inside {
                pid: 102,
                hostname: "lab6".into(),
                objects: Objects {
                    segments: vec![seg(0x1234, 0, 7, STARTED + 5)],
                    queues: vec![],
                },
                started: Some(STARTED),
            }),
        }
    }

    fn verdict(s: &Seen) -> (bool, Option<&'static str>) {
        let obs = judge(s);
        let r = report(&INFO, obs.clone());
        (r.passed, obs.problem)
    }

    type Change = Box<dyn Fn(&mut Seen)>;

    fn inside(s: &mut Seen) -> &mut Inside {
        s.inside.as_mut().unwrap()
    }

    #[test]
    fn passes_a_shell_with_its_own_hostname_and_segment() {
        assert_eq!(verdict(&machine()), (true, None));
        let obs = judge(&machine());
        assert!(obs.judged.contains("host PID 102"), "{}", obs.judged);
        assert!(obs.judged.contains("\"lab6\""), "{}", obs.judged);
        // A host segment of a running service, or nslab's own, changes nothing.
        let mut s = machine();
        s.table.push(p(300, 1, "postgres"));
        s.spaces.push(Spaces {
            pid: 300,
            uts: Some(HOST_UTS),
            ipc: Some(HOST_IPC),
        });
        s.host_objects.segments = vec![
            seg(0x99, 5, 300, STARTED + 9),
            seg(0x6e73_0001, 6, 4242, STARTED + 9),
        ];
        assert_eq!(verdict(&s), (true, None));
    }

    #[test]
    fn each_failure_names_its_hint() {
        let only = |uts: bool, ipc: bool| -> Change {
            Box::new(move |s: &mut Seen| {
                let sp = s.spaces.iter_mut().find(|x| x.pid == 102).unwrap();
                if !uts {
                    sp.uts = Some(HOST_UTS);
                }
                if !ipc {
                    sp.ipc = Some(HOST_IPC);
                }
            })
        };
        let cases: Vec<(&str, Change)> = vec![
            (
                "nothing-found",
                Box::new(|s: &mut Seen| s.table.truncate(3)),
            ),
            ("nothing-found", only(false, false)),
            ("no-uts", only(false, true)),
            ("no-ipc", only(true, false)),
            (
                "same-hostname",
                Box::new(|s: &mut Seen| inside(s).hostname = "lab-host".into()),
            ),
            (
                "no-segment",
                Box::new(|s: &mut Seen| inside(s).objects.segments.clear()),
            ),
            (
                // `ipcmk -M 4096` typed in the other terminal, after the shell started.
                "segment-in-host",
                Box::new(|s: &mut Seen| {
                    inside(s).objects.segments.clear();
                    s.host_objects.segments = vec![seg(0x777, 32768, 555, STARTED + 30)];
                }),
            ),
            (
                "segment-in-host",
                Box::new(|s: &mut Seen| {
                    s.host_objects.segments = vec![seg(0x1234, 32768, 555, STARTED - 100)];
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
            let (passed, problem) = verdict(&s);
            assert!(!passed, "{want}");
            assert_eq!(problem, Some(want));
            assert!(INFO.hint(want).is_some(), "hints.md has {want}");
        }
    }

    #[test]
    fn an_older_host_segment_is_not_the_learners_mistake() {
        let mut s = machine();
        inside(&mut s).objects.segments.clear();
        s.host_objects.segments = vec![seg(0x777, 32768, 555, STARTED - 100)];
        assert_eq!(verdict(&s).1, Some("no-segment"));
    }

    #[test]
    fn nslabs_containers_and_subshells_are_not_judged() {
        // nslab's own child in a UTS namespace of its own.
        let mut s = machine();
        s.table[3].ppid = 201;
        assert_eq!(verdict(&s).1, Some("nothing-found"));
        // A container's shell.
        let mut s = machine();
        s.table[2].comm = "containerd-shim".into();
        s.table[1].comm = "systemd".into();
        let obs = judge(&s);
        assert_eq!(obs.problem, Some("nothing-found"));
        assert!(
            obs.notes.iter().any(|n| n.contains("ignored 1")),
            "{:?}",
            obs.notes
        );
        // A subshell inside the learner's shell is the same work: the outer one is judged.
        let mut s = machine();
        s.table.push(p(103, 102, "bash"));
        s.spaces.push(Spaces {
            pid: 103,
            uts: Some(NEW_UTS),
            ipc: Some(NEW_IPC),
        });
        let obs = judge(&s);
        assert!(obs.judged.contains("host PID 102"), "{}", obs.judged);
        assert_eq!(obs.problem, None);
    }

    #[test]
    fn the_facts_are_those_of_the_snapshot() {
        crate::lessons::assert_hints_and_facts(
            &INFO,
            &[
                "nothing-found",
                "no-uts",
                "same-hostname",
                "no-ipc",
                "no-segment",
                "segment-in-host",
                "host-namespace",
            ],
            &[FOUND, UTS, HOSTNAME, IPC, SEGMENT, HOST],
        );
    }
}
