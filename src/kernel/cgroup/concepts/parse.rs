//! Pure parsers from each version's files to the typed values, and back for writing.

use super::*;
use anyhow::{bail, Context, Result};

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
