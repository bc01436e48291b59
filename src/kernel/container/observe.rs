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

/// What a path is, as a reader finds it: what `ls -ld` and `wc -c` would tell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PathSeen {
    /// Not there (this kernel does not make it).
    Missing,
    Dir {
        entries: usize,
    },
    File {
        bytes: u64,
        more: bool,
    },
    /// A character device (a masked file is /dev/null, 1:3), and what reading it gave.
    CharDevice {
        major: u64,
        minor: u64,
        bytes: u64,
    },
}

/// One of runc's masked paths, on the host and inside a container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskedPath {
    pub path: String,
    pub host: PathSeen,
    pub inside: PathSeen,
}

/// Reads stop here: /proc/kcore is as large as the kernel's address space.
const READ_AT_MOST: u64 = 1 << 20;

fn seen(path: &Path) -> PathSeen {
    use std::io::Read;
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return PathSeen::Missing;
    };
    if meta.is_dir() {
        let entries = std::fs::read_dir(path).map(|d| d.count()).unwrap_or(0);
        return PathSeen::Dir { entries };
    }
    let mut bytes = 0;
    if let Ok(f) = std::fs::File::open(path) {
        let mut sink = Vec::new();
        bytes = f.take(READ_AT_MOST + 1).read_to_end(&mut sink).unwrap_or(0) as u64;
    }
    if meta.file_type().is_char_device() {
        let dev = meta.rdev();
        return PathSeen::CharDevice {
            major: nix::sys::stat::major(dev),
            minor: nix::sys::stat::minor(dev),
            bytes,
        };
    }
    PathSeen::File {
        bytes: bytes.min(READ_AT_MOST),
        more: bytes > READ_AT_MOST,
    }
}

/// runc's masked paths this kernel makes, read now on the host and inside the container
/// of `pid` (through `/proc/PID/root`, which resolves in that process's mounts).
pub fn masked_paths_of(pid: i32) -> Vec<MaskedPath> {
    super::masks::MASKED
        .iter()
        .map(|p| MaskedPath {
            path: p.to_string(),
            host: seen(Path::new(p)),
            inside: seen(&Path::new(&format!("/proc/{pid}/root")).join(&p[1..])),
        })
        .filter(|m| m.host != PathSeen::Missing)
        .collect()
}

/// The capability sets and no_new_privs of process `pid`, read now from /proc/PID/status.
pub use super::caps::{of_pid as privileges_of, Sets as Privileges};
