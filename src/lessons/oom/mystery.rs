//! Optional 3b: an app that keeps being OOM-killed although its own limit is generous.
//!
//! nslab makes `…/nslab/mystery` with a small memory limit and, inside it, the app's cgroup
//! `…/nslab/mystery/app` with a large one, then runs a memory hog there and restarts it each
//! time it dies. The learner finds, from the cgroup files and the kernel's log, that the
//! parent's limit is the one hit, and raises it. `nslab check 3b` judges that fix on the
//! live system while the lesson is still running.

use super::read_count as count;
use crate::error::Problem;
use crate::kernel::cgroup::concepts::human_bytes;
use crate::kernel::cgroup::{self, kmsg, CgVersion, Cgroup, Concept, Max, NslabCgroup, Reading};
use crate::kernel::hog::{self, HogEnd, HogEvent, MemoryHog};
use crate::kernel::sys;
use crate::lesson::instance::named;
use crate::lesson::{run_check, Lesson, LessonInfo, Stage, Step, Table};
use crate::views;
use anyhow::Result;
use std::io::BufRead;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub static BONUS: LessonInfo = LessonInfo {
    number: 3,
    slug: "oom-3b",
    title: "The app that keeps dying (optional)",
    summary:
        "an app OOM-killed again and again under a generous limit: find why, fix it; `lesson 3b`",
    text: include_str!("../../../lessons/03-oom/mystery.md"),
    hints: include_str!("../../../lessons/03-oom/hints.md"),
    solution: include_str!("../../../lessons/03-oom/solution.md"),
    expected_check: include_str!("../../../lessons/03-oom/expected/check-3b.txt"),
    parent: Some(&super::INFO),
    steps: &Table::<Mystery>::OF,
    check: run_check::<super::mystery_check::MysteryCheck>,
    needs_root: true,
    names: &["nslab/mystery"],
};

/// `…/nslab/mystery`: the cgroup above the app, whose limit is the culprit.
pub(super) const PARENT: &str = "mystery";
/// `…/nslab/mystery/app`: the app's own cgroup.
pub(super) const APP: &str = "app";
pub(super) const PARENT_LIMIT: u64 = 32 << 20;
pub(super) const APP_LIMIT: u64 = 256 << 20;
/// What the app takes before it holds still.
pub(super) const APP_NEEDS: u64 = 48 << 20;
/// Room for the app's program on top of what it allocates: a parent limit below
/// APP_NEEDS + ROOM is raised, but not enough.
pub(super) const ROOM: u64 = 8 << 20;
const STEP: u64 = 2 << 20;
const PAUSE: Duration = Duration::from_millis(25);
/// How long the app must hold its memory to count as alive.
const HOLD: Duration = Duration::from_secs(3);
/// The restart pause: doubles after each death, up to the last value.
const BACKOFF: [u64; 5] = [1, 2, 4, 8, 10];

// The mystery only works if the app's own limit is never reached and the parent's is.
const _: () = assert!(PARENT_LIMIT < APP_NEEDS && APP_LIMIT > APP_NEEDS + ROOM);

/// The files shown for both cgroups, before and after.
const VIEW: [Concept; 5] = [
    Concept::MemoryLimit,
    Concept::MemoryUsage,
    Concept::MemoryFailcnt,
    Concept::OomKills,
    Concept::Procs,
];

struct Mystery;

impl Lesson for Mystery {
    const STEPS: &'static [Step<Self>] = &[Step {
        id: 'a',
        title: "The app",
        keyboard: true,
        run: |_, stage| run(stage),
    }];

    fn start(_: &clap::ArgMatches) -> Result<Self> {
        Ok(Mystery)
    }
}

fn limit_of(cg: &Cgroup) -> Option<Max> {
    match cg.read(Concept::MemoryLimit) {
        Ok(Reading::Limit(m)) => Some(m),
        _ => None,
    }
}

pub(super) fn show_max(m: Option<Max>) -> String {
    match m {
        Some(Max::Value(n)) => human_bytes(n),
        Some(Max::Unlimited) => "no limit".into(),
        None => "unreadable".into(),
    }
}

fn mem_version(cg: &Cgroup) -> CgVersion {
    cg.dir_for("memory")
        .map(|d| d.version)
        .unwrap_or(CgVersion::V1)
}

fn mem_dir(cg: &Cgroup) -> PathBuf {
    cg.dir_for("memory")
        .map(|d| d.path.clone())
        .unwrap_or_default()
}

/// Enough memory on the machine for the app and the fix, with a wide margin.
fn require_memory() -> Result<()> {
    if let Some(avail) = hog::mem_available() {
        if avail < 4 * (APP_NEEDS + ROOM) {
            return Err(Problem::environment(
                format!(
                    "this machine has only {} available; the mystery's app needs {} and room to spare",
                    human_bytes(avail),
                    human_bytes(APP_NEEDS)
                ),
                "free some memory (or run it on a larger machine) and start again",
            ));
        }
    }
    Ok(())
}

/// What the learner typed at the lesson's terminal while the app was dying.
enum Keys {
    Nothing,
    GaveUp,
}

/// Wait `d`, noticing Ctrl-C and a line on stdin (giving up). End of input just waits.
fn wait_or_give_up(d: Duration, stdin_open: &mut bool) -> Result<Keys> {
    if !*stdin_open {
        sys::sleep(d)?;
        return Ok(Keys::Nothing);
    }
    let stdin = std::io::stdin();
    if !sys::wait_readable(&stdin, Some(d))? {
        return Ok(Keys::Nothing);
    }
    let mut line = String::new();
    if stdin.lock().read_line(&mut line)? == 0 {
        *stdin_open = false;
        sys::sleep(d)?;
        return Ok(Keys::Nothing);
    }
    Ok(Keys::GaveUp)
}

/// Follow one app's life: it climbs (on a terminal, a bar against its own cgroup's limit:
/// the learner sees how far below it the app dies), then holds or dies. A holding app must
/// stay alive for [`HOLD`] to count.
fn follow(stage: &Stage, hog: &mut MemoryHog, app: &Cgroup) -> Result<Option<HogEnd>> {
    if let HogEvent::Ended(end) = super::climb(stage, hog, app, APP_LIMIT)? {
        return Ok(Some(end));
    }
    let until = Instant::now() + HOLD;
    while Instant::now() < until {
        if let Some(end) = hog.ended()? {
            return Ok(Some(end));
        }
        sys::sleep(Duration::from_millis(100))?;
    }
    Ok(None)
}

fn run(stage: &mut Stage) -> Result<()> {
    require_memory()?;
    // The setup is the mystery: its commands and system calls are shown at the end.
    let mut parent = NslabCgroup::create_for(&named(PARENT), &["memory"])?;
    parent.set(
        Concept::MemoryLimit,
        &Reading::Limit(Max::Value(PARENT_LIMIT)),
    )?;
    parent.forbid_swap()?;
    let app = parent.create_child(APP)?;
    app.set(Concept::MemoryLimit, &Reading::Limit(Max::Value(APP_LIMIT)))?;
    app.forbid_swap()?;
    let setup_calls = crate::kernel::trace::take();

    let app_dir = mem_dir(&app);
    stage.view(
        &format!("The app's cgroup {}", app_dir.display()),
        &views::cgroup::render_cgroup(&app.dirs, &app.read_all(&VIEW)),
    );
    stage.say(&format!(
        "The app needs {} and its cgroup allows {}. Watch it run. Investigate in another terminal; press Enter here \
         to give up and see the answer, Ctrl-C to end.",
        human_bytes(APP_NEEDS),
        human_bytes(APP_LIMIT)
    ));
    let before = (
        views::cgroup::render_values(&parent.read_all(&VIEW)),
        views::cgroup::render_values(&app.read_all(&VIEW)),
    );
    let first_limits = (limit_of(&parent), limit_of(&app));
    let mut seen_limits = first_limits;
    let seq_before = kmsg::last_seq();
    let mut stdin_open = true;
    let mut deaths = 0usize;
    // The app that lived: it keeps holding its memory until the learner has checked.
    let mut survivor = None;
    let solved = loop {
        let mut hog = MemoryHog::spawn(APP_NEEDS, STEP, PAUSE)?;
        let pid = hog.pid();
        hog.start_in(&app)?;
        // Shown for the first start; every restart is the same write.
        if deaths == 0 {
            stage.command(&format!(
                "echo {pid} | sudo tee {}/cgroup.procs   # the app starts: PID {pid}",
                app_dir.display()
            ));
            stage.syscalls();
        } else {
            crate::kernel::trace::take();
        }
        let Some(end) = follow(stage, &mut hog, &app)? else {
            survivor = Some(hog);
            break true;
        };
        deaths += 1;
        let how = match end.signal {
            Some(sig) => format!("killed by {sig}"),
            None => format!("exited with status {}", end.shell_status),
        };
        let pause = BACKOFF[(deaths - 1).min(BACKOFF.len() - 1)];
        stage.say(&format!(
            "Death {deaths}: the app (PID {pid}) was {how} after taking {}; the app's cgroup is at {} of {}. Restart in \
             {pause} s.",
            human_bytes(end.touched),
            human_bytes(count(&app, Concept::MemoryUsage)),
            show_max(limit_of(&app)),
        ));
        let now = (limit_of(&parent), limit_of(&app));
        if now.1 != seen_limits.1 {
            stage.say(&format!(
                "The app's own limit is now {} (it was {}).",
                show_max(now.1),
                show_max(seen_limits.1)
            ));
        }
        if now.0 != seen_limits.0 {
            stage.say(&format!(
                "A limit above the app changed: {} is now {} (it was {}).",
                mem_dir(&parent).display(),
                show_max(now.0),
                show_max(seen_limits.0)
            ));
        }
        seen_limits = now;
        if deaths == 3 {
            stage.say(
                "Stuck? `nslab hint 3b 3b-look` in your other terminal points at where to look (and Enter here gives up).",
            );
        }
        if let Keys::GaveUp = wait_or_give_up(Duration::from_secs(pause), &mut stdin_open)? {
            break false;
        }
    };

    let parent_dir = mem_dir(&parent);
    if solved {
        stage.say(&format!(
            "The app has held its {} for {} s: it lives.",
            human_bytes(APP_NEEDS),
            HOLD.as_secs()
        ));
    } else {
        stage.say("You gave up; here is the answer.");
    }
    stage.before_after(
        &format!("The cgroup above the app, {}", parent_dir.display()),
        &before.0,
        &views::cgroup::render_values(&parent.read_all(&VIEW)),
    );
    stage.before_after(
        &format!("The app's cgroup, {}", app_dir.display()),
        &before.1,
        &views::cgroup::render_values(&app.read_all(&VIEW)),
    );
    explain(stage, &parent, &app, first_limits.0, seq_before, deaths)?;
    show_setup(stage, &parent, &setup_calls);
    if solved && stdin_open {
        stage.say(
            "Run `sudo nslab check 3b` in your other terminal now to have your fix judged; press Enter here to end the \
             mystery.",
        );
        let stdin = std::io::stdin();
        sys::wait_readable(&stdin, None)?;
        let mut line = String::new();
        let _ = stdin.lock().read_line(&mut line)?;
    }
    if let Some(app) = survivor {
        app.release()?;
    }
    stage.command(&format!(
        "sudo rmdir {} {}",
        app_dir.display(),
        parent_dir.display()
    ));
    drop(app);
    parent.remove()?;
    Ok(())
}

/// How nslab set the mystery up, kept for the end: the commands and the system calls.
fn show_setup(stage: &Stage, parent: &Cgroup, calls: &[String]) {
    let version = mem_version(parent);
    let p = mem_dir(parent);
    let limit = Concept::MemoryLimit.files(version)[0].file;
    let swap = cgroup::no_swap_file(version);
    let hand_down = match version {
        CgVersion::V1 => String::new(),
        CgVersion::V2 => format!(
            "echo +memory | sudo tee {}/cgroup.subtree_control\n",
            p.display()
        ),
    };
    stage.say("How nslab had set it up:");
    stage.command(&format!(
        "sudo mkdir {p}\necho {PARENT_LIMIT} | sudo tee {p}/{limit}   # the culprit\necho 0 | sudo tee {p}/{swap}\n\
         {hand_down}sudo mkdir {p}/{APP}\necho {APP_LIMIT} | sudo tee {p}/{APP}/{limit}\necho 0 | sudo tee {p}/{APP}/{swap}",
        p = p.display()
    ));
    stage.ui.syscalls(calls);
}

/// Why the app died, from the counters of both cgroups and the kernel's report of the last
/// kill: whose limit was reached.
fn explain(
    stage: &Stage,
    parent: &Cgroup,
    app: &Cgroup,
    first_parent_limit: Option<Max>,
    seq_before: Option<u64>,
    deaths: usize,
) -> Result<()> {
    let failcnt = Concept::MemoryFailcnt.file_label(mem_version(app));
    let (app_hits, parent_hits) = (
        count(app, Concept::MemoryFailcnt),
        count(parent, Concept::MemoryFailcnt),
    );
    let whose = if app_hits == 0 {
        format!("The app's cgroup never reached its own limit ({failcnt} there: 0), but the cgroup above it did")
    } else {
        format!(
            "The app's cgroup reached its own limit {app_hits} time(s) ({failcnt}), after it was changed; the cgroup \
             above it reached its limit too"
        )
    };
    stage.say(&format!(
        "{whose}, {parent_hits} time(s): its limit was {}. Memory used in a cgroup is also charged to every cgroup above \
         it, and the smallest limit on the way up is the one that holds.",
        show_max(first_parent_limit),
    ));
    let layout = cgroup::Layout::read()?;
    let parent_path = layout
        .path_in_hierarchy("memory", &mem_dir(parent))
        .unwrap_or_default();
    let last_kill = kmsg::oom_kills_in(&parent_path).and_then(|kills| {
        kills
            .into_iter()
            .rev()
            .find(|k| Some(k.seq) > seq_before && k.task_memcg.as_deref() != Some(&parent_path))
    });
    match last_kill {
        Some(k) => {
            stage.view(
                "The kernel's report of the last kill, from /dev/kmsg",
                &views::cgroup::render_oom_kill(&k),
            );
            let (oom, task) = (
                k.oom_memcg.as_deref().unwrap_or("?"),
                k.task_memcg.as_deref().unwrap_or("?"),
            );
            stage.say(&if oom != task {
                format!(
                    "The kernel said it: oom_memcg={oom} (the cgroup whose limit was hit) and task_memcg={task} (where \
                     the killed process was) are not the same cgroup."
                )
            } else {
                format!(
                    "In the kernel's last report both oom_memcg and task_memcg are {oom}: that kill came from the app's \
                     own limit."
                )
            });
        }
        None if deaths > 0 => stage.say(
            "The kernel's log (/dev/kmsg) has no line for these kills here; where it can be read, `sudo dmesg | grep \
             oom-kill` names oom_memcg (whose limit was hit) and task_memcg (where the victim was).",
        ),
        None => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lessons::oom::mystery_check::{F_APP, F_PARENT, F_RUNNING};

    #[test]
    fn bonus_texts_hints_and_key() {
        assert!(BONUS.step_text('a').is_some());
        crate::lessons::assert_hints_and_facts(
            &BONUS,
            &[
                "3b-start",
                "3b-look",
                "3b-own-limit",
                "3b-higher",
                "3b-wait",
                "3b-general",
            ],
            &[F_RUNNING, F_PARENT, F_APP],
        );
        assert_eq!(crate::lessons::bonus("3b").map(|b| b.slug), Some("oom-3b"));
        assert_eq!(
            crate::lessons::bonus_lesson("3B").map(|b| b.slug),
            Some("oom-3b")
        );
        assert!(crate::lessons::bonus_lesson("5b").is_none());
        assert!(BONUS
            .expected_check
            .contains(&format!("holding the {} MiB it needs", APP_NEEDS >> 20)));
    }
}
