//! cgroups: placeholder until the cgroup layer lands.
use anyhow::Result;
use std::path::Path;

/// Remove a cgroup directory nslab made (after moving out or killing its processes).
pub fn remove_cgroup(path: &Path) -> Result<()> {
    match std::fs::remove_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}
