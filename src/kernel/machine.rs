//! Facts about the machine for `nslab doctor`: kernel, namespace support, tools.

use super::ns::NsKind;
use std::path::{Path, PathBuf};

/// `uname -r`.
pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// Namespace kinds this kernel offers (the links in /proc/self/ns).
pub fn namespace_kinds() -> Vec<NsKind> {
    NsKind::ALL
        .iter()
        .copied()
        .filter(|k| Path::new("/proc/self/ns").join(k.file()).exists())
        .collect()
}

fn read_number(path: &str) -> Option<i64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Can unprivileged users make user namespaces? (`None` when the knobs are absent.)
pub fn unprivileged_userns() -> (Option<i64>, Option<i64>) {
    (
        read_number("/proc/sys/user/max_user_namespaces"),
        read_number("/proc/sys/kernel/unprivileged_userns_clone"),
    )
}

/// Is the kernel log readable (for the OOM lesson's log line)?
pub fn kmsg_readable() -> bool {
    std::fs::File::open("/dev/kmsg").is_ok()
}

/// The full path of a program on $PATH (and the usual sbin folders sudo adds).
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
                .iter()
                .map(PathBuf::from),
        )
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}
