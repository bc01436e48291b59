use super::check::{is_30mb, OomCheck, FOUND, KILLS, LIMIT, USED, VICTIM};
use super::limit::{check_limit, hog_goal, parse_limit_flag, survivor_limit};
use super::*;
use crate::checks::whose::{self, Recorded, Whose};
use crate::checks::{self, render_facts};
use crate::kernel::cgroup::{self, CgVersion, Home, Max};
use crate::kernel::hog::MemoryHog;
use crate::lesson::{CheckArgs, Observation};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

fn check(args: &CheckArgs) -> Result<Observation> {
    run_check::<OomCheck>(args)
}

fn is_stranger(path: &str) -> bool {
    whose::cgroup(path, Path::new("/x"), &Recorded::default()) == Whose::Stranger
}

#[test]
fn strangers_are_units_and_containers() {
    for p in [
        "/system.slice/docker-0123.scope",
        "/user.slice",
        "/docker/0123abcd",
        "/kubepods/burstable/pod1/abc",
        "/machine.slice/libpod-0123.scope",
        "/lxc.payload/web",
        "/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "/",
    ] {
        assert!(is_stranger(p), "{p}");
    }
    for p in [
        "/mytest",
        "/demo-group",
        "/process_api/c49a/foo",
        "/user.slice/mytest",
        "/oom",
    ] {
        assert!(!is_stranger(p), "{p}");
    }
}

#[test]
fn limits_the_lesson_accepts() {
    assert_eq!(check_limit(30 << 20, Some(24 << 30)).unwrap(), 30 << 20);
    let small = check_limit(4 << 20, None).unwrap_err();
    assert_eq!(crate::error::exit_code_of(&small), crate::error::EXIT_USAGE);
    // A limit whose survivor run would take more than half of what is available.
    let big = check_limit(1 << 30, Some(2 << 30)).unwrap_err();
    assert_eq!(crate::error::exit_code_of(&big), crate::error::EXIT_USAGE);
    assert!(parse_limit_flag("thirty").is_err());
    assert_eq!(parse_limit_flag("30M").unwrap(), 30 << 20);
    assert!(hog_goal(30 << 20) > 30 << 20 && survivor_limit(30 << 20) > hog_goal(30 << 20));
    assert!(
        is_30mb(30_000_000) && is_30mb(29_999_104) && is_30mb(31_457_280) && !is_30mb(50_000_000)
    );
}

#[test]
fn hints_exist_for_every_problem_the_check_reports() {
    crate::lessons::assert_hints_and_facts(
        &INFO,
        &[
            "general",
            "no-cgroup",
            "wrong-limit",
            "never-joined",
            "nothing-killed",
        ],
        &[FOUND, LIMIT, USED, KILLS, VICTIM],
    );
}

// ---- root tests: the exercise done by hand, with the seeds' own commands ------------

/// The root tests below make learner-like cgroups that the check searches for: one at a time.
static EXERCISE: Mutex<()> = Mutex::new(());

/// A cgroup made "by the learner" (by shell commands, not nslab), below the test's own memory
/// cgroup; removed at the end whatever happens.
struct LearnerCgroup {
    dir: PathBuf,
    version: CgVersion,
}

impl LearnerCgroup {
    fn new(variant: &str) -> LearnerCgroup {
        let layout = Layout::read().unwrap();
        let own = cgroup::own_cgroup().unwrap();
        let base = layout.dir_of(&own, "memory").expect("a memory cgroup");
        let version = match layout.home("memory") {
            Some(Home::V2(_)) => CgVersion::V2,
            _ => CgVersion::V1,
        };
        let dir = base.join(format!("nslabt-ex-{variant}-{}", std::process::id()));
        let _ = std::fs::remove_dir(&dir); // a leftover of an earlier run of this test
        sh(&format!("mkdir -p {}", dir.display()));
        LearnerCgroup { dir, version }
    }

    fn file(&self, c: Concept) -> PathBuf {
        self.dir.join(c.files(self.version)[0].file)
    }

    /// `echo VALUE > memory.limit_in_bytes` (or memory.max), and swap off as the solution says.
    fn limit(&self, value: &str) {
        sh(&format!(
            "echo {value} > {}",
            self.file(Concept::MemoryLimit).display()
        ));
        let swap = match self.version {
            CgVersion::V1 => self.dir.join("memory.swappiness"),
            CgVersion::V2 => self.dir.join("memory.swap.max"),
        };
        if swap.exists() {
            sh(&format!("echo 0 > {}", swap.display()));
        }
    }

    /// Run `cmd` in a shell that first moves itself into the cgroup; returns its wait status.
    fn run_inside(&self, cmd: &str) -> std::process::ExitStatus {
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "echo $$ > {}/cgroup.procs; {cmd}",
                self.dir.display()
            ))
            .status()
            .expect("run sh")
    }

    fn args(&self) -> CheckArgs {
        CheckArgs {
            pid: None,
            cgroup: Some(self.dir.display().to_string()),
            quick: false,
        }
    }
}

impl Drop for LearnerCgroup {
    fn drop(&mut self) {
        for _ in 0..100 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn sh(cmd: &str) {
    let st = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .status()
        .expect("run sh");
    assert!(st.success(), "`{cmd}` failed: {st}");
}

fn killed_by_sigkill(st: &std::process::ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    st.signal() == Some(9) || st.code() == Some(137)
}

#[test]
fn root_exercise_passes_with_the_seed_commands_any_way_of_writing_30mb() {
    let Some(_root) = crate::testing::root_or_skip(
        "root_exercise_passes_with_the_seed_commands_any_way_of_writing_30mb",
    ) else {
        return;
    };
    let _one = EXERCISE.lock().unwrap_or_else(|e| e.into_inner());
    for (i, written) in ["30000000", "30M", "31457280"].iter().enumerate() {
        let cg = LearnerCgroup::new(&format!("pass{i}"));
        cg.limit(written);
        let st = cg.run_inside("exec tail /dev/zero");
        assert!(killed_by_sigkill(&st), "the hog was killed: {st}");

        let obs = check(&cg.args()).unwrap();
        assert_eq!(
            render_facts(&obs.facts),
            INFO.expected_check,
            "limit written as {written}: {obs:#?}"
        );
        assert!(
            obs.judged.contains(&cg.dir.display().to_string()),
            "{}",
            obs.judged
        );
        assert!(obs.problem.is_none());
        let report = checks::report(&INFO, obs);
        assert!(report.passed && report.diff.is_empty());

        // Found without --cgroup too: it is the only fresh 30 MB cgroup with a kill.
        let found = check(&CheckArgs::default()).unwrap();
        assert!(
            found.judged.contains(&cg.dir.display().to_string()),
            "{}",
            found.judged
        );
        assert_eq!(render_facts(&found.facts), INFO.expected_check);
    }
}

#[test]
fn root_exercise_failures_each_with_its_hint() {
    let Some(_root) = crate::testing::root_or_skip("root_exercise_failures_each_with_its_hint")
    else {
        return;
    };
    let _one = EXERCISE.lock().unwrap_or_else(|e| e.into_inner());

    // No such cgroup.
    let obs = check(&CheckArgs {
        pid: None,
        cgroup: Some("nslabt-no-such-cgroup".into()),
        quick: false,
    })
    .unwrap();
    assert_eq!(obs.problem, Some("no-cgroup"));
    assert_eq!(obs.facts[0].value, "not found");
    let report = checks::report(&INFO, obs);
    assert!(!report.passed && report.diff.contains("memory cgroup: not found"));
    assert_eq!(report.hint.as_deref(), INFO.hint("no-cgroup"));

    // Wrong limit (the seed's 50 MB), hog killed all the same.
    let cg = LearnerCgroup::new("wrong");
    cg.limit("50000000");
    assert!(killed_by_sigkill(&cg.run_inside("exec tail /dev/zero")));
    let obs = check(&cg.args()).unwrap();
    assert_eq!(obs.problem, Some("wrong-limit"));
    assert_eq!(obs.facts[1].value, "47.7 MiB (49999872 bytes), not 30 MB");
    drop(cg);

    // The hog never joined: limit set, nothing ran inside.
    let cg = LearnerCgroup::new("idle");
    cg.limit("30M");
    let obs = check(&cg.args()).unwrap();
    assert_eq!(obs.problem, Some("never-joined"));
    assert_eq!(
        (obs.facts[2].value.as_str(), obs.facts[3].value.as_str()),
        ("no", "none")
    );
    let report = checks::report(&INFO, obs);
    assert_eq!(report.hint.as_deref(), INFO.hint("never-joined"));
    drop(cg);

    // Something ran inside but stayed under the limit: nothing was killed.
    let cg = LearnerCgroup::new("small");
    cg.limit("30M");
    assert!(cg
        .run_inside("head -c 12M /dev/zero | tail > /dev/null")
        .success());
    let obs = check(&cg.args()).unwrap();
    assert_eq!(obs.problem, Some("nothing-killed"), "{obs:#?}");
    assert_eq!(
        (obs.facts[2].value.as_str(), obs.facts[3].value.as_str()),
        ("yes", "none")
    );
    assert_eq!(obs.facts[4].value, "no: nothing was killed in it");
    drop(cg);

    // No limit at all, pointed at by name.
    let cg = LearnerCgroup::new("nolimit");
    let name = cg.dir.file_name().unwrap().to_string_lossy().into_owned();
    let obs = check(&CheckArgs {
        pid: None,
        cgroup: Some(name),
        quick: false,
    })
    .unwrap();
    assert_eq!(obs.problem, Some("wrong-limit"));
    assert_eq!(obs.facts[1].value, "none (unlimited)");
}

#[test]
fn root_check_never_judges_nslabs_own_cgroup() {
    let Some(_root) = crate::testing::root_or_skip("root_check_never_judges_nslabs_own_cgroup")
    else {
        return;
    };
    let _one = EXERCISE.lock().unwrap_or_else(|e| e.into_inner());
    // nslab's own cgroup with a 30 MiB limit and a kill: on the ledger, so never judged.
    let name = format!("nslabt-own-{}", std::process::id());
    let mut own = NslabCgroup::create_for(&name, &["memory"]).unwrap();
    own.set(Concept::MemoryLimit, &Reading::Limit(Max::Value(30 << 20)))
        .unwrap();
    own.forbid_swap().unwrap();
    let mut hog = MemoryHog::spawn(64 << 20, 4 << 20, Duration::from_millis(1)).unwrap();
    hog.start_in(&own).unwrap();
    while let HogEvent::Progress(_) = hog.next(Duration::from_secs(60)).unwrap() {}
    let own_dir = own.dir_for("memory").unwrap().path.clone();
    let obs = check(&CheckArgs::default()).unwrap();
    assert!(
        !obs.judged.contains(&own_dir.display().to_string()),
        "judged nslab's own: {}",
        obs.judged
    );

    own.remove().unwrap();
    assert!(!own_dir.exists());
}

#[test]
fn root_check_judges_the_cgroup_of_a_pid() {
    let Some(_root) = crate::testing::root_or_skip("root_check_judges_the_cgroup_of_a_pid") else {
        return;
    };
    let _one = EXERCISE.lock().unwrap_or_else(|e| e.into_inner());
    let cg = LearnerCgroup::new("bypid");
    cg.limit("30M");
    // A shell left inside the cgroup, as a learner's would be.
    let mut shell = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > {}/cgroup.procs; exec sleep 60",
            cg.dir.display()
        ))
        .spawn()
        .unwrap();
    let pid = shell.id() as i32;
    let inside = || {
        std::fs::read_to_string(cg.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .any(|l| l.trim() == pid.to_string())
    };
    let start = std::time::Instant::now();
    while !inside() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let obs = check(&CheckArgs {
        pid: Some(pid),
        cgroup: None,
        quick: false,
    });
    let _ = shell.kill();
    let _ = shell.wait();
    let obs = obs.unwrap();
    assert!(
        obs.judged.contains(&cg.dir.display().to_string()),
        "{}",
        obs.judged
    );
    assert_eq!(obs.facts[1].value, "30 MB");
    assert_eq!(
        obs.problem,
        Some("never-joined"),
        "an idle shell used next to nothing"
    );
    let gone = check(&CheckArgs {
        pid: Some(999_999_999),
        cgroup: None,
        quick: false,
    })
    .unwrap_err();
    assert_eq!(crate::error::exit_code_of(&gone), crate::error::EXIT_USAGE);
}
