//! Traceroute: probes with TTL (hop limit) 1, 2, 3… until the destination answers. A router that
//! drops a probe for its TTL answers ICMP time exceeded; the destination answers a UDP probe with
//! ICMP port unreachable and an ICMP probe with an echo reply.
//!
//! smoltcp hands an ICMP socket bound to a UDP port only the errors whose quoted UDP datagram is
//! whole (it parses the quote, length and checksum included), and one bound to an echo identifier
//! only echo messages; a router may quote no more than the 8 bytes RFC 792 asks for. So replies are
//! read from a raw socket of ICMP (or ICMPv6), which sees every such packet with its IP header, and
//! parsed here. Probes go out of a UDP or ICMP socket of their own for each TTL, since a socket's
//! hop limit applies when a packet leaves, not when it is queued.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use serde::Serialize;
use smoltcp::iface::SocketHandle;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::socket::{icmp, raw, udp};
use smoltcp::wire::{
    Icmpv4Packet, Icmpv4Repr, Icmpv6Packet, Icmpv6Repr, IpAddress, IpProtocol, IpVersion, Ipv4Packet, Ipv6Packet,
};

use super::{App, AppCx, Outcome};
use crate::time::SimTime;
use crate::topology::validate::TRACE_UDP_PORT;
use crate::topology::{TraceProto, Traceroute as TraceConfig};

/// Bytes of payload in each probe.
const PROBE_DATA: usize = 32;

/// What answered a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// A router on the way: the TTL ran out there.
    TimeExceeded,
    /// Destination unreachable, with its ICMP (or ICMPv6) code.
    Unreachable(u8),
    /// The destination's echo reply (ICMP probes).
    EchoReply,
}

/// A reply read from the raw socket: who sent it, which probe it answers, and what it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub from: IpAddr,
    /// The probe's number, from 0.
    pub seq: u16,
    /// The source port of a UDP probe, as quoted (0 for ICMP).
    pub port: u16,
    pub reply: Reply,
}

/// What a quoted packet (the start of a probe, inside an ICMP error) says: its protocol,
/// destination, and the first 8 bytes past its IP header.
fn quoted(q: &[u8], v6: bool) -> Option<(u8, IpAddr, [u8; 8])> {
    let (proto, dst, at) = if v6 {
        if q.len() < 40 || q[0] >> 4 != 6 {
            return None;
        }
        let dst: [u8; 16] = q[24..40].try_into().ok()?;
        (q[6], IpAddr::V6(Ipv6Addr::from(dst)), 40)
    } else {
        if q.len() < 20 || q[0] >> 4 != 4 {
            return None;
        }
        let ihl = usize::from(q[0] & 0xf) * 4;
        if ihl < 20 {
            return None;
        }
        (q[9], IpAddr::V4(Ipv4Addr::new(q[16], q[17], q[18], q[19])), ihl)
    };
    let head: [u8; 8] = q.get(at..at + 8)?.try_into().ok()?;
    Some((proto, dst, head))
}

/// Reads one packet of the raw socket (a whole IP packet) as an answer to a probe of `proto` to
/// `target` with echo identifier `ident`. Anything else (neighbour discovery, another program's
/// echo, a reply about another destination, a truncated or corrupt message) is `None`.
#[must_use]
pub fn parse_answer(packet: &[u8], target: IpAddr, proto: TraceProto, ident: u16, checksums: bool) -> Option<Answer> {
    let v6 = target.is_ipv6();
    let (from, msg_type, code, body) = if v6 {
        let ip = Ipv6Packet::new_checked(packet).ok()?;
        if ip.next_header() != IpProtocol::Icmpv6 {
            return None;
        }
        let icmp = Icmpv6Packet::new_checked(ip.payload()).ok()?;
        if checksums && !icmp.verify_checksum(&ip.src_addr(), &ip.dst_addr()) {
            return None;
        }
        (IpAddr::V6(ip.src_addr()), u8::from(icmp.msg_type()), icmp.msg_code(), icmp.into_inner())
    } else {
        let ip = Ipv4Packet::new_checked(packet).ok()?;
        if ip.next_header() != IpProtocol::Icmp {
            return None;
        }
        let icmp = Icmpv4Packet::new_checked(ip.payload()).ok()?;
        if checksums && !icmp.verify_checksum() {
            return None;
        }
        (IpAddr::V4(ip.src_addr()), u8::from(icmp.msg_type()), icmp.msg_code(), icmp.into_inner())
    };
    // Type numbers of ICMP and ICMPv6: echo reply, destination unreachable, time exceeded.
    let (echo_reply, unreachable, time_exceeded) = if v6 { (129, 1, 3) } else { (0, 3, 11) };
    // Past the type, code and checksum: the identifier and sequence number of an echo, or the
    // unused word of an error and then the quote.
    let rest = body.get(4..)?;
    let reply = match msg_type {
        t if t == echo_reply && code == 0 => {
            if proto != TraceProto::Icmp {
                return None;
            }
            let id = u16::from_be_bytes([*rest.first()?, *rest.get(1)?]);
            let seq = u16::from_be_bytes([*rest.get(2)?, *rest.get(3)?]);
            return (id == ident).then_some(Answer { from, seq, port: 0, reply: Reply::EchoReply });
        }
        t if t == unreachable => Reply::Unreachable(code),
        t if t == time_exceeded && code == 0 => Reply::TimeExceeded,
        _ => return None,
    };
    let (q_proto, q_dst, head) = quoted(rest.get(4..)?, v6)?;
    if q_dst != target {
        return None;
    }
    let be = |i: usize| u16::from_be_bytes([head[i], head[i + 1]]);
    match proto {
        TraceProto::Udp if q_proto == u8::from(IpProtocol::Udp) => {
            let seq = be(2).checked_sub(TRACE_UDP_PORT)?;
            Some(Answer { from, seq, port: be(0), reply })
        }
        TraceProto::Icmp if q_proto == u8::from(if v6 { IpProtocol::Icmpv6 } else { IpProtocol::Icmp }) => {
            // The quoted echo request: type, code, checksum, identifier, sequence number.
            let request = if v6 { 128 } else { 8 };
            (head[0] == request && be(4) == ident).then_some(Answer { from, seq: be(6), port: 0, reply })
        }
        _ => None,
    }
}

/// One probe of a hop, as the report lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceProbe {
    /// Who answered; `None` (`*`) when nothing did within the timeout.
    pub from: Option<IpAddr>,
    pub rtt_ms: Option<f64>,
}

/// One TTL of a traceroute.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceHop {
    pub ttl: u8,
    pub probes: Vec<TraceProbe>,
    /// An unreachable answer other than the destination's port unreachable, as traceroute marks
    /// it: `!N` (network), `!H` (host), `!P` (protocol), `!X` (prohibited), `!F`, `!S` or `!<code>`.
    pub note: Option<String>,
}

#[derive(Debug, Clone)]
struct Probe {
    seq: u16,
    /// The UDP source port it went from (0 for ICMP).
    port: u16,
    sent: Option<SimTime>,
    answer: Option<(IpAddr, Duration, Reply)>,
}

/// The state of a traceroute without its sockets: which hop, which probes, what answered.
#[derive(Debug, Clone)]
pub struct Trace {
    cfg: TraceConfig,
    ttl: u8,
    probes: Vec<Probe>,
    hops: Vec<TraceHop>,
    reached: bool,
    finished: bool,
}

impl Trace {
    #[must_use]
    pub fn new(cfg: TraceConfig) -> Self {
        Trace { cfg, ttl: 0, probes: Vec::new(), hops: Vec::new(), reached: false, finished: false }
    }

    /// Starts the next hop: its TTL, and the numbers of its probes.
    pub fn next_hop(&mut self) -> (u8, Vec<u16>) {
        self.ttl += 1;
        let first = u32::from(self.ttl - 1) * self.cfg.probes;
        self.probes = (0..self.cfg.probes)
            .map(|i| Probe { seq: u16::try_from(first + i).unwrap_or(u16::MAX), port: 0, sent: None, answer: None })
            .collect();
        (self.ttl, self.probes.iter().map(|p| p.seq).collect())
    }

    /// Probe `seq` went out at `now` from `port` (or could not be sent: it counts as unanswered).
    pub fn sent(&mut self, seq: u16, port: u16, now: SimTime, ok: bool) {
        if let Some(p) = self.probes.iter_mut().find(|p| p.seq == seq) {
            p.port = port;
            p.sent = ok.then_some(now);
        }
    }

    /// A reply: it answers a probe of the current hop that is still waiting, if any.
    pub fn answer(&mut self, now: SimTime, a: &Answer) {
        let Some(p) = self.probes.iter_mut().find(|p| p.seq == a.seq) else { return };
        let Some(sent) = p.sent else { return };
        if p.answer.is_none() && (self.cfg.proto == TraceProto::Icmp || a.port == p.port) {
            p.answer = Some((a.from, now - sent, a.reply));
        }
    }

    /// Whether the current hop is over at `now` (every probe answered or timed out); when it is,
    /// records it and says whether the trace goes on. Otherwise returns when to look again.
    pub fn check(&mut self, now: SimTime) -> Result<bool, SimTime> {
        let timeout = self.cfg.timeout;
        let waiting = self.probes.iter().filter_map(|p| p.sent.filter(|_| p.answer.is_none())).map(|t| t + timeout);
        if let Some(due) = waiting.filter(|t| *t > now).min() {
            return Err(due);
        }
        let to = self.cfg.to;
        let mut note = None;
        for p in &self.probes {
            match p.answer {
                Some((from, _, Reply::EchoReply)) if from == to => self.reached = true,
                Some((from, _, Reply::Unreachable(code))) => {
                    let port_unreachable = if to.is_ipv6() { 4 } else { 3 };
                    if from == to && code == port_unreachable {
                        self.reached = true;
                    } else {
                        note = Some(unreachable_note(code, to.is_ipv6()));
                    }
                }
                _ => {}
            }
        }
        let probes = self
            .probes
            .iter()
            .map(|p| TraceProbe { from: p.answer.map(|a| a.0), rtt_ms: p.answer.map(|a| a.1.as_nanos() as f64 / 1e6) })
            .collect();
        let stop = self.reached || note.is_some() || self.ttl >= self.cfg.max_hops;
        self.hops.push(TraceHop { ttl: self.ttl, probes, note });
        self.probes.clear();
        self.finished = stop;
        Ok(!stop)
    }

    #[must_use]
    pub fn finished(&self) -> bool {
        self.finished
    }

    #[must_use]
    pub fn outcome(&self) -> Outcome {
        Outcome::Traceroute {
            to: self.cfg.to,
            proto: self.cfg.proto,
            reached: self.reached,
            hop_count: u32::try_from(self.hops.len()).unwrap_or(u32::MAX),
            hops: self.hops.clone(),
        }
    }
}

/// How traceroute marks an unreachable answer (other than the destination's port unreachable).
fn unreachable_note(code: u8, v6: bool) -> String {
    let mark = if v6 {
        match code {
            0 => "!N",
            1 => "!X",
            3 => "!H",
            4 => "!P",
            _ => "",
        }
    } else {
        match code {
            0 => "!N",
            1 => "!H",
            2 | 3 => "!P",
            4 => "!F",
            5 => "!S",
            9 | 10 | 13 => "!X",
            _ => "",
        }
    };
    if mark.is_empty() {
        format!("!{code}")
    } else {
        mark.into()
    }
}

/// The app: the trace and its sockets.
pub struct Traceroute {
    trace: Trace,
    raw: Option<SocketHandle>,
    /// The current hop's probe socket.
    hop: Option<SocketHandle>,
    ident: u16,
    payload: Vec<u8>,
}

impl Traceroute {
    pub fn new(cfg: TraceConfig) -> Self {
        Traceroute {
            trace: Trace::new(cfg),
            raw: None,
            hop: None,
            ident: 0,
            payload: (0..PROBE_DATA).map(|i| b'@' + (i % 32) as u8).collect(),
        }
    }

    /// Sends the probes of the next hop from a socket of their own with that hop limit.
    fn send_hop(&mut self, cx: &mut AppCx<'_>) {
        let (ttl, seqs) = self.trace.next_hop();
        let cfg = self.trace.cfg;
        let dst = IpAddress::from(cfg.to);
        match cfg.proto {
            TraceProto::Udp => {
                let buf = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 16], vec![0; 16 * 128]);
                let mut s = udp::Socket::new(buf(), buf());
                let port = cx.ephemeral_port();
                let _ = s.bind(port);
                s.set_hop_limit(Some(ttl));
                for seq in seqs {
                    let to = (dst, TRACE_UDP_PORT.saturating_add(seq));
                    let ok = s.send_slice(&self.payload, to).is_ok();
                    self.trace.sent(seq, port, cx.now, ok);
                }
                self.hop = Some(cx.sockets.add(s));
            }
            TraceProto::Icmp => {
                let buf = || icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 16], vec![0; 16 * 128]);
                let mut s = icmp::Socket::new(buf(), buf());
                let _ = s.bind(icmp::Endpoint::Ident(self.ident));
                s.set_hop_limit(Some(ttl));
                let caps = ChecksumCapabilities::default();
                for seq in seqs {
                    let ok = match dst {
                        IpAddress::Ipv6(d) => {
                            let src = cx.iface.get_source_address_ipv6(&d);
                            let repr = Icmpv6Repr::EchoRequest { ident: self.ident, seq_no: seq, data: &self.payload };
                            s.send(repr.buffer_len(), dst)
                                .map(|b| repr.emit(&src, &d, &mut Icmpv6Packet::new_unchecked(b), &caps))
                                .is_ok()
                        }
                        IpAddress::Ipv4(_) => {
                            let repr = Icmpv4Repr::EchoRequest { ident: self.ident, seq_no: seq, data: &self.payload };
                            s.send(repr.buffer_len(), dst)
                                .map(|b| repr.emit(&mut Icmpv4Packet::new_unchecked(b), &caps))
                                .is_ok()
                        }
                    };
                    self.trace.sent(seq, 0, cx.now, ok);
                }
                self.hop = Some(cx.sockets.add(s));
            }
        }
    }

    fn close_hop(&mut self, cx: &mut AppCx<'_>) {
        if let Some(h) = self.hop.take() {
            cx.sockets.remove(h);
        }
    }
}

impl App for Traceroute {
    fn poll(&mut self, cx: &mut AppCx<'_>) -> Option<SimTime> {
        if self.trace.finished() {
            return None;
        }
        let cfg = self.trace.cfg;
        let raw = match self.raw {
            Some(h) => h,
            None => {
                let (version, proto) = if cfg.to.is_ipv6() {
                    (IpVersion::Ipv6, IpProtocol::Icmpv6)
                } else {
                    (IpVersion::Ipv4, IpProtocol::Icmp)
                };
                let rx = raw::PacketBuffer::new(vec![raw::PacketMetadata::EMPTY; 64], vec![0; 64 * 1600]);
                let tx = raw::PacketBuffer::new(vec![raw::PacketMetadata::EMPTY; 1], vec![0; 64]);
                let h = cx.sockets.add(raw::Socket::new(Some(version), Some(proto), rx, tx));
                self.raw = Some(h);
                self.ident = cx.icmp_ident();
                self.send_hop(cx);
                h
            }
        };
        // The probe socket's own copies of echo replies are not needed: the raw socket has them.
        if let Some(h) = self.hop {
            if cfg.proto == TraceProto::Icmp {
                while cx.sockets.get_mut::<icmp::Socket>(h).recv().is_ok() {}
            }
        }
        loop {
            let s = cx.sockets.get_mut::<raw::Socket>(raw);
            let Ok(packet) = s.recv() else { break };
            if let Some(a) = parse_answer(packet, cfg.to, cfg.proto, self.ident, !cx.checksum_offload) {
                self.trace.answer(cx.now, &a);
            }
        }
        // At most one hop ends per poll: the next one's probes have only just been sent.
        match self.trace.check(cx.now) {
            Err(due) => Some(due),
            Ok(go_on) => {
                self.close_hop(cx);
                if go_on {
                    self.send_hop(cx);
                    Some(cx.now + cfg.timeout)
                } else {
                    if let Some(h) = self.raw.take() {
                        cx.sockets.remove(h);
                    }
                    None
                }
            }
        }
    }

    fn stop(&mut self, cx: &mut AppCx<'_>) {
        self.close_hop(cx);
        if let Some(h) = self.raw.take() {
            cx.sockets.remove(h);
        }
    }

    fn done(&self) -> bool {
        self.trace.finished()
    }

    fn outcome(&self) -> Outcome {
        self.trace.outcome()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::{
        Icmpv4DstUnreachable, Icmpv4TimeExceeded, Icmpv6DstUnreachable, Icmpv6TimeExceeded, Ipv4Address, Ipv4Repr,
        Ipv6Address, Ipv6Repr, UdpPacket, UdpRepr,
    };

    const ME4: Ipv4Address = Ipv4Address::new(10, 0, 1, 10);
    const DST4: Ipv4Address = Ipv4Address::new(10, 0, 3, 2);
    const ME6: Ipv6Address = Ipv6Address::new(0xfd00, 1, 0, 0, 0, 0, 0, 0x10);
    const DST6: Ipv6Address = Ipv6Address::new(0xfd00, 3, 0, 0, 0, 0, 0, 2);

    fn secs(n: u64) -> SimTime {
        SimTime::from_millis(n * 1000)
    }

    fn router4(n: u8) -> Ipv4Address {
        Ipv4Address::new(10, 0, n, 1)
    }
    fn router6(n: u16) -> Ipv6Address {
        Ipv6Address::new(0xfd00, n, 0, 0, 0, 0, 0, 1)
    }

    /// The probe as it left: its IP header and its UDP datagram (or echo request), whole.
    fn probe4(proto: TraceProto, seq: u16, sport: u16, ident: u16) -> (Ipv4Repr, Vec<u8>) {
        let caps = ChecksumCapabilities::default();
        let data = [b'@'; PROBE_DATA];
        match proto {
            TraceProto::Udp => {
                let udp = UdpRepr { src_port: sport, dst_port: TRACE_UDP_PORT + seq };
                let mut b = vec![0; udp.header_len() + data.len()];
                udp.emit(
                    &mut UdpPacket::new_unchecked(&mut b),
                    &ME4.into(),
                    &DST4.into(),
                    data.len(),
                    |p| p.copy_from_slice(&data),
                    &caps,
                );
                let ip = Ipv4Repr {
                    src_addr: ME4,
                    dst_addr: DST4,
                    next_header: IpProtocol::Udp,
                    payload_len: b.len(),
                    hop_limit: 1,
                };
                (ip, b)
            }
            TraceProto::Icmp => {
                let e = Icmpv4Repr::EchoRequest { ident, seq_no: seq, data: &data };
                let mut b = vec![0; e.buffer_len()];
                e.emit(&mut Icmpv4Packet::new_unchecked(&mut b), &caps);
                let ip = Ipv4Repr {
                    src_addr: ME4,
                    dst_addr: DST4,
                    next_header: IpProtocol::Icmp,
                    payload_len: b.len(),
                    hop_limit: 1,
                };
                (ip, b)
            }
        }
    }

    /// A whole IPv4 packet from `from` to us carrying `icmp`.
    fn ip4(from: Ipv4Address, icmp: &Icmpv4Repr<'_>) -> Vec<u8> {
        let ip = Ipv4Repr {
            src_addr: from,
            dst_addr: ME4,
            next_header: IpProtocol::Icmp,
            payload_len: icmp.buffer_len(),
            hop_limit: 64,
        };
        let mut b = vec![0; ip.buffer_len() + icmp.buffer_len()];
        let caps = ChecksumCapabilities::default();
        ip.emit(&mut Ipv4Packet::new_unchecked(&mut b), &caps);
        icmp.emit(&mut Icmpv4Packet::new_unchecked(&mut b[ip.buffer_len()..]), &caps);
        b
    }

    /// A router's time exceeded for a probe, quoting `quote` bytes of it past its IP header.
    fn time_exceeded4(router: Ipv4Address, probe: &(Ipv4Repr, Vec<u8>), quote: usize) -> Vec<u8> {
        let icmp = Icmpv4Repr::TimeExceeded {
            reason: Icmpv4TimeExceeded::TtlExpired,
            header: probe.0,
            data: &probe.1[..quote.min(probe.1.len())],
        };
        ip4(router, &icmp)
    }

    fn cfg(to: IpAddr, proto: TraceProto, max_hops: u8) -> TraceConfig {
        TraceConfig { to, proto, max_hops, probes: 3, timeout: Duration::from_secs(1) }
    }

    #[test]
    fn time_exceeded_with_a_short_or_whole_quote_names_the_probe() {
        for quote in [8, 40] {
            let p = probe4(TraceProto::Udp, 4, 50_000, 0);
            let a = parse_answer(&time_exceeded4(router4(1), &p, quote), DST4.into(), TraceProto::Udp, 0, true);
            assert_eq!(
                a,
                Some(Answer { from: router4(1).into(), seq: 4, port: 50_000, reply: Reply::TimeExceeded }),
                "quote of {quote}"
            );
        }
        let p = probe4(TraceProto::Icmp, 7, 0, 0xbeef);
        let packet = time_exceeded4(router4(2), &p, 8);
        let a = parse_answer(&packet, DST4.into(), TraceProto::Icmp, 0xbeef, true).expect("an answer");
        assert_eq!((a.seq, a.reply), (7, Reply::TimeExceeded));
        // Another identifier, another destination, the wrong protocol, a bad checksum, a cut quote.
        assert_eq!(parse_answer(&packet, DST4.into(), TraceProto::Icmp, 0xbeee, true), None);
        assert_eq!(parse_answer(&packet, router4(9).into(), TraceProto::Icmp, 0xbeef, true), None);
        assert_eq!(parse_answer(&packet, DST4.into(), TraceProto::Udp, 0xbeef, true), None);
        let mut bad = packet.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(parse_answer(&bad, DST4.into(), TraceProto::Icmp, 0xbeef, true), None);
        assert!(parse_answer(&bad, DST4.into(), TraceProto::Icmp, 0xbeef, false).is_some(), "checksums off");
        let short = time_exceeded4(router4(2), &p, 7);
        assert_eq!(parse_answer(&short, DST4.into(), TraceProto::Icmp, 0xbeef, true), None);
        for n in 0..packet.len() {
            let _ = parse_answer(&packet[..n], DST4.into(), TraceProto::Icmp, 0xbeef, true);
        }
    }

    #[test]
    fn three_hops_over_ipv4_udp_from_crafted_replies() {
        let mut t = Trace::new(cfg(DST4.into(), TraceProto::Udp, 30));
        let ms = |n| SimTime::from_millis(n);
        for hop in 1..=3u8 {
            let start = ms(u64::from(hop) * 100);
            let (ttl, seqs) = t.next_hop();
            assert_eq!((ttl, seqs.len()), (hop, 3));
            for &seq in &seqs {
                t.sent(seq, 40_000 + u16::from(hop), start, true);
            }
            for (i, &seq) in seqs.iter().enumerate() {
                // The second probe of hop 2 is lost: `*`.
                if hop == 2 && i == 1 {
                    continue;
                }
                let p = probe4(TraceProto::Udp, seq, 40_000 + u16::from(hop), 0);
                let packet = if hop < 3 {
                    time_exceeded4(router4(hop), &p, 8)
                } else {
                    let icmp = Icmpv4Repr::DstUnreachable {
                        reason: Icmpv4DstUnreachable::PortUnreachable,
                        header: p.0,
                        data: &p.1,
                    };
                    ip4(DST4, &icmp)
                };
                let a = parse_answer(&packet, DST4.into(), TraceProto::Udp, 0, true).expect("parsed");
                t.answer(start + Duration::from_millis(u64::from(hop) * 2 + i as u64), &a);
            }
            let end = if hop == 2 { start + Duration::from_secs(1) } else { start + Duration::from_millis(10) };
            if hop == 2 {
                assert_eq!(t.check(start + Duration::from_millis(500)), Err(start + Duration::from_secs(1)));
            }
            assert_eq!(t.check(end), Ok(hop < 3), "hop {hop}");
        }
        assert!(t.finished());
        let Outcome::Traceroute { reached, hop_count, hops, proto, .. } = t.outcome() else { panic!() };
        assert_eq!((reached, hop_count, proto), (true, 3, TraceProto::Udp));
        let from: Vec<Vec<Option<IpAddr>>> = hops.iter().map(|h| h.probes.iter().map(|p| p.from).collect()).collect();
        let r = |n| Some(IpAddr::from(router4(n)));
        let d = Some(IpAddr::from(DST4));
        assert_eq!(from, vec![vec![r(1); 3], vec![r(2), None, r(2)], vec![d; 3]]);
        assert_eq!(hops[0].probes[1].rtt_ms, Some(3.0));
        assert!(hops.iter().all(|h| h.note.is_none()));
    }

    #[test]
    fn a_reply_from_another_port_or_an_old_hop_is_not_taken() {
        let mut t = Trace::new(cfg(DST4.into(), TraceProto::Udp, 30));
        let (_, seqs) = t.next_hop();
        t.sent(seqs[0], 40_001, SimTime::ZERO, true);
        let p = probe4(TraceProto::Udp, seqs[0], 40_999, 0);
        let a = parse_answer(&time_exceeded4(router4(1), &p, 8), DST4.into(), TraceProto::Udp, 0, true).unwrap();
        t.answer(SimTime::from_millis(1), &a);
        assert_eq!(t.check(SimTime::from_millis(1)), Err(secs(1)));
    }

    /// An IPv6 packet from `from` to us carrying `icmp`.
    fn ip6(from: Ipv6Address, icmp: &Icmpv6Repr<'_>) -> Vec<u8> {
        let ip = Ipv6Repr {
            src_addr: from,
            dst_addr: ME6,
            next_header: IpProtocol::Icmpv6,
            payload_len: icmp.buffer_len(),
            hop_limit: 64,
        };
        let mut b = vec![0; ip.buffer_len() + icmp.buffer_len()];
        ip.emit(&mut Ipv6Packet::new_unchecked(&mut b));
        icmp.emit(
            &from,
            &ME6,
            &mut Icmpv6Packet::new_unchecked(&mut b[ip.buffer_len()..]),
            &ChecksumCapabilities::default(),
        );
        b
    }

    #[test]
    fn ipv6_icmp_two_hops_and_an_unreachable_note() {
        let caps = ChecksumCapabilities::default();
        let data = [b'@'; PROBE_DATA];
        let request = |seq| {
            let e = Icmpv6Repr::EchoRequest { ident: 9, seq_no: seq, data: &data };
            let mut b = vec![0; e.buffer_len()];
            e.emit(&ME6, &DST6, &mut Icmpv6Packet::new_unchecked(&mut b), &caps);
            let ip = Ipv6Repr {
                src_addr: ME6,
                dst_addr: DST6,
                next_header: IpProtocol::Icmpv6,
                payload_len: b.len(),
                hop_limit: 1,
            };
            (ip, b)
        };
        let mut t = Trace::new(cfg(DST6.into(), TraceProto::Icmp, 30));
        let (_, seqs) = t.next_hop();
        for &s in &seqs {
            t.sent(s, 0, SimTime::ZERO, true);
        }
        for &s in &seqs {
            let (ip, b) = request(s);
            let icmp =
                Icmpv6Repr::TimeExceeded { reason: Icmpv6TimeExceeded::HopLimitExceeded, header: ip, data: &b[..8] };
            let a = parse_answer(&ip6(router6(1), &icmp), DST6.into(), TraceProto::Icmp, 9, true).expect("parsed");
            assert_eq!((a.from, a.seq, a.reply), (IpAddr::from(router6(1)), s, Reply::TimeExceeded));
            t.answer(SimTime::from_millis(1), &a);
        }
        assert_eq!(t.check(SimTime::from_millis(1)), Ok(true));
        // Hop 2: the destination's echo reply.
        let (_, seqs) = t.next_hop();
        for &s in &seqs {
            t.sent(s, 0, SimTime::from_millis(1), true);
            let reply = Icmpv6Repr::EchoReply { ident: 9, seq_no: s, data: &data };
            let a = parse_answer(&ip6(DST6, &reply), DST6.into(), TraceProto::Icmp, 9, true).expect("parsed");
            assert_eq!(a.reply, Reply::EchoReply);
            t.answer(SimTime::from_millis(3), &a);
        }
        assert_eq!(t.check(SimTime::from_millis(3)), Ok(false));
        let Outcome::Traceroute { reached, hop_count, .. } = t.outcome() else { panic!() };
        assert_eq!((reached, hop_count), (true, 2));

        // A router that has no route answers !N, and the trace stops there.
        let mut t = Trace::new(cfg(DST6.into(), TraceProto::Icmp, 30));
        let (_, seqs) = t.next_hop();
        t.sent(seqs[0], 0, SimTime::ZERO, true);
        let (ip, b) = request(seqs[0]);
        let icmp = Icmpv6Repr::DstUnreachable { reason: Icmpv6DstUnreachable::NoRoute, header: ip, data: &b };
        let a = parse_answer(&ip6(router6(1), &icmp), DST6.into(), TraceProto::Icmp, 9, true).expect("parsed");
        t.answer(SimTime::from_millis(1), &a);
        assert_eq!(t.check(secs(1)), Ok(false));
        let Outcome::Traceroute { reached, hops, .. } = t.outcome() else { panic!() };
        assert!(!reached);
        assert_eq!(hops[0].note.as_deref(), Some("!N"));
    }

    #[test]
    fn max_hops_ends_an_unanswered_trace() {
        let mut t = Trace::new(cfg(DST4.into(), TraceProto::Udp, 2));
        for hop in 0..2u64 {
            let (_, seqs) = t.next_hop();
            for s in seqs {
                t.sent(s, 1, secs(hop), true);
            }
            assert_eq!(t.check(secs(hop + 1)), Ok(hop == 0));
        }
        let Outcome::Traceroute { reached, hop_count, hops, .. } = t.outcome() else { panic!() };
        assert_eq!((reached, hop_count), (false, 2));
        assert!(hops.iter().all(|h| h.probes.iter().all(|p| p.from.is_none() && p.rtt_ms.is_none())));
    }
}
