//! A synchronous rtnetlink socket: send one request, read its answer.
//!
//! Every request that changes something is recorded in the trace as one readable line
//! (the message type, its attributes, the NLM_F_* flags and what the kernel answered),
//! the netlink counterpart of an strace line. Read-only dumps are not recorded: they
//! are what the views show.

use super::super::trace;
use anyhow::{Context, Result};
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE,
    NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{InfoData, InfoVeth, LinkAttribute, LinkFlags, LinkInfo};
use netlink_packet_route::nsid::NsidAttribute;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::errno::Errno;
use std::fmt;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};

/// The kernel refused a request: which one, the errno, and the kernel's own
/// explanation when it gave one (extended ack).
#[derive(Debug, Clone)]
pub struct NetlinkError {
    pub request: String,
    pub errno: Errno,
    pub kernel_message: Option<String>,
}

impl fmt::Display for NetlinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} ({:?})",
            self.request,
            self.errno.desc(),
            self.errno
        )?;
        if let Some(m) = &self.kernel_message {
            write!(f, ": {m}")?;
        }
        Ok(())
    }
}

impl std::error::Error for NetlinkError {}

/// The errno of a refused netlink request anywhere in an error chain.
pub fn errno_of(err: &anyhow::Error) -> Option<Errno> {
    err.chain()
        .find_map(|e| e.downcast_ref::<NetlinkError>())
        .map(|e| e.errno)
}

/// An NETLINK_ROUTE socket. Its network namespace is the one it was opened in, for
/// its whole life: a socket opened inside a namespace talks to that namespace.
pub struct Rtnl {
    sock: Socket,
    seq: u32,
    /// The named namespace it talks to, for trace lines; `None` for nslab's own.
    netns: Option<String>,
}

impl Rtnl {
    /// A socket in the calling process's network namespace.
    pub fn open_here() -> Result<Rtnl> {
        let mut sock =
            Socket::new(NETLINK_ROUTE).context("socket(AF_NETLINK, SOCK_DGRAM, NETLINK_ROUTE)")?;
        sock.bind_auto().context("bind(netlink)")?;
        Self::from_socket(sock, None)
    }

    /// Wrap a netlink socket opened elsewhere (in a child inside a namespace).
    pub fn from_fd(fd: OwnedFd, netns: Option<String>) -> Result<Rtnl> {
        // SAFETY: `fd` is an owned, open netlink socket; Socket takes over closing it.
        let sock = unsafe { Socket::from_raw_fd(fd.into_raw_fd()) };
        Self::from_socket(sock, netns)
    }

    fn from_socket(sock: Socket, netns: Option<String>) -> Result<Rtnl> {
        sock.connect(&SocketAddr::new(0, 0))
            .context("connect(netlink, kernel)")?;
        // Errors come back with the kernel's explanation and without our request echoed.
        let _ = sock.set_ext_ack(true);
        let _ = sock.set_cap_ack(true);
        Ok(Rtnl {
            sock,
            seq: 0,
            netns,
        })
    }

    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// Also receive the kernel's announcements to these multicast groups (RTNLGRP_*): a
    /// socket used for that alone, as `ip monitor` does.
    pub fn subscribe(&self, groups: &[u32]) -> Result<()> {
        for &g in groups {
            self.sock
                .add_membership(g)
                .with_context(|| format!("setsockopt(NETLINK_ADD_MEMBERSHIP, {g})"))?;
        }
        Ok(())
    }

    /// Read and drop whatever announcements have arrived; how many bytes there were.
    pub fn drain(&self) -> usize {
        use std::os::fd::AsRawFd;
        let mut buf = [0u8; 8192];
        let mut total = 0;
        loop {
            // SAFETY: recv(2) into a buffer we own, of the length given.
            let n = unsafe {
                libc::recv(
                    self.sock.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n <= 0 {
                return total;
            }
            total += n as usize;
        }
    }

    /// The socket, to wait on with poll(2).
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.sock.as_raw_fd()
    }

    /// Is this socket in nslab's own (the host's) namespace?
    pub fn is_host(&self) -> bool {
        self.netns.is_none()
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.sock.send(&buf, 0).context("sendmsg(netlink)")?;
        Ok(self.seq)
    }

    /// Read answers to request `seq` until the ack/error (or NLMSG_DONE for a dump).
    fn collect(
        &mut self,
        seq: u32,
        describe: &dyn Fn() -> String,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        let mut out = Vec::new();
        loop {
            let (buf, _) = self.sock.recv_from_full().context("recvmsg(netlink)")?;
            let mut off = 0;
            while off + 16 <= buf.len() {
                let len =
                    u32::from_ne_bytes(buf[off..off + 4].try_into().expect("4 bytes")) as usize;
                if len < 16 || off + len > buf.len() {
                    anyhow::bail!("malformed netlink message from the kernel (length {len})");
                }
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[off..off + len])
                    .map_err(|e| anyhow::anyhow!("undecodable netlink message: {e}"))?;
                off += (len + 3) & !3;
                if msg.header.sequence_number != seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) => match e.code {
                        None => return Ok(out),
                        Some(code) => {
                            return Err(NetlinkError {
                                request: describe(),
                                errno: Errno::from_raw(-code.get()),
                                kernel_message: ext_ack_message(msg.header.flags, &e.header),
                            }
                            .into())
                        }
                    },
                    _ => {}
                }
            }
        }
    }

    /// Send a request that changes something and wait for the kernel's ack. The
    /// message and the answer are recorded in the trace.
    pub fn change(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<()> {
        let flags = flags | NLM_F_ACK;
        let line = describe(&msg, flags);
        let line = match &self.netns {
            Some(ns) => format!("[netns {ns}] {line}"),
            None => line,
        };
        let seq = self.send(msg, flags)?;
        let result = self.collect(seq, &|| line.clone());
        match &result {
            Ok(_) => trace::syscall(format!("{line} -> ack")),
            Err(e) => match errno_of(e) {
                Some(errno) => trace::syscall(format!(
                    "{line} -> {}",
                    crate::kernel::sys::errno_text(errno)
                )),
                None => trace::syscall(format!("{line} -> {e:#}")),
            },
        }
        result.map(|_| ())
    }

    /// A dump request (`ip link`, `ip addr`): every object of one kind.
    pub fn dump(&mut self, msg: RouteNetlinkMessage) -> Result<Vec<RouteNetlinkMessage>> {
        let line = describe(&msg, NLM_F_DUMP);
        let seq = self.send(msg, NLM_F_DUMP)?;
        self.collect(seq, &|| line.clone())
    }

    /// A single get (one link by name); the reply messages. Asked with NLM_F_ACK so the
    /// kernel ends its answer with an ack (a plain get gets no end marker).
    pub fn get(&mut self, msg: RouteNetlinkMessage) -> Result<Vec<RouteNetlinkMessage>> {
        let line = describe(&msg, NLM_F_ACK);
        let seq = self.send(msg, NLM_F_ACK)?;
        self.collect(seq, &|| line.clone())
    }
}

/// The kernel's text in an extended ack (NLMSGERR_ATTR_MSG), if it sent one.
fn ext_ack_message(outer_flags: u16, payload: &[u8]) -> Option<String> {
    const NLM_F_CAPPED: u16 = 0x100;
    const NLM_F_ACK_TLVS: u16 = 0x200;
    const NLMSGERR_ATTR_MSG: u16 = 1;
    if outer_flags & NLM_F_ACK_TLVS == 0 || payload.len() < 16 {
        return None;
    }
    // The echoed request: only its header when capped, else all of it.
    let skip = if outer_flags & NLM_F_CAPPED != 0 {
        16
    } else {
        (u32::from_ne_bytes(payload[0..4].try_into().ok()?) as usize + 3) & !3
    };
    let mut tlvs = payload.get(skip..)?;
    while tlvs.len() >= 4 {
        let len = u16::from_ne_bytes([tlvs[0], tlvs[1]]) as usize;
        let kind = u16::from_ne_bytes([tlvs[2], tlvs[3]]);
        if len < 4 || len > tlvs.len() {
            break;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let text = &tlvs[4..len];
            let text = text.split(|b| *b == 0).next().unwrap_or(text);
            return Some(String::from_utf8_lossy(text).into_owned());
        }
        tlvs = &tlvs[((len + 3) & !3).min(tlvs.len())..];
    }
    None
}

/// `NLM_F_CREATE|NLM_F_EXCL|NLM_F_ACK`: the flags a learner reads in iproute2's source.
pub fn flag_names(flags: u16) -> String {
    if flags & NLM_F_DUMP == NLM_F_DUMP {
        return "NLM_F_DUMP".into();
    }
    let table = [
        (NLM_F_CREATE, "NLM_F_CREATE"),
        (NLM_F_EXCL, "NLM_F_EXCL"),
        (NLM_F_REPLACE, "NLM_F_REPLACE"),
        (NLM_F_APPEND, "NLM_F_APPEND"),
        (NLM_F_ACK, "NLM_F_ACK"),
    ];
    let names: Vec<&str> = table
        .iter()
        .filter(|(f, _)| flags & f != 0)
        .map(|(_, n)| *n)
        .collect();
    if names.is_empty() {
        "0".into()
    } else {
        names.join("|")
    }
}

fn link_attr_words(attrs: &[LinkAttribute], words: &mut Vec<String>) {
    for a in attrs {
        match a {
            LinkAttribute::IfName(n) => words.push(format!("ifname={n}")),
            LinkAttribute::Mtu(m) => words.push(format!("mtu={m}")),
            LinkAttribute::Controller(0) => words.push("nomaster".into()),
            LinkAttribute::Controller(m) => words.push(format!("master={m}")),
            LinkAttribute::NetNsFd(fd) => words.push(format!("netns_fd={fd}")),
            LinkAttribute::NetNsPid(p) => words.push(format!("netns_pid={p}")),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    match i {
                        LinkInfo::Kind(k) => words.push(format!("kind={k}")),
                        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))) => {
                            for pa in &peer.attributes {
                                match pa {
                                    LinkAttribute::IfName(n) => words.push(format!("peer={n}")),
                                    LinkAttribute::NetNsFd(fd) => {
                                        words.push(format!("peer_netns_fd={fd}"))
                                    }
                                    _ => {}
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
}

fn iff_names(f: LinkFlags) -> String {
    if f.contains(LinkFlags::Up) {
        "IFF_UP".into()
    } else if f.is_empty() {
        "0".into()
    } else {
        format!("{:#x}", f.bits())
    }
}

/// One request as a readable line: `RTM_NEWLINK ifname=a kind=veth peer=b flags=...`.
pub fn describe(msg: &RouteNetlinkMessage, flags: u16) -> String {
    let mut words: Vec<String> = Vec::new();
    match msg {
        RouteNetlinkMessage::NewLink(m)
        | RouteNetlinkMessage::SetLink(m)
        | RouteNetlinkMessage::DelLink(m)
        | RouteNetlinkMessage::GetLink(m) => {
            words.push(
                match msg {
                    RouteNetlinkMessage::NewLink(_) => "RTM_NEWLINK",
                    RouteNetlinkMessage::SetLink(_) => "RTM_SETLINK",
                    RouteNetlinkMessage::DelLink(_) => "RTM_DELLINK",
                    _ => "RTM_GETLINK",
                }
                .into(),
            );
            if m.header.index != 0 {
                words.push(format!("index={}", m.header.index));
            }
            link_attr_words(&m.attributes, &mut words);
            if !m.header.change_mask.is_empty() {
                words.push(format!("ifi_flags={}", iff_names(m.header.flags)));
                words.push(format!("ifi_change={}", iff_names(m.header.change_mask)));
            }
        }
        RouteNetlinkMessage::NewAddress(m)
        | RouteNetlinkMessage::DelAddress(m)
        | RouteNetlinkMessage::GetAddress(m) => {
            words.push(
                match msg {
                    RouteNetlinkMessage::NewAddress(_) => "RTM_NEWADDR",
                    RouteNetlinkMessage::DelAddress(_) => "RTM_DELADDR",
                    _ => "RTM_GETADDR",
                }
                .into(),
            );
            if m.header.index != 0 {
                words.push(format!("index={}", m.header.index));
            }
            for a in &m.attributes {
                if let AddressAttribute::Local(ip) = a {
                    words.push(format!("local={ip}/{}", m.header.prefix_len));
                }
            }
        }
        RouteNetlinkMessage::GetNsId(m) | RouteNetlinkMessage::NewNsId(m) => {
            words.push(
                if matches!(msg, RouteNetlinkMessage::GetNsId(_)) {
                    "RTM_GETNSID"
                } else {
                    "RTM_NEWNSID"
                }
                .into(),
            );
            for a in &m.attributes {
                if let NsidAttribute::Fd(fd) = a {
                    words.push(format!("netns_fd={fd}"));
                }
            }
        }
        RouteNetlinkMessage::NewRoute(m) | RouteNetlinkMessage::DelRoute(m) => {
            use netlink_packet_route::route::{RouteAddress, RouteAttribute};
            words.push(
                if matches!(msg, RouteNetlinkMessage::NewRoute(_)) {
                    "RTM_NEWROUTE"
                } else {
                    "RTM_DELROUTE"
                }
                .into(),
            );
            let mut dst = None;
            for a in &m.attributes {
                match a {
                    RouteAttribute::Destination(RouteAddress::Inet(ip)) => dst = Some(*ip),
                    RouteAttribute::Gateway(RouteAddress::Inet(gw)) => {
                        words.push(format!("gateway={gw}"))
                    }
                    RouteAttribute::Oif(i) => words.push(format!("oif={i}")),
                    _ => {}
                }
            }
            words.insert(
                1,
                match dst {
                    Some(ip) => format!("dst={ip}/{}", m.header.destination_prefix_length),
                    None if m.header.destination_prefix_length == 0 => "dst=default".into(),
                    None => format!("dst=/{}", m.header.destination_prefix_length),
                },
            );
        }
        other => words.push(format!("{:?}", other).chars().take(40).collect()),
    }
    words.push(format!("flags={}", flag_names(flags)));
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::link::{InfoKind, LinkMessage};

    #[test]
    fn describes_a_veth_creation_like_the_brief() {
        let mut peer = LinkMessage::default();
        peer.attributes
            .push(LinkAttribute::IfName("nslab-veth1".into()));
        let mut m = LinkMessage::default();
        m.attributes
            .push(LinkAttribute::IfName("nslab-veth0".into()));
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        let line = describe(
            &RouteNetlinkMessage::NewLink(m),
            NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK,
        );
        assert_eq!(
            line,
            "RTM_NEWLINK ifname=nslab-veth0 kind=veth peer=nslab-veth1 flags=NLM_F_CREATE|NLM_F_EXCL|NLM_F_ACK"
        );
    }

    #[test]
    fn describes_link_up() {
        let mut m = LinkMessage::default();
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        m.attributes.push(LinkAttribute::IfName("lo".into()));
        assert_eq!(
            describe(&RouteNetlinkMessage::NewLink(m), NLM_F_ACK),
            "RTM_NEWLINK ifname=lo ifi_flags=IFF_UP ifi_change=IFF_UP flags=NLM_F_ACK"
        );
    }

    #[test]
    fn reads_the_kernels_explanation_from_an_extended_ack() {
        // A capped request header (16 bytes) then NLMSGERR_ATTR_MSG "Invalid prefix".
        let mut payload = vec![0u8; 16];
        let text = b"Invalid prefix\0";
        let len = (4 + text.len()) as u16;
        payload.extend_from_slice(&len.to_ne_bytes());
        payload.extend_from_slice(&1u16.to_ne_bytes());
        payload.extend_from_slice(text);
        assert_eq!(
            ext_ack_message(0x300, &payload).as_deref(),
            Some("Invalid prefix")
        );
        assert_eq!(
            ext_ack_message(0x100, &payload),
            None,
            "no TLV flag, no message"
        );
    }
}
