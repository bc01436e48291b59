//! nslab's own table: made with its chain and rule in one batch, on the ledger first;
//! deleted by name, which takes its chain and rule with it.

use super::build::masquerade_expressions;
use super::socket::Nfnl;
use super::wire::*;
use crate::kernel::net::prefix_mask;
use crate::ledger::{self, Resource};
use anyhow::{bail, Result};
use nix::errno::Errno;
use std::net::Ipv4Addr;

/// Only tables with the nslab prefix are nslab's to delete.
fn check_ours(name: &str) -> Result<()> {
    if !name.starts_with("nslab") || name.len() > 64 || name.contains('\0') {
        bail!("refusing to touch nftables table {name:?}: nslab only deletes tables it created (names starting with 'nslab')");
    }
    Ok(())
}

/// `nft add table ip NAME; add chain ip NAME postrouting { type nat hook postrouting
/// priority srcnat; }; add rule ip NAME postrouting ip saddr NET/LEN oifname != DEV
/// masquerade`, in one batch. On the ledger before it exists.
pub fn create_masquerade_table(name: &str, net: Ipv4Addr, len: u8, except_oif: &str) -> Result<()> {
    check_ours(name)?;
    if len > 32 {
        bail!("/{len} is not an IPv4 prefix length");
    }
    let resource = Resource::NftTable {
        family: "ip".into(),
        name: name.to_string(),
    };
    // Already on record (a table of this name being made again): its record stays.
    let added = !ledger::current().contains(&resource);
    ledger::record(resource.clone())?;
    let mut table = Attrs::default();
    table.str(NFTA_TABLE_NAME, name);
    let mut hook = Attrs::default();
    hook.be32(NFTA_HOOK_HOOKNUM, NF_INET_POST_ROUTING)
        .be32(NFTA_HOOK_PRIORITY, NF_IP_PRI_NAT_SRC as u32);
    let mut chain = Attrs::default();
    chain
        .str(NFTA_CHAIN_TABLE, name)
        .str(NFTA_CHAIN_NAME, "postrouting")
        .nest(NFTA_CHAIN_HOOK, &hook)
        .str(NFTA_CHAIN_TYPE, "nat");
    let mut rule = Attrs::default();
    rule.str(NFTA_RULE_TABLE, name)
        .str(NFTA_RULE_CHAIN, "postrouting")
        .nest(
            NFTA_RULE_EXPRESSIONS,
            &masquerade_expressions(net, len, except_oif),
        );
    let net = Ipv4Addr::from(u32::from(net) & prefix_mask(len));
    let msgs = vec![
        (
            NFT_MSG_NEWTABLE,
            NLM_F_CREATE | NLM_F_EXCL,
            NFPROTO_IPV4,
            table,
            format!("NFT_MSG_NEWTABLE family=ip name={name} flags=NLM_F_CREATE|NLM_F_EXCL|NLM_F_ACK"),
        ),
        (
            NFT_MSG_NEWCHAIN,
            NLM_F_CREATE | NLM_F_EXCL,
            NFPROTO_IPV4,
            chain,
            format!("NFT_MSG_NEWCHAIN table={name} name=postrouting type=nat hook=postrouting priority={NF_IP_PRI_NAT_SRC} flags=NLM_F_CREATE|NLM_F_EXCL|NLM_F_ACK"),
        ),
        (
            NFT_MSG_NEWRULE,
            NLM_F_CREATE | NLM_F_APPEND,
            NFPROTO_IPV4,
            rule,
            format!("NFT_MSG_NEWRULE table={name} chain=postrouting [payload ip saddr, bitwise /{len}, cmp == {net}, meta oifname, cmp != {except_oif}, masq] flags=NLM_F_CREATE|NLM_F_APPEND|NLM_F_ACK"),
        ),
    ];
    let r = Nfnl::open().and_then(|mut s| s.batch(msgs));
    if let Err(e) = r {
        // The batch is all or nothing: no table was made (or it is someone else's).
        if added {
            ledger::forget(&resource);
        }
        return Err(e.context(format!("creating nftables table ip {name}")));
    }
    crate::kernel::removal::identify(&resource);
    Ok(())
}

/// `nft delete table ip NAME` (its chains and rules go with it). False when it did not
/// exist.
pub fn delete_table(name: &str) -> Result<bool> {
    check_ours(name)?;
    delete_table_any(NFPROTO_IPV4, name)
}

/// Delete any table of `family` by name: for test guards that remove what a learner's
/// `iptables` created in a test (never called by nslab on tables it did not make).
pub fn delete_table_any(family: u8, name: &str) -> Result<bool> {
    let mut table = Attrs::default();
    table.str(NFTA_TABLE_NAME, name);
    let fam = family_name(family);
    let r = Nfnl::open().and_then(|mut s| {
        s.batch(vec![(
            NFT_MSG_DELTABLE,
            0,
            family,
            table,
            format!("NFT_MSG_DELTABLE family={fam} name={name} flags=NLM_F_ACK"),
        )])
    });
    match r {
        Ok(()) => Ok(true),
        Err(e) if crate::kernel::net::rtnl::errno_of(&e) == Some(Errno::ENOENT) => Ok(false),
        Err(e) => Err(e.context(format!("deleting nftables table {fam} {name}"))),
    }
}
