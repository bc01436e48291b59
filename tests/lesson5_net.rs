//! Lesson 5's network: bonus exercise 5b done by hand with the seeds' commands (`unshare
//! --net`, `ip link add … type veth`, `ip link set … netns PID`, `nsenter`, `ip route add
//! default via`, `iptables -t nat -A POSTROUTING … -j MASQUERADE`), its pass and each
//! failure; and `nslab run --net` (reach, teardown, kill -9 + cleanup).
//!
//! Every link, rule and table a test makes is removed by a guard, pass or fail; the `ip nat`
//! table that `iptables` creates is deleted afterwards when it did not exist before.

mod common;

use common::{serial, stdout, wait_until, Background, Learner, Sandbox, TestRootfs};
use std::process::{Command, Stdio};
use std::time::Duration;

fn sh(cmd: &str) -> (bool, String) {
    let out = Command::new("sh")
        .args(["-c", cmd])
        .output()
        .expect("running sh");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn must(cmd: &str) {
    let (ok, out) = sh(cmd);
    assert!(ok, "`{cmd}` failed: {out}");
}

/// Skip (with the reason printed) when `ip`, `iptables` or `nft` is missing.
fn tools_or_skip() -> bool {
    for t in ["ip", "iptables", "nft", "nsenter", "unshare"] {
        if !sh(&format!("command -v {t}")).0 {
            common::skip(&format!(
                "`{t}` is not installed (test.sh installs iptables and nftables)"
            ));
            return false;
        }
    }
    true
}

/// The host's address on its default route's interface: what the container must reach.
fn host_target() -> String {
    let (_, route) = sh("ip -4 route show default");
    let dev = route
        .split_whitespace()
        .skip_while(|w| *w != "dev")
        .nth(1)
        .expect("a default route")
        .to_string();
    let (_, addr) = sh(&format!("ip -4 -o addr show dev {dev} scope global"));
    addr.split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .expect("an address on the default route's interface")
        .to_string()
}

/// The seeds' container, with or without `--net`; its shell (PID 1) waits on stdin.
fn container(net: bool, root: &TestRootfs) -> (Learner, i32) {
    let mut argv = vec![
        "unshare",
        "--pid",
        "--fork",
        "--mount",
        "--uts",
        "--ipc",
        "--mount-proc",
    ];
    if net {
        argv.push("--net");
    }
    argv.extend_from_slice(&["chroot", root.path(), "/bin/sh"]);
    let l = Learner::start(&argv);
    assert!(
        wait_until(Duration::from_secs(5), || !l.children().is_empty()),
        "unshare forked"
    );
    let pid1 = l.children()[0];
    assert!(
        wait_until(Duration::from_secs(5), || std::fs::read_to_string(format!(
            "/proc/{pid1}/comm"
        ))
        .is_ok_and(|c| c.trim() == "sh")),
        "the container's shell runs"
    );
    (l, pid1)
}

/// What the learner's commands made on the host: the veth's host end and the NAT rule;
/// removed on drop, and the `ip nat` table too when iptables created it and nothing else
/// uses it.
struct HostGuard {
    host_if: String,
    /// Other host links the test made (a bridge).
    extra: Vec<String>,
    rule: Option<String>,
    nat_table_existed: bool,
}

fn has_ip_nat_table() -> bool {
    sh("nft list tables")
        .1
        .lines()
        .any(|l| l.trim() == "table ip nat")
}

impl HostGuard {
    fn new(n: u32) -> HostGuard {
        let host_if = format!("nslabt{n}h");
        // A leftover of this test's own earlier run (a crash): same name, ours.
        let _ = sh(&format!("ip link del {host_if} 2>/dev/null"));
        HostGuard {
            host_if,
            extra: Vec::new(),
            rule: None,
            nat_table_existed: has_ip_nat_table(),
        }
    }

    fn masquerade(&mut self, subnet: &str) {
        let rule = format!(
            "POSTROUTING -s {subnet} ! -o {} -j MASQUERADE",
            self.host_if
        );
        // The same rule left by this test's own earlier run (killed): its subnet and link
        // name are this test's.
        let _ = sh(&format!(
            "while iptables -t nat -C {rule} 2>/dev/null; do iptables -t nat -D {rule}; done"
        ));
        self.rule = Some(rule.clone());
        must(&format!("iptables -t nat -A {rule}"));
    }
}

impl Drop for HostGuard {
    fn drop(&mut self) {
        if let Some(rule) = &self.rule {
            let _ = sh(&format!("iptables -t nat -D {rule}"));
        }
        // The table iptables made for the rule goes too, unless something else has put a
        // rule of its own there meanwhile.
        let other_rules = sh("iptables -t nat -S")
            .1
            .lines()
            .any(|l| l.starts_with("-A "));
        if !self.nat_table_existed && has_ip_nat_table() && !other_rules {
            let _ = sh("nft delete table ip nat");
        }
        let _ = sh(&format!("ip link del {} 2>/dev/null", self.host_if));
        for l in &self.extra {
            let _ = sh(&format!("ip link del {l} 2>/dev/null"));
        }
    }
}

/// A per-test subnet and names, so tests do not collide with each other or with nslab's.
fn plan(n: u32) -> (String, String, String, String) {
    (
        format!("nslabt{n}c"),
        format!("10.203.{n}.1"),
        format!("10.203.{n}.2"),
        format!("10.203.{n}.0/24"),
    )
}

/// The whole bonus, step by step as the solution gives it.
fn wire(pid: i32, g: &mut HostGuard, n: u32) {
    let (c_if, h_ip, c_ip, subnet) = plan(n);
    let h_if = g.host_if.clone();
    must(&format!("ip link add {h_if} type veth peer name {c_if}"));
    must(&format!("ip link set {c_if} netns {pid}"));
    must(&format!("ip addr add {h_ip}/24 dev {h_if}"));
    must(&format!("ip link set {h_if} up"));
    must(&format!(
        "nsenter -t {pid} -n ip addr add {c_ip}/24 dev {c_if}"
    ));
    must(&format!("nsenter -t {pid} -n ip link set {c_if} up"));
    must(&format!("nsenter -t {pid} -n ip link set lo up"));
    must(&format!(
        "nsenter -t {pid} -n ip route add default via {h_ip}"
    ));
    g.masquerade(&subnet);
}

/// `text` with every run of whitespace (a wrapped line's break and indent) as one space.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn bonus_passes_with_the_seeds_commands() {
    require_root!();
    if !tools_or_skip() {
        return;
    }
    let _s = serial();
    let sb = Sandbox::new();
    let root = TestRootfs::new();
    let (_l, pid) = container(true, &root);
    let mut g = HostGuard::new(241);
    wire(pid, &mut g, 241);
    let (code, text) = sb.check("5b", &[]);
    assert_eq!(code, 0, "{text}");
    // The report is wrapped to the terminal's width: compare words, not line breaks.
    let text = flat(&text);
    assert!(text.contains(&format!("host PID {pid}")), "{text}");
    assert!(text.contains("ip_forward"), "ip_forward is shown: {text}");
    assert!(
        text.contains(&format!("echo to {}: reply", host_target())),
        "{text}"
    );
    assert!(
        text.contains("ip saddr 10.203.241.0/24") && text.contains("masquerade"),
        "names the rule it found: {text}"
    );
    let (code, json) = sb.check("5b", &["--json"]);
    assert_eq!(code, 0, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["verdict"], "pass");
    assert_eq!(v["facts"].as_array().unwrap().len(), 7);
    // The bonus does not change check 5's facts.
    let (_, json5) = sb.check("5", &["--json"]);
    let v5: serde_json::Value = serde_json::from_str(&json5).unwrap();
    assert_eq!(v5["facts"].as_array().unwrap().len(), 13);
}

/// Docker's way: the host end is a port of a bridge, which holds the gateway address.
#[test]
fn bonus_passes_through_a_bridge_too() {
    require_root!();
    if !tools_or_skip() {
        return;
    }
    let _s = serial();
    let sb = Sandbox::new();
    let root = TestRootfs::new();
    let (_l, pid) = container(true, &root);
    let n = 243;
    let (c_if, h_ip, c_ip, subnet) = plan(n);
    let mut g = HostGuard::new(n);
    let br = format!("nslabt{n}b");
    let _ = sh(&format!("ip link del {br} 2>/dev/null"));
    g.extra.push(br.clone());
    let h_if = g.host_if.clone();
    must(&format!("ip link add {br} type bridge"));
    must(&format!("ip link add {h_if} type veth peer name {c_if}"));
    must(&format!("ip link set {h_if} master {br}"));
    must(&format!("ip link set {c_if} netns {pid}"));
    must(&format!("ip addr add {h_ip}/24 dev {br}"));
    must(&format!("ip link set {br} up"));
    must(&format!("ip link set {h_if} up"));
    must(&format!(
        "nsenter -t {pid} -n ip addr add {c_ip}/24 dev {c_if}"
    ));
    must(&format!("nsenter -t {pid} -n ip link set {c_if} up"));
    must(&format!(
        "nsenter -t {pid} -n ip route add default via {h_ip}"
    ));
    g.masquerade(&subnet);
    let ok = wait_until(Duration::from_secs(10), || sb.check("5b", &[]).0 == 0);
    let (_, text) = sb.check("5b", &[]);
    let text = flat(&text);
    assert!(ok, "{text}");
    assert!(text.contains(&format!("host end: {br} {h_ip}")), "{text}");
}

#[test]
fn bonus_failures_each_have_their_own_hint() {
    require_root!();
    if !tools_or_skip() {
        return;
    }
    let _s = serial();
    let sb = Sandbox::new();
    let root = TestRootfs::new();
    {
        let (_l, _pid) = container(false, &root);
        sb.assert_check_fails_with("5b", "net-no-netns", "network namespace");
    }
    let (_l, pid) = container(true, &root);
    let n = 242;
    let (c_if, h_ip, c_ip, subnet) = plan(n);
    let mut g = HostGuard::new(n);
    let h_if = g.host_if.clone();
    sb.assert_check_fails_with("5b", "net-no-veth", "container interface");
    must(&format!("ip link add {h_if} type veth peer name {c_if}"));
    must(&format!("ip link set {c_if} netns {pid}"));
    sb.assert_check_fails_with("5b", "net-no-address", "container interface");
    must(&format!(
        "nsenter -t {pid} -n ip addr add {c_ip}/24 dev {c_if}"
    ));
    sb.assert_check_fails_with("5b", "net-down", "container interface");
    must(&format!("nsenter -t {pid} -n ip link set {c_if} up"));
    sb.assert_check_fails_with("5b", "net-no-host-address", "host end");
    must(&format!("ip addr add {h_ip}/24 dev {h_if}"));
    sb.assert_check_fails_with("5b", "net-host-down", "host end");
    must(&format!("ip link set {h_if} up"));
    sb.assert_check_fails_with("5b", "net-no-route", "route inside");
    must(&format!(
        "nsenter -t {pid} -n ip route add default via {h_ip}"
    ));
    let text = sb.assert_check_fails_with("5b", "net-no-nat", "NAT on the host");
    assert!(
        text.contains("iptables -t nat"),
        "the hint shows the rule: {text}"
    );
    g.masquerade(&subnet);
    let (code, text) = sb.check("5b", &[]);
    assert_eq!(code, 0, "{text}");
    // A blackhole route to the host's address: everything in place, nothing gets through.
    let target = host_target();
    must(&format!(
        "nsenter -t {pid} -n ip route add blackhole {target}/32"
    ));
    sb.assert_check_fails_with("5b", "net-unreachable", "reaches the host");
}

/// `nslab run --net --trace`: exit code, stderr (the trace) and nslab's PID.
/// `ping` sends raw ICMP, which needs CAP_NET_RAW: not among runc's defaults (Docker's has
/// it), so it is added.
fn run_net(sb: &Sandbox, cmd: &str) -> (i32, String, String, u32) {
    sb.run_with_pid(&[
        "run",
        "--net",
        "--cap-add",
        "NET_RAW",
        "--trace",
        "--",
        "/bin/sh",
        "-c",
        cmd,
    ])
}

/// The host end a run made, from its trace (`ifname=nslab<N>h kind=veth`).
fn host_end_in(trace: &str) -> Option<String> {
    trace.split_whitespace().find_map(|w| {
        let name = w.strip_prefix("ifname=")?;
        (name.starts_with("nslab") && name.ends_with('h')).then(|| name.to_string())
    })
}

fn link_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

fn table_exists(name: &str) -> bool {
    sh(&format!("nft list table ip {name}")).0
}

#[test]
fn run_net_reaches_the_host_and_leaves_nothing() {
    require_root!();
    if !tools_or_skip() {
        return;
    }
    let _s = serial();
    let sb = Sandbox::new();
    let target = host_target();
    let (code, out, err, pid) = run_net(
        &sb,
        &format!("cat /proc/net/route; ping -c 1 -W 3 {target} && echo REACHED"),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("REACHED"), "{out}\n{err}");
    assert!(out.contains("eth0"), "the container's end is eth0: {out}");
    for call in [
        "kind=veth",
        "RTM_NEWROUTE dst=default gateway=10.203.",
        "NFT_MSG_NEWTABLE family=ip name=nslab-",
        "masq]",
        "setns(",
        "NFT_MSG_DELTABLE",
    ] {
        assert!(err.contains(call), "missing {call} in:\n{err}");
    }
    // The network was ready before the command: its namespace was joined, not made.
    let setns = err.find("setns(").unwrap();
    let nat = err.find("NFT_MSG_NEWRULE").unwrap();
    assert!(nat < setns, "NAT before the container starts:\n{err}");
    let host_if = host_end_in(&err).expect("a host end in the trace");
    assert!(!link_exists(&host_if), "{host_if} removed");
    assert!(!table_exists(&format!("nslab-{pid}")), "table removed");
    assert!(sb.run_files().is_empty(), "{:?}", sb.run_files());
}

#[test]
fn two_runs_with_net_at_once_get_different_subnets() {
    require_root!();
    if !tools_or_skip() {
        return;
    }
    let _s = serial();
    let sb = Sandbox::new();
    let spawn = || {
        sb.cmd(&[
            "run",
            "--net",
            "--",
            "/bin/sh",
            "-c",
            "cat /proc/net/fib_trie | grep -m1 -o '10\\.203\\.[0-9]*\\.2'; sleep 1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (
        common::finish_within(a, common::RUN_LIMIT, "run --net"),
        common::finish_within(b, common::RUN_LIMIT, "run --net"),
    );
    assert_eq!(a.status.code(), Some(0), "{}", common::stderr(&a));
    assert_eq!(b.status.code(), Some(0), "{}", common::stderr(&b));
    let (sa, sb_) = (stdout(&a), stdout(&b));
    assert!(sa.starts_with("10.203."), "{sa}");
    assert!(sb_.starts_with("10.203."), "{sb_}");
    assert_ne!(sa, sb_, "each run has its own subnet");
}

#[test]
fn run_net_kill_9_then_cleanup_leaves_no_table_or_link() {
    require_root!();
    if !tools_or_skip() {
        return;
    }
    let _s = serial();
    let sb = Sandbox::new();
    let (mut child, table, host_if) = start_run_net(&sb);
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    assert!(table_exists(&table), "kill -9 left the table");
    let out = sb.run(&["cleanup", "--plain"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("nftables table ip {table}")),
        "{text}"
    );
    assert!(!table_exists(&table), "cleanup deleted the table");
    assert!(
        wait_until(Duration::from_secs(5), || !link_exists(&host_if)),
        "{host_if} is gone"
    );
    assert!(sb.run_files().is_empty(), "{:?}", sb.run_files());
}

/// `nslab run --net -- sleep 100` in the background, once its NAT table and host end
/// exist: the child, the table's name and the host end (from the run's ledger).
fn start_run_net(sb: &Sandbox) -> (Background, String, String) {
    let child = sb
        .cmd(&["run", "--net", "--", "sleep", "100"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let child = Background(child);
    let table = format!("nslab-{}", child.0.id());
    assert!(
        wait_until(Duration::from_secs(10), || table_exists(&table)),
        "the run made its NAT table"
    );
    // The run file is rewritten in place: read it until the host end is there.
    assert!(
        wait_until(Duration::from_secs(5), || recorded_host_end(sb).is_some()),
        "the host end is on the ledger"
    );
    let ledger: String = sb
        .run_files()
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap_or_default())
        .collect();
    assert!(ledger.contains("nft_table"), "{ledger}");
    let host_if = recorded_host_end(sb).expect("the host end is on the ledger");
    assert!(link_exists(&host_if));
    (child, table, host_if)
}

/// The host end a live run recorded on its ledger (its `link` entry).
fn recorded_host_end(sb: &Sandbox) -> Option<String> {
    sb.run_files().iter().find_map(|f| {
        let v: serde_json::Value =
            serde_json::from_str(std::fs::read_to_string(f).ok()?.trim()).ok()?;
        v["resources"]
            .as_array()?
            .iter()
            .find(|r| r["kind"] == "link")
            .and_then(|r| r["name"].as_str())
            .map(str::to_string)
    })
}

#[test]
fn run_net_ctrl_c_and_a_failed_start_leave_nothing() {
    require_root!();
    if !tools_or_skip() {
        return;
    }
    let _s = serial();
    let sb = Sandbox::new();
    let (mut child, table, host_if) = start_run_net(&sb);
    common::interrupt(&mut child.0);
    assert!(!table_exists(&table), "Ctrl-C removed the table");
    assert!(
        wait_until(Duration::from_secs(5), || !link_exists(&host_if)),
        "Ctrl-C removed {host_if}"
    );
    assert!(sb.run_files().is_empty(), "{:?}", sb.run_files());

    // The network is made, then the command cannot start: everything goes all the same.
    let out = common::output_of(
        sb.cmd(&["run", "--net", "--trace", "--", "nslabt-no-such-command"])
            .stdin(Stdio::null()),
    );
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(127), "{err}");
    let failed_if = host_end_in(&err).expect("the failed run made a host end");
    let failed_pid = err
        .split("name=nslab-")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("the failed run's table in its trace")
        .to_string();
    assert!(!link_exists(&failed_if), "{failed_if} removed");
    assert!(!table_exists(&format!("nslab-{failed_pid}")));
    assert!(sb.run_files().is_empty(), "{:?}", sb.run_files());
}
