//! Check of bonus exercise 5b: the hand-built container's own network — a veth pair into
//! it, addressed, a route out through the host end, NAT on the host, and an echo from
//! inside to a host address beyond its subnet.

use super::check::{self as check5, Found, Search};
use super::net::{host_target, ECHO_TIMEOUT};
use crate::kernel::net::nat::{self, NatRule};
use crate::kernel::net::route::{self, Route};
use crate::kernel::net::{ipv4_of as v4_of, same_subnet, Address, Link, Netns, Rtnl};
use crate::kernel::ns::{self, NsKind};
use crate::kernel::procs::ProcInfo;
use crate::kernel::trace;
use crate::lesson::{Check, CheckArgs, Fact, Observation};
use crate::views;
use anyhow::Result;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;

pub struct BonusCheck;

/// How the echo from inside went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Echo {
    Reply {
        rtt_us: u64,
    },
    /// No reply within the timeout, three tries.
    Silent,
    /// Sending failed: the root cause.
    Failed(String),
}

/// The host's side and the container's routes, NAT and echo: read once the container has
/// an interface with an IPv4 address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wired {
    pub host_links: Vec<Link>,
    pub host_addrs: Vec<Address>,
    /// The id the container's namespace knows the host's by.
    pub host_id: Option<i32>,
    pub host_routes: Vec<Route>,
    /// The routes inside the container.
    pub routes: Vec<Route>,
    /// The host's NAT rules, or why nftables could not be read.
    pub rules: std::result::Result<Vec<NatRule>, String>,
    /// Legacy iptables has a nat table (its rules are invisible to nftables).
    pub legacy_nat: bool,
    /// The echo sent to the target (see [`host_target`]), when there is one.
    pub echo: Option<(Ipv4Addr, Echo)>,
}

/// Inside the container's own network namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetInside {
    pub links: Vec<Link>,
    pub addrs: Vec<Address>,
    /// `None` when no interface inside has an IPv4 address.
    pub wired: Option<Wired>,
}

/// Everything check 5b judges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub search: Search,
    /// `net.ipv4.ip_forward`.
    pub forward: Option<bool>,
    /// The host's network namespace (PID 1's where readable), nslab's, the container's.
    pub host_net: Option<u64>,
    pub own_net: Option<u64>,
    pub net: Option<u64>,
    /// Read when the container has a network namespace of its own.
    pub inside: Option<NetInside>,
}

const NETNS: &str = "network namespace";
const IFACE: &str = "container interface";
const HOST_END: &str = "host end";
const ROUTE: &str = "route inside";
const NAT: &str = "NAT on the host";
const REACH: &str = "reaches the host beyond its subnet";

impl Seen {
    fn has_own_netns(&self) -> bool {
        !(self.net.is_none() || self.net == self.host_net || self.net == self.own_net)
    }
}

/// The container's interface judged: not `lo`, with an IPv4 address, UP ones first.
fn chosen_link<'a>(links: &'a [Link], addrs: &[Address]) -> Option<&'a Link> {
    let with_addr: Vec<&Link> = links
        .iter()
        .filter(|l| l.kind != "loopback")
        .filter(|l| !v4_of(addrs, l.index).is_empty())
        .collect();
    with_addr
        .iter()
        .find(|l| l.admin_up)
        .or(with_addr.first())
        .copied()
}

impl Check for BonusCheck {
    type Seen = Seen;

    fn observe(args: &CheckArgs) -> Result<Seen> {
        let search = check5::observe_search(args)?;
        let pid = match check5::find(&search) {
            Found::Init { init, .. } => Some(init.pid),
            Found::Nothing(_) => None,
        };
        let mut seen = Seen {
            search,
            forward: None,
            host_net: None,
            own_net: None,
            net: None,
            inside: None,
        };
        let Some(pid) = pid else {
            return Ok(seen);
        };
        seen.forward = nat::ip_forward();
        let own_net = ns::link(std::process::id() as i32, NsKind::Net).inode;
        seen.host_net = ns::host_reference().set.inode(NsKind::Net).or(own_net);
        seen.own_net = own_net;
        seen.net = ns::link(pid, NsKind::Net).inode;
        if seen.has_own_netns() {
            seen.inside = Some(observe_inside(pid)?);
        }
        Ok(seen)
    }

    fn judge(seen: &Seen) -> Observation {
        judge(seen)
    }
}

fn observe_inside(pid: i32) -> Result<NetInside> {
    let mut inside = Netns::of_pid(pid)?;
    let links = inside.rtnl().links()?;
    let addrs = inside.rtnl().addresses()?;
    trace::take();
    let Some(c_link) = chosen_link(&links, &addrs).cloned() else {
        return Ok(NetInside {
            links,
            addrs,
            wired: None,
        });
    };
    let (c_ip, c_len) = v4_of(&addrs, c_link.index)[0];
    let mut host_rtnl = Rtnl::open_here()?;
    let host_links = host_rtnl.links()?;
    let host_addrs = host_rtnl.addresses()?;
    let own = crate::kernel::net::own_netns_fd()?;
    let host_id = inside.rtnl().netnsid_of(own.as_fd())?;
    trace::take();
    let host_routes = route::routes_of(std::process::id() as i32)?;
    let routes = route::routes_of(pid)?;
    let rules = nat::nat_rules().map_err(|e| format!("{e:#}"));
    let legacy_nat = nat::legacy_nat_table();
    let echo = host_target(&host_addrs, &host_routes, (c_ip, c_len)).map(|dst| {
        let reply = inside.echo_tries(dst, 1, 3, ECHO_TIMEOUT);
        trace::take();
        let echo = match reply {
            Ok(Some(r)) => Echo::Reply { rtt_us: r.rtt_us },
            Ok(None) => Echo::Silent,
            Err(e) => Echo::Failed(e.root_cause().to_string()),
        };
        (dst, echo)
    });
    Ok(NetInside {
        links,
        addrs,
        wired: Some(Wired {
            host_links,
            host_addrs,
            host_id,
            host_routes,
            routes,
            rules,
            legacy_nat,
            echo,
        }),
    })
}

fn facts_with(found: &str) -> Vec<Fact> {
    let mut f = vec![Fact::new(check5::FOUND, found)];
    for n in [NETNS, IFACE, HOST_END, ROUTE, NAT, REACH] {
        f.push(Fact::new(n, "-"));
    }
    f
}

fn set(facts: &mut [Fact], name: &str, value: impl Into<String>) {
    if let Some(f) = facts.iter_mut().find(|f| f.name == name) {
        f.value = value.into();
    }
}

fn judge(s: &Seen) -> Observation {
    match check5::find(&s.search) {
        Found::Nothing(obs) => Observation {
            facts: {
                let mut f = facts_with("-");
                f[0].value = obs
                    .facts
                    .first()
                    .map(|f| f.value.clone())
                    .unwrap_or_default();
                f
            },
            ..obs
        },
        Found::Init { init, notes, .. } => judge_bonus(init, s, notes),
    }
}

/// The pieces of 5b as seen, judged in order; the first missing one names the hint.
fn judge_bonus(init: &ProcInfo, s: &Seen, mut notes: Vec<String>) -> Observation {
    let pid = init.pid;
    let mut facts = facts_with("found");
    let mut problem: Option<&'static str> = None;
    let mut verify = vec![
        format!("sudo nsenter -t {pid} -n ip addr"),
        format!("sudo nsenter -t {pid} -n ip route"),
        "ip addr".to_string(),
        "sudo iptables -t nat -S POSTROUTING   # or: sudo nft list ruleset".to_string(),
        "sysctl net.ipv4.ip_forward".to_string(),
    ];
    let mut judged = format!("container whose PID 1 is `{}` = host PID {pid}", init.comm);
    notes.push(match s.forward {
        Some(true) => "net.ipv4.ip_forward = 1: the container's packets may also be routed beyond this host".into(),
        Some(false) => "net.ipv4.ip_forward = 0 (informational): the container reaches the host's own addresses only; \
             `sudo sysctl -w net.ipv4.ip_forward=1` would let it out (a host setting, yours to decide)"
            .into(),
        None => "net.ipv4.ip_forward: unreadable".into(),
    });
    let finish = |facts, problem, judged, verify, notes| Observation {
        judged,
        facts,
        problem,
        verify,
        notes,
    };

    // Its own network namespace.
    let inside = match &s.inside {
        Some(i) if s.has_own_netns() => i,
        _ => {
            set(&mut facts, NETNS, "the host's (no --net)");
            return finish(facts, Some("net-no-netns"), judged, verify, notes);
        }
    };
    set(&mut facts, NETNS, "its own");

    // Its interface.
    let (links, addrs) = (&inside.links, &inside.addrs);
    let chosen = chosen_link(links, addrs);
    let (Some(c_link), Some(w)) = (chosen, inside.wired.as_ref()) else {
        let (v, p) = if links.iter().all(|l| l.kind == "loopback") {
            ("none, only lo", "net-no-veth")
        } else {
            ("no IPv4 address", "net-no-address")
        };
        set(&mut facts, IFACE, v);
        return finish(facts, Some(p), judged, verify, notes);
    };
    let (c_ip, c_len) = v4_of(addrs, c_link.index)[0];
    judged.push_str(&format!("; inside: {} {c_ip}/{c_len}", c_link.name));
    if !c_link.admin_up {
        set(&mut facts, IFACE, "DOWN");
        problem = problem.or(Some("net-down"));
    } else {
        set(&mut facts, IFACE, "UP, with an IPv4 address");
    }

    // The host end: the veth's peer in the host, else a host link in the same subnet.
    let (host_links, host_addrs) = (&w.host_links, &w.host_addrs);
    let peer = host_links.iter().find(|h| {
        c_link.kind == "veth"
            && c_link.link_netnsid.is_some()
            && c_link.link_netnsid == w.host_id
            && Some(h.index) == c_link.peer_index
    });
    let in_subnet_of = |h: &Link| {
        v4_of(host_addrs, h.index)
            .into_iter()
            .find(|a| same_subnet((c_ip, c_len), *a))
    };
    let host_end = match peer {
        // A port of a bridge (Docker's way): the bridge holds the gateway address.
        Some(p) if in_subnet_of(p).is_none() && p.master.is_some() => host_links
            .iter()
            .find(|b| Some(b.index) == p.master && in_subnet_of(b).is_some())
            .or(Some(p)),
        Some(p) => Some(p),
        None => host_links.iter().find(|h| in_subnet_of(h).is_some()),
    };
    let gateway = match host_end {
        None => {
            set(
                &mut facts,
                HOST_END,
                "none (the other end of the veth is not in the host)",
            );
            problem = problem.or(Some("net-no-host-end"));
            None
        }
        Some(h) => match in_subnet_of(h) {
            None => {
                set(&mut facts, HOST_END, "no address in the container's subnet");
                problem = problem.or(Some("net-no-host-address"));
                None
            }
            Some((gw, _)) => {
                judged.push_str(&format!("; host end: {} {gw}", h.name));
                if h.admin_up {
                    set(&mut facts, HOST_END, "UP, in the same subnet");
                } else {
                    set(&mut facts, HOST_END, "DOWN");
                    problem = problem.or(Some("net-host-down"));
                }
                Some(gw)
            }
        },
    };

    // The route inside, toward a host address outside the subnet.
    let target = host_target(host_addrs, &w.host_routes, (c_ip, c_len));
    let via: Vec<&Route> = w
        .routes
        .iter()
        .filter(|r| r.gateway.is_some() && (r.is_default() || target.is_some_and(|t| r.covers(t))))
        .collect();
    match (via.first(), gateway) {
        (None, _) => {
            set(&mut facts, ROUTE, "none beyond its own subnet");
            problem = problem.or(Some("net-no-route"));
        }
        (Some(r), Some(gw)) if r.gateway == Some(gw) => {
            set(&mut facts, ROUTE, "via the host end");
        }
        (Some(r), _) => {
            judged.push_str(&format!("; route: {}", r.describe()));
            set(
                &mut facts,
                ROUTE,
                "via an address that is not the host end's",
            );
            problem = problem.or(Some("net-no-route"));
        }
    }

    // NAT on the host.
    let (rules, rules_read): (&[NatRule], bool) = match &w.rules {
        Ok(r) => (r, true),
        Err(e) => {
            notes.push(format!(
                "the NAT rules could not be read from nftables: {e}"
            ));
            (&[], false)
        }
    };
    let host_end_name = host_end.map(|h| h.name.clone()).unwrap_or_default();
    let covering = rules.iter().find(|r| {
        r.is_source_nat()
            && r.hook.as_deref().map_or(true, |h| h == "postrouting")
            && r.covers(c_ip)
            // A rule only for packets leaving by the host end itself never applies here.
            && !r.out_interface.as_ref().is_some_and(|o| !o.negated && o.name == host_end_name)
    });
    match covering {
        Some(r) => {
            set(
                &mut facts,
                NAT,
                "a masquerade or SNAT rule covers the container's address",
            );
            judged.push_str(&format!(
                "; NAT: table {} {} chain {}: {}",
                r.family,
                r.table,
                r.chain,
                views::nat::nft_syntax(r)
            ));
        }
        None if !rules_read => {
            set(
                &mut facts,
                NAT,
                "could not be read from nftables (see the notes)",
            );
            problem = problem.or(Some("net-nat-unreadable"));
        }
        None if w.legacy_nat => {
            set(
                &mut facts,
                NAT,
                "none readable (legacy iptables has a nat table)",
            );
            problem = problem.or(Some("net-legacy-iptables"));
        }
        None => {
            set(&mut facts, NAT, "none covers the container's address");
            problem = problem.or(Some("net-no-nat"));
        }
    }

    // The proof: an echo from inside to a host address outside the subnet.
    match (target, &w.echo) {
        (Some(dst), Some((sent, echo))) if *sent == dst => {
            verify.push(format!("sudo nsenter -t {pid} -n ping -c 1 {dst}"));
            match echo {
                Echo::Reply { rtt_us } => {
                    set(&mut facts, REACH, "yes, an ICMP echo came back");
                    judged.push_str(&format!(
                        "; echo to {dst}: reply in {}",
                        views::millis(*rtt_us)
                    ));
                }
                Echo::Silent => {
                    set(&mut facts, REACH, "no reply");
                    judged.push_str(&format!("; echo to {dst}: no reply"));
                    problem = problem.or(Some("net-unreachable"));
                }
                Echo::Failed(cause) => {
                    set(&mut facts, REACH, "no (the echo could not be sent)");
                    judged.push_str(&format!("; echo to {dst}: {cause}"));
                    problem = problem.or(Some("net-unreachable"));
                }
            }
        }
        _ => {
            set(
                &mut facts,
                REACH,
                "no host address outside its subnet to try",
            );
            problem = problem.or(Some("net-no-target"));
        }
    }
    finish(facts, problem, judged, verify, notes)
}

#[cfg(test)]
#[path = "net_check_tests.rs"]
mod tests;
