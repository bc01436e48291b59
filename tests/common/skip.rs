//! Skipping a test that cannot run here. One file for the unit tests (src/testing.rs
//! includes it) and the integration tests (tests/common), which cannot call into the
//! binary crate.

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
