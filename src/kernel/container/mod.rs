//! A container, made of the kernel's own parts: a cgroup joined, new PID, mount, UTS, IPC
//! and network namespaces, a root filesystem made the root with `pivot_root` (or only
//! `chroot`), a procfs for the new PID namespace, a minimal `/dev`, a hostname, a cgroup
//! namespace, then `execve` with what a runtime leaves root: runc's three capabilities,
//! no_new_privs, /proc's dangerous paths masked or read-only, `nodev` everywhere but /dev.
//!
//! One process does it, made by clone(2) with the namespace flags, as runc does:
//!
//! ```text
//! nslab ── clone(NEWPID|NEWNS|NEWUTS|NEWIPC|NEWNET) ──> PID 1: lo up, hostname, pivot_root,
//!   │                                      /dev, /proc, /sys, joins the cgroup,
//!   │                                      unshare(NEWCGROUP), gives up privileges, execve
//!   └─ meanwhile: makes the cgroup PID 1 joins, then waits for it
//! ```
//!
//! (On pure cgroup v2 nslab makes the cgroup first and PID 1 is born inside it.) For
//! `nslab run` ([`start_with`]) the network namespace is not in the clone: nslab makes it
//! meanwhile too, and PID 1 joins it before mounting /sys (`netns.rs`).
//!
//! PID 1 builds its whole root before it needs the cgroup: it keeps a descriptor on each
//! cgroup filesystem it will join through, so that after pivot_root, with the host's tree
//! gone, it still reaches the directories nslab has been making meanwhile. On a machine
//! with two CPUs the two halves overlap (PID 1 keeps off nslab's CPU meanwhile: see
//! [`OffNslabCpu`]), and only the joins and `execve` follow nslab's go-ahead.
//!
//! With `Spec::join_netns` (`nslab run --net`) PID 1 first `setns`es into a network
//! namespace nslab has already wired (veth, route, NAT), so the network is there before
//! the command starts and no step has to wait for it.
//!
//! `unshare --pid --fork` gets the same result with two processes: unshare(2) cannot move
//! its caller into a new PID namespace, only its next child, so it forks after it and
//! stays outside to wait. A namespace asked for in clone(2) holds the child from its
//! first instruction, and nslab, outside, is the one waiting.
//!
//! CVE-2019-5736 (runc): a container process could open the runtime's own binary through
//! `/proc/<runtime pid>/exe` while the runtime was joining the container, and overwrite it
//! on the host. Here nothing in the container is ever nslab's binary: PID 1 is a clone of
//! nslab that execs the container's command itself, after `pivot_root`, as the first
//! process of the new PID namespace, so no other container process exists while it still
//! runs nslab's code, and afterwards its `/proc/1/exe` is the container's own program. The
//! nslab process stays outside the container's PID namespace (invisible from inside), and
//! never joins a running container (there is no `nslab exec`). Every descriptor but
//! 0, 1 and 2 is marked close-on-exec before `execve`, so no handle on a host file (the
//! binary, the ledger, the host's root) crosses into the container.
//!
//! Every system call is recorded in [`super::trace`] as `strace` prints it. PID 1 sends
//! its records to nslab over a pipe before `execve`.

pub mod caps;
mod cgroup_join;
mod dev;
mod escape;
mod init;
pub mod masks;
mod netns;
mod observe;
mod pid1;
#[cfg(test)]
mod tests;

pub use escape::{escape_attempt, EscapeReport};
pub use observe::*;
use pid1::pid1_main;

use super::cgroup::CgVersion;
use super::{sys, trace};
use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::signal::{self, SigHandler, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The PATH a container's command is looked up in (and gets), as Docker sets it.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How the root filesystem becomes the container's `/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RootMode {
    /// A private mount namespace, the rootfs bind-mounted on itself, `pivot_root`, and the
    /// old root unmounted: the host's tree is gone from the namespace.
    PivotRoot,
    /// Only `chroot`: the host's tree is still mounted, merely out of sight.
    Chroot,
}

/// What to run and how.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Spec {
    pub rootfs: PathBuf,
    /// The command and its arguments; a name without `/` is looked up in the container's PATH.
    pub command: Vec<String>,
    pub hostname: String,
    /// cgroup directories (one per v1 hierarchy, or one v2 directory) PID 1 is in before
    /// it executes the command, so everything the command starts is inside.
    pub cgroup_dirs: Vec<PathBuf>,
    /// The controllers of the cgroup [`start_with`] makes, not known as directories yet:
    /// PID 1 keeps a handle on the hierarchies holding them (and on those of `cgroup_dirs`).
    pub cgroup_controllers: Vec<String>,
    pub root_mode: RootMode,
    /// Join this network namespace (a descriptor nslab holds, wired up beforehand by
    /// `kernel::net::uplink`) instead of a new one with only `lo`: the network is ready
    /// before the command starts.
    #[serde(default, skip)]
    pub join_netns: Option<std::os::fd::RawFd>,
    /// The container's environment (PATH, HOME, TERM, HOSTNAME by default).
    pub env: Vec<(String, String)>,
    /// The capabilities the command keeps (a mask; [`caps::DEFAULT`] is runc's three).
    pub capabilities: u64,
    /// nslab's pidfd on itself, inherited by PID 1 (set by `start_with`): nslab makes the
    /// network namespace while PID 1 builds its root, and hands it over (see `netns.rs`).
    #[serde(default, skip)]
    pub nslab_pidfd: Option<std::os::fd::RawFd>,
    /// PID 1 stays as the container's init and the command runs as PID 2 (see `init.rs`):
    /// signals reach it, orphans are reaped. Without, the command itself is PID 1.
    #[serde(default)]
    pub init: bool,
}

impl Spec {
    pub fn new(rootfs: &Path, command: &[String]) -> Spec {
        let hostname = "nslab".to_string();
        let term = std::env::var("TERM").unwrap_or_else(|_| "xterm".into());
        Spec {
            rootfs: rootfs.to_path_buf(),
            command: command.to_vec(),
            env: vec![
                ("PATH".into(), DEFAULT_PATH.into()),
                ("HOME".into(), "/root".into()),
                ("TERM".into(), term),
                ("HOSTNAME".into(), hostname.clone()),
            ],
            hostname,
            cgroup_dirs: Vec::new(),
            cgroup_controllers: Vec::new(),
            root_mode: RootMode::PivotRoot,
            join_netns: None,
            capabilities: caps::DEFAULT,
            nslab_pidfd: None,
            init: false,
        }
    }

    pub fn with_hostname(mut self, name: &str) -> Spec {
        self.hostname = name.to_string();
        for (k, v) in &mut self.env {
            if k == "HOSTNAME" {
                *v = name.to_string();
            }
        }
        self
    }

    /// The namespaces the container gets.
    pub fn clone_flags(&self) -> CloneFlags {
        let mut f = CloneFlags::CLONE_NEWPID
            | CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWIPC;
        if self.join_netns.is_none() && !self.handed_net() {
            f |= CloneFlags::CLONE_NEWNET;
        }
        f
    }

    /// Does PID 1 get its network namespace from nslab, after its clone?
    pub fn handed_net(&self) -> bool {
        self.join_netns.is_none() && self.nslab_pidfd.is_some()
    }
}

/// Checks a hostname as sethostname(2) and RFC 1123 would accept it.
pub fn valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// The container could not be started; `step` names the system call that failed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StartError {
    pub step: String,
    pub error: String,
    pub errno: Option<i32>,
}

impl StartError {
    /// The command could not be executed because it does not exist inside.
    pub fn command_not_found(&self) -> bool {
        self.step == "execve" && self.errno == Some(libc::ENOENT)
    }
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "starting the container failed at {}: {}",
            self.step, self.error
        )
    }
}

impl std::error::Error for StartError {}

/// Messages from PID 1 to nslab (over a close-on-exec pipe: its end after an `Exec` with
/// no `Failed` means `execve` succeeded).
#[derive(Serialize, Deserialize)]
enum Report {
    Trace { lines: Vec<String> },
    Exec { call: String },
    Failed(StartError),
}

/// nslab's go-ahead to PID 1, once it has made the cgroup (and the network namespace).
#[derive(Serialize, Deserialize)]
struct Order {
    cgroup_dirs: Vec<PathBuf>,
    /// nslab's descriptor on the network namespace it made for PID 1.
    netns_fd: Option<std::os::fd::RawFd>,
}

/// A running container.
pub struct Container {
    /// PID 1, the child nslab cloned (on the ledger until reaped).
    child: sys::Forked,
    /// PID 1 of the container, as the host numbers it.
    pub pid1: i32,
    /// Created inside its cgroup v2 directory (clone3 CLONE_INTO_CGROUP), not moved there.
    pub born_in_cgroup: bool,
    gave_terminal: bool,
    status: Option<i32>,
}

/// The exit status a shell would report: the code, or 128 + the signal that ended it.
pub fn exit_code(status: WaitStatus) -> i32 {
    match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
        _ => 1,
    }
}

fn failure(step: &str, e: impl std::fmt::Display, errno: Option<Errno>) -> StartError {
    StartError {
        step: step.into(),
        error: e.to_string(),
        errno: errno.map(|e| e as i32),
    }
}

/// Record `call = result` and turn a failure into a [`StartError`] named after `step`.
fn traced<T>(step: &str, call: String, r: nix::Result<T>) -> Result<T, StartError> {
    trace::syscall(format!("{call} = {}", sys::errno_result(&r)));
    r.map_err(|e| failure(step, format!("{call}: {} ({})", e, e.desc()), Some(e)))
}

fn q(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

/// Does nslab hold the terminal's foreground? Then the container gets it while it runs
/// (as a shell does with a job), so Ctrl-C reaches the container's command, not nslab.
fn own_terminal_foreground() -> bool {
    let stdin = std::io::stdin();
    nix::unistd::isatty(stdin.as_fd()).unwrap_or(false)
        && nix::unistd::tcgetpgrp(stdin.as_fd()).ok() == Some(nix::unistd::getpgrp())
}

/// Take the terminal's foreground for our own process group (SIGTTOU ignored meanwhile,
/// as a background group would otherwise be stopped for trying).
fn take_terminal_foreground() {
    let stdin = std::io::stdin();
    // SAFETY: only the disposition of SIGTTOU changes, restored right after.
    unsafe {
        let old = signal::signal(Signal::SIGTTOU, SigHandler::SigIgn);
        let _ = nix::unistd::tcsetpgrp(stdin.as_fd(), nix::unistd::getpgrp());
        if let Ok(old) = old {
            let _ = signal::signal(Signal::SIGTTOU, old);
        }
    }
}

/// Start a container in `spec.cgroup_dirs`. Returns once its command has been
/// executed (or with the [`StartError`] of the step that failed); its system calls are
/// in the trace.
///
/// A cgroup v2 directory is where PID 1 is born (clone3 with CLONE_INTO_CGROUP); each v1
/// hierarchy's directory it joins itself, after its change of root and before it executes
/// the command.
pub fn start(spec: &Spec) -> Result<Container> {
    let (born_in, rest) = born_in_and_joined(&spec.cgroup_dirs);
    start_inner(spec, born_in, false, move || Ok(rest))
}

/// The cgroup v2 directory PID 1 is born in, if any, and those it joins.
fn born_in_and_joined(dirs: &[PathBuf]) -> (Option<PathBuf>, Vec<PathBuf>) {
    let (mut v2, v1): (Vec<PathBuf>, Vec<PathBuf>) = dirs
        .iter()
        .cloned()
        .partition(|d| super::cgroup::version_of_dir(d) == CgVersion::V2);
    let born_in = (!v2.is_empty()).then(|| v2.remove(0));
    (born_in, v1.into_iter().chain(v2).collect())
}

/// [`start`], with the cgroup PID 1 goes into made by `make_cgroup` (which returns its
/// directories, holding `spec.cgroup_controllers`). On cgroup v1 that runs while PID 1
/// builds its root filesystem, and PID 1 joins each hierarchy through `tasks` afterwards:
/// on a machine with two CPUs, making the cgroup then costs little time of its own. On pure v2 it runs first, so that PID 1 can be
/// born inside (a later join would wait for an RCU grace period). Its network namespace,
/// too, nslab makes while PID 1 builds its root (`netns.rs`).
pub fn start_with(
    spec: &Spec,
    make_cgroup: impl FnOnce() -> Result<Vec<PathBuf>>,
) -> Result<Container> {
    if super::cgroup::is_pure_v2() {
        let mut spec = spec.clone();
        spec.cgroup_dirs = make_cgroup()?;
        let (born_in, rest) = born_in_and_joined(&spec.cgroup_dirs);
        return start_inner(&spec, born_in, true, move || Ok(rest));
    }
    start_inner(spec, None, true, make_cgroup)
}

fn start_inner(
    spec: &Spec,
    born_in: Option<PathBuf>,
    // Make the network namespace while PID 1 builds its root, rather than in its clone.
    hand_over_net: bool,
    // The cgroup directories PID 1 joins, made while it builds its root.
    make_cgroup: impl FnOnce() -> Result<Vec<PathBuf>>,
) -> Result<Container> {
    let cgroup_fd = born_in.as_deref().map(open_cgroup_dir).transpose()?;
    let gave_terminal = own_terminal_foreground();
    let handover = (hand_over_net && spec.join_netns.is_none())
        .then(netns::Handover::prepare)
        .flatten();
    let mut spec_for_child = spec.clone();
    spec_for_child.nslab_pidfd = handover.as_ref().map(|h| h.pidfd());
    let flags = spec_for_child.clone_flags();
    let off_nslab_cpu = nix::sched::sched_getcpu()
        .ok()
        .and_then(pid1::OffNslabCpu::plan);
    let mover = off_nslab_cpu.clone();
    let (mut child, born) = match sys::clone_recorded(
        flags,
        cgroup_fd.as_ref().map(|f| f.as_fd()),
        |pid1| {
            if let Some(m) = &mover {
                m.send(pid1.as_raw());
            }
        },
        move |io| pid1_main(&spec_for_child, gave_terminal, off_nslab_cpu, io),
    ) {
        Ok(started) => started,
        Err(e) => {
            restore_terminal(gave_terminal);
            return Err(e);
        }
    };
    drop(cgroup_fd);
    // Born outside (a kernel without CLONE_INTO_CGROUP): PID 1 joins by writing.
    let join_too = born_in.filter(|_| !born);
    let pid1 = child.pid.as_raw();
    let fail = |child: &mut sys::Forked, e: anyhow::Error| {
        let _ = child.kill();
        restore_terminal(gave_terminal);
        Err(e)
    };
    // Held until PID 1 has taken it (it reports its execve after).
    let netns = match handover.as_ref().map(netns::Handover::make).transpose() {
        Ok(ns) => ns,
        Err(e) => return fail(&mut child, e),
    };
    let dirs = match make_cgroup() {
        Ok(dirs) => join_too.into_iter().chain(dirs).collect::<Vec<_>>(),
        Err(e) => return fail(&mut child, e),
    };
    let order = Order {
        cgroup_dirs: dirs,
        netns_fd: netns.as_ref().map(|fd| fd.as_raw_fd()),
    };
    let order = serde_json::to_string(&order).context("cgroup directories")?;
    if let Err(e) = child.order(&order) {
        // PID 1 builds its root before it reads the order and may have failed meanwhile,
        // leaving no reader: its own report says why, better than the broken pipe.
        let _ = child.kill();
        let reported = reported_failure(&mut child.channel);
        restore_terminal(gave_terminal);
        return Err(reported.map(Into::into).unwrap_or(e));
    }
    let mut exec_call = None;
    loop {
        match child.channel.recv_or_end::<Report>(Duration::from_secs(30)) {
            Ok(Some(Report::Trace { lines })) => trace::extend(lines),
            Ok(Some(Report::Exec { call })) => exec_call = Some(call),
            Ok(Some(Report::Failed(err))) => {
                let _ = child.wait(Duration::from_secs(10));
                restore_terminal(gave_terminal);
                return Err(err.into());
            }
            Ok(None) => break,
            Err(e) => {
                return fail(
                    &mut child,
                    e.context("PID 1 of the container did not report"),
                )
            }
        }
    }
    match exec_call {
        Some(call) => trace::syscall(format!("{call} = 0")),
        None => {
            let e = failure("execve", "PID 1 ended before executing the command", None);
            return fail(&mut child, e.into());
        }
    }
    Ok(Container {
        child,
        pid1,
        born_in_cgroup: born,
        gave_terminal,
        status: None,
    })
}

/// What PID 1 reported before it ended, if it failed (its trace lines too).
fn reported_failure(channel: &mut sys::Channel) -> Option<StartError> {
    let mut failed = None;
    while let Ok(Some(report)) = channel.recv_or_end::<Report>(Duration::from_secs(1)) {
        match report {
            Report::Trace { lines } => trace::extend(lines),
            Report::Failed(err) => failed = Some(err),
            Report::Exec { .. } => {}
        }
    }
    failed
}

fn restore_terminal(gave: bool) {
    if gave {
        take_terminal_foreground();
    }
}

impl Container {
    /// Wait for the container's command to end; its exit status (128 + signal if killed).
    /// An ending signal sent to nslab itself (Ctrl-C, SIGHUP, SIGTERM) ends the wait with `Interrupted`.
    pub fn wait(&mut self) -> Result<i32> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        // PID 1 stays waitable: Forked::wait then reaps it and strikes it off.
        sys::wait_child_end(self.child.pid)?;
        let status = self.child.wait(Duration::from_secs(30))?;
        let code = exit_code(status);
        self.status = Some(code);
        self.finish();
        Ok(code)
    }

    /// Stop it now: SIGKILL to PID 1, which ends every process in its PID namespace, and
    /// reap it.
    pub fn kill(&mut self) -> Result<()> {
        self.child.kill()?;
        self.finish();
        Ok(())
    }

    fn finish(&mut self) {
        if self.gave_terminal {
            self.gave_terminal = false;
            take_terminal_foreground();
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.kill();
        }
    }
}

/// A cgroup v2 directory, opened for clone3's CLONE_INTO_CGROUP (in the trace).
fn open_cgroup_dir(dir: &Path) -> Result<std::os::fd::OwnedFd> {
    use nix::fcntl::{open, OFlag};
    use std::os::fd::AsRawFd;
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let r = open(dir, flags, nix::sys::stat::Mode::empty());
    trace::syscall(format!(
        "openat(AT_FDCWD, {:?}, O_RDONLY|O_DIRECTORY|O_CLOEXEC) = {}",
        dir.display().to_string(),
        match &r {
            Ok(fd) => fd.as_raw_fd().to_string(),
            Err(e) => format!("-1 {} ({})", e, e.desc()),
        }
    ));
    r.with_context(|| format!("opening the cgroup directory {}", dir.display()))
}
