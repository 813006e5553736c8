//! The few header values the flow table needs, read without allocating: the flow table sees every
//! frame of a run, the decoder only those a person looks at.
//!
//! The same checks as the decoder (smoltcp's `new_checked` before any accessor), but a frame that
//! the decoder would call malformed is simply not peeked.

use std::net::{IpAddr, Ipv4Addr};

use smoltcp::wire::{
    ArpPacket, EthernetFrame, Icmpv4Packet, Icmpv6Packet, Ipv4Packet, Ipv6ExtHeader, Ipv6Packet, TcpPacket, UdpPacket,
};

/// What a frame carries, as far as conversations go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Peeked {
    /// ARP for IPv4 over Ethernet.
    Arp {
        op: u16,
        spa: Ipv4Addr,
        tpa: Ipv4Addr,
    },
    Ip {
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        l4: L4,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum L4 {
    Tcp(TcpSeg),
    Udp {
        sport: u16,
        dport: u16,
    },
    /// ICMP or ICMPv6 (by the IP version); `echo` for echo requests and replies.
    Icmp {
        echo: Option<Echo>,
    },
    /// Another protocol, or a fragment (whose transport header, if any, is elsewhere).
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Echo {
    pub request: bool,
    pub ident: u16,
    pub seq: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TcpSeg {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u16,
    pub window: u16,
    /// Payload bytes.
    pub len: u32,
}

impl TcpSeg {
    pub const FIN: u16 = 0x001;
    pub const SYN: u16 = 0x002;
    pub const RST: u16 = 0x004;
    pub const ACK: u16 = 0x010;

    pub fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }
}

/// The most extension headers followed, as in the decoder.
const MAX_EXT_HEADERS: usize = 8;

pub(crate) fn peek(frame: &[u8]) -> Option<Peeked> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let mut ethertype = u16::from(eth.ethertype());
    let mut payload = eth.payload();
    if ethertype == 0x8100 {
        let tag = payload.get(..4)?;
        ethertype = u16::from_be_bytes([tag[2], tag[3]]);
        payload = &payload[4..];
    }
    match ethertype {
        0x0806 => {
            let p = ArpPacket::new_checked(payload).ok()?;
            if p.hardware_len() != 6 || p.protocol_len() != 4 || u16::from(p.protocol_type()) != 0x0800 {
                return None;
            }
            let spa = Ipv4Addr::from(<[u8; 4]>::try_from(p.source_protocol_addr()).ok()?);
            let tpa = Ipv4Addr::from(<[u8; 4]>::try_from(p.target_protocol_addr()).ok()?);
            Some(Peeked::Arp { op: u16::from(p.operation()), spa, tpa })
        }
        0x0800 => {
            let p = Ipv4Packet::new_checked(payload).ok()?;
            if p.version() != 4 {
                return None;
            }
            let proto = u8::from(p.next_header());
            let l4 =
                if p.more_frags() || p.frag_offset() != 0 { L4::Other } else { transport(proto, p.payload(), false)? };
            Some(Peeked::Ip { src: p.src_addr().into(), dst: p.dst_addr().into(), proto, l4 })
        }
        0x86dd => {
            let p = Ipv6Packet::new_checked(payload).ok()?;
            if p.version() != 6 {
                return None;
            }
            let mut next = u8::from(p.next_header());
            let mut rest = p.payload();
            for _ in 0..MAX_EXT_HEADERS {
                match next {
                    0 | 43 | 60 => {
                        let h = Ipv6ExtHeader::new_checked(rest).ok()?;
                        let len = (usize::from(h.header_len()) + 1) * 8;
                        next = u8::from(h.next_header());
                        rest = rest.get(len..)?;
                    }
                    44 => {
                        let h = rest.get(..8)?;
                        next = h[0];
                        let off_more = u16::from_be_bytes([h[2], h[3]]);
                        rest = &rest[8..];
                        if off_more & !6 != 0 {
                            return Some(Peeked::Ip {
                                src: p.src_addr().into(),
                                dst: p.dst_addr().into(),
                                proto: next,
                                l4: L4::Other,
                            });
                        }
                    }
                    _ => break,
                }
            }
            let l4 = if matches!(next, 0 | 43 | 44 | 60) { L4::Other } else { transport(next, rest, true)? };
            Some(Peeked::Ip { src: p.src_addr().into(), dst: p.dst_addr().into(), proto: next, l4 })
        }
        _ => None,
    }
}

fn transport(proto: u8, b: &[u8], v6: bool) -> Option<L4> {
    Some(match (proto, v6) {
        (6, _) => {
            let p = TcpPacket::new_checked(b).ok()?;
            let flags = u16::from_be_bytes([b[12], b[13]]) & 0x0fff;
            L4::Tcp(TcpSeg {
                sport: p.src_port(),
                dport: p.dst_port(),
                seq: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
                ack: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
                flags,
                window: p.window_len(),
                len: u32::try_from(p.payload().len()).unwrap_or(u32::MAX),
            })
        }
        (17, _) => {
            let p = UdpPacket::new_checked(b).ok()?;
            L4::Udp { sport: p.src_port(), dport: p.dst_port() }
        }
        (1, false) => {
            let p = Icmpv4Packet::new_checked(b).ok()?;
            let ty = u8::from(p.msg_type());
            let echo =
                matches!(ty, 0 | 8).then(|| Echo { request: ty == 8, ident: p.echo_ident(), seq: p.echo_seq_no() });
            L4::Icmp { echo }
        }
        (58, true) => {
            let ty = *b.first()?;
            if b.len() < 4 {
                return None;
            }
            let echo = if matches!(ty, 128 | 129) {
                let p = Icmpv6Packet::new_checked(b).ok()?;
                Some(Echo { request: ty == 128, ident: p.echo_ident(), seq: p.echo_seq_no() })
            } else {
                None
            };
            L4::Icmp { echo }
        }
        _ => L4::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::fixtures::*;

    #[test]
    fn fixtures() {
        let a4: IpAddr = "10.0.0.1".parse().unwrap();
        let b4: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(
            peek(&ARP_REQUEST),
            Some(Peeked::Arp { op: 1, spa: "10.0.0.1".parse().unwrap(), tpa: "10.0.0.2".parse().unwrap() })
        );
        assert_eq!(
            peek(&ICMP_ECHO_REQUEST),
            Some(Peeked::Ip {
                src: a4,
                dst: b4,
                proto: 1,
                l4: L4::Icmp { echo: Some(Echo { request: true, ident: 0x1234, seq: 3 }) }
            })
        );
        let Some(Peeked::Ip { l4: L4::Tcp(s), .. }) = peek(&TCP_SYN) else { panic!() };
        assert_eq!((s.sport, s.dport, s.seq, s.flags, s.window, s.len), (49152, 9, 1000, TcpSeg::SYN, 64240, 0));
        assert_eq!(
            peek(&UDP_DATAGRAM),
            Some(Peeked::Ip { src: a4, dst: b4, proto: 17, l4: L4::Udp { sport: 49152, dport: 9 } })
        );
        let Some(Peeked::Ip { proto: 58, l4: L4::Icmp { echo: None }, .. }) = peek(&ICMPV6_NEIGHBOR_SOLICIT) else {
            panic!()
        };
        assert_eq!(peek(&TCP_SYN[..60]), None);
    }

    proptest::proptest! {
        #[test]
        fn damaged_fixtures_peek_without_panic(
            which in 0..ALL.len(),
            cut in 0usize..100,
            changes in proptest::collection::vec((0usize..100, proptest::prelude::any::<u8>()), 0..6),
        ) {
            let mut f = ALL[which].to_vec();
            for (at, byte) in changes {
                if let Some(b) = f.get_mut(at) {
                    *b = byte;
                }
            }
            f.truncate(cut);
            let _ = peek(&f);
        }
    }
}
