//! The host's settings around NAT, which nslab reads and never changes.

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
