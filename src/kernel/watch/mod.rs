//! Waiting for the learner to change something: inotify on every cgroup directory (a write
//! to a limit, a process written into `cgroup.procs`, a cgroup made or removed; on v2 also
//! `cgroup.events` and `memory.events`, a cgroup emptied or filled, an OOM kill) and on
//! /run/netns, rtnetlink's link, address and route announcements in the host's and each
//! named network namespace, and the kernel's process events (a process that matters
//! starting, exec'ing or ending: [`procs`]). A process joining a cgroup by being born in it
//! has no cgroup event but a fork event. What has no event (a process moved into a cgroup
//! before the watch started forking, processes where the proc connector is unavailable)
//! is caught by the caller sampling at a timeout.

mod procs;

use super::cgroup::{self, Layout};
use super::net::{self, Netns, Rtnl};
use super::procevents::{Event, ProcEvents};
use super::sys;
use anyhow::{Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use std::collections::{BTreeMap, HashMap, HashSet};
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
/// v2 files the kernel announces only to a watch on the file itself (kernfs notifies the
/// directory too, but only for a file whose inode is in memory).
const V2_ANNOUNCED: [&str; 2] = ["cgroup.events", "memory.events"];
/// Files whose write moves a process into a cgroup.
const JOINS: [&str; 3] = ["cgroup.procs", "tasks", "cgroup.threads"];
/// Process events wake the watch at most this often, after a burst of [`BURST`]: a machine
/// busy starting processes in namespaces (a sandboxing browser, a build in a container)
/// costs a few judgements a second, not one per process.
const PROCESS_GAP: Duration = Duration::from_millis(100);
const BURST: u32 = 5;

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
    /// Watches on v2 files ([`V2_ANNOUNCED`]), held so the kernel announces their changes
    /// (seen through the directory's watch).
    pins: HashSet<WatchDescriptor>,
    netns_dir: Option<WatchDescriptor>,
    host: Option<Rtnl>,
    /// A subscribed socket inside each named network namespace, by name.
    netns: BTreeMap<String, Netns>,
    /// The process events, or why there are none.
    procs: Result<ProcEvents, String>,
    interest: procs::Interest,
    layout: Option<Layout>,
    bucket: Bucket,
    /// A process event that matters arrived while the bucket was empty.
    process_pending: bool,
}

/// What the watch listens to, for the learner to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sources {
    pub cgroup_dirs: usize,
    pub namespaces: usize,
    /// `Err`: why there are no process events (a sentence part).
    pub processes: Result<(), String>,
}

/// [`BURST`] wake-ups at once, then one per [`PROCESS_GAP`].
struct Bucket {
    tokens: u32,
    since: Instant,
}

impl Bucket {
    fn full() -> Bucket {
        Bucket {
            tokens: BURST,
            since: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        while self.tokens < BURST && now.duration_since(self.since) >= PROCESS_GAP {
            self.tokens += 1;
            self.since += PROCESS_GAP;
        }
        if self.tokens == BURST {
            self.since = now;
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }

    /// How long until [`Bucket::take`] can succeed.
    fn wait(&self, now: Instant) -> Duration {
        if self.tokens > 0 {
            Duration::ZERO
        } else {
            (self.since + PROCESS_GAP).saturating_duration_since(now)
        }
    }
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
        let layout = Layout::read().ok();
        let own_cgroups = match (&layout, cgroup::own_cgroup()) {
            (Some(l), Ok(own)) => l.dirs_of(&own),
            _ => Vec::new(),
        };
        let me = std::process::id() as i32;
        let mut w = Watcher::bare(procs::Interest::new(
            me,
            procs::own_namespaces(),
            &own_cgroups,
        ))?;
        // Subscribed before the processes already running are read: none is missed.
        w.procs = ProcEvents::open();
        if w.procs.is_ok() {
            for pid in procs::all_pids() {
                if let Some(look) = procs::look(None, pid, false) {
                    w.interest.seed(pid, &look);
                }
            }
        }
        if let Some(layout) = &layout {
            let mut roots: Vec<PathBuf> = layout.v1.iter().map(|h| h.mount_point.clone()).collect();
            roots.extend(layout.unified.iter().map(|u| u.mount_point.clone()));
            roots.sort();
            roots.dedup();
            for root in roots {
                w.watch_tree(&root);
            }
        }
        w.layout = layout;
        w.watch_netns_dir();
        if let Ok(host) = Rtnl::open_here() {
            if host.subscribe(&RTNL_GROUPS).is_ok() {
                w.host = Some(host);
            }
        }
        w.refresh_netns();
        Ok(w)
    }

    fn bare(interest: procs::Interest) -> Result<Watcher> {
        Ok(Watcher {
            inotify: Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
                .context("inotify_init1")?,
            dirs: HashMap::new(),
            pins: HashSet::new(),
            netns_dir: None,
            host: None,
            netns: BTreeMap::new(),
            procs: Err("not asked for".into()),
            interest,
            layout: None,
            bucket: Bucket::full(),
            process_pending: false,
        })
    }

    /// What is watched: cgroup directories, network namespaces, process events.
    pub fn sources(&self) -> Sources {
        Sources {
            cgroup_dirs: self.dirs.len(),
            namespaces: self.netns.len() + usize::from(self.host.is_some()),
            processes: self.procs.as_ref().map(|_| ()).map_err(Clone::clone),
        }
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
                    } else if V2_ANNOUNCED.iter().any(|f| e.file_name() == *f) {
                        if let Ok(pin) = self.inotify.add_watch(&e.path(), AddWatchFlags::IN_MODIFY)
                        {
                            self.pins.insert(pin);
                        }
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
            let now = Instant::now();
            let left = end.saturating_duration_since(now);
            if left.is_zero() {
                return Ok(Woken::Timeout);
            }
            let mut slice = left.min(Duration::from_millis(100));
            if self.process_pending {
                slice = slice.min(self.bucket.wait(now).max(Duration::from_millis(1)));
            }
            let ready = self.poll_once(slice)?;
            let mut kind = if ready { self.take_events() } else { None };
            if kind == Some("process") || (kind.is_none() && self.process_pending) {
                self.process_pending = true;
                kind = self.bucket.take(Instant::now()).then_some("process");
            }
            if let Some(kind) = kind {
                std::thread::sleep(SETTLE);
                // What came meanwhile is part of the same change.
                self.take_events();
                self.process_pending = false;
                return Ok(Woken::Event(kind));
            }
        }
    }

    fn poll_once(&mut self, slice: Duration) -> Result<bool> {
        use std::os::fd::{AsRawFd, RawFd};
        let ms = u16::try_from(slice.as_millis()).unwrap_or(u16::MAX);
        let mut raw: Vec<RawFd> = self.netns.values_mut().map(|n| n.rtnl().raw_fd()).collect();
        raw.extend(self.host.iter().map(Rtnl::raw_fd));
        raw.extend(self.procs.iter().map(ProcEvents::raw_fd));
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

    /// Read every pending event; the kind of change they announce, if any ("process" only
    /// when nothing else came).
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
                    self.pins.remove(&ev.wd);
                    continue;
                }
                if let Some(dir) = self.dirs.get(&ev.wd) {
                    kind.get_or_insert("cgroup");
                    let Some(name) = &ev.name else { continue };
                    if ev.mask.contains(AddWatchFlags::IN_ISDIR)
                        && ev.mask.contains(AddWatchFlags::IN_CREATE)
                    {
                        new_dirs.push(dir.join(name));
                    } else if JOINS.iter().any(|j| name == *j) {
                        let dir = dir.clone();
                        self.interest.touch(&dir);
                        // A process written in was not seen starting: follow it from here.
                        if let Ok(pids) = cgroup::read_procs(&dir) {
                            self.interest.follow(&pids);
                        }
                    }
                }
            }
        }
        for d in new_dirs {
            self.interest.touch(&d);
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
        if self.take_process_events() {
            kind.get_or_insert("process");
        }
        kind
    }

    /// Whether a process that matters started, exec'd or ended.
    fn take_process_events(&mut self) -> bool {
        let Ok(source) = &self.procs else {
            return false;
        };
        let mut events: Vec<Event> = Vec::new();
        // An overflow lost events: whatever they were may matter.
        let mut matters = source.read(&mut events);
        let cgroups = self.interest.wants_cgroups();
        let layout = self.layout.as_ref();
        for ev in &events {
            matters |= self
                .interest
                .on(ev, |pid| procs::look(layout, pid, cgroups));
        }
        matters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_in_a_watched_directory_wakes_the_wait() {
        let dir = std::env::temp_dir().join(format!("nslab-watch-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut w = Watcher::bare(procs::Interest::new(0, Vec::new(), &[])).unwrap();
        w.watch_tree(&dir);
        assert_eq!((w.sources().cgroup_dirs, w.sources().namespaces), (1, 0));
        assert_eq!(w.wait(Duration::from_millis(50)).unwrap(), Woken::Timeout);
        std::fs::create_dir(dir.join("child")).unwrap();
        assert_eq!(
            w.wait(Duration::from_secs(2)).unwrap(),
            Woken::Event("cgroup")
        );
        assert_eq!(w.sources().cgroup_dirs, 2, "a new directory is watched too");
        std::fs::write(dir.join("child/memory.max"), "1").unwrap();
        assert_eq!(
            w.wait(Duration::from_secs(2)).unwrap(),
            Woken::Event("cgroup")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
