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

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: i32, ppid: i32, nspid: Vec<i32>, cmd: &str) -> ProcInfo {
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

    #[test]
    fn shows_nspid_column() {
        let t = table(&[
            p(1, 0, vec![4321, 1], "bash"),
            p(2, 1, vec![4322, 2], "ps aux"),
        ]);
        insta::assert_snapshot!(t, @r"
        PID  PPID  NSPID   STAT  COMMAND
        1    0     4321 1  S     bash
        2    1     4322 2  S     ps aux
        ");
    }

    #[test]
    fn summary_counts_the_rest() {
        let all: Vec<ProcInfo> = (1..=5).map(|i| p(i, 0, vec![i], "sleep 1")).collect();
        insta::assert_snapshot!(summary(&all, 2), @r"
        PID  PPID  NSPID  STAT  COMMAND
        1    0     1      S     sleep 1
        2    0     2      S     sleep 1
        … and 3 more (5 processes in all)
        ");
    }
}
