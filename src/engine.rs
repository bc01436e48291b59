//! The lesson engine: walks a lesson's steps, shows each one's text, lets the lesson act
//! through a [`Stage`], pauses between steps, and always tears down what the run made.

use crate::error::Problem;
use crate::kernel::{sys, trace};
use crate::lesson::{instance, LessonInfo, Run, Stage};
use crate::progress;
use crate::ui::Ui;
use anyhow::Result;
use std::io::{BufRead, IsTerminal};

/// How a lesson is run.
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    /// Run every step without pausing; skip interactive steps.
    pub yes: bool,
    /// Start at this step letter.
    pub start: Option<char>,
}

/// Wait for Enter (or `q` to stop). Returns false when the learner chose to stop.
/// An ending signal ends the wait as an interruption. End of input from a pipe continues
/// without waiting; on a terminal it is Ctrl-D (stop here) or the terminal hanging up,
/// whose SIGHUP may land a moment after the read saw it.
fn pause(ui: &Ui, next: &str) -> Result<bool> {
    ui.out(&format!("\n[Enter] {next}   [q Enter] stop here"));
    let stdin = std::io::stdin();
    sys::wait_readable(&stdin, None)?;
    let mut line = String::new();
    match stdin.lock().read_line(&mut line) {
        Ok(0) if stdin.is_terminal() => {
            std::thread::sleep(std::time::Duration::from_millis(200));
            sys::check_interrupt()?;
            Ok(false)
        }
        Ok(0) => Ok(true),
        Ok(_) => Ok(!line.trim().eq_ignore_ascii_case("q")),
        // A terminal that has hung up answers EIO.
        Err(e) if e.raw_os_error() == Some(libc::EIO) => Err(Problem::Interrupted {
            signal: sys::ending_signal().unwrap_or(libc::SIGHUP),
        }
        .into()),
        Err(e) => Err(e.into()),
    }
}

/// Run `lesson`, started from `info`'s steps, from its first step (or `opts.start`).
pub fn run(
    info: &'static LessonInfo,
    lesson: Box<dyn Run>,
    ui: &Ui,
    opts: RunOptions,
) -> Result<()> {
    if info.needs_root {
        crate::error::require_root(
            &format!("lesson {}", info.key()),
            &format!("nslab lesson {}", info.key()),
        )?;
    }
    let steps = info.step_list();
    let first = match opts.start {
        None => 0,
        Some(k) => steps.iter().position(|s| s.id == k).ok_or_else(|| {
            let ids: Vec<String> = steps.iter().map(|s| s.id.to_string()).collect();
            Problem::usage(
                format!("lesson {} has no step '{k}'", info.key()),
                format!("choose one of: {}", ids.join(", ")),
            )
        })?,
    };
    let note = number_this_run(info)?;
    trace::take();
    let result = run_steps(info, lesson, ui, opts, first, note);
    // Whatever happened, remove everything this run created.
    let failed = crate::kernel::removal::teardown();
    crate::ledger::instance::release();
    for (r, why) in &failed {
        ui.warn(&format!(
            "could not remove {}: {why}; `sudo nslab cleanup` will retry",
            r.describe()
        ));
    }
    result
}

/// A lesson whose steps make named objects claims its number among the live runs of it: a
/// second run beside the first names its objects with `-2`, and says so (the note).
fn number_this_run(info: &LessonInfo) -> Result<Option<String>> {
    if info.names.is_empty() {
        return Ok(None);
    }
    let key = format!("lesson-{}", info.key());
    let Some((n, others)) = crate::kernel::removal::claim_instance(&key, instance::MAX)? else {
        return Err(Problem::environment(
            format!(
                "{} runs of lesson {} are running already",
                instance::MAX,
                info.key()
            ),
            "end one of them (q, or Ctrl-C in its terminal) and start again",
        ));
    };
    instance::set(n);
    if n == 1 {
        return Ok(None);
    }
    let pids: Vec<String> = others.iter().map(|p| p.to_string()).collect();
    let names: Vec<String> = info
        .names
        .iter()
        .map(|b| format!("`{}`", instance::named(b)))
        .collect();
    Ok(Some(format!(
        "Another `{}` is running (PID {}). This run is number {n}: what it makes is named {}, \
             the texts below say so too, and it removes only its own.",
        info.command("lesson"),
        pids.join(", "),
        names.join(", ")
    )))
}

/// A lesson text as this run names things (see [`instance`]).
fn as_named(info: &LessonInfo, text: &str) -> String {
    instance::rename_in(text, info.names, instance::number())
}

fn run_steps(
    info: &'static LessonInfo,
    mut lesson: Box<dyn Run>,
    ui: &Ui,
    opts: RunOptions,
    first: usize,
    note: Option<String>,
) -> Result<()> {
    let steps = info.step_list();
    ui.title(&format!("Lesson {}: {}", info.key(), info.title));
    if let Some(note) = note {
        ui.say(&note);
    }
    if first == 0 {
        ui.markdown(&as_named(info, info.intro()));
    }
    let mut stage = Stage { ui, yes: opts.yes };
    let mut stopped = false;
    for (i, step) in steps.iter().enumerate().skip(first) {
        sys::check_interrupt()?;
        ui.heading(&format!("Step {}: {}", step.id, step.title));
        ui.markdown(&as_named(info, info.step_text(step.id).unwrap_or_default()));
        if step.keyboard && opts.yes {
            ui.say(&format!(
                "Skipped under --yes: it needs you at the keyboard (`{} --step {}`).",
                info.command("lesson"),
                step.id
            ));
        } else {
            lesson.run_step(step.id, &mut stage)?;
            stage.syscalls();
        }
        // A bonus is not its lesson: running it records no progress of the lesson.
        if !info.is_bonus() {
            progress::record_step(info.number, step.id);
        }
        let next = steps.get(i + 1);
        if let (Some(next), false) = (next, opts.yes) {
            if !pause(ui, &format!("step {}", next.id))? {
                stopped = true;
                ui.say(&format!(
                    "Stopped before step {}. Continue later with `{} --step {}`.",
                    next.id,
                    info.command("lesson"),
                    next.id
                ));
                break;
            }
        }
    }
    drop(lesson);
    if !stopped {
        if !info.is_bonus() {
            progress::record_lesson_done(info.number);
        }
        if let Some((heading, body)) = info.exercise() {
            ui.heading(heading);
            ui.markdown(body);
        }
    }
    Ok(())
}
