//! The ledger: every object nslab creates is written here *before* it is created and
//! struck off after it is removed, so that a crash, Ctrl-C or `kill -9` leaves a record
//! that `nslab cleanup` can act on. nslab removes only what its ledger names.
//!
//! One file per run: `/run/nslab/runs/<pid>-<starttime>.json` (tmpfs: gone at reboot,
//! like everything it lists).

use crate::kernel;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Mutex;

/// Something nslab created on the live system.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Resource {
    /// A child process nslab started (PID plus start time, so a reused PID is never killed).
    Process { pid: i32, start_time: u64 },
    /// A cgroup directory nslab made (absolute path under /sys/fs/cgroup).
    Cgroup { path: PathBuf },
    /// A mount nslab made in the host's mount namespace.
    Mount { path: PathBuf },
    /// A named network namespace (/run/netns/NAME).
    NetNs { name: String },
    /// A network link in the host namespace (a veth end, a bridge).
    Link { name: String },
    /// A directory or file tree nslab made (a root filesystem in a temporary place).
    Dir { path: PathBuf },
}

impl Resource {
    pub fn describe(&self) -> String {
        match self {
            Resource::Process { pid, .. } => format!("process {pid}"),
            Resource::Cgroup { path } => format!("cgroup {}", path.display()),
            Resource::Mount { path } => format!("mount {}", path.display()),
            Resource::NetNs { name } => format!("network namespace {name}"),
            Resource::Link { name } => format!("link {name}"),
            Resource::Dir { path } => format!("directory {}", path.display()),
        }
    }

    /// Remove it from the system. Already gone counts as removed.
    pub fn remove(&self) -> Result<()> {
        match self {
            Resource::Process { pid, start_time } => kernel::sys::kill_and_reap(*pid, *start_time),
            Resource::Cgroup { path } => kernel::cgroup::remove_cgroup(path),
            Resource::Mount { path } => kernel::sys::unmount(path),
            Resource::NetNs { name } => kernel::net::delete_netns(name),
            Resource::Link { name } => kernel::net::delete_link(name),
            Resource::Dir { path } => kernel::sys::remove_tree(path),
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct RunFile {
    owner_pid: i32,
    owner_start_time: u64,
    resources: Vec<Resource>,
}

/// Where the run files live; `NSLAB_RUN_DIR` moves it (tests run as a normal user).
pub fn run_dir() -> PathBuf {
    std::env::var_os("NSLAB_RUN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/nslab/runs"))
}

struct Ledger {
    file: PathBuf,
    run: RunFile,
}

static LEDGER: Mutex<Option<Ledger>> = Mutex::new(None);

fn with_ledger<T>(f: impl FnOnce(&mut Ledger) -> Result<T>) -> Result<T> {
    let mut guard = LEDGER.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        let pid = std::process::id() as i32;
        let start = kernel::procs::start_time(pid).unwrap_or(0);
        *guard = Some(Ledger {
            file: run_dir().join(format!("{pid}-{start}.json")),
            run: RunFile {
                owner_pid: pid,
                owner_start_time: start,
                resources: Vec::new(),
            },
        });
    }
    f(guard.as_mut().expect("ledger initialised above"))
}

fn save(ledger: &Ledger) -> Result<()> {
    if ledger.run.resources.is_empty() {
        match std::fs::remove_file(&ledger.file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", ledger.file.display())),
        }
        return Ok(());
    }
    let dir = ledger.file.parent().expect("run file has a directory");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let text = serde_json::to_string_pretty(&ledger.run)?;
    crate::fsutil::write_atomic(&ledger.file, text.as_bytes())
}

/// Write `resource` into this run's ledger. Call it *before* creating the object.
pub fn record(resource: Resource) -> Result<()> {
    with_ledger(|l| {
        if !l.run.resources.contains(&resource) {
            l.run.resources.push(resource);
        }
        save(l)
    })
    .context("recording what nslab is about to create in its ledger (is /run writable?)")
}

/// Strike `resource` off after it has been removed (or once a process has been reaped).
pub fn forget(resource: &Resource) {
    let _ = with_ledger(|l| {
        l.run.resources.retain(|r| r != resource);
        save(l)
    });
}

/// Remove `resource` now and strike it off.
#[allow(dead_code)] // for lessons that remove objects mid-lesson
pub fn release(resource: &Resource) -> Result<()> {
    resource.remove()?;
    forget(resource);
    Ok(())
}

/// Remove everything this run created, newest first. Returns what could not be removed.
pub fn teardown() -> Vec<(Resource, String)> {
    let pending: Vec<Resource> = with_ledger(|l| Ok(l.run.resources.clone())).unwrap_or_default();
    let mut failed = Vec::new();
    for r in pending.iter().rev() {
        match r.remove() {
            Ok(()) => forget(r),
            Err(e) => failed.push((r.clone(), format!("{e:#}"))),
        }
    }
    failed
}

/// What this run has on record.
pub fn current() -> Vec<Resource> {
    with_ledger(|l| Ok(l.run.resources.clone())).unwrap_or_default()
}

/// What one cleanup found and did.
#[derive(Debug, Default, Serialize)]
pub struct CleanupReport {
    pub removed: Vec<String>,
    pub failed: Vec<String>,
    /// Runs that are still alive: left alone.
    pub live_runs: Vec<i32>,
    /// Run files that could not be read; kept aside as `.damaged`.
    pub damaged: Vec<String>,
}

/// Remove everything recorded by runs that are no longer alive (killed, crashed).
pub fn cleanup_dead_runs() -> Result<CleanupReport> {
    let mut report = CleanupReport::default();
    let dir = run_dir();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let me = std::process::id() as i32;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let run: RunFile = match serde_json::from_str(&text) {
            Ok(r) => r,
            Err(_) => {
                let aside = path.with_extension("json.damaged");
                let _ = std::fs::rename(&path, &aside);
                report.damaged.push(aside.display().to_string());
                continue;
            }
        };
        if run.owner_pid != me
            && kernel::procs::is_same_process(run.owner_pid, run.owner_start_time)
        {
            report.live_runs.push(run.owner_pid);
            continue;
        }
        let mut left = Vec::new();
        for r in run.resources.iter().rev() {
            match r.remove() {
                Ok(()) => report.removed.push(r.describe()),
                Err(e) => {
                    report.failed.push(format!("{}: {e:#}", r.describe()));
                    left.insert(0, r.clone());
                }
            }
        }
        if left.is_empty() {
            let _ = std::fs::remove_file(&path);
        } else {
            let run = RunFile {
                resources: left,
                ..run
            };
            crate::fsutil::write_atomic(&path, serde_json::to_string_pretty(&run)?.as_bytes())?;
        }
    }
    Ok(report)
}

/// Everything any nslab run (alive or dead) has on record: checks use it to tell nslab's
/// own objects from the learner's.
pub fn all_recorded() -> Vec<Resource> {
    let mut all = Vec::new();
    if let Ok(entries) = std::fs::read_dir(run_dir()) {
        for entry in entries.flatten() {
            if let Ok(text) = std::fs::read_to_string(entry.path()) {
                if let Ok(run) = serde_json::from_str::<RunFile>(&text) {
                    all.extend(run.resources);
                }
            }
        }
    }
    all
}

/// Is `path` (or a parent of it) something an nslab run recorded?
pub fn is_recorded(path: &std::path::Path) -> bool {
    all_recorded().iter().any(|r| match r {
        Resource::Cgroup { path: p } | Resource::Mount { path: p } | Resource::Dir { path: p } => {
            path.starts_with(p)
        }
        _ => false,
    })
}
