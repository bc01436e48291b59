//! A child that leaves nslab's UTS and IPC namespaces and acts inside new ones on orders,
//! so lesson 6 can look at each stage from both sides: unshare, uname, sethostname, the
//! System V objects it sees or makes, a POSIX message queue in an mqueue filesystem mounted
//! in its own mount namespace.
//!
//! The child is recorded in the ledger before it acts and dies with nslab; everything it
//! makes lives in its own namespaces and ends with them.

use super::ipc::{self, Objects};
use super::sys::{self, ChildIo, Forked};
use super::trace;
use anyhow::{anyhow, Context, Result};
use nix::sched::CloneFlags;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Serialize, Deserialize)]
enum Order {
    Unshare { uts: bool, ipc: bool, mnt: bool },
    Uname,
    SetHostname(String),
    Objects,
    ShmGet { key: i32, bytes: usize, flags: i32 },
    ShmRead { id: i32 },
    MsgGet { key: i32, flags: i32 },
    MountMqueue,
    MqCreate { name: String, text: String },
    MqList { dir: String },
    JoinIpc { fd: i32 },
}

#[derive(Serialize, Deserialize)]
struct Reply {
    trace: Vec<String>,
    result: std::result::Result<serde_json::Value, String>,
}

/// A system call's outcome, as strace shows it, with the id it gave when it succeeded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub id: Option<i32>,
    pub shown: String,
}

/// A POSIX message queue as its mqueue filesystem shows it: the file name and contents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueFile {
    pub name: String,
    /// `QSIZE:5 NOTIFY:0 SIGNO:0 NOTIFY_PID:0`
    pub contents: String,
}

/// The mqueue directories tried, in order: the usual one, then one that is always there.
const MQUEUE_DIRS: [&str; 2] = ["/dev/mqueue", "/mnt"];

fn value<T: Serialize>(r: Result<T>) -> std::result::Result<serde_json::Value, String> {
    r.map_err(|e| format!("{e:#}"))
        .and_then(|v| serde_json::to_value(v).map_err(|e| e.to_string()))
}

fn attempt(r: nix::Result<i32>) -> Attempt {
    match r {
        Ok(id) => Attempt {
            id: Some(id),
            shown: id.to_string(),
        },
        Err(e) => Attempt {
            id: None,
            shown: format!("-1 {}", sys::errno_text(e)),
        },
    }
}

fn serve(io: &mut ChildIo) -> i32 {
    // Lines recorded before the fork were copied into this process: not ours to send.
    trace::take();
    while let Some(line) = io.wait_order() {
        let result = match serde_json::from_str::<Order>(&line) {
            Ok(order) => act(order),
            Err(e) => Err(format!("unreadable order {line}: {e}")),
        };
        io.send(&Reply {
            trace: trace::take(),
            result,
        });
    }
    0
}

fn act(order: Order) -> std::result::Result<serde_json::Value, String> {
    match order {
        Order::Unshare { uts, ipc, mnt } => {
            let mut flags = CloneFlags::empty();
            flags.set(CloneFlags::CLONE_NEWUTS, uts);
            flags.set(CloneFlags::CLONE_NEWIPC, ipc);
            flags.set(CloneFlags::CLONE_NEWNS, mnt);
            value(sys::unshare(flags).and_then(|_| {
                if mnt {
                    sys::make_mounts_private()?;
                }
                Ok(())
            }))
        }
        Order::Uname => value(uname()),
        Order::SetHostname(name) => {
            let r = nix::unistd::sethostname(&name);
            trace::syscall(format!(
                "sethostname({name:?}, {}) = {}",
                name.len(),
                sys::errno_result(&r)
            ));
            value(r.with_context(|| format!("sethostname({name:?})")))
        }
        Order::Objects => value(ipc::own()),
        Order::ShmGet { key, bytes, flags } => value(Ok(attempt(ipc::shmget(key, bytes, flags)))),
        Order::ShmRead { id } => value(ipc::shm_read(id)),
        Order::MsgGet { key, flags } => value(Ok(attempt(ipc::msgget(key, flags)))),
        Order::MountMqueue => value(mount_mqueue()),
        Order::MqCreate { name, text } => value(mq_create(&name, &text)),
        Order::MqList { dir } => value(mq_list(Path::new(&dir))),
        Order::JoinIpc { fd } => {
            // SAFETY: the descriptor was opened by nslab before this child was forked and
            // stays open in it until it exits.
            let f = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            let r = nix::sched::setns(f, CloneFlags::CLONE_NEWIPC);
            trace::syscall(format!(
                "setns({fd}, CLONE_NEWIPC) = {}",
                sys::errno_result(&r)
            ));
            value(r.context("setns(CLONE_NEWIPC)"))
        }
    }
}

/// The node name uname(2) gives the caller: its UTS namespace's hostname.
pub fn uname() -> Result<String> {
    let u = nix::sys::utsname::uname().context("uname")?;
    let name = u.nodename().to_string_lossy().into_owned();
    trace::syscall(format!("uname({{nodename={name:?}, ...}}) = 0"));
    Ok(name)
}

fn mount_mqueue() -> Result<String> {
    use nix::mount::{mount, MsFlags};
    let dir = MQUEUE_DIRS
        .iter()
        .find(|d| Path::new(d).is_dir())
        .context("neither /dev/mqueue nor /mnt is a directory to mount an mqueue filesystem on")?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let r = mount(Some("mqueue"), *dir, Some("mqueue"), flags, None::<&str>);
    trace::syscall(format!(
        "mount(\"mqueue\", \"{dir}\", \"mqueue\", MS_NOSUID|MS_NODEV|MS_NOEXEC, NULL) = {}",
        sys::errno_result(&r)
    ));
    r.with_context(|| format!("mounting mqueue on {dir}"))?;
    Ok(dir.to_string())
}

/// mq_open(NAME, O_CREAT|O_EXCL|O_WRONLY), one message, mq_close: recorded in the trace.
fn mq_create(name: &str, text: &str) -> Result<()> {
    let c = std::ffi::CString::new(name).context("queue name")?;
    // SAFETY: a valid name; mode and a NULL attr (the defaults) as the variadic arguments.
    let q = unsafe {
        libc::mq_open(
            c.as_ptr(),
            libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY,
            0o600 as libc::mode_t,
            std::ptr::null::<libc::mq_attr>(),
        )
    };
    let r = nix::errno::Errno::result(q);
    trace::syscall(format!(
        "mq_open({name:?}, O_WRONLY|O_CREAT|O_EXCL, 0600, NULL) = {}",
        match &r {
            Ok(d) => d.to_string(),
            Err(e) => format!("-1 {}", sys::errno_text(*e)),
        }
    ));
    let q = r.with_context(|| format!("mq_open({name})"))?;
    // SAFETY: an open queue descriptor and a buffer of text.len() bytes.
    let sent = nix::errno::Errno::result(unsafe {
        libc::mq_send(q, text.as_ptr() as *const libc::c_char, text.len(), 0)
    });
    trace::syscall(format!(
        "mq_timedsend({q}, {text:?}, {}, 0, NULL) = {}",
        text.len(),
        sys::errno_result(&sent)
    ));
    unsafe { libc::mq_close(q) };
    trace::syscall(format!("close({q}) = 0"));
    sent.map(|_| ()).context("mq_send")
}

/// The queues an mqueue filesystem at `dir` lists, with their contents.
pub fn mq_list(dir: &Path) -> Result<Vec<QueueFile>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        let contents = std::fs::read_to_string(e.path()).unwrap_or_default();
        out.push(QueueFile {
            name: e.file_name().to_string_lossy().into_owned(),
            contents: contents.trim_end().to_string(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// mq_open(NAME, O_RDONLY) in nslab's own IPC namespace, shown as strace would (the queue
/// closed again at once when it opens).
pub fn mq_open_here(name: &str) -> Result<Attempt> {
    let c = std::ffi::CString::new(name).context("queue name")?;
    // SAFETY: a valid name; no O_CREAT, so no variadic arguments are read.
    let q = nix::errno::Errno::result(unsafe { libc::mq_open(c.as_ptr(), libc::O_RDONLY) });
    let a = attempt(q);
    trace::syscall(format!("mq_open({name:?}, O_RDONLY) = {}", a.shown));
    if let Some(d) = a.id {
        unsafe { libc::mq_close(d) };
    }
    Ok(a)
}

/// An open `/proc/PID/ns/ipc`: the namespace lives on while it is open, even with no
/// process left in it (as a bind mount of the file would keep it).
pub struct Pinned {
    fd: OwnedFd,
    pub inode: Option<u64>,
}

/// Open the IPC namespace of `pid`, recorded in the trace.
pub fn pin_ipc(pid: i32) -> Result<Pinned> {
    let path = format!("/proc/{pid}/ns/ipc");
    let inode = super::ns::link(pid, super::ns::NsKind::Ipc).inode;
    let f = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
    let fd = OwnedFd::from(f);
    trace::syscall(format!(
        "openat(AT_FDCWD, {path:?}, O_RDONLY|O_CLOEXEC) = {}",
        fd.as_raw_fd()
    ));
    Ok(Pinned { fd, inode })
}

impl Pinned {
    /// Close it: with no process in it either, the kernel frees the namespace and every
    /// object in it.
    pub fn close(self) {
        let fd = self.fd.as_raw_fd();
        drop(self.fd);
        trace::syscall(format!("close({fd}) = 0"));
    }
}

/// The child, serving orders.
pub struct NsChild {
    child: Forked,
}

impl NsChild {
    /// Fork the child (on the ledger before it acts); it starts in nslab's namespaces.
    pub fn start() -> Result<NsChild> {
        Ok(NsChild {
            child: sys::fork_recorded(serve)?,
        })
    }

    pub fn pid(&self) -> i32 {
        self.child.pid.as_raw()
    }

    fn ask<T: DeserializeOwned>(&mut self, order: Order) -> Result<T> {
        let line = serde_json::to_string(&order)?;
        self.child.order(&line)?;
        let r: Reply = self.child.recv(REPLY_TIMEOUT)?;
        trace::extend(r.trace);
        let v = r.result.map_err(|e| anyhow!(e))?;
        serde_json::from_value(v).context("the child's answer")
    }

    /// unshare(2) the namespaces asked for (a new mount namespace is made private at once,
    /// as `unshare --mount` does).
    pub fn unshare(&mut self, uts: bool, ipc: bool, mnt: bool) -> Result<()> {
        self.ask(Order::Unshare { uts, ipc, mnt })
    }

    pub fn uname(&mut self) -> Result<String> {
        self.ask(Order::Uname)
    }

    pub fn set_hostname(&mut self, name: &str) -> Result<()> {
        self.ask(Order::SetHostname(name.into()))
    }

    /// The System V objects of the child's IPC namespace.
    pub fn objects(&mut self) -> Result<Objects> {
        self.ask(Order::Objects)
    }

    pub fn shmget(&mut self, key: i32, bytes: usize, flags: i32) -> Result<Attempt> {
        self.ask(Order::ShmGet { key, bytes, flags })
    }

    pub fn shm_read(&mut self, id: i32) -> Result<String> {
        self.ask(Order::ShmRead { id })
    }

    pub fn msgget(&mut self, key: i32, flags: i32) -> Result<Attempt> {
        self.ask(Order::MsgGet { key, flags })
    }

    /// Mount an mqueue filesystem (the child must have a mount namespace of its own);
    /// returns where.
    pub fn mount_mqueue(&mut self) -> Result<String> {
        self.ask(Order::MountMqueue)
    }

    pub fn mq_create(&mut self, name: &str, text: &str) -> Result<()> {
        self.ask(Order::MqCreate {
            name: name.into(),
            text: text.into(),
        })
    }

    pub fn mq_list(&mut self, dir: &str) -> Result<Vec<QueueFile>> {
        self.ask(Order::MqList { dir: dir.into() })
    }

    /// setns(2) into a pinned IPC namespace.
    pub fn join_ipc(&mut self, pinned: &Pinned) -> Result<()> {
        self.ask(Order::JoinIpc {
            fd: pinned.fd.as_raw_fd(),
        })
    }

    /// The child exits (its order pipe closed); returns once it is reaped.
    pub fn end(mut self) -> Result<()> {
        self.child.channel.close_orders();
        trace::syscall(format!("exit_group(0) = ?   # PID {}", self.pid()));
        self.child
            .wait(Duration::from_secs(5))
            .map(|_| ())
            .or_else(|_| self.child.kill())
    }
}
