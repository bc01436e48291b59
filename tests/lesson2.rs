//! Lesson 2 end to end: the lesson run through, the exercise done with real `ip` commands (the pass
//! and each distinct failure), and nothing left behind — no namespace, veth or bind mount —
//! after success, Ctrl-C, or kill -9 + `nslab cleanup`; a learner's namespaces untouched.

mod common;

use common::{serial, stdout, wait_until, Sandbox};
use std::process::Command;
use std::time::Duration;

const LESSON_NETNS: [&str; 2] = ["nslab-red", "nslab-blue"];
const LESSON_LINKS: [&str; 2] = ["nslab-red0", "nslab-blue0"];

fn ip(args: &[&str]) -> (bool, String) {
    let out = Command::new("ip").args(args).output().expect("ip runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn ip_ok(args: &[&str]) {
    let (ok, text) = ip(args);
    assert!(ok, "ip {}: {text}", args.join(" "));
}

fn netns_names() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether no named namespace exists that is neither nslab's nor this test's (a check
/// would judge it too); otherwise says which `cases` are not tested, and why.
fn only_ours_or_skip(cases: &str) -> bool {
    let strangers: Vec<String> = netns_names()
        .into_iter()
        .filter(|n| !n.starts_with("nslab-"))
        .collect();
    if !strangers.is_empty() {
        eprintln!("not testing {cases}: other namespaces exist: {strangers:?}");
    }
    strangers.is_empty()
}

/// Nothing of the lesson's is left: namespaces, their bind mounts, host links, ledger.
fn assert_nothing_left(sb: &Sandbox) {
    assert!(
        sb.run_files().is_empty(),
        "ledger still lists something: {:?}",
        sb.run_files()
    );
    let names = netns_names();
    for n in LESSON_NETNS {
        assert!(
            !names.iter().any(|x| x == n),
            "{n} still in /run/netns: {names:?}"
        );
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains("/run/netns/nslab-"),
        "a bind mount is left"
    );
    let (_, links) = ip(&["-o", "link"]);
    for l in LESSON_LINKS {
        assert!(!links.contains(l), "link {l} left in the host: {links}");
    }
    assert!(
        wait_until(Duration::from_secs(3), || common::nslab_processes()
            .is_empty()),
        "nslab processes left: {:?}",
        common::nslab_processes()
    );
}

#[test]
fn lesson_runs_through() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    // On a screen wide enough that no sentence wraps: the transcript then reads the same
    // whatever the length of the numbers in it (the width has tests of its own).
    let out = sb.run_at(1000, &["lesson", "2", "--yes", "--plain"]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        common::stderr(&out)
    );
    assert_nothing_left(&sb);
    assert!(text.contains("RTM_NEWLINK ifname=nslab-red0 kind=veth peer=nslab-blue0 flags=NLM_F_CREATE|NLM_F_EXCL|NLM_F_ACK -> ack"));
    assert!(text.contains("RTM_NEWADDR"), "{text}");
    assert!(text.contains("ECHO_REPLY from 10.200.0.2"), "{text}");
    // What the lesson shows, in order, is held in its outline (tests/widths.rs).
}

/// A learner's namespaces and veth, made with `ip`; all deleted when dropped.
struct Exercise {
    a: String,
    b: String,
    va: String,
    vb: String,
}

impl Exercise {
    fn names() -> Exercise {
        let p = std::process::id() % 100000;
        let e = Exercise {
            a: format!("nslabt-red-{p}"),
            b: format!("nslabt-blue-{p}"),
            va: format!("nslabtvr{p}"),
            vb: format!("nslabtvb{p}"),
        };
        e.remove();
        e
    }

    fn remove(&self) {
        for n in [&self.a, &self.b] {
            let _ = ip(&["netns", "del", n]);
        }
        for l in [&self.va, &self.vb] {
            let _ = ip(&["link", "del", l]);
        }
    }

    /// The seeds' sequence; `skip` leaves out the named commands to break it on purpose.
    fn build(&self, skip: &[&str]) {
        let (a, b, va, vb) = (&self.a, &self.b, &self.va, &self.vb);
        let steps: Vec<(&str, Vec<&str>)> = vec![
            ("add-a", vec!["netns", "add", a]),
            ("add-b", vec!["netns", "add", b]),
            (
                "veth",
                vec!["link", "add", va, "type", "veth", "peer", "name", vb],
            ),
            ("move-a", vec!["link", "set", va, "netns", a]),
            ("move-b", vec!["link", "set", vb, "netns", b]),
            (
                "addr-a",
                vec!["-n", a, "addr", "add", "10.211.0.1/24", "dev", va],
            ),
            (
                "addr-b",
                vec!["-n", b, "addr", "add", "10.211.0.2/24", "dev", vb],
            ),
            ("up-a", vec!["-n", a, "link", "set", va, "up"]),
            ("up-b", vec!["-n", b, "link", "set", vb, "up"]),
        ];
        for (id, args) in steps {
            if !skip.contains(&id) {
                ip_ok(&args);
            }
        }
    }
}

impl Drop for Exercise {
    fn drop(&mut self) {
        self.remove();
    }
}

fn check(sb: &Sandbox, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["check", "2", "--plain"];
    args.extend_from_slice(extra);
    let out = sb.run(&args);
    (
        out.status.code().unwrap_or(-1),
        stdout(&out) + &common::stderr(&out),
    )
}

#[test]
fn exercise_passes_with_the_ip_commands() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let ex = Exercise::names();
    ex.build(&[]);
    let (code, text) = check(&sb, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(&ex.a) && text.contains(&ex.vb),
        "names what it judged: {text}"
    );
    let (code, json) = check(&sb, &["--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["verdict"], "pass");
    assert_eq!(v["diff"], "");
    assert_eq!(v["facts"].as_array().unwrap().len(), 6);
    // The check made nothing and left the learner's work as it was.
    assert!(sb.run_files().is_empty());
    assert!(netns_names().contains(&ex.a) && netns_names().contains(&ex.b));
}

#[test]
fn exercise_failures_each_have_their_own_diff_and_hint() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    // Only judge our own: nothing else named may exist for the first two cases.
    let ex = Exercise::names();
    if only_ours_or_skip("the missing-namespace cases") {
        sb.assert_check_fails_with("2", "namespace-missing", "none in /run/netns");
        ip_ok(&["netns", "add", &ex.a]);
        sb.assert_check_fails_with("2", "namespace-missing", "only one");
        ex.remove();
    }

    ex.build(&[
        "veth", "move-a", "move-b", "addr-a", "addr-b", "up-a", "up-b",
    ]);
    sb.assert_check_fails_with("2", "no-veth", "no veth pair joins");
    ex.remove();

    ex.build(&["move-b", "addr-b", "up-b"]);
    let text = sb.assert_check_fails_with("2", "end-in-host", "still in the host");
    assert!(text.contains(&ex.vb), "names the end left behind: {text}");
    ex.remove();

    ex.build(&["move-a", "move-b", "addr-a", "addr-b", "up-a", "up-b"]);
    sb.assert_check_fails_with("2", "both-ends-in-host", "both still in the host");
    ex.remove();

    ex.build(&["up-b"]);
    let text = sb.assert_check_fails_with("2", "link-down", "DOWN");
    assert!(text.contains(&ex.vb), "{text}");
    ex.remove();

    ex.build(&["addr-a"]);
    sb.assert_check_fails_with("2", "address-missing", "no IPv4 address");
    ex.remove();

    ex.build(&["addr-b"]);
    ip_ok(&["-n", &ex.b, "addr", "add", "10.212.0.2/24", "dev", &ex.vb]);
    sb.assert_check_fails_with("2", "different-subnets", "different subnets");
    ex.remove();

    // Right structure, but blue cannot answer: a prohibit route back to red.
    ex.build(&[]);
    ip_ok(&["-n", &ex.b, "route", "add", "prohibit", "10.211.0.1/32"]);
    sb.assert_check_fails_with("2", "no-reply", "no reply");
    ex.remove();
}

/// `nslab lesson 2` paused before step d, with both namespaces and the veth pair alive.
fn lesson_paused_after_step_c(sb: &Sandbox) -> common::Background {
    let child = sb.lesson_paused_before("2", 'd');
    let names = netns_names();
    assert!(
        LESSON_NETNS.iter().all(|n| names.iter().any(|x| x == n)),
        "{names:?}"
    );
    assert!(!sb.run_files().is_empty(), "on the ledger while alive");
    child
}

#[test]
fn closing_the_terminal_removes_everything() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let term = sb.lesson_in_terminal("2", 'd');
    let names = netns_names();
    assert!(
        LESSON_NETNS.iter().all(|n| names.iter().any(|x| x == n)),
        "{names:?}"
    );
    term.close();
    assert_eq!(
        term.exit_code(Duration::from_secs(30)),
        Some(128 + libc::SIGHUP),
        "a closed terminal ends the lesson with 129"
    );
    assert_nothing_left(&sb);
}

#[test]
fn kill_9_then_cleanup_removes_everything_but_the_learners_namespaces() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let ex = Exercise::names();
    ex.build(&[]);
    let mut child = lesson_paused_after_step_c(&sb);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!sb.run_files().is_empty(), "the ledger survives kill -9");
    assert!(
        netns_names().iter().any(|n| n == "nslab-red"),
        "kill -9 left the namespace for cleanup"
    );
    let out = sb.run(&["cleanup", "--plain"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    assert!(
        stdout(&out).contains("removed network namespace nslab-red"),
        "{}",
        stdout(&out)
    );
    assert_nothing_left(&sb);
    let names = netns_names();
    assert!(
        names.contains(&ex.a) && names.contains(&ex.b),
        "the learner's namespaces stay: {names:?}"
    );
    let (code, text) = check(&sb, &[]);
    assert_eq!(code, 0, "and still pass: {text}");
}

#[test]
fn a_second_lesson_beside_a_running_one_names_its_own_and_removes_only_those() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let mut first = lesson_paused_after_step_c(&sb);
    let out = sb.run(&["lesson", "2", "--yes", "--plain"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", common::stderr(&out));
    assert!(
        text.contains(&format!("lesson 2 is running (PID {})", first.id())),
        "says who else runs: {text}"
    );
    assert!(text.contains("This run is number 2"), "{text}");
    // Its own objects, its commands and the lesson's text all carry its number.
    for shown in [
        "$ sudo ip netns add nslab-red-2",
        "sudo ip link add nslab-red0-2 type veth peer name nslab-blue0-2",
        "called nslab-red-2 and nslab-blue-2",
    ] {
        assert!(text.contains(shown), "{shown:?} in {text}");
    }
    assert!(!text.contains("$ sudo ip netns add nslab-red\n"), "{text}");
    // It removed its own and left the first run's alone.
    let names = netns_names();
    assert!(
        LESSON_NETNS.iter().all(|n| names.iter().any(|x| x == n)),
        "the first run's namespaces stay: {names:?}"
    );
    assert!(
        !names.iter().any(|n| n.ends_with("-2")),
        "the second run's are gone: {names:?}"
    );
    assert_eq!(sb.run_files().len(), 1, "only the first run's file is left");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    first.wait().unwrap();
    assert_nothing_left(&sb);
}

/// Exercise 2b by hand: a bridge in a hub namespace, three namespaces plugged into it.
struct Bridged {
    hub: String,
    members: Vec<(String, String, String)>,
}

impl Bridged {
    fn build() -> Bridged {
        let p = std::process::id() % 100000;
        let b = Bridged {
            hub: format!("nslabt-hub-{p}"),
            members: ["a", "b", "c"]
                .iter()
                .map(|m| {
                    (
                        format!("nslabt-{m}-{p}"),
                        format!("nslabtv{m}{p}"),
                        format!("nslabtp{m}{p}"),
                    )
                })
                .collect(),
        };
        b.remove();
        ip_ok(&["netns", "add", &b.hub]);
        ip_ok(&["-n", &b.hub, "link", "add", "br0", "type", "bridge"]);
        ip_ok(&["-n", &b.hub, "link", "set", "br0", "up"]);
        for (i, (ns, v, port)) in b.members.iter().enumerate() {
            ip_ok(&["netns", "add", ns]);
            ip_ok(&["link", "add", v, "type", "veth", "peer", "name", port]);
            ip_ok(&["link", "set", v, "netns", ns]);
            ip_ok(&["link", "set", port, "netns", &b.hub]);
            ip_ok(&["-n", &b.hub, "link", "set", port, "master", "br0"]);
            ip_ok(&["-n", &b.hub, "link", "set", port, "up"]);
            ip_ok(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("10.213.0.{}/24", i + 1),
                "dev",
                v,
            ]);
            ip_ok(&["-n", ns, "link", "set", v, "up"]);
        }
        b
    }

    fn remove(&self) {
        let _ = ip(&["netns", "del", &self.hub]);
        for (ns, v, port) in &self.members {
            let _ = ip(&["netns", "del", ns]);
            let _ = ip(&["link", "del", v]);
            let _ = ip(&["link", "del", port]);
        }
    }
}

impl Drop for Bridged {
    fn drop(&mut self) {
        self.remove();
    }
}

#[test]
fn exercise_2b_a_bridge_is_described_and_its_ports_are_not_taken_for_the_pair() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let br = Bridged::build();
    let (code, json) = check(&sb, &["--json"]);
    assert_eq!(code, 1, "2b alone is not exercise 2: {json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        v["hint_id"], "no-veth",
        "the hub's cables are not the pair: {json}"
    );
    let notes = v["notes"].to_string();
    assert!(
        notes.contains(&format!("bridge br0 in {} joins", br.hub)),
        "{notes}"
    );
    assert!(notes.contains("everything UP"), "{notes}");
    assert_eq!(
        notes.matches("replied").count(),
        2,
        "an echo to each other member: {notes}"
    );

    let ex = Exercise::names();
    ex.build(&[]);
    let (code, text) = check(&sb, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("exercise 2b"), "{text}");
}

#[test]
fn exercise_2b_has_its_own_verdict_and_a_hint_for_each_failure() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    if only_ours_or_skip("the no-bridge case") {
        sb.assert_check_fails_with("2b", "2b-no-bridge", "none in your namespaces");
    }
    let br = Bridged::build();
    let (code, text) = sb.check("2b", &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("Check 2b (net-2b): PASS"), "{text}");
    assert!(
        text.contains(&format!("bridge br0 in {}", br.hub)),
        "names what it judged: {text}"
    );
    assert!(text.contains("round trips:"), "{text}");
    // Judging made nothing and counts as no progress of lesson 2.
    assert!(sb.run_files().is_empty());
    let progress = std::fs::read_to_string(sb.progress()).unwrap_or_default();
    assert!(!progress.contains("\"2\""), "{progress}");

    let (a, va, pa) = br.members[0].clone();
    // An end DOWN.
    ip_ok(&["-n", &a, "link", "set", &va, "down"]);
    let text = sb.assert_check_fails_with("2b", "2b-down", "DOWN");
    assert!(text.contains(&va), "{text}");
    ip_ok(&["-n", &a, "link", "set", &va, "up"]);
    // An address in another subnet.
    ip_ok(&["-n", &a, "addr", "flush", "dev", &va]);
    ip_ok(&["-n", &a, "addr", "add", "10.214.0.1/24", "dev", &va]);
    sb.assert_check_fails_with("2b", "2b-address", "not in one subnet");
    ip_ok(&["-n", &a, "addr", "flush", "dev", &va]);
    sb.assert_check_fails_with("2b", "2b-address", "no IPv4 address");
    ip_ok(&["-n", &a, "addr", "add", "10.213.0.1/24", "dev", &va]);
    // A namespace that cannot answer: a prohibit route back from the last member.
    let (c, _, _) = br.members[2].clone();
    ip_ok(&["-n", &c, "route", "add", "prohibit", "10.213.0.1/32"]);
    sb.assert_check_fails_with("2b", "2b-no-reply", "no reply");
    ip_ok(&["-n", &c, "route", "del", "prohibit", "10.213.0.1/32"]);
    // A port out of the bridge: two members left.
    ip_ok(&["-n", &br.hub, "link", "set", &pa, "nomaster"]);
    sb.assert_check_fails_with("2b", "2b-few-members", "only 2 namespace(s)");
    ip_ok(&["-n", &br.hub, "link", "set", &pa, "master", "br0"]);
    let (code, text) = sb.check("2b", &[]);
    assert_eq!(code, 0, "mended again: {text}");
}

/// Exercise 2b the way Docker's docker0 and most tutorials lay it out: the bridge in the
/// host's own namespace, its ports the host ends of veth pairs into three named namespaces.
/// Every name is this test's own (its PID in it); dropping it removes all it made.
struct HostBridged {
    bridge: String,
    /// (namespace, its end, the host's end: a port of the bridge)
    members: Vec<(String, String, String)>,
}

impl HostBridged {
    fn build() -> HostBridged {
        let p = std::process::id() % 100000;
        let b = HostBridged {
            bridge: format!("nslabtbr{p}"),
            members: ["a", "b", "c"]
                .iter()
                .map(|m| {
                    (
                        format!("nslabt-h{m}-{p}"),
                        format!("nslabthv{m}{p}"),
                        format!("nslabthp{m}{p}"),
                    )
                })
                .collect(),
        };
        b.remove();
        ip_ok(&["link", "add", &b.bridge, "type", "bridge"]);
        ip_ok(&["link", "set", &b.bridge, "up"]);
        for (i, (ns, v, port)) in b.members.iter().enumerate() {
            ip_ok(&["netns", "add", ns]);
            ip_ok(&["link", "add", v, "type", "veth", "peer", "name", port]);
            ip_ok(&["link", "set", v, "netns", ns]);
            ip_ok(&["link", "set", port, "master", &b.bridge]);
            ip_ok(&["link", "set", port, "up"]);
            let a = format!("10.215.0.{}/24", i + 1);
            ip_ok(&["-n", ns, "addr", "add", &a, "dev", v]);
            ip_ok(&["-n", ns, "link", "set", v, "up"]);
        }
        b
    }

    /// This test's links in the host's namespace that exist.
    fn host_links(&self) -> Vec<String> {
        let (_, text) = ip(&["-br", "link"]);
        let ours: Vec<&String> = std::iter::once(&self.bridge)
            .chain(self.members.iter().map(|(_, _, port)| port))
            .collect();
        text.lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .filter(|n| ours.contains(&n))
            .collect()
    }

    /// Only what this test made, by its exact names: each namespace (its end goes with it,
    /// and the pair's host end with that), each host end, the bridge.
    fn remove(&self) {
        for (ns, _, port) in &self.members {
            let _ = ip(&["netns", "del", ns]);
            let _ = ip(&["link", "del", port]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}

impl Drop for HostBridged {
    fn drop(&mut self) {
        self.remove();
    }
}

#[test]
fn exercise_2b_passes_with_the_bridge_in_the_hosts_namespace() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let br = HostBridged::build();
    let (code, text) = sb.check("2b", &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("Check 2b (net-2b): PASS"), "{text}");
    assert!(
        text.contains(&format!("bridge {} in the host's namespace", br.bridge)),
        "names what it judged: {text}"
    );
    assert!(text.contains("round trips:"), "{text}");

    // Check 2 sees exercise 2b there, and does not take a bridge's port for an end
    // left in the host.
    let (code, json) = check(&sb, &["--json"]);
    assert_eq!(code, 1, "2b alone is not exercise 2: {json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["hint_id"], "no-veth", "{json}");
    let notes = v["notes"].to_string();
    assert!(
        notes.contains(&format!(
            "bridge {} in the host's namespace joins",
            br.bridge
        )),
        "{notes}"
    );

    // A port out of the bridge: two members left.
    let (_, _, pa) = br.members[0].clone();
    ip_ok(&["link", "set", &pa, "nomaster"]);
    sb.assert_check_fails_with("2b", "2b-few-members", "only 2 namespace(s)");
    ip_ok(&["link", "set", &pa, "master", &br.bridge]);
    // The bridge DOWN.
    ip_ok(&["link", "set", &br.bridge, "down"]);
    let text = sb.assert_check_fails_with("2b", "2b-down", "DOWN");
    assert!(text.contains(&br.bridge), "{text}");
    ip_ok(&["link", "set", &br.bridge, "up"]);
    let (code, text) = sb.check("2b", &[]);
    assert_eq!(code, 0, "mended again: {text}");
    assert!(sb.run_files().is_empty(), "judging made nothing");

    // Dropped, on a pass as on a failed assertion (unwinding), it removes all it made.
    let names: Vec<String> = br.members.iter().map(|m| m.0.clone()).collect();
    let remover = HostBridged {
        bridge: br.bridge.clone(),
        members: br.members.clone(),
    };
    assert_eq!(br.host_links().len(), 4, "the bridge and its three ports");
    drop(br);
    assert!(
        remover.host_links().is_empty(),
        "links left: {:?}",
        remover.host_links()
    );
    std::mem::forget(remover);
    let left: Vec<String> = netns_names()
        .into_iter()
        .filter(|n| names.contains(n))
        .collect();
    assert!(left.is_empty(), "namespaces left: {left:?}");
}

#[test]
fn the_next_root_command_removes_what_a_killed_run_left_and_a_look_alike_stays() {
    require_root!();
    let _g = serial();
    let sb = Sandbox::new();
    let mut child = lesson_paused_after_step_c(&sb);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!sb.run_files().is_empty(), "the ledger survives kill -9");
    // Any command, as root: one line on stderr says what it removed.
    let out = sb.run(&["list", "--plain"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    assert!(
        common::stderr(&out)
            .contains("removed what a run that ended without tearing down left behind")
            && common::stderr(&out).contains("network namespace nslab-red"),
        "{}",
        common::stderr(&out)
    );
    assert_nothing_left(&sb);

    // A killed run again; this time its namespace is removed and a learner's of the same
    // name made in its place: the record's identity no longer matches, so it stays.
    let mut child = lesson_paused_after_step_c(&sb);
    child.kill().unwrap();
    child.wait().unwrap();
    let ip_ok = |args: &[&str]| {
        let o = Command::new("ip").args(args).output().unwrap();
        assert!(o.status.success(), "ip {args:?}: {}", common::stderr(&o));
    };
    // Held open, the old namespace lives on, so the new one cannot be given its inode.
    let old = std::fs::File::open("/run/netns/nslab-red").unwrap();
    ip_ok(&["netns", "del", "nslab-red"]);
    ip_ok(&["netns", "add", "nslab-red"]);
    let out = sb.run(&["cleanup", "--plain"]);
    drop(old);
    let said = stdout(&out);
    let kept = netns_names().iter().any(|n| n == "nslab-red");
    ip_ok(&["netns", "del", "nslab-red"]);
    assert!(kept, "the look-alike was removed: {said}");
    assert!(said.contains("no longer nslab's"), "{said}");
    assert_nothing_left(&sb);
}
