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
    use crate::kernel::cgroup::concepts;
    use crate::views::fixtures::layout_hybrid_systemd;

    #[test]
    fn proc_cgroup_reads_as_the_kernel_wrote_it() {
        let own = layout_hybrid_systemd().1;
        assert_eq!(
            render_proc_cgroup(&own),
            crate::kernel::cgroup::mountinfo::tests_data::HYBRID_SYSTEMD_PROC
        );
        assert!(
            !concepts::human_bytes(1).contains('\u{1b}'),
            "no colour codes"
        );
    }
}
