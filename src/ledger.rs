//! The ledger: every object nslab creates is written here *before* it is created and
//! struck off after it is removed, so that a crash, Ctrl-C or `kill -9` leaves a record
//! that `nslab cleanup` can act on. nslab removes only what its ledger names.
//!
//! One file per run: `/run/nslab/runs/<pid>-<starttime>.json` (tmpfs: gone at reboot,
//! like everything it lists). Beside each object, once it exists, its kernel identity
//! (an inode, an ifindex): a record then proves which object nslab made, not merely its
//! name. The ledger only keeps records; `kernel::removal` acts on them.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Mutex;

/// Something nslab created on the live system.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
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
    /// An nftables table nslab made (`table ip nslab-<id>`, the NAT of `nslab run --net`).
    NftTable { family: String, name: String },
    /// A System V shared memory segment made in the IPC namespace `ipc_ns` (its inode) by
    /// process `creator`; its shmid is the identity written beside it.
    SysvShm { key: i32, ipc_ns: u64, creator: i32 },
    /// A System V message queue made in the IPC namespace `ipc_ns`; its msqid is the
    /// identity written beside it.
    SysvMsg { key: i32, ipc_ns: u64 },
}

impl Resource {
    /// The `kind` of each variant in a run file (kept whole by a test).
    pub const KINDS: [&'static str; 9] = [
        "process",
        "cgroup",
        "mount",
        "net_ns",
        "link",
        "dir",
        "nft_table",
        "sysv_shm",
        "sysv_msg",
    ];

    pub fn describe(&self) -> String {
        match self {
            Resource::Process { pid, .. } => format!("process {pid}"),
            Resource::Cgroup { path } => format!("cgroup {}", path.display()),
            Resource::Mount { path } => format!("mount {}", path.display()),
            Resource::NetNs { name } => format!("network namespace {name}"),
            Resource::Link { name } => format!("link {name}"),
            Resource::Dir { path } => format!("directory {}", path.display()),
            Resource::NftTable { family, name } => format!("nftables table {family} {name}"),
            Resource::SysvShm { key, .. } => {
                format!("shared memory segment key {:#010x}", *key as u32)
            }
            Resource::SysvMsg { key, .. } => format!("message queue key {:#010x}", *key as u32),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(from = "RunFileOnDisk")]
struct RunFile {
    owner_pid: i32,
    owner_start_time: u64,
    resources: Vec<Resource>,
    /// Entries this nslab cannot act on safely (a kind or a field it does not know, as a
    /// newer nslab may write, or a damaged entry): kept as they are, never acted on.
    unknown: Vec<serde_json::Value>,
    /// The kernel identity of each object once it was made (see [`Identity`]).
    identities: Vec<Identity>,
    /// Other fields of the file (a newer nslab's), kept as they are.
    extra: serde_json::Map<String, serde_json::Value>,
}

/// Which object a record stands for, read from the kernel just after it was made: a
/// cgroup's or directory's inode, a network namespace's nsfs inode, a link's ifindex.
/// Something that has the name now but another identity is someone else's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub of: Resource,
    pub id: u64,
}

/// A run file as written: one list, whatever the entries in it.
#[derive(Deserialize)]
struct RunFileOnDisk {
    owner_pid: i32,
    owner_start_time: u64,
    resources: Vec<serde_json::Value>,
    #[serde(default)]
    identities: Vec<serde_json::Value>,
    #[serde(flatten)]
    extra: serde_json::Map<String, serde_json::Value>,
}

impl From<RunFileOnDisk> for RunFile {
    fn from(disk: RunFileOnDisk) -> RunFile {
        let (mut resources, mut unknown) = (Vec::new(), Vec::new());
        for entry in disk.resources {
            match serde_json::from_value::<Resource>(entry.clone()) {
                Ok(r) => resources.push(r),
                Err(_) => unknown.push(entry),
            }
        }
        // An identity this nslab cannot read is dropped: the record is then judged by
        // name, as before identities were kept.
        let identities = disk
            .identities
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect();
        RunFile {
            owner_pid: disk.owner_pid,
            owner_start_time: disk.owner_start_time,
            resources,
            unknown,
            identities,
            extra: disk.extra,
        }
    }
}

/// Written as read: the entries nslab knows, then the others, then the other fields. An
/// entry that cannot be written (a path that is not UTF-8) is an error, never dropped.
impl Serialize for RunFile {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        struct Entries<'a>(&'a [Resource], &'a [serde_json::Value]);
        impl Serialize for Entries<'_> {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                let mut seq = s.serialize_seq(Some(self.0.len() + self.1.len()))?;
                for r in self.0 {
                    seq.serialize_element(r)?;
                }
                for v in self.1 {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
        }
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("owner_pid", &self.owner_pid)?;
        m.serialize_entry("owner_start_time", &self.owner_start_time)?;
        m.serialize_entry("resources", &Entries(&self.resources, &self.unknown))?;
        if !self.identities.is_empty() {
            m.serialize_entry("identities", &self.identities)?;
        }
        for (k, v) in &self.extra {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// How cleanup names an entry it leaves alone, and why.
fn describe_unknown(entry: &serde_json::Value) -> String {
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

/// Where the run files live; `NSLAB_RUN_DIR` moves it (tests), except under sudo: root
/// removes what the run files list, so a learner must not be able to point it at files of
/// their own making.
pub fn run_dir() -> PathBuf {
    let under_sudo = nix::unistd::geteuid().is_root() && std::env::var_os("SUDO_UID").is_some();
    std::env::var_os("NSLAB_RUN_DIR")
        .filter(|_| !under_sudo)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/nslab/runs"))
}

struct Ledger {
    file: PathBuf,
    run: RunFile,
    /// The run file, open for rewriting in place (see [`save`]).
    handle: Option<std::fs::File>,
    /// Bytes last written through `handle`.
    written: usize,
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

fn with_ledger<T>(f: impl FnOnce(&mut Ledger) -> Result<T>) -> Result<T> {
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
fn save(ledger: &mut Ledger) -> Result<()> {
    if ledger.run.resources.is_empty() {
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

/// Parse a run file, once more after a moment if it does not parse: its owner may have
/// been rewriting it at that instant.
fn read_run_file(path: &std::path::Path) -> Option<RunFile> {
    for attempt in 0..2 {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Ok(run) = serde_json::from_str(&text) {
            return Some(run);
        }
    }
    None
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

impl RunFile {
    fn identity_of(&self, resource: &Resource) -> Option<u64> {
        self.identities
            .iter()
            .find(|i| &i.of == resource)
            .map(|i| i.id)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    /// One entry of each kind. A new variant breaks the match below: add an entry of it
    /// here and its kind to [`Resource::KINDS`].
    fn one_of_each() -> [Resource; 9] {
        let all = [
            Resource::Process {
                pid: 1,
                start_time: 2,
            },
            Resource::Cgroup { path: "/a".into() },
            Resource::Mount { path: "/a".into() },
            Resource::NetNs { name: "n".into() },
            Resource::Link { name: "l".into() },
            Resource::Dir { path: "/a".into() },
            Resource::NftTable {
                family: "ip".into(),
                name: "t".into(),
            },
            Resource::SysvShm {
                key: 1,
                ipc_ns: 2,
                creator: 3,
            },
            Resource::SysvMsg { key: 1, ipc_ns: 2 },
        ];
        for r in &all {
            match r {
                Resource::Process { .. }
                | Resource::Cgroup { .. }
                | Resource::Mount { .. }
                | Resource::NetNs { .. }
                | Resource::Link { .. }
                | Resource::Dir { .. }
                | Resource::NftTable { .. }
                | Resource::SysvShm { .. }
                | Resource::SysvMsg { .. } => {}
            }
        }
        all
    }

    #[test]
    fn every_kind_of_resource_is_known_to_cleanup() {
        let samples = one_of_each();
        let kinds: Vec<String> = samples
            .iter()
            .map(|r| {
                serde_json::to_value(r).unwrap()["kind"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(kinds, Resource::KINDS);
    }

    fn ledger_in(dir: &std::path::Path) -> Ledger {
        Ledger {
            file: dir.join("runs").join("1-2.json"),
            run: RunFile {
                owner_pid: 1,
                owner_start_time: 2,
                ..RunFile::default()
            },
            handle: None,
            written: 0,
        }
    }

    fn on_disk(l: &Ledger) -> RunFile {
        read_run_file(&l.file).expect("the run file parses")
    }

    #[test]
    fn run_file_is_rewritten_in_place_and_padded_when_it_shrinks() {
        let tmp = tempfile::tempdir().unwrap();
        let mut l = ledger_in(tmp.path());
        for i in 0..3 {
            l.run.resources.push(Resource::Dir {
                path: PathBuf::from(format!("/var/tmp/nslab-x{i}")),
            });
            save(&mut l).unwrap();
        }
        assert_eq!(on_disk(&l).resources.len(), 3);
        let full = std::fs::metadata(&l.file).unwrap().len();
        l.run.resources.truncate(1);
        save(&mut l).unwrap();
        assert_eq!(
            on_disk(&l).resources,
            l.run.resources,
            "trailing spaces are ignored"
        );
        assert_eq!(
            std::fs::metadata(&l.file).unwrap().len(),
            full,
            "rewritten in place, padded"
        );
        // Past one page it is replaced whole; back under, rewritten in place again.
        for i in 0..100 {
            l.run.resources.push(Resource::Cgroup {
                path: PathBuf::from(format!("/sys/fs/cgroup/pids/nslab/c{i}")),
            });
        }
        save(&mut l).unwrap();
        assert_eq!(on_disk(&l).resources.len(), 101);
        l.run.resources.truncate(2);
        save(&mut l).unwrap();
        assert_eq!(on_disk(&l).resources.len(), 2);
        l.run.resources.clear();
        save(&mut l).unwrap();
        assert!(!l.file.exists(), "an empty ledger leaves no file");
    }

    /// A run file as a newer nslab might write it: a kind this one does not know.
    fn run_file_with_unknown(dir: &std::path::Path, owned: &std::path::Path) -> PathBuf {
        let file = dir.join("runs").join("1-2.json");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let text = serde_json::json!({
            "owner_pid": i32::MAX - 1,
            "owner_start_time": 2,
            "resources": [
                {"kind": "dir", "path": owned},
                {"kind": "hologram", "name": "nslab-h1", "layers": 3},
            ]
        });
        std::fs::write(&file, text.to_string()).unwrap();
        file
    }

    #[test]
    fn unknown_kinds_are_kept_and_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let owned = tmp.path().join("nslab-rootfs-x");
        std::fs::create_dir_all(owned.join("bin")).unwrap();
        let file = run_file_with_unknown(tmp.path(), &owned);
        let run = read_run_file(&file).expect("a file with an unknown kind still parses");
        assert_eq!(
            run.resources,
            vec![Resource::Dir {
                path: owned.clone()
            }]
        );
        assert_eq!(run.unknown.len(), 1);

        // Its owner is gone: cleanup removes what it knows and keeps the rest on record.
        let report = cleanup_dead_runs_in(&tmp.path().join("runs"), &FAKE).unwrap();
        assert!(!owned.exists(), "{report:?}");
        assert!(report.damaged.is_empty(), "{report:?}");
        assert_eq!(report.unknown.len(), 1, "{report:?}");
        assert!(report.unknown[0].contains("\"hologram\""), "{report:?}");
        let left = read_run_file(&file).expect("the run file stays for the unknown entry");
        assert!(left.resources.is_empty());
        assert_eq!(left.unknown[0]["layers"], 3, "kept exactly as written");
    }

    #[test]
    fn every_kind_is_known_to_cleanup_and_fields_it_does_not_know_are_left_alone() {
        for r in one_of_each() {
            let mut v = serde_json::to_value(&r).unwrap();
            assert!(
                !describe_unknown(&v).contains("does not know (a newer"),
                "{v}"
            );
            v["color"] = "blue".into();
            let run: RunFile = serde_json::from_value(serde_json::json!({
                "owner_pid": 1, "owner_start_time": 2, "resources": [v], "written_by": "nslab 9"
            }))
            .unwrap();
            assert!(
                run.resources.is_empty(),
                "{r:?} with an extra field is not acted on"
            );
            let back = serde_json::to_value(&run).unwrap();
            assert_eq!(back["resources"][0]["color"], "blue", "kept as written");
            assert_eq!(back["written_by"], "nslab 9", "other fields kept");
        }
    }

    /// The system as the ledger's tests see it: owners with an odd PID are alive; a
    /// directory is removed, unless recorded with identity 666 (someone else's now).
    const FAKE: Reach = Reach {
        alive: &|pid, _| pid % 2 == 1,
        remove: &|r, id| match (r, id) {
            (_, Some(666)) => Ok(Removal::NotOurs("another object".into())),
            (Resource::Dir { path }, _) => {
                let _ = std::fs::remove_dir_all(path);
                Ok(Removal::Removed)
            }
            _ => anyhow::bail!("cannot remove {r:?} here"),
        },
    };

    fn write_run(dir: &std::path::Path, owner: i32, run: serde_json::Value) -> PathBuf {
        let file = dir.join(format!("{owner}-2.json"));
        std::fs::create_dir_all(dir).unwrap();
        let mut run = run;
        run["owner_pid"] = owner.into();
        run["owner_start_time"] = 2.into();
        std::fs::write(&file, run.to_string()).unwrap();
        file
    }

    #[test]
    fn what_a_live_run_lists_is_never_removed_for_a_dead_one() {
        let tmp = tempfile::tempdir().unwrap();
        let runs = tmp.path().join("runs");
        let shared = tmp.path().join("nslab-rootfs-shared");
        let only_dead = tmp.path().join("nslab-rootfs-dead");
        for d in [&shared, &only_dead] {
            std::fs::create_dir_all(d).unwrap();
        }
        let dir = |p: &PathBuf| serde_json::json!({"kind": "dir", "path": p});
        write_run(&runs, 3, serde_json::json!({"resources": [dir(&shared)]}));
        let dead = write_run(
            &runs,
            4,
            serde_json::json!({"resources": [dir(&shared), dir(&only_dead)]}),
        );
        let report = cleanup_dead_runs_in(&runs, &FAKE).unwrap();
        assert!(shared.exists(), "the live run's: {report:?}");
        assert!(!only_dead.exists(), "{report:?}");
        assert_eq!(report.live_runs, vec![3]);
        assert_eq!(report.not_ours.len(), 1, "{report:?}");
        assert!(!dead.exists(), "the dead run's record is done with");
    }

    #[test]
    fn a_recorded_identity_decides_and_another_object_is_struck_off() {
        let tmp = tempfile::tempdir().unwrap();
        let runs = tmp.path().join("runs");
        let theirs = tmp.path().join("nslab-rootfs-remade");
        std::fs::create_dir_all(&theirs).unwrap();
        let r = serde_json::json!({"kind": "dir", "path": theirs});
        let file = write_run(
            &runs,
            4,
            serde_json::json!({"resources": [r], "identities": [{"of": r, "id": 666}]}),
        );
        let run = read_run_file(&file).unwrap();
        assert_eq!(run.identity_of(&run.resources[0]), Some(666));
        let report = cleanup_dead_runs_in(&runs, &FAKE).unwrap();
        assert!(theirs.exists(), "{report:?}");
        assert!(
            report.removed.is_empty() && report.failed.is_empty(),
            "{report:?}"
        );
        assert!(report.not_ours[0].contains("another object"), "{report:?}");
        assert!(
            !file.exists(),
            "struck off: nothing of nslab's is left to retry"
        );
    }

    #[test]
    fn identities_are_written_beside_the_resources_and_forgotten_with_them() {
        let tmp = tempfile::tempdir().unwrap();
        let mut l = ledger_in(tmp.path());
        let r = Resource::Cgroup {
            path: "/sys/fs/cgroup/nslab/x".into(),
        };
        l.run.resources.push(r.clone());
        l.run.identities.push(Identity {
            of: r.clone(),
            id: 42,
        });
        save(&mut l).unwrap();
        let back = on_disk(&l);
        assert_eq!(back.identity_of(&r), Some(42));
        assert_eq!(back.resources, vec![r]);
    }
}
