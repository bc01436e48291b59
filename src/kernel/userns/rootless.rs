//! The handle nslab holds on a user namespace being made: the learner's process and the
//! process inside, each asked through its channel.

use super::learner::learner_main;
use super::orders::{ask, receive, Order};
use super::{LinksUp, MapFile, Outcome, SelfIds, TmpFile, Unshared, Who};
use crate::kernel::ns::NsSet;
use crate::kernel::procs::{self, ProcInfo};
use crate::kernel::sys::{self, Channel, Forked};
use anyhow::{bail, Result};
use nix::sched::CloneFlags;
use std::path::Path;
use std::time::Duration;

/// A user namespace being made and looked at: the learner's process and the process
/// inside. Dropped, both end (the second with the first).
pub struct Rootless {
    learner: Forked,
    inside: Channel,
    inside_pid: i32,
}

impl Rootless {
    /// Fork the learner's process as `who`, and have it fork a process that calls
    /// unshare(`flags`) (CLONE_NEWUSER and whatever goes with it).
    pub fn create(who: &Who, flags: CloneFlags) -> Result<(Rootless, Unshared)> {
        let (inside, inside_io) = sys::channel("the process inside")?;
        let parent = nix::unistd::getpid();
        let who = who.clone();
        let bits = flags.bits();
        let mut inside_io = Some(inside_io);
        let mut learner = sys::fork_unrecorded(move |io| match inside_io.take() {
            Some(i) => learner_main(io, &who, parent, bits, i),
            None => 1,
        })?;
        let inside_pid: i32 = receive(&mut learner.channel)?;
        // The number came from a process the learner controls: believe it only for the
        // learner's own child.
        match procs::process(inside_pid) {
            Some(p) if p.ppid == learner.pid.as_raw() => {}
            _ => bail!("the learner's process named {inside_pid}, which is not its child"),
        }
        let mut ns = Rootless {
            learner,
            inside,
            inside_pid,
        };
        let (before, after): (NsSet, NsSet) = receive(&mut ns.inside)?;
        Ok((ns, Unshared { before, after }))
    }

    /// The host PID of the process inside.
    pub fn inside_pid(&self) -> i32 {
        self.inside_pid
    }

    /// The host PID of the learner's process.
    pub fn learner_pid(&self) -> i32 {
        self.learner.pid.as_raw()
    }

    /// The learner's process writes `text` into the process inside's `file`.
    pub fn write_map(&mut self, file: MapFile, text: &str) -> Result<Outcome> {
        ask(
            &mut self.learner.channel,
            &Order::WriteMap {
                file,
                text: text.into(),
            },
        )
    }

    /// The learner tries unshare(`flags`) outside any namespace of its own.
    pub fn learner_tries_unshare(&mut self, flags: CloneFlags) -> Result<Outcome> {
        ask(
            &mut self.learner.channel,
            &Order::TryUnshare {
                flags: flags.bits(),
            },
        )
    }

    /// The learner runs newuidmap or newgidmap with `args`.
    pub fn run_id_tool(&mut self, tool: &str, args: &[String]) -> Result<Outcome> {
        ask(
            &mut self.learner.channel,
            &Order::RunIdTool {
                tool: tool.into(),
                args: args.to_vec(),
            },
        )
    }

    pub fn whoami(&mut self) -> Result<SelfIds> {
        ask(&mut self.inside, &Order::Whoami)
    }

    pub fn tmpfile(&mut self) -> Result<TmpFile> {
        ask(&mut self.inside, &Order::TmpFile)
    }

    pub fn try_open(&mut self, path: &Path) -> Result<Outcome> {
        ask(&mut self.inside, &Order::TryOpen { path: path.into() })
    }

    pub fn try_mount_tmpfs(&mut self, target: &Path) -> Result<Outcome> {
        ask(
            &mut self.inside,
            &Order::TryMountTmpfs {
                target: target.into(),
            },
        )
    }

    /// The process inside calls unshare(`flags`) again (a mount, PID or network namespace
    /// of its user namespace's); a new mount namespace is made private at once.
    pub fn unshare(&mut self, flags: CloneFlags) -> Result<Outcome> {
        ask(
            &mut self.inside,
            &Order::Unshare {
                flags: flags.bits(),
            },
        )
    }

    /// What `ps` shows for the new PID namespace's first process.
    pub fn pid1_ps(&mut self) -> Result<Vec<ProcInfo>> {
        ask(&mut self.inside, &Order::Pid1Proc)
    }

    /// `ip link`, `ip link set lo up`, `ip link` in the process inside's network namespace.
    pub fn links_up(&mut self) -> Result<LinksUp> {
        ask(&mut self.inside, &Order::LinksUp)
    }

    /// End both processes.
    pub fn close(mut self) -> Result<()> {
        self.inside.close_orders();
        self.learner.channel.close_orders();
        self.learner
            .wait(Duration::from_secs(5))
            .map(|_| ())
            .or_else(|_| self.learner.kill())
    }
}
