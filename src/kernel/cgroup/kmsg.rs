//! The kernel's own log (`/dev/kmsg`): the OOM killer's report of a kill in a memory
//! cgroup, `oom-kill:constraint=CONSTRAINT_MEMCG,…,oom_memcg=/nslab/oom,…,pid=1234,…`.
//!
//! Read without blocking (O_NONBLOCK: EAGAIN at the end of the buffer); not readable
//! (dmesg_restrict for non-root, a container) is `None`, never an error, because the
//! kernel log is corroboration, not the only evidence.

use serde::Serialize;
use std::io::Read;

/// One record: `prio,seq,usec,flags;message` (continuation lines ` KEY=v` dropped).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Record {
    pub seq: u64,
    /// Microseconds since boot.
    pub usec: u64,
    pub message: String,
}

pub fn parse_record(raw: &str) -> Option<Record> {
    let (head, rest) = raw.split_once(';')?;
    let mut f = head.split(',');
    let _prio = f.next()?;
    let seq = f.next()?.parse().ok()?;
    let usec = f.next()?.parse().ok()?;
    let message = rest.lines().next().unwrap_or("").to_string();
    Some(Record { seq, usec, message })
}

/// The kernel's summary line of one OOM kill.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OomKill {
    pub seq: u64,
    pub usec: u64,
    /// CONSTRAINT_MEMCG for a cgroup limit, CONSTRAINT_NONE for the whole machine.
    pub constraint: String,
    /// The cgroup whose limit was hit (path as in /proc/PID/cgroup of that hierarchy).
    pub oom_memcg: Option<String>,
    /// The victim's cgroup.
    pub task_memcg: Option<String>,
    pub task: String,
    pub pid: i32,
    /// The line exactly as the kernel wrote it.
    pub line: String,
    /// The "Memory cgroup out of memory: Killed process …" line that follows, if found.
    pub killed_line: Option<String>,
}

/// `oom-kill:constraint=…,oom_memcg=…,task=…,pid=…` → its fields.
pub fn parse_oom_kill(rec: &Record) -> Option<OomKill> {
    let body = rec.message.strip_prefix("oom-kill:")?;
    let mut kill = OomKill {
        seq: rec.seq,
        usec: rec.usec,
        constraint: String::new(),
        oom_memcg: None,
        task_memcg: None,
        task: String::new(),
        pid: 0,
        line: rec.message.clone(),
        killed_line: None,
    };
    // The kernel writes `…,oom_memcg=PATH,task_memcg=PATH,task=COMM,pid=N,uid=N`. COMM is
    // any process's chosen name (`a,pid=1,oom_memcg=/x` is a valid one), so the line is
    // read from both ends: pid and uid (digits) from the right, the cgroup paths from the
    // left, and the name is whatever lies between; it can never stand for another field.
    let (rest, uid) = body.rsplit_once(",uid=")?;
    let (rest, pid) = rest.rsplit_once(",pid=")?;
    if !is_number(uid) || !is_number(pid) {
        return None;
    }
    kill.pid = pid.parse().ok()?;
    let memcg_at = rest.find(",task_memcg=");
    let task_at = match memcg_at {
        Some(m) => m + rest[m..].find(",task=")?,
        None => rest.find(",task=")?,
    };
    kill.task = rest[task_at + ",task=".len()..].to_string();
    let head = &rest[..task_at];
    kill.constraint = head
        .strip_prefix("constraint=")?
        .split(',')
        .next()
        .unwrap_or("")
        .to_string();
    let memcg_end = memcg_at.unwrap_or(head.len());
    if let Some(o) = head[..memcg_end].find(",oom_memcg=") {
        kill.oom_memcg = Some(head[o + ",oom_memcg=".len()..memcg_end].to_string());
    }
    if let Some(m) = memcg_at {
        kill.task_memcg = Some(head[m + ",task_memcg=".len()..].to_string());
    }
    Some(kill)
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Every OOM kill in a sequence of records, each with its "Killed process" line.
pub fn oom_kills(records: &[Record]) -> Vec<OomKill> {
    let mut out: Vec<OomKill> = Vec::new();
    for r in records {
        if let Some(k) = parse_oom_kill(r) {
            out.push(k);
        } else if r.message.contains("Killed process") {
            if let Some(last) = out.last_mut() {
                if last.killed_line.is_none()
                    && r.message.contains(&format!("process {} ", last.pid))
                {
                    last.killed_line = Some(r.message.clone());
                }
            }
        }
    }
    out
}

/// Every record in the kernel's buffer now; `None` if /dev/kmsg cannot be read here.
pub fn read_records() -> Option<Vec<Record>> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .ok()?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // One read returns exactly one record.
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if let Some(r) = parse_record(&String::from_utf8_lossy(&buf[..n])) {
                    out.push(r);
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue, // overwritten: skip on
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return if out.is_empty() { None } else { Some(out) },
        }
    }
    Some(out)
}

/// The OOM kills the kernel logged for cgroup `memcg_path` (as /proc/PID/cgroup spells
/// it), oldest first; `None` when the log is not readable.
pub fn oom_kills_in(memcg_path: &str) -> Option<Vec<OomKill>> {
    let all = oom_kills(&read_records()?);
    Some(
        all.into_iter()
            .filter(|k| {
                k.oom_memcg.as_deref() == Some(memcg_path)
                    || k.task_memcg.as_deref() == Some(memcg_path)
            })
            .collect(),
    )
}

/// The highest sequence number now in the log (a "before" mark, so a lesson shows only
/// the lines its own hog caused).
pub fn last_seq() -> Option<u64> {
    read_records()?.last().map(|r| r.seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real OOM in a v1 memory cgroup on this machine (kernel 6.18, `tail /dev/zero` in a
    /// 30M cgroup), records as /dev/kmsg delivered them (middle of the report elided).
    const V1_RECORDS: [&str; 6] = [
        "4,347,785792840,-;tail invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0\n",
        "4,348,785792854,-;CPU: 1 UID: 0 PID: 16804 Comm: tail Not tainted 6.18.44-fc-v595 #1 PREEMPT(none) \n",
        "6,399,785793188,-;hierarchical_memory_limit 31457280\n",
        "6,423,785793258,-;[  16804]     0 16804     8361     8012     7648      364         0   110592        0             0 tail\n",
        "6,424,785793266,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/process_api/c49a7a97abc9d246832d7cbfb74ff8d5/nslabt-capture,task_memcg=/process_api/c49a7a97abc9d246832d7cbfb74ff8d5/nslabt-capture,task=tail,pid=16804,uid=0\n",
        "3,425,785793298,-;Memory cgroup out of memory: Killed process 16804 (tail) total-vm:33444kB, anon-rss:30592kB, file-rss:1456kB, shmem-rss:0kB, UID:0 pgtables:108kB oom_score_adj:0\n SUBSYSTEM=memory\n",
    ];

    /// Pure v2 (Debian's 6.1 cloud kernel, cgroup_no_v1=all, nslab's lesson 3 in a systemd-like
    /// tree): the message as that kernel wrote it, in /dev/kmsg's record framing.
    const V2_KILL: &str = "6,1021,31841204,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=user.slice,mems_allowed=0,oom_memcg=/user.slice/user-0.slice/nslab/oom,task_memcg=/user.slice/user-0.slice/nslab/oom,task=nslab-hog,pid=261,uid=0";

    #[test]
    fn finds_the_memcg_kill_and_its_killed_line() {
        let recs: Vec<Record> = V1_RECORDS.iter().filter_map(|r| parse_record(r)).collect();
        assert_eq!(recs.len(), 6);
        assert_eq!(
            recs[5].message.lines().count(),
            1,
            "continuation lines dropped"
        );
        let kills = oom_kills(&recs);
        assert_eq!(kills.len(), 1);
        let k = &kills[0];
        assert_eq!(k.constraint, "CONSTRAINT_MEMCG");
        assert_eq!(
            k.oom_memcg.as_deref(),
            Some("/process_api/c49a7a97abc9d246832d7cbfb74ff8d5/nslabt-capture")
        );
        assert_eq!(k.pid, 16804);
        assert_eq!(k.task, "tail");
        assert_eq!(k.seq, 424);
        assert!(k
            .killed_line
            .as_deref()
            .unwrap()
            .starts_with("Memory cgroup out of memory: Killed process 16804 (tail)"));
    }

    #[test]
    fn a_process_name_cannot_stand_for_another_field() {
        for comm in [
            "a,pid=7",
            ",oom_memcg=/x",
            "t,task=u",
            "x,uid=0,pid=9",
            "=,,=",
        ] {
            let line = format!(
                "6,1021,31841204,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),\
                 cpuset=/,mems_allowed=0,oom_memcg=/nslab/oom,task_memcg=/nslab/oom,\
                 task={comm},pid=261,uid=0"
            );
            let k = parse_oom_kill(&parse_record(&line).unwrap()).unwrap();
            assert_eq!(k.task, comm);
            assert_eq!(k.pid, 261, "{comm}");
            assert_eq!(k.oom_memcg.as_deref(), Some("/nslab/oom"), "{comm}");
            assert_eq!(k.task_memcg.as_deref(), Some("/nslab/oom"), "{comm}");
            assert_eq!(k.constraint, "CONSTRAINT_MEMCG");
        }
    }

    #[test]
    fn odd_lines_are_not_kills() {
        for body in [
            "oom-kill:",
            "oom-kill:constraint=X,task=a,pid=x,uid=0",
            "oom-kill:constraint=X,task=a,pid=1",
            "oom-kill:task=a,pid=1,uid=0",
            "oom-kill:constraint=X,pid=1,uid=0",
        ] {
            let rec = parse_record(&format!("6,1,2,-;{body}")).unwrap();
            assert_eq!(parse_oom_kill(&rec), None, "{body}");
        }
    }

    #[test]
    fn v2_line() {
        let k = parse_oom_kill(&parse_record(V2_KILL).unwrap()).unwrap();
        assert_eq!(
            k.oom_memcg.as_deref(),
            Some("/user.slice/user-0.slice/nslab/oom")
        );
        assert_eq!((k.task.as_str(), k.pid), ("nslab-hog", 261));
        assert!(parse_oom_kill(&parse_record("6,1,2,-;hello").unwrap()).is_none());
        assert!(parse_record("not a record").is_none());
    }

    #[test]
    fn reading_the_live_log_never_fails() {
        // Readable or not, it must not panic or block.
        if let Some(recs) = read_records() {
            if nix::unistd::geteuid().is_root() {
                assert!(!recs.is_empty(), "root reads at least the boot messages");
            }
        }
    }
}
