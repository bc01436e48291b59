//! What [`Rtnl`] reads about links: every link, one by name, every address, and the id
//! this namespace knows another by.

use super::decode::{address_from_message, link_from_message};
use super::{by_name, check_name, no_such_link, Address, Link};
use crate::kernel::net::rtnl::{errno_of, Rtnl};
use anyhow::{bail, Result};
use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::LinkMessage;
use netlink_packet_route::RouteNetlinkMessage;
use nix::errno::Errno;
use std::os::fd::{AsRawFd, BorrowedFd};

impl Rtnl {
    /// Every link in this socket's namespace (`ip link`), by index.
    pub fn links(&mut self) -> Result<Vec<Link>> {
        let msgs = self.dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))?;
        let mut links: Vec<Link> = msgs
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(link_from_message(l)),
                _ => None,
            })
            .collect();
        links.sort_by_key(|l| l.index);
        Ok(links)
    }

    /// One link by name; `None` when there is no such link here.
    pub fn link(&mut self, name: &str) -> Result<Option<Link>> {
        check_name(name)?;
        match self.get(RouteNetlinkMessage::GetLink(by_name(name))) {
            Ok(msgs) => Ok(msgs.iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(link_from_message(l)),
                _ => None,
            })),
            Err(e) if errno_of(&e) == Some(Errno::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every address in this namespace (`ip addr`), in link order.
    pub fn addresses(&mut self) -> Result<Vec<Address>> {
        let links = self.links()?;
        let msgs = self.dump(RouteNetlinkMessage::GetAddress(AddressMessage::default()))?;
        let mut out: Vec<Address> = msgs
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => address_from_message(a, &links),
                _ => None,
            })
            .collect();
        out.sort_by_key(|a| (a.index, a.family.clone()));
        Ok(out)
    }

    pub(super) fn index_of(&mut self, name: &str) -> Result<u32> {
        match self.link(name)? {
            Some(l) => Ok(l.index),
            None => bail!("{}", no_such_link(name, self.netns())),
        }
    }

    /// The id this namespace knows another namespace by (the `link-netnsid` of a veth
    /// whose peer lives there); `None` if it has not been given one.
    pub fn netnsid_of(&mut self, other_netns_fd: BorrowedFd<'_>) -> Result<Option<i32>> {
        use netlink_packet_route::nsid::{NsidAttribute, NsidMessage};
        let mut m = NsidMessage::default();
        m.attributes
            .push(NsidAttribute::Fd(other_netns_fd.as_raw_fd() as u32));
        let msgs = self.get(RouteNetlinkMessage::GetNsId(m))?;
        for msg in msgs {
            if let RouteNetlinkMessage::NewNsId(n) = msg {
                for a in n.attributes {
                    if let NsidAttribute::Id(id) = a {
                        return Ok(if id < 0 { None } else { Some(id) });
                    }
                }
            }
        }
        Ok(None)
    }
}
