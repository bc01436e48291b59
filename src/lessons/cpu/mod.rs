//! Lesson 4: CPU quota, period and weight, with a hog drawn as a live chart.

mod check;

use crate::kernel::cgroup::concepts::TimeUnit;
use crate::kernel::cgroup::{self, CgVersion, Cgroup, Concept, CpuQuota, CpuWeight};
use crate::kernel::cgroup::{NslabCgroup, Reading};
use crate::kernel::cpuhog::{self, CpuHog};
use crate::kernel::sys;
use crate::ledger::{self, Resource};
use crate::lesson::instance::named;
use crate::lesson::{run_check, Lesson, LessonInfo, Stage, Step, Table};
use crate::views;
use crate::views::chart::{self, percent};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub static INFO: LessonInfo = LessonInfo {
    number: 4,
    slug: "cpu",
    title: "CPU quota, period and weight — a hog held to 10%",
    summary: "a CPU hog unthrottled vs under a 10% quota; period; weights between two hogs",
    text: include_str!("../../../lessons/04-cpu/lesson.md"),
    hints: include_str!("../../../lessons/04-cpu/hints.md"),
    solution: include_str!("../../../lessons/04-cpu/solution.md"),
    expected_check: include_str!("../../../lessons/04-cpu/expected/check.txt"),
    parent: None,
    steps: &Table::<CpuLesson>::OF,
    check: run_check::<check::CpuCheck>,
    needs_root: true,
    names: &[
        "nslab/cpu-free",
        "nslab/cpu-10",
        "nslab/cpu-1ms",
        "nslab/cpu-100ms",
        "nslab/cpu-light",
        "nslab/cpu-heavy",
    ],
};

/// One sampling window of the charts.
const WINDOW: Duration = Duration::from_millis(100);

/// The 10% cgroup of step b and its hog live on until step e removes them.
#[derive(Default)]
struct CpuLesson {
    limited: Option<(NslabCgroup, CpuHog)>,
}

/// The cpu directory of an nslab cgroup, for the shell commands shown.
fn cpu_dir(cg: &Cgroup) -> Result<(PathBuf, CgVersion)> {
    let d = cg
        .dir_for("cpu")
        .context("the cgroup has no cpu directory")?;
    Ok((d.path.clone(), d.version))
}

/// The shell commands that set a quota, as each version spells them.
fn quota_commands(dir: &Path, v: CgVersion, quota_us: u64, period_us: u64) -> String {
    let d = dir.display();
    match v {
        CgVersion::V1 => format!(
            "echo {period_us} > {d}/cpu.cfs_period_us\necho {quota_us} > {d}/cpu.cfs_quota_us"
        ),
        CgVersion::V2 => format!("echo \"{quota_us} {period_us}\" > {d}/cpu.max"),
    }
}

fn quota(quota_us: u64, period_us: u64) -> Reading {
    Reading::CpuQuota(CpuQuota {
        quota_us: Some(quota_us),
        period_us,
    })
}

/// CPU time used so far by the cgroup (its own counter), or by the hog where the
/// cgroup has no accounting file.
fn usage_ns(cg: &Cgroup, pid: i32) -> Option<u64> {
    match cg.read(Concept::CpuUsage) {
        Ok(Reading::CpuTime(t)) => Some(match t.unit {
            TimeUnit::Ns => t.raw,
            TimeUnit::Us => t.raw * 1000,
        }),
        _ => cpuhog::process_cpu_ns(pid),
    }
}

/// One line of a chart: a hog in its cgroup and its share per window.
struct Series {
    label: String,
    cg: Cgroup,
    pid: i32,
    limit: Option<f64>,
    values: Vec<f64>,
    last: u64,
}

impl Series {
    fn new(label: impl Into<String>, cg: &Cgroup, hog: &CpuHog, limit: Option<f64>) -> Series {
        Series {
            label: label.into(),
            cg: cg.clone(),
            pid: hog.pid(),
            limit,
            values: Vec::new(),
            last: 0,
        }
    }

    fn mean(&self) -> f64 {
        chart::stats(&self.values).map(|s| s.mean).unwrap_or(0.0)
    }
}

fn charts(series: &[Series]) -> String {
    let mut out = String::new();
    for (i, s) in series.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&s.label);
        out.push('\n');
        out.push_str(&chart::render(
            &s.values,
            WINDOW.as_millis() as u64,
            s.limit,
        ));
    }
    out
}

/// Sample every series for `total`, one value per window. On a terminal the chart is
/// redrawn after each window; under `--yes` or `--plain` it is printed once at the end.
fn sample(stage: &Stage, title: &str, series: &mut [Series], total: Duration) -> Result<()> {
    // Each chart is about 16 lines.
    let mut view = stage.ui.live_view(title, series.len() * 16, stage.yes);
    for s in series.iter_mut() {
        s.last = usage_ns(&s.cg, s.pid).context("reading the hog's CPU time")?;
    }
    let windows = (total.as_millis() / WINDOW.as_millis()).max(1);
    let mut t0 = Instant::now();
    for _ in 0..windows {
        sys::sleep(WINDOW)?;
        let now = Instant::now();
        let wall = now.duration_since(t0).as_nanos().max(1) as f64;
        t0 = now;
        for s in series.iter_mut() {
            let u = usage_ns(&s.cg, s.pid).unwrap_or(s.last);
            s.values
                .push(u.saturating_sub(s.last) as f64 / wall * 100.0);
            s.last = u;
        }
        if view.is_live() {
            view.frame(&charts(series));
        }
    }
    view.finish(stage.ui, &charts(series));
    Ok(())
}

fn stat_of(cg: &Cgroup) -> Result<cgroup::concepts::CpuStat> {
    match cg.read(Concept::CpuStat)? {
        Reading::CpuStat(s) => Ok(s),
        other => anyhow::bail!("cpu.stat read as {other:?}"),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

impl CpuLesson {
    fn step_a(&mut self, stage: &mut Stage) -> Result<()> {
        let cg = NslabCgroup::create_for(&named("cpu-free"), &["cpu"])?;
        let (dir, _) = cpu_dir(&cg)?;
        stage.command(&format!(
            "sudo mkdir {d}\nyes > /dev/null &\necho $! | sudo tee {d}/cgroup.procs",
            d = dir.display()
        ));
        stage.syscalls();
        stage.view(
            "The new cgroup, before anything runs in it",
            &views::cgroup::render_values(&cg.read_all(&[
                Concept::CpuQuota,
                Concept::CpuWeight,
                Concept::CpuUsage,
            ])),
        );
        let mut hog = CpuHog::spawn()?;
        hog.start_in(&cg)?;
        stage.syscalls();
        let mut series = [Series::new(
            format!("hog (PID {}), no limit", hog.pid()),
            &cg,
            &hog,
            None,
        )];
        sample(
            stage,
            "CPU share of the hog per 100 ms (% of one CPU)",
            &mut series,
            Duration::from_secs(2),
        )?;
        let cpus = cpuhog::allowed_cpus().len();
        let mean = series[0].mean();
        stage.say(&format!(
            "With no limit the hog got {} of one CPU on average: it never sleeps, so it runs whenever the \
             scheduler lets it. It can use one CPU at most (one thread); this machine has {cpus}, shared with \
             whatever else runs here{}.",
            percent(mean),
            if mean < 80.0 {
                " — and something else is busy right now: the rest went to other processes"
            } else {
                ""
            }
        ));
        hog.stop()?;
        let mut cg = cg;
        cg.remove()?;
        stage.syscalls();
        Ok(())
    }

    /// The 10% cgroup with its hog running, made by step b (or by step e on its own).
    fn make_limited(&mut self, stage: &mut Stage) -> Result<()> {
        let cg = NslabCgroup::create_for(&named("cpu-10"), &["cpu"])?;
        let (dir, v) = cpu_dir(&cg)?;
        stage.command(&format!(
            "sudo mkdir {d}\n{}\nyes > /dev/null &\necho $! | sudo tee {d}/cgroup.procs",
            quota_commands(&dir, v, 10_000, 100_000),
            d = dir.display()
        ));
        cg.set(Concept::CpuQuota, &quota(10_000, 100_000))?;
        let mut hog = CpuHog::spawn()?;
        hog.start_in(&cg)?;
        stage.syscalls();
        self.limited = Some((cg, hog));
        Ok(())
    }

    fn step_b(&mut self, stage: &mut Stage) -> Result<()> {
        self.make_limited(stage)?;
        let (cg, hog) = self.limited.as_ref().expect("made above");
        let before = stat_of(cg)?;
        let values = [Concept::CpuQuota, Concept::CpuStat];
        let shown_before = views::cgroup::render_values(&cg.read_all(&values));
        let mut series = [Series::new(
            format!("hog (PID {}), quota 10000 µs per 100000 µs", hog.pid()),
            cg,
            hog,
            Some(10.0),
        )];
        sample(
            stage,
            "CPU share of the hog per 100 ms (% of one CPU)",
            &mut series,
            Duration::from_secs(2),
        )?;
        let after = stat_of(cg)?;
        stage.before_after(
            "The quota and cpu.stat when the hog started and 2 s later",
            &shown_before,
            &views::cgroup::render_values(&cg.read_all(&values)),
        );
        let d_raw = after.throttled.raw.saturating_sub(before.throttled.raw);
        let d_us = after.throttled.us.saturating_sub(before.throttled.us);
        let (file_key, unit) = match after.throttled.unit {
            TimeUnit::Ns => ("throttled_time", "ns"),
            TimeUnit::Us => ("throttled_usec", "µs"),
        };
        stage.say(&format!(
            "The hog averaged {} of one CPU. In those 2 s, nr_periods grew by {} (one per 100 ms period in \
             which the cgroup wanted CPU), nr_throttled by {} (periods where the quota ran out), and \
             {file_key} by {d_raw} {unit} = {:.1} s spent waiting for the next period. cgroup v1 counts \
             that time in nanoseconds (throttled_time), v2 in microseconds (throttled_usec).",
            percent(series[0].mean()),
            after.nr_periods.saturating_sub(before.nr_periods),
            after.nr_throttled.saturating_sub(before.nr_throttled),
            d_us as f64 / 1e6
        ));
        Ok(())
    }

    fn step_c(&mut self, stage: &mut Stage) -> Result<()> {
        let fine = NslabCgroup::create_for(&named("cpu-1ms"), &["cpu"])?;
        let coarse = NslabCgroup::create_for(&named("cpu-100ms"), &["cpu"])?;
        let (fdir, v) = cpu_dir(&fine)?;
        let (cdir, _) = cpu_dir(&coarse)?;
        stage.command(&format!(
            "sudo mkdir {} {}\n{}\n{}",
            fdir.display(),
            cdir.display(),
            quota_commands(&fdir, v, 1_000, 10_000),
            quota_commands(&cdir, v, 100_000, 1_000_000)
        ));
        fine.set(Concept::CpuQuota, &quota(1_000, 10_000))?;
        coarse.set(Concept::CpuQuota, &quota(100_000, 1_000_000))?;
        let mut hog_f = CpuHog::spawn()?;
        let mut hog_c = CpuHog::spawn()?;
        hog_f.start_in(&fine)?;
        hog_c.start_in(&coarse)?;
        stage.syscalls();
        hog_f.take_longest_stall();
        hog_c.take_longest_stall();
        let mut series = [
            Series::new(
                format!("hog (PID {}), 1 ms per 10 ms", hog_f.pid()),
                &fine,
                &hog_f,
                Some(10.0),
            ),
            Series::new(
                format!("hog (PID {}), 100 ms per 1 s", hog_c.pid()),
                &coarse,
                &hog_c,
                Some(10.0),
            ),
        ];
        sample(
            stage,
            "Two hogs, both limited to 10%, sampled together per 100 ms",
            &mut series,
            Duration::from_secs(3),
        )?;
        let (stall_f, stall_c) = (hog_f.take_longest_stall(), hog_c.take_longest_stall());
        stage.view(
            "Longest time each hog waited, off the CPU, in one stretch",
            &views::cgroup::table(
                &["", "quota / period", "average share", "longest stall"],
                &[
                    vec![
                        named("cpu-1ms"),
                        "1000 µs / 10000 µs".into(),
                        percent(series[0].mean()),
                        ms(stall_f),
                    ],
                    vec![
                        named("cpu-100ms"),
                        "100000 µs / 1000000 µs".into(),
                        percent(series[1].mean()),
                        ms(stall_c),
                    ],
                ],
            ),
        );
        let (avg_f, avg_c) = (series[0].mean(), series[1].mean());
        stage.say(&format!(
            "Both got about 10% on average ({} and {}), but not in the same way: with a 10 ms period the hog \
             runs 1 ms and waits about 9 ms, so every 100 ms window looks alike; with a 1 s period it burns \
             its 100 ms at once and then waits about 900 ms. Here the longest waits were {} and {}{}. A server \
             limited like the second answers some requests almost a second late although its average looks fine.",
            percent(avg_f),
            percent(avg_c),
            ms(stall_f),
            ms(stall_c),
            if stall_f > Duration::from_millis(30) {
                " (more than 9 ms for the first: other processes on this machine kept it waiting too)"
            } else {
                ""
            }
        ));
        hog_f.stop()?;
        hog_c.stop()?;
        let (mut fine, mut coarse) = (fine, coarse);
        fine.remove()?;
        coarse.remove()?;
        stage.syscalls();
        Ok(())
    }

    fn step_d(&mut self, stage: &mut Stage) -> Result<()> {
        let light = NslabCgroup::create_for(&named("cpu-light"), &["cpu"])?;
        let heavy = NslabCgroup::create_for(&named("cpu-heavy"), &["cpu"])?;
        let (ldir, v) = cpu_dir(&light)?;
        let (hdir, _) = cpu_dir(&heavy)?;
        let (w_light, w_heavy, file) = match v {
            CgVersion::V1 => (
                CpuWeight::from_shares(1024),
                CpuWeight::from_shares(3072),
                "cpu.shares",
            ),
            CgVersion::V2 => (
                CpuWeight::from_weight(100),
                CpuWeight::from_weight(300),
                "cpu.weight",
            ),
        };
        let cpu = cpuhog::allowed_cpus().first().copied().unwrap_or(0);
        stage.command(&format!(
            "sudo mkdir {l} {h}\necho {} > {l}/{file}\necho {} > {h}/{file}\n\
             sh -c 'echo $$ > {l}/cgroup.procs; exec taskset -c {cpu} yes > /dev/null' &\n\
             sh -c 'echo $$ > {h}/cgroup.procs; exec taskset -c {cpu} yes > /dev/null' &",
            w_light.raw,
            w_heavy.raw,
            l = ldir.display(),
            h = hdir.display()
        ));
        light.set(Concept::CpuWeight, &Reading::CpuWeight(w_light))?;
        heavy.set(Concept::CpuWeight, &Reading::CpuWeight(w_heavy))?;
        let mut hog_l = CpuHog::spawn()?;
        let mut hog_h = CpuHog::spawn()?;
        // Pinned to one CPU, the two must compete for it; otherwise each takes a CPU of its own.
        hog_l.start_pinned_in(&light, Some(cpu))?;
        hog_h.start_pinned_in(&heavy, Some(cpu))?;
        stage.syscalls();
        let label = |w: &CpuWeight| match v {
            CgVersion::V1 => format!("{file} {}", w.shares),
            CgVersion::V2 => format!("{file} {}", w.weight),
        };
        let mut series = [
            Series::new(
                format!(
                    "hog (PID {}) in cpu-light, {}",
                    hog_l.pid(),
                    label(&w_light)
                ),
                &light,
                &hog_l,
                None,
            ),
            Series::new(
                format!(
                    "hog (PID {}) in cpu-heavy, {}",
                    hog_h.pid(),
                    label(&w_heavy)
                ),
                &heavy,
                &hog_h,
                None,
            ),
        ];
        sample(
            stage,
            &format!("Two hogs pinned to CPU {cpu}, per 100 ms (% of that CPU)"),
            &mut series,
            Duration::from_millis(2500),
        )?;
        let (a, b) = (series[0].mean(), series[1].mean());
        let sum = (a + b).max(f64::MIN_POSITIVE);
        let light_pct = a / sum * 100.0;
        let verdict = if a + b > 130.0 {
            "the two used more than one CPU together, so they did not compete: the pin to one CPU did \
             not hold"
                .to_string()
        } else if (15.0..=35.0).contains(&light_pct) {
            "as weights 1 : 3 predict for a busy CPU (25 : 75)".to_string()
        } else {
            "not the 25 : 75 that weights 1 : 3 predict: something else shared CPU {cpu} unevenly during \
             this short sample (a busy or emulated machine); run the step again with `--step d`"
                .replace("{cpu}", &cpu.to_string())
        };
        stage.say(&format!(
            "Of what the two hogs got ({} of CPU {cpu} together), the light one had {light_pct:.0}% and the \
             heavy one {:.0}%: {verdict}. A weight is not a limit: alone on a CPU, either hog would get all of \
             it. On cgroup v1 the file is cpu.shares (default 1024, here 1024 and 3072); on v2 it is \
             cpu.weight (default 100, here 100 and 300).",
            percent(a + b),
            b / sum * 100.0,
        ));
        hog_l.stop()?;
        hog_h.stop()?;
        let (mut light, mut heavy) = (light, heavy);
        light.remove()?;
        heavy.remove()?;
        stage.syscalls();
        Ok(())
    }

    fn step_e(&mut self, stage: &mut Stage) -> Result<()> {
        if self.limited.is_none() {
            stage.say("Making the 10% cgroup of step b first.");
            self.make_limited(stage)?;
        }
        let (mut cg, hog) = self.limited.take().expect("made above");
        let (dir, _) = cpu_dir(&cg)?;
        let before = ledger_view();
        stage.command(&format!(
            "sudo rmdir {d}       # refused while a process is inside\nkill %1\nsudo rmdir {d}",
            d = dir.display()
        ));
        let refused = cgroup::rmdir_traced(&dir);
        stage.syscalls();
        match &refused {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => stage.say(
                "rmdir is refused with EBUSY: a cgroup with a process in it cannot be removed. \
                 Its files are not deleted one by one either — the directory goes as a whole, once empty.",
            ),
            Err(e) => stage.say(&format!("rmdir failed: {e}")),
            Ok(()) => stage.say("rmdir succeeded: the hog had already left the cgroup."),
        }
        hog.stop()?;
        cg.remove()?;
        stage.syscalls();
        stage.before_after(
            "What this run had made, before and after",
            &before,
            &ledger_view(),
        );
        let left = ledger::current().len();
        stage.say(&if left == 0 {
            "The hog is gone and so is every cgroup this run made: its ledger is empty. If nslab is killed \
             outright, `sudo nslab cleanup` removes whatever a ledger still lists."
                .to_string()
        } else {
            format!("{left} object(s) are still on this run's ledger; they are removed when the lesson ends.")
        });
        Ok(())
    }
}

/// This run's ledger, one object a line.
fn ledger_view() -> String {
    let mut lines: Vec<String> = ledger::current()
        .iter()
        .map(|r| match r {
            Resource::Process { .. } => "process (a CPU hog)".to_string(),
            other => other.describe(),
        })
        .collect();
    if lines.is_empty() {
        lines.push("(nothing)".into());
    }
    lines.join("\n") + "\n"
}

impl Lesson for CpuLesson {
    const STEPS: &'static [Step<Self>] = &[
        Step {
            id: 'a',
            title: "A hog without limits",
            keyboard: false,
            run: Self::step_a,
        },
        Step {
            id: 'b',
            title: "A 10% quota",
            keyboard: false,
            run: Self::step_b,
        },
        Step {
            id: 'c',
            title: "The period matters",
            keyboard: false,
            run: Self::step_c,
        },
        Step {
            id: 'd',
            title: "Weights share a busy CPU",
            keyboard: false,
            run: Self::step_d,
        },
        Step {
            id: 'e',
            title: "Cleanup",
            keyboard: false,
            run: Self::step_e,
        },
    ];

    fn start(_: &clap::ArgMatches) -> Result<Self> {
        Ok(Self::default())
    }
}
