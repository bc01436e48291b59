//! Helpers for the unit tests that act on the live system.

use std::sync::{Mutex, MutexGuard};

/// Root tests in this test binary share one process-wide ledger and the machine's
/// cgroups and namespaces, so they run one at a time.
static ROOT_TESTS: Mutex<()> = Mutex::new(());

/// `None` (with the reason printed) unless root; otherwise a guard to hold for the test.
pub fn root_or_skip(test: &str) -> Option<MutexGuard<'static, ()>> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped {test}: needs root (creates real namespaces, cgroups and processes)");
        return None;
    }
    Some(ROOT_TESTS.lock().unwrap_or_else(|e| e.into_inner()))
}
