//! The typed values the concepts read as, whatever version's file they came from.

use super::CgVersion;
use serde::Serialize;

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
