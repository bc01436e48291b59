//! One concept (memory limit, OOM kills, CPU quota, ...) → the file each cgroup version
//! keeps it in, in ONE table, and the pure parsers that turn those files into typed values.
//!
//! v1 and v2 spell the same idea differently ("max" vs 9223372036854771712, µs vs ns,
//! cpu.shares vs cpu.weight); the normalisation happens here and nowhere else.

use anyhow::{bail, Context, Result};
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

/// A number or "no limit".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Max {
    Unlimited,
    Value(u64),
}

impl Max {
    pub fn value(self) -> Option<u64> {
        match self {
            Max::Unlimited => None,
            Max::Value(v) => Some(v),
        }
    }
}

/// The unit a raw kernel time value is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeUnit {
    Ns,
    Us,
}

impl TimeUnit {
    pub fn to_us(self, raw: u64) -> u64 {
        match self {
            TimeUnit::Ns => raw / 1000,
            TimeUnit::Us => raw,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            TimeUnit::Ns => "ns",
            TimeUnit::Us => "µs",
        }
    }
}

/// A time value exactly as the file had it, and in µs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Time {
    pub raw: u64,
    pub unit: TimeUnit,
    pub us: u64,
}

impl Time {
    pub fn new(raw: u64, unit: TimeUnit) -> Time {
        Time {
            raw,
            unit,
            us: unit.to_us(raw),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CpuQuota {
    /// µs of CPU per period; `None` = no quota.
    pub quota_us: Option<u64>,
    pub period_us: u64,
}

impl CpuQuota {
    /// Share of one CPU allowed, e.g. 0.1 for 10000/100000.
    pub fn cpus(&self) -> Option<f64> {
        self.quota_us
            .map(|q| q as f64 / self.period_us.max(1) as f64)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CpuStat {
    pub nr_periods: u64,
    pub nr_throttled: u64,
    pub throttled: Time,
}

/// How cpu.shares (v1, 2..262144, default 1024) and cpu.weight (v2, 1..10000, default 100)
/// relate; the same formula as the OCI runtimes (crun) use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CpuWeight {
    /// The number in the file.
    pub raw: u64,
    /// Which scale `raw` is on.
    pub version: CgVersion,
    /// On the v2 scale.
    pub weight: u64,
    /// On the v1 scale.
    pub shares: u64,
}

pub fn shares_to_weight(shares: u64) -> u64 {
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

pub fn weight_to_shares(weight: u64) -> u64 {
    let w = weight.clamp(1, 10_000);
    2 + ((w - 1) * 262_142) / 9999
}

impl CpuWeight {
    pub fn from_shares(shares: u64) -> CpuWeight {
        CpuWeight {
            raw: shares,
            version: CgVersion::V1,
            weight: shares_to_weight(shares),
            shares,
        }
    }
    pub fn from_weight(weight: u64) -> CpuWeight {
        CpuWeight {
            raw: weight,
            version: CgVersion::V2,
            weight,
            shares: weight_to_shares(weight),
        }
    }
}

/// A typed value of one concept.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Reading {
    /// A byte count (usage, peak).
    Bytes(u64),
    /// A limit in bytes or a count limit (pids), or none.
    Limit(Max),
    /// An event counter or a current count.
    Count(u64),
    CpuQuota(CpuQuota),
    CpuStat(CpuStat),
    CpuWeight(CpuWeight),
    CpuTime(Time),
    Pids(Vec<i32>),
}

/// The kernel's "no limit" for v1 byte limits: LONG_MAX rounded down to the page size.
pub const V1_UNLIMITED_MIN: u64 = 9_223_372_036_854_771_712;

fn parse_u64(s: &str, what: &str) -> Result<u64> {
    s.trim()
        .parse::<u64>()
        .with_context(|| format!("{what}: not a number: {:?}", s.trim()))
}

/// "max" (v2), "-1" (v1 write form) and v1's near-LONG_MAX all mean unlimited.
pub fn parse_max(s: &str, what: &str) -> Result<Max> {
    let t = s.trim();
    if t == "max" || t == "-1" {
        return Ok(Max::Unlimited);
    }
    let v = parse_u64(t, what)?;
    Ok(if v >= V1_UNLIMITED_MIN {
        Max::Unlimited
    } else {
        Max::Value(v)
    })
}

/// The value of `key` in a `key value` per line file.
pub fn flat_key(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next()? == key).then(|| it.next()?.parse().ok())?
    })
}

fn keyed(text: &str, file: &str, key: &str) -> Result<u64> {
    flat_key(text, key).with_context(|| format!("{file} has no `{key}` line"))
}

/// Parse the contents of a concept's files (in [`Concept::files`] order) into a reading.
pub fn parse(concept: Concept, v: CgVersion, contents: &[&str]) -> Result<Reading> {
    let files = concept.files(v);
    if contents.len() != files.len() {
        bail!(
            "{} needs {} file(s), got {}",
            concept.label(),
            files.len(),
            contents.len()
        );
    }
    let c0 = contents[0];
    let fr = &files[0];
    Ok(match (concept, v) {
        (Concept::MemoryLimit, _) | (Concept::PidsLimit, _) => {
            Reading::Limit(parse_max(c0, fr.file)?)
        }
        (Concept::MemoryUsage, _) | (Concept::MemoryPeak, _) => {
            Reading::Bytes(parse_u64(c0, fr.file)?)
        }
        (Concept::PidsCurrent, _) => Reading::Count(parse_u64(c0, fr.file)?),
        (Concept::MemoryFailcnt, CgVersion::V1) => Reading::Count(parse_u64(c0, fr.file)?),
        (Concept::MemoryFailcnt, CgVersion::V2) | (Concept::OomKills, _) => {
            Reading::Count(keyed(c0, fr.file, fr.key.unwrap_or_default())?)
        }
        (Concept::CpuQuota, CgVersion::V1) => {
            let period_us = parse_u64(contents[1], "cpu.cfs_period_us")?;
            let quota = c0
                .trim()
                .parse::<i64>()
                .with_context(|| format!("cpu.cfs_quota_us: {:?}", c0.trim()))?;
            Reading::CpuQuota(CpuQuota {
                quota_us: (quota >= 0).then_some(quota as u64),
                period_us,
            })
        }
        (Concept::CpuQuota, CgVersion::V2) => Reading::CpuQuota(parse_cpu_max(c0)?),
        (Concept::CpuStat, CgVersion::V1) => Reading::CpuStat(CpuStat {
            nr_periods: keyed(c0, "cpu.stat", "nr_periods")?,
            nr_throttled: keyed(c0, "cpu.stat", "nr_throttled")?,
            throttled: Time::new(keyed(c0, "cpu.stat", "throttled_time")?, TimeUnit::Ns),
        }),
        (Concept::CpuStat, CgVersion::V2) => Reading::CpuStat(CpuStat {
            // Without a quota ever set, v2 omits nr_periods etc.: they are zero then.
            nr_periods: flat_key(c0, "nr_periods").unwrap_or(0),
            nr_throttled: flat_key(c0, "nr_throttled").unwrap_or(0),
            throttled: Time::new(flat_key(c0, "throttled_usec").unwrap_or(0), TimeUnit::Us),
        }),
        (Concept::CpuWeight, CgVersion::V1) => {
            Reading::CpuWeight(CpuWeight::from_shares(parse_u64(c0, "cpu.shares")?))
        }
        (Concept::CpuWeight, CgVersion::V2) => {
            Reading::CpuWeight(CpuWeight::from_weight(parse_u64(c0, "cpu.weight")?))
        }
        (Concept::CpuUsage, CgVersion::V1) => {
            Reading::CpuTime(Time::new(parse_u64(c0, "cpuacct.usage")?, TimeUnit::Ns))
        }
        (Concept::CpuUsage, CgVersion::V2) => Reading::CpuTime(Time::new(
            keyed(c0, "cpu.stat", "usage_usec")?,
            TimeUnit::Us,
        )),
        (Concept::Procs, _) => Reading::Pids(parse_procs(c0)),
    })
}

/// v2 `cpu.max`: "max 100000" or "10000 100000" (period may be omitted on write, never on read).
pub fn parse_cpu_max(s: &str) -> Result<CpuQuota> {
    let mut it = s.split_whitespace();
    let q = it.next().context("cpu.max is empty")?;
    let period_us = match it.next() {
        Some(p) => parse_u64(p, "cpu.max period")?,
        None => 100_000,
    };
    let quota_us = if q == "max" {
        None
    } else {
        Some(parse_u64(q, "cpu.max quota")?)
    };
    Ok(CpuQuota {
        quota_us,
        period_us,
    })
}

/// `cgroup.procs`: one PID per line.
pub fn parse_procs(s: &str) -> Vec<i32> {
    s.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// What to write to set a concept: (file, text) pairs in the order to write them.
pub fn render_write(
    concept: Concept,
    v: CgVersion,
    value: &Reading,
) -> Result<Vec<(FileRef, String)>> {
    let files = concept.files(v);
    let max_text = |m: &Max, v1_unlimited: &str| match m {
        Max::Unlimited => match v {
            CgVersion::V1 => v1_unlimited.to_string(),
            CgVersion::V2 => "max".to_string(),
        },
        Max::Value(n) => n.to_string(),
    };
    Ok(match (concept, value) {
        (Concept::MemoryLimit, Reading::Limit(m)) => vec![(files[0], max_text(m, "-1"))],
        (Concept::PidsLimit, Reading::Limit(m)) => vec![(files[0], max_text(m, "max"))],
        (Concept::CpuQuota, Reading::CpuQuota(q)) => match v {
            // Period first: the kernel checks quota against the current period.
            CgVersion::V1 => vec![
                (files[1], q.period_us.to_string()),
                (
                    files[0],
                    q.quota_us
                        .map(|x| x.to_string())
                        .unwrap_or_else(|| "-1".into()),
                ),
            ],
            CgVersion::V2 => vec![(
                files[0],
                format!(
                    "{} {}",
                    q.quota_us
                        .map(|x| x.to_string())
                        .unwrap_or_else(|| "max".into()),
                    q.period_us
                ),
            )],
        },
        (Concept::CpuWeight, Reading::CpuWeight(w)) => match v {
            CgVersion::V1 => vec![(files[0], w.shares.to_string())],
            CgVersion::V2 => vec![(files[0], w.weight.to_string())],
        },
        _ => bail!("{} cannot be set to {value:?}", concept.label()),
    })
}

/// A memory size as a learner or a kernel file writes it: `31457280`, `30M`, `30m`,
/// `30MiB`, `30MB`, `30 MB`, `512K`, `1G`, `1.5G`.
///
/// Single letters (K, M, G, T) and the IEC forms (KiB, MiB...) are powers of 1024, as the
/// kernel reads `memory.max`; the SI forms (kB, MB, GB) are powers of 1000.
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim();
    if num.is_empty() {
        bail!("{t:?} is not a size: expected a number such as 30000000, 30M or 30MiB");
    }
    let mult: u64 = match unit {
        "" | "b" | "B" => 1,
        "k" | "K" | "KiB" | "kiB" => 1 << 10,
        "m" | "M" | "MiB" => 1 << 20,
        "g" | "G" | "GiB" => 1 << 30,
        "t" | "T" | "TiB" => 1 << 40,
        "kB" | "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        _ => bail!("{t:?}: unknown unit {unit:?} (use B, K/KiB, M/MiB, G/GiB, or kB/MB/GB)"),
    };
    let bytes = if num.contains('.') {
        let f: f64 = num
            .parse()
            .with_context(|| format!("{t:?} is not a size"))?;
        (f * mult as f64).round()
    } else {
        let n: u64 = num
            .parse()
            .with_context(|| format!("{t:?} is not a size"))?;
        return n
            .checked_mul(mult)
            .with_context(|| format!("{t:?} is too large"));
    };
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        bail!("{t:?} is too large");
    }
    Ok(bytes as u64)
}

/// Is `actual` (read back from a limit file) the limit `wanted`? The kernel rounds byte
/// limits down to whole pages, so "30000000" reads back as 29999104 on v1 and v2.
pub fn same_limit(actual: u64, wanted: u64) -> bool {
    let page = 4096;
    actual <= wanted && wanted - actual < page
}

/// Human size: "30.0 MiB", "512 B".
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_concept_is_in_the_table_once_with_files_for_both_versions() {
        for c in Concept::ALL {
            assert_eq!(TABLE.iter().filter(|s| s.concept == c).count(), 1, "{c:?}");
            assert!(!c.files(CgVersion::V1).is_empty() && !c.files(CgVersion::V2).is_empty());
        }
        assert_eq!(
            Concept::MemoryLimit.file_label(CgVersion::V2),
            "memory.max (v2)"
        );
        assert_eq!(
            Concept::MemoryLimit.file_label(CgVersion::V1),
            "memory.limit_in_bytes (v1)"
        );
        assert_eq!(
            Concept::OomKills.file_label(CgVersion::V2),
            "memory.events oom_kill (v2)"
        );
        assert_eq!(
            Concept::CpuQuota.file_label(CgVersion::V1),
            "cpu.cfs_quota_us + cpu.cfs_period_us (v1)"
        );
        assert_eq!(Concept::CpuUsage.controller(CgVersion::V1), "cpuacct");
        assert_eq!(Concept::CpuUsage.controller(CgVersion::V2), "cpu");
    }

    #[test]
    fn memory_limits_real_contents() {
        // v1 root / unlimited (this machine), v2 unlimited, and set limits.
        let p = |c, v, s| parse(c, v, &[s]).unwrap();
        assert_eq!(
            p(Concept::MemoryLimit, CgVersion::V1, "9223372036854771712\n"),
            Reading::Limit(Max::Unlimited)
        );
        assert_eq!(
            p(Concept::MemoryLimit, CgVersion::V2, "max\n"),
            Reading::Limit(Max::Unlimited)
        );
        assert_eq!(
            p(Concept::MemoryLimit, CgVersion::V1, "31457280\n"),
            Reading::Limit(Max::Value(31457280))
        );
        assert_eq!(
            p(Concept::MemoryLimit, CgVersion::V2, "29999104\n"),
            Reading::Limit(Max::Value(29999104))
        );
        assert_eq!(
            p(Concept::MemoryUsage, CgVersion::V1, "3371008\n"),
            Reading::Bytes(3371008)
        );
        assert_eq!(
            p(Concept::PidsLimit, CgVersion::V2, "max\n"),
            Reading::Limit(Max::Unlimited)
        );
        assert_eq!(
            p(Concept::PidsCurrent, CgVersion::V1, "3\n"),
            Reading::Count(3)
        );
        assert!(parse(Concept::MemoryLimit, CgVersion::V2, &["lots\n"]).is_err());
    }

    const V1_OOM_CONTROL: &str = "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n";
    const V2_MEMORY_EVENTS: &str = "low 0\nhigh 0\nmax 87\noom 1\noom_kill 1\noom_group_kill 0\n";

    #[test]
    fn oom_counters_real_contents() {
        assert_eq!(
            parse(Concept::OomKills, CgVersion::V1, &[V1_OOM_CONTROL]).unwrap(),
            Reading::Count(1)
        );
        assert_eq!(
            parse(Concept::OomKills, CgVersion::V2, &[V2_MEMORY_EVENTS]).unwrap(),
            Reading::Count(1)
        );
        assert_eq!(
            parse(Concept::MemoryFailcnt, CgVersion::V2, &[V2_MEMORY_EVENTS]).unwrap(),
            Reading::Count(87)
        );
        assert_eq!(
            parse(Concept::MemoryFailcnt, CgVersion::V1, &["1234\n"]).unwrap(),
            Reading::Count(1234)
        );
        // Old kernels (< 4.13) have no oom_kill line: an error, not a silent zero.
        assert!(parse(
            Concept::OomKills,
            CgVersion::V1,
            &["oom_kill_disable 0\nunder_oom 0\n"]
        )
        .is_err());
    }

    #[test]
    fn cpu_real_contents() {
        let v1_stat = "nr_periods 120\nnr_throttled 97\nthrottled_time 8812345678\nnr_bursts 0\nburst_time 0\n";
        let v2_stat = "usage_usec 2000390\nuser_usec 1599000\nsystem_usec 401390\ncore_sched.force_idle_usec 0\nnr_periods 40\nnr_throttled 36\nthrottled_usec 3612054\nnr_bursts 0\nburst_usec 0\n";
        let Reading::CpuStat(s1) = parse(Concept::CpuStat, CgVersion::V1, &[v1_stat]).unwrap()
        else {
            panic!()
        };
        assert_eq!((s1.nr_periods, s1.nr_throttled), (120, 97));
        assert_eq!(
            s1.throttled,
            Time {
                raw: 8812345678,
                unit: TimeUnit::Ns,
                us: 8812345
            }
        );
        let Reading::CpuStat(s2) = parse(Concept::CpuStat, CgVersion::V2, &[v2_stat]).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            s2.throttled,
            Time {
                raw: 3612054,
                unit: TimeUnit::Us,
                us: 3612054
            }
        );
        // v2 without the cpu controller's throttling lines (no quota ever).
        let bare = "usage_usec 10\nuser_usec 5\nsystem_usec 5\n";
        assert_eq!(
            parse(Concept::CpuStat, CgVersion::V2, &[bare]).unwrap(),
            Reading::CpuStat(CpuStat {
                nr_periods: 0,
                nr_throttled: 0,
                throttled: Time::new(0, TimeUnit::Us)
            })
        );
        assert_eq!(
            parse(Concept::CpuUsage, CgVersion::V2, &[v2_stat]).unwrap(),
            Reading::CpuTime(Time::new(2000390, TimeUnit::Us))
        );
        assert_eq!(
            parse(Concept::CpuUsage, CgVersion::V1, &["5123456789\n"]).unwrap(),
            Reading::CpuTime(Time {
                raw: 5123456789,
                unit: TimeUnit::Ns,
                us: 5123456
            })
        );

        assert_eq!(
            parse(Concept::CpuQuota, CgVersion::V1, &["-1\n", "100000\n"]).unwrap(),
            Reading::CpuQuota(CpuQuota {
                quota_us: None,
                period_us: 100000
            })
        );
        assert_eq!(
            parse(Concept::CpuQuota, CgVersion::V1, &["10000\n", "100000\n"]).unwrap(),
            Reading::CpuQuota(CpuQuota {
                quota_us: Some(10000),
                period_us: 100000
            })
        );
        assert_eq!(
            parse(Concept::CpuQuota, CgVersion::V2, &["max 100000\n"]).unwrap(),
            Reading::CpuQuota(CpuQuota {
                quota_us: None,
                period_us: 100000
            })
        );
        let Reading::CpuQuota(q) =
            parse(Concept::CpuQuota, CgVersion::V2, &["10000 100000\n"]).unwrap()
        else {
            panic!()
        };
        assert_eq!(q.cpus(), Some(0.1));
    }

    #[test]
    fn weight_and_shares_convert_both_ways() {
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(weight_to_shares(100), 2597);
        assert_eq!(weight_to_shares(1), 2);
        assert_eq!(weight_to_shares(10_000), 262_144);
        assert_eq!(
            parse(Concept::CpuWeight, CgVersion::V1, &["1024\n"]).unwrap(),
            Reading::CpuWeight(CpuWeight {
                raw: 1024,
                version: CgVersion::V1,
                weight: 39,
                shares: 1024
            })
        );
        assert_eq!(
            parse(Concept::CpuWeight, CgVersion::V2, &["100\n"]).unwrap(),
            Reading::CpuWeight(CpuWeight {
                raw: 100,
                version: CgVersion::V2,
                weight: 100,
                shares: 2597
            })
        );
    }

    #[test]
    fn writes_per_version() {
        let w = render_write(
            Concept::MemoryLimit,
            CgVersion::V1,
            &Reading::Limit(Max::Value(31457280)),
        )
        .unwrap();
        assert_eq!(
            w,
            vec![(f("memory", "memory.limit_in_bytes"), "31457280".to_string())]
        );
        let w = render_write(
            Concept::MemoryLimit,
            CgVersion::V2,
            &Reading::Limit(Max::Unlimited),
        )
        .unwrap();
        assert_eq!(w[0].1, "max");
        let w = render_write(
            Concept::MemoryLimit,
            CgVersion::V1,
            &Reading::Limit(Max::Unlimited),
        )
        .unwrap();
        assert_eq!(w[0].1, "-1");
        let q = Reading::CpuQuota(CpuQuota {
            quota_us: Some(10000),
            period_us: 100000,
        });
        let w = render_write(Concept::CpuQuota, CgVersion::V1, &q).unwrap();
        assert_eq!(
            w.iter()
                .map(|(f, t)| (f.file, t.as_str()))
                .collect::<Vec<_>>(),
            vec![
                ("cpu.cfs_period_us", "100000"),
                ("cpu.cfs_quota_us", "10000")
            ]
        );
        let w = render_write(Concept::CpuQuota, CgVersion::V2, &q).unwrap();
        assert_eq!(w[0].1, "10000 100000");
        let w = render_write(
            Concept::CpuWeight,
            CgVersion::V1,
            &Reading::CpuWeight(CpuWeight::from_weight(100)),
        )
        .unwrap();
        assert_eq!(w[0].1, "2597");
        assert!(render_write(Concept::OomKills, CgVersion::V2, &Reading::Count(1)).is_err());
    }

    #[test]
    fn sizes_written_any_way() {
        for s in [
            "31457280", "30M", "30m", "30MiB", "30 MiB", " 30M\n", "30720K", "30720KiB",
        ] {
            assert_eq!(parse_size(s).unwrap(), 31_457_280, "{s}");
        }
        for s in ["30000000", "30MB", "30 MB", "30000kB", "0.03GB"] {
            assert_eq!(parse_size(s).unwrap(), 30_000_000, "{s}");
        }
        assert_eq!(parse_size("1.5G").unwrap(), 1_610_612_736);
        for bad in [
            "",
            "M",
            "thirty",
            "30 furlongs",
            "-5M",
            "99999999999999999999",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn page_rounding_is_the_same_limit() {
        assert!(same_limit(29_999_104, 30_000_000));
        assert!(same_limit(31_457_280, 31_457_280));
        assert!(!same_limit(31_457_280, 30_000_000));
        assert!(!same_limit(29_990_000, 30_000_000));
        assert_eq!(human_bytes(31_457_280), "30.0 MiB");
        assert_eq!(human_bytes(512), "512 B");
    }
}
