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
            judged: format!("the named network namespaces in /run/netns: {}", net.shown()),
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
