//! Check 4: a cgroup of the learner's limited to 10% of a CPU, with a hog inside that the
//! quota holds near 10%.

use crate::checks::whose::{self, Recorded, Terminal, Whose};
use crate::error::Problem;
use crate::kernel::cgroup::concepts::{CpuStat, TimeUnit};
use crate::kernel::cgroup::find::{self, CpuCgroup};
use crate::kernel::cgroup::{self, CgVersion, Cgroup, Concept, Layout, Reading};
use crate::kernel::cpuhog;
use crate::kernel::procs::{self, ProcInfo};
use crate::kernel::sys;
use crate::lesson::{Check, CheckArgs, Fact, Observation};
use crate::views::chart::percent;
use anyhow::{Context, Result};
use std::time::{Duration, Instant};

pub struct CpuCheck;

/// How long observe samples the chosen cgroup.
const SAMPLE_FOR: Duration = Duration::from_millis(1500);

/// The sampling of one cgroup over a short window, as plain numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// CPU time of the cgroup (its counter, or its processes' sum) at the start and the end, ns.
    pub cpu_ns: (u64, u64),
    /// From the cgroup's own counter (not the processes' schedstat).
    pub from_cgroup: bool,
    pub wall_ns: u64,
    /// How often a process inside was looked at, and found runnable (R).
    pub looks: u32,
    pub runnable: u32,
    /// cpu.stat at the start and the end; `None` when unreadable.
    pub stat: (Option<CpuStat>, Option<CpuStat>),
    /// The processes in the cgroup at the end.
    pub pids_after: Vec<i32>,
}

/// Every cgroup with a CPU quota, whose their processes are, and the sample of the one the
/// judgement picks.
#[derive(Clone, Debug)]
pub struct Seen {
    /// With `--pid`: that process's cgroup alone (with or without a quota).
    pub cgroups: Vec<CpuCgroup>,
    pub table: Vec<ProcInfo>,
    /// The terminal of each process in those cgroups.
    pub terminals: Vec<(i32, Terminal)>,
    pub recorded: Recorded,
    /// `--pid`.
    pub asked: Option<i32>,
    /// The sample of the cgroup [`choose`] picks; `None` when there is none.
    pub sample: Option<Sample>,
}

pub(super) const FOUND: &str = "cgroup with a CPU quota";
pub(super) const LIMIT: &str = "limit (quota / period)";
pub(super) const INSIDE: &str = "processes inside";
pub(super) const BUSY: &str = "using CPU";
pub(super) const SHARE: &str = "measured share";
pub(super) const THROTTLED: &str = "nr_throttled";

/// The band a 10%-limited hog must land in on a noisy machine.
const BAND: (f64, f64) = (5.0, 20.0);
/// Below this share of one CPU, the processes are idle, not hogging.
const BUSY_MIN: f64 = 2.0;

impl Check for CpuCheck {
    type Seen = Seen;

    fn observe(args: &CheckArgs) -> Result<Seen> {
        let layout = Layout::read()?;
        if layout.home("cpu").is_none() {
            return Err(Problem::environment(
                "the cpu cgroup controller is not available on this machine",
                "see `nslab doctor` for how to enable it",
            ));
        }
        let table = procs::table().context("reading the process table")?;
        let cgroups = match args.pid {
            Some(pid) => {
                if procs::process(pid).is_none() {
                    return Err(Problem::usage(
                        format!("there is no process with PID {pid}"),
                        "give the PID of the hog in your cgroup (cat /sys/fs/cgroup/…/cgroup.procs)",
                    ));
                }
                let c = find::cpu_cgroup_of(&layout, pid)?
                    .with_context(|| format!("PID {pid} is outside the mounted cpu hierarchy"))?;
                vec![c]
            }
            None => find::with_cpu_quota(&layout)?,
        };
        let terminals = cgroups
            .iter()
            .flat_map(|c| c.pids.iter())
            .map(|&pid| {
                let term = Terminal {
                    tty_nr: cpuhog::tty_nr(pid).unwrap_or(0),
                    session: cpuhog::session_id(pid).unwrap_or(0),
                };
                (pid, term)
            })
            .collect();
        let mut seen = Seen {
            cgroups,
            table,
            terminals,
            recorded: Recorded::read(),
            asked: args.pid,
            sample: None,
        };
        if let Some(c) = choose(&seen).0 {
            let c = c.clone();
            seen.sample = Some(sample(&layout, &c, SAMPLE_FOR)?);
        }
        Ok(seen)
    }

    fn judge(s: &Seen) -> Observation {
        judge(s)
    }
}

/// CPU time of a cgroup so far: its own counter, or the sum over `pids`.
fn cgroup_cpu_ns(cg: &Cgroup, pids: &[i32]) -> (u64, bool) {
    if let Ok(Reading::CpuTime(t)) = cg.read(Concept::CpuUsage) {
        let ns = match t.unit {
            TimeUnit::Ns => t.raw,
            TimeUnit::Us => t.raw * 1000,
        };
        return (ns, true);
    }
    (
        pids.iter().filter_map(|&p| cpuhog::process_cpu_ns(p)).sum(),
        false,
    )
}

fn read_stat(c: &CpuCgroup) -> Option<CpuStat> {
    match cgroup::read_concept(&c.dir, c.version, Concept::CpuStat) {
        Ok(Reading::CpuStat(s)) => Some(s),
        _ => None,
    }
}

/// Sample `c`: CPU time and throttling at the start and the end of a short window.
fn sample(layout: &Layout, c: &CpuCgroup, sample_for: Duration) -> Result<Sample> {
    let cg = c.cgroup(layout);
    let pids = &c.pids;
    let stat_before = read_stat(c);
    let (cpu0, from_cgroup) = cgroup_cpu_ns(&cg, pids);
    let t0 = Instant::now();
    // Look at the processes' states meanwhile: a hog is runnable (R) even while throttled
    // or crowded out on a busy machine; an idle shell or `sleep` is not.
    let (mut looks, mut runnable) = (0u32, 0u32);
    while t0.elapsed() < sample_for {
        sys::sleep(Duration::from_millis(100).min(sample_for))?;
        looks += 1;
        if pids
            .iter()
            .filter_map(|&p| procs::process(p))
            .any(|p| p.state == 'R')
        {
            runnable += 1;
        }
    }
    let (cpu1, _) = cgroup_cpu_ns(&cg, pids);
    let wall_ns = t0.elapsed().as_nanos().max(1) as u64;
    Ok(Sample {
        cpu_ns: (cpu0, cpu1),
        from_cgroup,
        wall_ns,
        looks,
        runnable,
        stat: (stat_before, read_stat(c)),
        pids_after: cgroup::read_procs(&c.dir).unwrap_or_default(),
    })
}

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
fn choose(s: &Seen) -> (Option<&CpuCgroup>, Vec<String>) {
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

fn judge(s: &Seen) -> Observation {
    let (chosen, notes) = choose(s);
    match (chosen, &s.sample) {
        (Some(c), Some(sample)) => judge_sampled(c, sample, notes),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::{render_facts, report};
    use crate::kernel::cgroup::concepts::{CpuQuota, Time};
    use crate::lessons::cpu::INFO;
    use std::path::PathBuf;
    use std::time::SystemTime;

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
            pid,
            ppid,
            comm: comm.into(),
            cmdline: comm.into(),
            state: 'R',
            uid: 0,
            start_time: pid as u64,
            nspid: vec![pid],
            pid_ns: Some(1),
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
}
