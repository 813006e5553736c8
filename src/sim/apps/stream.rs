//! A paced UDP stream of numbered, timestamped datagrams, and its receiver: loss, RFC 3550
//! interarrival jitter, reordering, duplicates and one-way delay.
//!
//! Each datagram starts with a header of 28 bytes, big-endian: the magic `NLS1`, its sequence
//! number (from 0), the stream's datagram count, the simulated time it was sent and the time the
//! sender stops (its last send and its linger), both in nanoseconds; the stream pattern follows.
//!
//! Before the stream, the sender sends a hello (a bare header numbered `u32::MAX`, count 0) and
//! starts one datagram interval after it has left the host: so the first datagrams do not wait
//! for ARP or NDP, nor behind the hello, which would show as jitter. It waits at most [`HELLO_WAIT`].

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;
use smoltcp::wire::IpAddress;

use super::{count_mismatch, endpoint_str, fill_pattern, App, AppCx, Outcome, RttStats, Rtts};
use crate::time::SimTime;
use crate::topology::UdpStream as StreamConfig;

pub const MAGIC: [u8; 4] = *b"NLS1";
pub const HEADER: usize = 28;

/// The hello's sequence number (its count is 0).
pub const HELLO_SEQ: u32 = u32::MAX;
/// How long the sender waits for its hello to leave before it starts anyway.
pub const HELLO_WAIT: Duration = Duration::from_secs(1);

/// Streams a receiver tells apart (by sender address and port); datagrams of more are counted apart.
pub const MAX_STREAMS: usize = 64;

/// Sequence numbers behind the highest one that a receiver remembers, to tell a duplicate from a
/// late datagram. One older still counts as late (reordered), never as a duplicate.
const WINDOW: u32 = 1 << 16;

/// The header of a stream datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub seq: u32,
    /// Datagrams in the stream; 0 when the sender does not say.
    pub total: u32,
    pub sent_ns: u64,
    pub end_ns: u64,
}

impl Header {
    pub fn write(&self, out: &mut [u8]) {
        out[0..4].copy_from_slice(&MAGIC);
        out[4..8].copy_from_slice(&self.seq.to_be_bytes());
        out[8..12].copy_from_slice(&self.total.to_be_bytes());
        out[12..20].copy_from_slice(&self.sent_ns.to_be_bytes());
        out[20..28].copy_from_slice(&self.end_ns.to_be_bytes());
    }

    #[must_use]
    pub fn read(d: &[u8]) -> Option<Header> {
        if d.len() < HEADER || d[0..4] != MAGIC {
            return None;
        }
        let u32_at = |i: usize| u32::from_be_bytes([d[i], d[i + 1], d[i + 2], d[i + 3]]);
        let u64_at = |i: usize| (u64::from(u32_at(i)) << 32) | u64::from(u32_at(i + 4));
        Some(Header { seq: u32_at(4), total: u32_at(8), sent_ns: u64_at(12), end_ns: u64_at(20) })
    }
}

fn udp_socket(cx: &mut AppCx<'_>, packets: usize) -> SocketHandle {
    let buf = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; packets], vec![0; packets * 1500]);
    cx.sockets.add(udp::Socket::new(buf(), buf()))
}

/// Sends `count` datagrams of `size` bytes, datagram `k` at `start + k × size × 8 / rate`, where
/// `start` is when its hello left.
pub struct StreamSender {
    cfg: StreamConfig,
    /// When the hello was sent, until the stream starts.
    hello: Option<SimTime>,
    start: Option<SimTime>,
    handle: Option<SocketHandle>,
    next: u32,
    sent: u32,
    send_errors: u32,
    bytes: u64,
    first: Option<SimTime>,
    last: Option<SimTime>,
    finished: bool,
    msg: Vec<u8>,
}

impl StreamSender {
    pub fn new(cfg: StreamConfig) -> Self {
        StreamSender {
            cfg,
            hello: None,
            start: None,
            handle: None,
            next: 0,
            sent: 0,
            send_errors: 0,
            bytes: 0,
            first: None,
            last: None,
            finished: false,
            msg: vec![0; cfg.size.max(HEADER)],
        }
    }

    /// When datagram `k` is due, the stream having started at `start`.
    fn due(&self, start: SimTime, k: u32) -> SimTime {
        let bits = self.cfg.size as u128 * 8 * 1_000_000_000;
        let ns = u128::from(k) * bits / u128::from(self.cfg.rate_bps.max(1));
        start + Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    /// When the sender stops: its last datagram, then its linger.
    fn end(&self, start: SimTime) -> SimTime {
        self.due(start, self.cfg.count.saturating_sub(1)) + self.cfg.linger
    }
}

impl App for StreamSender {
    fn poll(&mut self, cx: &mut AppCx<'_>) -> Option<SimTime> {
        if self.finished {
            return None;
        }
        let h = match self.handle {
            Some(h) => h,
            None => {
                // A socket buffer of 256 datagrams: a stream faster than its link fills it, and
                // what does not fit is not sent (counted), as a kernel drops on a full buffer.
                let h = udp_socket(cx, 256);
                let port = cx.ephemeral_port();
                let _ = cx.sockets.get_mut::<udp::Socket>(h).bind(port);
                self.handle = Some(h);
                h
            }
        };
        let remote = (IpAddress::from(self.cfg.to.0), self.cfg.to.1);
        let start = match (self.start, self.hello) {
            (Some(t), _) => t,
            (None, None) => {
                let mut hello = [0u8; HEADER];
                Header { seq: HELLO_SEQ, total: 0, sent_ns: cx.now.as_nanos(), end_ns: 0 }.write(&mut hello);
                let _ = cx.sockets.get_mut::<udp::Socket>(h).send_slice(&hello, remote);
                self.hello = Some(cx.now);
                // Sent at once if the neighbour is known: the host polls its apps again then.
                return Some(cx.now + HELLO_WAIT);
            }
            (None, Some(sent)) => {
                if cx.sockets.get::<udp::Socket>(h).send_queue() > 0 && cx.now < sent + HELLO_WAIT {
                    return Some(sent + HELLO_WAIT);
                }
                let start = self.due(cx.now, 1);
                self.start = Some(start);
                start
            }
        };
        let end_ns = self.end(start).as_nanos();
        while self.next < self.cfg.count && self.due(start, self.next) <= cx.now {
            let header = Header { seq: self.next, total: self.cfg.count, sent_ns: cx.now.as_nanos(), end_ns };
            header.write(&mut self.msg);
            fill_pattern(&mut self.msg[HEADER..], u64::from(self.next));
            if cx.sockets.get_mut::<udp::Socket>(h).send_slice(&self.msg, remote).is_ok() {
                self.sent += 1;
                self.bytes += self.msg.len() as u64;
                self.first.get_or_insert(cx.now);
                self.last = Some(cx.now);
            } else {
                self.send_errors += 1;
            }
            self.next += 1;
        }
        if self.next < self.cfg.count {
            return Some(self.due(start, self.next).max(cx.now));
        }
        if cx.now >= self.end(start) {
            self.finished = true;
            return None;
        }
        Some(self.end(start))
    }

    fn stop(&mut self, cx: &mut AppCx<'_>) {
        if let Some(h) = self.handle.take() {
            cx.close_socket(h);
        }
    }

    fn done(&self) -> bool {
        self.finished
    }

    fn outcome(&self) -> Outcome {
        let seconds = match (self.first, self.last) {
            (Some(a), Some(b)) => (b - a).as_secs_f64(),
            _ => 0.0,
        };
        Outcome::UdpStream {
            to: endpoint_str(self.cfg.to),
            count: self.cfg.count,
            sent: self.sent,
            send_errors: self.send_errors,
            bytes: self.bytes,
            rate_mbps: self.cfg.rate_bps as f64 / 1e6,
            seconds,
        }
    }
}

/// RFC 3550 §6.4.1 interarrival jitter: for each packet, `D` is the difference of its transit time
/// (arrival − send) and the previous packet's, and `J += (|D| − J) / 16`. In nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Jitter {
    last_transit: Option<i128>,
    pub j_ns: f64,
}

impl Jitter {
    pub fn add(&mut self, sent_ns: u64, arrived_ns: u64) {
        let transit = i128::from(arrived_ns) - i128::from(sent_ns);
        if let Some(prev) = self.last_transit {
            let d = (transit - prev).unsigned_abs() as f64;
            self.j_ns += (d - self.j_ns) / 16.0;
        }
        self.last_transit = Some(transit);
    }
}

/// Which sequence numbers were seen, in a window behind the highest.
#[derive(Debug, Clone)]
struct Seen {
    bits: Vec<u64>,
    highest: Option<u32>,
}

enum Arrival {
    /// Above every one seen.
    Next,
    /// Below the highest, not seen before.
    Late,
    Duplicate,
}

impl Seen {
    fn new() -> Self {
        Seen { bits: vec![0; (WINDOW / 64) as usize], highest: None }
    }

    fn bit(seq: u32) -> (usize, u64) {
        let i = seq % WINDOW;
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    fn arrive(&mut self, seq: u32) -> Arrival {
        match self.highest {
            Some(h) if seq <= h => {
                if h - seq >= WINDOW {
                    return Arrival::Late;
                }
                let (w, b) = Self::bit(seq);
                if self.bits[w] & b != 0 {
                    return Arrival::Duplicate;
                }
                self.bits[w] |= b;
                Arrival::Late
            }
            _ => {
                // Forget the numbers the window moves past.
                let from = self.highest.map_or(0, |h| h + 1);
                if seq - from >= WINDOW {
                    self.bits.fill(0);
                } else {
                    for s in from..seq {
                        let (w, b) = Self::bit(s);
                        self.bits[w] &= !b;
                    }
                }
                let (w, b) = Self::bit(seq);
                self.bits[w] |= b;
                self.highest = Some(seq);
                Arrival::Next
            }
        }
    }
}

/// One sender's stream, as a receiver sees it.
#[derive(Debug, Clone)]
struct Stream {
    from: (IpAddr, u16),
    total: u32,
    end_ns: u64,
    ended: bool,
    seen: Seen,
    unique: u64,
    duplicates: u64,
    reordered: u64,
    corrupt: u64,
    bytes: u64,
    jitter: Jitter,
    delay: Rtts,
}

impl Stream {
    fn new(from: (IpAddr, u16)) -> Self {
        Stream {
            from,
            total: 0,
            end_ns: 0,
            ended: false,
            seen: Seen::new(),
            unique: 0,
            duplicates: 0,
            reordered: 0,
            corrupt: 0,
            bytes: 0,
            jitter: Jitter::default(),
            delay: Rtts::default(),
        }
    }

    fn arrive(&mut self, h: &Header, now: SimTime, len: usize, corrupt: bool) {
        self.total = h.total;
        self.end_ns = h.end_ns;
        self.bytes += len as u64;
        match self.seen.arrive(h.seq) {
            Arrival::Duplicate => {
                self.duplicates += 1;
                return;
            }
            Arrival::Late => self.reordered += 1,
            Arrival::Next => {}
        }
        self.unique += 1;
        self.corrupt += u64::from(corrupt);
        self.jitter.add(h.sent_ns, now.as_nanos());
        if let Some(d) = now.as_nanos().checked_sub(h.sent_ns) {
            self.delay.add(Duration::from_nanos(d));
        }
    }

    /// Datagrams the stream should have brought: the sender's count once it has stopped, else one
    /// past the highest sequence number seen.
    fn expected(&self) -> u64 {
        let seen = self.seen.highest.map_or(0, |h| u64::from(h) + 1);
        if self.ended && self.total > 0 {
            seen.max(u64::from(self.total))
        } else {
            seen
        }
    }

    fn report(&self) -> StreamReport {
        let expected = self.expected();
        let lost = expected.saturating_sub(self.unique);
        StreamReport {
            from: endpoint_str(self.from),
            count: (self.total > 0).then_some(self.total),
            ended: self.ended,
            expected,
            received: self.unique,
            lost,
            loss_pct: pct(lost, expected),
            duplicates: self.duplicates,
            reordered: self.reordered,
            corrupt: self.corrupt,
            jitter_us: self.jitter.j_ns / 1e3,
            delay: self.delay.stats(),
        }
    }
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// One stream of a `udp-stream-server`, as the report lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamReport {
    /// The sender's address and port.
    pub from: String,
    /// The sender's datagram count, as its datagrams say.
    pub count: Option<u32>,
    /// The sender has stopped (its last send and linger are past): loss counts against `count`.
    pub ended: bool,
    pub expected: u64,
    /// Datagrams received, duplicates left out.
    pub received: u64,
    pub lost: u64,
    pub loss_pct: f64,
    pub duplicates: u64,
    /// Datagrams that came after one with a higher sequence number.
    pub reordered: u64,
    /// Datagrams whose payload differs from the pattern.
    pub corrupt: u64,
    /// RFC 3550 interarrival jitter, in microseconds.
    pub jitter_us: f64,
    /// One-way delay, from the send time the datagram carries: min/avg/max in ms.
    pub delay: Option<RttStats>,
}

/// Receives `udp-stream`s on a port, with a socket on each interface of its host.
pub struct StreamServer {
    port: u16,
    /// The socket of each interface it was polled on: (interface, handle).
    handles: Vec<(usize, SocketHandle)>,
    streams: BTreeMap<(IpAddr, u16), Stream>,
    /// Datagrams too short or without the header's magic.
    malformed: u64,
    /// Datagrams of streams past [`MAX_STREAMS`].
    ignored: u64,
    scratch: Vec<u8>,
}

impl StreamServer {
    pub fn new(port: u16) -> Self {
        StreamServer {
            port,
            handles: Vec::new(),
            streams: BTreeMap::new(),
            malformed: 0,
            ignored: 0,
            scratch: vec![0; 65_536],
        }
    }
}

impl App for StreamServer {
    fn poll(&mut self, cx: &mut AppCx<'_>) -> Option<SimTime> {
        let h = match self.handles.iter().find(|(d, _)| *d == cx.interface) {
            Some(&(_, h)) => h,
            None => {
                let h = udp_socket(cx, 256);
                let _ = cx.sockets.get_mut::<udp::Socket>(h).bind(self.port);
                self.handles.push((cx.interface, h));
                h
            }
        };
        loop {
            let s = cx.sockets.get_mut::<udp::Socket>(h);
            let Ok((n, meta)) = s.recv_slice(&mut self.scratch) else { break };
            let d = &self.scratch[..n];
            let Some(header) = Header::read(d) else {
                self.malformed += 1;
                continue;
            };
            if header.seq == HELLO_SEQ && header.total == 0 {
                continue;
            }
            let from = (IpAddr::from(meta.endpoint.addr), meta.endpoint.port);
            if !self.streams.contains_key(&from) && self.streams.len() >= MAX_STREAMS {
                self.ignored += 1;
                continue;
            }
            let corrupt = count_mismatch(&d[HEADER..], u64::from(header.seq)) > 0;
            self.streams.entry(from).or_insert_with(|| Stream::new(from)).arrive(&header, cx.now, n, corrupt);
        }
        // A stream whose sender has stopped counts its loss against the sender's count; wake then.
        let now = cx.now.as_nanos();
        let mut wake = None;
        for st in self.streams.values_mut() {
            if !st.ended && st.total > 0 {
                if now >= st.end_ns {
                    st.ended = true;
                } else {
                    wake = super::min_wake(wake, Some(SimTime::from_nanos(st.end_ns)));
                }
            }
        }
        wake
    }

    fn stop(&mut self, cx: &mut AppCx<'_>) {
        if let Some(i) = self.handles.iter().position(|(d, _)| *d == cx.interface) {
            cx.close_socket(self.handles.remove(i).1);
        }
    }

    fn done(&self) -> bool {
        false
    }

    fn outcome(&self) -> Outcome {
        let streams: Vec<StreamReport> = self.streams.values().map(Stream::report).collect();
        let sum = |f: fn(&StreamReport) -> u64| streams.iter().map(f).sum::<u64>();
        let (expected, lost) = (sum(|s| s.expected), sum(|s| s.lost));
        let mut delay = Rtts::default();
        for s in self.streams.values() {
            delay.merge(&s.delay);
        }
        Outcome::UdpStreamServer {
            port: self.port,
            streams: u32::try_from(streams.len()).unwrap_or(u32::MAX),
            received: sum(|s| s.received),
            bytes: self.streams.values().map(|s| s.bytes).sum(),
            expected,
            lost,
            loss_pct: pct(lost, expected),
            duplicates: sum(|s| s.duplicates),
            reordered: sum(|s| s.reordered),
            corrupt: sum(|s| s.corrupt),
            malformed: self.malformed + self.ignored,
            jitter_us: streams.iter().map(|s| s.jitter_us).fold(0.0, f64::max),
            delay: delay.stats(),
            per_stream: streams,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_round_trips() {
        let h = Header { seq: 7, total: 625, sent_ns: 1 << 40, end_ns: (1 << 40) + 5 };
        let mut b = [0u8; HEADER + 3];
        h.write(&mut b);
        assert_eq!(Header::read(&b), Some(h));
        assert_eq!(Header::read(&b[..HEADER - 1]), None);
        b[0] = b'X';
        assert_eq!(Header::read(&b), None);
    }

    #[test]
    fn rfc3550_jitter_from_fixed_transit_times() {
        // Constant transit: no jitter, whatever the spacing.
        let mut j = Jitter::default();
        for (s, r) in [(0, 5_000), (8_000, 13_000), (30_000, 35_000)] {
            j.add(s, r);
        }
        assert_eq!(j.j_ns, 0.0);
        // Transits 5, 7, 5, 7 µs: |D| = 2 µs each time; J = 2000 × (1 − (15/16)^3).
        let mut j = Jitter::default();
        for (s, r) in [(0, 5_000), (10_000, 17_000), (20_000, 25_000), (30_000, 37_000)] {
            j.add(s, r);
        }
        let want = 2000.0 * (1.0 - (15.0f64 / 16.0).powi(3));
        assert!((j.j_ns - want).abs() < 1e-9, "{} vs {want}", j.j_ns);
        // One step by hand: J1 = 2000/16 = 125, J2 = 125 + (2000 − 125)/16 = 242.1875.
        let mut j = Jitter::default();
        j.add(0, 5_000);
        j.add(10_000, 17_000);
        assert_eq!(j.j_ns, 125.0);
        j.add(20_000, 25_000);
        assert_eq!(j.j_ns, 242.1875);
        // Late arrivals are in arrival order: a datagram sent earlier arriving later is a swing in D.
        let mut j = Jitter::default();
        j.add(10_000, 15_000);
        j.add(0, 16_000);
        assert_eq!(j.j_ns, 11_000.0 / 16.0);
    }

    fn arrive(st: &mut Stream, seq: u32, at_us: u64) {
        let h = Header { seq, total: 10, sent_ns: u64::from(seq) * 1000, end_ns: 50_000_000 };
        st.arrive(&h, SimTime::from_nanos(at_us * 1000), 100, false);
    }

    #[test]
    fn loss_reordering_and_duplicates() {
        let mut st = Stream::new(("10.0.0.1".parse().unwrap(), 5000));
        for (seq, at) in [(0, 10), (1, 11), (3, 13), (2, 14), (3, 15), (5, 16), (6, 17)] {
            arrive(&mut st, seq, at);
        }
        let r = st.report();
        // 0..=6 expected while the sender runs; 4 is missing; 2 came late; 3 twice.
        assert_eq!((r.expected, r.received, r.lost, r.reordered, r.duplicates), (7, 6, 1, 1, 1));
        // Once the sender has stopped, its count (10) is what was expected: 7, 8 and 9 are lost too.
        st.ended = true;
        let r = st.report();
        assert_eq!((r.expected, r.lost), (10, 4));
        assert!((r.loss_pct - 40.0).abs() < 1e-9);
        assert_eq!(r.delay.map(|d| d.min_ms), Some(0.01));
    }

    #[test]
    fn the_window_forgets_and_a_far_late_datagram_is_late() {
        let mut s = Seen::new();
        assert!(matches!(s.arrive(5), Arrival::Next));
        assert!(matches!(s.arrive(5), Arrival::Duplicate));
        assert!(matches!(s.arrive(WINDOW + 10), Arrival::Next));
        // 5 is past the window: late, not a duplicate.
        assert!(matches!(s.arrive(5), Arrival::Late));
        assert!(matches!(s.arrive(WINDOW + 9), Arrival::Late));
        assert!(matches!(s.arrive(WINDOW + 9), Arrival::Duplicate));
        // A number that shares a bit with an old one is not taken for it.
        assert!(matches!(s.arrive(2 * WINDOW + 9), Arrival::Next));
        assert!(matches!(s.arrive(WINDOW + 10 + 1), Arrival::Late));
    }
}
