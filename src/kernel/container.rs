//! A container, made of the kernel's own parts: a cgroup joined, new PID, mount, UTS and
//! IPC namespaces, a root filesystem made the root with `pivot_root` (or only `chroot`),
//! a procfs for the new PID namespace, a minimal `/dev`, a hostname, then `execve`.
//!
//! Two processes do it, as `unshare --fork` does:
//!
//! ```text
//! nslab ── fork ──> outer: joins the cgroup, unshare(NEWPID|NEWNS|NEWUTS|NEWIPC), fork
//!                     └──> PID 1: mounts, pivot_root, /proc, /dev, hostname, execve(CMD)
//! ```
//!
//! With `Spec::join_netns` (`nslab run --net`) the outer process first `setns`es into a
//! network namespace nslab has already wired (veth, route, NAT), so the network is there
//! before the command starts and no step has to wait for it.
//!
//! `unshare(CLONE_NEWPID)` does not move its caller: only the caller's next child is PID 1
//! of the new namespace. The outer process stays in the host's PID namespace, waits for
//! PID 1 and exits with its status, which nslab passes on.
//!
//! CVE-2019-5736 (runc): a container process could open the runtime's own binary through
//! `/proc/<runtime pid>/exe` while the runtime was joining the container, and overwrite it
//! on the host. Here nothing in the container is ever nslab's binary: PID 1 is a fork of
//! nslab that execs the container's command itself, after `pivot_root`, as the first
//! process of the new PID namespace, so no other container process exists while it still
//! runs nslab's code, and afterwards its `/proc/1/exe` is the container's own program. The
//! outer process stays outside the container's PID namespace (invisible from inside), and
//! nslab never joins a running container (there is no `nslab exec`). Every descriptor but
//! 0, 1 and 2 is marked close-on-exec before `execve`, so no handle on a host file (the
//! binary, the ledger, the host's root) crosses into the container.
//!
//! Every system call is recorded in [`super::trace`] as `strace` prints it. The children
//! send their records to nslab over a pipe before `execve`.

use super::{procs, sys, trace};
use crate::ledger::{self, Resource};
use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::signal::{self, SigHandler, Signal};
use nix::sys::stat::{Mode, SFlag};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Pid};
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;
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
    /// cgroup directories (one per v1 hierarchy, or one v2 directory) the container joins
    /// before its namespaces exist, so everything it starts is inside.
    pub cgroup_dirs: Vec<PathBuf>,
    pub root_mode: RootMode,
    /// Also a new network namespace (only `lo`, down, until a veth is moved in).
    pub network: bool,
    /// Join this network namespace (a descriptor nslab holds, wired up beforehand by
    /// `kernel::net::uplink`) instead: the network is ready before the command starts.
    #[serde(default, skip)]
    pub join_netns: Option<std::os::fd::RawFd>,
    /// The container's environment (PATH, HOME, TERM, HOSTNAME by default).
    pub env: Vec<(String, String)>,
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
            root_mode: RootMode::PivotRoot,
            network: false,
            join_netns: None,
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
        if self.network && self.join_netns.is_none() {
            f |= CloneFlags::CLONE_NEWNET;
        }
        f
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

/// Messages from the outer child to nslab.
#[derive(Serialize, Deserialize)]
enum Report {
    Trace { lines: Vec<String> },
    Started { pid1: i32 },
    Failed(StartError),
}

/// Messages from PID 1 to the outer child (over a close-on-exec pipe: end of file with no
/// `Failed` means `execve` succeeded).
#[derive(Serialize, Deserialize)]
enum Pid1Msg {
    Trace { lines: Vec<String> },
    Exec { call: String },
    Failed(StartError),
}

/// A running container.
pub struct Container {
    outer: sys::Forked,
    /// PID 1 of the container, as the host numbers it.
    pub pid1: i32,
    pid1_start: u64,
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

/// Start a container. Returns once its command has been executed (or with the
/// [`StartError`] of the step that failed); its system calls are in the trace.
pub fn start(spec: &Spec) -> Result<Container> {
    let gave_terminal = own_terminal_foreground();
    let spec_for_child = spec.clone();
    let mut outer = sys::fork_recorded(move |io| outer_child(&spec_for_child, gave_terminal, io))?;
    let pid1 = loop {
        let report: Report = match outer.recv(Duration::from_secs(30)) {
            Ok(r) => r,
            Err(e) => {
                restore_terminal(gave_terminal);
                return Err(e.context("the container's outer process did not report"));
            }
        };
        match report {
            Report::Trace { lines } => trace::extend(lines),
            Report::Started { pid1 } => break pid1,
            Report::Failed(err) => {
                let _ = outer.wait(Duration::from_secs(10));
                restore_terminal(gave_terminal);
                return Err(err.into());
            }
        }
    };
    // PID 1 is not put on the ledger: it dies with the outer process (parent-death signal),
    // which is on it, and with the cgroup, which `nslab cleanup` empties before removing.
    let pid1_start = procs::start_time(pid1).unwrap_or(0);
    Ok(Container {
        outer,
        pid1,
        pid1_start,
        gave_terminal,
        status: None,
    })
}

fn restore_terminal(gave: bool) {
    if gave {
        take_terminal_foreground();
    }
}

impl Container {
    /// Wait for the container's command to end; its exit status (128 + signal if killed).
    /// Ctrl-C or SIGTERM sent to nslab itself ends the wait with `Interrupted`.
    pub fn wait(&mut self) -> Result<i32> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        // Block in waitid (interrupted by nslab's signal handler, which has no SA_RESTART)
        // and leave the child waitable: Forked::wait then reaps it and strikes it off.
        loop {
            use nix::sys::wait::{waitid, Id, WaitPidFlag};
            match waitid(
                Id::Pid(self.outer.pid),
                WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT,
            ) {
                Ok(_) => break,
                Err(Errno::EINTR) => sys::check_interrupt()?,
                Err(e) => return Err(e).context("waitid"),
            }
        }
        let status = self.outer.wait(Duration::from_secs(30))?;
        let code = exit_code(status);
        self.status = Some(code);
        self.finish()?;
        Ok(code)
    }

    /// Stop it now: SIGKILL to PID 1 (which ends every process in its PID namespace) and
    /// to the outer process, both reaped.
    pub fn kill(&mut self) -> Result<()> {
        sys::kill_and_reap(self.pid1, self.pid1_start)?;
        self.outer.kill()?;
        self.finish()
    }

    fn finish(&mut self) -> Result<()> {
        // PID 1 is gone once the outer process has reaped it; make sure, then strike it off.
        if self.pid1_start != 0 {
            sys::kill_and_reap(self.pid1, self.pid1_start)?;
            ledger::forget(&Resource::Process {
                pid: self.pid1,
                start_time: self.pid1_start,
            });
            self.pid1_start = 0;
        }
        if self.gave_terminal {
            self.gave_terminal = false;
            take_terminal_foreground();
        }
        Ok(())
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.kill();
        }
    }
}

/// The file the outer child writes to join `dir`, and what it writes.
///
/// A write to `cgroup.procs` moves a whole thread group, so the kernel takes its global
/// `cgroup_threadgroup_rwsem` for writing, which first waits for an RCU grace period
/// (7 to 20 ms on a 2-CPU machine). On v1, writing `0` to `tasks` moves only the calling
/// thread, and the kernel skips that lock for it; the outer child is a fresh fork, hence
/// single-threaded, so that thread is the whole process, and everything it starts
/// afterwards is born in the cgroup. v2 has no `tasks` file (`cgroup.threads` moves a
/// thread only within a threaded subtree): there it is `cgroup.procs` and the process ID.
fn join_file(dir: &Path) -> (PathBuf, String) {
    let tasks = dir.join("tasks");
    if tasks.exists() {
        (tasks, "0".into())
    } else {
        (dir.join("cgroup.procs"), nix::unistd::getpid().to_string())
    }
}

/// The outer child: joins the cgroups, unshares, forks PID 1, relays its report, waits.
fn outer_child(spec: &Spec, take_terminal: bool, io: &mut sys::ChildIo) -> i32 {
    // Lines nslab recorded before the fork were copied into this process: not ours to send.
    trace::take();
    let fail = |io: &mut sys::ChildIo, e: StartError| {
        io.send(&Report::Trace {
            lines: trace::take(),
        });
        io.send(&Report::Failed(e));
        1
    };
    for dir in &spec.cgroup_dirs {
        let (file, value) = join_file(dir);
        let r = std::fs::write(&file, &value)
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)));
        let call = format!("write(3<{}>, \"{value}\", {})", file.display(), value.len());
        trace::syscall(match &r {
            Ok(()) => format!("{call} = {}", value.len()),
            Err(e) => format!("{call} = -1 {} ({})", e, e.desc()),
        });
        if let Err(e) = r {
            return fail(
                io,
                failure(
                    "joining the cgroup",
                    format!("{}: {}", file.display(), e.desc()),
                    Some(e),
                ),
            );
        }
    }
    if take_terminal {
        let _ = traced(
            "setpgid",
            "setpgid(0, 0)".into(),
            nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0)),
        );
        take_terminal_foreground();
    }
    if let Some(fd) = spec.join_netns {
        // SAFETY: a descriptor nslab opened and keeps open while the container starts.
        let ns = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        if let Err(e) = traced(
            "setns",
            format!("setns({fd}, CLONE_NEWNET)"),
            nix::sched::setns(ns, CloneFlags::CLONE_NEWNET),
        ) {
            return fail(io, e);
        }
    }
    if let Err(e) = sys::unshare(spec.clone_flags()) {
        let errno = e.downcast_ref::<Errno>().copied();
        return fail(io, failure("unshare", format!("{e:#}"), errno));
    }
    let (status_r, status_w) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => return fail(io, failure("pipe2", e.desc(), Some(e))),
    };
    let mine = trace::take();
    // SAFETY: single-threaded; the child runs only the code below and ends in execve/_exit.
    match unsafe { nix::unistd::fork() } {
        Err(e) => {
            trace::extend(mine);
            trace::syscall(format!("fork() = -1 {} ({})", e, e.desc()));
            fail(io, failure("fork", e.desc(), Some(e)))
        }
        Ok(ForkResult::Child) => {
            drop(status_r);
            let mut out = std::fs::File::from(status_w);
            let err = pid1_child(spec, &mut out);
            let mut send = |m: &Pid1Msg| {
                if let Ok(mut line) = serde_json::to_string(m) {
                    line.push('\n');
                    let _ = out.write_all(line.as_bytes());
                }
            };
            send(&Pid1Msg::Trace {
                lines: trace::take(),
            });
            send(&Pid1Msg::Failed(err));
            unsafe { libc::_exit(127) }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(status_w);
            trace::extend(mine);
            trace::syscall(format!("fork() = {child}"));
            io.send(&Report::Trace {
                lines: trace::take(),
            });
            // The terminal's Ctrl-C and Ctrl-\ are for the container's command; this process
            // only relays its status (as `unshare --fork` does).
            unsafe {
                let _ = signal::signal(Signal::SIGINT, SigHandler::SigIgn);
                let _ = signal::signal(Signal::SIGQUIT, SigHandler::SigIgn);
            }
            let mut failed = None;
            let mut exec_call = None;
            for line in BufReader::new(std::fs::File::from(status_r)).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<Pid1Msg>(&line) {
                    Ok(Pid1Msg::Trace { lines }) => io.send(&Report::Trace { lines }),
                    Ok(Pid1Msg::Exec { call }) => exec_call = Some(call),
                    Ok(Pid1Msg::Failed(e)) => failed = Some(e),
                    Err(_) => {}
                }
            }
            let failed = failed.or_else(|| {
                exec_call
                    .is_none()
                    .then(|| failure("execve", "PID 1 ended before executing the command", None))
            });
            if let Some(e) = failed {
                io.send(&Report::Failed(e));
                let _ = waitpid(child, None);
                return 1;
            }
            if let Some(call) = exec_call {
                io.send(&Report::Trace {
                    lines: vec![format!("{call} = 0")],
                });
            }
            io.send(&Report::Started {
                pid1: child.as_raw(),
            });
            loop {
                match waitpid(child, None) {
                    Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                        return exit_code(status)
                    }
                    Ok(_) | Err(Errno::EINTR) => continue,
                    Err(_) => return 1,
                }
            }
        }
    }
}

/// PID 1: make the root, the mounts, the hostname, then exec. Returns only on failure.
fn pid1_child(spec: &Spec, status: &mut std::fs::File) -> StartError {
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    match pid1_setup(spec) {
        Err(e) => e,
        Ok((path, argv, envp, call)) => {
            if let Ok(mut line) = serde_json::to_string(&Pid1Msg::Trace {
                lines: trace::take(),
            }) {
                line.push('\n');
                let _ = status.write_all(line.as_bytes());
            }
            if let Ok(mut line) = serde_json::to_string(&Pid1Msg::Exec { call: call.clone() }) {
                line.push('\n');
                let _ = status.write_all(line.as_bytes());
            }
            let e = nix::unistd::execve(&path, &argv, &envp).unwrap_err();
            trace::syscall(format!("{call} = -1 {} ({})", e, e.desc()));
            let what = spec.command.first().cloned().unwrap_or_default();
            failure(
                "execve",
                format!("{what}: {} inside the container's root", e.desc()),
                Some(e),
            )
        }
    }
}

type Exec = (CString, Vec<CString>, Vec<CString>, String);

fn pid1_setup(spec: &Spec) -> Result<Exec, StartError> {
    // Rust ignores SIGPIPE for itself; an ignored signal survives execve, so restore it
    // (and the terminal signals) for the container's command.
    unsafe {
        for s in [
            Signal::SIGPIPE,
            Signal::SIGINT,
            Signal::SIGQUIT,
            Signal::SIGTERM,
            Signal::SIGTTOU,
        ] {
            let _ = signal::signal(s, SigHandler::SigDfl);
        }
    }
    let _ = signal::sigprocmask(
        signal::SigmaskHow::SIG_SETMASK,
        Some(&signal::SigSet::empty()),
        None,
    );
    let root = &spec.rootfs;
    sys::make_mounts_private()
        .map_err(|e| failure("mount --make-rprivate /", format!("{e:#}"), None))?;
    match spec.root_mode {
        RootMode::PivotRoot => {
            bind_self(root)?;
            setup_dev(&root.join("dev"))?;
            traced(
                "chdir",
                format!("chdir({})", q(root)),
                nix::unistd::chdir(root),
            )?;
            // new_root and put_old may be the same directory (pivot_root(2)): the old root
            // ends up stacked on top of the new one at ".", and is then detached. No
            // put_old directory has to be made inside the learner's root filesystem.
            traced(
                "pivot_root",
                "pivot_root(\".\", \".\")".into(),
                nix::unistd::pivot_root(".", "."),
            )?;
            traced(
                "umount2",
                "umount2(\".\", MNT_DETACH)".into(),
                umount2(".", MntFlags::MNT_DETACH),
            )?;
            traced("chdir", "chdir(\"/\")".into(), nix::unistd::chdir("/"))?;
            sys::mount_proc(Path::new("/proc"))
                .map_err(|e| failure("mount proc", format!("{e:#}"), None))?;
        }
        RootMode::Chroot => {
            setup_dev(&root.join("dev"))?;
            sys::mount_proc(&root.join("proc"))
                .map_err(|e| failure("mount proc", format!("{e:#}"), None))?;
            traced(
                "chroot",
                format!("chroot({})", q(root)),
                nix::unistd::chroot(root),
            )?;
            traced("chdir", "chdir(\"/\")".into(), nix::unistd::chdir("/"))?;
        }
    }
    let name = &spec.hostname;
    traced(
        "sethostname",
        format!("sethostname({name:?}, {})", name.len()),
        nix::unistd::sethostname(name),
    )?;
    nix::sys::stat::umask(Mode::from_bits_truncate(0o022));
    // Every descriptor past stderr closes at execve (see the module docs).
    let r = unsafe { libc::close_range(3, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as i32) };
    traced(
        "close_range",
        "close_range(3, ~0U, CLOSE_RANGE_CLOEXEC)".into(),
        Errno::result(r),
    )?;
    let program = spec
        .command
        .first()
        .ok_or_else(|| failure("execve", "no command given", None))?;
    let path = resolve(program, &spec.env).ok_or_else(|| {
        failure(
            "execve",
            format!("{program}: not found in the container's root (looked in {DEFAULT_PATH})"),
            Some(Errno::ENOENT),
        )
    })?;
    let c = |s: &str| {
        CString::new(s).map_err(|_| failure("execve", format!("{s:?} contains a NUL byte"), None))
    };
    let argv = spec
        .command
        .iter()
        .map(|a| c(a))
        .collect::<Result<Vec<_>, _>>()?;
    let envp = spec
        .env
        .iter()
        .map(|(k, v)| c(&format!("{k}={v}")))
        .collect::<Result<Vec<_>, _>>()?;
    let call = format!(
        "execve({:?}, {:?}, [/* {} vars */])",
        path,
        spec.command,
        spec.env.len()
    );
    Ok((c(&path)?, argv, envp, call))
}

/// Find `program` as execvp would, in the (already entered) root.
fn resolve(program: &str, env: &[(String, String)]) -> Option<String> {
    if program.contains('/') {
        return Some(program.to_string());
    }
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or(DEFAULT_PATH);
    path.split(':').map(|d| format!("{d}/{program}")).find(|p| {
        let Ok(c) = CString::new(p.as_str()) else {
            return false;
        };
        // SAFETY: c is a valid NUL-terminated string.
        unsafe { libc::access(c.as_ptr(), libc::X_OK) == 0 }
    })
}

/// `mount --rbind ROOT ROOT`: pivot_root needs the new root to be a mount point.
fn bind_self(root: &Path) -> Result<(), StartError> {
    traced(
        "mount --rbind",
        format!(
            "mount({}, {}, NULL, MS_BIND|MS_REC, NULL)",
            q(root),
            q(root)
        ),
        mount(
            Some(root),
            root,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        ),
    )
}

/// A tmpfs on `dev` with the few device nodes programs expect, like runc's default /dev.
/// Created in the container's own mount namespace: the host never sees it.
fn setup_dev(dev: &Path) -> Result<(), StartError> {
    if !dev.is_dir() {
        return Ok(());
    }
    traced(
        "mount tmpfs /dev",
        format!(
            "mount(\"tmpfs\", {}, \"tmpfs\", MS_NOSUID|MS_STRICTATIME, \"mode=755,size=65536k\")",
            q(dev)
        ),
        mount(
            Some("tmpfs"),
            dev,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
            Some("mode=755,size=65536k"),
        ),
    )?;
    let old = nix::sys::stat::umask(Mode::empty());
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
    nix::sys::stat::umask(old);
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let p = dev.join(link);
        traced(
            "symlink",
            format!("symlink({target:?}, {})", q(&p)),
            nix::unistd::symlinkat(target, nix::fcntl::AT_FDCWD, &p),
        )?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Looking at containers from the host

/// The (device, inode) of a process's root directory, `stat /proc/PID/root/`: two processes
/// share a root exactly when these match.
pub fn root_identity(pid: i32) -> Result<(u64, u64)> {
    let m = std::fs::metadata(format!("/proc/{pid}/root/"))
        .with_context(|| format!("stat /proc/{pid}/root"))?;
    Ok((m.dev(), m.ino()))
}

/// The hostname a process sees: read in a child that joins its UTS namespace (setns),
/// since /proc/sys/kernel/hostname answers for the reader's own namespace.
pub fn hostname_of(pid: i32) -> Result<String> {
    let mut child = sys::fork_recorded(move |io| {
        let path = format!("/proc/{pid}/ns/uts");
        let r = std::fs::File::open(&path)
            .map_err(|e| e.to_string())
            .and_then(|f| {
                nix::sched::setns(f, CloneFlags::CLONE_NEWUTS).map_err(|e| e.desc().to_string())
            })
            .map(|_| {
                nix::sys::utsname::uname().map(|u| u.nodename().to_string_lossy().into_owned())
            });
        let answer: Result<String, String> = match r {
            Ok(Ok(name)) => Ok(name),
            Ok(Err(e)) => Err(e.desc().to_string()),
            Err(e) => Err(format!("setns({path}): {e}")),
        };
        io.send(&answer);
        0
    })?;
    let answer: Result<String, String> = child.recv(Duration::from_secs(10))?;
    let _ = child.wait(Duration::from_secs(10));
    answer.map_err(|e| anyhow::anyhow!("reading the hostname of PID {pid}: {e}"))
}

/// This machine's hostname (the UTS namespace nslab runs in).
pub fn own_hostname() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.nodename().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// One line of /proc/PID/mountinfo (proc(5)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MountEntry {
    pub id: u32,
    pub parent: u32,
    /// The directory of the filesystem mounted here (a bind mount's source subtree).
    pub root: String,
    pub mount_point: String,
    pub options: String,
    /// `shared:N`, `master:N`, `propagate_from:N`, `unbindable`; empty when private.
    pub propagation: Vec<String>,
    pub fs_type: String,
    pub source: String,
}

/// Parse mountinfo text; lines that do not parse are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    let unescape = |s: &str| {
        s.replace("\\040", " ")
            .replace("\\011", "\t")
            .replace("\\012", "\n")
            .replace("\\134", "\\")
    };
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            if l.len() < 6 || r.len() < 2 {
                return None;
            }
            Some(MountEntry {
                id: l[0].parse().ok()?,
                parent: l[1].parse().ok()?,
                root: unescape(l[3]),
                mount_point: unescape(l[4]),
                options: l[5].to_string(),
                propagation: l[6..].iter().map(|s| s.to_string()).collect(),
                fs_type: r[0].to_string(),
                source: unescape(r[1]),
            })
        })
        .collect()
}

/// The mount table `pid` sees.
pub fn mountinfo_of(pid: i32) -> Result<Vec<MountEntry>> {
    let path = format!("/proc/{pid}/mountinfo");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    Ok(parse_mountinfo(&text))
}

/// Network interfaces in the network namespace of `pid` (`/proc/PID/net/dev` shows that
/// process's namespace, whoever reads it).
pub fn interfaces_of(pid: i32) -> Result<Vec<String>> {
    let path = format!("/proc/{pid}/net/dev");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    Ok(parse_net_dev(&text))
}

/// Interface names from /proc/net/dev text (two header lines, then `name: counters`).
pub fn parse_net_dev(text: &str) -> Vec<String> {
    text.lines()
        .skip(2)
        .filter_map(|l| l.split_once(':').map(|(n, _)| n.trim().to_string()))
        .filter(|n| !n.is_empty())
        .collect()
}

/// IPv4 routes in the network namespace of `pid` (`/proc/PID/net/route`, minus its header).
pub fn routes_of(pid: i32) -> Result<usize> {
    let path = format!("/proc/{pid}/net/route");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    Ok(text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .count())
}

/// How many forks the pids controller refused in the cgroup directory `dir`: the `max`
/// key of `pids.events`, the same file on cgroup v1 and v2.
pub fn pids_refused(dir: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join("pids.events")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("max ").and_then(|n| n.trim().parse().ok()))
}

// ---------------------------------------------------------------------------------------
// chroot alone, and why it is not a wall

/// What a chroot (or pivot_root) escape attempt found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscapeReport {
    pub mode: RootMode,
    /// `ls /` right after entering the root.
    pub inside: Vec<String>,
    /// `ls /` after the escape attempt.
    pub after: Vec<String>,
    /// Whether the attempt reached the host's real root directory.
    pub escaped: bool,
}

fn list_root() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Enter `rootfs` (with `chroot`, or with a private mount namespace and `pivot_root`) in a
/// child, then try the classic escape a privileged process can make from a chroot: chroot
/// into a subdirectory while the working directory stays above it, walk `..` upward (the
/// kernel stops `..` only at the process's *current* root, which is now below us), and
/// chroot to where the walk ends. After `chroot` alone that is the host's `/`; after
/// `pivot_root` and unmounting the old root, the host's tree is not in the namespace at all.
pub fn escape_attempt(rootfs: &Path, mode: RootMode) -> Result<EscapeReport> {
    let host_root = std::fs::metadata("/").context("stat /")?;
    let host_id = (host_root.dev(), host_root.ino());
    let rootfs = rootfs.to_path_buf();
    let mut child = sys::fork_recorded(move |io| {
        trace::take();
        let result = escape_in_child(&rootfs, mode, host_id);
        io.send(&trace::take());
        io.send(&result);
        0
    })?;
    let lines: Vec<String> = child.recv(Duration::from_secs(20))?;
    trace::extend(lines);
    let result: Result<EscapeReport, StartError> = child.recv(Duration::from_secs(20))?;
    let _ = child.wait(Duration::from_secs(10));
    Ok(result?)
}

fn escape_in_child(
    rootfs: &Path,
    mode: RootMode,
    host_id: (u64, u64),
) -> Result<EscapeReport, StartError> {
    match mode {
        RootMode::Chroot => {
            traced(
                "chroot",
                format!("chroot({})", q(rootfs)),
                nix::unistd::chroot(rootfs),
            )?;
            traced("chdir", "chdir(\"/\")".into(), nix::unistd::chdir("/"))?;
        }
        RootMode::PivotRoot => {
            sys::unshare(CloneFlags::CLONE_NEWNS)
                .map_err(|e| failure("unshare", format!("{e:#}"), None))?;
            sys::make_mounts_private()
                .map_err(|e| failure("mount --make-rprivate /", format!("{e:#}"), None))?;
            bind_self(rootfs)?;
            traced(
                "chdir",
                format!("chdir({})", q(rootfs)),
                nix::unistd::chdir(rootfs),
            )?;
            traced(
                "pivot_root",
                "pivot_root(\".\", \".\")".into(),
                nix::unistd::pivot_root(".", "."),
            )?;
            traced(
                "umount2",
                "umount2(\".\", MNT_DETACH)".into(),
                umount2(".", MntFlags::MNT_DETACH),
            )?;
            traced("chdir", "chdir(\"/\")".into(), nix::unistd::chdir("/"))?;
        }
    }
    let inside = list_root();
    // Any directory below the root will do; nothing is created in the learner's tree.
    let sub = inside
        .iter()
        .find(|n| {
            std::fs::symlink_metadata(format!("/{n}"))
                .map(|m| m.is_dir())
                .unwrap_or(false)
        })
        .cloned()
        .ok_or_else(|| {
            failure(
                "escape",
                "the root filesystem has no directory to chroot into",
                None,
            )
        })?;
    traced(
        "chroot",
        format!("chroot(\"/{sub}\")"),
        nix::unistd::chroot(format!("/{sub}").as_str()),
    )?;
    // The working directory is still the old root, now outside the process's root.
    let mut hops = 0;
    for _ in 0..64 {
        let before = std::fs::metadata(".").map(|m| (m.dev(), m.ino())).ok();
        if nix::unistd::chdir("..").is_err() {
            break;
        }
        hops += 1;
        if std::fs::metadata(".").map(|m| (m.dev(), m.ino())).ok() == before {
            break;
        }
    }
    trace::syscall(format!(
        "chdir(\"..\") = 0   (x{hops}, until \"..\" is \".\")"
    ));
    traced("chroot", "chroot(\".\")".into(), nix::unistd::chroot("."))?;
    let now = std::fs::metadata("/").map(|m| (m.dev(), m.ino())).ok();
    Ok(EscapeReport {
        mode,
        inside,
        after: list_root(),
        escaped: now == Some(host_id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_lines() {
        let text = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
101 27 254:0 /var/tmp/nslab-rootfs-1 /var/tmp/my\\040root rw,relatime master:1 propagate_from:1 - ext4 /dev/vda rw
garbage line
";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].mount_point, "/proc");
        assert_eq!(m[0].fs_type, "proc");
        assert!(m[0].propagation.is_empty());
        assert_eq!(m[1].propagation, vec!["shared:1"]);
        assert_eq!(m[2].mount_point, "/var/tmp/my root");
        assert_eq!(m[2].root, "/var/tmp/nslab-rootfs-1");
        assert_eq!(m[2].propagation, vec!["master:1", "propagate_from:1"]);
        assert_eq!(m[2].source, "/dev/vda");
    }

    #[test]
    fn own_mountinfo_has_a_root() {
        let m = mountinfo_of(std::process::id() as i32).unwrap();
        assert!(m.iter().any(|e| e.mount_point == "/"));
    }

    #[test]
    fn parses_net_dev() {
        let text = "Inter-|   Receive                            |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes
    lo:       0       0    0    0    0     0          0         0        0
  eth0: 1234 5 0 0 0 0 0 0 99 1 0 0 0 0 0 0
";
        assert_eq!(parse_net_dev(text), vec!["lo", "eth0"]);
    }

    #[test]
    fn hostnames() {
        assert!(valid_hostname("nslab"));
        assert!(valid_hostname("box-1.example"));
        assert!(!valid_hostname(""));
        assert!(!valid_hostname("-bad"));
        assert!(!valid_hostname("a b"));
        assert!(!valid_hostname(&"x".repeat(65)));
    }

    #[test]
    fn exit_codes_like_a_shell() {
        let p = Pid::from_raw(1);
        assert_eq!(exit_code(WaitStatus::Exited(p, 3)), 3);
        assert_eq!(
            exit_code(WaitStatus::Signaled(p, Signal::SIGKILL, false)),
            137
        );
    }

    // ---- root tests: real containers ----

    use crate::kernel::ns::{self, NsKind};
    use crate::kernel::rootfs::Rootfs;

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    #[test]
    fn runs_a_command_in_a_container() {
        let Some(_g) = crate::testing::root_or_skip("runs_a_command_in_a_container") else {
            return;
        };
        let rootfs = Rootfs::build().unwrap();
        let path = rootfs.path.clone();
        assert!(crate::ledger::current().contains(&Resource::Dir { path: path.clone() }));
        let spec = Spec::new(
            &rootfs.path,
            &sh("echo $$ > /tmp/out; hostname >> /tmp/out; ls / >> /tmp/out; exit 7"),
        )
        .with_hostname("nslabt-box");
        trace::take();
        let mut c = start(&spec).unwrap();
        let outer = c.outer.pid.as_raw();
        let code = c.wait().unwrap();
        assert_eq!(code, 7, "the command's exit status is passed on");
        let calls = trace::take().join("\n");
        for needed in [
            "unshare(CLONE_IPC",
            "pivot_root(\".\", \".\") = 0",
            "umount2(\".\", MNT_DETACH) = 0",
            "sethostname(\"nslabt-box\"",
            "mount(\"proc\", \"/proc\"",
            "execve(\"/bin/sh\"",
        ] {
            assert!(
                calls.contains(needed)
                    || (needed.starts_with("unshare") && calls.contains("unshare(")),
                "missing {needed} in:\n{calls}"
            );
        }
        let out = std::fs::read_to_string(path.join("tmp/out")).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "1", "the shell is PID 1 in its PID namespace");
        assert_eq!(lines[1], "nslabt-box");
        assert!(lines.contains(&"proc") && lines.contains(&"bin"), "{out}");
        // The mounts lived in the container's mount namespace: the host has none of them.
        let host_mounts = mountinfo_of(std::process::id() as i32).unwrap();
        assert!(!host_mounts
            .iter()
            .any(|m| m.mount_point.starts_with(&path.display().to_string())));
        drop(rootfs);
        assert!(!path.exists(), "the built root filesystem is removed");
        // Other tests share this process's ledger: look for this run's entries only.
        let left = crate::ledger::current();
        assert!(!left.contains(&Resource::Dir { path: path.clone() }));
        assert!(!left
            .iter()
            .any(|r| matches!(r, Resource::Process { pid, .. } if *pid == outer)));
    }

    #[test]
    fn container_namespaces_root_and_hostname_differ_from_host() {
        let Some(_g) =
            crate::testing::root_or_skip("container_namespaces_root_and_hostname_differ_from_host")
        else {
            return;
        };
        let rootfs = Rootfs::build().unwrap();
        let spec = Spec::new(&rootfs.path, &["sleep".to_string(), "30".to_string()])
            .with_hostname("nslabt-ns");
        let mut c = start(&spec).unwrap();
        let me = std::process::id() as i32;
        let inside = ns::of_pid(c.pid1).unwrap();
        let host = ns::of_pid(me).unwrap();
        for k in [NsKind::Pid, NsKind::Mnt, NsKind::Uts, NsKind::Ipc] {
            assert_ne!(inside.inode(k), host.inode(k), "{k:?} namespace is new");
        }
        for k in [NsKind::Net, NsKind::User, NsKind::Cgroup] {
            assert_eq!(inside.inode(k), host.inode(k), "{k:?} namespace is shared");
        }
        assert_eq!(hostname_of(c.pid1).unwrap(), "nslabt-ns");
        assert_ne!(own_hostname(), "nslabt-ns");
        assert_ne!(root_identity(c.pid1).unwrap(), root_identity(me).unwrap());
        let p = procs::process(c.pid1).unwrap();
        assert_eq!(p.nspid.last(), Some(&1), "PID 1 inside: {:?}", p.nspid);
        assert_eq!(p.comm, "sleep", "PID 1 runs the command itself, not nslab");
        let exe = std::fs::read_link(format!("/proc/{}/exe", c.pid1)).unwrap();
        assert!(
            !exe.to_string_lossy().contains("nslab-"),
            "PID 1 is not nslab's binary: {}",
            exe.display()
        );
        // Only stdin/stdout/stderr crossed into the container.
        let fds: Vec<String> = std::fs::read_dir(format!("/proc/{}/fd", c.pid1))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            fds.iter().all(|f| ["0", "1", "2"].contains(&f.as_str())),
            "open fds: {fds:?}"
        );
        let mounts = mountinfo_of(c.pid1).unwrap();
        let points: Vec<&str> = mounts.iter().map(|m| m.mount_point.as_str()).collect();
        assert!(
            points.contains(&"/") && points.contains(&"/proc") && points.contains(&"/dev"),
            "{points:?}"
        );
        assert!(
            !points.iter().any(|p| p.starts_with("/sys")),
            "host mounts are gone: {points:?}"
        );
        let pid1 = c.pid1;
        c.kill().unwrap();
        assert!(procs::process(pid1).is_none_or(|p| p.is_zombie() || p.comm != "sleep"));
    }

    #[test]
    fn missing_command_is_reported() {
        let Some(_g) = crate::testing::root_or_skip("missing_command_is_reported") else {
            return;
        };
        let rootfs = Rootfs::build().unwrap();
        let err = start(&Spec::new(
            &rootfs.path,
            &["nslabt-no-such-command".to_string()],
        ))
        .err()
        .expect("fails");
        let se = err.downcast_ref::<StartError>().expect("a StartError");
        assert!(se.command_not_found(), "{se}");
        // The outer child was reaped and struck off (others' live entries may be there).
        assert!(crate::ledger::current().iter().all(|r| match r {
            Resource::Process { pid, start_time } => procs::is_same_process(*pid, *start_time),
            _ => true,
        }));
    }

    #[test]
    fn chroot_can_be_escaped_pivot_root_cannot() {
        let Some(_g) = crate::testing::root_or_skip("chroot_can_be_escaped_pivot_root_cannot")
        else {
            return;
        };
        let rootfs = Rootfs::build().unwrap();
        let chroot = escape_attempt(&rootfs.path, RootMode::Chroot).unwrap();
        assert!(chroot.inside.contains(&"bin".to_string()));
        assert!(chroot.escaped, "{chroot:?}");
        assert!(
            chroot.after.contains(&"var".to_string()),
            "the host's / after the escape: {:?}",
            chroot.after
        );
        let pivot = escape_attempt(&rootfs.path, RootMode::PivotRoot).unwrap();
        assert!(!pivot.escaped, "{pivot:?}");
        assert_eq!(pivot.inside, pivot.after);
    }

    #[test]
    fn chroot_mode_container_and_host_programs_rootfs() {
        let Some(_g) =
            crate::testing::root_or_skip("chroot_mode_container_and_host_programs_rootfs")
        else {
            return;
        };
        let rootfs = Rootfs::build_from_host(crate::kernel::rootfs::HOST_PROGRAMS).unwrap();
        let summary = rootfs.summary().unwrap();
        assert!(summary.bytes > 100_000 && summary.files > 3, "{summary:?}");
        let mut spec = Spec::new(
            &rootfs.path,
            &sh("ls /bin > /tmp/out && cat /proc/1/comm >> /tmp/out"),
        );
        spec.root_mode = RootMode::Chroot;
        let mut c = start(&spec).unwrap();
        assert_eq!(c.wait().unwrap(), 0);
        let out = std::fs::read_to_string(rootfs.path.join("tmp/out")).unwrap();
        assert!(out.contains("ls") && out.contains("sh"), "{out}");
    }
}
