//! The forwarding fast path against the general path: whatever the fast path takes, it sends the
//! same bytes out of the same port, with the same id and counters, as `Plane::receive` does.

use proptest::prelude::*;
use smoltcp::wire::{EthernetProtocol, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr};

use super::*;
use crate::topology::NodeId;

use super::tests::{eth, plane_with as plane, v4, v6, H1, NH, R0, R1, T0};

fn ipv4(src: &str, dst: &str, ttl: u8, proto: IpProtocol, len: usize) -> Vec<u8> {
    let repr = Ipv4Repr { src_addr: v4(src), dst_addr: v4(dst), next_header: proto, payload_len: len, hop_limit: ttl };
    let mut buf = vec![0; 20 + len];
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), &ChecksumCapabilities::default());
    for (i, b) in buf[20..].iter_mut().enumerate() {
        *b = i as u8;
    }
    buf
}

fn ipv6(src: &str, dst: &str, hops: u8, proto: IpProtocol, len: usize) -> Vec<u8> {
    let repr = Ipv6Repr { src_addr: v6(src), dst_addr: v6(dst), next_header: proto, payload_len: len, hop_limit: hops };
    let mut buf = vec![0; 40 + len];
    repr.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..]));
    for (i, b) in buf[40..].iter_mut().enumerate() {
        *b = i as u8;
    }
    buf
}

fn frame(port: usize, packet: &[u8]) -> Vec<u8> {
    let proto = if packet[0] >> 4 == 6 { EthernetProtocol::Ipv6 } else { EthernetProtocol::Ipv4 };
    let (dst, src) = if port == 0 { (R0, H1) } else { (R1, NH) };
    eth(dst, src, proto, packet)
}

fn id() -> PacketId {
    PacketId::new(NodeId(7), 1)
}

/// Runs `f` through the fast path of one plane and the general path of another, alike. Returns
/// whether the fast path took it; when it did, checks that both sent the same.
fn compare(offload: bool, now: SimTime, port: usize, f: &[u8]) -> bool {
    let (mut fast, mut general) = (plane(offload), plane(offload));
    let hop = fast.fast_hop(now, port, f);
    let acts = general.receive(now, port, id(), f, None);
    let Some(hop) = hop else { return false };
    let mut out = f.to_vec();
    fast.forward_in_place(hop, &mut out);
    assert_eq!(acts.drop, None);
    assert!(acts.late_drops.is_empty());
    assert_eq!(acts.out, vec![(hop.port, id(), out)], "the general path sent otherwise");
    assert_eq!(fast.counters, general.counters);
    true
}

/// What, the port it comes in on, the frame, when, and whether the fast path takes it with
/// checksums computed and with checksum offload.
type Case = (&'static str, usize, Vec<u8>, SimTime, bool, bool);

#[test]
fn the_fast_path_sends_what_the_general_path_sends() {
    let udp = IpProtocol::Udp;
    let mut padded = frame(0, &ipv4("10.1.0.10", "10.3.0.5", 64, udp, 10));
    padded.resize(60, 0);
    let mut bad_sum = frame(0, &ipv4("10.1.0.10", "10.3.0.5", 64, udp, 100));
    bad_sum[14 + 10] ^= 0xff;
    let mut to_all = frame(0, &ipv4("10.1.0.10", "10.3.0.5", 64, udp, 100));
    to_all[..6].copy_from_slice(&[0xff; 6]);
    let cases: Vec<Case> = vec![
        ("v4 via a static route", 0, frame(0, &ipv4("10.1.0.10", "10.3.0.5", 64, udp, 100)), T0, true, true),
        (
            "v4 TCP back to a connected host",
            1,
            frame(1, &ipv4("10.3.0.5", "10.1.0.10", 9, IpProtocol::Tcp, 1400)),
            T0,
            true,
            true,
        ),
        ("v4 with Ethernet padding", 0, padded, T0, true, true),
        ("v4 of exactly the next MTU", 0, frame(0, &ipv4("10.1.0.10", "10.3.0.5", 64, udp, 1260)), T0, true, true),
        ("v4 past the next MTU", 0, frame(0, &ipv4("10.1.0.10", "10.3.0.5", 64, udp, 1261)), T0, false, false),
        ("v4 with a bad header checksum", 0, bad_sum, T0, false, true),
        ("v4 TTL 1", 0, frame(0, &ipv4("10.1.0.10", "10.3.0.5", 1, udp, 100)), T0, false, false),
        ("v4 to the router", 0, frame(0, &ipv4("10.1.0.10", "10.0.12.1", 64, udp, 100)), T0, false, false),
        ("v4 to a subnet broadcast", 0, frame(0, &ipv4("10.1.0.10", "10.1.0.255", 64, udp, 100)), T0, false, false),
        ("v4 with no route", 0, frame(0, &ipv4("10.1.0.10", "192.0.2.1", 64, udp, 100)), T0, false, false),
        ("v4 to a host not resolved", 1, frame(1, &ipv4("10.3.0.5", "10.1.0.11", 64, udp, 100)), T0, false, false),
        (
            "v4 to a neighbour gone stale",
            0,
            frame(0, &ipv4("10.1.0.10", "10.3.0.5", 64, udp, 100)),
            SimTime::from_millis(61_000),
            false,
            false,
        ),
        ("v4 to the broadcast MAC", 0, to_all, T0, false, false),
        ("v6 via a static route", 0, frame(0, &ipv6("fd00:1::10", "fd00:3::9", 64, udp, 100)), T0, true, true),
        ("v6 hop limit 1", 0, frame(0, &ipv6("fd00:1::10", "fd00:3::9", 1, udp, 100)), T0, false, false),
        ("v6 ICMPv6", 0, frame(0, &ipv6("fd00:1::10", "fd00:3::9", 64, IpProtocol::Icmpv6, 100)), T0, false, false),
        ("v6 past the next MTU", 0, frame(0, &ipv6("fd00:1::10", "fd00:3::9", 64, udp, 1241)), T0, false, false),
        ("v6 to a link-local", 0, frame(0, &ipv6("fd00:1::10", "fe80::1", 64, udp, 100)), T0, false, false),
    ];
    for (what, port, f, now, with_sums, offloaded) in cases {
        assert_eq!(compare(false, now, port, &f), with_sums, "{what}, checksums computed");
        assert_eq!(compare(true, now, port, &f), offloaded, "{what}, checksum offload");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
    /// A forwardable frame with a few bytes changed, cut or lengthened: whatever the fast path
    /// takes, the general path sends alike.
    #[test]
    fn the_fast_path_agrees_on_damaged_frames(
        v6_packet in any::<bool>(),
        offload in any::<bool>(),
        len in 0usize..1400,
        flips in proptest::collection::vec((0usize..80, any::<u8>()), 0..4),
        cut in proptest::option::of(0usize..1500),
        pad in 0usize..40,
    ) {
        let p = if v6_packet {
            ipv6("fd00:1::10", "fd00:3::9", 64, IpProtocol::Udp, len)
        } else {
            ipv4("10.1.0.10", "10.3.0.5", 64, IpProtocol::Udp, len)
        };
        let mut f = frame(0, &p);
        for (at, b) in flips {
            if let Some(x) = f.get_mut(at) {
                *x = b;
            }
        }
        if let Some(c) = cut {
            f.truncate(c);
        }
        f.resize(f.len() + pad, 0);
        compare(offload, T0, 0, &f);
    }
}
