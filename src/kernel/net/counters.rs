//! Interface counters from `/proc/PID/net/dev`: the file shows the network namespace of
//! process PID, so reading it for a process inside a namespace shows that namespace's
//! interfaces and nothing else.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// The counters of one interface.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IfCounters {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// Parse `/proc/net/dev`: two header lines, then `name: 8 receive and 8 transmit columns`.
pub fn parse_net_dev(text: &str) -> Result<Vec<IfCounters>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate().skip(2) {
        if line.trim().is_empty() {
            continue;
        }
        let Some((name, rest)) = line.split_once(':') else {
            bail!(
                "line {} of /proc/net/dev has no 'name:' part: {line:?}",
                n + 1
            );
        };
        let nums: Vec<u64> = match rest.split_whitespace().map(str::parse).collect() {
            Ok(v) => v,
            Err(_) => bail!(
                "line {} of /proc/net/dev has a non-number column: {line:?}",
                n + 1
            ),
        };
        if nums.len() < 16 {
            bail!(
                "line {} of /proc/net/dev has {} columns, expected 16",
                n + 1,
                nums.len()
            );
        }
        out.push(IfCounters {
            name: name.trim().to_string(),
            rx_bytes: nums[0],
            rx_packets: nums[1],
            rx_errors: nums[2],
            rx_dropped: nums[3],
            tx_bytes: nums[8],
            tx_packets: nums[9],
            tx_errors: nums[10],
            tx_dropped: nums[11],
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real contents: this machine's host namespace, and a fresh namespace after one echo.
    const HOST: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0
  ifb0:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  ifb1:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  eth0: 89351956    3059    0    0    0     0          0         0   224529    1919    0    0    0     0       0          0
";

    const NETNS: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
nslab-a0:     182       2    0    0    0     0          0         0      266       3    0    0    0     0       0          0
";

    #[test]
    fn parses_the_host_file() {
        let c = parse_net_dev(HOST).unwrap();
        assert_eq!(c.len(), 4);
        assert_eq!(c[3].name, "eth0");
        assert_eq!((c[3].rx_bytes, c[3].rx_packets), (89351956, 3059));
        assert_eq!((c[3].tx_bytes, c[3].tx_packets), (224529, 1919));
        assert_eq!(c[0].name, "lo");
    }

    #[test]
    fn parses_a_long_name_glued_to_its_colon() {
        let c = parse_net_dev(NETNS).unwrap();
        assert_eq!(c[1].name, "nslab-a0");
        assert_eq!(
            (c[1].rx_packets, c[1].tx_packets, c[1].tx_bytes),
            (2, 3, 266)
        );
    }

    #[test]
    fn rejects_a_truncated_line() {
        let bad = format!(
            "{}\n  eth0: 1 2 3\n",
            HOST.lines().take(2).collect::<Vec<_>>().join("\n")
        );
        assert!(parse_net_dev(&bad).is_err());
    }
}
