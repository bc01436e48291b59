//! Joining the namespaces of a running process, as `nsenter` and `docker exec` do: open
//! its `/proc/PID/ns/*` links (each is a handle on a namespace), `setns(2)` into each, take
//! its root and working directory, and fork, since a PID namespace applies to children only.

use super::ns::{self, NsKind, NsSet};
use super::procs::{self, ProcInfo};
use super::sys::{self, errno_result, errno_text, Forked};
use super::trace;
use anyhow::{Context, Result};
use nix::fcntl::{open, OFlag};
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::Mode;
use serde::{Deserialize, Serialize};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

/// The namespaces `nsenter -a` enters, in its order: the user namespace first (entering it
/// may be what grants the rights the others need), the mount namespace late (after it,
/// /proc may be another), the PID namespace before the fork that makes it count.
pub const NSENTER_ORDER: [NsKind; 8] = [
    NsKind::User,
    NsKind::Cgroup,
    NsKind::Ipc,
    NsKind::Uts,
    NsKind::Net,
    NsKind::Pid,
    NsKind::Mnt,
    NsKind::Time,
];

/// The clone flag that names a kind of namespace to setns(2).
pub fn flag(kind: NsKind) -> CloneFlags {
    match kind {
        NsKind::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        NsKind::Ipc => CloneFlags::CLONE_NEWIPC,
        NsKind::Mnt => CloneFlags::CLONE_NEWNS,
        NsKind::Net => CloneFlags::CLONE_NEWNET,
        NsKind::Pid | NsKind::PidForChildren => CloneFlags::CLONE_NEWPID,
        // nix 0.31 has no name for it.
        NsKind::Time | NsKind::TimeForChildren => CloneFlags::from_bits_retain(0x80),
        NsKind::User => CloneFlags::CLONE_NEWUSER,
        NsKind::Uts => CloneFlags::CLONE_NEWUTS,
    }
}

/// The flag's name as strace prints it.
pub fn flag_name(kind: NsKind) -> &'static str {
    match kind {
        NsKind::Cgroup => "CLONE_NEWCGROUP",
        NsKind::Ipc => "CLONE_NEWIPC",
        NsKind::Mnt => "CLONE_NEWNS",
        NsKind::Net => "CLONE_NEWNET",
        NsKind::Pid | NsKind::PidForChildren => "CLONE_NEWPID",
        NsKind::Time | NsKind::TimeForChildren => "CLONE_NEWTIME",
        NsKind::User => "CLONE_NEWUSER",
        NsKind::Uts => "CLONE_NEWUTS",
    }
}

/// `openat(AT_FDCWD, path, O_RDONLY|O_CLOEXEC)`, in the trace.
fn open_traced(path: &str, extra: OFlag, shown: &str) -> Result<OwnedFd> {
    let r = open(
        path,
        OFlag::O_RDONLY | OFlag::O_CLOEXEC | extra,
        Mode::empty(),
    );
    trace::syscall(format!(
        "openat(AT_FDCWD, \"{path}\", {shown}) = {}",
        match &r {
            Ok(fd) => fd.as_raw_fd().to_string(),
            Err(e) => format!("-1 {}", errno_text(*e)),
        }
    ));
    r.with_context(|| format!("opening {path}"))
}

fn setns_traced(fd: &OwnedFd, kind: NsKind) -> Result<()> {
    let r = setns(fd, flag(kind));
    trace::syscall(format!(
        "setns({}, {}) = {}",
        fd.as_raw_fd(),
        flag_name(kind),
        errno_result(&r)
    ));
    r.with_context(|| format!("setns into the {} namespace", kind.file()))
}

/// What a child that joined one namespace saw, before and after.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OneJoin {
    pub before: NsSet,
    pub after: NsSet,
    pub hostname_before: String,
    pub hostname_after: String,
}

#[derive(Serialize, Deserialize)]
struct Report<T> {
    trace: Vec<String>,
    result: std::result::Result<T, String>,
}

/// A child's calls, marked as its own (as the other helpers' are).
fn in_child(pid: i32, lines: Vec<String>) -> Vec<String> {
    lines
        .into_iter()
        .map(|l| format!("[child {pid}] {l}"))
        .collect()
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `nsenter -t PID --KIND`: a child opens /proc/PID/ns/KIND and setns(2)s into it; its
/// links and hostname before and after. The child then exits.
pub fn join_one(pid: i32, kind: NsKind) -> Result<OneJoin> {
    let mut child = sys::fork_recorded(move |io| {
        trace::take(); // the parent's, copied by fork
        let result = (|| -> Result<OneJoin> {
            let before = ns::of_self().context("reading /proc/self/ns")?;
            let hostname_before = hostname();
            let fd = open_traced(
                &format!("/proc/{pid}/ns/{}", kind.file()),
                OFlag::empty(),
                "O_RDONLY|O_CLOEXEC",
            )?;
            setns_traced(&fd, kind)?;
            let after = ns::of_self().context("reading /proc/self/ns")?;
            Ok(OneJoin {
                before,
                after,
                hostname_before,
                hostname_after: hostname(),
            })
        })();
        let code = i32::from(result.is_err());
        io.send(&Report {
            trace: trace::take(),
            result: result.map_err(|e| format!("{e:#}")),
        });
        code
    })?;
    let report: Report<OneJoin> = child.recv(Duration::from_secs(10))?;
    let _ = child.wait(Duration::from_secs(10));
    trace::extend(in_child(child.pid.as_raw(), report.trace));
    report
        .result
        .map_err(|e| anyhow::anyhow!("joining PID {pid}'s {} namespace: {e}", kind.file()))
}

/// One namespace as `nsenter -a` treats it: entered, or skipped as the joiner's already.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entered {
    pub kind: NsKind,
    /// false: the target's is the joiner's own already (nsenter skips those too).
    pub entered: bool,
}

/// What the joiner saw once inside.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Inside {
    pub before: NsSet,
    pub after: NsSet,
    pub entered: Vec<Entered>,
    /// getpid() and getppid(): its numbers in the PID namespace it was born in (the
    /// parent, outside it, is 0 there).
    pub getpid: i32,
    pub getppid: i32,
    pub hostname_before: String,
    pub hostname_after: String,
    /// `ls /` before and after.
    pub root_before: Vec<String>,
    pub root_after: Vec<String>,
    /// `ps` inside: its /proc after joining the mount namespace.
    pub ps: Vec<ProcInfo>,
}

/// A process nslab brought into another's namespaces, left running until dropped.
pub struct Joiner {
    child: Forked,
    /// Its PID on the host.
    pub host_pid: i32,
    pub inside: Inside,
}

impl Joiner {
    /// End it now (SIGKILL and reap; struck off the ledger).
    pub fn end(mut self) -> Result<()> {
        self.child.kill()
    }
}

fn ls_root() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// `nsenter -t PID -a -r -w`: every namespace of `pid` that is not nslab's own, its root
/// and working directory, and a child born in its PID namespace.
///
/// The descriptors are opened first, as nsenter does: once the mount namespace changes,
/// /proc may be another's. nslab then setns(2)s its own PID namespace for children (not
/// its own PID: no process changes that) and forks, so that the child it records is born
/// inside; it returns to its own at once. The child enters the rest in nsenter's order,
/// changes root and directory, and stays until told to go or nslab ends.
pub fn nsenter_all(pid: i32) -> Result<Joiner> {
    let own = ns::of_self().context("reading nslab's /proc/self/ns")?;
    let target = ns::of_pid(pid).with_context(|| format!("PID {pid} is not running"))?;
    let mut fds: Vec<(NsKind, Option<OwnedFd>)> = Vec::new();
    for kind in NSENTER_ORDER {
        let theirs = target.inode(kind);
        if theirs.is_none() {
            continue; // a kind this kernel does not have, or unreadable
        }
        let same = theirs == own.inode(kind);
        let path = format!("/proc/{pid}/ns/{}", kind.file());
        let fd = if same {
            None
        } else {
            Some(open_traced(&path, OFlag::empty(), "O_RDONLY|O_CLOEXEC")?)
        };
        fds.push((kind, fd));
    }
    let root = open_traced(
        &format!("/proc/{pid}/root"),
        OFlag::O_DIRECTORY,
        "O_RDONLY|O_DIRECTORY|O_CLOEXEC",
    )?;
    let cwd = open_traced(
        &format!("/proc/{pid}/cwd"),
        OFlag::O_DIRECTORY,
        "O_RDONLY|O_DIRECTORY|O_CLOEXEC",
    )?;
    let pid_fd = fds
        .iter()
        .find(|(k, _)| *k == NsKind::Pid)
        .and_then(|(_, f)| f.as_ref());
    // Back to nslab's own PID namespace for children, whatever happens below.
    let home = match pid_fd {
        Some(fd) => {
            let home = open_traced("/proc/self/ns/pid", OFlag::empty(), "O_RDONLY|O_CLOEXEC")?;
            setns_traced(fd, NsKind::Pid)?;
            Some(home)
        }
        None => None,
    };
    let entered: Vec<Entered> = fds
        .iter()
        .map(|(kind, fd)| Entered {
            kind: *kind,
            entered: fd.is_some(),
        })
        .collect();
    let rest: Vec<(NsKind, &OwnedFd)> = fds
        .iter()
        .filter(|(k, _)| *k != NsKind::Pid)
        .filter_map(|(k, f)| f.as_ref().map(|f| (*k, f)))
        .collect();
    let entered_for_child = entered.clone();
    let forked = sys::fork_recorded(move |io| {
        trace::take(); // the parent's, copied by fork
        let result = (|| -> Result<Inside> {
            let before = ns::of_self().context("reading /proc/self/ns")?;
            let hostname_before = hostname();
            let root_before = ls_root();
            for (kind, fd) in &rest {
                setns_traced(fd, *kind)?;
            }
            // nsenter -r -w: the target's root, then its working directory within it.
            for (call, r) in [
                (
                    format!("fchdir({})", root.as_raw_fd()),
                    nix::unistd::fchdir(&root),
                ),
                ("chroot(\".\")".to_string(), nix::unistd::chroot(".")),
                (
                    format!("fchdir({})", cwd.as_raw_fd()),
                    nix::unistd::fchdir(&cwd),
                ),
            ] {
                trace::syscall(format!("{call} = {}", errno_result(&r)));
                r.with_context(|| call.clone())?;
            }
            let after = ns::of_self().context("reading /proc/self/ns inside")?;
            Ok(Inside {
                before,
                after,
                entered: entered_for_child,
                getpid: nix::unistd::getpid().as_raw(),
                getppid: nix::unistd::getppid().as_raw(),
                hostname_before,
                hostname_after: hostname(),
                root_before,
                root_after: ls_root(),
                ps: procs::table_at(Path::new("/proc")).unwrap_or_default(),
            })
        })();
        let ok = result.is_ok();
        io.send(&Report {
            trace: trace::take(),
            result: result.map_err(|e| format!("{e:#}")),
        });
        if !ok {
            return 1;
        }
        // Stay inside until told to go, or until nslab has gone.
        let _ = io.wait_order();
        0
    });
    if let Ok(child) = &forked {
        trace::syscall(format!(
            "fork() = {}    # born in the PID namespace entered above",
            child.pid
        ));
    }
    if let Some(home) = &home {
        if let Err(e) = setns_traced(home, NsKind::Pid) {
            // Every later child would be born in the container: stop here.
            drop(forked);
            return Err(e.context("returning to nslab's own PID namespace"));
        }
    }
    let mut child = forked?;
    let report: Report<Inside> = child.recv(Duration::from_secs(10))?;
    trace::extend(in_child(child.pid.as_raw(), report.trace));
    let inside = report
        .result
        .map_err(|e| anyhow::anyhow!("joining the namespaces of PID {pid}: {e}"))?;
    Ok(Joiner {
        host_pid: child.pid.as_raw(),
        child,
        inside,
    })
}
