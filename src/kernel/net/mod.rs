//! Networking done by nslab itself: named network namespaces made the way
//! `ip netns add` makes them, links and addresses over rtnetlink ([`rtnl`], [`link`]),
//! ICMP echo over a raw socket ([`icmp`]) and interface counters ([`counters`]).
//!
//! nslab's own process never changes network namespace. A helper child ([`born`]) is
//! born in a new namespace (or enters one) and opens a netlink socket, a raw ICMP socket
//! and the namespace's own descriptor there, straight into nslab's descriptor table. A
//! socket belongs to the namespace it was opened in for its whole life, so nslab then
//! talks to that namespace from its own process, without one child per command.
//! [`in_netns`] runs arbitrary code inside a namespace in a forked child instead.

pub mod born;
pub mod counters;
pub mod icmp;
pub mod link;
pub mod nat;
pub mod pin;
pub mod route;
pub mod rtnl;
pub mod uplink;

pub use counters::IfCounters;
pub use icmp::EchoReply;
pub use link::{in_subnet, ipv4_of, prefix_mask, same_subnet, Address, Link};
pub use rtnl::Rtnl;

use super::sys::{self, errno_result, ChildIo};
use super::trace;
use crate::ledger::{self, Resource};
use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where iproute2 keeps named network namespaces: one bind-mounted file each.
pub const NETNS_DIR: &str = "/run/netns";

/// How long a helper child may take to report (a loaded machine is slow, not broken).
const CHILD_TIMEOUT: Duration = Duration::from_secs(20);

/// `/run/netns/NAME`.
pub fn netns_path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

fn check_netns_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        bail!("{name:?} is not a valid network namespace name");
    }
    Ok(())
}

/// Only names with the nslab prefix are nslab's to delete.
fn check_ours(what: &str, name: &str) -> Result<()> {
    if !name.starts_with("nslab") {
        bail!("refusing to delete {what} {name}: nslab only removes what it created (names starting with 'nslab')");
    }
    Ok(())
}

/// The named network namespaces, as `ip netns list` finds them (sorted by name).
pub fn list_netns() -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(NETNS_DIR) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {NETNS_DIR}")),
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

/// The line of /proc/self/mountinfo that mounts something on /run/netns/NAME: the bind
/// mount that keeps a named namespace alive (`nsfs` as its filesystem type).
pub fn netns_mountinfo(name: &str) -> Option<String> {
    let text = std::fs::read("/proc/self/mountinfo").ok()?;
    crate::kernel::mountinfo::line_at(&text, &netns_path(name))
}

/// The inode of the namespace mounted on /run/netns/NAME: the number in `net:[…]`.
pub fn netns_inode(name: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(netns_path(name)).ok().map(|m| m.ino())
}

/// When /run/netns/NAME was made (seconds since the epoch, its ctime): the newest pair
/// of namespaces is the one a learner is working on.
pub fn netns_ctime(name: &str) -> i64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(netns_path(name))
        .map(|m| m.ctime())
        .unwrap_or(0)
}

/// A descriptor of nslab's own network namespace (to ask a namespace which netnsid it
/// knows the host by).
pub fn own_netns_fd() -> Result<OwnedFd> {
    // A read-only query, not one of the lesson's actions: not traced.
    nix::fcntl::open(
        "/proc/self/ns/net",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("opening /proc/self/ns/net")
}

/// Make /run/netns a shared mount point as iproute2 does, so a namespace mounted there
/// later shows up in every mount namespace that shares it (and its unmount too).
fn ensure_netns_dir() -> Result<()> {
    use nix::mount::{mount, MsFlags};
    match nix::unistd::mkdir(NETNS_DIR, Mode::from_bits_truncate(0o755)) {
        Ok(()) => trace::syscall(format!("mkdir(\"{NETNS_DIR}\", 0755) = 0")),
        Err(Errno::EEXIST) => {}
        Err(e) => return Err(e).with_context(|| format!("mkdir {NETNS_DIR}")),
    }
    // Already a shared mount point: nothing to do (the common case after the first time).
    static SHARED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if SHARED.load(std::sync::atomic::Ordering::Relaxed) || is_shared_mount_point(NETNS_DIR) {
        SHARED.store(true, std::sync::atomic::Ordering::Relaxed);
        return Ok(());
    }
    let mut bound = false;
    loop {
        let r = mount(
            Some(""),
            NETNS_DIR,
            Some("none"),
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        );
        trace::syscall(format!(
            "mount(\"\", \"{NETNS_DIR}\", \"none\", MS_REC|MS_SHARED, NULL) = {}",
            errno_result(&r)
        ));
        match r {
            Ok(()) => return Ok(()),
            // Not a mount point yet: bind it onto itself, then make that shared.
            Err(Errno::EINVAL) if !bound => {
                let r = mount(
                    Some(NETNS_DIR),
                    NETNS_DIR,
                    Some("none"),
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                );
                trace::syscall(format!(
                    "mount(\"{NETNS_DIR}\", \"{NETNS_DIR}\", \"none\", MS_BIND|MS_REC, NULL) = {}",
                    errno_result(&r)
                ));
                r.with_context(|| format!("mount --bind {NETNS_DIR} {NETNS_DIR}"))?;
                bound = true;
            }
            Err(e) => return Err(e).with_context(|| format!("mount --make-shared {NETNS_DIR}")),
        }
    }
}

fn is_shared_mount_point(path: &str) -> bool {
    crate::kernel::mountinfo::own()
        .unwrap_or_default()
        .iter()
        .any(|m| m.mount_point == std::path::Path::new(path) && m.is_shared())
}

/// Remove the named namespace nslab made: unmount /run/netns/NAME and delete the file,
/// as `ip netns delete` does. The kernel destroys the namespace (and the links in it)
/// once nothing else holds it. Already gone counts as done.
pub fn delete_netns(name: &str) -> Result<()> {
    use nix::mount::{umount2, MntFlags};
    check_netns_name(name)?;
    check_ours("network namespace", name)?;
    let path = netns_path(name);
    let r = umount2(&path, MntFlags::MNT_DETACH);
    trace::syscall(format!(
        "umount2(\"{}\", MNT_DETACH) = {}",
        path.display(),
        errno_result(&r)
    ));
    match r {
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(e).with_context(|| format!("umount {}", path.display())),
    }
    let r = nix::unistd::unlink(&path);
    trace::syscall(format!(
        "unlink(\"{}\") = {}",
        path.display(),
        errno_result(&r)
    ));
    match r {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

/// Delete a link nslab made in its own namespace (`ip link del NAME`); already gone = Ok.
pub fn delete_link(name: &str) -> Result<()> {
    check_ours("link", name)?;
    Rtnl::open_here()?.delete(name).map(|_| ())
}

/// A netlink socket in nslab's own (the host's) network namespace.
pub fn host() -> Result<Rtnl> {
    Rtnl::open_here()
}

/// What a helper child reports: the calls it made, and how it ended.
#[derive(Serialize, Deserialize)]
struct ChildReport<T> {
    trace: Vec<String>,
    result: std::result::Result<T, String>,
}

/// Enter the namespace mounted at `path` (in a child only).
fn enter(path: &Path) -> Result<()> {
    let f = nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty());
    trace::syscall(format!(
        "openat(AT_FDCWD, \"{}\", O_RDONLY|O_CLOEXEC) = {}",
        path.display(),
        match &f {
            Ok(fd) => fd.as_raw_fd().to_string(),
            Err(e) => format!("-1 {}", crate::kernel::sys::errno_text(*e)),
        }
    ));
    let f = f.with_context(|| format!("opening {}", path.display()))?;
    let r = nix::sched::setns(&f, CloneFlags::CLONE_NEWNET);
    trace::syscall(format!(
        "setns({}, CLONE_NEWNET) = {}",
        f.as_raw_fd(),
        errno_result(&r)
    ));
    r.with_context(|| format!("setns into {}", path.display()))
}

/// Run `f` inside the named network namespace, in a forked child, and bring its result
/// back (as JSON over the child's pipe) together with the calls it made.
pub fn in_netns<T, F>(name: &str, f: F) -> Result<T>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T>,
{
    check_netns_name(name)?;
    let path = netns_path(name);
    let mut child = sys::fork_recorded(move |io: &mut ChildIo| {
        // The parent's unreported calls were copied by fork: they are not the child's.
        trace::take();
        let result = enter(&path)
            .and_then(|()| f())
            .map_err(|e| format!("{e:#}"));
        let ok = result.is_ok();
        io.send(&ChildReport {
            trace: trace::take(),
            result,
        });
        if ok {
            0
        } else {
            1
        }
    })?;
    trace::syscall(format!("fork() = {}", child.pid));
    let report: Result<ChildReport<T>> = child.recv(CHILD_TIMEOUT);
    let _ = child.kill();
    let report = report?;
    trace::extend(report.trace);
    report
        .result
        .map_err(|e| anyhow!(e))
        .with_context(|| format!("inside network namespace {name}"))
}

/// Interface counters seen from inside the named namespace: `/proc/PID/net/dev` of a
/// process that lives there.
pub fn counters_in(name: &str) -> Result<Vec<IfCounters>> {
    in_netns(name, || {
        let path = format!("/proc/{}/net/dev", std::process::id());
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"));
        trace::syscall(format!(
            "read(\"{path}\") = {}",
            if text.is_ok() { "0" } else { "-1" }
        ));
        counters::parse_net_dev(&text?)
    })
}

/// A network namespace nslab talks to without entering it, named (`ip netns`) or reached
/// through a process in it: a netlink socket and a raw ICMP socket opened inside it, and a
/// descriptor of the namespace itself (for moving links in).
pub struct Netns {
    name: String,
    /// The process it was opened through (`Netns::of_pid`), for its /proc/PID/net files.
    pid: Option<i32>,
    rtnl: Rtnl,
    icmp: OwnedFd,
    nsfd: OwnedFd,
    /// The PID whose /proc/PID/ns/net was bind-mounted (gone by now; shown in lessons).
    pub creator_pid: Option<i32>,
}

fn open_nsfd(path: &Path) -> Result<OwnedFd> {
    let r = nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty());
    trace::syscall(format!(
        "openat(AT_FDCWD, \"{}\", O_RDONLY|O_CLOEXEC) = {}",
        path.display(),
        match &r {
            Ok(fd) => fd.as_raw_fd().to_string(),
            Err(e) => format!("-1 {}", crate::kernel::sys::errno_text(*e)),
        }
    ));
    r.with_context(|| format!("opening {}", path.display()))
}

impl Netns {
    /// `ip netns add NAME`: a new network namespace, bind-mounted on /run/netns/NAME so it
    /// outlives every process in it and `ip netns list` shows it. On the ledger first.
    pub fn create(name: &str) -> Result<Netns> {
        check_netns_name(name)?;
        if !name.starts_with("nslab") {
            bail!("nslab names its own namespaces with the 'nslab' prefix; {name:?} has none");
        }
        let path = netns_path(name);
        if path.exists() {
            bail!(
                "network namespace {name} already exists ({})",
                path.display()
            );
        }
        ensure_netns_dir()?;
        let resource = Resource::NetNs {
            name: name.to_string(),
        };
        ledger::record(resource.clone())?;
        // The mount point: an empty file, created exclusively as iproute2 does.
        let r = nix::fcntl::open(
            &path,
            OFlag::O_RDONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC,
            Mode::empty(),
        );
        trace::syscall(format!(
            "openat(AT_FDCWD, \"{}\", O_RDONLY|O_CREAT|O_EXCL|O_CLOEXEC, 000) = {}",
            path.display(),
            match &r {
                Ok(fd) => fd.as_raw_fd().to_string(),
                Err(e) => format!("-1 {}", crate::kernel::sys::errno_text(*e)),
            }
        ));
        if let Err(e) = r {
            // Someone else's file appeared meanwhile: not ours to remove.
            ledger::forget(&resource);
            return Err(e).with_context(|| format!("creating {}", path.display()));
        }
        drop(r);
        match Self::mount_new(name, &path) {
            Ok(ns) => {
                super::removal::identify(&resource);
                Ok(ns)
            }
            Err(e) => {
                let _ = super::removal::release(&resource);
                Err(e.context(format!("creating network namespace {name}")))
            }
        }
    }

    fn mount_new(name: &str, path: &Path) -> Result<Netns> {
        use nix::mount::{mount, MsFlags};
        let born = born::helper(None)?;
        // The child has exited; its namespace lives on in the descriptor it left us.
        let source = format!("/proc/self/fd/{}", born.nsfd.as_raw_fd());
        let r = mount(
            Some(source.as_str()),
            path,
            Some("none"),
            MsFlags::MS_BIND,
            None::<&str>,
        );
        trace::syscall(format!(
            "mount(\"{source}\", \"{}\", \"none\", MS_BIND, NULL) = {}",
            path.display(),
            errno_result(&r)
        ));
        r.with_context(|| format!("mount --bind {source} {}", path.display()))?;
        Ok(Netns {
            name: name.to_string(),
            pid: None,
            rtnl: Rtnl::from_fd(born.netlink, Some(name.to_string()))?,
            icmp: born.icmp,
            nsfd: born.nsfd,
            creator_pid: Some(born.pid),
        })
    }

    /// A named namespace that exists already (a learner's, made with `ip netns add`).
    pub fn open(name: &str) -> Result<Netns> {
        check_netns_name(name)?;
        let path = netns_path(name);
        if !path.exists() {
            bail!(
                "there is no network namespace {name} ({} does not exist)",
                path.display()
            );
        }
        let nsfd = open_nsfd(&path)?;
        Self::opened(name.to_string(), None, nsfd)
    }

    /// The network namespace of process `pid` (its /proc/PID/ns/net), a container's say:
    /// called `PID N` in traces and views.
    pub fn of_pid(pid: i32) -> Result<Netns> {
        let nsfd = open_nsfd(Path::new(&format!("/proc/{pid}/ns/net")))?;
        Self::opened(format!("PID {pid}"), Some(pid), nsfd)
    }

    fn opened(name: String, pid: Option<i32>, nsfd: OwnedFd) -> Result<Netns> {
        let born = born::helper(Some(nsfd.as_raw_fd()))?;
        Ok(Netns {
            rtnl: Rtnl::from_fd(born.netlink, Some(name.clone()))?,
            name,
            pid,
            icmp: born.icmp,
            nsfd,
            creator_pid: None,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The netlink socket inside this namespace: `ip -n NAME ...`.
    pub fn rtnl(&mut self) -> &mut Rtnl {
        &mut self.rtnl
    }

    /// A descriptor of the namespace (for IFLA_NET_NS_FD, `ip link set X netns NAME`).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.nsfd.as_fd()
    }

    /// Links in this namespace (`ip -n NAME link`).
    pub fn links(&mut self) -> Result<Vec<Link>> {
        self.rtnl.links()
    }

    /// Addresses in this namespace (`ip -n NAME addr`).
    pub fn addresses(&mut self) -> Result<Vec<Address>> {
        self.rtnl.addresses()
    }

    /// Wait until link `dev` here has its carrier and is operationally UP (the kernel
    /// switches it on in the background once both veth ends are up; packets sent before
    /// are dropped). Returns false if it did not happen within `timeout`.
    pub fn wait_carrier(&mut self, dev: &str, timeout: Duration) -> Result<bool> {
        let start = std::time::Instant::now();
        loop {
            if let Some(l) = self.rtnl.link(dev)? {
                if l.lower_up && l.operstate == "UP" {
                    return Ok(true);
                }
            }
            if start.elapsed() > timeout {
                return Ok(false);
            }
            sys::sleep(Duration::from_millis(1))?;
        }
    }

    /// One ICMP echo from inside this namespace to `dst`; `Ok(None)` on timeout.
    pub fn echo(&self, dst: Ipv4Addr, seq: u16, timeout: Duration) -> Result<Option<EchoReply>> {
        let id = (std::process::id() & 0xffff) as u16;
        icmp::echo(self.icmp.as_fd(), &self.name, dst, id, seq, timeout)
    }

    /// The first reply of up to `tries` echoes to `dst` (seq `first_seq`, then on): on a
    /// slow machine the first packet may only trigger ARP.
    pub fn echo_tries(
        &self,
        dst: Ipv4Addr,
        first_seq: u16,
        tries: u16,
        timeout: Duration,
    ) -> Result<Option<EchoReply>> {
        for k in 0..tries {
            if let Some(r) = self.echo(dst, first_seq.wrapping_add(k), timeout)? {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// Interface counters seen from inside (`/proc/PID/net/dev` of a process there).
    pub fn counters(&self) -> Result<Vec<IfCounters>> {
        match self.pid {
            Some(pid) => {
                let path = format!("/proc/{pid}/net/dev");
                let text =
                    std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
                counters::parse_net_dev(&text)
            }
            None => counters_in(&self.name),
        }
    }

    /// `ip netns delete NAME` for a namespace nslab created: close nslab's sockets in it
    /// (they would keep it alive), unmount and remove the file, strike it off the ledger.
    pub fn delete(self) -> Result<()> {
        let name = self.name.clone();
        drop(self);
        super::removal::release(&Resource::NetNs { name })
    }
}

#[cfg(test)]
mod tests;
