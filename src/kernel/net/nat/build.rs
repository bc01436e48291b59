//! The rule nslab makes, as nft builds it: expressions of
//! `ip saddr NET/LEN oifname != "DEV" masquerade`.

use super::wire::*;
use crate::kernel::net::prefix_mask;
use std::net::Ipv4Addr;

/// An interface name as nft compares it: padded with NULs to IFNAMSIZ.
fn ifname_bytes(name: &str) -> [u8; 16] {
    let mut b = [0u8; 16];
    let n = name.as_bytes();
    b[..n.len().min(15)].copy_from_slice(&n[..n.len().min(15)]);
    b
}

pub(super) fn expr(name: &str, data: Option<&Attrs>) -> Attrs {
    let mut e = Attrs::default();
    e.str(NFTA_EXPR_NAME, name);
    if let Some(d) = data {
        e.nest(NFTA_EXPR_DATA, d);
    }
    e
}

/// The expressions of `ip saddr NET/LEN oifname != "DEV" masquerade`, as nft builds them.
pub(super) fn masquerade_expressions(net: Ipv4Addr, len: u8, except_oif: &str) -> Attrs {
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
