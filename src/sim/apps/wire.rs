//! The TCP segments a host sends on the connections its apps watch, for what smoltcp does not count:
//! retransmissions. A segment that occupies sequence space (data, SYN or FIN) and starts below the
//! highest sequence number sent so far on its connection was sent before: a retransmission. A
//! keep-alive (one byte just below the highest sent, when the peer has acknowledged everything) is
//! not one.

use std::collections::BTreeMap;
use std::net::IpAddr;

use smoltcp::wire::{EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket};

/// One connection, by local port and remote address and port.
pub type ConnKey = (u16, IpAddr, u16);

/// Connections watched per host at most; past that, new ones are not watched.
const WATCHED_MAX: usize = 1024;

/// What a host sent on one watched connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SentSegments {
    /// One past the highest sequence number sent (a SYN and a FIN count one).
    high: Option<u32>,
    /// The highest acknowledgement number the peer sent.
    acked: Option<u32>,
    /// Segments that occupied sequence space.
    pub segments: u64,
    /// Of those, the ones that started below the highest sequence number sent before.
    pub retransmissions: u64,
    /// Bytes of data sent again.
    pub retransmitted_bytes: u64,
}

/// `a` is after `b` in sequence space (RFC 9293 arithmetic, modulo 2^32).
fn after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

impl SentSegments {
    /// A segment this host sent: sequence number, data length, SYN, FIN.
    pub fn sent(&mut self, seq: u32, data: usize, syn: bool, fin: bool) {
        let len = u32::try_from(data).unwrap_or(u32::MAX).saturating_add(u32::from(syn) + u32::from(fin));
        if len == 0 {
            return;
        }
        self.segments += 1;
        let end = seq.wrapping_add(len);
        let Some(high) = self.high else {
            self.high = Some(end);
            return;
        };
        if after(high, seq) {
            let keep_alive =
                data == 1 && !syn && !fin && seq.wrapping_add(1) == high && self.acked.is_some_and(|a| !after(high, a));
            if !keep_alive {
                self.retransmissions += 1;
                let again = high.wrapping_sub(seq).min(u32::try_from(data).unwrap_or(u32::MAX));
                self.retransmitted_bytes += u64::from(again);
            }
        }
        if after(end, high) {
            self.high = Some(end);
        }
    }

    /// An acknowledgement from the peer.
    pub fn acked(&mut self, ack: u32) {
        if self.acked.is_none_or(|a| after(ack, a)) {
            self.acked = Some(ack);
        }
    }
}

/// The connections a host watches: those to the remote endpoints its apps name.
#[derive(Debug, Default)]
pub struct SentWatch {
    /// Remote endpoints whose connections are watched.
    pub targets: Vec<(IpAddr, u16)>,
    pub conns: BTreeMap<ConnKey, SentSegments>,
}

/// The TCP header fields of an Ethernet frame: source and destination address and port, sequence
/// and acknowledgement numbers, data length, SYN, FIN, ACK.
struct Seg {
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: Option<u32>,
    data: usize,
    syn: bool,
    fin: bool,
}

fn tcp_of(frame: &[u8]) -> Option<Seg> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let (src, dst, payload) = match eth.ethertype() {
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
            if ip.next_header() != IpProtocol::Tcp {
                return None;
            }
            (IpAddr::V4(ip.src_addr()), IpAddr::V4(ip.dst_addr()), ip.payload())
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(eth.payload()).ok()?;
            if ip.next_header() != IpProtocol::Tcp {
                return None;
            }
            (IpAddr::V6(ip.src_addr()), IpAddr::V6(ip.dst_addr()), ip.payload())
        }
        _ => return None,
    };
    let t = TcpPacket::new_checked(payload).ok()?;
    Some(Seg {
        src,
        dst,
        sport: t.src_port(),
        dport: t.dst_port(),
        seq: t.seq_number().0 as u32,
        ack: t.ack().then(|| t.ack_number().0 as u32),
        data: t.payload().len(),
        syn: t.syn(),
        fin: t.fin(),
    })
}

impl SentWatch {
    /// A frame the host sent.
    pub fn outgoing(&mut self, frame: &[u8]) {
        let Some(s) = tcp_of(frame) else { return };
        if !self.targets.contains(&(s.dst, s.dport)) {
            return;
        }
        let key = (s.sport, s.dst, s.dport);
        if !self.conns.contains_key(&key) && self.conns.len() >= WATCHED_MAX {
            return;
        }
        self.conns.entry(key).or_default().sent(s.seq, s.data, s.syn, s.fin);
    }

    /// A frame the host received: an acknowledgement on a watched connection.
    pub fn incoming(&mut self, frame: &[u8]) {
        if self.conns.is_empty() {
            return;
        }
        let Some(s) = tcp_of(frame) else { return };
        if let (Some(c), Some(ack)) = (self.conns.get_mut(&(s.dport, s.src, s.sport)), s.ack) {
            c.acked(ack);
        }
    }

    /// What was sent on a connection, if it is watched.
    #[must_use]
    pub fn get(&self, key: ConnKey) -> Option<&SentSegments> {
        self.conns.get(&key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_sent_again_is_a_retransmission() {
        let mut s = SentSegments::default();
        s.sent(100, 0, true, false); // SYN: 100
        s.acked(101);
        s.sent(101, 1000, false, false);
        s.sent(1101, 1000, false, false);
        assert_eq!((s.segments, s.retransmissions), (3, 0));
        s.sent(101, 1000, false, false); // RTO: the first segment again
        assert_eq!((s.retransmissions, s.retransmitted_bytes), (1, 1000));
        s.sent(1601, 1000, false, false); // partly new: 500 bytes again, 500 new
        assert_eq!((s.retransmissions, s.retransmitted_bytes), (2, 1500));
        s.sent(2601, 0, false, false); // a bare ACK is nothing
        s.sent(2601, 0, false, true); // FIN
        s.sent(2601, 0, false, true); // FIN again
        assert_eq!((s.segments, s.retransmissions), (7, 3));
    }

    #[test]
    fn a_keep_alive_is_not_a_retransmission_but_a_resent_last_byte_is() {
        let mut s = SentSegments::default();
        s.sent(0, 0, true, false);
        s.sent(1, 10, false, false);
        // Not acknowledged yet: a byte at 10 is sent again.
        s.sent(10, 1, false, false);
        assert_eq!(s.retransmissions, 1);
        s.acked(11);
        s.sent(10, 1, false, false);
        assert_eq!(s.retransmissions, 1, "everything is acknowledged: a keep-alive");
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut s = SentSegments::default();
        s.sent(u32::MAX - 5, 0, true, false);
        s.sent(u32::MAX - 4, 100, false, false);
        s.sent(95, 100, false, false);
        assert_eq!(s.retransmissions, 0);
        s.sent(u32::MAX - 4, 100, false, false);
        assert_eq!(s.retransmissions, 1);
    }
}
