//! Every table and chain listed whole (`nft list tables`, `nft list chains`): a table's
//! handle is the identity nslab records for the table it made; the tests read the rest.

use super::socket::Nfnl;
use super::wire::*;
use anyhow::Result;
use serde::{Deserialize, Serialize};

const NFT_MSG_GETTABLE: u16 = 1;

/// One table: family and name (`nft list tables`), and the handle the kernel gave it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub family: String,
    pub name: String,
    /// Unique while the table lives; a table made again under the name gets a new one.
    pub handle: Option<u64>,
}

/// Plain data from an NFT_MSG_NEWTABLE dump message body.
pub fn parse_table(family: u8, body: &[u8]) -> Option<Table> {
    let a = parse_attrs(body);
    Some(Table {
        family: family_name(family).into(),
        name: attr_str(&a, NFTA_TABLE_NAME)?,
        handle: attr(&a, NFTA_TABLE_HANDLE)
            .and_then(|v| Some(u64::from_be_bytes(v.get(..8)?.try_into().ok()?))),
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

/// The handle of table `family` `name` now, if there is one.
pub fn table_handle(family: &str, name: &str) -> Option<u64> {
    tables()
        .ok()?
        .into_iter()
        .find(|t| t.family == family && t.name == name)?
        .handle
}

/// Every chain, with its hook for base chains.
#[cfg(test)]
pub fn chains() -> Result<Vec<super::rules::Chain>> {
    use super::rules::parse_chain;
    let mut s = Nfnl::open()?;
    Ok(s.dump(NFT_MSG_GETCHAIN)?
        .iter()
        .filter_map(|(f, b)| parse_chain(*f, b))
        .collect())
}
