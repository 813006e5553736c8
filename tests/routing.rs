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
    // The first occurrence of each field: an ICMP error quotes the packet it is about.
    let mut args = vec![
        "-r",
        cap.to_str().expect("utf-8"),
        "-Y",
        filter,
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-E",
        "occurrence=f",
    ];
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
    // The small pings are all answered; the last two, too large for h3's link, none.
    let pings = apps(&report, "ping");
    for p in &pings[..3] {
        assert_eq!(p["sent"], p["received"], "{p}");
    }
    for p in &pings[3..] {
        assert_eq!((p["sent"].as_u64(), p["received"].as_u64()), (Some(3), Some(0)), "{p}");
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
    // (Frames with one IP header only: an ICMP error quotes the request it is about.)
    let rows = fields(
        &cap,
        "icmp.type == 8 && ip.dst == 10.2.0.10 && count(ip.ttl) == 1 && ip.ttl > 32",
        &["frame.interface_name", "ip.ttl"],
    );
    let mut ttl: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in rows {
        ttl.entry(r[0].clone()).or_default().push(r[1].clone());
    }
    let on = |link: &str| ttl.get(link).cloned().unwrap_or_default();
    assert_eq!(on("h1:eth0<->sw1"), vec!["64"; 5], "{ttl:?}");
    assert_eq!(on("transit"), vec!["63"; 5], "{ttl:?}");
    assert_eq!(on("h2:eth0<->sw2"), vec!["62"; 5], "{ttl:?}");
    // IPv6: the hop limit likewise.
    let rows = fields(
        &cap,
        "icmpv6.type == 128 && ipv6.dst == fd00:3::10 && count(ipv6.hlim) == 1 && ipv6.hlim > 32",
        &["frame.interface_name", "ipv6.hlim"],
    );
    let lan3: Vec<&str> = rows.iter().filter(|r| r[0] == "lan3").map(|r| r[1].as_str()).collect();
    assert!(!lan3.is_empty() && lan3.iter().all(|h| *h == "62"), "{rows:?}");
    // Traceroute: time exceeded from each router in turn, as h1 receives them.
    let te = fields(&cap, "icmp.type == 11 && frame.interface_name == \"h1:eth0<->sw1\"", &["ip.src"]);
    let te: Vec<&str> = te.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(te, ["10.1.0.1", "10.1.0.1", "10.1.0.1", "10.0.12.2", "10.0.12.2", "10.0.12.2"], "{te:?}");
    let te6 = fields(&cap, "icmpv6.type == 3 && frame.interface_name == \"h1:eth0<->sw1\"", &["ipv6.src"]);
    let te6: Vec<&str> = te6.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(te6, ["fd00:1::1", "fd00:1::1", "fd00:1::1", "fd00:12::2", "fd00:12::2", "fd00:12::2"], "{te6:?}");
    // The MTU step at r2: fragmentation needed and packet too big, with the next link's MTU, for
    // each of the 3 + 3 large pings.
    let frag = fields(
        &cap,
        "icmp.type == 3 && icmp.code == 4 && frame.interface_name == \"transit\"",
        &["ip.src", "icmp.mtu"],
    );
    assert_eq!(frag.len(), 3, "{frag:?}");
    assert!(frag.iter().all(|r| r[0] == "10.0.12.2" && r[1] == "1280"), "{frag:?}");
    let ptb = fields(&cap, "icmpv6.type == 2 && frame.interface_name == \"transit\"", &["ipv6.src", "icmpv6.mtu"]);
    assert_eq!(ptb.len(), 3, "{ptb:?}");
    assert!(ptb.iter().all(|r| r[0] == "fd00:12::2" && r[1] == "1280"), "{ptb:?}");
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
    // TCP analysis over one link's frames: the capture holds each segment once per link it crossed.
    let retrans = |cap: &Path, link: &str| {
        // The link's frames in a file of their own, then TCP analysis over it.
        let one = cap.with_extension(format!("{}.pcapng", link.replace([':', '<', '>'], "_")));
        let read = format!("frame.interface_name == \"{link}\"");
        tshark(&["-r", cap.to_str().expect("utf-8"), "-Y", &read, "-w", one.to_str().expect("utf-8")]);
        common::count(&one, "tcp.analysis.retransmission || tcp.analysis.fast_retransmission")
    };
    let cap = capture_of(dir.path());
    let n = retrans(&cap, "client:eth0<->sw-a");
    assert!(n > 10, "{n} retransmissions");
    assert_eq!(retrans(&capture_of(clean.path()), "h1:eth0<->sw1"), 0);
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
