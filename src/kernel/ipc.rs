//! System V IPC objects: the segments and queues of an IPC namespace as
//! `/proc/sysvipc/{shm,msg}` list them (to the reader's own namespace), and the ones nslab
//! makes in the namespace it runs in, each recorded in the ledger before it is made and
//! removed (shmctl/msgctl IPC_RMID) only while it is still the object recorded.
//!
//! Objects in the host's namespace outlive every process that used them: that is why they
//! are on the ledger. Objects made inside a namespace of nslab's own end with it.

use super::ns::{self, NsKind};
use super::{sys, trace};
use crate::ledger::{self, Removal, Resource};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One shared memory segment (a row of /proc/sysvipc/shm, `ipcs -m`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub key: i32,
    pub id: i32,
    /// Permission bits, octal as ipcs shows them.
    pub perms: u32,
    pub bytes: u64,
    /// The PID (as the namespace's creator saw it) that made it.
    pub creator: i32,
    pub attached: u64,
    /// When it was made or last changed, in seconds since the epoch.
    pub ctime: i64,
}

/// One message queue (a row of /proc/sysvipc/msg, `ipcs -q`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queue {
    pub key: i32,
    pub id: i32,
    pub perms: u32,
    pub bytes: u64,
    pub messages: u64,
    pub ctime: i64,
}

/// The System V objects of one IPC namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Objects {
    pub segments: Vec<Segment>,
    pub queues: Vec<Queue>,
}

/// The rows of a /proc/sysvipc file, each as (column name, value) from its header line.
fn rows(text: &str) -> Vec<Vec<(&str, &str)>> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .map(|h| h.split_whitespace().collect())
        .unwrap_or_default();
    lines
        .map(|l| header.iter().copied().zip(l.split_whitespace()).collect())
        .filter(|r: &Vec<(&str, &str)>| !r.is_empty())
        .collect()
}

fn field<T: std::str::FromStr>(row: &[(&str, &str)], name: &str) -> Option<T> {
    row.iter().find(|(n, _)| *n == name)?.1.parse().ok()
}

fn perms(row: &[(&str, &str)]) -> Option<u32> {
    u32::from_str_radix(row.iter().find(|(n, _)| *n == "perms")?.1, 8).ok()
}

/// Parse /proc/sysvipc/shm. A row that does not parse is left out, never a panic.
pub fn parse_shm(text: &str) -> Vec<Segment> {
    rows(text)
        .iter()
        .filter_map(|r| {
            Some(Segment {
                key: field(r, "key")?,
                id: field(r, "shmid")?,
                perms: perms(r)?,
                bytes: field(r, "size")?,
                creator: field(r, "cpid")?,
                attached: field(r, "nattch")?,
                ctime: field(r, "ctime")?,
            })
        })
        .collect()
}

/// Parse /proc/sysvipc/msg.
pub fn parse_msg(text: &str) -> Vec<Queue> {
    rows(text)
        .iter()
        .filter_map(|r| {
            Some(Queue {
                key: field(r, "key")?,
                id: field(r, "msqid")?,
                perms: perms(r)?,
                bytes: field(r, "cbytes")?,
                messages: field(r, "qnum")?,
                ctime: field(r, "ctime")?,
            })
        })
        .collect()
}

/// The objects of the IPC namespace the calling process is in.
pub fn own() -> Result<Objects> {
    let read = |p: &str| std::fs::read_to_string(p).with_context(|| format!("reading {p}"));
    Ok(Objects {
        segments: parse_shm(&read("/proc/sysvipc/shm")?),
        queues: parse_msg(&read("/proc/sysvipc/msg")?),
    })
}

/// The objects of the IPC namespace `pid` is in: read by a child that joins it (setns),
/// since /proc/sysvipc answers for the reader's own namespace, whoever's /proc it is.
pub fn of_pid(pid: i32) -> Result<Objects> {
    let mut child = sys::fork_recorded(move |io| {
        let path = format!("/proc/{pid}/ns/ipc");
        let r = std::fs::File::open(&path)
            .map_err(|e| format!("open {path}: {e}"))
            .and_then(|f| {
                nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWIPC)
                    .map_err(|e| format!("setns({path}): {}", e.desc()))
            })
            .and_then(|_| own().map_err(|e| format!("{e:#}")));
        io.send(&r);
        0
    })?;
    let answer: std::result::Result<Objects, String> = child.recv(Duration::from_secs(10))?;
    let _ = child.wait(Duration::from_secs(10));
    answer.map_err(|e| anyhow!("reading the IPC objects of PID {pid}: {e}"))
}

/// The inode of nslab's own IPC namespace.
pub fn own_namespace() -> Result<u64> {
    ns::link(std::process::id() as i32, NsKind::Ipc)
        .inode
        .context("reading /proc/self/ns/ipc")
}

/// `0x6e730001`, as ipcs prints a key.
pub fn key_text(key: i32) -> String {
    format!("{:#010x}", key as u32)
}

/// The keys nslab gives the objects it makes in the host's namespace: "ns" and 16 bits of
/// its PID, so `ipcs` shows whose they are and two runs rarely meet.
pub fn nslab_key(pid: u32, attempt: u32) -> i32 {
    (0x6e73_0000_u32 | (pid.wrapping_add(attempt) & 0xffff)) as i32
}

/// Is `key` of the form [`nslab_key`] gives?
pub fn is_nslab_key(key: i32) -> bool {
    (key as u32) & 0xffff_0000 == 0x6e73_0000
}

/// A key as strace shows it in a call: IPC_PRIVATE for 0.
fn shown_key(key: i32) -> String {
    if key == libc::IPC_PRIVATE {
        "IPC_PRIVATE".into()
    } else {
        key_text(key)
    }
}

/// shmget(2), recorded in the trace as strace shows it.
pub fn shmget(key: i32, bytes: usize, flags: i32) -> nix::Result<i32> {
    // SAFETY: shmget takes plain values and returns an id or -1.
    let r = unsafe { libc::shmget(key, bytes, flags) };
    let r = nix::errno::Errno::result(r);
    trace::syscall(format!(
        "shmget({}, {bytes}, {}) = {}",
        shown_key(key),
        flag_names(flags),
        shown(&r)
    ));
    r
}

/// msgget(2), recorded in the trace.
pub fn msgget(key: i32, flags: i32) -> nix::Result<i32> {
    // SAFETY: msgget takes plain values and returns an id or -1.
    let r = nix::errno::Errno::result(unsafe { libc::msgget(key, flags) });
    trace::syscall(format!(
        "msgget({}, {}) = {}",
        shown_key(key),
        flag_names(flags),
        shown(&r)
    ));
    r
}

fn shown(r: &nix::Result<i32>) -> String {
    match r {
        Ok(id) => id.to_string(),
        Err(e) => format!("-1 {}", sys::errno_text(*e)),
    }
}

fn flag_names(flags: i32) -> String {
    let mut names: Vec<String> = Vec::new();
    if flags & libc::IPC_CREAT != 0 {
        names.push("IPC_CREAT".into());
    }
    if flags & libc::IPC_EXCL != 0 {
        names.push("IPC_EXCL".into());
    }
    let mode = flags & 0o777;
    if mode != 0 || names.is_empty() {
        names.push(format!("0{mode:o}"));
    }
    names.join("|")
}

/// Write `text` at the start of segment `id` (shmat, copy, shmdt), recorded in the trace.
pub fn shm_write(id: i32, text: &str) -> Result<()> {
    // SAFETY: attach anywhere; the copy stays within the segment's size (checked below).
    let addr = unsafe { libc::shmat(id, std::ptr::null(), 0) };
    if addr as isize == -1 {
        let e = nix::errno::Errno::last();
        trace::syscall(format!("shmat({id}, NULL, 0) = -1 {}", sys::errno_text(e)));
        bail!("shmat({id}): {}", e.desc());
    }
    trace::syscall(format!("shmat({id}, NULL, 0) = {addr:p}"));
    let size = segment_size(id).unwrap_or(0);
    let bytes = text.as_bytes();
    let n = bytes.len().min(size.saturating_sub(1));
    // SAFETY: `addr` maps at least `size` bytes; n < size.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), addr as *mut u8, n);
        *(addr as *mut u8).add(n) = 0;
        libc::shmdt(addr);
    }
    trace::syscall(format!("shmdt({addr:p}) = 0"));
    Ok(())
}

/// The text at the start of segment `id` (up to the first NUL, at most 64 bytes): what a
/// process that attaches it reads.
pub fn shm_read(id: i32) -> Result<String> {
    // SAFETY: attach read-only; we read at most min(64, size) bytes of it.
    let addr = unsafe { libc::shmat(id, std::ptr::null(), libc::SHM_RDONLY) };
    if addr as isize == -1 {
        let e = nix::errno::Errno::last();
        bail!("shmat({id}): {}", e.desc());
    }
    trace::syscall(format!("shmat({id}, NULL, SHM_RDONLY) = {addr:p}"));
    let n = segment_size(id).unwrap_or(0).min(64);
    // SAFETY: `addr` maps at least n bytes.
    let bytes = unsafe { std::slice::from_raw_parts(addr as *const u8, n) }.to_vec();
    unsafe { libc::shmdt(addr) };
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    Ok(String::from_utf8_lossy(&bytes[..end]).into_owned())
}

fn segment_size(id: i32) -> Option<usize> {
    // SAFETY: shmid_ds is plain data; IPC_STAT fills it.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::shmctl(id, libc::IPC_STAT, &mut ds) };
    (r == 0).then_some(ds.shm_segsz)
}

/// Put one message of type 1 on queue `id` (msgsnd), recorded in the trace.
pub fn msg_send(id: i32, text: &str) -> Result<()> {
    #[repr(C)]
    struct Msg {
        mtype: libc::c_long,
        mtext: [u8; 64],
    }
    let mut m = Msg {
        mtype: 1,
        mtext: [0; 64],
    };
    let n = text.len().min(63);
    m.mtext[..n].copy_from_slice(&text.as_bytes()[..n]);
    // SAFETY: `m` is a msgbuf whose text is n bytes long.
    let r = unsafe { libc::msgsnd(id, &m as *const Msg as *const libc::c_void, n, 0) };
    let r = nix::errno::Errno::result(r);
    trace::syscall(format!(
        "msgsnd({id}, {{mtype=1, mtext={:?}}}, {n}, 0) = {}",
        &text[..n],
        shown(&r)
    ));
    r.map(|_| ()).with_context(|| format!("msgsnd({id})"))
}

/// A segment or queue nslab made in the IPC namespace it runs in (the host's): on the
/// ledger until removed.
#[derive(Debug)]
pub struct HostObject {
    pub resource: Resource,
    pub key: i32,
    pub id: i32,
}

/// Make a System V object with a fresh nslab key (`make` gets the key): recorded before
/// it is made, its id written beside the record at once.
fn make_host(
    record: impl Fn(i32, u64) -> Resource,
    make: impl Fn(i32) -> nix::Result<i32>,
) -> Result<HostObject> {
    let ipc_ns = own_namespace()?;
    for attempt in 0..16 {
        let key = nslab_key(std::process::id(), attempt);
        let resource = record(key, ipc_ns);
        ledger::record(resource.clone())?;
        match make(key) {
            Ok(id) => {
                ledger::identify(&resource, id as u64);
                return Ok(HostObject { resource, key, id });
            }
            // Another nslab's, or anyone's: not ours, try the next key.
            Err(nix::errno::Errno::EEXIST) => ledger::forget(&resource),
            Err(e) => {
                ledger::forget(&resource);
                bail!("{}: {}", resource.describe(), e.desc());
            }
        }
    }
    bail!("every key nslab tried is in use in this IPC namespace")
}

/// A shared memory segment of `bytes` in the host's namespace, holding `text`.
pub fn make_host_segment(bytes: usize, text: &str) -> Result<HostObject> {
    let creator = std::process::id() as i32;
    let obj = make_host(
        |key, ipc_ns| Resource::SysvShm {
            key,
            ipc_ns,
            creator,
        },
        |key| shmget(key, bytes, libc::IPC_CREAT | libc::IPC_EXCL | 0o600),
    )?;
    shm_write(obj.id, text)?;
    Ok(obj)
}

/// A message queue in the host's namespace, holding one message `text`.
pub fn make_host_queue(text: &str) -> Result<HostObject> {
    let obj = make_host(
        |key, ipc_ns| Resource::SysvMsg { key, ipc_ns },
        |key| msgget(key, libc::IPC_CREAT | libc::IPC_EXCL | 0o600),
    )?;
    msg_send(obj.id, text)?;
    Ok(obj)
}

/// shmctl(id, IPC_RMID) / msgctl(id, IPC_RMID), recorded in the trace.
fn rmid(shm: bool, id: i32) -> nix::Result<()> {
    // SAFETY: IPC_RMID takes no buffer.
    let r = unsafe {
        if shm {
            libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut())
        } else {
            libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut())
        }
    };
    let r = nix::errno::Errno::result(r).map(|_| ());
    trace::syscall(format!(
        "{}({id}, IPC_RMID, NULL) = {}",
        if shm { "shmctl" } else { "msgctl" },
        sys::errno_result(&r)
    ));
    r
}

/// What the record of a System V object says, to decide whether the object bearing its
/// key now is the one nslab made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub shm: bool,
    pub key: i32,
    pub ipc_ns: u64,
    /// The PID that made a segment (a queue does not say who made it).
    pub creator: Option<i32>,
    /// The id written beside the record once the object existed.
    pub id: Option<i32>,
}

/// What to do with a recorded object, given the objects of the namespace now. Pure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Remove the object with this id.
    Remove(i32),
    Gone,
    NotOurs(String),
}

/// Decide over a record and the objects of its namespace: an object is nslab's when it
/// has the recorded key and the recorded id; with no id recorded (a run killed between
/// making it and writing its id), a segment also when the recorded process made it, a
/// queue never (nothing about it tells who made it).
pub fn decide(r: &Recorded, now: &Objects) -> Verdict {
    if !is_nslab_key(r.key) {
        return Verdict::NotOurs(format!("key {} is not one nslab gives", key_text(r.key)));
    }
    let found: Option<(i32, Option<i32>)> = if r.shm {
        now.segments
            .iter()
            .find(|s| s.key == r.key)
            .map(|s| (s.id, Some(s.creator)))
    } else {
        now.queues
            .iter()
            .find(|q| q.key == r.key)
            .map(|q| (q.id, None))
    };
    let Some((id, creator)) = found else {
        return Verdict::Gone;
    };
    match (r.id, r.creator, creator) {
        (Some(want), _, _) if want == id => Verdict::Remove(id),
        (Some(want), _, _) => Verdict::NotOurs(format!(
            "key {} names id {id} now, nslab made id {want}",
            key_text(r.key)
        )),
        (None, Some(c), Some(made_by)) if c == made_by => Verdict::Remove(id),
        (None, _, _) => Verdict::NotOurs(format!(
            "no id was recorded for key {}: nslab cannot prove it made id {id}",
            key_text(r.key)
        )),
    }
}

/// Remove the System V object a record names, if it is still the one nslab made.
pub fn remove_recorded(r: &Recorded) -> Result<Removal> {
    let here = own_namespace()?;
    if here != r.ipc_ns {
        bail!(
            "it was made in IPC namespace ipc:[{}] and nslab now runs in ipc:[{here}]: remove it from there",
            r.ipc_ns
        );
    }
    match decide(r, &own()?) {
        Verdict::Remove(id) => match rmid(r.shm, id) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::EIDRM) => {
                Ok(Removal::Removed)
            }
            Err(e) => Err(anyhow!("IPC_RMID of id {id}: {}", e.desc())),
        },
        Verdict::Gone => Ok(Removal::Removed),
        Verdict::NotOurs(why) => Ok(Removal::NotOurs(why)),
    }
}

/// Remove one object this run made now (the lesson's own step), and strike it off.
pub fn release(obj: &HostObject) -> Result<()> {
    super::removal::release(&obj.resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHM: &str = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap
1853030401      32769   600                  4096  4242  4242      0     0     0     0     0 1700000000 1700000001 1700000002                  4096                     0
 -12345 7 1666 8192 1 2 1 0 0 0 0 0 0 5 0 0
garbage line
";
    const MSG: &str = "       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime
1853030401          3   600          11          1  4242     0     0     0     0     0 1700000000          0 1700000002
";

    #[test]
    fn parses_the_kernels_tables() {
        let s = parse_shm(SHM);
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!(s[0].key, 0x6e73_0001);
        assert_eq!(s[0].id, 32769);
        assert_eq!(s[0].perms, 0o600);
        assert_eq!(
            (s[0].bytes, s[0].creator, s[0].ctime),
            (4096, 4242, 1700000002)
        );
        assert_eq!(s[1].key, -12345);
        let q = parse_msg(MSG);
        assert_eq!(q.len(), 1);
        assert_eq!((q[0].id, q[0].bytes, q[0].messages), (3, 11, 1));
        assert!(parse_shm("").is_empty());
        assert!(
            parse_msg("key msqid\n1\n").is_empty(),
            "a short row is left out"
        );
    }

    #[test]
    fn keys_say_they_are_nslabs() {
        let k = nslab_key(0x1234_5678, 0);
        assert_eq!(key_text(k), "0x6e735678");
        assert!(is_nslab_key(k));
        assert!(is_nslab_key(nslab_key(u32::MAX, 3)));
        assert!(!is_nslab_key(0x1234));
        assert_eq!(key_text(-1), "0xffffffff");
    }

    #[test]
    fn only_the_recorded_object_is_removed() {
        let key = 0x6e73_0001;
        let now = Objects {
            segments: parse_shm(SHM),
            queues: parse_msg(MSG),
        };
        let shm = Recorded {
            shm: true,
            key,
            ipc_ns: 1,
            creator: Some(4242),
            id: Some(32769),
        };
        assert_eq!(decide(&shm, &now), Verdict::Remove(32769));
        let other = Recorded { id: Some(5), ..shm };
        assert!(matches!(decide(&other, &now), Verdict::NotOurs(_)));
        let no_id = Recorded { id: None, ..shm };
        assert_eq!(decide(&no_id, &now), Verdict::Remove(32769), "its creator");
        let stranger = Recorded {
            creator: Some(1),
            ..no_id
        };
        assert!(matches!(decide(&stranger, &now), Verdict::NotOurs(_)));
        let q = Recorded {
            shm: false,
            creator: None,
            id: Some(3),
            ..shm
        };
        assert_eq!(decide(&q, &now), Verdict::Remove(3));
        assert!(matches!(
            decide(&Recorded { id: None, ..q }, &now),
            Verdict::NotOurs(_)
        ));
        let gone = Recorded {
            key: key + 1,
            ..shm
        };
        assert_eq!(decide(&gone, &now), Verdict::Gone);
        let foreign = Recorded { key: 7, ..shm };
        assert!(matches!(decide(&foreign, &now), Verdict::NotOurs(_)));
    }

    #[test]
    fn flags_as_strace_prints_them() {
        assert_eq!(
            flag_names(libc::IPC_CREAT | libc::IPC_EXCL | 0o600),
            "IPC_CREAT|IPC_EXCL|0600"
        );
        assert_eq!(flag_names(0), "00");
        assert_eq!(shown_key(libc::IPC_PRIVATE), "IPC_PRIVATE");
        assert_eq!(shown_key(0x6e73_0001), "0x6e730001");
    }
}
