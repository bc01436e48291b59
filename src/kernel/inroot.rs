//! Paths inside a root filesystem a learner gave, resolved as the container will see them:
//! openat2(2) with RESOLVE_IN_ROOT treats the root as `/`, so an absolute symlink there
//! (`dev` -> /etc) or one climbing with `..` stays inside it.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Is `name` (below `root`) a directory, once resolved inside `root`? `Err` with the
/// errno's description when it cannot be resolved at all (a symlink loop, say).
pub fn is_dir_inside(root: &Path, name: &str) -> Result<bool, String> {
    let root_c = CString::new(root.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: a NUL-terminated path; the descriptor is owned below.
    let fd = unsafe {
        libc::open(
            root_c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    // SAFETY: just opened, owned here alone.
    let root_fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let name_c = CString::new(name).map_err(|e| e.to_string())?;
    // struct open_how (linux/openat2.h).
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let how = OpenHow {
        flags: (libc::O_PATH | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: a valid directory descriptor, a NUL-terminated path, an open_how of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root_fd.as_raw_fd(),
            name_c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENOTDIR) => Ok(false),
            _ => Err(e.to_string()),
        };
    }
    // SAFETY: just opened, owned here alone.
    let found = unsafe { OwnedFd::from_raw_fd(r as i32) };
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid descriptor and a stat buffer.
    if unsafe { libc::fstat(found.as_raw_fd(), &mut st) } < 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    Ok(st.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir(r.join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc", r.join("dev")).unwrap();
        std::os::unix::fs::symlink("/", r.join("proc")).unwrap();
        std::os::unix::fs::symlink("../../../../../../usr", r.join("sys")).unwrap();
        std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();
        // /etc inside is the root's own etc; / inside is the root.
        assert_eq!(is_dir_inside(r, "dev"), Ok(true));
        assert_eq!(is_dir_inside(r, "proc"), Ok(true));
        // The host's /usr is not reached by climbing: inside there is none.
        assert_eq!(is_dir_inside(r, "sys"), Ok(false));
        assert!(is_dir_inside(r, "loop").is_err());
        assert_eq!(is_dir_inside(r, "nothing"), Ok(false));
    }
}
