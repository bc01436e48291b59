//! The kernel's process events: the proc connector (netlink `NETLINK_CONNECTOR`, group
//! `CN_IDX_PROC`) announces every fork, exec and exit on the machine to a root listener.
//! Messages are parsed by [`parse`], a pure function over the bytes a `recv` returned.

use netlink_sys::{protocols::NETLINK_CONNECTOR, Socket, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

/// The connector's index and value for process events (linux/connector.h).
const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
/// `enum proc_cn_mcast_op` (linux/cn_proc.h).
const PROC_CN_MCAST_LISTEN: u32 = 1;
const PROC_CN_MCAST_IGNORE: u32 = 2;
/// The connector sends (and expects) its messages as `NLMSG_DONE`.
const NLMSG_DONE: u16 = 3;
const NLMSG_HDRLEN: usize = 16;
/// `struct cn_msg`: id (idx, val), seq, ack, len, flags.
const CN_MSG_LEN: usize = 20;
/// `struct proc_event` before its union: what, cpu, timestamp_ns.
const EVENT_HEAD: usize = 16;
/// How long the kernel may take to acknowledge the subscription (it answers at once when
/// it answers at all: a kernel without CONFIG_PROC_EVENTS, or a listener outside the
/// initial PID namespace, gets no answer).
const ACK_WITHIN: Duration = Duration::from_millis(250);

/// One process event, PIDs as the initial PID namespace numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The answer to a subscription: 0, or an errno.
    Ack {
        err: u32,
    },
    /// A new task; a thread when `child_pid != child_tgid`.
    Fork {
        parent_tgid: i32,
        child_pid: i32,
        child_tgid: i32,
    },
    Exec {
        pid: i32,
        tgid: i32,
    },
    /// A task ended; the process when `pid == tgid`.
    Exit {
        pid: i32,
        tgid: i32,
    },
    /// Any other kind (uid, gid, sid, comm, ptrace, coredump changes).
    Other {
        what: u32,
    },
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let bytes = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes(bytes.try_into().ok()?))
}

fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    u32_at(b, at).map(|v| v as i32)
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    let bytes = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_ne_bytes(bytes.try_into().ok()?))
}

/// The events in one datagram of the connector; anything malformed or of another
/// connector is skipped.
pub fn parse(buf: &[u8]) -> Vec<Event> {
    let mut out = Vec::new();
    let mut off = 0usize;
    while let (Some(len), Some(kind)) = (u32_at(buf, off), u16_at(buf, off + 4)) {
        let Ok(len) = usize::try_from(len) else { break };
        let Some(end) = off
            .checked_add(len)
            .filter(|&e| len >= NLMSG_HDRLEN && e <= buf.len())
        else {
            break;
        };
        if kind == NLMSG_DONE {
            out.extend(connector_event(&buf[off + NLMSG_HDRLEN..end]));
        }
        // Messages are 4-byte aligned within a datagram.
        off = match end.checked_add(3) {
            Some(e) => e & !3,
            None => break,
        };
    }
    out
}

fn connector_event(msg: &[u8]) -> Option<Event> {
    if u32_at(msg, 0)? != CN_IDX_PROC || u32_at(msg, 4)? != CN_VAL_PROC {
        return None;
    }
    let len = usize::from(u16_at(msg, 16)?);
    let data = msg.get(CN_MSG_LEN..CN_MSG_LEN.checked_add(len)?)?;
    let what = u32_at(data, 0)?;
    let at = |i: usize| i32_at(data, EVENT_HEAD + 4 * i);
    Some(match what {
        0 => Event::Ack {
            err: u32_at(data, EVENT_HEAD)?,
        },
        // fork: parent_pid, parent_tgid, child_pid, child_tgid.
        1 => Event::Fork {
            parent_tgid: at(1)?,
            child_pid: at(2)?,
            child_tgid: at(3)?,
        },
        2 => Event::Exec {
            pid: at(0)?,
            tgid: at(1)?,
        },
        0x8000_0000 => Event::Exit {
            pid: at(0)?,
            tgid: at(1)?,
        },
        what => Event::Other { what },
    })
}

/// A message to the connector asking for `op` (listen or ignore).
fn subscription(port: u32, op: u32) -> Vec<u8> {
    let total = NLMSG_HDRLEN + CN_MSG_LEN + 4;
    let mut m = Vec::with_capacity(total);
    m.extend_from_slice(&(total as u32).to_ne_bytes());
    m.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
    m.extend_from_slice(&0u16.to_ne_bytes()); // flags
    m.extend_from_slice(&0u32.to_ne_bytes()); // seq
    m.extend_from_slice(&port.to_ne_bytes());
    m.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
    m.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // ack
    m.extend_from_slice(&4u16.to_ne_bytes()); // len of the data
    m.extend_from_slice(&0u16.to_ne_bytes()); // flags
    m.extend_from_slice(&op.to_ne_bytes());
    m
}

/// A subscription to the machine's process events.
pub struct ProcEvents {
    sock: Socket,
    port: u32,
}

impl ProcEvents {
    /// Subscribe; `Err` says why there are no process events here (a sentence part).
    pub fn open() -> Result<ProcEvents, String> {
        let mut sock = Socket::new(NETLINK_CONNECTOR)
            .map_err(|e| format!("no netlink connector socket ({e})"))?;
        sock.bind(&SocketAddr::new(0, CN_IDX_PROC))
            .map_err(|e| match e.raw_os_error() {
                Some(libc::EPERM) | Some(libc::EACCES) => "they need root".to_string(),
                _ => format!("joining the connector's group failed ({e})"),
            })?;
        let mut addr = SocketAddr::new(0, 0);
        sock.get_address(&mut addr)
            .map_err(|e| format!("getsockname failed ({e})"))?;
        sock.set_non_blocking(true)
            .map_err(|e| format!("O_NONBLOCK failed ({e})"))?;
        let me = ProcEvents {
            sock,
            port: addr.port_number(),
        };
        me.sock
            .send(&subscription(me.port, PROC_CN_MCAST_LISTEN), 0)
            .map_err(|e| format!("the subscription was refused ({e})"))?;
        match me.ack()? {
            0 => Ok(me),
            err if err == libc::EPERM as u32 => Err("they need CAP_NET_ADMIN".into()),
            err => Err(format!(
                "the kernel refused them ({})",
                nix::errno::Errno::from_raw(err as i32)
            )),
        }
    }

    /// The kernel's answer to the subscription; events that came before it are dropped
    /// (nothing is being judged yet).
    fn ack(&self) -> Result<u32, String> {
        let end = Instant::now() + ACK_WITHIN;
        let mut events = Vec::new();
        loop {
            events.clear();
            self.read(&mut events);
            if let Some(err) = events.iter().find_map(|e| match e {
                Event::Ack { err } => Some(*err),
                _ => None,
            }) {
                return Ok(err);
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(
                    "the kernel did not answer (no CONFIG_PROC_EVENTS, or not the \
                            machine's first PID namespace)"
                        .into(),
                );
            }
            let ms = left.as_millis().clamp(1, 250) as libc::c_int;
            let mut fd = libc::pollfd {
                fd: self.raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one pollfd we own, for a socket held open by self.
            unsafe { libc::poll(&mut fd, 1, ms) };
        }
    }

    pub fn raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// Append every event queued now; true when the kernel dropped some (a full buffer:
    /// what happened meanwhile is unknown).
    pub fn read(&self, out: &mut Vec<Event>) -> bool {
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: recv(2) into a buffer we own, of the length given.
            let n = unsafe {
                libc::recv(
                    self.raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            match usize::try_from(n) {
                Ok(0) => return false,
                Ok(n) => out.extend(parse(&buf[..n.min(buf.len())])),
                Err(_) => {
                    return match nix::errno::Errno::last() {
                        nix::errno::Errno::ENOBUFS => true,
                        nix::errno::Errno::EINTR => continue,
                        _ => false,
                    }
                }
            }
        }
    }
}

impl Drop for ProcEvents {
    /// The kernel counts its listeners and builds events only while there are some.
    fn drop(&mut self) {
        let _ = self
            .sock
            .send(&subscription(self.port, PROC_CN_MCAST_IGNORE), 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // Datagrams as this machine's kernel (6.18, x86_64) sent them to a listener while
    // `/bin/true` (PID 18775) was started by PID 18734 and ended.
    const ACK: &str = "4c00000003000000c71c0000000000000100000001000000c71c00000100000028000000000000000100000054678c0c4f050000000000000000000000000000000000000000000000000000";
    const FORK: &str = "4c00000003000000c81c0000000000000100000001000000c81c00000000000028000000010000000100000098108e0c4f0500002e4900002e49000057490000574900000000000000000000";
    const EXEC: &str = "4c00000003000000c81c0000000000000100000001000000c81c0000000000002800000002000000000000003ac4930c4f050000574900005749000000000000000000000000000000000000";
    const EXIT: &str = "4c00000003000000c91c0000000000000100000001000000c91c0000000000002800000000000080000000003a57a20c4f050000574900005749000000000000110000002e4900002e490000";

    #[test]
    fn the_kernels_own_messages() {
        assert_eq!(parse(&hex(ACK)), vec![Event::Ack { err: 0 }]);
        assert_eq!(
            parse(&hex(FORK)),
            vec![Event::Fork {
                parent_tgid: 18734,
                child_pid: 18775,
                child_tgid: 18775
            }]
        );
        assert_eq!(
            parse(&hex(EXEC)),
            vec![Event::Exec {
                pid: 18775,
                tgid: 18775
            }]
        );
        assert_eq!(
            parse(&hex(EXIT)),
            vec![Event::Exit {
                pid: 18775,
                tgid: 18775
            }]
        );
    }

    #[test]
    fn several_messages_in_one_datagram_and_a_torn_one() {
        let mut two = hex(FORK);
        two.extend(hex(EXIT));
        assert_eq!(parse(&two).len(), 2);
        // A message cut short is dropped, the whole ones before it kept.
        two.truncate(two.len() - 1);
        assert_eq!(parse(&two).len(), 1);
        assert!(parse(&hex(FORK)[..40]).is_empty());
    }

    #[test]
    fn other_connectors_and_kinds_are_told_apart() {
        let mut other_idx = hex(FORK);
        other_idx[16] = 7; // cn_msg.id.idx
        assert!(parse(&other_idx).is_empty());
        let mut not_done = hex(EXEC);
        not_done[4] = 2; // NLMSG_ERROR
        assert!(parse(&not_done).is_empty());
        let mut comm = hex(EXEC);
        comm[36..40].copy_from_slice(&0x200u32.to_ne_bytes());
        assert_eq!(parse(&comm), vec![Event::Other { what: 0x200 }]);
    }

    #[test]
    fn a_subscription_is_what_the_connector_reads() {
        let m = subscription(42, PROC_CN_MCAST_LISTEN);
        assert_eq!(m.len(), 40);
        assert_eq!(u32_at(&m, 0), Some(40));
        assert_eq!(u16_at(&m, 4), Some(NLMSG_DONE));
        assert_eq!(u32_at(&m, 12), Some(42));
        assert_eq!((u32_at(&m, 16), u32_at(&m, 20)), (Some(1), Some(1)));
        assert_eq!(u16_at(&m, 32), Some(4));
        assert_eq!(u32_at(&m, 36), Some(PROC_CN_MCAST_LISTEN));
    }

    proptest! {
        #[test]
        fn any_bytes_parse_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn a_real_message_with_any_bytes_after_it(tail in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut b = hex(FORK);
            b.extend(tail);
            prop_assert!(!parse(&b).is_empty());
        }
    }
}
