//! Router benchmarks, shared by `netlab bench --router` and `cargo bench --bench router`.
//!
//! Two measurements, each against a baseline taken in the same run, interleaved, so that the
//! figures are comparable on a noisy machine:
//! - **forwarding**: one TCP transfer between two hosts on one in-memory link (the baseline), and
//!   the same transfer with the two hosts on two subnets and one router between them, in virtual
//!   time through the whole runtime. Frames a second are the frames the two hosts received (data
//!   and ACKs) per wall second, and, with the router, the frames it forwarded per wall second; the
//!   ratio is the router's frames a second ÷ the direct link's.
//! - **`labs/routed.json`**: simulated seconds per wall second of a headless virtual-time run,
//!   the median of several runs, against its switched twin: the same hosts, links and apps with
//!   each router replaced by a switch, every host on one subnet (apps aimed at a router dropped).
//!
//! The routed scale labs (groups of switches joined by routers) are in
//! [`bench_scale`](crate::bench_scale).

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use serde_json::Value;

use crate::runtime::{self, CaptureChoice, Ended, Report, RunOptions};
use crate::sim::apps::Outcome;
use crate::topology;

/// Socket buffers of the transfer's two hosts, as in the throughput bench.
const BUFFER: usize = 1 << 20;
/// The goal for the router's frames a second against the direct link's.
pub const FORWARD_GOAL: f64 = 0.7;
/// The goal for `labs/routed.json` in virtual time, in simulated seconds per wall second.
pub const ROUTED_GOAL: f64 = 1000.0;
/// Runs of `labs/routed.json` (and of its twin) by default.
pub const LAB_REPS: usize = 21;
/// The lab whose virtual-time speed is measured (built in, so that the bench runs anywhere).
pub const ROUTED_LAB: &str = include_str!("../labs/routed.json");

/// The transfer lab: `a` sends `bytes` into a `tcp-sink` on `b`, either on one link (`routed`
/// false) or on two subnets with router `r` between them (`routed` true). No link model: the links
/// are as fast as the CPU.
#[must_use]
pub fn forward_lab_text(bytes: u64, offload: bool, routed: bool) -> String {
    let host = |name: &str, addr: &str, gw: &str, apps: &str| {
        let gw = if gw.is_empty() { String::new() } else { format!(r#", "gateways": ["{gw}"]"#) };
        format!(
            r#""{name}": {{ "kind": "host", "interfaces": {{ "eth0": {{ "addresses": ["{addr}"]{gw} }} }},
           "tcp": {{ "rx_buffer": {BUFFER}, "tx_buffer": {BUFFER} }}, "apps": [ {apps} ] }}"#
        )
    };
    let send = format!(r#"{{ "kind": "tcp-transfer", "to": "b:9", "bytes": {bytes} }}"#);
    let sink = r#"{ "kind": "tcp-sink", "port": 9 }"#;
    let (nodes, links) = if routed {
        (
            [
                host("a", "10.0.1.1/24", "10.0.1.254", &send),
                r#""r": { "kind": "router", "interfaces": { "eth0": { "addresses": ["10.0.1.254/24"] },
                                                "eth1": { "addresses": ["10.0.2.254/24"] } } }"#
                    .to_string(),
                host("b", "10.0.2.1/24", "10.0.2.254", sink),
            ]
            .join(",\n    "),
            r#"{ "a": "a:eth0", "b": "r:eth0" }, { "a": "r:eth1", "b": "b:eth0" }"#,
        )
    } else {
        (
            [host("a", "10.0.0.1/24", "", &send), host("b", "10.0.0.2/24", "", sink)].join(",\n    "),
            r#"{ "a": "a:eth0", "b": "b:eth0" }"#,
        )
    };
    let name = if routed { "bench-routed" } else { "bench-direct" };
    format!(
        "{{\n  \"name\": \"{name}\",\n  \"checksum_offload\": {offload},\n  \"nodes\": {{\n    {nodes}\n  }},\n  \"links\": [ {links} ]\n}}\n"
    )
}

/// One transfer, checked.
#[derive(Debug, Clone, Copy)]
pub struct Forward {
    pub bytes: u64,
    /// Wall time of the run: driver built, run, report written.
    pub wall: Duration,
    /// Frames the two hosts received (data and ACKs, ARP too).
    pub host_frames: u64,
    /// Frames every link delivered (twice the hosts' with a router between them).
    pub link_frames: u64,
    /// Packets the router forwarded (0 without one).
    pub forwarded: u64,
}

impl Forward {
    /// Frames the hosts received per wall second.
    #[must_use]
    pub fn fps(&self) -> f64 {
        self.host_frames as f64 / self.wall.as_secs_f64()
    }
    /// Payload bits per wall second.
    #[must_use]
    pub fn gbps(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.wall.as_secs_f64() / 1e9
    }
    /// What the ratio compares: frames a router forwarded per wall second, or, without one, the
    /// frames the direct link carried.
    #[must_use]
    pub fn forwarding_fps(&self) -> f64 {
        if self.forwarded > 0 {
            self.forwarded as f64 / self.wall.as_secs_f64()
        } else {
            self.fps()
        }
    }
}

/// Runs the transfer lab once in virtual time, capture off, and checks that every byte arrived
/// intact (and, with the router, that it forwarded every frame the hosts received).
pub fn forward(bytes: u64, offload: bool, routed: bool) -> anyhow::Result<Forward> {
    let lab = topology::load_str(&forward_lab_text(bytes, offload, routed), "forward.json")
        .map_err(|e| anyhow::anyhow!("the forwarding lab is invalid: {e}"))?;
    let opts = RunOptions { speed: runtime::Speed::Max, capture: CaptureChoice::Off, ..RunOptions::default() };
    let start = Instant::now();
    let r = runtime::run(&lab, &opts, &mut ())?;
    let wall = start.elapsed();
    let sunk = r.apps.iter().find_map(|a| match a.outcome {
        Outcome::TcpSink { bytes, corrupt_bytes, .. } => Some((bytes, corrupt_bytes)),
        _ => None,
    });
    ensure!(sunk == Some((bytes, 0)), "the transfer is incomplete or corrupt: {sunk:?}");
    // Frames into a host: on each link, the direction whose far end is a host (`a` and `b` are
    // the links' first and last ends).
    let host_frames = if routed {
        let (to_a, to_b) = (&r.links[0].b_to_a, &r.links[1].a_to_b);
        to_a.delivered_frames + to_b.delivered_frames
    } else {
        r.frames
    };
    let forwarded = r.routers.iter().map(|x| x.counters.forwarded).sum();
    if routed {
        ensure!(r.routers.len() == 1, "one router: {}", r.routers.len());
        // Everything the hosts received came through the router, but ARP (two exchanges).
        ensure!(
            forwarded <= host_frames && host_frames <= forwarded + 4,
            "the router forwarded {forwarded} frames, the hosts received {host_frames}"
        );
        let dropped: u64 = r.routers[0].counters.dropped.values().sum();
        ensure!(dropped == 0, "the router dropped {dropped} packets: {:?}", r.routers[0].counters.dropped);
    }
    Ok(Forward { bytes, wall, host_frames, link_frames: r.frames, forwarded })
}

fn median<T: PartialOrd + Copy>(v: &mut [T]) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

/// The forwarding figures of one table: medians over the runs, and the ratio.
#[derive(Debug, Clone, Copy)]
pub struct ForwardRow {
    pub direct: Forward,
    pub routed: Forward,
    /// Median over the runs of the router's frames a second ÷ the direct link's, each pair
    /// measured back to back.
    pub ratio: f64,
}

/// Runs the direct and the routed transfer `reps` times each, interleaved, and returns the medians.
pub fn forward_row(bytes: u64, offload: bool, reps: usize) -> anyhow::Result<ForwardRow> {
    let reps = reps.max(1);
    let (mut direct, mut routed, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..reps {
        let d = forward(bytes, offload, false).context("the direct transfer")?;
        let r = forward(bytes, offload, true).context("the routed transfer")?;
        ratios.push(r.forwarding_fps() / d.forwarding_fps());
        direct.push(d);
        routed.push(r);
    }
    let pick = |v: &mut Vec<Forward>| {
        v.sort_by_key(|f| f.wall);
        v[v.len() / 2]
    };
    Ok(ForwardRow { direct: pick(&mut direct), routed: pick(&mut routed), ratio: median(&mut ratios) })
}

/// `labs/routed.json` (or another lab's text) with each router replaced by a switch: the same
/// hosts, links, link models and apps, every host on one subnet (`10.0.0.0/24` and `fd00::/64`,
/// numbered in lab order) with no gateway, and the apps aimed at a router dropped. Returns the
/// text and the number of apps dropped.
pub fn switched_twin(text: &str) -> anyhow::Result<(String, usize)> {
    let mut lab: Value = serde_json::from_str(text).context("the routed lab is not plain JSON")?;
    let nodes = lab.get_mut("nodes").and_then(Value::as_object_mut).context("the lab has no nodes")?;
    let routers: Vec<String> = nodes
        .iter()
        .filter(|(_, n)| n.get("kind").and_then(Value::as_str) == Some("router"))
        .map(|(k, _)| k.clone())
        .collect();
    ensure!(!routers.is_empty(), "the lab has no routers");
    let aimed_at_router = |to: &str| {
        let name = to.rsplit_once(':').map_or(to, |(n, _)| n);
        routers.iter().any(|r| r == name)
    };
    let (mut host_no, mut dropped) = (0u32, 0usize);
    for (name, node) in nodes.iter_mut() {
        if routers.contains(name) {
            *node = serde_json::json!({ "kind": "switch" });
            continue;
        }
        if node.get("kind").and_then(Value::as_str) != Some("host") {
            continue;
        }
        let ifaces = node.get_mut("interfaces").and_then(Value::as_object_mut).context("a host without interfaces")?;
        ensure!(ifaces.len() == 1, "host {name} has {} interfaces; the twin takes one", ifaces.len());
        for iface in ifaces.values_mut() {
            host_no += 1;
            ensure!(host_no < 255, "too many hosts for one /24");
            let obj = iface.as_object_mut().context("an interface is not an object")?;
            let had_v6 = obj
                .get("addresses")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|a| a.as_str().is_some_and(|s| s.contains(':'))));
            let mut addrs = vec![Value::from(format!("10.0.0.{host_no}/24"))];
            if had_v6 {
                addrs.push(Value::from(format!("fd00::{host_no:x}/64")));
            }
            obj.insert("addresses".into(), Value::from(addrs));
            obj.remove("gateways");
        }
        if let Some(apps) = node.get_mut("apps").and_then(Value::as_array_mut) {
            let before = apps.len();
            // Apps aimed at a router, and pings meant to meet the routed lab's MTU step (no router
            // sends packet too big in the twin), go.
            apps.retain(|a| {
                !a.get("to").and_then(Value::as_str).is_some_and(aimed_at_router)
                    && a.get("size").and_then(Value::as_u64).is_none_or(|s| s <= 1200)
            });
            dropped += before - apps.len();
        }
    }
    // What the routed lab expects is about its routers; the twin has none.
    if let Some(o) = lab.as_object_mut() {
        o.remove("expect");
        o.remove("events");
    }
    let links = lab.get_mut("links").and_then(Value::as_array_mut).context("the lab has no links")?;
    for link in links {
        for end in ["a", "b"] {
            if let Some(e) = link.get_mut(end) {
                let s = e.as_str().context("a link end is not a string")?;
                let node = s.split_once(':').map_or(s, |(n, _)| n);
                if routers.iter().any(|r| r == node) {
                    *e = Value::from(node);
                }
            }
        }
    }
    if let Some(n) = lab.get_mut("name") {
        *n = Value::from(format!("{}-switched", n.as_str().unwrap_or("lab")));
    }
    Ok((serde_json::to_string_pretty(&lab)?, dropped))
}

/// One virtual-time run of a lab.
#[derive(Debug, Clone, Copy)]
pub struct LabRun {
    /// Simulated time the run reached.
    pub sim: Duration,
    /// Wall time of the run: driver built, run, report written.
    pub wall: Duration,
    pub frames: u64,
}

impl LabRun {
    /// Simulated seconds per wall second.
    #[must_use]
    pub fn speed(&self) -> f64 {
        self.sim.as_secs_f64() / self.wall.as_secs_f64()
    }
    /// Frames delivered (on every link) per wall second.
    #[must_use]
    pub fn fps(&self) -> f64 {
        self.frames as f64 / self.wall.as_secs_f64()
    }
}

/// Checks that a run ended with every client done and every app's outcome whole.
fn check_apps(r: &Report) -> anyhow::Result<()> {
    ensure!(r.ended == Ended::AppsFinished, "the run ended {:?}, not with its apps finished", r.ended);
    // A lab that says what must hold (labs/routed.json does: some of its pings must be lost) is
    // held to that.
    if !r.expectations.is_empty() {
        let failed: Vec<&str> = r.expectations.iter().filter(|e| !e.ok).map(|e| e.what.as_str()).collect();
        ensure!(failed.is_empty(), "expectations that do not hold: {}", failed.join(", "));
        return Ok(());
    }
    for a in &r.apps {
        let label = &a.app;
        match &a.outcome {
            Outcome::Ping { sent, received, corrupt, .. } => {
                ensure!(
                    sent == received && *corrupt == 0,
                    "{label}: {sent} sent, {received} received, {corrupt} corrupt"
                );
            }
            Outcome::TcpTransfer { bytes, acked, error, .. } => {
                ensure!(error.is_none() && acked == bytes, "{label}: {acked} of {bytes} bytes acked, error {error:?}");
            }
            Outcome::TcpSink { corrupt_bytes, .. } => ensure!(*corrupt_bytes == 0, "{label}: corrupt bytes"),
            Outcome::TcpEcho { sent, echoed, mismatched, error, .. } => {
                ensure!(echoed == sent && *mismatched == 0 && error.is_none(), "{label}: {echoed} of {sent} echoed");
            }
            Outcome::UdpEcho { sent, received, mismatched, .. } => {
                ensure!(received == sent && *mismatched == 0, "{label}: {received} of {sent} echoed");
            }
            _ => {}
        }
    }
    Ok(())
}

/// Runs `lab` once, headless in virtual time with capture off, and checks every app's outcome.
pub fn lab_run(lab: &topology::Lab) -> anyhow::Result<LabRun> {
    let opts = RunOptions { speed: runtime::Speed::Max, capture: CaptureChoice::Off, ..RunOptions::default() };
    let start = Instant::now();
    let r = runtime::run(lab, &opts, &mut ())?;
    let wall = start.elapsed();
    check_apps(&r).with_context(|| format!("lab {}", r.lab))?;
    Ok(LabRun { sim: Duration::from_secs_f64(r.sim_seconds), wall, frames: r.frames })
}

/// The virtual-time figures of `labs/routed.json` and its switched twin: the medians over the runs.
#[derive(Debug, Clone, Copy)]
pub struct LabRow {
    pub routed: LabRun,
    pub twin: LabRun,
    /// Apps of the routed lab the twin lacks (those aimed at a router).
    pub dropped_apps: usize,
}

/// Runs `labs/routed.json` and its switched twin `reps` times each, interleaved; the medians.
pub fn lab_row(reps: usize) -> anyhow::Result<LabRow> {
    let reps = reps.max(1);
    let routed = topology::load_str(ROUTED_LAB, "labs/routed.json")
        .map_err(|e| anyhow::anyhow!("labs/routed.json is invalid: {e}"))?;
    let (twin_text, dropped_apps) = switched_twin(ROUTED_LAB)?;
    let twin = topology::load_str(&twin_text, "routed-switched.json")
        .map_err(|e| anyhow::anyhow!("the switched twin of labs/routed.json is invalid: {e}"))?;
    let (mut r, mut t) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        r.push(lab_run(&routed)?);
        t.push(lab_run(&twin)?);
    }
    let pick = |v: &mut Vec<LabRun>| {
        v.sort_by_key(|x| x.wall);
        v[v.len() / 2]
    };
    Ok(LabRow { routed: pick(&mut r), twin: pick(&mut t), dropped_apps })
}

/// Runs both measurements and prints them: the transfer of `bytes` `reps` times (with checksums,
/// then with checksum offload), `labs/routed.json` `lab_reps` times.
pub fn run_router(bytes: u64, reps: usize, lab_reps: usize, out: &mut dyn Write) -> anyhow::Result<()> {
    if bytes < 1 << 20 {
        bail!("measure at least 1 MiB (asked for {bytes} bytes)");
    }
    let mib = bytes as f64 / (1 << 20) as f64;
    writeln!(
        out,
        "router bench: {mib:.0} MiB of TCP from a to b, MTU 1500, 1 MiB socket buffers, virtual time, capture off, median of {} runs",
        reps.max(1)
    )?;
    writeln!(out, "direct: a and b on one link; routed: a and b on two subnets, one router between them")?;
    // Warm up caches and the allocator.
    let _ = forward(bytes.min(16 << 20), false, true)?;
    let mut ratios = Vec::new();
    for offload in [false, true] {
        let row = forward_row(bytes, offload, reps)?;
        let mode = if offload { "checksum offload" } else { "checksums computed (default)" };
        writeln!(
            out,
            "\n{mode:<30} {:>8} {:>8} {:>12} {:>12} {:>13} {:>7}",
            "wall s", "Gbit/s", "host frames", "frames/s", "forwarded/s", "ratio"
        )?;
        for (name, f, ratio) in [("direct link", row.direct, 1.0), ("one router", row.routed, row.ratio)] {
            let fwd = if f.forwarded > 0 {
                format!("{:>13.0}", f.forwarded as f64 / f.wall.as_secs_f64())
            } else {
                format!("{:>13}", "-")
            };
            writeln!(
                out,
                "  {name:<28} {:>8.3} {:>8.2} {:>12} {:>12.0} {fwd} {ratio:>7.2}",
                f.wall.as_secs_f64(),
                f.gbps(),
                f.host_frames,
                f.fps(),
            )?;
        }
        ratios.push((mode, row.ratio));
        out.flush()?;
    }
    writeln!(
        out,
        "\nframes/s: frames the two hosts received per wall second; forwarded/s: the router's; ratio: the router's \
         forwarded/s ÷ the direct link's frames/s, median of the runs' ratios"
    )?;
    for (mode, r) in &ratios {
        let met = if *r >= FORWARD_GOAL { "met" } else { "not met" };
        writeln!(out, "goal, a router at {FORWARD_GOAL} of a direct link or better, {mode}: {r:.2} ({met})")?;
    }

    let row = lab_row(lab_reps)?;
    writeln!(out, "\nlabs/routed.json, headless, virtual time, capture off, median of {} runs", lab_reps.max(1))?;
    writeln!(
        out,
        "{:<40} {:>8} {:>9} {:>8} {:>10} {:>13}",
        "", "sim s", "wall ms", "frames", "frames/s", "sim s/wall s"
    )?;
    for (name, r) in [("routed.json (2 routers)", row.routed), ("switched twin (routers as switches)", row.twin)] {
        writeln!(
            out,
            "  {name:<38} {:>8.3} {:>9.3} {:>8} {:>10.0} {:>13.0}",
            r.sim.as_secs_f64(),
            r.wall.as_secs_f64() * 1e3,
            r.frames,
            r.fps(),
            r.speed()
        )?;
    }
    writeln!(
        out,
        "the twin: the same hosts, links and apps on one subnet, each router a switch ({} app{} aimed at a router dropped);\n\
         it moves about the same frames over a longer simulated time (its transfer starts later: h1 must find h3 by ARP),\n\
         so compare frames/s, not sim s/wall s",
        row.dropped_apps,
        if row.dropped_apps == 1 { "" } else { "s" }
    )?;
    let s = row.routed.speed();
    let met = if s >= ROUTED_GOAL { "met" } else { "not met" };
    writeln!(
        out,
        "goal, labs/routed.json at {ROUTED_GOAL:.0}x real time or faster: {s:.0}x ({met}); its frames/s are {:.2} of its twin's",
        row.routed.fps() / row.twin.fps()
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forwarding_labs_run_and_the_router_carries_every_frame() {
        let d = forward(1 << 20, false, false).expect("direct");
        let r = forward(1 << 20, false, true).expect("routed");
        // 1 MiB in segments of 1460 bytes: over 700 data frames, and ACKs.
        assert!(d.host_frames > 700, "{d:?}");
        assert_eq!(d.forwarded, 0);
        assert!(r.forwarded > 700, "{r:?}");
        // Every frame crossed two links.
        assert!(r.link_frames >= 2 * r.forwarded, "{r:?}");
        assert!(r.fps() > 0.0 && r.forwarding_fps() > 0.0 && d.gbps() > 0.0);
        let row = forward_row(1 << 20, true, 1).expect("one round, offload");
        assert!(row.ratio > 0.0 && row.ratio.is_finite(), "{row:?}");
    }

    #[test]
    fn the_twin_of_routed_json_has_no_router_and_runs_to_the_end() {
        let (text, dropped) = switched_twin(ROUTED_LAB).expect("twin");
        // routed.json pings r2, and sends two pings too large for h3's link (its MTU step): they go.
        assert_eq!(dropped, 3);
        let twin = topology::load_str(&text, "twin.json").expect("the twin is valid");
        let routed = topology::load_str(ROUTED_LAB, "routed.json").expect("valid");
        assert_eq!(twin.nodes.len(), routed.nodes.len());
        assert_eq!(twin.links.len(), routed.links.len());
        assert!(twin.nodes.iter().all(|n| !matches!(n.kind, topology::NodeKind::Router(_))));
        let row = lab_row(1).expect("one run each");
        assert!(row.routed.sim > Duration::from_secs(1), "{row:?}");
        assert!(row.routed.speed() > 0.0 && row.routed.fps() > 0.0, "{row:?}");
        // The twin moves about the same frames (the bench compares frames a second).
        let f = row.twin.frames as f64 / row.routed.frames as f64;
        assert!((0.98..1.02).contains(&f), "{row:?}");
    }

    #[test]
    fn the_whole_bench_runs_at_a_tiny_size() {
        let mut out = Vec::new();
        run_router(1 << 20, 1, 1, &mut out).expect("runs");
        let out = String::from_utf8(out).expect("utf-8");
        // Two tables (checksums, offload) of two rows, and the lab's two rows.
        for (line, times) in
            [("  direct link ", 2), ("  one router ", 2), ("  routed.json (2 routers) ", 1), ("  switched twin ", 1)]
        {
            assert_eq!(out.matches(line).count(), times, "{line}\n{out}");
        }
        assert_eq!(out.matches("goal, a router at 0.7 of a direct link or better").count(), 2, "{out}");
        assert!(out.contains("goal, labs/routed.json at 1000x real time or faster: "), "{out}");
        assert!(run_router(1 << 19, 1, 1, &mut Vec::new()).is_err(), "less than 1 MiB");
    }

    #[test]
    fn a_twin_needs_routers_and_a_broken_run_is_an_error() {
        assert!(switched_twin(&forward_lab_text(1 << 20, false, false)).is_err());
        // Every frame lost on h1's link: its pings and its transfer fail, and the bench must not
        // report such a run as a figure.
        let text = ROUTED_LAB.replacen(r#""rate": "1Gbit" } },"#, r#""rate": "1Gbit", "loss": 1.0 } },"#, 1);
        assert_ne!(text, ROUTED_LAB);
        let lab = topology::load_str(&text, "lossy.json").expect("valid");
        let opts =
            RunOptions { speed: runtime::Speed::Max, duration: Some(Duration::from_secs(5)), ..RunOptions::default() };
        let r = runtime::run(&lab, &opts, &mut ()).expect("runs");
        assert!(check_apps(&r).is_err(), "a run with every frame of h1 lost passed");
    }
}
