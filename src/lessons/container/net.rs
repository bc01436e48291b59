//! Lesson 5's network: step f (a veth pair into the container, addresses, a default
//! route, NAT on the host, an echo out) and bonus 5b's
//! declaration (its check is net_check.rs).

use super::net_check::BonusCheck;
use crate::kernel::container::{self, Spec};
use crate::kernel::net::nat;
use crate::kernel::net::route::{self, Route};
use crate::kernel::net::uplink::Uplink;
use crate::kernel::net::{in_subnet, Address, Link, Netns, Rtnl};
use crate::kernel::trace;
use crate::lesson::{run_check, LessonInfo, NoSteps, Stage};
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
    check: run_check::<BonusCheck>,
    needs_root: true,
    ..super::INFO_FIELDS
};

/// How long one echo waits for its reply (a loaded machine is slow, not broken).
pub(super) const ECHO_TIMEOUT: Duration = Duration::from_secs(2);

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
// Step f.

/// Step f: a container with its own network namespace, then the seeds' bonus done for
/// real, one command at a time; everything removed at the end.
pub fn step_f(root: &Path, hostname: &str, stage: &mut Stage) -> Result<()> {
    stage.command(
        "sudo unshare --net --pid --fork --mount-proc sleep 1000 &   # its own network namespace",
    );
    let spec = Spec::new(root, &["sleep".to_string(), "1000".to_string()]).with_hostname(hostname);
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
