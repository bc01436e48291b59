//! IPv4 routes: added over rtnetlink (`ip route add default via GW`), read from
//! `/proc/PID/net/route` (the routing table of the network namespace PID lives in).

use super::rtnl::Rtnl;
use anyhow::{Context, Result};
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// One IPv4 route, as `ip -4 route` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub dev: String,
    pub destination: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Option<Ipv4Addr>,
}

impl Route {
    pub fn is_default(&self) -> bool {
        self.prefix_len == 0
    }

    /// Does this route lead to `ip`?
    pub fn covers(&self, ip: Ipv4Addr) -> bool {
        super::in_subnet(ip, self.destination, self.prefix_len)
    }

    /// `default via 10.0.0.1 dev eth0`, `10.0.0.0/24 dev eth0`.
    pub fn describe(&self) -> String {
        let dst = if self.is_default() {
            "default".to_string()
        } else {
            format!("{}/{}", self.destination, self.prefix_len)
        };
        match self.gateway {
            Some(gw) => format!("{dst} via {gw} dev {}", self.dev),
            None => format!("{dst} dev {}", self.dev),
        }
    }
}

fn hex_ip(s: &str) -> Option<Ipv4Addr> {
    // /proc/net/route prints addresses as the hex of the in-memory (network order) u32,
    // read as a host-order number: little-endian bytes on x86.
    let v = u32::from_str_radix(s, 16).ok()?;
    Some(Ipv4Addr::from(v.to_ne_bytes()))
}

/// Routes from /proc/net/route text (a header line, then `Iface Destination Gateway
/// Flags RefCnt Use Metric Mask ...`, addresses in hex).
pub fn parse_proc_route(text: &str) -> Vec<Route> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            let gw = hex_ip(f[2])?;
            let mask = hex_ip(f[7])?;
            Some(Route {
                dev: f[0].to_string(),
                destination: hex_ip(f[1])?,
                prefix_len: u32::from(mask).leading_ones() as u8,
                gateway: (!gw.is_unspecified()).then_some(gw),
            })
        })
        .collect()
}

/// The IPv4 routes of the network namespace `pid` is in.
pub fn routes_of(pid: i32) -> Result<Vec<Route>> {
    let path = format!("/proc/{pid}/net/route");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    Ok(parse_proc_route(&text))
}

impl Rtnl {
    /// `ip route add default via GATEWAY`.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> Result<()> {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Boot;
        m.header.scope = RouteScope::Universe;
        m.header.kind = RouteType::Unicast;
        m.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        self.change(RouteNetlinkMessage::NewRoute(m), NLM_F_CREATE | NLM_F_EXCL)
            .with_context(|| format!("adding the default route via {gateway}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_net_route() {
        // This machine's /proc/net/route, and a container's after `ip route add default via`.
        let text =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
";
        let r = parse_proc_route(text);
        assert_eq!(r.len(), 2);
        assert!(r[0].is_default());
        assert_eq!(r[0].gateway, Some(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(r[0].describe(), "default via 192.0.2.1 dev eth0");
        assert_eq!(r[1].describe(), "192.0.2.0/24 dev eth0");
        assert!(r[1].covers(Ipv4Addr::new(192, 0, 2, 77)));
        assert!(!r[1].covers(Ipv4Addr::new(10, 0, 0, 1)));
    }
}
