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
mod tests {
    use super::*;

    #[test]
    fn no_addresses_say_so() {
        assert_eq!(addresses(&[]), "(no addresses)\n");
    }
}
