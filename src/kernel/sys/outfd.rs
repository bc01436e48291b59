//! A descriptor the caller handed down for nslab to write to (a test's outline file).

use std::os::fd::{BorrowedFd, RawFd};

/// `fd` if it is open on a regular file or a pipe (never a terminal), now closed on exec
/// so that no program nslab starts inherits it.
pub fn inherited_output(fd: RawFd) -> Option<RawFd> {
    if fd <= 2 {
        return None;
    }
    // SAFETY: fstat and fcntl only look at and flag a descriptor number; a number that is
    // not open fails with EBADF.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return None;
    }
    let kind = st.st_mode & libc::S_IFMT;
    if kind != libc::S_IFREG && kind != libc::S_IFIFO {
        return None;
    }
    (unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } == 0).then_some(fd)
}

/// Write `bytes` to a descriptor [`inherited_output`] accepted; a failure is dropped.
pub fn write_to(fd: RawFd, bytes: &[u8]) {
    // SAFETY: the descriptor was checked open and is never closed by nslab.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let _ = nix::unistd::write(fd, bytes);
}
