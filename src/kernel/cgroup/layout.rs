//! The live hierarchies: where they are mounted, where a process sits in them, which
//! controllers nslab can use here, and the fix when one cannot be.

use super::io::{read_list, read_small};
use super::{mountinfo, CgVersion, Home, Layout, ProcCgroup, Version, LESSON_CONTROLLERS};
use crate::error::Problem;
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

impl Layout {
    /// The live layout: this process's mountinfo and the v2 root's controllers.
    pub fn read() -> Result<Layout> {
        let mi = read_small("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
        let (_, unified) = mountinfo::parse_mountinfo(&mi);
        let ctrls = unified
            .as_ref()
            .and_then(|u| read_small(u.mount_point.join("cgroup.controllers")).ok())
            .unwrap_or_default();
        mountinfo::layout_from(&mi, &ctrls).ok_or_else(|| {
            Problem::environment(
                "no cgroup filesystem is mounted (neither cgroup v1 nor cgroup2 appears in /proc/self/mountinfo)",
                "mount cgroup2:  sudo mount -t cgroup2 none /sys/fs/cgroup",
            )
        })
    }
}

/// Is `/sys/fs/cgroup` itself a cgroup2 mount (pure v2, as systemd sets it up)? One statfs.
pub fn is_pure_v2() -> bool {
    version_of_dir(Path::new("/sys/fs/cgroup")) == CgVersion::V2
}

/// The cgroup version of the filesystem `dir` lies in: cgroup2 is v2, anything else
/// (the v1 `cgroup` filesystem) v1.
pub fn version_of_dir(dir: &Path) -> CgVersion {
    use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
    match statfs(dir) {
        Ok(s) if s.filesystem_type() == CGROUP2_SUPER_MAGIC => CgVersion::V2,
        _ => CgVersion::V1,
    }
}

/// `/proc/PID/cgroup` of a process.
pub fn proc_cgroup(pid: i32) -> Result<Vec<ProcCgroup>> {
    let p = format!("/proc/{pid}/cgroup");
    let text = read_small(&p).with_context(|| format!("reading {p}"))?;
    Ok(mountinfo::parse_proc_cgroup(&text))
}

/// `/proc/self/cgroup`.
pub fn own_cgroup() -> Result<Vec<ProcCgroup>> {
    proc_cgroup(std::process::id() as i32)
}

/// The absolute directory of `pid`'s cgroup for `controller` (None if not mounted).
pub fn dir_of_pid(layout: &Layout, pid: i32, controller: &str) -> Result<Option<PathBuf>> {
    Ok(layout.dir_of(&proc_cgroup(pid)?, controller))
}

/// On v2, the nearest cgroup at or above `start` (but inside `mount_point`) whose
/// children get every one of `controllers`: nslab's parent goes there.
pub fn delegating_ancestor(
    start: &Path,
    mount_point: &Path,
    controllers: &[&str],
    subtree_of: impl Fn(&Path) -> Vec<String>,
) -> Option<PathBuf> {
    let mut cur = start.to_path_buf();
    loop {
        let enabled = subtree_of(&cur);
        if controllers.iter().all(|c| enabled.iter().any(|e| e == c)) {
            return Some(cur);
        }
        if cur == mount_point || !cur.pop() || !cur.starts_with(mount_point) {
            return None;
        }
    }
}

/// One cgroup found by walking a hierarchy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Found {
    pub dir: PathBuf,
    /// As /proc/PID/cgroup and the kernel log spell it.
    pub path: String,
    pub version: CgVersion,
    /// Last change of the directory (its creation, or a child's), seconds since the epoch.
    pub changed: i64,
}

/// Every cgroup below the root of the hierarchy holding `controller` (the root itself
/// excluded), at most `max` of them, parents before children.
pub fn walk(layout: &Layout, controller: &str, max: usize) -> Vec<Found> {
    use std::os::unix::fs::MetadataExt;
    let Some((mount, version)) = layout.mount_of(controller) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut queue = std::collections::VecDeque::from([mount]);
    while let Some(dir) = queue.pop_front() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut subs: Vec<PathBuf> = rd
            .flatten()
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .map(|e| e.path())
            .collect();
        subs.sort();
        for sub in subs {
            if out.len() >= max {
                return out;
            }
            let Some(path) = layout.path_in_hierarchy(controller, &sub) else {
                continue;
            };
            let changed = std::fs::metadata(&sub).map(|m| m.ctime()).unwrap_or(0);
            out.push(Found {
                dir: sub.clone(),
                path,
                version,
                changed,
            });
            queue.push_back(sub);
        }
    }
    out
}

/// Whether a controller can be used by nslab here, and where; with the fix when not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ControllerStatus {
    pub controller: String,
    pub version: Option<CgVersion>,
    pub usable: bool,
    /// Where nslab's cgroups for it would go (`…/nslab`).
    pub parent: Option<PathBuf>,
    pub problem: Option<String>,
    pub fix: Option<String>,
}

/// Pure: availability of `controllers` given the layout, the caller's /proc/self/cgroup and
/// a reader of v2 `cgroup.subtree_control` files.
pub fn availability_from(
    layout: &Layout,
    own: &[ProcCgroup],
    controllers: &[&str],
    subtree_of: impl Fn(&Path) -> Vec<String>,
) -> Vec<ControllerStatus> {
    controllers
        .iter()
        .map(|&c| {
            let mut st = ControllerStatus {
                controller: c.to_string(),
                version: None,
                usable: false,
                parent: None,
                problem: None,
                fix: None,
            };
            let problem = |e: anyhow::Error| {
                let p = e.downcast_ref::<Problem>();
                (format!("{e}"), p.and_then(|p| p.fix()).map(String::from))
            };
            match layout.home(c) {
                None => {
                    (st.problem, st.fix) = {
                        let (m, f) = problem(missing_controller(layout, c));
                        (Some(m), f)
                    }
                }
                Some(home) => {
                    let v2 = matches!(home, Home::V2(_));
                    st.version = Some(if v2 { CgVersion::V2 } else { CgVersion::V1 });
                    match layout.dir_of(own, c) {
                        None => {
                            let (m, f) = problem(outside_mount(c));
                            (st.problem, st.fix) = (Some(m), f);
                        }
                        Some(base) if v2 => {
                            let Home::V2(u) = home else { unreachable!() };
                            match delegating_ancestor(&base, &u.mount_point, &[c], &subtree_of) {
                                Some(a) => {
                                    st.usable = true;
                                    st.parent = Some(a.join("nslab"));
                                }
                                None => {
                                    let (m, f) = problem(not_delegated(&base, &[c]));
                                    (st.problem, st.fix) = (Some(m), f);
                                }
                            }
                        }
                        Some(base) => {
                            st.usable = true;
                            st.parent = Some(base.join("nslab"));
                        }
                    }
                }
            }
            st
        })
        .collect()
}

/// Availability of memory, cpu and pids on this machine, for `nslab doctor`.
pub fn availability() -> Result<Vec<ControllerStatus>> {
    let layout = Layout::read()?;
    let own = own_cgroup()?;
    Ok(availability_from(&layout, &own, &LESSON_CONTROLLERS, |p| {
        read_list(&p.join("cgroup.subtree_control"))
    }))
}

pub(super) fn missing_controller(layout: &Layout, c: &str) -> anyhow::Error {
    let fix = match layout.version {
        Version::Unified => format!(
            "the kernel offers no {c} controller on cgroup v2 (see /sys/fs/cgroup/cgroup.controllers); \
             boot a kernel with it enabled, or remove cgroup_disable={c} from the kernel command line"
        ),
        _ => format!("mount it:  sudo mkdir -p /sys/fs/cgroup/{c} && sudo mount -t cgroup -o {c} cgroup /sys/fs/cgroup/{c}"),
    };
    Problem::environment(
        format!("the {c} cgroup controller is not available on this machine"),
        fix,
    )
}

pub(super) fn outside_mount(c: &str) -> anyhow::Error {
    Problem::environment(
        format!("nslab's own {c} cgroup is outside the mounted {c} hierarchy (a container with a private cgroup view?)"),
        "run nslab on the host, or in a container started with --cgroupns=host and a writable /sys/fs/cgroup",
    )
}

pub(super) fn not_delegated(base: &Path, ctrls: &[&str]) -> anyhow::Error {
    let plus: Vec<String> = ctrls.iter().map(|c| format!("+{c}")).collect();
    Problem::environment(
        format!(
            "cgroup v2: no cgroup from {} up to the root hands the {} controller(s) to its children (cgroup.subtree_control)",
            base.display(),
            ctrls.join(", ")
        ),
        format!(
            "enable them for the top level:  echo '{}' | sudo tee /sys/fs/cgroup/cgroup.subtree_control\n\
             or run nslab in a delegated scope:  sudo systemd-run --scope -p Delegate=yes nslab …",
            plus.join(" ")
        ),
    )
}
