//! Network tables: links like `ip link`, addresses like `ip addr`, counters before/after
//! like `/proc/net/dev`.

use super::table;
use crate::kernel::net::{Address, IfCounters, Link};

/// `ip -o link` as a table. `netns_names` maps a link-netnsid to the namespace it means.
pub fn links(links: &[Link], netns_name: &dyn Fn(i32) -> Option<String>) -> String {
    let rows: Vec<Vec<String>> = links
        .iter()
        .map(|l| {
            let peer = match (l.kind.as_str(), l.peer_index, l.link_netnsid) {
                ("veth", Some(p), Some(id)) => match netns_name(id) {
                    Some(n) => format!("if{p} in {n}"),
                    None => format!("if{p} in netnsid {id}"),
                },
                ("veth", Some(p), None) => format!("if{p} here"),
                _ => "-".into(),
            };
            vec![
                l.index.to_string(),
                l.name.clone(),
                l.kind.clone(),
                l.state_word().to_string(),
                format!("<{}>", l.flags.join(",")),
                l.mtu.to_string(),
                peer,
            ]
        })
        .collect();
    table::render(
        &["IDX", "NAME", "KIND", "STATE", "FLAGS", "MTU", "PEER"],
        &rows,
    )
}

/// `ip -o addr` as a table.
pub fn addresses(addrs: &[Address]) -> String {
    if addrs.is_empty() {
        return "(no addresses)\n".into();
    }
    let rows: Vec<Vec<String>> = addrs
        .iter()
        .map(|a| {
            vec![
                a.ifname.clone(),
                a.family.clone(),
                format!("{}/{}", a.address, a.prefix_len),
                a.scope.clone(),
            ]
        })
        .collect();
    table::render(&["DEV", "FAMILY", "ADDRESS", "SCOPE"], &rows)
}

/// Counters of the interfaces in `after`, with the change since `before`.
pub fn counters(before: &[IfCounters], after: &[IfCounters]) -> String {
    let rows: Vec<Vec<String>> = after
        .iter()
        .map(|a| {
            let b = before
                .iter()
                .find(|b| b.name == a.name)
                .cloned()
                .unwrap_or_default();
            let d = |x: u64, y: u64| format!("{x} (+{})", x.saturating_sub(y));
            vec![
                a.name.clone(),
                d(a.rx_packets, b.rx_packets),
                d(a.rx_bytes, b.rx_bytes),
                d(a.tx_packets, b.tx_packets),
                d(a.tx_bytes, b.tx_bytes),
            ]
        })
        .collect();
    table::render(
        &["IFACE", "RX PACKETS", "RX BYTES", "TX PACKETS", "TX BYTES"],
        &rows,
    )
}

#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use std::net::IpAddr;

    pub fn link(index: u32, name: &str, kind: &str, up: bool, peer: Option<(u32, i32)>) -> Link {
        let mut flags: Vec<String> = if kind == "loopback" {
            vec!["LOOPBACK".into()]
        } else {
            vec!["BROADCAST".into(), "MULTICAST".into()]
        };
        if up {
            flags.extend(["UP".to_string(), "LOWER_UP".to_string()]);
        }
        Link {
            index,
            name: name.into(),
            kind: kind.into(),
            flags,
            admin_up: up,
            lower_up: up,
            operstate: if up { "UP" } else { "DOWN" }.into(),
            mtu: if kind == "loopback" { 65536 } else { 1500 },
            mac: Some("02:00:00:00:00:01".into()),
            peer_index: peer.map(|p| p.0),
            link_netnsid: peer.map(|p| p.1),
            master: None,
        }
    }

    pub fn addr(index: u32, ifname: &str, ip: &str, prefix: u8) -> Address {
        let address: IpAddr = ip.parse().unwrap();
        Address {
            index,
            ifname: ifname.into(),
            family: if address.is_ipv4() { "inet" } else { "inet6" }.into(),
            address,
            prefix_len: prefix,
            scope: if ip.starts_with("127.") {
                "host"
            } else {
                "global"
            }
            .into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn a_new_namespace_and_a_veth_end() {
        let l = vec![
            link(1, "lo", "loopback", false, None),
            link(5, "nslab-red0", "veth", true, Some((4, 0))),
        ];
        let names = |id: i32| (id == 0).then(|| "nslab-blue".to_string());
        insta::assert_snapshot!(links(&l, &names));
    }

    #[test]
    fn addresses_and_counters() {
        let a = vec![
            addr(1, "lo", "127.0.0.1", 8),
            addr(5, "nslab-red0", "10.200.0.1", 24),
        ];
        insta::assert_snapshot!(addresses(&a));
        assert_eq!(addresses(&[]), "(no addresses)\n");
        let before = vec![IfCounters {
            name: "nslab-red0".into(),
            tx_packets: 3,
            tx_bytes: 266,
            ..Default::default()
        }];
        let after = vec![IfCounters {
            name: "nslab-red0".into(),
            rx_packets: 1,
            rx_bytes: 98,
            tx_packets: 4,
            tx_bytes: 364,
            ..Default::default()
        }];
        insta::assert_snapshot!(counters(&before, &after));
    }
}
