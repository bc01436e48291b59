//! The captured states the views are tested on: each views file's tests and
//! [`super::at_widths`] build them from here.

use crate::kernel::cgroup::concepts::{
    Concept, CpuQuota, CpuStat, CpuWeight, Max, Reading, Time, TimeUnit,
};
use crate::kernel::cgroup::kmsg::OomKill;
use crate::kernel::cgroup::mountinfo::{self as cgroup_mountinfo, tests_data::*};
use crate::kernel::cgroup::{CgDir, CgVersion, ConceptValue, Layout, ProcCgroup};
use crate::kernel::container::{EscapeReport, MaskedPath, PathSeen, Privileges, RootMode};
use crate::kernel::ids::StatusIds;
use crate::kernel::ipc::{Objects, Queue, Segment};
use crate::kernel::ipcns::QueueFile;
use crate::kernel::mountinfo::{self, Mount};
use crate::kernel::net::nat::{IfMatch, NatAction, NatRule, PrefixMatch};
use crate::kernel::net::{Address, IfCounters, Link};
use crate::kernel::ns::{NsKind, NsLink, NsSet};
use crate::kernel::overlay::{Entry, EntryKind, Layer};
use crate::kernel::procs::ProcInfo;
use crate::kernel::rootfs::{Origin, Summary};
use crate::lesson::{Fact, Observation};
use crate::lessons;
use crate::report::CheckReport;
use crate::views::topology::NsBox;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

// cgroup

/// A machine's layout and the /proc/PID/cgroup of a process on it.
pub fn layout(mountinfo: &str, v2_controllers: &str, proc: &str) -> (Layout, Vec<ProcCgroup>) {
    (
        cgroup_mountinfo::layout_from(mountinfo, v2_controllers).unwrap(),
        cgroup_mountinfo::parse_proc_cgroup(proc),
    )
}

/// This machine: systemd-less hybrid, every v1 controller apart.
pub fn layout_hybrid_apart() -> (Layout, Vec<ProcCgroup>) {
    layout(HYBRID_APART, "hugetlb\n", HYBRID_APART_PROC)
}

pub fn layout_hybrid_systemd() -> (Layout, Vec<ProcCgroup>) {
    layout(HYBRID_SYSTEMD, "", HYBRID_SYSTEMD_PROC)
}

pub fn layout_unified() -> (Layout, Vec<ProcCgroup>) {
    layout(
        UNIFIED_DEBIAN,
        "cpuset cpu io memory hugetlb pids rdma misc\n",
        UNIFIED_PROC,
    )
}

fn value(c: Concept, v: CgVersion, r: Reading) -> ConceptValue {
    ConceptValue {
        concept: c,
        label: c.label(),
        version: v,
        file: c.file_label(v),
        path: PathBuf::from("/sys/fs/cgroup/x"),
        reading: Ok(r),
    }
}

/// A v1 cgroup in two hierarchies and every kind of reading it has.
pub fn cgroup_v1() -> (Vec<CgDir>, Vec<ConceptValue>) {
    let v1 = CgVersion::V1;
    let dirs = vec![
        CgDir {
            version: v1,
            controllers: vec!["memory".into()],
            path: "/sys/fs/cgroup/memory/nslab/oom".into(),
        },
        CgDir {
            version: v1,
            controllers: vec!["cpu".into()],
            path: "/sys/fs/cgroup/cpu/nslab/oom".into(),
        },
    ];
    let vals = vec![
        value(
            Concept::MemoryLimit,
            v1,
            Reading::Limit(Max::Value(31_457_280)),
        ),
        value(Concept::MemoryUsage, v1, Reading::Bytes(1_234_944)),
        value(Concept::OomKills, v1, Reading::Count(1)),
        value(
            Concept::CpuQuota,
            v1,
            Reading::CpuQuota(CpuQuota {
                quota_us: Some(10_000),
                period_us: 100_000,
            }),
        ),
        value(
            Concept::CpuStat,
            v1,
            Reading::CpuStat(CpuStat {
                nr_periods: 50,
                nr_throttled: 48,
                throttled: Time::new(4_321_000_000, TimeUnit::Ns),
            }),
        ),
        value(
            Concept::CpuWeight,
            v1,
            Reading::CpuWeight(CpuWeight::from_shares(1024)),
        ),
        value(
            Concept::CpuUsage,
            v1,
            Reading::CpuTime(Time::new(512_000_000, TimeUnit::Ns)),
        ),
        value(Concept::PidsLimit, v1, Reading::Limit(Max::Unlimited)),
        value(Concept::Procs, v1, Reading::Pids(vec![4242, 4243])),
    ];
    (dirs, vals)
}

/// v2 values, one of them unreadable.
pub fn values_v2() -> Vec<ConceptValue> {
    let v2 = CgVersion::V2;
    let mut vals = vec![
        value(Concept::MemoryLimit, v2, Reading::Limit(Max::Unlimited)),
        value(Concept::MemoryFailcnt, v2, Reading::Count(87)),
        value(
            Concept::CpuQuota,
            v2,
            Reading::CpuQuota(CpuQuota {
                quota_us: None,
                period_us: 100_000,
            }),
        ),
        value(
            Concept::CpuStat,
            v2,
            Reading::CpuStat(CpuStat {
                nr_periods: 40,
                nr_throttled: 36,
                throttled: Time::new(3_612_054, TimeUnit::Us),
            }),
        ),
        value(
            Concept::CpuWeight,
            v2,
            Reading::CpuWeight(CpuWeight::from_weight(100)),
        ),
        value(Concept::PidsLimit, v2, Reading::Limit(Max::Value(20))),
        value(Concept::Procs, v2, Reading::Pids(vec![])),
    ];
    vals.push(ConceptValue {
        reading: Err("reading /sys/fs/cgroup/x/memory.peak: No such file or directory".into()),
        ..value(Concept::MemoryPeak, v2, Reading::Count(0))
    });
    vals
}

/// The kernel's report of an OOM kill in a memory cgroup, both of its lines.
pub fn oom_kill() -> OomKill {
    let rec = crate::kernel::cgroup::kmsg::Record {
        seq: 424,
        usec: 785793266,
        message: "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/mytest,task_memcg=/mytest,task=tail,pid=16804,uid=0".into(),
    };
    let mut k = crate::kernel::cgroup::kmsg::parse_oom_kill(&rec).unwrap();
    k.killed_line = Some("Memory cgroup out of memory: Killed process 16804 (tail) total-vm:33444kB, anon-rss:30592kB, file-rss:1456kB, shmem-rss:0kB, UID:0 pgtables:108kB oom_score_adj:0".into());
    k
}

/// Two CPU hogs' quotas and shares, as lesson 4 tabulates them.
pub fn hog_stalls() -> (Vec<&'static str>, Vec<Vec<String>>) {
    let row = |name: &str, quota: &str, share: &str, stall: &str| -> Vec<String> {
        vec![name.into(), quota.into(), share.into(), stall.into()]
    };
    (
        vec!["", "quota / period", "average share", "longest stall"],
        vec![
            row("nslab/cpu-1ms", "1000 µs / 10000 µs", "10.0%", "9.1 ms"),
            row(
                "nslab/cpu-100ms",
                "100000 µs / 1000000 µs",
                "9.9%",
                "902.4 ms",
            ),
        ],
    )
}

// chart

/// An unlimited hog on one CPU.
pub const HOG: [f64; 8] = [97.0, 99.5, 100.0, 96.2, 88.0, 99.9, 100.0, 98.4];
/// A 10% quota over a short period: the share stays near it.
pub const SMOOTH: [f64; 10] = [10.2, 9.8, 10.0, 10.1, 9.9, 10.0, 10.3, 9.7, 10.0, 10.0];
/// A 10% quota of 100 ms in 1 s: the whole quota in one burst, then nothing until the next
/// period.
pub const BURSTY: [f64; 20] = [
    100.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 62.0, 38.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    0.0, 0.0,
];
/// Two weights sharing one CPU, then one of them alone.
pub const WEIGHTS: [f64; 5] = [25.0, 24.1, 26.3, 75.0, 74.0];

// check and watch

/// Check 1's expected facts, as a passing check observes them.
pub fn expected_facts() -> Vec<Fact> {
    lessons::find("1")
        .unwrap()
        .expected_check
        .lines()
        .filter_map(|l| {
            l.split_once(": ")
                .or_else(|| l.strip_suffix(':').map(|n| (n, "")))
        })
        .map(|(n, v)| Fact::new(n, v))
        .collect()
}

/// Check 1 judged on `facts`, with the commands to see it for yourself.
pub fn judged_with(
    facts: Vec<Fact>,
    problem: Option<&'static str>,
    verify: Vec<String>,
) -> CheckReport {
    crate::checks::report(
        lessons::find("1").unwrap(),
        Observation {
            judged: "PID namespace 4026532000: PID 1 is bash (host PID 4321)".into(),
            facts,
            problem,
            verify,
            notes: vec![],
        },
    )
}

/// Check 1 judged on `facts`.
pub fn judged(facts: Vec<Fact>, problem: Option<&'static str>) -> CheckReport {
    judged_with(facts, problem, vec![])
}

/// Check 1's facts with the last one wrong: ps inside lists the host's processes.
pub fn last_fact_wrong() -> Vec<Fact> {
    let mut facts = expected_facts();
    let last = facts.len() - 1;
    facts[last].value = "the host's (ps inside lists every host process)".into();
    facts
}

/// Check 1 not passed: /proc not mounted again, with its hint and a command to look.
pub fn failing_report() -> CheckReport {
    judged_with(
        last_fact_wrong(),
        Some("no-mount-proc"),
        vec!["sudo nsenter -t 4321 -p -m ps aux".into()],
    )
}

// container

pub fn busybox_root() -> Summary {
    Summary {
        path: PathBuf::from("/var/tmp/nslab-rootfs-1-a"),
        origin: Origin::Busybox {
            source: PathBuf::from("/bin/busybox"),
            applets: 402,
        },
        top: [
            "bin", "dev", "etc", "proc", "root", "sbin", "sys", "tmp", "usr",
        ]
        .map(String::from)
        .to_vec(),
        files: 4,
        dirs: 12,
        symlinks: 402,
        bytes: 2_142_208,
    }
}

/// A chroot escaped from, and a pivot_root that held.
pub fn escapes() -> (EscapeReport, EscapeReport) {
    let inside: Vec<String> = ["bin", "dev", "proc"].map(String::from).to_vec();
    let host: Vec<String> = ["bin", "etc", "home", "var"].map(String::from).to_vec();
    let chroot = EscapeReport {
        mode: RootMode::Chroot,
        inside: inside.clone(),
        after: host,
        escaped: true,
    };
    let pivot = EscapeReport {
        mode: RootMode::PivotRoot,
        inside: inside.clone(),
        after: inside,
        escaped: false,
    };
    (chroot, pivot)
}

/// A container's mounts, then the host's root.
pub fn container_mounts() -> Vec<Mount> {
    mountinfo::parse(
        "\
1200 1100 254:0 /var/tmp/nslab-rootfs-1-a / rw,relatime - ext4 /dev/vda rw
1201 1200 0:90 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
1202 1200 0:91 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
",
    )
}

/// Every capability on the host; runc's default set and no_new_privs in the container.
pub fn privileges() -> [(String, Privileges); 2] {
    let host = Privileges {
        permitted: 0x1ff_ffff_ffff,
        effective: 0x1ff_ffff_ffff,
        bounding: 0x1ff_ffff_ffff,
        ..Privileges::default()
    };
    let inside = Privileges {
        permitted: 0x2000_0420,
        effective: 0x2000_0420,
        bounding: 0x2000_0420,
        no_new_privs: true,
        ..Privileges::default()
    };
    [
        ("nslab (PID 10)".into(), host),
        ("container (PID 20)".into(), inside),
    ]
}

pub fn masked_paths() -> [MaskedPath; 2] {
    [
        MaskedPath {
            path: "/proc/acpi".into(),
            host: PathSeen::Dir { entries: 5 },
            inside: PathSeen::Dir { entries: 0 },
        },
        MaskedPath {
            path: "/proc/kcore".into(),
            host: PathSeen::File {
                bytes: 1 << 20,
                more: true,
            },
            inside: PathSeen::CharDevice {
                major: 1,
                minor: 3,
                bytes: 0,
            },
        },
    ]
}

pub fn network_columns() -> Vec<(String, Vec<String>, usize)> {
    vec![
        ("host".into(), vec!["lo".into(), "eth0".into()], 3),
        ("container".into(), vec!["lo".into()], 0),
    ]
}

// ids

/// A process's IDs: the same `uid` for every ID and group, `cap` for every set.
pub fn status_ids(uid: u32, cap: u64) -> StatusIds {
    StatusIds {
        uid: [uid; 4],
        gid: [uid; 4],
        groups: vec![65534],
        cap_eff: cap,
        cap_prm: cap,
        cap_bnd: cap,
    }
}

// ipc

/// A segment and a queue, as a new IPC namespace does not have them.
pub fn ipc_objects() -> Objects {
    Objects {
        segments: vec![Segment {
            key: 0x6e73_0001,
            id: 32769,
            perms: 0o600,
            bytes: 4096,
            creator: 4242,
            attached: 0,
            ctime: 1,
        }],
        queues: vec![Queue {
            key: 0x6e73_0001,
            id: 3,
            perms: 0o600,
            bytes: 11,
            messages: 1,
            ctime: 1,
        }],
    }
}

pub fn queue_files() -> Vec<QueueFile> {
    vec![QueueFile {
        name: "nslab-queue".into(),
        contents: "QSIZE:5          NOTIFY:0     SIGNO:0     NOTIFY_PID:0".into(),
    }]
}

pub fn hostnames() -> Vec<(String, Option<u64>, String)> {
    vec![
        ("nslab (PID 10)".into(), Some(4026531838), "lab-host".into()),
        (
            "child (PID 11)".into(),
            Some(4026532901),
            "nslab-uts".into(),
        ),
    ]
}

// mounts

/// Lesson 7's mounts: a tmpfs, a shared and a slave mount under it, a bind mount.
pub fn lesson_mounts() -> Vec<Mount> {
    mountinfo::parse(
        "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
         300 27 0:60 / /var/tmp/nslab-mount-1 rw,relatime - tmpfs nslab rw\n\
         301 300 0:60 /prop /var/tmp/nslab-mount-1/prop rw,relatime shared:412 - tmpfs nslab rw\n\
         302 301 0:61 / /var/tmp/nslab-mount-1/prop/one rw master:412 - tmpfs nslab rw\n\
         303 300 0:60 /bind/src /var/tmp/nslab-mount-1/bind/dst ro,relatime - tmpfs nslab rw\n",
    )
}

/// Where lesson 7 mounts, shown as `BASE`.
pub const MOUNT_BASE: &str = "/var/tmp/nslab-mount-1";

fn entry(path: &str, kind: EntryKind, preview: Option<&str>) -> Entry {
    Entry {
        path: path.into(),
        kind,
        size: 3,
        ctime_ns: 0,
        preview: preview.map(str::to_string),
    }
}

/// An overlay's layers after a copy-up and a whiteout: lower2, upper, an empty work
/// directory and one that cannot be read.
pub fn overlay_layers() -> (Vec<&'static str>, Vec<Layer>) {
    let upper = Layer {
        dir: "upper".into(),
        entries: vec![
            entry("b.txt", EntryKind::File, Some("b from lower2")),
            entry("c.txt", EntryKind::Whiteout, None),
        ],
        ..Layer::default()
    };
    let lower = Layer {
        dir: "lower2".into(),
        entries: vec![
            entry("b.txt", EntryKind::File, Some("b from lower2")),
            entry("c.txt", EntryKind::File, Some("c from lower2")),
            entry("etc", EntryKind::Dir, None),
        ],
        ..Layer::default()
    };
    let gone = Layer {
        dir: "x".into(),
        unreadable: Some("No such file or directory (os error 2)".into()),
        ..Layer::default()
    };
    (
        vec!["lower2", "upper", "work", "x"],
        vec![lower, upper, Layer::default(), gone],
    )
}

// nat

pub fn nat_rule(table: &str, action: NatAction, xt: bool) -> NatRule {
    NatRule {
        family: "ip".into(),
        table: table.into(),
        chain: "postrouting".into(),
        hook: Some("postrouting".into()),
        handle: 2,
        source: Some(PrefixMatch {
            addr: Ipv4Addr::new(10, 203, 7, 0),
            len: 24,
            negated: false,
        }),
        out_interface: Some(IfMatch {
            name: "nslab7h".into(),
            negated: true,
        }),
        action,
        other_matches: vec![],
        xt_target: xt,
    }
}

/// A masquerade, an SNAT added by iptables-nft, a rule iptables cannot say.
pub fn nat_rules() -> Vec<NatRule> {
    let mut snat = nat_rule(
        "nat",
        NatAction::Snat {
            to: Some(Ipv4Addr::new(192, 0, 2, 2)),
        },
        true,
    );
    snat.out_interface = None;
    snat.chain = "POSTROUTING".into();
    let mut other = nat_rule(
        "nslab-9",
        NatAction::Other {
            what: "verdict".into(),
        },
        false,
    );
    other.other_matches.push("ct".into());
    vec![
        nat_rule("nslab-lesson-7", NatAction::Masquerade, false),
        snat,
        other,
    ]
}

// net

/// A link; `peer` is a veth's (peer ifindex, link-netnsid).
pub fn link(index: u32, name: &str, kind: &str, up: bool, peer: Option<(u32, i32)>) -> Link {
    let mut flags: Vec<String> = if kind == "loopback" {
        vec!["LOOPBACK".into()]
    } else {
        vec!["BROADCAST".into(), "MULTICAST".into()]
    };
    if up {
        flags.extend(["UP".to_string(), "LOWER_UP".to_string()]);
    }
    Link {
        index,
        name: name.into(),
        kind: kind.into(),
        flags,
        admin_up: up,
        lower_up: up,
        operstate: if up { "UP" } else { "DOWN" }.into(),
        mtu: if kind == "loopback" { 65536 } else { 1500 },
        mac: Some("02:00:00:00:00:01".into()),
        peer_index: peer.map(|p| p.0),
        link_netnsid: peer.map(|p| p.1),
        master: None,
    }
}

pub fn addr(index: u32, ifname: &str, ip: &str, prefix: u8) -> Address {
    let address: IpAddr = ip.parse().unwrap();
    Address {
        index,
        ifname: ifname.into(),
        family: if address.is_ipv4() { "inet" } else { "inet6" }.into(),
        address,
        prefix_len: prefix,
        scope: if ip.starts_with("127.") {
            "host"
        } else {
            "global"
        }
        .into(),
    }
}

/// A new namespace's loopback (down) and a veth end whose peer is in netnsid 0.
pub fn new_namespace_links() -> Vec<Link> {
    vec![
        link(1, "lo", "loopback", false, None),
        link(5, "nslab-red0", "veth", true, Some((4, 0))),
    ]
}

pub fn red_addresses() -> Vec<Address> {
    vec![
        addr(1, "lo", "127.0.0.1", 8),
        addr(5, "nslab-red0", "10.200.0.1", 24),
    ]
}

/// A veth end's counters before and after one ping.
pub fn ping_counters() -> (Vec<IfCounters>, Vec<IfCounters>) {
    let before = vec![IfCounters {
        name: "nslab-red0".into(),
        tx_packets: 3,
        tx_bytes: 266,
        ..Default::default()
    }];
    let after = vec![IfCounters {
        name: "nslab-red0".into(),
        rx_packets: 1,
        rx_bytes: 98,
        tx_packets: 4,
        tx_bytes: 364,
        ..Default::default()
    }];
    (before, after)
}

// ns

/// A process's namespace links, inodes counting up from `base`, or every one unreadable.
pub fn ns_set(pid: i32, base: u64, unreadable: bool) -> NsSet {
    NsSet {
        pid,
        links: NsKind::ALL
            .iter()
            .enumerate()
            .map(|(i, &kind)| NsLink {
                kind,
                inode: (!unreadable).then_some(base + i as u64),
                unreadable: unreadable.then(|| "permission denied".to_string()),
            })
            .collect(),
    }
}

/// nslab, a child in a PID namespace of its own, and PID 1 (unreadable).
pub fn ns_sets() -> [NsSet; 3] {
    let a = ns_set(10, 4026531835, false);
    let mut b = ns_set(20, 4026531835, false);
    b.links[4].inode = Some(4026532999); // pid
    b.links[5].inode = Some(4026532999); // pid_for_children
    [a, b, ns_set(1, 0, true)]
}

/// The mountinfo line of a network namespace kept by `ip netns add`.
pub const NETNS_MOUNT_LINE: &str = "612 590 0:4 net:[4026532999] /run/netns/nslab-blue rw,nosuid,nodev,noexec,relatime shared:301 - nsfs nsfs rw";

// procs

pub fn proc_info(pid: i32, ppid: i32, nspid: Vec<i32>, cmd: &str) -> ProcInfo {
    ProcInfo {
        pid,
        ppid,
        comm: cmd.split(' ').next().unwrap_or("").to_string(),
        cmdline: cmd.to_string(),
        state: 'S',
        uid: 0,
        start_time: 1,
        nspid,
        pid_ns: Some(4026532000),
    }
}

/// bash as PID 1 of a new PID namespace, and ps it ran.
pub fn pid_ns_procs() -> Vec<ProcInfo> {
    vec![
        proc_info(1, 0, vec![4321, 1], "bash"),
        proc_info(2, 1, vec![4322, 2], "ps aux"),
    ]
}

pub fn sleepers() -> Vec<ProcInfo> {
    (1..=5)
        .map(|i| proc_info(i, 0, vec![i], "sleep 1"))
        .collect()
}

// table

/// Processes, one with a command line longer than a screen.
pub fn processes() -> (Vec<&'static str>, Vec<Vec<String>>) {
    let cmd = "/usr/lib/systemd/systemd --user --deserialize=61 --log-level=info a very long command line";
    (
        vec!["PID", "PPID", "NSPID", "STAT", "COMMAND"],
        vec![
            vec![
                "13287".into(),
                "13286".into(),
                "13287 1".into(),
                "S".into(),
                cmd.into(),
            ],
            vec![
                "2".into(),
                "1".into(),
                "2".into(),
                "R".into(),
                "ps aux".into(),
            ],
        ],
    )
}

/// Namespaces of three processes and what each isolates: too wide for 80 columns.
pub fn namespace_columns() -> (Vec<&'static str>, Vec<Vec<String>>) {
    let row = |ns: &str, what: &str| -> Vec<String> {
        vec![
            ns.into(),
            "4026531835".into(),
            "4026532999 *".into(),
            "(permission denied)".into(),
            what.into(),
        ]
    };
    (
        vec![
            "NAMESPACE",
            "nslab (PID 10)",
            "child (PID 20)",
            "PID 1",
            "ISOLATES",
        ],
        vec![
            row("time_for_children", "time namespace its next children get"),
            row("pid", "process IDs"),
        ],
    )
}

// topology

/// nslab-red and nslab-blue joined by a veth pair, blue's end up or down.
pub fn red_blue(blue_up: bool) -> Vec<NsBox> {
    vec![
        NsBox {
            name: "nslab-red".into(),
            links: vec![
                link(1, "lo", "loopback", true, None),
                link(5, "nslab-red0", "veth", true, Some((4, 0))),
            ],
            addresses: vec![
                addr(1, "lo", "127.0.0.1", 8),
                addr(5, "nslab-red0", "10.200.0.1", 24),
            ],
        },
        NsBox {
            name: "nslab-blue".into(),
            links: vec![
                link(4, "nslab-blue0", "veth", blue_up, Some((5, 0))),
                link(1, "lo", "loopback", false, None),
            ],
            addresses: vec![addr(4, "nslab-blue0", "10.200.0.2", 24)],
        },
    ]
}

/// Which box a netnsid seen from box `i` means: of two boxes, the other one.
pub fn other_box(i: usize, _id: i32) -> Option<usize> {
    Some(1 - i)
}
