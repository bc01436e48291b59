//! One concept (memory limit, OOM kills, CPU quota, ...) → the file each cgroup version
//! keeps it in, in ONE table, and the pure parsers that turn those files into typed values.
//!
//! v1 and v2 spell the same idea differently ("max" vs 9223372036854771712, µs vs ns,
//! cpu.shares vs cpu.weight); the normalisation happens here and nowhere else: the table
//! here, the typed values in [`values`], the parsers and their inverse in [`parse`].

mod parse;
mod values;

pub use parse::*;
pub use values::*;

use serde::Serialize;

/// The cgroup version a particular cgroup directory belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CgVersion {
    V1,
    V2,
}

impl CgVersion {
    pub fn label(self) -> &'static str {
        match self {
            CgVersion::V1 => "v1",
            CgVersion::V2 => "v2",
        }
    }
}

/// Something a lesson or check wants to know or set about a cgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Concept {
    MemoryLimit,
    MemoryUsage,
    MemoryPeak,
    /// How often usage hit the limit (v1 failcnt, v2 memory.events `max`).
    MemoryFailcnt,
    OomKills,
    CpuQuota,
    CpuStat,
    CpuWeight,
    CpuUsage,
    PidsLimit,
    PidsCurrent,
    Procs,
}

/// One file (or one key of a flat-keyed file) a concept is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct FileRef {
    /// The controller whose hierarchy holds the file (v1); on v2 every file is in the
    /// one cgroup directory, but the controller must be enabled there.
    pub controller: &'static str,
    pub file: &'static str,
    /// For `key value` files (memory.events, cpu.stat, memory.oom_control).
    pub key: Option<&'static str>,
}

impl FileRef {
    /// `memory.events oom_kill`, `memory.limit_in_bytes`.
    pub fn display(&self) -> String {
        match self.key {
            Some(k) => format!("{} {k}", self.file),
            None => self.file.to_string(),
        }
    }
}

const fn f(controller: &'static str, file: &'static str) -> FileRef {
    FileRef {
        controller,
        file,
        key: None,
    }
}

const fn k(controller: &'static str, file: &'static str, key: &'static str) -> FileRef {
    FileRef {
        controller,
        file,
        key: Some(key),
    }
}

/// A concept and where each version keeps it.
pub struct Spec {
    pub concept: Concept,
    /// Human label for tables.
    pub label: &'static str,
    pub v1: &'static [FileRef],
    pub v2: &'static [FileRef],
    pub writable: bool,
}

/// THE table. Files are listed in the order parsers receive their contents.
pub static TABLE: &[Spec] = &[
    Spec {
        concept: Concept::MemoryLimit,
        label: "memory limit",
        v1: &[f("memory", "memory.limit_in_bytes")],
        v2: &[f("memory", "memory.max")],
        writable: true,
    },
    Spec {
        concept: Concept::MemoryUsage,
        label: "memory usage",
        v1: &[f("memory", "memory.usage_in_bytes")],
        v2: &[f("memory", "memory.current")],
        writable: false,
    },
    Spec {
        concept: Concept::MemoryPeak,
        label: "memory peak",
        v1: &[f("memory", "memory.max_usage_in_bytes")],
        v2: &[f("memory", "memory.peak")],
        writable: false,
    },
    Spec {
        concept: Concept::MemoryFailcnt,
        label: "times at the limit",
        v1: &[f("memory", "memory.failcnt")],
        v2: &[k("memory", "memory.events", "max")],
        writable: false,
    },
    Spec {
        concept: Concept::OomKills,
        label: "OOM kills",
        v1: &[k("memory", "memory.oom_control", "oom_kill")],
        v2: &[k("memory", "memory.events", "oom_kill")],
        writable: false,
    },
    Spec {
        concept: Concept::CpuQuota,
        label: "CPU quota",
        v1: &[f("cpu", "cpu.cfs_quota_us"), f("cpu", "cpu.cfs_period_us")],
        v2: &[f("cpu", "cpu.max")],
        writable: true,
    },
    Spec {
        concept: Concept::CpuStat,
        label: "CPU throttling",
        v1: &[f("cpu", "cpu.stat")],
        v2: &[f("cpu", "cpu.stat")],
        writable: false,
    },
    Spec {
        concept: Concept::CpuWeight,
        label: "CPU weight",
        v1: &[f("cpu", "cpu.shares")],
        v2: &[f("cpu", "cpu.weight")],
        writable: true,
    },
    Spec {
        concept: Concept::CpuUsage,
        label: "CPU time used",
        v1: &[f("cpuacct", "cpuacct.usage")],
        v2: &[k("cpu", "cpu.stat", "usage_usec")],
        writable: false,
    },
    Spec {
        concept: Concept::PidsLimit,
        label: "pids limit",
        v1: &[f("pids", "pids.max")],
        v2: &[f("pids", "pids.max")],
        writable: true,
    },
    Spec {
        concept: Concept::PidsCurrent,
        label: "pids now",
        v1: &[f("pids", "pids.current")],
        v2: &[f("pids", "pids.current")],
        writable: false,
    },
    Spec {
        concept: Concept::Procs,
        label: "processes",
        // Any hierarchy has cgroup.procs; nslab reads the memory one when it has several.
        v1: &[f("memory", "cgroup.procs")],
        v2: &[f("memory", "cgroup.procs")],
        writable: false,
    },
];

impl Concept {
    pub const ALL: [Concept; 12] = [
        Concept::MemoryLimit,
        Concept::MemoryUsage,
        Concept::MemoryPeak,
        Concept::MemoryFailcnt,
        Concept::OomKills,
        Concept::CpuQuota,
        Concept::CpuStat,
        Concept::CpuWeight,
        Concept::CpuUsage,
        Concept::PidsLimit,
        Concept::PidsCurrent,
        Concept::Procs,
    ];

    pub fn spec(self) -> &'static Spec {
        TABLE
            .iter()
            .find(|s| s.concept == self)
            .expect("every concept is in TABLE")
    }

    pub fn files(self, v: CgVersion) -> &'static [FileRef] {
        match v {
            CgVersion::V1 => self.spec().v1,
            CgVersion::V2 => self.spec().v2,
        }
    }

    /// The controller a concept needs (on v1, the hierarchy its first file is in).
    pub fn controller(self, v: CgVersion) -> &'static str {
        self.files(v)[0].controller
    }

    /// "memory.max (v2)", "cpu.cfs_quota_us + cpu.cfs_period_us (v1)".
    pub fn file_label(self, v: CgVersion) -> String {
        let names: Vec<String> = self.files(v).iter().map(FileRef::display).collect();
        format!("{} ({})", names.join(" + "), v.label())
    }

    pub fn label(self) -> &'static str {
        self.spec().label
    }
}

#[cfg(test)]
mod tests;
