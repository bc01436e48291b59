use super::judge::*;
use super::*;
use crate::checks::{render_facts, report};
use crate::kernel::cgroup::concepts::{CpuQuota, Time, TimeUnit};
use crate::kernel::cgroup::CgVersion;
use crate::lesson::MEASURING;
use crate::lessons::cpu::INFO;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

fn hog(share: f64) -> Sampled {
    Sampled {
        quota_us: 10_000,
        period_us: 100_000,
        any_process: true,
        share,
        runnable: 1.0,
        throttled: Some(14),
    }
}

fn judged(s: &Sampled) -> (String, Option<&'static str>) {
    let (facts, problem) = facts_of(s);
    (render_facts(&facts), problem)
}

#[test]
fn a_10_percent_hog_gives_the_expected_facts() {
    let (facts, problem) = judged(&hog(9.9));
    assert_eq!(facts, INFO.expected_check);
    assert_eq!(problem, None);
    // 10% in other units passes too (1 ms / 10 ms, v2's "100000 1000000").
    for (q, p) in [(1_000, 10_000), (100_000, 1_000_000)] {
        let s = Sampled {
            quota_us: q,
            period_us: p,
            ..hog(10.4)
        };
        assert_eq!(judged(&s).1, None, "{q}/{p}");
    }
}

#[test]
fn each_failure_has_its_own_problem() {
    let cases = [
        (
            Sampled {
                quota_us: 50_000,
                ..hog(49.0)
            },
            "wrong-limit",
            "limit (quota / period): 50.0% of one CPU (50000 µs per 100000 µs), not 10%",
        ),
        (
            Sampled {
                any_process: false,
                share: 0.0,
                runnable: 0.0,
                throttled: Some(0),
                ..hog(0.0)
            },
            "nothing-running",
            "processes inside: none",
        ),
        (
            Sampled {
                runnable: 0.0,
                throttled: Some(0),
                ..hog(0.1)
            },
            "not-busy",
            "using CPU: no (0.1% of one CPU: the processes are idle)",
        ),
        // Runnable all along but crowded out: busy, yet outside the band.
        (
            hog(1.2),
            "share-out-of-band",
            "measured share: 1.2% of one CPU, outside 5%–20%",
        ),
        (
            hog(35.0),
            "share-out-of-band",
            "measured share: 35.0% of one CPU, outside 5%–20%",
        ),
        (
            Sampled {
                throttled: Some(0),
                ..hog(9.0)
            },
            "not-throttled",
            "nr_throttled: not rising",
        ),
        (
            Sampled {
                throttled: None,
                ..hog(9.0)
            },
            "not-throttled",
            "nr_throttled: unreadable (no cpu.stat)",
        ),
    ];
    for (s, id, line) in cases {
        let (facts, problem) = judged(&s);
        assert_eq!(problem, Some(id), "{s:?}\n{facts}");
        assert!(facts.contains(line), "{id}: {facts}");
        assert!(INFO.hint(id).is_some(), "hints.md has a section for {id}");
    }
    // The most basic problem wins: a wrong limit with nothing inside is a wrong limit.
    let s = Sampled {
        quota_us: 20_000,
        any_process: false,
        ..hog(0.0)
    };
    assert_eq!(judged(&s).1, Some("wrong-limit"));
    assert!(INFO.hint("no-cgroup").is_some());
}

// ---- the whole judgement, on a machine as observe would have read it --------------

const MOUNT: &str = "/sys/fs/cgroup/cpu,cpuacct";

fn p(pid: i32, ppid: i32, comm: &str) -> ProcInfo {
    ProcInfo {
        state: 'R',
        ..ProcInfo::fixture(pid, ppid, comm)
    }
}

fn cg(path: &str, quota_us: u64, pids: &[i32], created: u64) -> CpuCgroup {
    CpuCgroup {
        path: path.into(),
        dir: PathBuf::from(format!("{MOUNT}{path}")),
        version: CgVersion::V1,
        quota: CpuQuota {
            quota_us: Some(quota_us),
            period_us: 100_000,
        },
        pids: pids.to_vec(),
        created: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(created)),
    }
}

fn stat(nr_throttled: u64) -> Option<CpuStat> {
    Some(CpuStat {
        nr_periods: 15,
        nr_throttled,
        throttled: Time::new(1_300_000_000, TimeUnit::Ns),
    })
}

/// 10% of 1.5 s of CPU, runnable at every look, throttled 14 times more.
fn sampled_hog() -> Sample {
    Sample {
        cpu_ns: (5_000_000_000, 5_150_000_000),
        from_cgroup: true,
        wall_ns: 1_500_000_000,
        looks: 15,
        runnable: 15,
        stat: (stat(100), stat(114)),
        pids_after: vec![300],
    }
}

/// The learner's `/demo` at 10% with a hog left behind by `sudo sh -c 'yes > /dev/null &'`
/// (reparented to init, still in the terminal's session); a container's and nslab's own
/// quota cgroups beside it.
fn machine() -> Seen {
    Seen {
        cgroups: vec![
            cg("/docker/web", 50_000, &[201], 30),
            cg("/nslab/cpu", 10_000, &[250], 40),
            cg("/demo", 10_000, &[300], 20),
        ],
        table: vec![
            p(1, 0, "init"),
            p(100, 1, "bash"),
            p(200, 1, "containerd-shim"),
            p(201, 200, "nginx"),
            p(249, 100, "nslab"),
            p(250, 249, "nslab"),
            p(300, 1, "yes"),
        ],
        terminals: vec![
            (201, Terminal::default()),
            (250, Terminal::default()),
            (
                300,
                Terminal {
                    tty_nr: 0,
                    session: 100,
                },
            ),
        ],
        recorded: Recorded {
            pids: vec![249],
            ..Recorded::default()
        },
        asked: None,
        sample: Some(sampled_hog()),
    }
}

fn verdict(s: &Seen) -> (bool, Option<&'static str>, Observation) {
    let obs = judge(s);
    (report(&INFO, obs.clone()).passed, obs.problem, obs)
}

#[test]
fn passes_the_learners_hog_held_to_10_percent() {
    let s = machine();
    assert_eq!(choose(&s).0.map(|c| c.path.as_str()), Some("/demo"));
    let (passed, problem, obs) = verdict(&s);
    assert!(passed, "{:?}", obs.facts);
    assert_eq!(problem, None);
    assert!(
        obs.judged.contains("measured 10.0% of one CPU over 1.5 s"),
        "{}",
        obs.judged
    );
    assert!(obs.judged.contains("(+14 in 1.5 s)"), "{}", obs.judged);
    assert!(obs
        .notes
        .iter()
        .any(|n| n.contains("ignored 1 cgroup(s) nslab itself made")));
    assert!(obs
        .notes
        .iter()
        .any(|n| n.contains("services or containers: /docker/web")));
}

#[test]
fn each_failure_of_the_whole_judgement_names_its_hint() {
    type Change = Box<dyn Fn(&mut Seen)>;
    let cases: Vec<(&str, Change)> = vec![
        (
            "no-cgroup",
            Box::new(|s: &mut Seen| {
                s.cgroups.truncate(2);
                s.sample = None;
            }),
        ),
        (
            // Started by a service (no terminal, no shell in its session): not the learner's.
            "no-cgroup",
            Box::new(|s: &mut Seen| {
                s.terminals[2].1.session = 300;
                s.sample = None;
            }),
        ),
        (
            "wrong-limit",
            Box::new(|s: &mut Seen| s.cgroups[2].quota.quota_us = Some(50_000)),
        ),
        (
            "nothing-running",
            Box::new(|s: &mut Seen| {
                s.cgroups[2].pids.clear();
                let sm = s.sample.as_mut().unwrap();
                sm.pids_after.clear();
                sm.cpu_ns.1 = sm.cpu_ns.0;
                sm.runnable = 0;
            }),
        ),
        (
            "not-busy",
            Box::new(|s: &mut Seen| {
                let sm = s.sample.as_mut().unwrap();
                sm.cpu_ns.1 = sm.cpu_ns.0 + 1_000_000;
                sm.runnable = 0;
            }),
        ),
        (
            "share-out-of-band",
            Box::new(|s: &mut Seen| {
                let sm = s.sample.as_mut().unwrap();
                sm.cpu_ns.1 = sm.cpu_ns.0 + 600_000_000;
            }),
        ),
        (
            "not-throttled",
            Box::new(|s: &mut Seen| s.sample.as_mut().unwrap().stat.1 = stat(100)),
        ),
        (
            "not-throttled",
            Box::new(|s: &mut Seen| s.sample.as_mut().unwrap().stat = (None, None)),
        ),
    ];
    for (want, change) in cases {
        let mut s = machine();
        change(&mut s);
        let (passed, problem, obs) = verdict(&s);
        assert!(!passed, "{want}: {:?}", obs.facts);
        assert_eq!(problem, Some(want), "{:?}", obs.facts);
        assert!(INFO.hint(want).is_some(), "hints.md has {want}");
    }
}

#[test]
fn a_terminal_or_a_shell_makes_the_cgroup_the_learners() {
    let mut s = machine();
    s.terminals[2].1 = Terminal {
        tty_nr: 34817,
        session: 300,
    };
    assert_eq!(choose(&s).0.map(|c| c.path.as_str()), Some("/demo"));
    let mut s = machine();
    s.terminals[2].1 = Terminal::default();
    s.table[6].ppid = 100; // still a child of the shell
    assert_eq!(choose(&s).0.map(|c| c.path.as_str()), Some("/demo"));
    // An empty leftover does not hide the one with the hog, even when newer.
    let mut s = machine();
    s.cgroups.push(cg("/old-try", 10_000, &[], 99));
    let (chosen, notes) = choose(&s);
    assert_eq!(chosen.map(|c| c.path.as_str()), Some("/demo"));
    assert!(
        notes.iter().any(|n| n.contains("2 candidate cgroups")),
        "{notes:?}"
    );
}

#[test]
fn the_cgroup_of_an_asked_pid_without_a_quota() {
    let mut s = machine();
    s.asked = Some(300);
    s.cgroups = vec![CpuCgroup {
        quota: CpuQuota {
            quota_us: None,
            period_us: 100_000,
        },
        ..cg("/demo", 0, &[300], 20)
    }];
    s.sample = None;
    let (passed, problem, obs) = verdict(&s);
    assert!(!passed);
    assert_eq!(problem, Some("no-cgroup"));
    assert_eq!(obs.facts[0].value, "PID's cgroup has no CPU quota");
    assert!(
        obs.judged.starts_with("PID 300 is in cgroup /demo"),
        "{}",
        obs.judged
    );
    // With a quota, the asked PID's cgroup is judged whoever's it is.
    let mut s = machine();
    s.asked = Some(201);
    s.cgroups = vec![cg("/docker/web", 10_000, &[201], 30)];
    assert_eq!(choose(&s).0.map(|c| c.path.as_str()), Some("/docker/web"));
}

#[test]
fn a_quick_judgement_leaves_the_sampled_facts_measuring_and_never_passes() {
    let mut s = machine();
    s.sample = None;
    let (passed, problem, obs) = verdict(&s);
    assert!(!passed);
    assert_eq!(problem, None, "nothing is wrong so far");
    let value = |name: &str| {
        obs.facts
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value.clone())
    };
    assert_eq!(value(INSIDE).as_deref(), Some("at least one"));
    assert_eq!(value(LIMIT).as_deref(), Some("10% of one CPU"));
    for name in [BUSY, SHARE, THROTTLED] {
        assert_eq!(value(name).as_deref(), Some(MEASURING), "{name}");
    }
    let r = report(&INFO, obs);
    assert!(r.measuring && r.hint_id.is_none(), "{r:?}");

    // A wrong limit is known at once; an empty cgroup needs no measuring at all.
    let mut wrong = s.clone();
    wrong.cgroups[2].quota.quota_us = Some(20_000);
    assert_eq!(verdict(&wrong).1, Some("wrong-limit"));
    let mut empty = s.clone();
    empty.cgroups[2].pids.clear();
    let (_, problem, obs) = verdict(&empty);
    assert_eq!(problem, Some("nothing-running"));
    assert!(!report(&INFO, obs).measuring);
}
