//! What the host has to put in a root filesystem: a static busybox, programs in its PATH,
//! and the shared libraries a program needs, found the way the loader finds them.

use super::elf::parse_elf;
use super::BUSYBOX;
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Directories the loader searches by default on Debian-like systems (multiarch first).
const LIB_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];

/// A statically linked busybox: Debian's at /bin/busybox, or the first in PATH.
pub fn static_busybox() -> Option<PathBuf> {
    [Some(PathBuf::from(BUSYBOX)), find_in_path("busybox")]
        .into_iter()
        .flatten()
        .find(|p| is_static_elf(p))
}

pub(super) fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs = path
        .split(':')
        .chain(["/usr/bin", "/bin", "/usr/sbin", "/sbin"]);
    for d in dirs.filter(|d| d.starts_with('/')) {
        let p = Path::new(d).join(name);
        if p.is_file() {
            return Some(p);
        }
    }
    None
}

/// Every shared library `program` needs, the loader first, resolved like the loader does
/// (library directories of the host, no `ld.so.cache`), followed transitively.
pub fn libraries_needed(program: &Path) -> Result<BTreeSet<PathBuf>> {
    let mut found = BTreeSet::new();
    let mut queue = vec![program.to_path_buf()];
    let mut seen_names = BTreeSet::new();
    while let Some(file) = queue.pop() {
        let data = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        let info = parse_elf(&data)
            .with_context(|| format!("reading the ELF headers of {}", file.display()))?;
        if let Some(interp) = info.interp {
            let p = PathBuf::from(interp);
            if found.insert(p.clone()) {
                queue.push(p);
            }
        }
        for name in info.needed {
            if !seen_names.insert(name.clone()) {
                continue;
            }
            let Some(p) = LIB_DIRS
                .iter()
                .map(|d| Path::new(d).join(&name))
                .find(|p| p.exists())
            else {
                bail!(
                    "{} needs {name}, which is in none of {}",
                    file.display(),
                    LIB_DIRS.join(", ")
                );
            };
            if found.insert(p.clone()) {
                queue.push(p);
            }
        }
    }
    Ok(found)
}

/// True when `path` is an ELF executable with no program interpreter (statically linked).
pub fn is_static_elf(path: &Path) -> bool {
    std::fs::read(path)
        .ok()
        .and_then(|d| parse_elf(&d).ok())
        .map(|i| i.interp.is_none() && i.needed.is_empty())
        .unwrap_or(false)
}
