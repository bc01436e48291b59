//! Finding cgroups someone made: every cgroup of the CPU controller's hierarchy with a CPU
//! quota, on v1 or v2, for a check to choose the learner's among them.

use super::concepts::{CgVersion, Concept, CpuQuota, Reading};
use super::{read_concept, read_procs, Cgroup, Home, Layout};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A cgroup of the CPU controller's hierarchy and its quota.
#[derive(Clone, Debug)]
pub struct CpuCgroup {
    /// As /proc/PID/cgroup spells it: `/nslabt-42`, `/user.slice/demo`.
    pub path: String,
    /// Its directory in the hierarchy that holds `cpu`.
    pub dir: PathBuf,
    pub version: CgVersion,
    pub quota: CpuQuota,
    /// Processes in it now.
    pub pids: Vec<i32>,
    /// When the directory was made (its ctime), for "the newest".
    pub created: Option<SystemTime>,
}

impl CpuCgroup {
    /// The same cgroup with its CPU accounting directory too (v1 mounts cpuacct apart on
    /// some machines; the learner may not have made that one).
    pub fn cgroup(&self, layout: &Layout) -> Cgroup {
        Cgroup::at_path(layout, &self.path, &["cpu", "cpuacct"])
    }
}

fn version_of(layout: &Layout) -> Option<(CgVersion, &Path)> {
    match layout.home("cpu")? {
        Home::V1(h) => Some((CgVersion::V1, h.mount_point.as_path())),
        Home::V2(u) => Some((CgVersion::V2, u.mount_point.as_path())),
    }
}

fn read_one(layout: &Layout, v: CgVersion, dir: &Path) -> Option<CpuCgroup> {
    let Ok(Reading::CpuQuota(quota)) = read_concept(dir, v, Concept::CpuQuota) else {
        return None;
    };
    Some(CpuCgroup {
        path: layout.path_in_hierarchy("cpu", dir)?,
        dir: dir.to_path_buf(),
        version: v,
        quota,
        pids: read_procs(dir).unwrap_or_default(),
        created: std::fs::metadata(dir).ok().map(|m| {
            use std::os::unix::fs::MetadataExt;
            SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(m.ctime().max(0) as u64)
        }),
    })
}

/// Every cgroup below the CPU hierarchy's root that has a CPU quota set.
pub fn with_cpu_quota(layout: &Layout) -> Result<Vec<CpuCgroup>> {
    let (v, mount) = version_of(layout).context("the cpu controller is not mounted")?;
    let mut out = Vec::new();
    let mut stack: Vec<(PathBuf, usize)> = vec![(mount.to_path_buf(), 0)];
    while let Some((dir, depth)) = stack.pop() {
        if depth > 0 {
            if let Some(c) = read_one(layout, v, &dir) {
                if c.quota.quota_us.is_some() {
                    out.push(c);
                }
            }
        }
        if depth >= 32 {
            continue;
        }
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push((e.path(), depth + 1));
            }
        }
    }
    Ok(out)
}

/// The cgroup `pid` is in on the CPU hierarchy, quota or not.
pub fn cpu_cgroup_of(layout: &Layout, pid: i32) -> Result<Option<CpuCgroup>> {
    let (v, _) = version_of(layout).context("the cpu controller is not mounted")?;
    let Some(dir) = super::dir_of_pid(layout, pid, "cpu")? else {
        return Ok(None);
    };
    Ok(read_one(layout, v, &dir).or_else(|| {
        // The root cgroup has no quota files: it has no quota.
        Some(CpuCgroup {
            path: layout.path_in_hierarchy("cpu", &dir)?,
            dir: dir.clone(),
            version: v,
            quota: CpuQuota {
                quota_us: None,
                period_us: 100_000,
            },
            pids: read_procs(&dir).unwrap_or_default(),
            created: None,
        })
    }))
}
