//! Where a process runs and which namespaces it leaves: sched_setaffinity(2), unshare(2).

use super::strace::{clone_flag_names, errno_result};
use crate::kernel::trace;
use anyhow::{Context, Result};
use nix::unistd::Pid;

/// The CPUs in an affinity mask, lowest first.
pub fn cpu_list(set: &nix::sched::CpuSet) -> Vec<usize> {
    (0..nix::sched::CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect()
}

/// sched_setaffinity(2): `pid` (0, the caller) may run only on the CPUs in `set`
/// (`taskset -p`), recorded in the trace.
pub fn set_affinity(pid: i32, set: &nix::sched::CpuSet) -> nix::Result<()> {
    let r = nix::sched::sched_setaffinity(Pid::from_raw(pid), set);
    let cpus: Vec<String> = cpu_list(set).iter().map(|c| c.to_string()).collect();
    trace::syscall(format!(
        "sched_setaffinity({pid}, {}, [{}]) = {}",
        std::mem::size_of::<nix::sched::CpuSet>(),
        cpus.join(" "),
        errno_result(&r)
    ));
    r
}

/// unshare(2) with the given flags, recorded in the trace.
pub fn unshare(flags: nix::sched::CloneFlags) -> Result<()> {
    let names = clone_flag_names(flags);
    let r = nix::sched::unshare(flags);
    trace::syscall(format!("unshare({names}) = {}", errno_result(&r)));
    r.with_context(|| format!("unshare({names})"))
}
