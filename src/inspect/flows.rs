//! Conversations, as a passive observer on one point of the lab sees them: TCP and UDP by
//! 5-tuple, ICMP echo by identifier (other ICMP messages by address pair), ARP by address pair,
//! other IP protocols by address pair and protocol. Either direction of a conversation is the
//! same flow.
//!
//! Per flow: packets and bytes each way, first and last time, the rate over the last second, an
//! RTT estimate (TCP and ICMP echo) and, for TCP, the state as seen on the wire, retransmissions
//! and zero-window advertisements. Everything is computed from the frames and times it is given:
//! no clock.
//!
//! Feed it one view of the traffic. A frame observed twice (the Sent and the Delivered event of
//! one hop, or the same packet on each hop of its path) counts twice and looks like a
//! retransmission; feed one link's frames, or each packet once (its first Sent event).
//!
//! Memory is bounded: at most `capacity` flows (the least recently seen one makes room for a new
//! one) and a fixed amount per flow.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use super::peek::{peek, Echo, Peeked, TcpSeg, L4};

/// Flows kept by [`FlowTable::default`].
pub const DEFAULT_CAPACITY: usize = 65_536;

/// The rate is the bytes of the last `RATE_SLOTS` slots of `RATE_SLOT_NS`: one second.
const RATE_SLOTS: usize = 10;
const RATE_SLOT_NS: u64 = 100_000_000;

/// Data segments (or echo requests) awaiting their ACK (reply) per flow, for RTT samples; older
/// ones are forgotten.
const PENDING: usize = 16;

/// A flow's number, unique in its table (never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowId(pub u64);

/// What a flow carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    Arp,
    /// Another IP protocol, by number.
    Ip(u8),
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::Tcp => f.write_str("TCP"),
            Protocol::Udp => f.write_str("UDP"),
            Protocol::Icmp => f.write_str("ICMP"),
            Protocol::Icmpv6 => f.write_str("ICMPv6"),
            Protocol::Arp => f.write_str("ARP"),
            Protocol::Ip(p) => match super::decode::ip_proto_name(*p) {
                Some(name) => f.write_str(name),
                None => write!(f, "IP protocol {p}"),
            },
        }
    }
}

/// One end of a flow: an address, and a port for TCP and UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub addr: IpAddr,
    pub port: Option<u16>,
}

/// `10.0.0.1:80`, `[fe80::1]:80`, `10.0.0.1`.
impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.addr, self.port) {
            (IpAddr::V6(a), Some(p)) => write!(f, "[{a}]:{p}"),
            (a, Some(p)) => write!(f, "{a}:{p}"),
            (a, None) => write!(f, "{a}"),
        }
    }
}

/// What identifies a flow, the same in both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub protocol: Protocol,
    /// The lower of the two ends.
    pub lo: Endpoint,
    pub hi: Endpoint,
    /// The echo identifier, for an ICMP echo flow.
    pub ident: Option<u16>,
}

impl FlowKey {
    /// The flow a frame belongs to, with its sender and receiver; `None` for a frame that is in
    /// no flow (not IP or ARP, or malformed).
    #[must_use]
    pub fn of(frame: &[u8]) -> Option<FlowKey> {
        peek(frame).map(|p| key_of(&p).0)
    }
}

/// Packets and bytes (whole frames) one way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    pub packets: u64,
    pub bytes: u64,
}

/// Round-trip time samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rtt {
    pub last_ns: Option<u64>,
    /// RFC 6298's smoothed RTT (gain 1/8).
    pub smoothed_ns: Option<u64>,
    pub min_ns: Option<u64>,
    pub samples: u64,
}

impl Rtt {
    fn sample(&mut self, ns: u64) {
        self.last_ns = Some(ns);
        self.smoothed_ns = Some(match self.smoothed_ns {
            None => ns,
            Some(s) => s - s / 8 + ns / 8,
        });
        self.min_ns = Some(self.min_ns.map_or(ns, |m| m.min(ns)));
        self.samples += 1;
    }
}

/// A TCP connection's state, as a passive observer can tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpState {
    /// A SYN was seen, no SYN-ACK yet.
    SynSent,
    /// The SYN-ACK was seen, not yet the ACK that completes the handshake.
    SynAck,
    /// The handshake completed, or the connection was already under way when first seen.
    Established,
    /// One side sent a FIN.
    Fin,
    /// Both sides sent a FIN.
    Closed,
    /// A RST was seen.
    Reset,
}

impl TcpState {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            TcpState::SynSent => "SYN sent",
            TcpState::SynAck => "SYN-ACK",
            TcpState::Established => "established",
            TcpState::Fin => "FIN",
            TcpState::Closed => "closed",
            TcpState::Reset => "reset",
        }
    }
}

/// What a flow knows of a TCP connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpFlow {
    pub state: TcpState,
    /// Segments that carried sequence space already seen (data, SYN or FIN sent again).
    pub retransmissions: u64,
    /// Segments advertising a zero window (not SYN, FIN or RST).
    pub zero_windows: u64,
    /// From the (last) SYN to the ACK that completed the handshake.
    pub handshake_rtt_ns: Option<u64>,
    /// Index 0: from `a` to `b`.
    dirs: [TcpDir; 2],
    /// Which side sent the SYN.
    client: Option<usize>,
    syn_ns: Option<u64>,
    pending: [Option<Pending>; PENDING],
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct TcpDir {
    isn: Option<u32>,
    /// The highest sequence number sent so far, plus one.
    next: Option<u32>,
    fin: bool,
}

/// A segment (or echo request) awaiting its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pending {
    dir: usize,
    /// TCP: the sequence number that acknowledges it; echo: its sequence number.
    end: u32,
    at_ns: u64,
    /// Sent more than once: which copy an answer answers is not known (Karn), so no sample.
    ambiguous: bool,
}

/// What a flow knows of an ICMP echo exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoFlow {
    pub requests: u64,
    pub replies: u64,
    pending: [Option<Pending>; PENDING],
}

/// One conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    pub id: FlowId,
    pub key: FlowKey,
    /// The sender of the first frame seen.
    pub a: Endpoint,
    pub b: Endpoint,
    pub a_to_b: Traffic,
    pub b_to_a: Traffic,
    pub first_ns: u64,
    pub last_ns: u64,
    pub rtt: Rtt,
    pub tcp: Option<TcpFlow>,
    pub echo: Option<EchoFlow>,
    rate: RateMeter,
}

impl Flow {
    #[must_use]
    pub fn packets(&self) -> u64 {
        self.a_to_b.packets + self.b_to_a.packets
    }

    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.a_to_b.bytes + self.b_to_a.bytes
    }

    /// Bytes per second, both ways, over the second up to `now_ns` (give
    /// [`FlowTable::now_ns`] for "now"). 0 once a flow has been quiet for a second.
    #[must_use]
    pub fn rate(&self, now_ns: u64) -> f64 {
        self.rate.bytes_in_last_second(now_ns) as f64
    }
}

/// The flows of a run.
#[derive(Debug, Clone)]
pub struct FlowTable {
    capacity: usize,
    /// Flows, with the links of a list from the most to the least recently seen.
    slots: Vec<Slot>,
    /// The current flow of each key (an older flow of the same key, closed and started anew, stays
    /// in `slots` without an entry here until it is evicted).
    by_key: HashMap<FlowKey, u32>,
    by_id: HashMap<FlowId, u32>,
    head: u32,
    tail: u32,
    next_id: u64,
    now_ns: u64,
    frames: u64,
    unrecognised: u64,
    evicted: u64,
}

const NIL: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct Slot {
    flow: Flow,
    prev: u32,
    next: u32,
}

impl Default for FlowTable {
    fn default() -> Self {
        FlowTable::new(DEFAULT_CAPACITY)
    }
}

impl FlowTable {
    /// A table of at most `capacity` flows (at least 1, at most 2^24).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, 1 << 24);
        FlowTable {
            capacity,
            slots: Vec::new(),
            by_key: HashMap::new(),
            by_id: HashMap::new(),
            head: NIL,
            tail: NIL,
            next_id: 0,
            now_ns: 0,
            frames: 0,
            unrecognised: 0,
            evicted: 0,
        }
    }

    /// Takes a frame seen at `time_ns` into account; says which flow it belongs to (`None`: it is
    /// not IP or ARP, or it is malformed). Times should not go backwards; one that does counts as
    /// the latest time seen.
    pub fn observe(&mut self, time_ns: u64, frame: &[u8]) -> Option<FlowId> {
        self.frames += 1;
        self.now_ns = self.now_ns.max(time_ns);
        let t = self.now_ns;
        let Some(p) = peek(frame) else {
            self.unrecognised += 1;
            return None;
        };
        let (key, src, dst) = key_of(&p);
        let slot = match self.by_key.get(&key) {
            Some(&s) if !starts_anew(&self.slots[s as usize].flow, &p) => s,
            _ => self.insert(key, src, dst, t, &p),
        };
        self.touch(slot);
        let flow = &mut self.slots[slot as usize].flow;
        let dir = usize::from(src != flow.a);
        let bytes = frame.len() as u64;
        let traffic = if dir == 0 { &mut flow.a_to_b } else { &mut flow.b_to_a };
        traffic.packets += 1;
        traffic.bytes += bytes;
        flow.last_ns = t;
        flow.rate.add(t, bytes);
        if let Peeked::Ip { l4, .. } = p {
            match l4 {
                L4::Tcp(seg) => {
                    if let Some(tcp) = &mut flow.tcp {
                        tcp.segment(dir, &seg, t, &mut flow.rtt);
                    }
                }
                L4::Icmp { echo: Some(e) } => {
                    if let Some(echo) = &mut flow.echo {
                        echo.message(dir, e, t, &mut flow.rtt);
                    }
                }
                _ => {}
            }
        }
        Some(flow.id)
    }

    #[must_use]
    pub fn get(&self, id: FlowId) -> Option<&Flow> {
        self.by_id.get(&id).map(|&s| &self.slots[s as usize].flow)
    }

    /// The current flow of a key.
    #[must_use]
    pub fn by_key(&self, key: &FlowKey) -> Option<&Flow> {
        self.by_key.get(key).map(|&s| &self.slots[s as usize].flow)
    }

    /// The flows, the most recently seen first.
    pub fn iter(&self) -> impl Iterator<Item = &Flow> + '_ {
        let mut at = self.head;
        std::iter::from_fn(move || {
            let slot = self.slots.get(at as usize)?;
            at = slot.next;
            Some(&slot.flow)
        })
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The latest time observed.
    #[must_use]
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// Frames observed.
    #[must_use]
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Frames in no flow.
    #[must_use]
    pub fn unrecognised(&self) -> u64 {
        self.unrecognised
    }

    /// Flows forgotten to make room for new ones.
    #[must_use]
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    fn insert(&mut self, key: FlowKey, src: Endpoint, dst: Endpoint, t: u64, p: &Peeked) -> u32 {
        let id = FlowId(self.next_id);
        self.next_id += 1;
        let flow = Flow {
            id,
            key,
            a: src,
            b: dst,
            a_to_b: Traffic::default(),
            b_to_a: Traffic::default(),
            first_ns: t,
            last_ns: t,
            rtt: Rtt::default(),
            tcp: match p {
                Peeked::Ip { l4: L4::Tcp(seg), .. } => Some(TcpFlow::new(seg)),
                _ => None,
            },
            echo: match p {
                Peeked::Ip { l4: L4::Icmp { echo: Some(_) }, .. } => {
                    Some(EchoFlow { requests: 0, replies: 0, pending: [None; PENDING] })
                }
                _ => None,
            },
            rate: RateMeter::default(),
        };
        let slot = if self.slots.len() < self.capacity {
            self.slots.push(Slot { flow, prev: NIL, next: NIL });
            let s = (self.slots.len() - 1) as u32;
            self.link_front(s);
            s
        } else {
            let s = self.tail;
            let old = &self.slots[s as usize].flow;
            if self.by_key.get(&old.key) == Some(&s) {
                self.by_key.remove(&old.key);
            }
            self.by_id.remove(&old.id);
            self.evicted += 1;
            self.slots[s as usize].flow = flow;
            s
        };
        self.by_key.insert(key, slot);
        self.by_id.insert(id, slot);
        slot
    }

    /// Makes `s` the most recently seen.
    fn touch(&mut self, s: u32) {
        if self.head != s {
            self.unlink(s);
            self.link_front(s);
        }
    }

    fn unlink(&mut self, s: u32) {
        let Slot { prev, next, .. } = self.slots[s as usize];
        match prev {
            NIL => self.head = next,
            p => self.slots[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.slots[n as usize].prev = prev,
        }
    }

    fn link_front(&mut self, s: u32) {
        self.slots[s as usize].prev = NIL;
        self.slots[s as usize].next = self.head;
        match self.head {
            NIL => self.tail = s,
            h => self.slots[h as usize].prev = s,
        }
        self.head = s;
    }
}

/// A SYN on a connection that was closed or reset starts a new one (a port used again).
fn starts_anew(flow: &Flow, p: &Peeked) -> bool {
    let Peeked::Ip { l4: L4::Tcp(seg), .. } = p else { return false };
    let Some(tcp) = &flow.tcp else { return false };
    seg.has(TcpSeg::SYN) && !seg.has(TcpSeg::ACK) && matches!(tcp.state, TcpState::Closed | TcpState::Reset)
}

/// The key of a frame, its sender and its receiver.
fn key_of(p: &Peeked) -> (FlowKey, Endpoint, Endpoint) {
    let ep = |addr: IpAddr, port: Option<u16>| Endpoint { addr, port };
    let (protocol, src, dst, ident) = match *p {
        Peeked::Arp { spa, tpa, .. } => (Protocol::Arp, ep(spa.into(), None), ep(tpa.into(), None), None),
        Peeked::Ip { src, dst, proto, l4 } => match l4 {
            L4::Tcp(s) => (Protocol::Tcp, ep(src, Some(s.sport)), ep(dst, Some(s.dport)), None),
            L4::Udp { sport, dport } => (Protocol::Udp, ep(src, Some(sport)), ep(dst, Some(dport)), None),
            L4::Icmp { echo } => {
                let protocol = if src.is_ipv4() { Protocol::Icmp } else { Protocol::Icmpv6 };
                (protocol, ep(src, None), ep(dst, None), echo.map(|e| e.ident))
            }
            L4::Other => (Protocol::Ip(proto), ep(src, None), ep(dst, None), None),
        },
    };
    let (lo, hi) = if src <= dst { (src, dst) } else { (dst, src) };
    (FlowKey { protocol, lo, hi, ident }, src, dst)
}

/// `a` before `b` in sequence space.
fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

fn seq_le(a: u32, b: u32) -> bool {
    a == b || seq_lt(a, b)
}

impl TcpFlow {
    fn new(first: &TcpSeg) -> TcpFlow {
        let state = if first.has(TcpSeg::RST) {
            TcpState::Reset
        } else if first.has(TcpSeg::SYN) && first.has(TcpSeg::ACK) {
            TcpState::SynAck
        } else if first.has(TcpSeg::SYN) {
            TcpState::SynSent
        } else {
            TcpState::Established
        };
        TcpFlow {
            state,
            retransmissions: 0,
            zero_windows: 0,
            handshake_rtt_ns: None,
            dirs: [TcpDir::default(); 2],
            client: None,
            syn_ns: None,
            pending: [None; PENDING],
        }
    }

    fn segment(&mut self, dir: usize, seg: &TcpSeg, t: u64, rtt: &mut Rtt) {
        let (syn, ack, fin, rst) =
            (seg.has(TcpSeg::SYN), seg.has(TcpSeg::ACK), seg.has(TcpSeg::FIN), seg.has(TcpSeg::RST));
        // Sequence space: SYN and FIN take one number each.
        let space = seg.len.wrapping_add(u32::from(syn)).wrapping_add(u32::from(fin));
        let end = seg.seq.wrapping_add(space);
        let me = self.dirs[dir];

        let again = if syn {
            me.isn == Some(seg.seq)
        } else if space > 0 && !rst {
            // A keep-alive carries (at most) one byte below what was already sent: not data.
            let keepalive = seg.len <= 1 && !fin && me.next.is_some_and(|n| seg.seq == n.wrapping_sub(1));
            me.next.is_some_and(|n| seq_lt(seg.seq, n)) && !keepalive
        } else {
            false
        };
        if again {
            self.retransmissions += 1;
            for p in self.pending.iter_mut().flatten() {
                if p.dir == dir && seq_lt(seg.seq, p.end) {
                    p.ambiguous = true;
                }
            }
        } else if space > 0 && !syn && !rst {
            self.expect(Pending { dir, end, at_ns: t, ambiguous: false });
        }

        let me = &mut self.dirs[dir];
        if syn {
            me.isn = Some(seg.seq);
        }
        if space > 0 && me.next.is_none_or(|n| seq_lt(n, end)) {
            me.next = Some(end);
        }
        if window_zero(seg) {
            self.zero_windows += 1;
        }
        if ack {
            self.acked(1 - dir, seg.ack, t, rtt);
        }

        if rst {
            self.state = TcpState::Reset;
            return;
        }
        if syn && !ack {
            self.client = Some(dir);
            self.syn_ns = Some(t);
        } else if syn && ack {
            if self.state == TcpState::SynSent {
                self.state = TcpState::SynAck;
            }
        } else if ack && self.state == TcpState::SynAck && self.client == Some(dir) {
            let server_isn = self.dirs[1 - dir].isn;
            if server_isn.is_some_and(|isn| seg.ack == isn.wrapping_add(1)) {
                self.state = TcpState::Established;
                if let Some(syn_ns) = self.syn_ns {
                    let ns = t.saturating_sub(syn_ns);
                    self.handshake_rtt_ns = Some(ns);
                    rtt.sample(ns);
                }
            }
        }
        if fin {
            self.dirs[dir].fin = true;
            self.state = if self.dirs[1 - dir].fin { TcpState::Closed } else { TcpState::Fin };
        }
    }

    /// Remembers a segment until its ACK; the oldest goes if there is no room.
    fn expect(&mut self, p: Pending) {
        let room = self
            .pending
            .iter()
            .position(Option::is_none)
            .unwrap_or_else(|| (0..PENDING).min_by_key(|&i| self.pending[i].map_or(0, |p| p.at_ns)).unwrap_or(0));
        self.pending[room] = Some(p);
    }

    /// The other side acknowledged `ack` of direction `dir`: one sample from the latest segment
    /// it covers, if that one was sent once.
    fn acked(&mut self, dir: usize, ack: u32, t: u64, rtt: &mut Rtt) {
        let mut latest: Option<Pending> = None;
        for slot in &mut self.pending {
            if let Some(p) = *slot {
                if p.dir == dir && seq_le(p.end, ack) {
                    if latest.is_none_or(|l| p.at_ns >= l.at_ns) {
                        latest = Some(p);
                    }
                    *slot = None;
                }
            }
        }
        if let Some(p) = latest.filter(|p| !p.ambiguous) {
            rtt.sample(t.saturating_sub(p.at_ns));
        }
    }
}

fn window_zero(seg: &TcpSeg) -> bool {
    seg.window == 0 && !seg.has(TcpSeg::SYN) && !seg.has(TcpSeg::FIN) && !seg.has(TcpSeg::RST)
}

impl EchoFlow {
    fn message(&mut self, dir: usize, e: Echo, t: u64, rtt: &mut Rtt) {
        if e.request {
            self.requests += 1;
            let seq = u32::from(e.seq);
            if let Some(p) = self.pending.iter_mut().flatten().find(|p| p.dir == dir && p.end == seq) {
                p.ambiguous = true;
                return;
            }
            let room =
                self.pending.iter().position(Option::is_none).unwrap_or_else(|| {
                    (0..PENDING).min_by_key(|&i| self.pending[i].map_or(0, |p| p.at_ns)).unwrap_or(0)
                });
            self.pending[room] = Some(Pending { dir, end: seq, at_ns: t, ambiguous: false });
        } else {
            self.replies += 1;
            let slot = self.pending.iter_mut().find(|p| p.is_some_and(|p| p.dir != dir && p.end == u32::from(e.seq)));
            if let Some(slot) = slot {
                if let Some(p) = slot.take().filter(|p| !p.ambiguous) {
                    rtt.sample(t.saturating_sub(p.at_ns));
                }
            }
        }
    }
}

/// Bytes per slot of the last second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct RateMeter {
    slots: [u64; RATE_SLOTS],
    /// The slot number (time / slot length) of the newest slot written.
    newest: u64,
}

impl RateMeter {
    fn add(&mut self, t: u64, bytes: u64) {
        let s = t / RATE_SLOT_NS;
        if s > self.newest {
            let gap = (s - self.newest).min(RATE_SLOTS as u64);
            for k in 1..=gap {
                self.slots[((self.newest + k) % RATE_SLOTS as u64) as usize] = 0;
            }
            self.newest = s;
        }
        if self.newest - s < RATE_SLOTS as u64 {
            self.slots[(s % RATE_SLOTS as u64) as usize] += bytes;
        }
    }

    fn bytes_in_last_second(&self, now_ns: u64) -> u64 {
        let now = now_ns / RATE_SLOT_NS;
        (0..RATE_SLOTS as u64)
            .filter_map(|k| now.checked_sub(k))
            .filter(|&s| s <= self.newest && self.newest - s < RATE_SLOTS as u64)
            .map(|s| self.slots[(s % RATE_SLOTS as u64) as usize])
            .sum()
    }
}

/// `TCP 10.0.0.1:49152 ↔ 10.0.0.2:9`, `ICMP 10.0.0.1 ↔ 10.0.0.2 id=0x1234`.
impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ↔ {}", self.key.protocol, self.a, self.b)?;
        if let Some(id) = self.key.ident {
            write!(f, " id=0x{id:04x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::inspect::fixtures::*;

    const MS: u64 = 1_000_000;

    fn seg(from_a: bool, seq: u32, ack: u32, flags: u16, payload: usize) -> Vec<u8> {
        tcp_frame(Seg { from_a, seq, ack, flags, payload, ..Seg::default() })
    }

    /// SYN at 0, SYN-ACK at 10 ms, ACK at 20 ms; client ISN 1000, server ISN 5000.
    fn handshake(t: &mut FlowTable) -> FlowId {
        let id = t.observe(0, &seg(true, 1000, 0, SYN, 0)).unwrap();
        assert_eq!(t.get(id).unwrap().tcp.as_ref().unwrap().state, TcpState::SynSent);
        assert_eq!(t.observe(10 * MS, &seg(false, 5000, 1001, SYN | ACK, 0)), Some(id));
        assert_eq!(t.get(id).unwrap().tcp.as_ref().unwrap().state, TcpState::SynAck);
        assert_eq!(t.observe(20 * MS, &seg(true, 1001, 5001, ACK, 0)), Some(id));
        id
    }

    fn tcp(t: &FlowTable, id: FlowId) -> &TcpFlow {
        t.get(id).unwrap().tcp.as_ref().unwrap()
    }

    #[test]
    fn a_handshake_establishes_and_measures_the_rtt() {
        let mut t = FlowTable::default();
        let id = handshake(&mut t);
        let f = t.get(id).unwrap();
        assert_eq!(f.to_string(), "TCP 10.0.0.1:49152 ↔ 10.0.0.2:9");
        assert_eq!(f.key.protocol, Protocol::Tcp);
        assert_eq!((f.a_to_b.packets, f.b_to_a.packets), (2, 1));
        assert_eq!(f.a_to_b.bytes, 2 * 54);
        assert_eq!((f.first_ns, f.last_ns), (0, 20 * MS));
        let c = tcp(&t, id);
        assert_eq!(c.state, TcpState::Established);
        assert_eq!(c.handshake_rtt_ns, Some(20 * MS));
        assert_eq!((c.retransmissions, c.zero_windows), (0, 0));
        assert_eq!((f.rtt.last_ns, f.rtt.samples), (Some(20 * MS), 1));
        assert_eq!(FlowKey::of(&seg(false, 0, 0, ACK, 0)), Some(f.key));

        // Data, and the ACK that covers it 15 ms later: a second sample.
        t.observe(30 * MS, &seg(true, 1001, 5001, PSH | ACK, 100));
        t.observe(45 * MS, &seg(false, 5001, 1101, ACK, 0));
        let f = t.get(id).unwrap();
        assert_eq!((f.rtt.last_ns, f.rtt.min_ns, f.rtt.samples), (Some(15 * MS), Some(15 * MS), 2));
        assert_eq!(f.rtt.smoothed_ns, Some(20 * MS - 20 * MS / 8 + 15 * MS / 8));

        // Each side closes.
        t.observe(50 * MS, &seg(true, 1101, 5001, FIN | ACK, 0));
        assert_eq!(tcp(&t, id).state, TcpState::Fin);
        t.observe(60 * MS, &seg(false, 5001, 1102, FIN | ACK, 0));
        t.observe(70 * MS, &seg(true, 1102, 5002, ACK, 0));
        assert_eq!(tcp(&t, id).state, TcpState::Closed);
        assert_eq!(tcp(&t, id).retransmissions, 0);

        // The same ports again: a new connection, a new flow; the old one is still listed.
        let again = t.observe(80 * MS, &seg(true, 9000, 0, SYN, 0)).unwrap();
        assert_ne!(again, id);
        assert_eq!(t.len(), 2);
        assert_eq!(t.by_key(&t.get(id).unwrap().key).unwrap().id, again);
        assert_eq!(t.iter().map(|f| f.id).collect::<Vec<_>>(), [again, id]);
    }

    #[test]
    fn data_sent_again_is_a_retransmission_and_gives_no_rtt_sample() {
        let mut t = FlowTable::default();
        let id = handshake(&mut t);
        t.observe(30 * MS, &seg(true, 1001, 5001, PSH | ACK, 100));
        t.observe(31 * MS, &seg(true, 1101, 5001, PSH | ACK, 100));
        // The first segment again, 200 ms later: its ACK cannot tell which copy it answers.
        t.observe(230 * MS, &seg(true, 1001, 5001, PSH | ACK, 100));
        assert_eq!(tcp(&t, id).retransmissions, 1);
        t.observe(240 * MS, &seg(false, 5001, 1201, ACK, 0));
        assert_eq!(t.get(id).unwrap().rtt.samples, 1, "only the handshake's");
        // A keep-alive (one byte below what was sent) is not a retransmission.
        t.observe(300 * MS, &seg(true, 1200, 5001, ACK, 0));
        assert_eq!(tcp(&t, id).retransmissions, 1);
        // Neither is new data.
        t.observe(310 * MS, &seg(true, 1201, 5001, ACK, 10));
        assert_eq!(tcp(&t, id).retransmissions, 1);
    }

    #[test]
    fn a_syn_sent_again_is_a_retransmission() {
        let mut t = FlowTable::default();
        let id = t.observe(0, &seg(true, 1000, 0, SYN, 0)).unwrap();
        t.observe(1000 * MS, &seg(true, 1000, 0, SYN, 0));
        assert_eq!(tcp(&t, id).retransmissions, 1);
        assert_eq!(tcp(&t, id).state, TcpState::SynSent);
        t.observe(1010 * MS, &seg(false, 5000, 1001, SYN | ACK, 0));
        t.observe(1020 * MS, &seg(true, 1001, 5001, ACK, 0));
        // Timed from the last SYN.
        assert_eq!(tcp(&t, id).handshake_rtt_ns, Some(20 * MS));
    }

    #[test]
    fn a_rst_resets_and_the_next_syn_starts_a_new_flow() {
        let mut t = FlowTable::default();
        let id = t.observe(0, &seg(true, 1000, 0, SYN, 0)).unwrap();
        t.observe(MS, &seg(false, 0, 1001, RST | ACK, 0));
        assert_eq!(tcp(&t, id).state, TcpState::Reset);
        assert_eq!(tcp(&t, id).retransmissions, 0);
        let next = t.observe(2 * MS, &seg(true, 7000, 0, SYN, 0)).unwrap();
        assert_ne!(next, id);
        assert_eq!(tcp(&t, next).state, TcpState::SynSent);
        // A RST first seen mid-conversation.
        let mut t = FlowTable::default();
        let id = t.observe(0, &seg(false, 1, 1, RST, 0)).unwrap();
        assert_eq!(tcp(&t, id).state, TcpState::Reset);
    }

    #[test]
    fn zero_windows_are_counted() {
        let mut t = FlowTable::default();
        let id = handshake(&mut t);
        let zero = |from_a, seq, ack, flags| tcp_frame(Seg { from_a, seq, ack, flags, window: 0, ..Seg::default() });
        t.observe(30 * MS, &zero(false, 5001, 1001, ACK));
        t.observe(40 * MS, &zero(false, 5001, 1001, ACK));
        // Not with SYN, FIN or RST.
        t.observe(50 * MS, &zero(false, 5001, 1001, FIN | ACK));
        assert_eq!(tcp(&t, id).zero_windows, 2);
        assert_eq!(tcp(&t, id).retransmissions, 0);
    }

    #[test]
    fn a_connection_seen_midway_is_established() {
        let mut t = FlowTable::default();
        let id = t.observe(0, &seg(false, 5001, 1001, ACK, 200)).unwrap();
        let f = t.get(id).unwrap();
        assert_eq!((f.a.port, f.b.port), (Some(9), Some(49152)));
        assert_eq!(tcp(&t, id).state, TcpState::Established);
    }

    #[test]
    fn echo_requests_and_replies_by_identifier() {
        let mut t = FlowTable::default();
        let id = t.observe(0, &ICMP_ECHO_REQUEST).unwrap();
        assert_eq!(t.observe(5 * MS, &echo_frame(false, false, 0x1234, 3)), Some(id));
        // Another identifier is another flow.
        let other = t.observe(6 * MS, &echo_frame(true, true, 0x9999, 0)).unwrap();
        assert_ne!(other, id);
        // A reply with no request.
        t.observe(7 * MS, &echo_frame(false, false, 0x1234, 77));
        let f = t.get(id).unwrap();
        assert_eq!(f.key.ident, Some(0x1234));
        assert_eq!(f.to_string(), "ICMP 10.0.0.1 ↔ 10.0.0.2 id=0x1234");
        let e = f.echo.as_ref().unwrap();
        assert_eq!((e.requests, e.replies), (1, 2));
        assert_eq!((f.rtt.last_ns, f.rtt.samples), (Some(5 * MS), 1));
    }

    #[test]
    fn arp_and_udp_flows() {
        let mut t = FlowTable::default();
        let arp = t.observe(0, &ARP_REQUEST).unwrap();
        let mut reply = ARP_REQUEST;
        reply[0..6].copy_from_slice(&MAC_A);
        reply[6..12].copy_from_slice(&MAC_B);
        reply[21] = 2;
        reply[22..32].copy_from_slice(&[2, 0, 0, 0, 0, 2, 10, 0, 0, 2]);
        reply[32..42].copy_from_slice(&[2, 0, 0, 0, 0, 1, 10, 0, 0, 1]);
        assert_eq!(t.observe(MS, &reply), Some(arp));
        let f = t.get(arp).unwrap();
        assert_eq!((f.key.protocol, f.a_to_b.packets, f.b_to_a.packets), (Protocol::Arp, 1, 1));
        assert_eq!(f.to_string(), "ARP 10.0.0.1 ↔ 10.0.0.2");

        let udp = t.observe(2 * MS, &UDP_DATAGRAM).unwrap();
        assert_eq!(t.observe(3 * MS, &udp_frame(false, 9, 49152, b"hello")), Some(udp));
        assert_ne!(t.observe(4 * MS, &udp_frame(true, 49153, 9, b"x")), Some(udp));
        let f = t.get(udp).unwrap();
        assert_eq!(f.to_string(), "UDP 10.0.0.1:49152 ↔ 10.0.0.2:9");
        assert_eq!((f.a_to_b.bytes, f.b_to_a.bytes), (47, 47));

        assert_eq!(
            t.observe(5 * MS, &ICMPV6_NEIGHBOR_SOLICIT).map(|id| t.get(id).unwrap().key.protocol),
            Some(Protocol::Icmpv6)
        );
        assert_eq!(t.observe(6 * MS, &TCP_SYN[..20]), None);
        assert_eq!((t.frames(), t.unrecognised(), t.len()), (7, 1, 4));
    }

    #[test]
    fn the_least_recently_seen_flow_makes_room() {
        let mut t = FlowTable::new(2);
        let a = t.observe(0, &udp_frame(true, 1, 9, b"")).unwrap();
        let b = t.observe(1, &udp_frame(true, 2, 9, b"")).unwrap();
        t.observe(2, &udp_frame(false, 9, 1, b""));
        let c = t.observe(3, &udp_frame(true, 3, 9, b"")).unwrap();
        assert!(t.get(b).is_none(), "b was the least recently seen");
        assert_eq!(t.iter().map(|f| f.id).collect::<Vec<_>>(), [c, a]);
        assert_eq!((t.len(), t.evicted()), (2, 1));
        // b comes back as a new flow.
        let b2 = t.observe(4, &udp_frame(true, 2, 9, b"")).unwrap();
        assert_ne!(b2, b);
        assert!(t.get(a).is_none());
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn the_rate_is_over_the_last_second() {
        let mut t = FlowTable::default();
        let frame = udp_frame(true, 1, 9, &[0; 58]);
        assert_eq!(frame.len(), 100);
        let mut id = None;
        for i in 0..20 {
            id = t.observe(i * 100 * MS, &frame);
        }
        let f = t.get(id.unwrap()).unwrap();
        // Frames at 1.0 .. 1.9 s are in the last second at 1.9 s.
        assert_eq!(f.rate(t.now_ns()), 1000.0);
        assert_eq!(f.rate(t.now_ns() + 500 * MS), 500.0);
        assert_eq!(f.rate(t.now_ns() + 5000 * MS), 0.0);
        // A time that goes backwards counts as the latest.
        t.observe(0, &frame);
        assert_eq!(t.get(id.unwrap()).unwrap().last_ns, 1900 * MS);
    }

    proptest::proptest! {
        /// Any frames, any times: no panic, bounded, and every recognised frame counted once.
        #[test]
        fn random_traffic(
            frames in proptest::collection::vec(
                (0u64..5_000_000_000, proptest::prop_oneof![
                    proptest::collection::vec(any::<u8>(), 0..80),
                    (any::<(bool, u32, u32, u16, u16)>(), 0usize..40).prop_map(|((from_a, seq, ack, flags, window), payload)| {
                        tcp_frame(Seg { from_a, seq: seq % 4000, ack: ack % 4000, flags: flags & 0x1f, window: window % 2, payload, ..Seg::default() })
                    }),
                    (any::<(bool, bool, u16)>()).prop_map(|(a, req, seq)| echo_frame(a, req, 7, seq % 20)),
                    (0u16..6).prop_map(|p| udp_frame(true, p, 9, b"")),
                ]),
                0..200,
            ),
        ) {
            let mut t = FlowTable::new(4);
            for (time, f) in &frames {
                let _ = t.observe(*time, f);
            }
            proptest::prop_assert!(t.len() <= 4);
            let counted: u64 = t.iter().map(Flow::packets).sum();
            proptest::prop_assert!(counted <= t.frames() - t.unrecognised());
            if t.evicted() == 0 {
                proptest::prop_assert_eq!(counted, t.frames() - t.unrecognised());
            }
            for f in t.iter() {
                proptest::prop_assert!(f.rate(t.now_ns()) >= 0.0);
                proptest::prop_assert_eq!(t.get(f.id).map(|g| g.id), Some(f.id));
            }
        }
    }
}
