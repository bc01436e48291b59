//! User namespaces read from nslab's side: a process's IDs and maps, the owner of a
//! namespace, the subordinate IDs, whether a user without privileges may make one.

use super::{MapFile, Who};
use crate::kernel::ids::{self, StatusIds};
use crate::kernel::ns::NsKind;
use crate::kernel::sys::errno_text;
use crate::kernel::trace;
use anyhow::{Context, Result};
use nix::errno::Errno;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The IDs of process `pid` as nslab's /proc shows them (the host's, from outside).
pub fn status_of(pid: i32) -> Option<StatusIds> {
    ids::parse_status(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// /proc/PID/uid_map or gid_map as nslab reads it.
pub fn map_of(pid: i32, file: MapFile) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/{}", file.file())).ok()
}

/// The owner of the file that process `pid` has open as `fd`, seen from nslab's user
/// namespace (`stat -L /proc/PID/fd/FD`).
pub fn owner_of_fd(pid: i32, fd: i32) -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(format!("/proc/{pid}/fd/{fd}")).ok()?;
    Some((m.uid(), m.gid()))
}

/// NS_GET_USERNS (ioctl_ns(2)): `_IO(0xb7, 0x1)`.
const NS_GET_USERNS: libc::c_ulong = 0xb701;

/// The user namespace that owns process `pid`'s namespace of `kind` (its inode), as
/// ioctl(NS_GET_USERNS) on /proc/PID/ns/KIND answers (`lsns -o NS,ONS`).
pub fn owning_userns(pid: i32, kind: NsKind) -> Result<u64> {
    use nix::sys::stat::fstat;
    let path = format!("/proc/{pid}/ns/{}", kind.file());
    let f = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
    // SAFETY: an ioctl with no argument on a descriptor we own; it returns a new one.
    let fd = unsafe { libc::ioctl(f.as_raw_fd(), NS_GET_USERNS as _) };
    let r = if fd < 0 { Err(Errno::last()) } else { Ok(fd) };
    trace::syscall(format!(
        "ioctl({}, NS_GET_USERNS) = {}   # {path}",
        f.as_raw_fd(),
        match &r {
            Ok(fd) => fd.to_string(),
            Err(e) => format!("-1 {}", errno_text(*e)),
        }
    ));
    let fd = r.with_context(|| format!("ioctl(NS_GET_USERNS) on {path}"))?;
    // SAFETY: a descriptor just returned by the kernel, owned by nobody else.
    let owner = unsafe { OwnedFd::from_raw_fd(fd) };
    let st = fstat(&owner).context("fstat of the owning user namespace")?;
    Ok(st.st_ino)
}

/// /proc/sys/kernel/overflowuid: the UID shown for one that a namespace does not map.
pub fn overflow_uid() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/kernel/overflowuid")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The subordinate UID and GID ranges /etc/subuid and /etc/subgid give `who`.
pub fn subordinate_ranges(who: &Who) -> (Vec<ids::SubRange>, Vec<ids::SubRange>) {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    (
        ids::parse_subids(&read("/etc/subuid"), who.name.as_deref(), who.uid),
        ids::parse_subids(&read("/etc/subgid"), who.name.as_deref(), who.gid),
    )
}

/// Every `name:start:count` line of /etc/subuid, for a user's or Docker's (`dockremap`).
pub fn subuid_lines() -> Vec<String> {
    std::fs::read_to_string("/etc/subuid")
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Can a user without privileges make user namespaces here? `Err` says what stops it:
/// a sysctl set to 0 (Debian's unprivileged_userns_clone, user.max_user_namespaces,
/// Ubuntu's AppArmor restriction).
pub fn unprivileged_allowed() -> std::result::Result<(), String> {
    let number =
        |path: &str| -> Option<i64> { std::fs::read_to_string(path).ok()?.trim().parse().ok() };
    if number("/proc/sys/user/max_user_namespaces") == Some(0) {
        return Err("user.max_user_namespaces is 0".into());
    }
    if number("/proc/sys/kernel/unprivileged_userns_clone") == Some(0) {
        return Err("kernel.unprivileged_userns_clone is 0".into());
    }
    if number("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == Some(1) {
        return Err("kernel.apparmor_restrict_unprivileged_userns is 1 (AppArmor gives unconfined programs no capabilities in a new user namespace)".into());
    }
    Ok(())
}
