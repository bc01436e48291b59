//! The outline of what a run showed: one line per thing on the screen (a title, a step's
//! heading, a command, the system calls, a view's label, a sentence, a verdict), written to
//! the descriptor `NSLAB_EVENTS_FD` names. A test holds a lesson's outline in a snapshot:
//! its shape, which neither a reworded sentence nor another screen width changes.

use crate::kernel::sys;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};

/// The descriptor, or -1. A plain number: a forked child may emit without taking a lock.
static FD: AtomicI32 = AtomicI32::new(-1);

/// Read `NSLAB_EVENTS_FD` once: only a regular file or a pipe the caller opened is used.
pub(super) fn open_from_env() {
    if let Some(fd) = std::env::var("NSLAB_EVENTS_FD")
        .ok()
        .and_then(|v| v.trim().parse::<RawFd>().ok())
        .and_then(sys::inherited_output)
    {
        FD.store(fd, Ordering::Relaxed);
    }
}

/// One line: `kind` and, where it says what the thing is, `text` on one line.
pub(super) fn emit(kind: &str, text: &str) {
    let fd = FD.load(Ordering::Relaxed);
    if fd >= 0 {
        sys::write_to(fd, event_line(kind, text).as_bytes());
    }
}

fn event_line(kind: &str, text: &str) -> String {
    let text: Vec<&str> = text.split_whitespace().collect();
    if text.is_empty() {
        format!("{kind}\n")
    } else {
        format!("{kind} {}\n", text.join(" "))
    }
}

/// The names of the system calls in strace lines, each once, in the order first made.
pub(super) fn call_names(calls: &[String]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for c in calls {
        // `[child 123] setns(…)`, `[netns PID 9] RTM_NEWLINK ifname=…`: the name after the
        // process it was made in, up to its arguments.
        let mut rest = c.trim_start();
        while let Some(after) = rest.strip_prefix('[').and_then(|r| r.split_once(']')) {
            rest = after.1.trim_start();
        }
        let name = rest
            .split(|ch: char| ch == '(' || ch.is_whitespace())
            .next()
            .unwrap_or("");
        if !name.is_empty() && !names.contains(&name) {
            names.push(name);
        }
    }
    names.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_one_line_and_calls_are_named_once() {
        assert_eq!(
            event_line("view", "Links in\n  nslab-red "),
            "view Links in nslab-red\n"
        );
        assert_eq!(event_line("say", ""), "say\n");
        let calls = [
            "mkdir(\"/a\", 0755) = 0",
            "[child 12] openat(AT_FDCWD, …) = 3",
            "[netns PID 9] RTM_NEWLINK ifname=eth0 -> ack",
            "mkdir(\"/b\") = 0",
        ]
        .map(String::from);
        assert_eq!(call_names(&calls), "mkdir openat RTM_NEWLINK");
    }
}
