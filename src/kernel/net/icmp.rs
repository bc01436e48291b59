//! ICMP echo without a `ping` binary: a raw socket (SOCK_RAW, IPPROTO_ICMP) opened
//! inside a namespace sends an echo request and waits for the matching reply.
//!
//! A raw socket rather than an unprivileged ICMP datagram socket: a new network
//! namespace starts with `net.ipv4.ping_group_range = 1 0`, which allows nobody the
//! latter. Root may always open a raw one.

use super::super::{sys, trace};
use anyhow::{Context, Result};
use nix::sys::socket::{recvfrom, sendto, MsgFlags, SockaddrIn};
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

pub const ECHO_REQUEST: u8 = 8;
pub const ECHO_REPLY: u8 = 0;
/// Payload bytes, as `ping` sends by default (64-byte ICMP message).
pub const PAYLOAD_LEN: usize = 56;

/// A reply that came back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EchoReply {
    pub from: Ipv4Addr,
    pub id: u16,
    pub seq: u16,
    pub ttl: u8,
    /// ICMP bytes (header and payload), as `ping` counts them.
    pub bytes: usize,
    pub rtt_us: u64,
}

/// The Internet checksum (RFC 1071): one's complement of the one's complement sum.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = if chunk.len() == 2 {
            u16::from_be_bytes([chunk[0], chunk[1]])
        } else {
            u16::from_be_bytes([chunk[0], 0])
        };
        sum += u32::from(word);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request: type 8, code 0, checksum, id, sequence, payload.
pub fn echo_request(id: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![ECHO_REQUEST, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    // ping's pattern: bytes counting up from the end of the header.
    p.extend((0..PAYLOAD_LEN).map(|i| (i + 8) as u8));
    let c = checksum(&p);
    p[2..4].copy_from_slice(&c.to_be_bytes());
    p
}

/// If `packet` (an IPv4 datagram as a raw socket delivers it, header included) is the
/// echo reply to `id`/`seq`: (source, ttl, ICMP length).
pub fn parse_reply(packet: &[u8], id: u16, seq: u16) -> Option<(Ipv4Addr, u8, usize)> {
    if packet.len() < 20 || packet[0] >> 4 != 4 || packet[9] != 1 {
        return None;
    }
    let ihl = usize::from(packet[0] & 0x0f) * 4;
    let icmp = packet.get(ihl..)?;
    if icmp.len() < 8 || icmp[0] != ECHO_REPLY || icmp[1] != 0 {
        return None;
    }
    if u16::from_be_bytes([icmp[4], icmp[5]]) != id || u16::from_be_bytes([icmp[6], icmp[7]]) != seq
    {
        return None;
    }
    if checksum(icmp) != 0 {
        return None;
    }
    let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    Some((src, packet[8], icmp.len()))
}

/// Send one echo request to `dst` on raw socket `sock` and wait up to `timeout` for
/// its reply. `Ok(None)`: no reply in time.
pub fn echo(
    sock: BorrowedFd<'_>,
    netns: &str,
    dst: Ipv4Addr,
    id: u16,
    seq: u16,
    timeout: Duration,
) -> Result<Option<EchoReply>> {
    let fd = sock.as_raw_fd();
    let request = echo_request(id, seq);
    let addr = SockaddrIn::from(std::net::SocketAddrV4::new(dst, 0));
    let start = Instant::now();
    let sent = sendto(fd, &request, &addr, MsgFlags::empty());
    trace::syscall(format!(
        "[netns {netns}] sendto({fd}, {{type=ECHO_REQUEST, id={id}, seq={seq}}}, {}, 0, {{AF_INET, {dst}}}) = {}",
        request.len(),
        match &sent {
            Ok(n) => n.to_string(),
            Err(e) => format!("-1 {}", crate::kernel::sys::errno_text(*e)),
        }
    ));
    sent.with_context(|| format!("sending an ICMP echo request to {dst} from namespace {netns}"))?;
    let mut buf = [0u8; 1500];
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() || !sys::wait_readable(&sock, Some(left))? {
            trace::syscall(format!(
                "[netns {netns}] poll([{{fd={fd}, POLLIN}}]) = 0 (timeout {timeout:?}, no reply)"
            ));
            return Ok(None);
        }
        let n = match recvfrom::<SockaddrIn>(fd, &mut buf) {
            Ok((n, _)) => n,
            Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context("recvfrom(raw ICMP socket)"),
        };
        // A raw ICMP socket sees every ICMP packet arriving in its namespace: skip others.
        if let Some((from, ttl, bytes)) = parse_reply(&buf[..n], id, seq) {
            let rtt = start.elapsed();
            trace::syscall(format!(
                "[netns {netns}] recvfrom({fd}, ...) = {n} {{ECHO_REPLY from {from}, id={id}, seq={seq}, ttl={ttl}}}"
            ));
            return Ok(Some(EchoReply {
                from,
                id,
                seq,
                ttl,
                bytes,
                rtt_us: rtt.as_micros() as u64,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_checksums_to_zero_and_is_64_bytes() {
        let p = echo_request(0x1234, 1);
        assert_eq!(p.len(), 64);
        assert_eq!(p[0], ECHO_REQUEST);
        assert_eq!(
            checksum(&p),
            0,
            "a packet with its checksum in sums to zero"
        );
    }

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 section 3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2, checksum 220d.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
    }

    fn reply_packet(id: u16, seq: u16, kind: u8) -> Vec<u8> {
        let mut icmp = echo_request(id, seq);
        icmp[0] = kind;
        icmp[2] = 0;
        icmp[3] = 0;
        let c = checksum(&icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        let mut ip = vec![
            0x45, 0, 0, 84, 0, 0, 0x40, 0, 64, 1, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1,
        ];
        ip.extend(icmp);
        ip
    }

    #[test]
    fn recognises_its_own_reply_only() {
        let p = reply_packet(7, 3, ECHO_REPLY);
        assert_eq!(
            parse_reply(&p, 7, 3),
            Some((Ipv4Addr::new(10, 0, 0, 2), 64, 64))
        );
        assert_eq!(parse_reply(&p, 7, 4), None, "another sequence number");
        assert_eq!(parse_reply(&p, 8, 3), None, "another sender's id");
        assert_eq!(
            parse_reply(&reply_packet(7, 3, ECHO_REQUEST), 7, 3),
            None,
            "a request is not a reply"
        );
        let mut corrupt = p.clone();
        corrupt[30] ^= 0xff;
        assert_eq!(parse_reply(&corrupt, 7, 3), None, "bad checksum");
    }
}
