//! Errors that end a command, and the exit code each one maps to.
//!
//! Exit codes are part of the command-line contract (see README):
//! 0 ok / check passed, 1 check not passed or the run failed, 2 usage error,
//! 3 this environment cannot run it, 130 interrupted by Ctrl-C.

use std::fmt;

pub const EXIT_OK: i32 = 0;
pub const EXIT_NOT_YET: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_ENVIRONMENT: i32 = 3;
pub const EXIT_INTERRUPTED: i32 = 130;

/// An error the learner can act on. Anything else (an `anyhow` chain) is a failure
/// with exit code 1, printed with its context.
#[derive(Debug)]
pub enum Problem {
    /// The command line names something that does not exist (a lesson, a PID, a flag value).
    Usage { message: String, fix: String },
    /// The machine or the caller cannot run this (not root, a controller missing).
    Environment { message: String, fix: String },
    /// Ctrl-C: everything created so far has been removed.
    Interrupted,
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
            Problem::Interrupted => EXIT_INTERRUPTED,
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
            Problem::Interrupted => {
                f.write_str("interrupted; everything this run created has been removed")
            }
        }
    }
}

impl std::error::Error for Problem {}

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
