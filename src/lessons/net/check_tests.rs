//! Check 2's judge on fixtures: the pass and each failure its hints name.

use super::*;
use crate::checks::report;
use crate::lessons::net::seen::fixture::{addr, answered, link, space, veth};
use crate::lessons::net::seen::Space;
use crate::lessons::net::INFO;

/// `red` and `blue` joined by red0 <-> blue0, 10.0.0.1/24 and 10.0.0.2/24, both UP.
fn net() -> Net {
    let mut red = space("red", 1);
    red.links.push(veth(5, "red0", 6, Some(0)));
    red.addrs.push(addr(5, "red0", "10.0.0.1", 24));
    red.ids = vec![(1, 0)];
    red.host_id = Some(7);
    let mut blue = space("blue", 2);
    blue.links.push(veth(6, "blue0", 5, Some(0)));
    blue.addrs.push(addr(6, "blue0", "10.0.0.2", 24));
    blue.ids = vec![(0, 0)];
    blue.host_id = Some(7);
    Net {
        names: vec!["blue".into(), "red".into()],
        spaces: vec![red, blue],
        host_links: vec![link(1, "lo", "loopback"), link(2, "eth0", "device")],
        host_ids: vec![(0, 3), (1, 4)],
        ..Net::default()
    }
}

fn machine() -> Seen {
    answered(net(), plan)
}

fn verdict(s: &Seen) -> (bool, Option<&'static str>, Observation) {
    let obs = judge(s);
    let r = report(&INFO, obs.clone());
    (r.passed, obs.problem, obs)
}

fn no_veths(s: &mut Space) {
    s.links.retain(|l| l.kind != "veth");
    s.addrs.clear();
}

#[test]
fn passes_two_namespaces_joined_and_answering_both_ways() {
    let s = machine();
    assert_eq!(s.echoes.len(), 2, "one echo each way");
    let (passed, problem, obs) = verdict(&s);
    assert!(passed, "{:?}", obs.facts);
    assert_eq!(problem, None);
    assert!(obs.judged.contains("net:[4026532001]"), "{}", obs.judged);
    assert!(
        obs.judged.contains("echo red -> 10.0.0.2"),
        "{}",
        obs.judged
    );
}

type Change = Box<dyn Fn(&mut Seen)>;

#[test]
fn each_failure_names_its_hint() {
    let cases: Vec<(&str, &str, Change)> = vec![
        (
            "namespace-missing",
            "only one: red",
            Box::new(|s: &mut Seen| {
                s.net.spaces.truncate(1);
                s.net.names = vec!["red".into()];
            }),
        ),
        (
            "namespace-missing",
            "none in /run/netns",
            Box::new(|s: &mut Seen| {
                s.net.spaces.clear();
                s.net.names.clear();
            }),
        ),
        (
            "no-veth",
            "no veth pair joins",
            Box::new(|s: &mut Seen| s.net.spaces.iter_mut().for_each(no_veths)),
        ),
        (
            // red0's peer left in the host.
            "end-in-host",
            "its peer hostend still in the host",
            Box::new(|s: &mut Seen| {
                no_veths(&mut s.net.spaces[1]);
                s.net.spaces[0].links[1] = veth(5, "red0", 20, Some(7));
                s.net.host_links.push(veth(20, "hostend", 5, Some(3)));
            }),
        ),
        (
            "both-ends-in-host",
            "va and vb both still in the host",
            Box::new(|s: &mut Seen| {
                s.net.spaces.iter_mut().for_each(no_veths);
                s.net.host_links.push(veth(30, "va", 31, None));
                s.net.host_links.push(veth(31, "vb", 30, None));
            }),
        ),
        (
            "link-down",
            "blue0 (in blue) DOWN",
            Box::new(|s: &mut Seen| s.net.spaces[1].links[1].admin_up = false),
        ),
        (
            "address-missing",
            "no IPv4 address on blue0 (in blue)",
            Box::new(|s: &mut Seen| s.net.spaces[1].addrs.clear()),
        ),
        (
            "different-subnets",
            "different subnets: 10.0.0.1/24 and 10.0.1.2/24",
            Box::new(|s: &mut Seen| s.net.spaces[1].addrs = vec![addr(6, "blue0", "10.0.1.2", 24)]),
        ),
        (
            "no-reply",
            "no reply within 4s",
            Box::new(|s: &mut Seen| s.echoes[1].1 = Outcome::Silent),
        ),
        (
            "no-reply",
            "no reply: sending failed (Permission denied)",
            Box::new(|s: &mut Seen| s.echoes[0].1 = Outcome::Failed("Permission denied".into())),
        ),
    ];
    for (want, fact, change) in cases {
        let mut s = machine();
        change(&mut s);
        // What observe would have sent for the changed machine (echo outcomes kept).
        let pings = plan(&s.net).pings;
        s.echoes.retain(|(p, _)| pings.contains(p));
        let (passed, problem, obs) = verdict(&s);
        assert!(!passed, "{want}");
        assert_eq!(problem, Some(want), "{:?}", obs.facts);
        assert!(
            obs.facts.iter().any(|f| f.value.contains(fact)),
            "{want}: {fact} in {:?}",
            obs.facts
        );
        assert!(INFO.hint(want).is_some(), "hints.md has {want}");
    }
}

#[test]
fn nothing_is_sent_across_a_pair_that_is_wrong_before_the_echo() {
    let mut n = net();
    n.spaces[1].addrs.clear();
    assert!(plan(&n).pings.is_empty());
    n.spaces.truncate(1);
    assert!(plan(&n).pings.is_empty());
}

#[test]
fn the_newest_pair_is_judged_and_said() {
    let mut n = net();
    let mut green = space("green", 3);
    green.links.push(veth(8, "green0", 9, Some(1)));
    green.ids = vec![(0, 1)];
    n.spaces[0].links.push(veth(9, "red1", 8, Some(1)));
    n.spaces[0].ids.push((2, 1));
    n.spaces.push(green);
    let obs = judge(&answered(n, plan));
    assert_eq!(
        obs.problem,
        Some("address-missing"),
        "red <-> green is newest"
    );
    assert!(
        obs.notes.iter().any(|n| n.contains("2 pairs")),
        "{:?}",
        obs.notes
    );
}

#[test]
fn a_bridge_in_the_host_is_exercise_2b_not_an_end_left_in_the_host() {
    // a, b, c plugged into the host's bridge br9; no pair between two of them.
    let mut n = Net {
        names: vec!["a".into(), "b".into(), "c".into()],
        host_links: vec![link(1, "lo", "loopback"), link(4, "br9", "bridge")],
        ..Net::default()
    };
    for (m, name) in ["a", "b", "c"].iter().enumerate() {
        let port = 10 + m as u32;
        let mut s = space(name, m as i64);
        s.links.push(veth(2, &format!("v{name}"), port, Some(0)));
        s.addrs.push(addr(2, "v", &format!("10.9.0.{}", m + 1), 24));
        s.host_id = Some(0);
        n.spaces.push(s);
        let mut p = veth(port, &format!("p{name}"), 2, Some(m as i32 + 1));
        p.master = Some(4);
        n.host_links.push(p);
        n.host_ids.push((m, m as i32 + 1));
    }
    let s = answered(n, plan);
    assert_eq!(s.echoes.len(), 2, "from a to b and c");
    let obs = judge(&s);
    assert_eq!(obs.problem, Some("no-veth"), "{:?}", obs.facts);
    assert!(
        obs.notes
            .iter()
            .any(|n| n.contains("bridge br9 in the host's namespace joins a, b, c; everything UP")),
        "{:?}",
        obs.notes
    );
}
