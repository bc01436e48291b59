//! Views: pure functions from captured kernel state (plain data) to text.
//!
//! Nothing here reads the system; everything is snapshot-tested without root.

#[cfg(test)]
mod at_widths;
pub mod cgroup;
pub mod chart;
pub mod check;
pub mod container;
pub mod diff;
#[cfg(test)]
mod fixtures;
pub mod ids;
pub mod ipc;
pub mod mounts;
pub mod nat;
pub mod net;
pub mod ns;
pub mod procs;
pub mod table;
pub mod topology;
pub mod watch;

/// A round-trip time in microseconds, as ping shows it: `0.042 ms`.
pub fn millis(us: u64) -> String {
    format!("{:.3} ms", us as f64 / 1000.0)
}
