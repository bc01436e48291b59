//! The pipes between nslab and a child it forks: JSON lines up, orders down.

use super::signals::wait_readable;
use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// The child's side of a channel: messages to the parent, orders from it.
pub struct ChildIo {
    to_parent: File,
    from_parent: BufReader<File>,
}

impl ChildIo {
    /// Send one message (a JSON line) to the parent.
    pub fn send<T: Serialize>(&mut self, msg: &T) {
        self.send_all(std::slice::from_ref(msg));
    }

    /// Send several messages in one write: the parent wakes once for all of them.
    pub fn send_all<T: Serialize>(&mut self, msgs: &[T]) {
        let mut lines = String::new();
        for msg in msgs {
            if let Ok(line) = serde_json::to_string(msg) {
                lines.push_str(&line);
                lines.push('\n');
            }
        }
        let _ = self.to_parent.write_all(lines.as_bytes());
    }

    /// Has the parent gone? Its end of the order pipe is closed: the pipe has no writer.
    /// (nslab keeps that end open as long as it lives, whatever it has already sent.)
    pub fn parent_gone(&self) -> bool {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut fds = [PollFd::new(
            self.from_parent.get_ref().as_fd(),
            PollFlags::POLLIN,
        )];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(_) => fds[0]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLHUP)),
            Err(_) => false,
        }
    }

    /// Block until the parent sends a line; `None` when the parent has gone.
    pub fn wait_order(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.from_parent.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end().to_string()),
        }
    }
}

/// The parent's side of a channel to a child process.
pub struct Channel {
    from_child: BufReader<File>,
    to_child: Option<File>,
    pub(super) peer: String,
}

impl Channel {
    /// Read the child's next message, waiting at most `timeout` (Ctrl-C ends the wait).
    pub fn recv<T: DeserializeOwned>(&mut self, timeout: Duration) -> Result<T> {
        let mut line = String::new();
        if self.from_child.buffer().is_empty()
            && !wait_readable(self.from_child.get_ref(), Some(timeout))?
        {
            bail!("{} sent nothing for {:?}", self.peer, timeout);
        }
        let n = self
            .from_child
            .read_line(&mut line)
            .context("reading from child")?;
        if n == 0 {
            bail!("{} ended without reporting", self.peer);
        }
        serde_json::from_str(line.trim_end())
            .with_context(|| format!("{} sent an unreadable message: {line}", self.peer))
    }

    /// [`Channel::recv`], but the end of the child's pipe is `None`, not an error: a child
    /// whose end closes at execve says "executed" that way.
    pub fn recv_or_end<T: DeserializeOwned>(&mut self, timeout: Duration) -> Result<Option<T>> {
        if self.from_child.buffer().is_empty()
            && !wait_readable(self.from_child.get_ref(), Some(timeout))?
        {
            bail!("{} sent nothing for {:?}", self.peer, timeout);
        }
        let mut line = String::new();
        let n = self
            .from_child
            .read_line(&mut line)
            .context("reading from child")?;
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_str(line.trim_end())
            .map(Some)
            .with_context(|| format!("{} sent an unreadable message: {line}", self.peer))
    }

    /// Send the child a line (an order it waits for with [`ChildIo::wait_order`]).
    pub fn order(&mut self, line: &str) -> Result<()> {
        let f = self
            .to_child
            .as_mut()
            .context("child's order pipe is closed")?;
        f.write_all(format!("{line}\n").as_bytes())
            .with_context(|| format!("writing to {}", self.peer))
    }

    /// The descriptors of nslab's ends, which a child made by clone(2) also holds.
    pub(super) fn raw_fds(&self) -> Vec<RawFd> {
        let mut fds = vec![self.from_child.get_ref().as_raw_fd()];
        fds.extend(self.to_child.as_ref().map(|f| f.as_raw_fd()));
        fds
    }

    /// Close the order pipe: a child blocked in `wait_order` sees `None`.
    pub fn close_orders(&mut self) {
        self.to_child = None;
    }
}

/// A pair of pipes between nslab and a child it is about to fork (directly or through
/// another child): nslab keeps the [`Channel`], the child takes the [`ChildIo`].
pub fn channel(peer: &str) -> Result<(Channel, ChildIo)> {
    let (from_child_r, from_child_w) = pipe_files()?;
    let (to_child_r, to_child_w) = pipe_files()?;
    Ok((
        Channel {
            from_child: BufReader::new(from_child_r),
            to_child: Some(to_child_w),
            peer: peer.into(),
        },
        ChildIo {
            to_parent: from_child_w,
            from_parent: BufReader::new(to_child_r),
        },
    ))
}

fn pipe_files() -> Result<(File, File)> {
    let (r, w): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe2")?;
    Ok((File::from(r), File::from(w)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run `check` in a forked child, where no other thread can fork: a child forked or
    /// spawned by another test's thread holds copies of every descriptor until it execs or
    /// exits, so an order pipe closed here would still have a writer for a while.
    fn alone(check: fn() -> std::result::Result<(), String>) {
        let mut child = super::super::fork_unrecorded(|io| {
            let verdict = check();
            io.send(&verdict);
            i32::from(verdict.is_err())
        })
        .unwrap();
        let verdict: std::result::Result<(), String> = child.recv(Duration::from_secs(10)).unwrap();
        child.wait(Duration::from_secs(10)).unwrap();
        verdict.unwrap();
    }

    #[test]
    fn a_child_sees_whether_its_parent_has_gone() {
        alone(|| {
            let (channel, io) = channel("test").map_err(|e| e.to_string())?;
            if io.parent_gone() {
                return Err("nslab's end is open, yet the parent looks gone".into());
            }
            drop(channel);
            if !io.parent_gone() {
                return Err(
                    "no writer is left on the order pipe, yet the parent looks alive".into(),
                );
            }
            Ok(())
        });
    }

    #[test]
    fn a_parent_gone_after_sending_an_order_is_gone() {
        alone(|| {
            let (mut channel, io) = channel("test").map_err(|e| e.to_string())?;
            channel.order("go").map_err(|e| e.to_string())?;
            if io.parent_gone() {
                return Err("the parent is alive, yet looks gone".into());
            }
            drop(channel);
            if !io.parent_gone() {
                return Err("a line left to read made a parent that has gone look alive".into());
            }
            Ok(())
        });
    }

    #[test]
    fn a_parent_gone_stays_gone_while_other_threads_start_processes() {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let spawner = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = std::process::Command::new("true").status();
                }
            })
        };
        for _ in 0..20 {
            a_parent_gone_after_sending_an_order_is_gone();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        spawner.join().unwrap();
    }
}
