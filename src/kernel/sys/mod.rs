//! Processes, signals and mounts: the system calls lessons make, each recorded in the
//! trace as a learner would see it in `strace`.

mod channel;
mod clone;
mod fork;
mod mounts;
mod outfd;
mod rights;
mod sched;
mod signals;
mod strace;

pub use channel::{channel, Channel, ChildIo};
pub use clone::clone_recorded;
pub use fork::{child_setup, fork_recorded, fork_unrecorded, kill_and_reap, Forked};
pub use mounts::{make_mounts_private, mount_proc, remove_tree, unmount};
pub use outfd::{inherited_output, write_to};
pub use rights::with_file_rights_of;
pub use sched::{cpu_list, set_affinity, unshare};
pub use signals::{
    check_interrupt, clear_interrupt, ending_signal, install_interrupt_handler, reclaim_terminal,
    sleep, wait_child_end, wait_readable,
};
pub use strace::{clone_flag_names, errno_result, errno_text};
