//! What check 4 reads: the cgroups with a CPU quota, their processes, and a short sample of
//! the one the judgement picks.

use super::judge::{choose, live_pids};
use super::{Sample, Seen};
use crate::checks::whose::{Recorded, Terminal};
use crate::error::Problem;
use crate::kernel::cgroup::concepts::{CpuStat, TimeUnit};
use crate::kernel::cgroup::find::{self, CpuCgroup};
use crate::kernel::cgroup::{self, Cgroup, Concept, Layout, Reading};
use crate::kernel::cpuhog;
use crate::kernel::procs;
use crate::kernel::sys;
use crate::lesson::CheckArgs;
use anyhow::{Context, Result};
use std::time::{Duration, Instant};

/// How long observe samples the chosen cgroup.
const SAMPLE_FOR: Duration = Duration::from_millis(1500);

pub(super) fn observe(args: &CheckArgs) -> Result<Seen> {
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
    // A quick judgement takes no sample, and an empty cgroup needs none: nothing uses CPU.
    let to_sample = choose(&seen)
        .0
        .filter(|c| !args.quick && !live_pids(c, &seen.table).is_empty());
    if let Some(c) = to_sample {
        let c = c.clone();
        seen.sample = Some(sample(&layout, &c, SAMPLE_FOR)?);
    }
    Ok(seen)
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
