//! Mount namespaces for the mount lesson: children of nslab, each in a mount namespace of
//! its own, making mounts and files on order and reporting the system calls they made.
//!
//! Every mount they make exists in their namespace only and ends with it (a namespace
//! whose last process is gone is freed by the kernel with all its mounts), so nothing is
//! ever mounted in nslab's or the host's namespace. The one thing on the host's disk is
//! the directory the mount points live in (`/var/tmp/nslab-mount-…`): on the ledger before
//! it exists, removed when the [`Scratch`] is dropped or by `nslab cleanup`. Each child is
//! on the ledger too and dies with nslab (PR_SET_PDEATHSIG).

use super::mountinfo::OverlayLayers;
use super::mounts::{self, Propagation};
use super::overlay::{self, Layer};
use super::sys::{self, ChildIo, Forked};
use super::trace;
use crate::ledger::{self, Resource};
use anyhow::{anyhow, Context, Result};
use nix::sched::CloneFlags;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

/// The lesson's directory on the host's disk, removed on drop.
#[derive(Debug)]
pub struct Scratch {
    pub path: PathBuf,
    owned: bool,
}

impl Scratch {
    /// `/var/tmp/nslab-mount-<pid>-<nanos>`, recorded before it is made. `create_dir`
    /// fails on anything already there (a planted link included).
    pub fn create() -> Result<Scratch> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = PathBuf::from(format!(
            "/var/tmp/nslab-mount-{}-{nanos:x}",
            std::process::id()
        ));
        let res = Resource::Dir { path: path.clone() };
        ledger::record(res.clone())?;
        let scratch = Scratch { path, owned: true };
        std::fs::create_dir(&scratch.path)
            .with_context(|| format!("creating {}", scratch.path.display()))?;
        super::removal::identify(&res);
        Ok(scratch)
    }

    /// The names in directory `rel` as nslab (in the host's namespace) sees them.
    pub fn ls_from_host(&self, rel: &str) -> Vec<String> {
        ls(&self.path.join(rel))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.owned {
            self.owned = false;
            let _ = super::removal::release(&Resource::Dir {
                path: self.path.clone(),
            });
        }
    }
}

fn ls(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// What a child in its own mount namespace is told to do.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "order", rename_all = "snake_case")]
enum Order {
    /// unshare(CLONE_NEWNS), then every mount private: what `unshare --mount` does.
    Unshare,
    /// Join process `pid`'s mount namespace, then make a copy of it whose mounts keep
    /// their propagation (`nsenter -t PID -m unshare --mount --propagation unchanged`).
    CopyOf {
        pid: i32,
    },
    Tmpfs {
        target: PathBuf,
    },
    Bind {
        source: PathBuf,
        target: PathBuf,
    },
    ReadOnly {
        target: PathBuf,
    },
    Propagation {
        target: PathBuf,
        kind: Propagation,
    },
    Overlay {
        layers: OverlayLayers,
        target: PathBuf,
    },
    /// Directories and files, made without tracing: the scene the lesson sets.
    Files {
        dirs: Vec<PathBuf>,
        files: Vec<(PathBuf, String)>,
    },
    Append {
        path: PathBuf,
        text: String,
    },
    Remove {
        path: PathBuf,
    },
    Ls {
        dir: PathBuf,
    },
    Layers {
        dirs: Vec<PathBuf>,
    },
    /// A command run with `root` as its root directory (`chroot ROOT CMD…`): its exit
    /// status and output.
    Chroot {
        root: PathBuf,
        command: Vec<String>,
    },
}

/// Every answer carries the system calls the child made for the order.
#[derive(Serialize, Deserialize)]
struct Reply<T> {
    trace: Vec<String>,
    result: std::result::Result<T, String>,
}

/// What a command run in a chroot printed and how it ended.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ran {
    pub code: i32,
    pub output: String,
}

/// A child of nslab in a mount namespace of its own.
pub struct MountNs {
    child: Forked,
}

impl MountNs {
    /// A child that unshares its mount namespace as `unshare --mount` does.
    pub fn unshare() -> Result<MountNs> {
        let mut ns = MountNs::start()?;
        ns.ask::<()>(&Order::Unshare)?;
        Ok(ns)
    }

    /// A child in a copy of `other`'s namespace, propagation unchanged: its copies of
    /// `other`'s shared mounts are their peers.
    pub fn copy_of(other: &MountNs) -> Result<MountNs> {
        let mut ns = MountNs::start()?;
        ns.ask::<()>(&Order::CopyOf { pid: other.pid() })?;
        Ok(ns)
    }

    fn start() -> Result<MountNs> {
        Ok(MountNs {
            child: sys::fork_recorded(serve)?,
        })
    }

    /// Its host PID (`/proc/PID/mountinfo` is its mount table).
    pub fn pid(&self) -> i32 {
        self.child.pid.as_raw()
    }

    fn ask<T: DeserializeOwned>(&mut self, order: &Order) -> Result<T> {
        self.child.order(&serde_json::to_string(order)?)?;
        let r: Reply<T> = self.child.recv(REPLY_TIMEOUT)?;
        trace::extend(r.trace);
        r.result.map_err(|e| anyhow!(e))
    }

    pub fn tmpfs(&mut self, target: &Path) -> Result<()> {
        self.ask(&Order::Tmpfs {
            target: target.into(),
        })
    }

    pub fn bind(&mut self, source: &Path, target: &Path) -> Result<()> {
        self.ask(&Order::Bind {
            source: source.into(),
            target: target.into(),
        })
    }

    pub fn read_only(&mut self, target: &Path) -> Result<()> {
        self.ask(&Order::ReadOnly {
            target: target.into(),
        })
    }

    pub fn propagation(&mut self, target: &Path, kind: Propagation) -> Result<()> {
        self.ask(&Order::Propagation {
            target: target.into(),
            kind,
        })
    }

    pub fn overlay(&mut self, layers: &OverlayLayers, target: &Path) -> Result<()> {
        self.ask(&Order::Overlay {
            layers: layers.clone(),
            target: target.into(),
        })
    }

    /// Make `dirs` and write `files` (path, contents), untraced.
    pub fn files(&mut self, dirs: &[PathBuf], files: &[(PathBuf, String)]) -> Result<()> {
        self.ask(&Order::Files {
            dirs: dirs.to_vec(),
            files: files.to_vec(),
        })
    }

    /// `echo TEXT >> PATH`.
    pub fn append(&mut self, path: &Path, text: &str) -> Result<()> {
        self.ask(&Order::Append {
            path: path.into(),
            text: text.into(),
        })
    }

    /// `rm PATH`.
    pub fn remove(&mut self, path: &Path) -> Result<()> {
        self.ask(&Order::Remove { path: path.into() })
    }

    /// `ls DIR`, in this namespace.
    pub fn ls(&mut self, dir: &Path) -> Result<Vec<String>> {
        self.ask(&Order::Ls { dir: dir.into() })
    }

    /// What each of `dirs` holds, read in this namespace.
    pub fn layers(&mut self, dirs: &[PathBuf]) -> Result<Vec<Layer>> {
        self.ask(&Order::Layers {
            dirs: dirs.to_vec(),
        })
    }

    pub fn chroot(&mut self, root: &Path, command: &[String]) -> Result<Ran> {
        self.ask(&Order::Chroot {
            root: root.into(),
            command: command.to_vec(),
        })
    }

    /// End the child; its namespace and every mount in it end with it.
    pub fn end(mut self) -> Result<()> {
        self.child.kill()
    }
}

fn reply<T: Serialize>(io: &mut ChildIo, result: Result<T>) {
    io.send(&Reply {
        trace: trace::take(),
        result: result.map_err(|e| format!("{e:#}")),
    });
}

/// The child: one order per line, until nslab closes the pipe.
fn serve(io: &mut ChildIo) -> i32 {
    while let Some(line) = io.wait_order() {
        let order: Order = match serde_json::from_str(&line) {
            Ok(o) => o,
            Err(e) => {
                reply::<()>(io, Err(anyhow!("unreadable order: {e}")));
                continue;
            }
        };
        match order {
            Order::Ls { dir } => reply(io, Ok(ls(&dir))),
            Order::Layers { dirs } => reply(
                io,
                Ok(dirs
                    .iter()
                    .map(|d| overlay::read_layer(d, d, true))
                    .collect::<Vec<_>>()),
            ),
            Order::Chroot { root, command } => reply(io, run_chrooted(&root, &command)),
            other => reply(io, act(other)),
        }
    }
    0
}

fn act(order: Order) -> Result<()> {
    match order {
        Order::Unshare => {
            sys::unshare(CloneFlags::CLONE_NEWNS)?;
            sys::make_mounts_private()
        }
        Order::CopyOf { pid } => {
            let path = format!("/proc/{pid}/ns/mnt");
            let f = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
            trace::syscall(format!(
                "openat(AT_FDCWD, \"{path}\", O_RDONLY) = {}",
                f.as_raw_fd()
            ));
            let r = nix::sched::setns(&f, CloneFlags::CLONE_NEWNS);
            trace::syscall(format!(
                "setns({}, CLONE_NEWNS) = {}",
                f.as_raw_fd(),
                sys::errno_result(&r)
            ));
            r.with_context(|| format!("setns into {path}"))?;
            sys::unshare(CloneFlags::CLONE_NEWNS)
        }
        Order::Tmpfs { target } => mounts::tmpfs(&target),
        Order::Bind { source, target } => mounts::bind(&source, &target),
        Order::ReadOnly { target } => mounts::read_only(&target),
        Order::Propagation { target, kind } => mounts::propagation(&target, kind),
        Order::Overlay { layers, target } => mounts::overlay(&layers, &target),
        Order::Files { dirs, files } => {
            for d in dirs {
                std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
            }
            for (p, text) in files {
                std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
            }
            Ok(())
        }
        Order::Append { path, text } => append(&path, &text),
        Order::Remove { path } => {
            let r = nix::unistd::unlink(&path);
            trace::syscall(format!(
                "unlink({:?}) = {}",
                path.display().to_string(),
                sys::errno_result(&r)
            ));
            r.with_context(|| format!("removing {}", path.display()))
        }
        Order::Ls { .. } | Order::Layers { .. } | Order::Chroot { .. } => {
            Err(anyhow!("not an action"))
        }
    }
}

fn append(path: &Path, text: &str) -> Result<()> {
    let opened = std::fs::OpenOptions::new().append(true).open(path);
    let shown = format!("{:?}", path.display().to_string());
    let mut f = match opened {
        Ok(f) => f,
        Err(e) => {
            let errno = nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0));
            trace::syscall(format!(
                "openat(AT_FDCWD, {shown}, O_WRONLY|O_APPEND) = -1 {}",
                sys::errno_text(errno)
            ));
            return Err(e).with_context(|| format!("opening {}", path.display()));
        }
    };
    trace::syscall(format!(
        "openat(AT_FDCWD, {shown}, O_WRONLY|O_APPEND) = {}",
        f.as_raw_fd()
    ));
    let line = format!("{text}\n");
    let r = f.write_all(line.as_bytes());
    trace::syscall(format!(
        "write({}, {:?}, {}) = {}",
        f.as_raw_fd(),
        line,
        line.len(),
        match &r {
            Ok(()) => line.len().to_string(),
            Err(e) => format!("-1 ({e})"),
        }
    ));
    r.with_context(|| format!("writing {}", path.display()))
}

/// Fork; the grandchild chroots into `root` and runs `command`, its output read here.
fn run_chrooted(root: &Path, command: &[String]) -> Result<Ran> {
    use std::process::{Command, Stdio};
    let (program, args) = command.split_first().context("no command to run")?;
    let root_owned = root.to_path_buf();
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", "/bin:/sbin:/usr/bin:/usr/sbin")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec, only async-signal-safe calls (chroot, chdir, prctl).
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            nix::unistd::chroot(&root_owned)?;
            nix::unistd::chdir("/")?;
            let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
            Ok(())
        });
    }
    let out = cmd.output();
    let argv: Vec<String> = command.iter().map(|a| format!("{a:?}")).collect();
    match &out {
        Ok(_) => {
            trace::syscall(format!("chroot({:?}) = 0", root.display().to_string()));
            trace::syscall("chdir(\"/\") = 0".to_string());
            trace::syscall(format!(
                "execve({:?}, [{}], …) = 0",
                program,
                argv.join(", ")
            ));
        }
        Err(e) => trace::syscall(format!(
            "chroot({:?}); execve({program:?}, …): {e}",
            root.display().to_string()
        )),
    }
    let out = out.with_context(|| format!("running {program} in {}", root.display()))?;
    let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
    output.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok(Ran {
        code: out.status.code().unwrap_or(-1),
        output,
    })
}
