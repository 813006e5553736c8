//! The HTTP, UDP stream and traceroute apps and the transfer's retransmissions and goodput series,
//! each in a small lab run headless in virtual time, read from the `--report` JSON.

mod common;

use std::path::Path;

use common::{apps, run_lab, tool};
use serde_json::{json, Value};

/// Writes `lab` into `dir` and runs it in virtual time with `extra` flags.
fn run(lab: &Value, dir: &Path, extra: &[&str]) -> Value {
    let file = dir.join(format!("{}.json", lab["name"].as_str().expect("a name")));
    std::fs::write(&file, serde_json::to_string_pretty(lab).expect("JSON")).expect("write the lab");
    let mut args = vec!["--virtual-time"];
    args.extend_from_slice(extra);
    if !extra.contains(&"--capture") {
        args.push("--no-capture");
    }
    let (_, r) = run_lab(file.to_str().expect("utf-8"), &args, dir);
    r
}

/// Two hosts, `c` (10.0.0.1, fd00::1) and `s` (10.0.0.2, fd00::2), joined by one link.
fn pair(name: &str, c_apps: Value, s_apps: Value, impair: Value) -> Value {
    json!({
        "name": name,
        "nodes": {
            "c": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.1/24", "fd00::1/64"] } }, "apps": c_apps },
            "s": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.2/24", "fd00::2/64"] } }, "apps": s_apps }
        },
        "links": [ { "a": "c:eth0", "b": "s:eth0", "impair": impair } ]
    })
}

fn app<'a>(r: &'a Value, label: &str) -> &'a Value {
    r["apps"]
        .as_array()
        .expect("apps")
        .iter()
        .find(|a| a["app"] == label)
        .unwrap_or_else(|| panic!("no {label}: {r:#}"))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn http_get_gets_the_status_and_the_exact_body() {
    let dir = tempfile::tempdir().expect("tmp");
    let lab = pair(
        "http",
        json!([
            { "kind": "http-get", "to": "s:80", "path": "/big", "count": 3 },
            { "kind": "http-get", "to": "s:81", "path": "/missing", "start": "1s" },
            { "kind": "http-get", "to": "s:80", "family": "ipv6", "count": 2, "keep_alive": false, "start": "2s" }
        ]),
        json!([
            { "kind": "http-server", "port": 80, "body": "1MiB" },
            { "kind": "http-server", "port": 81, "body": 100, "status": 404 }
        ]),
        json!({ "latency": "2ms", "rate": "100Mbit" }),
    );
    let r = run(&lab, dir.path(), &[]);
    assert_eq!(r["ended"], "apps-finished", "{r:#}");
    let big = &apps(&r, "http-get")[0];
    assert_eq!(
        (big["status"].as_u64(), big["completed"].as_u64(), big["failed"].as_u64()),
        (Some(200), Some(3), Some(0))
    );
    assert_eq!(big["statuses"], json!({ "200": 3 }));
    assert_eq!(big["body_bytes"], 3 * 1024 * 1024);
    assert_eq!(big["connections"], 1, "keep-alive: one connection for three requests");
    let reqs = big["requests"].as_array().expect("requests");
    assert_eq!(reqs.len(), 3);
    // One-way 2 ms. The first request opens the connection (a round trip, and ARP first), then asks
    // (another); the others ask on it: one round trip to the first byte.
    let one_way = 2.0;
    let first = &reqs[0];
    assert!(f(&first["connect_ms"]) >= 2.0 * one_way, "{first}");
    assert!(f(&first["ttfb_ms"]) >= 4.0 * one_way, "{first}");
    for q in &reqs[1..] {
        assert_eq!(q["connect_ms"], Value::Null, "{q}");
        let ttfb = f(&q["ttfb_ms"]);
        assert!((2.0 * one_way..2.0 * one_way + 1.0).contains(&ttfb), "{q}");
    }
    // 1 MiB at 100 Mbit/s is 84 ms on the wire at least, after the first byte.
    for q in reqs {
        assert_eq!(q["body_bytes"], 1024 * 1024);
        assert!(f(&q["ttlb_ms"]) >= f(&q["ttfb_ms"]) + 83.0, "{q}");
    }
    assert!(f(&big["ttfb"]["min_ms"]) <= f(&big["ttfb"]["max_ms"]));

    let missing = &apps(&r, "http-get")[1];
    assert_eq!((missing["status"].as_u64(), missing["body_bytes"].as_u64()), (Some(404), Some(100)));
    assert_eq!(missing["path"], "/missing");

    // Without keep-alive, each request has its connection (over IPv6 here).
    let v6 = &apps(&r, "http-get")[2];
    assert_eq!((v6["to"].as_str(), v6["completed"].as_u64()), (Some("[fd00::2]:80"), Some(2)));
    assert_eq!(v6["connections"], 2);
    assert!(v6["requests"].as_array().unwrap().iter().all(|q| q["connect_ms"].is_number()));

    let servers = apps(&r, "http-server");
    assert_eq!(servers[0]["requests"], 5);
    assert_eq!(servers[0]["responses"], json!({ "200": 5 }));
    assert_eq!(servers[0]["body_bytes"], 5 * 1024 * 1024);
    assert_eq!((servers[0]["connections"].as_u64(), servers[0]["bad_requests"].as_u64()), (Some(3), Some(0)));
    assert_eq!(servers[1]["responses"], json!({ "404": 1 }));
}

#[test]
fn garbage_to_an_http_server_is_answered_400_and_the_server_serves_on() {
    let dir = tempfile::tempdir().expect("tmp");
    // A TCP echo client sends binary (the transfer pattern starts with a NUL byte) to the server.
    let lab = pair(
        "garbage",
        json!([
            { "kind": "tcp-echo", "to": "s:80", "count": 2, "size": 300, "timeout": "2s" },
            { "kind": "http-get", "to": "s:80", "start": "3s" }
        ]),
        json!([{ "kind": "http-server", "port": 80, "body": 10 }]),
        json!({ "latency": "1ms" }),
    );
    let r = run(&lab, dir.path(), &[]);
    let server = &apps(&r, "http-server")[0];
    assert_eq!(server["bad_requests"], 1, "{server}");
    assert_eq!(server["responses"], json!({ "400": 1, "200": 1 }));
    // The echo client got an HTTP answer, not its echo, and then a closed connection.
    let echo = &apps(&r, "tcp-echo")[0];
    assert_eq!(echo["echoed"], 0, "{echo}");
    assert!(echo["error"].is_string() || echo["mismatched"].as_u64() > Some(0), "{echo}");
    assert_eq!(apps(&r, "http-get")[0]["status"], 200);
}

#[test]
fn http_in_a_capture_decodes_in_tshark() {
    let dir = tempfile::tempdir().expect("tmp");
    let lab = pair(
        "http-capture",
        json!([
            { "kind": "http-get", "to": "s:80", "count": 2 },
            { "kind": "http-get", "to": "s:8080", "path": "/nope", "start": "500ms" }
        ]),
        json!([
            { "kind": "http-server", "port": 80, "body": "20KiB" },
            { "kind": "http-server", "port": 8080, "status": 404, "body": 9 }
        ]),
        json!({ "latency": "1ms" }),
    );
    let cap = dir.path().join("http.pcapng");
    let r = run(&lab, dir.path(), &["--capture", cap.to_str().unwrap()]);
    assert_eq!(apps(&r, "http-get")[0]["statuses"], json!({ "200": 2 }));
    // Read back in Rust: every frame decodes with valid checksums.
    let frames = common::read_pcapng(&cap);
    let packets = common::decode_all(&frames);
    assert!(packets.iter().all(|(_, p)| p.checksums_ok()));
    if !tool("tshark") {
        return;
    }
    let c = |filter: &str| common::count(&cap, filter);
    assert_eq!(c("http.request.method == \"GET\""), 3);
    assert_eq!(c("http.response.code == 200"), 2);
    // 8080 is an HTTP port to tshark too.
    assert_eq!(c("http.response.code == 404"), 1);
    assert_eq!(c("http.content_length == 20480"), 2);
    assert_eq!(c("_ws.malformed || _ws.expert.severity >= error"), 0);
}

#[test]
fn a_udp_stream_on_a_clean_link_has_no_loss_jitter_or_reordering() {
    let dir = tempfile::tempdir().expect("tmp");
    let lab = pair(
        "stream-clean",
        json!([{ "kind": "udp-stream", "to": "s:5001", "rate": "2Mbit", "size": 500, "duration": "2s" }]),
        json!([{ "kind": "udp-stream-server", "port": 5001 }]),
        json!({ "latency": "3ms", "rate": "100Mbit" }),
    );
    let r = run(&lab, dir.path(), &[]);
    // 2 Mbit/s of 500-byte datagrams: one every 2 ms, 1000 in 2 s.
    let tx = &apps(&r, "udp-stream")[0];
    assert_eq!(
        (tx["count"].as_u64(), tx["sent"].as_u64(), tx["send_errors"].as_u64()),
        (Some(1000), Some(1000), Some(0))
    );
    assert!((f(&tx["seconds"]) - 1.998).abs() < 1e-9, "{tx}");
    let rx = &apps(&r, "udp-stream-server")[0];
    assert_eq!(rx["received"], 1000, "{rx}");
    assert_eq!((rx["lost"].as_u64(), rx["reordered"].as_u64(), rx["duplicates"].as_u64()), (Some(0), Some(0), Some(0)));
    assert_eq!((rx["corrupt"].as_u64(), rx["malformed"].as_u64()), (Some(0), Some(0)));
    // The hello resolved the neighbour first: every datagram took the same time.
    assert_eq!(f(&rx["jitter_us"]), 0.0, "{rx}");
    let d = &rx["delay"];
    assert_eq!(f(&d["min_ms"]), f(&d["max_ms"]), "{rx}");
    // 3 ms, and 542 bytes on the wire at 100 Mbit/s (43.36 us).
    assert!((f(&d["min_ms"]) - 3.04336).abs() < 1e-6, "{rx}");
    assert_eq!(rx["per_stream"][0]["ended"], true);
}

#[test]
fn a_udp_stream_over_a_lossy_link_reports_the_loss() {
    let dir = tempfile::tempdir().expect("tmp");
    let lab = pair(
        "stream-loss",
        json!([{ "kind": "udp-stream", "to": "s:5001", "rate": "10Mbit", "size": 1000, "count": 2000 }]),
        json!([{ "kind": "udp-stream-server", "port": 5001 }]),
        json!({ "latency": "1ms", "loss": 0.1 }),
    );
    let r = run(&lab, dir.path(), &[]);
    let rx = &apps(&r, "udp-stream-server")[0];
    let (received, lost) = (rx["received"].as_u64().unwrap(), rx["lost"].as_u64().unwrap());
    assert_eq!(received + lost, 2000, "loss counts against the sender's count: {rx}");
    // 10% of 2000 is 200, with a standard deviation of 13.4: within four of them.
    assert!((146..=254).contains(&lost), "{rx}");
    assert!((f(&rx["loss_pct"]) - lost as f64 / 20.0).abs() < 1e-9);
    // Every lost datagram is a frame the link lost (besides an ARP request or the hello).
    let drops = r["links"][0]["a_to_b"]["drops"]["loss"].as_u64().unwrap();
    assert!(lost <= drops && drops <= lost + 4, "lost {lost}, link losses {drops}");
    assert_eq!((rx["reordered"].as_u64(), rx["duplicates"].as_u64()), (Some(0), Some(0)));
}

#[test]
fn a_udp_stream_sharing_a_slow_link_with_a_transfer_sees_jitter() {
    let dir = tempfile::tempdir().expect("tmp");
    // The transfer fills the 10 Mbit/s queue in bursts: the stream's datagrams wait behind them
    // for varying times.
    let lab = pair(
        "stream-jitter",
        json!([
            { "kind": "udp-stream", "to": "s:5001", "rate": "1Mbit", "size": 200, "duration": "1s" },
            { "kind": "tcp-transfer", "to": "s:9", "bytes": "1MiB", "start": "100ms" }
        ]),
        json!([{ "kind": "udp-stream-server", "port": 5001 }, { "kind": "tcp-sink", "port": 9 }]),
        json!({ "latency": "1ms", "rate": "10Mbit", "queue": 50 }),
    );
    let r = run(&lab, dir.path(), &[]);
    let rx = &apps(&r, "udp-stream-server")[0];
    assert_eq!(rx["lost"], 0, "a host's queue backpressures, never drops: {rx}");
    assert!(f(&rx["jitter_us"]) > 100.0, "{rx}");
    let d = &rx["delay"];
    assert!(f(&d["max_ms"]) > f(&d["min_ms"]) + 1.0, "{rx}");
}

#[test]
fn traceroute_on_a_lan_lists_one_hop_the_destination() {
    let dir = tempfile::tempdir().expect("tmp");
    let lab = json!({
        "name": "trace-lan",
        "nodes": {
            "sw": { "kind": "switch" },
            "c": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.1/24", "fd00::1/64"] } },
                   "apps": [
                       { "kind": "traceroute", "to": "s" },
                       { "kind": "traceroute", "to": "s", "proto": "icmp", "start": "1s" },
                       { "kind": "traceroute", "to": "s", "family": "ipv6", "start": "2s" },
                       { "kind": "traceroute", "to": "fd00::2", "proto": "icmp", "probes": 5, "start": "3s" }
                   ] },
            "s": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.2/24", "fd00::2/64"] } } }
        },
        "links": [
            { "a": "c:eth0", "b": "sw", "impair": { "latency": "1ms" } },
            { "a": "s:eth0", "b": "sw", "impair": { "latency": "1ms" } }
        ]
    });
    let r = run(&lab, dir.path(), &[]);
    let traces = apps(&r, "traceroute");
    let want = [("10.0.0.2", "udp", 3), ("10.0.0.2", "icmp", 3), ("fd00::2", "udp", 3), ("fd00::2", "icmp", 5)];
    for (t, (to, proto, probes)) in traces.iter().zip(want) {
        assert_eq!((t["to"].as_str(), t["proto"].as_str()), (Some(to), Some(proto)), "{t}");
        assert_eq!((t["reached"].as_bool(), t["hop_count"].as_u64()), (Some(true), Some(1)), "{t}");
        let hop = &t["hops"][0];
        assert_eq!((hop["ttl"].as_u64(), &hop["note"]), (Some(1), &Value::Null));
        let ps = hop["probes"].as_array().unwrap();
        assert_eq!(ps.len(), probes);
        for p in ps {
            assert_eq!(p["from"], to, "{t}");
            // Two links each way: 4 ms, and the first probes wait for ARP or NDP too.
            assert!(f(&p["rtt_ms"]) >= 4.0 && f(&p["rtt_ms"]) < 20.0, "{t}");
        }
    }
    // The summary lists the hop as traceroute prints it.
    assert_eq!(traces.len(), 4);
}

#[test]
fn a_transfer_counts_its_retransmissions_and_acknowledged_bytes_per_interval() {
    let dir = tempfile::tempdir().expect("tmp");
    let transfer = |name: &str, impair: Value| {
        pair(
            name,
            json!([{ "kind": "tcp-transfer", "to": "s:9", "bytes": "2MiB" }]),
            json!([{ "kind": "tcp-sink", "port": 9 }]),
            impair,
        )
    };
    let clean = run(&transfer("clean", json!({ "latency": "2ms", "rate": "20Mbit" })), dir.path(), &["--flows"]);
    let lossy =
        run(&transfer("lossy", json!({ "latency": "2ms", "rate": "20Mbit", "loss": 0.02 })), dir.path(), &["--flows"]);
    for (r, lossy) in [(&clean, false), (&lossy, true)] {
        let t = app(r, "c/tcp-transfer");
        assert_eq!((t["acked"].as_u64(), &t["error"]), (Some(2 << 20), &Value::Null), "{t}");
        let series = &t["acked_series"];
        assert_eq!(series["interval_ms"], 100);
        let values: Vec<u64> = series["values"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
        assert_eq!(values.iter().sum::<u64>(), 2 << 20, "the series sums to the bytes: {values:?}");
        // It covers the transfer, interval by interval.
        let secs = f(&t["seconds"]);
        assert_eq!(values.len(), (secs * 10.0).ceil() as usize, "{secs} s: {values:?}");
        let retrans = t["retransmissions"].as_u64().unwrap();
        let flow = &r["flows"][0];
        if lossy {
            assert!(retrans > 0, "{t}");
            assert!(t["retransmitted_bytes"].as_u64() > Some(0));
            // The flow tracker sees them on the wire too (both directions: the sink's as well).
            assert!(flow["retransmissions"].as_u64() >= Some(retrans), "{flow} vs {t}");
        } else {
            assert_eq!((retrans, flow["retransmissions"].as_u64()), (0, Some(0)), "{t}");
            // 20 Mbit/s is at most 250,000 bytes in 100 ms. (With loss, a cumulative ACK after a
            // retransmission acknowledges in one interval what arrived in several.)
            assert!(values.iter().all(|v| *v <= 250_000), "{values:?}");
            assert!(values.iter().filter(|v| **v > 0).count() >= 8, "{values:?}");
        }
        assert!(t["segments"].as_u64() > Some(1436), "{t}");
    }
}
