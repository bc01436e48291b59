//! PID 1 of a container, from its first instruction in the new namespaces to execve:
//! its network's `lo`, its mounts and hostname, the new root, then inside it /dev, /proc
//! and /sys, the cgroups nslab names (through the cgroup filesystems it kept open), a
//! cgroup namespace, and last the privileges it gives up.

use super::cgroup_join::{join_cgroups, HeldMounts};
use super::Order;
use super::*;

/// PID 1, from its first instruction in the new namespaces: its mounts and hostname, the
/// new root, the cgroups nslab names (through the cgroup filesystems it kept open), then
/// the command. Returns only on failure.
pub(super) fn pid1_main(
    spec: &Spec,
    take_terminal: bool,
    off_nslab_cpu: Option<OffNslabCpu>,
    io: &mut sys::ChildIo,
) -> i32 {
    // Lines nslab recorded before the clone were copied into this process: not ours to send.
    trace::take();
    let err = match pid1_setup(spec, take_terminal, off_nslab_cpu, io) {
        Err(e) => e,
        Ok(exec) if spec.init => super::init::fork_and_wait(exec, io),
        Ok(exec) => exec_command(exec, io),
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
/// A new process is usually placed on its parent's CPU and waits there while the parent
/// runs on (here nearly a millisecond while the other CPU idled), and is often woken there
/// again (after `umount2`, which waits for an RCU grace period): the two would take turns
/// on one CPU while another idles. So nslab moves PID 1 to the other CPUs the moment it
/// exists (a task that has not run yet moves without a migration), and PID 1 goes back to
/// the CPUs it was born with (its cgroup's, or nslab's, which the command then inherits as
/// after any fork) once its root is built.
#[derive(Clone)]
pub(super) struct OffNslabCpu {
    /// The affinity PID 1 is born with (nslab's own).
    own: nix::sched::CpuSet,
    /// Those CPUs but nslab's.
    elsewhere: nix::sched::CpuSet,
}

impl OffNslabCpu {
    /// In nslab, before the clone: the CPUs away from `nslab_cpu`, if there are any. Only
    /// a matter of speed: without, PID 1 stays where the kernel puts it.
    pub(super) fn plan(nslab_cpu: usize) -> Option<OffNslabCpu> {
        let own = nix::sched::sched_getaffinity(Pid::from_raw(0)).ok()?;
        let mut elsewhere = own;
        elsewhere.unset(nslab_cpu).ok()?;
        if sys::cpu_list(&elsewhere).is_empty() {
            return None;
        }
        Some(OffNslabCpu { own, elsewhere })
    }

    /// In nslab, right after the clone: move PID 1 (`pid`, as the host numbers it) off
    /// nslab's CPU. A failure is in the trace and nothing more.
    pub(super) fn send(&self, pid: i32) {
        let _ = sys::set_affinity(pid, &self.elsewhere);
    }

    /// In PID 1: back to the CPUs it was born with, before the command can inherit fewer.
    pub(super) fn restore(self) -> Result<(), StartError> {
        sys::set_affinity(0, &self.own).map_err(|e| {
            failure(
                "sched_setaffinity",
                format!("restoring PID 1's CPUs: {}", e.desc()),
                Some(e),
            )
        })
    }
}

use super::init::Exec;

/// Tell nslab the execve is next, then make it; returns only if it failed.
pub(super) fn exec_command(exec: Exec, io: &mut sys::ChildIo) -> StartError {
    let (path, argv, envp, call) = exec;
    io.send_all(&[
        Report::Trace {
            lines: trace::take(),
        },
        Report::Exec { call: call.clone() },
    ]);
    let e = nix::unistd::execve(&path, &argv, &envp).unwrap_err();
    trace::syscall(format!("{call} = -1 {} ({})", e, e.desc()));
    let what = argv
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    failure(
        "execve",
        format!("{what}: {} inside the container's root", e.desc()),
        Some(e),
    )
}

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
    } else if !spec.handed_net() {
        // Born in a new network namespace (CLONE_NEWNET): only `lo`, down.
        super::netns::loopback_up()?;
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
    set_hostname(&spec.hostname)?;
    match spec.root_mode {
        RootMode::PivotRoot => {
            bind_self(root)?;
            masks::nodev_below(root)?;
            pivot_into(root)?;
        }
        RootMode::Chroot => {
            traced(
                "chroot",
                format!("chroot({})", q(root)),
                nix::unistd::chroot(root),
            )?;
            traced("chdir", "chdir(\"/\")".into(), nix::unistd::chdir("/"))?;
        }
    }
    // Inside the new root, every path below resolves there (a symlink `dev` -> /etc is
    // the container's /etc): nothing is mounted on the host's tree.
    dev::setup()?;
    masks::proc()?;
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
    let order = read_order(io)?;
    if let (Some(pidfd), Some(fd)) = (spec.nslab_pidfd, order.netns_fd) {
        super::netns::join(pidfd, fd)?;
    } else if spec.handed_net() {
        super::netns::of_its_own()?;
    }
    // Mounted once PID 1 is in its network namespace: /sys/class/net lists the
    // interfaces of the namespace that mounts sysfs.
    masks::sys()?;
    join_cgroups(&order.cgroup_dirs, &held)?;
    drop(held);
    // Its own cgroup namespace, made once PID 1 is in its cgroups: there, each is `/`.
    traced(
        "unshare",
        "unshare(CLONE_NEWCGROUP)".into(),
        nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP),
    )?;
    caps::give_up(spec.capabilities)?;
    Ok(exec)
}

/// nslab's go-ahead: the cgroup directories it has made, and its descriptor on the network
/// namespace it made, if it did.
fn read_order(io: &mut sys::ChildIo) -> Result<Order, StartError> {
    let line = io
        .wait_order()
        .ok_or_else(|| failure("waiting for nslab", "nslab has gone", None))?;
    serde_json::from_str(&line)
        .map_err(|e| failure("waiting for nslab", format!("unreadable order: {e}"), None))
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

/// Make `root` (a mount point) the root: chdir, pivot_root, detach the old root, chdir /.
pub(super) fn pivot_into(root: &Path) -> Result<(), StartError> {
    traced(
        "chdir",
        format!("chdir({})", q(root)),
        nix::unistd::chdir(root),
    )?;
    // new_root and put_old may be the same directory (pivot_root(2)): the old root ends up
    // stacked on top of the new one at ".", and is then detached. No put_old directory has
    // to be made inside the learner's root filesystem.
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
    traced("chdir", "chdir(\"/\")".into(), nix::unistd::chdir("/"))
}

/// `mount --rbind ROOT ROOT`: pivot_root needs the new root to be a mount point.
pub(super) fn bind_self(root: &Path) -> Result<(), StartError> {
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
