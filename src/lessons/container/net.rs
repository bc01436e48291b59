//! Lesson 5's network: step e (a veth pair into the container, addresses, a default
//! route, NAT on the host, an echo out) and the check of bonus exercise 5b.

use super::{find, Found};
use crate::kernel::container::{self, Spec};
use crate::kernel::net::nat::{self, NatRule};
use crate::kernel::net::route::{self, Route};
use crate::kernel::net::uplink::Uplink;
use crate::kernel::net::{in_subnet, ipv4_of as v4_of, same_subnet, Address, Link, Netns, Rtnl};
use crate::kernel::ns::{self, NsKind};
use crate::kernel::procs::ProcInfo;
use crate::kernel::trace;
use crate::lesson::{CheckArgs, Fact, LessonInfo, NoSteps, Observation, Stage};
use crate::views;
use crate::views::topology::{self, NsBox};
use anyhow::Result;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

/// `nslab check 5b`: lesson 5's texts, its own expected facts and check.
pub static BONUS: LessonInfo = LessonInfo {
    slug: "container-5b",
    parent: Some(&super::INFO),
    // Done by hand: no steps of its own (`nslab lesson` does not take it).
    steps: &NoSteps,
    title: "The container's own network (bonus)",
    summary: "the hand-built container gets its own network: veth, route, NAT; `check 5b`",
    expected_check: include_str!("../../../lessons/05-container/expected/check-5b.txt"),
    check: check_bonus,
    ..super::INFO_FIELDS
};

/// How long one echo waits for its reply (a loaded machine is slow, not broken).
const ECHO_TIMEOUT: Duration = Duration::from_secs(2);

/// A host address to reach from the container, outside its subnet: the one on the
/// interface of the host's default route first, else any global IPv4 address.
pub fn host_target(
    host_addrs: &[Address],
    host_routes: &[Route],
    subnet: (Ipv4Addr, u8),
) -> Option<Ipv4Addr> {
    let outside = |a: &&Address| match a.address {
        IpAddr::V4(ip) => a.scope == "global" && !in_subnet(ip, subnet.0, subnet.1),
        _ => false,
    };
    let default_dev = host_routes
        .iter()
        .find(|r| r.is_default())
        .map(|r| r.dev.clone());
    host_addrs
        .iter()
        .filter(outside)
        .find(|a| Some(&a.ifname) == default_dev.as_ref())
        .or_else(|| host_addrs.iter().find(|a| outside(a)))
        .and_then(|a| match a.address {
            IpAddr::V4(ip) => Some(ip),
            _ => None,
        })
}

// ---------------------------------------------------------------------------------------
// Step e.

/// Step e: a container with its own network namespace, then the seeds' bonus done for
/// real, one command at a time; everything removed at the end.
pub fn step_e(root: &Path, hostname: &str, stage: &mut Stage) -> Result<()> {
    stage.command(
        "sudo unshare --net --pid --fork --mount-proc sleep 1000 &   # its own network namespace",
    );
    let mut spec =
        Spec::new(root, &["sleep".to_string(), "1000".to_string()]).with_hostname(hostname);
    spec.network = true;
    let mut c = container::start(&spec)?;
    stage.syscalls();
    let pid = c.pid1;
    let me = std::process::id() as i32;
    let cols = vec![
        (
            "host".to_string(),
            container::interfaces_of(me)?,
            container::routes_of(me)?,
        ),
        (
            format!("container (PID {pid})"),
            container::interfaces_of(pid)?,
            container::routes_of(pid)?,
        ),
    ];
    stage.view(
        "Network interfaces and routes in each network namespace",
        &views::container::networks(&cols),
    );
    stage.say(
        "The container has only `lo` and no route: it cannot reach anything, nor be reached. \
         Now the cable: a veth pair, one end moved inside.",
    );
    let result = wire_and_show(pid, stage);
    let killed = c.kill();
    result.and(killed)
}

fn wire_and_show(pid: i32, stage: &mut Stage) -> Result<()> {
    let up = Uplink::create_pair(&format!("lesson-{}", std::process::id()))?;
    let i = up.info.clone();
    stage.command(&format!(
        "sudo ip link add {} type veth peer name {}",
        i.host_if, i.moved_name
    ));
    stage.syscalls();
    let mut inside = Netns::of_pid(pid)?;
    stage.command(&format!("sudo ip link set {} netns {pid}", i.moved_name));
    up.move_in(inside.fd())?;
    stage.syscalls();
    stage.command(&format!(
        "sudo nsenter -t {pid} -n ip link set {} name {}\n\
         sudo nsenter -t {pid} -n ip addr add {}/{} dev {}\n\
         sudo nsenter -t {pid} -n ip link set lo up\n\
         sudo nsenter -t {pid} -n ip link set {} up",
        i.moved_name, i.inside_if, i.container_ip, i.prefix_len, i.inside_if, i.inside_if
    ));
    up.configure_inside(inside.rtnl())?;
    stage.syscalls();
    stage.command(&format!(
        "sudo ip addr add {}/{} dev {}\nsudo ip link set {} up",
        i.host_ip, i.prefix_len, i.host_if, i.host_if
    ));
    up.configure_host()?;
    stage.syscalls();
    stage.command(&format!(
        "sudo nsenter -t {pid} -n ip route add default via {}",
        i.host_ip
    ));
    up.route_inside(inside.rtnl())?;
    stage.syscalls();
    stage.command(&format!(
        "sudo iptables -t nat -A POSTROUTING -s {}/{} ! -o {} -j MASQUERADE",
        i.subnet, i.prefix_len, i.host_if
    ));
    stage.say(&format!(
        "nslab asks nftables directly, in a table of its own (`table ip {}`), the same rule `iptables` \
         (iptables-nft) would add to the `ip nat` table:",
        i.table
    ));
    let nat_made = match up.masquerade() {
        Ok(()) => true,
        // Say why and go on without NAT: the echo below needs none (it stays on the host).
        Err(e) if nat::is_unsupported(&e) => {
            stage.syscalls();
            stage.say(&format!(
                "This kernel has no NAT through nftables ({}), so there is no rule to show: {}.",
                e.root_cause(),
                nat::UNSUPPORTED_FIX
            ));
            false
        }
        Err(e) => return Err(e),
    };
    stage.syscalls();
    if nat_made {
        let rules = nat::nat_rules()?;
        trace::take();
        stage.view(
            "NAT rules, read back from the kernel (nftables)",
            &views::nat::rules(&rules),
        );
    }
    up.wait_carrier(inside.rtnl())?;
    trace::take();
    // The drawing: the host's default-route interface and nslab's end, and the container.
    let mut host = Rtnl::open_here()?;
    let host_routes = route::routes_of(std::process::id() as i32)?;
    let default_dev = host_routes
        .iter()
        .find(|r| r.is_default())
        .map(|r| r.dev.clone());
    let keep = |l: &Link| l.name == i.host_if || Some(&l.name) == default_dev.as_ref();
    let host_links: Vec<Link> = host.links()?.into_iter().filter(|l| keep(l)).collect();
    let host_addrs_all = host.addresses()?;
    let host_addrs: Vec<Address> = host_addrs_all
        .iter()
        .filter(|a| host_links.iter().any(|l| l.index == a.index) && a.family == "inet")
        .cloned()
        .collect();
    let boxes = vec![
        NsBox {
            name: "host".into(),
            links: host_links,
            addresses: host_addrs,
        },
        NsBox {
            name: format!("container (PID {pid})"),
            links: inside.rtnl().links()?,
            addresses: inside.rtnl().addresses()?,
        },
    ];
    let own = crate::kernel::net::own_netns_fd()?;
    let id_of_container = host.netnsid_of(inside.fd())?;
    let id_of_host = inside.rtnl().netnsid_of(own.as_fd())?;
    trace::take();
    let netns_of = |b: usize, id: i32| match b {
        0 if Some(id) == id_of_container => Some(1),
        1 if Some(id) == id_of_host => Some(0),
        _ => None,
    };
    let cables = topology::cables(&boxes, &netns_of);
    stage.view(
        "What the kernel says, drawn",
        &topology::diagram(&boxes, &cables),
    );
    let forward = nat::ip_forward();
    let target = host_target(&host_addrs_all, &host_routes, (i.subnet, i.prefix_len));
    stage.say(&match forward {
        Some(true) => "net.ipv4.ip_forward = 1 on this host: it routes the container's packets on to other \
             machines, and the masquerade rule gives them the host's address as they leave."
            .to_string(),
        Some(false) => "net.ipv4.ip_forward = 0 on this host: the container reaches the host's own \
             addresses, but nothing beyond. `sudo sysctl -w net.ipv4.ip_forward=1` would let it out \
             (a host setting: nslab never changes it, that is yours to decide)."
            .to_string(),
        None => "net.ipv4.ip_forward could not be read.".to_string(),
    });
    match target {
        Some(dst) => {
            stage.command(&format!("sudo nsenter -t {pid} -n ping -c 1 {dst}"));
            let reply = inside.echo_tries(dst, 1, 3, ECHO_TIMEOUT)?;
            stage.syscalls();
            stage.say(&match reply {
                Some(r) => format!(
                    "{} bytes from {}: icmp_seq={} ttl={} time={}. The container reached {dst}, an address of \
                     the host outside the container's subnet {}/{}: through its default route, across the veth pair.",
                    r.bytes, r.from, r.seq, r.ttl, views::millis(r.rtt_us), i.subnet, i.prefix_len
                ),
                None => format!(
                    "No reply from {dst} within {ECHO_TIMEOUT:?} (three tries): something on this host drops it \
                     (a firewall rule?)."
                ),
            });
        }
        None => stage.say("The host has no IPv4 address outside the container's subnet to try."),
    }
    stage.command(&format!(
        "sudo ip link del {}\nsudo iptables -t nat -D POSTROUTING -s {}/{} ! -o {} -j MASQUERADE",
        i.host_if, i.subnet, i.prefix_len, i.host_if
    ));
    drop(inside);
    up.remove()?;
    stage.syscalls();
    stage.say(
        "Deleting one end of a veth pair deletes the other; deleting nslab's table removes its chain and rule. \
         The container is stopped next.",
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The check of bonus exercise 5b.

const FOUND: &str = "container made by unshare";
const NETNS: &str = "network namespace";
const IFACE: &str = "container interface";
const HOST_END: &str = "host end";
const ROUTE: &str = "route inside";
const NAT: &str = "NAT on the host";
const REACH: &str = "reaches the host beyond its subnet";

fn facts_with(found: &str) -> Vec<Fact> {
    let mut f = vec![Fact::new(FOUND, found)];
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

fn check_bonus(args: &CheckArgs) -> Result<Observation> {
    match find(args)? {
        Found::Nothing(obs) => Ok(Observation {
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
        }),
        Found::Init { init, notes, .. } => judge_bonus(&init, notes),
    }
}

/// The pieces of 5b seen on the live system, judged in order; the first missing one
/// names the hint.
fn judge_bonus(init: &ProcInfo, mut notes: Vec<String>) -> Result<Observation> {
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
    let forward = nat::ip_forward();
    notes.push(match forward {
        Some(true) => "net.ipv4.ip_forward = 1: the container's packets may also be routed beyond this host".into(),
        Some(false) => "net.ipv4.ip_forward = 0 (informational): the container reaches the host's own addresses only; \
             `sudo sysctl -w net.ipv4.ip_forward=1` would let it out (a host setting, yours to decide)"
            .into(),
        None => "net.ipv4.ip_forward: unreadable".into(),
    });
    let finish = |facts, problem, judged, verify, notes| {
        Ok(Observation {
            judged,
            facts,
            problem,
            verify,
            notes,
        })
    };

    // Its own network namespace.
    let host = ns::host_reference();
    let theirs = ns::link(pid, NsKind::Net).inode;
    let mine = ns::link(std::process::id() as i32, NsKind::Net).inode;
    let host_net = host.set.inode(NsKind::Net).or(mine);
    if theirs.is_none() || theirs == host_net || theirs == mine {
        set(&mut facts, NETNS, "the host's (no --net)");
        return finish(facts, Some("net-no-netns"), judged, verify, notes);
    }
    set(&mut facts, NETNS, "its own");

    // Its interface.
    let mut inside = Netns::of_pid(pid)?;
    let links = inside.rtnl().links()?;
    let addrs = inside.rtnl().addresses()?;
    trace::take();
    let others: Vec<&Link> = links.iter().filter(|l| l.kind != "loopback").collect();
    let with_addr: Vec<&&Link> = others
        .iter()
        .filter(|l| !v4_of(&addrs, l.index).is_empty())
        .collect();
    let chosen = with_addr
        .iter()
        .find(|l| l.admin_up)
        .or(with_addr.first())
        .map(|l| (**l).clone());
    let Some(c_link) = chosen else {
        let (v, p) = if others.is_empty() {
            ("none, only lo", "net-no-veth")
        } else {
            ("no IPv4 address", "net-no-address")
        };
        set(&mut facts, IFACE, v);
        return finish(facts, Some(p), judged, verify, notes);
    };
    let (c_ip, c_len) = v4_of(&addrs, c_link.index)[0];
    judged.push_str(&format!("; inside: {} {c_ip}/{c_len}", c_link.name));
    if !c_link.admin_up {
        set(&mut facts, IFACE, "DOWN");
        problem = problem.or(Some("net-down"));
    } else {
        set(&mut facts, IFACE, "UP, with an IPv4 address");
    }

    // The host end: the veth's peer in the host, else a host link in the same subnet.
    let mut host_rtnl = Rtnl::open_here()?;
    let host_links = host_rtnl.links()?;
    let host_addrs = host_rtnl.addresses()?;
    let own = crate::kernel::net::own_netns_fd()?;
    let host_id = inside.rtnl().netnsid_of(own.as_fd())?;
    trace::take();
    let peer = host_links.iter().find(|h| {
        c_link.kind == "veth"
            && c_link.link_netnsid.is_some()
            && c_link.link_netnsid == host_id
            && Some(h.index) == c_link.peer_index
    });
    let in_subnet_of = |h: &Link| {
        v4_of(&host_addrs, h.index)
            .into_iter()
            .find(|a| same_subnet((c_ip, c_len), *a))
    };
    let host_end = match peer {
        // A port of a bridge (Docker's way): the bridge holds the gateway address.
        Some(p) if in_subnet_of(p).is_none() && p.master.is_some() => host_links
            .iter()
            .find(|b| Some(b.index) == p.master && in_subnet_of(b).is_some())
            .or(Some(p))
            .cloned(),
        Some(p) => Some(p.clone()),
        None => host_links
            .iter()
            .find(|h| in_subnet_of(h).is_some())
            .cloned(),
    };
    let gateway = match &host_end {
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
    let host_routes = route::routes_of(std::process::id() as i32)?;
    let target = host_target(&host_addrs, &host_routes, (c_ip, c_len));
    let routes = route::routes_of(pid)?;
    let via: Vec<&Route> = routes
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
    let (rules, rules_read): (Vec<NatRule>, bool) = match nat::nat_rules() {
        Ok(r) => (r, true),
        Err(e) => {
            notes.push(format!(
                "the NAT rules could not be read from nftables: {e:#}"
            ));
            (Vec::new(), false)
        }
    };
    let host_end_name = host_end
        .as_ref()
        .map(|h| h.name.clone())
        .unwrap_or_default();
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
        None if nat::legacy_nat_table() => {
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
    match target {
        None => {
            set(
                &mut facts,
                REACH,
                "no host address outside its subnet to try",
            );
            problem = problem.or(Some("net-no-target"));
        }
        Some(dst) => {
            verify.push(format!("sudo nsenter -t {pid} -n ping -c 1 {dst}"));
            let reply = inside.echo_tries(dst, 1, 3, ECHO_TIMEOUT);
            trace::take();
            match reply {
                Ok(Some(r)) => {
                    set(&mut facts, REACH, "yes, an ICMP echo came back");
                    judged.push_str(&format!(
                        "; echo to {dst}: reply in {}",
                        views::millis(r.rtt_us)
                    ));
                }
                Ok(None) => {
                    set(&mut facts, REACH, "no reply");
                    judged.push_str(&format!("; echo to {dst}: no reply"));
                    problem = problem.or(Some("net-unreachable"));
                }
                Err(e) => {
                    set(&mut facts, REACH, "no (the echo could not be sent)");
                    judged.push_str(&format!("; echo to {dst}: {}", e.root_cause()));
                    problem = problem.or(Some("net-unreachable"));
                }
            }
        }
    }
    finish(facts, problem, judged, verify, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_of_5b_has_its_hint() {
        for id in [
            "nothing-found",
            "host-namespace",
            "net-no-netns",
            "net-no-veth",
            "net-no-address",
            "net-down",
            "net-no-host-end",
            "net-no-host-address",
            "net-host-down",
            "net-no-route",
            "net-no-nat",
            "net-nat-unreadable",
            "net-legacy-iptables",
            "net-no-target",
            "net-unreachable",
        ] {
            assert!(BONUS.hint(id).is_some(), "hints.md has no section {id}");
        }
        assert_eq!(BONUS.number, 5);
        assert_eq!(
            crate::lessons::bonus("5b").map(|b| b.slug),
            Some("container-5b")
        );
        assert!(crate::lessons::bonus("5").is_none());
    }

    fn addr(ifname: &str, index: u32, ip: [u8; 4], len: u8) -> Address {
        Address {
            index,
            ifname: ifname.into(),
            family: "inet".into(),
            address: IpAddr::V4(Ipv4Addr::from(ip)),
            prefix_len: len,
            scope: "global".into(),
        }
    }

    #[test]
    fn target_is_the_default_route_interfaces_address_outside_the_subnet() {
        let addrs = [
            addr("nslab7h", 9, [10, 203, 7, 1], 24),
            addr("docker0", 3, [172, 17, 0, 1], 16),
            addr("eth0", 2, [192, 0, 2, 2], 24),
        ];
        let routes = route::parse_proc_route(
            "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n\
             eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\n",
        );
        let sub = (Ipv4Addr::new(10, 203, 7, 2), 24);
        assert_eq!(
            host_target(&addrs, &routes, sub),
            Some(Ipv4Addr::new(192, 0, 2, 2))
        );
        assert_eq!(
            host_target(&addrs[..2], &[], sub),
            Some(Ipv4Addr::new(172, 17, 0, 1)),
            "without a default route: any address outside the subnet"
        );
        assert_eq!(host_target(&addrs[..1], &routes, sub), None);
    }
}
