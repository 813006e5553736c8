//! ICMP echo over IPv4 or IPv6, with per-request timeouts and checked payloads.

use std::net::IpAddr;
use std::time::Duration;

use smoltcp::iface::SocketHandle;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::socket::icmp;
use smoltcp::wire::{Icmpv4Packet, Icmpv4Repr, Icmpv6Packet, Icmpv6Repr, IpAddress};

use super::probe::Probes;
use super::{App, AppCx, Outcome};
use crate::time::SimTime;

pub struct Ping {
    to: IpAddr,
    size: usize,
    socket: Option<SocketHandle>,
    ident: u16,
    probes: Probes,
}

impl Ping {
    pub fn new(start: SimTime, to: IpAddr, count: u32, interval: Duration, size: usize, timeout: Duration) -> Self {
        Ping { to, size, socket: None, ident: 0, probes: Probes::new(start, count, interval, timeout) }
    }

    fn payload(&self, seq: u16) -> Vec<u8> {
        (0..self.size).map(|i| (i as u8).wrapping_add(seq as u8)).collect()
    }
}

impl App for Ping {
    fn poll(&mut self, cx: &mut AppCx<'_>) -> Option<SimTime> {
        let dst = IpAddress::from(self.to);
        let handle = match self.socket {
            Some(h) => h,
            None => {
                let buf =
                    || icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 64], vec![0; 64 * (self.size + 64)]);
                let h = cx.sockets.add(icmp::Socket::new(buf(), buf()));
                self.ident = cx.icmp_ident();
                // Idents are handed out in turn per host, so two pings on one host do not collide.
                let _ = cx.sockets.get_mut::<icmp::Socket>(h).bind(icmp::Endpoint::Ident(self.ident));
                self.socket = Some(h);
                h
            }
        };
        let caps = ChecksumCapabilities::default();
        let src6 = match dst {
            IpAddress::Ipv6(d) => Some((d, cx.iface.get_source_address_ipv6(&d))),
            IpAddress::Ipv4(_) => None,
        };
        // Send what is due.
        while let Some(n) = self.probes.due(cx.now) {
            let seq = (n & 0xffff) as u16;
            let data = self.payload(seq);
            let s = cx.sockets.get_mut::<icmp::Socket>(handle);
            let sent = match src6 {
                Some((d, src)) => {
                    let repr = Icmpv6Repr::EchoRequest { ident: self.ident, seq_no: seq, data: &data };
                    s.send(repr.buffer_len(), dst)
                        .map(|buf| repr.emit(&src, &d, &mut Icmpv6Packet::new_unchecked(buf), &caps))
                }
                None => {
                    let repr = Icmpv4Repr::EchoRequest { ident: self.ident, seq_no: seq, data: &data };
                    s.send(repr.buffer_len(), dst).map(|buf| repr.emit(&mut Icmpv4Packet::new_unchecked(buf), &caps))
                }
            };
            self.probes.sent(cx.now, sent.is_ok());
        }
        // Take the replies.
        loop {
            let s = cx.sockets.get_mut::<icmp::Socket>(handle);
            let Ok((bytes, from)) = s.recv() else { break };
            if from != dst {
                continue;
            }
            let reply = match (from, src6) {
                (IpAddress::Ipv6(f), Some((_, me))) => Icmpv6Packet::new_checked(bytes)
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
            // Sequence numbers wrap at 16 bits.
            let Some(n) = self.probes.unwrap_seq(seq) else { continue };
            let intact = data == self.payload(seq);
            self.probes.answer(cx.now, n, intact);
        }
        self.probes.expire(cx.now)
    }

    fn stop(&mut self, cx: &mut AppCx<'_>) {
        if let Some(h) = self.socket.take() {
            cx.close_socket(h);
        }
    }

    fn done(&self) -> bool {
        self.probes.done()
    }

    fn outcome(&self) -> Outcome {
        Outcome::Ping {
            to: self.to,
            sent: self.probes.sent_count(),
            received: self.probes.answered,
            loss_pct: self.probes.loss_pct(),
            corrupt: self.probes.corrupt,
            send_errors: self.probes.send_errors,
            rtt: self.probes.rtts.stats(),
            lost_seqs: self.probes.lost_seqs(),
        }
    }
}
