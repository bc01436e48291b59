//! Lesson 3: memory cgroups and the OOM killer.

mod check;
pub mod mystery;
mod mystery_check;

use crate::error::Problem;
use crate::kernel::cgroup::concepts::{self, human_bytes};
use crate::kernel::cgroup::{
    self, kmsg, CgVersion, Cgroup, Concept, Home, Layout, Max, NslabCgroup, Reading,
};
use crate::kernel::hog::{self, HogEnd, HogEvent, MemoryHog};
use crate::kernel::procs;
use crate::lesson::{run_check, Lesson, LessonInfo, Stage, Step, Table};
use crate::views;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::time::Duration;

pub static INFO: LessonInfo = LessonInfo {
    number: 3,
    slug: "oom",
    title: "Memory cgroups — the OOM killer",
    summary: "a hog climbs to its cgroup's memory limit and the kernel OOM-kills it",
    text: include_str!("../../../lessons/03-oom/lesson.md"),
    hints: include_str!("../../../lessons/03-oom/hints.md"),
    solution: include_str!("../../../lessons/03-oom/solution.md"),
    expected_check: include_str!("../../../lessons/03-oom/expected/check.txt"),
    parent: None,
    steps: &Table::<OomLesson>::OF,
    check: run_check::<check::OomCheck>,
    needs_root: true,
};

/// The exercise's limit and the lesson's default: 30 MiB.
pub const DEFAULT_LIMIT: u64 = 30 << 20;
/// Below this the hog's own program (a copy of nslab) hardly fits.
const MIN_LIMIT: u64 = 8 << 20;
/// nslab's cgroup for this lesson: `…/nslab/oom`.
const CGROUP_NAME: &str = "oom";
/// The hog's steps: 1 MiB, a short pause each so the bar can follow.
const STEP: u64 = 1 << 20;
const PAUSE: Duration = Duration::from_millis(40);

/// The files the lesson shows, in this order.
const MEMORY_VIEW: [Concept; 6] = [
    Concept::MemoryLimit,
    Concept::MemoryUsage,
    Concept::MemoryPeak,
    Concept::MemoryFailcnt,
    Concept::OomKills,
    Concept::Procs,
];

/// What the hog tries to take: well beyond the limit, so it is always killed.
fn hog_goal(limit: u64) -> u64 {
    limit.saturating_mul(2).max(limit.saturating_add(16 << 20))
}

/// Step e's higher limit: the goal plus room for the program itself.
fn survivor_limit(limit: u64) -> u64 {
    hog_goal(limit).saturating_add(32 << 20)
}

/// `--limit`: a size as a learner writes it, within what this machine can show safely.
fn parse_limit_flag(text: &str) -> Result<u64> {
    let n = concepts::parse_size(text).map_err(|e| {
        Problem::usage(
            format!("--limit {text:?}: {e:#}"),
            "write a size such as 30M, 30MiB, 31457280 or 30MB",
        )
    })?;
    check_limit(n, hog::mem_available())
}

fn check_limit(n: u64, available: Option<u64>) -> Result<u64> {
    if n < MIN_LIMIT {
        return Err(Problem::usage(
            format!(
                "--limit {}: too small, the hog's own program would not fit",
                human_bytes(n)
            ),
            "use at least 8M (the default is 30M)",
        ));
    }
    if let Some(avail) = available {
        // Step e lets the hog actually take survivor_limit(n): keep that well inside what is free.
        if survivor_limit(n) > avail / 2 {
            return Err(Problem::usage(
                format!(
                    "--limit {}: step e would let the hog take {}, more than half of what this machine has available ({})",
                    human_bytes(n),
                    human_bytes(survivor_limit(n)),
                    human_bytes(avail)
                ),
                "use a smaller limit (the default is 30M)",
            ));
        }
    }
    Ok(n)
}

#[derive(Default)]
struct OomLesson {
    limit: u64,
    layout: Option<Layout>,
    cg: Option<NslabCgroup>,
    /// Before the hog of step c: the cgroup's values, oom_kill, the kernel log's position.
    before_values: Option<String>,
    kills_before: u64,
    seq_before: Option<u64>,
    /// How step c's hog ended.
    end: Option<(i32, HogEvent)>,
}

/// A counter or byte reading of `cg`, 0 when unreadable (for the narration).
pub(super) fn read_count(cg: &Cgroup, c: Concept) -> u64 {
    match cg.read(c) {
        Ok(Reading::Count(n)) | Ok(Reading::Bytes(n)) => n,
        _ => 0,
    }
}

impl OomLesson {
    fn layout(&mut self) -> Result<&Layout> {
        if self.layout.is_none() {
            self.layout = Some(Layout::read()?);
        }
        Ok(self.layout.as_ref().expect("read above"))
    }

    fn step_a(&mut self, stage: &mut Stage) -> Result<()> {
        stage.command("cat /proc/self/cgroup\ngrep cgroup /proc/self/mountinfo");
        let me = std::process::id() as i32;
        let own = cgroup::own_cgroup()?;
        let layout = self.layout()?.clone();
        stage.view(
            &format!("/proc/{me}/cgroup (nslab itself)"),
            &views::cgroup::render_proc_cgroup(&own),
        );
        stage.view(
            "The cgroup hierarchies, from /proc/self/mountinfo",
            &views::cgroup::render_layout(&layout, &own, "nslab"),
        );
        let mine = Cgroup::of_pid(&layout, me, &["memory"])?;
        let Some(dir) = mine.dir_for("memory").map(|d| d.path.clone()) else {
            return Err(Problem::environment(
                "this machine has no memory cgroup controller",
                "boot a kernel with memory cgroups (cgroup_enable=memory), see `nslab doctor`",
            ));
        };
        let path = layout.path_in_hierarchy("memory", &dir).unwrap_or_default();
        match layout.home("memory") {
            Some(Home::V1(h)) => {
                let with = if h.controllers.len() > 1 {
                    format!("together with {}", h.controllers.iter().filter(|c| *c != "memory").cloned().collect::<Vec<_>>().join(", "))
                } else {
                    "on its own".to_string()
                };
                stage.say(&format!(
                    "Here memory is a cgroup v1 controller, mounted {with} at {}. In that hierarchy nslab is in the \
                     cgroup {path}, which is the directory {}.",
                    h.mount_point.display(),
                    dir.display()
                ));
            }
            Some(Home::V2(u)) => stage.say(&format!(
                "Here memory is a cgroup v2 controller: one tree at {}, and nslab is in its cgroup {path}, the \
                 directory {}.",
                u.mount_point.display(),
                dir.display()
            )),
            None => {}
        }
        if layout.version == cgroup::Version::Hybrid {
            let v2 = if layout.v2_controllers.is_empty() {
                "no controller at all".to_string()
            } else {
                layout.v2_controllers.join(", ")
            };
            stage.say(&format!(
                "This machine is hybrid: beside the v1 hierarchies, a v2 tree is mounted at {} with {v2}. \
                 Lessons use v1 for memory here; on a pure v2 machine the same concepts live in that one tree.",
                layout.unified.as_ref().map(|u| u.mount_point.display().to_string()).unwrap_or_default()
            ));
        }
        if let Some(shell) = procs::caller() {
            if let Ok(sh) = Cgroup::of_pid(&layout, shell.pid, &["memory"]) {
                if sh.dir_for("memory").map(|d| &d.path) != Some(&dir) {
                    stage.say(&format!(
                        "Your shell ({}, PID {}) is in another memory cgroup than nslab.",
                        shell.comm, shell.pid
                    ));
                }
            }
        }
        let values = mine.read_all(&[Concept::MemoryLimit, Concept::MemoryUsage]);
        stage.view(
            &format!("nslab's own memory cgroup ({})", dir.display()),
            &views::cgroup::render_values(&values),
        );
        Ok(())
    }

    /// Step b's cgroup, made now if the learner started later (`--step c`).
    fn ensure_cgroup(&mut self, stage: &mut Stage) -> Result<()> {
        if self.cg.is_some() {
            return Ok(());
        }
        stage.say("Making the cgroup of step b first.");
        self.make_cgroup(stage)
    }

    fn make_cgroup(&mut self, stage: &mut Stage) -> Result<()> {
        let limit = self.limit;
        let layout = self.layout()?.clone();
        let own = cgroup::own_cgroup()?;
        let st = cgroup::availability_from(&layout, &own, &["memory"], |p| {
            std::fs::read_to_string(p.join("cgroup.subtree_control"))
                .unwrap_or_default()
                .split_whitespace()
                .map(String::from)
                .collect()
        });
        let st = &st[0];
        if !st.usable {
            return Err(Problem::environment(
                st.problem
                    .clone()
                    .unwrap_or_else(|| "the memory controller cannot be used here".into()),
                st.fix.clone().unwrap_or_default(),
            ));
        }
        let parent = st.parent.clone().context("no place for nslab's cgroup")?;
        let version = st.version.unwrap_or(CgVersion::V1);
        let dir = parent.join(CGROUP_NAME);
        let limit_file = Concept::MemoryLimit.files(version)[0].file;
        let swap_line = format!(
            "echo 0 | sudo tee {}/{}",
            dir.display(),
            cgroup::no_swap_file(version)
        );
        let mut cmd = String::new();
        if version == CgVersion::V2 {
            cmd.push_str(&format!(
                "sudo mkdir {p}\necho +memory | sudo tee {p}/cgroup.subtree_control\nsudo mkdir {d}\n",
                p = parent.display(),
                d = dir.display()
            ));
        } else {
            cmd.push_str(&format!("sudo mkdir -p {}\n", dir.display()));
        }
        cmd.push_str(&format!(
            "echo {limit} | sudo tee {}/{limit_file}\n{swap_line}\ncat {}/{limit_file}",
            dir.display(),
            dir.display()
        ));
        stage.command(&cmd);

        let cg = NslabCgroup::create_for(CGROUP_NAME, &["memory"])?;
        cg.set(Concept::MemoryLimit, &Reading::Limit(Max::Value(limit)))?;
        cg.forbid_swap()?;
        stage.syscalls();
        let dirs = cg.dirs.clone();
        stage.view(
            &format!("The new cgroup {}", dir.display()),
            &views::cgroup::render_cgroup(&dirs, &cg.read_all(&MEMORY_VIEW)),
        );
        if version == CgVersion::V2 && cg.created_dirs().iter().any(|d| d == &parent) {
            stage.say(
                "On v2 the memory controller had to be handed down first: nslab made its `nslab` parent and wrote \
                 +memory into that parent's cgroup.subtree_control, after which `oom` got a memory.max file.",
            );
        }
        if let Ok(Reading::Limit(Max::Value(back))) = cg.read(Concept::MemoryLimit) {
            if back == limit {
                stage.say(&format!(
                    "nslab wrote {limit} ({}) and the kernel stored exactly that.",
                    human_bytes(limit)
                ));
            } else {
                stage.say(&format!(
                    "nslab wrote {limit} and reads back {back}: the kernel rounds byte limits down to whole 4096-byte pages."
                ));
            }
        }
        self.cg = Some(cg);
        Ok(())
    }

    fn step_b(&mut self, stage: &mut Stage) -> Result<()> {
        if self.cg.is_some() {
            stage.say("The cgroup exists already.");
            return Ok(());
        }
        self.make_cgroup(stage)
    }

    fn mem_dir(&self) -> Result<(PathBuf, CgVersion)> {
        let cg = self.cg.as_ref().context("no cgroup yet")?;
        let d = cg
            .dir_for("memory")
            .context("nslab's cgroup has no memory directory")?;
        Ok((d.path.clone(), d.version))
    }

    fn step_c(&mut self, stage: &mut Stage) -> Result<()> {
        self.ensure_cgroup(stage)?;
        let limit = self.limit;
        let (dir, _) = self.mem_dir()?;
        let cg = self.cg.as_ref().expect("ensured above");
        self.before_values = Some(views::cgroup::render_values(&cg.read_all(&MEMORY_VIEW)));
        self.kills_before = read_count(cg, Concept::OomKills);
        self.seq_before = kmsg::last_seq();
        stage.command(&format!(
            "sudo sh -c 'echo $$ > {}/cgroup.procs; exec tail /dev/zero'",
            dir.display()
        ));
        let goal = hog_goal(limit);
        let mut hog = MemoryHog::spawn(goal, STEP, PAUSE)?;
        let pid = hog.pid();
        hog.start_in(cg)?;
        stage.syscalls();
        stage.say(&format!(
            "The hog is PID {pid}, now in the cgroup and nowhere else in the memory hierarchy. It will try to take {} \
             against a limit of {}.",
            human_bytes(goal),
            human_bytes(limit)
        ));
        let ev = climb(stage, &mut hog, cg, limit)?;
        if let HogEvent::Holding(_) = ev {
            // Not what a limit below the goal should allow; step d says so. Let it go now.
            hog.release()?;
        }
        self.end = Some((pid, ev));
        Ok(())
    }

    fn step_d(&mut self, stage: &mut Stage) -> Result<()> {
        if self.end.is_none() {
            stage.say("Running the hog of step c first.");
            self.step_c(stage)?;
        }
        let (pid, ev) = self.end.clone().expect("ran above");
        let (dir, version) = self.mem_dir()?;
        let cg = self.cg.as_ref().expect("made with the hog");
        match &ev {
            HogEvent::Ended(end) => say_end(stage, pid, end),
            HogEvent::Holding(n) | HogEvent::Progress(n) => stage.say(&format!(
                "The hog was NOT killed: it holds {} under this cgroup's limit. Is swap taking the excess? \
                 (memory.swap.max / memory.memsw.limit_in_bytes)",
                human_bytes(*n)
            )),
        }
        let oom_file = Concept::OomKills.files(version)[0].file;
        let layout = self.layout.clone().context("layout read in step c")?;
        let path = layout.path_in_hierarchy("memory", &dir).unwrap_or_default();
        stage.command(&format!(
            "cat {}/{oom_file}\nsudo dmesg | grep -A1 'oom_memcg={path}'",
            dir.display()
        ));
        let after = views::cgroup::render_values(&cg.read_all(&MEMORY_VIEW));
        stage.before_after(
            "The cgroup before the hog and after its end",
            self.before_values.as_deref().unwrap_or(""),
            &after,
        );
        let kills = read_count(cg, Concept::OomKills);
        let peak = match cg.read(Concept::MemoryPeak) {
            Ok(Reading::Bytes(p)) => format!(", and the peak was {}", human_bytes(p)),
            _ => String::new(),
        };
        stage.say(&format!(
            "oom_kill went from {} to {kills} ({}); usage hit the limit {} time(s) ({}){peak}.",
            self.kills_before,
            Concept::OomKills.file_label(version),
            read_count(cg, Concept::MemoryFailcnt),
            Concept::MemoryFailcnt.file_label(version),
        ));
        match kmsg::oom_kills_in(&path) {
            None => stage.say(
                "The kernel's log (/dev/kmsg) cannot be read here, so its line for this kill cannot be shown; \
                 on a machine where it can, `sudo dmesg` shows it.",
            ),
            Some(kills) => match kills.iter().rev().find(|k| Some(k.seq) > self.seq_before && k.pid == pid) {
                Some(k) => {
                    stage.view("The kernel's own report, from /dev/kmsg", &views::cgroup::render_oom_kill(k));
                    stage.say(&format!(
                        "constraint={}: the limit of a memory cgroup was hit, not the machine's memory. oom_memcg={} is the \
                         cgroup whose limit it was, and pid={} ({}) the hog.",
                        k.constraint,
                        k.oom_memcg.as_deref().unwrap_or("?"),
                        k.pid,
                        k.task
                    ));
                }
                None => stage.say("The kernel's log has no line for this kill (the log may have been cleared)."),
            },
        }
        Ok(())
    }

    fn step_e(&mut self, stage: &mut Stage) -> Result<()> {
        self.ensure_cgroup(stage)?;
        let limit = self.limit;
        let goal = hog_goal(limit);
        let high = survivor_limit(limit);
        let (dir, version) = self.mem_dir()?;
        let limit_file = Concept::MemoryLimit.files(version)[0].file;
        let cg = self.cg.as_ref().expect("ensured above");
        stage.command(&format!(
            "echo {high} | sudo tee {d}/{limit_file}\nsudo sh -c 'echo $$ > {d}/cgroup.procs; head -c {goal} /dev/zero | tail > /dev/null'",
            d = dir.display()
        ));
        cg.set(Concept::MemoryLimit, &Reading::Limit(Max::Value(high)))?;
        let kills_before = read_count(cg, Concept::OomKills);
        let mut hog = MemoryHog::spawn(goal, STEP, PAUSE)?;
        let pid = hog.pid();
        hog.start_in(cg)?;
        stage.syscalls();
        let ev = climb(stage, &mut hog, cg, high)?;
        match ev {
            HogEvent::Holding(n) => {
                stage.view(
                    &format!("The cgroup while PID {pid} holds its memory"),
                    &views::cgroup::render_values(&cg.read_all(&MEMORY_VIEW)),
                );
                let avail = hog::mem_available()
                    .map(human_bytes)
                    .unwrap_or_else(|| "?".into());
                stage.say(&format!(
                    "The same hog now holds all {} it wanted, under a limit of {}; oom_kill is still {}. The machine has \
                     {avail} available, as it had when the first hog died: the limit, not the machine, decided.",
                    human_bytes(n),
                    human_bytes(high),
                    read_count(cg, Concept::OomKills)
                ));
                let end = hog.release()?;
                stage.say(&format!(
                    "Told to finish, it exited with status {}.",
                    end.shell_status
                ));
            }
            HogEvent::Ended(end) => {
                say_end(stage, pid, &end);
                stage.say(&format!(
                    "Even {} was not enough here (oom_kill {} → {}).",
                    human_bytes(high),
                    kills_before,
                    read_count(cg, Concept::OomKills)
                ));
            }
            HogEvent::Progress(_) => {}
        }
        Ok(())
    }

    fn step_f(&mut self, stage: &mut Stage) -> Result<()> {
        let Some(mut cg) = self.cg.take() else {
            stage.say("nslab made no cgroup in this run: nothing to remove.");
            return Ok(());
        };
        let dirs: Vec<PathBuf> = cg.created_dirs().iter().rev().cloned().collect();
        let shown: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        stage.command(&format!(
            "cat {}/cgroup.procs     # empty\nsudo rmdir {}",
            dirs[0].display(),
            shown.join(" ")
        ));
        let procs = cg.pids()?;
        if !procs.is_empty() {
            stage.say(&format!(
                "Still inside: {procs:?}; nslab kills them first (it started them)."
            ));
        }
        cg.remove()?;
        stage.syscalls();
        let left: Vec<&PathBuf> = dirs.iter().filter(|d| d.exists()).collect();
        if left.is_empty() {
            stage.say(&format!("Removed, files and all: {}.", shown.join(" and ")));
        } else {
            stage.say(&format!(
                "Left in place: {} (another nslab run's cgroup is inside it).",
                left.iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Ok(())
    }
}

fn say_end(stage: &Stage, pid: i32, end: &HogEnd) {
    match (end.signal, end.code) {
        (Some(sig), _) if end.killed_by_sigkill() => stage.say(&format!(
            "The hog (PID {pid}) was killed by {} after touching {}. A shell prints `Killed`, and `echo $?` gives {} \
             (128 + {}).",
            sig.as_str(),
            human_bytes(end.touched),
            end.shell_status,
            sig as i32
        )),
        (Some(sig), _) => stage.say(&format!(
            "The hog (PID {pid}) ended by {}, not by the OOM killer's SIGKILL.",
            sig.as_str()
        )),
        (None, Some(code)) => stage.say(&format!("The hog (PID {pid}) exited by itself with status {code}.")),
        _ => stage.say(&format!("The hog (PID {pid}) ended.")),
    }
}

/// Follow the hog to its end or its goal, drawing usage against `limit`: a bar on a
/// terminal (drawn on each step, no ticking thread), a line per quarter when plain.
pub(super) fn climb(
    stage: &Stage,
    hog: &mut MemoryHog,
    cg: &Cgroup,
    limit: u64,
) -> Result<HogEvent> {
    let version = cg
        .dir_for("memory")
        .map(|d| d.version)
        .unwrap_or(CgVersion::V1);
    let usage_file = Concept::MemoryUsage.files(version)[0].file;
    let bar = stage.ui.gauge(limit);
    let mut quarter = 0;
    loop {
        let ev = hog.next(Duration::from_secs(30))?;
        let usage = read_count(cg, Concept::MemoryUsage);
        let touched = match &ev {
            HogEvent::Progress(t) | HogEvent::Holding(t) => *t,
            HogEvent::Ended(e) => e.touched,
        };
        let msg = format!(
            "{usage_file} {} of {} (touched {})",
            human_bytes(usage),
            human_bytes(limit),
            human_bytes(touched)
        );
        match &bar {
            Some(b) => b.set(usage, msg),
            None => {
                let q = (touched * 4 / limit.max(1)).min(8);
                if q > quarter {
                    quarter = q;
                    stage.ui.out(&format!("  {msg}"));
                }
            }
        }
        if !matches!(ev, HogEvent::Progress(_)) {
            if let Some(b) = bar {
                b.finish();
            }
            return Ok(ev);
        }
    }
}

impl Lesson for OomLesson {
    const STEPS: &'static [Step<Self>] = &[
        Step {
            id: 'a',
            title: "Where your process is",
            keyboard: false,
            run: Self::step_a,
        },
        Step {
            id: 'b',
            title: "A cgroup with a limit",
            keyboard: false,
            run: Self::step_b,
        },
        Step {
            id: 'c',
            title: "The hog",
            keyboard: false,
            run: Self::step_c,
        },
        Step {
            id: 'd',
            title: "The kill",
            keyboard: false,
            run: Self::step_d,
        },
        Step {
            id: 'e',
            title: "The same hog, a higher limit",
            keyboard: false,
            run: Self::step_e,
        },
        Step {
            id: 'f',
            title: "Cleaning up",
            keyboard: false,
            run: Self::step_f,
        },
    ];

    fn options() -> Vec<clap::Arg> {
        vec![clap::Arg::new("limit")
            .long("limit")
            .value_name("SIZE")
            .help(
            "Lesson 3: the memory limit to set (default 30M; 31457280, 30MiB and 30MB work too)",
        )]
    }

    fn start(options: &clap::ArgMatches) -> Result<Self> {
        let limit = match options.try_get_one::<String>("limit").ok().flatten() {
            Some(text) => parse_limit_flag(text)?,
            None => DEFAULT_LIMIT,
        };
        Ok(OomLesson {
            limit,
            ..Self::default()
        })
    }
}

#[cfg(test)]
mod tests;
