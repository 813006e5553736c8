//! Helpers shared by the integration tests: the real binary, tshark, and reports.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `netlab` binary built for these tests.
pub fn netlab() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_netlab"));
    c.current_dir(root());
    c
}

/// Runs `netlab run` and returns (output, parsed JSON report).
pub fn run_lab(lab: &str, extra: &[&str], dir: &Path) -> (Output, Value) {
    let report = dir.join("report.json");
    let out = netlab()
        .arg("run")
        .arg(lab)
        .args(["--headless", "-q", "--report"])
        .arg(&report)
        .args(extra)
        .output()
        .expect("netlab runs");
    assert!(out.status.success(), "netlab run {lab} failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&report).expect("report written");
    (out, serde_json::from_str(&text).expect("report is JSON"))
}

/// tshark with its arguments; fails the test if tshark is missing or fails.
pub fn tshark(args: &[&str]) -> String {
    let out =
        Command::new("tshark").args(args).output().expect("tshark is installed (.ci/run installs it with apt-get)");
    assert!(out.status.success(), "tshark {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Number of frames in `file` matching a display filter.
pub fn count(file: &Path, filter: &str) -> usize {
    // Two passes, so that request/response links such as `icmp.resp_in` are known.
    tshark(&["-2", "-r", file.to_str().expect("utf-8 path"), "-Y", filter]).lines().count()
}

pub fn apps<'a>(report: &'a Value, kind: &str) -> Vec<&'a Value> {
    report["apps"].as_array().expect("apps").iter().filter(|a| a["kind"] == kind).collect()
}
