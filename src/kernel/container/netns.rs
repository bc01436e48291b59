//! The container's own network namespace, with only `lo`, up.
//!
//! Making a network namespace is the dearest part of a container's start (the kernel
//! registers every protocol's per-namespace state and sysctl tables). Asked for in PID 1's
//! clone(2), it is made by nslab before PID 1 exists, while nothing else can go on. So
//! `nslab run` clones PID 1 without CLONE_NEWNET, and nslab makes the namespace meanwhile,
//! on its own CPU while PID 1 builds its root on the other: `unshare(CLONE_NEWNET)`, `lo`
//! up, a descriptor on it, and back into its own namespace through a descriptor it kept.
//! PID 1 takes that descriptor from nslab with pidfd_getfd(2) (through a pidfd on nslab it
//! inherited) and joins with setns(2) before it mounts /sys, whose network entries are
//! those of the namespace that mounts it. Should that fail (pidfd_getfd is Linux 5.6), PID
//! 1 makes its namespace itself, as slowly as a clone would.

use super::{failure, traced, StartError};
use crate::kernel::trace;
use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sched::CloneFlags;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// nslab's side, prepared before the clone: a pidfd on itself, which PID 1 inherits.
pub(super) struct Handover {
    own_pidfd: OwnedFd,
}

impl Handover {
    /// A pidfd on nslab, if this kernel can hand a descriptor over through one (checked
    /// on nslab's own descriptor). `None`: PID 1 gets its namespace from its clone.
    pub(super) fn prepare() -> Option<Handover> {
        // SAFETY: pidfd_open(2) takes a PID and flags; the result is a new descriptor.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
        if fd < 0 {
            return None;
        }
        // SAFETY: a descriptor just returned to this process, owned from here on.
        let own_pidfd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        let copy = take(own_pidfd.as_raw_fd(), own_pidfd.as_raw_fd()).ok()?;
        drop(copy);
        Some(Handover { own_pidfd })
    }

    /// The pidfd's number, the same in PID 1 (a copy of nslab's descriptor table).
    pub(super) fn pidfd(&self) -> RawFd {
        self.own_pidfd.as_raw_fd()
    }

    /// In nslab: a new network namespace with `lo` up, nslab itself left in its own. The
    /// descriptor keeps the namespace until PID 1 has joined it.
    pub(super) fn make(&self) -> Result<OwnedFd> {
        let own = open_own("/proc/self/ns/net")?;
        crate::kernel::sys::unshare(CloneFlags::CLONE_NEWNET)?;
        let made = loopback_up()
            .map_err(anyhow::Error::from)
            .and_then(|()| open_own("/proc/self/ns/net"));
        let back = nix::sched::setns(&own, CloneFlags::CLONE_NEWNET);
        trace::syscall(format!(
            "setns({}, CLONE_NEWNET) = {}",
            own.as_raw_fd(),
            crate::kernel::sys::errno_result(&back)
        ));
        // nslab cannot be left in the container's network: nothing of the run goes on.
        back.context("setns back into nslab's own network namespace")?;
        made
    }
}

fn open_own(path: &str) -> Result<OwnedFd> {
    use nix::fcntl::{open, OFlag};
    let r = open(
        path,
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    );
    trace::syscall(format!(
        "openat(AT_FDCWD, {path:?}, O_RDONLY|O_CLOEXEC) = {}",
        match &r {
            Ok(fd) => fd.as_raw_fd().to_string(),
            Err(e) => format!("-1 {}", crate::kernel::sys::errno_text(*e)),
        }
    ));
    r.with_context(|| format!("opening {path}"))
}

/// pidfd_getfd(2): a copy of descriptor `fd` of the process `pidfd` refers to.
fn take(pidfd: RawFd, fd: RawFd) -> nix::Result<OwnedFd> {
    // SAFETY: pidfd_getfd(2) takes two descriptors and flags; the result is a new descriptor.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, fd, 0) };
    // SAFETY: on success, a descriptor just made for this process.
    Errno::result(r).map(|fd| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// In PID 1: join the namespace nslab made, its descriptor `fd` taken through `pidfd`;
/// failing that, a namespace of its own.
pub(super) fn join(pidfd: RawFd, fd: RawFd) -> Result<(), StartError> {
    let taken = take(pidfd, fd);
    trace::syscall(format!(
        "pidfd_getfd({pidfd}, {fd}, 0) = {}",
        match &taken {
            Ok(ns) => ns.as_raw_fd().to_string(),
            Err(e) => format!("-1 {}", crate::kernel::sys::errno_text(*e)),
        }
    ));
    // SAFETY: pidfd is the inherited descriptor on nslab, used only here.
    drop(unsafe { OwnedFd::from_raw_fd(pidfd) });
    match taken {
        Ok(ns) => traced(
            "setns",
            format!("setns({}, CLONE_NEWNET)", ns.as_raw_fd()),
            nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET),
        ),
        Err(_) => of_its_own(),
    }
}

/// In PID 1: a network namespace of its own, `lo` up.
pub(super) fn of_its_own() -> Result<(), StartError> {
    traced(
        "unshare",
        "unshare(CLONE_NEWNET)".into(),
        nix::sched::unshare(CloneFlags::CLONE_NEWNET),
    )?;
    loopback_up()
}

/// `ip link set lo up`, with the oldest interface for it: SIOCSIFFLAGS on a socket. A new
/// network namespace has only `lo`, down: up, it gives 127.0.0.1.
pub(super) fn loopback_up() -> Result<(), StartError> {
    let call = "socket(AF_INET, SOCK_DGRAM|SOCK_CLOEXEC, 0)";
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    );
    trace::syscall(match &sock {
        Ok(fd) => format!("{call} = {}", fd.as_raw_fd()),
        Err(e) => format!("{call} = -1 {e} ({})", e.desc()),
    });
    let sock = sock.map_err(|e| failure("socket", format!("{call}: {}", e.desc()), Some(e)))?;
    #[repr(C)]
    struct IfReq {
        name: [u8; 16],
        flags: libc::c_short,
        pad: [u8; 22],
    }
    let mut req = IfReq {
        name: [0; 16],
        flags: (libc::IFF_UP | libc::IFF_LOOPBACK | libc::IFF_RUNNING) as libc::c_short,
        pad: [0; 22],
    };
    req.name[..2].copy_from_slice(b"lo");
    // SAFETY: an ifreq-sized buffer, the name NUL-terminated.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &mut req) };
    traced(
        "ioctl SIOCSIFFLAGS",
        format!(
            "ioctl({}, SIOCSIFFLAGS, {{ifr_name=\"lo\", ifr_flags=IFF_UP|IFF_LOOPBACK|IFF_RUNNING}})",
            sock.as_raw_fd()
        ),
        Errno::result(r).map(drop),
    )
}
