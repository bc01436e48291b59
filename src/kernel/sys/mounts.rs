//! Mounts a lesson makes and unmakes, and removing the trees nslab made.

use super::strace::errno_result;
use crate::kernel::{mountinfo, trace};
use anyhow::{Context, Result};
use nix::errno::Errno;
use std::path::Path;

/// Make every mount in this mount namespace private, so what follows does not propagate
/// back to the host (`mount --make-rprivate /`, which `unshare --mount` does too).
pub fn make_mounts_private() -> Result<()> {
    use nix::mount::{mount, MsFlags};
    let r = mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    );
    trace::syscall(format!(
        "mount(NULL, \"/\", NULL, MS_REC|MS_PRIVATE, NULL) = {}",
        errno_result(&r)
    ));
    r.context("making / private (mount --make-rprivate /)")
}

/// Mount a fresh procfs at `target` (`mount -t proc proc /proc`).
pub fn mount_proc(target: &Path) -> Result<()> {
    use nix::mount::{mount, MsFlags};
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let r = mount(Some("proc"), target, Some("proc"), flags, None::<&str>);
    trace::syscall(format!(
        "mount(\"proc\", \"{}\", \"proc\", MS_NOSUID|MS_NODEV|MS_NOEXEC, NULL) = {}",
        target.display(),
        errno_result(&r)
    ));
    r.with_context(|| format!("mounting proc on {}", target.display()))
}

/// Unmount `path` (lazily, so a busy mount still goes); not mounted counts as done.
pub fn unmount(path: &Path) -> Result<()> {
    use nix::mount::{umount2, MntFlags};
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("umount {}", path.display())),
    }
}

/// Remove a directory tree nslab made; already gone counts as done. Refuses to cross
/// into a mount (a rootfs with /proc still mounted) rather than delete through it.
pub fn remove_tree(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("stat {}", path.display())),
        Ok(_) => {}
    }
    let mounted = mountinfo::own().unwrap_or_default();
    for mp in mountinfo::points_under(&mounted, path) {
        unmount(&mp)?;
    }
    std::fs::remove_dir_all(path).with_context(|| format!("removing {}", path.display()))
}
