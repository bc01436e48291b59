//! The signals that end a run, noticed as a flag, and the waits that notice them.

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sys::signal::{self, SigHandler, Signal};
use nix::unistd::Pid;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// The first signal that asked nslab to stop (0: none yet).
static ENDING_SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_ending_signal(sig: libc::c_int) {
    let _ = ENDING_SIGNAL.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
}

/// The signals that end a run and must still tear it down: Ctrl-C, Ctrl-\, a closed
/// terminal (SIGHUP, relayed by sudo) and `kill`.
pub const ENDING_SIGNALS: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGHUP,
    Signal::SIGTERM,
];

/// Catch the ending signals as a flag the engine polls, so that a run always tears down
/// what it made. A handler, not a thread: threads would break user namespaces.
pub fn install_interrupt_handler() {
    let action = signal::SigAction::new(
        SigHandler::Handler(on_ending_signal),
        signal::SaFlags::empty(),
        signal::SigSet::empty(),
    );
    for sig in ENDING_SIGNALS {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        let _ = unsafe { signal::sigaction(sig, &action) };
    }
}

/// The first ending signal received, if any.
pub fn ending_signal() -> Option<i32> {
    match ENDING_SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        sig => Some(sig),
    }
}

/// `Err(Interrupted)` once an ending signal has arrived: long waits call this in their loops.
pub fn check_interrupt() -> Result<()> {
    match ending_signal() {
        Some(signal) => Err(crate::error::Problem::Interrupted { signal }.into()),
        None => Ok(()),
    }
}

/// Clear a pending Ctrl-C or Ctrl-\ (typed inside an interactive shell, it was the
/// shell's). A closed terminal or SIGTERM stays: the run must still end.
pub fn clear_interrupt() {
    for keyboard in [libc::SIGINT, libc::SIGQUIT] {
        let _ = ENDING_SIGNAL.compare_exchange(keyboard, 0, Ordering::SeqCst, Ordering::SeqCst);
    }
}

/// Wait until `fd` has something to read, in short slices so Ctrl-C is noticed.
/// Returns false on timeout.
pub fn wait_readable(fd: &impl AsFd, timeout: Option<Duration>) -> Result<bool> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let start = Instant::now();
    loop {
        check_interrupt()?;
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(0) => {}
            Ok(_) => return Ok(true),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e).context("poll"),
        }
        if let Some(t) = timeout {
            if start.elapsed() >= t {
                return Ok(false);
            }
        }
    }
}

/// Block until the child `pid` has ended, leaving it to be reaped; Ctrl-C ends the wait.
/// Its pidfd is polled in slices: a Ctrl-C that lands just before a blocking waitid(2)
/// would not interrupt it, and nslab would sleep until the child ends on its own.
pub fn wait_child_end(pid: Pid) -> Result<()> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open(2) takes a PID and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("pidfd_open({pid})"));
    }
    // SAFETY: a descriptor just returned by the kernel, owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // A pidfd reads as ready once the process has ended.
    wait_readable(&fd, None)?;
    Ok(())
}

/// Sleep in slices, noticing Ctrl-C.
pub fn sleep(d: Duration) -> Result<()> {
    let end = Instant::now() + d;
    while Instant::now() < end {
        check_interrupt()?;
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(50)));
    }
    check_interrupt()
}

/// Take the terminal back for nslab's process group after an interactive child (a shell
/// with job control) has given it to its own group.
pub fn reclaim_terminal() {
    use nix::unistd::{getpgrp, isatty, tcsetpgrp};
    let stdin = std::io::stdin();
    if isatty(&stdin).unwrap_or(false) {
        // SAFETY: ignoring SIGTTOU only so tcsetpgrp from a background group succeeds.
        unsafe {
            let old = signal::signal(Signal::SIGTTOU, SigHandler::SigIgn);
            let _ = tcsetpgrp(&stdin, getpgrp());
            if let Ok(old) = old {
                let _ = signal::signal(Signal::SIGTTOU, old);
            }
        }
    }
}
