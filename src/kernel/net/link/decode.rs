//! rtnetlink messages turned into plain data: RTM_NEWLINK into [`Link`], RTM_NEWADDR
//! into [`Address`], with flag, state and scope words as `ip` prints them.

use super::{Address, Link};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkInfo, LinkMessage, State};

// The order iproute2 prints flags in (print_link_flags).
const FLAG_ORDER: [(LinkFlags, &str); 17] = [
    (LinkFlags::Loopback, "LOOPBACK"),
    (LinkFlags::Broadcast, "BROADCAST"),
    (LinkFlags::Pointopoint, "POINTOPOINT"),
    (LinkFlags::Multicast, "MULTICAST"),
    (LinkFlags::Noarp, "NOARP"),
    (LinkFlags::Allmulti, "ALLMULTI"),
    (LinkFlags::Promisc, "PROMISC"),
    (LinkFlags::Notrailers, "NOTRAILERS"),
    (LinkFlags::Debug, "DEBUG"),
    (LinkFlags::Dynamic, "DYNAMIC"),
    (LinkFlags::Automedia, "AUTOMEDIA"),
    (LinkFlags::Portsel, "PORTSEL"),
    (LinkFlags::Controller, "MASTER"),
    (LinkFlags::Port, "SLAVE"),
    (LinkFlags::Up, "UP"),
    (LinkFlags::LowerUp, "LOWER_UP"),
    (LinkFlags::Dormant, "DORMANT"),
];

pub(super) fn flag_words(f: LinkFlags) -> Vec<String> {
    let mut out = Vec::new();
    // ip prints NO-CARRIER first for a link switched on without a carrier.
    if f.contains(LinkFlags::Up) && !f.contains(LinkFlags::Running) {
        out.push("NO-CARRIER".to_string());
    }
    out.extend(
        FLAG_ORDER
            .iter()
            .filter(|(b, _)| f.contains(*b))
            .map(|(_, n)| n.to_string()),
    );
    out
}

fn state_name(s: State) -> String {
    match s {
        State::Unknown => "UNKNOWN".into(),
        State::NotPresent => "NOTPRESENT".into(),
        State::Down => "DOWN".into(),
        State::LowerLayerDown => "LOWERLAYERDOWN".into(),
        State::Testing => "TESTING".into(),
        State::Dormant => "DORMANT".into(),
        State::Up => "UP".into(),
        other => format!("{other}").to_uppercase(),
    }
}

fn mac_string(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Plain data from one RTM_NEWLINK message.
pub(super) fn link_from_message(m: &LinkMessage) -> Link {
    let mut link = Link {
        index: m.header.index,
        name: String::new(),
        kind: String::new(),
        flags: flag_words(m.header.flags),
        admin_up: m.header.flags.contains(LinkFlags::Up),
        lower_up: m.header.flags.contains(LinkFlags::LowerUp),
        operstate: "UNKNOWN".into(),
        mtu: 0,
        mac: None,
        peer_index: None,
        link_netnsid: None,
        master: None,
    };
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => link.name = n.clone(),
            LinkAttribute::Mtu(v) => link.mtu = *v,
            LinkAttribute::Address(b) => link.mac = Some(mac_string(b)),
            LinkAttribute::OperState(s) => link.operstate = state_name(*s),
            LinkAttribute::Link(i) => link.peer_index = Some(*i),
            LinkAttribute::LinkNetNsId(i) => link.link_netnsid = Some(*i),
            LinkAttribute::Controller(i) => link.master = Some(*i),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        link.kind = k.to_string();
                    }
                }
            }
            _ => {}
        }
    }
    if link.kind.is_empty() {
        link.kind = if m.header.flags.contains(LinkFlags::Loopback) {
            "loopback"
        } else {
            "device"
        }
        .into();
    }
    link
}

fn scope_name(s: AddressScope) -> String {
    match s {
        AddressScope::Universe => "global".into(),
        AddressScope::Site => "site".into(),
        AddressScope::Link => "link".into(),
        AddressScope::Host => "host".into(),
        AddressScope::Nowhere => "nowhere".into(),
        AddressScope::Other(n) => n.to_string(),
        _ => "other".into(),
    }
}

pub(super) fn address_from_message(m: &AddressMessage, links: &[Link]) -> Option<Address> {
    let mut local = None;
    let mut address = None;
    let mut label = None;
    for a in &m.attributes {
        match a {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            AddressAttribute::Label(l) => label = Some(l.clone()),
            _ => {}
        }
    }
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS the peer's on point-to-point.
    let ip = local.or(address)?;
    let ifname = links
        .iter()
        .find(|l| l.index == m.header.index)
        .map(|l| l.name.clone())
        .or(label)
        .unwrap_or_else(|| format!("if{}", m.header.index));
    Some(Address {
        index: m.header.index,
        ifname,
        family: if ip.is_ipv4() { "inet" } else { "inet6" }.into(),
        address: ip,
        prefix_len: m.header.prefix_len,
        scope: scope_name(m.header.scope),
    })
}
