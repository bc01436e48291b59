//! The process table as a `/proc` shows it, with each process's PIDs in every nested
//! PID namespace (the `NSpid:` line of /proc/PID/status).
//!
//! Every reader takes the `/proc` to read: the host's, or one mounted inside a new PID
//! namespace, which is exactly the difference lesson 1 teaches.

use super::ns::{self, NsKind};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One process as read just now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcInfo {
    /// The PID in the PID namespace of the `/proc` it was read from.
    pub pid: i32,
    pub ppid: i32,
    pub comm: String,
    /// The command line, arguments joined by spaces (empty for kernel threads and zombies).
    pub cmdline: String,
    /// One-letter state: R, S, D, Z, T, ...
    pub state: char,
    pub uid: u32,
    /// Start time in clock ticks since boot: with the PID it names a process unambiguously.
    pub start_time: u64,
    /// PIDs from the outermost PID namespace the reader can see inward (NSpid).
    pub nspid: Vec<i32>,
    /// Inode of its PID namespace, when readable from this `/proc`.
    pub pid_ns: Option<u64>,
}

#[cfg(test)]
impl ProcInfo {
    /// A process for a judge's fixture: `comm` as root, asleep, in PID namespace 1, started
    /// at tick `pid`.
    pub fn fixture(pid: i32, ppid: i32, comm: &str) -> ProcInfo {
        ProcInfo {
            pid,
            ppid,
            comm: comm.into(),
            cmdline: comm.into(),
            state: 'S',
            uid: 0,
            start_time: pid as u64,
            nspid: vec![pid],
            pid_ns: Some(1),
        }
    }
}

impl ProcInfo {
    /// The PID inside its own (innermost) PID namespace.
    pub fn innermost_pid(&self) -> i32 {
        self.nspid.last().copied().unwrap_or(self.pid)
    }

    pub fn is_zombie(&self) -> bool {
        self.state == 'Z'
    }
}

fn read_one(proc_root: &Path, p: &procfs::process::Process) -> Option<ProcInfo> {
    let stat = p.stat().ok()?;
    let status = p.status().ok();
    let cmdline = p.cmdline().map(|a| a.join(" ")).unwrap_or_default();
    let pid_ns = std::fs::read_link(
        proc_root
            .join(p.pid.to_string())
            .join("ns")
            .join(NsKind::Pid.file()),
    )
    .ok()
    .and_then(|t| ns::parse_link_target(&t.to_string_lossy()));
    Some(ProcInfo {
        pid: stat.pid,
        ppid: stat.ppid,
        comm: stat.comm.clone(),
        cmdline,
        state: stat.state,
        uid: status.as_ref().map(|s| s.ruid).unwrap_or(0),
        start_time: stat.starttime,
        nspid: status
            .and_then(|s| s.nspid)
            .unwrap_or_else(|| vec![stat.pid]),
        pid_ns,
    })
}

/// Every process visible in the `/proc` mounted at `proc_root`, by PID.
/// Processes that exit while being read are skipped.
pub fn table_at(proc_root: &Path) -> std::io::Result<Vec<ProcInfo>> {
    let iter = procfs::process::all_processes_with_root(proc_root)
        .map_err(|e| std::io::Error::other(format!("reading {}: {e}", proc_root.display())))?;
    let mut all: Vec<ProcInfo> = iter
        .filter_map(|p| p.ok())
        .filter_map(|p| read_one(proc_root, &p))
        .collect();
    all.sort_by_key(|p| p.pid);
    Ok(all)
}

/// The processes a process sees in its own `/proc` (a container's, through
/// /proc/PID/root/proc), and the path read.
pub fn table_seen_by(pid: i32) -> std::io::Result<(std::path::PathBuf, Vec<ProcInfo>)> {
    let root = Path::new("/proc").join(pid.to_string()).join("root/proc");
    let table = table_at(&root)?;
    Ok((root, table))
}

/// Every process the host's `/proc` shows.
pub fn table() -> std::io::Result<Vec<ProcInfo>> {
    table_at(Path::new("/proc"))
}

/// One process from the host's `/proc`; `None` if it does not exist (or has just exited).
pub fn process(pid: i32) -> Option<ProcInfo> {
    let p = procfs::process::Process::new(pid).ok()?;
    read_one(Path::new("/proc"), &p)
}

/// The start time of `pid`, to tell it from a later process that reuses its number.
/// Read for every child nslab starts, on the way to its first step: one open and one
/// read of /proc/PID/stat.
pub fn start_time(pid: i32) -> Option<u64> {
    use std::io::Read;
    let mut stat = String::with_capacity(1024);
    std::fs::File::open(format!("/proc/{pid}/stat"))
        .ok()?
        .read_to_string(&mut stat)
        .ok()?;
    parse_start_time(&stat)
}

/// Field 22 of /proc/PID/stat (starttime, in clock ticks after boot). Fields are counted
/// after the `)` that ends the command name, which may itself hold spaces and parentheses.
pub fn parse_start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // `rest` starts with field 3 (the state).
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// When a process with this start time (clock ticks after boot) started, in seconds since
/// the epoch: the boot time of /proc/stat plus the ticks. `None` when /proc/stat has none.
pub fn started_at(start_time: u64) -> Option<i64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let btime: i64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: sysconf takes a constant and returns a number.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(btime + (start_time / hz) as i64)
}

/// True when `pid` still names the process that started at `start_time`.
pub fn is_same_process(pid: i32, start_time: u64) -> bool {
    match process(pid) {
        Some(p) => p.start_time == start_time && !p.is_zombie(),
        None => false,
    }
}

/// The chain of parents from `pid` up to PID 1 (or as far as it can be read), nearest first.
pub fn ancestors(table: &[ProcInfo], pid: i32) -> Vec<&ProcInfo> {
    let mut chain = Vec::new();
    let mut cur = pid;
    while let Some(p) = table.iter().find(|p| p.pid == cur) {
        chain.push(p);
        if p.ppid == 0 || p.ppid == cur || chain.len() > 4096 {
            break;
        }
        cur = p.ppid;
    }
    chain
}

/// Programs that start a command for someone else; the learner's shell is above them.
const LAUNCHERS: &[&str] = &["sudo", "su", "doas", "pkexec", "nslab", "timeout", "env"];

/// The shell (or other program) the learner ran nslab from: nslab's nearest ancestor that
/// is not sudo-like.
pub fn caller() -> Option<ProcInfo> {
    let me = process(std::process::id() as i32)?;
    let mut cur = process(me.ppid)?;
    for _ in 0..8 {
        if !LAUNCHERS.contains(&cur.comm.as_str()) {
            return Some(cur);
        }
        cur = process(cur.ppid)?;
    }
    Some(cur)
}

/// Common interactive shells, by command name.
pub fn is_shell(comm: &str) -> bool {
    matches!(
        comm,
        "bash"
            | "sh"
            | "dash"
            | "zsh"
            | "fish"
            | "ksh"
            | "mksh"
            | "ash"
            | "busybox"
            | "tcsh"
            | "csh"
            | "nu"
            | "elvish"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_field_22_whatever_the_command_name() {
        let line = "27265 (a b) c)) R 27261 27261 6592 0 -1 4194304 125 0 0 0 0 0 0 0 20 0 1 0 1255773 3133440 366";
        assert_eq!(parse_start_time(line), Some(1255773));
        assert_eq!(parse_start_time("12 (x) R 1"), None);
        let me = std::process::id() as i32;
        let via_procfs = procfs::process::Process::new(me)
            .unwrap()
            .stat()
            .unwrap()
            .starttime;
        assert_eq!(start_time(me), Some(via_procfs));
    }

    #[test]
    fn reads_own_process() {
        let me = process(std::process::id() as i32).expect("own process");
        assert_eq!(me.pid, std::process::id() as i32);
        assert!(!me.nspid.is_empty());
        assert_eq!(*me.nspid.first().unwrap(), me.pid);
        assert!(is_same_process(me.pid, me.start_time));
        assert!(!is_same_process(me.pid, me.start_time + 1));
    }

    #[test]
    fn table_contains_self_and_parent_chain() {
        let t = table().unwrap();
        let me = std::process::id() as i32;
        assert!(t.iter().any(|p| p.pid == me));
        let chain = ancestors(&t, me);
        assert_eq!(chain[0].pid, me);
    }
}
