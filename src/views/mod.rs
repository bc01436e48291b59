//! Views: pure functions from captured kernel state (plain data) to text.
//!
//! Nothing here reads the system; everything is snapshot-tested without root.

pub mod cgroup;
pub mod chart;
pub mod check;
pub mod container;
pub mod diff;
pub mod nat;
pub mod net;
pub mod ns;
pub mod procs;
pub mod table;
pub mod topology;
