//! Small file helpers that are not kernel interfaces: atomic writes of nslab's own files.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;

/// Write `data` to `path` so that a reader sees the old or the new content, never half:
/// write a temporary file beside it, fsync, rename over.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    write_replacing(path, data, true)
}

/// Like [`write_atomic`] but without the fsync: a reader (or a later `nslab cleanup` after
/// `kill -9`) still sees the old or the new content, never half, because rename is atomic;
/// only a power loss could lose the update. The ledger uses it: what it lists (processes,
/// cgroups, mounts, namespaces, links) does not survive a power loss either, and an fsync
/// per entry cost a container start ~20 ms on ext4.
pub fn write_replace(path: &Path, data: &[u8]) -> Result<()> {
    write_replacing(path, data, false)
}

fn write_replacing(path: &Path, data: &[u8], sync: bool) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        if sync {
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left beside it");
    }
}
