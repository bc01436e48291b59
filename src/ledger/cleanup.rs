//! The runs that died: what they recorded removed, what is not theirs left alone.

use super::runfile::{read_run_file, run_dir, RunFile};
use super::Resource;
use anyhow::{Context, Result};
use serde::Serialize;

/// What removing one recorded object came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Removal {
    /// Removed, or already gone.
    Removed,
    /// Something bears its name but is another object (its identity differs): left alone.
    NotOurs(String),
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
    /// Entries of kinds this nslab does not know (written by a newer one): left alone.
    pub unknown: Vec<String>,
    /// Recorded names that now stand for another object, or that a live run lists: left
    /// alone and struck off.
    pub not_ours: Vec<String>,
}

/// How cleanup reaches the system: supplied by the kernel layer, so the ledger itself
/// reads and removes nothing but its own files.
pub struct Reach<'a> {
    /// Is the process with this PID and start time alive?
    pub alive: &'a dyn Fn(i32, u64) -> bool,
    /// Remove one object, given the identity recorded for it.
    pub remove: &'a dyn Fn(&Resource, Option<u64>) -> Result<Removal>,
}

/// Remove everything recorded by runs in `dir` that are no longer alive (killed,
/// crashed), except what a live run also lists.
pub fn cleanup_dead_runs_in(dir: &std::path::Path, reach: &Reach) -> Result<CleanupReport> {
    let mut report = CleanupReport::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let me = std::process::id() as i32;
    let mut dead = Vec::new();
    let mut live_lists = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let run: RunFile = match read_run_file(&path) {
            Some(r) => r,
            None => {
                let aside = path.with_extension("json.damaged");
                let _ = std::fs::rename(&path, &aside);
                report.damaged.push(aside.display().to_string());
                continue;
            }
        };
        if run.owner_pid != me && (reach.alive)(run.owner_pid, run.owner_start_time) {
            report.live_runs.push(run.owner_pid);
            live_lists.extend(run.resources);
            continue;
        }
        dead.push((path, run));
    }
    for (path, run) in dead {
        let mut left = Vec::new();
        for r in run.resources.iter().rev() {
            if live_lists.contains(r) {
                report.not_ours.push(format!(
                    "{}: a running nslab lists it as its own",
                    r.describe()
                ));
                continue;
            }
            match (reach.remove)(r, run.identity_of(r)) {
                Ok(Removal::Removed) => report.removed.push(r.describe()),
                Ok(Removal::NotOurs(why)) => {
                    report.not_ours.push(format!("{}: {why}", r.describe()))
                }
                Err(e) => {
                    report.failed.push(format!("{}: {e:#}", r.describe()));
                    left.insert(0, r.clone());
                }
            }
        }
        for entry in &run.unknown {
            report
                .unknown
                .push(format!("{} in {}", describe_unknown(entry), path.display()));
        }
        if left.is_empty() && run.unknown.is_empty() {
            let _ = std::fs::remove_file(&path);
        } else {
            let identities = run
                .identities
                .iter()
                .filter(|i| left.contains(&i.of))
                .cloned()
                .collect();
            let run = RunFile {
                resources: left,
                identities,
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

/// How cleanup names an entry it leaves alone, and why.
pub(super) fn describe_unknown(entry: &serde_json::Value) -> String {
    match entry.get("kind").and_then(|k| k.as_str()) {
        Some(kind) if Resource::KINDS.contains(&kind) => format!(
            "a {kind} entry with fields this nslab does not know or lacking some (a newer nslab wrote it, or it is damaged)"
        ),
        Some(kind) => {
            format!("an entry of kind {kind:?}, which this nslab does not know (a newer nslab wrote it; its `nslab cleanup` removes it)")
        }
        None => "an entry without a kind (damaged)".into(),
    }
}
