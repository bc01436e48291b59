//! PID 1's duties, for `nslab run` (as `docker run --init` adds tini): the command runs as
//! PID 2, and PID 1 stays behind to do what the first process of a PID namespace must.
//!
//! - The kernel delivers a signal to the first process of a PID namespace only if it has
//!   a handler for it (SIGKILL and SIGSTOP from outside aside): `sleep` as PID 1 ignores
//!   Ctrl-C, `kill` and `docker stop` alike. As PID 2 it is an ordinary process; the
//!   terminal's signals reach it directly (it is in the terminal's foreground group), and
//!   PID 1 passes on every other signal sent to it.
//! - A process whose parent dies is given to PID 1, which must wait for it when it ends,
//!   or it stays a zombie, and every zombie counts against `pids.max`.
//! - When the command ends PID 1 exits with its status (128 + N if signal N ended it), and
//!   the kernel ends every process left in the namespace.
//!
//! PID 1 is nslab's code, so it closes every descriptor but 0, 1 and 2, keeps no more
//! capabilities than the command, and is not dumpable: without CAP_SYS_PTRACE no process
//! in the container may open its `/proc/1/exe` or memory (see CVE-2019-5736 in `mod.rs`).

use super::{failure, Report, StartError};
use crate::kernel::{sys, trace};
use nix::sys::signal::{self, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Pid};
use std::ffi::CString;

/// What PID 1 executes: path, argv, envp, and the call as the trace shows it.
pub(super) type Exec = (CString, Vec<CString>, Vec<CString>, String);

/// In PID 1, its root built and its privileges given up: fork the command, then be its
/// init. Returns only if the fork failed.
pub(super) fn fork_and_wait(exec: Exec, io: &mut sys::ChildIo) -> StartError {
    // Blocked before the fork, so none is lost between it and the wait; the command's
    // mask is emptied again before execve.
    let all = SigSet::all();
    let _ = signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None);
    // SAFETY: PID 1 has one thread (a fresh clone), so the child may run any code.
    match unsafe { nix::unistd::fork() } {
        Err(e) => failure("fork", format!("fork(): {}", e.desc()), Some(e)),
        Ok(ForkResult::Child) => {
            let _ = signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
            trace::syscall(format!(
                "fork() = {}   (PID 1 stays, as init; the command runs as PID {0})",
                nix::unistd::getpid()
            ));
            let err = super::pid1::exec_command(exec, io);
            io.send_all(&[
                Report::Trace {
                    lines: trace::take(),
                },
                Report::Failed(err),
            ]);
            // SAFETY: ends this process at once, as after a failed execve.
            unsafe { libc::_exit(127) }
        }
        Ok(ForkResult::Parent { child }) => {
            // SAFETY: closes this process's own descriptors (nslab's end of the pipe
            // among them: nslab learns of the execve from the command's end alone).
            unsafe {
                libc::close_range(3, u32::MAX, 0);
                libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
                libc::prctl(libc::PR_SET_NAME, c"nslab-init".as_ptr(), 0, 0, 0);
            }
            let code = wait_for(child, &all);
            // SAFETY: PID 1 ends; the kernel ends the rest of its namespace.
            unsafe { libc::_exit(code) }
        }
    }
}

/// Reap every child, pass on every signal sent to PID 1, until `command` ends: its exit
/// status, as a shell reports it.
fn wait_for(command: Pid, all: &SigSet) -> i32 {
    loop {
        // SAFETY: a zeroed siginfo_t for the kernel to fill, and a valid signal set.
        let mut sig: libc::siginfo_t = unsafe { std::mem::zeroed() };
        if unsafe { libc::sigwaitinfo(all.as_ref(), &mut sig) } < 0 {
            continue;
        }
        let signo = sig.si_signo;
        if signo == libc::SIGCHLD {
            if let Some(code) = reap(command) {
                return code;
            }
            continue;
        }
        // Sent by the terminal to its foreground group: the command has it already.
        if sig.si_code == libc::SI_KERNEL {
            continue;
        }
        if let Ok(s) = Signal::try_from(signo) {
            let _ = signal::kill(command, s);
        }
    }
}

/// Wait for every child that has ended; the command's status if it is among them.
fn reap(command: Pid) -> Option<i32> {
    let mut ended = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return ended,
            Ok(status) if status.pid() == Some(command) => {
                ended = Some(super::exit_code(status));
            }
            Ok(_) => {}
        }
    }
}
