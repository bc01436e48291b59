//! What nslab can put on record: one variant per kind of object it creates.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Something nslab created on the live system.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Resource {
    /// A child process nslab started (PID plus start time, so a reused PID is never killed).
    Process { pid: i32, start_time: u64 },
    /// A cgroup directory nslab made (absolute path under /sys/fs/cgroup).
    Cgroup { path: PathBuf },
    /// A mount nslab made in the host's mount namespace.
    Mount { path: PathBuf },
    /// A named network namespace (/run/netns/NAME).
    NetNs { name: String },
    /// A network link in the host namespace (a veth end, a bridge).
    Link { name: String },
    /// A directory or file tree nslab made (a root filesystem in a temporary place).
    Dir { path: PathBuf },
    /// An nftables table nslab made (`table ip nslab-<id>`, the NAT of `nslab run --net`).
    NftTable { family: String, name: String },
    /// A System V shared memory segment made in the IPC namespace `ipc_ns` (its inode) by
    /// process `creator`; its shmid is the identity written beside it.
    SysvShm { key: i32, ipc_ns: u64, creator: i32 },
    /// A System V message queue made in the IPC namespace `ipc_ns`; its msqid is the
    /// identity written beside it.
    SysvMsg { key: i32, ipc_ns: u64 },
}

impl Resource {
    /// The `kind` of each variant in a run file (kept whole by a test).
    pub const KINDS: [&'static str; 9] = [
        "process",
        "cgroup",
        "mount",
        "net_ns",
        "link",
        "dir",
        "nft_table",
        "sysv_shm",
        "sysv_msg",
    ];

    pub fn describe(&self) -> String {
        match self {
            Resource::Process { pid, .. } => format!("process {pid}"),
            Resource::Cgroup { path } => format!("cgroup {}", path.display()),
            Resource::Mount { path } => format!("mount {}", path.display()),
            Resource::NetNs { name } => format!("network namespace {name}"),
            Resource::Link { name } => format!("link {name}"),
            Resource::Dir { path } => format!("directory {}", path.display()),
            Resource::NftTable { family, name } => format!("nftables table {family} {name}"),
            Resource::SysvShm { key, .. } => {
                format!("shared memory segment key {:#010x}", *key as u32)
            }
            Resource::SysvMsg { key, .. } => format!("message queue key {:#010x}", *key as u32),
        }
    }
}
