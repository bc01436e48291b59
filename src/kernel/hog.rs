//! A memory hog: a forked child that allocates and touches memory step by step, reporting
//! each step over its pipe, so a lesson can draw usage against a cgroup's limit while the
//! kernel decides the child's fate.
//!
//! The child is placed in the cgroup *before* it allocates anything: it waits for a
//! `start` order that the parent sends only after writing its PID to `cgroup.procs`,
//! because pages are charged to the cgroup the process is in when it first touches them.

use super::cgroup::Cgroup;
use super::sys::{self, ChildIo, Forked};
use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What the hog child reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum HogMsg {
    /// Forked and waiting to be placed.
    Ready,
    /// Bytes allocated and touched so far.
    Touched(u64),
    /// Reached its goal and holds the memory until told to exit.
    Holding(u64),
}

/// What happened next to the hog, seen from the parent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HogEvent {
    /// It has touched this many bytes and goes on.
    Progress(u64),
    /// It reached its goal and is holding the memory (alive).
    Holding(u64),
    /// It ended before reaching its goal.
    Ended(HogEnd),
}

/// How the hog ended, as a shell would report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HogEnd {
    /// Killed by this signal (SIGKILL for the OOM killer), or exited with `code`.
    pub signal: Option<Signal>,
    pub code: Option<i32>,
    /// What `$?` shows in a shell: 128 + signal number, or the exit code.
    pub shell_status: i32,
    /// Bytes it had touched before it ended.
    pub touched: u64,
}

impl HogEnd {
    fn from_status(status: WaitStatus, touched: u64) -> HogEnd {
        match status {
            WaitStatus::Signaled(_, sig, _) => HogEnd {
                signal: Some(sig),
                code: None,
                shell_status: 128 + sig as i32,
                touched,
            },
            WaitStatus::Exited(_, code) => HogEnd {
                signal: None,
                code: Some(code),
                shell_status: code,
                touched,
            },
            _ => HogEnd {
                signal: None,
                code: None,
                shell_status: -1,
                touched,
            },
        }
    }

    pub fn killed_by_sigkill(&self) -> bool {
        self.signal == Some(Signal::SIGKILL)
    }
}

/// A running memory hog.
pub struct MemoryHog {
    child: Forked,
    pub touched: u64,
    started: bool,
}

/// The child's body: wait for `start`, then allocate `goal` bytes in `step`s, writing to
/// every byte (so every page is really backed), reporting after each step.
fn hog_body(io: &mut ChildIo, goal: u64, step: u64, pause: Duration) -> i32 {
    // Its own name, so ps and the kernel's OOM report say `nslab-hog`, not `nslab`.
    let _ = nix::sys::prctl::set_name(c"nslab-hog");
    io.send(&HogMsg::Ready);
    if io.wait_order().as_deref() != Some("start") {
        return 1;
    }
    let mut held: Vec<Vec<u8>> = Vec::new();
    let mut touched = 0u64;
    while touched < goal {
        let n = step.min(goal - touched) as usize;
        // vec![x; n] with a non-zero byte writes all n bytes: every page gets faulted in.
        held.push(std::hint::black_box(vec![0xa5u8; n]));
        touched += n as u64;
        io.send(&HogMsg::Touched(touched));
        std::thread::sleep(pause);
    }
    io.send(&HogMsg::Holding(touched));
    // Hold the memory until the parent has looked at it.
    let _ = io.wait_order();
    std::hint::black_box(&held);
    0
}

impl MemoryHog {
    /// Fork a hog that will allocate `goal` bytes in `step`s, pausing `pause` between
    /// steps (so a bar can follow it). It does nothing until [`MemoryHog::start_in`].
    pub fn spawn(goal: u64, step: u64, pause: Duration) -> Result<MemoryHog> {
        let step = step.max(4096);
        let mut child = sys::fork_recorded(move |io| hog_body(io, goal, step, pause))?;
        match child
            .recv::<HogMsg>(Duration::from_secs(10))
            .context("waiting for the hog to start")?
        {
            HogMsg::Ready => {}
            other => bail!("hog sent {other:?} before it was started"),
        }
        Ok(MemoryHog {
            child,

            touched: 0,
            started: false,
        })
    }

    pub fn pid(&self) -> i32 {
        self.child.pid.as_raw()
    }

    /// Place the hog in `cg` (cgroup.procs, in the trace), then let it allocate.
    pub fn start_in(&mut self, cg: &Cgroup) -> Result<()> {
        cg.add_pid(self.pid())?;
        self.child.order("start")?;
        self.started = true;
        Ok(())
    }

    /// Wait for the hog's next step (at most `timeout`), noticing Ctrl-C.
    pub fn next(&mut self, timeout: Duration) -> Result<HogEvent> {
        if !self.started {
            bail!("the hog has not been started");
        }
        match self.child.recv::<HogMsg>(timeout) {
            Ok(HogMsg::Touched(n)) => {
                self.touched = n;
                Ok(HogEvent::Progress(n))
            }
            Ok(HogMsg::Holding(n)) => {
                self.touched = n;
                Ok(HogEvent::Holding(n))
            }
            Ok(HogMsg::Ready) => bail!("hog reported ready twice"),
            Err(e) => {
                sys::check_interrupt()?;
                // The pipe closed: the child is gone (or going). Reap it for its status.
                match self.child.wait(Duration::from_secs(10)) {
                    Ok(status) => Ok(HogEvent::Ended(HogEnd::from_status(status, self.touched))),
                    Err(_) => Err(e),
                }
            }
        }
    }

    /// Has the hog ended (a holding hog sends nothing more)? Reaps it if so.
    pub fn ended(&mut self) -> Result<Option<HogEnd>> {
        Ok(self
            .child
            .try_wait()?
            .map(|status| HogEnd::from_status(status, self.touched)))
    }

    /// Tell a holding hog to exit and reap it.
    pub fn release(mut self) -> Result<HogEnd> {
        self.child.channel.close_orders();
        let status = self.child.wait(Duration::from_secs(10))?;
        Ok(HogEnd::from_status(status, self.touched))
    }
}

/// `MemAvailable` of /proc/meminfo in bytes: what the machine could still give.
pub fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_mem_available(&text)
}

fn parse_mem_available(meminfo: &str) -> Option<u64> {
    meminfo.lines().find_map(|l| {
        let rest = l.strip_prefix("MemAvailable:")?;
        let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn mem_available_from_real_meminfo() {
        let text = "MemTotal:       24683472 kB\nMemFree:        23592388 kB\nMemAvailable:   24072272 kB\nBuffers:           12932 kB\n";
        assert_eq!(super::parse_mem_available(text), Some(24072272 * 1024));
        assert_eq!(super::parse_mem_available("MemTotal: 1 kB\n"), None);
    }

    use super::*;
    use crate::kernel::cgroup::{kmsg, Concept, Max, NslabCgroup, Reading};

    /// Drive a hog to its end (or its goal), at most ~60 s on a slow machine.
    fn run(hog: &mut MemoryHog) -> HogEvent {
        loop {
            match hog.next(Duration::from_secs(60)).expect("hog step") {
                HogEvent::Progress(_) => continue,
                other => return other,
            }
        }
    }

    #[test]
    fn root_hog_is_oom_killed_at_the_limit_and_survives_a_higher_one() {
        let Some(_root) = crate::testing::root_or_skip(
            "root_hog_is_oom_killed_at_the_limit_and_survives_a_higher_one",
        ) else {
            return;
        };
        let name = format!("nslabt-hog-{}", std::process::id());
        let mut cg = NslabCgroup::create_for(&name, &["memory"]).unwrap();
        let mem_dir = cg.dir_for("memory").unwrap().path.clone();
        cg.set(Concept::MemoryLimit, &Reading::Limit(Max::Value(30 << 20)))
            .unwrap();
        cg.forbid_swap().unwrap();
        let seq_before = kmsg::last_seq();

        let mut hog = MemoryHog::spawn(64 << 20, 1 << 20, Duration::from_millis(2)).unwrap();
        let pid = hog.pid();
        hog.start_in(&cg).unwrap();
        let HogEvent::Ended(end) = run(&mut hog) else {
            panic!("a 64 MiB hog survived a 30 MiB limit")
        };
        assert!(end.killed_by_sigkill(), "{end:?}");
        assert_eq!(end.shell_status, 137);
        assert!(end.touched < 64 << 20);
        assert_eq!(cg.read(Concept::OomKills).unwrap(), Reading::Count(1));
        let Reading::Bytes(peak) = cg.read(Concept::MemoryPeak).unwrap() else {
            panic!()
        };
        assert!(peak <= 30 << 20 && peak > 20 << 20, "peak {peak}");

        // The kernel's own line names this cgroup and this PID.
        let layout = crate::kernel::cgroup::Layout::read().unwrap();
        let path = layout.path_in_hierarchy("memory", &mem_dir).unwrap();
        if let Some(kills) = kmsg::oom_kills_in(&path) {
            let k = kills
                .iter()
                .rev()
                .find(|k| Some(k.seq) > seq_before)
                .expect("a new OOM line in /dev/kmsg");
            assert_eq!(k.constraint, "CONSTRAINT_MEMCG");
            assert_eq!(k.pid, pid);
        }

        // Same hog, limit above its goal: it reaches the goal and holds it.
        cg.set(Concept::MemoryLimit, &Reading::Limit(Max::Value(96 << 20)))
            .unwrap();
        let mut hog = MemoryHog::spawn(64 << 20, 4 << 20, Duration::from_millis(1)).unwrap();
        hog.start_in(&cg).unwrap();
        assert_eq!(run(&mut hog), HogEvent::Holding(64 << 20));
        let Reading::Bytes(usage) = cg.read(Concept::MemoryUsage).unwrap() else {
            panic!()
        };
        assert!(usage >= 64 << 20, "usage {usage}");
        let end = hog.release().unwrap();
        assert_eq!(end.code, Some(0));
        assert_eq!(
            cg.read(Concept::OomKills).unwrap(),
            Reading::Count(1),
            "no new kill"
        );
        cg.remove().unwrap();
        assert!(!mem_dir.exists());
    }

    #[test]
    fn root_dropping_a_running_hog_and_its_cgroup_leaves_nothing() {
        let Some(_root) = crate::testing::root_or_skip(
            "root_dropping_a_running_hog_and_its_cgroup_leaves_nothing",
        ) else {
            return;
        };
        let name = format!("nslabt-drop-{}", std::process::id());
        let cg = NslabCgroup::create_for(&name, &["memory"]).unwrap();
        let dir = cg.dir_for("memory").unwrap().path.clone();
        let mut hog = MemoryHog::spawn(8 << 20, 1 << 20, Duration::from_millis(200)).unwrap();
        let pid = hog.pid();
        hog.start_in(&cg).unwrap();
        assert!(matches!(
            hog.next(Duration::from_secs(30)).unwrap(),
            HogEvent::Progress(_)
        ));
        // As on an error mid-climb: the cgroup goes first (killing the hog), then the handle.
        drop(cg);
        drop(hog);
        assert!(!dir.exists());
        assert!(crate::kernel::procs::process(pid).map_or(true, |p| p.is_zombie()));
        assert!(!crate::ledger::current()
            .iter()
            .any(|r| r.describe().contains(&name)));
    }
}
