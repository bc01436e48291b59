//! Lesson 2's path done by nslab (netlink, raw ICMP, one helper child per namespace) vs
//! the same sequence typed with `ip`, side by side in one run. Needs root.
//!
//!     sudo cargo bench --bench net            # or: ./bench/net.sh
//!
//! Each round: two named namespaces, a veth pair, one end moved into each, an address on
//! each, both ends up, one ICMP echo from the first to the second, both namespaces
//! deleted. The `ip` side runs 12 `ip` commands and `ip netns exec … busybox ping` (this
//! machine has no `ping` binary). Rounds alternate between the two so that background
//! work (the kernel destroying deleted namespaces) falls on both alike.
//!
//! The kernel layer is compiled in from src/ (this crate is a binary, not a library).

// The bench uses part of each module: the rest (and their tests, when checked) is unused.
#[path = "../src/error.rs"]
#[allow(dead_code, unused_imports)]
mod error;
#[path = "../src/fsutil.rs"]
#[allow(dead_code, unused_imports)]
mod fsutil;
#[path = "../src/kernel/mod.rs"]
#[allow(dead_code, unused_imports)]
mod kernel;
#[path = "../src/ledger/mod.rs"]
#[allow(dead_code, unused_imports)]
mod ledger;

use anyhow::{bail, Context, Result};
use kernel::net::{self, Netns, Rtnl};
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkInfo, LinkMessage,
};
use netlink_packet_route::RouteNetlinkMessage;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const A: &str = "nslab-bench-a";
const B: &str = "nslab-bench-b";
const VA: &str = "nslab-bva";
const VB: &str = "nslab-bvb";
const IP_A: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 1);
const IP_B: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 2);

/// `ip link add NAME netns NS1 type veth peer name PEER netns NS2`: the pair is born with
/// each end in its namespace, nothing to move (a move costs the kernel an RCU grace period
/// or two). Nothing lands in the host, so nothing goes on the ledger. Only this bench makes
/// pairs this way, to weigh it against a move, so it lives here and not in nslab.
fn create_veth_placed(
    host: &mut Rtnl,
    name: &str,
    netns_fd: BorrowedFd<'_>,
    peer: &str,
    peer_netns_fd: BorrowedFd<'_>,
) -> Result<()> {
    let by_name = |name: &str, netns_fd: BorrowedFd<'_>| {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        m.attributes
            .push(LinkAttribute::NetNsFd(netns_fd.as_raw_fd()));
        m
    };
    let mut m = by_name(name, netns_fd);
    m.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(by_name(peer, peer_netns_fd)))),
    ]));
    host.change(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
        .with_context(|| format!("creating veth pair {name} <-> {peer} in place"))
}

fn nslab_round(in_place: bool) -> Result<Duration> {
    let phases = std::env::var_os("NSLAB_BENCH_PHASES").is_some();
    let start = Instant::now();
    let mut last = start;
    let mut mark = |what: &str| {
        if phases {
            eprintln!(
                "  {what:<14} {:>8.3} ms",
                last.elapsed().as_secs_f64() * 1000.0
            );
        }
        last = Instant::now();
    };
    let mut a = Netns::create(A)?;
    mark("netns add a");
    let mut b = Netns::create(B)?;
    mark("netns add b");
    let mut host = net::host()?;
    if in_place {
        create_veth_placed(&mut host, VA, a.fd(), VB, b.fd())?;
        mark("veth in place");
    } else {
        host.create_veth(VA, VB)?;
        mark("veth");
        host.move_to_netns(VA, a.fd())?;
        host.move_to_netns(VB, b.fd())?;
        mark("moves");
    }
    a.rtnl().add_ipv4(VA, IP_A, 24)?;
    b.rtnl().add_ipv4(VB, IP_B, 24)?;
    mark("addresses");
    a.rtnl().set_up(VA, true)?;
    b.rtnl().set_up(VB, true)?;
    mark("up");
    a.wait_carrier(VA, Duration::from_secs(3))?;
    mark("carrier");
    if a.echo(IP_B, 1, Duration::from_secs(3))?.is_none() {
        bail!("nslab: no echo reply");
    }
    mark("echo");
    a.delete()?;
    b.delete()?;
    mark("deletes");
    let t = start.elapsed();
    kernel::trace::take();
    Ok(t)
}

fn busybox() -> &'static str {
    ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("busybox")
}

fn ip_round(in_place: bool) -> Result<Duration> {
    let a_ip = format!("{IP_A}/24");
    let b_ip = format!("{IP_B}/24");
    let dst = IP_B.to_string();
    let mut steps: Vec<Vec<&str>> =
        vec![vec!["ip", "netns", "add", A], vec!["ip", "netns", "add", B]];
    if in_place {
        steps.push(vec![
            "ip", "link", "add", VA, "netns", A, "type", "veth", "peer", "name", VB, "netns", B,
        ]);
    } else {
        steps.push(vec![
            "ip", "link", "add", VA, "type", "veth", "peer", "name", VB,
        ]);
        steps.push(vec!["ip", "link", "set", VA, "netns", A]);
        steps.push(vec!["ip", "link", "set", VB, "netns", B]);
    }
    steps.extend([
        vec!["ip", "-n", A, "addr", "add", &a_ip, "dev", VA],
        vec!["ip", "-n", B, "addr", "add", &b_ip, "dev", VB],
        vec!["ip", "-n", A, "link", "set", VA, "up"],
        vec!["ip", "-n", B, "link", "set", VB, "up"],
        vec![
            "ip",
            "netns",
            "exec",
            A,
            busybox(),
            "ping",
            "-c",
            "1",
            "-W",
            "3",
            &dst,
        ],
        vec!["ip", "netns", "delete", A],
        vec!["ip", "netns", "delete", B],
    ]);
    let start = Instant::now();
    for s in &steps {
        let st = Command::new(s[0])
            .args(&s[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .with_context(|| format!("running {}", s.join(" ")))?;
        if !st.success() {
            bail!("`{}` failed ({st})", s.join(" "));
        }
    }
    Ok(start.elapsed())
}

/// Whatever a failed round left (only these fixed nslab-bench names).
fn clean() {
    let _ = net::delete_netns(A);
    let _ = net::delete_netns(B);
    let _ = net::delete_link(VA);
    let _ = net::delete_link(VB);
    for r in ledger::current() {
        ledger::forget(&r);
    }
}

fn stats(mut v: Vec<Duration>) -> (f64, f64, f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let q = |p: f64| ms(v[((v.len() - 1) as f64 * p).round() as usize]);
    (q(0.5), q(0.1), q(0.9), ms(v[0]))
}

/// Untimed pause before each round (NSLAB_BENCH_PAUSE_MS, default 300).
fn pause() -> Duration {
    Duration::from_millis(
        std::env::var("NSLAB_BENCH_PAUSE_MS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(300),
    )
}

/// One variant: `rounds` rounds of each side, alternating which goes first.
fn compare(rounds: usize, in_place: bool) -> Result<(Vec<Duration>, Vec<Duration>)> {
    clean();
    // Warm up both (page cache, binaries, module autoload).
    let _ = nslab_round(in_place).map_err(|e| eprintln!("warm-up: {e:#}"));
    clean();
    let _ = ip_round(in_place).map_err(|e| eprintln!("warm-up: {e:#}"));
    clean();
    let (mut ns, mut ip) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        let order: [bool; 2] = if i % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for nslab in order {
            // The kernel destroys deleted namespaces in the background, holding locks the
            // next round needs: let it finish, untimed, so neither side pays for the other.
            std::thread::sleep(pause());
            let r = if nslab {
                nslab_round(in_place)
            } else {
                ip_round(in_place)
            };
            match r {
                Ok(t) => {
                    if nslab {
                        ns.push(t)
                    } else {
                        ip.push(t)
                    }
                }
                Err(e) => {
                    clean();
                    bail!("round {i} ({}): {e:#}", if nslab { "nslab" } else { "ip" });
                }
            }
            clean();
        }
    }
    Ok((ns, ip))
}

fn report(title: &str, ns: Vec<Duration>, ip: Vec<Duration>) {
    let (nm, n10, n90, nmin) = stats(ns);
    let (im, i10, i90, imin) = stats(ip);
    println!("{title}");
    println!(
        "  {:<28} {:>8} {:>8} {:>8} {:>8}",
        "", "median", "p10", "p90", "min"
    );
    println!(
        "  {:<28} {nm:>8.2} {n10:>8.2} {n90:>8.2} {nmin:>8.2}",
        "nslab (netlink, raw ICMP)"
    );
    println!(
        "  {:<28} {im:>8.2} {i10:>8.2} {i90:>8.2} {imin:>8.2}",
        "ip + busybox ping"
    );
    println!("  ratio of medians nslab/ip: {:.3} (goal <= 0.15)", nm / im);
}

fn main() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("the benchmark needs root (it creates network namespaces): sudo cargo bench --bench net");
        std::process::exit(3);
    }
    kernel::sys::install_interrupt_handler();
    let rounds: usize = std::env::var("NSLAB_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{rounds} rounds per side and variant, alternating; times in ms; {} CPUs, load average {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let (ns, ip) = compare(rounds, false)?;
    report("A. lesson 2's sequence: 2 netns add, veth add, 2 moves, 2 addr add, 2 up, 1 echo, 2 netns delete", ns, ip);
    let (ns, ip) = compare(rounds, true)?;
    report("B. the same with the pair created in place (ip link add A netns X type veth peer name B netns Y)", ns, ip);
    Ok(())
}
