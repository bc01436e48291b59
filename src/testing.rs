//! Helpers for the unit tests that act on the live system.

use std::sync::{Mutex, MutexGuard};

// Shared with the integration tests, which cannot call into the binary crate.
#[path = "../tests/common/skip.rs"]
mod skip;
pub use skip::skip;

/// Root tests in this test binary share one process-wide ledger and the machine's
/// cgroups and namespaces, so they run one at a time.
static ROOT_TESTS: Mutex<()> = Mutex::new(());

/// `None` (with the reason printed) unless root; otherwise a guard to hold for the test.
/// Under `NSLAB_TESTS_STRICT` (see [`skip`]) a test without root fails instead.
pub fn root_or_skip(test: &str) -> Option<MutexGuard<'static, ()>> {
    if !nix::unistd::geteuid().is_root() {
        skip(&format!(
            "{test} needs root (creates real namespaces, cgroups and processes)"
        ));
        return None;
    }
    Some(ROOT_TESTS.lock().unwrap_or_else(|e| e.into_inner()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_skip_only_prints_its_reason() {
        super::skip::skip_or_fail(false, "nothing to run with");
    }

    #[test]
    #[should_panic(expected = "cannot run: no tool (NSLAB_TESTS_STRICT is set")]
    fn a_strict_skip_fails() {
        super::skip::skip_or_fail(true, "no tool");
    }
}
