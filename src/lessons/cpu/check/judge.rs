//! Check 4's judgement, pure: which cgroup is the learner's, and what its sample comes to.

use super::{Sample, Seen, BUSY, FOUND, INSIDE, LIMIT, SHARE, THROTTLED};
use crate::checks::whose::{self, Whose};
use crate::kernel::cgroup::find::CpuCgroup;
use crate::kernel::cgroup::CgVersion;
use crate::kernel::procs::ProcInfo;
use crate::lesson::{Fact, Observation, MEASURING};
use crate::views::chart::percent;

/// The band a 10%-limited hog must land in on a noisy machine.
const BAND: (f64, f64) = (5.0, 20.0);
/// Below this share of one CPU, the processes are idle, not hogging.
const BUSY_MIN: f64 = 2.0;

/// Was `pid` started from a terminal or a shell (the learner's), not by a service?
fn from_a_shell(s: &Seen, pid: i32) -> bool {
    let term = s
        .terminals
        .iter()
        .find(|(p, _)| *p == pid)
        .map(|(_, t)| *t)
        .unwrap_or_default();
    whose::process_on_terminal(&s.table, pid, &s.recorded, term) == Whose::Learner
}

/// The cgroup to judge and how it was chosen. Pure: observe samples what this picks, judge
/// finds the same.
pub(super) fn choose(s: &Seen) -> (Option<&CpuCgroup>, Vec<String>) {
    let mut notes = Vec::new();
    if let Some(pid) = s.asked {
        notes.push(format!(
            "judging the cgroup of PID {pid}, as asked with --pid"
        ));
        return (
            s.cgroups.first().filter(|c| c.quota.quota_us.is_some()),
            notes,
        );
    }
    notes.push(
        "nslab judges a cgroup with a CPU quota that it did not make, whose processes were started from a \
         shell or terminal (services and containers are left alone); the newest such cgroup if several; \
         --pid PID picks the cgroup of PID"
            .to_string(),
    );
    let (nslabs, others): (Vec<&CpuCgroup>, Vec<&CpuCgroup>) = s
        .cgroups
        .iter()
        .partition(|c| whose::cgroup(&c.path, &c.dir, &s.recorded) == Whose::Nslab);
    if !nslabs.is_empty() {
        notes.push(format!(
            "ignored {} cgroup(s) nslab itself made (a lesson running elsewhere)",
            nslabs.len()
        ));
    }
    let (learner, strangers): (Vec<&CpuCgroup>, Vec<&CpuCgroup>) = others
        .into_iter()
        .partition(|c| c.pids.is_empty() || c.pids.iter().any(|&p| from_a_shell(s, p)));
    if !strangers.is_empty() {
        notes.push(format!(
            "ignored {} cgroup(s) with a CPU quota whose processes come from services or containers: {}",
            strangers.len(),
            strangers
                .iter()
                .map(|c| c.path.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    // Busy ones first (an empty leftover must not hide the one with the hog), then newest.
    let chosen = learner
        .iter()
        .filter(|c| !c.pids.is_empty())
        .max_by_key(|c| c.created)
        .or_else(|| learner.iter().max_by_key(|c| c.created))
        .copied();
    if let Some(c) = chosen {
        if learner.len() > 1 {
            notes.push(format!(
                "{} candidate cgroups ({}); judging {}",
                learner.len(),
                learner
                    .iter()
                    .map(|c| c.path.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                c.path
            ));
        }
    }
    (chosen, notes)
}

pub(super) fn judge(s: &Seen) -> Observation {
    let (chosen, notes) = choose(s);
    match (chosen, &s.sample) {
        (Some(c), Some(sample)) => judge_sampled(c, sample, notes),
        (Some(c), None) => judge_unsampled(c, &s.table, notes),
        _ => match (s.asked, s.cgroups.first()) {
            (Some(pid), Some(c)) => {
                let mut obs = nothing_found(notes);
                obs.judged = format!(
                    "PID {pid} is in cgroup {} ({}), which has no CPU quota",
                    c.path,
                    c.dir.display()
                );
                obs.facts[0].value = "PID's cgroup has no CPU quota".into();
                obs
            }
            _ => nothing_found(notes),
        },
    }
}

fn nothing_found(notes: Vec<String>) -> Observation {
    Observation {
        judged: "no cgroup with a CPU quota (other than nslab's own) was found".into(),
        facts: vec![
            Fact::new(FOUND, "not found"),
            Fact::new(LIMIT, "-"),
            Fact::new(INSIDE, "-"),
            Fact::new(BUSY, "-"),
            Fact::new(SHARE, "-"),
            Fact::new(THROTTLED, "-"),
        ],
        problem: Some("no-cgroup"),
        verify: vec![
            "grep -v '^-1$' /sys/fs/cgroup/cpu/*/cpu.cfs_quota_us    # v1".into(),
            "grep -v '^max' /sys/fs/cgroup/*/cpu.max                  # v2".into(),
        ],
        notes,
    }
}

/// What a sample comes to, as the facts need it.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Sampled {
    pub quota_us: u64,
    pub period_us: u64,
    /// A process was in the cgroup at the start or the end of the sample.
    pub any_process: bool,
    /// CPU used over the sample, in % of one CPU.
    pub share: f64,
    /// How often (0..1) a process inside was runnable when looked at.
    pub runnable: f64,
    /// Growth of nr_throttled over the sample; `None` when cpu.stat could not be read.
    pub throttled: Option<u64>,
}

/// The facts of a sample and the first problem among them (most basic first). Pure.
pub(super) fn facts_of(s: &Sampled) -> (Vec<Fact>, Option<&'static str>) {
    let mut problem: Option<&'static str> = None;
    let (q, p) = (s.quota_us, s.period_us.max(1));
    // Exactly 10%: quota / period = 0.10, in any units (1000/10000, 10000/100000, ...).
    let limit_fact = if q * 10 == p {
        "10% of one CPU".to_string()
    } else {
        problem = Some("wrong-limit");
        format!(
            "{} of one CPU ({q} µs per {p} µs), not 10%",
            percent(q as f64 / p as f64 * 100.0)
        )
    };
    let inside_fact = if s.any_process {
        "at least one".to_string()
    } else {
        problem = problem.or(Some("nothing-running"));
        "none".to_string()
    };
    let busy = s.share >= BUSY_MIN || s.runnable >= 0.3;
    let busy_fact = if !s.any_process {
        "-".to_string()
    } else if busy {
        "yes".to_string()
    } else {
        problem = problem.or(Some("not-busy"));
        format!(
            "no ({} of one CPU: the processes are idle)",
            percent(s.share)
        )
    };
    let judged_further = s.any_process && busy;
    let share_fact = if !judged_further {
        "-".to_string()
    } else if (BAND.0..=BAND.1).contains(&s.share) {
        format!("between {}% and {}% of one CPU", BAND.0, BAND.1)
    } else {
        problem = problem.or(Some("share-out-of-band"));
        format!(
            "{} of one CPU, outside {}%–{}%",
            percent(s.share),
            BAND.0,
            BAND.1
        )
    };
    let throttle_fact = if !judged_further {
        "-".to_string()
    } else {
        match s.throttled {
            Some(d) if d > 0 => "rising".to_string(),
            Some(_) => {
                problem = problem.or(Some("not-throttled"));
                "not rising".to_string()
            }
            None => {
                problem = problem.or(Some("not-throttled"));
                "unreadable (no cpu.stat)".to_string()
            }
        }
    };
    (
        vec![
            Fact::new(FOUND, "found"),
            Fact::new(LIMIT, limit_fact),
            Fact::new(INSIDE, inside_fact),
            Fact::new(BUSY, busy_fact),
            Fact::new(SHARE, share_fact),
            Fact::new(THROTTLED, throttle_fact),
        ],
        problem,
    )
}

/// The processes in `c` that have not ended: one that just ended may still be listed, as a
/// zombie, for a moment.
pub(super) fn live_pids(c: &CpuCgroup, table: &[ProcInfo]) -> Vec<i32> {
    c.pids
        .iter()
        .copied()
        .filter(|pid| !table.iter().any(|t| t.pid == *pid && t.state == 'Z'))
        .collect()
}

/// The chosen cgroup judged without a sample (a quick judgement, or nothing inside to
/// sample): its limit and whether a process is in it now;
/// with one inside, whether it is busy, its share and throttling are being measured.
fn judge_unsampled(c: &CpuCgroup, table: &[ProcInfo], notes: Vec<String>) -> Observation {
    let (q, p) = (c.quota.quota_us.unwrap_or(0), c.quota.period_us.max(1));
    let live = live_pids(c, table);
    let any_process = !live.is_empty();
    let (mut facts, mut problem) = facts_of(&Sampled {
        quota_us: q,
        period_us: p,
        any_process,
        share: 0.0,
        runnable: 0.0,
        throttled: None,
    });
    if any_process {
        for f in facts
            .iter_mut()
            .filter(|f| [BUSY, SHARE, THROTTLED].contains(&f.name.as_str()))
        {
            f.value = MEASURING.into();
        }
        problem = problem.filter(|p| *p == "wrong-limit");
    }
    let pids: Vec<String> = live.iter().map(i32::to_string).collect();
    Observation {
        judged: format!(
            "cgroup {} ({}): quota {q} µs per {p} µs; {}{}",
            c.path,
            c.dir.display(),
            if any_process { "PID " } else { "no process" },
            pids.join(", ")
        ),
        facts,
        problem,
        verify: vec![format!("cat {}/cgroup.procs", c.dir.display())],
        notes,
    }
}

fn judge_sampled(c: &CpuCgroup, sm: &Sample, notes: Vec<String>) -> Observation {
    let q = c.quota.quota_us.unwrap_or(0);
    let p = c.quota.period_us.max(1);
    let wall = sm.wall_ns.max(1) as f64;
    let throttled = match &sm.stat {
        (Some(a), Some(b)) => Some((b.nr_throttled.saturating_sub(a.nr_throttled), b)),
        _ => None,
    };
    let sampled = Sampled {
        quota_us: q,
        period_us: p,
        any_process: !(c.pids.is_empty() && sm.pids_after.is_empty()),
        share: sm.cpu_ns.1.saturating_sub(sm.cpu_ns.0) as f64 / wall * 100.0,
        runnable: if sm.looks == 0 {
            0.0
        } else {
            sm.runnable as f64 / sm.looks as f64
        },
        throttled: throttled.map(|(d, _)| d),
    };
    let (facts, problem) = facts_of(&sampled);

    let d = c.dir.display();
    let (limit_file, stat_key, stat_unit) = match c.version {
        CgVersion::V1 => (
            format!("cat {d}/cpu.cfs_quota_us {d}/cpu.cfs_period_us"),
            "throttled_time",
            "ns",
        ),
        CgVersion::V2 => (format!("cat {d}/cpu.max"), "throttled_usec", "µs"),
    };
    let stat_text = throttled
        .map(|(delta, s)| {
            format!(
                "; nr_throttled {} (+{delta} in {:.1} s), {stat_key} {} {stat_unit} = {:.2} s",
                s.nr_throttled,
                wall / 1e9,
                s.throttled.raw,
                s.throttled.us as f64 / 1e6
            )
        })
        .unwrap_or_default();
    let now_pids = &sm.pids_after;
    let pid_list = if now_pids.is_empty() {
        "no process".to_string()
    } else {
        format!(
            "PID {}",
            now_pids
                .iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let judged = format!(
        "cgroup {} ({}, cgroup {}): quota {q} µs per {p} µs; {pid_list}; measured {} of one CPU over {:.1} s \
         ({}){stat_text}",
        c.path,
        d,
        c.version.label(),
        percent(sampled.share),
        wall / 1e9,
        if sm.from_cgroup {
            "from the cgroup's CPU time counter"
        } else {
            "from the processes' /proc/PID/task/*/schedstat"
        }
    );
    let mut verify = vec![limit_file, format!("cat {d}/cgroup.procs")];
    verify.push(format!("cat {d}/cpu.stat; sleep 1; cat {d}/cpu.stat"));
    if !now_pids.is_empty() {
        verify.push(format!(
            "top -p {}",
            now_pids
                .iter()
                .take(20)
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ));
    }
    Observation {
        judged,
        facts,
        problem,
        verify,
        notes,
    }
}
