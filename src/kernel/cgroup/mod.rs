//! cgroups, v1 (legacy and hybrid) and v2, behind one set of concepts.
//!
//! - [`mountinfo`]: where the hierarchies are mounted and where a process sits in them.
//! - [`concepts`]: the one table concept → (v1 file, v2 file), and the parsers.
//! - [`layout`]: the live hierarchies, a process's place in them, which controllers nslab
//!   can use and why not.
//! - [`object`]: a cgroup seen through its directories, its concepts read and written.
//! - [`own`]: nslab's own cgroups ([`NslabCgroup`]), which live under
//!   `<caller's cgroup>/nslab/<name>` in each hierarchy (on v2: under the nearest ancestor
//!   that delegates the controllers), and [`removal`] of them.
//! - [`io`]: the file system calls on cgroupfs, each traced.
//!
//! Every directory nslab makes is on the ledger before `mkdir`, and every write and
//! `mkdir`/`rmdir` is recorded in the trace as strace would show it.

pub mod concepts;
pub mod find;
mod io;
pub mod kmsg;
mod layout;
pub mod mountinfo;
mod object;
mod own;
mod removal;

pub use concepts::{CgVersion, Concept, CpuQuota, CpuWeight, Max, Reading};
pub use io::{read_procs, read_raw, rmdir_traced};
pub use layout::*;
pub use mountinfo::{Home, Layout, ProcCgroup, Version};
pub use object::*;
pub use own::NslabCgroup;
pub use removal::remove_cgroup;

/// The controllers nslab's lessons use.
pub const LESSON_CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];

#[cfg(test)]
mod tests;
