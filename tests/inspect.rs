//! The inspect layer on the frames of real runs: every frame of the shipped labs decodes, the flow
//! table finds the conversations of one link with the RTT its latency gives, and display filters
//! select what tshark selects from the same capture.

mod common;

use std::path::PathBuf;

use common::{count, read_pcapng, run_lab, tool, CapturedFrame};
use netlab::inspect::flows::Protocol;
use netlab::inspect::{decode, Filter, FlowTable, Packet, TcpState};

const MS: u64 = 1_000_000;

/// The frames of a lab run in virtual time at seed 1.
fn capture(lab: &str) -> (tempfile::TempDir, PathBuf, Vec<CapturedFrame>) {
    let dir = tempfile::tempdir().expect("tmp");
    let cap = dir.path().join("inspect.pcapng");
    run_lab(lab, &["--virtual-time", "--seed", "1", "--capture", cap.to_str().expect("utf-8")], dir.path());
    let frames = read_pcapng(&cap);
    (dir, cap, frames)
}

#[test]
fn every_frame_of_the_shipped_labs_decodes() {
    for lab in ["labs/single-lan.json", "labs/two-site.json", "labs/services.json"] {
        let (_dir, _, frames) = capture(lab);
        assert!(frames.len() > 1000, "{lab}: {} frames", frames.len());
        for (i, f) in frames.iter().enumerate() {
            let d = decode(&f.data);
            assert!(!d.is_malformed(), "{lab} frame {i} on {}: {:?}", f.link, d.summary);
            assert!(
                matches!(d.summary.protocol, "ARP" | "ICMP" | "ICMPv6" | "TCP" | "UDP"),
                "{lab} frame {i}: {:?}",
                d.summary
            );
            for field in d.layers.iter().flat_map(|l| &l.fields) {
                assert!(!field.label.contains("[incorrect]"), "{lab} frame {i}: {}", field.label);
            }
        }
    }
}

#[test]
fn the_conversations_of_the_wan_link() {
    let (_dir, _, frames) = capture("labs/two-site.json");
    let mut table = FlowTable::default();
    let mut on_wan = 0;
    for f in frames.iter().filter(|f| f.link == "wan") {
        on_wan += 1;
        assert!(table.observe(f.ts_ns, &f.data).is_some());
    }
    assert_eq!(table.iter().map(|f| f.packets()).sum::<u64>(), on_wan);

    // The two TCP connections (to the tcp-sink on 9, to the echo server on 7): whole, lossless,
    // and their handshakes cross the 10 ms link twice.
    for port in [9, 7] {
        let flow = table
            .iter()
            .find(|f| f.key.protocol == Protocol::Tcp && f.b.port == Some(port))
            .unwrap_or_else(|| panic!("a TCP flow to port {port}"));
        let tcp = flow.tcp.as_ref().expect("TCP state");
        assert_eq!(tcp.state, TcpState::Closed, "{flow}");
        assert_eq!((tcp.retransmissions, tcp.zero_windows), (0, 0), "{flow}");
        let rtt = tcp.handshake_rtt_ns.expect("a handshake");
        assert!((20 * MS..22 * MS).contains(&rtt), "{flow}: handshake RTT {rtt} ns");
        assert!(flow.rtt.samples > 1 && flow.rtt.min_ns.is_some_and(|m| m >= 10 * MS), "{flow}: {:?}", flow.rtt);
    }
    // Five pings over each family, all answered, across the link once each way.
    for protocol in [Protocol::Icmp, Protocol::Icmpv6] {
        let flow = table
            .iter()
            .find(|f| f.key.protocol == protocol && f.echo.is_some())
            .unwrap_or_else(|| panic!("an echo flow over {protocol}"));
        let echo = flow.echo.as_ref().expect("echo");
        assert_eq!((echo.requests, echo.replies, flow.rtt.samples), (5, 5, 5), "{flow}");
        assert!(flow.rtt.min_ns.is_some_and(|m| m >= 10 * MS), "{flow}: {:?}", flow.rtt);
    }
    let udp = table.iter().find(|f| f.key.protocol == Protocol::Udp).expect("the UDP echo");
    assert_eq!((udp.a_to_b.packets, udp.b_to_a.packets), (20, 20), "{udp}");
}

/// The nodes at the ends of a link of two-site: a default name says them; `wan` is named.
fn nodes(link: &str) -> [&str; 2] {
    match link.split_once("<->") {
        Some((a, b)) => [a.split(':').next().unwrap_or(a), b.split(':').next().unwrap_or(b)],
        None => ["hq-sw", "branch-sw"],
    }
}

#[test]
fn display_filters_select_what_tshark_selects() {
    if !tool("tshark") {
        return;
    }
    let (_dir, cap, frames) = capture("labs/two-site.json");
    let decoded: Vec<_> = frames.iter().map(|f| decode(&f.data)).collect();
    // (ours, tshark's)
    let filters = [
        ("tcp.port == 9", "tcp.port == 9"),
        ("tcp.flags.syn == 1 && tcp.flags.ack == 0", "tcp.flags.syn == 1 && tcp.flags.ack == 0"),
        ("tcp.port != 9 and tcp.len > 0", "tcp.port != 9 and tcp.len > 0"),
        ("icmp.type == 8 || icmpv6.type == 128", "icmp.type == 8 || icmpv6.type == 128"),
        ("icmpv6.type == 135 && ipv6.dst == ff02::/16", "icmpv6.type == 135 && ipv6.dst == ff02::/16"),
        ("arp.opcode == 2", "arp.opcode == 2"),
        ("ip.addr == 10.10.2.0/24 && !tcp", "ip.addr == 10.10.2.0/24 && !tcp"),
        ("ipv6.addr == fd00:10::/64", "ipv6.addr == fd00:10::/64"),
        ("udp.port == 7 && frame.len > 200", "udp.port == 7 && frame.len > 200"),
        ("eth.addr == ff:ff:ff:ff:ff:ff", "eth.addr == ff:ff:ff:ff:ff:ff"),
        ("link == wan && tcp.len >= 1448", "frame.interface_name == \"wan\" && tcp.len >= 1448"),
        ("node == laptop && not arp", "frame.interface_name == \"laptop:eth0<->hq-sw\" && !arp"),
    ];
    for (ours, theirs) in filters {
        let filter = Filter::parse(ours).unwrap_or_else(|e| panic!("{ours}: {e}"));
        let selected = frames
            .iter()
            .zip(&decoded)
            .filter(|(f, d)| {
                filter.matches(&Packet { frame: &f.data, decoded: d, link: &f.link, nodes: nodes(&f.link) })
            })
            .count();
        assert!(selected > 0, "{ours} selects nothing");
        assert_eq!(selected, count(&cap, theirs), "{ours}");
    }
}
