//! Lesson 5's step d: what a runtime takes from root inside the container, read from the
//! kernel: capability sets, no_new_privs, masked paths.

use crate::kernel::container::{self, PathSeen};
use crate::kernel::ids::cap_names;
use crate::lesson::Stage;
use crate::views;
use anyhow::Result;

/// Capabilities worth naming when they are gone: each reaches the host's kernel.
const NOTABLE: u64 = (1 << 21) | (1 << 12) | (1 << 16) | (1 << 27) | (1 << 19);

/// The lines of the container's start (`calls`, as step b showed them) that `keep` selects.
fn lines_of(calls: &[String], keep: impl Fn(&str) -> bool) -> Vec<String> {
    calls.iter().filter(|c| keep(c)).cloned().collect()
}

/// Step d, on the running container of PID `pid1`, whose start made `calls`.
pub fn step_d(pid1: i32, calls: &[String], stage: &mut Stage) -> Result<()> {
    let me = std::process::id() as i32;
    stage.command(&format!(
        "grep -E '^(Cap|NoNewPrivs)' /proc/{me}/status /proc/{pid1}/status"
    ));
    let host = container::privileges_of(me)?;
    let inside = container::privileges_of(pid1)?;
    stage.view(
        "Capability sets and no_new_privs, nslab's and the container's (/proc/PID/status)",
        &views::container::privileges(&[
            (format!("nslab (PID {me})"), host),
            (format!("container (PID {pid1})"), inside),
        ]),
    );
    stage.command(&format!(
        "capsh --decode={:016x}; capsh --decode={:016x}",
        inside.effective,
        host.bounding & !inside.bounding
    ));
    stage.view(
        "What the container keeps (its CapEff decoded)",
        &views::ids::capabilities(inside.effective),
    );
    let gone = host.bounding & !inside.bounding;
    stage.view(
        "What it lost (in nslab's CapBnd, not in the container's)",
        &views::ids::capabilities(gone),
    );
    let notable = cap_names(gone & NOTABLE);
    stage.say(&format!(
        "PID 1 was cloned from nslab with all of nslab's sets; it kept {} of them. Gone {}: no \
         program it executes can get them back, not even a setuid-root one.",
        cap_names(inside.effective).len(),
        if notable.is_empty() {
            "from its bounding set".to_string()
        } else {
            format!(
                "from its bounding set, among others: {}",
                notable.join(", ")
            )
        }
    ));
    stage.command(
        "sudo setpriv --no-new-privs --inh-caps=-all --ambient-caps=-all \\\n    \
         --bounding-set=-all,+kill,+net_bind_service,+audit_write -- sleep 1000",
    );
    stage.ui.syscalls(&lines_of(calls, |c| {
        c.starts_with("prctl(") || c.starts_with("capget(") || c.starts_with("capset(")
    }));
    stage.say(&format!(
        "These were PID 1's last calls before execve (step b's list). NoNewPrivs is {} for nslab and {} \
         inside: from then on no execve adds a privilege, and a child inherits the flag; it cannot be \
         cleared.",
        u8::from(host.no_new_privs),
        u8::from(inside.no_new_privs)
    ));
    stage.command(
        "sudo mount --bind /dev/null /proc/keys        # each masked file\n\
         sudo mount -t tmpfs -o ro tmpfs /proc/acpi    # each masked directory",
    );
    let masked = container::masked_paths_of(pid1);
    stage.ui.syscalls(&lines_of(calls, |c| {
        c.starts_with("mount(")
            && masked
                .iter()
                .any(|m| c.contains(&format!(", \"{}\", ", m.path)))
    }));
    stage.view(
        &format!(
            "runc's masked paths this kernel has, read on the host and in PID {pid1}'s mounts"
        ),
        &views::container::masked(&masked, &format!("IN THE CONTAINER (PID {pid1})")),
    );
    let empty = masked
        .iter()
        .filter(|m| {
            matches!(
                m.inside,
                PathSeen::Dir { entries: 0 } | PathSeen::CharDevice { bytes: 0, .. }
            )
        })
        .count();
    stage.say(&format!(
        "{empty} of the {} read as nothing inside, while the host's are there: the files are \
         still in the container's /proc, covered by a mount the container's root cannot remove \
         without CAP_SYS_ADMIN.",
        masked.len()
    ));
    Ok(())
}
