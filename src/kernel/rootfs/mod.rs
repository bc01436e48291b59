//! A root filesystem for a container, built offline from what the host already has.
//!
//! First choice: Debian's `busybox-static` (one static binary plus a link per applet), so
//! nothing has to be resolved. Otherwise a shell and a few tools are copied together with
//! the shared libraries their ELF headers name (`PT_INTERP`, `DT_NEEDED`, followed
//! recursively): the same thing `ldd` reports, read from the files instead of by running
//! the dynamic loader. Or the learner names a directory (`--rootfs DIR`), used as it is.
//!
//! A built tree lives in `/var/tmp/nslab-rootfs-…`, is on the ledger before it exists and
//! is removed when the [`Rootfs`] is dropped (or by `nslab cleanup` after a crash). Files
//! are copied, never hard-linked: a container's root could otherwise write through a link
//! into the host's own `/bin/busybox`.
//!
//! This file holds the tree itself and what is in it.
//!
//! - [`build`]: the trees nslab builds (busybox, or host programs and their libraries).
//! - [`host`]: what the host has to copy: a static busybox, programs, shared libraries.
//! - [`elf`]: `PT_INTERP` and `DT_NEEDED` read from an ELF file.

mod build;
pub mod elf;
mod host;
#[cfg(test)]
mod tests;

#[cfg(test)] // the parser property tests reach it here
pub use elf::parse_elf;
pub use host::static_busybox;

use crate::error::Problem;
use crate::ledger::Resource;
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Where the static busybox of Debian's `busybox-static` package lives.
pub const BUSYBOX: &str = "/bin/busybox";

/// Programs copied when no static busybox is present: enough for the lesson's commands.
pub const HOST_PROGRAMS: &[&str] = &[
    "sh", "ls", "cat", "echo", "hostname", "ps", "mount", "sleep", "id", "mkdir", "true", "false",
    "uname", "env", "readlink", "head",
];

/// How a root filesystem came to be.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// A copy of a static busybox with one symbolic link per applet.
    Busybox { source: PathBuf, applets: usize },
    /// Host programs copied with the shared libraries they need.
    HostPrograms {
        programs: Vec<String>,
        libraries: Vec<String>,
    },
    /// A directory the learner gave; nslab does not change or remove it.
    Given,
}

/// What is inside a root filesystem, for the lesson to show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub path: PathBuf,
    pub origin: Origin,
    /// Names at the top of the tree, sorted (`ls /`).
    pub top: Vec<String>,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// Bytes of regular files (`du -sb`, links not followed).
    pub bytes: u64,
}

/// A root filesystem, removed on drop when nslab built it.
#[derive(Debug)]
pub struct Rootfs {
    pub path: PathBuf,
    pub origin: Origin,
    owned: bool,
}

impl Rootfs {
    /// A directory the learner gave. It must exist and hold `/bin/sh` or at least `/proc`
    /// to mount the container's procfs on; nslab neither changes nor removes it.
    pub fn given(dir: &Path) -> Result<Rootfs> {
        let fix = "give a directory holding a root filesystem (with /bin/sh, /proc and /dev), or leave out --rootfs to let nslab build one";
        let path = std::fs::canonicalize(dir)
            .map_err(|e| Problem::usage(format!("root filesystem {}: {e}", dir.display()), fix))?;
        if !path.is_dir() {
            return Err(Problem::usage(
                format!("root filesystem {} is not a directory", path.display()),
                fix,
            ));
        }
        if path == Path::new("/") {
            return Err(Problem::usage(
                "the host's own / cannot be a container's root filesystem",
                fix,
            ));
        }
        // Looked up as the container will (a symlink `dev` -> /etc is the root's own etc).
        for needed in ["proc", "dev"] {
            let inside = super::inroot::is_dir_inside(&path, needed).map_err(|e| {
                Problem::usage(
                    format!("root filesystem {}: /{needed}: {e}", path.display()),
                    format!("make {}/{needed} a directory", path.display()),
                )
            })?;
            if !inside {
                return Err(Problem::usage(
                    format!("root filesystem {} has no /{needed} (the container mounts its own {needed} there)", path.display()),
                    format!("create it: mkdir {}/{needed}", path.display()),
                ));
            }
        }
        Ok(Rootfs {
            path,
            origin: Origin::Given,
            owned: false,
        })
    }

    /// Build one from the host: static busybox when present, else host programs.
    pub fn build() -> Result<Rootfs> {
        if let Some(busybox) = static_busybox() {
            Self::build_busybox(&busybox)
        } else {
            Self::build_from_host(HOST_PROGRAMS)
        }
    }

    /// What is inside: top-level names, counts and size.
    pub fn summary(&self) -> Result<Summary> {
        let mut s = Summary {
            path: self.path.clone(),
            origin: self.origin.clone(),
            top: Vec::new(),
            files: 0,
            dirs: 0,
            symlinks: 0,
            bytes: 0,
        };
        for e in std::fs::read_dir(&self.path)
            .with_context(|| format!("reading {}", self.path.display()))?
        {
            s.top.push(e?.file_name().to_string_lossy().into_owned());
        }
        s.top.sort();
        walk(&self.path, &mut s)?;
        Ok(s)
    }

    /// Remove it now (only when nslab built it).
    pub fn remove(mut self) -> Result<()> {
        self.release()
    }

    fn release(&mut self) -> Result<()> {
        if self.owned {
            self.owned = false;
            super::removal::release(&Resource::Dir {
                path: self.path.clone(),
            })?;
        }
        Ok(())
    }
}

impl Drop for Rootfs {
    fn drop(&mut self) {
        let _ = self.release();
    }
}

fn walk(dir: &Path, s: &mut Summary) -> Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let ft = e.file_type()?;
        if ft.is_symlink() {
            s.symlinks += 1;
        } else if ft.is_dir() {
            s.dirs += 1;
            walk(&e.path(), s)?;
        } else {
            s.files += 1;
            s.bytes += e.metadata()?.len();
        }
    }
    Ok(())
}
