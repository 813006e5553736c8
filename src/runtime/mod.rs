//! The runtime: the edge that owns a running lab and gives it time.
//!
//! [`Driver`] owns the core ([`Sim`](crate::sim::Sim)), its observers (counters, capture) and the
//! one clock ([`Pacer`]): virtual time, paced against the wall clock at a speed factor, or run
//! as fast as the CPU allows (`--speed max`, `--virtual-time`). Headless runs, `bench` and UIs use
//! it; what a person reads (progress lines, summaries) lives with each front end, not here.

mod driver;
mod expect;
mod pacer;
mod report;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use driver::{Control, Driver, FeedEvent, LabSnapshot, Presenter, Progress};
pub use expect::{evaluate, ExpectationResult};
pub use pacer::{Due, Pacer, Speed};
pub use report::{AppEntry, Ended, FlowEntry, Report, LATE_WARNING_MS};

use crate::sim::LoggedCommand;
use crate::time::SimTime;
use crate::topology::Lab;

/// A virtual-time run without `--duration` stops here even if a client never finishes.
pub const VIRTUAL_TIME_LIMIT: SimTime = SimTime::from_millis(24 * 3600 * 1000);

/// Where captures go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureChoice {
    /// As the lab file says (by default every link, pcapng, in `captures/<lab>/`).
    Lab,
    Off,
    /// This pcapng file, or `-` for standard output.
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub duration: Option<Duration>,
    /// How fast simulated time runs against the wall clock; `Speed::Max` is virtual time.
    pub speed: Speed,
    /// The seed; the lab file's when `None`.
    pub seed: Option<u64>,
    pub capture: CaptureChoice,
    /// Commands to apply at their logged times (`--replay`).
    pub replay: Vec<LoggedCommand>,
    /// Set to stop the run early (signals set it).
    pub stop: Arc<AtomicBool>,
    /// Keep the lab up when its apps are done (a UI: the user says when it ends).
    pub keep_running: bool,
    /// Track conversations and list them in the report (`--flows`): a parse of every packet.
    pub flows: bool,
    /// Carry every link in memory, tunnels too (`--in-memory`): one process, no sockets.
    pub in_memory: bool,
    /// Which sites run here (`--site`; `netlab tunnel`).
    pub placement: crate::transport::Placement,
    /// The tunnels' key file (`--key-file`); else `NETLAB_KEY`.
    pub key_file: Option<PathBuf>,
    /// `--listen` and `--connect`.
    pub overrides: crate::transport::Overrides,
    /// Write the tunnels' log to standard error as it comes (a headless run).
    pub log_tunnels: bool,
    /// Port forwards besides the lab file's (`--forward`).
    pub forwards: Vec<crate::topology::Forward>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            duration: None,
            speed: Speed::Factor(1.0),
            seed: None,
            capture: CaptureChoice::Off,
            replay: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            keep_running: false,
            flows: false,
            in_memory: false,
            placement: crate::transport::Placement::All,
            key_file: None,
            overrides: crate::transport::Overrides::default(),
            log_tunnels: false,
            forwards: Vec::new(),
        }
    }
}

/// The default name of a run's capture file: its start time, or the seed in virtual time.
#[must_use]
pub fn run_name(virtual_time: bool, seed: u64) -> String {
    if virtual_time {
        format!("virtual-seed{seed}")
    } else {
        humantime::format_rfc3339_millis(SystemTime::now()).to_string().replace(':', "-")
    }
}

/// Runs a lab to its end and reports, telling `presenter` of its progress.
pub fn run(lab: &Lab, opts: &RunOptions, presenter: &mut impl Presenter) -> anyhow::Result<Report> {
    let mut driver = Driver::new(lab, opts)?;
    if opts.log_tunnels {
        driver.echo_tunnel_log();
    }
    let ended = driver.run(presenter);
    Ok(driver.finish(ended))
}
