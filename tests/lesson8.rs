//! Lesson 8 end to end, as an ordinary user: the exercise done with the real `unshare`
//! (the pass and each distinct failure, judged by `nslab check 8` run by the learner, under
//! sudo, and by root alone), and the lesson run with --yes both by the learner and under
//! sudo, where it acts as SUDO_UID, leaving nothing behind.

mod common;

use common::rootless::{self, User};
use common::{nslab_processes, serial, stdout, wait_until, Learner, Sandbox};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The ordinary user the exercise runs as, or `None` (skipped, with the reason) where
/// there is none able to make user namespaces. Needs root, to become that user.
fn learner_user() -> Option<User> {
    if !common::is_root() {
        common::skip("needs root to run commands as another user (run ./test.sh as root)");
        return None;
    }
    match rootless::user() {
        Ok(u) => Some(u),
        Err(why) => {
            // The machine's own policy, not something test.sh provides: skipped, never failed.
            eprintln!("skipped: {why}");
            None
        }
    }
}

/// A sandbox the learner can write their progress into.
fn sandbox() -> Sandbox {
    let sb = Sandbox::new();
    std::fs::set_permissions(
        sb.dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    sb
}

/// Who runs nslab.
#[derive(Clone, Copy, Debug)]
enum Caller {
    /// The learner, without sudo.
    Learner,
    /// Root through sudo: SUDO_UID and SUDO_GID name the learner.
    Sudo,
    /// Root with nobody behind it.
    Root,
}

fn nslab(sb: &Sandbox, u: User, caller: Caller, args: &[&str]) -> Command {
    let mut c = sb.cmd(args);
    match caller {
        Caller::Learner => u.command(&mut c),
        Caller::Sudo => {
            c.env("SUDO_UID", u.uid.to_string())
                .env("SUDO_GID", u.gid.to_string());
        }
        Caller::Root => {}
    }
    c.stdin(Stdio::null());
    c
}

/// `nslab check 8 --plain EXTRA…` as `caller`: its exit code and report.
fn check(sb: &Sandbox, u: User, caller: Caller, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["check", "8", "--plain"];
    args.extend_from_slice(extra);
    let out = common::output_of(&mut nslab(sb, u, caller, &args));
    let text = format!("{}{}", stdout(&out), common::stderr(&out));
    (out.status.code().unwrap_or(-1), text)
}

/// The learner's command, as `u` unless `as_root`; returns it once its shell runs.
fn start(u: User, as_root: bool, unshare: &[&str]) -> Learner {
    let mut cmd: Vec<String> = if as_root { vec![] } else { u.setpriv() };
    cmd.push("unshare".into());
    cmd.extend(unshare.iter().map(|s| s.to_string()));
    cmd.push("bash".into());
    let words: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let learner = Learner::start(&words);
    let comm = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let forks = unshare.contains(&"--fork");
    let ready = wait_until(Duration::from_secs(10), || {
        if forks {
            learner
                .children()
                .first()
                .is_some_and(|&c| comm(c) == "bash")
        } else {
            learner.comm() == "bash"
        }
    });
    assert!(ready, "the learner's shell started: {cmd:?}");
    learner
}

const EXERCISE: [&str; 5] = [
    "--user",
    "--map-root-user",
    "--pid",
    "--fork",
    "--mount-proc",
];

#[test]
fn exercise_passes_as_the_learner_under_sudo_and_as_root() {
    // First: finding the user runs nslab, which another test must not see as left behind.
    let _g = serial();
    let Some(u) = learner_user() else { return };
    let sb = sandbox();
    let learner = start(u, false, &EXERCISE);
    let shell = learner.children()[0];
    for caller in [Caller::Learner, Caller::Sudo, Caller::Root] {
        let (code, text) = check(&sb, u, caller, &[]);
        assert_eq!(code, 0, "{caller:?}: {text}");
        assert!(
            text.contains(&format!("host PID {shell} (UID {} on the host)", u.uid)),
            "{caller:?} names the shell: {text}"
        );
    }
    let (code, json) = check(&sb, u, Caller::Learner, &["--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).expect("--json parses");
    assert_eq!(v["verdict"], "pass");
    assert_eq!(
        v["observed"],
        std::fs::read_to_string("lessons/08-user/expected/check.txt").unwrap()
    );
    let (code, text) = check(&sb, u, Caller::Learner, &["--pid", &shell.to_string()]);
    assert_eq!(code, 0, "{text}");
    let progress: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sb.progress()).unwrap()).unwrap();
    assert_eq!(progress["lessons"]["8"]["check_passed"], true);
}

#[test]
fn each_failure_names_its_hint_with_or_without_sudo() {
    // First: finding the user runs nslab, which another test must not see as left behind.
    let _g = serial();
    let Some(u) = learner_user() else { return };
    let sb = sandbox();
    let cases: [(&str, &[&str], bool, &str); 4] = [
        // The exercise's command started with sudo: root outside too.
        ("started-with-sudo", &EXERCISE, true, "owner on the host"),
        (
            "no-map",
            &["--user", "--pid", "--fork", "--mount-proc"],
            false,
            "uid_map",
        ),
        (
            "no-pid-namespace",
            &["--user", "--map-root-user"],
            false,
            "PID namespace",
        ),
        (
            "no-mount-proc",
            &["--user", "--map-root-user", "--pid", "--fork"],
            false,
            "/proc inside",
        ),
    ];
    for (hint, unshare, as_root, fact) in cases {
        let learner = start(u, as_root, unshare);
        for caller in [Caller::Learner, Caller::Sudo] {
            let what = format!("{hint} ({unshare:?}), checked by {caller:?}");
            let (code, json) = check(&sb, u, caller, &["--json"]);
            assert_eq!(code, 1, "{what}: {json}");
            let v: serde_json::Value =
                serde_json::from_str(&json).unwrap_or_else(|e| panic!("{what}: {e}: {json}"));
            assert_eq!(v["hint_id"], hint, "{what}: {json}");
            assert!(
                v["diff"].as_str().unwrap_or("").contains(fact),
                "{what}: the diff names {fact:?}: {json}"
            );
            assert!(!v["hint"].as_str().unwrap_or("").is_empty(), "{what}");
        }
        let (_, text) = check(&sb, u, Caller::Learner, &[]);
        assert!(text.contains("Hint:"), "{hint}: {text}");
        drop(learner);
    }
    let (code, json) = check(&sb, u, Caller::Learner, &["--json"]);
    assert_eq!(code, 1, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["hint_id"], "nothing-found", "{json}");
    let (code, text) = check(&sb, u, Caller::Learner, &["--pid", "999999999"]);
    assert_eq!(code, 2, "{text}");
}

/// What a lesson run left: nslab's processes, and the learner's processes it started.
fn assert_nothing_left(sb: &Sandbox, u: User) {
    assert!(
        wait_until(Duration::from_secs(5), || nslab_processes().is_empty()),
        "nslab processes left: {:?}",
        nslab_processes()
    );
    assert!(sb.run_files().is_empty(), "nothing goes on the ledger");
    let theirs = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|p| {
            let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
            cmd.starts_with(common::arg0().as_bytes())
                && status.contains(&format!("Uid:\t{}\t", u.uid))
        })
        .count();
    assert_eq!(theirs, 0, "the learner's processes nslab started are gone");
}

#[test]
fn lesson_runs_as_the_learner_and_under_sudo_as_the_learner() {
    // First: finding the user runs nslab, which another test must not see as left behind.
    let _g = serial();
    let Some(u) = learner_user() else { return };
    let sb = sandbox();
    for caller in [Caller::Learner, Caller::Sudo] {
        let mut c = nslab(&sb, u, caller, &["lesson", "8", "--yes", "--plain"]);
        c.env("COLUMNS", "1000");
        let out = common::output_of(&mut c);
        let text = stdout(&out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{caller:?}: {text}{}",
            common::stderr(&out)
        );
        assert_nothing_left(&sb, u);
        let id = |n: u32| format!("{n} {n} {n} {n}");
        for seen in [
            // Step a: nobody inside, the learner from the host, before any map.
            format!("Uid (r e s fs)  {}  {}", id(65534), id(u.uid)),
            // Step b: the unprivileged writer's rules, then root inside.
            "gid_map while setgroups was still allowed: refused: EPERM".to_string(),
            format!("Uid (r e s fs)  0 0 0 0  {}  {}", id(u.uid), id(u.uid)),
            format!("says UID {} and GID {}: you", u.uid, u.gid),
            // Step c: every capability inside, none outside; the host's file stays closed.
            "= all 41 capabilities".to_string(),
            "= no capabilities".to_string(),
            "refused: EACCES".to_string(),
            "a /proc of its own: done".to_string(),
            // Step d: refused outside, a network namespace of its own inside.
            "making a network namespace: refused: EPERM".to_string(),
            "owned by the process's own user namespace".to_string(),
        ] {
            let squeezed: String = text
                .lines()
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>()
                .join("\n");
            let want = seen.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                squeezed.contains(&want),
                "{caller:?}: shows {want:?}:\n{text}"
            );
        }
        let dropped = format!("setresuid({u}, {u}, {u}) = 0", u = u.uid);
        match caller {
            Caller::Sudo => assert!(text.contains(&dropped), "becomes the learner: {text}"),
            _ => assert!(!text.contains("setresuid("), "nothing to drop: {text}"),
        }
    }
    let progress: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sb.progress()).unwrap()).unwrap();
    assert_eq!(progress["lessons"]["8"]["lesson_done"], true);
}

#[test]
fn lesson_as_root_with_nobody_behind_it_says_what_to_run() {
    // First: finding the user runs nslab, which another test must not see as left behind.
    let _g = serial();
    let Some(u) = learner_user() else { return };
    let sb = sandbox();
    let out = common::output_of(&mut nslab(&sb, u, Caller::Root, &["lesson", "8", "--yes"]));
    assert_eq!(out.status.code(), Some(3), "{}", common::stderr(&out));
    let err = common::stderr(&out);
    assert!(err.contains("nslab lesson 8"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let left: Vec<String> = nslab_processes()
        .iter()
        .map(|p| std::fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap_or_default())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
