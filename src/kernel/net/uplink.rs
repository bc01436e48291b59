//! A container's way out: a veth pair between the host and the container's network
//! namespace, a /24 of 10.203.0.0/16 with the host end as gateway, a default route
//! inside, and NAT (masquerade) on the host for the subnet. What Docker's bridge network
//! does, minus the bridge.
//!
//! ```text
//! container netns              host
//!   eth0 10.203.N.2/24 <─veth─> nslab<N>h 10.203.N.1/24 ──(masquerade)──> host's uplink
//!   default via 10.203.N.1
//! ```
//!
//! The subnet is chosen per run among those no host address or route touches; the host
//! end's name carries the subnet number, so two runs racing for the same subnet are
//! settled by the kernel (EEXIST on the link), and the loser tries the next one.

use super::nat;
use super::rtnl::{errno_of, Rtnl};
use crate::ledger::{self, Resource};
use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

/// The /16 nslab takes container subnets from.
pub const POOL: Ipv4Addr = Ipv4Addr::new(10, 203, 0, 0);
pub const PREFIX_LEN: u8 = 24;
/// The container end's name inside its namespace.
pub const INSIDE_NAME: &str = "eth0";

/// What [`Uplink::connect`] made (plain data, for views and tests).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UplinkInfo {
    /// The veth end left in the host namespace.
    pub host_if: String,
    /// The name the other end had in the host before it was moved.
    pub moved_name: String,
    /// Its name inside the container.
    pub inside_if: String,
    pub subnet: Ipv4Addr,
    pub prefix_len: u8,
    pub host_ip: Ipv4Addr,
    pub container_ip: Ipv4Addr,
    /// The nftables table (family ip) holding the masquerade rule.
    pub table: String,
}

/// A connected container network; removed on drop (or with [`Uplink::remove`]).
pub struct Uplink {
    pub info: UplinkInfo,
    removed: bool,
}

fn overlaps(a: Ipv4Addr, alen: u8, b: Ipv4Addr, blen: u8) -> bool {
    super::in_subnet(a, b, alen.min(blen))
}

/// Subnet numbers N (10.203.N.0/24) that no host address or route (other than a
/// default route) touches, starting at `start`.
pub fn free_subnets(
    host_addrs: &[(Ipv4Addr, u8)],
    host_routes: &[(Ipv4Addr, u8)],
    start: u8,
) -> Vec<u8> {
    (0..=255u16)
        .map(|i| (u16::from(start) + i) as u8)
        .filter(|n| {
            let net = subnet(*n);
            !host_addrs
                .iter()
                .chain(host_routes.iter().filter(|(_, l)| *l > 0))
                .any(|(a, l)| overlaps(*a, *l, net, PREFIX_LEN))
        })
        .collect()
}

pub fn subnet(n: u8) -> Ipv4Addr {
    let o = POOL.octets();
    Ipv4Addr::new(o[0], o[1], n, 0)
}

fn host_of(n: u8, last: u8) -> Ipv4Addr {
    let o = POOL.octets();
    Ipv4Addr::new(o[0], o[1], n, last)
}

/// The host end's name for subnet N: `nslab<N>h` (at most 9 characters).
pub fn host_if_name(n: u8) -> String {
    format!("nslab{n}h")
}

fn moved_if_name(n: u8) -> String {
    format!("nslab{n}c")
}

impl Uplink {
    /// Wire the network namespace `nsfd` (where `inside` is a netlink socket) to the host,
    /// every step below in order. `run` names the NAT table (`nslab-<run>`). Every object
    /// is on the ledger before it exists; on an error, what was made is removed again.
    pub fn connect(run: &str, inside: &mut Rtnl, nsfd: BorrowedFd<'_>) -> Result<Uplink> {
        // On an error `up` is dropped: the host end (and with it the pair) and the table go.
        let up = Uplink::create_pair(run)?;
        up.move_in(nsfd)?;
        up.configure_inside(inside)?;
        up.configure_host()?;
        up.route_inside(inside)?;
        up.masquerade()?;
        up.wait_carrier(inside)?;
        Ok(up)
    }

    /// Choose a free subnet and create the veth pair there, both ends in the host:
    /// `ip link add nslab<N>h type veth peer name nslab<N>c`.
    pub fn create_pair(run: &str) -> Result<Uplink> {
        let mut host = Rtnl::open_here()?;
        let addrs: Vec<(Ipv4Addr, u8)> = host
            .addresses()?
            .iter()
            .filter_map(|a| match a.address {
                std::net::IpAddr::V4(ip) => Some((ip, a.prefix_len)),
                _ => None,
            })
            .collect();
        let routes: Vec<(Ipv4Addr, u8)> = super::route::routes_of(std::process::id() as i32)?
            .iter()
            .map(|r| (r.destination, r.prefix_len))
            .collect();
        let start = (std::process::id() % 256) as u8;
        for n in free_subnets(&addrs, &routes, start) {
            match host.create_veth(&host_if_name(n), &moved_if_name(n)) {
                Ok(()) => {
                    return Ok(Uplink {
                        info: UplinkInfo {
                            host_if: host_if_name(n),
                            moved_name: moved_if_name(n),
                            inside_if: INSIDE_NAME.into(),
                            subnet: subnet(n),
                            prefix_len: PREFIX_LEN,
                            host_ip: host_of(n, 1),
                            container_ip: host_of(n, 2),
                            table: format!("nslab-{run}"),
                        },
                        removed: false,
                    })
                }
                // Another run (or a dead one's leftover) has this subnet: the next one.
                Err(e) if errno_of(&e) == Some(Errno::EEXIST) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(crate::error::Problem::environment(
            format!("no free /24 left in {POOL}/16 for a container network"),
            "each one is held by an nslab<N>h link on the host: `sudo nslab cleanup` removes those of runs that ended",
        ))
    }

    /// `ip link set nslab<N>c netns PID`.
    pub fn move_in(&self, nsfd: BorrowedFd<'_>) -> Result<()> {
        Rtnl::open_here()?.move_to_netns(&self.info.moved_name, nsfd)
    }

    /// Inside: rename the moved end to eth0, address it, switch it and lo on.
    pub fn configure_inside(&self, inside: &mut Rtnl) -> Result<()> {
        let i = &self.info;
        inside.rename(&i.moved_name, &i.inside_if)?;
        inside.add_ipv4(&i.inside_if, i.container_ip, i.prefix_len)?;
        inside.set_up("lo", true)?;
        inside.set_up(&i.inside_if, true)
    }

    /// The host end: `ip addr add 10.203.N.1/24 dev nslab<N>h`, `ip link set ... up`.
    pub fn configure_host(&self) -> Result<()> {
        let i = &self.info;
        let mut host = Rtnl::open_here()?;
        host.add_ipv4(&i.host_if, i.host_ip, i.prefix_len)?;
        host.set_up(&i.host_if, true)
    }

    /// Inside: `ip route add default via 10.203.N.1`.
    pub fn route_inside(&self, inside: &mut Rtnl) -> Result<()> {
        inside.add_default_route(self.info.host_ip)
    }

    /// The NAT table: masquerade what comes from the subnet and leaves by another link.
    pub fn masquerade(&self) -> Result<()> {
        let i = &self.info;
        nat::create_masquerade_table(&i.table, i.subnet, i.prefix_len, &i.host_if)
    }

    /// Wait until the container's end has its carrier (packets sent before are dropped).
    pub fn wait_carrier(&self, inside: &mut Rtnl) -> Result<()> {
        wait_carrier(inside, &self.info.inside_if, Duration::from_secs(10))
    }

    /// Delete the NAT table and the host end (the kernel deletes its peer with it).
    pub fn remove(mut self) -> Result<()> {
        self.removed = true;
        self.remove_all()
    }

    fn remove_all(&self) -> Result<()> {
        let t = nat::delete_table(&self.info.table);
        let l = super::delete_link(&self.info.host_if);
        ledger::forget(&Resource::NftTable {
            family: "ip".into(),
            name: self.info.table.clone(),
        });
        t.map(|_| ()).and(l)
    }
}

impl Drop for Uplink {
    fn drop(&mut self) {
        if !self.removed {
            let _ = self.remove_all();
        }
    }
}

/// Wait until link `dev` has its carrier and is operationally UP: packets sent before
/// are dropped.
pub fn wait_carrier(rtnl: &mut Rtnl, dev: &str, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        if let Some(l) = rtnl.link(dev)? {
            if l.lower_up && l.operstate == "UP" {
                return Ok(());
            }
        }
        if start.elapsed() > timeout {
            bail!(
                "{dev} did not come up within {} s (its link is not UP with a carrier; `ip link show {dev}` inside says more)",
                timeout.as_secs()
            );
        }
        super::super::sys::sleep(Duration::from_millis(1)).context("waiting for the carrier")?;
    }
}

/// A container's own network namespace, made and wired to the host before the container
/// starts (`nslab run --net`): the container joins it, so its command finds the network
/// ready. Born in a helper child, so nslab itself never changes namespace.
pub struct RunNetwork {
    nsfd: std::os::fd::OwnedFd,
    uplink: Uplink,
}

impl RunNetwork {
    /// A new network namespace with a veth pair into it and NAT on the host; `run` names
    /// the NAT table and the host end.
    pub fn create(run: &str) -> Result<RunNetwork> {
        use std::os::fd::AsFd;
        let super::born::Born { netlink, nsfd, .. } = super::born::helper(None)?;
        let mut inside = Rtnl::from_fd(netlink, Some("container".into()))?;
        let uplink = Uplink::connect(run, &mut inside, nsfd.as_fd())?;
        Ok(RunNetwork { nsfd, uplink })
    }

    /// The namespace, for the container to join (open until [`RunNetwork::remove`]).
    pub fn nsfd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.nsfd)
    }

    /// Remove the NAT table and the veth pair; the namespace goes with its last process
    /// and nslab's descriptor of it.
    pub fn remove(self) -> Result<()> {
        let RunNetwork { nsfd, uplink } = self;
        drop(nsfd);
        uplink.remove()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_subnets_the_host_uses() {
        let addrs = [
            (Ipv4Addr::new(192, 0, 2, 2), 24),
            (Ipv4Addr::new(10, 203, 5, 1), 24),
        ];
        let routes = [
            (Ipv4Addr::new(0, 0, 0, 0), 0),
            (Ipv4Addr::new(10, 203, 6, 0), 23),
        ];
        let free = free_subnets(&addrs, &routes, 4);
        assert_eq!(&free[..2], &[4, 8], "5 has an address, 6 and 7 a route");
        assert_eq!(free.len(), 253);
        // A host route over the whole pool leaves nothing.
        assert!(free_subnets(&[], &[(Ipv4Addr::new(10, 0, 0, 0), 8)], 0).is_empty());
        assert_eq!(host_if_name(255).len(), 9);
    }
}
