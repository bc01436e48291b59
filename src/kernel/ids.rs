//! User and group IDs as the kernel shows them: the `Uid:`/`Gid:`/`Cap*:` lines of
//! /proc/PID/status, capability sets decoded to their names, uid_map/gid_map lines, and the
//! subordinate ranges of /etc/subuid and /etc/subgid. Parsing only: pure, tested on text.

use serde::{Deserialize, Serialize};

/// capabilities(7), by bit number (linux/capability.h, up to Linux 5.9's CAP_CHECKPOINT_RESTORE).
pub const CAP_NAMES: [&str; 41] = [
    "cap_chown",
    "cap_dac_override",
    "cap_dac_read_search",
    "cap_fowner",
    "cap_fsetid",
    "cap_kill",
    "cap_setgid",
    "cap_setuid",
    "cap_setpcap",
    "cap_linux_immutable",
    "cap_net_bind_service",
    "cap_net_broadcast",
    "cap_net_admin",
    "cap_net_raw",
    "cap_ipc_lock",
    "cap_ipc_owner",
    "cap_sys_module",
    "cap_sys_rawio",
    "cap_sys_chroot",
    "cap_sys_ptrace",
    "cap_sys_pacct",
    "cap_sys_admin",
    "cap_sys_boot",
    "cap_sys_nice",
    "cap_sys_resource",
    "cap_sys_time",
    "cap_sys_tty_config",
    "cap_mknod",
    "cap_lease",
    "cap_audit_write",
    "cap_audit_control",
    "cap_setfcap",
    "cap_mac_override",
    "cap_mac_admin",
    "cap_syslog",
    "cap_wake_alarm",
    "cap_block_suspend",
    "cap_audit_read",
    "cap_perfmon",
    "cap_bpf",
    "cap_checkpoint_restore",
];

/// The names of the capabilities set in `mask`; a bit this table does not know (a newer
/// kernel's) is named by its number.
pub fn cap_names(mask: u64) -> Vec<String> {
    (0..64)
        .filter(|bit| mask & (1u64 << bit) != 0)
        .map(|bit| match CAP_NAMES.get(bit as usize) {
            Some(name) => name.to_string(),
            None => format!("cap_{bit}"),
        })
        .collect()
}

/// What a process's status file says about who it is, as seen by the reader: IDs are
/// shown in the reader's user namespace (unmapped ones as the overflow ID, 65534).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusIds {
    /// Real, effective, saved, filesystem.
    pub uid: [u32; 4],
    pub gid: [u32; 4],
    pub groups: Vec<u32>,
    pub cap_eff: u64,
    pub cap_prm: u64,
    pub cap_bnd: u64,
}

/// The `Uid:`, `Gid:`, `Groups:` and `Cap*:` lines of /proc/PID/status.
pub fn parse_status(text: &str) -> Option<StatusIds> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
            .map(str::trim)
    };
    let four = |name: &str| -> Option<[u32; 4]> {
        let v: Vec<u32> = field(name)?
            .split_whitespace()
            .map(|n| n.parse().ok())
            .collect::<Option<_>>()?;
        v.try_into().ok()
    };
    let cap = |name: &str| u64::from_str_radix(field(name)?, 16).ok();
    Some(StatusIds {
        uid: four("Uid")?,
        gid: four("Gid")?,
        groups: field("Groups")
            .unwrap_or("")
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect(),
        cap_eff: cap("CapEff")?,
        cap_prm: cap("CapPrm")?,
        cap_bnd: cap("CapBnd")?,
    })
}

/// One line of a uid_map or gid_map: `count` IDs from `inside` in the namespace are
/// `outside` onward in its parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// The lines of a uid_map or gid_map; `None` for text that is not one (an empty map is
/// `Some(vec![])`: nothing written yet).
pub fn parse_id_map(text: &str) -> Option<Vec<IdRange>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<u32> = l
                .split_whitespace()
                .map(|n| n.parse().ok())
                .collect::<Option<_>>()?;
            match f[..] {
                [inside, outside, count] => Some(IdRange {
                    inside,
                    outside,
                    count,
                }),
                _ => None,
            }
        })
        .collect()
}

/// The ID outside that `id` inside stands for, if the map maps it.
pub fn map_to_outside(map: &[IdRange], id: u32) -> Option<u32> {
    map.iter().find_map(|r| {
        let off = id.checked_sub(r.inside)?;
        (off < r.count)
            .then(|| r.outside.checked_add(off))
            .flatten()
    })
}

/// A subordinate range of /etc/subuid or /etc/subgid (`name:start:count`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubRange {
    pub start: u32,
    pub count: u32,
}

impl SubRange {
    pub fn contains(&self, id: u32) -> bool {
        id >= self.start && id - self.start < self.count
    }
}

/// The ranges subuid(5)/subgid(5) text gives the user `name` (or `id`, which a line may
/// name instead).
pub fn parse_subids(text: &str, name: Option<&str>, id: u32) -> Vec<SubRange> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.trim().split(':').collect();
            let [who, start, count] = f[..] else {
                return None;
            };
            let theirs = Some(who) == name || who.parse() == Ok(id);
            Some(SubRange {
                start: start.parse().ok()?,
                count: count.parse().ok()?,
            })
            .filter(|_| theirs && !who.starts_with('#'))
        })
        .collect()
}

/// The name and primary group of `uid` in passwd(5) text.
pub fn passwd_entry(text: &str, uid: u32) -> Option<(String, u32)> {
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 7 && f[2].parse() == Ok(uid))
            .then(|| Some((f[0].to_string(), f[3].parse().ok()?)))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tbash\nUmask:\t0022\nState:\tS (sleeping)\n\
        Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nFDSize:\t256\nGroups:\t65534 \n\
        NSpid:\t812\t1\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\n\
        CapEff:\t000001ffffffffff\nCapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\n";

    #[test]
    fn reads_ids_and_capabilities_from_a_status_file() {
        let s = parse_status(STATUS).unwrap();
        assert_eq!(s.uid, [0; 4]);
        assert_eq!(s.groups, vec![65534]);
        assert_eq!(s.cap_eff, 0x1ff_ffff_ffff);
        assert_eq!(cap_names(s.cap_eff).len(), 41);
        assert_eq!(parse_status("Name:\tx\nUid:\t1\t2\n"), None);
    }

    #[test]
    fn decodes_capability_bits_by_name() {
        assert!(cap_names(0).is_empty());
        assert_eq!(cap_names(1 << 21), vec!["cap_sys_admin"]);
        assert_eq!(
            cap_names((1 << 0) | (1 << 40) | (1 << 45)),
            vec!["cap_chown", "cap_checkpoint_restore", "cap_45"]
        );
        // Root on this kind of machine may lack one (CAP_SYS_RESOURCE here).
        let names = cap_names(0x1ff_feff_ffff);
        assert_eq!(names.len(), 40);
        assert!(!names.contains(&"cap_sys_resource".to_string()));
    }

    #[test]
    fn reads_id_maps() {
        let host = parse_id_map("         0          0 4294967295\n").unwrap();
        assert_eq!(map_to_outside(&host, 4242), Some(4242));
        let rootless = parse_id_map("0 1000 1\n1 100000 65536\n").unwrap();
        assert_eq!(map_to_outside(&rootless, 0), Some(1000));
        assert_eq!(map_to_outside(&rootless, 1), Some(100000));
        assert_eq!(map_to_outside(&rootless, 65536), Some(165535));
        assert_eq!(map_to_outside(&rootless, 65537), None);
        assert_eq!(parse_id_map("").unwrap(), vec![]);
        assert_eq!(parse_id_map("0 1000\n"), None);
        assert_eq!(parse_id_map("0 x 1\n"), None);
        let top = parse_id_map("4294967294 4294967294 1").unwrap();
        assert_eq!(map_to_outside(&top, 4294967294), Some(4294967294));
    }

    #[test]
    fn finds_a_users_subordinate_ranges_by_name_or_id() {
        let text = "ada:100000:65536\n# a comment\n1001:165536:65536\nbob:231072:x\ndockremap:296608:65536\n";
        assert_eq!(
            parse_subids(text, Some("ada"), 1000),
            vec![SubRange {
                start: 100000,
                count: 65536
            }]
        );
        assert_eq!(parse_subids(text, Some("eve"), 1001).len(), 1);
        assert!(parse_subids(text, Some("bob"), 1002).is_empty());
        assert!(parse_subids(text, None, 4242).is_empty());
        assert!(SubRange {
            start: 100000,
            count: 65536
        }
        .contains(165535));
    }

    #[test]
    fn finds_a_name_in_passwd_text() {
        let text = "root:x:0:0:root:/root:/bin/bash\nada:x:1000:1001:Ada:/home/ada:/bin/bash\n";
        assert_eq!(passwd_entry(text, 1000), Some(("ada".into(), 1001)));
        assert_eq!(passwd_entry(text, 7), None);
    }
}
