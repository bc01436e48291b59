//! Pinning a running process's network namespace under a name, as
//! `touch /run/netns/NAME && mount --bind /proc/PID/ns/net /run/netns/NAME` does (what
//! `ip netns attach NAME PID` does): the namespace then outlives every process in it.

use super::{check_netns_name, ensure_netns_dir, netns_path};
use crate::kernel::sys::{errno_result, errno_text};
use crate::kernel::{removal, trace};
use crate::ledger::{self, Resource};
use anyhow::{bail, Context, Result};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::os::fd::AsRawFd;

/// Bind-mount /proc/PID/ns/net on /run/netns/NAME. On the ledger before the file is made,
/// with the namespace's inode once mounted; removed as `ip netns delete NAME` would.
pub fn pin_netns(name: &str, pid: i32) -> Result<Resource> {
    check_netns_name(name)?;
    if !name.starts_with("nslab") {
        bail!("nslab names its own namespaces with the 'nslab' prefix; {name:?} has none");
    }
    let path = netns_path(name);
    if path.exists() {
        bail!("{} exists already", path.display());
    }
    ensure_netns_dir()?;
    let resource = Resource::NetNs {
        name: name.to_string(),
    };
    ledger::record(resource.clone())?;
    let r = nix::fcntl::open(
        &path,
        OFlag::O_RDONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC,
        Mode::empty(),
    );
    trace::syscall(format!(
        "openat(AT_FDCWD, \"{}\", O_RDONLY|O_CREAT|O_EXCL|O_CLOEXEC, 000) = {}",
        path.display(),
        match &r {
            Ok(fd) => fd.as_raw_fd().to_string(),
            Err(e) => format!("-1 {}", errno_text(*e)),
        }
    ));
    if let Err(e) = r {
        // Someone else's file appeared meanwhile: not ours to remove.
        ledger::forget(&resource);
        return Err(e).with_context(|| format!("creating {}", path.display()));
    }
    drop(r);
    let source = format!("/proc/{pid}/ns/net");
    let r = nix::mount::mount(
        Some(source.as_str()),
        &path,
        Some("none"),
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    );
    trace::syscall(format!(
        "mount(\"{source}\", \"{}\", \"none\", MS_BIND, NULL) = {}",
        path.display(),
        errno_result(&r)
    ));
    if let Err(e) = r {
        let _ = removal::release(&resource);
        return Err(e).with_context(|| format!("mount --bind {source} {}", path.display()));
    }
    removal::identify(&resource);
    Ok(resource)
}
