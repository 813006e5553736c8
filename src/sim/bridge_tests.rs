//! Bridges without sockets: the test plays the edge. A forward's flow opened on a lab host crosses a
//! router to an exit gateway, which asks for dials the test answers; and the gateway's look at
//! frames is fed byte fixtures built with `smoltcp::wire`.

use std::net::SocketAddr;
use std::time::Duration;

use proptest::prelude::*;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv4Packet,
    Icmpv4Repr, IpAddress, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, TcpPacket, UdpPacket, UdpRepr,
};

use super::bridge::*;
use super::{Fate, FrameEvent, Observer, Sim};
use crate::time::SimTime;
use crate::topology::{self, Exit, NodeId, Proto};

const LAB: &str = r#"{
  "name": "bridge-core",
  "nodes": {
    "client": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.1.10/24"], "gateways": ["10.0.1.1"] } } },
    "r1": { "kind": "router",
      "interfaces": { "lan": { "addresses": ["10.0.1.1/24"] }, "edge": { "addresses": ["10.0.2.1/24"] } },
      "routes": [ { "to": "10.99.0.0/24", "via": "10.0.2.2" } ] },
    "gw": { "kind": "gateway",
      "interfaces": { "eth0": { "addresses": ["10.0.2.2/24"], "gateways": ["10.0.2.1"] } },
      "exit": { "allow": ["10.99.0.1/32"], "map": { "10.99.0.0/24": "127.0.0.0/24" }, "max_pending_per_source": 2 } }
  },
  "links": [
    { "name": "lan", "a": "client:eth0", "b": "r1:lan", "impair": { "latency": "1ms" } },
    { "name": "edge", "a": "r1:edge", "b": "gw:eth0", "impair": { "latency": "1ms" } }
  ],
  "forwards": [ { "listen": "127.0.0.1:1", "from": "client", "to": "10.99.0.1:80" } ]
}"#;

const CLIENT: NodeId = NodeId(0);
const GW: NodeId = NodeId(2);

#[derive(Default)]
struct Wire(Vec<(u32, Fate, Vec<u8>)>);

impl Observer for Wire {
    fn frame(&mut self, ev: &FrameEvent<'_>) {
        self.0.push((ev.link.0, ev.fate, ev.frame.to_vec()));
    }
}

/// TCP flags of the segments delivered on link `link`, from `src` port.
fn segments(w: &Wire, link: u32) -> Vec<(u16, u16, bool, bool, bool, usize)> {
    w.0.iter()
        .filter(|(l, f, _)| *l == link && *f == Fate::Delivered)
        .filter_map(|(_, _, f)| {
            let eth = EthernetFrame::new_checked(&f[..]).ok()?;
            let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
            let t = TcpPacket::new_checked(ip.payload()).ok()?;
            Some((t.src_port(), t.dst_port(), t.syn(), t.ack(), t.rst(), t.payload().len()))
        })
        .collect()
}

struct Rig {
    sim: Sim,
    wire: Wire,
    out: Vec<BridgeOut>,
}

impl Rig {
    fn new(text: &str) -> Rig {
        let lab = topology::load_str(text, "bridge.json").unwrap_or_else(|e| panic!("{e}"));
        Rig { sim: Sim::new(&lab, None), wire: Wire::default(), out: Vec::new() }
    }

    /// Runs the core for `d` of simulated time, gathering what it asks of the edge.
    fn run(&mut self, d: Duration) {
        let end = self.sim.now() + d;
        while let Some(t) = self.sim.next_deadline().filter(|t| *t <= end) {
            self.sim.step(t, &mut self.wire);
            self.sim.drain_bridges(&mut self.out);
        }
        self.sim.step(end, &mut self.wire);
        self.sim.drain_bridges(&mut self.out);
    }

    fn give(&mut self, msg: BridgeIn) {
        self.sim.bridge_in(msg);
        self.run(Duration::ZERO);
    }

    fn dials(&self) -> Vec<(FlowId, Proto, SocketAddr)> {
        self.out
            .iter()
            .filter_map(|o| match o {
                BridgeOut::Dial { flow, proto, real, .. } => Some((*flow, *proto, *real)),
                _ => None,
            })
            .collect()
    }

    /// Opens a forward flow from the client to `to`.
    fn open(&mut self, n: u32, to: &str) -> FlowId {
        let flow = FlowId { node: CLIENT, n };
        self.give(BridgeIn::Open {
            flow,
            proto: Proto::Tcp,
            to: to.parse().unwrap(),
            peer: "127.0.0.1:40000".parse().unwrap(),
            udp_idle: Duration::from_secs(30),
        });
        flow
    }

    fn data_for(&self, flow: FlowId) -> Vec<u8> {
        self.out
            .iter()
            .filter_map(|o| match o {
                BridgeOut::Data(f, d) if *f == flow => Some(d.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    fn closed(&self, flow: FlowId) -> Option<bool> {
        self.out.iter().find_map(|o| match o {
            BridgeOut::Closed { flow: f, reset } if *f == flow => Some(*reset),
            _ => None,
        })
    }
}

#[test]
fn a_syn_waits_for_its_dial_and_the_bytes_cross_both_ways() {
    let mut r = Rig::new(LAB);
    r.run(Duration::from_millis(10));
    let fwd = r.open(1, "10.99.0.1:80");
    r.run(Duration::from_millis(50));
    let dials = r.dials();
    assert_eq!(dials.len(), 1, "{:?}", r.out);
    let (exit, proto, real) = dials[0];
    assert_eq!((exit.node, proto, real), (GW, Proto::Tcp, "127.0.0.1:80".parse().unwrap()));
    // Held: nothing has answered the SYN on the gateway's link yet.
    let edge = segments(&r.wire, 1);
    assert!(edge.iter().any(|s| s.2 && !s.3), "the SYN reached the gateway: {edge:?}");
    assert!(!edge.iter().any(|s| s.2 && s.3), "no SYN-ACK before the dial: {edge:?}");
    r.give(BridgeIn::Dialed(exit, Dialed::Ok("127.0.0.1:5555".parse().unwrap())));
    r.run(Duration::from_millis(50));
    assert!(segments(&r.wire, 1).iter().any(|s| s.2 && s.3), "a SYN-ACK after the dial");
    // Real client → lab → real server.
    r.give(BridgeIn::Data(fwd, b"GET / HTTP/1.0\r\n\r\n".to_vec()));
    r.run(Duration::from_millis(50));
    assert_eq!(r.data_for(exit), b"GET / HTTP/1.0\r\n\r\n");
    assert!(r.out.contains(&BridgeOut::Consumed(fwd, 18)), "the forward's window reopens");
    // Real server → lab → real client, then the server closes.
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    r.give(BridgeIn::Data(exit, body.clone()));
    r.give(BridgeIn::Eof(exit));
    for _ in 0..40 {
        r.run(Duration::from_millis(20));
        let n = r.data_for(fwd).len();
        r.give(BridgeIn::Written(fwd, n));
    }
    assert_eq!(r.data_for(fwd), body, "the body arrives whole and in order");
    assert!(r.out.contains(&BridgeOut::Eof(fwd)), "the real client hears the end");
    r.give(BridgeIn::Eof(fwd));
    r.run(Duration::from_secs(1));
    assert_eq!(r.closed(fwd), Some(false), "closed gracefully: {:?}", r.out.iter().rev().take(5).collect::<Vec<_>>());
    assert_eq!(r.closed(exit), Some(false));
    let snap = r.sim.snapshot();
    let gw = snap.bridges.iter().find(|b| b.kind == "gateway").unwrap();
    assert_eq!(gw.counters.dials, 1);
    let f = gw.flows.iter().find(|f| f.id == exit).unwrap();
    assert_eq!((f.bytes_in, f.bytes_out), (100_000, 18));
}

#[test]
fn the_core_hands_out_no_more_than_a_window_before_the_edge_writes() {
    let mut r = Rig::new(LAB);
    r.run(Duration::from_millis(10));
    let fwd = r.open(1, "10.99.0.1:80");
    r.run(Duration::from_millis(50));
    let exit = r.dials()[0].0;
    r.give(BridgeIn::Dialed(exit, Dialed::Ok("127.0.0.1:5555".parse().unwrap())));
    r.run(Duration::from_millis(20));
    // The real server sends far more than a window; the real client writes nothing.
    let mut given = 0;
    for _ in 0..16 {
        let credit: usize = r
            .out
            .iter()
            .filter_map(|o| match o {
                BridgeOut::Consumed(f, n) if *f == exit => Some(*n),
                _ => None,
            })
            .sum();
        while given < credit + WINDOW {
            r.give(BridgeIn::Data(exit, vec![7; 16 * 1024]));
            given += 16 * 1024;
        }
        r.run(Duration::from_millis(50));
    }
    assert_eq!(r.data_for(fwd).len(), WINDOW, "exactly a window, then nothing until written");
    r.give(BridgeIn::Written(fwd, WINDOW));
    r.run(Duration::from_millis(50));
    assert!(r.data_for(fwd).len() > WINDOW, "more once written");
}

#[test]
fn a_refused_dial_is_a_reset_and_a_timed_out_one_is_silence() {
    let mut r = Rig::new(LAB);
    r.run(Duration::from_millis(10));
    let a = r.open(1, "10.99.0.1:80");
    r.run(Duration::from_millis(50));
    let exit = r.dials()[0].0;
    r.give(BridgeIn::Dialed(exit, Dialed::Refused));
    r.run(Duration::from_millis(50));
    assert!(segments(&r.wire, 1).iter().any(|s| s.4), "the gateway resets the SYN");
    assert_eq!(r.closed(a), Some(true), "the forward's real client is reset");

    let b = r.open(2, "10.99.0.1:80");
    r.run(Duration::from_millis(50));
    let exit = r.dials()[1].0;
    let resets = segments(&r.wire, 1).iter().filter(|s| s.4).count();
    r.give(BridgeIn::Dialed(exit, Dialed::TimedOut));
    r.run(Duration::from_millis(500));
    assert_eq!(segments(&r.wire, 1).iter().filter(|s| s.4).count(), resets, "nothing goes back on a timeout");
    assert_eq!(r.closed(b), None, "the lab client is still waiting");
    let snap = r.sim.snapshot();
    let gw = snap.bridges.iter().find(|x| x.kind == "gateway").unwrap();
    assert_eq!((gw.counters.dials_refused, gw.counters.dials_timed_out), (1, 1));
}

#[test]
fn dials_pending_from_one_source_are_capped() {
    let mut r = Rig::new(LAB);
    r.run(Duration::from_millis(10));
    for n in 1..=4 {
        r.open(n, "10.99.0.1:80");
    }
    r.run(Duration::from_millis(100));
    assert_eq!(r.dials().len(), 2, "max_pending_per_source is 2");
    let snap = r.sim.snapshot();
    let gw = snap.bridges.iter().find(|x| x.kind == "gateway").unwrap();
    assert!(gw.counters.pending_full >= 2);
}

#[test]
fn a_destination_outside_the_allow_list_is_never_dialled() {
    let mut r = Rig::new(LAB);
    r.run(Duration::from_millis(10));
    let a = r.open(1, "10.99.0.2:80");
    r.run(Duration::from_millis(100));
    assert!(r.dials().is_empty());
    assert_eq!(r.closed(a), Some(true), "reset");
    let logs: Vec<&BridgeOut> = r.out.iter().filter(|o| matches!(o, BridgeOut::Log(_))).collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    // More refusals within the interval are counted, not logged.
    for n in 2..=20 {
        r.open(n, "10.99.0.2:80");
    }
    r.run(Duration::from_millis(100));
    assert_eq!(r.out.iter().filter(|o| matches!(o, BridgeOut::Log(_))).count(), 1);
    let snap = r.sim.snapshot();
    let gw = snap.bridges.iter().find(|x| x.kind == "gateway").unwrap();
    assert_eq!(gw.counters.denied, 20);
    r.run(Duration::from_secs(6));
    r.open(21, "10.99.0.2:80");
    r.run(Duration::from_millis(100));
    let last = r.out.iter().rev().find_map(|o| match o {
        BridgeOut::Log(l) => Some(l.clone()),
        _ => None,
    });
    assert!(
        last.is_some_and(|l| l.contains("19 more refused")),
        "{:?}",
        r.out.iter().rev().take(3).collect::<Vec<_>>()
    );
}

const ME: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);
const PEER: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);

fn exit_rules() -> Exit {
    let c = |s: &str| {
        let (a, l) = s.split_once('/').unwrap();
        smoltcp::wire::IpCidr::new(IpAddress::Ipv4(a.parse().unwrap()), l.parse().unwrap())
    };
    Exit {
        allow: vec![c("10.99.0.0/24")],
        map: vec![(c("10.99.0.0/24"), c("127.0.0.0/24"))],
        udp_idle: Duration::from_secs(2),
        ..Exit::default()
    }
}

fn ipv4_frame(proto: IpProtocol, src: &str, dst: &str, l4: &[u8]) -> Vec<u8> {
    let ip = Ipv4Repr {
        src_addr: src.parse().unwrap(),
        dst_addr: dst.parse().unwrap(),
        next_header: proto,
        payload_len: l4.len(),
        hop_limit: 64,
    };
    let eth = EthernetRepr { src_addr: PEER, dst_addr: ME, ethertype: EthernetProtocol::Ipv4 };
    let mut buf = vec![0; 14 + 20 + l4.len()];
    eth.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut buf[14..]), &smoltcp::phy::ChecksumCapabilities::default());
    buf[34..].copy_from_slice(l4);
    buf
}

fn udp(src: &str, sport: u16, dst: &str, dport: u16, data: &[u8]) -> Vec<u8> {
    let repr = UdpRepr { src_port: sport, dst_port: dport };
    let mut l4 = vec![0; 8 + data.len()];
    let (s, d): (Ipv4Address, Ipv4Address) = (src.parse().unwrap(), dst.parse().unwrap());
    repr.emit(
        &mut UdpPacket::new_unchecked(&mut l4[..]),
        &IpAddress::Ipv4(s),
        &IpAddress::Ipv4(d),
        data.len(),
        |b| b.copy_from_slice(data),
        &smoltcp::phy::ChecksumCapabilities::default(),
    );
    ipv4_frame(IpProtocol::Udp, src, dst, &l4)
}

fn mine(ip: std::net::IpAddr) -> bool {
    ip == std::net::IpAddr::V4("10.0.2.2".parse().unwrap())
}

/// The ICMP message in a frame the bridge built: (type, code), and the addresses.
fn icmp_of(f: &[u8]) -> (u8, u8, Ipv4Address, Ipv4Address) {
    let eth = EthernetFrame::new_checked(f).unwrap();
    assert_eq!((eth.src_addr(), eth.dst_addr()), (ME, PEER), "back to the frame's sender");
    let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
    assert!(ip.verify_checksum());
    let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
    assert!(icmp.verify_checksum());
    (icmp.msg_type().into(), icmp.msg_code(), ip.src_addr(), ip.dst_addr())
}

#[test]
fn udp_to_an_allowed_destination_goes_to_the_edge_and_answers_come_back_built() {
    let mut b = Bridge::new(GW, Some(&exit_rules()), false);
    let f = udp("10.0.1.10", 5000, "10.99.0.7", 53, b"query");
    assert!(matches!(b.filter(SimTime::ZERO, 0, &f, &mine, ME), Verdict::Taken));
    let (flow, real) = match &b.out[..] {
        [BridgeOut::Dial { flow, proto: Proto::Udp, real, .. }, BridgeOut::Data(f2, d)] if f2 == flow => {
            assert_eq!(d, b"query");
            (*flow, *real)
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(real, "127.0.0.7:53".parse().unwrap(), "mapped onto loopback");
    b.out.clear();
    // A second datagram of the flow: no second dial.
    b.filter(SimTime::ZERO, 0, &udp("10.0.1.10", 5000, "10.99.0.7", 53, b"again"), &mine, ME);
    assert_eq!(b.out, vec![BridgeOut::Data(flow, b"again".to_vec())]);
    let mut stacks = Vec::new();
    let mut ids = super::apps::HostIds::new(&mut <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(1));
    let tcp = crate::topology::TcpConfig::default();
    b.input(SimTime::ZERO, BridgeIn::Data(flow, b"answer".to_vec()), &mut stacks, &mut ids, &tcp, |_| 0);
    b.pump(SimTime::ZERO, &mut stacks);
    let (_, frame) = b.raw.pop_front().expect("a datagram back");
    let eth = EthernetFrame::new_checked(&frame[..]).unwrap();
    assert_eq!(eth.dst_addr(), PEER);
    let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!((ip.src_addr().to_string(), ip.dst_addr().to_string()), ("10.99.0.7".into(), "10.0.1.10".into()));
    let u = UdpPacket::new_checked(ip.payload()).unwrap();
    assert!(u.verify_checksum(&IpAddress::Ipv4(ip.src_addr()), &IpAddress::Ipv4(ip.dst_addr())));
    assert_eq!((u.src_port(), u.dst_port(), u.payload()), (53, 5000, &b"answer"[..]));
    // The real side refuses: ICMP port unreachable back into the lab, quoting the datagram.
    b.input(SimTime::ZERO, BridgeIn::Reset(flow), &mut stacks, &mut ids, &tcp, |_| 0);
    let (_, frame) = b.raw.pop_front().expect("port unreachable");
    assert_eq!(icmp_of(&frame), (3, 3, "10.99.0.7".parse().unwrap(), "10.0.1.10".parse().unwrap()));
    // Idle flows end.
    b.filter(SimTime::ZERO, 0, &udp("10.0.1.10", 5001, "10.99.0.7", 53, b"x"), &mine, ME);
    b.pump(SimTime::from_duration(Duration::from_secs(3)), &mut stacks);
    assert_eq!(b.counters.udp_timeouts, 1);
    assert!(matches!(b.out.last(), Some(BridgeOut::Closed { reset: false, .. })));
}

#[test]
fn what_is_not_allowed_gets_admin_prohibited_and_echo_too() {
    let mut b = Bridge::new(GW, Some(&exit_rules()), false);
    b.filter(SimTime::ZERO, 0, &udp("10.0.1.10", 5000, "192.0.2.1", 53, b"q"), &mine, ME);
    let (_, f) = b.raw.pop_front().expect("an ICMP error");
    assert_eq!(icmp_of(&f), (3, 13, "192.0.2.1".parse().unwrap(), "10.0.1.10".parse().unwrap()));
    assert!(!b.out.iter().any(|o| matches!(o, BridgeOut::Dial { .. })), "never dialled");
    let echo = Icmpv4Repr::EchoRequest { ident: 1, seq_no: 1, data: b"ping" };
    let mut l4 = vec![0; echo.buffer_len()];
    echo.emit(&mut Icmpv4Packet::new_unchecked(&mut l4[..]), &smoltcp::phy::ChecksumCapabilities::default());
    b.filter(SimTime::ZERO, 0, &ipv4_frame(IpProtocol::Icmp, "10.0.1.10", "10.99.0.1", &l4), &mine, ME);
    let (_, f) = b.raw.pop_front().expect("an ICMP error");
    assert_eq!(icmp_of(&f).0..=icmp_of(&f).1, 3..=13);
    assert_eq!((b.counters.denied, b.counters.echo_prohibited), (1, 1));
    // The gateway's own address is its stack's.
    let f = udp("10.0.1.10", 5000, "10.0.2.2", 53, b"q");
    assert!(matches!(b.filter(SimTime::ZERO, 0, &f, &mine, ME), Verdict::Stack));
}

#[test]
fn arp_for_an_address_not_its_own_goes_unanswered() {
    let mut b = Bridge::new(GW, Some(&exit_rules()), false);
    let arp = |target: &str| {
        let repr = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr: PEER,
            source_protocol_addr: "10.0.2.1".parse().unwrap(),
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: target.parse().unwrap(),
        };
        let eth =
            EthernetRepr { src_addr: PEER, dst_addr: EthernetAddress::BROADCAST, ethertype: EthernetProtocol::Arp };
        let mut buf = vec![0; 14 + repr.buffer_len()];
        eth.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
        repr.emit(&mut ArpPacket::new_unchecked(&mut buf[14..]));
        buf
    };
    assert!(matches!(b.filter(SimTime::ZERO, 0, &arp("10.0.2.9"), &mine, ME), Verdict::Taken));
    assert!(matches!(b.filter(SimTime::ZERO, 0, &arp("10.0.2.2"), &mine, ME), Verdict::Stack));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    /// Any bytes: no panic, and what the bridge keeps stays bounded.
    #[test]
    fn arbitrary_frames_never_panic(frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..64)) {
        let mut b = Bridge::new(GW, Some(&exit_rules()), false);
        for mut f in frames {
            if f.len() >= 34 && f[0] & 1 == 0 {
                // Often an IPv4 frame to the gateway, so that the filter looks deeper.
                f[12] = 8;
                f[13] = 0;
                f[14] = 0x45;
            }
            let _ = b.filter(SimTime::ZERO, 0, &f, &mine, ME);
        }
        prop_assert!(b.raw.len() <= 1024);
        prop_assert!(b.open_flows() <= Exit::default().max_flows);
    }
}

#[test]
fn echo_is_carried_out_where_ping_sockets_are_granted() {
    let mut b = Bridge::new(GW, Some(&exit_rules()), false);
    b.set_echo(true);
    let echo = Icmpv4Repr::EchoRequest { ident: 0x4242, seq_no: 7, data: b"are you there" };
    let mut l4 = vec![0; echo.buffer_len()];
    echo.emit(&mut Icmpv4Packet::new_unchecked(&mut l4[..]), &smoltcp::phy::ChecksumCapabilities::default());
    b.filter(SimTime::ZERO, 0, &ipv4_frame(IpProtocol::Icmp, "10.0.1.10", "10.99.0.3", &l4), &mine, ME);
    let flow = match &b.out[..] {
        [BridgeOut::Echo { flow, real, data }] => {
            assert_eq!(real.to_string(), "127.0.0.3", "mapped");
            assert_eq!(data, b"are you there");
            *flow
        }
        other => panic!("{other:?}"),
    };
    assert!(b.raw.is_empty(), "no answer until the real one");
    let mut stacks = Vec::new();
    let mut ids = super::apps::HostIds::new(&mut <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(1));
    let tcp = crate::topology::TcpConfig::default();
    b.input(SimTime::ZERO, BridgeIn::EchoReply(flow), &mut stacks, &mut ids, &tcp, |_| 0);
    let (_, f) = b.raw.pop_front().expect("an echo reply");
    let eth = EthernetFrame::new_checked(&f[..]).unwrap();
    let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!((ip.src_addr().to_string(), ip.dst_addr().to_string()), ("10.99.0.3".into(), "10.0.1.10".into()));
    let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
    let repr = Icmpv4Repr::parse(&icmp, &smoltcp::phy::ChecksumCapabilities::default()).expect("a valid reply");
    assert_eq!(repr, Icmpv4Repr::EchoReply { ident: 0x4242, seq_no: 7, data: b"are you there" });
    // An answer that never comes: the request is forgotten, nothing goes back.
    b.filter(SimTime::ZERO, 0, &ipv4_frame(IpProtocol::Icmp, "10.0.1.10", "10.99.0.3", &l4), &mine, ME);
    b.pump(SimTime::from_duration(Duration::from_secs(3)), &mut stacks);
    assert!(b.raw.is_empty());
    assert_eq!((b.counters.echo_sent, b.counters.echo_answered, b.counters.echo_prohibited), (2, 1, 0));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Whatever the edge says, in whatever order, of flows that exist or not: no panic.
    #[test]
    fn any_sequence_from_the_edge_is_taken(msgs in proptest::collection::vec((0u8..8, 0u32..4, 0usize..70_000), 1..40)) {
        let mut r = Rig::new(LAB);
        r.run(Duration::from_millis(10));
        for (kind, n, len) in msgs {
            let fwd = FlowId { node: CLIENT, n };
            let exit = FlowId { node: GW, n: (1 << 31) + n };
            let msg = match kind {
                0 => BridgeIn::Open {
                    flow: fwd,
                    proto: if len % 2 == 0 { Proto::Tcp } else { Proto::Udp },
                    to: "10.99.0.1:80".parse().unwrap(),
                    peer: "127.0.0.1:40000".parse().unwrap(),
                    udp_idle: Duration::from_secs(1),
                },
                1 => BridgeIn::Data(if len % 2 == 0 { fwd } else { exit }, vec![1; len % 5000]),
                2 => BridgeIn::Written(if len % 2 == 0 { fwd } else { exit }, len),
                3 => BridgeIn::Eof(if len % 2 == 0 { fwd } else { exit }),
                4 => BridgeIn::Reset(if len % 2 == 0 { fwd } else { exit }),
                5 => BridgeIn::Dialed(exit, Dialed::Ok("127.0.0.1:1".parse().unwrap())),
                6 => BridgeIn::Dialed(exit, if len % 2 == 0 { Dialed::Refused } else { Dialed::TimedOut }),
                _ => BridgeIn::EchoReply(exit),
            };
            r.give(msg);
            r.run(Duration::from_millis(len as u64 % 300));
        }
        r.run(Duration::from_secs(30));
        let snap = r.sim.snapshot();
        prop_assert!(snap.bridges.iter().all(|b| b.flows.len() <= 64));
    }
}
