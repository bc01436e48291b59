//! Every table and chain listed whole (`nft list tables`, `nft list chains`): only the
//! tests read them, to see what nslab made.

use super::rules::{parse_chain, Chain};
use super::socket::Nfnl;
use super::wire::*;
use anyhow::Result;
use serde::{Deserialize, Serialize};

const NFT_MSG_GETTABLE: u16 = 1;

/// One table: family and name (`nft list tables`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub family: String,
    pub name: String,
}

/// Plain data from an NFT_MSG_NEWTABLE dump message body.
pub fn parse_table(family: u8, body: &[u8]) -> Option<Table> {
    let a = parse_attrs(body);
    Some(Table {
        family: family_name(family).into(),
        name: attr_str(&a, NFTA_TABLE_NAME)?,
    })
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
