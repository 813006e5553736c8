//! Routers end to end: the shipped routed labs run, their captures read in tshark show what a
//! router does (TTL down by one per hop, errors from the right router), and `check` follows routes.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{apps, netlab, run_lab, tool, tshark};

fn capture_of(dir: &Path) -> std::path::PathBuf {
    dir.join("cap.pcapng")
}

fn run(lab: &str, dir: &Path) -> serde_json::Value {
    let cap = capture_of(dir);
    let (out, report) = run_lab(lab, &["--virtual-time", "--capture", cap.to_str().expect("utf-8")], dir);
    assert!(out.status.success(), "{lab}: {}", String::from_utf8_lossy(&out.stderr));
    report
}

/// tshark fields, one row a frame.
fn fields(cap: &Path, filter: &str, fields: &[&str]) -> Vec<Vec<String>> {
    let mut args = vec!["-r", cap.to_str().expect("utf-8"), "-Y", filter, "-T", "fields", "-E", "separator=|"];
    for f in fields {
        args.push("-e");
        args.push(f);
    }
    tshark(&args).lines().map(|l| l.split('|').map(str::to_string).collect()).collect()
}

#[test]
fn routed_lab_pings_across_two_routers_and_the_ttl_drops_by_one_a_hop() {
    let dir = tempfile::tempdir().expect("tmp");
    let report = run("labs/routed.json", dir.path());
    for p in apps(&report, "ping") {
        assert_eq!(p["sent"], p["received"], "{p}");
    }
    let routers = report["routers"].as_array().expect("routers");
    assert_eq!(routers.len(), 2);
    for r in routers {
        assert!(r["counters"]["forwarded"].as_u64().expect("forwarded") > 100, "{r}");
    }
    if !tool("tshark") {
        return;
    }
    let cap = capture_of(dir.path());
    // h1 → h2: the echo requests carry TTL 64 on h1's LAN, 63 on the transit link, 62 on h2's LAN.
    let rows = fields(&cap, "icmp.type == 8 && ip.dst == 10.2.0.10", &["frame.interface_name", "ip.ttl"]);
    let mut ttl: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in rows {
        ttl.entry(r[0].clone()).or_default().push(r[1].clone());
    }
    let on = |link: &str| ttl.get(link).cloned().unwrap_or_default();
    assert_eq!(on("h1:eth0<->sw1"), vec!["64"; 5], "{ttl:?}");
    assert_eq!(on("transit"), vec!["63"; 5], "{ttl:?}");
    assert_eq!(on("h2:eth0<->sw2"), vec!["62"; 5], "{ttl:?}");
    // IPv6: the hop limit likewise.
    let rows = fields(&cap, "icmpv6.type == 128 && ipv6.dst == fd00:3::10", &["frame.interface_name", "ipv6.hlim"]);
    let lan3: Vec<&str> = rows.iter().filter(|r| r[0] == "lan3").map(|r| r[1].as_str()).collect();
    assert!(!lan3.is_empty() && lan3.iter().all(|h| *h == "62"), "{rows:?}");
    // Nothing malformed anywhere.
    assert_eq!(common::count(&cap, "_ws.malformed || _ws.expert.severity == error"), 0);
}

#[test]
fn two_site_routes_between_its_subnets() {
    let dir = tempfile::tempdir().expect("tmp");
    let report = run("labs/two-site.json", dir.path());
    for p in apps(&report, "ping").into_iter().chain(apps(&report, "udp-echo")) {
        assert_eq!(p["sent"], p["received"], "{p}");
    }
    if !tool("tshark") {
        return;
    }
    let cap = capture_of(dir.path());
    // The laptop reaches the fileserver through hq-r: its frames to 10.10.2.10 go to hq-r's MAC.
    let hq_r: String = report["routers"][0]["interfaces"][0]["mac"].as_str().expect("mac").to_string();
    let dsts = fields(&cap, "ip.dst == 10.10.2.10 && frame.interface_name == \"laptop:eth0<->hq-sw\"", &["eth.dst"]);
    assert!(!dsts.is_empty() && dsts.iter().all(|d| d[0] == hq_r), "{dsts:?} vs {hq_r}");
    assert_eq!(common::count(&cap, "_ws.malformed || _ws.expert.severity == error"), 0);
}

#[test]
fn a_lossy_wan_retransmits_and_a_clean_one_does_not() {
    let dir = tempfile::tempdir().expect("tmp");
    let report = run("labs/lossy-wan.json", dir.path());
    let t = &apps(&report, "tcp-transfer")[0];
    assert_eq!(t["acked"], 4 * 1024 * 1024, "{t}");
    let wan = report["links"].as_array().expect("links").iter().find(|l| l["name"] == "wan").expect("wan").clone();
    let lost =
        wan["a_to_b"]["drops"]["loss"].as_u64().unwrap_or(0) + wan["b_to_a"]["drops"]["loss"].as_u64().unwrap_or(0);
    assert!(lost > 10, "the WAN loses frames: {wan}");
    // Goodput below the 10 Mbit/s of the WAN.
    let mbps = t["goodput_mbps"].as_f64().expect("goodput");
    assert!(mbps > 0.1 && mbps < 10.0, "{mbps}");
    let clean = tempfile::tempdir().expect("tmp");
    run("labs/routed.json", clean.path());
    if !tool("tshark") {
        return;
    }
    let cap = capture_of(dir.path());
    let retrans = common::count(&cap, "tcp.analysis.retransmission || tcp.analysis.fast_retransmission");
    assert!(retrans > 10, "{retrans} retransmissions");
    assert_eq!(common::count(&capture_of(clean.path()), "tcp.analysis.retransmission"), 0);
    assert_eq!(common::count(&cap, "_ws.malformed"), 0);
}

#[test]
fn check_names_the_hop_where_a_path_breaks() {
    let out = netlab().args(["check", "tests/invalid_labs/95-routes.json"]).output().expect("netlab");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("packets to 10.5.0.10 loop between routers: `r1` → `r2` → `r1`"), "{err}");
    assert!(err.contains("replies to 10.1.0.10 reach router `r2`, which has no route to it"), "{err}");
    assert!(err.contains("95-routes.json:5:79"), "{err}");
}
