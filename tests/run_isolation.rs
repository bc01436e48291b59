//! What `nslab run` leaves a command, asked from inside the container: runc's three
//! capabilities and no more, no_new_privs, only `lo`, no device but /dev's, /proc/sys and
//! /sys read-only, masked paths empty, a cgroup namespace.

mod common;

use common::{serial, Sandbox};
use std::os::unix::fs::MetadataExt;

/// runc's default set (CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE), as
/// /proc/PID/status shows it.
const RUNC_DEFAULT: &str = "0000000020000420";

/// `nslab run -- sh -c SCRIPT` with `flags` before `--`: exit code, stdout, stderr.
fn run_sh(sb: &Sandbox, flags: &[&str], script: &str) -> (i32, String, String) {
    let mut args = vec!["run"];
    args.extend_from_slice(flags);
    args.extend(["--", "sh", "-c", script]);
    let (code, out, err, _) = sb.run_with_pid(&args);
    (code, out, err)
}

/// The value of `key:` in /proc/self/status text.
fn status<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

#[test]
fn unknown_capability_names_are_usage_errors() {
    let sb = Sandbox::new();
    for args in [
        &["run", "--cap-add", "CAP_NOPE", "--", "true"][..],
        &["run", "--cap-drop", "sys-admin", "--", "true"],
        &["run", "--cap-add", "", "--", "true"],
    ] {
        let out = sb.run(args);
        let err = common::stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("is not a capability"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn capability_sets_are_runc_s_and_no_new_privs_is_set() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let show = "grep -E '^(Cap|NoNewPrivs)' /proc/self/status";
    let (code, out, err) = run_sh(&sb, &[], show);
    assert_eq!(code, 0, "{err}");
    for key in ["CapBnd", "CapPrm", "CapEff"] {
        assert_eq!(status(&out, key), RUNC_DEFAULT, "{key}: {out}");
    }
    for key in ["CapInh", "CapAmb"] {
        assert_eq!(status(&out, key), "0000000000000000", "{key}: {out}");
    }
    assert_eq!(status(&out, "NoNewPrivs"), "1", "{out}");

    // --cap-add and --cap-drop change the set (CAP_NET_RAW is 13, CAP_KILL 5).
    let (code, out, err) = run_sh(
        &sb,
        &["--cap-add", "NET_RAW", "--cap-drop", "CAP_KILL"],
        show,
    );
    assert_eq!(code, 0, "{err}");
    let want = format!("{:016x}", (0x2000_0420u64 | (1 << 13)) & !(1 << 5));
    for key in ["CapBnd", "CapEff"] {
        assert_eq!(status(&out, key), want, "{key}: {out}");
    }
    let (code, out, err) = run_sh(&sb, &["--cap-drop", "ALL"], show);
    assert_eq!(code, 0, "{err}");
    assert_eq!(status(&out, "CapEff"), "0000000000000000", "{out}");
    assert_eq!(status(&out, "CapBnd"), "0000000000000000", "{out}");
}

#[test]
fn only_lo_is_there_and_it_is_up() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let (code, out, err) = run_sh(
        &sb,
        &[],
        "cat /proc/net/dev; echo ---; ls /sys/class/net; echo ---; cat /sys/class/net/lo/flags",
    );
    assert_eq!(code, 0, "{err}");
    let parts: Vec<&str> = out.split("---\n").collect();
    let proc_names: Vec<&str> = parts[0]
        .lines()
        .skip(2)
        .filter_map(|l| l.split_once(':').map(|(n, _)| n.trim()))
        .collect();
    assert_eq!(proc_names, ["lo"], "{out}");
    assert_eq!(
        parts[1].split_whitespace().collect::<Vec<_>>(),
        ["lo"],
        "{out}"
    );
    let flags = u32::from_str_radix(parts[2].trim().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is up (IFF_UP): {out}");
}

#[test]
fn a_block_device_cannot_be_made_nor_opened() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    // The device of the host's own root filesystem: without the defaults, a node for it
    // would let the container read the host's disk.
    let dev = std::fs::metadata("/").unwrap().dev();
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    let make = format!("mknod /tmp/disk b {major} {minor}; echo made=$?; head -c 1 /tmp/disk >/dev/null; echo read=$?");
    let (code, out, err) = run_sh(&sb, &[], &make);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("made=1"),
        "mknod needs CAP_MKNOD: {out}\n{err}"
    );
    assert!(err.contains("Operation not permitted"), "{err}");
    // Given CAP_MKNOD, the node is made, but the root filesystem is mounted nodev.
    let (code, out, err) = run_sh(&sb, &["--cap-add", "CAP_MKNOD"], &make);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("made=0"), "{out}\n{err}");
    assert!(
        out.contains("read=1"),
        "the node opens nothing: {out}\n{err}"
    );
    assert!(err.contains("Permission denied"), "{err}");
}

#[test]
fn proc_sys_and_sys_are_read_only_even_with_every_capability() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    // kernel/hostname is per UTS namespace: were the write let through, only the
    // container's own hostname would change.
    let (code, out, err) = run_sh(
        &sb,
        &["--cap-add", "ALL"],
        "echo other > /proc/sys/kernel/hostname; echo sysctl=$?; mkdir /sys/nslabt; echo sys=$?; hostname",
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("sysctl=1") && out.contains("sys=1"), "{out}");
    assert_eq!(err.matches("Read-only file system").count(), 2, "{err}");
    assert!(out.ends_with("nslab\n"), "{out}");
}

#[test]
fn masked_paths_are_empty_and_every_other_mount_is_nodev() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let masked: Vec<&str> = [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/sched_debug",
        "/proc/acpi",
        "/proc/scsi",
        "/sys/firmware",
    ]
    .into_iter()
    .filter(|p| std::path::Path::new(p).exists())
    .collect();
    assert!(!masked.is_empty(), "the host has none of the masked paths");
    let mut script = String::new();
    for p in &masked {
        script.push_str(&format!(
            "if [ -d {p} ]; then echo {p}=$(ls -A {p} | wc -l); else echo {p}=$(head -c 4096 {p} | wc -c); fi; "
        ));
    }
    script.push_str("echo ---; cat /proc/self/mountinfo");
    let (code, out, err) = run_sh(&sb, &["--cap-add", "ALL"], &script);
    assert_eq!(code, 0, "{err}");
    let (sizes, mounts) = out.split_once("---\n").unwrap();
    for p in &masked {
        assert!(
            sizes.lines().any(|l| l == format!("{p}=0")),
            "{p} is empty inside: {sizes}"
        );
    }
    // Fields: id parent major:minor root mount-point options ...
    for line in mounts.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (root, point, options) = (f[3], f[4], f[5]);
        let device_mount = point == "/dev" || point == "/dev/pts" || root == "/null";
        assert!(
            device_mount || options.split(',').any(|o| o == "nodev"),
            "{point} is nodev: {line}"
        );
    }
}

#[test]
fn the_cgroup_namespace_shows_each_cgroup_as_the_root() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    // On a hybrid v1 machine too: every hierarchy's line, the unified one included, is
    // relative to where PID 1 was when the namespace was made.
    let (code, out, err) = run_sh(&sb, &["--pids", "50"], "cat /proc/self/cgroup");
    assert_eq!(code, 0, "{err}");
    assert!(!out.is_empty());
    for line in out.lines() {
        assert!(line.ends_with(":/"), "{line} in {out}");
    }
    if !std::path::Path::new("/sys/fs/cgroup/memory").is_dir() {
        assert!(out.lines().any(|l| l == "0::/"), "{out}");
    }
}

#[test]
fn a_hostile_root_filesystem_leads_nowhere_outside_itself() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let root = common::TestRootfs::new();
    let r = std::path::Path::new(root.path());
    // /dev -> the host's /etc, /sys -> the host's /tmp by climbing: inside, /dev is the
    // root's own etc, and the climb stops at the root's own / and ends in its /tmp.
    std::fs::remove_dir(r.join("dev")).unwrap();
    std::os::unix::fs::symlink("/etc", r.join("dev")).unwrap();
    std::os::unix::fs::symlink("../../../../../../../tmp", r.join("sys")).unwrap();
    std::fs::write(r.join("etc/marker"), "the root's own etc\n").unwrap();
    let host_etc: Vec<_> = std::fs::read_dir("/etc")
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let (code, out, err, _) = sb.run_with_pid(&[
        "run",
        "--rootfs",
        root.path(),
        "--",
        "sh",
        "-c",
        "ls /dev/; echo ---; cat /proc/self/mountinfo",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (dev, mounts) = out.split_once("---\n").unwrap();
    let dev: Vec<&str> = dev.split_whitespace().collect();
    assert!(
        dev.contains(&"null") && dev.contains(&"pts"),
        "/dev is nslab's: {dev:?}"
    );
    let points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .collect();
    assert!(
        points.contains(&"/etc") && points.contains(&"/etc/pts"),
        "{points:?}"
    );
    assert!(
        mounts
            .lines()
            .any(|l| l.contains(" /tmp ") && l.contains(" - sysfs ")),
        "{mounts}"
    );
    assert!(
        !points
            .iter()
            .any(|p| p.starts_with("/var") || p.starts_with("/usr")),
        "{points:?}"
    );
    // The host's /etc is as it was, and the root keeps its own file (the tmpfs lay over
    // it inside the container only).
    let after: Vec<_> = std::fs::read_dir("/etc")
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(host_etc.len(), after.len());
    assert!(!std::path::Path::new("/etc/null").exists());
    assert!(r.join("etc/marker").exists());

    // A /proc that resolves inside to nothing is refused before anything is made.
    std::fs::remove_dir(r.join("proc")).unwrap();
    std::os::unix::fs::symlink("/nonexistent-nslabt", r.join("proc")).unwrap();
    let (code, _, err, _) = sb.run_with_pid(&["run", "--rootfs", root.path(), "--", "true"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/proc"), "{err}");
}
