//! How PID 1 joins its cgroups after its change of root: through the cgroup
//! filesystems it opened before, and by writing `0` to the file of each version.

use super::*;

/// The file PID 1 writes `0` into to join a cgroup of this version.
///
/// A write to `cgroup.procs` moves a whole thread group, so the kernel takes its global
/// `cgroup_threadgroup_rwsem` for writing, which first waits for an RCU grace period
/// (7 to 20 ms on a 2-CPU machine). On v1, writing `0` to `tasks` moves only the calling
/// thread, and the kernel skips that lock for it; PID 1 is a fresh clone, hence
/// single-threaded, so that thread is the whole process, and everything it starts
/// afterwards is born in the cgroup. v2 has no `tasks` file (`cgroup.threads` moves a
/// thread only within a threaded subtree): there it is `cgroup.procs`, and `0` for itself.
/// It has to be `0`, the writer itself: for another thread the kernel takes the lock all
/// the same (`cgroup_procs_write_start`), which is why PID 1 joins rather than nslab
/// moving it.
pub(super) fn join_file(version: CgVersion) -> &'static str {
    match version {
        CgVersion::V1 => "tasks",
        CgVersion::V2 => "cgroup.procs",
    }
}

/// The cgroup filesystems PID 1 keeps open across the change of root: nslab makes the
/// cgroup while PID 1 builds its root, and once the host's tree is out of sight PID 1
/// still reaches the new directories through these (`openat` relative to them).
pub(super) struct HeldMounts(pub(super) Vec<HeldMount>);

pub(super) struct HeldMount {
    pub(super) mount_point: PathBuf,
    pub(super) version: CgVersion,
    pub(super) fd: std::os::fd::OwnedFd,
}

impl HeldMounts {
    /// An `O_PATH` descriptor on each hierarchy holding one of the spec's
    /// `cgroup_controllers` or `cgroup_dirs`.
    pub(super) fn open(spec: &Spec) -> Result<HeldMounts, StartError> {
        use nix::fcntl::{open, OFlag};
        use std::os::fd::AsRawFd;
        let mut held: Vec<HeldMount> = Vec::new();
        if spec.cgroup_controllers.is_empty() && spec.cgroup_dirs.is_empty() {
            return Ok(HeldMounts(held));
        }
        let layout = crate::kernel::cgroup::Layout::read()
            .map_err(|e| failure("finding the cgroup filesystems", format!("{e:#}"), None))?;
        let mounts = layout
            .v1
            .iter()
            .map(|h| (h.mount_point.clone(), CgVersion::V1))
            .chain(
                layout
                    .unified
                    .iter()
                    .map(|u| (u.mount_point.clone(), CgVersion::V2)),
            );
        let of_dirs = mounts.filter(|(m, _)| spec.cgroup_dirs.iter().any(|d| d.starts_with(m)));
        let of_controllers = spec
            .cgroup_controllers
            .iter()
            .filter_map(|c| layout.mount_of(c));
        for (mount_point, version) in of_dirs.chain(of_controllers) {
            if held.iter().any(|h| h.mount_point == mount_point) {
                continue;
            }
            let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
            let call = format!(
                "openat(AT_FDCWD, {}, O_PATH|O_DIRECTORY|O_CLOEXEC)",
                q(&mount_point)
            );
            let fd = open(&mount_point, flags, Mode::empty());
            trace::syscall(match &fd {
                Ok(fd) => format!("{call} = {}", fd.as_raw_fd()),
                Err(e) => format!("{call} = -1 {} ({})", e, e.desc()),
            });
            let fd = fd.map_err(|e| {
                failure(
                    "opening the cgroup filesystem",
                    format!("{}: {}", mount_point.display(), e.desc()),
                    Some(e),
                )
            })?;
            held.push(HeldMount {
                mount_point,
                version,
                fd,
            });
        }
        Ok(HeldMounts(held))
    }

    /// The held mount `dir` lies in, and `dir` relative to it.
    pub(super) fn locate(&self, dir: &Path) -> Option<(&HeldMount, PathBuf)> {
        self.0
            .iter()
            .filter_map(|h| Some((h, dir.strip_prefix(&h.mount_point).ok()?)))
            .max_by_key(|(h, _)| h.mount_point.as_os_str().len())
            .map(|(h, rel)| (h, rel.to_path_buf()))
    }
}

/// Join each cgroup directory nslab has made: `0` (the writer itself) into its
/// [`join_file`] (by the version of the held cgroup filesystem it lies in), opened
/// relative to that filesystem.
pub(super) fn join_cgroups(dirs: &[PathBuf], held: &HeldMounts) -> Result<(), StartError> {
    use nix::fcntl::{openat, OFlag};
    use std::os::fd::AsRawFd;
    for dir in dirs {
        let Some((mount, rel)) = held.locate(dir) else {
            return Err(failure(
                "joining the cgroup",
                format!(
                    "{} is in no cgroup filesystem PID 1 kept open",
                    dir.display()
                ),
                None,
            ));
        };
        let name = join_file(mount.version);
        let file = rel.join(name);
        let call = format!(
            "openat({}<{}>, {}, O_WRONLY|O_CLOEXEC)",
            mount.fd.as_raw_fd(),
            mount.mount_point.display(),
            q(&file)
        );
        let fd = openat(
            &mount.fd,
            &file,
            OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        );
        trace::syscall(match &fd {
            Ok(fd) => format!("{call} = {}", fd.as_raw_fd()),
            Err(e) => format!("{call} = -1 {} ({})", e, e.desc()),
        });
        let joined = fd.and_then(|fd| {
            let r = nix::unistd::write(&fd, b"0");
            trace::syscall(format!(
                "write({}, \"0\", 1) = {}",
                fd.as_raw_fd(),
                match &r {
                    Ok(n) => n.to_string(),
                    Err(e) => format!("-1 {} ({})", e, e.desc()),
                }
            ));
            r
        });
        if let Err(e) = joined {
            return Err(failure(
                "joining the cgroup",
                format!("{}: {}", dir.join(name).display(), e.desc()),
                Some(e),
            ));
        }
    }
    Ok(())
}
