//! nslab: a workshop in one binary for Linux namespaces and cgroups.

mod checks;
mod cli;
mod commands;
mod doctor_cgroups;
mod engine;
mod error;
mod fsutil;
mod kernel;
mod ledger;
mod lesson;
mod lessons;
mod progress;
mod report;
mod runtime;
#[cfg(test)]
mod testing;
mod ui;
mod views;
mod watch;

use cli::Command;

fn main() {
    kernel::sys::install_interrupt_handler();
    kernel::removal::open_ledger();
    let (cli, matches) = cli::parse();
    let ui = ui::Ui::new(cli.plain);
    if !matches!(cli.command, Some(Command::Cleanup)) {
        commands::clean_up_after_dead_runs(&ui);
    }
    let result = match &cli.command {
        None => commands::status(&ui),
        Some(Command::List) => commands::list(&ui),
        Some(Command::Lesson { lesson, yes, step }) => {
            let options = matches
                .subcommand_matches("lesson")
                .expect("parsed as lesson");
            commands::run_lesson(&ui, lesson, *yes, *step, options)
        }
        Some(Command::Check {
            lesson,
            json,
            watch,
            pid,
            cgroup,
        }) => commands::check(
            &ui,
            lesson,
            *json,
            *watch,
            &lesson::CheckArgs {
                pid: *pid,
                cgroup: cgroup.clone(),
                quick: false,
            },
        ),
        Some(Command::Hint { lesson, id }) => commands::hint(&ui, lesson, id.as_deref()),
        Some(Command::Solution { lesson }) => commands::solution(&ui, lesson),
        Some(Command::Show { what }) => commands::show(&ui, what),
        Some(Command::Progress { json }) => commands::show_progress(&ui, *json),
        Some(Command::Reset { lesson, all, yes }) => {
            commands::reset(&ui, lesson.as_deref().filter(|_| !*all), *yes)
        }
        Some(Command::Run {
            rootfs,
            memory,
            cpus,
            pids,
            hostname,
            net,
            cap_add,
            cap_drop,
            trace,
            command,
        }) => runtime::run(&runtime::RunArgs {
            rootfs: rootfs.clone(),
            memory: memory.clone(),
            cpus: cpus.clone(),
            pids: pids.clone(),
            hostname: hostname.clone(),
            net: *net,
            cap_add: cap_add.clone(),
            cap_drop: cap_drop.clone(),
            trace: *trace,
            command: command.clone(),
        }),
        Some(Command::Cleanup) => commands::cleanup(&ui),
        Some(Command::Doctor) => commands::doctor(&ui),
    };
    let code = match result {
        // A signal that came too late to stop the work (during the teardown, say) still
        // says how the run ended.
        Ok(code) => match kernel::sys::ending_signal() {
            Some(signal) if code == error::EXIT_OK => error::EXIT_SIGNALLED + signal,
            _ => code,
        },
        Err(err) => {
            let code = error::exit_code_of(&err);
            match err.downcast_ref::<error::Problem>() {
                Some(p) => ui.error(&p.to_string(), p.fix()),
                None => ui.error(&format!("{err:#}"), None),
            }
            code
        }
    };
    std::process::exit(code);
}
