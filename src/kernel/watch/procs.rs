//! Which of the machine's process events may change a check's judgement. A busy machine
//! starts dozens of processes a second (builds, services); judging again for each would
//! cost more than sampling. A process matters when it lives in a namespace other than
//! nslab's own (`unshare`, `ip netns exec`, `nsenter`), in a cgroup a process was moved into
//! or that was made while the watch runs (`echo $$ > cgroup.procs`, `mkdir`), or descends
//! from one that matters; its exec and its end matter too. nslab's own children (a check
//! looking inside a namespace) never do.

use super::super::cgroup::{self, Layout};
use super::super::ns::{self, NsKind};
use super::super::procevents::Event;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Past this many, the sets are emptied: exits missed in an overflow leave stale entries.
const MAX_TRACKED: usize = 65_536;

/// What the watch reads of one live process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Look {
    pub namespaces: Vec<(NsKind, u64)>,
    /// Its cgroup directories, read only while some cgroup is marked ([`Interest::touch`]).
    pub cgroups: Vec<PathBuf>,
}

pub struct Interest {
    me: i32,
    home: Vec<(NsKind, u64)>,
    /// nslab's own cgroup directories and their ancestors (the roots among them): moving a
    /// process there is leaving the learner's cgroup, not making one that matters.
    not_marked: HashSet<PathBuf>,
    marked: HashSet<PathBuf>,
    followed: HashSet<i32>,
    mine: HashSet<i32>,
}

impl Interest {
    /// `home`: nslab's own namespaces; `own_cgroups`: its cgroup directories.
    pub fn new(me: i32, home: Vec<(NsKind, u64)>, own_cgroups: &[PathBuf]) -> Interest {
        let not_marked = own_cgroups
            .iter()
            .flat_map(|d| d.ancestors().map(Path::to_path_buf))
            .collect();
        Interest {
            me,
            home,
            not_marked,
            marked: HashSet::new(),
            followed: HashSet::new(),
            mine: HashSet::new(),
        }
    }

    /// A cgroup directory a process was written into, or made, while the watch runs.
    pub fn touch(&mut self, dir: &Path) {
        if !self.not_marked.contains(dir) {
            self.marked.insert(dir.to_path_buf());
        }
    }

    /// Follow processes just written into a marked cgroup: their end matters too.
    pub fn follow(&mut self, pids: &[i32]) {
        for &pid in pids {
            if pid != self.me && !self.mine.contains(&pid) {
                self.followed.insert(pid);
            }
        }
    }

    /// Whether [`Look::cgroups`] is needed at all.
    pub fn wants_cgroups(&self) -> bool {
        !self.marked.is_empty()
    }

    fn matters(&self, l: &Look) -> bool {
        l.namespaces
            .iter()
            .any(|(k, i)| self.home.iter().any(|(hk, hi)| hk == k && hi != i))
            || l.cgroups.iter().any(|d| self.marked.contains(d))
    }

    /// Follow a process already running when the watch starts, if it matters.
    pub fn seed(&mut self, tgid: i32, look: &Look) {
        if tgid != self.me && self.matters(look) {
            self.followed.insert(tgid);
        }
    }

    /// One event: whether it may change a judgement. `look` reads a live process (`None`
    /// once it is gone).
    pub fn on(&mut self, ev: &Event, look: impl Fn(i32) -> Option<Look>) -> bool {
        if self.followed.len() > MAX_TRACKED || self.mine.len() > MAX_TRACKED {
            self.followed.clear();
            self.mine.clear();
        }
        match *ev {
            Event::Fork {
                parent_tgid,
                child_pid,
                child_tgid,
            } => {
                if child_pid != child_tgid {
                    return false; // a thread
                }
                if parent_tgid == self.me || self.mine.contains(&parent_tgid) {
                    self.mine.insert(child_tgid);
                    return false;
                }
                let follow = self.followed.contains(&parent_tgid)
                    || look(child_tgid).is_some_and(|l| self.matters(&l));
                if follow {
                    self.followed.insert(child_tgid);
                }
                follow
            }
            Event::Exec { tgid, .. } => {
                if self.mine.contains(&tgid) {
                    return false;
                }
                let follow =
                    self.followed.contains(&tgid) || look(tgid).is_some_and(|l| self.matters(&l));
                if follow {
                    self.followed.insert(tgid);
                }
                follow
            }
            Event::Exit { pid, tgid } if pid == tgid => {
                self.mine.remove(&tgid);
                self.followed.remove(&tgid)
            }
            _ => false,
        }
    }
}

/// nslab's own namespaces, as [`Look::namespaces`] lists a process's.
pub fn own_namespaces() -> Vec<(NsKind, u64)> {
    ns::of_self()
        .map(|s| {
            s.links
                .iter()
                .filter_map(|l| Some((l.kind, l.inode?)))
                .collect()
        })
        .unwrap_or_default()
}

/// Read a process for [`Interest::on`]: its namespace links, and its cgroups if wanted.
pub fn look(layout: Option<&Layout>, pid: i32, cgroups: bool) -> Option<Look> {
    let set = ns::of_pid(pid)?;
    // `unshare --pid` without --fork: the namespace its children would enter has no PID 1
    // yet, so its link does not resolve; a live process (its own PID link resolving) is
    // then counted as having another. A process already ended has no links at all.
    let alive = set.inode(NsKind::Pid).is_some();
    let namespaces = set
        .links
        .iter()
        .filter_map(|l| match (l.inode, l.kind, l.unreadable.as_deref()) {
            (Some(i), k, _) => Some((k, i)),
            (None, NsKind::PidForChildren, Some("no such namespace")) if alive => {
                Some((NsKind::PidForChildren, 0))
            }
            _ => None,
        })
        .collect();
    let cgroups = match layout {
        Some(layout) if cgroups => layout.dirs_of(&cgroup::proc_cgroup(pid).ok()?),
        _ => Vec::new(),
    };
    Some(Look {
        namespaces,
        cgroups,
    })
}

/// The PIDs of every process now (thread-group leaders: /proc's numbered entries).
pub fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: i32 = 100;
    const HOME: [(NsKind, u64); 2] = [(NsKind::Pid, 1), (NsKind::Mnt, 2)];

    fn interest() -> Interest {
        Interest::new(
            ME,
            HOME.to_vec(),
            &[PathBuf::from("/sys/fs/cgroup/memory/session")],
        )
    }

    fn at_home() -> Option<Look> {
        Some(Look {
            namespaces: HOME.to_vec(),
            cgroups: vec![PathBuf::from("/sys/fs/cgroup/memory/session")],
        })
    }

    fn in_pid_ns(_: i32) -> Option<Look> {
        Some(Look {
            namespaces: vec![(NsKind::Pid, 9), (NsKind::Mnt, 2)],
            cgroups: vec![],
        })
    }

    fn fork(parent: i32, child: i32) -> Event {
        Event::Fork {
            parent_tgid: parent,
            child_pid: child,
            child_tgid: child,
        }
    }

    #[test]
    fn a_process_at_home_does_not_matter_one_in_a_namespace_of_its_own_does() {
        let mut i = interest();
        assert!(!i.on(&fork(1, 200), |_| at_home()));
        assert!(!i.on(
            &Event::Exec {
                pid: 200,
                tgid: 200
            },
            |_| at_home()
        ));
        assert!(!i.on(
            &Event::Exit {
                pid: 200,
                tgid: 200
            },
            |_| None
        ));
        // `unshare --pid --fork`: its child is in a new PID namespace; then it ends.
        assert!(i.on(&fork(300, 301), in_pid_ns));
        assert!(i.on(
            &Event::Exec {
                pid: 301,
                tgid: 301
            },
            in_pid_ns
        ));
        assert!(i.on(
            &Event::Exit {
                pid: 301,
                tgid: 301
            },
            |_| None
        ));
        assert!(
            !i.on(
                &Event::Exit {
                    pid: 301,
                    tgid: 301
                },
                |_| None
            ),
            "once"
        );
    }

    #[test]
    fn descendants_follow_even_gone_and_threads_do_not_count() {
        let mut i = interest();
        assert!(i.on(&fork(300, 301), in_pid_ns));
        // A short-lived child, gone before it is looked at, of a process that matters.
        assert!(i.on(&fork(301, 302), |_| None));
        assert!(i.on(
            &Event::Exit {
                pid: 302,
                tgid: 302
            },
            |_| None
        ));
        let thread = Event::Fork {
            parent_tgid: 301,
            child_pid: 303,
            child_tgid: 301,
        };
        assert!(!i.on(&thread, in_pid_ns));
        assert!(!i.on(
            &Event::Exit {
                pid: 303,
                tgid: 301
            },
            |_| None
        ));
    }

    #[test]
    fn nslabs_own_children_never_matter() {
        let mut i = interest();
        // A check's helper child inside a learner's network namespace, and its child.
        assert!(!i.on(&fork(ME, 400), in_pid_ns));
        assert!(!i.on(&fork(400, 401), in_pid_ns));
        assert!(!i.on(
            &Event::Exec {
                pid: 401,
                tgid: 401
            },
            in_pid_ns
        ));
        assert!(!i.on(
            &Event::Exit {
                pid: 401,
                tgid: 401
            },
            |_| None
        ));
        // Its number reused later by someone else's process.
        assert!(i.on(&fork(300, 401), in_pid_ns));
    }

    #[test]
    fn a_process_written_into_a_cgroup_is_followed_to_its_end() {
        let mut i = interest();
        let exit = Event::Exit {
            pid: 600,
            tgid: 600,
        };
        assert!(!i.on(&exit, |_| None), "a stranger's end");
        // `echo 600 > cgroup.procs` for a `sleep` started before: never seen starting.
        i.follow(&[600, ME]);
        assert!(i.on(&exit, |_| None));
        assert!(!i.on(&exit, |_| None), "followed once");
        i.follow(&[ME]);
        assert!(
            !i.on(&Event::Exit { pid: ME, tgid: ME }, |_| None),
            "nslab itself is never followed"
        );
    }

    #[test]
    fn a_process_in_a_cgroup_the_learner_moved_a_process_into() {
        let mut i = interest();
        let mine = PathBuf::from("/sys/fs/cgroup/memory/mytest");
        let in_mine = |_| {
            Some(Look {
                namespaces: HOME.to_vec(),
                cgroups: vec![mine.clone()],
            })
        };
        assert!(!i.wants_cgroups());
        assert!(!i.on(
            &Event::Exec {
                pid: 500,
                tgid: 500
            },
            in_mine
        ));
        i.touch(&mine);
        assert!(i.wants_cgroups());
        // `echo $$ > cgroup.procs; exec tail /dev/zero`, then the OOM kill.
        assert!(i.on(
            &Event::Exec {
                pid: 500,
                tgid: 500
            },
            in_mine
        ));
        assert!(i.on(
            &Event::Exit {
                pid: 500,
                tgid: 500
            },
            |_| None
        ));
        // Moving a process back to the root or into nslab's own cgroup marks nothing.
        let mut j = interest();
        j.touch(Path::new("/sys/fs/cgroup/memory"));
        j.touch(Path::new("/sys/fs/cgroup/memory/session"));
        assert!(!j.wants_cgroups());
        assert!(!j.on(&fork(1, 600), |_| at_home()));
    }

    #[test]
    fn seeded_processes_are_followed_to_their_end() {
        let mut i = interest();
        i.seed(700, &in_pid_ns(700).unwrap());
        i.seed(701, &at_home().unwrap());
        i.seed(ME, &in_pid_ns(ME).unwrap());
        assert!(i.on(
            &Event::Exit {
                pid: 700,
                tgid: 700
            },
            |_| None
        ));
        assert!(!i.on(
            &Event::Exit {
                pid: 701,
                tgid: 701
            },
            |_| None
        ));
    }
}
