//! One function per command: parse-free, given what the command line asked for.

use crate::checks::{self, CheckReport};
use crate::cli::ShowWhat;
use crate::error::{Problem, EXIT_ENVIRONMENT, EXIT_NOT_YET, EXIT_OK};
use crate::kernel::{machine, ns, procs};
use crate::lesson::{CheckArgs, LessonInfo};
use crate::lessons;
use crate::ui::Ui;
use crate::{engine, progress, views};
use anyhow::Result;

/// A lesson, or a bonus exercise (`5b`) by its key.
fn lesson_or_bonus(key: &str) -> Result<&'static LessonInfo> {
    match lessons::bonus(key) {
        Some(b) => Ok(b),
        None => lesson(key),
    }
}

fn lesson(key: &str) -> Result<&'static LessonInfo> {
    lessons::find(key).ok_or_else(|| {
        let known: Vec<String> = lessons::ALL
            .iter()
            .map(|l| format!("{} ({})", l.number, l.slug))
            .collect();
        Problem::usage(
            format!("there is no lesson '{key}'"),
            format!("choose one of: {}  (nslab list)", known.join(", ")),
        )
    })
}

/// `nslab`: where the learner stands and what is next.
pub fn status(ui: &Ui) -> Result<i32> {
    let (p, note) = progress::load();
    if let Some(n) = note {
        ui.warn(&n);
    }
    ui.title("nslab — Linux namespaces and cgroups, done for real");
    let next = lessons::ALL
        .iter()
        .find(|l| progress::status(&p, l.number) != "passed");
    for l in lessons::ALL {
        ui.out(&format!(
            "  {:>2}  {:<10} {:<14} {}",
            l.number,
            l.slug,
            progress::status(&p, l.number),
            l.title
        ));
    }
    ui.blank();
    match next {
        Some(l) => match progress::status(&p, l.number) {
            "exercise open" => ui.say(&format!(
                "Next: finish exercise {n} ({}) and run `{}`. Stuck? `nslab hint {n}`.",
                l.slug,
                l.command("check"),
                n = l.number
            )),
            _ => ui.say(&format!("Next: `{}` — {}.", l.command("lesson"), l.title)),
        },
        None => {
            let optional: Vec<String> = lessons::BONUSES
                .iter()
                .map(|b| format!("{}: {}", b.key(), b.title))
                .collect();
            ui.say(&format!(
                "Every exercise passed. Optional ones remain — {}; `nslab list` says how to start each.",
                optional.join("; ")
            ))
        }
    }
    if !nix::unistd::geteuid().is_root() {
        ui.say(
            "Lessons and checks need root: run them with sudo. `nslab doctor` checks this machine.",
        );
    }
    Ok(EXIT_OK)
}

pub fn list(ui: &Ui) -> Result<i32> {
    let (p, _) = progress::load();
    let rows: Vec<Vec<String>> = lessons::ALL
        .iter()
        .map(|l| {
            vec![
                l.number.to_string(),
                l.slug.to_string(),
                progress::status(&p, l.number).to_string(),
                l.summary.to_string(),
            ]
        })
        .chain(lessons::BONUSES.iter().map(|b| {
            vec![
                b.key(),
                b.slug.to_string(),
                "optional".to_string(),
                b.summary.to_string(),
            ]
        }))
        .collect();
    ui.out(&views::table::render(
        &["#", "LESSON", "STATUS", "WHAT HAPPENS"],
        &rows,
    ));
    Ok(EXIT_OK)
}

pub fn run_lesson(
    ui: &Ui,
    key: &str,
    yes: bool,
    step: Option<char>,
    options: &clap::ArgMatches,
) -> Result<i32> {
    let info = match (lessons::bonus_lesson(key), lessons::bonus(key)) {
        (Some(b), _) => b,
        (None, Some(b)) => {
            return Err(Problem::usage(
                format!(
                    "{} is an exercise you do by hand after lesson {}, not a lesson",
                    b.key(),
                    b.number
                ),
                format!(
                    "read it with `nslab hint {k}` (the steps: `nslab solution {k}`), judge it with `sudo nslab check {k}`",
                    k = b.key()
                ),
            ))
        }
        (None, None) => lesson(key)?,
    };
    refuse_options_of_other_lessons(info, options)?;
    let lesson = info.steps.start(options)?;
    engine::run(info, lesson, ui, engine::RunOptions { yes, start: step })?;
    Ok(EXIT_OK)
}

/// `nslab lesson` takes every lesson's options; one given to a lesson it is not for is a
/// usage error, not silently ignored.
fn refuse_options_of_other_lessons(info: &LessonInfo, options: &clap::ArgMatches) -> Result<()> {
    for other in lessons::with_steps().filter(|l| !std::ptr::eq(*l, info)) {
        for arg in other.steps.options() {
            let given = options.value_source(arg.get_id().as_str())
                == Some(clap::parser::ValueSource::CommandLine);
            let own = info
                .steps
                .options()
                .iter()
                .any(|a| a.get_id() == arg.get_id());
            if given && !own {
                let long = arg.get_long().unwrap_or(arg.get_id().as_str());
                return Err(Problem::usage(
                    format!(
                        "--{long} is an option of lesson {} ({})",
                        other.key(),
                        other.slug
                    ),
                    format!("drop it: nslab lesson {}", info.key()),
                ));
            }
        }
    }
    Ok(())
}

pub fn check(ui: &Ui, key: &str, json: bool, watch: bool, args: &CheckArgs) -> Result<i32> {
    // A bonus (`5b`) has its own facts; it does not count as the lesson's exercise.
    let info = lesson_or_bonus(key)?;
    let name = info.key();
    if info.needs_root {
        crate::error::require_root(&format!("check {name}"), &format!("nslab check {name}"))?;
    }
    if watch {
        return crate::watch::run(ui, info, json, args);
    }
    let obs = (info.check)(args)?;
    let report: CheckReport = checks::report(info, obs);
    if !info.is_bonus() {
        progress::record_check(info.number, report.passed);
    }
    if json {
        ui.out(&serde_json::to_string_pretty(&report)?);
    } else {
        ui.out(&views::check::report(&report));
        if report.passed {
            ui.good(&done(info));
        }
    }
    Ok(if report.passed { EXIT_OK } else { EXIT_NOT_YET })
}

/// What a passing check says.
pub fn done(info: &LessonInfo) -> String {
    if info.is_bonus() {
        format!("Bonus exercise {} done.", info.key())
    } else {
        format!("Exercise {} done.", info.key())
    }
}

pub fn hint(ui: &Ui, key: &str, id: Option<&str>) -> Result<i32> {
    // A bonus (`5b`) shares its lesson's hints.
    let info = lesson_or_bonus(key)?;
    match id {
        Some(id) => match info.hint(id) {
            Some(h) => ui.markdown(h),
            None => {
                return Err(Problem::usage(
                    format!("lesson {} has no hint '{id}'", info.number),
                    format!("hint ids: {}", info.hint_ids().join(", ")),
                ))
            }
        },
        None => {
            ui.title(&format!("Hints for lesson {}: {}", info.key(), info.title));
            ui.markdown(info.general_hint().map(|(_, text)| text).unwrap_or(""));
            ui.say(&format!(
                "`{}` names what is wrong and shows the hint for it; all hint ids: {}",
                info.command("check"),
                info.hint_ids().join(", ")
            ));
        }
    }
    Ok(EXIT_OK)
}

pub fn solution(ui: &Ui, key: &str) -> Result<i32> {
    let info = lesson_or_bonus(key)?;
    ui.markdown(info.solution);
    Ok(EXIT_OK)
}

fn target_pid(pid: Option<i32>) -> Result<procs::ProcInfo> {
    match pid {
        Some(p) => procs::process(p).ok_or_else(|| {
            Problem::usage(
                format!("there is no process with PID {p}"),
                "list processes with `ps -ef`",
            )
        }),
        None => procs::caller()
            .or_else(|| procs::process(std::process::id() as i32))
            .ok_or_else(|| anyhow::anyhow!("cannot read nslab's own /proc entry")),
    }
}

pub fn show(ui: &Ui, what: &ShowWhat) -> Result<i32> {
    match what {
        ShowWhat::Ns { pid } => {
            let p = target_pid(*pid)?;
            let set = ns::of_pid(p.pid)
                .ok_or_else(|| Problem::usage(format!("PID {} has exited", p.pid), ""))?;
            let me = std::process::id() as i32;
            let mine = ns::of_pid(me).unwrap_or(ns::NsSet {
                pid: me,
                links: vec![],
            });
            let host = ns::host_reference();
            ui.view(
                &format!(
                    "Namespaces of {} (PID {}) beside nslab's ({})",
                    p.comm, p.pid, host.whose
                ),
                &views::ns::compare(&[
                    views::ns::Column {
                        label: format!("nslab (PID {me})"),
                        set: &mine,
                    },
                    views::ns::Column {
                        label: format!("{} (PID {})", p.comm, p.pid),
                        set: &set,
                    },
                ]),
            );
            if set
                .links
                .iter()
                .any(|l| l.unreadable.as_deref() == Some("permission denied"))
            {
                ui.say("Some links are unreadable: run with sudo to see other users' processes.");
            }
        }
        ShowWhat::Procs { pid } => {
            let p = target_pid(*pid)?;
            let table = procs::table()?;
            let members: Vec<procs::ProcInfo> = table
                .into_iter()
                .filter(|q| q.pid_ns.is_some() && q.pid_ns == p.pid_ns)
                .collect();
            ui.view(
                &format!(
                    "Processes in the PID namespace of {} (PID {}): pid:[{}]",
                    p.comm,
                    p.pid,
                    p.pid_ns
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| "unreadable".into())
                ),
                &views::procs::summary(&members, 40),
            );
        }
        ShowWhat::Cgroup { pid } => {
            let p = target_pid(*pid)?;
            show_cgroup(ui, &p)?;
        }
    }
    Ok(EXIT_OK)
}

fn show_cgroup(ui: &Ui, p: &procs::ProcInfo) -> Result<()> {
    use crate::kernel::cgroup::{self, Cgroup, Concept, Layout, LESSON_CONTROLLERS};
    let layout = Layout::read()?;
    let entries = cgroup::proc_cgroup(p.pid)?;
    ui.view(
        &format!("Where {} (PID {}) is, on every hierarchy", p.comm, p.pid),
        &views::cgroup::render_layout(&layout, &entries, &format!("{} (PID {})", p.comm, p.pid)),
    );
    let cg = Cgroup::of_pid(&layout, p.pid, &LESSON_CONTROLLERS)?;
    ui.view(
        "Its limits and usage, with the files they come from",
        &views::cgroup::render_cgroup(&cg.dirs, &cg.read_all(&Concept::ALL)),
    );
    Ok(())
}

pub fn show_progress(ui: &Ui, json: bool) -> Result<i32> {
    let (p, note) = progress::load();
    if let Some(n) = note {
        ui.warn(&n);
    }
    if json {
        ui.out(&serde_json::to_string_pretty(&p)?);
        return Ok(EXIT_OK);
    }
    let rows: Vec<Vec<String>> = lessons::ALL
        .iter()
        .map(|l| {
            let lp = p.lessons.get(&l.number).cloned().unwrap_or_default();
            let steps: Vec<String> = l.step_list().iter().map(|s| s.id.to_string()).collect();
            vec![
                l.number.to_string(),
                l.slug.to_string(),
                format!("{}/{}", lp.steps_seen.len(), steps.len()),
                if lp.lesson_done { "yes" } else { "no" }.into(),
                if lp.check_passed { "passed" } else { "-" }.into(),
            ]
        })
        .collect();
    ui.out(&views::table::render(
        &["#", "LESSON", "STEPS SEEN", "FINISHED", "EXERCISE"],
        &rows,
    ));
    ui.say(&format!("Saved in {}", progress::owner().file.display()));
    Ok(EXIT_OK)
}

/// `nslab reset N` / `--all`: forget progress, after asking on a terminal.
pub fn reset(ui: &Ui, key: Option<&str>, yes: bool) -> Result<i32> {
    let info = match key {
        Some(k) if lessons::bonus(k).is_some() => {
            return Err(Problem::usage(
                format!("'{k}' is an optional exercise: its progress is its lesson's"),
                format!(
                    "nslab reset {}",
                    lessons::bonus(k)
                        .and_then(|b| b.parent)
                        .map_or(0, |p| p.number)
                ),
            ))
        }
        Some(k) => Some(lesson(k)?),
        None => None,
    };
    let what = match info {
        Some(l) => format!("your progress in lesson {} ({})", l.number, l.slug),
        None => "your progress in every lesson".to_string(),
    };
    if !yes {
        use std::io::IsTerminal;
        if !std::io::stdin().is_terminal() {
            return Err(Problem::usage(
                format!("nslab reset asks before it forgets {what}, and this is not a terminal"),
                "add --yes to forget without asking",
            ));
        }
        if !ui.confirm(&format!("Forget {what}? Nothing on the system changes.")) {
            ui.say("Nothing forgotten.");
            return Ok(EXIT_OK);
        }
    }
    if progress::forget(info.map(|l| l.number))? {
        ui.good(&format!("Forgot {what}."));
    } else {
        ui.say(&format!("Nothing to forget: {what} was empty."));
    }
    Ok(EXIT_OK)
}

/// Before any command run as root: remove what runs whose owner has died left behind,
/// in one line. `nslab cleanup` says more.
pub fn clean_up_after_dead_runs(ui: &Ui) {
    match crate::kernel::removal::cleanup_if_root() {
        None => {}
        Some(Ok(report)) => {
            // On stderr: stdout may be JSON (`check --json`).
            if !report.removed.is_empty() {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "nslab: removed what a run that ended without tearing down left behind: {}",
                    report.removed.join(", ")
                );
            }
            if !report.failed.is_empty() {
                ui.warn(&format!(
                    "an ended nslab run left {} that could not be removed; `sudo nslab cleanup` says why",
                    report.failed.len()
                ));
            }
        }
        Some(Err(e)) => ui.warn(&format!("could not look for what ended runs left: {e:#}")),
    }
}

pub fn cleanup(ui: &Ui) -> Result<i32> {
    crate::error::require_root("cleanup", "nslab cleanup")?;
    let report = crate::kernel::removal::cleanup_dead_runs()?;
    for r in &report.removed {
        ui.good(&format!("removed {r}"));
    }
    for f in &report.failed {
        ui.bad(&format!("could not remove {f}"));
    }
    for d in &report.damaged {
        ui.warn(&format!(
            "a run record was unreadable and was set aside as {d}"
        ));
    }
    for u in &report.unknown {
        ui.warn(&format!("left alone: {u}"));
    }
    for n in &report.not_ours {
        ui.say(&format!("Left alone, no longer nslab's: {n}"));
    }
    if !report.live_runs.is_empty() {
        ui.say(&format!(
            "Left alone: what running nslab processes ({}) are using.",
            report
                .live_runs
                .iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if report.removed.is_empty() && report.failed.is_empty() && report.unknown.is_empty() {
        ui.say("Nothing to clean up: no nslab run left anything behind.");
    }
    Ok(if report.failed.is_empty() {
        EXIT_OK
    } else {
        EXIT_NOT_YET
    })
}

struct Finding {
    ok: bool,
    essential: bool,
    what: String,
    fix: String,
}

pub fn doctor(ui: &Ui) -> Result<i32> {
    let mut f: Vec<Finding> = Vec::new();
    let mut add = |ok: bool, essential: bool, what: String, fix: &str| {
        f.push(Finding {
            ok,
            essential,
            what,
            fix: fix.to_string(),
        })
    };
    add(
        true,
        false,
        format!("kernel {}", machine::kernel_release()),
        "",
    );
    let root = nix::unistd::geteuid().is_root();
    add(
        root,
        true,
        if root {
            "running as root".into()
        } else {
            "not running as root".into()
        },
        "lessons and checks need root: run `sudo nslab doctor`, then `sudo nslab lesson 1`",
    );
    let kinds = machine::namespace_kinds();
    let names: Vec<&str> = kinds.iter().map(|k| k.file()).collect();
    let has = |k: ns::NsKind| kinds.contains(&k);
    add(
        has(ns::NsKind::Pid) && has(ns::NsKind::Mnt) && has(ns::NsKind::Net),
        true,
        format!("namespaces: {}", names.join(" ")),
        "this kernel lacks PID/mount/network namespaces: use a recent distribution kernel (see README for VMs)",
    );
    let host = ns::host_reference();
    add(
        true,
        false,
        format!("host namespaces taken from {}", host.whose),
        "",
    );
    let (max_userns, userns_clone) = machine::unprivileged_userns();
    let userns_ok = max_userns.unwrap_or(1) > 0 && userns_clone.unwrap_or(1) != 0;
    add(
        userns_ok,
        false,
        format!(
            "user namespaces for unprivileged users: {}",
            if userns_ok { "allowed" } else { "disabled" }
        ),
        "only needed for `unshare --user` without sudo: sysctl -w user.max_user_namespaces=15000",
    );
    crate::doctor_cgroups::add_findings(&mut |ok, essential, what, fix| {
        add(ok, essential, what, fix)
    });
    let kmsg = machine::kmsg_readable();
    add(
        kmsg,
        false,
        format!(
            "kernel log /dev/kmsg {}",
            if kmsg { "readable" } else { "not readable" }
        ),
        "the OOM lesson shows the kernel's log line only when run as root",
    );
    for tool in ["unshare", "nsenter", "ip", "chroot", "mount", "ps"] {
        let path = machine::which(tool);
        add(
            path.is_some(),
            matches!(tool, "unshare"),
            match &path {
                Some(p) => format!("{tool}: {}", p.display()),
                None => format!("{tool}: not found"),
            },
            match tool {
                "ip" => "install iproute2 (apt-get install iproute2)",
                "ps" => "install procps (apt-get install procps)",
                _ => "install util-linux (apt-get install util-linux)",
            },
        );
    }
    let busybox = crate::kernel::rootfs::static_busybox();
    add(
        busybox.is_some(),
        false,
        match &busybox {
            Some(p) => format!("static busybox: {} (lesson 5's and nslab run's root filesystem)", p.display()),
            None => "static busybox: not found (lesson 5 copies host programs and their libraries instead)".into(),
        },
        "install busybox-static (apt-get install busybox-static)",
    );
    let mut essential_missing = false;
    for x in &f {
        if x.ok {
            ui.good(&x.what);
        } else {
            ui.bad(&x.what);
            ui.out(&format!("    fix: {}", x.fix));
            essential_missing |= x.essential;
        }
    }
    Ok(if essential_missing {
        EXIT_ENVIRONMENT
    } else {
        EXIT_OK
    })
}
