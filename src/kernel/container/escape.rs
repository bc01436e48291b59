//! chroot alone, and why it is not a wall: the classic escape, tried for real in a child.

use super::pid1::{bind_self, pivot_into};
use super::*;

/// What a chroot (or pivot_root) escape attempt found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscapeReport {
    pub mode: RootMode,
    /// `ls /` right after entering the root.
    pub inside: Vec<String>,
    /// `ls /` after the escape attempt.
    pub after: Vec<String>,
    /// Whether the attempt reached the host's real root directory.
    pub escaped: bool,
}

fn list_root() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Enter `rootfs` (with `chroot`, or with a private mount namespace and `pivot_root`) in a
/// child, then try the classic escape a privileged process can make from a chroot: chroot
/// into a subdirectory while the working directory stays above it, walk `..` upward (the
/// kernel stops `..` only at the process's *current* root, which is now below us), and
/// chroot to where the walk ends. After `chroot` alone that is the host's `/`; after
/// `pivot_root` and unmounting the old root, the host's tree is not in the namespace at all.
pub fn escape_attempt(rootfs: &Path, mode: RootMode) -> Result<EscapeReport> {
    let host_root = std::fs::metadata("/").context("stat /")?;
    let host_id = (host_root.dev(), host_root.ino());
    let rootfs = rootfs.to_path_buf();
    let mut child = sys::fork_recorded(move |io| {
        trace::take();
        let result = escape_in_child(&rootfs, mode, host_id);
        io.send(&trace::take());
        io.send(&result);
        0
    })?;
    let lines: Vec<String> = child.recv(Duration::from_secs(20))?;
    trace::extend(lines);
    let result: Result<EscapeReport, StartError> = child.recv(Duration::from_secs(20))?;
    let _ = child.wait(Duration::from_secs(10));
    Ok(result?)
}

fn escape_in_child(
    rootfs: &Path,
    mode: RootMode,
    host_id: (u64, u64),
) -> Result<EscapeReport, StartError> {
    match mode {
        RootMode::Chroot => {
            traced(
                "chroot",
                format!("chroot({})", q(rootfs)),
                nix::unistd::chroot(rootfs),
            )?;
            traced("chdir", "chdir(\"/\")".into(), nix::unistd::chdir("/"))?;
        }
        RootMode::PivotRoot => {
            sys::unshare(CloneFlags::CLONE_NEWNS)
                .map_err(|e| failure("unshare", format!("{e:#}"), None))?;
            sys::make_mounts_private()
                .map_err(|e| failure("mount --make-rprivate /", format!("{e:#}"), None))?;
            bind_self(rootfs)?;
            pivot_into(rootfs)?;
        }
    }
    let inside = list_root();
    // Any directory below the root will do; nothing is created in the learner's tree.
    let sub = inside
        .iter()
        .find(|n| {
            std::fs::symlink_metadata(format!("/{n}"))
                .map(|m| m.is_dir())
                .unwrap_or(false)
        })
        .cloned()
        .ok_or_else(|| {
            failure(
                "escape",
                "the root filesystem has no directory to chroot into",
                None,
            )
        })?;
    traced(
        "chroot",
        format!("chroot(\"/{sub}\")"),
        nix::unistd::chroot(format!("/{sub}").as_str()),
    )?;
    // The working directory is still the old root, now outside the process's root.
    let mut hops = 0;
    for _ in 0..64 {
        let before = std::fs::metadata(".").map(|m| (m.dev(), m.ino())).ok();
        if nix::unistd::chdir("..").is_err() {
            break;
        }
        hops += 1;
        if std::fs::metadata(".").map(|m| (m.dev(), m.ino())).ok() == before {
            break;
        }
    }
    trace::syscall(format!(
        "chdir(\"..\") = 0   (x{hops}, until \"..\" is \".\")"
    ));
    traced("chroot", "chroot(\".\")".into(), nix::unistd::chroot("."))?;
    let now = std::fs::metadata("/").map(|m| (m.dev(), m.ino())).ok();
    Ok(EscapeReport {
        mode,
        inside,
        after: list_root(),
        escaped: now == Some(host_id),
    })
}
