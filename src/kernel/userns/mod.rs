//! User namespaces made the way an ordinary user makes them, so lesson 8 shows what needs
//! no root at all:
//!
//! ```text
//! nslab ──fork──> the learner's process ──fork──> inside: unshare(CLONE_NEWUSER…)
//!                 (under sudo: setgroups,          its maps written from outside by
//!                  setresgid, setresuid first)     the learner's process
//! ```
//!
//! Nothing here goes on the ledger: each process dies with its parent (PR_SET_PDEATHSIG,
//! set again after every change of credentials, which clears it), and everything they make
//! (the namespaces, mounts inside them, a file without a name) ends with the last of them.
//! A run without root could not write the ledger anyway.

mod host;
mod inside;
mod learner;
mod orders;
mod rootless;

pub use host::{
    map_of, overflow_uid, owner_of_fd, owning_userns, status_of, subordinate_ranges, subuid_lines,
    unprivileged_allowed,
};
pub use rootless::Rootless;

use super::ids::{self, StatusIds};
use super::ns::NsSet;
use super::sys::errno_text;
use nix::sched::CloneFlags;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The user whose IDs the rootless parts run with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Who {
    pub uid: u32,
    pub gid: u32,
    /// The name in /etc/passwd (for /etc/subuid), when it has one.
    pub name: Option<String>,
}

fn env_id(var: &str) -> Option<u32> {
    std::env::var(var).ok()?.trim().parse().ok()
}

/// Who a rootless lesson acts as: the caller when not root; under sudo the user who ran
/// it (SUDO_UID, SUDO_GID); `None` for root with nobody behind it (SUDO_UID unset or 0,
/// or an ID no user could have).
pub fn learner() -> Option<Who> {
    let euid = nix::unistd::geteuid().as_raw();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let (uid, gid) = if euid != 0 {
        (euid, nix::unistd::getegid().as_raw())
    } else {
        let uid = env_id("SUDO_UID").filter(|&u| u != 0 && u != u32::MAX)?;
        let gid = env_id("SUDO_GID")
            .or_else(|| ids::passwd_entry(&passwd, uid).map(|(_, g)| g))
            .filter(|&g| g != u32::MAX)?;
        (uid, gid)
    };
    Some(Who {
        uid,
        gid,
        name: ids::passwd_entry(&passwd, uid).map(|(n, _)| n),
    })
}

/// Which map file of a process the learner's process writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MapFile {
    UidMap,
    GidMap,
    Setgroups,
}

impl MapFile {
    pub fn file(self) -> &'static str {
        match self {
            MapFile::UidMap => "uid_map",
            MapFile::GidMap => "gid_map",
            MapFile::Setgroups => "setgroups",
        }
    }
}

/// What an attempt came to: done, or refused with this errno (`EPERM (Operation not
/// permitted)`). The system calls are in the trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub ok: bool,
    pub error: Option<String>,
}

impl Outcome {
    fn of<T>(r: &nix::Result<T>) -> Outcome {
        Outcome {
            ok: r.is_ok(),
            error: r.as_ref().err().map(|e| errno_text(*e)),
        }
    }

    /// `done` or the error, for a sentence.
    pub fn said(&self) -> String {
        match &self.error {
            None => "done".into(),
            Some(e) => format!("refused: {e}"),
        }
    }
}

/// What the process inside says about itself, in its own user namespace's IDs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SelfIds {
    pub status: StatusIds,
    pub uid_map: String,
    pub gid_map: String,
    pub setgroups: String,
    pub user_ns: Option<u64>,
}

/// A file the process inside made without a name (O_TMPFILE): its descriptor there and
/// its owner as fstat(2) shows it inside.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TmpFile {
    pub fd: i32,
    pub dir: PathBuf,
    pub uid: u32,
    pub gid: u32,
}

/// The links of a network namespace before and after `ip link set lo up`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LinksUp {
    pub before: Vec<super::net::Link>,
    pub lo_up: Outcome,
    pub after: Vec<super::net::Link>,
}

/// The process inside, seen by itself before and after its unshare(2).
pub struct Unshared {
    pub before: NsSet,
    pub after: NsSet,
}

/// A change of credentials clears PR_SET_PDEATHSIG: set it again, and leave if the parent
/// died before it took hold.
fn rearm(parent: Pid) {
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    if nix::unistd::getppid() != parent {
        unsafe { libc::_exit(1) };
    }
}

fn flags_of(bits: i32) -> CloneFlags {
    CloneFlags::from_bits_truncate(bits)
}
