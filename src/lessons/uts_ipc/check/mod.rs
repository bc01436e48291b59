//! Check 6: the learner's shell in UTS and IPC namespaces of its own, a hostname set there
//! that differs from the host's, and a System V shared memory segment made there and not
//! in the host's namespace.

mod judge;
mod observe;
#[cfg(test)]
mod tests;

use crate::checks::whose::Recorded;
use crate::kernel::ipc::Objects;
use crate::kernel::procs::ProcInfo;
use crate::lesson::{Check, CheckArgs, Observation};
use anyhow::Result;

pub struct UtsIpcCheck;

/// The UTS and IPC namespaces of one process (`None`: unreadable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spaces {
    pub pid: i32,
    pub uts: Option<u64>,
    pub ipc: Option<u64>,
}

/// The shell chosen, looked into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inside {
    pub pid: i32,
    /// The hostname it sees; empty when unreadable.
    pub hostname: String,
    /// The System V objects of its IPC namespace.
    pub objects: Objects,
    /// When it started, in seconds since the epoch (`None`: unknown).
    pub started: Option<i64>,
}

/// Everything check 6 judges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// nslab's own UTS and IPC namespaces: the host's, as far as the learner's work goes.
    pub host_uts: u64,
    pub host_ipc: u64,
    pub host_hostname: String,
    pub host_objects: Objects,
    pub table: Vec<ProcInfo>,
    pub spaces: Vec<Spaces>,
    pub recorded: Recorded,
    /// `--pid`.
    pub asked: Option<i32>,
    /// The shell [`judge::find`] chose, as read; `None` when there is none.
    pub inside: Option<Inside>,
}

pub(super) const FOUND: &str = "shell in new namespaces";
pub(super) const UTS: &str = "UTS namespace";
pub(super) const HOSTNAME: &str = "hostname";
pub(super) const IPC: &str = "IPC namespace";
pub(super) const SEGMENT: &str = "shared memory segment";
pub(super) const HOST: &str = "host's IPC namespace";

impl Check for UtsIpcCheck {
    type Seen = Seen;

    fn observe(args: &CheckArgs) -> Result<Seen> {
        observe::observe(args)
    }

    fn judge(s: &Seen) -> Observation {
        judge::judge(s)
    }
}
