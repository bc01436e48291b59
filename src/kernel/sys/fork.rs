//! Children nslab forks, on its ledger from before they act until they are reaped, and
//! the end of a process it started.

use super::channel::{self, Channel, ChildIo};
use super::signals::{check_interrupt, ENDING_SIGNALS};
use crate::kernel::procs;
use crate::ledger::{self, Resource};
use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::sys::signal::{self, SigHandler, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Pid};
use serde::de::DeserializeOwned;
use std::io::Write;
use std::time::{Duration, Instant};

/// A child process nslab forked, on its ledger until reaped.
pub struct Forked {
    pub pid: Pid,
    pub start_time: u64,
    pub channel: Channel,
    reaped: bool,
    /// On the ledger (see [`fork_unrecorded`] for a child that is not).
    recorded: bool,
}

impl Forked {
    pub fn resource(&self) -> Resource {
        Resource::Process {
            pid: self.pid.as_raw(),
            start_time: self.start_time,
        }
    }

    pub fn recv<T: DeserializeOwned>(&mut self, timeout: Duration) -> Result<T> {
        self.channel.recv(timeout)
    }

    fn strike_off(&self) {
        if self.recorded {
            ledger::forget(&self.resource());
        }
    }

    /// Send the child a line (an order it waits for with [`ChildIo::wait_order`]).
    pub fn order(&mut self, line: &str) -> Result<()> {
        self.channel.order(line)
    }

    /// Has the child ended? Reaps it if so.
    pub fn try_wait(&mut self) -> Result<Option<WaitStatus>> {
        if self.reaped {
            return Ok(None);
        }
        match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => Ok(None),
            Ok(status) => {
                self.reaped = true;
                self.strike_off();
                Ok(Some(status))
            }
            Err(e) => Err(e).context("waitpid"),
        }
    }

    /// Wait for the child to end (noticing Ctrl-C) and strike it off the ledger.
    pub fn wait(&mut self, timeout: Duration) -> Result<WaitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            check_interrupt()?;
            if start.elapsed() > timeout {
                bail!("child {} did not end within {:?}", self.pid, timeout);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Kill the child (SIGKILL) and reap it.
    pub fn kill(&mut self) -> Result<()> {
        if self.reaped {
            return Ok(());
        }
        let _ = signal::kill(self.pid, Signal::SIGKILL);
        let status = waitpid(self.pid, None);
        self.reaped = true;
        self.strike_off();
        match status {
            Ok(_) | Err(Errno::ECHILD) => Ok(()),
            Err(e) => Err(e).context("waitpid"),
        }
    }
}

impl Drop for Forked {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.kill();
        }
    }
}

/// Fork a child that runs `body` and exits with its return value.
///
/// The child is on the ledger before it does anything: it waits for the parent's go-ahead,
/// which comes only once its PID is recorded. It also dies with nslab (PR_SET_PDEATHSIG),
/// so even `kill -9` of nslab ends it; the ledger entry covers the rest.
///
/// nslab is single-threaded when it forks, so the child may run ordinary Rust code.
pub fn fork_recorded(body: impl FnOnce(&mut ChildIo) -> i32) -> Result<Forked> {
    let (channel, io) = channel::channel("child")?;
    let mut forked = fork_with(channel, io, body)?;
    forked.channel.peer = format!("child {}", forked.pid);
    Ok(forked)
}

/// [`fork_recorded`] with a channel made beforehand (so a grandchild can inherit it).
pub fn fork_with(
    channel: Channel,
    mut io: ChildIo,
    body: impl FnOnce(&mut ChildIo) -> i32,
) -> Result<Forked> {
    let parent_pid = nix::unistd::getpid();
    // SAFETY: nslab does not run threads while forking, so the child may run ordinary
    // Rust code; it leaves through _exit and never returns into the parent's stack.
    match unsafe { nix::unistd::fork() }.context("fork")? {
        ForkResult::Child => {
            drop(channel);
            child_setup(Some(parent_pid));
            // Wait for "go": the parent has written our PID into the ledger.
            if io.wait_order().as_deref() != Some("go") {
                unsafe { libc::_exit(1) };
            }
            run_and_exit(&mut io, body);
        }
        ForkResult::Parent { child } => {
            drop(io);
            adopt(child, channel)
        }
    }
}

/// The parent's side of a [`clone_recorded`] child, which started at once: put it on the
/// ledger (killed if that fails).
pub(super) fn adopt_started(child: Pid, channel: Channel) -> Result<Forked> {
    let start_time = procs::start_time(child.as_raw()).unwrap_or(0);
    // Dropped on an error: killed, reaped and struck off.
    let forked = Forked {
        pid: child,
        start_time,
        channel,
        reaped: false,
        recorded: true,
    };
    ledger::record(forked.resource())?;
    Ok(forked)
}

/// [`fork_recorded`] for a child that nothing outlives, so the ledger need not list it:
/// it dies with nslab (PR_SET_PDEATHSIG; a child that changes its credentials must set it
/// again), and what it makes ends with it. A run without root, which cannot write the
/// ledger, forks this way.
pub fn fork_unrecorded(body: impl FnOnce(&mut ChildIo) -> i32) -> Result<Forked> {
    let (channel, mut io) = channel::channel("child")?;
    let parent_pid = nix::unistd::getpid();
    // SAFETY: as in fork_with: single-threaded, and the child leaves through _exit.
    match unsafe { nix::unistd::fork() }.context("fork")? {
        ForkResult::Child => {
            drop(channel);
            child_setup(Some(parent_pid));
            run_and_exit(&mut io, body);
        }
        ForkResult::Parent { child } => {
            drop(io);
            let mut forked = Forked {
                pid: child,
                start_time: procs::start_time(child.as_raw()).unwrap_or(0),
                channel,
                reaped: false,
                recorded: false,
            };
            forked.channel.peer = format!("child {child}");
            Ok(forked)
        }
    }
}

/// The parent's side of a new child: put it on the ledger, then let it go.
fn adopt(child: Pid, channel: Channel) -> Result<Forked> {
    let mut forked = adopt_started(child, channel)?;
    forked.channel.order("go")?;
    Ok(forked)
}

/// In a child: run `body` and leave through _exit with its return value (101 if it
/// panicked), never returning into the parent's stack.
pub(super) fn run_and_exit(io: &mut ChildIo, body: impl FnOnce(&mut ChildIo) -> i32) -> ! {
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(io))).unwrap_or(101);
    let _ = std::io::stdout().flush();
    unsafe { libc::_exit(code) };
}

/// In a freshly forked child: die with the parent, default ending signals (the parent
/// cleans up).
/// `parent_pid` guards the race where the parent died before PR_SET_PDEATHSIG took hold;
/// pass `None` for the first child of a new PID namespace, whose getppid() is 0.
pub fn child_setup(parent_pid: Option<Pid>) {
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    if let Some(parent) = parent_pid {
        // 0: the parent is outside our PID namespace (a child forked into another's, as
        // nsenter's is). Still it: an orphan would have the namespace's init as parent.
        let ppid = nix::unistd::getppid();
        if ppid != parent && ppid.as_raw() != 0 {
            unsafe { libc::_exit(1) };
        }
    }
    for sig in ENDING_SIGNALS {
        // SAFETY: restoring a default disposition in a single-threaded child.
        let _ = unsafe { signal::signal(sig, SigHandler::SigDfl) };
    }
}

/// Kill a process nslab started, if `pid` still names it, and wait until it is gone.
/// A PID that now names another process is left alone.
pub fn kill_and_reap(pid: i32, start_time: u64) -> Result<()> {
    if !procs::is_same_process(pid, start_time) {
        // Gone already; reap it if it is our zombie child.
        let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
        return Ok(());
    }
    signal::kill(Pid::from_raw(pid), Signal::SIGKILL)
        .with_context(|| format!("kill({pid}, SIGKILL)"))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // Our own child: reap it. Someone else's (a killed run's orphan): init reaps it.
        let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
        if !procs::is_same_process(pid, start_time) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("process {pid} did not end after SIGKILL");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
