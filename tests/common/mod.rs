//! Helpers shared by the integration tests: running the binary, skipping without root,
//! learner-style namespaces that are always killed, and leftover checks.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Tests that make learner namespaces run one at a time: a check judges the newest one.
pub static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

pub mod rootless;
mod skip;
pub use skip::skip;

/// Skip (with the reason printed) unless root; under `NSLAB_TESTS_STRICT`, fail (see [`skip`]).
#[macro_export]
macro_rules! require_root {
    () => {
        if !common::is_root() {
            common::skip("needs root to create namespaces and cgroups (run ./test.sh as root)");
            return;
        }
    };
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_nslab")
}

/// `c` (an nslab command line) to its end (at most [`RUN_LIMIT`]): its output and PID.
fn spawn_to_end(mut c: Command, args: &[&str]) -> (Output, u32) {
    let child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running nslab");
    let pid = child.id();
    (finish_within(child, RUN_LIMIT, &args.join(" ")), pid)
}

/// The argv[0] nslab runs under in these tests: this build's own (a hash of its path), and
/// as long wherever the project is checked out, so that a transcript wrapped to the screen
/// (a process table shows the command line) wraps the same on every machine.
pub fn arg0() -> String {
    let hash = bin().bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    });
    format!("nslab-{:06x}", hash & 0xff_ffff)
}

/// Longer than any one nslab command of the tests takes on a busy machine.
pub const RUN_LIMIT: Duration = Duration::from_secs(240);

/// Wait for `child` (its output read meanwhile, so it never blocks on a full pipe), at
/// most `limit`. Past that, Ctrl-C, so that nslab removes what it made, then SIGKILL a
/// while later, and the test fails: a hang costs minutes, not the whole CI run.
pub fn finish_within(mut child: Child, limit: Duration, what: &str) -> Output {
    use std::io::Read;
    fn drain(r: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    }
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for nslab") {
            break status;
        }
        if start.elapsed() > limit {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
            let grace = Instant::now();
            while grace.elapsed() < Duration::from_secs(20) {
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
            panic!("`nslab {what}` ran longer than {limit:?}: interrupted");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// `cmd` run to its end as [`Command::output`] does, at most [`RUN_LIMIT`].
pub fn output_of(cmd: &mut Command) -> Output {
    let what = format!("{:?}", cmd.get_args().collect::<Vec<_>>());
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting nslab");
    finish_within(child, RUN_LIMIT, &what)
}

/// A private place for this test's progress file and ledger.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("nslabt-")
            .tempdir()
            .expect("tempdir");
        Sandbox { dir }
    }

    pub fn run_dir(&self) -> PathBuf {
        self.dir.path().join("runs")
    }

    pub fn progress(&self) -> PathBuf {
        self.dir.path().join("progress.json")
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.arg0(arg0())
            .args(args)
            .env("NSLAB_RUN_DIR", self.run_dir())
            .env("NSLAB_PROGRESS", self.progress())
            .env("NO_COLOR", "1")
            .env("COLUMNS", "80")
            .env_remove("SUDO_UID");
        c
    }

    /// [`Sandbox::run`] laid out for a screen `columns` wide.
    pub fn run_at(&self, columns: usize, args: &[&str]) -> Output {
        let mut c = self.cmd(args);
        c.env("COLUMNS", columns.to_string());
        spawn_to_end(c, args).0
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_to_end(args).0
    }

    /// nslab with `args` to its end (at most [`RUN_LIMIT`]): its output and PID.
    fn run_to_end(&self, args: &[&str]) -> (Output, u32) {
        spawn_to_end(self.cmd(args), args)
    }

    /// [`Sandbox::run`], also giving nslab's PID (to look for what it may have left):
    /// exit code, stdout, stderr, PID.
    pub fn run_with_pid(&self, args: &[&str]) -> (i32, String, String, u32) {
        let (out, pid) = self.run_to_end(args);
        (
            out.status.code().unwrap_or(-1),
            stdout(&out),
            stderr(&out),
            pid,
        )
    }

    /// `nslab lesson N --plain` in a real terminal (see [`Terminal`]), Enter pressed at each
    /// pause up to the one before step `before`. As a learner's: the terminal's shell (the
    /// session leader) dies of the hangup and the kernel then signals the foreground
    /// group.
    pub fn lesson_in_terminal(&self, lesson: &str, before: char) -> Terminal {
        let term = self.in_terminal(&format!("lesson {lesson} --plain"));
        let target = format!("[Enter] step {before}");
        let mut pressed = 0;
        let reached = wait_until(Duration::from_secs(60), || {
            let screen = term.screen();
            if screen.contains(&target) {
                return true;
            }
            let pauses = screen.matches("[Enter] step").count();
            if pauses > pressed {
                term.keys(&["Enter"]);
                pressed = pauses;
            }
            false
        });
        assert!(
            reached,
            "lesson {lesson} never paused before step {before}:\n{}",
            term.screen()
        );
        term
    }

    /// `nslab ARGS` (a shell word list) in a real terminal, 120 by 40, with this sandbox's
    /// ledger and progress; an inner shell that ignores SIGHUP and SIGINT (nslab catches
    /// both itself) records nslab's exit code.
    pub fn in_terminal(&self, args: &str) -> Terminal {
        let socket = format!("nslab-test-{}", std::process::id());
        let exit_file = self.dir.path().join("exit-code");
        let command = format!(
            "sh -c \"trap '' HUP INT; env -u SUDO_UID NSLAB_RUN_DIR='{}' NSLAB_PROGRESS='{}' \
             NO_COLOR=1 '{}' {args}; echo \\$? > '{}'\"; exit",
            self.run_dir().display(),
            self.progress().display(),
            bin(),
            exit_file.display()
        );
        let term = Terminal { socket, exit_file };
        let started = term.tmux(&[
            "new-session",
            "-d",
            "-s",
            "lab",
            "-x",
            "120",
            "-y",
            "40",
            "sh",
            "-c",
            &command,
            // What nslab printed last stays readable after it has ended.
            ";",
            "set-option",
            "-t",
            "lab",
            "remain-on-exit",
            "on",
        ]);
        assert!(started.status.success(), "tmux: {}", stderr(&started));
        term
    }

    /// Start `nslab lesson N --plain` as a learner at a terminal would, press Enter at each
    /// pause, and stop at the pause before step `before`, so what the earlier steps made is
    /// alive. The output keeps being read in the background so nslab never blocks on it.
    /// A test that fails while it is paused interrupts it (see [`Background`]): it never
    /// goes on through the remaining steps on its own.
    pub fn lesson_paused_before(&self, lesson: &str, before: char) -> Background {
        self.lesson_paused_before_with(lesson, before, &[])
    }

    /// [`Sandbox::lesson_paused_before`] with more of nslab's environment (`SUDO_UID`…).
    pub fn lesson_paused_before_with(
        &self,
        lesson: &str,
        before: char,
        env: &[(&str, String)],
    ) -> Background {
        let mut cmd = self.cmd(&["lesson", lesson, "--plain"]);
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        let child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting nslab lesson");
        let mut child = Background(child);
        let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut seen = String::new();
        let target = format!("[Enter] step {before}");
        loop {
            let mut line = String::new();
            let n = out.read_line(&mut line).unwrap_or(0);
            assert!(
                n > 0,
                "lesson {lesson} ended before the pause before step {before}:\n{seen}"
            );
            seen.push_str(&line);
            if line.contains(&target) {
                break;
            }
            if line.contains("[Enter] step") {
                let stdin = child.stdin.as_mut().expect("piped stdin");
                stdin.write_all(b"\n").expect("pressing Enter");
            }
        }
        std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = std::io::Read::read_to_string(&mut out, &mut rest);
        });
        child
    }

    /// `nslab check LESSON --plain EXTRA…`: its exit code and what it printed on stdout.
    pub fn check(&self, lesson: &str, extra: &[&str]) -> (i32, String) {
        let mut args = vec!["check", lesson, "--plain"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        (out.status.code().unwrap_or(-1), stdout(&out))
    }

    /// A check that does not pass, for the reason meant: exit 1, verdict "not yet", the
    /// hint `hint_id` with its text, a diff naming `fact`, and a report showing both.
    /// Returns the report.
    pub fn assert_check_fails_with(&self, lesson: &str, hint_id: &str, fact: &str) -> String {
        let (code, json) = self.check(lesson, &["--json"]);
        assert_eq!(code, 1, "{json}");
        let v: serde_json::Value =
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("--json parses ({e}): {json}"));
        assert_eq!(v["verdict"], "not yet");
        assert_eq!(v["hint_id"], hint_id, "{json}");
        assert!(
            v["diff"].as_str().unwrap_or("").contains(fact),
            "diff mentions {fact:?}: {json}"
        );
        assert!(!v["hint"].as_str().unwrap_or("").is_empty(), "{json}");
        let (_, text) = self.check(lesson, &[]);
        assert!(
            text.contains("Difference from the expected result"),
            "{text}"
        );
        assert!(text.contains("Hint:"), "{text}");
        text
    }

    /// Run files left in this sandbox's ledger.
    pub fn run_files(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.run_dir())
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    }

    /// PIDs every run file of this sandbox records.
    pub fn recorded_pids(&self) -> Vec<i32> {
        let mut pids = Vec::new();
        for f in self.run_files() {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&f).unwrap_or_default())
                    .unwrap_or_default();
            for r in v["resources"].as_array().cloned().unwrap_or_default() {
                if r["kind"] == "process" {
                    pids.push(r["pid"].as_i64().unwrap_or(0) as i32);
                }
            }
        }
        pids
    }
}

/// Ctrl-C to a running nslab: it must remove what it made and exit 130.
pub fn interrupt(child: &mut Child) {
    end_with(child, nix::sys::signal::Signal::SIGINT);
}

/// The signals that must end a run with its teardown, as a learner sends them: Ctrl-C,
/// Ctrl-\, a closed terminal, `kill`.
pub const ENDING_SIGNALS: [nix::sys::signal::Signal; 4] = [
    nix::sys::signal::Signal::SIGINT,
    nix::sys::signal::Signal::SIGQUIT,
    nix::sys::signal::Signal::SIGHUP,
    nix::sys::signal::Signal::SIGTERM,
];

/// Send `signal` to a running nslab: it must exit 128 + the signal's number (having torn
/// down; the caller asserts what is left).
pub fn end_with(child: &mut Child, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal)
        .unwrap_or_else(|e| panic!("sending {signal}: {e}"));
    let status = child.wait().expect("waiting for nslab");
    assert_eq!(
        status.code(),
        Some(128 + signal as i32),
        "{signal} exits 128 + {}",
        signal as i32
    );
}

/// nslab in a real terminal: a tmux server of its own (a private socket), so a test can
/// close the terminal the way a learner closes a window.
pub struct Terminal {
    socket: String,
    pub exit_file: PathBuf,
}

impl Terminal {
    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("running tmux")
    }

    /// Everything the terminal has shown, its scrollback included.
    pub fn screen(&self) -> String {
        stdout(&self.tmux(&["capture-pane", "-p", "-S", "-", "-t", "lab"]))
    }

    /// Type keys into the terminal, as tmux names them (`Enter`, `C-c`).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "lab"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Close the terminal: the server goes, its pseudo-terminal hangs up, and the kernel
    /// sends SIGHUP to what runs in it.
    pub fn close(&self) {
        self.tmux(&["kill-server"]);
    }

    /// nslab's exit code, once it has ended.
    pub fn exit_code(&self, timeout: Duration) -> Option<i32> {
        let mut code = None;
        wait_until(timeout, || {
            code = std::fs::read_to_string(&self.exit_file)
                .ok()
                .and_then(|s| s.trim().parse().ok());
            code.is_some()
        });
        code
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        self.close();
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit(')')
            .next()
            .map(|r| !r.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Processes running this test build of nslab (there must be none after a run).
pub fn nslab_processes() -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let ours = cmd.starts_with(bin().as_bytes())
            || cmd.starts_with(format!("{}\0", arg0()).as_bytes());
        if ours && alive(pid) {
            found.push(pid);
        }
    }
    found
}

pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// A learner's command (`unshare … bash`) in its own process group, with stdin held open
/// so the shell waits; the whole group is killed when dropped, pass or fail.
pub struct Learner {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    /// The shell's output, line by line (read by a thread, so it never blocks on a full pipe).
    lines: std::sync::mpsc::Receiver<String>,
    syncs: u32,
}

/// How long a learner's shell may take to run what was typed: long, for a busy machine.
const SHELL_ANSWER_LIMIT: Duration = Duration::from_secs(60);

impl Learner {
    pub fn start(cmd: &[&str]) -> Learner {
        let mut child = Command::new(cmd[0])
            .args(&cmd[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("starting the learner's command");
        let (tx, lines) = std::sync::mpsc::channel();
        let out = BufReader::new(child.stdout.take().expect("stdout piped"));
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Learner {
            child,
            stdin,
            lines,
            syncs: 0,
        }
    }

    /// Wait until the shell has run every line typed so far: it echoes a marker, which
    /// comes back only once the lines before it are done (no fixed pause to guess).
    pub fn sync(&mut self) {
        self.syncs += 1;
        let marker = format!("nslabt-synced-{}", self.syncs);
        self.type_line(&format!("echo {marker}"));
        let deadline = Instant::now() + SHELL_ANSWER_LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line == marker => return,
                Ok(_) => {}
                Err(e) => panic!("the learner's shell did not answer {marker:?}: {e}"),
            }
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Type a line into the learner's shell.
    pub fn type_line(&mut self, line: &str) {
        let s = self.stdin.as_mut().expect("stdin open");
        s.write_all(format!("{line}\n").as_bytes()).unwrap();
        s.flush().unwrap();
    }

    /// The children of the learner's top process.
    pub fn children(&self) -> Vec<i32> {
        let p = self.pid();
        std::fs::read_to_string(format!("/proc/{p}/task/{p}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect()
    }

    pub fn comm(&self) -> String {
        std::fs::read_to_string(format!("/proc/{}/comm", self.pid()))
            .unwrap_or_default()
            .trim()
            .to_string()
    }
}

impl Drop for Sandbox {
    /// A test that failed midway (after a kill -9, say) may have left a dead run's
    /// objects: `nslab cleanup` removes them while this sandbox's ledger is still here.
    /// Live runs are not touched.
    fn drop(&mut self) {
        if is_root() && !self.run_files().is_empty() {
            let _ = self
                .cmd(&["cleanup", "--plain"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// An nslab started in the background; sent Ctrl-C (and waited for) when dropped while
/// still running, so a failing test does not leave it and what it made behind.
pub struct Background(pub Child);

impl std::ops::Deref for Background {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Background {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0.id() as i32),
                nix::sys::signal::Signal::SIGINT,
            );
            let _ = self.0.wait();
        }
    }
}

impl Drop for Learner {
    fn drop(&mut self) {
        let pgid = nix::unistd::Pid::from_raw(-self.pid());
        let _ = nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Read the child's stdout line by line until `needle` appears (or it ends).
pub fn read_until(
    out: &mut BufReader<std::process::ChildStdout>,
    needle: &str,
    seen: &mut String,
) -> bool {
    let mut line = String::new();
    loop {
        line.clear();
        match out.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) => {
                seen.push_str(&line);
                if line.contains(needle) {
                    return true;
                }
            }
        }
    }
}

pub fn path_exists(p: &Path) -> bool {
    p.exists()
}

/// A busybox root filesystem made the way lesson 5's solution says (busybox-static and
/// links to the applets the tests use), removed on drop. A learner's /proc inside lives
/// in its own mount namespace: nothing to unmount here.
pub struct TestRootfs {
    dir: tempfile::TempDir,
}

impl TestRootfs {
    pub fn new() -> TestRootfs {
        let dir = tempfile::Builder::new()
            .prefix("nslabt-rootfs-")
            .tempdir_in("/var/tmp")
            .unwrap();
        for d in ["bin", "proc", "dev", "tmp", "etc"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", dir.path().join("bin/busybox"))
            .expect("busybox-static installed");
        for app in [
            "sh", "true", "sleep", "hostname", "mount", "ps", "cat", "ls",
        ] {
            std::os::unix::fs::symlink("busybox", dir.path().join("bin").join(app)).unwrap();
        }
        TestRootfs { dir }
    }

    pub fn path(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }
}
