//! A container, made of the kernel's own parts: a cgroup joined, new PID, mount, UTS and
//! IPC namespaces, a root filesystem made the root with `pivot_root` (or only `chroot`),
//! a procfs for the new PID namespace, a minimal `/dev`, a hostname, then `execve`.
//!
//! One process does it, made by clone(2) with the namespace flags, as runc does:
//!
//! ```text
//! nslab ── clone(NEWPID|NEWNS|NEWUTS|NEWIPC) ──> PID 1: mounts, /proc, hostname,
//!   │                                             pivot_root, joins the cgroup, execve(CMD)
//!   └─ meanwhile: makes the cgroup PID 1 joins, then waits for it
//! ```
//!
//! (On pure cgroup v2 nslab makes the cgroup first and PID 1 is born inside it.)
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

use super::cgroup::CgVersion;
use super::{sys, trace};
use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::signal::{self, SigHandler, Signal};
use nix::sys::stat::{Mode, SFlag};
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::ffi::CString;
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
    /// cgroup directories (one per v1 hierarchy, or one v2 directory) PID 1 is in before
    /// it executes the command, so everything the command starts is inside.
    pub cgroup_dirs: Vec<PathBuf>,
    /// The controllers of the cgroup [`start_with`] makes, not known as directories yet:
    /// PID 1 keeps a handle on the hierarchies holding them (and on those of `cgroup_dirs`).
    pub cgroup_controllers: Vec<String>,
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
            cgroup_controllers: Vec::new(),
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

/// Messages from PID 1 to nslab (over a close-on-exec pipe: its end after an `Exec` with
/// no `Failed` means `execve` succeeded).
#[derive(Serialize, Deserialize)]
enum Report {
    Trace { lines: Vec<String> },
    Exec { call: String },
    Failed(StartError),
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
    let (mut v2, v1): (Vec<PathBuf>, Vec<PathBuf>) = spec
        .cgroup_dirs
        .iter()
        .cloned()
        .partition(|d| super::cgroup::version_of_dir(d) == CgVersion::V2);
    let born_in = (!v2.is_empty()).then(|| v2.remove(0));
    start_inner(spec, born_in, move || {
        Ok(v1.into_iter().chain(v2).collect())
    })
}

/// [`start`], with the cgroup PID 1 goes into made by `make_cgroup` (which returns its
/// directories, holding `spec.cgroup_controllers`). On cgroup v1 that runs while PID 1
/// builds its root filesystem, and PID 1 joins each hierarchy through `tasks` afterwards:
/// on a machine with two CPUs, making the cgroup then costs little time of its own. On pure v2 it runs first, so that PID 1 can be
/// born inside (a later join would wait for an RCU grace period).
pub fn start_with(
    spec: &Spec,
    make_cgroup: impl FnOnce() -> Result<Vec<PathBuf>>,
) -> Result<Container> {
    if super::cgroup::is_pure_v2() {
        let mut spec = spec.clone();
        spec.cgroup_dirs = make_cgroup()?;
        return start(&spec);
    }
    start_inner(spec, None, make_cgroup)
}

fn start_inner(
    spec: &Spec,
    born_in: Option<PathBuf>,
    // The cgroup directories PID 1 joins, made while it builds its root.
    make_cgroup: impl FnOnce() -> Result<Vec<PathBuf>>,
) -> Result<Container> {
    let cgroup_fd = born_in.as_deref().map(open_cgroup_dir).transpose()?;
    let gave_terminal = own_terminal_foreground();
    let spec_for_child = spec.clone();
    let nslab_cpu = nix::sched::sched_getcpu().ok();
    let (mut child, born) = match sys::clone_recorded(
        spec.clone_flags(),
        cgroup_fd.as_ref().map(|f| f.as_fd()),
        move |io| pid1_main(&spec_for_child, gave_terminal, nslab_cpu, io),
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
    let dirs = match make_cgroup() {
        Ok(dirs) => join_too.into_iter().chain(dirs).collect::<Vec<_>>(),
        Err(e) => return fail(&mut child, e),
    };
    let order = serde_json::to_string(&dirs).context("cgroup directories")?;
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

/// The file PID 1 writes `0` into to join a cgroup of this version.
///
/// A write to `cgroup.procs` moves a whole thread group, so the kernel takes its global
/// `cgroup_threadgroup_rwsem` for writing, which first waits for an RCU grace period
/// (7 to 20 ms on a 2-CPU machine). On v1, writing `0` to `tasks` moves only the calling
/// thread, and the kernel skips that lock for it; PID 1 is a fresh clone, hence
/// single-threaded, so that thread is the whole process, and everything it starts
/// afterwards is born in the cgroup. v2 has no `tasks` file (`cgroup.threads` moves a
/// thread only within a threaded subtree): there it is `cgroup.procs`, and `0` for itself.
/// It has to be `0`, the writer itself: for another thread the kernel takes the lock all
/// the same (`cgroup_procs_write_start`), which is why PID 1 joins rather than nslab
/// moving it.
fn join_file(version: CgVersion) -> &'static str {
    match version {
        CgVersion::V1 => "tasks",
        CgVersion::V2 => "cgroup.procs",
    }
}

/// PID 1, from its first instruction in the new namespaces: its mounts and hostname, the
/// new root, the cgroups nslab names (through the cgroup filesystems it kept open), then
/// the command. Returns only on failure.
fn pid1_main(
    spec: &Spec,
    take_terminal: bool,
    nslab_cpu: Option<usize>,
    io: &mut sys::ChildIo,
) -> i32 {
    // Lines nslab recorded before the clone were copied into this process: not ours to send.
    trace::take();
    let off_nslab_cpu = nslab_cpu.and_then(OffNslabCpu::leave);
    let err = match pid1_setup(spec, take_terminal, off_nslab_cpu, io) {
        Err(e) => e,
        Ok((path, argv, envp, call)) => {
            io.send_all(&[
                Report::Trace {
                    lines: trace::take(),
                },
                Report::Exec { call: call.clone() },
            ]);
            let e = nix::unistd::execve(&path, &argv, &envp).unwrap_err();
            trace::syscall(format!("{call} = -1 {} ({})", e, e.desc()));
            let what = spec.command.first().cloned().unwrap_or_default();
            failure(
                "execve",
                format!("{what}: {} inside the container's root", e.desc()),
                Some(e),
            )
        }
    };
    io.send_all(&[
        Report::Trace {
            lines: trace::take(),
        },
        Report::Failed(err),
    ]);
    127
}

/// PID 1 off nslab's CPU while it builds its root and nslab makes the cgroup.
///
/// A new process is usually placed on its parent's CPU, where it preempts the parent, and
/// is often woken there again (after `umount2`, which waits for an RCU grace period). The
/// scheduler then leaves it there, as a task that ran within the last half millisecond
/// still has a warm cache, so the two would take turns on one CPU while another idles:
/// half a millisecond more per start, measured on two CPUs. PID 1 therefore moves off
/// nslab's CPU first, and back to the CPUs it started with (its cgroup's, or nslab's,
/// which the command then inherits as after any fork) once its root is built.
struct OffNslabCpu {
    /// PID 1's own affinity when it started.
    own: nix::sched::CpuSet,
}

impl OffNslabCpu {
    /// In PID 1: leave `nslab_cpu` if another CPU is allowed. Only a matter of speed: a
    /// failure is in the trace and nothing more.
    fn leave(nslab_cpu: usize) -> Option<OffNslabCpu> {
        let own = nix::sched::sched_getaffinity(Pid::from_raw(0)).ok()?;
        let mut elsewhere = own;
        elsewhere.unset(nslab_cpu).ok()?;
        if sys::cpu_list(&elsewhere).is_empty() {
            return None;
        }
        sys::set_affinity(0, &elsewhere).ok()?;
        Some(OffNslabCpu { own })
    }

    /// In PID 1: back to the CPUs it started with, before the command can inherit fewer.
    fn restore(self) -> Result<(), StartError> {
        sys::set_affinity(0, &self.own).map_err(|e| {
            failure(
                "sched_setaffinity",
                format!("restoring PID 1's CPUs: {}", e.desc()),
                Some(e),
            )
        })
    }
}

/// The cgroup filesystems PID 1 keeps open across the change of root: nslab makes the
/// cgroup while PID 1 builds its root, and once the host's tree is out of sight PID 1
/// still reaches the new directories through these (`openat` relative to them).
struct HeldMounts(Vec<HeldMount>);

struct HeldMount {
    mount_point: PathBuf,
    version: CgVersion,
    fd: std::os::fd::OwnedFd,
}

impl HeldMounts {
    /// An `O_PATH` descriptor on each hierarchy holding one of the spec's
    /// `cgroup_controllers` or `cgroup_dirs`.
    fn open(spec: &Spec) -> Result<HeldMounts, StartError> {
        use nix::fcntl::{open, OFlag};
        use std::os::fd::AsRawFd;
        let mut held: Vec<HeldMount> = Vec::new();
        if spec.cgroup_controllers.is_empty() && spec.cgroup_dirs.is_empty() {
            return Ok(HeldMounts(held));
        }
        let layout = super::cgroup::Layout::read()
            .map_err(|e| failure("finding the cgroup filesystems", format!("{e:#}"), None))?;
        let mounts = layout
            .v1
            .iter()
            .map(|h| (h.mount_point.clone(), CgVersion::V1))
            .chain(
                layout
                    .unified
                    .iter()
                    .map(|u| (u.mount_point.clone(), CgVersion::V2)),
            );
        let of_dirs = mounts.filter(|(m, _)| spec.cgroup_dirs.iter().any(|d| d.starts_with(m)));
        let of_controllers = spec
            .cgroup_controllers
            .iter()
            .filter_map(|c| layout.mount_of(c));
        for (mount_point, version) in of_dirs.chain(of_controllers) {
            if held.iter().any(|h| h.mount_point == mount_point) {
                continue;
            }
            let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
            let call = format!(
                "openat(AT_FDCWD, {}, O_PATH|O_DIRECTORY|O_CLOEXEC)",
                q(&mount_point)
            );
            let fd = open(&mount_point, flags, Mode::empty());
            trace::syscall(match &fd {
                Ok(fd) => format!("{call} = {}", fd.as_raw_fd()),
                Err(e) => format!("{call} = -1 {} ({})", e, e.desc()),
            });
            let fd = fd.map_err(|e| {
                failure(
                    "opening the cgroup filesystem",
                    format!("{}: {}", mount_point.display(), e.desc()),
                    Some(e),
                )
            })?;
            held.push(HeldMount {
                mount_point,
                version,
                fd,
            });
        }
        Ok(HeldMounts(held))
    }

    /// The held mount `dir` lies in, and `dir` relative to it.
    fn locate(&self, dir: &Path) -> Option<(&HeldMount, PathBuf)> {
        self.0
            .iter()
            .filter_map(|h| Some((h, dir.strip_prefix(&h.mount_point).ok()?)))
            .max_by_key(|(h, _)| h.mount_point.as_os_str().len())
            .map(|(h, rel)| (h, rel.to_path_buf()))
    }
}

/// Join each cgroup directory nslab sends (a JSON list) once it has made them: `0` (the
/// writer itself) into its [`join_file`] (by the version of the held cgroup filesystem it
/// lies in), opened relative to that filesystem.
fn join_cgroups(io: &mut sys::ChildIo, held: &HeldMounts) -> Result<(), StartError> {
    use nix::fcntl::{openat, OFlag};
    use std::os::fd::AsRawFd;
    let order = io
        .wait_order()
        .ok_or_else(|| failure("joining the cgroup", "nslab has gone", None))?;
    let dirs: Vec<PathBuf> = serde_json::from_str(&order)
        .map_err(|e| failure("joining the cgroup", format!("unreadable order: {e}"), None))?;
    for dir in &dirs {
        let Some((mount, rel)) = held.locate(dir) else {
            return Err(failure(
                "joining the cgroup",
                format!(
                    "{} is in no cgroup filesystem PID 1 kept open",
                    dir.display()
                ),
                None,
            ));
        };
        let name = join_file(mount.version);
        let file = rel.join(name);
        let call = format!(
            "openat({}<{}>, {}, O_WRONLY|O_CLOEXEC)",
            mount.fd.as_raw_fd(),
            mount.mount_point.display(),
            q(&file)
        );
        let fd = openat(
            &mount.fd,
            &file,
            OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        );
        trace::syscall(match &fd {
            Ok(fd) => format!("{call} = {}", fd.as_raw_fd()),
            Err(e) => format!("{call} = -1 {} ({})", e, e.desc()),
        });
        let joined = fd.and_then(|fd| {
            let r = nix::unistd::write(&fd, b"0");
            trace::syscall(format!(
                "write({}, \"0\", 1) = {}",
                fd.as_raw_fd(),
                match &r {
                    Ok(n) => n.to_string(),
                    Err(e) => format!("-1 {} ({})", e, e.desc()),
                }
            ));
            r
        });
        if let Err(e) = joined {
            return Err(failure(
                "joining the cgroup",
                format!("{}: {}", dir.join(name).display(), e.desc()),
                Some(e),
            ));
        }
    }
    Ok(())
}

type Exec = (CString, Vec<CString>, Vec<CString>, String);

fn set_hostname(name: &str) -> Result<(), StartError> {
    traced(
        "sethostname",
        format!("sethostname({name:?}, {})", name.len()),
        nix::unistd::sethostname(name),
    )
}

fn pid1_setup(
    spec: &Spec,
    take_terminal: bool,
    off_nslab_cpu: Option<OffNslabCpu>,
    io: &mut sys::ChildIo,
) -> Result<Exec, StartError> {
    if let Some(fd) = spec.join_netns {
        // SAFETY: a descriptor nslab opened and keeps open while the container starts;
        // this process has its own copy of it.
        let ns = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        traced(
            "setns",
            format!("setns({fd}, CLONE_NEWNET)"),
            nix::sched::setns(ns, CloneFlags::CLONE_NEWNET),
        )?;
    }
    if take_terminal {
        traced(
            "setpgid",
            "setpgid(0, 0)".into(),
            nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0)),
        )?;
        take_terminal_foreground();
    }
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
    let held = HeldMounts::open(spec)?;
    sys::make_mounts_private()
        .map_err(|e| failure("mount --make-rprivate /", format!("{e:#}"), None))?;
    match spec.root_mode {
        RootMode::PivotRoot => {
            bind_self(root)?;
            setup_dev(&root.join("dev"))?;
            // Mounted inside the new root before pivot_root, /proc moves along with it.
            sys::mount_proc(&root.join("proc"))
                .map_err(|e| failure("mount proc", format!("{e:#}"), None))?;
            set_hostname(&spec.hostname)?;
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
        }
        RootMode::Chroot => {
            setup_dev(&root.join("dev"))?;
            sys::mount_proc(&root.join("proc"))
                .map_err(|e| failure("mount proc", format!("{e:#}"), None))?;
            set_hostname(&spec.hostname)?;
            traced(
                "chroot",
                format!("chroot({})", q(root)),
                nix::unistd::chroot(root),
            )?;
            traced("chdir", "chdir(\"/\")".into(), nix::unistd::chdir("/"))?;
        }
    }
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
    let exec = (c(&path)?, argv, envp, call);
    // The root is ready: what is left before execve is joining the cgroup nslab has been
    // making meanwhile. nslab is about to wait too, so PID 1 may share its CPU again.
    if let Some(off) = off_nslab_cpu {
        off.restore()?;
    }
    join_cgroups(io, &held)?;
    drop(held);
    Ok(exec)
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

/// The mount table as lessons and views name it (one parser: [`crate::kernel::mountinfo`]).
pub use crate::kernel::mountinfo::{of_pid as mountinfo_of, Mount as MountEntry};

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
    use crate::kernel::procs;
    use crate::ledger::Resource;

    #[test]
    fn pid1_leaves_nslab_s_cpu_and_takes_back_what_it_had() {
        // This test's thread stands in for PID 1; the affinity is the thread's own.
        let own = nix::sched::sched_getaffinity(Pid::from_raw(0)).unwrap();
        let cpus = sys::cpu_list(&own);
        let nslab_cpu = cpus[0];
        trace::take();
        let Some(off) = OffNslabCpu::leave(nslab_cpu) else {
            assert_eq!(cpus.len(), 1, "with {cpus:?} there is another CPU to go to");
            assert!(trace::take().is_empty(), "nothing tried with one CPU");
            return;
        };
        let away = nix::sched::sched_getaffinity(Pid::from_raw(0)).unwrap();
        let restored = off.restore();
        let back = nix::sched::sched_getaffinity(Pid::from_raw(0)).unwrap();
        assert_eq!(sys::cpu_list(&away), cpus[1..].to_vec());
        assert!(restored.is_ok());
        assert_eq!(sys::cpu_list(&back), cpus);
        let list = |c: &[usize]| {
            c.iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            trace::take(),
            [
                format!("sched_setaffinity(0, 128, [{}]) = 0", list(&cpus[1..])),
                format!("sched_setaffinity(0, 128, [{}]) = 0", list(&cpus)),
            ]
        );
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
    fn a_cgroup_directory_is_found_in_the_innermost_held_mount() {
        let held = |mount_point: &str, version| HeldMount {
            mount_point: PathBuf::from(mount_point),
            version,
            fd: std::fs::File::open("/dev/null").unwrap().into(),
        };
        let held = HeldMounts(vec![
            held("/sys/fs/cgroup", CgVersion::V2),
            held("/sys/fs/cgroup/cpu", CgVersion::V1),
            held("/sys/fs/cgroup/memory", CgVersion::V1),
        ]);
        let (found, rel) = held
            .locate(Path::new("/sys/fs/cgroup/memory/a/nslab/run-1"))
            .unwrap();
        assert!(std::ptr::eq(found, &held.0[2]));
        assert_eq!(rel, Path::new("a/nslab/run-1"));
        // Whole components only: cpu,cpuacct is not under cpu.
        let (found, rel) = held
            .locate(Path::new("/sys/fs/cgroup/cpu,cpuacct/nslab"))
            .unwrap();
        assert!(std::ptr::eq(found, &held.0[0]));
        assert_eq!(rel, Path::new("cpu,cpuacct/nslab"));
        assert!(held.locate(Path::new("/elsewhere/nslab")).is_none());
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
        let pid1 = c.pid1;
        let code = c.wait().unwrap();
        assert_eq!(code, 7, "the command's exit status is passed on");
        let calls = trace::take().join("\n");
        for needed in [
            "clone(flags=CLONE_NEWIPC|CLONE_NEWNS|CLONE_NEWPID|CLONE_NEWUTS|SIGCHLD) = ",
            "pivot_root(\".\", \".\") = 0",
            "umount2(\".\", MNT_DETACH) = 0",
            "sethostname(\"nslabt-box\"",
            "mount(\"proc\", \"/var/tmp/nslab-rootfs-",
            "execve(\"/bin/sh\"",
        ] {
            assert!(calls.contains(needed), "missing {needed} in:\n{calls}");
        }
        let out = std::fs::read_to_string(path.join("tmp/out")).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "1", "the shell is PID 1 in its PID namespace");
        assert_eq!(lines[1], "nslabt-box");
        assert!(lines.contains(&"proc") && lines.contains(&"bin"), "{out}");
        // The mounts lived in the container's mount namespace: the host has none of them.
        let host_mounts = mountinfo_of(std::process::id() as i32).unwrap();
        assert!(!host_mounts.iter().any(|m| m.mount_point.starts_with(&path)));
        drop(rootfs);
        assert!(!path.exists(), "the built root filesystem is removed");
        // Other tests share this process's ledger: look for this run's entries only.
        let left = crate::ledger::current();
        assert!(!left.contains(&Resource::Dir { path: path.clone() }));
        assert!(!left
            .iter()
            .any(|r| matches!(r, Resource::Process { pid, .. } if *pid == pid1)));
    }

    /// A cgroup v2 directory nslab made for a test: on the ledger before mkdir, removed on drop.
    struct V2Dir(PathBuf);

    impl V2Dir {
        /// `nslab-<what>-PID` under this process's own cgroup in the v2 hierarchy (also
        /// mounted on a hybrid machine, at /sys/fs/cgroup/unified), if there is one.
        fn make(what: &str) -> Option<V2Dir> {
            use crate::kernel::cgroup::{own_cgroup, Layout};
            let unified = Layout::read().unwrap().unified?;
            let own = own_cgroup().unwrap();
            let own = own.iter().find(|p| p.hierarchy_id == 0)?;
            let dir = unified
                .mount_point
                .join(own.path.trim_start_matches('/'))
                .join(format!("nslab-{what}-{}", std::process::id()));
            crate::ledger::record(Resource::Cgroup { path: dir.clone() }).unwrap();
            std::fs::create_dir(&dir).unwrap();
            Some(V2Dir(dir))
        }
    }

    impl Drop for V2Dir {
        fn drop(&mut self) {
            // Struck off only once gone: otherwise `nslab cleanup` still finds it.
            if std::fs::remove_dir(&self.0).is_ok() {
                crate::ledger::forget(&Resource::Cgroup {
                    path: self.0.clone(),
                });
            }
        }
    }

    #[test]
    fn pid1_is_born_in_its_v2_cgroup() {
        let Some(_g) = crate::testing::root_or_skip("pid1_is_born_in_its_v2_cgroup") else {
            return;
        };
        let Some(dir) = V2Dir::make("born") else {
            eprintln!("skipped pid1_is_born_in_its_v2_cgroup: no cgroup2 mount here");
            return;
        };
        let rootfs = Rootfs::build().unwrap();
        let mut spec = Spec::new(&rootfs.path, &sh("cat /proc/1/cgroup > /tmp/out"));
        spec.cgroup_dirs = vec![dir.0.clone()];
        trace::take();
        let mut c = start(&spec).unwrap();
        assert_eq!(c.wait().unwrap(), 0);
        let calls = trace::take().join("\n");
        if !c.born_in_cgroup {
            // The plain clone and a join instead: right only where clone3 is filtered
            // (ENOSYS, EPERM) or the kernel predates CLONE_INTO_CGROUP (5.7).
            assert!(calls.contains("cgroup.procs"), "{calls}");
            let release = nix::sys::utsname::uname().unwrap();
            let release = release.release().to_string_lossy().into_owned();
            let mut v = release
                .split(['.', '-'])
                .map(|n| n.parse::<u32>().unwrap_or(0));
            let old_kernel = (v.next().unwrap_or(0), v.next().unwrap_or(0)) < (5, 7);
            assert!(
                old_kernel || calls.contains("ENOSYS") || calls.contains("EPERM"),
                "clone3 refused on {release}: {calls}"
            );
            eprintln!("skipped pid1_is_born_in_its_v2_cgroup: no CLONE_INTO_CGROUP here: {calls}");
            return;
        }
        assert!(
            calls.contains(
                "clone3({flags=CLONE_NEWIPC|CLONE_NEWNS|CLONE_NEWPID|CLONE_NEWUTS|CLONE_INTO_CGROUP, \
                 exit_signal=SIGCHLD, cgroup="
            ),
            "{calls}"
        );
        assert!(
            !calls.contains("cgroup.procs"),
            "no move afterwards: {calls}"
        );
        let out = std::fs::read_to_string(rootfs.path.join("tmp/out")).unwrap();
        let v2_line = out
            .lines()
            .find(|l| l.starts_with("0::"))
            .unwrap_or_default();
        assert!(
            v2_line.ends_with(&format!("/nslab-born-{}", std::process::id())),
            "PID 1 was in its cgroup from the start: {out}"
        );
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
        let points: Vec<&str> = mounts
            .iter()
            .filter_map(|m| m.mount_point.to_str())
            .collect();
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
        // PID 1 was reaped and struck off (others' live entries may be there).
        assert!(crate::ledger::current().iter().all(|r| match r {
            Resource::Process { pid, start_time } => procs::is_same_process(*pid, *start_time),
            _ => true,
        }));
    }

    #[test]
    fn a_failure_before_the_order_is_reported_as_such() {
        let Some(_g) =
            crate::testing::root_or_skip("a_failure_before_the_order_is_reported_as_such")
        else {
            return;
        };
        let rootfs = Rootfs::build().unwrap();
        let spec = Spec::new(&rootfs.path, &["nslabt-no-such-command".to_string()]);
        // A slow cgroup: PID 1 finds no command and ends before nslab sends its order.
        let err = start_with(&spec, || {
            std::thread::sleep(Duration::from_millis(300));
            Ok(Vec::new())
        })
        .err()
        .expect("fails");
        let se = err
            .downcast_ref::<StartError>()
            .unwrap_or_else(|| panic!("PID 1's own report, not {err:#}"));
        assert!(se.command_not_found(), "{se}");
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
