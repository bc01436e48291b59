//! Lesson 1 end to end: the lesson run through, the exercise done with the real `unshare`
//! commands (the pass and each distinct failure), and leaving nothing behind on success,
//! error, Ctrl-C and kill -9 + `nslab cleanup`.

mod common;

use common::{alive, nslab_processes, serial, stdout, wait_until, Learner, Sandbox};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::Duration;

fn assert_nothing_left(sb: &Sandbox, pids: &[i32]) {
    assert!(
        sb.run_files().is_empty(),
        "ledger still lists something: {:?}",
        sb.run_files()
    );
    for &p in pids {
        assert!(!alive(p), "process {p} that nslab started is still alive");
    }
    assert!(
        wait_until(Duration::from_secs(3), || nslab_processes().is_empty()),
        "nslab processes left: {:?}",
        nslab_processes()
    );
}

#[test]
fn lesson_without_root_says_what_to_run() {
    let _g = serial();
    let sb = Sandbox::new();
    let mut cmd = sb.cmd(&["lesson", "1", "--yes"]);
    if common::is_root() {
        // Drop to an ordinary user, as a learner who forgot sudo.
        cmd.uid(65534).gid(65534);
        std::fs::set_permissions(
            sb.dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
    }
    let out = common::output_of(cmd.stdin(Stdio::null()));
    assert_eq!(
        out.status.code(),
        Some(3),
        "exit 3: environment cannot run it"
    );
    let err = common::stderr(&out);
    assert!(
        err.contains("sudo nslab lesson 1"),
        "names the command to run instead: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    let sb = Sandbox::new();
    for args in [
        &["lesson", "99"][..],
        &["check", "nope"],
        &["lesson", "1", "--step", "z"],
        &["bogus"],
        // Bonuses done by hand are no lessons; 3b is one, but has no --limit.
        &["lesson", "2b"],
        &["lesson", "5b"],
        &["lesson", "3b", "--limit", "40M"],
        &["hint", "3b", "nope"],
    ] {
        let out = sb.run(args);
        // The step check happens after the root check: without root it is exit 3.
        let expect = if args.contains(&"--step") && !common::is_root() {
            3
        } else {
            2
        };
        assert_eq!(
            out.status.code(),
            Some(expect),
            "{args:?}: {}",
            common::stderr(&out)
        );
        assert!(!common::stderr(&out).contains("panicked"));
    }
}

#[test]
fn read_only_commands_work_without_root() {
    let sb = Sandbox::new();
    for args in [
        &["list"][..],
        &["hint", "1"],
        &["hint", "pid", "no-fork"],
        &["solution", "1"],
        &["hint", "3b"],
        &["hint", "2b", "2b-down"],
        &["solution", "5b"],
        &["progress", "--json"],
        &[],
    ] {
        let out = sb.run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            common::stderr(&out)
        );
    }
    let out = sb.run(&["show", "ns"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("pid_for_children"));
    let out = sb.run(&["progress", "--json"]);
    serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("progress --json parses");
}

#[test]
fn lesson_runs_through() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    // On a projector's 80 columns and a wider screen, no line is wider than the screen.
    for columns in [80, 120] {
        let out = sb.run_at(columns, &["lesson", "1", "--yes", "--plain"]);
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert_nothing_left(&sb, &[]);
        let wide: Vec<&str> = text
            .lines()
            .filter(|l| console::measure_text_width(l) > columns)
            .collect();
        assert!(
            wide.is_empty(),
            "over {columns} columns:\n{}",
            wide.join("\n")
        );
    }
    // On a screen wide enough that no sentence wraps: a sentence is then found whole,
    // whatever the length of the numbers in it.
    let out = sb.run_at(1000, &["lesson", "1", "--yes", "--plain"]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        common::stderr(&out)
    );
    assert_nothing_left(&sb, &[]);
    let progress: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sb.progress()).unwrap()).unwrap();
    assert_eq!(progress["lessons"]["1"]["lesson_done"], true);
    // What the lesson shows, in order, is held in its outline (tests/widths.rs).
}

#[test]
fn exercise_passes_with_the_seeds_command() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let learner = Learner::start(&["unshare", "--pid", "--fork", "--mount-proc", "bash"]);
    assert!(
        wait_until(Duration::from_secs(5), || !learner.children().is_empty()),
        "unshare forked its shell"
    );
    let shell = learner.children()[0];
    wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(format!("/proc/{shell}/comm")).is_ok_and(|c| c.trim() == "bash")
    });
    let (code, text) = sb.check("1", &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(&format!("host PID {shell}")),
        "names the shell's host PID: {text}"
    );

    let (code, json) = sb.check("1", &["--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).expect("--json parses");
    assert_eq!(v["verdict"], "pass");
    assert_eq!(v["passed"], true);
    assert!(v["facts"].as_array().unwrap().len() >= 4);
    assert_eq!(v["diff"], "");

    // --pid points at it explicitly.
    let (code, text) = sb.check("1", &["--pid", &shell.to_string()]);
    assert_eq!(code, 0, "{text}");
}

#[test]
fn exercise_passes_with_a_user_namespace_too() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let mut learner = Learner::start(&[
        "unshare",
        "--user",
        "--map-root-user",
        "--pid",
        "--fork",
        "--mount-proc",
        "bash",
    ]);
    assert!(wait_until(Duration::from_secs(5), || !learner
        .children()
        .is_empty()));
    learner.sync();
    let (code, text) = sb.check("1", &[]);
    assert_eq!(code, 0, "{text}");
}

#[test]
fn exercise_failures_each_have_their_own_diff_and_hint() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();

    // Nothing running.
    sb.assert_check_fails_with("1", "nothing-found", "not found");

    // Without --mount-proc: the shell's /proc is the host's.
    {
        let mut l = Learner::start(&["unshare", "--pid", "--fork", "bash"]);
        assert!(wait_until(Duration::from_secs(5), || !l
            .children()
            .is_empty()));
        l.sync();
        sb.assert_check_fails_with("1", "no-mount-proc", "/proc inside: the host's");
    }

    // Without --fork: the shell stays outside and its namespace has no PID 1 yet.
    {
        let mut l = Learner::start(&["unshare", "--pid", "bash"]);
        assert!(wait_until(Duration::from_secs(5), || l.comm() == "bash"));
        sb.assert_check_fails_with("1", "no-fork", "not entered");

        // Its first command became PID 1, ended, and took the namespace with it.
        l.type_line("/bin/true");
        let shell = l.pid();
        assert!(wait_until(Duration::from_secs(5), || {
            std::fs::read_link(format!("/proc/{shell}/ns/pid_for_children")).is_ok()
        }));
        l.sync();
        let text = sb.assert_check_fails_with("1", "pid1-gone", "gone");
        assert!(text.contains(&format!("host PID {shell}")), "{text}");
    }

    // --pid at a process in the host's namespace.
    let me = std::process::id().to_string();
    let (code, json) = sb.check("1", &["--json", "--pid", &me]);
    assert_eq!(code, 1);
    assert!(json.contains("host-namespace"), "{json}");

    // --pid at no process at all is a usage error.
    let (code, _) = sb.check("1", &["--pid", "999999999"]);
    assert_eq!(code, 2);
}

#[test]
fn an_error_mid_lesson_removes_everything() {
    require_root!();
    let _g = serial();
    // A pids cgroup that allows nslab, its unsharer and PID 1 but not PID 1's child:
    // step c's fork fails for real, after the namespace exists.
    let Some(cg) = PidsCgroup::create(3) else {
        eprintln!("skipped: no cgroup v1 pids hierarchy to limit forks with");
        return;
    };
    let sb = Sandbox::new();
    let cg_procs = cg.path.join("cgroup.procs");
    let mut cmd = sb.cmd(&["lesson", "1", "--yes", "--plain"]);
    unsafe {
        cmd.pre_exec(move || std::fs::write(&cg_procs, std::process::id().to_string()));
    }
    let out = common::output_of(cmd.stdin(Stdio::null()));
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{}\n{err}", stdout(&out));
    assert!(err.contains("fork"), "the error says what failed: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_nothing_left(&sb, &[]);
}

/// A v1 pids cgroup of the test's own, removed on drop.
struct PidsCgroup {
    path: std::path::PathBuf,
}

impl PidsCgroup {
    fn create(max: u32) -> Option<PidsCgroup> {
        let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let rel = own.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, ctrl, path) = (parts.next()?, parts.next()?, parts.next()?);
            ctrl.split(',')
                .any(|c| c == "pids")
                .then(|| path.to_string())
        })?;
        let base = std::path::Path::new("/sys/fs/cgroup/pids").join(rel.trim_start_matches('/'));
        let path = base.join(format!("nslabt-pids-{}", std::process::id()));
        std::fs::create_dir(&path).ok()?;
        let cg = PidsCgroup { path };
        std::fs::write(cg.path.join("pids.max"), max.to_string()).ok()?;
        Some(cg)
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        let procs = std::fs::read_to_string(self.path.join("cgroup.procs")).unwrap_or_default();
        for pid in procs
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        wait_until(Duration::from_secs(3), || {
            std::fs::remove_dir(&self.path).is_ok()
        });
    }
}

/// A directory of the learner's (uid 65534) in the sandbox, for their progress file.
fn learners_dir(sb: &Sandbox) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(sb.dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let dir = sb.dir.path().join("home");
    std::fs::create_dir(&dir).unwrap();
    nix::unistd::chown(&dir, Some(65534.into()), Some(65534.into())).unwrap();
    dir
}

/// `sudo nslab check 1` as the user with uid 65534 would run it, progress in `file`.
fn check_under_sudo(sb: &Sandbox, file: &std::path::Path) -> std::process::Output {
    common::output_of(
        sb.cmd(&["check", "1", "--plain"])
            .env("SUDO_UID", "65534")
            .env("NSLAB_PROGRESS", file)
            .stdin(Stdio::null()),
    )
}

#[test]
fn progress_under_sudo_belongs_to_the_learner() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let file = learners_dir(&sb).join("progress.json");
    let out = check_under_sudo(&sb, &file);
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{}",
        common::stderr(&out)
    );
    for f in [file.clone(), file.with_extension("json.lock")] {
        let meta = std::fs::metadata(&f).expect("progress saved");
        assert_eq!(
            std::os::unix::fs::MetadataExt::uid(&meta),
            65534,
            "the learner owns {}",
            f.display()
        );
    }
}

/// A learner who plants a symlink where the progress file goes gets nothing of root's: the
/// root-only file it points to is neither read, nor copied, nor overwritten, nor given away.
#[test]
fn a_planted_symlink_gives_the_learner_nothing_of_roots() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let dir = learners_dir(&sb);
    let secret = sb.dir.path().join("root-only.json");
    let text = r#"{"lessons": {"9": {"steps_seen": "secret"}}}"#;
    std::fs::write(&secret, text).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let file = dir.join("progress.json");
    std::os::unix::fs::symlink(&secret, &file).unwrap();
    let out = check_under_sudo(&sb, &file);
    assert!(out.status.code().is_some_and(|c| c <= 1));
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), text);
    let meta = std::fs::metadata(&secret).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o600));
    // The learner's own symlink is only set aside (as progress.json.damaged).
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        if entry.file_type().unwrap().is_symlink() {
            continue;
        }
        let content = std::fs::read_to_string(entry.path()).unwrap_or_default();
        assert!(
            !content.contains("secret"),
            "{} holds root's file",
            entry.path().display()
        );
    }
    // The temporary file's name is no help either: a symlink there is never written through.
    assert!(
        common::stderr(&out).contains("damaged"),
        "{}",
        common::stderr(&out)
    );
}

#[test]
fn step_e_shell_is_pid_1_and_its_system_calls_are_shown() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let mut child = sb
        .cmd(&["lesson", "1", "--step", "e", "--plain"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"set -- /proc/[0-9]*; echo inside=$$ procs=$#\nexit 3\n")
        .unwrap();
    let out = common::finish_within(child, common::RUN_LIMIT, "lesson 1 --step e");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", common::stderr(&out));
    assert!(
        text.contains("inside=1 procs=1"),
        "the shell is PID 1, alone in its /proc: {text}"
    );
    assert!(text.contains("The shell exited with status 3"), "{text}");
    let unshare = text
        .find("unshare(CLONE_NEWNS|CLONE_NEWPID) = 0")
        .expect(&text);
    let fork = text.find("fork() = ").expect(&text);
    let proc_mount = text.find("mount(\"proc\", \"/proc\"").expect(&text);
    assert!(
        unshare < fork && fork < proc_mount,
        "in the order made: {text}"
    );
    assert_nothing_left(&sb, &[]);
}

#[test]
fn a_command_past_its_time_limit_is_interrupted_and_fails_the_test() {
    let child = std::process::Command::new("sleep")
        .arg("30")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let start = std::time::Instant::now();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        common::finish_within(child, std::time::Duration::from_millis(200), "sleep 30")
    }));
    assert!(r.is_err(), "the helper fails the test");
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the command was stopped and reaped"
    );
}
