//! Every lab under labs/ runs headless, and its apps' results are asserted.

mod common;

use common::{apps, run_lab};
use serde_json::Value;

/// The results every shipped lab must reach on clean links.
fn assert_clean_results(lab: &str, r: &Value) {
    assert_eq!(r["ended"], "apps-finished", "{lab}: {r:#}");
    let all = r["apps"].as_array().expect("apps");
    assert!(!all.is_empty(), "{lab} has apps");
    for p in apps(r, "ping") {
        assert!(p["sent"].as_u64() > Some(0), "{lab}: {p}");
        assert_eq!(p["received"], p["sent"], "{lab}: ping lost replies: {p}");
        assert_eq!(p["loss_pct"], 0.0);
        assert_eq!(p["corrupt"], 0);
        let rtt = &p["rtt"];
        assert!(rtt["min_ms"].as_f64().unwrap() > 0.0 && rtt["min_ms"].as_f64() <= rtt["max_ms"].as_f64(), "{p}");
    }
    for e in apps(r, "tcp-echo") {
        assert_eq!(e["error"], Value::Null, "{lab}: {e}");
        assert_eq!(e["echoed"], e["sent"], "{lab}: {e}");
        assert_eq!(e["mismatched"], 0);
    }
    for e in apps(r, "udp-echo") {
        assert_eq!(e["received"], e["sent"], "{lab}: {e}");
        assert_eq!(e["mismatched"], 0);
    }
    let sent: u64 = apps(r, "tcp-transfer")
        .iter()
        .map(|t| {
            assert_eq!(t["error"], Value::Null, "{lab}: {t}");
            assert_eq!(t["acked"], t["bytes"], "{lab}: {t}");
            assert!(t["goodput_mbps"].as_f64().unwrap() > 1.0, "{t}");
            t["bytes"].as_u64().unwrap()
        })
        .sum();
    let sunk: u64 = apps(r, "tcp-sink")
        .iter()
        .map(|s| {
            assert_eq!(s["corrupt_bytes"], 0, "{lab}: {s}");
            s["bytes"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(sunk, sent, "{lab}: bytes received by sinks equal bytes sent");
    for g in apps(r, "http-get") {
        assert_eq!((g["failed"].as_u64(), &g["error"]), (Some(0), &Value::Null), "{lab}: {g}");
        assert_eq!(g["completed"], g["sent"], "{lab}: {g}");
    }
    for t in apps(r, "traceroute") {
        assert_eq!((t["reached"].as_bool(), t["hop_count"].as_u64()), (Some(true), Some(1)), "{lab}: {t}");
    }
    let streamed: u64 = apps(r, "udp-stream").iter().map(|u| u["sent"].as_u64().unwrap()).sum();
    let stream_in: u64 = apps(r, "udp-stream-server")
        .iter()
        .map(|s| {
            assert_eq!((s["lost"].as_u64(), s["corrupt"].as_u64()), (Some(0), Some(0)), "{lab}: {s}");
            s["received"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(stream_in, streamed, "{lab}: datagrams received by stream servers equal those sent");
    // Every link carried traffic, and nothing was dropped on these clean links.
    for l in r["links"].as_array().expect("links") {
        assert!(l["a_to_b"]["delivered_frames"].as_u64() > Some(0), "{lab}: {l}");
        assert_eq!(l["a_to_b"]["drops"], serde_json::json!({}), "{lab}: {l}");
        assert_eq!(l["b_to_a"]["drops"], serde_json::json!({}), "{lab}: {l}");
    }
}

fn shipped_labs() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(common::root().join("labs"))
        .expect("labs/")
        .map(|e| format!("labs/{}", e.expect("entry").file_name().to_string_lossy()))
        .filter(|p| p.ends_with(".json"))
        .collect();
    v.sort();
    v
}

/// Whether a lab has port forwards or an exit gateway.
fn reaches_real_sockets(lab: &str) -> bool {
    let text = std::fs::read_to_string(common::root().join(lab)).expect("lab");
    let v: Value = serde_json::from_str(&text).expect("JSON");
    v.get("forwards").is_some() || v["nodes"].as_object().is_some_and(|n| n.values().any(|x| x["kind"] == "gateway"))
}

#[test]
fn every_shipped_lab_checks_ok() {
    let labs = shipped_labs();
    assert!(labs.len() >= 2, "{labs:?}");
    for lab in labs {
        // Without warnings too.
        let out = common::netlab().args(["check", "--deny-warnings", &lab]).output().expect("runs");
        assert!(out.status.success(), "{lab}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stderr.is_empty(), "{lab}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok: "), "{lab}");
    }
}

#[test]
fn every_shipped_lab_runs_in_virtual_time_and_its_expectations_hold() {
    // Labs whose every app must come out clean (no loss on any link); the others say what must
    // hold of their losses in their `expect`.
    const CLEAN: [&str; 4] = ["single-lan", "two-site", "two-site-tcp", "services"];
    for lab in shipped_labs() {
        if reaches_real_sockets(&lab) {
            // Its flows come from real sockets: the wall clock only (tests/gateways.rs runs them).
            let out = common::netlab()
                .args(["run", "--virtual-time", "--in-memory", "--no-capture", &lab])
                .output()
                .expect("runs");
            assert!(!out.status.success(), "{lab}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("real sockets") && err.contains("speed 1"), "{lab}: {err}");
            continue;
        }
        let dir = tempfile::tempdir().expect("tmp");
        let (out, r) = run_lab(&lab, &["--virtual-time", "--no-capture"], dir.path());
        assert_eq!(r["mode"], "virtual-time");
        assert!(r["max_lateness_ms"].is_null(), "no lateness in virtual time");
        // Every shipped lab says what must hold, and it does (run_lab asserted exit code 0).
        let e = r["expectations"].as_array().expect("expectations");
        assert!(e.len() >= 5, "{lab} carries an expect list: {e:?}");
        assert!(e.iter().all(|x| x["ok"] == true), "{lab}: {e:#?}");
        let summary = String::from_utf8_lossy(&out.stdout);
        assert!(summary.contains(&format!("expectations: {n} of {n} hold", n = e.len())), "{summary}");
        if CLEAN.iter().any(|c| lab.ends_with(&format!("/{c}.json"))) {
            assert_clean_results(&lab, &r);
        }
    }
}

#[test]
fn two_site_runs_on_the_wall_clock() {
    let dir = tempfile::tempdir().expect("tmp");
    let (out, r) = run_lab("labs/two-site.json", &["--no-capture"], dir.path());
    assert_eq!(r["mode"], "wall-clock");
    assert_clean_results("two-site", &r);
    assert!(r["max_lateness_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{r}");
    // Simulated time follows the wall clock.
    let (sim, wall) = (r["sim_seconds"].as_f64().unwrap(), r["wall_seconds"].as_f64().unwrap());
    assert!(sim > 1.0 && wall >= sim * 0.9, "sim {sim} wall {wall}");
    // The WAN's 10 ms each way sets the floor of the cross-site RTT.
    let ping = apps(&r, "ping")[0];
    assert!(ping["rtt"]["min_ms"].as_f64().unwrap() >= 20.0, "{ping}");
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("every app finished"), "{summary}");
    assert!(summary.contains("laptop/ping"), "{summary}");
}

#[test]
fn virtual_time_rtts_are_exact() {
    // single-lan: 500 us per link, two links each way, so a ping's RTT is 2 ms plus serialisation.
    let dir = tempfile::tempdir().expect("tmp");
    let (_, r) = run_lab("labs/single-lan.json", &["--virtual-time", "--no-capture"], dir.path());
    let ping = apps(&r, "ping")[0];
    let min = ping["rtt"]["min_ms"].as_f64().unwrap();
    assert!((2.0..2.01).contains(&min), "{ping}");
    assert!(r["speedup"].as_f64().unwrap() > 1.0, "virtual time runs faster than real time: {r}");
}

#[test]
fn duration_bounds_a_run() {
    let dir = tempfile::tempdir().expect("tmp");
    let (out, r) = common::run_lab_status(
        "labs/single-lan.json",
        &["--virtual-time", "--no-capture", "--duration", "300ms"],
        dir.path(),
    );
    assert_eq!(r["ended"], "duration");
    // Cut short, the lab's expectations about its unfinished apps do not hold: exit code 1.
    assert_eq!(out.status.code(), Some(1));
    assert!(r["expectations"].as_array().expect("expectations").iter().any(|e| e["ok"] == false), "{r}");
    assert!((r["sim_seconds"].as_f64().unwrap() - 0.3).abs() < 1e-6, "{r}");
    // Pings every 200 ms: two sent by 300 ms.
    assert_eq!(apps(&r, "ping")[0]["sent"], 2);
    // Where each app stood: the first ping was cut short, the IPv6 one starts at 1 s, servers serve.
    let states: Vec<(&str, &str)> = r["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["kind"].as_str().unwrap(), a["state"].as_str().unwrap()))
        .collect();
    assert_eq!(&states[..2], &[("ping", "running"), ("ping", "not-started")], "{r}");
    assert!(states.iter().filter(|s| s.0.ends_with("-server") || s.0 == "tcp-sink").all(|s| s.1 == "serving"));
    assert_eq!(apps(&r, "ping")[1]["start_seconds"], 1.0);
    // The summary says so too.
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("(still running)"), "{summary}");
    assert!(summary.contains("ping fd00::2: not started (starts at 1.000s)"), "{summary}");
}

#[test]
fn unreachable_and_refused_targets_are_reported() {
    let dir = tempfile::tempdir().expect("tmp");
    let lab = dir.path().join("lab.json");
    std::fs::write(
        &lab,
        r#"{
  "name": "refused",
  "nodes": {
    "sw": { "kind": "switch" },
    "a": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.1/24"] } },
           "apps": [ { "kind": "tcp-echo", "to": "b:7" }, { "kind": "tcp-transfer", "to": "b:9", "bytes": 1000 },
                     { "kind": "ping", "to": "c", "count": 2, "interval": "100ms" },
                     { "kind": "tcp-echo", "to": "c:7", "start": "1s" } ] },
    "b": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.2/24"] } } },
    "c": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.3/24"] } } }
  },
  "links": [ { "a": "a:eth0", "b": "sw" }, { "a": "b:eth0", "b": "sw" },
             { "a": "c:eth0", "b": "sw", "impair": { "loss": 1.0 } } ]
}"#,
    )
    .expect("write");
    let (_, r) = run_lab(lab.to_str().unwrap(), &["--virtual-time", "--no-capture"], dir.path());
    assert_eq!(r["ended"], "apps-finished");
    assert_eq!(apps(&r, "tcp-echo")[0]["error"], "connection refused (the SYN was answered with a reset)");
    // c never answers ARP (its link loses every frame): the SYN never leaves, and the client gives
    // up after 10 s.
    assert_eq!(apps(&r, "tcp-echo")[1]["error"], "connection timed out after 10s (no answer to the SYN)");
    let end = r["sim_seconds"].as_f64().unwrap();
    assert!((11.0..12.0).contains(&end), "{end}");
    assert_eq!(apps(&r, "tcp-transfer")[0]["error"], "connection refused (the SYN was answered with a reset)");
    // Every ping to c times out.
    let p = apps(&r, "ping")[0];
    assert_eq!((p["sent"].as_u64(), p["received"].as_u64(), p["loss_pct"].as_f64()), (Some(2), Some(0), Some(100.0)));
}

#[test]
fn progress_is_printed_every_second() {
    let out = common::netlab()
        .args(["run", "labs/two-site.json", "--headless", "--no-capture", "--duration", "2500ms"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("s simulated,")).collect();
    // Standard error is not a terminal here, so each progress line stands on its own line:
    // about one a second, and a last one at the end.
    assert!((3..=4).contains(&lines.len()), "{err}");
    assert!(lines.last().unwrap().contains("2.500s simulated"), "{err}");
    assert!(lines[0].contains(" frames, "), "{err}");
}

#[test]
fn the_virtual_time_limit_is_reached_not_reported_at_zero() {
    let dir = tempfile::tempdir().expect("tmp");
    let lab = dir.path().join("late.json");
    std::fs::write(
        &lab,
        r#"{ "name": "late", "nodes": {
  "a": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.1/24"] } },
         "apps": [ { "kind": "ping", "to": "b", "start": "25h" } ] },
  "b": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.2/24"] } } } },
  "links": [ { "a": "a:eth0", "b": "b:eth0" } ] }"#,
    )
    .expect("write");
    let (out, r) = run_lab(lab.to_str().unwrap(), &["--virtual-time", "--no-capture"], dir.path());
    assert_eq!(r["ended"], "time-limit");
    assert_eq!(r["sim_seconds"], 86400.0, "{r}");
    assert!(r["speedup"].as_f64().unwrap() > 1.0, "{r}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("virtual-time limit reached at 86400.000s simulated"));
}

/// Writes a lab given as JSON into `dir` and returns its path.
fn write_lab(dir: &std::path::Path, lab: &Value) -> String {
    let path = dir.join("lab.json");
    std::fs::write(&path, lab.to_string()).expect("write");
    path.to_str().expect("utf-8").to_string()
}

#[test]
fn a_server_serves_a_hundred_clients_that_call_at_once() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut nodes = serde_json::Map::new();
    let mut links = Vec::new();
    nodes.insert("sw".into(), serde_json::json!({ "kind": "switch" }));
    nodes.insert(
        "srv".into(),
        serde_json::json!({ "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.1/16"] } },
                            "tcp": { "rx_buffer": 16384, "tx_buffer": 16384 },
                            "apps": [ { "kind": "tcp-sink", "port": 9 }, { "kind": "tcp-echo-server", "port": 7 } ] }),
    );
    links.push(serde_json::json!({ "a": "srv:eth0", "b": "sw", "impair": { "latency": "100us" } }));
    for i in 0..100 {
        let name = format!("c{i}");
        nodes.insert(
            name.clone(),
            serde_json::json!({ "kind": "host",
                "interfaces": { "eth0": { "addresses": [format!("10.0.{}.{}/16", 1 + i / 200, 2 + i % 200)] } },
                "tcp": { "rx_buffer": 16384, "tx_buffer": 16384 },
                "apps": [ { "kind": "tcp-transfer", "to": "srv:9", "bytes": 20000 },
                          { "kind": "tcp-echo", "to": "srv:7", "count": 2, "size": 100 } ] }),
        );
        links.push(serde_json::json!({ "a": format!("{name}:eth0"), "b": "sw", "impair": { "latency": "100us" } }));
    }
    let lab = serde_json::json!({ "name": "crowd", "nodes": nodes, "links": links });
    let (_, r) = run_lab(&write_lab(dir.path(), &lab), &["--virtual-time", "--no-capture"], dir.path());
    assert_eq!(r["ended"], "apps-finished", "{r}");
    for t in apps(&r, "tcp-transfer") {
        assert_eq!((&t["acked"], &t["error"]), (&serde_json::json!(20000), &Value::Null), "{t}");
    }
    for e in apps(&r, "tcp-echo") {
        assert_eq!((&e["echoed"], &e["error"]), (&serde_json::json!(2), &Value::Null), "{e}");
    }
    let sink = apps(&r, "tcp-sink")[0];
    assert_eq!((&sink["connections"], &sink["bytes"]), (&serde_json::json!(100), &serde_json::json!(2_000_000)));
    let peak = sink["peak_connections"].as_u64().unwrap();
    assert!(peak > 50, "the clients called at once, and were served at once: {sink}");
    assert_eq!(apps(&r, "tcp-echo-server")[0]["connections"], 100);
}

#[test]
fn ping_counts_past_sixty_five_thousand_and_bursts_past_the_input_queue() {
    let dir = tempfile::tempdir().expect("tmp");
    let host = |ip: &str, apps: Value| serde_json::json!({ "kind": "host", "interfaces": { "eth0": { "addresses": [ip] } }, "apps": apps });
    // 70,000 requests at once: the socket takes 64, the rest are send errors; the 64 replies count.
    let lab = serde_json::json!({ "name": "wrap", "nodes": {
        "a": host("10.0.0.1/24", serde_json::json!([ { "kind": "ping", "to": "b", "count": 70000, "interval": "0s" } ])),
        "b": host("10.0.0.2/24", serde_json::json!([])) },
        "links": [ { "a": "a:eth0", "b": "b:eth0", "impair": { "latency": "1ms" } } ] });
    let (_, r) = run_lab(&write_lab(dir.path(), &lab), &["--virtual-time", "--no-capture"], dir.path());
    let p = apps(&r, "ping")[0];
    assert_eq!(
        (p["sent"].as_u64(), p["received"].as_u64(), p["send_errors"].as_u64()),
        (Some(70000), Some(64), Some(69936))
    );

    // 5,000 pings from one host at the same instant: more than a host's input queue holds at once.
    let pings: Vec<Value> = (0..5000).map(|_| serde_json::json!({ "kind": "ping", "to": "b", "count": 1 })).collect();
    let lab = serde_json::json!({ "name": "burst", "nodes": {
        "a": host("10.0.0.1/24", Value::Array(pings)), "b": host("10.0.0.2/24", serde_json::json!([])) },
        "links": [ { "a": "a:eth0", "b": "b:eth0", "impair": { "latency": "1ms" } } ] });
    let (_, r) = run_lab(&write_lab(dir.path(), &lab), &["--virtual-time", "--no-capture"], dir.path());
    let received: u64 = apps(&r, "ping").iter().map(|p| p["received"].as_u64().unwrap()).sum();
    assert_eq!(received, 5000, "every ping is answered");
    assert_eq!(r["links"][0]["a_to_b"]["drops"], serde_json::json!({}));
}

#[test]
fn a_transfer_says_whether_it_was_reset_or_timed_out_and_when() {
    let dir = tempfile::tempdir().expect("tmp");
    let lab = serde_json::json!({ "name": "cut", "nodes": {
        "a": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.1/24"] } },
               "apps": [ { "kind": "tcp-transfer", "to": "b:9", "bytes": "100MiB" } ] },
        "b": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.2/24"] } },
               "apps": [ { "kind": "tcp-sink", "port": 9 } ] } },
        "links": [ { "name": "l", "a": "a:eth0", "b": "b:eth0", "impair": { "latency": "1ms", "rate": "10Mbit" } } ] });
    let lab = write_lab(dir.path(), &lab);
    let run_with = |cmd: Value| {
        let log = dir.path().join("log.json");
        std::fs::write(&log, serde_json::json!([ { "at_ns": 500_000_000u64, "command": cmd } ]).to_string()).unwrap();
        let (_, r) = run_lab(&lab, &["--virtual-time", "--no-capture", "--replay", log.to_str().unwrap()], dir.path());
        apps(&r, "tcp-transfer")[0]["error"].as_str().expect("an error").to_string()
    };
    // The sink is stopped: its host resets the connection, which reaches a 1 ms later.
    let reset = run_with(serde_json::json!({ "kind": "stop-app", "node": "b", "app": "b/tcp-sink" }));
    assert_eq!(reset, "connection reset by the peer at 0.501s");
    // The link goes down: nothing more comes back, and smoltcp gives up after 10 s of silence.
    let silent = run_with(serde_json::json!({ "kind": "link-down", "link": "l" }));
    assert!(
        silent.starts_with("connection timed out at 10.") && silent.ends_with("no answer from the peer for 10s"),
        "{silent}"
    );
}

#[test]
fn a_run_shows_the_lab_s_warnings_and_can_refuse_them() {
    let dir = tempfile::tempdir().expect("tmp");
    let (out, r) = run_lab("tests/warning_labs/02-mixed-mtus.json", &["--virtual-time", "--no-capture"], dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("warning: switch `sw1` joins hosts of MTU 9000"), "{err}");
    let warnings = r["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 2, "{r}");
    assert!(warnings[0].as_str().unwrap().contains("02-mixed-mtus.json:10:52: warning:"));
    let denied = common::netlab()
        .args(["run", "tests/warning_labs/02-mixed-mtus.json", "--virtual-time", "--no-capture", "--deny-warnings"])
        .output()
        .expect("runs");
    assert_eq!(denied.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&denied.stderr).contains("2 warnings found (denied by --deny-warnings)"));
    assert!(denied.stdout.is_empty(), "the lab did not run");
}

#[test]
fn the_report_lists_the_conversations_with_flows() {
    let dir = tempfile::tempdir().expect("tmp");
    let (out, r) = run_lab("labs/two-site.json", &["--virtual-time", "--no-capture", "--flows"], dir.path());
    let flows = r["flows"].as_array().expect("flows");
    let tcp = &flows[0];
    assert_eq!((tcp["protocol"].as_str(), tcp["b"].as_str()), (Some("TCP"), Some("10.10.2.10:9")), "{tcp}");
    assert_eq!(tcp["tcp_state"], "closed");
    assert_eq!(tcp["retransmissions"], 0);
    let hs = tcp["handshake_rtt_ms"].as_f64().unwrap();
    assert!((20.0..21.0).contains(&hs), "{tcp}");
    // Each packet counted once, though it crossed three links: the laptop's link carried each of
    // the transfer's segments once.
    let laptop = &r["links"][0]["a_to_b"]["delivered_frames"];
    assert!(tcp["packets_a_to_b"].as_u64().unwrap() < laptop.as_u64().unwrap());
    let udp = flows.iter().find(|f| f["protocol"] == "UDP").expect("the UDP echo");
    assert_eq!((udp["packets_a_to_b"].as_u64(), udp["packets_b_to_a"].as_u64()), (Some(20), Some(20)));
    assert!(String::from_utf8_lossy(&out.stdout).contains("flows (16), most bytes first"));
    // Without --flows, no table is kept.
    let (_, r) = run_lab("labs/two-site.json", &["--virtual-time", "--no-capture"], dir.path());
    assert!(r["flows"].is_null());
}
