//! The scale bench's labs are valid, shaped as promised, run to a checked end, and a broken run is
//! an error rather than a figure.

use netlab::bench_scale::{idle_lab, run_once, run_text, scale_lab, Job};
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
    for j in [Job::Scale(10), Job::Idle(10_000)] {
        assert_eq!(j.to_string().parse::<Job>(), Ok(j));
    }
    assert!("scale".parse::<Job>().is_err());
    assert!("big:10".parse::<Job>().is_err());
}
