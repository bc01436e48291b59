//! A hog followed to its end or its goal, its cgroup's usage drawn against a limit; used by
//! the lesson's steps and by the mystery bonus.

use super::read_count;
use crate::kernel::cgroup::concepts::human_bytes;
use crate::kernel::cgroup::{CgVersion, Cgroup, Concept};
use crate::kernel::hog::{HogEvent, MemoryHog};
use crate::lesson::Stage;
use anyhow::Result;
use std::time::Duration;

/// Follow the hog to its end or its goal, drawing usage against `limit`: a bar on a
/// terminal (drawn on each step, no ticking thread), a line per quarter when plain.
pub(super) fn climb(
    stage: &Stage,
    hog: &mut MemoryHog,
    cg: &Cgroup,
    limit: u64,
) -> Result<HogEvent> {
    let version = cg
        .dir_for("memory")
        .map(|d| d.version)
        .unwrap_or(CgVersion::V1);
    let usage_file = Concept::MemoryUsage.files(version)[0].file;
    let bar = stage.ui.gauge(limit);
    let mut quarter = 0;
    loop {
        let ev = hog.next(Duration::from_secs(30))?;
        let usage = read_count(cg, Concept::MemoryUsage);
        let touched = match &ev {
            HogEvent::Progress(t) | HogEvent::Holding(t) => *t,
            HogEvent::Ended(e) => e.touched,
        };
        let msg = format!(
            "{usage_file} {} of {} (touched {})",
            human_bytes(usage),
            human_bytes(limit),
            human_bytes(touched)
        );
        match &bar {
            Some(b) => b.set(usage, msg),
            None => {
                let q = (touched * 4 / limit.max(1)).min(8);
                if q > quarter {
                    quarter = q;
                    stage.ui.out(&format!("  {msg}"));
                }
            }
        }
        if !matches!(ev, HogEvent::Progress(_)) {
            if let Some(b) = bar {
                b.finish();
            }
            return Ok(ev);
        }
    }
}
