//! What check 6 reads: nslab's own UTS and IPC namespaces, hostname and System V objects,
//! every process's namespaces, and a look inside the shell the judgement picks.

use super::judge::{find, Found};
use super::{Inside, Seen, Spaces};
use crate::checks::whose::Recorded;
use crate::kernel::container;
use crate::kernel::ipc;
use crate::kernel::ns::{self, NsKind};
use crate::kernel::procs;
use crate::lesson::CheckArgs;
use anyhow::{Context, Result};

pub(super) fn observe(args: &CheckArgs) -> Result<Seen> {
    let me = std::process::id() as i32;
    let host_uts = ns::link(me, NsKind::Uts)
        .inode
        .context("reading nslab's own /proc/self/ns/uts")?;
    let host_ipc = ipc::own_namespace()?;
    let table = procs::table().context("reading the process table")?;
    crate::checks::require_listed(
        &table,
        args.pid,
        "give the host PID of your unshare shell (ps -ef --forest | grep -A1 unshare)",
    )?;
    let spaces = table
        .iter()
        .filter(|p| !p.is_zombie())
        .map(|p| Spaces {
            pid: p.pid,
            uts: ns::link(p.pid, NsKind::Uts).inode,
            ipc: ns::link(p.pid, NsKind::Ipc).inode,
        })
        .collect();
    let mut seen = Seen {
        host_uts,
        host_ipc,
        host_hostname: container::own_hostname(),
        host_objects: ipc::own()?,
        table,
        spaces,
        recorded: Recorded::read(),
        asked: args.pid,
        inside: None,
    };
    if let Found::Shell { shell, .. } = find(&seen) {
        let pid = shell.pid;
        let start = shell.start_time;
        seen.inside = Some(Inside {
            pid,
            hostname: container::hostname_of(pid).unwrap_or_default(),
            objects: ipc::of_pid(pid)?,
            started: procs::started_at(start),
        });
    }
    Ok(seen)
}
