//! /proc and /sys as a runtime leaves them: the paths through which root could read the
//! kernel's memory or secrets, or change the host's kernel, masked or read-only.
//!
//! The lists are runc's (`runc spec`: `maskedPaths`, `readonlyPaths`). A masked file gets
//! /dev/null bound over it and a masked directory an empty read-only tmpfs, so reading
//! either finds nothing; a read-only path is bound on itself and remounted read-only, as
//! /proc/sys is: `sysctl -w` inside would otherwise change the host's kernel (most of
//! /proc/sys is not per namespace). /sys is a sysfs of the container's own network
//! namespace, read-only. Every mount here is `nosuid,nodev,noexec`.
//!
//! PID 1 makes these after pivot_root, so each path is looked up inside the container's
//! root: a symlink there (`proc` → `/`) leads to the container's own `/`, never the host's.

use super::{failure, q, traced, StartError};
use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use std::path::Path;

/// runc's `maskedPaths`.
pub const MASKED: [&str; 10] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
];

/// runc's `readonlyPaths`.
pub const READ_ONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

const SAFE: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

/// /proc, its read-only and masked paths. /dev (with /dev/null) is mounted already.
pub fn proc() -> Result<(), StartError> {
    crate::kernel::sys::mount_proc(Path::new("/proc"))
        .map_err(|e| failure("mount proc", format!("{e:#}"), None))?;
    for p in READ_ONLY {
        read_only(Path::new(p))?;
    }
    for p in MASKED.iter().filter(|p| p.starts_with("/proc/")) {
        mask(Path::new(p))?;
    }
    Ok(())
}

/// /sys if the root has one, read-only, and its masked paths.
pub fn sys() -> Result<(), StartError> {
    let sys = Path::new("/sys");
    if sys.is_dir() {
        traced(
            "mount sysfs",
            "mount(\"sysfs\", \"/sys\", \"sysfs\", MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC, NULL)"
                .into(),
            mount(
                Some("sysfs"),
                sys,
                Some("sysfs"),
                SAFE | MsFlags::MS_RDONLY,
                None::<&str>,
            ),
        )?;
    }
    if sys.is_dir() {
        for p in MASKED.iter().filter(|p| p.starts_with("/sys/")) {
            mask(Path::new(p))?;
        }
    }
    Ok(())
}

/// What is at `path`: a directory, something else, or nothing (not made by this kernel).
fn kind(path: &Path) -> Option<bool> {
    std::fs::metadata(path).ok().map(|m| m.is_dir())
}

/// `mount --bind P P && mount -o remount,bind,ro P`.
fn read_only(path: &Path) -> Result<(), StartError> {
    if kind(path).is_none() {
        return Ok(());
    }
    traced(
        "mount --bind",
        format!("mount({0}, {0}, NULL, MS_BIND, NULL)", q(path)),
        mount(
            Some(path),
            path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        ),
    )?;
    traced(
        "mount -o remount,ro",
        format!(
            "mount(NULL, {}, NULL, MS_REMOUNT|MS_BIND|MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC, NULL)",
            q(path)
        ),
        mount(
            None::<&str>,
            path,
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | SAFE,
            None::<&str>,
        ),
    )
}

/// /dev/null over a file, an empty read-only tmpfs over a directory.
fn mask(path: &Path) -> Result<(), StartError> {
    match kind(path) {
        None => Ok(()),
        Some(true) => traced(
            "mount tmpfs (mask)",
            format!(
                "mount(\"tmpfs\", {}, \"tmpfs\", MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC, NULL)",
                q(path)
            ),
            mount(
                Some("tmpfs"),
                path,
                Some("tmpfs"),
                SAFE | MsFlags::MS_RDONLY,
                None::<&str>,
            ),
        ),
        Some(false) => traced(
            "mount --bind /dev/null (mask)",
            format!("mount(\"/dev/null\", {}, NULL, MS_BIND, NULL)", q(path)),
            mount(
                Some("/dev/null"),
                path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            ),
        ),
    }
}

/// `nodev` on `root` and every mount below it (mount_setattr(2), Linux 5.12): a device
/// node in the root filesystem (made inside, or there from the start) opens nothing.
/// Mounts made afterwards (/dev) have their own flags.
pub fn nodev_below(root: &Path) -> Result<(), StartError> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr {
        attr_set: libc::MOUNT_ATTR_NODEV,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let c = std::ffi::CString::new(root.as_os_str().as_encoded_bytes())
        .map_err(|_| failure("mount_setattr", "the root's path holds a NUL byte", None))?;
    // SAFETY: a NUL-terminated path and a mount_attr of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    traced(
        "mount_setattr",
        format!(
            "mount_setattr(AT_FDCWD, {}, AT_RECURSIVE, {{attr_set=MOUNT_ATTR_NODEV}}, 32)",
            q(root)
        ),
        Errno::result(r).map(drop),
    )
}
