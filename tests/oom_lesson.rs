//! Lesson 3 run as a learner runs it: the `nslab` binary, as root, on this machine.
//! Each run gets its own ledger directory, so `nslab cleanup` here sees only these runs.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The lesson's cgroup is always `nslab/oom`: one run at a time.
static ONE_RUN: Mutex<()> = Mutex::new(());

struct Env {
    run_dir: tempfile::TempDir,
    data: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            run_dir: tempfile::tempdir().unwrap(),
            data: tempfile::tempdir().unwrap(),
        }
    }

    fn nslab(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_nslab"));
        c.args(args)
            .env("NSLAB_RUN_DIR", self.run_dir.path())
            .env("NSLAB_PROGRESS", self.data.path().join("progress.json"))
            .env("NO_COLOR", "1")
            // No sentence wraps: the transcript reads the same whatever its numbers' length.
            .env("COLUMNS", "1000")
            .stdin(Stdio::null());
        c
    }

    fn run_files(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.run_dir.path())
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    }
}

/// The cgroup directory a transcript names ("The new cgroup …").
fn cgroup_dir(out: &str) -> PathBuf {
    let line = out
        .lines()
        .find(|l| l.starts_with("The new cgroup "))
        .expect("step b names its cgroup");
    PathBuf::from(line.trim_start_matches("The new cgroup ").trim())
}

fn hog_pid(out: &str) -> i32 {
    let at = out.find("The hog is PID ").expect("step c names the hog");
    out[at + 15..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

/// This process's memory cgroup directory (v1 memory hierarchy, else the v2 tree).
fn own_memory_dir() -> PathBuf {
    let cg = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let v1 = cg.lines().find_map(|l| {
        let mut p = l.splitn(3, ':');
        let (_, ctrls, path) = (p.next()?, p.next()?, p.next()?);
        ctrls
            .split(',')
            .any(|c| c == "memory")
            .then(|| path.to_string())
    });
    let mount = |fstype: &str, opt: Option<&str>| {
        mi.lines().find_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            (f[sep + 1] == fstype && opt.map_or(true, |o| f[sep + 3].split(',').any(|x| x == o)))
                .then(|| f[4].to_string())
        })
    };
    match v1 {
        Some(path) => PathBuf::from(mount("cgroup", Some("memory")).unwrap())
            .join(path.trim_start_matches('/')),
        None => {
            let path = cg.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
            PathBuf::from(mount("cgroup2", None).unwrap()).join(path.trim_start_matches('/'))
        }
    }
}

#[test]
fn root_lesson_3_runs_through_and_leaves_nothing() {
    require_root!();
    let _one = ONE_RUN.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::new();
    // The transcript shows nslab making its `nslab` parent: an empty one left by an earlier
    // run of these tests would hide that (only nslab makes directories of that name).
    let _ = std::fs::remove_dir(own_memory_dir().join("nslab"));
    let out = common::output_of(&mut env.nslab(&["--plain", "lesson", "3", "--yes"]));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = cgroup_dir(&text);
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(!alive(hog_pid(&text)));
    assert!(
        env.run_files().is_empty(),
        "ledger entries left: {:?}",
        env.run_files()
    );
    // The real outcome, beyond the redacted snapshot.
    assert!(
        text.contains("was killed by SIGKILL") && text.contains("gives 137"),
        "{text}"
    );
    assert!(
        text.contains("constraint=CONSTRAINT_MEMCG"),
        "the kernel's line: {text}"
    );
    assert!(text.contains("holds all 60.0 MiB it wanted"), "{text}");

    // What the lesson shows, in order, is held in its outline (tests/widths.rs).
}

/// Start the lesson, wait until the hog is climbing, return the child and what it printed.
fn start_until_climbing(env: &Env) -> (std::process::Child, String) {
    let mut child = env
        .nslab(&["--plain", "lesson", "3", "--yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let start = Instant::now();
    let mut line = String::new();
    while start.elapsed() < Duration::from_secs(60) {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        seen.push_str(&line);
        if line.contains(" of 30.0 MiB (touched ") {
            // Keep draining in the background is unnecessary: the kill comes next.
            std::mem::forget(reader);
            return (child, seen);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the hog never started climbing:\n{seen}");
}

#[test]
fn root_ctrl_c_mid_climb_removes_everything() {
    require_root!();
    let _one = ONE_RUN.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::new();
    let (mut child, seen) = start_until_climbing(&env);
    let hog = hog_pid(&seen);
    let dir = cgroup_dir(&seen);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "exit status after Ctrl-C");
    assert!(!alive(hog), "the hog {hog} was reaped");
    assert!(!dir.exists(), "{} removed after Ctrl-C", dir.display());
    assert!(
        env.run_files().is_empty(),
        "ledger entries left: {:?}",
        env.run_files()
    );
}

#[test]
fn root_kill_9_then_cleanup_removes_nslabs_cgroup_and_spares_the_learners() {
    require_root!();
    let _one = ONE_RUN.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::new();
    let (mut child, seen) = start_until_climbing(&env);
    let hog = hog_pid(&seen);
    let dir = cgroup_dir(&seen);
    // A learner's cgroup beside nslab's: cleanup must leave it alone.
    let learner = dir
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join(format!("nslabt-learner-{}", std::process::id()));
    std::fs::create_dir(&learner).unwrap();
    child.kill().unwrap(); // SIGKILL: no teardown at all
    child.wait().unwrap();
    // The hog dies with nslab (PR_SET_PDEATHSIG); the cgroup stays until cleanup.
    let start = Instant::now();
    while alive(hog) && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(hog), "the hog outlived nslab");
    assert!(dir.exists(), "a killed run leaves its cgroup to cleanup");
    assert_eq!(env.run_files().len(), 1, "the dead run's ledger is kept");

    let out = common::output_of(&mut env.nslab(&["--plain", "cleanup"]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("removed cgroup {}", dir.display())),
        "{text}"
    );
    assert!(!dir.exists());
    assert!(learner.is_dir(), "cleanup touched a learner's cgroup");
    std::fs::remove_dir(&learner).unwrap();
    assert!(env.run_files().is_empty());
}

#[test]
fn check_3_without_a_cgroup_shows_where_to_look_on_this_machine() {
    let env = Env::new();
    let out =
        common::output_of(&mut env.nslab(&["check", "3", "--cgroup", "nslabt-none", "--json"]));
    let memory_controller = std::fs::read_to_string("/proc/cgroups")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split_whitespace().next() == Some("memory") && l.ends_with('1'));
    if !memory_controller {
        eprintln!("skipping: no memory controller on this machine");
        return;
    }
    assert_eq!(out.status.code(), Some(1), "not passed");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["hint_id"], "no-cgroup");
    let verify = report["verify"][0].as_str().unwrap();
    // `find ROOT -name …`: ROOT is where this machine mounts the memory controller.
    let root = PathBuf::from(verify.split_whitespace().nth(1).unwrap());
    let memory_here = root.join("memory.usage_in_bytes").exists()
        || std::fs::read_to_string(root.join("cgroup.controllers"))
            .is_ok_and(|c| c.split_whitespace().any(|w| w == "memory"));
    assert!(memory_here, "{verify}: not the memory hierarchy's mount");
}
