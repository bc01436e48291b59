//! Removing a cgroup nslab made: what is inside killed, sub-cgroups first, a `nslab`
//! parent that holds another run's cgroup left in place.

use super::io::{read_procs, rmdir_traced};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Does the path look like one of nslab's cgroups (a guard against a damaged ledger)?
pub(super) fn is_nslab_path(path: &Path) -> bool {
    path.components()
        .any(|c| c.as_os_str().to_string_lossy().starts_with("nslab"))
}

/// SIGKILL everything in a cgroup directory nslab made, until `cgroup.procs` is empty.
pub(super) fn kill_inside(dir: &Path) -> Result<()> {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pids = read_procs(dir)?;
        if pids.is_empty() {
            return Ok(());
        }
        // A killed process leaves cgroup.procs as soon as it is a zombie; reaping is left
        // to the handle that forked it (reaping here could let it kill a reused PID later).
        for pid in &pids {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        if Instant::now() > deadline {
            bail!(
                "processes {pids:?} in {} did not end after SIGKILL",
                dir.display()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Removal {
    Gone,
    /// A `nslab` parent that still holds another run's cgroup.
    LeftInPlace,
}

/// Remove a cgroup directory nslab made: kill what is inside, remove sub-cgroups first,
/// then rmdir. Already gone counts as removed; a `nslab` parent that still holds another
/// run's cgroups is left in place (and counts as done).
pub fn remove_cgroup(path: &Path) -> Result<()> {
    remove_inner(path).map(|_| ())
}

pub(super) fn remove_inner(path: &Path) -> Result<Removal> {
    if !is_nslab_path(path) {
        bail!("refusing to remove {}: not an nslab cgroup", path.display());
    }
    // Most often the cgroup is empty by now: one rmdir does it. The kernel refuses it
    // (EBUSY) while a process or a sub-cgroup is inside, and then the careful way below
    // kills and removes what is there first.
    match rmdir_traced(path) {
        Ok(()) => return Ok(Removal::Gone),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Removal::Gone),
        Err(_) => {}
    }
    if !path.is_dir() {
        return Ok(Removal::Gone);
    }
    let subdirs: Vec<PathBuf> = std::fs::read_dir(path)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    let is_parent = path.file_name().is_some_and(|n| n == "nslab");
    if is_parent && !subdirs.is_empty() {
        return Ok(Removal::LeftInPlace);
    }
    // Sub-cgroups inside a cgroup nslab made are nslab's to remove too.
    for sub in &subdirs {
        remove_inner(sub)?;
    }
    kill_inside(path)?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match rmdir_traced(path) {
            Ok(()) => return Ok(Removal::Gone),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Removal::Gone),
            // Just-killed tasks may still be leaving the cgroup; a parent may have gained
            // a child from another run meanwhile (leave it then).
            Err(e)
                if e.raw_os_error() == Some(libc::EBUSY)
                    || e.raw_os_error() == Some(libc::ENOTEMPTY) =>
            {
                if is_parent {
                    return Ok(Removal::LeftInPlace);
                }
                if Instant::now() > deadline {
                    return Err(e).with_context(|| format!("rmdir {}", path.display()));
                }
                kill_inside(path)?;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e).with_context(|| format!("rmdir {}", path.display())),
        }
    }
}
