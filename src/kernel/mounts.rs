//! The mount(2) calls of the mount lesson, each recorded in the trace as strace shows it:
//! a tmpfs, a bind mount, a read-only bind, a change of propagation, an overlay. They are
//! made in a child's private mount namespace (see [`super::mountns`]), never in nslab's.

use super::mountinfo::OverlayLayers;
use super::sys::errno_result;
use super::trace;
use anyhow::{Context, Result};
use nix::mount::{mount, MsFlags};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// How a mount shares mount and unmount events with its copies in other namespaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Propagation {
    /// `mount --make-shared`: events go both ways within a peer group (`shared:N`).
    Shared,
    /// `mount --make-slave`: events come from the master group only (`master:N`).
    Slave,
    /// `mount --make-private`: no events either way.
    Private,
}

impl Propagation {
    fn flag(self) -> (MsFlags, &'static str) {
        match self {
            Propagation::Shared => (MsFlags::MS_SHARED, "MS_SHARED"),
            Propagation::Slave => (MsFlags::MS_SLAVE, "MS_SLAVE"),
            Propagation::Private => (MsFlags::MS_PRIVATE, "MS_PRIVATE"),
        }
    }

    /// The `mount` option: `--make-shared`.
    pub fn option(self) -> &'static str {
        match self {
            Propagation::Shared => "--make-shared",
            Propagation::Slave => "--make-slave",
            Propagation::Private => "--make-private",
        }
    }
}

fn quoted(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

/// `mount -t tmpfs nslab TARGET` (small: it holds a few files).
pub fn tmpfs(target: &Path) -> Result<()> {
    let data = "size=16m,mode=755";
    let r = mount(
        Some("nslab"),
        target,
        Some("tmpfs"),
        MsFlags::empty(),
        Some(data),
    );
    trace::syscall(format!(
        "mount(\"nslab\", {}, \"tmpfs\", 0, \"{data}\") = {}",
        quoted(target),
        errno_result(&r)
    ));
    r.with_context(|| format!("mounting a tmpfs on {}", target.display()))
}

/// `mount --bind SOURCE TARGET`.
pub fn bind(source: &Path, target: &Path) -> Result<()> {
    let r = mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    );
    trace::syscall(format!(
        "mount({}, {}, NULL, MS_BIND, NULL) = {}",
        quoted(source),
        quoted(target),
        errno_result(&r)
    ));
    r.with_context(|| format!("bind-mounting {} on {}", source.display(), target.display()))
}

/// `mount -o remount,bind,ro TARGET`: this mount read-only, the filesystem unchanged.
pub fn read_only(target: &Path) -> Result<()> {
    let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
    let r = mount(None::<&str>, target, None::<&str>, flags, None::<&str>);
    trace::syscall(format!(
        "mount(NULL, {}, NULL, MS_REMOUNT|MS_BIND|MS_RDONLY, NULL) = {}",
        quoted(target),
        errno_result(&r)
    ));
    r.with_context(|| format!("making {} read-only", target.display()))
}

/// `mount --make-shared TARGET` (or slave, private).
pub fn propagation(target: &Path, kind: Propagation) -> Result<()> {
    let (flag, name) = kind.flag();
    let r = mount(None::<&str>, target, None::<&str>, flag, None::<&str>);
    trace::syscall(format!(
        "mount(NULL, {}, NULL, {name}, NULL) = {}",
        quoted(target),
        errno_result(&r)
    ));
    r.with_context(|| format!("mount {} {}", kind.option(), target.display()))
}

/// The option string of an overlay: `lowerdir=A:B,upperdir=U,workdir=W`. nslab's own
/// paths hold none of the characters overlay would need escaped.
pub fn overlay_options(layers: &OverlayLayers) -> String {
    let lower: Vec<String> = layers
        .lower
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let mut data = format!("lowerdir={}", lower.join(":"));
    if let Some(u) = &layers.upper {
        data.push_str(&format!(",upperdir={}", u.display()));
    }
    if let Some(w) = &layers.work {
        data.push_str(&format!(",workdir={}", w.display()));
    }
    data
}

/// `mount -t overlay -o lowerdir=…,upperdir=…,workdir=… none TARGET`.
pub fn overlay(layers: &OverlayLayers, target: &Path) -> Result<()> {
    let data = overlay_options(layers);
    let r = mount(
        Some("none"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    );
    trace::syscall(format!(
        "mount(\"none\", {}, \"overlay\", 0, \"{data}\") = {}",
        quoted(target),
        errno_result(&r)
    ));
    r.with_context(|| {
        format!(
            "mounting an overlay on {} (is the overlay module loaded? modprobe overlay)",
            target.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_options_name_every_layer_topmost_first() {
        let l = OverlayLayers {
            lower: vec!["/l/app".into(), "/l/base".into()],
            upper: Some("/l/upper".into()),
            work: Some("/l/work".into()),
        };
        assert_eq!(
            overlay_options(&l),
            "lowerdir=/l/app:/l/base,upperdir=/l/upper,workdir=/l/work"
        );
        let ro = OverlayLayers {
            upper: None,
            work: None,
            ..l
        };
        assert_eq!(overlay_options(&ro), "lowerdir=/l/app:/l/base");
    }
}
