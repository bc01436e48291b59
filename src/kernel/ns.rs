//! Namespaces of a process, read from the `/proc/PID/ns/*` links.
//!
//! Each link reads `kind:[inode]`; two processes share a namespace exactly when the
//! inodes match (namespaces(7)). The "host" reference is PID 1 where its links are
//! readable; where they are not (a container, WSL, or a machine whose PID 1 hides them)
//! nslab's own process stands in and the reference says so.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The kinds of namespace, in the order `ls /proc/PID/ns` lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NsKind {
    Cgroup,
    Ipc,
    Mnt,
    Net,
    Pid,
    PidForChildren,
    Time,
    TimeForChildren,
    User,
    Uts,
}

impl NsKind {
    pub const ALL: [NsKind; 10] = [
        NsKind::Cgroup,
        NsKind::Ipc,
        NsKind::Mnt,
        NsKind::Net,
        NsKind::Pid,
        NsKind::PidForChildren,
        NsKind::Time,
        NsKind::TimeForChildren,
        NsKind::User,
        NsKind::Uts,
    ];

    /// The file name under /proc/PID/ns.
    pub fn file(self) -> &'static str {
        match self {
            NsKind::Cgroup => "cgroup",
            NsKind::Ipc => "ipc",
            NsKind::Mnt => "mnt",
            NsKind::Net => "net",
            NsKind::Pid => "pid",
            NsKind::PidForChildren => "pid_for_children",
            NsKind::Time => "time",
            NsKind::TimeForChildren => "time_for_children",
            NsKind::User => "user",
            NsKind::Uts => "uts",
        }
    }

    /// What this kind of namespace gives its members a private copy of.
    pub fn isolates(self) -> &'static str {
        match self {
            NsKind::Cgroup => "the cgroup root it sees",
            NsKind::Ipc => "System V IPC, POSIX message queues",
            NsKind::Mnt => "the mount table",
            NsKind::Net => "interfaces, routes, firewall, sockets",
            NsKind::Pid => "process IDs",
            NsKind::PidForChildren => "PID namespace its next children get",
            NsKind::Time => "boot and monotonic clocks",
            NsKind::TimeForChildren => "time namespace its next children get",
            NsKind::User => "user and group IDs, capabilities",
            NsKind::Uts => "hostname and domain name",
        }
    }
}

/// One `/proc/PID/ns/<kind>` link as read just now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsLink {
    pub kind: NsKind,
    /// The namespace's inode, when the link could be read.
    pub inode: Option<u64>,
    /// Why it could not be read (permission, no such namespace yet, kernel too old).
    pub unreadable: Option<String>,
}

/// All namespace links of one process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsSet {
    pub pid: i32,
    pub links: Vec<NsLink>,
}

impl NsSet {
    pub fn inode(&self, kind: NsKind) -> Option<u64> {
        self.links
            .iter()
            .find(|l| l.kind == kind)
            .and_then(|l| l.inode)
    }
}

/// Parse a namespace link target such as `pid:[4026531836]`.
pub fn parse_link_target(target: &str) -> Option<u64> {
    let start = target.find('[')? + 1;
    let end = target[start..].find(']')? + start;
    target[start..end].parse().ok()
}

fn ns_dir(proc_root: &Path, pid: i32) -> PathBuf {
    proc_root.join(pid.to_string()).join("ns")
}

/// Read one namespace link of `pid`.
pub fn link(pid: i32, kind: NsKind) -> NsLink {
    link_under(Path::new("/proc"), pid, kind)
}

fn link_under(proc_root: &Path, pid: i32, kind: NsKind) -> NsLink {
    link_at(&ns_dir(proc_root, pid).join(kind.file()), kind)
}

fn link_at(path: &Path, kind: NsKind) -> NsLink {
    match std::fs::read_link(path) {
        Ok(target) => match parse_link_target(&target.to_string_lossy()) {
            Some(inode) => NsLink {
                kind,
                inode: Some(inode),
                unreadable: None,
            },
            None => NsLink {
                kind,
                inode: None,
                unreadable: Some(format!("unexpected link target {}", target.display())),
            },
        },
        Err(e) => NsLink {
            kind,
            inode: None,
            unreadable: Some(describe_io_error(&e)),
        },
    }
}

fn describe_io_error(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => "permission denied".into(),
        Some(libc::ENOENT) => "no such namespace".into(),
        _ => e.to_string(),
    }
}

/// The namespace links of `pid`; `None` when the process does not exist.
pub fn of_pid(pid: i32) -> Option<NsSet> {
    if !Path::new("/proc").join(pid.to_string()).exists() {
        return None;
    }
    Some(NsSet {
        pid,
        links: NsKind::ALL.iter().map(|&k| link(pid, k)).collect(),
    })
}

/// The calling process's own links (`/proc/self/ns`), which name it in whatever PID
/// namespace the /proc it sees belongs to; `pid` is its getpid().
pub fn of_self() -> Option<NsSet> {
    let dir = Path::new("/proc/self/ns");
    if !dir.exists() {
        return None;
    }
    Some(NsSet {
        pid: nix::unistd::getpid().as_raw(),
        links: NsKind::ALL
            .iter()
            .map(|&k| link_at(&dir.join(k.file()), k))
            .collect(),
    })
}

/// The namespaces nslab compares against, and whose they are.
#[derive(Clone, Debug, Serialize)]
pub struct HostReference {
    pub set: NsSet,
    /// "PID 1" or "nslab itself (PID 1's links are not readable here)".
    pub whose: String,
}

/// The host's namespaces: PID 1's where readable, otherwise nslab's own.
pub fn host_reference() -> HostReference {
    if let Some(init) = of_pid(1) {
        if init.inode(NsKind::Pid).is_some() && init.inode(NsKind::Net).is_some() {
            return HostReference {
                set: init,
                whose: "PID 1".into(),
            };
        }
    }
    let me = std::process::id() as i32;
    HostReference {
        set: of_pid(me).unwrap_or(NsSet {
            pid: me,
            links: Vec::new(),
        }),
        whose: "nslab itself (PID 1's /proc/1/ns links are not readable here)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_link_targets() {
        assert_eq!(parse_link_target("pid:[4026531836]"), Some(4026531836));
        assert_eq!(parse_link_target("mnt:[4026531841]"), Some(4026531841));
        assert_eq!(parse_link_target("garbage"), None);
        assert_eq!(parse_link_target("net:[]"), None);
    }

    #[test]
    fn own_namespaces_are_readable() {
        let me = of_pid(std::process::id() as i32).expect("own /proc entry");
        assert!(me.inode(NsKind::Pid).is_some());
        assert!(me.inode(NsKind::Mnt).is_some());
        // A process normally gives its children its own PID namespace.
        assert_eq!(me.inode(NsKind::Pid), me.inode(NsKind::PidForChildren));
    }

    #[test]
    fn missing_process_is_none() {
        assert!(of_pid(i32::MAX).is_none());
    }
}
