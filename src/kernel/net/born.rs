//! A helper child that opens sockets inside a network namespace for nslab.
//!
//! `clone(CLONE_VM|CLONE_VFORK|CLONE_FILES[|CLONE_NEWNET])`: the child shares nslab's
//! memory and descriptor table, is born in a new network namespace (or `setns`es into an
//! existing one), opens a netlink socket, a raw ICMP socket and `/proc/self/ns/net`
//! there, and exits. The descriptors it opened are already nslab's. nslab's own process
//! never changes namespace, and the child costs no copy of nslab's memory.
//!
//! CLONE_VFORK suspends nslab until the child has exited, a few system calls later, so
//! the child cannot outlive the call (not even if nslab is killed meanwhile: it finishes
//! its three calls and exits) and needs no ledger entry. It runs on a stack of its own
//! and makes raw system calls only: it shares memory with nslab's other threads.

use super::super::trace;
use anyhow::{bail, Context, Result};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

#[repr(C)]
struct Shared {
    /// Namespace to enter, or -1 to be born in a new one.
    enter: libc::c_int,
    netlink: libc::c_int,
    icmp: libc::c_int,
    nsfd: libc::c_int,
    /// Which call failed (1 setns, 2 netlink socket, 3 raw socket, 4 open), 0 for none.
    failed_at: libc::c_int,
    errno: libc::c_int,
}

extern "C" fn child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the Shared the parent keeps alive (it is suspended until we exit);
    // only raw system calls below, no allocation, no locks.
    unsafe {
        let s = &mut *(arg as *mut Shared);
        let fail = |s: &mut Shared, at| {
            s.failed_at = at;
            s.errno = *libc::__errno_location();
            1
        };
        if s.enter >= 0 && libc::setns(s.enter, libc::CLONE_NEWNET) != 0 {
            return fail(s, 1);
        }
        s.netlink = libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        );
        if s.netlink < 0 {
            return fail(s, 2);
        }
        s.icmp = libc::socket(
            libc::AF_INET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::IPPROTO_ICMP,
        );
        if s.icmp < 0 {
            return fail(s, 3);
        }
        s.nsfd = libc::open(
            c"/proc/self/ns/net".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        );
        if s.nsfd < 0 {
            return fail(s, 4);
        }
        0
    }
}

/// What the helper opened inside the namespace, now nslab's.
pub struct Born {
    pub pid: i32,
    pub netlink: OwnedFd,
    pub icmp: OwnedFd,
    /// The namespace itself (its /proc/self/ns/net): bind-mount it to name it.
    pub nsfd: OwnedFd,
}

fn own(fd: libc::c_int) -> Option<OwnedFd> {
    // SAFETY: a descriptor the child opened in our shared table, owned by nobody else.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Run the helper: in a new namespace (`enter: None`) or in the one `enter` refers to.
pub fn helper(enter: Option<RawFd>) -> Result<Born> {
    let mut s = Shared {
        enter: enter.unwrap_or(-1),
        netlink: -1,
        icmp: -1,
        nsfd: -1,
        failed_at: 0,
        errno: 0,
    };
    let mut stack = vec![0u8; 64 * 1024];
    // The stack grows down: hand over its (16-byte aligned) top.
    let top = (stack.as_mut_ptr() as usize + stack.len()) & !15;
    let mut flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_FILES | libc::SIGCHLD;
    let mut names = String::from("CLONE_VM|CLONE_VFORK|CLONE_FILES");
    if enter.is_none() {
        flags |= libc::CLONE_NEWNET;
        names.push_str("|CLONE_NEWNET");
    }
    // SAFETY: `child` only makes raw system calls on its own stack and writes `s`, which
    // outlives it: CLONE_VFORK returns only once the child has exited.
    let pid = unsafe {
        libc::clone(
            child,
            top as *mut libc::c_void,
            flags,
            &mut s as *mut Shared as *mut libc::c_void,
        )
    };
    if pid < 0 {
        let e = nix::errno::Errno::last();
        trace::syscall(format!(
            "clone({names}|SIGCHLD) = -1 {}",
            crate::kernel::sys::errno_text(e)
        ));
        return Err(e).context("clone(CLONE_NEWNET) for a helper child");
    }
    trace::syscall(format!("clone({names}|SIGCHLD) = {pid}"));
    let mut status = 0;
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    drop(stack);
    let (netlink, icmp, nsfd) = (own(s.netlink), own(s.icmp), own(s.nsfd));
    let say = |call: &str, fd: &Option<OwnedFd>| {
        if let Some(fd) = fd {
            trace::syscall(format!(
                "[child {pid}] {call} = {}",
                std::os::fd::AsRawFd::as_raw_fd(fd)
            ));
        }
    };
    if let Some(fd) = enter {
        trace::syscall(format!(
            "[child {pid}] setns({fd}, CLONE_NEWNET) = {}",
            if s.failed_at == 1 {
                "-1".to_string()
            } else {
                "0".to_string()
            }
        ));
    }
    say(
        "socket(AF_NETLINK, SOCK_DGRAM|SOCK_CLOEXEC, NETLINK_ROUTE)",
        &netlink,
    );
    say(
        "socket(AF_INET, SOCK_RAW|SOCK_CLOEXEC, IPPROTO_ICMP)",
        &icmp,
    );
    say(
        "openat(AT_FDCWD, \"/proc/self/ns/net\", O_RDONLY|O_CLOEXEC)",
        &nsfd,
    );
    if s.failed_at != 0 {
        let e = nix::errno::Errno::from_raw(s.errno);
        let what = [
            "",
            "setns(CLONE_NEWNET)",
            "socket(AF_NETLINK)",
            "socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)",
            "open /proc/self/ns/net",
        ][s.failed_at as usize % 5];
        trace::syscall(format!(
            "[child {pid}] {what} = -1 {}",
            crate::kernel::sys::errno_text(e)
        ));
        bail!("the helper child's {what} failed: {} ({e:?})", e.desc());
    }
    match (netlink, icmp, nsfd) {
        (Some(netlink), Some(icmp), Some(nsfd)) => Ok(Born {
            pid,
            netlink,
            icmp,
            nsfd,
        }),
        _ => bail!("the helper child {pid} ended without opening its sockets (status {status})"),
    }
}
