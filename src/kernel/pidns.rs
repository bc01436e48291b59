//! A PID namespace made step by step, as `unshare --pid --fork` does it, so lesson 1 can
//! look at every stage from inside and outside:
//!
//! ```text
//! nslab ──fork──> unsharer ──unshare(CLONE_NEWPID)──fork──> init (PID 1 inside)
//!                 (stays in the host's                       └─fork──> sleeper (PID 2)
//!                  PID namespace)
//! ```
//!
//! Every process here is nslab's own child or grandchild, recorded in the ledger before it
//! does anything and set to die with its parent (PR_SET_PDEATHSIG).

use super::ns::{self, NsSet};
use super::procs::{self, ProcInfo};
use super::sys::{self, Channel, ChildIo, Forked};
use super::trace;
use crate::ledger::{self, Resource};
use anyhow::{anyhow, bail, Context, Result};
use nix::sched::CloneFlags;
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Every answer from a child carries the system calls it made for the order.
#[derive(Serialize, Deserialize)]
struct Reply<T> {
    trace: Vec<String>,
    result: std::result::Result<T, String>,
}

fn reply<T: Serialize>(io: &mut ChildIo, result: Result<T>) {
    io.send(&Reply {
        trace: trace::take(),
        result: result.map_err(|e| format!("{e:#}")),
    });
}

fn ask<T: DeserializeOwned>(channel: &mut Channel, order: &str) -> Result<T> {
    channel.order(order)?;
    let r: Reply<T> = channel.recv(REPLY_TIMEOUT)?;
    trace::extend(r.trace);
    r.result.map_err(|e| anyhow!(e))
}

/// What a process inside says about itself.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SelfView {
    /// getpid() as the process sees it.
    pub getpid: i32,
    /// The NSpid line of its status file, outermost first.
    pub nspid: Vec<i32>,
    pub namespaces: NsSet,
}

/// What `fork()` returned when tried.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ForkAttempt {
    pub succeeded: bool,
    /// As strace prints it: `fork() = 1234` or `fork() = -1 ENOMEM (Cannot allocate memory)`.
    pub shown: String,
}

/// The unsharer's view of itself before and after `unshare(CLONE_NEWPID)`.
pub struct Unshared {
    pub before: NsSet,
    pub after: NsSet,
}

pub struct PidNamespace {
    unsharer: Forked,
    /// nslab's end of the channel to PID 1, until PID 1 is started.
    pending_init: Option<Channel>,
    init: Option<Init>,
}

struct Init {
    host_pid: i32,
    start_time: u64,
    channel: Channel,
}

impl Init {
    fn resource(&self) -> Resource {
        Resource::Process {
            pid: self.host_pid,
            start_time: self.start_time,
        }
    }
}

fn self_view() -> Result<SelfView> {
    let getpid = nix::unistd::getpid().as_raw();
    // /proc here may be the host's or a fresh one; /proc/self works in both.
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let nspid = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|v| {
            v.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_else(|| vec![getpid]);
    let own = nspid.first().copied().unwrap_or(getpid);
    let namespaces = ns::of_pid(own).unwrap_or(NsSet {
        pid: own,
        links: Vec::new(),
    });
    Ok(SelfView {
        getpid,
        nspid,
        namespaces,
    })
}

fn try_fork() -> ForkAttempt {
    // SAFETY: single-threaded child; the grandchild exits at once.
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => unsafe { libc::_exit(0) },
        Ok(ForkResult::Parent { child }) => {
            let _ = waitpid(child, None);
            ForkAttempt {
                succeeded: true,
                shown: format!("fork() = {child}"),
            }
        }
        Err(e) => ForkAttempt {
            succeeded: false,
            shown: format!("fork() = -1 {}", sys::errno_text(e)),
        },
    }
}

/// The unsharer: calls unshare(CLONE_NEWPID), then serves orders.
fn unsharer_main(io: &mut ChildIo, mut init_io: Option<ChildIo>) -> i32 {
    let me = nix::unistd::getpid().as_raw();
    let before = ns::of_pid(me);
    let unshared = sys::unshare(CloneFlags::CLONE_NEWPID);
    let after = ns::of_pid(me);
    reply(io, unshared.map(|_| (before, after)));
    while let Some(order) = io.wait_order() {
        match order.as_str() {
            "fork-init" => {
                let Some(child_io) = init_io.take() else {
                    reply::<i32>(io, Err(anyhow!("init already started")));
                    continue;
                };
                // SAFETY: single-threaded; the child runs init_main and _exits.
                match unsafe { nix::unistd::fork() } {
                    Ok(ForkResult::Child) => {
                        sys::child_setup(None);
                        let mut child_io = child_io;
                        if child_io.wait_order().as_deref() == Some("go") {
                            init_main(&mut child_io);
                        }
                        unsafe { libc::_exit(0) };
                    }
                    Ok(ForkResult::Parent { child }) => {
                        drop(child_io);
                        trace::syscall(format!("fork() = {child}"));
                        reply(io, Ok(child.as_raw()));
                    }
                    Err(e) => {
                        trace::syscall(format!("fork() = -1 {}", sys::errno_text(e)));
                        reply::<i32>(io, Err(anyhow!("fork: {}", e.desc())));
                    }
                }
            }
            "try-fork" => {
                let attempt = try_fork();
                trace::syscall(attempt.shown.clone());
                reply(io, Ok(attempt));
            }
            "reap" => {
                // Collect the init's exit status so it does not linger as a zombie.
                let r = waitpid(Pid::from_raw(-1), None).map(|s| format!("{s:?}"));
                reply(io, r.map_err(|e| anyhow!("waitpid: {}", e.desc())));
            }
            _ => reply::<()>(io, Err(anyhow!("unknown order {order}"))),
        }
    }
    0
}

/// PID 1 of the new namespace: serves orders until told to exit.
fn init_main(io: &mut ChildIo) {
    let mut sleepers = Vec::new();
    while let Some(order) = io.wait_order() {
        match order.as_str() {
            "whoami" => reply(io, self_view()),
            "ps" => reply(
                io,
                procs::table_at(Path::new("/proc")).map_err(anyhow::Error::from),
            ),
            "mount-proc" => {
                let r = sys::unshare(CloneFlags::CLONE_NEWNS)
                    .and_then(|_| sys::make_mounts_private())
                    .and_then(|_| sys::mount_proc(Path::new("/proc")));
                reply(io, r);
            }
            "spawn-sleeper" => {
                // SAFETY: single-threaded; the sleeper only pauses until killed.
                match unsafe { nix::unistd::fork() } {
                    Ok(ForkResult::Child) => loop {
                        nix::unistd::pause();
                    },
                    Ok(ForkResult::Parent { child }) => {
                        trace::syscall(format!("fork() = {child}"));
                        sleepers.push(child);
                        reply(io, Ok(child.as_raw()));
                    }
                    Err(e) => reply::<i32>(io, Err(anyhow!("fork: {}", e.desc()))),
                }
            }
            "exit" => {
                trace::syscall("exit_group(0) = ?".to_string());
                reply(io, Ok(()));
                return;
            }
            _ => reply::<()>(io, Err(anyhow!("unknown order {order}"))),
        }
    }
}

impl PidNamespace {
    /// Fork the unsharer and have it call unshare(CLONE_NEWPID).
    pub fn create() -> Result<(PidNamespace, Unshared)> {
        let (init_channel, init_io) = sys::channel("the namespace's PID 1")?;
        let mut init_io = Some(init_io);
        let mut unsharer = sys::fork_recorded(move |io| unsharer_main(io, init_io.take()))?;
        let r: Reply<(Option<NsSet>, Option<NsSet>)> = unsharer.recv(REPLY_TIMEOUT)?;
        trace::extend(r.trace);
        let (before, after) = r.result.map_err(|e| anyhow!(e))?;
        let before = before.context("unsharer's /proc entry vanished")?;
        let after = after.context("unsharer's /proc entry vanished")?;
        // The init's end of its channel travelled into the unsharer with the fork.
        let ns = PidNamespace {
            unsharer,
            pending_init: Some(init_channel),
            init: None,
        };
        Ok((ns, Unshared { before, after }))
    }

    pub fn unsharer_pid(&self) -> i32 {
        self.unsharer.pid.as_raw()
    }

    /// The unsharer forks: its child is the first process of the new namespace, PID 1.
    pub fn start_init(&mut self) -> Result<i32> {
        let channel = self
            .pending_init
            .take()
            .context("PID 1 was already started")?;
        let host_pid: i32 = ask(&mut self.unsharer.channel, "fork-init")?;
        let start_time = procs::start_time(host_pid).unwrap_or(0);
        let init = Init {
            host_pid,
            start_time,
            channel,
        };
        ledger::record(init.resource())?;
        self.init = Some(init);
        self.init_mut()?.channel.order("go")?;
        Ok(host_pid)
    }

    fn init_mut(&mut self) -> Result<&mut Init> {
        self.init
            .as_mut()
            .context("the namespace has no PID 1 (not started, or it has exited)")
    }

    /// The PID 1's host PID, while it runs.
    pub fn init_host_pid(&self) -> Option<i32> {
        self.init.as_ref().map(|i| i.host_pid)
    }

    /// PID 1 describes itself from inside.
    pub fn init_self_view(&mut self) -> Result<SelfView> {
        ask(&mut self.init_mut()?.channel, "whoami")
    }

    /// The process table as PID 1 reads it from whatever /proc it has mounted.
    pub fn ps_inside(&mut self) -> Result<Vec<ProcInfo>> {
        ask(&mut self.init_mut()?.channel, "ps")
    }

    /// PID 1 gets a private mount namespace and a /proc of its own PID namespace.
    pub fn mount_fresh_proc(&mut self) -> Result<()> {
        ask(&mut self.init_mut()?.channel, "mount-proc")
    }

    /// PID 1 forks a child that sleeps; returns its PID inside the namespace.
    pub fn spawn_sleeper(&mut self) -> Result<i32> {
        ask(&mut self.init_mut()?.channel, "spawn-sleeper")
    }

    /// PID 1 exits; returns once the kernel has torn the namespace down (every other
    /// member killed) and the unsharer has reaped it.
    pub fn end_init(&mut self) -> Result<()> {
        let init = self.init.take().context("the namespace has no PID 1")?;
        let mut channel = init.channel;
        ask::<()>(&mut channel, "exit")?;
        let _: String = ask(&mut self.unsharer.channel, "reap")?;
        ledger::forget(&Resource::Process {
            pid: init.host_pid,
            start_time: init.start_time,
        });
        Ok(())
    }

    /// The unsharer tries to fork into the namespace its children are assigned to.
    pub fn unsharer_tries_fork(&mut self) -> Result<ForkAttempt> {
        ask(&mut self.unsharer.channel, "try-fork")
    }

    /// End every process of this namespace and the unsharer.
    pub fn close(mut self) -> Result<()> {
        if let Some(init) = self.init.take() {
            sys::kill_and_reap(init.host_pid, init.start_time)?;
            ledger::forget(&init.resource());
        }
        self.unsharer.channel.close_orders();
        self.unsharer
            .wait(Duration::from_secs(5))
            .map(|_| ())
            .or_else(|_| self.unsharer.kill())
    }
}

/// Which PID namespace's processes a process's `/proc` shows, as far as can be told from
/// outside: the start time of the `/proc/1` it sees, via /proc/PID/root (its own mounts).
pub fn pid1_start_time_seen_by(pid: i32) -> Option<u64> {
    let path = format!("/proc/{pid}/root/proc/1/stat");
    let stat = std::fs::read_to_string(path).ok()?;
    // Field 22 (starttime), counted after the ")" that closes comm.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Host PIDs of every process whose PID namespace is `pid_ns`, from the host's /proc.
pub fn members(pid_ns: u64) -> Result<Vec<ProcInfo>> {
    Ok(procs::table()?
        .into_iter()
        .filter(|p| p.pid_ns == Some(pid_ns))
        .collect())
}

/// Start an interactive shell as PID 1 of a new PID and mount namespace with its own
/// /proc, exactly like `unshare --pid --fork --mount-proc SHELL`; wait until it exits.
/// The system calls the two children make are in the trace afterwards.
pub fn run_shell(shell: &str, prompt: &str) -> Result<i32> {
    use std::ffi::CString;
    let shell_c = CString::new(shell).context("shell path")?;
    let prompt = prompt.to_string();
    let mut unsharer = sys::fork_recorded(move |io| {
        // Lines recorded before the fork were copied into this process: not ours to send.
        trace::take();
        let unshared = sys::unshare(CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS);
        let mut mine = trace::take();
        if unshared.is_err() {
            io.send(&(0, mine));
            return 1;
        }
        // SAFETY: single-threaded; the child execs a shell.
        let forked = unsafe { nix::unistd::fork() };
        match forked {
            Ok(ForkResult::Child) => {
                sys::child_setup(None);
                let ready = sys::make_mounts_private().is_ok()
                    && sys::mount_proc(Path::new("/proc")).is_ok();
                io.send(&(1, trace::take()));
                if !ready {
                    unsafe { libc::_exit(1) };
                }
                std::env::set_var("PS1", &prompt);
                let argv = [shell_c.clone(), CString::new("--norc").unwrap_or_default()];
                let argv: &[CString] = if shell.ends_with("bash") {
                    &argv
                } else {
                    &argv[..1]
                };
                let _ = nix::unistd::execv(&shell_c, argv);
                unsafe { libc::_exit(127) };
            }
            Ok(ForkResult::Parent { child }) => {
                mine.push(format!("fork() = {child}   # the shell, PID 1 inside"));
                io.send(&(0, mine));
                match waitpid(child, None) {
                    Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => code,
                    _ => 1,
                }
            }
            Err(e) => {
                mine.push(format!("fork() = -1 {e} ({})", e.desc()));
                io.send(&(0, mine));
                1
            }
        }
    })?;
    let status = loop {
        match unsharer.try_wait()? {
            Some(s) => break s,
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    sys::reclaim_terminal();
    // Both children have ended (the shell's end closed at execve): read to the end, and
    // put the lines in the order the calls were made (the unsharer's, then the shell's).
    let mut reports = Vec::new();
    while let Ok(Some(report)) = unsharer
        .channel
        .recv_or_end::<(u8, Vec<String>)>(Duration::from_secs(1))
    {
        reports.push(report);
    }
    reports.sort_by_key(|(who, _)| *who);
    for (_, lines) in reports {
        trace::extend(lines);
    }
    match status {
        nix::sys::wait::WaitStatus::Exited(_, code) => Ok(code),
        other => bail!("the shell's unsharer ended with {other:?}"),
    }
}
