//! The container's tests: pure ones, and root ones starting real containers.

use super::cgroup_join::{HeldMount, HeldMounts};
use super::pid1::OffNslabCpu;
use super::*;
use crate::kernel::procs;
use crate::ledger::Resource;

#[test]
fn pid1_leaves_nslab_s_cpu_and_takes_back_what_it_had() {
    // This test's thread stands in for PID 1; the affinity is the thread's own.
    let own = nix::sched::sched_getaffinity(Pid::from_raw(0)).unwrap();
    let cpus = sys::cpu_list(&own);
    let nslab_cpu = cpus[0];
    trace::take();
    let Some(off) = OffNslabCpu::plan(nslab_cpu) else {
        assert_eq!(cpus.len(), 1, "with {cpus:?} there is another CPU to go to");
        assert!(trace::take().is_empty(), "nothing tried with one CPU");
        return;
    };
    let tid = nix::unistd::gettid().as_raw();
    off.send(tid);
    let away = nix::sched::sched_getaffinity(Pid::from_raw(0)).unwrap();
    let restored = off.restore();
    let back = nix::sched::sched_getaffinity(Pid::from_raw(0)).unwrap();
    assert_eq!(sys::cpu_list(&away), cpus[1..].to_vec());
    assert!(restored.is_ok());
    assert_eq!(sys::cpu_list(&back), cpus);
    let list = |c: &[usize]| {
        c.iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        trace::take(),
        [
            format!("sched_setaffinity({tid}, 128, [{}]) = 0", list(&cpus[1..])),
            format!("sched_setaffinity(0, 128, [{}]) = 0", list(&cpus)),
        ]
    );
}

#[test]
fn parses_net_dev() {
    let text = "Inter-|   Receive                            |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes
lo:       0       0    0    0    0     0          0         0        0
  eth0: 1234 5 0 0 0 0 0 0 99 1 0 0 0 0 0 0
";
    assert_eq!(parse_net_dev(text), vec!["lo", "eth0"]);
}

#[test]
fn hostnames() {
    assert!(valid_hostname("nslab"));
    assert!(valid_hostname("box-1.example"));
    assert!(!valid_hostname(""));
    assert!(!valid_hostname("-bad"));
    assert!(!valid_hostname("a b"));
    assert!(!valid_hostname(&"x".repeat(65)));
}

#[test]
fn a_cgroup_directory_is_found_in_the_innermost_held_mount() {
    let held = |mount_point: &str, version| HeldMount {
        mount_point: PathBuf::from(mount_point),
        version,
        fd: std::fs::File::open("/dev/null").unwrap().into(),
    };
    let held = HeldMounts(vec![
        held("/sys/fs/cgroup", CgVersion::V2),
        held("/sys/fs/cgroup/cpu", CgVersion::V1),
        held("/sys/fs/cgroup/memory", CgVersion::V1),
    ]);
    let (found, rel) = held
        .locate(Path::new("/sys/fs/cgroup/memory/a/nslab/run-1"))
        .unwrap();
    assert!(std::ptr::eq(found, &held.0[2]));
    assert_eq!(rel, Path::new("a/nslab/run-1"));
    // Whole components only: cpu,cpuacct is not under cpu.
    let (found, rel) = held
        .locate(Path::new("/sys/fs/cgroup/cpu,cpuacct/nslab"))
        .unwrap();
    assert!(std::ptr::eq(found, &held.0[0]));
    assert_eq!(rel, Path::new("cpu,cpuacct/nslab"));
    assert!(held.locate(Path::new("/elsewhere/nslab")).is_none());
}

#[test]
fn exit_codes_like_a_shell() {
    let p = Pid::from_raw(1);
    assert_eq!(exit_code(WaitStatus::Exited(p, 3)), 3);
    assert_eq!(
        exit_code(WaitStatus::Signaled(p, Signal::SIGKILL, false)),
        137
    );
}

// ---- root tests: real containers ----

use crate::kernel::ns::{self, NsKind};
use crate::kernel::rootfs::Rootfs;

fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

#[test]
fn runs_a_command_in_a_container() {
    let Some(_g) = crate::testing::root_or_skip("runs_a_command_in_a_container") else {
        return;
    };
    let rootfs = Rootfs::build().unwrap();
    let path = rootfs.path.clone();
    assert!(crate::ledger::current().contains(&Resource::Dir { path: path.clone() }));
    let spec = Spec::new(
        &rootfs.path,
        &sh("echo $$ > /tmp/out; hostname >> /tmp/out; ls / >> /tmp/out; exit 7"),
    )
    .with_hostname("nslabt-box");
    trace::take();
    let mut c = start(&spec).unwrap();
    let pid1 = c.pid1;
    let code = c.wait().unwrap();
    assert_eq!(code, 7, "the command's exit status is passed on");
    let calls = trace::take().join("\n");
    for needed in [
        "clone(flags=CLONE_NEWIPC|CLONE_NEWNS|CLONE_NEWNET|CLONE_NEWPID|CLONE_NEWUTS|SIGCHLD) = ",
        "pivot_root(\".\", \".\") = 0",
        "umount2(\".\", MNT_DETACH) = 0",
        "sethostname(\"nslabt-box\"",
        "mount(\"proc\", \"/proc\"",
        "unshare(CLONE_NEWCGROUP) = 0",
        "prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) = 0",
        "capset(",
        "execve(\"/bin/sh\"",
    ] {
        assert!(calls.contains(needed), "missing {needed} in:\n{calls}");
    }
    let out = std::fs::read_to_string(path.join("tmp/out")).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1", "the shell is PID 1 in its PID namespace");
    assert_eq!(lines[1], "nslabt-box");
    assert!(lines.contains(&"proc") && lines.contains(&"bin"), "{out}");
    // The mounts lived in the container's mount namespace: the host has none of them.
    let host_mounts = mountinfo_of(std::process::id() as i32).unwrap();
    assert!(!host_mounts.iter().any(|m| m.mount_point.starts_with(&path)));
    drop(rootfs);
    assert!(!path.exists(), "the built root filesystem is removed");
    // Other tests share this process's ledger: look for this run's entries only.
    let left = crate::ledger::current();
    assert!(!left.contains(&Resource::Dir { path: path.clone() }));
    assert!(!left
        .iter()
        .any(|r| matches!(r, Resource::Process { pid, .. } if *pid == pid1)));
}

/// A cgroup v2 directory nslab made for a test: on the ledger before mkdir, removed on drop.
struct V2Dir(PathBuf);

impl V2Dir {
    /// `nslab-<what>-PID` under this process's own cgroup in the v2 hierarchy (also
    /// mounted on a hybrid machine, at /sys/fs/cgroup/unified), if there is one.
    fn make(what: &str) -> Option<V2Dir> {
        use crate::kernel::cgroup::{own_cgroup, Layout};
        let unified = Layout::read().unwrap().unified?;
        let own = own_cgroup().unwrap();
        let own = own.iter().find(|p| p.hierarchy_id == 0)?;
        let dir = unified
            .mount_point
            .join(own.path.trim_start_matches('/'))
            .join(format!("nslab-{what}-{}", std::process::id()));
        crate::ledger::record(Resource::Cgroup { path: dir.clone() }).unwrap();
        std::fs::create_dir(&dir).unwrap();
        Some(V2Dir(dir))
    }
}

impl Drop for V2Dir {
    fn drop(&mut self) {
        // Struck off only once gone: otherwise `nslab cleanup` still finds it.
        if std::fs::remove_dir(&self.0).is_ok() {
            crate::ledger::forget(&Resource::Cgroup {
                path: self.0.clone(),
            });
        }
    }
}

#[test]
fn pid1_is_born_in_its_v2_cgroup() {
    let Some(_g) = crate::testing::root_or_skip("pid1_is_born_in_its_v2_cgroup") else {
        return;
    };
    let Some(dir) = V2Dir::make("born") else {
        eprintln!("skipped pid1_is_born_in_its_v2_cgroup: no cgroup2 mount here");
        return;
    };
    let rootfs = Rootfs::build().unwrap();
    let mut spec = Spec::new(&rootfs.path, &["sleep".to_string(), "30".to_string()]);
    spec.cgroup_dirs = vec![dir.0.clone()];
    trace::take();
    let mut c = start(&spec).unwrap();
    let calls = trace::take().join("\n");
    if !c.born_in_cgroup {
        // The plain clone and a join instead: right only where clone3 is filtered
        // (ENOSYS, EPERM) or the kernel predates CLONE_INTO_CGROUP (5.7).
        assert!(calls.contains("cgroup.procs"), "{calls}");
        let release = nix::sys::utsname::uname().unwrap();
        let release = release.release().to_string_lossy().into_owned();
        let mut v = release
            .split(['.', '-'])
            .map(|n| n.parse::<u32>().unwrap_or(0));
        let old_kernel = (v.next().unwrap_or(0), v.next().unwrap_or(0)) < (5, 7);
        assert!(
            old_kernel || calls.contains("ENOSYS") || calls.contains("EPERM"),
            "clone3 refused on {release}: {calls}"
        );
        eprintln!("skipped pid1_is_born_in_its_v2_cgroup: no CLONE_INTO_CGROUP here: {calls}");
        return;
    }
    assert!(
        calls.contains(
            "clone3({flags=CLONE_NEWIPC|CLONE_NEWNS|CLONE_NEWNET|CLONE_NEWPID|CLONE_NEWUTS|CLONE_INTO_CGROUP, \
             exit_signal=SIGCHLD, cgroup="
        ),
        "{calls}"
    );
    assert!(
        !calls.contains("cgroup.procs"),
        "no move afterwards: {calls}"
    );
    // Seen from the host: inside, its cgroup namespace shows `/`.
    let out = std::fs::read_to_string(format!("/proc/{}/cgroup", c.pid1)).unwrap();
    c.kill().unwrap();
    let v2_line = out
        .lines()
        .find(|l| l.starts_with("0::"))
        .unwrap_or_default();
    assert!(
        v2_line.ends_with(&format!("/nslab-born-{}", std::process::id())),
        "PID 1 was in its cgroup from the start: {out}"
    );
}

#[test]
fn container_namespaces_root_and_hostname_differ_from_host() {
    let Some(_g) =
        crate::testing::root_or_skip("container_namespaces_root_and_hostname_differ_from_host")
    else {
        return;
    };
    let rootfs = Rootfs::build().unwrap();
    let spec = Spec::new(&rootfs.path, &["sleep".to_string(), "30".to_string()])
        .with_hostname("nslabt-ns");
    let mut c = start(&spec).unwrap();
    let me = std::process::id() as i32;
    let inside = ns::of_pid(c.pid1).unwrap();
    let host = ns::of_pid(me).unwrap();
    for k in [
        NsKind::Pid,
        NsKind::Mnt,
        NsKind::Uts,
        NsKind::Ipc,
        NsKind::Net,
        NsKind::Cgroup,
    ] {
        assert_ne!(inside.inode(k), host.inode(k), "{k:?} namespace is new");
    }
    assert_eq!(
        inside.inode(NsKind::User),
        host.inode(NsKind::User),
        "the user namespace is shared"
    );
    let sets = caps::of_pid(c.pid1).unwrap();
    assert_eq!(sets.effective, caps::DEFAULT, "{sets:?}");
    assert_eq!(sets.bounding, caps::DEFAULT, "{sets:?}");
    assert!(sets.no_new_privs);
    assert_eq!(hostname_of(c.pid1).unwrap(), "nslabt-ns");
    assert_ne!(own_hostname(), "nslabt-ns");
    assert_ne!(root_identity(c.pid1).unwrap(), root_identity(me).unwrap());
    let p = procs::process(c.pid1).unwrap();
    assert_eq!(p.nspid.last(), Some(&1), "PID 1 inside: {:?}", p.nspid);
    assert_eq!(p.comm, "sleep", "PID 1 runs the command itself, not nslab");
    let exe = std::fs::read_link(format!("/proc/{}/exe", c.pid1)).unwrap();
    assert!(
        !exe.to_string_lossy().contains("nslab-"),
        "PID 1 is not nslab's binary: {}",
        exe.display()
    );
    // Only stdin/stdout/stderr crossed into the container.
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{}/fd", c.pid1))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        fds.iter().all(|f| ["0", "1", "2"].contains(&f.as_str())),
        "open fds: {fds:?}"
    );
    let mounts = mountinfo_of(c.pid1).unwrap();
    let points: Vec<&str> = mounts
        .iter()
        .filter_map(|m| m.mount_point.to_str())
        .collect();
    assert!(
        points.contains(&"/") && points.contains(&"/proc") && points.contains(&"/dev"),
        "{points:?}"
    );
    // Only the container's own mounts: none of the host's (its cgroup filesystems, say).
    let own = [
        "/",
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/sys",
        "/sys/firmware",
    ];
    assert!(
        points
            .iter()
            .all(|p| own.contains(p) || p.starts_with("/proc/")),
        "host mounts are gone: {points:?}"
    );
    let pid1 = c.pid1;
    c.kill().unwrap();
    assert!(procs::process(pid1).is_none_or(|p| p.is_zombie() || p.comm != "sleep"));
}

#[test]
fn missing_command_is_reported() {
    let Some(_g) = crate::testing::root_or_skip("missing_command_is_reported") else {
        return;
    };
    let rootfs = Rootfs::build().unwrap();
    let err = start(&Spec::new(
        &rootfs.path,
        &["nslabt-no-such-command".to_string()],
    ))
    .err()
    .expect("fails");
    let se = err.downcast_ref::<StartError>().expect("a StartError");
    assert!(se.command_not_found(), "{se}");
    // PID 1 was reaped and struck off (others' live entries may be there).
    assert!(crate::ledger::current().iter().all(|r| match r {
        Resource::Process { pid, start_time } => procs::is_same_process(*pid, *start_time),
        _ => true,
    }));
}

#[test]
fn a_failure_before_the_order_is_reported_as_such() {
    let Some(_g) = crate::testing::root_or_skip("a_failure_before_the_order_is_reported_as_such")
    else {
        return;
    };
    let rootfs = Rootfs::build().unwrap();
    let spec = Spec::new(&rootfs.path, &["nslabt-no-such-command".to_string()]);
    // A slow cgroup: PID 1 finds no command and ends before nslab sends its order.
    let err = start_with(&spec, || {
        std::thread::sleep(Duration::from_millis(300));
        Ok(Vec::new())
    })
    .err()
    .expect("fails");
    let se = err
        .downcast_ref::<StartError>()
        .unwrap_or_else(|| panic!("PID 1's own report, not {err:#}"));
    assert!(se.command_not_found(), "{se}");
}

#[test]
fn chroot_can_be_escaped_pivot_root_cannot() {
    let Some(_g) = crate::testing::root_or_skip("chroot_can_be_escaped_pivot_root_cannot") else {
        return;
    };
    let rootfs = Rootfs::build().unwrap();
    let chroot = escape_attempt(&rootfs.path, RootMode::Chroot).unwrap();
    assert!(chroot.inside.contains(&"bin".to_string()));
    assert!(chroot.escaped, "{chroot:?}");
    assert!(
        chroot.after.contains(&"var".to_string()),
        "the host's / after the escape: {:?}",
        chroot.after
    );
    let pivot = escape_attempt(&rootfs.path, RootMode::PivotRoot).unwrap();
    assert!(!pivot.escaped, "{pivot:?}");
    assert_eq!(pivot.inside, pivot.after);
}

#[test]
fn chroot_mode_container_and_host_programs_rootfs() {
    let Some(_g) = crate::testing::root_or_skip("chroot_mode_container_and_host_programs_rootfs")
    else {
        return;
    };
    let rootfs = Rootfs::build_from_host(crate::kernel::rootfs::HOST_PROGRAMS).unwrap();
    let summary = rootfs.summary().unwrap();
    assert!(summary.bytes > 100_000 && summary.files > 3, "{summary:?}");
    let mut spec = Spec::new(
        &rootfs.path,
        &sh("ls /bin > /tmp/out && cat /proc/1/comm >> /tmp/out"),
    );
    spec.root_mode = RootMode::Chroot;
    let mut c = start(&spec).unwrap();
    assert_eq!(c.wait().unwrap(), 0);
    let out = std::fs::read_to_string(rootfs.path.join("tmp/out")).unwrap();
    assert!(out.contains("ls") && out.contains("sh"), "{out}");
}
