//! Check 2b: a bridge, three or more of the learner's namespaces plugged into it through
//! veth pairs, everything UP, one address on each end in one subnet, and every member
//! reaching every other. The bridge is in a namespace of the learner's (a hub) or in the
//! host's own, as Docker's docker0 and most tutorials have it.

use super::seen::{self, bridges, Bridge, Hub, Net, Outcome, Ping, Plan, Seen, CHECK_ECHO_TIMEOUT};
use crate::kernel::net::{ipv4_of as v4, same_subnet};
use crate::lesson::{Check, CheckArgs, Fact, Observation};
use anyhow::Result;
use std::net::Ipv4Addr;

pub struct BridgeCheck;

pub const BRIDGE: &str = "bridge";
pub const BRIDGE_STATE: &str = "link state";
pub const BRIDGE_ADDRESSES: &str = "addresses";
pub const BRIDGE_ECHOES: &str = "echoes";
/// The fewest namespaces exercise 2b plugs into its bridge.
pub const BRIDGE_MEMBERS: usize = 3;

const HOW: &str = "nslab judges the named network namespaces in /run/netns (not nslab's own): of the bridges in them, \
     and of those in the host's namespace with one of them plugged in, the one with most namespaces plugged in";

impl Check for BridgeCheck {
    type Seen = Seen;

    fn observe(_args: &CheckArgs) -> Result<Seen> {
        seen::observe(plan)
    }

    fn judge(s: &Seen) -> Observation {
        judge(s)
    }
}

fn bridge_facts(values: [&str; 4]) -> Vec<Fact> {
    [BRIDGE, BRIDGE_STATE, BRIDGE_ADDRESSES, BRIDGE_ECHOES]
        .iter()
        .zip(values)
        .map(|(n, v)| Fact::new(*n, v))
        .collect()
}

/// The bridge judged: the one with most members (of as many, the last found).
fn best(net: &Net) -> Option<Bridge> {
    bridges(net).into_iter().max_by_key(|b| b.members.len())
}

/// One address per member's end, all in the subnet of the first one; or what is wrong.
fn member_addresses(net: &Net, b: &Bridge) -> std::result::Result<Vec<(usize, Ipv4Addr)>, String> {
    let mut addrs: Vec<(usize, Ipv4Addr)> = Vec::new();
    let mut first: Option<(Ipv4Addr, u8)> = None;
    for (m, e) in &b.members {
        let here = v4(&net.spaces[*m].addrs, e.index);
        let name = &net.spaces[*m].name;
        let Some(a) = here.first().copied() else {
            return Err(format!("no IPv4 address on {} (in {name})", e.name));
        };
        match first {
            None => first = Some(a),
            Some(f) if !same_subnet(f, a) => {
                return Err(format!(
                    "not in one subnet: {}/{} and {}/{} (on {} in {name})",
                    f.0, f.1, a.0, a.1, e.name
                ));
            }
            Some(_) => {}
        }
        addrs.push((*m, a.0));
    }
    Ok(addrs)
}

/// Every member to every other, in order: (the member echoed, the echo).
fn all_pings(addrs: &[(usize, Ipv4Addr)]) -> Vec<(usize, Ping)> {
    let mut seq = 200u16;
    let mut out = Vec::new();
    for &(from, _) in addrs {
        for &(to, ip) in addrs {
            if from == to {
                continue;
            }
            seq = seq.wrapping_add(2);
            out.push((
                to,
                Ping {
                    from,
                    to: ip,
                    seq,
                    tries: 2,
                },
            ));
        }
    }
    out
}

/// The echoes check 2b sends: every member to every other once the bridge has its members,
/// everything is UP and addressed; the first silence is the answer.
pub fn plan(net: &Net) -> Plan {
    let pings = match best(net) {
        Some(b) if b.members.len() >= BRIDGE_MEMBERS && b.down(net).is_empty() => {
            member_addresses(net, &b)
                .map(|a| all_pings(&a).into_iter().map(|(_, p)| p).collect())
                .unwrap_or_default()
        }
        _ => Vec::new(),
    };
    Plan {
        pings,
        stop_at_silence: true,
    }
}

pub fn judge(s: &Seen) -> Observation {
    let net = &s.net;
    let mut notes = vec![HOW.to_string()];
    notes.extend(net.notes());
    let Some(b) = best(net) else {
        return Observation {
            judged: format!(
                "the named network namespaces in /run/netns: {}",
                net.shown()
            ),
            facts: bridge_facts(["none in your namespaces", "-", "-", "-"]),
            problem: Some("2b-no-bridge"),
            verify: vec![
                "ip netns list".into(),
                "sudo ip -n HUB -d link show type bridge".into(),
                "sudo ip -d link show type bridge".into(),
            ],
            notes,
        };
    };
    let hub = b.hub_name(net);
    let members = b.member_names(net).join(", ");
    let judged = format!(
        "bridge {} in {hub}; plugged in: {}",
        b.br.name,
        if members.is_empty() {
            "nothing".to_string()
        } else {
            members
        }
    );
    let mut verify = match b.hub {
        Hub::Space(_) => vec![
            format!("sudo ip -n {hub} -d link show master {}", b.br.name),
            format!("sudo ip -n {hub} -br link"),
        ],
        Hub::Host => vec![
            format!("sudo ip -d link show master {}", b.br.name),
            "sudo ip -br link".to_string(),
        ],
    };
    let finish = |facts, problem, verify, notes| Observation {
        judged: judged.clone(),
        facts,
        problem,
        verify,
        notes,
    };
    if b.members.len() < BRIDGE_MEMBERS {
        let found = format!(
            "found, with only {} namespace(s) plugged in",
            b.members.len()
        );
        return finish(
            bridge_facts([&found, "-", "-", "-"]),
            Some("2b-few-members"),
            verify,
            notes,
        );
    }
    let found = "found, with three or more namespaces plugged in";
    let down = b.down(net);
    if !down.is_empty() {
        let state = format!("DOWN: {}", down.join(", "));
        return finish(
            bridge_facts([found, &state, "-", "-"]),
            Some("2b-down"),
            verify,
            notes,
        );
    }
    let up = "bridge, its ports and every end UP";
    let addrs = match member_addresses(net, &b) {
        Ok(a) => a,
        Err(what) => {
            return finish(
                bridge_facts([found, up, &what, "-"]),
                Some("2b-address"),
                verify,
                notes,
            )
        }
    };
    let one_subnet = "one on each end, all in one subnet";
    // Every member to every other: the first silence is the answer.
    let mut rtts = Vec::new();
    for (to, ping) in all_pings(&addrs) {
        let (a, z) = (&net.spaces[ping.from].name, &net.spaces[to].name);
        let why = match s.outcome(&ping) {
            Outcome::Reply { rtt_us } => {
                rtts.push(format!("{a} -> {z} {}", crate::views::millis(rtt_us)));
                continue;
            }
            Outcome::Failed(why) => format!("sending failed ({why})"),
            Outcome::Silent => format!("no reply within {}s", CHECK_ECHO_TIMEOUT.as_secs() * 2),
        };
        let ip = ping.to;
        let what = format!("{a} -> {z} ({ip}): {why}");
        verify.push(format!("sudo ip netns exec {a} ping -c 1 {ip}"));
        return finish(
            bridge_facts([found, up, one_subnet, &what]),
            Some("2b-no-reply"),
            verify,
            notes,
        );
    }
    notes.push(format!("round trips: {}", rtts.join("; ")));
    finish(
        bridge_facts([found, up, one_subnet, "every namespace reaches every other"]),
        None,
        verify,
        notes,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::report;
    use crate::kernel::net::Link;
    use crate::lessons::net::seen::fixture::{addr, answered, link, space, veth};
    use crate::lessons::net::BONUS;

    const MEMBERS: [&str; 3] = ["a", "b", "c"];

    /// Where the bridge br0 (ifindex 4) is in each layout: its links.
    fn hub_links(net: &mut Net, layout: Hub) -> &mut Vec<Link> {
        match layout {
            Hub::Host => &mut net.host_links,
            Hub::Space(h) => &mut net.spaces[h].links,
        }
    }

    /// a, b and c each plugged into br0 with a veth pair (va in a, its peer pa a port of
    /// br0), 10.213.0.1-3/24, everything UP. `Hub::Space(3)`: br0 in a namespace `hub` of
    /// the learner's; `Hub::Host`: br0 in the host's namespace, next to docker0.
    fn net(layout: Hub) -> Net {
        let mut n = Net {
            names: vec!["a".into(), "b".into(), "c".into()],
            host_links: vec![link(1, "lo", "loopback"), link(2, "eth0", "device")],
            ..Net::default()
        };
        for (m, name) in MEMBERS.iter().enumerate() {
            let mut s = space(name, m as i64);
            // Each member knows the hub by id 0; the hub knows member m by id m + 1.
            s.links
                .push(veth(2, &format!("v{name}"), 10 + m as u32, Some(0)));
            s.addrs.push(addr(
                2,
                &format!("v{name}"),
                &format!("10.213.0.{}", m + 1),
                24,
            ));
            s.host_id = Some(0);
            n.spaces.push(s);
        }
        if let Hub::Space(h) = layout {
            let mut hub = space("hub", 9);
            hub.ids = (0..3).map(|m| (m, m as i32 + 1)).collect();
            n.spaces.push(hub);
            n.names.push("hub".into());
            for s in n.spaces.iter_mut().take(3) {
                s.ids = vec![(h, 0)];
                s.host_id = None;
            }
        } else {
            n.host_ids = (0..3).map(|m| (m, m as i32 + 1)).collect();
            // Docker's bridge and a container's port: not the learner's.
            n.host_links.push(link(3, "docker0", "bridge"));
            let mut d = veth(30, "veth1234", 2, Some(7));
            d.master = Some(3);
            n.host_links.push(d);
        }
        let links = hub_links(&mut n, layout);
        links.push(link(4, "br0", "bridge"));
        for (m, name) in MEMBERS.iter().enumerate() {
            let mut p = veth(10 + m as u32, &format!("p{name}"), 2, Some(m as i32 + 1));
            p.master = Some(4);
            links.push(p);
        }
        n
    }

    const LAYOUTS: [Hub; 2] = [Hub::Space(3), Hub::Host];

    fn verdict(s: &Seen) -> (bool, Option<&'static str>, Observation) {
        let obs = judge(s);
        let r = report(&BONUS, obs.clone());
        (r.passed, obs.problem, obs)
    }

    #[test]
    fn passes_a_bridge_in_a_hub_namespace_and_one_in_the_hosts() {
        for (layout, hub) in LAYOUTS.into_iter().zip(["hub", "the host's namespace"]) {
            let s = answered(net(layout), plan);
            assert_eq!(s.echoes.len(), 6, "every member to every other");
            let (passed, problem, obs) = verdict(&s);
            assert!(passed, "{layout:?}: {:?}", obs.facts);
            assert_eq!(problem, None);
            assert_eq!(
                obs.judged,
                format!("bridge br0 in {hub}; plugged in: a, b, c")
            );
            assert!(obs
                .notes
                .iter()
                .any(|n| n.starts_with("round trips: a -> b")));
        }
    }

    #[test]
    fn a_host_bridge_with_none_of_the_learners_namespaces_is_not_judged() {
        let mut n = net(Hub::Host);
        n.host_links.retain(|l| l.name != "br0");
        let (_, problem, obs) = verdict(&answered(n, plan));
        assert_eq!(problem, Some("2b-no-bridge"), "docker0 is not theirs");
        assert_eq!(obs.facts[0].value, "none in your namespaces");
    }

    type Change = Box<dyn Fn(&mut Seen, Hub)>;

    #[test]
    fn each_failure_names_its_hint_in_both_layouts() {
        let cases: Vec<(&str, &str, Change)> = vec![
            (
                "2b-no-bridge",
                "none in your namespaces",
                Box::new(|s, layout| hub_links(&mut s.net, layout).retain(|l| l.name != "br0")),
            ),
            (
                "2b-few-members",
                "found, with only 2 namespace(s) plugged in",
                Box::new(|s, layout| {
                    let links = hub_links(&mut s.net, layout);
                    links.iter_mut().find(|l| l.name == "pa").unwrap().master = None;
                }),
            ),
            (
                "2b-down",
                "DOWN: vb (in b)",
                Box::new(|s, _| s.net.spaces[1].links[1].admin_up = false),
            ),
            (
                "2b-down",
                "DOWN: br0",
                Box::new(|s, layout| {
                    let links = hub_links(&mut s.net, layout);
                    links.iter_mut().find(|l| l.name == "br0").unwrap().admin_up = false;
                }),
            ),
            (
                "2b-address",
                "no IPv4 address on vc (in c)",
                Box::new(|s, _| s.net.spaces[2].addrs.clear()),
            ),
            (
                "2b-address",
                "not in one subnet: 10.213.0.1/24 and 10.214.0.2/24 (on vb in b)",
                Box::new(|s, _| s.net.spaces[1].addrs = vec![addr(2, "vb", "10.214.0.2", 24)]),
            ),
            (
                "2b-no-reply",
                "c -> a (10.213.0.1): no reply within 4s",
                Box::new(|s, _| s.echoes[4].1 = Outcome::Silent),
            ),
            (
                "2b-no-reply",
                "a -> b (10.213.0.2): sending failed (Permission denied)",
                Box::new(|s, _| s.echoes[0].1 = Outcome::Failed("Permission denied".into())),
            ),
        ];
        for layout in LAYOUTS {
            for (want, fact, change) in &cases {
                let mut s = answered(net(layout), plan);
                change(&mut s, layout);
                let pings = plan(&s.net).pings;
                s.echoes.retain(|(p, _)| pings.contains(p));
                let (passed, problem, obs) = verdict(&s);
                assert!(!passed, "{layout:?} {want}");
                assert_eq!(problem, Some(*want), "{layout:?}: {:?}", obs.facts);
                assert!(
                    obs.facts.iter().any(|f| f.value == *fact),
                    "{layout:?} {want}: {fact} in {:?}",
                    obs.facts
                );
                assert!(BONUS.hint(want).is_some(), "hints.md has {want}");
            }
        }
    }

    #[test]
    fn the_first_silence_stops_the_echoes() {
        assert!(plan(&net(Hub::Host)).stop_at_silence);
        let mut n = net(Hub::Host);
        n.spaces[0].addrs.clear();
        assert!(
            plan(&n).pings.is_empty(),
            "nothing sent before the addresses are right"
        );
    }
}
