//! `nslab check N --watch` as a learner uses it: started before the exercise, it judges
//! again as the learner works and ends with exit 0 at the pass, or 130 on Ctrl-C. Piped it
//! prints one line per change, with --json one JSON object per change, and on a terminal
//! it redraws its frame in place.

mod common;

use common::{serial, wait_until, Learner, Sandbox};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

/// How long a watch may take to see a change on a busy machine (it samples every second).
const SEES_WITHIN: Duration = Duration::from_secs(30);

/// `nslab check 1 --watch …` piped, its stdout read line by line.
fn watch_piped(sb: &Sandbox, extra: &[&str]) -> (Child, Receiver<String>) {
    watch_piped_with(sb, "1", extra, None)
}

/// As [`watch_piped`], of check `lesson`; with `sample_ms`, the watch looks again without
/// an event only that rarely (NSLAB_WATCH_SAMPLE_MS).
fn watch_piped_with(
    sb: &Sandbox,
    lesson: &str,
    extra: &[&str],
    sample_ms: Option<u64>,
) -> (Child, Receiver<String>) {
    let mut args = vec!["check", lesson, "--watch"];
    args.extend_from_slice(extra);
    let mut cmd = sb.cmd(&args);
    if let Some(ms) = sample_ms {
        cmd.env("NSLAB_WATCH_SAMPLE_MS", ms.to_string());
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting nslab check --watch");
    let (tx, rx) = channel();
    let out = BufReader::new(child.stdout.take().expect("piped"));
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// The next line that contains `needle`, the lines read meanwhile, within [`SEES_WITHIN`].
fn line_with(rx: &Receiver<String>, needle: &str) -> (String, Vec<String>) {
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + SEES_WITHIN;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.contains(needle) => return (l, seen),
            Ok(l) => seen.push(l),
            Err(e) => panic!("no line with {needle:?} ({e}); lines were: {seen:#?}"),
        }
    }
}

/// A learner's shell in a new PID namespace, ready (its bash forked and running).
fn shell(cmd: &[&str]) -> Learner {
    let mut l = Learner::start(cmd);
    assert!(
        wait_until(Duration::from_secs(5), || !l.children().is_empty()),
        "unshare forked its shell"
    );
    l.sync();
    l
}

fn exit_of(child: Child) -> i32 {
    let out = common::finish_within(child, SEES_WITHIN, "nslab check --watch");
    out.status.code().unwrap_or(-1)
}

#[test]
fn piped_a_line_per_change_until_the_pass() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let (child, rx) = watch_piped(&sb, &[]);
    let (first, _) = line_with(&rx, "check 1: ");
    assert!(
        first.starts_with("check 1: not yet: ") && first.contains("nslab hint 1 nothing-found"),
        "{first}"
    );
    {
        let _without_proc = shell(&["unshare", "--pid", "--fork", "bash"]);
        let (line, _) = line_with(&rx, "no-mount-proc");
        assert!(line.contains("/proc inside: the host's"), "{line}");
    }
    let _learner = shell(&["unshare", "--pid", "--fork", "--mount-proc", "bash"]);
    let (pass, between) = line_with(&rx, "check 1: pass");
    assert!(pass.ends_with("facts as expected"), "{pass}");
    // Judged again only when something changed: never the same line twice in a row.
    for pair in between.windows(2) {
        assert_ne!(pair[0], pair[1], "{between:#?}");
    }
    line_with(&rx, "Exercise 1 done.");
    assert_eq!(exit_of(child), 0);
    let progress = std::fs::read_to_string(sb.progress()).expect("progress written");
    assert!(progress.contains("check_passed"), "{progress}");
    assert!(sb.run_files().is_empty());
}

/// Ten minutes: far beyond [`SEES_WITHIN`], so only an event can bring the next verdict.
const NO_SAMPLING_MS: u64 = 600_000;

#[test]
fn a_process_starting_or_ending_wakes_the_watch() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let (child, rx) = watch_piped_with(&sb, "1", &[], Some(NO_SAMPLING_MS));
    let (sources, _) = line_with(&rx, "watch: ");
    assert!(sources.contains(" and process events;"), "{sources}");
    line_with(&rx, "nslab hint 1 nothing-found");
    {
        // A process starting (unshare's child in a new PID namespace) ...
        let _without_proc = shell(&["unshare", "--pid", "--fork", "bash"]);
        line_with(&rx, "no-mount-proc");
    }
    // ... and ending: the namespace is gone with it.
    line_with(&rx, "nslab hint 1 nothing-found");
    let _learner = shell(&["unshare", "--pid", "--fork", "--mount-proc", "bash"]);
    line_with(&rx, "check 1: pass");
    assert_eq!(exit_of(child), 0);
}

#[test]
fn json_an_object_per_change() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let (child, rx) = watch_piped(&sb, &["--json"]);
    let (first, _) = line_with(&rx, "{");
    let v: serde_json::Value = serde_json::from_str(&first).expect("a JSON object per line");
    assert_eq!(v["passed"], false, "{first}");
    assert_eq!(v["hint_id"], "nothing-found", "{first}");
    let _learner = shell(&["unshare", "--pid", "--fork", "--mount-proc", "bash"]);
    let (last, between) = line_with(&rx, "\"passed\":true");
    for l in between.iter().chain([&last]) {
        serde_json::from_str::<serde_json::Value>(l)
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {l}"));
    }
    assert_eq!(exit_of(child), 0);
}

#[test]
fn on_a_terminal_the_frame_is_redrawn_until_the_pass() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let term = sb.in_terminal("check 1 --watch");
    assert!(
        wait_until(SEES_WITHIN, || term.screen().contains("Hint:")),
        "{}",
        term.screen()
    );
    let screen = term.screen();
    assert!(
        screen.contains("✗ PID namespace made by unshare: not found"),
        "{screen}"
    );
    assert!(screen.contains("Watching "), "{screen}");
    assert!(
        !screen.contains("check 1: not yet"),
        "a frame, not lines: {screen}"
    );
    let _learner = shell(&["unshare", "--pid", "--fork", "--mount-proc", "bash"]);
    assert_eq!(term.exit_code(SEES_WITHIN), Some(0), "{}", term.screen());
    let screen = term.screen();
    assert!(screen.contains("Exercise 1 done."), "{screen}");
    assert!(
        !screen.contains('✗'),
        "the old frame was replaced: {screen}"
    );
    assert_eq!(
        screen.matches("Check 1 (pid)").count(),
        1,
        "one frame on screen: {screen}"
    );
}

#[test]
fn ctrl_c_ends_the_watch_with_130() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let term = sb.in_terminal("check 1 --watch");
    assert!(
        wait_until(SEES_WITHIN, || term.screen().contains("Watching ")),
        "{}",
        term.screen()
    );
    term.keys(&["C-c"]);
    assert_eq!(term.exit_code(SEES_WITHIN), Some(130), "{}", term.screen());
    assert!(sb.run_files().is_empty());
}

/// A CPU cgroup of the test's own at 10% of one CPU, and the busy loop it moves in; both
/// gone when dropped.
struct TenPercent {
    dir: std::path::PathBuf,
    hog: Option<Child>,
}

impl TenPercent {
    fn make() -> Option<TenPercent> {
        let name = format!("nslabt-watch-{}", std::process::id());
        let (dir, file, value) = if std::path::Path::new("/sys/fs/cgroup/cpu").is_dir() {
            (
                format!("/sys/fs/cgroup/cpu/{name}"),
                "cpu.cfs_quota_us",
                "10000",
            )
        } else {
            (format!("/sys/fs/cgroup/{name}"), "cpu.max", "10000 100000")
        };
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir(&dir).ok()?;
        let cg = TenPercent { dir, hog: None };
        std::fs::write(cg.dir.join(file), value).ok()?;
        Some(cg)
    }

    fn join_a_hog(&mut self) {
        let hog = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .expect("a busy loop");
        std::fs::write(self.dir.join("cgroup.procs"), hog.id().to_string()).unwrap();
        self.hog = Some(hog);
    }
}

impl Drop for TenPercent {
    fn drop(&mut self) {
        if let Some(mut h) = self.hog.take() {
            let _ = h.kill();
            let _ = h.wait();
        }
        let _ = wait_until(Duration::from_secs(5), || {
            std::fs::remove_dir(&self.dir).is_ok()
        });
    }
}

/// Check 4 samples its cgroup for a while; at a change, the watch shows what it knows at
/// once (a process is inside), the sampled facts as measuring, then the full judgement.
#[test]
fn a_process_joining_a_cpu_cgroup_is_shown_at_once_then_measured() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let Some(mut cg) = TenPercent::make() else {
        assert!(
            std::env::var_os("NSLAB_TESTS_STRICT").is_none(),
            "could not make a CPU cgroup with a quota"
        );
        eprintln!("skipped: no CPU cgroup with a quota could be made here");
        return;
    };
    let (child, rx) = watch_piped_with(&sb, "4", &["--json"], Some(NO_SAMPLING_MS));
    // Interrupted however the test ends.
    let mut child = common::Background(child);
    let fact = |v: &serde_json::Value, name: &str| {
        v["facts"]
            .as_array()
            .and_then(|f| f.iter().find(|f| f["name"] == name))
            .and_then(|f| f["value"].as_str())
            .map(str::to_string)
    };
    let (first, _) = line_with(&rx, "{");
    let first: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(
        fact(&first, "processes inside").as_deref(),
        Some("none"),
        "{first}"
    );
    cg.join_a_hog();
    let (next, _) = line_with(&rx, "{");
    let quick: serde_json::Value = serde_json::from_str(&next).unwrap();
    assert_eq!(
        fact(&quick, "processes inside").as_deref(),
        Some("at least one"),
        "{quick}"
    );
    assert_eq!(quick["measuring"], true, "{quick}");
    assert_eq!(
        fact(&quick, "measured share").as_deref(),
        Some("(measuring)")
    );
    let (full, _) = line_with(&rx, "\"measuring\":false");
    let full: serde_json::Value = serde_json::from_str(&full).unwrap();
    assert_ne!(
        fact(&full, "using CPU").as_deref(),
        Some("(measuring)"),
        "{full}"
    );
    if full["passed"] == true {
        assert_eq!(
            child.wait().unwrap().code(),
            Some(0),
            "a pass ends the watch"
        );
    } else {
        common::interrupt(&mut child);
    }
}
