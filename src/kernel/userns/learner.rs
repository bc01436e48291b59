//! The learner's process: the learner's IDs for good, then the process inside forked and
//! its maps written from outside, as ordered.

use super::inside::inside_main;
use super::orders::{reply, Order};
use super::{flags_of, rearm, MapFile, Outcome, Who};
use crate::kernel::sys::{self, errno_result, errno_text, ChildIo};
use crate::kernel::trace;
use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Gid, Pid, Uid};
use std::os::fd::AsRawFd;

/// Under sudo: become the learner for good, as `setpriv --reuid --regid --init-groups`
/// would, before anything else is done. Without root there is nothing to drop.
fn become_learner(who: &Who, parent: Pid) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let gid = Gid::from_raw(who.gid);
    let uid = Uid::from_raw(who.uid);
    let r = nix::unistd::setgroups(&[gid]);
    trace::syscall(format!(
        "setgroups(1, [{}]) = {}",
        who.gid,
        errno_result(&r)
    ));
    r.context("setgroups")?;
    let r = nix::unistd::setresgid(gid, gid, gid);
    trace::syscall(format!(
        "setresgid({g}, {g}, {g}) = {}",
        errno_result(&r),
        g = who.gid
    ));
    r.context("setresgid")?;
    let r = nix::unistd::setresuid(uid, uid, uid);
    trace::syscall(format!(
        "setresuid({u}, {u}, {u}) = {}",
        errno_result(&r),
        u = who.uid
    ));
    r.context("setresuid")?;
    // Root must be gone for good: a saved ID of 0 would let it come back.
    if nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        bail!("still able to become root after setresuid");
    }
    rearm(parent);
    // A process whose credentials changed is not dumpable, which makes its /proc files
    // (and its children's: their uid_map) root's. This one holds nothing of root's but a
    // copy of nslab's memory, read before any secret was.
    let _ = nix::sys::prctl::set_dumpable(true);
    Ok(())
}

/// The learner's process: become the learner, fork the process inside, then write its
/// maps and try things as ordered.
pub(super) fn learner_main(
    io: &mut ChildIo,
    who: &Who,
    parent: Pid,
    flags: i32,
    inside: ChildIo,
) -> i32 {
    trace::take();
    if let Err(e) = become_learner(who, parent) {
        reply::<i32>(io, Err(e));
        return 1;
    }
    let me = nix::unistd::getpid();
    // SAFETY: single-threaded; the child serves orders and leaves through _exit.
    let child = match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            sys::child_setup(Some(me));
            let mut inside = inside;
            inside_main(&mut inside, me, flags);
            unsafe { libc::_exit(0) };
        }
        Ok(ForkResult::Parent { child }) => {
            drop(inside);
            trace::syscall(format!("fork() = {child}"));
            child
        }
        Err(e) => {
            reply::<i32>(io, Err(anyhow!("fork: {}", e.desc())));
            return 1;
        }
    };
    reply(io, Ok(child.as_raw()));
    while let Some(line) = io.wait_order() {
        match serde_json::from_str::<Order>(&line) {
            Ok(Order::WriteMap { file, text }) => reply(io, Ok(write_map(child, file, &text))),
            Ok(Order::TryUnshare { flags }) => reply(io, Ok(try_unshare(flags_of(flags)))),
            Ok(Order::RunIdTool { tool, args }) => reply(io, run_id_tool(&tool, &args)),
            _ => reply::<()>(io, Err(anyhow!("not an order for the learner's process"))),
        }
    }
    let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
    let _ = waitpid(child, None);
    0
}

/// Write `text` to /proc/CHILD/FILE as `echo TEXT > /proc/PID/FILE` does.
fn write_map(child: Pid, file: MapFile, text: &str) -> Outcome {
    use std::io::Write;
    let path = format!("/proc/{child}/{}", file.file());
    let f = std::fs::OpenOptions::new().write(true).open(&path);
    let f = match f {
        Ok(f) => f,
        Err(e) => {
            let errno = Errno::from_raw(e.raw_os_error().unwrap_or(0));
            trace::syscall(format!(
                "openat(AT_FDCWD, \"{path}\", O_WRONLY) = -1 {}",
                errno_text(errno)
            ));
            return Outcome::of::<()>(&Err(errno));
        }
    };
    trace::syscall(format!(
        "openat(AT_FDCWD, \"{path}\", O_WRONLY) = {}",
        f.as_raw_fd()
    ));
    let line = format!("{text}\n");
    let r = (&f)
        .write(line.as_bytes())
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)));
    trace::syscall(format!(
        "write({}, {:?}, {}) = {}",
        f.as_raw_fd(),
        line,
        line.len(),
        match &r {
            Ok(n) => n.to_string(),
            Err(e) => format!("-1 {}", errno_text(*e)),
        }
    ));
    Outcome::of(&r)
}

/// unshare(2) tried in a throwaway child, so that the caller stays where it is.
fn try_unshare(flags: CloneFlags) -> Outcome {
    // SAFETY: single-threaded; the child only calls unshare and leaves through _exit.
    let r = match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            let code = match nix::sched::unshare(flags) {
                Ok(()) => 0,
                Err(e) => e as i32,
            };
            unsafe { libc::_exit(code) };
        }
        Ok(ForkResult::Parent { child }) => match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, 0)) => Ok(()),
            Ok(WaitStatus::Exited(_, code)) => Err(Errno::from_raw(code)),
            _ => Err(Errno::ECHILD),
        },
        Err(e) => Err(e),
    };
    trace::syscall(format!(
        "unshare({}) = {}",
        sys::clone_flag_names(flags),
        errno_result(&r)
    ));
    Outcome::of(&r)
}

/// newuidmap or newgidmap (shadow's set-user-ID helpers), run as the learner.
fn run_id_tool(tool: &str, args: &[String]) -> Result<Outcome> {
    if !matches!(tool, "newuidmap" | "newgidmap") {
        bail!("{tool} is not one of newuidmap, newgidmap");
    }
    let path =
        crate::kernel::machine::which(tool).with_context(|| format!("{tool} is not installed"))?;
    let out = std::process::Command::new(&path)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("running {}", path.display()))?;
    let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Ok(Outcome {
        ok: out.status.success(),
        error: (!out.status.success()).then(|| {
            if said.is_empty() {
                format!("{tool} ended with {}", out.status)
            } else {
                said
            }
        }),
    })
}
