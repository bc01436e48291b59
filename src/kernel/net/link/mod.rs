//! Links and addresses, read and changed over rtnetlink: what `ip link` and `ip addr`
//! show and do. This file holds the plain data and the names requests are built around.
//!
//! - [`subnet`]: IPv4 prefix arithmetic on those addresses.
//! - [`decode`]: rtnetlink messages turned into [`Link`] and [`Address`].
//! - [`read`]: what [`Rtnl`](super::Rtnl) reads (`ip link`, `ip addr`).
//! - [`ledger`]: host links recorded before they exist, forgotten once gone.
//! - [`change`]: what [`Rtnl`](super::Rtnl) changes (`ip link add`/`set`/`del`, `ip addr add`).

#[cfg(test)]
mod bridge;
mod change;
mod decode;
mod ledger;
mod read;
mod subnet;
#[cfg(test)]
mod tests;

pub use subnet::{in_subnet, ipv4_of, prefix_mask, same_subnet};

use anyhow::{bail, Result};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// One network interface, as `ip -o link` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `veth`, `bridge`, `loopback`, another rtnetlink kind, or `device` (real hardware).
    pub kind: String,
    /// The IFF_* flags as `ip` prints them between `<` and `>`.
    pub flags: Vec<String>,
    /// IFF_UP: switched on (`ip link set NAME up`).
    pub admin_up: bool,
    /// IFF_LOWER_UP: the carrier is there (a veth's peer is up too).
    pub lower_up: bool,
    /// The kernel's operational state: UP, DOWN, UNKNOWN (loopback), LOWERLAYERDOWN ...
    pub operstate: String,
    pub mtu: u32,
    pub mac: Option<String>,
    /// IFLA_LINK: for a veth, its peer's ifindex (in the peer's namespace).
    pub peer_index: Option<u32>,
    /// IFLA_LINK_NETNSID: the peer lives in another namespace, known here by this id.
    pub link_netnsid: Option<i32>,
    /// IFLA_MASTER: the bridge it is plugged into.
    pub master: Option<u32>,
}

impl Link {
    /// UP or DOWN in the learner's sense: is the link switched on?
    pub fn state_word(&self) -> &'static str {
        if self.admin_up {
            "UP"
        } else {
            "DOWN"
        }
    }
}

/// One address, as `ip -o addr` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub index: u32,
    pub ifname: String,
    /// `inet` or `inet6`.
    pub family: String,
    pub address: IpAddr,
    pub prefix_len: u8,
    /// `host`, `link` or `global`.
    pub scope: String,
}

fn by_name(name: &str) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.to_string()));
    m
}

fn check_name(name: &str) -> Result<()> {
    // IFNAMSIZ is 16 with the terminating NUL.
    if name.is_empty()
        || name.len() > 15
        || name.contains('/')
        || name.contains(char::is_whitespace)
    {
        bail!("{name:?} is not a valid interface name (1-15 characters, no '/' or spaces)");
    }
    Ok(())
}

fn no_such_link(name: &str, netns: Option<&str>) -> String {
    match netns {
        Some(ns) => format!("there is no link {name} in network namespace {ns}"),
        None => format!("there is no link {name} in nslab's network namespace"),
    }
}
