//! The process inside: unshare(2) into the new user namespace, then what it sees and may
//! do there, as ordered.

use super::orders::{receive, reply, Order};
use super::{flags_of, rearm, LinksUp, Outcome, SelfIds, TmpFile};
use crate::kernel::ids;
use crate::kernel::ns::{self, NsKind};
use crate::kernel::procs::{self, ProcInfo};
use crate::kernel::sys::{self, errno_result, errno_text, ChildIo};
use crate::kernel::trace;
use anyhow::{anyhow, bail, Context, Result};
use nix::sched::CloneFlags;
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The process inside: unshare(2) with `flags`, say so, then serve orders.
pub(super) fn inside_main(io: &mut ChildIo, parent: Pid, flags: i32) {
    trace::take();
    let me = nix::unistd::getpid().as_raw();
    let before = ns::of_pid(me);
    let unshared = sys::unshare(flags_of(flags));
    rearm(parent);
    let after = ns::of_pid(me);
    let ready = unshared.is_ok();
    reply(
        io,
        unshared.and_then(|_| match (before, after) {
            (Some(b), Some(a)) => Ok((b, a)),
            _ => Err(anyhow!("cannot read its own /proc/PID/ns")),
        }),
    );
    if !ready {
        return;
    }
    // Descriptors of files made without a name, kept open: closing one removes the file.
    let mut kept: Vec<OwnedFd> = Vec::new();
    while let Some(line) = io.wait_order() {
        match serde_json::from_str::<Order>(&line) {
            Ok(Order::Whoami) => reply(io, whoami()),
            Ok(Order::TmpFile) => reply(io, tmpfile(&mut kept)),
            Ok(Order::TryOpen { path }) => reply(io, Ok(try_open(&path))),
            Ok(Order::TryMountTmpfs { target }) => reply(io, Ok(try_mount_tmpfs(&target))),
            Ok(Order::Unshare { flags }) => {
                let flags = flags_of(flags);
                let r = nix::sched::unshare(flags);
                trace::syscall(format!(
                    "unshare({}) = {}",
                    sys::clone_flag_names(flags),
                    errno_result(&r)
                ));
                if r.is_ok() && flags.contains(CloneFlags::CLONE_NEWNS) {
                    let _ = sys::make_mounts_private();
                }
                reply(io, Ok(Outcome::of(&r)));
            }
            Ok(Order::Pid1Proc) => reply(io, pid1_proc()),
            Ok(Order::LinksUp) => reply(io, links_up()),
            _ => reply::<()>(io, Err(anyhow!("not an order for the process inside"))),
        }
    }
}

fn read(path: &str) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {path}"))
}

fn whoami() -> Result<SelfIds> {
    let status = read("/proc/self/status")?;
    Ok(SelfIds {
        status: ids::parse_status(&status).context("an unreadable /proc/self/status")?,
        uid_map: read("/proc/self/uid_map")?,
        gid_map: read("/proc/self/gid_map")?,
        setgroups: read("/proc/self/setgroups")?.trim().to_string(),
        user_ns: ns::link(nix::unistd::getpid().as_raw(), NsKind::User).inode,
    })
}

/// A file with no name (O_TMPFILE) in /tmp (or /dev/shm): it exists while its descriptor
/// is open, and is gone with the process, leaving nothing behind.
fn tmpfile(kept: &mut Vec<OwnedFd>) -> Result<TmpFile> {
    use nix::fcntl::{open, OFlag};
    use nix::sys::stat::{fstat, Mode};
    let mut last = None;
    for dir in ["/tmp", "/dev/shm"] {
        let r = open(
            dir,
            OFlag::O_TMPFILE | OFlag::O_RDWR | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        );
        trace::syscall(format!(
            "openat(AT_FDCWD, \"{dir}\", O_RDWR|O_CLOEXEC|O_TMPFILE, 0600) = {}",
            match &r {
                Ok(fd) => fd.as_raw_fd().to_string(),
                Err(e) => format!("-1 {}", errno_text(*e)),
            }
        ));
        match r {
            Ok(fd) => {
                let st = fstat(&fd).context("fstat")?;
                trace::syscall(format!(
                    "fstat({}, {{st_mode=S_IFREG|0600, st_uid={}, st_gid={}, ...}}) = 0",
                    fd.as_raw_fd(),
                    st.st_uid,
                    st.st_gid
                ));
                let made = TmpFile {
                    fd: fd.as_raw_fd(),
                    dir: PathBuf::from(dir),
                    uid: st.st_uid,
                    gid: st.st_gid,
                };
                kept.push(fd);
                return Ok(made);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(anyhow!(
        "no place for a file without a name: {}",
        last.map(errno_text).unwrap_or_default()
    ))
}

fn try_open(path: &Path) -> Outcome {
    let r = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    );
    trace::syscall(format!(
        "openat(AT_FDCWD, \"{}\", O_RDONLY|O_CLOEXEC) = {}",
        path.display(),
        match &r {
            Ok(fd) => fd.as_raw_fd().to_string(),
            Err(e) => format!("-1 {}", errno_text(*e)),
        }
    ));
    Outcome::of(&r)
}

fn try_mount_tmpfs(target: &Path) -> Outcome {
    use nix::mount::{mount, MsFlags};
    let r = mount(
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        None::<&str>,
    );
    trace::syscall(format!(
        "mount(\"tmpfs\", \"{}\", \"tmpfs\", MS_NOSUID|MS_NODEV, NULL) = {}",
        target.display(),
        errno_result(&r)
    ));
    Outcome::of(&r)
}

/// After unshare(CLONE_NEWPID|CLONE_NEWNS): fork the namespace's PID 1, which mounts a
/// /proc of its own and lists what it shows (`unshare --pid --fork --mount-proc ps`), then
/// ends. Its mount goes into a mount namespace of its own, so this process's /proc stays.
fn pid1_proc() -> Result<Vec<ProcInfo>> {
    let (mut channel, mut io) = sys::channel("the namespace's PID 1")?;
    // SAFETY: single-threaded; the child mounts, reads, sends and leaves through _exit.
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            drop(channel);
            sys::child_setup(None);
            trace::take();
            let r = sys::unshare(CloneFlags::CLONE_NEWNS)
                .and_then(|_| sys::mount_proc(Path::new("/proc")))
                .and_then(|_| procs::table_at(Path::new("/proc")).map_err(anyhow::Error::from));
            reply(&mut io, r);
            unsafe { libc::_exit(0) };
        }
        Ok(ForkResult::Parent { child }) => {
            drop(io);
            trace::syscall(format!("fork() = {child}   # PID 1 inside"));
            let r = receive(&mut channel);
            let _ = waitpid(child, None);
            r
        }
        Err(e) => bail!("fork: {}", e.desc()),
    }
}

fn links_up() -> Result<LinksUp> {
    let mut rtnl = crate::kernel::net::host()?;
    let before = rtnl.links()?;
    let up = rtnl.set_up("lo", true);
    let lo_up = Outcome {
        ok: up.is_ok(),
        error: up.err().map(|e| format!("{e:#}")),
    };
    let after = rtnl.links()?;
    Ok(LinksUp {
        before,
        lo_up,
        after,
    })
}
