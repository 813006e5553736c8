//! The end-of-run report: data, written as JSON by `--report` and summed up by a front end.

use std::time::Duration;

use serde::Serialize;

use super::pacer::Speed;
use crate::capture::CaptureInfo;
use crate::sim::apps::{AppState, Outcome};
use crate::sim::{LoggedCommand, Sim};
use crate::stats::{Counters, LinkCounters};
use crate::topology::Lab;

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ended {
    /// Every client app finished.
    AppsFinished,
    /// `--duration` was reached.
    Duration,
    /// SIGINT or SIGTERM.
    Signal,
    /// A control (a UI's quit) stopped it.
    Stopped,
    /// Nothing was left to happen.
    Idle,
    /// The virtual-time safety limit.
    TimeLimit,
    /// The capture could not be written (a closed pipe, a full disk).
    CaptureFailed,
    /// The site that started this one (`netlab tunnel`) left, and nothing else can reach it.
    PeerLeft,
}

#[derive(Debug, Clone, Serialize)]
pub struct AppEntry {
    pub app: String,
    pub state: AppState,
    /// When the app was to start, in simulated seconds.
    pub start_seconds: f64,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub lab: String,
    pub description: String,
    pub seed: u64,
    pub mode: &'static str,
    /// Simulated seconds per wall second the run was paced at, or `max`.
    pub speed: String,
    pub ended: Ended,
    pub sim_seconds: f64,
    pub wall_seconds: f64,
    /// Simulated seconds per wall-clock second.
    pub speedup: f64,
    pub frames: u64,
    pub bytes: u64,
    pub apps: Vec<AppEntry>,
    pub links: Vec<LinkCounters>,
    pub capture: Option<CaptureInfo>,
    /// Why the capture failed, if it did.
    pub capture_error: Option<String>,
    /// Wall clock only: how late, at worst, an event was handled after its simulated time.
    pub max_lateness_ms: Option<f64>,
    /// Every command applied, with its simulated time: `--replay` takes this file.
    pub commands: Vec<LoggedCommand>,
    /// Commands that could not be applied, and why.
    pub command_errors: Vec<String>,
    /// What `check` warned of in the lab file, each with its place.
    pub warnings: Vec<String>,
    /// The conversations, most bytes first (`--flows`).
    pub flows: Option<Vec<FlowEntry>>,
    /// The site this process ran (`--site`), when it ran one.
    pub site: Option<String>,
    /// Each tunnel end this process ran: state, counters, refusals.
    pub tunnels: Vec<crate::transport::TunnelStatus>,
    /// What happened to the tunnels' connections, and what they refused from where (rate-limited).
    pub tunnel_log: Vec<String>,
    /// Each router: routes, neighbours, packets forwarded and dropped by reason, ICMP errors sent.
    pub routers: Vec<crate::sim::snapshot::RouterSnapshot>,
    /// Each port forward this process ran, with the address it listened on.
    pub forwards: Vec<ForwardEntry>,
    /// Each node with flows to or from real sockets (forwards' hosts, exit gateways): counters,
    /// open flows and the most recent that ended.
    pub bridges: Vec<crate::sim::snapshot::BridgeSnapshot>,
    /// What the forwards and gateways logged: listeners, refused destinations (rate-limited).
    pub bridge_log: Vec<String>,
    /// The lab's expectations (`expect`), each measured: what, the value, the bound, and whether
    /// it holds.
    pub expectations: Vec<super::expect::ExpectationResult>,
}

/// A port forward as it ran.
#[derive(Debug, Clone, Serialize)]
pub struct ForwardEntry {
    pub proto: crate::topology::Proto,
    pub listen: String,
    pub from: String,
    pub to: String,
}

/// Lateness on the wall clock worth a warning.
pub const LATE_WARNING_MS: f64 = 5.0;

/// Conversations a report keeps track of; the least recently seen go first.
pub const FLOWS_KEPT: usize = 65_536;

/// One conversation, as the report lists it.
#[derive(Debug, Clone, Serialize)]
pub struct FlowEntry {
    pub protocol: String,
    /// The side that sent first, and the other.
    pub a: String,
    pub b: String,
    pub packets_a_to_b: u64,
    pub packets_b_to_a: u64,
    pub bytes_a_to_b: u64,
    pub bytes_b_to_a: u64,
    pub start_seconds: f64,
    pub seconds: f64,
    /// TCP: the state on the wire, retransmissions, zero windows, the handshake's round trip.
    pub tcp_state: Option<&'static str>,
    pub retransmissions: Option<u64>,
    pub zero_windows: Option<u64>,
    pub handshake_rtt_ms: Option<f64>,
}

/// The table's flows, most bytes first.
#[must_use]
pub fn flows(t: &crate::inspect::FlowTable) -> Vec<FlowEntry> {
    let mut v: Vec<FlowEntry> = t
        .iter()
        .map(|f| FlowEntry {
            protocol: f.key.protocol.to_string(),
            a: f.a.to_string(),
            b: f.b.to_string(),
            packets_a_to_b: f.a_to_b.packets,
            packets_b_to_a: f.b_to_a.packets,
            bytes_a_to_b: f.a_to_b.bytes,
            bytes_b_to_a: f.b_to_a.bytes,
            start_seconds: f.first_ns as f64 / 1e9,
            seconds: (f.last_ns - f.first_ns) as f64 / 1e9,
            tcp_state: f.tcp.as_ref().map(|t| t.state.as_str()),
            retransmissions: f.tcp.as_ref().map(|t| t.retransmissions),
            zero_windows: f.tcp.as_ref().map(|t| t.zero_windows),
            handshake_rtt_ms: f.tcp.as_ref().and_then(|t| t.handshake_rtt_ns).map(|n| n as f64 / 1e6),
        })
        .collect();
    v.sort_by(|x, y| (y.bytes_a_to_b + y.bytes_b_to_a).cmp(&(x.bytes_a_to_b + x.bytes_b_to_a)).then(x.a.cmp(&y.a)));
    v
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    #[must_use]
    pub fn new(
        lab: &Lab,
        seed: u64,
        speed: Speed,
        ended: Ended,
        sim: &Sim,
        counters: Counters,
        wall: Duration,
        capture: Option<CaptureInfo>,
    ) -> Self {
        let sim_seconds = sim.now().as_secs_f64();
        let wall_seconds = wall.as_secs_f64();
        Report {
            lab: lab.name.clone(),
            description: lab.description.clone(),
            seed,
            mode: if speed.is_max() { "virtual-time" } else { "wall-clock" },
            speed: speed.to_string(),
            ended,
            sim_seconds,
            wall_seconds,
            speedup: if wall_seconds > 0.0 { sim_seconds / wall_seconds } else { 0.0 },
            frames: counters.frames,
            bytes: counters.bytes,
            apps: sim
                .app_reports()
                .into_iter()
                .map(|a| AppEntry {
                    app: a.label,
                    state: a.state,
                    start_seconds: a.start.as_secs_f64(),
                    outcome: a.outcome,
                })
                .collect(),
            links: counters.links,
            capture,
            capture_error: None,
            max_lateness_ms: None,
            commands: Vec::new(),
            command_errors: Vec::new(),
            warnings: lab.warnings.iter().map(ToString::to_string).collect(),
            flows: None,
            site: None,
            tunnels: Vec::new(),
            tunnel_log: Vec::new(),
            routers: sim.snapshot().routers,
            forwards: Vec::new(),
            bridges: sim.bridges(),
            bridge_log: Vec::new(),
            expectations: Vec::new(),
        }
    }

    /// What the run warns of: a paced run that fell behind the wall clock, commands that could
    /// not be applied.
    #[must_use]
    pub fn run_warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if let Some(late) = self.max_lateness_ms.filter(|ms| *ms > LATE_WARNING_MS) {
            w.push(format!("events ran up to {late:.1} ms behind the wall clock"));
        }
        w.extend(self.command_errors.iter().map(|e| format!("a command was not applied: {e}")));
        w
    }

    /// Whether every expectation holds (a lab with none: yes).
    #[must_use]
    pub fn expectations_hold(&self) -> bool {
        self.expectations.iter().all(|e| e.ok)
    }
}
