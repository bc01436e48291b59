//! The limit a learner asks for with `--limit`, checked against what this machine can
//! show safely, and what the hogs aim at under it.

use crate::error::Problem;
use crate::kernel::cgroup::concepts::{self, human_bytes};
use crate::kernel::hog;
use anyhow::Result;

/// The exercise's limit and the lesson's default: 30 MiB.
pub const DEFAULT_LIMIT: u64 = 30 << 20;
/// Below this the hog's own program (a copy of nslab) hardly fits.
const MIN_LIMIT: u64 = 8 << 20;

/// What the hog tries to take: well beyond the limit, so it is always killed.
pub(super) fn hog_goal(limit: u64) -> u64 {
    limit.saturating_mul(2).max(limit.saturating_add(16 << 20))
}

/// Step e's higher limit: the goal plus room for the program itself.
pub(super) fn survivor_limit(limit: u64) -> u64 {
    hog_goal(limit).saturating_add(32 << 20)
}

/// `--limit`: a size as a learner writes it, within what this machine can show safely.
pub(super) fn parse_limit_flag(text: &str) -> Result<u64> {
    let n = concepts::parse_size(text).map_err(|e| {
        Problem::usage(
            format!("--limit {text:?}: {e:#}"),
            "write a size such as 30M, 30MiB, 31457280 or 30MB",
        )
    })?;
    check_limit(n, hog::mem_available())
}

pub(super) fn check_limit(n: u64, available: Option<u64>) -> Result<u64> {
    if n < MIN_LIMIT {
        return Err(Problem::usage(
            format!(
                "--limit {}: too small, the hog's own program would not fit",
                human_bytes(n)
            ),
            "use at least 8M (the default is 30M)",
        ));
    }
    if let Some(avail) = available {
        // Step e lets the hog actually take survivor_limit(n): keep that well inside what is free.
        if survivor_limit(n) > avail / 2 {
            return Err(Problem::usage(
                format!(
                    "--limit {}: step e would let the hog take {}, more than half of what this machine has available ({})",
                    human_bytes(n),
                    human_bytes(survivor_limit(n)),
                    human_bytes(avail)
                ),
                "use a smaller limit (the default is 30M)",
            ));
        }
    }
    Ok(n)
}
