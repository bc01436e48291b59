//! Bridges and their ports, made only by the tests (lesson 2b's learner makes them; its
//! check reads them back through [`Rtnl::link`]).

use super::{by_name, check_name};
use crate::kernel::net::rtnl::Rtnl;
use anyhow::{Context, Result};
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkInfo};
use netlink_packet_route::RouteNetlinkMessage;

impl Rtnl {
    /// `ip link add NAME type bridge`.
    pub fn create_bridge(&mut self, name: &str) -> Result<()> {
        check_name(name)?;
        let added = self.record_host_link(name)?;
        let mut m = by_name(name);
        m.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        let r = self.change(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL);
        if let Err(e) = r {
            self.unrecord(name, added);
            return Err(e).with_context(|| format!("creating bridge {name}"));
        }
        self.identify_host_link(name, added);
        Ok(())
    }

    /// `ip link set NAME master BRIDGE` (or `nomaster` with `None`).
    pub fn set_master(&mut self, name: &str, master: Option<&str>) -> Result<()> {
        check_name(name)?;
        let index = match master {
            Some(b) => self.index_of(b)?,
            None => 0,
        };
        let mut m = by_name(name);
        m.attributes.push(LinkAttribute::Controller(index));
        self.change(RouteNetlinkMessage::NewLink(m), 0)
            .with_context(|| {
                format!(
                    "plugging link {name} into {}",
                    master.unwrap_or("no bridge")
                )
            })
    }
}
