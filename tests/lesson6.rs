//! Lesson 6 end to end: the lesson run with --yes leaving no IPC object behind, and the
//! exercise done with the real tools (`unshare --uts --ipc`, `hostname`, `ipcmk -M 4096`):
//! the pass and each distinct failure.

#[macro_use]
mod common;

use common::{nslab_processes, serial, stdout, wait_until, Learner, Sandbox};
use std::process::Command;
use std::time::Duration;

/// Segments and queues in this namespace whose key is of nslab's form ("ns" + 16 bits).
fn nslab_ipc_objects() -> Vec<String> {
    let mut found = Vec::new();
    for file in ["/proc/sysvipc/shm", "/proc/sysvipc/msg"] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for line in text.lines().skip(1) {
            let Some(key) = line.split_whitespace().next() else {
                continue;
            };
            if key.parse::<i32>().is_ok_and(|k| (k as u32) >> 16 == 0x6e73) {
                found.push(format!("{file}: {line}"));
            }
        }
    }
    found
}

fn assert_nothing_left(sb: &Sandbox) {
    assert!(sb.run_files().is_empty(), "run files: {:?}", sb.run_files());
    assert!(
        nslab_ipc_objects().is_empty(),
        "IPC objects left: {:?}",
        nslab_ipc_objects()
    );
    assert!(
        wait_until(Duration::from_secs(3), || nslab_processes().is_empty()),
        "nslab processes left: {:?}",
        nslab_processes()
    );
}

#[test]
fn lesson_runs_and_leaves_no_ipc_object() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let host = hostname();
    let out = sb.run(&["lesson", "6", "--yes", "--plain"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", common::stderr(&out));
    assert_nothing_left(&sb);
    assert_eq!(hostname(), host, "the host's hostname is unchanged");
    for seen in [
        "unshare(CLONE_NEWUTS) = 0",
        "sethostname(\"nslab-uts\", 9) = 0",
        "IPC_CREAT|IPC_EXCL|0600",
        "= -1 ENOENT",
        "unshare(CLONE_NEWIPC|CLONE_NEWNS) = 0",
        "/nslab-queue",
        "setns(",
        "shmctl(",
        "msgctl(",
        "Exercise:",
    ] {
        assert!(
            text.contains(seen),
            "the transcript shows {seen:?}:\n{text}"
        );
    }
    let wide: Vec<&str> = text
        .lines()
        .filter(|l| console::measure_text_width(l) > 80)
        .collect();
    assert!(wide.is_empty(), "over 80 columns:\n{}", wide.join("\n"));
    let progress: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sb.progress()).unwrap()).unwrap();
    assert_eq!(progress["lessons"]["6"]["lesson_done"], true);
    // A step on its own makes what the earlier steps would have, and removes it too.
    let out = sb.run(&["lesson", "6", "--yes", "--plain", "--step", "d"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("step b first"), "{}", stdout(&out));
    assert_nothing_left(&sb);
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// The learner's shell: `unshare ARGS bash`, its stdin a pipe it reads commands from.
fn shell(args: &[&str]) -> Learner {
    let mut cmd = vec!["unshare"];
    cmd.extend_from_slice(args);
    cmd.push("bash");
    let mut l = Learner::start(&cmd);
    assert!(
        wait_until(Duration::from_secs(10), || l.comm() == "bash"),
        "unshare became bash"
    );
    l.sync();
    l
}

/// A segment made in the host's namespace by `ipcmk`, removed with `ipcrm` when dropped.
struct HostSegment(String);

impl HostSegment {
    fn make() -> HostSegment {
        let out = Command::new("ipcmk").args(["-M", "4096"]).output().unwrap();
        let text = stdout(&out);
        let id = text
            .split_whitespace()
            .last()
            .expect("ipcmk prints the id")
            .to_string();
        assert!(out.status.success(), "{text}");
        HostSegment(id)
    }
}

impl Drop for HostSegment {
    fn drop(&mut self) {
        let _ = Command::new("ipcrm").args(["-m", &self.0]).status();
    }
}

#[test]
fn exercise_passes_with_the_seeds_commands() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let host = hostname();
    let mut l = shell(&["--uts", "--ipc"]);
    l.type_line("hostname lab6-test");
    l.type_line("ipcmk -M 4096");
    l.sync();
    let (code, text) = sb.check("6", &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(&format!("host PID {}", l.pid())),
        "names the shell: {text}"
    );
    assert!(text.contains("lab6-test"), "{text}");
    let (code, json) = sb.check("6", &["--json"]);
    assert_eq!(code, 0, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["verdict"], "pass");
    // Pointed at it, the same.
    let (code, text) = sb.check("6", &["--pid", &l.pid().to_string()]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(hostname(), host, "the host's hostname is unchanged");
    drop(l);
    assert!(sb.run_files().is_empty());
}

#[test]
fn each_failure_has_its_own_hint() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let host = hostname();

    sb.assert_check_fails_with("6", "nothing-found", "shell in new namespaces");

    {
        // No --uts: the hostname must not be set here (it would rename the host).
        let mut l = shell(&["--ipc"]);
        l.type_line("ipcmk -M 4096");
        l.sync();
        sb.assert_check_fails_with("6", "no-uts", "UTS namespace");
    }
    {
        // No --ipc: the segment is left out, it would be the host's.
        let mut l = shell(&["--uts"]);
        l.type_line("hostname lab6-test");
        l.sync();
        sb.assert_check_fails_with("6", "no-ipc", "IPC namespace");
    }
    {
        let mut l = shell(&["--uts", "--ipc"]);
        l.type_line("ipcmk -M 4096");
        l.sync();
        sb.assert_check_fails_with("6", "same-hostname", "hostname");
    }
    {
        let mut l = shell(&["--uts", "--ipc"]);
        l.type_line("hostname lab6-test");
        l.sync();
        sb.assert_check_fails_with("6", "no-segment", "shared memory segment");
        // `ipcmk` typed in the other terminal: the segment is the host's.
        let _made = HostSegment::make();
        sb.assert_check_fails_with("6", "segment-in-host", "host's IPC namespace");
    }
    let me = std::process::id().to_string();
    let (code, json) = sb.check("6", &["--pid", &me, "--json"]);
    assert_eq!(code, 1, "{json}");
    assert!(json.contains("\"host-namespace\""), "{json}");
    let (code, _) = sb.check("6", &["--pid", "999999999"]);
    assert_eq!(code, 2, "a PID that does not exist is a usage error");
    assert_eq!(hostname(), host, "the host's hostname is unchanged");
    assert!(sb.run_files().is_empty());
}
