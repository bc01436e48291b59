//! Removing what the ledger records: each object by its kind, and only while it is still
//! the object nslab made (its recorded identity), never through a path that is not plain.

use super::{cgroup, ipc, net, procs, sys};
use crate::ledger::{self, CleanupReport, Reach, Removal, Resource};
use anyhow::{bail, Result};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path};

/// The identity of `resource` as the kernel has it now (what the ledger records beside
/// it); `None` for a kind without one here, or an object that is not there.
pub fn identity(resource: &Resource) -> Option<u64> {
    match resource {
        Resource::Cgroup { path } | Resource::Dir { path } => {
            std::fs::symlink_metadata(path).ok().map(|m| m.ino())
        }
        Resource::NetNs { name } => net::netns_inode(name),
        Resource::Link { name } => nix::net::if_::if_nametoindex(name.as_str())
            .ok()
            .map(u64::from),
        Resource::NftTable { family, name } => net::nat::table_handle(family, name),
        // The mount on top at the path (a mount id is reused only once it is unmounted).
        Resource::Mount { path } => {
            super::mountinfo::parse_bytes(&std::fs::read("/proc/self/mountinfo").ok()?)
                .into_iter()
                .rev()
                .find(|m| &m.mount_point == path)
                .map(|m| u64::from(m.mount_id))
        }
        // A System V object's recorded id is weighed with its key in ipc::decide.
        Resource::Process { .. } | Resource::SysvShm { .. } | Resource::SysvMsg { .. } => None,
    }
}

/// Just after making a recorded object: write down which object it is.
pub fn identify(resource: &Resource) {
    if let Some(id) = identity(resource) {
        ledger::identify(resource, id);
    }
}

/// Is `path` absolute and plain: no `.` or `..` that could lead a record elsewhere?
fn is_plain(path: &Path) -> bool {
    // Read from the bytes: `components()` drops a `.` on its own, so `/.` would pass as `/`.
    path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
        && path
            .as_os_str()
            .as_bytes()
            .split(|b| *b == b'/')
            .all(|part| part != b"." && part != b"..")
}

/// A guard against a damaged or forged record: nslab names what it makes with its prefix,
/// the only trees it makes are root filesystems (`nslab-rootfs-…`) and the mount lesson's
/// directory (`nslab-mount-…`), its cgroups lie under one named `nslab…`, and its paths
/// are plain.
fn check_named_ours(resource: &Resource) -> Result<()> {
    let named = |p: &Path, prefix: &str| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
    };
    let ours = match resource {
        Resource::Dir { path } => {
            is_plain(path) && (named(path, "nslab-rootfs-") || named(path, "nslab-mount-"))
        }
        Resource::Mount { path } => is_plain(path) && named(path, "nslab"),
        Resource::Cgroup { path } => {
            is_plain(path)
                && path
                    .components()
                    .any(|c| c.as_os_str().to_string_lossy().starts_with("nslab"))
        }
        _ => true,
    };
    if !ours {
        bail!(
            "refusing to remove {}: nslab only removes what it created (plain paths, names starting with 'nslab')",
            resource.describe()
        );
    }
    Ok(())
}

/// Remove `resource` from the system, if it is still the object whose identity was
/// recorded (`recorded`). Already gone counts as removed.
pub fn remove(resource: &Resource, recorded: Option<u64>) -> Result<Removal> {
    check_named_ours(resource)?;
    if let Some(want) = recorded {
        match identity(resource) {
            Some(now) if now != want => {
                return Ok(Removal::NotOurs(format!(
                    "something else bears that name now (identity {now}, nslab made {want})"
                )))
            }
            _ => {}
        }
    }
    match resource {
        Resource::Process { pid, start_time } => sys::kill_and_reap(*pid, *start_time)?,
        Resource::Cgroup { path } => cgroup::remove_cgroup(path)?,
        Resource::Mount { path } => sys::unmount(path)?,
        Resource::NetNs { name } => net::delete_netns(name)?,
        Resource::Link { name } => net::delete_link(name)?,
        Resource::Dir { path } => sys::remove_tree(path)?,
        Resource::NftTable { family, name } => {
            if family != "ip" {
                bail!("nslab makes nftables tables of family ip only, not {family}");
            }
            net::nat::delete_table(name)?;
        }
        Resource::SysvShm {
            key,
            ipc_ns,
            creator,
        } => {
            return ipc::remove_recorded(&ipc::Recorded {
                shm: true,
                key: *key,
                ipc_ns: *ipc_ns,
                creator: Some(*creator),
                id: recorded.and_then(|id| i32::try_from(id).ok()),
            })
        }
        Resource::SysvMsg { key, ipc_ns } => {
            return ipc::remove_recorded(&ipc::Recorded {
                shm: false,
                key: *key,
                ipc_ns: *ipc_ns,
                creator: None,
                id: recorded.and_then(|id| i32::try_from(id).ok()),
            })
        }
    }
    Ok(Removal::Removed)
}

/// Remove `resource` (one of this run's) now and strike it off.
pub fn release(resource: &Resource) -> Result<()> {
    remove(resource, ledger::identity_of(resource))?;
    ledger::forget(resource);
    Ok(())
}

/// Remove everything this run created, newest first. Returns what could not be removed;
/// what turned out to be another object is left alone and struck off.
pub fn teardown() -> Vec<(Resource, String)> {
    let mut failed = Vec::new();
    for r in ledger::current().iter().rev() {
        match remove(r, ledger::identity_of(r)) {
            Ok(_) => ledger::forget(r),
            Err(e) => failed.push((r.clone(), format!("{e:#}"))),
        }
    }
    failed
}

/// Is the run owned by this PID and start time alive? An unknown start time (a record
/// written before it was known) counts as alive while the PID is.
fn owner_alive(pid: i32, start_time: u64) -> bool {
    if start_time == ledger::UNKNOWN_START_TIME {
        return procs::process(pid).is_some();
    }
    procs::is_same_process(pid, start_time)
}

/// This run's number among the live runs of `key` (see [`ledger::instance`]), and the
/// PIDs of the others; `None` when `max` are running already.
pub fn claim_instance(key: &str, max: u32) -> Result<Option<(u32, Vec<i32>)>> {
    let Some(n) = ledger::instance::claim(key, max, &owner_alive)? else {
        return Ok(None);
    };
    let others = ledger::instance::holders(key, &owner_alive)
        .into_iter()
        .map(|(pid, _)| pid)
        .collect();
    Ok(Some((n, others)))
}

/// Remove everything recorded by runs whose owner is dead (killed, crashed, its terminal
/// closed before it could tear down).
pub fn cleanup_dead_runs() -> Result<CleanupReport> {
    ledger::cleanup_dead_runs_in(
        &ledger::run_dir(),
        &Reach {
            alive: &owner_alive,
            remove: &remove,
        },
    )
}

/// As root: what dead runs left, removed now (a lesson whose terminal was closed under
/// it, a `kill -9`). `None` when not root: a learner's own commands touch nothing.
pub fn cleanup_if_root() -> Option<Result<CleanupReport>> {
    nix::unistd::geteuid().is_root().then(cleanup_dead_runs)
}

/// At the start of every command: give the ledger this process's start time.
pub fn open_ledger() {
    let pid = std::process::id() as i32;
    if let Some(t) = procs::start_time(pid) {
        ledger::set_owner_start_time(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn a_damaged_record_never_removes_what_nslab_did_not_name() {
        let tmp = tempfile::tempdir().unwrap();
        let foreign = tmp.path().join("someones-data");
        std::fs::create_dir_all(&foreign).unwrap();
        for r in [
            Resource::Dir {
                path: foreign.clone(),
            },
            Resource::Dir {
                path: tmp.path().join("nslab-notes"),
            },
            Resource::Dir {
                path: tmp.path().join("nslab-rootfs-x/../someones-data"),
            },
            Resource::Mount {
                path: PathBuf::from("/"),
            },
            Resource::Cgroup {
                path: PathBuf::from("/sys/fs/cgroup/nslab/../system.slice"),
            },
            Resource::Cgroup {
                path: PathBuf::from("nslab/oom"),
            },
        ] {
            let e = remove(&r, None).unwrap_err();
            assert!(format!("{e:#}").contains("refusing"), "{r:?}: {e:#}");
        }
        assert!(foreign.exists());
    }

    #[test]
    fn a_name_that_now_stands_for_another_object_is_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("nslab-rootfs-t");
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        let r = Resource::Dir { path: dir.clone() };
        let made = identity(&r).unwrap();
        // Recorded as another inode: what bears the name now is not what nslab made.
        let outcome = remove(&r, Some(made + 1)).unwrap();
        assert!(matches!(outcome, Removal::NotOurs(_)), "{outcome:?}");
        assert!(dir.join("bin").exists(), "another's directory is kept");
        assert_eq!(remove(&r, Some(made)).unwrap(), Removal::Removed);
        assert_eq!(
            remove(&r, Some(made)).unwrap(),
            Removal::Removed,
            "gone is removed"
        );
        assert!(!dir.exists());
    }

    #[test]
    fn a_mount_is_known_by_the_id_of_the_mount_on_top_at_its_path() {
        let table =
            crate::kernel::mountinfo::parse_bytes(&std::fs::read("/proc/self/mountinfo").unwrap());
        let top = table
            .iter()
            .rev()
            .find(|m| m.mount_point == Path::new("/proc"))
            .expect("/proc is mounted");
        let proc_mount = Resource::Mount {
            path: "/proc".into(),
        };
        assert_eq!(identity(&proc_mount), Some(u64::from(top.mount_id)));
        let nowhere = Resource::Mount {
            path: "/nslab-no-such-mount".into(),
        };
        assert_eq!(identity(&nowhere), None);
    }

    proptest::proptest! {
        /// A record whose path climbs out with `..` or `.`, or is relative, is refused
        /// whatever names it holds.
        #[test]
        fn a_path_that_is_not_plain_is_never_removed(
            parts in proptest::collection::vec("nslab[a-z-]{0,6}|\\.\\.|\\.|[a-z]{1,6}", 1..6),
            absolute in proptest::bool::ANY
        ) {
            let text = format!("{}{}", if absolute { "/" } else { "" }, parts.join("/"));
            let path = std::path::PathBuf::from(&text);
            let plain = absolute && !parts.iter().any(|p| p == ".." || p == ".");
            for r in [
                Resource::Cgroup { path: path.clone() },
                Resource::Mount { path: path.clone() },
                Resource::Dir { path: path.clone() },
            ] {
                if !plain {
                    proptest::prop_assert!(check_named_ours(&r).is_err(), "{} accepted", text);
                }
            }
        }
    }
}
