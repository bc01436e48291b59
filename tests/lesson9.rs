//! Lesson 9 end to end: the lesson run straight through (nothing left after it); the
//! exercise done with the real tools (a container by `unshare … chroot`, a second process
//! by `nsenter`), the pass and each failure.

mod common;

use common::{nslab_processes, serial, stdout, wait_until, Learner, Sandbox, TestRootfs};
use std::process::Stdio;
use std::time::Duration;

/// nslab's pins under /run/netns (`nslab-join-<pid>`).
fn pins() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("nslab-join"))
                .collect()
        })
        .unwrap_or_default()
}

fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The seeds' container: `unshare --pid --fork --mount --uts --ipc --mount-proc chroot
/// ROOTFS /bin/sh`, its shell waiting on stdin. Returns it and its PID 1's host PID.
fn container(root: &TestRootfs) -> (Learner, i32) {
    let mut l = Learner::start(&[
        "unshare",
        "--pid",
        "--fork",
        "--mount",
        "--uts",
        "--ipc",
        "--mount-proc",
        "chroot",
        root.path(),
        "/bin/sh",
    ]);
    assert!(
        wait_until(Duration::from_secs(5), || !l.children().is_empty()),
        "unshare forked"
    );
    let pid1 = l.children()[0];
    assert!(
        wait_until(Duration::from_secs(5), || comm(pid1) == "sh"),
        "PID 1 runs the shell"
    );
    l.type_line("mount -t proc proc /proc");
    l.type_line("hostname nslabt-box");
    l.sync();
    (l, pid1)
}

/// `nsenter -t PID1 FLAGS… sleep 1000`, left running; the sleep's host PID once it runs.
fn nsenter(pid1: i32, flags: &[&str]) -> (Learner, i32) {
    let target = pid1.to_string();
    let mut argv = vec!["nsenter", "-t", target.as_str()];
    argv.extend_from_slice(flags);
    argv.extend_from_slice(&["sleep", "1000"]);
    let l = Learner::start(&argv);
    let top = l.pid();
    let mut sleep = 0;
    // With a PID namespace nsenter forks the sleep; without one it becomes it.
    let ran = wait_until(Duration::from_secs(10), || {
        sleep = if comm(top) == "sleep" {
            top
        } else {
            children(top)
                .into_iter()
                .find(|c| comm(*c) == "sleep")
                .unwrap_or(0)
        };
        sleep != 0
    });
    assert!(ran, "nsenter {flags:?} started sleep");
    (l, sleep)
}

#[test]
fn exercise_passes_with_nsenter() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let root = TestRootfs::new();
    let (_box, pid1) = container(&root);
    let (_joiner, sleep) = nsenter(pid1, &["-a", "-r", "-w"]);
    let (code, text) = sb.check("9", &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(&format!("host PID {sleep}")), "{text}");
    assert!(text.contains(&format!("host PID {pid1}")), "{text}");
    // Pointed at the container, or at the joiner itself.
    for pid in [pid1, sleep] {
        let (code, json) = sb.check("9", &["--json", "--pid", &pid.to_string()]);
        assert_eq!(code, 0, "--pid {pid}: {json}");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["verdict"], "pass");
        assert_eq!(v["facts"].as_array().unwrap().len(), 5);
    }
}

#[test]
fn exercise_failures_each_have_their_own_diff_and_hint() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    sb.assert_check_fails_with("9", "nothing-found", "not found");
    let root = TestRootfs::new();
    let (mut shell, pid1) = container(&root);
    sb.assert_check_fails_with("9", "nothing-joined", "second process: none");

    // The second process without --uts.
    {
        let _j = nsenter(pid1, &["-p", "-m", "-i", "-r", "-w"]);
        sb.assert_check_fails_with("9", "namespaces-missing", "namespaces: not joined: uts");
    }
    // Without a PID namespace: nsenter itself becomes the sleep, in the host's.
    {
        let _j = nsenter(pid1, &["-m", "-u", "-i", "-r", "-w"]);
        let text = sb.assert_check_fails_with("9", "namespaces-missing", "not joined: pid");
        assert!(
            text.contains("none: not in the container's PID namespace"),
            "{text}"
        );
    }
    // Without -r: joining the mount namespace gives its root, the host's /, not the chroot.
    {
        let _j = nsenter(pid1, &["-a"]);
        sb.assert_check_fails_with(
            "9",
            "root-not-container",
            "root directory: the host's /, not the container's",
        );
    }
    // Started from the container's own shell: a child of PID 1. (The shell opens
    // /dev/null for a background job, which the test's root has to have first.)
    shell.type_line("/bin/busybox mknod -m 666 /dev/null c 1 3");
    shell.type_line("sleep 1000 &");
    shell.sync();
    sb.assert_check_fails_with(
        "9",
        "child-of-pid1",
        "second process: a child of PID 1, started inside",
    );
    // --pid at a process in the host's namespace; at no process.
    let (code, json) = sb.check("9", &["--json", "--pid", &std::process::id().to_string()]);
    assert_eq!(code, 1);
    assert!(json.contains("host-namespace"), "{json}");
    assert_eq!(sb.check("9", &["--pid", "999999999"]).0, 2);
}

#[test]
fn lesson_runs_through_and_leaves_nothing() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let child = sb
        .cmd(&["lesson", "9", "--yes", "--plain"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = common::finish_within(child, common::RUN_LIMIT, "lesson 9 --yes");
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        common::stderr(&out)
    );
    // Step a: one setns, one link changed, the container's hostname.
    assert!(
        text.contains("setns(5, CLONE_NEWUTS) = 0") || text.contains(", CLONE_NEWUTS) = 0"),
        "{text}"
    );
    assert!(text.contains("after setns   nslab-join"), "{text}");
    // Step b: nsenter's order, the PID namespace set before the fork.
    let order: Vec<usize> = [
        "CLONE_NEWPID) = 0",
        "fork() = ",
        "CLONE_NEWIPC) = 0",
        "CLONE_NEWUTS) = 0",
        "CLONE_NEWNET) = 0",
        "CLONE_NEWNS) = 0",
        "chroot(\".\") = 0",
    ]
    .iter()
    .map(|s| {
        let b = text.find("Step b").unwrap();
        b + text[b..]
            .find(s)
            .unwrap_or_else(|| panic!("{s} in step b: {text}"))
    })
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}: {text}");
    // Step c: the pin holds the namespace after the container is gone.
    assert!(
        text.contains("MS_BIND, NULL) = 0") || text.contains("MS_BIND,"),
        "{text}"
    );
    assert!(
        text.contains("The container is gone and 0 processes"),
        "{text}"
    );
    assert!(text.contains("lo    loopback"), "{text}");
    // Step d: PPID 0 inside.
    assert!(text.contains("its parent is 0"), "{text}");
    assert!(pins().is_empty(), "pins left: {:?}", pins());
    assert!(
        sb.run_files().is_empty(),
        "ledger left: {:?}",
        sb.run_files()
    );
    assert!(
        wait_until(Duration::from_secs(3), || nslab_processes().is_empty()),
        "nslab processes left: {:?}",
        nslab_processes()
    );
}
