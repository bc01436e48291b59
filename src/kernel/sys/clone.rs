//! Children born in new namespaces (clone), and in a cgroup (clone3).

use super::channel::{self, ChildIo};
use super::fork::{adopt_started, child_setup, run_and_exit, Forked};
use super::strace::clone_flag_names;
use crate::kernel::trace;
use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::unistd::Pid;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

/// The stack a [`clone_recorded`] child runs on: its own copy of nslab's memory (no
/// CLONE_VM), so this only has to be large enough for ordinary Rust code; untouched
/// pages cost nothing.
const CLONE_STACK_BYTES: usize = 1 << 20;

/// [`fork_recorded`] through clone(2) with `flags`: the child is born in the new
/// namespaces those ask for (for CLONE_NEWPID, as PID 1 of the new PID namespace), with
/// SIGCHLD to nslab when it ends, as after a fork. Recorded in the trace as strace shows it.
/// The child starts at once and is put on the ledger right after (see [`child_main`]).
///
/// With `cgroup` (a cgroup v2 directory), the child is born inside it (clone3 with
/// CLONE_INTO_CGROUP): it never has to move there, so it skips the wait a `cgroup.procs`
/// write has (the kernel takes a system-wide lock for writing, after an RCU grace period).
/// Returns whether it was born there: a kernel older than 5.7, or a seccomp filter that
/// refuses clone3, gets a plain clone, and the caller has it join by writing.
///
/// `on_born` runs in the parent the moment the child exists, before anything else.
pub fn clone_recorded(
    flags: nix::sched::CloneFlags,
    cgroup: Option<BorrowedFd>,
    on_born: impl FnOnce(Pid),
    body: impl FnOnce(&mut ChildIo) -> i32,
) -> Result<(Forked, bool)> {
    let mut on_born = Some(on_born);
    let (channel, io) = channel::channel("child")?;
    let parent_pid = nix::unistd::getpid();
    // Outside the new PID namespace, getppid() of its first process reads 0.
    let check_parent =
        (!flags.contains(nix::sched::CloneFlags::CLONE_NEWPID)).then_some(parent_pid);
    let mut child_part = Some((io, body));
    let parent_ends = channel.raw_fds();
    if let Some(fd) = cgroup {
        let args = CloneArgs {
            flags: flags.bits() as u32 as u64 | CLONE_INTO_CGROUP,
            exit_signal: libc::SIGCHLD as u64,
            cgroup: fd.as_raw_fd() as u64,
            ..CloneArgs::default()
        };
        // SAFETY: as fork: nslab does not run threads while cloning, no CLONE_VM and no
        // new stack, so the child continues here in its own copy of the memory.
        let r = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &args as *const CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            )
        };
        if r == 0 {
            child_main(child_part.take(), &parent_ends, check_parent);
        }
        if r > 0 {
            if let Some(f) = on_born.take() {
                f(Pid::from_raw(r as i32));
            }
        }
        let result = if r > 0 {
            Ok(Pid::from_raw(r as i32))
        } else {
            Err(Errno::last())
        };
        trace::syscall(format!(
            "clone3({{flags={}|CLONE_INTO_CGROUP, exit_signal=SIGCHLD, cgroup={}}}, {}) = {}",
            clone_flag_names(flags),
            fd.as_raw_fd(),
            std::mem::size_of::<CloneArgs>(),
            match &result {
                Ok(pid) => pid.to_string(),
                Err(e) => format!("-1 {} ({})", e, e.desc()),
            }
        ));
        match result {
            Ok(child) => {
                drop(child_part);
                return adopt_started(child, channel).map(|f| (f, true));
            }
            // No clone3 (before 5.3, or filtered), or no CLONE_INTO_CGROUP (before 5.7).
            Err(Errno::ENOSYS | Errno::E2BIG | Errno::EINVAL | Errno::EPERM) => {}
            Err(e) => {
                return Err(anyhow::Error::from(e)).with_context(|| {
                    format!("clone3({}|CLONE_INTO_CGROUP)", clone_flag_names(flags))
                })
            }
        }
    }
    let mut stack = vec![0u8; CLONE_STACK_BYTES];
    let run =
        Box::new(move || -> isize { child_main(child_part.take(), &parent_ends, check_parent) });
    // SAFETY: nslab does not run threads while cloning, and without CLONE_VM the child has
    // its own copy of the memory, as after fork; it leaves through _exit.
    let r = unsafe { nix::sched::clone(run, &mut stack, flags, Some(libc::SIGCHLD)) };
    let call = format!(
        "clone(flags={}|SIGCHLD) = {}",
        clone_flag_names(flags),
        match &r {
            Ok(pid) => pid.to_string(),
            Err(e) => format!("-1 {} ({})", e, e.desc()),
        }
    );
    trace::syscall(call);
    if let (Ok(pid), Some(f)) = (&r, on_born.take()) {
        f(*pid);
    }
    let child = r.with_context(|| format!("clone({})", clone_flag_names(flags)))?;
    adopt_started(child, channel).map(|f| (f, false))
}

/// CLONE_INTO_CGROUP (Linux 5.7), which nix and libc do not spell as a 64-bit flag.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` of clone3(2), up to its `cgroup` field (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// The child of [`clone_recorded`]: run, leave.
///
/// Unlike a [`fork_recorded`] child it does not wait for nslab to put it on the ledger:
/// it cannot outlive nslab anyway (PR_SET_PDEATHSIG, and the check below for a nslab that
/// died before that took hold), and a child that sleeps until nslab wakes it is often
/// woken on nslab's CPU, where the two then take turns instead of working side by side.
fn child_main(
    part: Option<(ChildIo, impl FnOnce(&mut ChildIo) -> i32)>,
    parent_ends: &[RawFd],
    check_parent: Option<Pid>,
) -> ! {
    let Some((mut io, body)) = part else {
        unsafe { libc::_exit(1) };
    };
    // Its copies of nslab's ends closed, the order pipe reads as ended once nslab has
    // gone, even if that was before PR_SET_PDEATHSIG took hold: checked once that has.
    for fd in parent_ends {
        unsafe { libc::close(*fd) };
    }
    child_setup(check_parent);
    if io.parent_gone() {
        unsafe { libc::_exit(1) };
    }
    run_and_exit(&mut io, body);
}
