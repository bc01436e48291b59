use super::io::*;
use super::layout::*;
use super::own::*;
use super::removal::*;
use super::*;
use crate::kernel::trace;
use crate::ledger::{self, Resource};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

fn subtree_map(entries: &'static [(&'static str, &'static str)]) -> impl Fn(&Path) -> Vec<String> {
    move |p: &Path| {
        entries
            .iter()
            .find(|(dir, _)| Path::new(dir) == p)
            .map(|(_, s)| s.split_whitespace().map(String::from).collect())
            .unwrap_or_default()
    }
}

#[test]
fn v2_parent_goes_where_controllers_are_delegated() {
    // A systemd v2 machine: the session scope delegates nothing, user-1000.slice gives
    // memory and pids, only the root gives cpu.
    let tree: &'static [(&str, &str)] = &[
        ("/sys/fs/cgroup", "cpuset cpu io memory pids"),
        ("/sys/fs/cgroup/user.slice", "memory pids"),
        ("/sys/fs/cgroup/user.slice/user-1000.slice", "memory pids"),
        (
            "/sys/fs/cgroup/user.slice/user-1000.slice/session-3.scope",
            "",
        ),
    ];
    let start = Path::new("/sys/fs/cgroup/user.slice/user-1000.slice/session-3.scope");
    let root = Path::new("/sys/fs/cgroup");
    assert_eq!(
        delegating_ancestor(start, root, &["memory"], subtree_map(tree)),
        Some(PathBuf::from("/sys/fs/cgroup/user.slice/user-1000.slice"))
    );
    assert_eq!(
        delegating_ancestor(start, root, &["memory", "cpu"], subtree_map(tree)),
        Some(PathBuf::from("/sys/fs/cgroup"))
    );
    assert_eq!(
        delegating_ancestor(start, root, &["rdma"], subtree_map(tree)),
        None
    );
}

#[test]
fn availability_on_each_machine_shape() {
    use mountinfo::tests_data::*;
    // This machine: everything on v1.
    let l = mountinfo::layout_from(HYBRID_APART, "hugetlb\n").unwrap();
    let own = mountinfo::parse_proc_cgroup(HYBRID_APART_PROC);
    let st = availability_from(&l, &own, &LESSON_CONTROLLERS, |_| Vec::new());
    assert!(
        st.iter()
            .all(|s| s.usable && s.version == Some(CgVersion::V1)),
        "{st:#?}"
    );
    assert_eq!(
        st[0].parent.as_deref(),
        Some(Path::new(
            "/sys/fs/cgroup/memory/process_api/c49a7a97abc9d246832d7cbfb74ff8d5/nslab"
        ))
    );
    assert_eq!(
        st[2].parent.as_deref(),
        Some(Path::new("/sys/fs/cgroup/pids/nslab"))
    );

    // Pure v2 where nothing delegates cpu: memory/pids usable, cpu with a fix.
    let l = mountinfo::layout_from(UNIFIED_DEBIAN, "cpuset cpu io memory pids\n").unwrap();
    let own = mountinfo::parse_proc_cgroup(UNIFIED_PROC);
    let tree: &'static [(&str, &str)] = &[
        ("/sys/fs/cgroup", "memory pids"),
        ("/sys/fs/cgroup/user.slice/user-1000.slice", "memory pids"),
    ];
    let st = availability_from(&l, &own, &LESSON_CONTROLLERS, subtree_map(tree));
    assert!(st[0].usable);
    assert_eq!(
        st[0].parent.as_deref(),
        Some(Path::new("/sys/fs/cgroup/user.slice/user-1000.slice/nslab"))
    );
    assert!(!st[1].usable);
    assert!(
        st[1].fix.as_deref().unwrap().contains("+cpu"),
        "{:?}",
        st[1].fix
    );
    assert_eq!(st[1].version, Some(CgVersion::V2));

    // v2 without a pids controller at all.
    let l = mountinfo::layout_from(UNIFIED_DEBIAN, "cpu memory\n").unwrap();
    let st = availability_from(&l, &own, &["pids"], |_| vec!["cpu".into(), "memory".into()]);
    assert!(!st[0].usable && st[0].version.is_none());
    assert!(st[0].problem.as_deref().unwrap().contains("pids"));
}

#[test]
fn refuses_to_remove_foreign_cgroups_and_accepts_gone_ones() {
    assert!(remove_cgroup(Path::new("/sys/fs/cgroup/nslab/definitely-not-there-xyz")).is_ok());
    // An existing directory without an nslab component is refused, whatever the ledger says.
    let dir = tempfile::tempdir().unwrap();
    assert!(remove_cgroup(dir.path()).is_err());
    assert!(dir.path().is_dir());
}

// ---- root tests: real cgroups on this machine -------------------------------------

/// Kills the helper process even when an assertion fails.
struct ChildGuard(Child);
impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Asserts after the test body (pass or fail) that none of `paths` is left.
struct NothingLeft(Vec<PathBuf>);
/// A `nslab` parent that still holds another (concurrent) test's cgroup.
fn shared_parent(p: &Path) -> bool {
    p.file_name().is_some_and(|n| n == "nslab")
        && std::fs::read_dir(p)
            .map(|rd| {
                rd.flatten()
                    .any(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            })
            .unwrap_or(false)
}

impl Drop for NothingLeft {
    fn drop(&mut self) {
        for p in &self.0 {
            if p.exists() && !shared_parent(p) {
                let _ = remove_cgroup(p);
                if !std::thread::panicking() {
                    panic!("{} was left behind", p.display());
                }
            }
        }
    }
}

fn test_name(what: &str) -> String {
    format!("nslabt-{what}-{}", std::process::id())
}

#[test]
fn root_create_limit_add_remove() {
    let Some(_root) = crate::testing::root_or_skip("root_create_limit_add_remove") else {
        return;
    };
    let name = test_name("mem");
    let mut cg = NslabCgroup::create(&name).expect("create nslab cgroup");
    let _left = NothingLeft(cg.created.clone());
    let layout = Layout::read().unwrap();
    let own = own_cgroup().unwrap();
    // The memory cgroup lies under our own memory cgroup, in a parent named nslab.
    let mem = cg.dir_for("memory").expect("memory dir").clone();
    let expected = layout
        .dir_of(&own, "memory")
        .unwrap()
        .join("nslab")
        .join(&name);
    assert_eq!(mem.path, expected);
    for c in ["cpu", "cpuacct", "pids"] {
        assert!(cg.dir_for(c).is_some(), "{c} directory");
    }
    // Every created directory is on the ledger.
    let recorded = ledger::current();
    for p in &cg.created {
        assert!(
            recorded.contains(&Resource::Cgroup { path: p.clone() }),
            "{} on the ledger",
            p.display()
        );
    }

    trace::take();
    cg.set(Concept::MemoryLimit, &Reading::Limit(Max::Value(30 << 20)))
        .unwrap();
    let calls = trace::take();
    let v1 = mem.version == CgVersion::V1;
    let file = if v1 {
        "memory.limit_in_bytes"
    } else {
        "memory.max"
    };
    assert_eq!(
        calls,
        vec![format!(
            "write(\"{}\", \"31457280\") = 8",
            mem.path.join(file).display()
        )]
    );
    assert_eq!(
        cg.read(Concept::MemoryLimit).unwrap(),
        Reading::Limit(Max::Value(31_457_280))
    );
    // "30000000" comes back rounded down to a page.
    cg.set(
        Concept::MemoryLimit,
        &Reading::Limit(Max::Value(30_000_000)),
    )
    .unwrap();
    let Reading::Limit(Max::Value(back)) = cg.read(Concept::MemoryLimit).unwrap() else {
        panic!()
    };
    assert!(concepts::same_limit(back, 30_000_000), "{back}");

    cg.set(
        Concept::CpuQuota,
        &Reading::CpuQuota(CpuQuota {
            quota_us: Some(10_000),
            period_us: 100_000,
        }),
    )
    .unwrap();
    assert_eq!(
        cg.read(Concept::CpuQuota).unwrap(),
        Reading::CpuQuota(CpuQuota {
            quota_us: Some(10_000),
            period_us: 100_000
        })
    );
    cg.set(Concept::PidsLimit, &Reading::Limit(Max::Value(20)))
        .unwrap();
    assert_eq!(
        cg.read(Concept::PidsLimit).unwrap(),
        Reading::Limit(Max::Value(20))
    );

    // A sleeping child joins; every concept is readable.
    let child = ChildGuard(
        Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("spawn sleep"),
    );
    let pid = child.0.id() as i32;
    cg.add_pid(pid).unwrap();
    assert_eq!(cg.pids().unwrap(), vec![pid]);
    assert_eq!(cg.read(Concept::Procs).unwrap(), Reading::Pids(vec![pid]));
    assert_eq!(cg.read(Concept::PidsCurrent).unwrap(), Reading::Count(1));
    assert_eq!(cg.read(Concept::OomKills).unwrap(), Reading::Count(0));
    let values = cg.read_all(&Concept::ALL);
    for v in &values {
        if v.concept == Concept::MemoryPeak && v.version == CgVersion::V2 {
            continue; // memory.peak needs Linux 5.19
        }
        assert!(v.reading.is_ok(), "{:?}: {:?}", v.concept, v.reading);
    }
    let own_entries = proc_cgroup(pid).unwrap();
    assert_eq!(layout.dir_of(&own_entries, "memory").unwrap(), mem.path);

    // Removal kills the child and removes every directory.
    trace::take();
    cg.remove().unwrap();
    let calls = trace::take();
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with(&format!("rmdir(\"{}\")", mem.path.display()))),
        "{calls:?}"
    );
    for p in &cg.created {
        if shared_parent(p) {
            // Another test's cgroup is inside: it stays, on the ledger, for whoever is last.
            assert!(ledger::current().contains(&Resource::Cgroup { path: p.clone() }));
            continue;
        }
        assert!(!p.exists(), "{} removed", p.display());
        assert!(!ledger::current().contains(&Resource::Cgroup { path: p.clone() }));
    }
    assert!(
        !crate::kernel::procs::is_same_process(
            pid,
            crate::kernel::procs::start_time(pid).unwrap_or(0)
        ) || {
            // A zombie until reaped by ChildGuard is fine; it must not be running.
            crate::kernel::procs::process(pid)
                .map(|p| p.is_zombie())
                .unwrap_or(true)
        }
    );
}

#[test]
fn root_ledger_removes_a_crashed_runs_cgroup() {
    let Some(_root) = crate::testing::root_or_skip("root_ledger_removes_a_crashed_runs_cgroup")
    else {
        return;
    };
    let name = test_name("ledger");
    let mut cg = NslabCgroup::create_for(&name, &["memory"]).unwrap();
    let _left = NothingLeft(cg.created.clone());
    let child = ChildGuard(Command::new("sleep").arg("60").spawn().unwrap());
    cg.add_pid(child.0.id() as i32).unwrap();
    let dir = cg.dir_for("memory").unwrap().path.clone();
    // What `nslab cleanup` does with a dead run's entry: kill inside, then rmdir.
    remove_cgroup(&dir).unwrap();
    assert!(!dir.exists());
    // Removing again (already gone) is success.
    remove_cgroup(&dir).unwrap();
    cg.remove().unwrap();
}

#[test]
fn root_nslab_parent_left_while_it_holds_another_runs_cgroup() {
    let Some(_root) =
        crate::testing::root_or_skip("root_nslab_parent_left_while_it_holds_another_runs_cgroup")
    else {
        return;
    };
    let mut a = NslabCgroup::create_for(&test_name("a"), &["memory"]).unwrap();
    let mut b = NslabCgroup::create_for(&test_name("b"), &["memory"]).unwrap();
    let _left = NothingLeft(a.created.iter().chain(b.created.iter()).cloned().collect());
    let parent = a
        .dir_for("memory")
        .unwrap()
        .path
        .parent()
        .unwrap()
        .to_path_buf();
    a.remove().unwrap();
    assert!(parent.is_dir(), "the parent stays while b is inside it");
    assert!(b.dir_for("memory").unwrap().path.is_dir());
    b.remove().unwrap();
}

#[test]
fn root_bad_names_are_usage_errors() {
    for bad in ["", "a/b", "..", ".hidden", "x y"] {
        let e = NslabCgroup::create_for(bad, &["memory"]).unwrap_err();
        assert_eq!(
            crate::error::exit_code_of(&e),
            crate::error::EXIT_USAGE,
            "{bad:?}"
        );
    }
}

#[test]
fn failed_calls_are_traced_as_strace_prints_them() {
    trace::take();
    let missing = Path::new("/proc/nslab-no-such-dir/x");
    assert!(write_file(missing, "1").is_err());
    assert!(rmdir_traced(missing).is_err());
    assert_eq!(
        trace::take(),
        vec![
            "write(\"/proc/nslab-no-such-dir/x\", \"1\") = -1 ENOENT (No such file or directory)"
                .to_string(),
            "rmdir(\"/proc/nslab-no-such-dir/x\") = -1 ENOENT (No such file or directory)"
                .to_string(),
        ]
    );
}
