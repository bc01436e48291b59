//! Check 5b's judge on fixtures: the pass and each failure its hints name.

use super::*;
use crate::checks::report;
use crate::kernel::net::nat::{IfMatch, NatAction, PrefixMatch};
use crate::lessons::container::check::tests::search;
use crate::lessons::container::net::BONUS;
use std::net::IpAddr;

const HOST_NET: u64 = 4026531840;
const BOX_NET: u64 = 4026532600;

fn link(index: u32, name: &str, kind: &str) -> Link {
    Link {
        index,
        name: name.into(),
        kind: kind.into(),
        flags: vec!["UP".into(), "LOWER_UP".into()],
        admin_up: true,
        lower_up: true,
        operstate: "UP".into(),
        mtu: 1500,
        mac: None,
        peer_index: None,
        link_netnsid: None,
        master: None,
    }
}

fn veth(index: u32, name: &str, peer: u32, netnsid: i32) -> Link {
    Link {
        peer_index: Some(peer),
        link_netnsid: Some(netnsid),
        ..link(index, name, "veth")
    }
}

fn addr(index: u32, ifname: &str, ip: [u8; 4], len: u8) -> Address {
    Address {
        index,
        ifname: ifname.into(),
        family: "inet".into(),
        address: IpAddr::V4(Ipv4Addr::from(ip)),
        prefix_len: len,
        scope: "global".into(),
    }
}

fn route(dev: &str, dst: [u8; 4], len: u8, gw: Option<[u8; 4]>) -> Route {
    Route {
        dev: dev.into(),
        destination: Ipv4Addr::from(dst),
        prefix_len: len,
        gateway: gw.map(Ipv4Addr::from),
    }
}

/// `iptables -t nat -A POSTROUTING -s 10.203.7.0/24 ! -o veth-host -j MASQUERADE`.
fn masquerade() -> NatRule {
    NatRule {
        family: "ip".into(),
        table: "nat".into(),
        chain: "POSTROUTING".into(),
        hook: Some("postrouting".into()),
        handle: 4,
        source: Some(PrefixMatch {
            addr: Ipv4Addr::new(10, 203, 7, 0),
            len: 24,
            negated: false,
        }),
        out_interface: Some(IfMatch {
            name: "veth-host".into(),
            negated: true,
        }),
        action: NatAction::Masquerade,
        other_matches: vec![],
        xt_target: true,
    }
}

/// The seeds' bonus done: veth-host (10.203.7.1/24, host) <-> eth0 (10.203.7.2/24,
/// inside), a default route via the host end, masquerade, an echo to eth0's 192.0.2.2.
fn machine() -> Seen {
    Seen {
        search: search(),
        forward: Some(false),
        host_net: Some(HOST_NET),
        own_net: Some(HOST_NET),
        net: Some(BOX_NET),
        inside: Some(NetInside {
            links: vec![link(1, "lo", "loopback"), veth(2, "eth0", 7, 0)],
            addrs: vec![addr(2, "eth0", [10, 203, 7, 2], 24)],
            wired: Some(Wired {
                host_links: vec![
                    link(1, "lo", "loopback"),
                    link(2, "eth0", "device"),
                    veth(7, "veth-host", 2, 3),
                ],
                host_addrs: vec![
                    addr(2, "eth0", [192, 0, 2, 2], 24),
                    addr(7, "veth-host", [10, 203, 7, 1], 24),
                ],
                host_id: Some(0),
                host_routes: vec![route("eth0", [0, 0, 0, 0], 0, Some([192, 0, 2, 1]))],
                routes: vec![
                    route("eth0", [0, 0, 0, 0], 0, Some([10, 203, 7, 1])),
                    route("eth0", [10, 203, 7, 0], 24, None),
                ],
                rules: Ok(vec![masquerade()]),
                legacy_nat: false,
                echo: Some((Ipv4Addr::new(192, 0, 2, 2), Echo::Reply { rtt_us: 85 })),
            }),
        }),
    }
}

/// How a test case departs from the passing machine.
type Change = Box<dyn Fn(&mut Seen)>;

fn inside(s: &mut Seen) -> &mut NetInside {
    s.inside.as_mut().expect("the fixture looked inside")
}

fn wired(s: &mut Seen) -> &mut Wired {
    inside(s).wired.as_mut().expect("the fixture is wired")
}

#[test]
fn passes_the_seeds_bonus() {
    let obs = judge(&machine());
    let r = report(&BONUS, obs.clone());
    assert!(r.passed, "{}", r.diff);
    assert_eq!(obs.problem, None);
    for part in [
        "inside: eth0 10.203.7.2/24",
        "host end: veth-host 10.203.7.1",
        "echo to 192.0.2.2: reply in",
    ] {
        assert!(obs.judged.contains(part), "{part}: {}", obs.judged);
    }
    assert!(obs
        .verify
        .contains(&"sudo nsenter -t 103 -n ping -c 1 192.0.2.2".to_string()));
    assert!(obs.notes.iter().any(|n| n.contains("ip_forward = 0")));
}

#[test]
fn passes_through_a_bridge_on_the_host() {
    let mut s = machine();
    let w = wired(&mut s);
    w.host_links[2].master = Some(9);
    w.host_links.push(link(9, "br0", "bridge"));
    w.host_addrs[1] = addr(9, "br0", [10, 203, 7, 1], 24);
    let obs = judge(&s);
    assert_eq!(obs.problem, None, "{:?}", obs.facts);
    assert!(obs.judged.contains("host end: br0 10.203.7.1"));
}

#[test]
fn each_failure_names_its_hint() {
    let cases: Vec<(&str, &str, Change)> = vec![
        (
            "nothing-found",
            "container made by unshare: not found",
            Box::new(|s: &mut Seen| s.search.table.truncate(3)),
        ),
        (
            "host-namespace",
            "container made by unshare: PID 100 is in the host's PID namespace",
            Box::new(|s: &mut Seen| s.search.asked = Some(100)),
        ),
        (
            "net-no-netns",
            "network namespace: the host's (no --net)",
            Box::new(|s: &mut Seen| {
                s.net = s.host_net;
                s.inside = None;
            }),
        ),
        (
            "net-no-veth",
            "container interface: none, only lo",
            Box::new(|s: &mut Seen| {
                let i = inside(s);
                i.links.truncate(1);
                i.addrs.clear();
                i.wired = None;
            }),
        ),
        (
            "net-no-address",
            "container interface: no IPv4 address",
            Box::new(|s: &mut Seen| {
                let i = inside(s);
                i.addrs.clear();
                i.wired = None;
            }),
        ),
        (
            "net-down",
            "container interface: DOWN",
            Box::new(|s: &mut Seen| inside(s).links[1].admin_up = false),
        ),
        (
            "net-no-host-end",
            "host end: none (the other end of the veth is not in the host)",
            Box::new(|s: &mut Seen| {
                let w = wired(s);
                w.host_id = Some(5); // the peer is in another namespace
                w.host_addrs.truncate(1);
            }),
        ),
        (
            "net-no-host-address",
            "host end: no address in the container's subnet",
            Box::new(|s: &mut Seen| wired(s).host_addrs.truncate(1)),
        ),
        (
            "net-host-down",
            "host end: DOWN",
            Box::new(|s: &mut Seen| wired(s).host_links[2].admin_up = false),
        ),
        (
            "net-no-route",
            "route inside: none beyond its own subnet",
            Box::new(|s: &mut Seen| {
                wired(s).routes.remove(0);
            }),
        ),
        (
            "net-no-route",
            "route inside: via an address that is not the host end's",
            Box::new(|s: &mut Seen| {
                wired(s).routes[0].gateway = Some(Ipv4Addr::new(10, 203, 7, 9))
            }),
        ),
        (
            "net-no-nat",
            "NAT on the host: none covers the container's address",
            Box::new(|s: &mut Seen| {
                wired(s).rules.as_mut().expect("read")[0]
                    .source
                    .as_mut()
                    .expect("a source")
                    .addr = Ipv4Addr::new(10, 9, 9, 0);
            }),
        ),
        (
            "net-no-nat",
            "NAT on the host: none covers the container's address",
            Box::new(|s: &mut Seen| {
                // `-o veth-host`: only packets leaving by the host end itself.
                wired(s).rules.as_mut().expect("read")[0]
                    .out_interface
                    .as_mut()
                    .expect("an -o")
                    .negated = false;
            }),
        ),
        (
            "net-nat-unreadable",
            "NAT on the host: could not be read from nftables (see the notes)",
            Box::new(|s: &mut Seen| wired(s).rules = Err("Operation not permitted".into())),
        ),
        (
            "net-legacy-iptables",
            "NAT on the host: none readable (legacy iptables has a nat table)",
            Box::new(|s: &mut Seen| {
                let w = wired(s);
                w.rules = Ok(vec![]);
                w.legacy_nat = true;
            }),
        ),
        (
            "net-no-target",
            "reaches the host beyond its subnet: no host address outside its subnet to try",
            Box::new(|s: &mut Seen| {
                let w = wired(s);
                w.host_addrs.remove(0);
                w.echo = None;
            }),
        ),
        (
            "net-unreachable",
            "reaches the host beyond its subnet: no reply",
            Box::new(|s: &mut Seen| wired(s).echo.as_mut().expect("sent").1 = Echo::Silent),
        ),
        (
            "net-unreachable",
            "reaches the host beyond its subnet: no (the echo could not be sent)",
            Box::new(|s: &mut Seen| {
                wired(s).echo.as_mut().expect("sent").1 =
                    Echo::Failed("Network is unreachable".into())
            }),
        ),
    ];
    for (want, fact, change) in cases {
        let mut s = machine();
        change(&mut s);
        let obs = judge(&s);
        let r = report(&BONUS, obs.clone());
        assert!(!r.passed, "{want}");
        assert_eq!(obs.problem, Some(want), "{fact}: {:?}", obs.facts);
        assert!(r.observed.contains(fact), "{want}: {}", r.observed);
        assert!(BONUS.hint(want).is_some(), "hints.md has {want}");
    }
}

#[test]
fn the_first_missing_piece_names_the_hint() {
    let mut s = machine();
    wired(&mut s).routes.clear();
    wired(&mut s).rules = Ok(vec![]);
    let obs = judge(&s);
    assert_eq!(obs.problem, Some("net-no-route"));
    assert!(obs
        .facts
        .contains(&Fact::new(NAT, "none covers the container's address")));
}

#[test]
fn the_nat_read_error_is_a_note() {
    let mut s = machine();
    wired(&mut s).rules = Err("reading the nftables ruleset: EPERM".into());
    let obs = judge(&s);
    assert!(obs.notes.iter().any(|n| n
        == "the NAT rules could not be read from nftables: reading the nftables ruleset: EPERM"));
}
