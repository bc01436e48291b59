//! This run's own ledger: recording before creating, striking off after removing.

use super::runfile::{run_dir, Identity, RunFile};
use super::Resource;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::sync::Mutex;

pub(super) struct Ledger {
    pub(super) file: PathBuf,
    pub(super) run: RunFile,
    /// The run file, open for rewriting in place (see [`save`]).
    pub(super) handle: Option<std::fs::File>,
    /// Bytes last written through `handle`.
    pub(super) written: usize,
}

/// Run files up to this size are rewritten in place: one `pwrite` at offset 0 within a
/// single page, which a `kill -9` cannot tear.
const IN_PLACE_MAX: usize = 4096;

static LEDGER: Mutex<Option<Ledger>> = Mutex::new(None);

/// This process's start time (from the kernel, given at start-up): with the PID, it names
/// the run file and tells a live owner from a dead one whose PID was reused.
static OWNER_START_TIME: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

/// Given once, before anything is recorded.
pub fn set_owner_start_time(start_time: u64) {
    let _ = OWNER_START_TIME.set(start_time);
}

/// A run file whose owner's start time is unknown (0) is alive while its PID is.
pub const UNKNOWN_START_TIME: u64 = 0;

pub(super) fn with_ledger<T>(f: impl FnOnce(&mut Ledger) -> Result<T>) -> Result<T> {
    let mut guard = LEDGER.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        let pid = std::process::id() as i32;
        let start = OWNER_START_TIME
            .get()
            .copied()
            .unwrap_or(UNKNOWN_START_TIME);
        *guard = Some(Ledger {
            file: run_dir().join(format!("{pid}-{start}.json")),
            run: RunFile {
                owner_pid: pid,
                owner_start_time: start,
                ..RunFile::default()
            },
            handle: None,
            written: 0,
        });
    }
    f(guard.as_mut().expect("ledger initialised above"))
}

/// Write the run file. A small one is rewritten in place, padded with spaces (which JSON
/// readers skip) when it shrinks: no new file and no rename per entry, because on a disk
/// filesystem (here /run is ext4) each rename costs a journal update, milliseconds per
/// object created. Readers of a file being rewritten retry (see [`read_run_file`]).
pub(super) fn save(ledger: &mut Ledger) -> Result<()> {
    if ledger.run.resources.is_empty() && ledger.run.instances.is_empty() {
        ledger.handle = None;
        ledger.written = 0;
        match std::fs::remove_file(&ledger.file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", ledger.file.display())),
        }
        return Ok(());
    }
    let dir = ledger.file.parent().expect("run file has a directory");
    let mut text = serde_json::to_string_pretty(&ledger.run)?;
    if text.len() > IN_PLACE_MAX {
        ledger.handle = None;
        ledger.written = 0;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        return crate::fsutil::write_replace(&ledger.file, text.as_bytes());
    }
    if ledger.handle.is_none() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&ledger.file)
            .with_context(|| format!("creating {}", ledger.file.display()))?;
        ledger.handle = Some(f);
        ledger.written = 0;
    }
    while text.len() < ledger.written {
        text.push(' ');
    }
    let f = ledger.handle.as_ref().expect("opened above");
    std::os::unix::fs::FileExt::write_all_at(f, text.as_bytes(), 0)
        .with_context(|| format!("writing {}", ledger.file.display()))?;
    ledger.written = text.len();
    Ok(())
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

/// Add the kernel identity of a recorded object, just after it was made.
pub fn identify(resource: &Resource, id: u64) {
    let _ = with_ledger(|l| {
        if !l.run.resources.contains(resource) {
            return Ok(());
        }
        l.run.identities.retain(|i| &i.of != resource);
        l.run.identities.push(Identity {
            of: resource.clone(),
            id,
        });
        save(l)
    });
}

/// Strike `resource` off after it has been removed (or once a process has been reaped).
pub fn forget(resource: &Resource) {
    forget_all(std::slice::from_ref(resource));
}

/// Strike several resources off at once (one rewrite of the run file).
pub fn forget_all(resources: &[Resource]) {
    if resources.is_empty() {
        return;
    }
    let _ = with_ledger(|l| {
        l.run.resources.retain(|r| !resources.contains(r));
        l.run.identities.retain(|i| !resources.contains(&i.of));
        save(l)
    });
}

/// What this run has on record.
pub fn current() -> Vec<Resource> {
    with_ledger(|l| Ok(l.run.resources.clone())).unwrap_or_default()
}

/// The identity this run recorded for `resource`, if any.
pub fn identity_of(resource: &Resource) -> Option<u64> {
    with_ledger(|l| Ok(l.run.identity_of(resource))).unwrap_or(None)
}
