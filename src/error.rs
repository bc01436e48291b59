//! Errors that end a command, and the exit code each one maps to.
//!
//! Exit codes are part of the command-line contract (see README):
//! 0 ok / check passed, 1 check not passed or the run failed, 2 usage error,
//! 3 this environment cannot run it, 128 + N ended by signal N after tearing down
//! (130 Ctrl-C, 129 a closed terminal, 131 Ctrl-\, 143 SIGTERM).

use std::fmt;

pub const EXIT_OK: i32 = 0;
pub const EXIT_NOT_YET: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_ENVIRONMENT: i32 = 3;
/// Ended by a signal: 128 + its number, as a shell reports a process it killed.
pub const EXIT_SIGNALLED: i32 = 128;

/// An error the learner can act on. Anything else (an `anyhow` chain) is a failure
/// with exit code 1, printed with its context.
#[derive(Debug)]
pub enum Problem {
    /// The command line names something that does not exist (a lesson, a PID, a flag value).
    Usage { message: String, fix: String },
    /// The machine or the caller cannot run this (not root, a controller missing).
    Environment { message: String, fix: String },
    /// Ctrl-C, a closed terminal, SIGQUIT or SIGTERM: everything created so far has been
    /// removed.
    Interrupted { signal: i32 },
}

impl Problem {
    pub fn usage(message: impl Into<String>, fix: impl Into<String>) -> anyhow::Error {
        Problem::Usage {
            message: message.into(),
            fix: fix.into(),
        }
        .into()
    }

    pub fn environment(message: impl Into<String>, fix: impl Into<String>) -> anyhow::Error {
        Problem::Environment {
            message: message.into(),
            fix: fix.into(),
        }
        .into()
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Problem::Usage { .. } => EXIT_USAGE,
            Problem::Environment { .. } => EXIT_ENVIRONMENT,
            Problem::Interrupted { signal } => EXIT_SIGNALLED.saturating_add(*signal),
        }
    }

    pub fn fix(&self) -> Option<&str> {
        match self {
            Problem::Usage { fix, .. } | Problem::Environment { fix, .. } if !fix.is_empty() => {
                Some(fix)
            }
            _ => None,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Usage { message, .. } | Problem::Environment { message, .. } => {
                f.write_str(message)
            }
            Problem::Interrupted { signal } => write!(
                f,
                "{}; everything this run created has been removed",
                ending(*signal)
            ),
        }
    }
}

impl std::error::Error for Problem {}

/// How a learner would name what ended the run.
pub fn ending(signal: i32) -> String {
    match signal {
        libc::SIGINT => "interrupted (Ctrl-C)".into(),
        libc::SIGHUP => "the terminal was closed (SIGHUP)".into(),
        libc::SIGQUIT => "quit (Ctrl-\\, SIGQUIT)".into(),
        libc::SIGTERM => "stopped by SIGTERM".into(),
        n => format!("stopped by signal {n}"),
    }
}

/// The exit code for any error that ends a command.
pub fn exit_code_of(err: &anyhow::Error) -> i32 {
    err.downcast_ref::<Problem>()
        .map(Problem::exit_code)
        .unwrap_or(EXIT_NOT_YET)
}

/// `Err` unless the effective user is root, with the exact command to run instead.
pub fn require_root(what: &str, rerun: &str) -> anyhow::Result<()> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(Problem::environment(
            format!("{what} needs root: it creates namespaces and cgroups and reads other processes' /proc entries"),
            format!("run it with sudo:  sudo {rerun}"),
        ))
    }
}

#[cfg(test)]
mod signal_tests {
    use super::*;

    #[test]
    fn a_signal_ends_with_128_plus_its_number_and_says_which() {
        for (signal, code, says) in [
            (libc::SIGINT, 130, "Ctrl-C"),
            (libc::SIGHUP, 129, "terminal was closed"),
            (libc::SIGQUIT, 131, "SIGQUIT"),
            (libc::SIGTERM, 143, "SIGTERM"),
        ] {
            let e: anyhow::Error = Problem::Interrupted { signal }.into();
            assert_eq!(exit_code_of(&e), code);
            let text = e.to_string();
            assert!(text.contains(says) && text.contains("removed"), "{text}");
        }
    }
}
