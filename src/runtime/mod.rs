//! Drivers: the edge that owns a [`Sim`] and gives it time.
//!
//! - Virtual time: step, then jump straight to `next_deadline()`. No sleeping; a lab runs as fast as
//!   the CPU allows and the same seed gives the same bytes.
//! - Wall clock: a tokio timer sleeps until the next deadline (or the next progress tick).
//!
//! Both watch a stop flag set by SIGINT/SIGTERM, print a progress line, and end with a [`Report`].

mod report;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;

pub use report::{AppEntry, Ended, Report};

use crate::capture::{self, Capture, Sink};
use crate::sim::Sim;
use crate::stats::Counters;
use crate::time::SimTime;
use crate::topology::Lab;

/// A virtual-time run without `--duration` stops here even if a client never finishes.
pub const VIRTUAL_TIME_LIMIT: SimTime = SimTime::from_millis(24 * 3600 * 1000);

const FLUSH_EVERY: Duration = Duration::from_millis(250);
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// How far virtual time moves past a step that did nothing but ask for another step at once.
const STALL_NUDGE: Duration = Duration::from_micros(100);

/// Below this, the wall-clock driver sleeps with the OS timer rather than tokio's.
const PRECISE_SLEEP: Duration = Duration::from_millis(2);

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
    pub virtual_time: bool,
    pub seed: Option<u64>,
    pub capture: CaptureChoice,
    /// Print a progress line every second.
    pub progress: bool,
    /// Set to stop the run early (signals set it).
    pub stop: Arc<AtomicBool>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            duration: None,
            virtual_time: false,
            seed: None,
            capture: CaptureChoice::Off,
            progress: false,
            stop: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// Everything a driver loop needs besides time.
struct Run<'a> {
    sim: Sim,
    counters: Counters,
    capture: Option<Capture>,
    opts: &'a RunOptions,
    wall_start: Instant,
    last_flush: Instant,
    last_print: Instant,
    end: Option<SimTime>,
    /// Whether any app finishes by itself; a lab of servers alone runs until stopped.
    has_clients: bool,
    /// Wall clock: how late, at worst, an event was handled after its simulated time.
    max_lateness: Duration,
}

impl Run<'_> {
    fn observe_step(&mut self, now: SimTime) {
        let mut obs = (&mut self.counters, self.capture.as_mut());
        self.sim.step(now, &mut obs);
    }

    /// Why the run should end now, if it should.
    fn should_end(&self, now: SimTime) -> Option<Ended> {
        if self.opts.stop.load(Ordering::Relaxed) {
            return Some(Ended::Signal);
        }
        if self.capture.as_ref().is_some_and(Capture::writer_stopped) {
            return Some(Ended::CaptureFailed);
        }
        match self.end {
            Some(end) if now >= end => Some(Ended::Duration),
            None if self.has_clients && self.sim.clients_done() => Some(Ended::AppsFinished),
            _ => None,
        }
    }

    /// Hands captured frames to the writer every 250 ms and prints progress every second.
    fn tick(&mut self, force: bool) {
        let now = Instant::now();
        if force || now - self.last_flush >= FLUSH_EVERY {
            if let Some(c) = &mut self.capture {
                c.flush();
            }
            self.last_flush = now;
        }
        if self.opts.progress && (force || now - self.last_print >= PROGRESS_EVERY) {
            let line = format!(
                "[{:>10.3}s simulated, {:>7.1}s wall] {} frames, {}",
                self.sim.now().as_secs_f64(),
                self.wall_start.elapsed().as_secs_f64(),
                self.counters.frames,
                report::human_bytes(self.counters.bytes)
            );
            if std::io::stderr().is_terminal() {
                eprint!("\r{line}\x1b[K");
            } else {
                eprintln!("{line}");
            }
            self.last_print = now;
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

/// Runs a lab to its end and reports.
pub fn run(lab: &Lab, opts: &RunOptions) -> anyhow::Result<Report> {
    let seed = opts.seed.unwrap_or(lab.seed);
    let epoch_ns = if opts.virtual_time {
        0
    } else {
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(0))
    };
    let mut capture = match &opts.capture {
        CaptureChoice::Off => None,
        CaptureChoice::Lab if !lab.capture.enabled || lab.capture.links.is_empty() => None,
        CaptureChoice::Lab => {
            let target = Capture::default_target(lab, &run_name(opts.virtual_time, seed));
            Some(Capture::start(lab, target, epoch_ns).context("cannot start the capture")?)
        }
        CaptureChoice::File(p) => {
            let sink = if p.as_os_str() == "-" { Sink::Stdout } else { Sink::File(p.clone()) };
            Some(Capture::start(lab, capture::Target::Pcapng(sink), epoch_ns).context("cannot start the capture")?)
        }
    };
    if let Some(c) = &mut capture {
        c.set_give_up_flag(Arc::clone(&opts.stop));
    }
    let sim = Sim::new(lab, Some(seed));
    let wall_start = Instant::now();
    let mut run = Run {
        has_clients: sim.has_clients(),
        max_lateness: Duration::ZERO,
        sim,
        counters: Counters::new(lab),
        capture,
        opts,
        wall_start,
        last_flush: wall_start,
        last_print: wall_start,
        end: opts.duration.map(SimTime::from_duration),
    };
    let ended = if opts.virtual_time { virtual_loop(&mut run) } else { wall_loop(&mut run)? };
    if opts.progress {
        run.tick(true);
        if std::io::stderr().is_terminal() {
            eprintln!();
        }
    }
    let (capture, capture_error) = match run.capture.take().map(Capture::finish) {
        Some(Ok(info)) => (Some(info), None),
        Some(Err(e)) => (None, Some(e.to_string())),
        None => (None, None),
    };
    let mut report =
        Report::new(lab, seed, opts.virtual_time, ended, &run.sim, run.counters, wall_start.elapsed(), capture);
    report.capture_error = capture_error;
    if !opts.virtual_time {
        report.max_lateness_ms = Some(run.max_lateness.as_secs_f64() * 1e3);
    }
    Ok(report)
}

fn virtual_loop(run: &mut Run<'_>) -> Ended {
    let mut now = SimTime::ZERO;
    let mut n: u64 = 0;
    let mut stalled = 0u32;
    loop {
        let events = run.counters.events();
        run.observe_step(now);
        if let Some(e) = run.should_end(now) {
            return e;
        }
        n += 1;
        if n.is_multiple_of(1024) {
            run.tick(false);
        }
        let limit = run.end.unwrap_or(VIRTUAL_TIME_LIMIT);
        let mut next = run.sim.next_deadline();
        // A step that moved nothing and asks to run again at once would repeat forever: a safety
        // net against an app or a stack that keeps saying "now" without doing anything.
        if next == Some(now) && run.counters.events() == events {
            stalled += 1;
            if stalled > 2 {
                next = Some(now + STALL_NUDGE);
            }
        } else {
            stalled = 0;
        }
        now = match next {
            Some(t) if t <= limit => t,
            // Nothing happens before the end: jump to it.
            _ if run.end.is_some() => limit,
            Some(_) => return Ended::TimeLimit,
            None => return Ended::Idle,
        };
    }
}

fn wall_loop(run: &mut Run<'_>) -> anyhow::Result<Ended> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .context("cannot start the timer runtime")?;
    Ok(rt.block_on(async {
        let start = tokio::time::Instant::now();
        // The simulated time of the next event when the loop last slept for it.
        let mut due: Option<SimTime> = None;
        loop {
            // A late wake-up must not carry the lab past its end.
            let mut now = SimTime::from_duration(start.elapsed());
            if let Some(end) = run.end {
                now = now.min(end);
            }
            // How far behind the wall clock the lab is: the machine was busy, or the lab is more
            // than one core can simulate in real time.
            if let Some(t) = due.filter(|t| *t < now) {
                run.max_lateness = run.max_lateness.max(now - t);
            }
            let events = run.counters.events();
            run.observe_step(now);
            due = run.sim.next_deadline();
            if let Some(e) = run.should_end(now) {
                return e;
            }
            run.tick(false);
            // Wake for the next event, but at least every 100 ms to look at signals and progress.
            let mut wake = now + Duration::from_millis(100);
            if let Some(t) = due {
                wake = wake.min(t);
            }
            if let Some(end) = run.end {
                wake = wake.min(end);
            }
            // tokio's timer has millisecond granularity, which would add up to a millisecond per
            // hop; the last stretch before a deadline is slept precisely on this thread instead.
            let left = wake - now;
            if left > PRECISE_SLEEP {
                tokio::time::sleep_until(start + (wake.as_duration() - PRECISE_SLEEP)).await;
            } else if !left.is_zero() {
                std::thread::sleep(left);
            } else if run.counters.events() == events {
                // Due again at once, yet nothing moved: do not spin.
                std::thread::sleep(STALL_NUDGE);
            } else {
                tokio::task::yield_now().await;
            }
        }
    }))
}
