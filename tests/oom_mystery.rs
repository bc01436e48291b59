//! Optional 3b, as a learner meets it: `nslab lesson 3b` running in one terminal, the
//! learner's fixes written into cgroup files by hand, `nslab check 3b` judging each one.
//! Root, this machine's cgroups; each run has its own ledger.

mod common;

use common::{Background, Sandbox};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The mystery's cgroup is always `nslab/mystery`: one run at a time.
static ONE_RUN: Mutex<()> = Mutex::new(());

/// `nslab lesson 3b` in the background, its stdin held open (a learner at its terminal),
/// its output collected as it comes.
struct Mystery {
    child: Background,
    out: Arc<Mutex<String>>,
}

impl Mystery {
    fn start(sb: &Sandbox) -> Mystery {
        let mut child = Background(
            sb.cmd(&["lesson", "3b", "--plain"])
                // The tests read cgroup paths from the output: one path per line, however
                // deep this machine's cgroup tree is.
                .env("COLUMNS", "1000")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("starting nslab lesson 3b"),
        );
        let out = Arc::new(Mutex::new(String::new()));
        for pipe in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let out = out.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut o = out.lock().unwrap();
                    o.push_str(&line);
                    o.push('\n');
                }
            });
        }
        Mystery { child, out }
    }

    fn output(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    /// Wait until the lesson has printed `needle`.
    fn wait_for(&self, needle: &str, limit: Duration) {
        assert!(
            common::wait_until(limit, || self.output().contains(needle)),
            "`nslab lesson 3b` never printed {needle:?}:\n{}",
            self.output()
        );
    }

    /// The cgroup above the app (the memory hierarchy's `…/nslab/mystery`).
    fn parent_dir(&self) -> PathBuf {
        let out = self.output();
        let app = out
            .lines()
            .find_map(|l| l.strip_prefix("The app's cgroup "))
            .unwrap_or_else(|| panic!("the lesson names the app's cgroup:\n{out}"));
        PathBuf::from(app.trim())
            .parent()
            .expect("app has a parent")
            .to_path_buf()
    }

    fn press_enter(&mut self) {
        let stdin = self.child.stdin.as_mut().expect("piped stdin");
        stdin.write_all(b"\n").expect("pressing Enter");
    }
}

/// The limit file of this hierarchy's version.
fn limit_file(dir: &std::path::Path) -> PathBuf {
    if dir.join("memory.max").exists() {
        dir.join("memory.max")
    } else {
        dir.join("memory.limit_in_bytes")
    }
}

#[test]
fn root_mystery_each_fix_judged_then_solved_and_nothing_left() {
    require_root!();
    let _one = ONE_RUN.lock().unwrap_or_else(|e| e.into_inner());
    let sb = Sandbox::new();
    // Nothing running yet.
    sb.assert_check_fails_with("3b", "3b-start", "mystery: not running");

    let mut m = Mystery::start(&sb);
    m.wait_for("Death 1:", Duration::from_secs(60));
    let parent = m.parent_dir();
    let app = parent.join("app");
    assert!(m.output().contains("killed by SIGKILL"), "{}", m.output());
    // The app's own limit was never reached; the parent's was.
    let failcnt = |d: &std::path::Path| -> u64 {
        match std::fs::read_to_string(d.join("memory.failcnt")) {
            Ok(t) => t.trim().parse().unwrap(),
            Err(_) => {
                let ev = std::fs::read_to_string(d.join("memory.events.local")).unwrap();
                ev.lines()
                    .find_map(|l| l.strip_prefix("max "))
                    .unwrap()
                    .parse()
                    .unwrap()
            }
        }
    };
    assert_eq!(failcnt(&app), 0, "the app never reached its own limit");
    assert!(failcnt(&parent) > 0, "the parent's limit was reached");

    // Nothing changed yet: where to look.
    let report = sb.assert_check_fails_with(
        "3b",
        "3b-look",
        "limit of the cgroup above the app (mystery): unchanged",
    );
    assert!(report.contains("Check 3b (oom-3b): NOT YET"), "{report}");

    // The tempting fix: the app's own limit. It changes nothing.
    std::fs::write(limit_file(&app), "536870912").unwrap();
    m.wait_for(
        "The app's own limit is now 512.0 MiB",
        Duration::from_secs(60),
    );
    sb.assert_check_fails_with("3b", "3b-own-limit", "app: ");

    // The right limit, not far enough.
    std::fs::write(limit_file(&parent), "41943040").unwrap();
    sb.assert_check_fails_with("3b", "3b-higher", "raised, still below what the app needs");

    // Far enough: the app lives, and the check passes while the lesson still runs.
    std::fs::write(limit_file(&parent), "67108864").unwrap();
    m.wait_for("it lives", Duration::from_secs(60));
    let (code, text) = sb.check("3b", &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("Bonus exercise 3b done."), "{text}");
    let out = m.output();
    assert!(
        out.contains("oom_memcg="),
        "the kernel's line is shown:\n{out}"
    );

    // Enter ends it: everything removed, no progress recorded for lesson 3.
    m.press_enter();
    let status = m.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{}", m.output());
    assert!(!parent.exists(), "{} removed", parent.display());
    assert!(sb.run_files().is_empty(), "ledger: {:?}", sb.run_files());
    let progress = std::fs::read_to_string(sb.progress()).unwrap_or_default();
    assert!(
        !progress.contains("\"3\""),
        "a bonus records no progress of lesson 3: {progress}"
    );
}

#[test]
fn root_mystery_ctrl_c_and_giving_up_remove_everything() {
    require_root!();
    let _one = ONE_RUN.lock().unwrap_or_else(|e| e.into_inner());
    let sb = Sandbox::new();

    // Giving up (Enter while the app dies) shows the answer and removes the mystery.
    let mut m = Mystery::start(&sb);
    m.wait_for("Death 1:", Duration::from_secs(60));
    let parent = m.parent_dir();
    m.press_enter();
    let status = m.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{}", m.output());
    let out = m.output();
    assert!(out.contains("You gave up; here is the answer."), "{out}");
    assert!(out.contains("the smallest limit on the"), "{out}");
    // The setup, kept secret until now, is shown with its system calls.
    assert!(out.contains("How nslab had set it up:"), "{out}");
    assert!(
        out.lines().any(|l| l.contains("write(")
            && l.contains("/nslab/mystery/memory.")
            && l.contains("\"33554432\")")),
        "the parent's limit write is among the system calls:\n{out}"
    );
    assert!(!parent.exists(), "{} removed", parent.display());
    assert!(sb.run_files().is_empty(), "ledger: {:?}", sb.run_files());

    // Ctrl-C mid-mystery: exit 130, the app killed, its cgroups removed.
    let mut m = Mystery::start(&sb);
    m.wait_for("the app starts: PID", Duration::from_secs(60));
    let parent = m.parent_dir();
    let pid: i32 = m
        .output()
        .lines()
        .find_map(|l| l.split("the app starts: PID ").nth(1))
        .and_then(|p| p.trim().parse().ok())
        .expect("the app's PID");
    common::interrupt(&mut m.child);
    assert!(!common::alive(pid), "the app {pid} was reaped");
    assert!(
        !parent.exists(),
        "{} removed after Ctrl-C",
        parent.display()
    );
    assert!(sb.run_files().is_empty(), "ledger: {:?}", sb.run_files());

    // kill -9 of nslab: the app dies with it, `nslab cleanup` removes both cgroups.
    let mut m = Mystery::start(&sb);
    m.wait_for("the app starts: PID", Duration::from_secs(60));
    let parent = m.parent_dir();
    m.child.kill().unwrap();
    m.child.wait().unwrap();
    assert!(
        parent.exists(),
        "left behind by kill -9, for cleanup to find"
    );
    let out = sb.run(&["cleanup", "--plain"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(!parent.exists(), "{} removed by cleanup", parent.display());
    assert!(sb.run_files().is_empty(), "ledger: {:?}", sb.run_files());
}
