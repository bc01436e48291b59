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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::cgroup::mountinfo::layout_from;

    /// A directory tree shaped like a cgroup hierarchy, with the files the finder reads.
    fn cgroup_dir(root: &Path, rel: &str, files: &[(&str, &str)]) {
        let d = root.join(rel);
        std::fs::create_dir_all(&d).unwrap();
        for (f, text) in files {
            std::fs::write(d.join(f), text).unwrap();
        }
    }

    #[test]
    fn finds_quota_cgroups_on_v2() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let mi = format!(
            "30 25 0:26 / {} rw,nosuid,nodev,noexec shared:4 - cgroup2 cgroup2 rw,nsdelegate\n",
            root.display()
        );
        let layout = layout_from(&mi, "cpu memory pids\n").unwrap();
        // The root has no cpu.max; a service without quota; the learner's; a nested one.
        cgroup_dir(root, "", &[("cgroup.procs", "1\n")]);
        cgroup_dir(
            root,
            "system.slice/cron.service",
            &[("cpu.max", "max 100000\n"), ("cgroup.procs", "611\n")],
        );
        cgroup_dir(
            root,
            "mylimit",
            &[("cpu.max", "10000 100000\n"), ("cgroup.procs", "4242\n")],
        );
        cgroup_dir(
            root,
            "user.slice/demo/inner",
            &[("cpu.max", "50000 100000\n"), ("cgroup.procs", "")],
        );
        let mut found = with_cpu_quota(&layout).unwrap();
        found.sort_by(|a, b| a.path.cmp(&b.path));
        let seen: Vec<(&str, Option<u64>, &[i32])> = found
            .iter()
            .map(|c| (c.path.as_str(), c.quota.quota_us, c.pids.as_slice()))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("/mylimit", Some(10_000), &[4242][..]),
                ("/user.slice/demo/inner", Some(50_000), &[][..]),
            ]
        );
        assert!(found.iter().all(|c| c.version == CgVersion::V2));
        assert!(found[0].created.is_some());
    }

    #[test]
    fn finds_quota_cgroups_on_v1_with_cpu_and_cpuacct_apart() {
        let t = tempfile::tempdir().unwrap();
        let (cpu, acct) = (t.path().join("cpu"), t.path().join("cpuacct"));
        let mi = format!(
            "31 25 0:27 / {} rw shared:5 - cgroup cgroup rw,cpu\n\
             32 25 0:28 / {} rw shared:6 - cgroup cgroup rw,cpuacct\n",
            cpu.display(),
            acct.display()
        );
        let layout = layout_from(&mi, "").unwrap();
        for (rel, quota, procs) in [
            ("", "-1\n", "1\n"),
            ("nslabt-cpu-1", "10000\n", "777\n"),
            ("docker/abc", "50000\n", "900\n"),
            ("quiet", "-1\n", ""),
        ] {
            cgroup_dir(
                &cpu,
                rel,
                &[
                    ("cpu.cfs_quota_us", quota),
                    ("cpu.cfs_period_us", "100000\n"),
                    ("cgroup.procs", procs),
                ],
            );
        }
        cgroup_dir(&acct, "nslabt-cpu-1", &[("cpuacct.usage", "123456789\n")]);
        let mut found = with_cpu_quota(&layout).unwrap();
        found.sort_by(|a, b| a.path.cmp(&b.path));
        let paths: Vec<&str> = found.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["/docker/abc", "/nslabt-cpu-1"]);
        let mine = &found[1];
        assert_eq!(mine.version, CgVersion::V1);
        assert_eq!(mine.pids, [777]);
        // Its CPU time comes from the cpuacct hierarchy, the same path there.
        let cg = mine.cgroup(&layout);
        assert_eq!(
            cg.read(Concept::CpuUsage).unwrap(),
            Reading::CpuTime(super::super::concepts::Time::new(
                123_456_789,
                super::super::concepts::TimeUnit::Ns
            ))
        );
    }
}
