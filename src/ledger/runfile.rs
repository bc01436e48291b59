//! A run file as written and read: the entries this nslab knows, and the others (a newer
//! nslab's, or damaged) kept as they are.

use super::Resource;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(from = "RunFileOnDisk")]
pub(super) struct RunFile {
    pub(super) owner_pid: i32,
    pub(super) owner_start_time: u64,
    pub(super) resources: Vec<Resource>,
    /// Entries this nslab cannot act on safely (a kind or a field it does not know, as a
    /// newer nslab may write, or a damaged entry): kept as they are, never acted on.
    pub(super) unknown: Vec<serde_json::Value>,
    /// The kernel identity of each object once it was made (see [`Identity`]).
    pub(super) identities: Vec<Identity>,
    /// Which of the live runs of one lesson this run is (`lesson-2` → 2 for a second run
    /// beside the first): its objects' names carry that number.
    pub(super) instances: std::collections::BTreeMap<String, u32>,
    /// Other fields of the file (a newer nslab's), kept as they are.
    pub(super) extra: serde_json::Map<String, serde_json::Value>,
}

/// Which object a record stands for, read from the kernel just after it was made: a
/// cgroup's or directory's inode, a network namespace's nsfs inode, a link's ifindex, an
/// nftables table's handle, a mount's id.
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
    #[serde(default)]
    instances: std::collections::BTreeMap<String, u32>,
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
            instances: disk.instances,
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
        if !self.instances.is_empty() {
            m.serialize_entry("instances", &self.instances)?;
        }
        for (k, v) in &self.extra {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl RunFile {
    pub(super) fn identity_of(&self, resource: &Resource) -> Option<u64> {
        self.identities
            .iter()
            .find(|i| &i.of == resource)
            .map(|i| i.id)
    }
}

/// Parse a run file, once more after a moment if it does not parse: its owner may have
/// been rewriting it at that instant.
pub(super) fn read_run_file(path: &std::path::Path) -> Option<RunFile> {
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
