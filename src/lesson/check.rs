//! A check in two halves: observe (reads the kernel, returns plain data) and judge (pure:
//! from that data to facts, tested on fixtures without root).

use anyhow::Result;

pub use crate::report::{Fact, MEASURING};

/// What `nslab check` was told on the command line.
#[derive(Clone, Debug, Default)]
pub struct CheckArgs {
    /// Judge the namespace / cgroup of this PID instead of searching.
    pub pid: Option<i32>,
    /// Judge this cgroup (lesson 3): a name, a cgroup path or a directory.
    pub cgroup: Option<String>,
    /// Judge at once: a check that samples over a while (check 4) leaves the facts that need
    /// the sample [`MEASURING`](crate::report::MEASURING), and a full judgement follows.
    pub quick: bool,
}

/// What a lesson's check made of the learner's work.
#[derive(Clone, Debug, Default)]
pub struct Observation {
    /// Which process, namespace or cgroup was judged, with its real numbers.
    pub judged: String,
    pub facts: Vec<Fact>,
    /// The hint (a section of the lesson's hints.md) for what is actually wrong.
    pub problem: Option<&'static str>,
    /// Commands that show the same thing by hand.
    pub verify: Vec<String>,
    /// How the candidate was chosen, what else was seen and ignored.
    pub notes: Vec<String>,
}

/// A lesson's check.
pub trait Check {
    /// Everything the judgement needs, as plain data read from the live system.
    type Seen;
    /// Read the kernel; no judgement here.
    fn observe(args: &CheckArgs) -> Result<Self::Seen>;
    /// Pure: the same data always gives the same facts.
    fn judge(seen: &Self::Seen) -> Observation;
}

/// Observe, then judge: what a lesson's info names as its `check`.
pub fn run_check<C: Check>(args: &CheckArgs) -> Result<Observation> {
    let seen = C::observe(args)?;
    Ok(C::judge(&seen))
}
