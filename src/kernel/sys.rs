//! Processes, signals and mounts: the system calls lessons make, each recorded in the
//! trace as a learner would see it in `strace`.

use super::{procs, trace};
use crate::ledger::{self, Resource};
use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::sys::signal::{self, SigHandler, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Pid};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
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

/// The child's side of a channel: messages to the parent, orders from it.
pub struct ChildIo {
    to_parent: File,
    from_parent: BufReader<File>,
}

impl ChildIo {
    /// Send one message (a JSON line) to the parent.
    pub fn send<T: Serialize>(&mut self, msg: &T) {
        self.send_all(std::slice::from_ref(msg));
    }

    /// Send several messages in one write: the parent wakes once for all of them.
    pub fn send_all<T: Serialize>(&mut self, msgs: &[T]) {
        let mut lines = String::new();
        for msg in msgs {
            if let Ok(line) = serde_json::to_string(msg) {
                lines.push_str(&line);
                lines.push('\n');
            }
        }
        let _ = self.to_parent.write_all(lines.as_bytes());
    }

    /// Has the parent gone? Its end of the order pipe is closed: the pipe has no writer.
    /// (nslab keeps that end open as long as it lives, whatever it has already sent.)
    pub fn parent_gone(&self) -> bool {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut fds = [PollFd::new(
            self.from_parent.get_ref().as_fd(),
            PollFlags::POLLIN,
        )];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(_) => fds[0]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLHUP)),
            Err(_) => false,
        }
    }

    /// Block until the parent sends a line; `None` when the parent has gone.
    pub fn wait_order(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.from_parent.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end().to_string()),
        }
    }
}

/// The parent's side of a channel to a child process.
pub struct Channel {
    from_child: BufReader<File>,
    to_child: Option<File>,
    peer: String,
}

impl Channel {
    /// Read the child's next message, waiting at most `timeout` (Ctrl-C ends the wait).
    pub fn recv<T: DeserializeOwned>(&mut self, timeout: Duration) -> Result<T> {
        let mut line = String::new();
        if self.from_child.buffer().is_empty()
            && !wait_readable(self.from_child.get_ref(), Some(timeout))?
        {
            bail!("{} sent nothing for {:?}", self.peer, timeout);
        }
        let n = self
            .from_child
            .read_line(&mut line)
            .context("reading from child")?;
        if n == 0 {
            bail!("{} ended without reporting", self.peer);
        }
        serde_json::from_str(line.trim_end())
            .with_context(|| format!("{} sent an unreadable message: {line}", self.peer))
    }

    /// [`Channel::recv`], but the end of the child's pipe is `None`, not an error: a child
    /// whose end closes at execve says "executed" that way.
    pub fn recv_or_end<T: DeserializeOwned>(&mut self, timeout: Duration) -> Result<Option<T>> {
        if self.from_child.buffer().is_empty()
            && !wait_readable(self.from_child.get_ref(), Some(timeout))?
        {
            bail!("{} sent nothing for {:?}", self.peer, timeout);
        }
        let mut line = String::new();
        let n = self
            .from_child
            .read_line(&mut line)
            .context("reading from child")?;
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_str(line.trim_end())
            .map(Some)
            .with_context(|| format!("{} sent an unreadable message: {line}", self.peer))
    }

    /// Send the child a line (an order it waits for with [`ChildIo::wait_order`]).
    pub fn order(&mut self, line: &str) -> Result<()> {
        let f = self
            .to_child
            .as_mut()
            .context("child's order pipe is closed")?;
        f.write_all(format!("{line}\n").as_bytes())
            .with_context(|| format!("writing to {}", self.peer))
    }

    /// The descriptors of nslab's ends, which a child made by clone(2) also holds.
    fn raw_fds(&self) -> Vec<RawFd> {
        let mut fds = vec![self.from_child.get_ref().as_raw_fd()];
        fds.extend(self.to_child.as_ref().map(|f| f.as_raw_fd()));
        fds
    }

    /// Close the order pipe: a child blocked in `wait_order` sees `None`.
    pub fn close_orders(&mut self) {
        self.to_child = None;
    }
}

/// A pair of pipes between nslab and a child it is about to fork (directly or through
/// another child): nslab keeps the [`Channel`], the child takes the [`ChildIo`].
pub fn channel(peer: &str) -> Result<(Channel, ChildIo)> {
    let (from_child_r, from_child_w) = pipe_files()?;
    let (to_child_r, to_child_w) = pipe_files()?;
    Ok((
        Channel {
            from_child: BufReader::new(from_child_r),
            to_child: Some(to_child_w),
            peer: peer.into(),
        },
        ChildIo {
            to_parent: from_child_w,
            from_parent: BufReader::new(to_child_r),
        },
    ))
}

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

fn pipe_files() -> Result<(File, File)> {
    let (r, w): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe2")?;
    Ok((File::from(r), File::from(w)))
}

/// Fork a child that runs `body` and exits with its return value.
///
/// The child is on the ledger before it does anything: it waits for the parent's go-ahead,
/// which comes only once its PID is recorded. It also dies with nslab (PR_SET_PDEATHSIG),
/// so even `kill -9` of nslab ends it; the ledger entry covers the rest.
///
/// nslab is single-threaded when it forks, so the child may run ordinary Rust code.
pub fn fork_recorded(body: impl FnOnce(&mut ChildIo) -> i32) -> Result<Forked> {
    let (channel, io) = self::channel("child")?;
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
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&mut io)))
                .unwrap_or(101);
            let _ = std::io::stdout().flush();
            unsafe { libc::_exit(code) };
        }
        ForkResult::Parent { child } => {
            drop(io);
            adopt(child, channel)
        }
    }
}

/// The parent's side of a [`clone_recorded`] child, which started at once: put it on the
/// ledger (killed if that fails).
fn adopt_started(child: Pid, channel: Channel) -> Result<Forked> {
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
    let (channel, mut io) = self::channel("child")?;
    let parent_pid = nix::unistd::getpid();
    // SAFETY: as in fork_with: single-threaded, and the child leaves through _exit.
    match unsafe { nix::unistd::fork() }.context("fork")? {
        ForkResult::Child => {
            drop(channel);
            child_setup(Some(parent_pid));
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&mut io)))
                .unwrap_or(101);
            let _ = std::io::stdout().flush();
            unsafe { libc::_exit(code) };
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
pub fn clone_recorded(
    flags: nix::sched::CloneFlags,
    cgroup: Option<BorrowedFd>,
    body: impl FnOnce(&mut ChildIo) -> i32,
) -> Result<(Forked, bool)> {
    let (channel, io) = self::channel("child")?;
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
    trace::syscall(format!(
        "clone(flags={}|SIGCHLD) = {}",
        clone_flag_names(flags),
        match &r {
            Ok(pid) => pid.to_string(),
            Err(e) => format!("-1 {} ({})", e, e.desc()),
        }
    ));
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
    let code =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&mut io))).unwrap_or(101);
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

/// The CPUs in an affinity mask, lowest first.
pub fn cpu_list(set: &nix::sched::CpuSet) -> Vec<usize> {
    (0..nix::sched::CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect()
}

/// sched_setaffinity(2): `pid` (0, the caller) may run only on the CPUs in `set`
/// (`taskset -p`), recorded in the trace.
pub fn set_affinity(pid: i32, set: &nix::sched::CpuSet) -> nix::Result<()> {
    let r = nix::sched::sched_setaffinity(Pid::from_raw(pid), set);
    let cpus: Vec<String> = cpu_list(set).iter().map(|c| c.to_string()).collect();
    trace::syscall(format!(
        "sched_setaffinity({pid}, {}, [{}]) = {}",
        std::mem::size_of::<nix::sched::CpuSet>(),
        cpus.join(" "),
        errno_result(&r)
    ));
    r
}

/// unshare(2) with the given flags, recorded in the trace.
pub fn unshare(flags: nix::sched::CloneFlags) -> Result<()> {
    let names = clone_flag_names(flags);
    let r = nix::sched::unshare(flags);
    trace::syscall(format!("unshare({names}) = {}", errno_result(&r)));
    r.with_context(|| format!("unshare({names})"))
}

/// `CLONE_NEWPID|CLONE_NEWNS` for a set of flags.
pub fn clone_flag_names(flags: nix::sched::CloneFlags) -> String {
    use nix::sched::CloneFlags as F;
    let table = [
        (F::CLONE_NEWCGROUP, "CLONE_NEWCGROUP"),
        (F::CLONE_NEWIPC, "CLONE_NEWIPC"),
        (F::CLONE_NEWNS, "CLONE_NEWNS"),
        (F::CLONE_NEWNET, "CLONE_NEWNET"),
        (F::CLONE_NEWPID, "CLONE_NEWPID"),
        (F::CLONE_NEWUSER, "CLONE_NEWUSER"),
        (F::CLONE_NEWUTS, "CLONE_NEWUTS"),
    ];
    let names: Vec<&str> = table
        .iter()
        .filter(|(f, _)| flags.contains(*f))
        .map(|(_, n)| *n)
        .collect();
    names.join("|")
}

/// `0` or `-1 EPERM (Operation not permitted)`, as strace prints results.
pub fn errno_result<T>(r: &nix::Result<T>) -> String {
    match r {
        Ok(_) => "0".into(),
        Err(e) => format!("-1 {}", errno_text(*e)),
    }
}

/// `ENOMEM (Cannot allocate memory)`: the name and the C library's message, as strace.
pub fn errno_text(e: Errno) -> String {
    let message = std::io::Error::from_raw_os_error(e as i32).to_string();
    let message = message
        .split(" (os error")
        .next()
        .unwrap_or(&message)
        .to_string();
    format!("{e:?} ({message})")
}

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
    let mounted = super::mountinfo::own().unwrap_or_default();
    for mp in super::mountinfo::points_under(&mounted, path) {
        unmount(&mp)?;
    }
    std::fs::remove_dir_all(path).with_context(|| format!("removing {}", path.display()))
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

/// Clear a pending Ctrl-C or Ctrl-\ (typed inside an interactive shell, it was the
/// shell's). A closed terminal or SIGTERM stays: the run must still end.
pub fn clear_interrupt() {
    for keyboard in [libc::SIGINT, libc::SIGQUIT] {
        let _ = ENDING_SIGNAL.compare_exchange(keyboard, 0, Ordering::SeqCst, Ordering::SeqCst);
    }
}

/// Run `f` with the file system rights of `uid`/`gid` (fsuid, fsgid and no other groups),
/// then give root's back: nslab as root reading or writing where a learner could plant a
/// symlink. A no-op unless nslab is root acting for another user. nslab has one thread when
/// it calls this, so the rights are the process's for that moment.
pub fn with_file_rights_of<T>(uid: u32, gid: u32, f: impl FnOnce() -> T) -> T {
    use nix::unistd::{getgroups, setfsgid, setfsuid, setgroups, Gid, Uid};
    if !nix::unistd::geteuid().is_root() || uid == 0 {
        return f();
    }
    let groups = getgroups().unwrap_or_default();
    // Root's own groups would still open files of group root.
    let dropped = setgroups(&[Gid::from_raw(gid)]).is_ok();
    let old_gid = setfsgid(Gid::from_raw(gid));
    let old_uid = setfsuid(Uid::from_raw(uid));
    let r = f();
    setfsuid(old_uid);
    setfsgid(old_gid);
    if dropped {
        let _ = setgroups(&groups);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_sees_whether_its_parent_has_gone() {
        let (channel, io) = channel("test").unwrap();
        assert!(!io.parent_gone(), "nslab's end is open");
        drop(channel);
        assert!(io.parent_gone(), "no writer is left on the order pipe");
    }

    #[test]
    fn a_parent_gone_after_sending_an_order_is_gone() {
        let (mut channel, io) = channel("test").unwrap();
        channel.order("go").unwrap();
        assert!(!io.parent_gone());
        drop(channel);
        assert!(
            io.parent_gone(),
            "a line left to read does not make it alive"
        );
    }
}
