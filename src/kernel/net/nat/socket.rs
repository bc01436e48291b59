//! The conversation with nftables: a NETLINK_NETFILTER socket, batches sent and acked,
//! dumps read.

use super::wire::*;
use crate::kernel::trace;
use anyhow::{anyhow, bail, Context, Result};
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};
use nix::errno::Errno;
use std::time::Duration;

/// A NETLINK_NETFILTER socket in nslab's own (the host's) network namespace.
pub(super) struct Nfnl {
    sock: Socket,
    seq: u32,
}

const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

impl Nfnl {
    pub(super) fn open() -> Result<Nfnl> {
        let mut sock = Socket::new(NETLINK_NETFILTER)
            .context("socket(AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER)")?;
        sock.bind_auto().context("bind(netlink)")?;
        sock.connect(&SocketAddr::new(0, 0))
            .context("connect(netlink, kernel)")?;
        let _ = sock.set_ext_ack(true);
        let _ = sock.set_cap_ack(true);
        // Dumps of a busy ruleset can be large.
        let _ = sock.set_rx_buf_sz(1 << 20);
        let seq = (std::process::id() << 12) ^ 0x5a5;
        Ok(Nfnl { sock, seq })
    }

    pub(super) fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    pub(super) fn recv(&mut self) -> Result<Vec<u8>> {
        use std::os::fd::{AsRawFd, BorrowedFd};
        // SAFETY: the socket's descriptor, alive for this call.
        let fd = unsafe { BorrowedFd::borrow_raw(self.sock.as_raw_fd()) };
        if !super::super::sys::wait_readable(&fd, Some(REPLY_TIMEOUT))? {
            bail!("nftables did not answer within {REPLY_TIMEOUT:?}");
        }
        let (buf, _) = self.sock.recv_from_full().context("recvmsg(netlink)")?;
        Ok(buf)
    }

    /// Send `msgs` (type, flags, family, attrs, description) as one batch and wait for
    /// the ack of each. The first refusal is returned with the kernel's errno.
    pub(super) fn batch(&mut self, msgs: Vec<(u16, u16, u8, Attrs, String)>) -> Result<()> {
        let mut buf = Vec::new();
        let begin = self.next_seq();
        buf.extend(message(
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            begin,
            NFPROTO_UNSPEC,
            NFNL_SUBSYS_NFTABLES,
            &Attrs::default(),
        ));
        let mut pending: Vec<(u32, String)> = Vec::new();
        for (kind, flags, family, attrs, what) in msgs {
            let seq = self.next_seq();
            buf.extend(message(
                nft_type(kind),
                NLM_F_REQUEST | NLM_F_ACK | flags,
                seq,
                family,
                0,
                &attrs,
            ));
            pending.push((seq, what));
        }
        let end = self.next_seq();
        buf.extend(message(
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            end,
            NFPROTO_UNSPEC,
            NFNL_SUBSYS_NFTABLES,
            &Attrs::default(),
        ));
        trace::syscall(format!(
            "sendmsg(NETLINK_NETFILTER, [NFNL_MSG_BATCH_BEGIN, {} message(s), NFNL_MSG_BATCH_END]) = {}",
            pending.len(),
            buf.len()
        ));
        self.sock
            .send(&buf, 0)
            .context("sendmsg(NETLINK_NETFILTER)")?;
        let mut result = Ok(());
        'outer: while !pending.is_empty() {
            let reply = self.recv()?;
            for m in split_messages(&reply)? {
                if m.kind != NLMSG_ERROR {
                    continue;
                }
                let Some(pos) = pending.iter().position(|(s, _)| *s == m.seq) else {
                    continue;
                };
                let (_, what) = pending.remove(pos);
                let code = m.error_code();
                if code == 0 {
                    trace::syscall(format!("{what} -> ack"));
                } else {
                    let errno = Errno::from_raw(-code);
                    trace::syscall(format!(
                        "{what} -> {}",
                        crate::kernel::sys::errno_text(errno)
                    ));
                    result = Err(crate::kernel::net::rtnl::NetlinkError {
                        request: what,
                        errno,
                        kernel_message: None,
                    }
                    .into());
                    // An aborted batch acks nothing else.
                    break 'outer;
                }
            }
        }
        result
    }

    /// A dump request: every object of one kind, in every family.
    pub(super) fn dump(&mut self, kind: u16) -> Result<Vec<(u8, Vec<u8>)>> {
        let seq = self.next_seq();
        let m = message(
            nft_type(kind),
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            NFPROTO_UNSPEC,
            0,
            &Attrs::default(),
        );
        self.sock
            .send(&m, 0)
            .context("sendmsg(NETLINK_NETFILTER)")?;
        let mut out = Vec::new();
        loop {
            let reply = self.recv()?;
            for m in split_messages(&reply)? {
                if m.seq != seq {
                    continue;
                }
                match m.kind {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let code = m.error_code();
                        if code == 0 {
                            return Ok(out);
                        }
                        return Err(anyhow!(
                            "nftables refused the dump: {}",
                            Errno::from_raw(-code).desc()
                        ));
                    }
                    k if k == nft_type(kind) || k >> 8 == NFNL_SUBSYS_NFTABLES => {
                        out.push((m.family, m.body.to_vec()))
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Did `e` come from a kernel without nftables NAT (nf_tables, nft_chain_nat or nft_masq
/// neither built in nor loadable)?
pub fn is_unsupported(e: &anyhow::Error) -> bool {
    let gone = [Errno::EOPNOTSUPP, Errno::EPROTONOSUPPORT, Errno::ENOENT];
    e.chain().any(|c| {
        c.downcast_ref::<crate::kernel::net::rtnl::NetlinkError>()
            .is_some_and(|n| n.request.starts_with("NFT_MSG_NEW") && gone.contains(&n.errno))
            || c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.raw_os_error() == Some(Errno::EPROTONOSUPPORT as i32))
    })
}

/// What to do about [`is_unsupported`].
pub const UNSUPPORTED_FIX: &str =
    "load the modules: sudo modprobe nf_tables nft_chain_nat nft_masq (or build them in)";
