//! Check 6 judged on made-up machines: a pass, each failure and its hint, what is not the
//! learner's.

use super::judge::*;
use super::*;
use crate::checks::report;
use crate::kernel::ipc::Segment;
use crate::lessons::uts_ipc::INFO;

const HOST_UTS: u64 = 4026531838;
const HOST_IPC: u64 = 4026531839;
const NEW_UTS: u64 = 4026532600;
const NEW_IPC: u64 = 4026532601;
const STARTED: i64 = 1_700_000_000;

fn p(pid: i32, ppid: i32, comm: &str) -> ProcInfo {
    ProcInfo {
        start_time: 1000 + pid as u64,
        ..ProcInfo::fixture(pid, ppid, comm)
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
