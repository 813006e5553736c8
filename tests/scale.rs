//! The scale bench's labs are valid, shaped as promised, run to a checked end, and a broken run is
//! an error rather than a figure.

use netlab::bench_scale::{idle_lab, routed_lab, run_once, run_routed, run_text, scale_lab, Job};
use netlab::topology::{self, Attachment, NodeKind};

#[test]
fn generated_labs_are_separate_segments_of_their_own_subnets() {
    let lab = topology::load_str(&scale_lab(230, 50), "scale.json").expect("valid");
    let switches: Vec<_> = lab.nodes.iter().filter(|n| matches!(n.kind, NodeKind::Switch(_))).collect();
    // 230 hosts in segments of at most 50: 5 segments of 46.
    assert_eq!(switches.len(), 5);
    assert_eq!(lab.nodes.len(), 235);
    assert_eq!(lab.links.len(), 230);
    assert!(!lab.capture.enabled, "capture is off");
    for l in &lab.links {
        // Every link joins a host to a switch: no links between switches.
        let kinds = l.ends.map(|e| matches!(e, Attachment::SwitchPort { .. }));
        assert!(kinds[0] != kinds[1], "{} joins a host to a switch", l.name);
    }
    for s in &switches {
        let NodeKind::Switch(sw) = &s.kind else { unreachable!() };
        assert_eq!(sw.ports.len(), 46, "{} has {} ports", s.name, sw.ports.len());
    }
    // Each segment is its own /24: the third byte of an address is its segment.
    let text = scale_lab(230, 50);
    assert!(text.contains("\"h4-45\""), "the last host of the last segment");
    assert!(text.contains("10.0.4.46/24"));
    assert!(!text.contains("\"h4-46\""));

    let idle = topology::load_str(&idle_lab(230, 50), "idle.json").expect("valid");
    assert_eq!(idle.nodes.len(), 235);
    assert!(idle.nodes.iter().all(|n| match &n.kind {
        NodeKind::Host(h) => h.apps.is_empty(),
        NodeKind::Switch(_) | NodeKind::Router(_) => true,
    }));
}

#[test]
fn large_segments_get_larger_subnets() {
    let text = scale_lab(600, 300);
    assert!(text.contains("10.0.0.1/23"), "300 hosts need a /23");
    assert!(text.contains("10.0.2.1/23"), "the second segment starts at the next /23");
    topology::load_str(&text, "scale.json").expect("valid");
}

#[test]
fn small_labs_run_with_every_ping_answered() {
    for hosts in [10, 200] {
        let r = run_once(hosts, 50).unwrap_or_else(|e| panic!("{hosts} hosts: {e:#}"));
        assert_eq!(r.pings, hosts);
        assert_eq!(r.transfers, hosts.div_ceil(50));
        // Each ping is 2 requests and 2 replies, over 2 links each, and an ARP exchange besides.
        assert!(r.frames > 8 * hosts as u64, "{hosts} hosts: {} frames", r.frames);
        assert!(r.sim_time.as_millis() >= 100, "two pings 100 ms apart: {:?}", r.sim_time);
        assert!(r.sim_time.as_secs() < 2, "{:?}", r.sim_time);
        assert!(r.wall.as_nanos() > 0 && r.steps > 0);
        assert!(!r.build.load.is_zero() && !r.build.sim.is_zero());
    }
}

#[test]
fn a_run_with_lost_replies_is_an_error() {
    // All frames lost on the first host's link: its ping, the pings to it and its segment's
    // transfer fail, and the run must say so.
    let text = scale_lab(10, 50).replacen(r#""latency": "100us""#, r#""latency": "100us", "loss": 1.0"#, 1);
    assert_ne!(text, scale_lab(10, 50));
    let e = run_text(&text, 10, 50).expect_err("a lab with a dead link cannot pass");
    let msg = format!("{e:#}");
    assert!(msg.contains("h0-0/") || msg.contains("h0-9/"), "{msg}");
}

#[test]
fn jobs_read_back_as_written() {
    for j in [Job::Scale(10), Job::Idle(10_000), Job::Routed(100)] {
        assert_eq!(j.to_string().parse::<Job>(), Ok(j));
    }
    assert!("scale".parse::<Job>().is_err());
    assert!("big:10".parse::<Job>().is_err());
}

#[test]
fn routed_labs_join_their_switches_through_routers() {
    // 230 hosts in 5 segments of 46; 4 switches to a router: r0 joins sw0 to sw3, r1 sw4 alone.
    let text = routed_lab(230, 50, 4);
    let lab = topology::load_str(&text, "routed.json").expect("valid");
    let routers: Vec<_> = lab
        .nodes
        .iter()
        .filter_map(|n| match &n.kind {
            NodeKind::Router(r) => Some((n.name.as_str(), r.interfaces.len())),
            _ => None,
        })
        .collect();
    assert_eq!(routers, [("r0", 4), ("r1", 1)]);
    assert_eq!(lab.nodes.len(), 230 + 5 + 2);
    assert_eq!(lab.links.len(), 230 + 5);
    // Each segment's router is its gateway, at the end of its subnet.
    assert!(text.contains(r#""eth0": { "addresses": ["10.0.0.254/24"] }"#), "r0 on sw0's subnet");
    assert!(text.contains(r#""eth3": { "addresses": ["10.0.3.254/24"] }"#), "r0 on sw3's subnet");
    assert!(text.contains(r#""addresses": ["10.0.2.7/24"], "gateways": ["10.0.2.254"]"#), "h2-6");
    // Pings and transfers aim at the next segment of the group, the last at the first; a group
    // of one segment stays within it.
    let apps = |host: &str| {
        let start = text.find(&format!("\"{host}\": {{")).expect("host");
        text[start..start + text[start..].find(" ] }").expect("apps end")].to_string()
    };
    assert!(apps("h0-0").contains(r#""to": "h1-1""#) && apps("h0-0").contains(r#""to": "h1-1:9""#));
    assert!(apps("h3-45").contains(r#""to": "h0-0""#));
    assert!(apps("h4-0").contains(r#""to": "h4-1:9""#));
    // Without routers, the lab is the scale lab: the same hosts, pings within each segment.
    assert_ne!(text, scale_lab(230, 50));
    assert!(!scale_lab(230, 50).contains("router"));
}

#[test]
fn small_routed_labs_run_with_every_ping_answered_across_a_router() {
    let r = run_text(&routed_lab(200, 50, 4), 200, 50).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!((r.pings, r.transfers), (200, 4));
    // Each ping's 2 requests and 2 replies cross the router, and the transfers too.
    assert!(r.forwarded > 4 * 200, "{} forwarded", r.forwarded);
    // A routed ping crosses 4 links, a switched one 2 (ARP requests flooding the switches are
    // most of either lab's frames).
    let plain = run_once(200, 50).expect("switched");
    assert!(r.frames > plain.frames + 4 * 200, "{} frames routed, {} switched", r.frames, plain.frames);
    assert_eq!(plain.forwarded, 0);
}

#[test]
fn the_routed_comparison_runs_at_a_tiny_size() {
    // 20 hosts in segments of 5: 4 segments, one router.
    let mut out = Vec::new();
    run_routed(&[20], 5, 1, None, &mut out).unwrap_or_else(|e| panic!("{e:#}"));
    let out = String::from_utf8(out).expect("utf-8");
    let row = |lab: &str| {
        out.lines()
            .find(|l| l.split_whitespace().take(2).eq(["20", lab]))
            .unwrap_or_else(|| panic!("no {lab} row in\n{out}"))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let (switched, routed) = (row("switched"), row("routed"));
    assert_eq!((switched[2].as_str(), routed[2].as_str()), ("0", "1"), "routers");
    // Forwarded packets: none without routers, every ping's four with.
    assert_eq!(switched[7], "0");
    assert!(routed[7].parse::<u64>().expect("forwarded") >= 4 * 20, "{out}");
    assert!(out.contains("20 hosts: the routed lab moves"), "{out}");
}
