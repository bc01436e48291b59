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
//!
//! [`wire`] is the message format, [`socket`] the conversation with the kernel,
//! [`build`] the rule nslab makes and [`table`] its table's life, [`rules`] the host's
//! NAT rules read back, [`host`] the settings around NAT that nslab only reads.

mod build;
mod host;
mod listing;
mod rules;
mod socket;
mod table;
mod wire;

pub use host::{ip_forward, legacy_nat_table};
pub use listing::table_handle;
pub use rules::{nat_rules, NatAction, NatRule};
#[cfg(test)]
pub use rules::{IfMatch, PrefixMatch};
pub use socket::{is_unsupported, UNSUPPORTED_FIX};
pub use table::{create_masquerade_table, delete_table};

#[cfg(test)]
mod tests;
