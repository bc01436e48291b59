//! Check 2: two of the learner's named namespaces joined by a veth pair, one address on
//! each end in one subnet, an echo across it both ways.

use super::bonus_check::BRIDGE_MEMBERS;
use super::seen::{self, bridges, Bridge, Net, Outcome, Ping, Plan, Seen, CHECK_ECHO_TIMEOUT};
use crate::kernel::net::{ipv4_of as v4, same_subnet, Link};
use crate::lesson::{Check, CheckArgs, Fact, Observation};
use anyhow::Result;
use std::net::Ipv4Addr;

pub struct NetCheck;

pub const NAMESPACES: &str = "network namespaces of yours";
pub const ENDS: &str = "veth ends";
pub const STATE: &str = "link state";
pub const ADDRESSES: &str = "addresses";
pub const ECHO_AB: &str = "echo first -> second";
pub const ECHO_BA: &str = "echo second -> first";

const HOW: &str = "nslab judges the named network namespaces in /run/netns (made with `ip netns add`), not nslab's own (nslab-…); of those joined by a veth pair, the newest pair";

impl Check for NetCheck {
    type Seen = Seen;

    fn observe(_args: &CheckArgs) -> Result<Seen> {
        seen::observe(plan)
    }

    fn judge(s: &Seen) -> Observation {
        judge(s)
    }
}

fn facts(values: [&str; 6]) -> Vec<Fact> {
    [NAMESPACES, ENDS, STATE, ADDRESSES, ECHO_AB, ECHO_BA]
        .iter()
        .zip(values)
        .map(|(n, v)| Fact::new(*n, v))
        .collect()
}

/// Two spaces joined by a veth pair: its end in the first, its end in the second.
struct Pair {
    i: usize,
    j: usize,
    la: Link,
    lb: Link,
}

/// The veth in space `a` whose peer is a veth in space `b` naming it back.
fn cable_between(net: &Net, a: usize, b: usize) -> Option<Pair> {
    let id = net.spaces[a].id_of(b)?;
    let (sa, sb) = (&net.spaces[a], &net.spaces[b]);
    // A bridge's port is exercise 2b's cabling, not the pair of exercise 2.
    for l in sa
        .links
        .iter()
        .filter(|l| l.kind == "veth" && l.link_netnsid == Some(id) && l.master.is_none())
    {
        if let Some(p) = sb
            .links
            .iter()
            .find(|p| Some(p.index) == l.peer_index && p.kind == "veth" && p.master.is_none())
        {
            if p.peer_index == Some(l.index) {
                return Some(Pair {
                    i: a,
                    j: b,
                    la: l.clone(),
                    lb: p.clone(),
                });
            }
        }
    }
    None
}

/// Every pair of spaces joined by a veth.
fn pairs(net: &Net) -> Vec<Pair> {
    let n = net.spaces.len();
    (0..n)
        .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
        .filter_map(|(i, j)| cable_between(net, i, j))
        .collect()
}

/// Of several pairs, the newest is the learner's current work.
fn newest(net: &Net, pairs: Vec<Pair>) -> Option<Pair> {
    pairs.into_iter().max_by_key(|p| {
        let (a, b) = (net.spaces[p.i].ctime, net.spaces[p.j].ctime);
        (a.max(b), a.min(b))
    })
}

/// A pair judged up to its echoes.
struct Assessed {
    problem: Option<&'static str>,
    state: String,
    addresses: String,
    /// One address of each end in one subnet.
    target: Option<((Ipv4Addr, u8), (Ipv4Addr, u8))>,
}

fn assess(net: &Net, p: &Pair) -> Assessed {
    let (an, bn) = (&net.spaces[p.i].name, &net.spaces[p.j].name);
    let (la, lb) = (&p.la, &p.lb);
    let mut problem: Option<&'static str> = None;
    let state = match (la.admin_up, lb.admin_up) {
        (true, true) => "both UP".to_string(),
        (a, b) => {
            problem = Some("link-down");
            let mut down = Vec::new();
            if !a {
                down.push(format!("{} (in {an})", la.name));
            }
            if !b {
                down.push(format!("{} (in {bn})", lb.name));
            }
            format!("{} DOWN", down.join(" and "))
        }
    };
    let (aa, ba) = (
        v4(&net.spaces[p.i].addrs, la.index),
        v4(&net.spaces[p.j].addrs, lb.index),
    );
    let mut target = None;
    let addresses = if aa.is_empty() || ba.is_empty() {
        problem = problem.or(Some("address-missing"));
        let mut missing = Vec::new();
        if aa.is_empty() {
            missing.push(format!("{} (in {an})", la.name));
        }
        if ba.is_empty() {
            missing.push(format!("{} (in {bn})", lb.name));
        }
        format!("no IPv4 address on {}", missing.join(" or "))
    } else {
        let hit = aa
            .iter()
            .find_map(|a| ba.iter().find(|b| same_subnet(*a, **b)).map(|b| (*a, *b)));
        match hit {
            Some(p) => {
                target = Some(p);
                "one on each end, in one subnet".to_string()
            }
            None => {
                problem = problem.or(Some("different-subnets"));
                format!(
                    "different subnets: {}/{} and {}/{}",
                    aa[0].0, aa[0].1, ba[0].0, ba[0].1
                )
            }
        }
    };
    Assessed {
        problem,
        state,
        addresses,
        target,
    }
}

/// The echo each way across a pair with nothing wrong before it.
fn pair_pings(p: &Pair, a: &Assessed) -> Option<[Ping; 2]> {
    let ((a_ip, _), (b_ip, _)) = a.target?;
    if a.problem.is_some() {
        return None;
    }
    Some([
        Ping {
            from: p.i,
            to: b_ip,
            seq: 1,
            tries: 2,
        },
        Ping {
            from: p.j,
            to: a_ip,
            seq: 11,
            tries: 2,
        },
    ])
}

/// One echo from a bridge's first member to each other member (the member, and the echo
/// when that member has an address).
fn bridge_pings(net: &Net, b: &Bridge) -> Vec<(usize, Option<Ping>)> {
    let (m0, _) = &b.members[0];
    b.members
        .iter()
        .enumerate()
        .skip(1)
        .map(|(k, (m, e))| {
            let target = v4(&net.spaces[*m].addrs, e.index)
                .first()
                .map(|(ip, _)| *ip);
            let ping = target.map(|to| Ping {
                from: *m0,
                to,
                seq: 100 + k as u16,
                tries: 1,
            });
            (*m, ping)
        })
        .collect()
}

/// Exercise 2b's bridges as check 2 mentions them: three or more namespaces plugged in.
fn full_bridges(net: &Net) -> Vec<Bridge> {
    bridges(net)
        .into_iter()
        .filter(|b| b.members.len() >= BRIDGE_MEMBERS)
        .collect()
}

/// The echoes check 2 sends: across the newest pair when nothing is wrong before them, and
/// one from each of exercise 2b's bridges' first member to the others.
pub fn plan(net: &Net) -> Plan {
    let mut pings = Vec::new();
    if net.spaces.len() < 2 {
        return Plan::default();
    }
    for b in full_bridges(net) {
        pings.extend(bridge_pings(net, &b).into_iter().filter_map(|(_, p)| p));
    }
    if let Some(p) = newest(net, pairs(net)) {
        pings.extend(pair_pings(&p, &assess(net, &p)).into_iter().flatten());
    }
    Plan {
        pings,
        stop_at_silence: false,
    }
}

/// Exercise 2b seen from check 2: each bridge joining three or more namespaces, described
/// in a note with the echoes from its first member; `nslab check 2b` judges it.
fn bridge_notes(s: &Seen) -> Vec<String> {
    let net = &s.net;
    let mut out = Vec::new();
    for b in full_bridges(net) {
        let down = b.down(net);
        let m0 = b.members[0].0;
        let echoes: Vec<String> = bridge_pings(net, &b)
            .into_iter()
            .map(|(m, ping)| {
                let result = match ping {
                    None => "no address".to_string(),
                    Some(ping) => {
                        let ip = ping.to;
                        match s.outcome(&ping) {
                            Outcome::Reply { rtt_us } => {
                                format!("{ip} replied ({})", crate::views::millis(rtt_us))
                            }
                            Outcome::Silent => format!("{ip} no reply"),
                            Outcome::Failed(why) => format!("{ip} not sent ({why})"),
                        }
                    }
                };
                format!("{}: {result}", net.spaces[m].name)
            })
            .collect();
        out.push(format!(
            "exercise 2b: bridge {} in {} joins {}; {}; echo from {}: {} (`nslab check 2b` judges it)",
            b.br.name,
            b.hub_name(net),
            b.member_names(net).join(", "),
            if down.is_empty() {
                "everything UP".to_string()
            } else {
                format!("DOWN: {}", down.join(", "))
            },
            net.spaces[m0].name,
            echoes.join("; ")
        ));
    }
    out
}

pub fn judge(s: &Seen) -> Observation {
    let net = &s.net;
    let mut notes = vec![HOW.to_string()];
    notes.extend(net.notes());
    if net.spaces.len() < 2 {
        let found = match net.spaces.first() {
            None => "none in /run/netns".to_string(),
            Some(s) => format!("only one: {}", s.name),
        };
        return Observation {
            judged: format!(
                "the named network namespaces in /run/netns: {}",
                net.shown()
            ),
            facts: facts([&found, "-", "-", "-", "-", "-"]),
            problem: Some("namespace-missing"),
            verify: vec!["ip netns list".into(), "ls -l /run/netns".into()],
            notes,
        };
    }
    notes.extend(bridge_notes(s));
    let all = pairs(net);
    if all.len() > 1 {
        notes.push(format!(
            "{} pairs of namespaces are joined by a veth; judging the newest",
            all.len()
        ));
    }
    match newest(net, all) {
        Some(p) => judge_pair(s, &p, notes),
        None => no_cable(net, notes),
    }
}

/// No veth joins two learner namespaces: is an end still in the host?
fn no_cable(net: &Net, notes: Vec<String>) -> Observation {
    let names: Vec<&str> = net.spaces.iter().map(|s| s.name.as_str()).collect();
    let count = format!("{}, but no veth pair joins two of them", names.len());
    let host_links = &net.host_links;
    let peer_in_host = |l: &Link| host_links.iter().find(|h| Some(h.index) == l.peer_index);
    // An end in a learner namespace whose peer is in the host, not plugged into a bridge
    // there (that is exercise 2b's cabling, the host as its hub).
    for s in &net.spaces {
        let Some(host_id) = s.host_id else {
            continue;
        };
        if let Some(l) = s.links.iter().find(|l| {
            l.kind == "veth"
                && l.link_netnsid == Some(host_id)
                && !peer_in_host(l).is_some_and(|p| p.master.is_some())
        }) {
            let peer_name = peer_in_host(l)
                .map(|p| p.name.clone())
                .unwrap_or_else(|| format!("if{}", l.peer_index.unwrap_or(0)));
            return Observation {
                judged: format!(
                    "namespaces {}: {} (in {}) is a veth whose peer {peer_name} is still in the host's namespace",
                    names.join(", "),
                    l.name,
                    s.name
                ),
                facts: facts([&count, &format!("{} in {}, its peer {peer_name} still in the host", l.name, s.name), "-", "-", "-", "-"]),
                problem: Some("end-in-host"),
                verify: vec![
                    "sudo ip link show type veth".into(),
                    format!("sudo ip -n {} -d link show {}", s.name, l.name),
                ],
                notes,
            };
        }
    }
    // A pair with both ends still in the host, not nslab's.
    let pair = host_links.iter().find(|l| {
        l.kind == "veth"
            && l.link_netnsid.is_none()
            && !l.name.starts_with(crate::checks::whose::NSLAB_PREFIX)
            && host_links
                .iter()
                .any(|p| Some(p.index) == l.peer_index && p.peer_index == Some(l.index))
    });
    if let Some(l) = pair {
        let peer = host_links
            .iter()
            .find(|p| Some(p.index) == l.peer_index)
            .map(|p| p.name.clone())
            .unwrap_or_default();
        return Observation {
            judged: format!(
                "namespaces {}; the veth pair {} <-> {peer} is entirely in the host's namespace",
                names.join(", "),
                l.name
            ),
            facts: facts([
                &count,
                &format!("{} and {peer} both still in the host", l.name),
                "-",
                "-",
                "-",
                "-",
            ]),
            problem: Some("both-ends-in-host"),
            verify: vec!["sudo ip link show type veth".into()],
            notes,
        };
    }
    Observation {
        judged: format!(
            "namespaces {}: none has a veth whose peer is in another of them",
            names.join(", ")
        ),
        facts: facts([&count, "-", "-", "-", "-", "-"]),
        problem: Some("no-veth"),
        verify: names
            .iter()
            .map(|n| format!("sudo ip -n {n} -d link"))
            .collect(),
        notes,
    }
}

fn judge_pair(s: &Seen, p: &Pair, notes: Vec<String>) -> Observation {
    let net = &s.net;
    let (si, sj) = (&net.spaces[p.i], &net.spaces[p.j]);
    let (an, bn) = (&si.name, &sj.name);
    let (la, lb) = (&p.la, &p.lb);
    let a = assess(net, p);
    let mut problem = a.problem;
    let (mut ab, mut ba_echo) = ("not sent".to_string(), "not sent".to_string());
    let mut rtts = String::new();
    if let Some(pings) = pair_pings(p, &a) {
        // The round trip, or why there was none. Sending can fail for real (a `prohibit`
        // route, no route at all): that is the learner's network, not an error of nslab's.
        let said = |o: Outcome| match o {
            Outcome::Reply { rtt_us } => Ok(rtt_us),
            Outcome::Silent => Err(format!(
                "no reply within {}s",
                CHECK_ECHO_TIMEOUT.as_secs() * 2
            )),
            Outcome::Failed(why) => Err(format!("no reply: sending failed ({why})")),
        };
        for (k, ping) in pings.iter().enumerate() {
            let from = if k == 0 { an } else { bn };
            let slot = if k == 0 { &mut ab } else { &mut ba_echo };
            match said(s.outcome(ping)) {
                Ok(us) => {
                    *slot = "reply".into();
                    rtts.push_str(&format!(
                        "; echo {from} -> {}: {}",
                        ping.to,
                        crate::views::millis(us)
                    ));
                }
                Err(why) => *slot = why,
            }
        }
        if ab != "reply" || ba_echo != "reply" {
            problem = Some("no-reply");
        }
    }
    let inode = |s: &seen::Space| s.inode.map(|i| format!("net:[{i}]")).unwrap_or_default();
    let addr_list = |s: &seen::Space, l: &Link| {
        let v: Vec<String> = v4(&s.addrs, l.index)
            .iter()
            .map(|(ip, p)| format!("{ip}/{p}"))
            .collect();
        if v.is_empty() {
            "no address".to_string()
        } else {
            v.join(" ")
        }
    };
    Observation {
        judged: format!(
            "first = {an} {}, second = {bn} {}; veth {} (ifindex {}, {}) <-> {} (ifindex {}, {}){rtts}",
            inode(si),
            inode(sj),
            la.name,
            la.index,
            addr_list(si, la),
            lb.name,
            lb.index,
            addr_list(sj, lb),
        ),
        facts: facts([
            "two joined by a veth pair",
            "one in each namespace",
            &a.state,
            &a.addresses,
            &ab,
            &ba_echo,
        ]),
        problem,
        verify: vec![
            "ip netns list".into(),
            format!("sudo ip -n {an} -d link show {}", la.name),
            format!("sudo ip -n {bn} -br addr"),
            match a.target {
                Some((_, (b_ip, _))) => format!("sudo ip netns exec {an} ping -c 1 {b_ip}"),
                None => format!("sudo ip -n {an} route"),
            },
        ],
        notes,
    }
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
