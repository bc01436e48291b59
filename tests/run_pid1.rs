//! PID 1's duties in `nslab run`: Ctrl-C in the terminal reaches the command, signals sent
//! to PID 1 are passed on, orphans are reaped so zombies do not count against --pids.

mod common;

use common::{nslab_processes, serial, wait_until, Background, Sandbox};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

/// The host PIDs of processes whose command line is `cmdline` (NUL-separated) and whose
/// parent is a container's init.
fn in_container(cmdline: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cmdline")).is_ok_and(|c| c == cmdline)
        })
        .filter(|p| init_of(*p).is_some())
        .collect()
}

/// The parent of `pid` if it is a container's init (`nslab-init`).
fn init_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ppid: i32 = stat
        .rsplit(')')
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let comm = std::fs::read_to_string(format!("/proc/{ppid}/comm")).ok()?;
    (comm.trim() == "nslab-init").then_some(ppid)
}

fn assert_nothing_left(sb: &Sandbox, cmdline: &str) {
    assert!(
        wait_until(Duration::from_secs(5), || in_container(cmdline).is_empty()
            && nslab_processes().is_empty()),
        "left running: {:?} {:?}",
        in_container(cmdline),
        nslab_processes()
    );
    assert!(sb.run_files().is_empty(), "ledger: {:?}", sb.run_files());
}

#[test]
fn ctrl_c_in_the_terminal_reaches_the_command() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    // `sleep` has no handler for SIGINT: as PID 1 of its namespace the kernel would drop
    // the signal; as PID 2 it dies of it.
    let term = sb.in_terminal("run -- sleep 1000");
    let cmdline = "sleep\u{0}1000\u{0}";
    assert!(
        wait_until(Duration::from_secs(20), || !in_container(cmdline)
            .is_empty()),
        "the container started:\n{}",
        term.screen()
    );
    term.keys(&["C-c"]);
    assert_eq!(
        term.exit_code(Duration::from_secs(10)),
        Some(130),
        "{}",
        term.screen()
    );
    assert_nothing_left(&sb, cmdline);
}

/// `nslab run -- sh -c SCRIPT` started in the background; waits for the line `ready`.
fn started(sb: &Sandbox, script: &str) -> (Background, i32) {
    let mut child = sb
        .cmd(&["run", "--", "sh", "-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    let nslab = child.id() as i32;
    // PID 1 names itself just after it forks the command, which may print first.
    let mut init = None;
    wait_until(Duration::from_secs(10), || {
        init = run_init(nslab);
        init.is_some()
    });
    (Background(child), init.expect("the run's init"))
}

/// The child of `nslab` that is its run's init (named `nslab-init`).
fn run_init(nslab: i32) -> Option<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| c.trim() == "nslab-init")
                && std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| {
                    s.rsplit(')')
                        .next()
                        .and_then(|r| r.split_whitespace().nth(1))
                        == Some(&nslab.to_string())
                })
        })
}

/// nslab's exit code, once it has ended (within 10 s).
fn exit_of(run: &mut Background) -> Option<i32> {
    let mut code = None;
    wait_until(Duration::from_secs(10), || {
        code = run.0.try_wait().ok().flatten().and_then(|s| s.code());
        code.is_some()
    });
    code
}

#[test]
fn signals_sent_to_pid_1_are_passed_on() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let (mut run, init) = started(
        &sb,
        "trap 'exit 42' USR1; echo ready; while :; do sleep 1; done",
    );
    kill(Pid::from_raw(init), Signal::SIGUSR1).unwrap();
    assert_eq!(exit_of(&mut run), Some(42), "the command's own handler ran");

    // `docker stop` sends SIGTERM to PID 1: here it reaches a command without a handler.
    let (mut run, init) = started(&sb, "echo ready; exec sleep 1000");
    kill(Pid::from_raw(init), Signal::SIGTERM).unwrap();
    assert_eq!(exit_of(&mut run), Some(143), "ended by SIGTERM: 128 + 15");
    assert_nothing_left(&sb, "sleep\u{0}1000\u{0}");
}

#[test]
fn orphans_are_reaped_so_zombies_do_not_count_against_pids() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    // Each round leaves an orphan (the subshell ends before or after its child), given to
    // PID 1. Unreaped, sixteen of them would fill pids.max and the next fork would fail;
    // reaped, only the few still running count (on a busy machine a handful at once).
    let script = "i=0; while [ $i -lt 60 ]; do (/bin/true &); i=$((i+1)); done; \
                  sleep 1; echo zombies=$(grep -l '^State:.Z' /proc/[0-9]*/status 2>/dev/null | wc -l)";
    let (code, out, err, _) = sb.run_with_pid(&["run", "--pids", "16", "--", "sh", "-c", script]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        !err.to_lowercase().contains("fork"),
        "a fork was refused: {err}"
    );
    assert!(out.contains("zombies=0"), "{out}");
}
