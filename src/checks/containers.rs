//! Finding a container the learner built by hand: PID 1 of a PID namespace other than
//! nslab's, started by `unshare` (not by a container runtime, not by nslab). Checks that
//! judge such a container (lesson 5's, lesson 9's) search with this. The search is pure
//! over what [`observe`] read.

use super::whose::{self, Recorded, Whose};
use crate::kernel::container;
use crate::kernel::ns::{self, NsKind};
use crate::kernel::procs::{self, ProcInfo};
use crate::lesson::CheckArgs;
use anyhow::{Context, Result};

/// A root directory's identity: (device, inode) of /proc/PID/root.
pub type RootId = (u64, u64);

/// What the search for the learner's container reads: the process table, what nslab
/// recorded, and the root of each process that could be a container's PID 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Search {
    /// nslab's own PID namespace: the host's, as far as the learner's work goes.
    pub host_pid_ns: u64,
    pub table: Vec<ProcInfo>,
    pub recorded: Recorded,
    /// `--pid`.
    pub asked: Option<i32>,
    /// nslab's own root; `None`: unreadable.
    pub own_root: Option<RootId>,
    /// The root of each PID 1 of another PID namespace (`None`: unreadable).
    pub roots: Vec<(i32, Option<RootId>)>,
}

impl Search {
    pub fn by_pid(&self, pid: i32) -> Option<&ProcInfo> {
        self.table.iter().find(|p| p.pid == pid)
    }

    /// The root recorded for `pid` (a PID 1 of another PID namespace).
    pub fn root_of(&self, pid: i32) -> Option<RootId> {
        self.roots
            .iter()
            .find(|(p, _)| *p == pid)
            .and_then(|(_, r)| *r)
    }
}

/// Read the process table and the roots the search needs. `--pid` naming no process is a
/// usage error.
pub fn observe(args: &CheckArgs) -> Result<Search> {
    let me = std::process::id() as i32;
    let host_pid_ns = ns::link(me, NsKind::Pid)
        .inode
        .context("reading nslab's own /proc/self/ns/pid")?;
    let table = procs::table().context("reading the process table")?;
    crate::checks::require_listed(
        &table,
        args.pid,
        "give the host PID of the container's shell (ps -ef --forest | grep -A2 unshare)",
    )?;
    let roots = table
        .iter()
        .filter(|p| p.pid_ns.is_some_and(|n| n != host_pid_ns) && p.innermost_pid() == 1)
        .map(|p| (p.pid, container::root_identity(p.pid).ok()))
        .collect();
    Ok(Search {
        host_pid_ns,
        table,
        recorded: Recorded::read(),
        asked: args.pid,
        own_root: container::root_identity(me).ok(),
        roots,
    })
}

/// Why there is no container to judge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Missing {
    /// `--pid` named a process that has exited since.
    Exited(i32),
    /// `--pid` named a process of the host's PID namespace.
    InHost { pid: i32, comm: String },
    /// None is running; how the search went.
    NoneRunning(Vec<String>),
}

/// What the search found.
pub enum Found<'a> {
    /// PID 1 of the container, the process that started it, how it was chosen.
    Init {
        init: &'a ProcInfo,
        creator: Option<&'a ProcInfo>,
        notes: Vec<String>,
    },
    Nothing(Missing),
}

/// Find the container the learner made with `unshare` (or the one `--pid` names). Pure.
pub fn find(s: &Search) -> Found<'_> {
    if let Some(pid) = s.asked {
        let Some(p) = s.by_pid(pid) else {
            return Found::Nothing(Missing::Exited(pid));
        };
        let Some(pid_ns) = p.pid_ns.filter(|&n| n != s.host_pid_ns) else {
            return Found::Nothing(Missing::InHost {
                pid,
                comm: p.comm.clone(),
            });
        };
        let init = s
            .table
            .iter()
            .find(|q| q.pid_ns == Some(pid_ns) && q.innermost_pid() == 1)
            .unwrap_or(p);
        return Found::Init {
            init,
            creator: s.by_pid(init.ppid),
            notes: vec![format!(
                "judging the container of PID {pid}, as asked with --pid"
            )],
        };
    }

    // Candidates: PID 1 of a PID namespace other than the host's, started by `unshare`;
    // none of nslab's own (a lesson running in another terminal).
    let inits: Vec<&ProcInfo> = s
        .table
        .iter()
        .filter(|p| {
            !p.is_zombie()
                && p.pid_ns.is_some()
                && p.pid_ns != Some(s.host_pid_ns)
                && p.innermost_pid() == 1
        })
        .filter(|p| whose::process(&s.table, p.pid, &s.recorded) != Whose::Nslab)
        .collect();
    let learner: Vec<&ProcInfo> = inits
        .iter()
        .copied()
        .filter(|p| s.by_pid(p.ppid).is_some_and(|c| c.comm == "unshare"))
        .collect();
    let mut notes = vec![
        "nslab judges a container whose PID 1 was started by `unshare` (containers of Docker, Podman and \
         services are left alone); --pid HOSTPID picks one"
            .to_string(),
    ];
    if inits.len() > learner.len() {
        notes.push(format!(
            "ignored {} other PID namespace(s) not made by unshare",
            inits.len() - learner.len()
        ));
    }
    // Prefer one that has its own root (the exercise's), then the newest.
    let best = learner
        .iter()
        .max_by_key(|p| (s.root_of(p.pid) != s.own_root, p.start_time))
        .copied();
    let Some(init) = best else {
        return Found::Nothing(Missing::NoneRunning(notes));
    };
    if learner.len() > 1 {
        notes.push(format!("{} containers made by unshare are running; judging one with its own root, newest first", learner.len()));
    }
    Found::Init {
        init,
        creator: s.by_pid(init.ppid),
        notes,
    }
}
