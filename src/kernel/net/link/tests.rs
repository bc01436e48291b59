//! The pure parts of links tested: messages decoded, names checked.

use super::decode::{flag_words, link_from_message};
use super::*;
use netlink_packet_route::link::{
    InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage, State,
};

#[test]
fn flags_print_in_iproute2_order() {
    let f = LinkFlags::Up
        | LinkFlags::LowerUp
        | LinkFlags::Running
        | LinkFlags::Broadcast
        | LinkFlags::Multicast;
    assert_eq!(flag_words(f), ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"]);
    // Up without a carrier: a veth whose peer is still down.
    let f = LinkFlags::Up | LinkFlags::Broadcast | LinkFlags::Multicast;
    assert_eq!(
        flag_words(f),
        ["NO-CARRIER", "BROADCAST", "MULTICAST", "UP"]
    );
    assert_eq!(flag_words(LinkFlags::Loopback), ["LOOPBACK"]);
}

#[test]
fn a_veth_message_becomes_a_link() {
    let mut m = LinkMessage::default();
    m.header.index = 7;
    m.header.flags = LinkFlags::Broadcast | LinkFlags::Multicast;
    m.attributes.push(LinkAttribute::IfName("nslab-a0".into()));
    m.attributes.push(LinkAttribute::Mtu(1500));
    m.attributes
        .push(LinkAttribute::Address(vec![0x02, 0, 0, 0, 0, 0x0a]));
    m.attributes.push(LinkAttribute::OperState(State::Down));
    m.attributes.push(LinkAttribute::Link(6));
    m.attributes.push(LinkAttribute::LinkNetNsId(0));
    m.attributes
        .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
            InfoKind::Veth,
        )]));
    let l = link_from_message(&m);
    assert_eq!(l.name, "nslab-a0");
    assert_eq!(l.kind, "veth");
    assert_eq!(l.mac.as_deref(), Some("02:00:00:00:00:0a"));
    assert_eq!((l.peer_index, l.link_netnsid), (Some(6), Some(0)));
    assert_eq!(l.operstate, "DOWN");
    assert_eq!(l.state_word(), "DOWN");
}

#[test]
fn lo_without_kind_is_loopback() {
    let mut m = LinkMessage::default();
    m.header.index = 1;
    m.header.flags = LinkFlags::Loopback;
    m.attributes.push(LinkAttribute::IfName("lo".into()));
    assert_eq!(link_from_message(&m).kind, "loopback");
}

#[test]
fn rejects_bad_interface_names_before_asking_the_kernel() {
    assert!(check_name("a-name-that-is-too-long").is_err());
    assert!(check_name("").is_err());
    assert!(check_name("nslab-veth0").is_ok());
}
