//! Looking at containers from the host: their root, hostname, mounts, network, pids.

use super::*;

/// The (device, inode) of a process's root directory, `stat /proc/PID/root/`: two processes
/// share a root exactly when these match.
pub fn root_identity(pid: i32) -> Result<(u64, u64)> {
    let m = std::fs::metadata(format!("/proc/{pid}/root/"))
        .with_context(|| format!("stat /proc/{pid}/root"))?;
    Ok((m.dev(), m.ino()))
}

/// The hostname a process sees: read in a child that joins its UTS namespace (setns),
/// since /proc/sys/kernel/hostname answers for the reader's own namespace.
pub fn hostname_of(pid: i32) -> Result<String> {
    let mut child = sys::fork_recorded(move |io| {
        let path = format!("/proc/{pid}/ns/uts");
        let r = std::fs::File::open(&path)
            .map_err(|e| e.to_string())
            .and_then(|f| {
                nix::sched::setns(f, CloneFlags::CLONE_NEWUTS).map_err(|e| e.desc().to_string())
            })
            .map(|_| {
                nix::sys::utsname::uname().map(|u| u.nodename().to_string_lossy().into_owned())
            });
        let answer: Result<String, String> = match r {
            Ok(Ok(name)) => Ok(name),
            Ok(Err(e)) => Err(e.desc().to_string()),
            Err(e) => Err(format!("setns({path}): {e}")),
        };
        io.send(&answer);
        0
    })?;
    let answer: Result<String, String> = child.recv(Duration::from_secs(10))?;
    let _ = child.wait(Duration::from_secs(10));
    answer.map_err(|e| anyhow::anyhow!("reading the hostname of PID {pid}: {e}"))
}

/// This machine's hostname (the UTS namespace nslab runs in).
pub fn own_hostname() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.nodename().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The mount table as lessons and views name it (one parser: [`crate::kernel::mountinfo`]).
pub use crate::kernel::mountinfo::{of_pid as mountinfo_of, Mount as MountEntry};

/// Network interfaces in the network namespace of `pid` (`/proc/PID/net/dev` shows that
/// process's namespace, whoever reads it).
pub fn interfaces_of(pid: i32) -> Result<Vec<String>> {
    let path = format!("/proc/{pid}/net/dev");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    Ok(parse_net_dev(&text))
}

/// Interface names from /proc/net/dev text (two header lines, then `name: counters`).
pub fn parse_net_dev(text: &str) -> Vec<String> {
    text.lines()
        .skip(2)
        .filter_map(|l| l.split_once(':').map(|(n, _)| n.trim().to_string()))
        .filter(|n| !n.is_empty())
        .collect()
}

/// IPv4 routes in the network namespace of `pid` (`/proc/PID/net/route`, minus its header).
pub fn routes_of(pid: i32) -> Result<usize> {
    let path = format!("/proc/{pid}/net/route");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    Ok(text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .count())
}

/// How many forks the pids controller refused in the cgroup directory `dir`: the `max`
/// key of `pids.events`, the same file on cgroup v1 and v2.
pub fn pids_refused(dir: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join("pids.events")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("max ").and_then(|n| n.trim().parse().ok()))
}
