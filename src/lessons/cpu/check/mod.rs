//! Check 4: a cgroup of the learner's limited to 10% of a CPU, with a hog inside that the
//! quota holds near 10%.

mod judge;
mod observe;
#[cfg(test)]
mod tests;

use crate::checks::whose::{Recorded, Terminal};
use crate::kernel::cgroup::concepts::CpuStat;
use crate::kernel::cgroup::find::CpuCgroup;
use crate::kernel::procs::ProcInfo;
use crate::lesson::{Check, CheckArgs, Observation};
use anyhow::Result;

pub struct CpuCheck;

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
    /// The sample of the cgroup [`choose`] picks; `None` when none was taken (a quick
    /// judgement, or nothing inside to sample).
    pub sample: Option<Sample>,
}

pub(super) const FOUND: &str = "cgroup with a CPU quota";
pub(super) const LIMIT: &str = "limit (quota / period)";
pub(super) const INSIDE: &str = "processes inside";
pub(super) const BUSY: &str = "using CPU";
pub(super) const SHARE: &str = "measured share";
pub(super) const THROTTLED: &str = "nr_throttled";

impl Check for CpuCheck {
    type Seen = Seen;

    fn observe(args: &CheckArgs) -> Result<Seen> {
        observe::observe(args)
    }

    fn judge(s: &Seen) -> Observation {
        judge::judge(s)
    }
}
