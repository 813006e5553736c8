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

/// One frame of a pcapng file: the name of its interface (the link), its timestamp in
/// nanoseconds, and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedFrame {
    pub link: String,
    pub ts_ns: u64,
    pub data: Vec<u8>,
}

/// Reads every frame of a pcapng file with pcap-file (independent of netlab's writer).
pub fn read_pcapng(path: &Path) -> Vec<CapturedFrame> {
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
    use pcap_file::pcapng::{Block, PcapNgReader};
    let file = std::fs::File::open(path).expect("capture exists");
    let mut r = PcapNgReader::new(file).expect("a pcapng file");
    let mut names = Vec::new();
    let mut frames = Vec::new();
    while let Some(block) = r.next_block() {
        match block.expect("a whole block") {
            Block::InterfaceDescription(idb) => names.push(
                idb.options
                    .iter()
                    .find_map(|o| match o {
                        InterfaceDescriptionOption::IfName(n) => Some(n.to_string()),
                        _ => None,
                    })
                    .unwrap_or_default(),
            ),
            Block::EnhancedPacket(p) => frames.push(CapturedFrame {
                link: names[p.interface_id as usize].clone(),
                ts_ns: u64::try_from(p.timestamp.as_nanos()).expect("fits"),
                data: p.data.to_vec(),
            }),
            _ => {}
        }
    }
    frames
}

/// SHA-256 of every frame's link, timestamp and bytes, in file order.
pub fn frames_digest(frames: &[CapturedFrame]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for f in frames {
        h.update(f.link.as_bytes());
        h.update([0]);
        h.update(f.ts_ns.to_be_bytes());
        h.update(u32::try_from(f.data.len()).expect("fits").to_be_bytes());
        h.update(&f.data);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

pub mod scale;
