//! NAT on the host through nftables' own netlink interface (NETLINK_NETFILTER,
//! subsystem NFNL_SUBSYS_NFTABLES): what `nft` and `iptables-nft` send, without either
//! binary.
//!
//! nslab makes one table of its own per run (`table ip nslab-<id>`), with a `postrouting`
//! chain of type nat and one masquerade rule, and deletes the table by name (which takes
//! its chain and rule with it). It reads back every NAT rule of the host as plain data:
//! native nft rules and those `iptables -t nat -A POSTROUTING ... -j MASQUERADE` adds
//! through iptables-nft (an xt `target` expression named MASQUERADE, or native
//! expressions, depending on the version). Rules of legacy iptables (x_tables, not
//! nftables) cannot be read this way: [`legacy_nat_table`] tells when there are some.
//!
//! Changes go in one batch (BATCH_BEGIN ... BATCH_END) that the kernel applies
//! atomically; every message asks for an ack. Each message is recorded in the trace.

use super::super::trace;
use super::prefix_mask;
use crate::ledger::{self, Resource};
use anyhow::{anyhow, bail, Context, Result};
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};
use nix::errno::Errno;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::time::Duration;

// ---- constants of linux/netfilter/nfnetlink.h and nf_tables.h ------------------------

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;

const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_GETTABLE: u16 = 1;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_GETCHAIN: u16 = 4;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_GETRULE: u16 = 7;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;

pub const NFPROTO_UNSPEC: u8 = 0;
pub const NFPROTO_INET: u8 = 1;
pub const NFPROTO_IPV4: u8 = 2;
pub const NFPROTO_IPV6: u8 = 10;

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_HANDLE: u16 = 3;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;

const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFTA_BITWISE_SREG: u16 = 1;
const NFTA_BITWISE_DREG: u16 = 2;
const NFTA_BITWISE_LEN: u16 = 3;
const NFTA_BITWISE_MASK: u16 = 4;
const NFTA_BITWISE_XOR: u16 = 5;
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFT_CMP_EQ: u32 = 0;
const NFT_CMP_NEQ: u32 = 1;
const NFTA_META_DREG: u16 = 1;
const NFTA_META_KEY: u16 = 2;
const NFT_META_OIFNAME: u32 = 7;
const NFTA_NAT_TYPE: u16 = 1;
const NFTA_NAT_REG_ADDR_MIN: u16 = 3;
const NFT_NAT_SNAT: u32 = 0;
const NFTA_IMMEDIATE_DREG: u16 = 1;
const NFTA_IMMEDIATE_DATA: u16 = 2;
const NFTA_TARGET_NAME: u16 = 1;
const NFTA_TARGET_REV: u16 = 2;
const NFTA_TARGET_INFO: u16 = 3;

const NFT_REG_1: u32 = 1;
const NF_INET_POST_ROUTING: u32 = 4;
/// `srcnat`: the priority nft gives a postrouting nat chain.
pub const NF_IP_PRI_NAT_SRC: i32 = 100;

const HOOK_NAMES: [&str; 5] = ["prerouting", "input", "forward", "output", "postrouting"];

// ---- netlink attributes --------------------------------------------------------------

/// Builds a netlink attribute stream (each attribute padded to 4 bytes).
#[derive(Default)]
struct Attrs(Vec<u8>);

impl Attrs {
    fn put(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        let len = 4 + value.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(value);
        while self.0.len() % 4 != 0 {
            self.0.push(0);
        }
        self
    }
    fn str(&mut self, kind: u16, s: &str) -> &mut Self {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.put(kind, &v)
    }
    fn be32(&mut self, kind: u16, v: u32) -> &mut Self {
        self.put(kind, &v.to_be_bytes())
    }
    fn nest(&mut self, kind: u16, inner: &Attrs) -> &mut Self {
        self.put(kind | NLA_F_NESTED, &inner.0)
    }
}

/// (type without flags, value) of each attribute in `buf`.
fn parse_attrs(mut buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while buf.len() >= 4 {
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > buf.len() {
            break;
        }
        out.push((kind, &buf[4..len]));
        buf = &buf[((len + 3) & !3).min(buf.len())..];
    }
    out
}

fn attr<'a>(attrs: &[(u16, &'a [u8])], kind: u16) -> Option<&'a [u8]> {
    attrs.iter().find(|(k, _)| *k == kind).map(|(_, v)| *v)
}

fn attr_str(attrs: &[(u16, &[u8])], kind: u16) -> Option<String> {
    attr(attrs, kind).map(c_string)
}

fn c_string(v: &[u8]) -> String {
    let end = v.iter().position(|b| *b == 0).unwrap_or(v.len());
    String::from_utf8_lossy(&v[..end]).into_owned()
}

fn attr_be32(attrs: &[(u16, &[u8])], kind: u16) -> Option<u32> {
    attr(attrs, kind).and_then(|v| Some(u32::from_be_bytes(v.get(..4)?.try_into().ok()?)))
}

/// NFTA_DATA_VALUE inside a nested data attribute.
fn data_value<'a>(attrs: &[(u16, &'a [u8])], kind: u16) -> Option<&'a [u8]> {
    attr(&parse_attrs(attr(attrs, kind)?), NFTA_DATA_VALUE)
}

// ---- messages ------------------------------------------------------------------------

/// One netlink message: header, nfgenmsg (family, version 0, resource id), attributes.
fn message(kind: u16, flags: u16, seq: u32, family: u8, res_id: u16, attrs: &Attrs) -> Vec<u8> {
    let len = 16 + 4 + attrs.0.len();
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.push(family);
    m.push(0);
    m.extend_from_slice(&res_id.to_be_bytes());
    m.extend_from_slice(&attrs.0);
    m
}

fn nft_type(msg: u16) -> u16 {
    (NFNL_SUBSYS_NFTABLES << 8) | msg
}

/// A message as it arrived: type, flags, sequence, family and the attribute bytes.
struct Incoming<'a> {
    kind: u16,
    seq: u32,
    family: u8,
    body: &'a [u8],
}

/// Split a buffer of netlink messages.
fn split_messages(mut buf: &[u8]) -> Result<Vec<Incoming<'_>>> {
    let mut out = Vec::new();
    while buf.len() >= 16 {
        let len = u32::from_ne_bytes(buf[0..4].try_into().expect("4 bytes")) as usize;
        if len < 16 || len > buf.len() {
            bail!("malformed netlink message from the kernel (length {len})");
        }
        let kind = u16::from_ne_bytes([buf[4], buf[5]]);
        let seq = u32::from_ne_bytes(buf[8..12].try_into().expect("4 bytes"));
        let payload = &buf[16..len];
        let (family, body) = if payload.len() >= 4 && kind >> 8 == NFNL_SUBSYS_NFTABLES {
            (payload[0], &payload[4..])
        } else {
            (0, payload)
        };
        out.push(Incoming {
            kind,
            seq,
            family,
            body,
        });
        buf = &buf[((len + 3) & !3).min(buf.len())..];
    }
    Ok(out)
}

pub fn family_name(f: u8) -> &'static str {
    match f {
        NFPROTO_INET => "inet",
        NFPROTO_IPV4 => "ip",
        NFPROTO_IPV6 => "ip6",
        3 => "arp",
        5 => "netdev",
        7 => "bridge",
        _ => "unspec",
    }
}

// ---- the socket ----------------------------------------------------------------------

/// A NETLINK_NETFILTER socket in nslab's own (the host's) network namespace.
struct Nfnl {
    sock: Socket,
    seq: u32,
}

const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

impl Nfnl {
    fn open() -> Result<Nfnl> {
        let mut sock = Socket::new(NETLINK_NETFILTER)
            .context("socket(AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER)")?;
        sock.bind_auto().context("bind(netlink)")?;
        sock.connect(&SocketAddr::new(0, 0))
            .context("connect(netlink, kernel)")?;
        let _ = sock.set_ext_ack(true);
        let _ = sock.set_cap_ack(true);
        // Dumps of a busy ruleset can be large.
        let _ = sock.set_rx_buf_sz(1 << 20);
        let seq = (std::process::id() << 12) ^ 0x5a5;
        Ok(Nfnl { sock, seq })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn recv(&mut self) -> Result<Vec<u8>> {
        use std::os::fd::{AsRawFd, BorrowedFd};
        // SAFETY: the socket's descriptor, alive for this call.
        let fd = unsafe { BorrowedFd::borrow_raw(self.sock.as_raw_fd()) };
        if !super::super::sys::wait_readable(&fd, Some(REPLY_TIMEOUT))? {
            bail!("nftables did not answer within {REPLY_TIMEOUT:?}");
        }
        let (buf, _) = self.sock.recv_from_full().context("recvmsg(netlink)")?;
        Ok(buf)
    }

    /// Send `msgs` (type, flags, family, attrs, description) as one batch and wait for
    /// the ack of each. The first refusal is returned with the kernel's errno.
    fn batch(&mut self, msgs: Vec<(u16, u16, u8, Attrs, String)>) -> Result<()> {
        let mut buf = Vec::new();
        let begin = self.next_seq();
        buf.extend(message(
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            begin,
            NFPROTO_UNSPEC,
            NFNL_SUBSYS_NFTABLES,
            &Attrs::default(),
        ));
        let mut pending: Vec<(u32, String)> = Vec::new();
        for (kind, flags, family, attrs, what) in msgs {
            let seq = self.next_seq();
            buf.extend(message(
                nft_type(kind),
                NLM_F_REQUEST | NLM_F_ACK | flags,
                seq,
                family,
                0,
                &attrs,
            ));
            pending.push((seq, what));
        }
        let end = self.next_seq();
        buf.extend(message(
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            end,
            NFPROTO_UNSPEC,
            NFNL_SUBSYS_NFTABLES,
            &Attrs::default(),
        ));
        trace::syscall(format!(
            "sendmsg(NETLINK_NETFILTER, [NFNL_MSG_BATCH_BEGIN, {} message(s), NFNL_MSG_BATCH_END]) = {}",
            pending.len(),
            buf.len()
        ));
        self.sock
            .send(&buf, 0)
            .context("sendmsg(NETLINK_NETFILTER)")?;
        let mut result = Ok(());
        'outer: while !pending.is_empty() {
            let reply = self.recv()?;
            for m in split_messages(&reply)? {
                if m.kind != NLMSG_ERROR {
                    continue;
                }
                let Some(pos) = pending.iter().position(|(s, _)| *s == m.seq) else {
                    continue;
                };
                let (_, what) = pending.remove(pos);
                let code = m
                    .body
                    .get(..4)
                    .map(|b| i32::from_ne_bytes(b.try_into().expect("4 bytes")))
                    .unwrap_or(0);
                if code == 0 {
                    trace::syscall(format!("{what} -> ack"));
                } else {
                    let errno = Errno::from_raw(-code);
                    trace::syscall(format!(
                        "{what} -> {}",
                        crate::kernel::sys::errno_text(errno)
                    ));
                    result = Err(super::rtnl::NetlinkError {
                        request: what,
                        errno,
                        kernel_message: None,
                    }
                    .into());
                    // An aborted batch acks nothing else.
                    break 'outer;
                }
            }
        }
        result
    }

    /// A dump request: every object of one kind, in every family.
    fn dump(&mut self, kind: u16) -> Result<Vec<(u8, Vec<u8>)>> {
        let seq = self.next_seq();
        let m = message(
            nft_type(kind),
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            NFPROTO_UNSPEC,
            0,
            &Attrs::default(),
        );
        self.sock
            .send(&m, 0)
            .context("sendmsg(NETLINK_NETFILTER)")?;
        let mut out = Vec::new();
        loop {
            let reply = self.recv()?;
            for m in split_messages(&reply)? {
                if m.seq != seq {
                    continue;
                }
                match m.kind {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let code = m
                            .body
                            .get(..4)
                            .map(|b| i32::from_ne_bytes(b.try_into().expect("4 bytes")))
                            .unwrap_or(0);
                        if code == 0 {
                            return Ok(out);
                        }
                        return Err(anyhow!(
                            "nftables refused the dump: {}",
                            Errno::from_raw(-code).desc()
                        ));
                    }
                    k if k == nft_type(kind) || k >> 8 == NFNL_SUBSYS_NFTABLES => {
                        out.push((m.family, m.body.to_vec()))
                    }
                    _ => {}
                }
            }
        }
    }
}

// ---- what nslab creates --------------------------------------------------------------

/// Only tables with the nslab prefix are nslab's to delete.
fn check_ours(name: &str) -> Result<()> {
    if !name.starts_with("nslab") || name.len() > 64 || name.contains('\0') {
        bail!("refusing to touch nftables table {name:?}: nslab only deletes tables it created (names starting with 'nslab')");
    }
    Ok(())
}

/// An interface name as nft compares it: padded with NULs to IFNAMSIZ.
fn ifname_bytes(name: &str) -> [u8; 16] {
    let mut b = [0u8; 16];
    let n = name.as_bytes();
    b[..n.len().min(15)].copy_from_slice(&n[..n.len().min(15)]);
    b
}

fn expr(name: &str, data: Option<&Attrs>) -> Attrs {
    let mut e = Attrs::default();
    e.str(NFTA_EXPR_NAME, name);
    if let Some(d) = data {
        e.nest(NFTA_EXPR_DATA, d);
    }
    e
}

/// The expressions of `ip saddr NET/LEN oifname != "DEV" masquerade`, as nft builds them.
fn masquerade_expressions(net: Ipv4Addr, len: u8, except_oif: &str) -> Attrs {
    let mask = prefix_mask(len);
    let net = u32::from(net) & mask;
    let mut payload = Attrs::default();
    payload
        .be32(NFTA_PAYLOAD_DREG, NFT_REG_1)
        .be32(NFTA_PAYLOAD_BASE, NFT_PAYLOAD_NETWORK_HEADER)
        .be32(NFTA_PAYLOAD_OFFSET, 12)
        .be32(NFTA_PAYLOAD_LEN, 4);
    let mut mask_data = Attrs::default();
    mask_data.put(NFTA_DATA_VALUE, &mask.to_be_bytes());
    let mut xor_data = Attrs::default();
    xor_data.put(NFTA_DATA_VALUE, &[0, 0, 0, 0]);
    let mut bitwise = Attrs::default();
    bitwise
        .be32(NFTA_BITWISE_SREG, NFT_REG_1)
        .be32(NFTA_BITWISE_DREG, NFT_REG_1)
        .be32(NFTA_BITWISE_LEN, 4)
        .nest(NFTA_BITWISE_MASK, &mask_data)
        .nest(NFTA_BITWISE_XOR, &xor_data);
    let mut net_data = Attrs::default();
    net_data.put(NFTA_DATA_VALUE, &net.to_be_bytes());
    let mut cmp_net = Attrs::default();
    cmp_net
        .be32(NFTA_CMP_SREG, NFT_REG_1)
        .be32(NFTA_CMP_OP, NFT_CMP_EQ)
        .nest(NFTA_CMP_DATA, &net_data);
    let mut meta = Attrs::default();
    meta.be32(NFTA_META_KEY, NFT_META_OIFNAME)
        .be32(NFTA_META_DREG, NFT_REG_1);
    let mut dev_data = Attrs::default();
    dev_data.put(NFTA_DATA_VALUE, &ifname_bytes(except_oif));
    let mut cmp_dev = Attrs::default();
    cmp_dev
        .be32(NFTA_CMP_SREG, NFT_REG_1)
        .be32(NFTA_CMP_OP, NFT_CMP_NEQ)
        .nest(NFTA_CMP_DATA, &dev_data);
    let mut list = Attrs::default();
    for e in [
        expr("payload", Some(&payload)),
        expr("bitwise", Some(&bitwise)),
        expr("cmp", Some(&cmp_net)),
        expr("meta", Some(&meta)),
        expr("cmp", Some(&cmp_dev)),
        expr("masq", None),
    ] {
        list.nest(NFTA_LIST_ELEM, &e);
    }
    list
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
        Err(e) if super::rtnl::errno_of(&e) == Some(Errno::ENOENT) => Ok(false),
        Err(e) => Err(e.context(format!("deleting nftables table {fam} {name}"))),
    }
}

// ---- reading back --------------------------------------------------------------------

/// One table: family and name (`nft list tables`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub family: String,
    pub name: String,
}

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

/// Plain data from an NFT_MSG_NEWTABLE dump message body.
pub fn parse_table(family: u8, body: &[u8]) -> Option<Table> {
    let a = parse_attrs(body);
    Some(Table {
        family: family_name(family).into(),
        name: attr_str(&a, NFTA_TABLE_NAME)?,
    })
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

/// Every table (`nft list tables`).
pub fn tables() -> Result<Vec<Table>> {
    let mut s = Nfnl::open()?;
    Ok(s.dump(NFT_MSG_GETTABLE)?
        .iter()
        .filter_map(|(f, b)| parse_table(*f, b))
        .collect())
}

/// Every chain, with its hook for base chains.
pub fn chains() -> Result<Vec<Chain>> {
    let mut s = Nfnl::open()?;
    Ok(s.dump(NFT_MSG_GETCHAIN)?
        .iter()
        .filter_map(|(f, b)| parse_chain(*f, b))
        .collect())
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

/// Did `e` come from a kernel without nftables NAT (nf_tables, nft_chain_nat or nft_masq
/// neither built in nor loadable)?
pub fn is_unsupported(e: &anyhow::Error) -> bool {
    let gone = [Errno::EOPNOTSUPP, Errno::EPROTONOSUPPORT, Errno::ENOENT];
    e.chain().any(|c| {
        c.downcast_ref::<super::rtnl::NetlinkError>()
            .is_some_and(|n| n.request.starts_with("NFT_MSG_NEW") && gone.contains(&n.errno))
            || c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.raw_os_error() == Some(Errno::EPROTONOSUPPORT as i32))
    })
}

/// What to do about [`is_unsupported`].
pub const UNSUPPORTED_FIX: &str =
    "load the modules: sudo modprobe nf_tables nft_chain_nat nft_masq (or build them in)";

/// `net.ipv4.ip_forward` (read only: nslab never changes host settings).
pub fn ip_forward() -> Option<bool> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
        .ok()
        .map(|t| t.trim() == "1")
}

/// Does legacy iptables (x_tables) have a nat table loaded? Its rules are invisible to
/// nftables.
pub fn legacy_nat_table() -> bool {
    std::fs::read_to_string("/proc/net/ip_tables_names")
        .map(|t| t.lines().any(|l| l.trim() == "nat"))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests;
