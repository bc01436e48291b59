//! Check 5's judge on fixtures: the pass and each failure its hints name.

use super::*;
use crate::checks::report;
use crate::kernel::cgroup::CpuQuota;
use crate::kernel::ns::NsLink;
use crate::lessons::container::INFO;

const HOST_PID: u64 = 4026531836;
const NEW_PID: u64 = 4026532500;
const HOST_ROOT: RootId = (2049, 2);
const BOX_ROOT: RootId = (2049, 917_505);

pub(in crate::lessons::container) fn p(
    pid: i32,
    ppid: i32,
    comm: &str,
    ns: u64,
    nspid: &[i32],
) -> ProcInfo {
    ProcInfo {
        start_time: 1000 + pid as u64,
        nspid: nspid.to_vec(),
        pid_ns: Some(ns),
        ..ProcInfo::fixture(pid, ppid, comm)
    }
}

/// A terminal's shell ran `sudo unshare --pid --fork --mount --uts --ipc --mount-proc
/// chroot rootfs /bin/sh` (PID 1 = host PID 103); nslab checks from another terminal.
pub(in crate::lessons::container) fn search() -> Search {
    Search {
        host_pid_ns: HOST_PID,
        table: vec![
            p(1, 0, "init", HOST_PID, &[1]),
            p(100, 1, "bash", HOST_PID, &[100]),
            p(101, 100, "sudo", HOST_PID, &[101]),
            p(102, 101, "unshare", HOST_PID, &[102]),
            p(103, 102, "sh", NEW_PID, &[103, 1]),
            p(200, 100, "nslab", HOST_PID, &[200]),
        ],
        recorded: Recorded {
            pids: vec![200],
            ..Recorded::default()
        },
        asked: None,
        own_root: Some(HOST_ROOT),
        roots: vec![(103, Some(BOX_ROOT))],
    }
}

fn set(pid: i32, base: u64) -> NsSet {
    NsSet {
        pid,
        links: [
            NsKind::Pid,
            NsKind::Mnt,
            NsKind::Uts,
            NsKind::Ipc,
            NsKind::Net,
        ]
        .iter()
        .enumerate()
        .map(|(k, kind)| NsLink {
            kind: *kind,
            inode: Some(base + k as u64),
            unreadable: None,
        })
        .collect(),
    }
}

fn limit(concept: Concept, controller: &str, reading: Reading) -> LimitSeen {
    LimitSeen {
        concept,
        dir: Some(format!("/sys/fs/cgroup/{controller}/box").into()),
        mine: Some(format!("/sys/fs/cgroup/{controller}/user.slice").into()),
        reading: Some(reading),
    }
}

fn machine() -> Seen {
    Seen {
        search: search(),
        host: set(1, HOST_PID),
        host_hostname: "laptop".into(),
        inside: Some(Inside {
            pid: 103,
            root: Some(BOX_ROOT),
            ns: NsSet {
                links: set(103, NEW_PID)
                    .links
                    .into_iter()
                    .map(|mut l| {
                        if l.kind == NsKind::Net {
                            l.inode = Some(HOST_PID + 4);
                        }
                        l
                    })
                    .collect(),
                pid: 103,
            },
            net: Some(HOST_PID + 4),
            own_net: Some(HOST_PID + 4),
            hostname: "box".into(),
            proc_pid1: Some(1103),
            limits: vec![
                limit(
                    Concept::MemoryLimit,
                    "memory",
                    Reading::Limit(Max::Value(100 << 20)),
                ),
                limit(
                    Concept::CpuQuota,
                    "cpu",
                    Reading::CpuQuota(CpuQuota {
                        quota_us: Some(50_000),
                        period_us: 100_000,
                    }),
                ),
                limit(Concept::PidsLimit, "pids", Reading::Limit(Max::Value(20))),
            ],
        }),
    }
}

/// How a test case departs from the passing machine.
type Change = Box<dyn Fn(&mut Seen)>;

fn inside(s: &mut Seen) -> &mut Inside {
    s.inside.as_mut().expect("the fixture has a container")
}

fn share(kind: NsKind) -> Change {
    Box::new(move |s: &mut Seen| {
        let host = s.host.inode(kind);
        let i = inside(s);
        for l in i.ns.links.iter_mut().filter(|l| l.kind == kind) {
            l.inode = host;
        }
    })
}

fn no_limit(k: usize) -> Change {
    Box::new(move |s: &mut Seen| {
        inside(s).limits[k].reading = Some(match k {
            1 => Reading::CpuQuota(CpuQuota {
                quota_us: None,
                period_us: 100_000,
            }),
            _ => Reading::Limit(Max::Unlimited),
        })
    })
}

#[test]
fn passes_the_seeds_container() {
    let s = machine();
    let obs = judge(&s);
    let r = report(&INFO, obs.clone());
    assert!(r.passed, "{}", r.diff);
    assert_eq!(obs.problem, None);
    assert!(
        obs.judged
            .contains("host PID 103 (NSpid: 103 1), hostname \"box\""),
        "{}",
        obs.judged
    );
    assert!(obs.judged.contains("CPU limit 0.50 CPU"), "{}", obs.judged);
    assert!(!obs.notes.iter().any(|n| n.contains("5b")));
}

#[test]
fn each_failure_names_its_hint() {
    let cases: Vec<(&str, &str, Change)> = vec![
        (
            "nothing-found",
            "container made by unshare: not found",
            Box::new(|s: &mut Seen| {
                s.search.table.truncate(3);
                s.inside = None;
            }),
        ),
        (
            "host-namespace",
            "container made by unshare: PID 100 is in the host's PID namespace",
            Box::new(|s: &mut Seen| s.search.asked = Some(100)),
        ),
        (
            "no-root",
            "root directory: the host's /",
            Box::new(|s: &mut Seen| inside(s).root = Some(HOST_ROOT)),
        ),
        ("no-pid", "PID namespace: the host's", share(NsKind::Pid)),
        (
            "no-mount",
            "mount namespace: the host's",
            share(NsKind::Mnt),
        ),
        ("no-uts", "UTS namespace: the host's", share(NsKind::Uts)),
        ("no-ipc", "IPC namespace: the host's", share(NsKind::Ipc)),
        (
            "no-hostname",
            "hostname: the host's (not set inside)",
            Box::new(|s: &mut Seen| inside(s).hostname = "laptop".into()),
        ),
        (
            "not-a-shell",
            "PID 1 inside: `sleep`, not a shell",
            Box::new(|s: &mut Seen| s.search.table[4].comm = "sleep".into()),
        ),
        (
            "no-mount-proc",
            "/proc inside: the host's (ps inside lists every host process)",
            Box::new(|s: &mut Seen| inside(s).proc_pid1 = Some(1)),
        ),
        (
            "no-mount-proc",
            "/proc inside: none (no /proc/1 inside)",
            Box::new(|s: &mut Seen| inside(s).proc_pid1 = None),
        ),
        (
            "no-cgroup",
            "cgroup of PID 1: the same as everything else's",
            Box::new(|s: &mut Seen| {
                for l in &mut inside(s).limits {
                    l.dir = l.mine.clone();
                }
            }),
        ),
        ("no-memory-limit", "memory limit: none", no_limit(0)),
        ("no-cpu-limit", "CPU limit: none", no_limit(1)),
        ("no-pids-limit", "pids limit: none", no_limit(2)),
    ];
    for (want, fact, change) in cases {
        let mut s = machine();
        change(&mut s);
        let obs = judge(&s);
        let r = report(&INFO, obs.clone());
        assert!(!r.passed, "{want}");
        assert_eq!(obs.problem, Some(want), "{fact}");
        assert!(
            r.diff.contains(&format!("+ {fact}")) || r.observed.contains(fact),
            "{want}: {}",
            r.observed
        );
        assert!(INFO.hint(want).is_some(), "hints.md has {want}");
    }
}

#[test]
fn a_limit_on_everyones_cgroup_is_not_the_containers() {
    let mut s = machine();
    inside(&mut s).limits[2].dir = inside(&mut s).limits[2].mine.clone();
    let obs = judge(&s);
    assert_eq!(obs.problem, Some("no-cgroup"));
    assert!(obs.facts.contains(&Fact::new(
        "pids limit",
        "only the cgroup everything else is in has one"
    )));
    assert!(obs.facts.contains(&Fact::new(CGROUP, "its own")));
}

#[test]
fn nslabs_own_container_and_a_strangers_are_not_the_learners() {
    let mut s = machine();
    s.search.recorded.pids.push(102); // an nslab lesson's, in another terminal
    assert_eq!(judge(&s).problem, Some("nothing-found"));
    let mut s = machine();
    s.search.table[3].comm = "containerd-shim".into();
    let obs = judge(&s);
    assert_eq!(obs.problem, Some("nothing-found"));
    assert!(obs.notes.iter().any(|n| n.contains("ignored 1")));
}

#[test]
fn of_several_the_one_with_its_own_root_is_judged_then_the_newest() {
    let mut s = machine();
    s.search
        .table
        .push(p(110, 100, "unshare", HOST_PID, &[110]));
    s.search
        .table
        .push(p(111, 110, "bash", NEW_PID + 10, &[111, 1]));
    s.search.roots.push((111, Some(HOST_ROOT)));
    let obs = judge(&s);
    assert_eq!(obs.problem, None, "PID 103, with its own root");
    assert!(obs.notes.iter().any(|n| n.contains("2 containers")));
    s.search.roots[1].1 = Some((2049, 5));
    let Found::Init { init, .. } = find(&s.search) else {
        panic!("found none");
    };
    assert_eq!(init.pid, 111, "both have their own root: the newest");
}

#[test]
fn a_network_namespace_of_its_own_points_to_5b() {
    let mut s = machine();
    inside(&mut s).net = Some(NEW_PID + 4);
    let obs = judge(&s);
    assert_eq!(obs.problem, None);
    assert!(obs.notes.iter().any(|n| n.contains("nslab check 5b")));
}

#[test]
fn asked_with_pid_judges_that_processes_container() {
    let mut s = machine();
    s.search
        .table
        .push(p(104, 103, "sleep", NEW_PID, &[104, 2]));
    s.search.asked = Some(104);
    let obs = judge(&s);
    assert_eq!(obs.problem, None);
    assert!(obs.notes[0].contains("PID 104, as asked with --pid"));
}
