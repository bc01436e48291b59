//! The only code that touches `/proc`, `/sys` and system calls.
//!
//! Everything above this layer speaks in plain data: namespace sets, process tables,
//! cgroup concepts. cgroup v1 and v2 differ only inside [`cgroup`].

pub mod cgroup;
pub mod container;
pub mod cpuhog;
pub mod hog;
pub mod ids;
pub mod inroot;
pub mod ipc;
pub mod ipcns;
pub mod join;
pub mod machine;
pub mod mountinfo;
pub mod mountns;
pub mod mounts;
pub mod net;
pub mod ns;
pub mod overlay;
pub mod pidns;
pub mod procevents;
pub mod procs;
#[cfg(test)]
mod proptests;
pub mod removal;
pub mod rootfs;
pub mod sys;
pub mod trace;
pub mod userns;
pub mod watch;
