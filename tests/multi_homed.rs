//! Multi-homed hosts, run headless in virtual time (`tests/multi-homed.json`): a host on two LANs
//! reaches hosts on both and a third LAN behind a router by a route of its own, each flow by the
//! interface its route says; a server on both LANs answers on each interface by that interface;
//! and a host's bad routes are located diagnostics.

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;

use common::{apps, run_lab};
use serde_json::Value;

const LAB: &str = "tests/multi-homed.json";

/// The lab as JSON, to change for a variant.
fn lab() -> Value {
    serde_json::from_str(&std::fs::read_to_string(common::root().join(LAB)).expect("lab")).expect("JSON")
}

/// Writes `lab` into `dir` and runs it in virtual time; returns the report.
fn run_variant(dir: &std::path::Path, lab: &Value) -> Value {
    let path = dir.join("lab.json");
    std::fs::write(&path, lab.to_string()).expect("write");
    run_lab(path.to_str().expect("utf-8"), &["--virtual-time", "--no-capture"], dir).1
}

/// The counters of the link named `name` in a report.
fn link<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["links"].as_array().expect("links").iter().find(|l| l["name"] == name).unwrap_or_else(|| panic!("{name}"))
}

/// Frames a link carried, both ways.
fn frames(r: &Value, name: &str) -> u64 {
    let l = link(r, name);
    l["a_to_b"]["sent_frames"].as_u64().unwrap() + l["b_to_a"]["sent_frames"].as_u64().unwrap()
}

fn app<'a>(r: &'a Value, label: &str, to: &str) -> &'a Value {
    r["apps"]
        .as_array()
        .expect("apps")
        .iter()
        .find(|a| a["app"] == label && (to.is_empty() || a["to"] == to))
        .unwrap_or_else(|| panic!("{label} to {to}: {r:#}"))
}

/// The IP addresses each captured link carried (IP sources and destinations, ARP senders and targets).
fn addresses_by_link(capture: &std::path::Path) -> std::collections::BTreeMap<String, BTreeSet<IpAddr>> {
    let mut by_link: std::collections::BTreeMap<String, BTreeSet<IpAddr>> = std::collections::BTreeMap::new();
    for f in common::read_pcapng(capture) {
        let seen = by_link.entry(f.link.clone()).or_default();
        match common::decode(&f.data).unwrap_or_else(|e| panic!("a frame on {} does not decode: {e}", f.link)) {
            common::Packet::Arp { sender, target, .. } => {
                seen.insert(sender);
                seen.insert(target);
            }
            common::Packet::Ip { src, dst, .. } => {
                seen.insert(src);
                seen.insert(dst);
            }
        }
    }
    by_link
}

/// Whether `ip` is in `prefix` (`10.1.0.0/24`).
fn within(ip: IpAddr, prefix: &str) -> bool {
    let (net, len) = prefix.split_once('/').expect("a prefix");
    let (net, len): (IpAddr, u32) = (net.parse().expect("an address"), len.parse().expect("a length"));
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => len == 0 || (u32::from(a) ^ u32::from(n)) >> (32 - len) == 0,
        (IpAddr::V6(a), IpAddr::V6(n)) => len == 0 || (u128::from(a) ^ u128::from(n)) >> (128 - len) == 0,
        _ => false,
    }
}

#[test]
fn a_host_on_two_lans_reaches_both_and_a_routed_lan_and_a_server_answers_on_both() {
    let dir = tempfile::tempdir().expect("tmp");
    let capture = dir.path().join("mh.pcapng");
    let (_, r) = run_lab(LAB, &["--virtual-time", "--capture", capture.to_str().unwrap()], dir.path());
    assert_eq!(r["ended"], "apps-finished", "{r:#}");
    // Every ping of mh answered: to a (lan1, IPv4 and IPv6), to b (lan2), to far (through r).
    for p in apps(&r, "ping") {
        assert_eq!((p["sent"].as_u64(), p["loss_pct"].as_f64()), (p["received"].as_u64(), Some(0.0)), "{p}");
        assert!(p["sent"].as_u64() > Some(0), "{p}");
    }
    // Every transfer complete, and each sink got what was sent to it, intact.
    for t in apps(&r, "tcp-transfer") {
        assert_eq!((&t["acked"], &t["error"]), (&t["bytes"], &Value::Null), "{t}");
    }
    for (label, bytes) in [("a/tcp-sink", 1 << 20), ("b/tcp-sink", 1 << 20), ("far/tcp-sink", 512 << 10)] {
        let s = app(&r, label, "");
        assert_eq!((s["bytes"].as_u64(), s["corrupt_bytes"].as_u64()), (Some(bytes), Some(0)), "{s}");
    }
    // srv answered a on its eth0 and b on its eth1: echoes over TCP and UDP, and a transfer.
    for (label, to) in [("a/tcp-echo", "10.1.0.30:7"), ("b/tcp-echo", "10.2.0.30:7")] {
        let e = app(&r, label, to);
        assert_eq!((e["echoed"].as_u64(), &e["error"]), (Some(5), &Value::Null), "{e}");
    }
    assert_eq!(app(&r, "a/udp-echo", "10.1.0.30:7")["received"], 5);
    assert_eq!(app(&r, "srv/tcp-echo-server", "")["connections"], 2);
    assert_eq!(app(&r, "srv/udp-echo-server", "")["datagrams"], 5);
    let sink = app(&r, "srv/tcp-sink", "");
    assert_eq!((sink["connections"].as_u64(), sink["bytes"].as_u64()), (Some(1), Some(256 << 10)), "{sink}");
    // The router forwarded mh's route's traffic, and nothing was dropped anywhere.
    assert!(r["routers"][0]["counters"]["forwarded"].as_u64() > Some(0), "{r:#}");
    for l in r["links"].as_array().expect("links") {
        assert_eq!((&l["a_to_b"]["drops"], &l["b_to_a"]["drops"]), (&serde_json::json!({}), &serde_json::json!({})));
    }

    // Each link carried the addresses of its own LAN only: no host forwards between its
    // interfaces, and each of mh's flows left by the interface of its route.
    let seen = addresses_by_link(&capture);
    let only = |name: &str, prefixes: &[&str]| {
        let addrs = seen.get(name).unwrap_or_else(|| panic!("nothing captured on {name}"));
        let stray: Vec<&IpAddr> = addrs.iter().filter(|ip| !prefixes.iter().any(|p| within(**ip, p))).collect();
        assert!(stray.is_empty(), "{name} carried {stray:?} (of {addrs:?})");
        addrs
    };
    // IPv6 neighbour discovery on lan1 reaches solicited-node multicast addresses.
    let lan1 = only("mh-lan1", &["10.1.0.0/24", "fd00:1::/64", "ff02::/16"]);
    assert!(lan1.contains(&"10.1.0.20".parse().unwrap()) && lan1.contains(&"fd00:1::20".parse().unwrap()));
    let lan2 = only("mh-lan2", &["10.2.0.0/24", "10.9.0.0/24"]);
    assert!(lan2.contains(&"10.2.0.20".parse().unwrap()) && lan2.contains(&"10.9.0.10".parse().unwrap()));
    let srv1 = only("srv-lan1", &["10.1.0.0/24", "fd00:1::/64", "ff02::/16"]);
    assert!(srv1.contains(&"10.1.0.30".parse().unwrap()));
    let srv2 = only("srv-lan2", &["10.2.0.0/24", "10.9.0.0/24"]);
    assert!(srv2.contains(&"10.2.0.30".parse().unwrap()));
    let far = only("lan9", &["10.2.0.10/32", "10.9.0.0/24"]);
    assert!(far.contains(&"10.2.0.10".parse().unwrap()), "mh's packets to far come from its eth1: {far:?}");
}

/// Keeps only `mh`'s apps whose target is in `keep` (and no other client), so that every frame a
/// link carries belongs to those flows.
fn only_mh_to(keep: &[&str]) -> Value {
    let mut lab = lab();
    for (name, node) in lab["nodes"].as_object_mut().expect("nodes") {
        let Some(apps) = node.get_mut("apps").and_then(Value::as_array_mut) else { continue };
        apps.retain(|a| {
            let to = a["to"].as_str();
            match to {
                None => true,
                Some(to) => name == "mh" && keep.iter().any(|k| to.split(':').next() == Some(*k)),
            }
        });
    }
    lab
}

#[test]
fn packets_leave_by_the_interface_of_their_route_and_no_other() {
    let dir = tempfile::tempdir().expect("tmp");
    // mh to a only (ping and transfer): lan1's side carries it all, lan2's side nothing at all.
    let r = run_variant(dir.path(), &only_mh_to(&["a"]));
    assert_eq!(apps(&r, "ping").len(), 2, "{r:#}");
    assert!(apps(&r, "ping").iter().all(|p| p["received"] == p["sent"]), "{r:#}");
    assert_eq!(app(&r, "a/tcp-sink", "")["bytes"], 1 << 20);
    assert!(frames(&r, "mh-lan1") > 700, "{}", link(&r, "mh-lan1"));
    for quiet in ["mh-lan2", "b-lan2", "srv-lan2", "r-lan2", "lan9"] {
        assert_eq!(frames(&r, quiet), 0, "{quiet}: {}", link(&r, quiet));
    }
    // mh to b only: the other way round.
    let r = run_variant(dir.path(), &only_mh_to(&["b"]));
    assert_eq!(app(&r, "b/tcp-sink", "")["bytes"], 1 << 20);
    assert!(frames(&r, "mh-lan2") > 700, "{}", link(&r, "mh-lan2"));
    for quiet in ["mh-lan1", "a-lan1", "srv-lan1", "lan9"] {
        assert_eq!(frames(&r, quiet), 0, "{quiet}: {}", link(&r, quiet));
    }
    // mh to far through r, by a `default` route pinned to eth1 with `dev`: lan1 stays quiet.
    let mut lab = only_mh_to(&["far"]);
    lab["nodes"]["mh"]["routes"] = serde_json::json!([ { "to": "default", "via": "10.2.0.1", "dev": "eth1" } ]);
    let r = run_variant(dir.path(), &lab);
    let p = app(&r, "mh/ping", "10.9.0.10");
    assert_eq!((p["sent"].as_u64(), p["received"].as_u64()), (Some(5), Some(5)), "{p}");
    assert_eq!(app(&r, "far/tcp-sink", "")["bytes"], 512 << 10);
    assert!(frames(&r, "lan9") > 300 && frames(&r, "mh-lan2") > 300, "{:#}", r["links"]);
    assert_eq!(frames(&r, "mh-lan1"), 0, "{}", link(&r, "mh-lan1"));
    // The same with the route's prefix changed to miss far: no route, so check refuses the lab.
    lab["nodes"]["mh"]["routes"] = serde_json::json!([ { "to": "10.8.0.0/16", "via": "10.2.0.1" } ]);
    let path = dir.path().join("lab.json");
    std::fs::write(&path, lab.to_string()).expect("write");
    let out = common::netlab().args(["check", path.to_str().unwrap()]).output().expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("10.9.0.10 is on no subnet of `mh`, which has no IPv4 gateway or route to it"), "{err}");
}

#[test]
fn a_server_on_two_lans_answers_each_on_the_interface_it_was_called_on() {
    // a calls srv at its lan2 address: a reaches it through no link of its own, so check refuses.
    let mut lab = lab();
    lab["nodes"]["a"]["apps"] = serde_json::json!([ { "kind": "tcp-echo", "to": "10.2.0.30:7" } ]);
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("lab.json");
    std::fs::write(&path, lab.to_string()).expect("write");
    let out = common::netlab().args(["check", path.to_str().unwrap()]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("10.2.0.30 is on no subnet of `a`, which has no IPv4 gateway"), "{err}");

    // srv's replies to far (behind r) leave by eth1, which needs a way there: without one check
    // says so; with a route on eth1 the echo is answered by eth1.
    let mut lab = only_mh_to(&[]);
    lab["nodes"]["far"]["apps"] = serde_json::json!([ { "kind": "tcp-echo", "to": "10.2.0.30:7", "count": 3 },
                                                      { "kind": "udp-echo", "to": "10.2.0.30:7", "count": 3 } ]);
    std::fs::write(&path, lab.to_string()).expect("write");
    let out = common::netlab().args(["check", path.to_str().unwrap()]).output().expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("replies from `srv` to 10.9.0.10 (`far`) leave by `eth1`, the interface of 10.2.0.30, which has no route to it"),
        "{err}"
    );
    lab["nodes"]["srv"]["routes"] = serde_json::json!([ { "to": "10.9.0.0/24", "via": "10.2.0.1", "dev": "eth1" } ]);
    let r = run_variant(dir.path(), &lab);
    let e = app(&r, "far/tcp-echo", "10.2.0.30:7");
    assert_eq!((e["echoed"].as_u64(), &e["error"]), (Some(3), &Value::Null), "{e}");
    assert_eq!(app(&r, "far/udp-echo", "10.2.0.30:7")["received"], 3);
    assert!(frames(&r, "srv-lan2") > 0);
    assert_eq!(frames(&r, "srv-lan1"), 0, "{}", link(&r, "srv-lan1"));
}

#[test]
fn a_snapshot_shows_every_interface_and_where_each_socket_and_neighbour_is() {
    let text = std::fs::read_to_string(common::root().join(LAB)).expect("lab");
    let lab = netlab::topology::load_str(&text, "multi-homed.json").expect("valid");
    let mut sim = netlab::sim::Sim::new(&lab, None);
    let until = netlab::time::SimTime::from_millis(700);
    let mut now = netlab::time::SimTime::ZERO;
    for _ in 0..1_000_000 {
        sim.step(now, &mut ());
        match sim.next_deadline() {
            Some(t) if t <= until => now = t,
            _ => break,
        }
    }
    let snap = sim.snapshot();
    let host = |n: &str| snap.hosts.iter().find(|h| h.name == n).expect("host");
    let mh = host("mh");
    let names: Vec<&str> = mh.interfaces.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["eth0", "eth1"]);
    assert_eq!(mh.interfaces[1].addresses, ["10.2.0.10/24"]);
    let dev = |ip: &str| mh.neighbours.iter().find(|n| n.ip.to_string() == ip).map(|n| n.dev.as_str());
    assert_eq!((dev("10.1.0.20"), dev("10.2.0.20")), (Some("eth0"), Some("eth1")), "{:?}", mh.neighbours);
    // The transfers at 600 ms: each socket on the interface of its route.
    let tcp = |remote: &str| mh.sockets.iter().find(|s| s.remote.as_deref() == Some(remote)).map(|s| s.dev.as_str());
    assert_eq!((tcp("10.1.0.20:9"), tcp("10.2.0.20:9")), (Some("eth0"), Some("eth1")), "{:?}", mh.sockets);
    let route = mh.routes.iter().find(|r| r.to == "10.9.0.0/16").expect("the static route");
    assert_eq!((route.via.as_deref(), route.dev.as_str(), route.connected), (Some("10.2.0.1"), "eth1", false));
    // srv listens on both interfaces, TCP and UDP.
    let srv = host("srv");
    for d in ["eth0", "eth1"] {
        let on = |kind: &str, state: Option<&str>| {
            srv.sockets.iter().any(|s| s.dev == d && s.kind == kind && s.state.as_deref() == state)
        };
        assert!(on("tcp", Some("LISTEN")) && on("udp", None), "{d}: {:?}", srv.sockets);
    }
}

#[test]
fn http_streams_traceroutes_and_retransmissions_work_on_each_interface() {
    let mut lab = lab();
    let nodes = lab["nodes"].as_object_mut().expect("nodes");
    // srv serves HTTP and receives streams on both interfaces; a calls it on lan1, b on lan2.
    nodes["srv"]["apps"] = serde_json::json!([
        { "kind": "http-server", "port": 80, "body": 20000 },
        { "kind": "udp-stream-server", "port": 5001 }
    ]);
    for (host, srv) in [("a", "10.1.0.30"), ("b", "10.2.0.30")] {
        nodes[host]["apps"] = serde_json::json!([
            { "kind": "tcp-sink", "port": 9 },
            { "kind": "http-get", "to": format!("{srv}:80"), "count": 2 },
            { "kind": "udp-stream", "to": format!("{srv}:5001"), "rate": "1Mbit", "size": 500, "count": 100, "start": "500ms" }
        ]);
    }
    // mh: a transfer by eth0 over a lossy link and one by eth1 over a clean one; by eth1 too a
    // traceroute through r to far, a request and a stream to srv.
    nodes["mh"]["apps"] = serde_json::json!([
        { "kind": "tcp-transfer", "to": "a:9", "bytes": "512KiB" },
        { "kind": "tcp-transfer", "to": "b:9", "bytes": "512KiB" },
        { "kind": "traceroute", "to": "far", "start": "1100ms" },
        { "kind": "http-get", "to": "10.2.0.30:80", "start": "2200ms" },
        { "kind": "udp-stream", "to": "10.2.0.30:5001", "rate": "1Mbit", "size": 500, "count": 50, "start": "3300ms" }
    ]);
    for l in lab["links"].as_array_mut().expect("links") {
        if l["name"] == "mh-lan1" {
            l["impair"]["loss"] = serde_json::json!(0.02);
        }
    }
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("lab.json");
    std::fs::write(&path, lab.to_string()).expect("write");
    let capture = dir.path().join("apps.pcapng");
    let (_, r) =
        run_lab(path.to_str().expect("utf-8"), &["--virtual-time", "--capture", capture.to_str().unwrap()], dir.path());
    assert_eq!(r["ended"], "apps-finished", "{r:#}");

    // HTTP: every request answered whole, by the interface each came in on.
    for (label, to, count) in
        [("a/http-get", "10.1.0.30:80", 2), ("b/http-get", "10.2.0.30:80", 2), ("mh/http-get", "10.2.0.30:80", 1)]
    {
        let g = app(&r, label, to);
        assert_eq!(
            (g["completed"].as_u64(), g["failed"].as_u64(), &g["error"]),
            (Some(count), Some(0), &Value::Null),
            "{g}"
        );
        assert_eq!((g["status"].as_u64(), g["body_bytes"].as_u64()), (Some(200), Some(count * 20000)), "{g}");
    }
    let http = app(&r, "srv/http-server", "");
    assert_eq!((http["connections"].as_u64(), http["requests"].as_u64()), (Some(3), Some(5)), "{http}");
    assert_eq!(http["responses"], serde_json::json!({ "200": 5 }), "{http}");
    // Streams: three senders, one on lan1 and two on lan2, each received whole.
    for (label, to, count) in [
        ("a/udp-stream", "10.1.0.30:5001", 100),
        ("b/udp-stream", "10.2.0.30:5001", 100),
        ("mh/udp-stream", "10.2.0.30:5001", 50),
    ] {
        assert_eq!(app(&r, label, to)["sent"], count, "{label}");
    }
    let rx = app(&r, "srv/udp-stream-server", "");
    assert_eq!(
        (rx["streams"].as_u64(), rx["received"].as_u64(), rx["lost"].as_u64()),
        (Some(3), Some(250), Some(0)),
        "{rx}"
    );
    // The traceroute left by eth1, its route's interface: r first, then far.
    let t = &apps(&r, "traceroute")[0];
    assert_eq!((t["reached"].as_bool(), t["hop_count"].as_u64()), (Some(true), Some(2)), "{t}");
    for (hop, from) in [(0, "10.2.0.1"), (1, "10.9.0.10")] {
        let probes = t["hops"][hop]["probes"].as_array().expect("probes");
        assert!(!probes.is_empty() && probes.iter().all(|p| p["from"] == from), "{t}");
    }
    // Each transfer's segments are counted on the interface it sends by: retransmissions over the
    // lossy eth0, none over eth1.
    for (to, lossy) in [("10.1.0.20:9", true), ("10.2.0.20:9", false)] {
        let x = app(&r, "mh/tcp-transfer", to);
        assert_eq!((x["acked"].as_u64(), &x["error"]), (Some(512 << 10), &Value::Null), "{x}");
        // 512 KiB in segments of at most 1460 bytes: at least 360 of them, and a SYN and a FIN.
        assert!(x["segments"].as_u64() >= Some(362), "{x}");
        let re = x["retransmissions"].as_u64().expect("retransmissions");
        assert_eq!(re > 0, lossy, "{x}");
        assert_eq!(x["retransmitted_bytes"].as_u64() > Some(0), lossy, "{x}");
    }
    assert!(link(&r, "mh-lan1")["a_to_b"]["drops"]["loss"].as_u64() > Some(0), "{}", link(&r, "mh-lan1"));

    // Each of srv's and mh's links carried its own LAN's addresses only.
    let seen = addresses_by_link(&capture);
    for (name, prefixes) in [
        ("srv-lan1", &["10.1.0.0/24", "fd00:1::/64", "ff02::/16"][..]),
        ("srv-lan2", &["10.2.0.0/24"][..]),
        ("mh-lan1", &["10.1.0.0/24", "fd00:1::/64", "ff02::/16"][..]),
        ("mh-lan2", &["10.2.0.0/24", "10.9.0.0/24"][..]),
    ] {
        let addrs = seen.get(name).unwrap_or_else(|| panic!("nothing captured on {name}"));
        let stray: Vec<&IpAddr> = addrs.iter().filter(|ip| !prefixes.iter().any(|p| within(**ip, p))).collect();
        assert!(stray.is_empty(), "{name} carried {stray:?} (of {addrs:?})");
    }
}
