//! IPv4 prefix arithmetic: masks, membership, and which addresses reach each other.

use super::Address;
use std::net::{IpAddr, Ipv4Addr};

/// The netmask of an IPv4 prefix of `len` bits (/0 has none).
pub fn prefix_mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    }
}

/// Is `ip` inside `net`/`len`?
pub fn in_subnet(ip: Ipv4Addr, net: Ipv4Addr, len: u8) -> bool {
    let mask = prefix_mask(len);
    u32::from(ip) & mask == u32::from(net) & mask
}

/// Two addresses that reach each other directly: each inside the other's subnet.
pub fn same_subnet(a: (Ipv4Addr, u8), b: (Ipv4Addr, u8)) -> bool {
    a.0 != b.0 && in_subnet(b.0, a.0, a.1) && in_subnet(a.0, b.0, b.1)
}

/// The global IPv4 addresses of interface `index`, with their prefix lengths.
pub fn ipv4_of(addrs: &[Address], index: u32) -> Vec<(Ipv4Addr, u8)> {
    addrs
        .iter()
        .filter(|a| a.index == index && a.scope == "global")
        .filter_map(|a| match a.address {
            IpAddr::V4(ip) => Some((ip, a.prefix_len)),
            _ => None,
        })
        .collect()
}
