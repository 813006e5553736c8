//! ICMP echo over IPv4 or IPv6, with per-request timeouts and checked payloads.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use rand::Rng;
use smoltcp::iface::SocketHandle;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::socket::icmp;
use smoltcp::wire::{Icmpv4Packet, Icmpv4Repr, Icmpv6Packet, Icmpv6Repr, IpAddress};

use super::{min_wake, App, AppCx, Outcome, Rtts};
use crate::time::SimTime;

pub struct Ping {
    start: SimTime,
    to: IpAddr,
    count: u32,
    interval: Duration,
    size: usize,
    timeout: Duration,
    socket: Option<SocketHandle>,
    ident: u16,
    next_seq: u32,
    next_send: SimTime,
    waiting: BTreeMap<u16, SimTime>,
    received: u32,
    corrupt: u32,
    rtts: Rtts,
}

impl Ping {
    pub fn new(start: SimTime, to: IpAddr, count: u32, interval: Duration, size: usize, timeout: Duration) -> Self {
        Ping {
            start,
            to,
            count,
            interval,
            size,
            timeout,
            socket: None,
            ident: 0,
            next_seq: 0,
            next_send: start,
            waiting: BTreeMap::new(),
            received: 0,
            corrupt: 0,
            rtts: Rtts::default(),
        }
    }

    fn payload(&self, seq: u16) -> Vec<u8> {
        (0..self.size).map(|i| (i as u8).wrapping_add(seq as u8)).collect()
    }
}

impl App for Ping {
    fn poll(&mut self, cx: &mut AppCx<'_>) -> Option<SimTime> {
        if cx.now < self.start {
            return Some(self.start);
        }
        let handle = *self.socket.get_or_insert_with(|| {
            let buf = || icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 64], vec![0; 64 * (self.size + 64)]);
            cx.sockets.add(icmp::Socket::new(buf(), buf()))
        });
        let dst = IpAddress::from(self.to);
        let caps = ChecksumCapabilities::default();
        if self.ident == 0 {
            self.ident = cx.rng.random_range(1..=u16::MAX);
            let s = cx.sockets.get_mut::<icmp::Socket>(handle);
            // The ident is fresh, so binding cannot collide.
            let _ = s.bind(icmp::Endpoint::Ident(self.ident));
        }
        // Send what is due.
        while self.next_seq < self.count && self.next_send <= cx.now {
            let seq = (self.next_seq & 0xffff) as u16;
            let data = self.payload(seq);
            let src6 = match dst {
                IpAddress::Ipv6(d) => Some(cx.iface.get_source_address_ipv6(&d)),
                IpAddress::Ipv4(_) => None,
            };
            let s = cx.sockets.get_mut::<icmp::Socket>(handle);
            let sent = match (dst, src6) {
                (IpAddress::Ipv6(d), Some(src)) => {
                    let repr = Icmpv6Repr::EchoRequest { ident: self.ident, seq_no: seq, data: &data };
                    s.send(repr.buffer_len(), dst)
                        .map(|buf| repr.emit(&src, &d, &mut Icmpv6Packet::new_unchecked(buf), &caps))
                }
                _ => {
                    let repr = Icmpv4Repr::EchoRequest { ident: self.ident, seq_no: seq, data: &data };
                    s.send(repr.buffer_len(), dst).map(|buf| repr.emit(&mut Icmpv4Packet::new_unchecked(buf), &caps))
                }
            };
            if sent.is_err() {
                break; // socket buffer full: retry on the next poll
            }
            self.waiting.insert(seq, cx.now);
            self.next_seq += 1;
            self.next_send = self.next_send + self.interval;
        }
        // Take the replies.
        let src6 = match dst {
            IpAddress::Ipv6(d) => Some(cx.iface.get_source_address_ipv6(&d)),
            IpAddress::Ipv4(_) => None,
        };
        loop {
            let s = cx.sockets.get_mut::<icmp::Socket>(handle);
            let Ok((bytes, from)) = s.recv() else { break };
            if from != dst {
                continue;
            }
            let reply = match (from, src6) {
                (IpAddress::Ipv6(f), Some(me)) => Icmpv6Packet::new_checked(bytes)
                    .ok()
                    .and_then(|p| Icmpv6Repr::parse(&f, &me, &p, &caps).ok())
                    .and_then(|r| match r {
                        Icmpv6Repr::EchoReply { ident, seq_no, data } => Some((ident, seq_no, data.to_vec())),
                        _ => None,
                    }),
                _ => Icmpv4Packet::new_checked(bytes).ok().and_then(|p| Icmpv4Repr::parse(&p, &caps).ok()).and_then(
                    |r| match r {
                        Icmpv4Repr::EchoReply { ident, seq_no, data } => Some((ident, seq_no, data.to_vec())),
                        _ => None,
                    },
                ),
            };
            let Some((ident, seq, data)) = reply else { continue };
            if ident != self.ident {
                continue;
            }
            if let Some(sent_at) = self.waiting.remove(&seq) {
                if data == self.payload(seq) {
                    self.received += 1;
                    self.rtts.add(cx.now - sent_at);
                } else {
                    self.corrupt += 1;
                }
            }
        }
        // Forget what timed out.
        let timeout = self.timeout;
        let now = cx.now;
        self.waiting.retain(|_, sent| now - *sent < timeout);
        let next_send = (self.next_seq < self.count).then_some(self.next_send);
        let next_timeout = self.waiting.values().min().map(|t| *t + self.timeout);
        min_wake(next_send, next_timeout)
    }

    fn done(&self) -> bool {
        self.next_seq >= self.count && self.waiting.is_empty()
    }

    fn outcome(&self) -> Outcome {
        let sent = self.next_seq;
        let lost = sent.saturating_sub(self.received)
            - u32::try_from(self.waiting.len()).unwrap_or(0).min(sent.saturating_sub(self.received));
        Outcome::Ping {
            to: self.to,
            sent,
            received: self.received,
            loss_pct: if sent == 0 { 0.0 } else { f64::from(lost) * 100.0 / f64::from(sent) },
            corrupt: self.corrupt,
            rtt: self.rtts.stats(),
        }
    }
}
