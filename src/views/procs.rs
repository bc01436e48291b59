//! Process tables, like `ps -eo pid,ppid,stat,cmd`, with the NSpid column that shows one
//! process's number in every PID namespace it belongs to.

use super::table;
use crate::kernel::procs::ProcInfo;

fn command(p: &ProcInfo) -> String {
    if p.cmdline.is_empty() {
        format!("[{}]", p.comm)
    } else {
        let c: String = p.cmdline.chars().take(60).collect();
        if p.cmdline.chars().count() > 60 {
            format!("{c}…")
        } else {
            c
        }
    }
}

fn nspid(p: &ProcInfo) -> String {
    p.nspid
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A ps-like table of `procs`.
pub fn table(procs: &[ProcInfo]) -> String {
    if procs.is_empty() {
        return "(no processes)\n".into();
    }
    let rows: Vec<Vec<String>> = procs
        .iter()
        .map(|p| {
            vec![
                p.pid.to_string(),
                p.ppid.to_string(),
                nspid(p),
                p.state.to_string(),
                command(p),
            ]
        })
        .collect();
    table::render(&["PID", "PPID", "NSPID", "STAT", "COMMAND"], &rows)
}

/// A long table shortened to its first `head` rows, with a count of the rest.
pub fn summary(procs: &[ProcInfo], head: usize) -> String {
    if procs.len() <= head {
        return table(procs);
    }
    let mut out = table(&procs[..head]);
    out.push_str(&format!(
        "… and {} more ({} processes in all)\n",
        procs.len() - head,
        procs.len()
    ));
    out
}
