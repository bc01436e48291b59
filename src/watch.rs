//! `nslab check N --watch`: judge, wait for the kernel to announce a change (or a second to
//! pass: some changes have no event), judge again; until the check passes or Ctrl-C.

use crate::checks::{self, CheckReport};
use crate::error::{Problem, EXIT_OK};
use crate::kernel::trace;
use crate::kernel::watch::{Watcher, Woken};
use crate::lesson::{CheckArgs, LessonInfo};
use crate::ui::{self, Redraw, Ui};
use crate::{commands, progress, views};
use anyhow::Result;
use std::time::Duration;

/// How long a watch waits for an event before judging again anyway.
pub const SAMPLE: Duration = Duration::from_secs(1);
/// Overrides [`SAMPLE`] in milliseconds, within [`SAMPLE_BOUNDS`]: tests and benchmarks
/// set it long, so that what they see can only have come from an event.
const SAMPLE_VAR: &str = "NSLAB_WATCH_SAMPLE_MS";
const SAMPLE_BOUNDS: (u64, u64) = (100, 600_000);

fn sample() -> Duration {
    std::env::var(SAMPLE_VAR)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(SAMPLE, |ms| {
            Duration::from_millis(ms.clamp(SAMPLE_BOUNDS.0, SAMPLE_BOUNDS.1))
        })
}

pub fn run(ui: &Ui, info: &LessonInfo, json: bool, args: &CheckArgs) -> Result<i32> {
    let mut watcher = Watcher::new()?;
    let sources = watcher.sources();
    let watching = views::watch::sources(&sources);
    let sample = sample();
    let every = if sample == SAMPLE {
        "every second".to_string()
    } else {
        format!("every {:.1} s", sample.as_secs_f64())
    };
    let footer =
        format!("Watching {watching}; judged again on each change, and {every}. Ctrl-C to stop.");
    let mut screen = (ui.redraws && !json).then(Redraw::default);
    if json {
        if sources.processes.is_err() {
            ui.warn(&format!("watching {watching}, {every}"));
        }
    } else if screen.is_none() {
        ui.out(&format!(
            "watch: {watching}; judged again on each change and {every}"
        ));
    }
    let mut last: Option<CheckReport> = None;
    let mut last_error: Option<String> = None;
    let mut last_line = String::new();
    // The first judgement and each change the kernel announces are judged at once first; a
    // check that samples over a while (check 4) then measures. A look when nothing was
    // announced is a full judgement only.
    let mut quick = true;
    loop {
        let observed = (info.check)(&CheckArgs {
            quick,
            ..args.clone()
        });
        // What a check opens to look is not one of the learner's actions: nothing to show.
        trace::take();
        let report = match observed {
            Ok(obs) => checks::report(info, obs),
            Err(e) if last.is_none() || e.downcast_ref::<Problem>().is_some() => return Err(e),
            Err(e) => {
                // Something vanished while it was read (a process ending): say so, go on.
                let text = format!("could not judge just now: {e:#}");
                if last_error.as_deref() != Some(text.as_str()) {
                    show_error(ui, screen.is_some() || json, &text);
                    last_error = Some(text);
                }
                quick = matches!(watcher.wait(sample)?, Woken::Event(_));
                continue;
            }
        };
        // A quick judgement is news only when a fact it did not leave to measure changed.
        let changed = last_error.take().is_some()
            || match &last {
                None => true,
                Some(l) if report.measuring => !views::watch::same_so_far(l, &report),
                Some(l) => !views::watch::same_judgement(l, &report),
            };
        if changed {
            if !info.is_bonus() && !report.measuring && (last.is_none() || report.passed) {
                progress::record_check(info.number, report.passed);
            }
            if json {
                ui.out(&serde_json::to_string(&report)?);
            } else if let Some(screen) = screen.as_mut() {
                let width = ui::width();
                let mut frame = views::watch::frame(&report, width);
                if !report.passed {
                    frame.push('\n');
                    frame.push_str(&ui::wrap(&footer, width, "", ""));
                }
                screen.show(&frame);
            } else {
                // A judgement whose line reads the same (another PID, say) is no news.
                let line = views::watch::line(&report);
                if line != last_line {
                    ui.out(&line);
                    last_line = line;
                }
            }
        }
        if report.passed {
            if !json {
                ui.good(&commands::done(info));
            }
            return Ok(EXIT_OK);
        }
        if report.measuring {
            // Shown or not, the last judgement shown stays the one to compare with.
            if changed {
                last = Some(report);
            }
            quick = false;
            continue;
        }
        last = Some(report);
        quick = matches!(watcher.wait(sample)?, Woken::Event(_));
    }
}

fn show_error(ui: &Ui, on_screen: bool, text: &str) {
    if on_screen {
        ui.warn(text);
    } else {
        ui.out(&format!("check: {text}"));
    }
}
