//! The record of system calls made, so a lesson can show them beside the shell command.
//!
//! Kernel functions call [`syscall`] with the call as a learner would read it in `strace`
//! (arguments and the real result); the lesson engine drains the record after each action.

use std::cell::{Cell, RefCell};

thread_local! {
    static CALLS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    static KEEPING: Cell<bool> = const { Cell::new(true) };
}

/// Record one system call that was just made, e.g. `unshare(CLONE_NEWPID) = 0`.
pub fn syscall(line: impl Into<String>) {
    if KEEPING.with(Cell::get) {
        CALLS.with(|c| c.borrow_mut().push(line.into()));
    }
}

/// Keep the record (the default), or not: `nslab run` without `--trace` shows none, and a
/// container's PID 1 then has nothing to send nslab before its command starts. Children
/// forked or cloned afterwards inherit the choice with their copy of the memory.
pub fn keep(on: bool) {
    KEEPING.with(|k| k.set(on));
}

/// Everything recorded since the last call, oldest first.
pub fn take() -> Vec<String> {
    CALLS.with(|c| std::mem::take(&mut *c.borrow_mut()))
}

/// Append calls made elsewhere (a forked child reports its own over a pipe).
pub fn extend(lines: impl IntoIterator<Item = String>) {
    CALLS.with(|c| c.borrow_mut().extend(lines));
}
