//! What [`Rtnl`] changes on links: veth pairs made, links moved, renamed, switched on or
//! off and deleted, IPv4 addresses added.

use super::{by_name, check_name};
use crate::kernel::net::rtnl::{errno_of, Rtnl};
use anyhow::{bail, Context, Result};
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use nix::errno::Errno;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

impl Rtnl {
    /// `ip link add NAME type veth peer name PEER`.
    pub fn create_veth(&mut self, name: &str, peer: &str) -> Result<()> {
        check_name(name)?;
        check_name(peer)?;
        let added = (self.record_host_link(name)?, self.record_host_link(peer)?);
        let mut m = by_name(name);
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(by_name(peer)))),
        ]));
        let r = self.change(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL);
        if let Err(e) = r {
            self.unrecord(name, added.0);
            self.unrecord(peer, added.1);
            return Err(e).with_context(|| format!("creating veth pair {name} <-> {peer}"));
        }
        self.identify_host_link(name, added.0);
        self.identify_host_link(peer, added.1);
        Ok(())
    }

    /// `ip link set NAME netns NS`: move a link into the namespace `netns_fd` refers to.
    pub fn move_to_netns(&mut self, name: &str, netns_fd: BorrowedFd<'_>) -> Result<()> {
        check_name(name)?;
        let mut m = by_name(name);
        m.attributes
            .push(LinkAttribute::NetNsFd(netns_fd.as_raw_fd()));
        self.change(RouteNetlinkMessage::NewLink(m), 0)
            .with_context(|| format!("moving link {name} into another network namespace"))?;
        // It now lives and dies with that namespace.
        self.forget_host_link(name);
        Ok(())
    }

    /// `ip link set NAME name NEW` (the link must be down).
    pub fn rename(&mut self, name: &str, new: &str) -> Result<()> {
        check_name(new)?;
        let index = self.index_of(name)?;
        let mut m = by_name(new);
        m.header.index = index;
        self.change(RouteNetlinkMessage::NewLink(m), 0)
            .with_context(|| format!("renaming link {name} to {new}"))
    }

    /// `ip link set NAME up` / `down`.
    pub fn set_up(&mut self, name: &str, up: bool) -> Result<()> {
        check_name(name)?;
        let mut m = by_name(name);
        m.header.flags = if up {
            LinkFlags::Up
        } else {
            LinkFlags::empty()
        };
        m.header.change_mask = LinkFlags::Up;
        self.change(RouteNetlinkMessage::NewLink(m), 0)
            .with_context(|| format!("setting link {name} {}", if up { "up" } else { "down" }))
    }

    /// `ip addr add ADDR/PREFIX dev NAME`.
    pub fn add_ipv4(&mut self, name: &str, addr: Ipv4Addr, prefix_len: u8) -> Result<()> {
        if prefix_len > 32 {
            bail!("/{prefix_len} is not an IPv4 prefix length (0-32)");
        }
        let index = self.index_of(name)?;
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.prefix_len = prefix_len;
        m.header.index = index;
        m.header.scope = AddressScope::Universe;
        m.attributes.push(AddressAttribute::Local(IpAddr::V4(addr)));
        m.attributes
            .push(AddressAttribute::Address(IpAddr::V4(addr)));
        self.change(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .with_context(|| format!("adding {addr}/{prefix_len} to {name}"))
    }

    /// `ip link del NAME`. Returns false when it was already gone.
    pub fn delete(&mut self, name: &str) -> Result<bool> {
        check_name(name)?;
        match self.change(RouteNetlinkMessage::DelLink(by_name(name)), 0) {
            Ok(()) => {
                self.forget_host_link(name);
                Ok(true)
            }
            Err(e) if errno_of(&e) == Some(Errno::ENODEV) => {
                self.forget_host_link(name);
                Ok(false)
            }
            Err(e) => Err(e).with_context(|| format!("deleting link {name}")),
        }
    }
}
