//! The forwarding plane fed byte fixtures built with `smoltcp::wire`.

use proptest::prelude::*;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol, Icmpv4Message, Icmpv4Packet,
    Icmpv6Message, Icmpv6Packet, IpAddress, IpCidr, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, Ipv6Address,
    Ipv6Packet, Ipv6Repr,
};

use super::*;
use crate::topology::NodeId;

pub(super) const R0: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x10]);
pub(super) const R1: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x11]);
pub(super) const H1: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0xa1]);
pub(super) const NH: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0xb2]);
pub(super) const T0: SimTime = SimTime::ZERO;

pub(super) fn v4(a: &str) -> Ipv4Address {
    a.parse().unwrap()
}
pub(super) fn v6(a: &str) -> Ipv6Address {
    a.parse().unwrap()
}
pub(super) fn cidr(s: &str) -> IpCidr {
    crate::topology::parse::cidr(s).unwrap()
}

/// Port 0: 10.1.0.1/24 + fd00:1::1/64 (MTU 1500); port 1: 10.0.12.1/30 + fd00:12::1/64 (MTU 1280).
/// Static: 10.3.0.0/24 and fd00:3::/64 via the far end of port 1; default via it too.
fn plane() -> Plane {
    plane_with(false)
}

/// The same plane, computing and checking checksums or not (`checksum_offload`).
pub(super) fn plane_with(offload: bool) -> Plane {
    let ports = vec![
        PortConfig {
            name: "eth0".into(),
            mac: R0,
            mtu: 1500,
            addresses: vec![cidr("10.1.0.1/24"), cidr("fd00:1::1/64")],
        },
        PortConfig {
            name: "eth1".into(),
            mac: R1,
            mtu: 1280,
            addresses: vec![cidr("10.0.12.1/30"), cidr("fd00:12::1/64")],
        },
    ];
    let statics = [
        topology::Route {
            to: IpCidr::new(IpAddress::Ipv4(v4("10.3.0.0")), 24),
            via: Some(IpAddress::Ipv4(v4("10.0.12.2"))),
            dev: 1,
        },
        topology::Route {
            to: IpCidr::new(IpAddress::Ipv6(v6("fd00:3::")), 64),
            via: Some(IpAddress::Ipv6(v6("fd00:12::2"))),
            dev: 1,
        },
    ];
    let mut p = Plane::new(NodeId(0), ports, &statics, offload);
    // The hosts are resolved already, unless a test says otherwise.
    p.neighbours[0].insert(IpAddress::Ipv4(v4("10.1.0.10")), Neighbour { mac: H1, seen: T0 });
    p.neighbours[0].insert(IpAddress::Ipv6(v6("fd00:1::10")), Neighbour { mac: H1, seen: T0 });
    p.neighbours[1].insert(IpAddress::Ipv4(v4("10.0.12.2")), Neighbour { mac: NH, seen: T0 });
    p.neighbours[1].insert(IpAddress::Ipv6(v6("fd00:12::2")), Neighbour { mac: NH, seen: T0 });
    p
}

pub(super) fn eth(dst: EthernetAddress, src: EthernetAddress, proto: EthernetProtocol, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0; 14 + payload.len()];
    let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
    f.set_dst_addr(dst);
    f.set_src_addr(src);
    f.set_ethertype(proto);
    f.payload_mut().copy_from_slice(payload);
    buf
}

/// An IPv4 packet from h1 (10.1.0.10) with `payload_len` bytes of UDP-ish payload.
fn ipv4(dst: &str, ttl: u8, proto: IpProtocol, payload: &[u8]) -> Vec<u8> {
    let repr = Ipv4Repr {
        src_addr: v4("10.1.0.10"),
        dst_addr: v4(dst),
        next_header: proto,
        payload_len: payload.len(),
        hop_limit: ttl,
    };
    let mut buf = vec![0; 20 + payload.len()];
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), &ChecksumCapabilities::default());
    buf[20..].copy_from_slice(payload);
    buf
}

fn ipv6(dst: &str, hops: u8, proto: IpProtocol, payload: &[u8]) -> Vec<u8> {
    let repr = Ipv6Repr {
        src_addr: v6("fd00:1::10"),
        dst_addr: v6(dst),
        next_header: proto,
        payload_len: payload.len(),
        hop_limit: hops,
    };
    let mut buf = vec![0; 40 + payload.len()];
    repr.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..]));
    buf[40..].copy_from_slice(payload);
    buf
}

fn from_h1(packet: &[u8]) -> Vec<u8> {
    let proto = if packet[0] >> 4 == 6 { EthernetProtocol::Ipv6 } else { EthernetProtocol::Ipv4 };
    eth(R0, H1, proto, packet)
}

fn id() -> PacketId {
    PacketId::new(NodeId(7), 1)
}

/// The single frame sent, its port and its IP payload.
fn one_out(a: &Actions) -> (usize, PacketId, EthernetAddress, Vec<u8>) {
    assert_eq!(a.out.len(), 1, "one frame out: {:?}", a.out.iter().map(|o| o.0).collect::<Vec<_>>());
    let (port, id, f) = &a.out[0];
    let e = EthernetFrame::new_checked(&f[..]).unwrap();
    (*port, *id, e.dst_addr(), e.payload().to_vec())
}

#[test]
fn longest_prefix_wins_and_connected_beats_static() {
    let p = plane();
    let lookup = |a: &str| {
        let ip: std::net::IpAddr = a.parse().unwrap();
        p.routes.lookup(ip.into()).map(|r| (r.port, r.via))
    };
    assert_eq!(lookup("10.1.0.77"), Some((0, None)), "connected /24");
    assert_eq!(lookup("10.3.0.5"), Some((1, Some(IpAddress::Ipv4(v4("10.0.12.2"))))));
    assert_eq!(lookup("10.0.12.2"), Some((1, None)));
    assert_eq!(lookup("192.0.2.1"), None, "no default route");
    assert_eq!(lookup("fd00:3::9"), Some((1, Some(IpAddress::Ipv6(v6("fd00:12::2"))))));
    // A more specific static inside a wider one, and a default.
    let ports = plane().ports;
    let s = |to: &str, via: &str| topology::Route {
        to: {
            let (a, l) = to.split_once('/').unwrap();
            IpCidr::new(IpAddress::Ipv4(v4(a)), l.parse().unwrap())
        },
        via: Some(IpAddress::Ipv4(v4(via))),
        dev: 1,
    };
    let r = Routes::new(
        &ports,
        &[s("0.0.0.0/0", "10.0.12.2"), s("10.0.0.0/8", "10.0.12.2"), s("10.9.9.0/24", "10.0.12.2")],
    );
    let pl = |a: &str| r.lookup(IpAddress::Ipv4(v4(a))).map(|r| r.to.prefix_len());
    assert_eq!(
        (pl("10.9.9.9"), pl("10.9.8.9"), pl("11.0.0.1"), pl("10.1.0.3")),
        (Some(24), Some(8), Some(0), Some(24))
    );
}

#[test]
fn forwarding_decrements_ttl_keeps_the_id_and_rewrites_macs() {
    let mut p = plane();
    let pkt = ipv4("10.3.0.5", 5, IpProtocol::Udp, &[0u8; 16]);
    let a = p.receive(T0, 0, id(), &from_h1(&pkt), None);
    assert_eq!(a.drop, None);
    let (port, out_id, dst, ip) = one_out(&a);
    assert_eq!((port, out_id, dst), (1, id(), NH));
    let q = Ipv4Packet::new_checked(&ip[..]).unwrap();
    assert_eq!(q.hop_limit(), 4);
    assert!(q.verify_checksum(), "the header checksum is updated");
    assert_eq!(&ip[20..], &pkt[20..]);
    assert_eq!(EthernetFrame::new_checked(&a.out[0].2[..]).unwrap().src_addr(), R1);
    // IPv6: hop limit.
    let pkt = ipv6("fd00:3::5", 9, IpProtocol::Udp, &[1u8; 8]);
    let a = p.receive(T0, 0, id(), &from_h1(&pkt), None);
    let (_, _, _, ip) = one_out(&a);
    assert_eq!(Ipv6Packet::new_checked(&ip[..]).unwrap().hop_limit(), 8);
    assert_eq!(p.counters.forwarded, 2);
}

#[test]
fn ttl_one_gets_time_exceeded_from_the_incoming_port() {
    let mut p = plane();
    let pkt = ipv4("10.3.0.5", 1, IpProtocol::Udp, &[9u8; 16]);
    let a = p.receive(T0, 0, id(), &from_h1(&pkt), None);
    assert_eq!(a.drop, Some(DropReason::Ttl));
    let (port, out_id, dst, ip) = one_out(&a);
    assert_eq!((port, dst), (0, H1));
    assert_ne!(out_id, id(), "an error the router makes has an id of its own");
    let q = Ipv4Packet::new_checked(&ip[..]).unwrap();
    assert_eq!((q.src_addr(), q.dst_addr(), q.next_header()), (v4("10.1.0.1"), v4("10.1.0.10"), IpProtocol::Icmp));
    let icmp = Icmpv4Packet::new_checked(q.payload()).unwrap();
    assert_eq!((icmp.msg_type(), icmp.msg_code()), (Icmpv4Message::TimeExceeded, 0));
    assert!(icmp.verify_checksum());
    assert_eq!(&icmp.data()[..pkt.len()], &pkt[..], "the error quotes the offending packet");
    // IPv6: time exceeded, code 0.
    let pkt = ipv6("fd00:3::5", 1, IpProtocol::Udp, &[1u8; 8]);
    let a = p.receive(T0, 0, id(), &from_h1(&pkt), None);
    assert_eq!(a.drop, Some(DropReason::Ttl));
    let (_, _, _, ip) = one_out(&a);
    let q = Ipv6Packet::new_checked(&ip[..]).unwrap();
    assert_eq!(q.src_addr(), v6("fd00:1::1"));
    let icmp = Icmpv6Packet::new_checked(q.payload()).unwrap();
    assert_eq!((icmp.msg_type(), icmp.msg_code()), (Icmpv6Message::TimeExceeded, 0));
    assert!(icmp.verify_checksum(&q.src_addr(), &q.dst_addr()));
    assert_eq!(p.counters.dropped.get("ttl"), Some(&2));
}

#[test]
fn no_route_gets_net_unreachable() {
    let mut p = plane();
    let a = p.receive(T0, 0, id(), &from_h1(&ipv4("192.0.2.9", 64, IpProtocol::Udp, &[0; 8])), None);
    assert_eq!(a.drop, Some(DropReason::NoRoute));
    let (_, _, _, ip) = one_out(&a);
    let icmp = Icmpv4Packet::new_checked(Ipv4Packet::new_checked(&ip[..]).unwrap().payload()).unwrap().msg_type();
    assert_eq!(icmp, Icmpv4Message::DstUnreachable);
    assert_eq!(ip[20 + 1], 0, "code 0: net unreachable");
    let a = p.receive(T0, 0, id(), &from_h1(&ipv6("2001:db8::1", 64, IpProtocol::Udp, &[0; 8])), None);
    assert_eq!(a.drop, Some(DropReason::NoRoute));
    let (_, _, _, ip) = one_out(&a);
    assert_eq!((ip[40], ip[41]), (1, 0), "ICMPv6 destination unreachable, no route");
}

#[test]
fn too_big_for_the_next_link_gets_frag_needed_or_packet_too_big_with_its_mtu() {
    let mut p = plane();
    let pkt = ipv4("10.3.0.5", 64, IpProtocol::Udp, &[0; 1400]);
    let a = p.receive(T0, 0, id(), &from_h1(&pkt), None);
    assert_eq!(a.drop, Some(DropReason::Mtu));
    let (port, _, _, ip) = one_out(&a);
    assert_eq!(port, 0);
    let icmp = &ip[20..];
    assert_eq!((icmp[0], icmp[1]), (3, 4), "fragmentation needed and DF set");
    assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), 1280, "next-hop MTU");
    assert!(Icmpv4Packet::new_checked(icmp).unwrap().verify_checksum());
    let pkt = ipv6("fd00:3::5", 64, IpProtocol::Udp, &[0; 1400]);
    let a = p.receive(T0, 0, id(), &from_h1(&pkt), None);
    assert_eq!(a.drop, Some(DropReason::Mtu));
    let (_, _, _, ip) = one_out(&a);
    let q = Ipv6Packet::new_checked(&ip[..]).unwrap();
    let icmp = Icmpv6Packet::new_checked(q.payload()).unwrap();
    assert_eq!(icmp.msg_type(), Icmpv6Message::PktTooBig);
    assert_eq!(icmp.pkt_too_big_mtu(), 1280);
    assert!(icmp.verify_checksum(&q.src_addr(), &q.dst_addr()));
    assert!(ip.len() <= 1280, "an ICMPv6 error fits the minimum MTU");
    // A packet that fits passes.
    let a = p.receive(T0, 0, id(), &from_h1(&ipv4("10.3.0.5", 64, IpProtocol::Udp, &[0; 1200])), None);
    assert_eq!(a.drop, None);
}

#[test]
fn an_ipv4_packet_without_df_is_fragmented() {
    let mut p = plane();
    let mut pkt = ipv4("10.3.0.5", 64, IpProtocol::Udp, &(0..2000u32).map(|i| i as u8).collect::<Vec<_>>());
    {
        let mut q = Ipv4Packet::new_unchecked(&mut pkt[..]);
        q.set_dont_frag(false);
        q.fill_checksum();
    }
    let a = p.receive(T0, 0, id(), &from_h1(&pkt), None);
    assert_eq!(a.drop, None);
    assert_eq!(a.out.len(), 2);
    let mut data = Vec::new();
    for (i, (port, pid, f)) in a.out.iter().enumerate() {
        assert_eq!((*port, *pid), (1, id()));
        let e = EthernetFrame::new_checked(&f[..]).unwrap();
        let q = Ipv4Packet::new_checked(e.payload()).unwrap();
        assert!(usize::from(q.total_len()) <= 1280 && q.verify_checksum());
        assert_eq!(usize::from(q.frag_offset()), data.len());
        assert_eq!(q.more_frags(), i == 0);
        data.extend_from_slice(q.payload());
    }
    assert_eq!(data, pkt[20..]);
}

#[test]
fn an_unresolved_next_hop_queues_then_resolves() {
    let mut p = plane();
    p.neighbours[1].clear();
    let pkt = ipv4("10.3.0.5", 64, IpProtocol::Udp, &[5; 10]);
    let a = p.receive(T0, 0, id(), &from_h1(&pkt), None);
    // An ARP request for the next hop goes out of port 1; the packet waits.
    let (port, _, dst, arp) = one_out(&a);
    assert_eq!((port, dst), (1, EthernetAddress::BROADCAST));
    let ArpRepr::EthernetIpv4 { operation, target_protocol_addr, source_protocol_addr, .. } =
        ArpRepr::parse(&ArpPacket::new_checked(&arp[..]).unwrap()).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (operation, target_protocol_addr, source_protocol_addr),
        (ArpOperation::Request, v4("10.0.12.2"), v4("10.0.12.1"))
    );
    // A second packet waits too, without a second request.
    let a = p.receive(T0, 0, id(), &from_h1(&pkt), None);
    assert!(a.out.is_empty());
    // The reply releases both, to the MAC it gave.
    let reply = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Reply,
        source_hardware_addr: NH,
        source_protocol_addr: v4("10.0.12.2"),
        target_hardware_addr: R1,
        target_protocol_addr: v4("10.0.12.1"),
    };
    let mut b = vec![0; reply.buffer_len()];
    reply.emit(&mut ArpPacket::new_unchecked(&mut b[..]));
    let a = p.receive(SimTime::from_millis(3), 1, id(), &eth(R1, NH, EthernetProtocol::Arp, &b), None);
    assert_eq!(a.out.len(), 2);
    assert!(a
        .out
        .iter()
        .all(|(port, _, f)| *port == 1 && EthernetFrame::new_checked(&f[..]).unwrap().dst_addr() == NH));
    assert_eq!(p.next_wake(), None, "nothing left to resolve");
}

#[test]
fn an_unanswered_next_hop_times_out_with_host_unreachable() {
    let mut p = plane();
    p.neighbours[1].clear();
    let came = Some((LinkId(3), Side::A));
    let pkt = ipv4("10.3.0.5", 64, IpProtocol::Udp, &[5; 10]);
    p.receive(T0, 0, id(), &from_h1(&pkt), came);
    let mut requests = 1;
    let mut now = T0;
    let mut acts = Actions::default();
    while let Some(t) = p.next_wake() {
        now = t;
        acts = Actions::default();
        p.poll(now, &mut acts);
        if acts.late_drops.is_empty() {
            assert_eq!(acts.out.len(), 1, "a retry");
            requests += 1;
        }
        assert!(requests <= RESOLVE_TRIES as usize + 1);
    }
    assert_eq!(requests, RESOLVE_TRIES as usize);
    assert_eq!(now, SimTime::from_duration(RESOLVE_RETRY * RESOLVE_TRIES));
    assert_eq!(acts.late_drops.len(), 1);
    let (c, pid, reason, packet) = &acts.late_drops[0];
    assert_eq!((*c, *pid, *reason), (came, id(), DropReason::NeighbourTimeout));
    let waited = Ipv4Packet::new_checked(&packet[..]).unwrap();
    assert_eq!((waited.hop_limit(), waited.payload()), (63, &pkt[20..]), "the packet as it waited");
    // And the source hears of it: host unreachable (type 3, code 1).
    let (port, _, _, ip) = one_out(&acts);
    assert_eq!((port, ip[20], ip[21]), (0, 3, 1));
    assert_eq!(p.counters.dropped.get("neighbour-timeout"), Some(&1));
}

#[test]
fn the_queue_of_waiting_packets_is_bounded() {
    let mut p = plane();
    p.neighbours[1].clear();
    let pkt = ipv4("10.3.0.5", 64, IpProtocol::Udp, &[5; 10]);
    let mut refused = 0;
    for _ in 0..PENDING_PER_NEIGHBOUR + 10 {
        refused += p.receive(T0, 0, id(), &from_h1(&pkt), None).late_drops.len();
    }
    assert_eq!(refused, 10);
    assert_eq!(p.counters.dropped.get("queue-full"), Some(&10));
}

#[test]
fn the_router_answers_ping_and_udp_on_its_own_addresses() {
    let mut p = plane();
    let mut echo = vec![0u8; 8 + 4];
    {
        let mut i = Icmpv4Packet::new_unchecked(&mut echo[..]);
        i.set_msg_type(Icmpv4Message::EchoRequest);
        i.set_msg_code(0);
        i.set_echo_ident(0x1234);
        i.set_echo_seq_no(7);
        i.data_mut().copy_from_slice(b"ping");
        i.fill_checksum();
    }
    // To the address of the far port, too.
    let a = p.receive(T0, 0, id(), &from_h1(&ipv4("10.0.12.1", 64, IpProtocol::Icmp, &echo)), None);
    assert_eq!(a.drop, None);
    let (port, _, dst, ip) = one_out(&a);
    assert_eq!((port, dst), (0, H1));
    let q = Ipv4Packet::new_checked(&ip[..]).unwrap();
    assert_eq!(q.src_addr(), v4("10.0.12.1"));
    let r = Icmpv4Packet::new_checked(q.payload()).unwrap();
    assert_eq!(
        (r.msg_type(), r.echo_ident(), r.echo_seq_no(), r.data()),
        (Icmpv4Message::EchoReply, 0x1234, 7, &b"ping"[..])
    );
    assert!(r.verify_checksum());
    // UDP: port unreachable.
    let a = p.receive(T0, 0, id(), &from_h1(&ipv4("10.1.0.1", 64, IpProtocol::Udp, &[0; 8])), None);
    let (_, _, _, ip) = one_out(&a);
    assert_eq!((ip[20], ip[21]), (3, 3));
    // IPv6 echo.
    let req = smoltcp::wire::Icmpv6Repr::EchoRequest { ident: 9, seq_no: 1, data: b"six" };
    let mut b = vec![0; req.buffer_len()];
    req.emit(
        &v6("fd00:1::10"),
        &v6("fd00:1::1"),
        &mut Icmpv6Packet::new_unchecked(&mut b[..]),
        &ChecksumCapabilities::default(),
    );
    let a = p.receive(T0, 0, id(), &from_h1(&ipv6("fd00:1::1", 64, IpProtocol::Icmpv6, &b)), None);
    let (_, _, _, ip) = one_out(&a);
    let q = Ipv6Packet::new_checked(&ip[..]).unwrap();
    let r = Icmpv6Packet::new_checked(q.payload()).unwrap();
    assert_eq!((r.msg_type(), r.echo_ident(), r.echo_seq_no()), (Icmpv6Message::EchoReply, 9, 1));
    assert!(r.verify_checksum(&q.src_addr(), &q.dst_addr()));
}

#[test]
fn no_error_about_an_error_and_none_to_a_broadcast() {
    let mut p = plane();
    // An ICMP time exceeded with TTL 1 is dropped without a reply.
    let mut err = vec![0u8; 8 + 28];
    err[0] = 11;
    let a = p.receive(T0, 0, id(), &from_h1(&ipv4("10.3.0.5", 1, IpProtocol::Icmp, &err)), None);
    assert_eq!(a.drop, Some(DropReason::Ttl));
    assert!(a.out.is_empty());
    // Broadcasts are not forwarded.
    let a = p.receive(T0, 0, id(), &from_h1(&ipv4("10.1.0.255", 64, IpProtocol::Udp, &[0; 8])), None);
    assert!(a.out.is_empty() && a.drop.is_none());
    // A frame for another MAC is filtered as a NIC would.
    let f = eth(
        EthernetAddress([2, 9, 9, 9, 9, 9]),
        H1,
        EthernetProtocol::Ipv4,
        &ipv4("10.3.0.5", 9, IpProtocol::Udp, &[0; 8]),
    );
    assert!(p.receive(T0, 0, id(), &f, None).out.is_empty());
}

#[test]
fn icmp_errors_are_rate_limited() {
    let mut p = plane();
    let pkt = from_h1(&ipv4("192.0.2.9", 64, IpProtocol::Udp, &[0; 8]));
    let sent: usize = (0..ICMP_BURST + 50).map(|_| p.receive(T0, 0, id(), &pkt, None).out.len()).sum();
    assert_eq!(sent, ICMP_BURST as usize);
    assert_eq!(p.counters.icmp_rate_limited, 50);
    // A millisecond later, one more token.
    assert_eq!(p.receive(SimTime::from_millis(1), 0, id(), &pkt, None).out.len(), 1);
}

#[test]
fn the_router_answers_arp_and_neighbour_solicitation_for_its_addresses() {
    let mut p = plane();
    let req = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: H1,
        source_protocol_addr: v4("10.1.0.20"),
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: v4("10.1.0.1"),
    };
    let mut b = vec![0; req.buffer_len()];
    req.emit(&mut ArpPacket::new_unchecked(&mut b[..]));
    let a = p.receive(T0, 0, id(), &eth(EthernetAddress::BROADCAST, H1, EthernetProtocol::Arp, &b), None);
    let (_, _, dst, arp) = one_out(&a);
    assert_eq!(dst, H1);
    let ArpRepr::EthernetIpv4 { operation, source_hardware_addr, .. } =
        ArpRepr::parse(&ArpPacket::new_checked(&arp[..]).unwrap()).unwrap()
    else {
        panic!()
    };
    assert_eq!((operation, source_hardware_addr), (ArpOperation::Reply, R0));
    assert!(p.neighbours[0].contains_key(&IpAddress::Ipv4(v4("10.1.0.20"))), "the asker is learnt");
    // NDP.
    let ns = smoltcp::wire::Icmpv6Repr::Ndisc(smoltcp::wire::NdiscRepr::NeighborSolicit {
        target_addr: v6("fd00:1::1"),
        lladdr: Some(H1.into()),
    });
    let mut b = vec![0; ns.buffer_len()];
    let dst = v6("ff02::1:ff00:1");
    ns.emit(&v6("fd00:1::20"), &dst, &mut Icmpv6Packet::new_unchecked(&mut b[..]), &ChecksumCapabilities::default());
    let mut ip = ipv6("ff02::1:ff00:1", 255, IpProtocol::Icmpv6, &b);
    Ipv6Packet::new_unchecked(&mut ip[..]).set_src_addr(v6("fd00:1::20"));
    let a = p.receive(
        T0,
        0,
        id(),
        &eth(EthernetAddress([0x33, 0x33, 0xff, 0, 0, 1]), H1, EthernetProtocol::Ipv6, &ip),
        None,
    );
    let (_, _, dst, ip) = one_out(&a);
    assert_eq!(dst, H1);
    let q = Ipv6Packet::new_checked(&ip[..]).unwrap();
    assert_eq!(Icmpv6Packet::new_checked(q.payload()).unwrap().msg_type(), Icmpv6Message::NeighborAdvert);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
    /// Whatever arrives, the plane does not panic, and what it sends is bounded.
    #[test]
    fn any_bytes_are_taken_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1600), port in 0usize..2, ethertype in prop_oneof![Just(0x0800u16), Just(0x86dd), Just(0x0806), any::<u16>()]) {
        let mut p = plane();
        let mut f = eth(R0, H1, EthernetProtocol::from(ethertype), &bytes);
        // Half the time, a valid IPv4 header checksum over random bytes.
        if ethertype == 0x0800 && f.len() >= 34 {
            f[14] = 0x45;
            let mut q = Ipv4Packet::new_unchecked(&mut f[14..]);
            q.fill_checksum();
        }
        let a = p.receive(T0, port, id(), &f, None);
        prop_assert!(a.out.len() <= 8);
        let mut acts = Actions::default();
        p.poll(SimTime::from_millis(10_000), &mut acts);
    }
}
