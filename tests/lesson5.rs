//! Lesson 5 and `nslab run` end to end: the lesson run through; `nslab run` (exit status,
//! flags, a fork bomb held by pids.max, nothing left after success, Ctrl-C and kill -9 +
//! cleanup); the exercise done with the seeds' commands, the pass and each failure.

mod common;

use common::{
    alive, nslab_processes, serial, stdout, wait_until, Background, Learner, Sandbox, TestRootfs,
};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// `/var/tmp/nslab-rootfs-<pid>-…` directories a run with this PID made.
fn rootfs_dirs_of(pid: u32) -> Vec<PathBuf> {
    std::fs::read_dir("/var/tmp")
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name().is_some_and(|n| {
                        n.to_string_lossy()
                            .starts_with(&format!("nslab-rootfs-{pid}-"))
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The caller's own v1 directory (or the v2 one) for `controller`.
fn own_cgroup_dir(controller: &str) -> Option<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    for l in own.lines() {
        let mut parts = l.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        if ctrls.split(',').any(|c| c == controller) {
            return Some(
                Path::new("/sys/fs/cgroup")
                    .join(controller)
                    .join(path.trim_start_matches('/')),
            );
        }
    }
    let v2 = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(Path::new("/sys/fs/cgroup").join(v2.trim_start_matches('/')))
}

/// How many CPUs this test (and so the nslab it starts) may run on.
fn allowed_cpus() -> usize {
    nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .map(|set| {
            (0..nix::sched::CpuSet::count())
                .filter(|&c| set.is_set(c).unwrap_or(false))
                .count()
        })
        .unwrap_or(1)
}

fn is_v2() -> bool {
    !Path::new("/sys/fs/cgroup/memory").is_dir()
}

/// `nslab/run-<pid>` cgroup directories of the run with this PID.
fn run_cgroups_of(pid: u32) -> Vec<PathBuf> {
    ["memory", "cpu", "cpuacct", "pids"]
        .iter()
        .filter_map(|c| own_cgroup_dir(c))
        .map(|d| d.join("nslab").join(format!("run-{pid}")))
        .filter(|p| p.exists())
        .collect()
}

/// nslab's network objects on the host: links and nftables tables with its prefix.
fn nslab_net_objects() -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir("/sys/class/net")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("nslab"))
                .map(|n| format!("link {n}"))
                .collect()
        })
        .unwrap_or_default();
    // Without `nft` (a plain `cargo test`), tables are not looked at.
    if let Ok(out) = std::process::Command::new("nft")
        .args(["list", "tables"])
        .output()
    {
        found.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| {
                    l.split_whitespace()
                        .nth(2)
                        .is_some_and(|n| n.starts_with("nslab"))
                })
                .map(str::to_string),
        );
    }
    found
}

fn assert_run_left_nothing(sb: &Sandbox, pid: u32) {
    assert!(
        wait_until(Duration::from_secs(5), || nslab_net_objects().is_empty()),
        "network objects left: {:?}",
        nslab_net_objects()
    );
    assert!(
        sb.run_files().is_empty(),
        "ledger still lists something: {:?}",
        sb.run_files()
    );
    assert!(
        rootfs_dirs_of(pid).is_empty(),
        "root filesystem left: {:?}",
        rootfs_dirs_of(pid)
    );
    assert!(
        run_cgroups_of(pid).is_empty(),
        "cgroups left: {:?}",
        run_cgroups_of(pid)
    );
    assert!(
        wait_until(Duration::from_secs(3), || nslab_processes().is_empty()),
        "nslab processes left: {:?}",
        nslab_processes()
    );
}

#[test]
fn run_flag_errors_exit_2() {
    let sb = Sandbox::new();
    for args in [
        &["run", "--memory", "lots", "--", "true"][..],
        &["run", "--memory", "100", "--", "true"],
        &["run", "--cpus", "0", "--", "true"],
        &["run", "--cpus", "half", "--", "true"],
        &["run", "--pids", "0", "--", "true"],
        &["run", "--pids", "-3", "--", "true"],
        &["run", "--hostname", "no spaces", "--", "true"],
        &["run"],
        &["run", "--"],
    ] {
        let out = sb.run(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            common::stderr(&out)
        );
        assert!(!common::stderr(&out).contains("panicked"));
    }
    if common::is_root() {
        let out = sb.run(&["run", "--rootfs", "/nonexistent-nslabt", "--", "true"]);
        assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
        assert!(common::stderr(&out).contains("/nonexistent-nslabt"));
        // A directory without /proc is refused before anything is made.
        let d = tempfile::Builder::new()
            .prefix("nslabt-")
            .tempdir()
            .unwrap();
        let out = sb.run(&["run", "--rootfs", d.path().to_str().unwrap(), "--", "true"]);
        assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
        assert!(
            common::stderr(&out).contains("mkdir"),
            "{}",
            common::stderr(&out)
        );
    }
}

#[test]
fn run_passes_on_the_exit_status_and_leaves_nothing() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let (code, out, err, pid) = sb.run_with_pid(&[
        "run",
        "--trace",
        "--memory",
        "100M",
        "--cpus",
        "0.5",
        "--pids",
        "50",
        "--hostname",
        "nslabt-box",
        "--",
        "sh",
        "-c",
        "echo pid=$$; hostname; cat /proc/1/cgroup; ls /; exit 7",
    ]);
    assert_eq!(code, 7, "{out}\n{err}");
    // The command is PID 2: PID 1 is the container's init.
    assert!(out.contains("pid=2\nnslabt-box\n"), "{out}");
    // In its own cgroup namespace each of PID 1's cgroups is the root, `/`.
    let cgroup_lines: Vec<&str> = out.lines().filter(|l| l.contains(":/")).collect();
    assert!(!cgroup_lines.is_empty(), "{out}");
    assert!(
        cgroup_lines.iter().all(|l| l.ends_with(":/")),
        "a cgroup namespace rooted at the run's cgroup: {out}"
    );
    // PID 1 joined the run's cgroup in every hierarchy holding a limit (v2: born in it),
    // as the kernel answered in the trace.
    let run_dir = format!("nslab/run-{pid}");
    if is_v2() {
        assert!(
            err.lines()
                .any(|l| l.contains(&run_dir) && l.contains("O_DIRECTORY"))
                && err.contains("CLONE_INTO_CGROUP"),
            "PID 1 is born in the run's cgroup: {err}"
        );
    } else {
        for controller in ["memory", "cpu", "pids"] {
            let join = err
                .lines()
                .find(|l| {
                    l.contains(&format!("/sys/fs/cgroup/{controller}>"))
                        && l.contains(&format!("{run_dir}/tasks"))
                })
                .unwrap_or_else(|| panic!("no join of the {controller} cgroup in {err}"));
            let fd = join.rsplit("= ").next().unwrap().trim();
            assert!(fd.parse::<u32>().is_ok(), "{join}");
            assert!(
                err.contains(&format!("write({fd}, \"0\", 1) = 1")),
                "PID 1 is in the run's {controller} cgroup: {err}"
            );
        }
    }
    assert!(out.contains("proc") && out.contains("bin"), "{out}");
    assert_run_left_nothing(&sb, pid);

    let (code, _, err, pid) = sb.run_with_pid(&["run", "--", "nslabt-no-such-command"]);
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("not found"), "{err}");
    assert_run_left_nothing(&sb, pid);

    // --trace shows the system calls, --rootfs uses a given tree (left in place).
    let root = TestRootfs::new();
    let (code, _, err, pid) =
        sb.run_with_pid(&["run", "--trace", "--rootfs", root.path(), "--", "/bin/true"]);
    assert_eq!(code, 0, "{err}");
    // The network namespace is nslab's to make while PID 1 builds its root, then PID 1's.
    for call in [
        "clone(flags=CLONE_NEWIPC|CLONE_NEWNS|CLONE_NEWPID|CLONE_NEWUTS|SIGCHLD) = ",
        "unshare(CLONE_NEWNET) = 0",
        ", CLONE_NEWNET) = 0",
        "pidfd_getfd(",
        "pivot_root(\".\", \".\") = 0",
        "execve(\"/bin/true\"",
    ] {
        assert!(err.contains(call), "{call} in {err}");
    }
    assert!(
        Path::new(root.path()).join("bin/busybox").exists(),
        "a given root filesystem is not removed"
    );
    assert_run_left_nothing(&sb, pid);
}

/// The test thread's own CPU affinity, as /proc lists it (`0-1`), and so the one of the
/// nslab it starts.
fn own_cpus_allowed_list() -> String {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    cpus_allowed_list(&status).unwrap().to_string()
}

fn cpus_allowed_list(status: &str) -> Option<&str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(str::trim)
}

/// Puts the test thread's CPU affinity back when dropped, even if the test fails.
struct AffinityGuard(nix::sched::CpuSet);

impl Drop for AffinityGuard {
    fn drop(&mut self) {
        let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &self.0);
    }
}

#[test]
fn run_gives_the_command_the_cpus_nslab_had() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let show = [
        "run",
        "--trace",
        "--",
        "sh",
        "-c",
        "grep Cpus_allowed_list /proc/self/status",
    ];
    let own = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).unwrap();
    let _restore = AffinityGuard(own);

    // nslab moves PID 1 off its CPU while both work; PID 1 then takes back every CPU it had.
    let (code, out, err, pid) = sb.run_with_pid(&show);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        cpus_allowed_list(&out),
        Some(own_cpus_allowed_list().as_str()),
        "{out}"
    );
    let moves: Vec<&str> = err
        .lines()
        .filter(|l| l.trim_start().starts_with("sched_setaffinity("))
        .collect();
    if allowed_cpus() > 1 {
        assert_eq!(moves.len(), 2, "off nslab's CPU and back: {err}");
        assert!(moves.iter().all(|l| l.ends_with(") = 0")), "{err}");
    } else {
        assert!(moves.is_empty(), "one CPU: nowhere to move to: {err}");
    }
    assert_run_left_nothing(&sb, pid);

    // Started on one CPU (`taskset -c N nslab run …`): nowhere else to go, and the command
    // runs on that CPU too.
    let cpu = nix::sched::sched_getcpu().unwrap();
    let mut one = nix::sched::CpuSet::new();
    one.set(cpu).unwrap();
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &one).unwrap();
    let (code, out, err, pid) = sb.run_with_pid(&show);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        cpus_allowed_list(&out),
        Some(cpu.to_string().as_str()),
        "{out}"
    );
    assert!(!err.contains("sched_setaffinity"), "{err}");
    assert_run_left_nothing(&sb, pid);
}

/// The container's shell forks once, a subshell that starts the bomb, and nothing
/// more: with the limit reached any fork of its own fails, and busybox sh exits on
/// that. It counts the processes it sees through /proc with a glob (no fork) instead.
const FORK_BOMB: &str = "f(){ f | f & }; (f) 2>/tmp/bomb.err &
most=0; i=0
while [ $i -lt 3000 ]; do set -- /proc/[0-9]*; [ $# -gt $most ] && most=$#; i=$((i+1)); done
read -r refused < /tmp/bomb.err
echo \"most=$most\"; echo \"refused=$refused\"
exit 0";

#[test]
fn run_holds_a_fork_bomb_with_pids_max() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let start = std::time::Instant::now();
    let (code, out, err, pid) = sb.run_with_pid(&[
        "run", "--pids", "10", "--cpus", "0.5", "--", "sh", "-c", FORK_BOMB,
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "the bomb was held"
    );
    let most: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("most="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no process count in {out}"));
    assert!(
        (2..=10).contains(&most),
        "the bomb grew (more than the shell) but never past pids.max 10: saw {most}"
    );
    // busybox sh says "can't fork", dash "Cannot fork": either way a refusal.
    let refused = out
        .lines()
        .find_map(|l| l.strip_prefix("refused="))
        .unwrap_or_default();
    assert!(
        refused.to_lowercase().contains("fork"),
        "the bomb's forks were refused: {out}"
    );
    assert_run_left_nothing(&sb, pid);
}

/// Start `nslab run -- sleep 100` and wait until its container runs.
fn running_container(sb: &Sandbox) -> (Background, i32) {
    let child = sb
        .cmd(&[
            "run", "--memory", "100M", "--pids", "20", "--", "sleep", "100",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let child = Background(child);
    let pid = child.0.id();
    let mut sleeper = 0;
    assert!(
        wait_until(Duration::from_secs(10), || {
            sleeper = std::fs::read_dir("/proc")
                .unwrap()
                .flatten()
                .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
                .find(|p| {
                    std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                        .is_ok_and(|c| c == "sleep\u{0}100\u{0}")
                        && std::fs::read_to_string(format!("/proc/{p}/cgroup"))
                            .is_ok_and(|c| c.contains(&format!("run-{pid}")))
                })
                .unwrap_or(0);
            sleeper != 0
        }),
        "the container started"
    );
    assert!(!rootfs_dirs_of(pid).is_empty());
    (child, sleeper)
}

#[test]
fn run_ctrl_c_removes_everything() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let (mut child, sleeper) = running_container(&sb);
    let pid = child.0.id();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    assert_eq!(child.0.wait().unwrap().code(), Some(130));
    assert!(wait_until(Duration::from_secs(3), || !alive(sleeper)));
    assert_run_left_nothing(&sb, pid);
}

#[test]
fn run_kill_9_then_cleanup_removes_everything() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let (mut child, sleeper) = running_container(&sb);
    let pid = child.0.id();
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    // The container dies with nslab (parent-death signals down the chain).
    assert!(
        wait_until(Duration::from_secs(5), || !alive(sleeper)),
        "the container died with nslab"
    );
    assert!(!sb.run_files().is_empty(), "the ledger survives kill -9");
    assert!(!rootfs_dirs_of(pid).is_empty() && !run_cgroups_of(pid).is_empty());
    let out = sb.run(&["cleanup", "--plain"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    assert!(
        stdout(&out).contains("removed directory"),
        "{}",
        stdout(&out)
    );
    assert_run_left_nothing(&sb, pid);
}

#[test]
fn lesson_runs_through() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let child = sb
        .cmd(&["lesson", "5", "--yes", "--plain"])
        // No sentence wraps: the transcript reads the same whatever its numbers' length.
        .env("COLUMNS", "1000")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = common::finish_within(child, common::RUN_LIMIT, "lesson 5 --yes");
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        common::stderr(&out)
    );
    assert_run_left_nothing(&sb, pid);
    assert!(text.contains("ESCAPED: this is the host's /"), "{text}");
    assert!(
        text.contains("still inside: the host's / is not reachable"),
        "{text}"
    );
    // Step d: the container's sets read from its /proc/PID/status and decoded, no_new_privs
    // set inside only, and a masked path empty inside while the host's is there.
    assert!(
        text.contains(
            "0000000020000420 = 3 capabilities:\n    cap_kill cap_net_bind_service cap_audit_write"
        ),
        "{text}"
    );
    let row = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no {name} row in {text}"))
            .split_whitespace()
            .skip(2)
            .collect::<Vec<_>>()
    };
    assert_eq!(row("NoNewPrivs"), ["0", "1"], "{text}");
    assert_eq!(row("CapEff")[1], "0000000020000420", "{text}");
    assert_ne!(
        row("CapEff")[0],
        "0000000020000420",
        "nslab keeps more: {text}"
    );
    let masked: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("a file: ") && l.ends_with("/dev/null: 0 bytes read"))
        .collect();
    assert!(
        !masked.is_empty(),
        "a masked file, /dev/null inside: {text}"
    );
    // The bomb was alive and held when the lesson read its cgroup: some processes, at most
    // pids.max (20), and forks refused.
    let held = text
        .lines()
        .find(|l| l.contains(" processes of at most 20: the kernel refused "))
        .unwrap_or_else(|| panic!("no fork bomb reading in {text}"));
    let numbers: Vec<u64> = held
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    assert!(
        matches!(numbers[..], [now, 20, refused, ..] if (2..=20).contains(&now) && refused > 0),
        "{held}"
    );
    // With a second CPU to go to, PID 1 keeps off nslab's while both work (each container
    // started: steps b, c and d), and the lesson says why once.
    let moves = text.matches("  sched_setaffinity(").count();
    let containers = text.matches("  execve(").count();
    if allowed_cpus() > 1 {
        assert!(containers > 0, "{text}");
        assert_eq!(
            moves,
            2 * containers,
            "a move off nslab's CPU and back per container: {text}"
        );
        assert!(
            text.contains("» The two sched_setaffinity lines are for speed"),
            "{text}"
        );
    } else {
        assert_eq!(moves, 0, "one CPU: nowhere to move to: {text}");
    }
    // What the lesson shows, in order, is held in its outline (tests/widths.rs).
}

/// The learner's cgroup, made by hand (v1: memory, cpu and pids directories; v2: one),
/// with the limits asked for; processes killed and directories removed on drop.
struct TestCgroup {
    dirs: Vec<PathBuf>,
}

impl TestCgroup {
    fn new(memory: bool, cpu: bool, pids: bool) -> TestCgroup {
        let name = format!("nslabt-c5-{}", std::process::id());
        let mut dirs = Vec::new();
        if is_v2() {
            let d = own_cgroup_dir("memory").unwrap().join(&name);
            std::fs::create_dir(&d).unwrap();
            if memory {
                std::fs::write(d.join("memory.max"), "104857600").unwrap();
            }
            if cpu {
                std::fs::write(d.join("cpu.max"), "50000 100000").unwrap();
            }
            if pids {
                std::fs::write(d.join("pids.max"), "50").unwrap();
            }
            dirs.push(d);
        } else {
            for (c, on, file, value) in [
                ("memory", memory, "memory.limit_in_bytes", "104857600"),
                ("cpu", cpu, "cpu.cfs_quota_us", "50000"),
                ("pids", pids, "pids.max", "50"),
            ] {
                let d = own_cgroup_dir(c).unwrap().join(&name);
                let _ = std::fs::remove_dir(&d);
                std::fs::create_dir(&d).unwrap();
                if on {
                    std::fs::write(d.join(file), value).unwrap();
                }
                dirs.push(d);
            }
        }
        TestCgroup { dirs }
    }

    fn list(&self) -> String {
        self.dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        for d in &self.dirs {
            wait_until(Duration::from_secs(5), || {
                for p in std::fs::read_to_string(d.join("cgroup.procs"))
                    .unwrap_or_default()
                    .split_whitespace()
                {
                    if let Ok(p) = p.parse::<i32>() {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(p),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
                std::fs::remove_dir(d).is_ok() || !d.exists()
            });
        }
    }
}

/// The seeds' mini container: `unshare … sh -c 'join the cgroup && exec chroot ROOTFS CMD'`.
fn mini_container(
    unshare_flags: &[&str],
    cg: Option<&TestCgroup>,
    root: Option<&TestRootfs>,
    cmd: &str,
) -> Learner {
    let join = cg
        .map(|c| {
            format!(
                "for d in {}; do echo $$ > $d/cgroup.procs; done && ",
                c.list()
            )
        })
        .unwrap_or_default();
    let enter = match root {
        Some(r) => format!("exec chroot {} {cmd}", r.path()),
        None => format!("exec {cmd}"),
    };
    let script = format!("{join}{enter}");
    let mut argv = vec!["unshare"];
    argv.extend_from_slice(unshare_flags);
    argv.extend_from_slice(&["sh", "-c", &script]);
    let l = Learner::start(&argv);
    assert!(
        wait_until(Duration::from_secs(5), || !l.children().is_empty()),
        "unshare forked"
    );
    let inner = l.children()[0];
    let want = cmd
        .rsplit('/')
        .next()
        .unwrap_or(cmd)
        .split(' ')
        .next()
        .unwrap_or("")
        .to_string();
    assert!(
        wait_until(Duration::from_secs(5), || std::fs::read_to_string(format!(
            "/proc/{inner}/comm"
        ))
        .is_ok_and(|c| c.trim() == want)),
        "the container's PID 1 runs {want}"
    );
    l
}

const ALL_NS: [&str; 6] = [
    "--pid",
    "--fork",
    "--mount",
    "--uts",
    "--ipc",
    "--mount-proc",
];

#[test]
fn exercise_passes_with_the_seeds_commands() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let root = TestRootfs::new();
    let cg = TestCgroup::new(true, true, true);
    let mut l = mini_container(&ALL_NS, Some(&cg), Some(&root), "/bin/sh");
    l.type_line("mount -t proc proc /proc");
    l.type_line("hostname minicontainer");
    l.sync();
    let (code, text) = sb.check("5", &[]);
    assert_eq!(code, 0, "{text}");
    let shell = l.children()[0];
    assert!(
        text.contains(&format!("host PID {shell}")),
        "names the shell: {text}"
    );
    assert!(text.contains("minicontainer"), "{text}");
    let (code, json) = sb.check("5", &["--json", "--pid", &shell.to_string()]);
    assert_eq!(code, 0, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["verdict"], "pass");
    assert_eq!(v["facts"].as_array().unwrap().len(), 13);
}

#[test]
fn exercise_failures_each_have_their_own_diff_and_hint() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    sb.assert_check_fails_with("5", "nothing-found", "not found");
    let root = TestRootfs::new();

    // No chroot: the container's root is the host's.
    {
        let cg = TestCgroup::new(true, true, true);
        let mut l = mini_container(&ALL_NS, Some(&cg), None, "/bin/sh");
        l.type_line("hostname nslabt-inside");
        l.sync();
        sb.assert_check_fails_with("5", "no-root", "root directory: the host's /");
    }
    // No --uts: (the hostname is left alone, or it would rename the host).
    {
        let cg = TestCgroup::new(true, true, true);
        let mut l = mini_container(
            &["--pid", "--fork", "--mount", "--ipc", "--mount-proc"],
            Some(&cg),
            Some(&root),
            "/bin/sh",
        );
        l.sync();
        sb.assert_check_fails_with("5", "no-uts", "UTS namespace: the host's");
        drop(l);
    }
    // No --ipc.
    {
        let cg = TestCgroup::new(true, true, true);
        let mut l = mini_container(
            &["--pid", "--fork", "--mount", "--uts", "--mount-proc"],
            Some(&cg),
            Some(&root),
            "/bin/sh",
        );
        l.type_line("hostname minicontainer");
        l.sync();
        sb.assert_check_fails_with("5", "no-ipc", "IPC namespace: the host's");
    }
    // No hostname set.
    {
        let cg = TestCgroup::new(true, true, true);
        let mut l = mini_container(&ALL_NS, Some(&cg), Some(&root), "/bin/sh");
        l.type_line("mount -t proc proc /proc");
        l.sync();
        sb.assert_check_fails_with("5", "no-hostname", "hostname: the host's");
    }
    // No /proc inside.
    {
        let cg = TestCgroup::new(true, true, true);
        let mut l = mini_container(&ALL_NS, Some(&cg), Some(&root), "/bin/sh");
        l.type_line("hostname minicontainer");
        l.sync();
        sb.assert_check_fails_with("5", "no-mount-proc", "/proc inside: none");
    }
    // PID 1 not a shell.
    {
        let cg = TestCgroup::new(true, true, true);
        let _l = mini_container(&ALL_NS, Some(&cg), Some(&root), "/bin/sleep 1000");
        sb.assert_check_fails_with("5", "no-hostname", "PID 1 inside: `sleep`, not a shell");
    }
    // No cgroup joined.
    {
        let mut l = mini_container(&ALL_NS, None, Some(&root), "/bin/sh");
        l.type_line("mount -t proc proc /proc");
        l.type_line("hostname minicontainer");
        l.sync();
        sb.assert_check_fails_with(
            "5",
            "no-cgroup",
            "cgroup of PID 1: the same as everything else's",
        );
    }
    // A cgroup without a pids limit.
    {
        let cg = TestCgroup::new(true, true, false);
        let mut l = mini_container(&ALL_NS, Some(&cg), Some(&root), "/bin/sh");
        l.type_line("mount -t proc proc /proc");
        l.type_line("hostname minicontainer");
        l.sync();
        sb.assert_check_fails_with("5", "no-pids-limit", "pids limit: none");
    }
    // --pid at a process in the host's namespace; at no process.
    let (code, json) = sb.check("5", &["--json", "--pid", &std::process::id().to_string()]);
    assert_eq!(code, 1);
    assert!(json.contains("host-namespace"), "{json}");
    assert_eq!(sb.check("5", &["--pid", "999999999"]).0, 2);
}

/// `nslab lesson 5` paused after step b (its root filesystem built, its container running),
/// then killed with `kill -9` (no chance to clean up), then `nslab cleanup`; and the same
/// with Ctrl-C.
#[test]
fn lesson_interrupted_or_killed_leaves_nothing() {
    require_root!();
    let _g = serial();
    for signal in [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGKILL,
    ] {
        let sb = Sandbox::new();
        let mut child = sb.lesson_paused_before("5", 'c');
        let pid = child.id();
        assert!(
            !rootfs_dirs_of(pid).is_empty(),
            "step a built a root filesystem"
        );
        let pids = sb.recorded_pids();
        assert!(!pids.is_empty(), "the container's PID 1 is on record");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).unwrap();
        let status = child.wait().unwrap();
        if signal == nix::sys::signal::Signal::SIGINT {
            assert_eq!(status.code(), Some(130));
        } else {
            assert!(!sb.run_files().is_empty(), "the ledger survives kill -9");
            let out = sb.run(&["cleanup", "--plain"]);
            assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
        }
        for p in pids {
            assert!(
                wait_until(Duration::from_secs(5), || !alive(p)),
                "process {p} ended"
            );
        }
        assert_run_left_nothing(&sb, pid);
    }
}
