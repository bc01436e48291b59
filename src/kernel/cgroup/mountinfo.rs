//! Where the cgroup hierarchies are: found in `/proc/self/mountinfo` (never assumed to be
//! under /sys/fs/cgroup), plus the `/proc/PID/cgroup` file that says where a process sits.
//!
//! Pure functions over file contents, so every machine shape (legacy v1, systemd's hybrid,
//! pure v2, a container with non-root mount roots) is tested from real samples.

use super::concepts::CgVersion;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// How the machine mounts cgroups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Version {
    /// Only v1 hierarchies (cgroup2 not mounted).
    Legacy,
    /// v1 hierarchies for the controllers, plus a cgroup2 mount (usually
    /// /sys/fs/cgroup/unified) holding whatever controllers v1 did not take.
    Hybrid,
    /// Only the cgroup2 unified hierarchy.
    Unified,
}

impl Version {
    pub fn describe(self) -> &'static str {
        match self {
            Version::Legacy => "legacy (cgroup v1 only)",
            Version::Hybrid => "hybrid (cgroup v1 controllers + a cgroup v2 mount)",
            Version::Unified => "unified (cgroup v2 only)",
        }
    }
}

/// One cgroup v1 hierarchy: a `cgroup` mount with its controllers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hierarchy {
    /// Controllers bound to it as the mount options list them, e.g. `["cpu", "cpuacct"]`;
    /// a named hierarchy without controllers shows as `["name=systemd"]`.
    pub controllers: Vec<String>,
    pub mount_point: PathBuf,
    /// Which cgroup of the hierarchy appears at the mount point (`/` on a host; inside a
    /// container it may be e.g. `/docker/abc`).
    pub root: String,
}

impl Hierarchy {
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// The cgroup2 mount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnifiedMount {
    pub mount_point: PathBuf,
    pub root: String,
}

/// The cgroup mounts of a machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Layout {
    pub version: Version,
    /// v1 hierarchies, in mount order (first mount of each hierarchy only).
    pub v1: Vec<Hierarchy>,
    pub unified: Option<UnifiedMount>,
    /// Controllers the v2 hierarchy offers (its root's `cgroup.controllers`).
    pub v2_controllers: Vec<String>,
}

/// Where a controller lives on this machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Home<'a> {
    V1(&'a Hierarchy),
    V2(&'a UnifiedMount),
}

impl Layout {
    /// Where the hierarchy holding `controller` is mounted, and its version.
    pub fn mount_of(&self, controller: &str) -> Option<(PathBuf, CgVersion)> {
        Some(match self.home(controller)? {
            Home::V1(h) => (h.mount_point.clone(), CgVersion::V1),
            Home::V2(u) => (u.mount_point.clone(), CgVersion::V2),
        })
    }

    /// The hierarchy that has `controller`: a v1 mount if one has it (v1 takes precedence:
    /// a controller bound to v1 is absent from v2), else v2 if it offers it.
    pub fn home(&self, controller: &str) -> Option<Home<'_>> {
        if let Some(h) = self.v1.iter().find(|h| h.has(controller)) {
            return Some(Home::V1(h));
        }
        match &self.unified {
            Some(u) if self.v2_controllers.iter().any(|c| c == controller) => Some(Home::V2(u)),
            _ => None,
        }
    }

    /// The absolute directory of the cgroup a process is in for `controller`, from its
    /// `/proc/PID/cgroup` entries. `None` when the controller is not mounted or the
    /// process's cgroup lies outside what the mount shows (a container's mount root).
    pub fn dir_of(&self, entries: &[ProcCgroup], controller: &str) -> Option<PathBuf> {
        match self.home(controller)? {
            Home::V1(h) => {
                let e = entries
                    .iter()
                    .find(|e| e.hierarchy_id != 0 && e.has(controller))?;
                join_under_root(&h.mount_point, &h.root, &e.path)
            }
            Home::V2(u) => {
                let e = entries
                    .iter()
                    .find(|e| e.hierarchy_id == 0 && e.controllers.is_empty())?;
                join_under_root(&u.mount_point, &u.root, &e.path)
            }
        }
    }

    /// The absolute directory of a cgroup path (as /proc/PID/cgroup or an oom_memcg= line
    /// spells it) in the hierarchy holding `controller`.
    pub fn dir_for_path(&self, controller: &str, path: &str) -> Option<PathBuf> {
        match self.home(controller)? {
            Home::V1(h) => join_under_root(&h.mount_point, &h.root, path),
            Home::V2(u) => join_under_root(&u.mount_point, &u.root, path),
        }
    }

    /// Every mounted directory a process sits in, one per hierarchy, from its
    /// `/proc/PID/cgroup` entries.
    pub fn dirs_of(&self, entries: &[ProcCgroup]) -> Vec<PathBuf> {
        entries
            .iter()
            .filter_map(|e| {
                if e.hierarchy_id == 0 {
                    let u = self.unified.as_ref()?;
                    join_under_root(&u.mount_point, &u.root, &e.path)
                } else {
                    let h = self.v1.iter().find(|h| h.controllers == e.controllers)?;
                    join_under_root(&h.mount_point, &h.root, &e.path)
                }
            })
            .collect()
    }
}

impl Layout {
    /// The inverse of [`Layout::dir_for_path`]: the cgroup path (as /proc/PID/cgroup and the
    /// kernel log spell it) of directory `dir` in the hierarchy holding `controller`.
    pub fn path_in_hierarchy(&self, controller: &str, dir: &Path) -> Option<String> {
        let (mp, root) = match self.home(controller)? {
            Home::V1(h) => (&h.mount_point, &h.root),
            Home::V2(u) => (&u.mount_point, &u.root),
        };
        let rel = dir.strip_prefix(mp).ok()?;
        let base = root.trim_end_matches('/');
        let rel = rel.to_string_lossy();
        Some(if rel.is_empty() {
            if base.is_empty() {
                "/".to_string()
            } else {
                base.to_string()
            }
        } else {
            format!("{base}/{rel}")
        })
    }
}

/// `mount_point` + the part of `path` below the mount's root.
fn join_under_root(mount_point: &Path, root: &str, path: &str) -> Option<PathBuf> {
    let rel = if root == "/" {
        path.trim_start_matches('/')
    } else {
        let rest = path.strip_prefix(root.trim_end_matches('/'))?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        rest.trim_start_matches('/')
    };
    if rel.is_empty() {
        Some(mount_point.to_path_buf())
    } else {
        Some(mount_point.join(rel))
    }
}

/// Mount options of a v1 cgroup mount that are not controllers.
fn is_controller_option(opt: &str) -> bool {
    if opt.starts_with("name=") {
        return true;
    }
    !(opt.contains('=')
        || matches!(
            opt,
            "rw" | "ro"
                | "xattr"
                | "noprefix"
                | "clone_children"
                | "cpuset_v2_mode"
                | "favordynmods"
                | "seclabel"
                | "none"
                | "all"
        ))
}

/// The cgroup mounts found in mountinfo text (controllers of v2 are read separately).
pub fn parse_mountinfo(text: &str) -> (Vec<Hierarchy>, Option<UnifiedMount>) {
    let mut v1: Vec<Hierarchy> = Vec::new();
    let mut unified = None;
    for m in crate::kernel::mountinfo::parse(text) {
        let root = m.root.to_string_lossy().into_owned();
        let mount_point = m.mount_point;
        match m.fs_type.as_str() {
            "cgroup" => {
                let mut controllers: Vec<String> = m
                    .super_options
                    .split(',')
                    .filter(|o| is_controller_option(o))
                    .map(String::from)
                    .collect();
                controllers.sort();
                // A hierarchy mounted twice (bind mounts) counts once: keep the first.
                if !v1.iter().any(|h| h.controllers == controllers) {
                    v1.push(Hierarchy {
                        controllers,
                        mount_point,
                        root,
                    });
                }
            }
            "cgroup2" if unified.is_none() => unified = Some(UnifiedMount { mount_point, root }),
            _ => {}
        }
    }
    (v1, unified)
}

/// The layout from mountinfo text and the v2 root's `cgroup.controllers` (empty if none).
pub fn layout_from(mountinfo: &str, v2_controllers: &str) -> Option<Layout> {
    let (v1, unified) = parse_mountinfo(mountinfo);
    let has_v1_controllers = v1
        .iter()
        .any(|h| h.controllers.iter().any(|c| !c.starts_with("name=")));
    let version = match (has_v1_controllers, unified.is_some()) {
        (true, true) => Version::Hybrid,
        (true, false) => Version::Legacy,
        (false, true) => Version::Unified,
        (false, false) => return None,
    };
    let v2_controllers = if unified.is_some() {
        v2_controllers
            .split_whitespace()
            .map(String::from)
            .collect()
    } else {
        Vec::new()
    };
    Some(Layout {
        version,
        v1,
        unified,
        v2_controllers,
    })
}

/// One line of `/proc/PID/cgroup`: `hierarchy-id:controllers:path`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcCgroup {
    /// 0 for the v2 unified hierarchy.
    pub hierarchy_id: u32,
    /// Empty for v2; `["cpu", "cpuacct"]`, `["name=systemd"]` on v1.
    pub controllers: Vec<String>,
    /// Path from the hierarchy's root (as seen from the reader's cgroup namespace).
    pub path: String,
}

impl ProcCgroup {
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// Parse `/proc/PID/cgroup`. Paths may themselves contain `:`, so split only twice.
pub fn parse_proc_cgroup(text: &str) -> Vec<ProcCgroup> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let id = parts.next()?.trim().parse().ok()?;
            let ctrls = parts.next()?;
            let path = parts.next()?.to_string();
            let controllers = if ctrls.is_empty() {
                Vec::new()
            } else {
                ctrls.split(',').map(String::from).collect()
            };
            Some(ProcCgroup {
                hierarchy_id: id,
                controllers,
                path,
            })
        })
        .collect()
}

/// Real mountinfo and /proc/PID/cgroup contents of each machine shape.
#[cfg(test)]
pub mod tests_data {
    /// This machine: systemd-less hybrid, every v1 controller mounted apart (cpu and cpuacct
    /// separately), a cgroup2 mount holding only hugetlb.
    pub const HYBRID_APART: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    pub const HYBRID_APART_PROC: &str = "\
9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/c49a7a97abc9d246832d7cbfb74ff8d5
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
";

    /// Ubuntu 20.04 (systemd hybrid): cpu and cpuacct co-mounted as cpu,cpuacct.
    pub const HYBRID_SYSTEMD: &str = "\
24 29 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
29 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
34 24 0:29 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
35 34 0:30 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
36 34 0:31 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
39 34 0:34 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
40 34 0:35 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,memory
41 34 0:36 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,pids
42 34 0:37 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,net_cls,net_prio
";
    pub const HYBRID_SYSTEMD_PROC: &str = "\
12:pids:/user.slice/user-1000.slice/session-2.scope
9:memory:/user.slice/user-1000.slice/session-2.scope
4:cpu,cpuacct:/user.slice
3:net_cls,net_prio:/
1:name=systemd:/user.slice/user-1000.slice/session-2.scope
0::/user.slice/user-1000.slice/session-2.scope
";

    /// CentOS 7: legacy, no cgroup2 mount; systemd's agent as a mount option.
    pub const LEGACY_CENTOS7: &str = "\
18 61 0:17 / /sys rw,nosuid,nodev,noexec,relatime shared:6 - sysfs sysfs rw,seclabel
24 18 0:20 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:7 - tmpfs tmpfs ro,seclabel,mode=755
25 24 0:21 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:8 - cgroup cgroup rw,seclabel,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
28 24 0:24 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,seclabel,cpuacct,cpu
31 24 0:27 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,seclabel,memory
33 24 0:29 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,seclabel,pids
";

    /// Debian 12: pure v2.
    pub const UNIFIED_DEBIAN: &str = "\
22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
28 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
26 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
    pub const UNIFIED_PROC: &str = "0::/user.slice/user-1000.slice/session-3.scope\n";

    /// Inside a Docker container on a v1 host: mount roots are the container's cgroup.
    pub const DOCKER_V1: &str = "\
701 690 0:63 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755
702 701 0:30 /docker/0123abcd /sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime master:16 - cgroup cgroup rw,memory
703 701 0:31 /docker/0123abcd /sys/fs/cgroup/cpu,cpuacct ro,nosuid,nodev,noexec,relatime master:15 - cgroup cgroup rw,cpu,cpuacct
";
}

#[cfg(test)]
mod tests {
    use super::tests_data::*;
    use super::*;

    #[test]
    fn hybrid_with_cpu_and_cpuacct_apart() {
        let l = layout_from(HYBRID_APART, "hugetlb\n").unwrap();
        assert_eq!(l.version, Version::Hybrid);
        assert_eq!(l.v2_controllers, vec!["hugetlb"]);
        let cpu = l.v1.iter().find(|h| h.has("cpu")).unwrap();
        let acct = l.v1.iter().find(|h| h.has("cpuacct")).unwrap();
        assert_ne!(cpu.mount_point, acct.mount_point);
        assert_eq!(cpu.controllers, vec!["cpu"]);
        assert!(l.v1.iter().any(|h| h.controllers == vec!["name=systemd"]));
        let procs = parse_proc_cgroup(HYBRID_APART_PROC);
        assert_eq!(
            l.dir_of(&procs, "memory").unwrap(),
            PathBuf::from("/sys/fs/cgroup/memory/process_api/c49a7a97abc9d246832d7cbfb74ff8d5")
        );
        assert_eq!(
            l.dir_of(&procs, "cpu").unwrap(),
            PathBuf::from("/sys/fs/cgroup/cpu")
        );
        assert_eq!(
            l.dir_of(&procs, "cpuacct").unwrap(),
            PathBuf::from("/sys/fs/cgroup/cpuacct")
        );
        assert_eq!(
            l.dir_of(&procs, "hugetlb").unwrap(),
            PathBuf::from("/sys/fs/cgroup/unified")
        );
        let all = l.dirs_of(&procs);
        assert_eq!(all.len(), 10, "{all:?}");
        assert!(all.contains(&PathBuf::from(
            "/sys/fs/cgroup/memory/process_api/c49a7a97abc9d246832d7cbfb74ff8d5"
        )));
        assert!(all.contains(&PathBuf::from("/sys/fs/cgroup/systemd")));
        assert!(all.contains(&PathBuf::from("/sys/fs/cgroup/unified")));
        assert!(matches!(l.home("memory"), Some(Home::V1(_))));
        let d = l
            .dir_for_path("memory", "/process_api/x/nslab/oom")
            .unwrap();
        assert_eq!(
            l.path_in_hierarchy("memory", &d).unwrap(),
            "/process_api/x/nslab/oom"
        );
        assert_eq!(
            l.path_in_hierarchy("cpu", Path::new("/sys/fs/cgroup/cpu"))
                .unwrap(),
            "/"
        );
        assert!(l.home("io").is_none());
    }

    #[test]
    fn hybrid_systemd_with_comounted_cpu() {
        let l = layout_from(HYBRID_SYSTEMD, "").unwrap();
        assert_eq!(l.version, Version::Hybrid);
        let cpu = l.v1.iter().find(|h| h.has("cpu")).unwrap();
        assert_eq!(cpu.controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(cpu.mount_point, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
        let procs = parse_proc_cgroup(HYBRID_SYSTEMD_PROC);
        assert_eq!(procs[2].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(
            l.dir_of(&procs, "cpuacct").unwrap(),
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/user.slice")
        );
        assert_eq!(
            l.dir_of(&procs, "pids").unwrap(),
            PathBuf::from("/sys/fs/cgroup/pids/user.slice/user-1000.slice/session-2.scope")
        );
        let nc = l.v1.iter().find(|h| h.has("net_prio")).unwrap();
        assert_eq!(nc.controllers, vec!["net_cls", "net_prio"]);
    }

    #[test]
    fn legacy_without_cgroup2() {
        let l = layout_from(LEGACY_CENTOS7, "").unwrap();
        assert_eq!(l.version, Version::Legacy);
        assert!(l.unified.is_none());
        let sd = l.v1.iter().find(|h| h.has("name=systemd")).unwrap();
        assert_eq!(
            sd.controllers,
            vec!["name=systemd"],
            "release_agent= and xattr are options"
        );
        let cpu = l.v1.iter().find(|h| h.has("cpu")).unwrap();
        assert_eq!(cpu.controllers, vec!["cpu", "cpuacct"]);
        assert!(!cpu.controllers.iter().any(|c| c == "seclabel"));
    }

    #[test]
    fn pure_v2() {
        let l = layout_from(
            UNIFIED_DEBIAN,
            "cpuset cpu io memory hugetlb pids rdma misc\n",
        )
        .unwrap();
        assert_eq!(l.version, Version::Unified);
        assert!(l.v1.is_empty());
        let procs = parse_proc_cgroup(UNIFIED_PROC);
        assert_eq!(
            procs,
            vec![ProcCgroup {
                hierarchy_id: 0,
                controllers: vec![],
                path: "/user.slice/user-1000.slice/session-3.scope".into()
            }]
        );
        assert_eq!(
            l.dir_of(&procs, "memory").unwrap(),
            PathBuf::from("/sys/fs/cgroup/user.slice/user-1000.slice/session-3.scope")
        );
        assert!(l.home("cpuacct").is_none());
        assert_eq!(
            l.dir_for_path("memory", "/nslab/oom").unwrap(),
            PathBuf::from("/sys/fs/cgroup/nslab/oom")
        );
    }

    #[test]
    fn container_mount_roots() {
        let l = layout_from(DOCKER_V1, "").unwrap();
        assert_eq!(l.version, Version::Legacy);
        let procs =
            parse_proc_cgroup("5:memory:/docker/0123abcd/inner\n4:cpu,cpuacct:/docker/0123abcd\n");
        assert_eq!(
            l.dir_of(&procs, "memory").unwrap(),
            PathBuf::from("/sys/fs/cgroup/memory/inner")
        );
        assert_eq!(
            l.dir_of(&procs, "cpu").unwrap(),
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")
        );
        assert_eq!(
            l.path_in_hierarchy("memory", Path::new("/sys/fs/cgroup/memory/inner/nslab/oom"))
                .unwrap(),
            "/docker/0123abcd/inner/nslab/oom"
        );
        assert!(l
            .path_in_hierarchy("memory", Path::new("/elsewhere"))
            .is_none());
        // A path outside the mounted subtree cannot be reached from here.
        assert!(l.dir_for_path("memory", "/docker/0123abcdef").is_none());
        assert!(l.dir_for_path("memory", "/other").is_none());
    }

    #[test]
    fn no_cgroups_at_all() {
        assert!(layout_from("27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n", "").is_none());
    }

    #[test]
    fn escaped_mount_points_and_colons_in_paths() {
        let (v1, _) = parse_mountinfo("40 31 0:32 / /mnt/my\\040cg rw - cgroup cgroup rw,memory\n");
        assert_eq!(v1[0].mount_point, PathBuf::from("/mnt/my cg"));
        let p = parse_proc_cgroup("0::/a:b/c\n");
        assert_eq!(p[0].path, "/a:b/c");
        assert!(parse_proc_cgroup("garbage\n\n").is_empty());
    }
}
