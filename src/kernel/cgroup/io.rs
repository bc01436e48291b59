//! The file system calls on cgroupfs: reads sized for its files, writes, mkdir and rmdir,
//! each recorded in the trace as strace shows it.

use super::concepts;
use crate::kernel::trace;
use anyhow::{Context, Result};
use nix::errno::Errno;
use std::io::Write;
use std::path::Path;

/// A file of /proc or cgroupfs, which report a size of 0: read into a buffer large
/// enough for it at once (`read_to_string` would start with 32-byte reads).
pub(super) fn read_small(path: impl AsRef<Path>) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::with_capacity(16 * 1024);
    std::fs::File::open(path)?.read_to_string(&mut text)?;
    Ok(text)
}

/// A cgroup file's text as the kernel gives it (empty when unreadable), for views that
/// show the raw value beside the parsed one.
pub fn read_raw(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_default()
}

/// Errno of an io error, for trace lines.
pub(super) fn io_errno(e: &std::io::Error) -> String {
    let errno = Errno::from_raw(e.raw_os_error().unwrap_or(0));
    format!("-1 {}", crate::kernel::sys::errno_text(errno))
}

/// Write `text` to a cgroup file, recorded as `write("path", "text") = n`.
pub fn write_file(path: &Path, text: &str) -> Result<()> {
    let r = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write(text.as_bytes()));
    match &r {
        Ok(n) => trace::syscall(format!("write(\"{}\", \"{text}\") = {n}", path.display())),
        Err(e) => trace::syscall(format!(
            "write(\"{}\", \"{text}\") = {}",
            path.display(),
            io_errno(e)
        )),
    }
    r.with_context(|| format!("writing {text:?} to {}", path.display()))?;
    Ok(())
}

pub(super) fn mkdir_traced(path: &Path) -> std::io::Result<()> {
    let r = std::fs::create_dir(path);
    let res = match &r {
        Ok(()) => "0".to_string(),
        Err(e) => io_errno(e),
    };
    trace::syscall(format!("mkdir(\"{}\", 0755) = {res}", path.display()));
    r
}

/// rmdir(2) of a cgroup directory, recorded in the trace (EBUSY while a process is inside).
pub fn rmdir_traced(path: &Path) -> std::io::Result<()> {
    let r = std::fs::remove_dir(path);
    let res = match &r {
        Ok(()) => "0".to_string(),
        Err(e) => io_errno(e),
    };
    trace::syscall(format!("rmdir(\"{}\") = {res}", path.display()));
    r
}

/// `cgroup.procs` of a directory; a directory already gone has none.
pub fn read_procs(dir: &Path) -> Result<Vec<i32>> {
    match std::fs::read_to_string(dir.join("cgroup.procs")) {
        Ok(t) => Ok(concepts::parse_procs(&t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}/cgroup.procs", dir.display())),
    }
}

/// The controllers listed in a v2 `cgroup.subtree_control` / `cgroup.controllers`.
pub(super) fn read_list(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect()
}
