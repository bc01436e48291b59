//! User namespaces made the way an ordinary user makes them, so lesson 8 shows what needs
//! no root at all:
//!
//! ```text
//! nslab ──fork──> the learner's process ──fork──> inside: unshare(CLONE_NEWUSER…)
//!                 (under sudo: setgroups,          its maps written from outside by
//!                  setresgid, setresuid first)     the learner's process
//! ```
//!
//! Nothing here goes on the ledger: each process dies with its parent (PR_SET_PDEATHSIG,
//! set again after every change of credentials, which clears it), and everything they make
//! (the namespaces, mounts inside them, a file without a name) ends with the last of them.
//! A run without root could not write the ledger anyway.

use super::ids::{self, StatusIds};
use super::ns::{self, NsKind, NsSet};
use super::procs::{self, ProcInfo};
use super::sys::{self, errno_result, errno_text, Channel, ChildIo, Forked};
use super::trace;
use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Gid, Pid, Uid};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// The user whose IDs the rootless parts run with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Who {
    pub uid: u32,
    pub gid: u32,
    /// The name in /etc/passwd (for /etc/subuid), when it has one.
    pub name: Option<String>,
}

fn env_id(var: &str) -> Option<u32> {
    std::env::var(var).ok()?.trim().parse().ok()
}

/// Who a rootless lesson acts as: the caller when not root; under sudo the user who ran
/// it (SUDO_UID, SUDO_GID); `None` for root with nobody behind it (SUDO_UID unset or 0,
/// or an ID no user could have).
pub fn learner() -> Option<Who> {
    let euid = nix::unistd::geteuid().as_raw();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let (uid, gid) = if euid != 0 {
        (euid, nix::unistd::getegid().as_raw())
    } else {
        let uid = env_id("SUDO_UID").filter(|&u| u != 0 && u != u32::MAX)?;
        let gid = env_id("SUDO_GID")
            .or_else(|| ids::passwd_entry(&passwd, uid).map(|(_, g)| g))
            .filter(|&g| g != u32::MAX)?;
        (uid, gid)
    };
    Some(Who {
        uid,
        gid,
        name: ids::passwd_entry(&passwd, uid).map(|(n, _)| n),
    })
}

/// Which map file of a process the learner's process writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MapFile {
    UidMap,
    GidMap,
    Setgroups,
}

impl MapFile {
    pub fn file(self) -> &'static str {
        match self {
            MapFile::UidMap => "uid_map",
            MapFile::GidMap => "gid_map",
            MapFile::Setgroups => "setgroups",
        }
    }
}

/// What an attempt came to: done, or refused with this errno (`EPERM (Operation not
/// permitted)`). The system calls are in the trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub ok: bool,
    pub error: Option<String>,
}

impl Outcome {
    fn of<T>(r: &nix::Result<T>) -> Outcome {
        Outcome {
            ok: r.is_ok(),
            error: r.as_ref().err().map(|e| errno_text(*e)),
        }
    }

    /// `done` or the error, for a sentence.
    pub fn said(&self) -> String {
        match &self.error {
            None => "done".into(),
            Some(e) => format!("refused: {e}"),
        }
    }
}

/// What the process inside says about itself, in its own user namespace's IDs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SelfIds {
    pub status: StatusIds,
    pub uid_map: String,
    pub gid_map: String,
    pub setgroups: String,
    pub user_ns: Option<u64>,
}

/// A file the process inside made without a name (O_TMPFILE): its descriptor there and
/// its owner as fstat(2) shows it inside.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TmpFile {
    pub fd: i32,
    pub dir: PathBuf,
    pub uid: u32,
    pub gid: u32,
}

/// The links of a network namespace before and after `ip link set lo up`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LinksUp {
    pub before: Vec<super::net::Link>,
    pub lo_up: Outcome,
    pub after: Vec<super::net::Link>,
}

/// The process inside, seen by itself before and after its unshare(2).
pub struct Unshared {
    pub before: NsSet,
    pub after: NsSet,
}

#[derive(Serialize, Deserialize)]
enum Order {
    // To the learner's process.
    WriteMap { file: MapFile, text: String },
    TryUnshare { flags: i32 },
    RunIdTool { tool: String, args: Vec<String> },
    // To the process inside.
    Whoami,
    TmpFile,
    TryOpen { path: PathBuf },
    TryMountTmpfs { target: PathBuf },
    Unshare { flags: i32 },
    Pid1Proc,
    LinksUp,
}

/// Every answer from a child carries the system calls it made for the order.
#[derive(Serialize, Deserialize)]
struct Reply {
    trace: Vec<String>,
    result: std::result::Result<serde_json::Value, String>,
}

fn reply<T: Serialize>(io: &mut ChildIo, result: Result<T>) {
    let result = result.and_then(|v| serde_json::to_value(v).map_err(anyhow::Error::from));
    io.send(&Reply {
        trace: trace::take(),
        result: result.map_err(|e| format!("{e:#}")),
    });
}

fn receive<T: DeserializeOwned>(channel: &mut Channel) -> Result<T> {
    let r: Reply = channel.recv(REPLY_TIMEOUT)?;
    trace::extend(r.trace);
    let value = r.result.map_err(|e| anyhow!(e))?;
    serde_json::from_value(value).context("an answer that does not fit the order")
}

fn ask<T: DeserializeOwned>(channel: &mut Channel, order: &Order) -> Result<T> {
    channel.order(&serde_json::to_string(order)?)?;
    receive(channel)
}

/// Under sudo: become the learner for good, as `setpriv --reuid --regid --init-groups`
/// would, before anything else is done. Without root there is nothing to drop.
fn become_learner(who: &Who, parent: Pid) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let gid = Gid::from_raw(who.gid);
    let uid = Uid::from_raw(who.uid);
    let r = nix::unistd::setgroups(&[gid]);
    trace::syscall(format!(
        "setgroups(1, [{}]) = {}",
        who.gid,
        errno_result(&r)
    ));
    r.context("setgroups")?;
    let r = nix::unistd::setresgid(gid, gid, gid);
    trace::syscall(format!(
        "setresgid({g}, {g}, {g}) = {}",
        errno_result(&r),
        g = who.gid
    ));
    r.context("setresgid")?;
    let r = nix::unistd::setresuid(uid, uid, uid);
    trace::syscall(format!(
        "setresuid({u}, {u}, {u}) = {}",
        errno_result(&r),
        u = who.uid
    ));
    r.context("setresuid")?;
    // Root must be gone for good: a saved ID of 0 would let it come back.
    if nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        bail!("still able to become root after setresuid");
    }
    rearm(parent);
    // A process whose credentials changed is not dumpable, which makes its /proc files
    // (and its children's: their uid_map) root's. This one holds nothing of root's but a
    // copy of nslab's memory, read before any secret was.
    let _ = nix::sys::prctl::set_dumpable(true);
    Ok(())
}

/// A change of credentials clears PR_SET_PDEATHSIG: set it again, and leave if the parent
/// died before it took hold.
fn rearm(parent: Pid) {
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    if nix::unistd::getppid() != parent {
        unsafe { libc::_exit(1) };
    }
}

fn flags_of(bits: i32) -> CloneFlags {
    CloneFlags::from_bits_truncate(bits)
}

/// The learner's process: become the learner, fork the process inside, then write its
/// maps and try things as ordered.
fn learner_main(io: &mut ChildIo, who: &Who, parent: Pid, flags: i32, inside: ChildIo) -> i32 {
    trace::take();
    if let Err(e) = become_learner(who, parent) {
        reply::<i32>(io, Err(e));
        return 1;
    }
    let me = nix::unistd::getpid();
    // SAFETY: single-threaded; the child serves orders and leaves through _exit.
    let child = match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            sys::child_setup(Some(me));
            let mut inside = inside;
            inside_main(&mut inside, me, flags);
            unsafe { libc::_exit(0) };
        }
        Ok(ForkResult::Parent { child }) => {
            drop(inside);
            trace::syscall(format!("fork() = {child}"));
            child
        }
        Err(e) => {
            reply::<i32>(io, Err(anyhow!("fork: {}", e.desc())));
            return 1;
        }
    };
    reply(io, Ok(child.as_raw()));
    while let Some(line) = io.wait_order() {
        match serde_json::from_str::<Order>(&line) {
            Ok(Order::WriteMap { file, text }) => reply(io, Ok(write_map(child, file, &text))),
            Ok(Order::TryUnshare { flags }) => reply(io, Ok(try_unshare(flags_of(flags)))),
            Ok(Order::RunIdTool { tool, args }) => reply(io, run_id_tool(&tool, &args)),
            _ => reply::<()>(io, Err(anyhow!("not an order for the learner's process"))),
        }
    }
    let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
    let _ = waitpid(child, None);
    0
}

/// Write `text` to /proc/CHILD/FILE as `echo TEXT > /proc/PID/FILE` does.
fn write_map(child: Pid, file: MapFile, text: &str) -> Outcome {
    use std::io::Write;
    let path = format!("/proc/{child}/{}", file.file());
    let f = std::fs::OpenOptions::new().write(true).open(&path);
    let f = match f {
        Ok(f) => f,
        Err(e) => {
            let errno = Errno::from_raw(e.raw_os_error().unwrap_or(0));
            trace::syscall(format!(
                "openat(AT_FDCWD, \"{path}\", O_WRONLY) = -1 {}",
                errno_text(errno)
            ));
            return Outcome::of::<()>(&Err(errno));
        }
    };
    trace::syscall(format!(
        "openat(AT_FDCWD, \"{path}\", O_WRONLY) = {}",
        f.as_raw_fd()
    ));
    let line = format!("{text}\n");
    let r = (&f)
        .write(line.as_bytes())
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)));
    trace::syscall(format!(
        "write({}, {:?}, {}) = {}",
        f.as_raw_fd(),
        line,
        line.len(),
        match &r {
            Ok(n) => n.to_string(),
            Err(e) => format!("-1 {}", errno_text(*e)),
        }
    ));
    Outcome::of(&r)
}

/// unshare(2) tried in a throwaway child, so that the caller stays where it is.
fn try_unshare(flags: CloneFlags) -> Outcome {
    // SAFETY: single-threaded; the child only calls unshare and leaves through _exit.
    let r = match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            let code = match nix::sched::unshare(flags) {
                Ok(()) => 0,
                Err(e) => e as i32,
            };
            unsafe { libc::_exit(code) };
        }
        Ok(ForkResult::Parent { child }) => match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, 0)) => Ok(()),
            Ok(WaitStatus::Exited(_, code)) => Err(Errno::from_raw(code)),
            _ => Err(Errno::ECHILD),
        },
        Err(e) => Err(e),
    };
    trace::syscall(format!(
        "unshare({}) = {}",
        sys::clone_flag_names(flags),
        errno_result(&r)
    ));
    Outcome::of(&r)
}

/// newuidmap or newgidmap (shadow's set-user-ID helpers), run as the learner.
fn run_id_tool(tool: &str, args: &[String]) -> Result<Outcome> {
    if !matches!(tool, "newuidmap" | "newgidmap") {
        bail!("{tool} is not one of newuidmap, newgidmap");
    }
    let path = super::machine::which(tool).with_context(|| format!("{tool} is not installed"))?;
    let out = std::process::Command::new(&path)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("running {}", path.display()))?;
    let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Ok(Outcome {
        ok: out.status.success(),
        error: (!out.status.success()).then(|| {
            if said.is_empty() {
                format!("{tool} ended with {}", out.status)
            } else {
                said
            }
        }),
    })
}

/// The process inside: unshare(2) with `flags`, say so, then serve orders.
fn inside_main(io: &mut ChildIo, parent: Pid, flags: i32) {
    trace::take();
    let me = nix::unistd::getpid().as_raw();
    let before = ns::of_pid(me);
    let unshared = sys::unshare(flags_of(flags));
    rearm(parent);
    let after = ns::of_pid(me);
    let ready = unshared.is_ok();
    reply(
        io,
        unshared.and_then(|_| match (before, after) {
            (Some(b), Some(a)) => Ok((b, a)),
            _ => Err(anyhow!("cannot read its own /proc/PID/ns")),
        }),
    );
    if !ready {
        return;
    }
    // Descriptors of files made without a name, kept open: closing one removes the file.
    let mut kept: Vec<OwnedFd> = Vec::new();
    while let Some(line) = io.wait_order() {
        match serde_json::from_str::<Order>(&line) {
            Ok(Order::Whoami) => reply(io, whoami()),
            Ok(Order::TmpFile) => reply(io, tmpfile(&mut kept)),
            Ok(Order::TryOpen { path }) => reply(io, Ok(try_open(&path))),
            Ok(Order::TryMountTmpfs { target }) => reply(io, Ok(try_mount_tmpfs(&target))),
            Ok(Order::Unshare { flags }) => {
                let flags = flags_of(flags);
                let r = nix::sched::unshare(flags);
                trace::syscall(format!(
                    "unshare({}) = {}",
                    sys::clone_flag_names(flags),
                    errno_result(&r)
                ));
                if r.is_ok() && flags.contains(CloneFlags::CLONE_NEWNS) {
                    let _ = sys::make_mounts_private();
                }
                reply(io, Ok(Outcome::of(&r)));
            }
            Ok(Order::Pid1Proc) => reply(io, pid1_proc()),
            Ok(Order::LinksUp) => reply(io, links_up()),
            _ => reply::<()>(io, Err(anyhow!("not an order for the process inside"))),
        }
    }
}

fn read(path: &str) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {path}"))
}

fn whoami() -> Result<SelfIds> {
    let status = read("/proc/self/status")?;
    Ok(SelfIds {
        status: ids::parse_status(&status).context("an unreadable /proc/self/status")?,
        uid_map: read("/proc/self/uid_map")?,
        gid_map: read("/proc/self/gid_map")?,
        setgroups: read("/proc/self/setgroups")?.trim().to_string(),
        user_ns: ns::link(nix::unistd::getpid().as_raw(), NsKind::User).inode,
    })
}

/// A file with no name (O_TMPFILE) in /tmp (or /dev/shm): it exists while its descriptor
/// is open, and is gone with the process, leaving nothing behind.
fn tmpfile(kept: &mut Vec<OwnedFd>) -> Result<TmpFile> {
    use nix::fcntl::{open, OFlag};
    use nix::sys::stat::{fstat, Mode};
    let mut last = None;
    for dir in ["/tmp", "/dev/shm"] {
        let r = open(
            dir,
            OFlag::O_TMPFILE | OFlag::O_RDWR | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        );
        trace::syscall(format!(
            "openat(AT_FDCWD, \"{dir}\", O_RDWR|O_CLOEXEC|O_TMPFILE, 0600) = {}",
            match &r {
                Ok(fd) => fd.as_raw_fd().to_string(),
                Err(e) => format!("-1 {}", errno_text(*e)),
            }
        ));
        match r {
            Ok(fd) => {
                let st = fstat(&fd).context("fstat")?;
                trace::syscall(format!(
                    "fstat({}, {{st_mode=S_IFREG|0600, st_uid={}, st_gid={}, ...}}) = 0",
                    fd.as_raw_fd(),
                    st.st_uid,
                    st.st_gid
                ));
                let made = TmpFile {
                    fd: fd.as_raw_fd(),
                    dir: PathBuf::from(dir),
                    uid: st.st_uid,
                    gid: st.st_gid,
                };
                kept.push(fd);
                return Ok(made);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(anyhow!(
        "no place for a file without a name: {}",
        last.map(errno_text).unwrap_or_default()
    ))
}

fn try_open(path: &Path) -> Outcome {
    let r = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    );
    trace::syscall(format!(
        "openat(AT_FDCWD, \"{}\", O_RDONLY|O_CLOEXEC) = {}",
        path.display(),
        match &r {
            Ok(fd) => fd.as_raw_fd().to_string(),
            Err(e) => format!("-1 {}", errno_text(*e)),
        }
    ));
    Outcome::of(&r)
}

fn try_mount_tmpfs(target: &Path) -> Outcome {
    use nix::mount::{mount, MsFlags};
    let r = mount(
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        None::<&str>,
    );
    trace::syscall(format!(
        "mount(\"tmpfs\", \"{}\", \"tmpfs\", MS_NOSUID|MS_NODEV, NULL) = {}",
        target.display(),
        errno_result(&r)
    ));
    Outcome::of(&r)
}

/// After unshare(CLONE_NEWPID|CLONE_NEWNS): fork the namespace's PID 1, which mounts a
/// /proc of its own and lists what it shows (`unshare --pid --fork --mount-proc ps`), then
/// ends. Its mount goes into a mount namespace of its own, so this process's /proc stays.
fn pid1_proc() -> Result<Vec<ProcInfo>> {
    let (mut channel, mut io) = sys::channel("the namespace's PID 1")?;
    // SAFETY: single-threaded; the child mounts, reads, sends and leaves through _exit.
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            drop(channel);
            sys::child_setup(None);
            trace::take();
            let r = sys::unshare(CloneFlags::CLONE_NEWNS)
                .and_then(|_| sys::mount_proc(Path::new("/proc")))
                .and_then(|_| procs::table_at(Path::new("/proc")).map_err(anyhow::Error::from));
            reply(&mut io, r);
            unsafe { libc::_exit(0) };
        }
        Ok(ForkResult::Parent { child }) => {
            drop(io);
            trace::syscall(format!("fork() = {child}   # PID 1 inside"));
            let r = receive(&mut channel);
            let _ = waitpid(child, None);
            r
        }
        Err(e) => bail!("fork: {}", e.desc()),
    }
}

fn links_up() -> Result<LinksUp> {
    let mut rtnl = super::net::host()?;
    let before = rtnl.links()?;
    let up = rtnl.set_up("lo", true);
    let lo_up = Outcome {
        ok: up.is_ok(),
        error: up.err().map(|e| format!("{e:#}")),
    };
    let after = rtnl.links()?;
    Ok(LinksUp {
        before,
        lo_up,
        after,
    })
}

/// A user namespace being made and looked at: the learner's process and the process
/// inside. Dropped, both end (the second with the first).
pub struct Rootless {
    learner: Forked,
    inside: Channel,
    inside_pid: i32,
}

impl Rootless {
    /// Fork the learner's process as `who`, and have it fork a process that calls
    /// unshare(`flags`) (CLONE_NEWUSER and whatever goes with it).
    pub fn create(who: &Who, flags: CloneFlags) -> Result<(Rootless, Unshared)> {
        let (inside, inside_io) = sys::channel("the process inside")?;
        let parent = nix::unistd::getpid();
        let who = who.clone();
        let bits = flags.bits();
        let mut inside_io = Some(inside_io);
        let mut learner = sys::fork_unrecorded(move |io| match inside_io.take() {
            Some(i) => learner_main(io, &who, parent, bits, i),
            None => 1,
        })?;
        let inside_pid: i32 = receive(&mut learner.channel)?;
        // The number came from a process the learner controls: believe it only for the
        // learner's own child.
        match procs::process(inside_pid) {
            Some(p) if p.ppid == learner.pid.as_raw() => {}
            _ => bail!("the learner's process named {inside_pid}, which is not its child"),
        }
        let mut ns = Rootless {
            learner,
            inside,
            inside_pid,
        };
        let (before, after): (NsSet, NsSet) = receive(&mut ns.inside)?;
        Ok((ns, Unshared { before, after }))
    }

    /// The host PID of the process inside.
    pub fn inside_pid(&self) -> i32 {
        self.inside_pid
    }

    /// The host PID of the learner's process.
    pub fn learner_pid(&self) -> i32 {
        self.learner.pid.as_raw()
    }

    /// The learner's process writes `text` into the process inside's `file`.
    pub fn write_map(&mut self, file: MapFile, text: &str) -> Result<Outcome> {
        ask(
            &mut self.learner.channel,
            &Order::WriteMap {
                file,
                text: text.into(),
            },
        )
    }

    /// The learner tries unshare(`flags`) outside any namespace of its own.
    pub fn learner_tries_unshare(&mut self, flags: CloneFlags) -> Result<Outcome> {
        ask(
            &mut self.learner.channel,
            &Order::TryUnshare {
                flags: flags.bits(),
            },
        )
    }

    /// The learner runs newuidmap or newgidmap with `args`.
    pub fn run_id_tool(&mut self, tool: &str, args: &[String]) -> Result<Outcome> {
        ask(
            &mut self.learner.channel,
            &Order::RunIdTool {
                tool: tool.into(),
                args: args.to_vec(),
            },
        )
    }

    pub fn whoami(&mut self) -> Result<SelfIds> {
        ask(&mut self.inside, &Order::Whoami)
    }

    pub fn tmpfile(&mut self) -> Result<TmpFile> {
        ask(&mut self.inside, &Order::TmpFile)
    }

    pub fn try_open(&mut self, path: &Path) -> Result<Outcome> {
        ask(&mut self.inside, &Order::TryOpen { path: path.into() })
    }

    pub fn try_mount_tmpfs(&mut self, target: &Path) -> Result<Outcome> {
        ask(
            &mut self.inside,
            &Order::TryMountTmpfs {
                target: target.into(),
            },
        )
    }

    /// The process inside calls unshare(`flags`) again (a mount, PID or network namespace
    /// of its user namespace's); a new mount namespace is made private at once.
    pub fn unshare(&mut self, flags: CloneFlags) -> Result<Outcome> {
        ask(
            &mut self.inside,
            &Order::Unshare {
                flags: flags.bits(),
            },
        )
    }

    /// See [`pid1_proc`]: what `ps` shows for the new PID namespace's first process.
    pub fn pid1_ps(&mut self) -> Result<Vec<ProcInfo>> {
        ask(&mut self.inside, &Order::Pid1Proc)
    }

    /// `ip link`, `ip link set lo up`, `ip link` in the process inside's network namespace.
    pub fn links_up(&mut self) -> Result<LinksUp> {
        ask(&mut self.inside, &Order::LinksUp)
    }

    /// End both processes.
    pub fn close(mut self) -> Result<()> {
        self.inside.close_orders();
        self.learner.channel.close_orders();
        self.learner
            .wait(Duration::from_secs(5))
            .map(|_| ())
            .or_else(|_| self.learner.kill())
    }
}

/// The IDs of process `pid` as nslab's /proc shows them (the host's, from outside).
pub fn status_of(pid: i32) -> Option<StatusIds> {
    ids::parse_status(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// /proc/PID/uid_map or gid_map as nslab reads it.
pub fn map_of(pid: i32, file: MapFile) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/{}", file.file())).ok()
}

/// The owner of the file that process `pid` has open as `fd`, seen from nslab's user
/// namespace (`stat -L /proc/PID/fd/FD`).
pub fn owner_of_fd(pid: i32, fd: i32) -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(format!("/proc/{pid}/fd/{fd}")).ok()?;
    Some((m.uid(), m.gid()))
}

/// NS_GET_USERNS (ioctl_ns(2)): `_IO(0xb7, 0x1)`.
const NS_GET_USERNS: libc::c_ulong = 0xb701;

/// The user namespace that owns process `pid`'s namespace of `kind` (its inode), as
/// ioctl(NS_GET_USERNS) on /proc/PID/ns/KIND answers (`lsns -o NS,ONS`).
pub fn owning_userns(pid: i32, kind: NsKind) -> Result<u64> {
    use nix::sys::stat::fstat;
    let path = format!("/proc/{pid}/ns/{}", kind.file());
    let f = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
    // SAFETY: an ioctl with no argument on a descriptor we own; it returns a new one.
    let fd = unsafe { libc::ioctl(f.as_raw_fd(), NS_GET_USERNS as _) };
    let r = if fd < 0 { Err(Errno::last()) } else { Ok(fd) };
    trace::syscall(format!(
        "ioctl({}, NS_GET_USERNS) = {}   # {path}",
        f.as_raw_fd(),
        match &r {
            Ok(fd) => fd.to_string(),
            Err(e) => format!("-1 {}", errno_text(*e)),
        }
    ));
    let fd = r.with_context(|| format!("ioctl(NS_GET_USERNS) on {path}"))?;
    // SAFETY: a descriptor just returned by the kernel, owned by nobody else.
    let owner = unsafe { OwnedFd::from_raw_fd(fd) };
    let st = fstat(&owner).context("fstat of the owning user namespace")?;
    Ok(st.st_ino)
}

/// /proc/sys/kernel/overflowuid: the UID shown for one that a namespace does not map.
pub fn overflow_uid() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/kernel/overflowuid")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The subordinate UID and GID ranges /etc/subuid and /etc/subgid give `who`.
pub fn subordinate_ranges(who: &Who) -> (Vec<ids::SubRange>, Vec<ids::SubRange>) {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    (
        ids::parse_subids(&read("/etc/subuid"), who.name.as_deref(), who.uid),
        ids::parse_subids(&read("/etc/subgid"), who.name.as_deref(), who.gid),
    )
}

/// Every `name:start:count` line of /etc/subuid, for a user's or Docker's (`dockremap`).
pub fn subuid_lines() -> Vec<String> {
    std::fs::read_to_string("/etc/subuid")
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Can a user without privileges make user namespaces here? `Err` says what stops it:
/// a sysctl set to 0 (Debian's unprivileged_userns_clone, user.max_user_namespaces,
/// Ubuntu's AppArmor restriction).
pub fn unprivileged_allowed() -> std::result::Result<(), String> {
    let number =
        |path: &str| -> Option<i64> { std::fs::read_to_string(path).ok()?.trim().parse().ok() };
    if number("/proc/sys/user/max_user_namespaces") == Some(0) {
        return Err("user.max_user_namespaces is 0".into());
    }
    if number("/proc/sys/kernel/unprivileged_userns_clone") == Some(0) {
        return Err("kernel.unprivileged_userns_clone is 0".into());
    }
    if number("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == Some(1) {
        return Err("kernel.apparmor_restrict_unprivileged_userns is 1 (AppArmor gives unconfined programs no capabilities in a new user namespace)".into());
    }
    Ok(())
}
