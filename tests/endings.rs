//! Every way a lesson can end mid-way, in every lesson: Ctrl-C, Ctrl-\, a closed terminal
//! (SIGHUP), SIGTERM — each torn down by nslab itself, with exit 128 + the signal — and
//! `kill -9`, after which `nslab cleanup` removes what the ledger lists. Each run is paused
//! where the lesson has made things; whatever its ledger lists then must be gone after.

#[macro_use]
mod common;

use common::{alive, serial, stdout, wait_until, Sandbox};
use nix::sys::signal::Signal;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Each lesson with steps, paused before the step given: what the earlier steps made is
/// alive (a namespace, a cgroup with a hog, a root filesystem and a container).
const PAUSES: [(&str, char); 8] = [
    ("1", 'c'),
    ("2", 'd'),
    ("3", 'c'),
    ("4", 'c'),
    ("5", 'c'),
    ("6", 'c'),
    ("7", 'c'),
    ("9", 'd'),
];

const ENDINGS: [Signal; 5] = [
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGHUP,
    Signal::SIGTERM,
    Signal::SIGKILL,
];

/// What the run files of `sb` list, as JSON entries.
fn recorded(sb: &Sandbox) -> Vec<serde_json::Value> {
    sb.run_files()
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .filter_map(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .flat_map(|v| v["resources"].as_array().cloned().unwrap_or_default())
        .collect()
}

fn is_mount_point(path: &str) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(path))
}

fn command_succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Does this IPC namespace's table (`/proc/sysvipc/shm` or `msg`) list an object with `key`?
fn has_sysv_key(table: &str, key: Option<i64>) -> bool {
    let key = key.expect("a System V entry has a key").to_string();
    std::fs::read_to_string(table)
        .unwrap_or_default()
        .lines()
        .skip(1)
        .any(|l| l.split_whitespace().next() == Some(key.as_str()))
}

/// Is the object a ledger entry names still on the system?
fn still_there(entry: &serde_json::Value) -> bool {
    let text = |k: &str| entry[k].as_str().unwrap_or_default().to_string();
    match entry["kind"].as_str().unwrap_or_default() {
        "process" => {
            let pid = entry["pid"].as_i64().unwrap_or(0) as i32;
            // Processes end with nslab (PR_SET_PDEATHSIG) or are reaped: give them a moment.
            !wait_until(Duration::from_secs(5), || !alive(pid))
        }
        "cgroup" | "dir" => Path::new(&text("path")).exists(),
        "mount" => is_mount_point(&text("path")),
        "net_ns" => Path::new("/run/netns").join(text("name")).exists(),
        "link" => command_succeeds("ip", &["link", "show", "dev", &text("name")]),
        "nft_table" => command_succeeds("nft", &["list", "table", &text("family"), &text("name")]),
        "sysv_shm" => has_sysv_key("/proc/sysvipc/shm", entry["key"].as_i64()),
        "sysv_msg" => has_sysv_key("/proc/sysvipc/msg", entry["key"].as_i64()),
        other => panic!("a ledger entry of kind {other:?} this test does not know: {entry}"),
    }
}

#[test]
fn every_ending_of_every_lesson_leaves_nothing() {
    require_root!();
    let _g = serial();
    for (lesson, before) in PAUSES {
        for signal in ENDINGS {
            let what = format!("lesson {lesson} paused before step {before}, then {signal}");
            let sb = Sandbox::new();
            let mut child = sb.lesson_paused_before(lesson, before);
            let made = recorded(&sb);
            assert!(!made.is_empty(), "{what}: nothing on record to remove");
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
            let status = child.wait().unwrap();
            if signal == Signal::SIGKILL {
                assert!(!sb.run_files().is_empty(), "{what}: the ledger survives");
                let out = sb.run(&["cleanup", "--plain"]);
                assert_eq!(
                    out.status.code(),
                    Some(0),
                    "{what}: cleanup: {}{}",
                    stdout(&out),
                    common::stderr(&out)
                );
                let again = stdout(&sb.run(&["cleanup", "--plain"]));
                assert!(again.contains("Nothing to clean up"), "{what}: {again}");
            } else {
                assert_eq!(
                    status.code(),
                    Some(128 + signal as i32),
                    "{what}: exit code"
                );
            }
            let left: Vec<&serde_json::Value> = made.iter().filter(|e| still_there(e)).collect();
            assert!(left.is_empty(), "{what}: still there: {left:?}");
            assert!(
                sb.run_files().is_empty(),
                "{what}: run files left: {:?}",
                sb.run_files()
            );
        }
    }
}

/// Lessons whose every object dies with their processes, so nothing goes on a ledger
/// (lesson 8, run as the learner under sudo): paused before the step given, with its
/// namespaces' processes alive; after each ending, every process nslab started is gone.
const UNRECORDED: [(&str, char); 1] = [("8", 'c')];

/// Every process descended from `pid`.
fn descendants(pid: i32) -> Vec<i32> {
    let parent_of = |p: i32| -> Option<i32> {
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
        stat.rsplit(')')
            .next()?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let all: Vec<i32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
        .collect();
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(all.iter().filter(|&&c| parent_of(c) == Some(p)));
        i += 1;
    }
    found.remove(0);
    found
}

#[test]
fn every_ending_of_a_lesson_without_a_ledger_leaves_nothing() {
    require_root!();
    let _g = serial();
    let user = match common::rootless::user() {
        Ok(u) => u,
        Err(why) => return eprintln!("skipped: {why}"),
    };
    let env = [
        ("SUDO_UID", user.uid.to_string()),
        ("SUDO_GID", user.gid.to_string()),
    ];
    for (lesson, before) in UNRECORDED {
        for signal in ENDINGS {
            let what = format!("lesson {lesson} paused before step {before}, then {signal}");
            let sb = Sandbox::new();
            let mut child = sb.lesson_paused_before_with(lesson, before, &env);
            let made = descendants(child.id() as i32);
            assert!(!made.is_empty(), "{what}: no process of the lesson's alive");
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
            let status = child.wait().unwrap();
            if signal != Signal::SIGKILL {
                assert_eq!(
                    status.code(),
                    Some(128 + signal as i32),
                    "{what}: exit code"
                );
            }
            let gone = wait_until(Duration::from_secs(5), || made.iter().all(|&p| !alive(p)));
            let left: Vec<&i32> = made.iter().filter(|&&p| alive(p)).collect();
            assert!(gone, "{what}: still running: {left:?}");
            assert!(sb.run_files().is_empty(), "{what}: nothing on a ledger");
        }
    }
}
