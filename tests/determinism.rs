//! One clock: a paced (wall-clock) run and a virtual-time run of the same lab and seed give the same
//! frames in the same order and the same report, but for the timestamps' epoch and the wall fields;
//! and a command log replays into the same frames.

mod common;

use std::path::Path;

use common::{read_pcapng, run_lab, CapturedFrame};
use serde_json::Value;

/// The report without what the wall clock decides: its timing, the mode and the capture's paths.
fn comparable(mut r: Value) -> Value {
    let o = r.as_object_mut().expect("a report object");
    for k in ["mode", "speed", "wall_seconds", "speedup", "max_lateness_ms", "capture"] {
        o.remove(k);
    }
    r
}

/// Frames with their times made relative to the run's epoch (the first IDB's start is not in the
/// file, so the difference to the virtual run's first frame is taken out).
fn relative(frames: &[CapturedFrame], epoch: u64) -> Vec<CapturedFrame> {
    frames.iter().map(|f| CapturedFrame { ts_ns: f.ts_ns - epoch, ..f.clone() }).collect()
}

/// Runs a lab in memory (its tunnels too: determinism is a property of in-memory labs; a tunnel's
/// timing is the real network's) and returns its frames and report.
fn run_captured(lab: &str, dir: &Path, name: &str, extra: &[&str]) -> (Vec<CapturedFrame>, Value) {
    let cap = dir.join(format!("{name}.pcapng"));
    let sub = dir.join(name);
    std::fs::create_dir_all(&sub).expect("dir");
    let mut args = vec!["--in-memory", "--capture", cap.to_str().expect("utf-8")];
    args.extend_from_slice(extra);
    // A run whose commands break the lab (a link down, a server stopped) fails some of its
    // expectations: it exits 1, and its report says which.
    let (out, r) = common::run_lab_status(lab, &args, &sub);
    let failed = r["expectations"].as_array().is_some_and(|e| e.iter().any(|x| x["ok"] == false));
    assert_eq!(out.status.code(), Some(if failed { 1 } else { 0 }), "{}", String::from_utf8_lossy(&out.stderr));
    (read_pcapng(&cap), r)
}

fn assert_same_run(lab: &str, virt: &(Vec<CapturedFrame>, Value), paced: &(Vec<CapturedFrame>, Value)) {
    let (vf, vr) = virt;
    let (pf, pr) = paced;
    assert_eq!(pr["mode"], "wall-clock", "{pr}");
    assert_eq!(vr["mode"], "virtual-time", "{vr}");
    assert_eq!(vf.len(), pf.len(), "{lab}: as many frames on either clock");
    assert!(!vf.is_empty());
    // Wall-clock timestamps are the Unix time of the start plus the simulated time.
    let epoch = pf[0].ts_ns - vf[0].ts_ns;
    let pf = relative(pf, epoch);
    for (i, (a, b)) in vf.iter().zip(&pf).enumerate() {
        assert_eq!(a, b, "{lab}: frame {} differs between virtual time and the wall clock", i + 1);
    }
    assert_eq!(comparable(vr.clone()), comparable(pr.clone()), "{lab}: the same report on either clock");
}

#[test]
fn the_wall_clock_gives_the_frames_and_report_of_virtual_time() {
    let dir = tempfile::tempdir().expect("tmp");
    // two-site at real time, single-lan paced at 4x: pacing decides when, never what.
    for (lab, speed) in [("labs/two-site.json", "1"), ("labs/single-lan.json", "4")] {
        let virt = run_captured(lab, dir.path(), "virtual", &["--virtual-time"]);
        let paced = run_captured(lab, dir.path(), "paced", &["--speed", speed]);
        assert_same_run(lab, &virt, &paced);
        assert_eq!(paced.1["speed"], format!("{speed}x"));
        let (sim, wall) = (paced.1["sim_seconds"].as_f64().unwrap(), paced.1["wall_seconds"].as_f64().unwrap());
        let factor: f64 = speed.parse().unwrap();
        assert!(wall >= sim / factor * 0.95, "{lab}: paced at {speed}x, {sim} s simulated took {wall} s");
    }
}

/// A log that takes the WAN down and up, slows it, starts a ping across it and stops an app.
const LOG: &str = r#"[
  { "at_ns": 200000000, "command": { "kind": "start-app", "node": "pc",
      "app": { "kind": "ping", "to": "laptop", "count": 8, "interval": "100ms" } } },
  { "at_ns": 350000000, "command": { "kind": "link-down", "link": "wan" } },
  { "at_ns": 450000000, "command": { "kind": "link-up", "link": "wan" } },
  { "at_ns": 600000000, "command": { "kind": "set-model", "link": "wan", "direction": "a-to-b",
      "impair": { "latency": "40ms" } } },
  { "at_ns": 1500000000, "command": { "kind": "stop-app", "node": "nas", "app": "nas/udp-echo-server" } }
]"#;

#[test]
fn a_command_log_replays_into_the_same_frames_on_either_clock() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("log.json");
    std::fs::write(&log, LOG).expect("write");
    let lab = "labs/two-site.json";
    let first = run_captured(lab, dir.path(), "first", &["--virtual-time", "--replay", log.to_str().unwrap()]);
    let r = &first.1;
    assert_eq!(r["command_errors"], serde_json::json!([]), "{r}");
    let cmds = r["commands"].as_array().expect("commands logged");
    assert_eq!(cmds.len(), 5, "{r}");
    assert_eq!(cmds[1]["at_ns"], 350_000_000);
    assert_eq!(cmds[1]["command"]["kind"], "link-down");
    // The link went down with frames on it, and refused what was sent while down.
    let wan = r["links"].as_array().unwrap().iter().find(|l| l["name"] == "wan").expect("wan");
    let down = wan["a_to_b"]["drops"]["link-down"].as_u64().unwrap_or(0)
        + wan["b_to_a"]["drops"]["link-down"].as_u64().unwrap_or(0);
    assert!(down > 0, "{wan}");
    // The ping started by the log ran; some of its requests met the down link; its RTTs after the
    // model change carry the extra 30 ms one way.
    let ping = r["apps"].as_array().unwrap().iter().find(|a| a["app"] == "pc/ping").expect("pc/ping");
    assert_eq!(ping["sent"], 8, "{ping}");
    let received = ping["received"].as_u64().unwrap();
    assert!((1..8).contains(&received), "{ping}");
    assert!(ping["rtt"]["max_ms"].as_f64().unwrap() > 50.0, "{ping}");
    let stopped = r["apps"].as_array().unwrap().iter().find(|a| a["app"] == "nas/udp-echo-server").unwrap();
    assert_eq!(stopped["state"], "stopped");

    // The report is itself a command log: replaying it repeats the run exactly.
    let report = dir.path().join("first").join("report.json");
    let again = run_captured(lab, dir.path(), "again", &["--virtual-time", "--replay", report.to_str().unwrap()]);
    assert_eq!(first.0, again.0, "the replay gives the same frames");
    assert_eq!(comparable(first.1.clone()), comparable(again.1.clone()));
    // And paced, at 2x, it does too.
    let paced = run_captured(lab, dir.path(), "paced", &["--speed", "2", "--replay", log.to_str().unwrap()]);
    assert_same_run(lab, &first, &paced);
}

#[test]
fn a_bad_command_log_is_refused_with_its_place() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("log.json");
    std::fs::write(&log, r#"[ { "at_ns": 5, "command": { "kind": "link-sideways", "link": "wan" } } ]"#).unwrap();
    let out = common::netlab()
        .args(["run", "labs/two-site.json", "--virtual-time", "--no-capture", "--replay"])
        .arg(&log)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not a command log") && err.contains("[0].command") && err.contains("link-sideways"),
        "{err}"
    );
}

#[test]
fn a_command_that_cannot_apply_is_reported_and_the_run_goes_on() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("log.json");
    std::fs::write(
        &log,
        r#"[ { "at_ns": 1000, "command": { "kind": "link-down", "link": "nowhere" } },
             { "at_ns": 2000, "command": { "kind": "stop-app", "node": "hq-sw", "app": "0" } },
             { "at_ns": 3000, "command": { "kind": "set-model", "link": "wan", "impair": { "loss": 2.0 } } } ]"#,
    )
    .unwrap();
    let (_, r) = run_lab(
        "labs/two-site.json",
        &["--virtual-time", "--no-capture", "--replay", log.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(r["ended"], "apps-finished");
    let errors: Vec<&str> = r["command_errors"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(errors[0].contains("no link `nowhere`"), "{errors:?}");
    assert!(errors[1].contains("`hq-sw` is not a host"), "{errors:?}");
    assert!(errors[2].contains("not a probability"), "{errors:?}");
    assert_eq!(r["commands"], serde_json::json!([]));
}
