//! Helpers for the unit tests that act on the live system.

use std::sync::{Mutex, MutexGuard};

/// Root tests in this test binary share one process-wide ledger and the machine's
/// cgroups and namespaces, so they run one at a time.
static ROOT_TESTS: Mutex<()> = Mutex::new(());

/// `None` (with the reason printed) unless root; otherwise a guard to hold for the test.
/// Under [`STRICT`] a test without root fails instead.
pub fn root_or_skip(test: &str) -> Option<MutexGuard<'static, ()>> {
    if !nix::unistd::geteuid().is_root() {
        skip(&format!(
            "{test} needs root (creates real namespaces, cgroups and processes)"
        ));
        return None;
    }
    Some(ROOT_TESTS.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Set by test.sh when it runs as root (as in CI): root and every tool test.sh installs
/// are there, so a test that would skip for want of them fails instead of passing unseen.
pub const STRICT: &str = "NSLAB_TESTS_STRICT";

/// Skip a test that cannot run here, with the reason printed, or with `strict` fail.
/// For what test.sh provides (root, tools), not for the machine's own layout.
pub fn skip_or_fail(strict: bool, reason: &str) {
    if strict {
        panic!("cannot run: {reason} ({STRICT} is set: a test that cannot run fails)");
    }
    eprintln!("skipped: {reason}");
}

/// [`skip_or_fail`] as [`STRICT`] says.
pub fn skip(reason: &str) {
    skip_or_fail(std::env::var_os(STRICT).is_some(), reason);
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_skip_only_prints_its_reason() {
        super::skip_or_fail(false, "nothing to run with");
    }

    #[test]
    #[should_panic(expected = "cannot run: no tool (NSLAB_TESTS_STRICT is set")]
    fn a_strict_skip_fails() {
        super::skip_or_fail(true, "no tool");
    }
}
