//! Lesson 3: memory cgroups and the OOM killer. This file holds the lesson's state, its
//! table of steps and its option.
//!
//! - [`limit`]: the limit a learner asks for, and what the hogs aim at under it.
//! - [`placement`]: step a, where nslab's process is in the memory hierarchy.
//! - [`limit_cgroup`]: the lesson's cgroup, made with its limit (b) and removed (f).
//! - [`hogs`]: the hog killed at the limit (c, d) and the one a higher limit lets live (e).
//! - [`climb`]: a hog followed to its end, usage drawn against a limit.

mod check;
mod climb;
mod hogs;
mod limit;
mod limit_cgroup;
pub mod mystery;
mod mystery_check;
mod placement;

use crate::kernel::cgroup::{Cgroup, Concept, Layout, NslabCgroup, Reading};
use crate::kernel::hog::HogEvent;
use crate::lesson::{run_check, Lesson, LessonInfo, Step, Table};
use anyhow::Result;
use climb::climb;
use limit::parse_limit_flag;
pub use limit::DEFAULT_LIMIT;
use std::time::Duration;

pub static INFO: LessonInfo = LessonInfo {
    number: 3,
    slug: "oom",
    title: "Memory cgroups — the OOM killer",
    summary: "a hog climbs to its cgroup's memory limit and the kernel OOM-kills it",
    text: include_str!("../../../lessons/03-oom/lesson.md"),
    hints: include_str!("../../../lessons/03-oom/hints.md"),
    solution: include_str!("../../../lessons/03-oom/solution.md"),
    expected_check: include_str!("../../../lessons/03-oom/expected/check.txt"),
    parent: None,
    steps: &Table::<OomLesson>::OF,
    check: run_check::<check::OomCheck>,
    needs_root: true,
    names: &["nslab/oom"],
};

/// nslab's cgroup for this lesson: `…/nslab/oom`.
const CGROUP_NAME: &str = "oom";
/// The hog's steps: 1 MiB, a short pause each so the bar can follow.
const STEP: u64 = 1 << 20;
const PAUSE: Duration = Duration::from_millis(40);

/// The files the lesson shows, in this order.
const MEMORY_VIEW: [Concept; 6] = [
    Concept::MemoryLimit,
    Concept::MemoryUsage,
    Concept::MemoryPeak,
    Concept::MemoryFailcnt,
    Concept::OomKills,
    Concept::Procs,
];

#[derive(Default)]
struct OomLesson {
    limit: u64,
    layout: Option<Layout>,
    cg: Option<NslabCgroup>,
    /// Before the hog of step c: the cgroup's values, oom_kill, the kernel log's position.
    before_values: Option<String>,
    kills_before: u64,
    seq_before: Option<u64>,
    /// How step c's hog ended.
    end: Option<(i32, HogEvent)>,
}

/// A counter or byte reading of `cg`, 0 when unreadable (for the narration).
pub(super) fn read_count(cg: &Cgroup, c: Concept) -> u64 {
    match cg.read(c) {
        Ok(Reading::Count(n)) | Ok(Reading::Bytes(n)) => n,
        _ => 0,
    }
}

impl OomLesson {
    fn layout(&mut self) -> Result<&Layout> {
        if self.layout.is_none() {
            self.layout = Some(Layout::read()?);
        }
        Ok(self.layout.as_ref().expect("read above"))
    }
}

impl Lesson for OomLesson {
    const STEPS: &'static [Step<Self>] = &[
        Step {
            id: 'a',
            title: "Where your process is",
            keyboard: false,
            run: Self::step_a,
        },
        Step {
            id: 'b',
            title: "A cgroup with a limit",
            keyboard: false,
            run: Self::step_b,
        },
        Step {
            id: 'c',
            title: "The hog",
            keyboard: false,
            run: Self::step_c,
        },
        Step {
            id: 'd',
            title: "The kill",
            keyboard: false,
            run: Self::step_d,
        },
        Step {
            id: 'e',
            title: "The same hog, a higher limit",
            keyboard: false,
            run: Self::step_e,
        },
        Step {
            id: 'f',
            title: "Cleaning up",
            keyboard: false,
            run: Self::step_f,
        },
    ];

    fn options() -> Vec<clap::Arg> {
        vec![clap::Arg::new("limit")
            .long("limit")
            .value_name("SIZE")
            .help(
            "Lesson 3: the memory limit to set (default 30M; 31457280, 30MiB and 30MB work too)",
        )]
    }

    fn start(options: &clap::ArgMatches) -> Result<Self> {
        let limit = match options.try_get_one::<String>("limit").ok().flatten() {
            Some(text) => parse_limit_flag(text)?,
            None => DEFAULT_LIMIT,
        };
        Ok(OomLesson {
            limit,
            ..Self::default()
        })
    }
}

#[cfg(test)]
mod tests;
