//! Views of cgroups: the machine's layout (which controller is mounted where, and where
//! a process sits in each hierarchy) and a cgroup's values with the real file names.

use crate::kernel::cgroup::concepts::{human_bytes, Max, Reading};
use crate::kernel::cgroup::kmsg::OomKill;
use crate::kernel::cgroup::{CgDir, CgVersion, ConceptValue, Layout, ProcCgroup};

/// A [`super::table`] with each line indented by two, as the cgroup views nest it.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let width = crate::ui::view_width().saturating_sub(2);
    super::table::render_at(header, rows, width)
        .lines()
        .map(|l| match l {
            "" => "\n".to_string(),
            l => format!("  {l}\n"),
        })
        .collect()
}

/// The hierarchies of a machine and the cgroup `own` (a /proc/PID/cgroup) is in on each.
pub fn render_layout(layout: &Layout, own: &[ProcCgroup], who: &str) -> String {
    let mut out = format!("cgroup layout: {}\n\n", layout.version.describe());
    let mut rows = Vec::new();
    for h in &layout.v1 {
        let entry = own
            .iter()
            .find(|e| e.hierarchy_id != 0 && e.controllers == h.controllers);
        rows.push(vec![
            format!(
                "v1 #{}",
                entry
                    .map(|e| e.hierarchy_id.to_string())
                    .unwrap_or_else(|| "?".into())
            ),
            h.controllers.join(","),
            h.mount_point.display().to_string(),
            entry.map(|e| e.path.clone()).unwrap_or_else(|| "-".into()),
        ]);
    }
    if let Some(u) = &layout.unified {
        let entry = own.iter().find(|e| e.hierarchy_id == 0);
        let ctrls = if layout.v2_controllers.is_empty() {
            "(none)".to_string()
        } else {
            layout.v2_controllers.join(",")
        };
        rows.push(vec![
            "v2 #0".into(),
            ctrls,
            u.mount_point.display().to_string(),
            entry.map(|e| e.path.clone()).unwrap_or_else(|| "-".into()),
        ]);
    }
    out.push_str(&table(
        &[
            "hierarchy",
            "controllers",
            "mounted at",
            &format!("{who}'s cgroup"),
        ],
        &rows,
    ));
    let mut lines = Vec::new();
    for c in ["memory", "cpu", "pids"] {
        let v = match layout.home(c) {
            Some(crate::kernel::cgroup::Home::V1(_)) => "v1",
            Some(crate::kernel::cgroup::Home::V2(_)) => "v2",
            None => "not mounted",
        };
        let dir = layout
            .dir_of(own, c)
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| "-".into());
        lines.push(vec![c.to_string(), v.to_string(), dir]);
    }
    out.push('\n');
    out.push_str(&table(&["controller", "version", "directory"], &lines));
    out
}

/// `/proc/PID/cgroup` as the kernel prints it, one `id:controllers:path` per line.
pub fn render_proc_cgroup(entries: &[ProcCgroup]) -> String {
    entries
        .iter()
        .map(|e| {
            format!(
                "{}:{}:{}\n",
                e.hierarchy_id,
                e.controllers.join(","),
                e.path
            )
        })
        .collect()
}

/// The kernel's own report of one OOM kill: its summary line and the "Killed process" line.
pub fn render_oom_kill(k: &OomKill) -> String {
    let width = crate::ui::view_width();
    let mut out = crate::ui::wrap_at_commas(&k.line, width, "    ");
    if let Some(l) = &k.killed_line {
        out.push_str(&crate::ui::wrap_at_commas(l, width, "    "));
    }
    out
}

/// A reading in words, with the raw value when it was converted.
pub fn format_reading(r: &Reading) -> String {
    match r {
        Reading::Bytes(b) => format!("{} ({b})", human_bytes(*b)),
        Reading::Limit(Max::Unlimited) => "unlimited".into(),
        Reading::Limit(Max::Value(b)) if *b >= 4096 => format!("{} ({b})", human_bytes(*b)),
        Reading::Limit(Max::Value(n)) => n.to_string(),
        Reading::Count(n) => n.to_string(),
        Reading::CpuQuota(q) => match q.quota_us {
            None => format!("no quota (period {} µs)", q.period_us),
            Some(us) => format!(
                "{us} µs per {} µs = {:.0}% of one CPU",
                q.period_us,
                q.cpus().unwrap_or(0.0) * 100.0
            ),
        },
        Reading::CpuStat(s) => {
            let raw = match s.throttled.unit {
                crate::kernel::cgroup::concepts::TimeUnit::Ns => {
                    format!(
                        "throttled_time {} ns = {} µs",
                        s.throttled.raw, s.throttled.us
                    )
                }
                crate::kernel::cgroup::concepts::TimeUnit::Us => {
                    format!("throttled_usec {} µs", s.throttled.raw)
                }
            };
            format!(
                "nr_periods {}, nr_throttled {}, {raw}",
                s.nr_periods, s.nr_throttled
            )
        }
        Reading::CpuWeight(w) => match w.version {
            CgVersion::V1 => format!("shares {} (= weight {} on v2)", w.shares, w.weight),
            CgVersion::V2 => format!("weight {} (= shares {} on v1)", w.weight, w.shares),
        },
        Reading::CpuTime(t) => {
            let secs = t.us as f64 / 1e6;
            format!("{} {} = {secs:.2} s", t.raw, t.unit.label())
        }
        Reading::Pids(p) if p.is_empty() => "(empty)".into(),
        Reading::Pids(p) => p.iter().map(i32::to_string).collect::<Vec<_>>().join(" "),
    }
}

/// A cgroup's values, one concept a row, with the file each came from.
pub fn render_values(values: &[ConceptValue]) -> String {
    let rows: Vec<Vec<String>> = values
        .iter()
        .map(|v| {
            vec![
                v.label.to_string(),
                v.file.clone(),
                match &v.reading {
                    Ok(r) => format_reading(r),
                    Err(e) => format!("unreadable: {e}"),
                },
            ]
        })
        .collect();
    table(&["", "file", "value"], &rows)
}

/// A cgroup: its directories, then its values.
pub fn render_cgroup(dirs: &[CgDir], values: &[ConceptValue]) -> String {
    let rows: Vec<Vec<String>> = dirs
        .iter()
        .map(|d| {
            vec![
                d.version.label().to_string(),
                d.controllers.join(","),
                d.path.display().to_string(),
            ]
        })
        .collect();
    let mut out = table(&["", "controllers", "directory"], &rows);
    out.push('\n');
    out.push_str(&render_values(values));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::cgroup::concepts::{
        self, Concept, CpuQuota, CpuStat, CpuWeight, Time, TimeUnit,
    };
    use crate::kernel::cgroup::mountinfo::{self, tests_data::*};
    use std::path::PathBuf;

    #[test]
    fn layout_of_this_machine() {
        let l = mountinfo::layout_from(HYBRID_APART, "hugetlb\n").unwrap();
        let own = mountinfo::parse_proc_cgroup(HYBRID_APART_PROC);
        insta::assert_snapshot!(render_layout(&l, &own, "nslab"));
    }

    #[test]
    fn layout_systemd_hybrid_and_pure_v2() {
        let l = mountinfo::layout_from(HYBRID_SYSTEMD, "").unwrap();
        let own = mountinfo::parse_proc_cgroup(HYBRID_SYSTEMD_PROC);
        insta::assert_snapshot!("hybrid_systemd", render_layout(&l, &own, "your shell"));
        let l = mountinfo::layout_from(
            UNIFIED_DEBIAN,
            "cpuset cpu io memory hugetlb pids rdma misc\n",
        )
        .unwrap();
        let own = mountinfo::parse_proc_cgroup(UNIFIED_PROC);
        insta::assert_snapshot!("unified", render_layout(&l, &own, "your shell"));
    }

    fn value(c: Concept, v: CgVersion, r: Reading) -> ConceptValue {
        ConceptValue {
            concept: c,
            label: c.label(),
            version: v,
            file: c.file_label(v),
            path: PathBuf::from("/sys/fs/cgroup/x"),
            reading: Ok(r),
        }
    }

    #[test]
    fn values_v1_and_v2() {
        let v1 = CgVersion::V1;
        let dirs = vec![
            CgDir {
                version: v1,
                controllers: vec!["memory".into()],
                path: "/sys/fs/cgroup/memory/nslab/oom".into(),
            },
            CgDir {
                version: v1,
                controllers: vec!["cpu".into()],
                path: "/sys/fs/cgroup/cpu/nslab/oom".into(),
            },
        ];
        let vals = vec![
            value(
                Concept::MemoryLimit,
                v1,
                Reading::Limit(Max::Value(31_457_280)),
            ),
            value(Concept::MemoryUsage, v1, Reading::Bytes(1_234_944)),
            value(Concept::OomKills, v1, Reading::Count(1)),
            value(
                Concept::CpuQuota,
                v1,
                Reading::CpuQuota(CpuQuota {
                    quota_us: Some(10_000),
                    period_us: 100_000,
                }),
            ),
            value(
                Concept::CpuStat,
                v1,
                Reading::CpuStat(CpuStat {
                    nr_periods: 50,
                    nr_throttled: 48,
                    throttled: Time::new(4_321_000_000, TimeUnit::Ns),
                }),
            ),
            value(
                Concept::CpuWeight,
                v1,
                Reading::CpuWeight(CpuWeight::from_shares(1024)),
            ),
            value(
                Concept::CpuUsage,
                v1,
                Reading::CpuTime(Time::new(512_000_000, TimeUnit::Ns)),
            ),
            value(Concept::PidsLimit, v1, Reading::Limit(Max::Unlimited)),
            value(Concept::Procs, v1, Reading::Pids(vec![4242, 4243])),
        ];
        insta::assert_snapshot!("values_v1", render_cgroup(&dirs, &vals));
        let v2 = CgVersion::V2;
        let mut vals2 = vec![
            value(Concept::MemoryLimit, v2, Reading::Limit(Max::Unlimited)),
            value(Concept::MemoryFailcnt, v2, Reading::Count(87)),
            value(
                Concept::CpuQuota,
                v2,
                Reading::CpuQuota(CpuQuota {
                    quota_us: None,
                    period_us: 100_000,
                }),
            ),
            value(
                Concept::CpuStat,
                v2,
                Reading::CpuStat(CpuStat {
                    nr_periods: 40,
                    nr_throttled: 36,
                    throttled: Time::new(3_612_054, TimeUnit::Us),
                }),
            ),
            value(
                Concept::CpuWeight,
                v2,
                Reading::CpuWeight(CpuWeight::from_weight(100)),
            ),
            value(Concept::PidsLimit, v2, Reading::Limit(Max::Value(20))),
            value(Concept::Procs, v2, Reading::Pids(vec![])),
        ];
        vals2.push(ConceptValue {
            reading: Err("reading /sys/fs/cgroup/x/memory.peak: No such file or directory".into()),
            ..value(Concept::MemoryPeak, v2, Reading::Count(0))
        });
        insta::assert_snapshot!("values_v2", render_values(&vals2));
        assert!(
            !concepts::human_bytes(1).contains('\u{1b}'),
            "no colour codes"
        );
    }

    #[test]
    fn proc_cgroup_and_kernel_line() {
        let own = mountinfo::parse_proc_cgroup(HYBRID_SYSTEMD_PROC);
        assert_eq!(render_proc_cgroup(&own), HYBRID_SYSTEMD_PROC);
        let rec = crate::kernel::cgroup::kmsg::Record {
            seq: 424,
            usec: 785793266,
            message: "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/mytest,task_memcg=/mytest,task=tail,pid=16804,uid=0".into(),
        };
        let mut k = crate::kernel::cgroup::kmsg::parse_oom_kill(&rec).unwrap();
        k.killed_line = Some("Memory cgroup out of memory: Killed process 16804 (tail) total-vm:33444kB, anon-rss:30592kB, file-rss:1456kB, shmem-rss:0kB, UID:0 pgtables:108kB oom_score_adj:0".into());
        insta::assert_snapshot!(render_oom_kill(&k));
    }
}
