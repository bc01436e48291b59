//! The host's NAT rules read back as plain data, native nft or from iptables-nft.

use super::socket::Nfnl;
use super::wire::*;
use crate::kernel::net::prefix_mask;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// A base chain's hook (`type nat hook postrouting priority 100`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chain {
    pub family: String,
    pub table: String,
    pub name: String,
    pub hook: Option<String>,
    pub priority: Option<i32>,
    /// `filter`, `nat` or `route`.
    pub chain_type: Option<String>,
}

/// A source address match (`ip saddr 10.0.0.0/24`, `-s 10.0.0.0/24`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixMatch {
    pub addr: Ipv4Addr,
    pub len: u8,
    pub negated: bool,
}

/// An out-interface match (`oifname != "x"`, `! -o x`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IfMatch {
    pub name: String,
    pub negated: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NatAction {
    Masquerade,
    Snat {
        to: Option<Ipv4Addr>,
    },
    Dnat {
        to: Option<Ipv4Addr>,
    },
    /// Anything else (a verdict such as accept or jump, a counter-only rule...).
    Other {
        what: String,
    },
}

/// One rule of a NAT chain (or with a NAT action), as plain data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatRule {
    pub family: String,
    pub table: String,
    pub chain: String,
    pub hook: Option<String>,
    pub handle: u64,
    pub source: Option<PrefixMatch>,
    pub out_interface: Option<IfMatch>,
    pub action: NatAction,
    /// Expressions not understood here (shown so nothing is hidden), by name.
    pub other_matches: Vec<String>,
    /// The action came from an x_tables target (iptables-nft's compatibility layer).
    pub xt_target: bool,
}

impl NatRule {
    pub fn is_source_nat(&self) -> bool {
        matches!(self.action, NatAction::Masquerade | NatAction::Snat { .. })
    }

    /// Does this rule apply to packets from `addr` (ignoring the out-interface)?
    pub fn covers(&self, addr: Ipv4Addr) -> bool {
        match &self.source {
            None => true,
            Some(p) => {
                let inside = u32::from(addr) & prefix_mask(p.len) == u32::from(p.addr);
                inside != p.negated
            }
        }
    }
}

/// Plain data from an NFT_MSG_NEWCHAIN dump message body.
pub fn parse_chain(family: u8, body: &[u8]) -> Option<Chain> {
    let a = parse_attrs(body);
    let hook = attr(&a, NFTA_CHAIN_HOOK).map(parse_attrs);
    Some(Chain {
        family: family_name(family).into(),
        table: attr_str(&a, NFTA_CHAIN_TABLE)?,
        name: attr_str(&a, NFTA_CHAIN_NAME)?,
        hook: hook
            .as_ref()
            .and_then(|h| attr_be32(h, NFTA_HOOK_HOOKNUM))
            .map(|n| {
                HOOK_NAMES
                    .get(n as usize)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| format!("hook {n}"))
            }),
        priority: hook
            .as_ref()
            .and_then(|h| attr_be32(h, NFTA_HOOK_PRIORITY))
            .map(|p| p as i32),
        chain_type: attr_str(&a, NFTA_CHAIN_TYPE),
    })
}

/// What a register holds while the rule's expressions are read in order.
#[derive(Clone, Debug)]
enum Reg {
    /// The first N bytes of the source address (iptables-nft loads only the bytes a
    /// byte-aligned prefix needs: 3 for a /24).
    Saddr(u8),
    SaddrMasked(u8),
    Oifname,
    Addr(Ipv4Addr),
    Other,
}

fn mask_len(mask: &[u8]) -> Option<u8> {
    let m = u32::from_be_bytes(mask.get(..4)?.try_into().ok()?);
    let len = m.leading_ones() as u8;
    (prefix_mask(len) == m).then_some(len)
}

/// The target info of an x_tables SNAT/DNAT: the first address of its range.
/// Revision 0: nf_nat_ipv4_multi_range_compat (rangesize, flags, min_ip ...);
/// revisions 1 and 2: nf_nat_range(2) (flags, min_addr ...).
fn xt_nat_addr(rev: u32, info: &[u8]) -> Option<Ipv4Addr> {
    let off = if rev == 0 { 8 } else { 4 };
    let b: [u8; 4] = info.get(off..off + 4)?.try_into().ok()?;
    let ip = Ipv4Addr::from(b);
    (!ip.is_unspecified()).then_some(ip)
}

/// Plain data from an NFT_MSG_NEWRULE dump message body, with the chains (for hooks).
/// `None` for a rule that is neither in a nat chain nor has a NAT action.
pub fn parse_rule(family: u8, body: &[u8], chains: &[Chain]) -> Option<NatRule> {
    let a = parse_attrs(body);
    let table = attr_str(&a, NFTA_RULE_TABLE)?;
    let chain = attr_str(&a, NFTA_RULE_CHAIN)?;
    let handle = attr(&a, NFTA_RULE_HANDLE)
        .and_then(|v| Some(u64::from_be_bytes(v.get(..8)?.try_into().ok()?)))
        .unwrap_or(0);
    let fam = family_name(family);
    let ch = chains
        .iter()
        .find(|c| c.family == fam && c.table == table && c.name == chain);
    let mut rule = NatRule {
        family: fam.into(),
        table,
        chain,
        hook: ch.and_then(|c| c.hook.clone()),
        handle,
        source: None,
        out_interface: None,
        action: NatAction::Other {
            what: "no action".into(),
        },
        other_matches: Vec::new(),
        xt_target: false,
    };
    let mut regs: [Reg; 24] = std::array::from_fn(|_| Reg::Other);
    let mut nat_action = false;
    let exprs = attr(&a, NFTA_RULE_EXPRESSIONS)
        .map(parse_attrs)
        .unwrap_or_default();
    for (kind, e) in exprs {
        if kind != NFTA_LIST_ELEM {
            continue;
        }
        let e = parse_attrs(e);
        let name = attr_str(&e, NFTA_EXPR_NAME).unwrap_or_default();
        let d = attr(&e, NFTA_EXPR_DATA)
            .map(parse_attrs)
            .unwrap_or_default();
        let reg = |k| attr_be32(&d, k).map(|r| r as usize).filter(|r| *r < 24);
        match name.as_str() {
            "payload" => {
                let len = attr_be32(&d, NFTA_PAYLOAD_LEN).unwrap_or(0);
                let is_saddr = attr_be32(&d, NFTA_PAYLOAD_BASE) == Some(NFT_PAYLOAD_NETWORK_HEADER)
                    && attr_be32(&d, NFTA_PAYLOAD_OFFSET) == Some(12)
                    && (1..=4).contains(&len);
                if let Some(r) = reg(NFTA_PAYLOAD_DREG) {
                    regs[r] = if is_saddr {
                        Reg::Saddr(len as u8)
                    } else {
                        Reg::Other
                    };
                }
                if !is_saddr {
                    rule.other_matches.push("payload".into());
                }
            }
            "bitwise" => {
                let (Some(s), Some(dreg)) = (reg(NFTA_BITWISE_SREG), reg(NFTA_BITWISE_DREG)) else {
                    continue;
                };
                let len = data_value(&d, NFTA_BITWISE_MASK).and_then(mask_len);
                regs[dreg] = match (&regs[s], len) {
                    (Reg::Saddr(4), Some(l)) => Reg::SaddrMasked(l),
                    _ => Reg::Other,
                };
            }
            "meta" => {
                if let Some(r) = reg(NFTA_META_DREG) {
                    regs[r] = if attr_be32(&d, NFTA_META_KEY) == Some(NFT_META_OIFNAME) {
                        Reg::Oifname
                    } else {
                        rule.other_matches.push("meta".into());
                        Reg::Other
                    };
                }
            }
            "cmp" => {
                let Some(s) = reg(NFTA_CMP_SREG) else {
                    continue;
                };
                let op = attr_be32(&d, NFTA_CMP_OP).unwrap_or(NFT_CMP_EQ);
                let negated = op == NFT_CMP_NEQ;
                let value = data_value(&d, NFTA_CMP_DATA).unwrap_or(&[]);
                let known_op = op == NFT_CMP_EQ || op == NFT_CMP_NEQ;
                match (&regs[s], value.get(..4)) {
                    (Reg::Saddr(n), _) if known_op && value.len() >= usize::from(*n) => {
                        let mut b = [0u8; 4];
                        b[..usize::from(*n)].copy_from_slice(&value[..usize::from(*n)]);
                        rule.source = Some(PrefixMatch {
                            addr: Ipv4Addr::from(b),
                            len: n * 8,
                            negated,
                        });
                    }
                    (Reg::SaddrMasked(l), Some(v)) if known_op => {
                        let b: [u8; 4] = v.try_into().expect("4 bytes");
                        rule.source = Some(PrefixMatch {
                            addr: Ipv4Addr::from(b),
                            len: *l,
                            negated,
                        });
                    }
                    (Reg::Oifname, _) if known_op => {
                        rule.out_interface = Some(IfMatch {
                            name: c_string(value),
                            negated,
                        });
                    }
                    _ => rule.other_matches.push("cmp".into()),
                }
            }
            "immediate" => {
                let Some(r) = reg(NFTA_IMMEDIATE_DREG) else {
                    continue;
                };
                let v = data_value(&d, NFTA_IMMEDIATE_DATA);
                if r == 0 {
                    // A verdict (accept, drop, jump...): the rule's action unless NAT follows.
                    if !nat_action {
                        rule.action = NatAction::Other {
                            what: "verdict".into(),
                        };
                    }
                } else {
                    regs[r] = match v.and_then(|v| v.get(..4)) {
                        Some(b) => Reg::Addr(Ipv4Addr::from(<[u8; 4]>::try_from(b).expect("4"))),
                        None => Reg::Other,
                    };
                }
            }
            "masq" => {
                rule.action = NatAction::Masquerade;
                nat_action = true;
            }
            "nat" => {
                let to = reg(NFTA_NAT_REG_ADDR_MIN).and_then(|r| match regs[r] {
                    Reg::Addr(ip) => Some(ip),
                    _ => None,
                });
                rule.action = if attr_be32(&d, NFTA_NAT_TYPE) == Some(NFT_NAT_SNAT) {
                    NatAction::Snat { to }
                } else {
                    NatAction::Dnat { to }
                };
                nat_action = true;
            }
            "target" => {
                let tname = attr_str(&d, NFTA_TARGET_NAME).unwrap_or_default();
                let rev = attr_be32(&d, NFTA_TARGET_REV).unwrap_or(0);
                let info = attr(&d, NFTA_TARGET_INFO).unwrap_or(&[]);
                rule.xt_target = true;
                nat_action = true;
                rule.action = match tname.as_str() {
                    "MASQUERADE" => NatAction::Masquerade,
                    "SNAT" => NatAction::Snat {
                        to: xt_nat_addr(rev, info),
                    },
                    "DNAT" => NatAction::Dnat {
                        to: xt_nat_addr(rev, info),
                    },
                    other => {
                        nat_action = false;
                        NatAction::Other {
                            what: other.to_string(),
                        }
                    }
                };
            }
            "counter" => {}
            other => rule.other_matches.push(other.to_string()),
        }
    }
    let in_nat_chain = ch.is_some_and(|c| c.chain_type.as_deref() == Some("nat"));
    (in_nat_chain || nat_action).then_some(rule)
}

/// Dumped messages: (family, message body after the nfgenmsg header) each.
pub type RawMessages = Vec<(u8, Vec<u8>)>;

/// The raw dump of chains and rules: (family, message body) each. Unit tests keep
/// captures of it.
pub fn raw_dump() -> Result<(RawMessages, RawMessages)> {
    let mut s = Nfnl::open()?;
    let chains = s.dump(NFT_MSG_GETCHAIN)?;
    let rules = s.dump(NFT_MSG_GETRULE)?;
    Ok((chains, rules))
}

/// Every NAT rule of the host (this network namespace), read back from nftables: rules
/// of nat chains and rules with a NAT action, native or from iptables-nft.
pub fn nat_rules() -> Result<Vec<NatRule>> {
    let (chains, rules) = raw_dump().context("reading the nftables ruleset")?;
    let chains: Vec<Chain> = chains
        .iter()
        .filter_map(|(f, b)| parse_chain(*f, b))
        .collect();
    Ok(rules
        .iter()
        .filter_map(|(f, b)| parse_rule(*f, b, &chains))
        .collect())
}
