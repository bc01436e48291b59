//! The root filesystems nslab builds: a fresh recorded directory with a container's
//! skeleton, filled from a static busybox or from host programs and their libraries.

use super::host::{find_in_path, libraries_needed};
use super::{Origin, Rootfs};
use crate::ledger::{self, Resource};
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

impl Rootfs {
    /// A fresh, empty, recorded directory with the skeleton every container needs.
    fn create_dir() -> Result<Rootfs> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = PathBuf::from(format!(
            "/var/tmp/nslab-rootfs-{}-{nanos:x}",
            std::process::id()
        ));
        ledger::record(Resource::Dir { path: path.clone() })?;
        let rootfs = Rootfs {
            path,
            origin: Origin::Given,
            owned: true,
        };
        std::fs::create_dir(&rootfs.path)
            .with_context(|| format!("creating {}", rootfs.path.display()))?;
        crate::kernel::removal::identify(&Resource::Dir {
            path: rootfs.path.clone(),
        });
        // The container's root is world-readable like a real /; /tmp is sticky.
        std::fs::set_permissions(&rootfs.path, std::fs::Permissions::from_mode(0o755))?;
        for d in [
            "bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "dev", "proc", "sys", "root", "tmp",
        ] {
            std::fs::create_dir(rootfs.path.join(d))?;
        }
        std::fs::set_permissions(
            rootfs.path.join("tmp"),
            std::fs::Permissions::from_mode(0o1777),
        )?;
        std::fs::set_permissions(
            rootfs.path.join("root"),
            std::fs::Permissions::from_mode(0o700),
        )?;
        std::fs::write(
            rootfs.path.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\n",
        )?;
        std::fs::write(rootfs.path.join("etc/group"), "root:x:0:\n")?;
        std::fs::write(
            rootfs.path.join("etc/os-release"),
            "PRETTY_NAME=\"nslab minimal root filesystem\"\nID=nslab\n",
        )?;
        Ok(rootfs)
    }

    /// Copy `busybox` in and link every applet it lists (`busybox --list-full`).
    pub fn build_busybox(busybox: &Path) -> Result<Rootfs> {
        let out = std::process::Command::new(busybox)
            .arg("--list-full")
            .output()
            .with_context(|| format!("running {} --list-full", busybox.display()))?;
        if !out.status.success() {
            bail!("{} --list-full failed", busybox.display());
        }
        let list = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut rootfs = Self::create_dir()?;
        std::fs::copy(busybox, rootfs.path.join("bin/busybox"))
            .with_context(|| format!("copying {}", busybox.display()))?;
        let mut applets = 0;
        for rel in list.lines().map(str::trim).filter(|l| is_inside_path(l)) {
            let link = rootfs.path.join(rel);
            if rel == "bin/busybox" || link.symlink_metadata().is_ok() {
                continue;
            }
            if let Some(parent) = link.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::os::unix::fs::symlink("/bin/busybox", &link)
                .with_context(|| format!("linking {}", link.display()))?;
            applets += 1;
        }
        rootfs.origin = Origin::Busybox {
            source: busybox.to_path_buf(),
            applets,
        };
        Ok(rootfs)
    }

    /// Copy `programs` (looked up in the host's PATH) into `/bin`, with every shared
    /// library they need at the path the loader looks for it.
    pub fn build_from_host(programs: &[&str]) -> Result<Rootfs> {
        let mut rootfs = Self::create_dir()?;
        let mut copied = Vec::new();
        let mut libs: BTreeSet<PathBuf> = BTreeSet::new();
        for name in programs {
            let Some(src) = find_in_path(name) else {
                continue;
            };
            let real = std::fs::canonicalize(&src).unwrap_or(src.clone());
            std::fs::copy(&real, rootfs.path.join("bin").join(name))
                .with_context(|| format!("copying {}", real.display()))?;
            libs.extend(libraries_needed(&real)?);
            copied.push(name.to_string());
        }
        if !copied.iter().any(|p| p == "sh") {
            bail!("no shell (sh) found on the host to put in a root filesystem");
        }
        for lib in &libs {
            copy_keeping_path(lib, &rootfs.path)?;
        }
        rootfs.origin = Origin::HostPrograms {
            programs: copied,
            libraries: libs.iter().map(|l| l.display().to_string()).collect(),
        };
        Ok(rootfs)
    }
}

/// Copy `file` to the same absolute path under `root`, creating directories on the way.
/// The copy gets the file's real content (links are followed).
pub(super) fn copy_keeping_path(file: &Path, root: &Path) -> Result<()> {
    let rel = file.strip_prefix("/").unwrap_or(file);
    let dest = root.join(rel);
    if dest.exists() {
        return Ok(());
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::copy(file, &dest).with_context(|| format!("copying {}", file.display()))?;
    Ok(())
}

/// Is `rel` a plain relative path (`usr/bin/ls`) that stays inside the directory it is
/// joined to? An absolute path or `..` from an applet list would lead outside the root.
pub(super) fn is_inside_path(rel: &str) -> bool {
    !rel.is_empty()
        && Path::new(rel)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}
