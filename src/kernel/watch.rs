//! Waiting for the learner to change something: inotify on every cgroup directory (a write
//! to a limit, a process joining, a cgroup made or removed, an OOM kill's memory.events) and
//! on /run/netns, and rtnetlink's link, address and route announcements in the host's and
//! each named network namespace. What has no event (a process started or ended) is caught
//! by the caller sampling at a timeout.

use super::cgroup::Layout;
use super::net::{self, Netns, Rtnl};
use super::sys;
use anyhow::{Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use std::collections::{BTreeMap, HashMap};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// At most this many cgroup directories are watched; beyond, sampling alone sees changes.
const MAX_WATCHED_DIRS: usize = 4096;
/// Where `ip netns add` pins namespaces.
const NETNS_DIR: &str = "/run/netns";
/// A learner's command often changes several things at once (`ip link set … up` announces
/// the link, then its address routes): they are taken as one change.
const SETTLE: Duration = Duration::from_millis(15);
/// rtnetlink multicast groups: RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV4_ROUTE.
const RTNL_GROUPS: [u32; 3] = [1, 5, 7];

/// Why [`Watcher::wait`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Woken {
    /// The kernel announced a change of this kind.
    Event(&'static str),
    /// Nothing announced within the timeout.
    Timeout,
}

pub struct Watcher {
    inotify: Inotify,
    dirs: HashMap<WatchDescriptor, PathBuf>,
    netns_dir: Option<WatchDescriptor>,
    host: Option<Rtnl>,
    /// A subscribed socket inside each named network namespace, by name.
    netns: BTreeMap<String, Netns>,
}

fn cgroup_flags() -> AddWatchFlags {
    AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_ONLYDIR
}

impl Watcher {
    /// Watch everything there is to watch now. Parts that cannot be watched (no cgroup
    /// mounted, a namespace gone meanwhile) are left to sampling.
    pub fn new() -> Result<Watcher> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .context("inotify_init1")?;
        let mut w = Watcher {
            inotify,
            dirs: HashMap::new(),
            netns_dir: None,
            host: None,
            netns: BTreeMap::new(),
        };
        if let Ok(layout) = Layout::read() {
            let mut roots: Vec<PathBuf> = layout.v1.iter().map(|h| h.mount_point.clone()).collect();
            roots.extend(layout.unified.iter().map(|u| u.mount_point.clone()));
            roots.sort();
            roots.dedup();
            for root in roots {
                w.watch_tree(&root);
            }
        }
        w.watch_netns_dir();
        if let Ok(host) = Rtnl::open_here() {
            if host.subscribe(&RTNL_GROUPS).is_ok() {
                w.host = Some(host);
            }
        }
        w.refresh_netns();
        Ok(w)
    }

    /// How many cgroup directories and network namespaces are watched.
    pub fn extent(&self) -> (usize, usize) {
        (
            self.dirs.len(),
            self.netns.len() + usize::from(self.host.is_some()),
        )
    }

    fn watch_tree(&mut self, root: &Path) {
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            if self.dirs.len() >= MAX_WATCHED_DIRS {
                return;
            }
            let Ok(wd) = self.inotify.add_watch(&dir, cgroup_flags()) else {
                continue;
            };
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for e in entries.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        stack.push(e.path());
                    }
                }
            }
            self.dirs.insert(wd, dir);
        }
    }

    fn watch_netns_dir(&mut self) {
        if self.netns_dir.is_none() {
            self.netns_dir = self
                .inotify
                .add_watch(
                    NETNS_DIR,
                    AddWatchFlags::IN_CREATE | AddWatchFlags::IN_DELETE | AddWatchFlags::IN_ATTRIB,
                )
                .ok();
        }
    }

    /// One subscribed socket per namespace in /run/netns: changes made inside a learner's
    /// namespace (`ip -n red link set … up`) are announced only there.
    fn refresh_netns(&mut self) {
        let names = net::list_netns().unwrap_or_default();
        self.netns.retain(|n, _| names.contains(n));
        for name in names {
            if self.netns.contains_key(&name) {
                continue;
            }
            if let Ok(mut ns) = Netns::open(&name) {
                if ns.rtnl().subscribe(&RTNL_GROUPS).is_ok() {
                    self.netns.insert(name, ns);
                }
            }
        }
        // Opening a namespace is not one of the learner's actions: nothing to show.
        super::trace::take();
    }

    /// Wait up to `timeout` for the kernel to announce a change; Ctrl-C and the other
    /// ending signals end the wait with `Err(Interrupted)`.
    pub fn wait(&mut self, timeout: Duration) -> Result<Woken> {
        let end = Instant::now() + timeout;
        loop {
            sys::check_interrupt()?;
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Woken::Timeout);
            }
            let slice = left.min(Duration::from_millis(100));
            if self.poll_once(slice)? {
                std::thread::sleep(SETTLE);
                if let Some(kind) = self.take_events() {
                    return Ok(Woken::Event(kind));
                }
            }
        }
    }

    fn poll_once(&mut self, slice: Duration) -> Result<bool> {
        use std::os::fd::{AsRawFd, RawFd};
        let ms = u16::try_from(slice.as_millis()).unwrap_or(u16::MAX);
        let mut raw: Vec<RawFd> = self.netns.values_mut().map(|n| n.rtnl().raw_fd()).collect();
        raw.extend(self.host.iter().map(Rtnl::raw_fd));
        raw.push(self.inotify.as_fd().as_raw_fd());
        let mut fds: Vec<PollFd<'_>> = raw
            .iter()
            // SAFETY: each descriptor belongs to an inotify instance or socket held in self,
            // open for the whole poll.
            .map(|&fd| PollFd::new(unsafe { BorrowedFd::borrow_raw(fd) }, PollFlags::POLLIN))
            .collect();
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(n) => Ok(n > 0),
            Err(nix::errno::Errno::EINTR) => Ok(false),
            Err(e) => Err(e).context("poll"),
        }
    }

    /// Read every pending event; the kind of change they announce, if any.
    fn take_events(&mut self) -> Option<&'static str> {
        let mut kind = None;
        let mut netns_changed = false;
        let mut new_dirs = Vec::new();
        while let Ok(events) = self.inotify.read_events() {
            if events.is_empty() {
                break;
            }
            for ev in events {
                if Some(ev.wd) == self.netns_dir {
                    netns_changed = true;
                    kind = Some("network namespace");
                    continue;
                }
                if ev.mask.contains(AddWatchFlags::IN_IGNORED) {
                    self.dirs.remove(&ev.wd);
                    continue;
                }
                if let Some(dir) = self.dirs.get(&ev.wd) {
                    kind.get_or_insert("cgroup");
                    if ev.mask.contains(AddWatchFlags::IN_ISDIR)
                        && ev.mask.contains(AddWatchFlags::IN_CREATE)
                    {
                        if let Some(name) = &ev.name {
                            new_dirs.push(dir.join(name));
                        }
                    }
                }
            }
        }
        for d in new_dirs {
            self.watch_tree(&d);
        }
        if self.host.as_ref().is_some_and(|h| h.drain() > 0) {
            kind = Some("network");
        }
        for ns in self.netns.values_mut() {
            if ns.rtnl().drain() > 0 {
                kind = Some("network");
            }
        }
        if netns_changed {
            self.refresh_netns();
        }
        kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_in_a_watched_directory_wakes_the_wait() {
        let dir = std::env::temp_dir().join(format!("nslab-watch-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut w = Watcher {
            inotify: Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).unwrap(),
            dirs: HashMap::new(),
            netns_dir: None,
            host: None,
            netns: BTreeMap::new(),
        };
        w.watch_tree(&dir);
        assert_eq!(w.extent(), (1, 0));
        assert_eq!(w.wait(Duration::from_millis(50)).unwrap(), Woken::Timeout);
        std::fs::create_dir(dir.join("child")).unwrap();
        assert_eq!(
            w.wait(Duration::from_secs(2)).unwrap(),
            Woken::Event("cgroup")
        );
        assert_eq!(w.extent(), (2, 0), "a new directory is watched too");
        std::fs::write(dir.join("child/memory.max"), "1").unwrap();
        assert_eq!(
            w.wait(Duration::from_secs(2)).unwrap(),
            Woken::Event("cgroup")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
