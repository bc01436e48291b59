//! The ledger: every object nslab creates is written here *before* it is created and
//! struck off after it is removed, so that a crash, Ctrl-C or `kill -9` leaves a record
//! that `nslab cleanup` can act on. nslab removes only what its ledger names.
//!
//! One file per run: `/run/nslab/runs/<pid>-<starttime>.json` (tmpfs: gone at reboot,
//! like everything it lists). Beside each object, once it exists, its kernel identity
//! (an inode, an ifindex): a record then proves which object nslab made, not merely its
//! name. The ledger only keeps records; `kernel::removal` acts on them.
//!
//! [`resource`] names what can be recorded, [`runfile`] is a run file as written and
//! read, [`record`] this run's own ledger, [`cleanup`] the runs that died, [`instance`]
//! the number a run of a lesson beside another names its objects with.

mod cleanup;
pub mod instance;
mod record;
mod resource;
mod runfile;
#[cfg(test)]
mod tests;

pub use cleanup::{all_recorded, cleanup_dead_runs_in, CleanupReport, Reach, Removal};
pub use record::{
    current, forget, forget_all, identify, identity_of, record, set_owner_start_time,
    UNKNOWN_START_TIME,
};
pub use resource::Resource;
pub use runfile::run_dir;
