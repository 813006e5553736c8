//! Expectations for CI: a run whose expectations hold exits 0, one where any fails exits 3 and
//! says which, with what was measured; `--report` holds them and `--junit` writes them as JUnit
//! XML, names escaped.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::netlab;
use serde_json::{json, Value};

fn write(dir: &Path, lab: &Value) -> PathBuf {
    let path = dir.join("lab.json");
    std::fs::write(&path, serde_json::to_string_pretty(lab).expect("JSON")).expect("write the lab");
    path
}

/// A ping over a link that goes down for a second: 11 of its 30 requests are lost.
fn lab(expect: Value) -> Value {
    json!({
        "name": "ci",
        "nodes": {
            "a": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.1/24"] } },
                   "apps": [ { "kind": "ping", "to": "b", "count": 30, "interval": "100ms", "start": "30ms" },
                             { "kind": "tcp-transfer", "to": "b:9", "bytes": "1MiB", "start": "2500ms" } ] },
            "b": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.2/24"] } },
                   "apps": [ { "kind": "tcp-sink", "port": 9 } ] }
        },
        "links": [ { "a": "a:eth0", "b": "b:eth0", "name": "wan", "impair": { "latency": "40ms", "rate": "20Mbit" } } ],
        "events": [ { "at": "1s", "kind": "link-down", "link": "wan" }, { "at": "2s", "kind": "link-up", "link": "wan" } ],
        "expect": expect
    })
}

/// Runs the lab in virtual time with `--report` and `--junit`; returns the output, the report and
/// the JUnit text.
fn run(dir: &Path, lab: &Value) -> (Output, Value, String) {
    let path = write(dir, lab);
    let (report, junit) = (dir.join("report.json"), dir.join("junit.xml"));
    let out = netlab()
        .args(["run", "--headless", "-q", "--virtual-time", "--no-capture", "--report"])
        .arg(&report)
        .arg("--junit")
        .arg(&junit)
        .arg(&path)
        .output()
        .expect("runs");
    let r = serde_json::from_str(&std::fs::read_to_string(&report).expect("a report")).expect("JSON");
    (out, r, std::fs::read_to_string(&junit).expect("a JUnit file"))
}

/// Checks that `xml` is well-formed with xmllint, where it is installed.
fn xmllint(dir: &Path, xml: &str) {
    if !common::tool("xmllint") {
        return;
    }
    let file = dir.join("check.xml");
    std::fs::write(&file, xml).expect("write");
    let out = std::process::Command::new("xmllint").arg("--noout").arg(&file).output().expect("xmllint runs");
    assert!(out.status.success(), "xmllint: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn expectations_that_hold_exit_0() {
    let dir = tempfile::tempdir().expect("tmp");
    let expect = json!([
        { "app": "a/ping", "metric": "loss", "min": "30%", "max": "40%" },
        { "app": "a/ping", "metric": "received", "equals": 19 },
        { "app": "a/ping", "metric": "rtt_p50", "max": "81ms" },
        { "app": "a/tcp-transfer", "metric": "goodput", "min": "5Mbit", "max": "20Mbit" },
        { "app": "b/tcp-sink", "metric": "bytes", "equals": "1MiB" },
        { "link": "wan", "drops": "link-down", "min": 1, "max": 11 },
        { "link": "wan", "drops": "loss", "direction": "a-to-b", "equals": 0 },
        { "reachable": true, "from": "a", "to": "b" },
        { "no_warnings": true }
    ]);
    let (out, r, junit) = run(dir.path(), &lab(expect));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("expectations: 9 of 9 hold"), "{stdout}");
    assert!(stdout.contains("  PASS a/ping received: 19 (expected equal to 19)"), "{stdout}");
    let results = r["expectations"].as_array().expect("expectations in the report");
    assert_eq!(results.len(), 9);
    assert!(results.iter().all(|e| e["ok"] == true), "{results:?}");
    assert_eq!(
        results[0],
        json!({ "what": "a/ping loss", "measured": "36.667%", "bound": "from 30% to 40%", "ok": true })
    );
    assert_eq!(results[5]["measured"], "11");
    let doc = roxmltree::Document::parse(&junit).expect("well-formed XML");
    let suite = doc.descendants().find(|n| n.has_tag_name("testsuite")).expect("a testsuite");
    assert_eq!(
        (suite.attribute("name"), suite.attribute("tests"), suite.attribute("failures")),
        (Some("ci"), Some("9"), Some("0"))
    );
    assert_eq!(doc.descendants().filter(|n| n.has_tag_name("testcase")).count(), 9);
    assert_eq!(doc.descendants().filter(|n| n.has_tag_name("failure")).count(), 0);
    xmllint(dir.path(), &junit);
}

#[test]
fn an_expectation_that_fails_exits_3_and_names_what_was_measured() {
    let dir = tempfile::tempdir().expect("tmp");
    let expect = json!([
        { "app": "a/ping", "metric": "loss", "max": "1%" },
        { "reachable": true, "from": "a", "to": "b" },
        { "app": "a/ping", "metric": "rtt_max", "max": "100ms" }
    ]);
    let (out, r, junit) = run(dir.path(), &lab(expect));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("expectations: 1 of 3 hold"), "{stdout}");
    assert!(stdout.contains("  FAIL a/ping loss: 36.667% (expected at most 1%)"), "{stdout}");
    // The first request waits for ARP: twice 80 ms, and the 20 Mbit/s serialisation of each frame.
    assert!(stdout.contains("  FAIL a/ping rtt_max: 160.112 ms (expected at most 100 ms)"), "{stdout}");
    assert!(
        stdout.contains("  PASS a reaches b: reachable: 19 of 30 requests answered (expected reachable)"),
        "{stdout}"
    );
    let oks: Vec<bool> = r["expectations"].as_array().unwrap().iter().map(|e| e["ok"].as_bool().unwrap()).collect();
    assert_eq!(oks, [false, true, false]);

    let doc = roxmltree::Document::parse(&junit).expect("well-formed XML");
    let suite = doc.descendants().find(|n| n.has_tag_name("testsuite")).expect("a testsuite");
    assert_eq!((suite.attribute("tests"), suite.attribute("failures")), (Some("3"), Some("2")));
    let cases: Vec<roxmltree::Node> = doc.descendants().filter(|n| n.has_tag_name("testcase")).collect();
    assert_eq!(cases[0].attribute("name"), Some("a/ping loss: at most 1%"));
    assert_eq!(cases[0].attribute("classname"), Some("ci"));
    let failure = cases[0].children().find(|n| n.has_tag_name("failure")).expect("a failure");
    assert_eq!(failure.attribute("message"), Some("measured 36.667%, expected at most 1%"));
    assert!(failure.text().unwrap_or_default().contains("measured: 36.667%\nexpected: at most 1%"), "{junit}");
    assert!(cases[1].children().all(|n| !n.has_tag_name("failure")), "{junit}");
    xmllint(dir.path(), &junit);
}

#[test]
fn exit_codes_stay_distinct() {
    let dir = tempfile::tempdir().expect("tmp");
    // A wrong expectation is a wrong lab: 2, and nothing runs.
    let path = write(dir.path(), &lab(json!([{ "app": "a/ping", "metric": "goodput", "min": "1Mbit" }])));
    let out = netlab().args(["run", "--headless", "--virtual-time", "--no-capture"]).arg(&path).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error: `ping` has no metric `goodput`"), "{err}");
    assert!(err.contains("hint: its metrics: loss, sent, received"), "{err}");
    // A JUnit file that cannot be written: 1, before the run.
    let path = write(dir.path(), &lab(json!([])));
    let out = netlab()
        .args(["run", "--headless", "--virtual-time", "--no-capture", "--junit"])
        .arg(dir.path())
        .arg(&path)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot write the JUnit file"), "{out:?}");
}

#[test]
fn names_in_junit_are_escaped() {
    // Lab names cannot hold markup, but a report's text can: its description, a link's default
    // name (`a:eth0<->b:eth0`), and any report made in code.
    let text = std::fs::read_to_string(common::root().join("labs/single-lan.json")).expect("lab");
    let lab = netlab::topology::load_str(&text, "single-lan.json").expect("valid");
    let opts = netlab::runtime::RunOptions { speed: netlab::runtime::Speed::Max, ..Default::default() };
    let mut r = netlab::runtime::run(&lab, &opts, &mut ()).expect("runs");
    let odd = "a<&\">'b\u{1b}\n";
    r.lab = odd.to_string();
    r.description = "x]]>y".to_string();
    r.expectations = vec![
        netlab::runtime::ExpectationResult {
            what: "a:eth0<->sw1 drops (loss)".into(),
            measured: "3 \"x\" & <y>".into(),
            bound: "at most 1".into(),
            ok: false,
        },
        netlab::runtime::ExpectationResult { what: odd.into(), measured: "0".into(), bound: "none".into(), ok: true },
    ];
    let xml = netlab::junit::junit(&r);
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let suite = doc.descendants().find(|n| n.has_tag_name("testsuite")).expect("a testsuite");
    // The escape character is not allowed in XML 1.0, even as a reference: it is written out.
    assert_eq!(suite.attribute("name"), Some("a<&\">'b\\u{1b}\n"));
    let failure = doc.descendants().find(|n| n.has_tag_name("failure")).expect("a failure");
    assert_eq!(failure.attribute("message"), Some("measured 3 \"x\" & <y>, expected at most 1"));
    let case = doc.descendants().filter(|n| n.has_tag_name("testcase")).nth(1).expect("two cases");
    assert_eq!(case.attribute("name"), Some("a<&\">'b\\u{1b}\n: none"));
    let dir = tempfile::tempdir().expect("tmp");
    xmllint(dir.path(), &xml);
}
