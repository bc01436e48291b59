//! The container's /dev, as runc's default makes it: a tmpfs with six device nodes (null,
//! zero, full, random, urandom, tty), a devpts of its own with its ptmx (so a terminal
//! opened inside is numbered apart from the host's), a /dev/shm, and the usual links.
//! No other device is reachable: every other mount is `nodev`.
//!
//! Made by PID 1 after pivot_root, so `/dev` is looked up inside the container's root.

use super::{q, traced, StartError};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{Mode, SFlag};
use std::path::Path;

/// /dev, if the root has one.
pub fn setup() -> Result<(), StartError> {
    let dev = Path::new("/dev");
    if !dev.is_dir() {
        return Ok(());
    }
    traced(
        "mount tmpfs /dev",
        "mount(\"tmpfs\", \"/dev\", \"tmpfs\", MS_NOSUID|MS_STRICTATIME, \"mode=755,size=65536k\")"
            .into(),
        mount(
            Some("tmpfs"),
            dev,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
            Some("mode=755,size=65536k"),
        ),
    )?;
    let old = nix::sys::stat::umask(Mode::empty());
    let made = nodes_and_dirs(dev);
    nix::sys::stat::umask(old);
    made?;
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        let p = dev.join(link);
        traced(
            "symlink",
            format!("symlink({target:?}, {})", q(&p)),
            nix::unistd::symlinkat(target, nix::fcntl::AT_FDCWD, &p),
        )?;
    }
    traced(
        "mount devpts",
        "mount(\"devpts\", \"/dev/pts\", \"devpts\", MS_NOSUID|MS_NOEXEC, \
         \"newinstance,ptmxmode=0666,mode=0620,gid=5\")"
            .into(),
        mount(
            Some("devpts"),
            &dev.join("pts"),
            Some("devpts"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
        ),
    )?;
    traced(
        "mount tmpfs /dev/shm",
        "mount(\"shm\", \"/dev/shm\", \"tmpfs\", MS_NOSUID|MS_NODEV|MS_NOEXEC, \
         \"mode=1777,size=65536k\")"
            .into(),
        mount(
            Some("shm"),
            &dev.join("shm"),
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("mode=1777,size=65536k"),
        ),
    )
}

/// The device nodes (0666) and the mount points of devpts and shm, under umask 0.
fn nodes_and_dirs(dev: &Path) -> Result<(), StartError> {
    let nodes: [(&str, u64, u64); 6] = [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ];
    for (name, major, minor) in nodes {
        let p = dev.join(name);
        let dev_t = nix::sys::stat::makedev(major, minor);
        traced(
            "mknod",
            format!("mknod({}, S_IFCHR|0666, makedev({major}, {minor}))", q(&p)),
            nix::sys::stat::mknod(&p, SFlag::S_IFCHR, Mode::from_bits_truncate(0o666), dev_t),
        )?;
    }
    for (name, mode) in [("pts", 0o755), ("shm", 0o1777)] {
        let p = dev.join(name);
        traced(
            "mkdir",
            format!("mkdir({}, {mode:#o})", q(&p)),
            nix::unistd::mkdir(&p, Mode::from_bits_truncate(mode)),
        )?;
    }
    Ok(())
}
