//! Checks: the learner's work observed as normalized facts and compared with the expected
//! snapshot stored in `lessons/NN-slug/expected/check.txt`.
//!
//! Volatile values (PIDs, inodes, byte counts) never appear in facts; they go in the
//! `judged` line and the commands to verify by hand, so the snapshot stays stable while
//! the report still names exactly what was judged.

pub mod containers;
pub mod whose;

use crate::lesson::{Fact, LessonInfo, Observation};
pub use crate::report::CheckReport;
use crate::report::MEASURING;
use crate::views;

/// `--pid PID` must name a process in `table`; otherwise a usage error with `fix`, the
/// lesson's way of finding the right PID.
pub fn require_listed(
    table: &[crate::kernel::procs::ProcInfo],
    pid: Option<i32>,
    fix: &str,
) -> anyhow::Result<()> {
    match pid {
        Some(pid) if !table.iter().any(|p| p.pid == pid) => Err(crate::error::Problem::usage(
            format!("there is no process with PID {pid}"),
            fix,
        )),
        _ => Ok(()),
    }
}

/// Facts as the snapshot stores them: `name: value`, one per line.
pub fn render_facts(facts: &[Fact]) -> String {
    facts
        .iter()
        .map(|f| format!("{}: {}\n", f.name, f.value))
        .collect()
}

/// Compare an observation with the lesson's expected snapshot.
pub fn report(info: &LessonInfo, obs: Observation) -> CheckReport {
    let observed = render_facts(&obs.facts);
    let expected = info.expected_check.trim_end().to_string() + "\n";
    let diff = views::diff::changes_only(&expected, &observed);
    let measuring = obs.facts.iter().any(|f| f.value == MEASURING);
    let passed = diff.is_empty() && !measuring;
    let general = info.general_hint();
    // While a fact is being measured, only a problem already found has a hint.
    let hint_id = if passed {
        None
    } else if measuring {
        obs.problem
    } else {
        obs.problem.or(general.map(|(id, _)| id))
    };
    let hint = hint_id
        .and_then(|id| info.hint(id).or(general.map(|(_, text)| text)))
        .map(str::to_string);
    CheckReport {
        lesson: info.number,
        exercise: info.key(),
        slug: info.slug,
        passed,
        verdict: if passed { "pass" } else { "not yet" },
        judged: obs.judged,
        facts: obs.facts,
        observed,
        expected,
        diff,
        hint_id,
        hint,
        verify: obs.verify,
        notes: obs.notes,
        measuring,
    }
}
