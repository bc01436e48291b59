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

use crate::error::Problem;
use crate::ledger::{self, Resource};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Where the static busybox of Debian's `busybox-static` package lives.
pub const BUSYBOX: &str = "/bin/busybox";

/// Programs copied when no static busybox is present: enough for the lesson's commands.
pub const HOST_PROGRAMS: &[&str] = &[
    "sh", "ls", "cat", "echo", "hostname", "ps", "mount", "sleep", "id", "mkdir", "true", "false",
    "uname", "env", "readlink", "head",
];

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
        super::removal::identify(&Resource::Dir {
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

/// A statically linked busybox: Debian's at /bin/busybox, or the first in PATH.
pub fn static_busybox() -> Option<PathBuf> {
    [Some(PathBuf::from(BUSYBOX)), find_in_path("busybox")]
        .into_iter()
        .flatten()
        .find(|p| is_static_elf(p))
}

fn find_in_path(name: &str) -> Option<PathBuf> {
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

/// Copy `file` to the same absolute path under `root`, creating directories on the way.
/// The copy gets the file's real content (links are followed).
fn copy_keeping_path(file: &Path, root: &Path) -> Result<()> {
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

/// What an ELF file asks of the dynamic loader.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ElfInfo {
    /// `PT_INTERP`: the program interpreter (dynamic loader) path.
    pub interp: Option<String>,
    /// `DT_NEEDED`: the shared libraries, by soname, in order.
    pub needed: Vec<String>,
}

// Offsets come from the file, so every sum is checked: a hostile header gives "truncated",
// never a wrapped index.
fn bytes_at<const N: usize>(d: &[u8], off: usize) -> Option<[u8; N]> {
    d.get(off..off.checked_add(N)?)?.try_into().ok()
}
fn u16_at(d: &[u8], off: usize) -> Option<u16> {
    bytes_at(d, off).map(u16::from_le_bytes)
}
fn u32_at(d: &[u8], off: usize) -> Option<u32> {
    bytes_at(d, off).map(u32::from_le_bytes)
}
fn u64_at(d: &[u8], off: usize) -> Option<u64> {
    bytes_at(d, off).map(u64::from_le_bytes)
}
/// A file offset or size read from the file, as an index into it.
fn index(v: u64) -> Option<usize> {
    usize::try_from(v).ok()
}
fn cstr_at(d: &[u8], off: usize) -> Option<String> {
    let rest = d.get(off..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
}

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;

/// Is `rel` a plain relative path (`usr/bin/ls`) that stays inside the directory it is
/// joined to? An absolute path or `..` from an applet list would lead outside the root.
fn is_inside_path(rel: &str) -> bool {
    !rel.is_empty()
        && Path::new(rel)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

/// Read `PT_INTERP` and `DT_NEEDED` from a 64-bit little-endian ELF image (x86-64,
/// aarch64): program headers, then the dynamic section, whose string table is found by
/// mapping its virtual address back to a file offset through the `PT_LOAD` segments.
pub fn parse_elf(d: &[u8]) -> Result<ElfInfo> {
    if d.get(0..4) != Some(b"\x7fELF") {
        bail!("not an ELF file");
    }
    if d.get(4) != Some(&2) || d.get(5) != Some(&1) {
        bail!("only 64-bit little-endian ELF files are supported");
    }
    let bad = || anyhow::anyhow!("truncated ELF header");
    let phoff = index(u64_at(d, 0x20).ok_or_else(bad)?).ok_or_else(bad)?;
    let phentsize = u16_at(d, 0x36).ok_or_else(bad)? as usize;
    let phnum = u16_at(d, 0x38).ok_or_else(bad)? as usize;
    struct Ph {
        kind: u32,
        offset: u64,
        vaddr: u64,
        filesz: u64,
    }
    let mut phs = Vec::new();
    for i in 0..phnum {
        let at = i
            .checked_mul(phentsize)
            .and_then(|o| o.checked_add(phoff))
            .ok_or_else(bad)?;
        phs.push(Ph {
            kind: u32_at(d, at).ok_or_else(bad)?,
            offset: u64_at(d, at.checked_add(8).ok_or_else(bad)?).ok_or_else(bad)?,
            vaddr: u64_at(d, at.checked_add(16).ok_or_else(bad)?).ok_or_else(bad)?,
            filesz: u64_at(d, at.checked_add(32).ok_or_else(bad)?).ok_or_else(bad)?,
        });
    }
    let mut info = ElfInfo::default();
    if let Some(p) = phs.iter().find(|p| p.kind == PT_INTERP) {
        info.interp = Some(cstr_at(d, index(p.offset).ok_or_else(bad)?).ok_or_else(bad)?);
    }
    let Some(dynamic) = phs.iter().find(|p| p.kind == PT_DYNAMIC) else {
        return Ok(info);
    };
    let mut needed_offsets = Vec::new();
    let mut strtab_vaddr = None;
    let mut at = index(dynamic.offset).ok_or_else(bad)?;
    // Never past the file, whatever the header claims.
    let end = index(dynamic.filesz)
        .and_then(|size| at.checked_add(size))
        .ok_or_else(bad)?
        .min(d.len());
    while at.checked_add(16).is_some_and(|next| next <= end) {
        let tag = u64_at(d, at).ok_or_else(bad)?;
        let val = u64_at(d, at + 8).ok_or_else(bad)?;
        match tag {
            DT_NULL => break,
            DT_NEEDED => needed_offsets.push(val),
            DT_STRTAB => strtab_vaddr = Some(val),
            _ => {}
        }
        at += 16;
    }
    if needed_offsets.is_empty() {
        return Ok(info);
    }
    let strtab_vaddr = strtab_vaddr.context("dynamic section has DT_NEEDED but no DT_STRTAB")?;
    let seg = phs
        .iter()
        .find(|p| p.kind == PT_LOAD && p.vaddr <= strtab_vaddr && strtab_vaddr - p.vaddr < p.filesz)
        .context("DT_STRTAB lies in no loaded segment")?;
    let strtab = (strtab_vaddr - seg.vaddr)
        .checked_add(seg.offset)
        .ok_or_else(bad)?;
    for off in needed_offsets {
        let at = strtab.checked_add(off).and_then(index).ok_or_else(bad)?;
        info.needed.push(cstr_at(d, at).ok_or_else(bad)?);
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_dynamic_program() {
        // /bin/ls on every Debian-like host: dynamically linked against libc.
        let data = std::fs::read("/bin/ls").expect("/bin/ls");
        let info = parse_elf(&data).unwrap();
        let interp = info.interp.expect("ls has a program interpreter");
        assert!(interp.contains("ld-linux"), "{interp}");
        assert!(
            info.needed.iter().any(|n| n.starts_with("libc.so")),
            "{:?}",
            info.needed
        );
        assert!(!is_static_elf(Path::new("/bin/ls")));
    }

    #[test]
    fn resolves_libraries_transitively() {
        let libs = libraries_needed(Path::new("/bin/ls")).unwrap();
        assert!(
            libs.iter().any(|l| l.to_string_lossy().contains("libc.so")),
            "{libs:?}"
        );
        assert!(
            libs.iter()
                .any(|l| l.to_string_lossy().contains("ld-linux")),
            "{libs:?}"
        );
        assert!(libs.iter().all(|l| l.exists()));
    }

    #[test]
    fn static_busybox_is_static() {
        if !Path::new(BUSYBOX).exists() {
            crate::testing::skip(&format!(
                "{BUSYBOX} absent (test.sh installs busybox-static)"
            ));
            return;
        }
        let info = parse_elf(&std::fs::read(BUSYBOX).unwrap()).unwrap();
        // Debian's `busybox` (not -static) is dynamic: then this reports it so.
        assert_eq!(is_static_elf(Path::new(BUSYBOX)), info.interp.is_none());
    }

    #[test]
    fn rejects_non_elf_and_truncated() {
        assert!(parse_elf(b"#!/bin/sh\necho hi\n").is_err());
        let data = std::fs::read("/bin/ls").unwrap();
        assert!(parse_elf(&data[..0x30]).is_err());
        let mut be = data[..64].to_vec();
        be[5] = 2;
        assert!(parse_elf(&be).is_err());
    }

    #[test]
    fn hostile_offsets_give_an_error_not_a_panic() {
        let data = std::fs::read("/bin/ls").unwrap();
        // Every aligned 8-byte word of the header and program headers, set to values that
        // wrap or point past the file.
        for at in (0..data.len().min(0x400)).step_by(8) {
            for v in [
                u64::MAX,
                u64::MAX - 7,
                1 << 63,
                data.len() as u64,
                0x4000_0000,
            ] {
                let mut d = data.clone();
                d[at..at + 8].copy_from_slice(&v.to_le_bytes());
                let _ = parse_elf(&d);
            }
        }
    }

    #[test]
    fn applet_paths_stay_inside_the_root() {
        for ok in ["bin/ls", "usr/sbin/ip", "sbin/init"] {
            assert!(is_inside_path(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../etc/passwd",
            "bin/../../etc",
            "/",
            "./bin/x",
        ] {
            assert!(!is_inside_path(bad), "{bad}");
        }
    }
}
