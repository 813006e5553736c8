//! The driver: the one object that owns a running lab's core, its observers and its clock.
//!
//! Headless runs, `bench` and UIs all use it. It runs the core event by event at each event's own
//! simulated time, waiting for the wall clock first when the run is paced (see [`Pacer`]), so a
//! paced run and a virtual-time run compute the same frames. Commands, pause, single steps and
//! speed changes come in through [`Driver::control`] (a bounded channel, for a UI on another
//! thread) or as direct calls; replayed commands are applied at their logged times.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use serde::Serialize;

use super::pacer::{Due, Pacer, Speed};
use super::report::{Ended, Report};
use super::{CaptureChoice, RunOptions, VIRTUAL_TIME_LIMIT};
use crate::capture::{self, Capture, Sink};
use crate::sim::timeline::Timeline;
use crate::sim::{CommandError, CommandSpec, LoggedCommand, Sim, Snapshot, Stepped};
use crate::sim::{Observer, PacketId};
use crate::stats::{Counters, LinkCounters};
use crate::time::SimTime;
use crate::topology::{Lab, LinkId, Side};

/// How far simulated time moves past a step that did nothing but ask for another step at once.
const STALL_NUDGE: Duration = Duration::from_micros(100);
/// How often captured frames are handed to the writer.
const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// How often a presenter hears of progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// The longest a paced driver waits without looking at signals and progress.
const WAKE_AT_LEAST: Duration = Duration::from_millis(100);
/// How long a lab whose sites all run here waits for its tunnels to come up before it starts.
const PEERS_IN_ONE_PROCESS: Duration = Duration::from_secs(10);
/// Events a snapshot lists, the most recent.
const RECENT_EVENTS: usize = 64;
/// Controls that may wait for the driver; a UI that sends more waits (backpressure). Tunnels
/// never wait: a batch of frames that does not fit is dropped and counted.
const CONTROL_QUEUE: usize = 256;

/// What a UI or another thread asks of a running driver.
#[derive(Debug)]
pub enum Control {
    /// Apply a command now (at the paced clock's current simulated time).
    Apply(CommandSpec),
    Pause,
    Resume,
    /// While paused: run the next event.
    Step,
    SetSpeed(Speed),
    /// End the run.
    Stop,
    /// Send a snapshot back.
    Snapshot(SyncSender<LabSnapshot>),
    /// A frame from a remote end (a transport): it arrives at the paced clock's current time.
    Frame {
        link: LinkId,
        from: Side,
        packet: Option<PacketId>,
        frame: Vec<u8>,
    },
    /// Start or stop capturing a link. With no capture running, one starts in the lab's capture
    /// folder.
    Capture {
        link: LinkId,
        on: bool,
    },
    /// Frames from a tunnel's peer: they arrive at the paced clock's current time.
    Frames(Vec<crate::transport::InFrame>),
    /// The real sockets of forwards and exit gateways have said something: take it from their
    /// inbox.
    BridgeWake,
}

/// The lab as a UI sees it: the core's snapshot, the counters, and the clock.
#[derive(Debug, Clone, Serialize)]
pub struct LabSnapshot {
    pub sim: Snapshot,
    pub links: Vec<LinkCounters>,
    pub frames: u64,
    pub bytes: u64,
    pub speed: String,
    pub paused: bool,
    pub max_lateness_ms: f64,
    /// Steps of the core so far: a single step adds one.
    pub steps: u64,
    /// The capture's files, and which links it captures now.
    pub capture_files: Vec<String>,
    pub capturing: Vec<bool>,
    /// Each tunnel end this process runs.
    pub tunnels: Vec<crate::transport::TunnelStatus>,
    /// Events of the lab file applied so far, and the most recent of them (`0.500s events[1] …`).
    pub events_applied: u64,
    pub recent_events: Vec<String>,
}

/// What a presenter hears about a run in progress.
#[derive(Debug, Clone)]
pub struct Progress {
    pub sim: SimTime,
    pub wall: Duration,
    pub frames: u64,
    pub bytes: u64,
    pub final_tick: bool,
    /// Each tunnel end this process runs.
    pub tunnels: Vec<crate::transport::TunnelStatus>,
}

/// Shows a run in progress: a headless progress line, or nothing.
pub trait Presenter {
    fn progress(&mut self, p: &Progress);
    /// An event of the lab file applied at `at` (`events[2] flap wan 1/3 down`).
    fn event(&mut self, _at: SimTime, _what: &str) {}
}

impl Presenter for () {
    fn progress(&mut self, _: &Progress) {}
}

/// How a paced wait ended.
enum Wait {
    /// The wall clock reached the event.
    Reached,
    /// A control changed things: look again.
    Interrupted,
}

pub struct Driver {
    lab: Lab,
    seed: u64,
    sim: Sim,
    counters: Counters,
    capture: Option<Capture>,
    pacer: Pacer,
    end: Option<SimTime>,
    has_clients: bool,
    /// Commands to apply at their times: the lab's events, or a replayed log.
    timeline: Timeline,
    /// Events applied and not yet told to the presenter.
    untold: Vec<(SimTime, String)>,
    /// The last events applied, for a UI: how many so far, and the most recent.
    events_applied: u64,
    recent_events: VecDeque<String>,
    /// Commands applied, with their times: the run's command log.
    log: Vec<LoggedCommand>,
    /// Commands that could not be applied, with why.
    command_errors: Vec<String>,
    max_lateness: Duration,
    /// Steps in a row that moved nothing yet asked to run again at once.
    stalled: u32,
    wall_start: Instant,
    last_flush: Instant,
    last_progress: Instant,
    stop: Arc<AtomicBool>,
    inbox: Option<Receiver<Control>>,
    /// The sending side of `inbox`, kept so that every caller of `control` (and the tunnels)
    /// shares one channel.
    control_tx: Option<SyncSender<Control>>,
    stopped_by_control: bool,
    /// The tunnels to other sites (or between the sites of this process), if any.
    tunnels: Option<crate::transport::Tunnels>,
    /// The real sockets of forwards and exit gateways, if the part of the lab here has any.
    bridges: Option<crate::transport::bridges::Bridges>,
    /// What the core's bridges asked of the edge in the last step.
    bridge_out: Vec<crate::sim::bridge::BridgeOut>,
    /// The site this process runs alone, by name.
    site: Option<String>,
    /// Some site of the lab (not only this one) has client apps: with `--site`, the run ends when
    /// every site's are done.
    lab_has_clients: bool,
    steps: u64,
    keep_running: bool,
    /// Added to capture timestamps: the Unix time of the start on the wall clock, 0 in virtual time.
    epoch_ns: u64,
    /// Frame events for a UI, if one asked.
    feed: Option<Feed>,
    /// The conversations, for the report (`--flows`).
    flows: Option<FlowObserver>,
}

/// Feeds a flow table with each packet once: where the host that made it sent it.
struct FlowObserver {
    table: crate::inspect::FlowTable,
    /// The node at each side of each link.
    ends: Vec<[usize; 2]>,
}

impl crate::sim::Observer for FlowObserver {
    fn frame(&mut self, ev: &crate::sim::FrameEvent<'_>) {
        if ev.fate == crate::sim::Fate::Sent
            && ev
                .packet
                .origin()
                .is_some_and(|n| Some(&n.index()) == self.ends.get(ev.link.index()).map(|e| &e[ev.from.index()]))
        {
            self.table.observe(ev.time.as_nanos(), ev.frame);
        }
    }
}

/// One frame event, owned, for a UI on another thread.
#[derive(Debug, Clone)]
pub struct FeedEvent {
    pub time: SimTime,
    pub link: LinkId,
    pub from: Side,
    pub packet: PacketId,
    pub fate: crate::sim::Fate,
    pub frame: Vec<u8>,
}

/// The observer that hands frame events to a UI through a bounded channel. A UI that does not keep
/// up never slows the lab: what does not fit is counted and dropped.
struct Feed {
    tx: SyncSender<FeedEvent>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
}

impl crate::sim::Observer for Feed {
    fn frame(&mut self, ev: &crate::sim::FrameEvent<'_>) {
        let e = FeedEvent {
            time: ev.time,
            link: ev.link,
            from: ev.from,
            packet: ev.packet,
            fate: ev.fate,
            frame: ev.frame.to_vec(),
        };
        if self.tx.try_send(e).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Driver {
    /// Builds the lab's core and observers, and opens the capture.
    pub fn new(lab: &Lab, opts: &RunOptions) -> anyhow::Result<Self> {
        use crate::transport::Placement;
        let in_memory;
        let lab: &Lab = if opts.in_memory {
            in_memory = lab.clone().in_memory();
            &in_memory
        } else {
            lab
        };
        // Forwards given on the command line join the lab file's.
        let with_forwards;
        let lab: &Lab = if opts.forwards.is_empty() {
            lab
        } else {
            let mut l = lab.clone();
            l.forwards.extend(opts.forwards.iter().cloned());
            with_forwards = l;
            &with_forwards
        };
        let seed = opts.seed.unwrap_or(lab.seed);
        let virtual_time = opts.speed.is_max();
        let site = match &opts.placement {
            Placement::All => None,
            Placement::Site(s) | Placement::Stdio(s) => Some(*s),
        };
        if let Some(s) = site {
            anyhow::ensure!(s < lab.sites.len(), "the lab has no such site");
        }
        let tunneled = !lab.tunnels.is_empty()
            && (site.is_none() || lab.tunnels.iter().any(|t| Some(t.caller) == site || Some(t.callee) == site));
        if tunneled && opts.speed != Speed::Factor(1.0) {
            anyhow::bail!(
                "this lab's links between sites are tunnels, which run on the wall clock at speed 1, not at {}: \
                 add --in-memory to carry them in memory, in one process (then any speed, and virtual time, work)",
                opts.speed
            );
        }
        let epoch_ns = if virtual_time {
            0
        } else {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(0))
        };
        let mut capture = match &opts.capture {
            CaptureChoice::Off => None,
            CaptureChoice::Lab if !lab.capture.enabled || lab.capture.links.is_empty() => None,
            CaptureChoice::Lab => {
                let target = Capture::default_target(lab, &super::run_name(virtual_time, seed));
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
        let mut sim = match site {
            None => Sim::new(lab, Some(seed)),
            Some(s) => Sim::with_remote(lab, Some(seed), |n| lab.node_site(n) != Some(s)),
        };
        let lab_has_clients = if site.is_some() { Sim::new(lab, Some(seed)).has_clients() } else { sim.has_clients() };
        // A replayed log holds every command the run applied, its events' too.
        let timeline = if opts.replay.is_empty() {
            Timeline::of_lab(lab, |n| site.is_none_or(|s| lab.node_site(n) == Some(s)))
        } else {
            Timeline::of_log(lab, &opts.replay)
        };
        let (control_tx, inbox) = sync_channel(CONTROL_QUEUE);
        let tunnels = if tunneled {
            if site.is_none() {
                let links: Vec<LinkId> = lab.tunnels.iter().flat_map(|t| t.links.iter().copied()).collect();
                sim.tunnel_links(&links);
            }
            let security = crate::transport::Security::for_run(lab, opts.key_file.as_deref(), site.is_none())?;
            Some(crate::transport::Tunnels::start(lab, &opts.placement, security, &opts.overrides, control_tx.clone())?)
        } else {
            None
        };
        let runs_here = |n: crate::topology::NodeId| site.is_none_or(|s| lab.node_site(n) == Some(s));
        let forwards: Vec<crate::topology::Forward> =
            lab.forwards.iter().filter(|f| runs_here(f.from)).cloned().collect();
        let bridges = if forwards.is_empty() && !sim.has_bridges() {
            None
        } else {
            if opts.speed != Speed::Factor(1.0) {
                anyhow::bail!(
                    "this lab reaches real sockets (forwards or an exit gateway), which run on the wall clock at \
                     speed 1, not at {}",
                    opts.speed
                );
            }
            let b = crate::transport::bridges::Bridges::start(lab, &forwards, control_tx.clone())?;
            if lab.nodes.iter().any(|n| runs_here(n.id) && n.kind.name() == "gateway") {
                sim.set_exit_echo(b.echo_allowed());
                b.note(if b.echo_allowed() {
                    "exit gateways carry ICMP echo out through unprivileged ping sockets".to_string()
                } else {
                    "exit gateways answer ICMP echo with administratively prohibited: this machine grants no \
                     unprivileged ping sockets (net.ipv4.ping_group_range)"
                        .to_string()
                });
            }
            Some(b)
        };
        let now = Instant::now();
        Ok(Driver {
            lab: lab.clone(),
            seed,
            has_clients: sim.has_clients(),
            sim,
            counters: Counters::new(lab),
            capture,
            pacer: Pacer::new(opts.speed, now),
            end: opts.duration.map(SimTime::from_duration),
            timeline,
            untold: Vec::new(),
            events_applied: 0,
            recent_events: VecDeque::new(),
            log: Vec::new(),
            command_errors: Vec::new(),
            max_lateness: Duration::ZERO,
            stalled: 0,
            wall_start: now,
            last_flush: now,
            last_progress: now,
            stop: Arc::clone(&opts.stop),
            inbox: (tunnels.is_some() || bridges.is_some()).then_some(inbox),
            control_tx: (tunnels.is_some() || bridges.is_some()).then_some(control_tx),
            stopped_by_control: false,
            tunnels,
            bridges,
            bridge_out: Vec::new(),
            site: site.map(|s| lab.sites[s].name.clone()),
            lab_has_clients,
            steps: 0,
            keep_running: opts.keep_running,
            epoch_ns,
            feed: None,
            flows: opts.flows.then(|| FlowObserver {
                table: crate::inspect::FlowTable::new(super::report::FLOWS_KEPT),
                ends: lab.links.iter().map(|l| [l.ends[0].node().index(), l.ends[1].node().index()]).collect(),
            }),
        })
    }

    /// A channel to control the run from another thread. Calling it again replaces the channel.
    pub fn control(&mut self) -> SyncSender<Control> {
        if let Some(tx) = &self.control_tx {
            return tx.clone();
        }
        let (tx, rx) = sync_channel(CONTROL_QUEUE);
        self.inbox = Some(rx);
        self.control_tx = Some(tx.clone());
        tx
    }

    /// The tunnels' and the bridges' logs go to standard error as they are written (a headless run).
    pub fn echo_tunnel_log(&self) {
        if let Some(t) = &self.tunnels {
            t.echo_log(true);
        }
        if let Some(b) = &self.bridges {
            b.echo_log();
        }
    }

    /// A feed of every frame event, for a UI: at most `capacity` wait; the counter says how many
    /// did not fit.
    pub fn feed(&mut self, capacity: usize) -> (Receiver<FeedEvent>, Arc<std::sync::atomic::AtomicU64>) {
        let (tx, rx) = sync_channel(capacity);
        let dropped = Arc::new(std::sync::atomic::AtomicU64::new(0));
        self.feed = Some(Feed { tx, dropped: Arc::clone(&dropped) });
        (rx, dropped)
    }

    #[must_use]
    pub fn sim(&self) -> &Sim {
        &self.sim
    }

    #[must_use]
    pub fn seed(&self) -> u64 {
        self.seed
    }

    #[must_use]
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Steps the core at `t` with the observers; keeps count of steps that asked for more at once
    /// without moving anything.
    fn step_at(&mut self, t: SimTime) -> Stepped {
        if let Some(changed) = self.tunnels.as_mut().and_then(crate::transport::Tunnels::reachability) {
            for (link, up) in changed {
                self.sim.set_reachable(link, up);
            }
        }
        let mut obs = ((&mut self.counters, self.capture.as_mut()), (self.feed.as_mut(), self.flows.as_mut()));
        let s = self.sim.step(t, &mut obs);
        if let Some(b) = &self.bridges {
            self.sim.drain_bridges(&mut self.bridge_out);
            for o in self.bridge_out.drain(..) {
                b.dispatch(o);
            }
        }
        if let Some(tun) = &mut self.tunnels {
            // What reached a tunnel goes to its end's task; what it cannot take is dropped, and
            // the observers hear why.
            let mut refused = Vec::new();
            for f in self.sim.drain_outbox() {
                if let Err(r) = tun.send(f) {
                    refused.push(r);
                }
            }
            tun.flush();
            if self.sim.clients_done() {
                tun.local_done();
            }
            for (f, reason) in refused {
                obs.frame(&crate::sim::FrameEvent {
                    time: f.at,
                    link: f.link,
                    from: f.from,
                    packet: f.packet,
                    fate: crate::sim::Fate::Dropped(reason),
                    frame: &f.frame,
                });
                self.sim.recycle(f.frame);
            }
        }
        if !s.moved() && self.sim.next_deadline() == Some(self.sim.now()) {
            self.stalled += 1;
        } else {
            self.stalled = 0;
        }
        self.steps += 1;
        s
    }

    /// The next time the core wants a step: its deadline, moved on by [`STALL_NUDGE`] when steps
    /// keep asking for "now" without doing anything (a safety net against an app or a stack that
    /// keeps saying "now").
    fn next_deadline(&self) -> Option<SimTime> {
        let next = self.sim.next_deadline();
        if self.stalled > 2 && next == Some(self.sim.now()) {
            Some(self.sim.now() + STALL_NUDGE)
        } else {
            next
        }
    }

    /// The next time anything happens: an event of the core, an event of the lab or a replayed
    /// command, or the end.
    fn next_target(&self) -> Option<SimTime> {
        [self.next_deadline(), self.timeline.next_at(), self.end].into_iter().flatten().min()
    }

    /// Steps every event due by `t`, so that a command applied next sees the lab settled at `t`.
    fn settle(&mut self, t: SimTime) {
        while let Some(next) = self.next_deadline().filter(|n| *n <= t) {
            self.step_at(next);
        }
    }

    /// Applies a command at the core's current time and logs it.
    pub fn apply(&mut self, spec: CommandSpec) -> Result<(), CommandError> {
        self.apply_from(spec, None)
    }

    /// Applies a command and logs it with the event that applied it, if one did.
    fn apply_from(&mut self, spec: CommandSpec, event: Option<String>) -> Result<(), CommandError> {
        let result = spec.resolve_in(&self.lab, &self.sim).and_then(|cmd| {
            let mut obs = ((&mut self.counters, self.capture.as_mut()), (self.feed.as_mut(), self.flows.as_mut()));
            self.sim.apply(&cmd, &mut obs)?;
            if matches!(cmd, crate::sim::Command::StartApp { .. }) {
                // A client started by a command is one the run waits for.
                self.has_clients = self.sim.has_clients();
            }
            Ok(())
        });
        let at_ns = self.sim.now().as_nanos();
        match &result {
            Ok(()) => self.log.push(LoggedCommand { at_ns, command: spec, event }),
            Err(e) => self.command_errors.push(format!("{:.6}s {spec}: {e}", SimTime::from_nanos(at_ns).as_secs_f64())),
        }
        result
    }

    /// Applies the commands of the timeline that are due, once the lab has settled at their time.
    fn apply_scheduled(&mut self) -> bool {
        let now = self.sim.now();
        let mut any = false;
        while self.timeline.next_at().is_some_and(|t| t <= now) && self.next_deadline().is_none_or(|d| d > now) {
            let sim = &self.sim;
            let Some(fired) = self.timeline.pop_due(now, |l| sim.link_up(l).unwrap_or(false)) else { break };
            for spec in fired.commands {
                let _ = self.apply_from(spec, fired.event.clone());
            }
            if let Some(what) = fired.event {
                self.events_applied += 1;
                if self.recent_events.len() == RECENT_EVENTS {
                    self.recent_events.pop_front();
                }
                self.recent_events.push_back(format!("{now} {what}"));
                self.untold.push((now, what));
            }
            any = true;
        }
        any
    }

    /// Tells the presenter of the events applied since it last heard.
    fn tell_events(&mut self, presenter: &mut impl Presenter) {
        for (at, what) in self.untold.drain(..) {
            presenter.event(at, &what);
        }
    }

    /// The simulated time the paced clock shows now, never before the core's own time nor past
    /// `limit` (the event it waits for).
    fn paced_now(&self, limit: SimTime) -> SimTime {
        self.pacer.sim_at(Instant::now()).clamp(self.sim.now(), limit.max(self.sim.now()))
    }

    /// Handles one control while the driver waits for `target`.
    fn handle(&mut self, c: Control, target: SimTime) {
        let wall = Instant::now();
        match c {
            Control::Apply(spec) => {
                let at = self.paced_now(target);
                if at > self.sim.now() {
                    self.step_at(at);
                }
                self.settle(at);
                let _ = self.apply(spec);
            }
            Control::Pause if !self.pacer.paused() => {
                let at = self.paced_now(target);
                self.pacer.pause(at, wall);
            }
            Control::Resume if self.pacer.paused() => {
                let at = self.pacer.sim_at(wall);
                self.pacer.resume(at, wall);
            }
            Control::Pause | Control::Resume => {}
            Control::Step => {
                if self.pacer.paused() {
                    if let Some(t) = self.next_target() {
                        self.step_at(t);
                        self.apply_scheduled();
                        self.pacer.pause(self.sim.now(), wall);
                    }
                }
            }
            Control::SetSpeed(s) if self.tunnels.is_some() && s != Speed::Factor(1.0) => {
                self.command_errors.push(format!("speed {s}: a lab with tunnels runs at speed 1"));
            }
            Control::SetSpeed(s) => {
                let at = if self.pacer.paused() { self.pacer.sim_at(wall) } else { self.paced_now(target) };
                self.pacer.set_speed(s, at, wall);
            }
            Control::Stop => self.stopped_by_control = true,
            Control::Snapshot(reply) => {
                let _ = reply.try_send(self.snapshot());
            }
            Control::Frame { link, from, packet, frame } => self.inject(link, from, packet, &frame),
            Control::Frames(batch) => {
                for f in batch {
                    self.inject(f.link, f.from, f.packet, &f.frame);
                }
            }
            Control::BridgeWake => {
                self.take_bridged(target);
            }
            Control::Capture { link, on } => {
                if let Err(e) = self.set_capture(link, on) {
                    self.command_errors.push(format!("capture of link {}: {e:#}", link.0));
                }
            }
        }
    }

    /// Takes what the real sockets said, at the paced clock's time. Whether there was anything.
    fn take_bridged(&mut self, target: SimTime) -> bool {
        let msgs = match &self.bridges {
            Some(b) => b.take(),
            None => return false,
        };
        if msgs.is_empty() {
            return false;
        }
        let at = self.paced_now(target);
        if at > self.sim.now() {
            self.step_at(at);
        }
        for msg in msgs {
            self.sim.bridge_in(msg);
        }
        true
    }

    /// Takes the controls waiting without blocking.
    fn poll_controls(&mut self, target: SimTime) -> bool {
        let mut any = self.take_bridged(target);
        while let Some(c) = self.inbox.as_ref().and_then(|rx| rx.try_recv().ok()) {
            self.handle(c, target);
            any = true;
        }
        any
    }

    /// Waits until the wall clock reaches `target` (scaled by the speed), handling controls and
    /// progress on the way.
    fn wait_for(&mut self, target: SimTime, presenter: &mut impl Presenter) -> Wait {
        loop {
            if self.stop.load(Ordering::Relaxed) || self.stopped_by_control {
                return Wait::Interrupted;
            }
            if self.tunnels.is_some() || self.bridges.is_some() {
                // A peer site that says its apps are done, or left, can end the run while nothing
                // is due.
                if self.should_end().is_some() {
                    return Wait::Interrupted;
                }
                // Frames from peers join the lab as they come, even while events are due back to
                // back: a driver that only read them when it had time to wait would hand over a
                // busy stretch's frames all at once, late.
                if self.poll_controls(target) {
                    return Wait::Interrupted;
                }
            }
            let now = Instant::now();
            let left = if self.pacer.paused() {
                WAKE_AT_LEAST
            } else {
                match self.pacer.due(target, now) {
                    Due::Now { late } => {
                        // Nothing waits for the end of time: a lab with nothing left to do.
                        if target < SimTime::MAX {
                            self.max_lateness = self.max_lateness.max(late);
                            return Wait::Reached;
                        }
                        WAKE_AT_LEAST
                    }
                    Due::In(left) => left.min(WAKE_AT_LEAST),
                }
            };
            let left = left.min(PROGRESS_EVERY.saturating_sub(now - self.last_progress));
            let got = match &self.inbox {
                Some(rx) => match rx.recv_timeout(left) {
                    Ok(c) => Some(c),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => {
                        self.inbox = None;
                        None
                    }
                },
                None => {
                    std::thread::sleep(left);
                    None
                }
            };
            if let Some(c) = got {
                self.handle(c, target);
                return Wait::Interrupted;
            }
            self.tick(presenter, false);
        }
    }

    /// Hands captured frames to the writer and tells the presenter, at their intervals.
    fn tick(&mut self, presenter: &mut impl Presenter, force: bool) {
        let now = Instant::now();
        if force || now - self.last_flush >= FLUSH_EVERY {
            if let Some(c) = &mut self.capture {
                c.flush();
            }
            self.last_flush = now;
        }
        if force || now - self.last_progress >= PROGRESS_EVERY {
            presenter.progress(&Progress {
                sim: self.sim.now(),
                wall: self.wall_start.elapsed(),
                frames: self.counters.frames,
                bytes: self.counters.bytes,
                final_tick: force,
                tunnels: self.tunnels.as_ref().map(crate::transport::Tunnels::status).unwrap_or_default(),
            });
            self.last_progress = now;
        }
    }

    /// Why the run should end now, if it should.
    fn should_end(&self) -> Option<Ended> {
        if self.stop.load(Ordering::Relaxed) {
            return Some(Ended::Signal);
        }
        if self.stopped_by_control {
            return Some(Ended::Stopped);
        }
        if self.capture.as_ref().is_some_and(Capture::writer_stopped) {
            return Some(Ended::CaptureFailed);
        }
        let stdio_closed = self.tunnels.as_ref().is_some_and(crate::transport::Tunnels::stdio_closed);
        let ended = match self.end {
            Some(end) if self.sim.now() >= end => Some(Ended::Duration),
            // One site of several: done when every site's clients are.
            None if self.site.is_some() => (self.lab_has_clients
                && !self.keep_running
                && self.sim.clients_done()
                && self.timeline.is_empty()
                && self.tunnels.as_ref().is_none_or(crate::transport::Tunnels::peers_done))
            .then_some(Ended::AppsFinished),
            // Events still to come may start apps, or change what the apps measure.
            None if self.has_clients && !self.keep_running && self.sim.clients_done() && self.timeline.is_empty() => {
                Some(Ended::AppsFinished)
            }
            _ => None,
        };
        ended.or(stdio_closed.then_some(Ended::PeerLeft))
    }

    /// Runs until the run ends: its apps finish, its duration is reached, a signal or a control
    /// stops it, or nothing is left to happen.
    pub fn run(&mut self, presenter: &mut impl Presenter) -> Ended {
        let ended = self.run_loop(presenter);
        self.tick(presenter, true);
        ended
    }

    fn run_loop(&mut self, presenter: &mut impl Presenter) -> Ended {
        if !self.wait_for_peers(presenter) {
            return if self.stopped_by_control { Ended::Stopped } else { Ended::Signal };
        }
        self.step_at(SimTime::ZERO);
        loop {
            let paced = !self.pacer.speed().is_max();
            self.apply_scheduled();
            self.tell_events(presenter);
            if let Some(e) = self.should_end() {
                return e;
            }
            let target = match self.next_target() {
                // Virtual time without a duration stops at its safety limit, reached.
                Some(t) if t > VIRTUAL_TIME_LIMIT && self.end.is_none() && !paced => {
                    self.step_at(VIRTUAL_TIME_LIMIT);
                    return Ended::TimeLimit;
                }
                Some(t) => t,
                None if !paced && self.inbox.is_none() => return Ended::Idle,
                // Paced, or driven from outside: nothing is due, but a command may come.
                None => SimTime::MAX,
            };
            // Paced, paused, or with nothing to do but wait for a control: wait, never spin.
            if paced || self.pacer.paused() || target == SimTime::MAX {
                match self.wait_for(target, presenter) {
                    Wait::Reached => {}
                    Wait::Interrupted => continue,
                }
            } else if self.inbox.is_some() && self.poll_controls(target) {
                continue;
            }
            if target == SimTime::MAX {
                continue;
            }
            self.step_at(target);
            if self.steps.is_multiple_of(256) || paced {
                self.tick(presenter, false);
            }
        }
    }

    /// Before the lab starts, waits until every tunnel is up, so that its first frames (and apps)
    /// find the lab whole: without end with `--site` (the peers may start later), and for at most
    /// [`PEERS_IN_ONE_PROCESS`] when every site runs here. The clock starts once they are up.
    /// False when a signal or a control stopped the run meanwhile.
    fn wait_for_peers(&mut self, presenter: &mut impl Presenter) -> bool {
        let Some(t) = &self.tunnels else { return true };
        let started = Instant::now();
        let mut last = Instant::now();
        while !t.status().iter().all(|e| e.state == crate::transport::State::Up) {
            if self.site.is_none() && started.elapsed() > PEERS_IN_ONE_PROCESS {
                break;
            }
            if t.stdio_closed() {
                break;
            }
            if self.stop.load(Ordering::Relaxed) {
                return false;
            }
            if let Some(rx) = &self.inbox {
                match rx.recv_timeout(Duration::from_millis(20)) {
                    // Frames from a peer that started first arrive at the start.
                    Ok(Control::Frames(batch)) => {
                        let mut obs =
                            ((&mut self.counters, self.capture.as_mut()), (self.feed.as_mut(), self.flows.as_mut()));
                        for f in batch {
                            self.sim.inject(f.link, f.from, SimTime::ZERO, f.packet, &f.frame, &mut obs);
                        }
                    }
                    Err(_) => {}
                    Ok(Control::Stop) => {
                        self.stopped_by_control = true;
                        return false;
                    }
                    Ok(Control::Snapshot(reply)) => {
                        let _ = reply.try_send(self.snapshot());
                    }
                    // A forward's connection accepted before the lab started opens at its start.
                    Ok(Control::BridgeWake) => {
                        for msg in
                            self.bridges.as_ref().map(crate::transport::bridges::Bridges::take).unwrap_or_default()
                        {
                            self.sim.bridge_in(msg);
                        }
                    }
                    Ok(_) => {}
                }
            }
            if last.elapsed() >= PROGRESS_EVERY {
                last = Instant::now();
                presenter.progress(&Progress {
                    sim: SimTime::ZERO,
                    wall: self.wall_start.elapsed(),
                    frames: 0,
                    bytes: 0,
                    final_tick: false,
                    tunnels: t.status(),
                });
            }
        }
        let now = Instant::now();
        self.pacer = Pacer::new(self.pacer.speed(), now);
        self.wall_start = now;
        self.last_progress = now;
        true
    }

    /// A frame from a remote end, arriving now: stamped with the paced clock's current simulated
    /// time (never before the lab's own), so that a frame from outside takes its place among the
    /// lab's events as it would have in real time.
    pub fn inject(&mut self, link: LinkId, from: Side, packet: Option<PacketId>, frame: &[u8]) {
        let at = self.pacer.sim_at(Instant::now()).max(self.sim.now());
        let mut obs = ((&mut self.counters, self.capture.as_mut()), (self.feed.as_mut(), self.flows.as_mut()));
        self.sim.inject(link, from, at, packet, frame, &mut obs);
    }

    /// Starts or stops capturing a link; with no capture running, starts one in the lab's folder.
    pub fn set_capture(&mut self, link: LinkId, on: bool) -> anyhow::Result<()> {
        anyhow::ensure!(link.index() < self.lab.links.len(), "no such link");
        if self.capture.is_none() && on {
            let mut lab = self.lab.clone();
            lab.capture.links.clear();
            let target = Capture::default_target(&lab, &super::run_name(self.pacer.speed().is_max(), self.seed));
            let mut c = Capture::start(&lab, target, self.epoch_ns).context("cannot start the capture")?;
            c.set_give_up_flag(Arc::clone(&self.stop));
            self.capture = Some(c);
        }
        if let Some(c) = &mut self.capture {
            c.set_link(link, on);
        }
        Ok(())
    }

    /// An owned picture of the running lab.
    #[must_use]
    pub fn snapshot(&self) -> LabSnapshot {
        LabSnapshot {
            sim: self.sim.snapshot(),
            links: self.counters.links.clone(),
            frames: self.counters.frames,
            bytes: self.counters.bytes,
            speed: self.pacer.speed().to_string(),
            paused: self.pacer.paused(),
            max_lateness_ms: self.max_lateness.as_secs_f64() * 1e3,
            steps: self.steps,
            capture_files: self.capture.as_ref().map(|c| c.files().to_vec()).unwrap_or_default(),
            capturing: self
                .capture
                .as_ref()
                .map_or_else(|| vec![false; self.lab.links.len()], |c| c.links_on().to_vec()),
            tunnels: self.tunnels.as_ref().map(crate::transport::Tunnels::status).unwrap_or_default(),
            events_applied: self.events_applied,
            recent_events: self.recent_events.iter().cloned().collect(),
        }
    }

    /// Closes the capture and writes the report.
    #[must_use]
    pub fn finish(mut self, ended: Ended) -> Report {
        let (tunnels, tunnel_log) = match self.tunnels.take() {
            Some(mut t) => {
                t.shutdown();
                (t.status(), t.log())
            }
            None => (Vec::new(), Vec::new()),
        };
        let (forwards, bridge_log) = match self.bridges.take() {
            Some(mut b) => {
                b.shutdown();
                let forwards = b
                    .listening
                    .iter()
                    .map(|l| super::report::ForwardEntry {
                        proto: l.forward.proto,
                        listen: l.local.to_string(),
                        from: self.lab.nodes.get(l.forward.from.index()).map_or_else(String::new, |n| n.name.clone()),
                        to: l.forward.to.to_string(),
                    })
                    .collect();
                (forwards, b.log())
            }
            None => (Vec::new(), Vec::new()),
        };
        let (capture, capture_error) = match self.capture.take().map(Capture::finish) {
            Some(Ok(info)) => (Some(info), None),
            Some(Err(e)) => (None, Some(e.to_string())),
            None => (None, None),
        };
        let speed = self.pacer.speed();
        let mut report = Report::new(
            &self.lab,
            self.seed,
            speed,
            ended,
            &self.sim,
            self.counters,
            self.wall_start.elapsed(),
            capture,
        );
        report.capture_error = capture_error;
        if let Some(f) = &self.flows {
            report.flows = Some(super::report::flows(&f.table));
        }
        report.site = self.site;
        report.tunnels = tunnels;
        report.tunnel_log = tunnel_log;
        report.forwards = forwards;
        report.bridge_log = bridge_log;
        report.commands = self.log;
        report.command_errors = self.command_errors;
        if !speed.is_max() {
            report.max_lateness_ms = Some(self.max_lateness.as_secs_f64() * 1e3);
        }
        let site = report.site.as_deref().and_then(|s| self.lab.site_index(s));
        report.expectations =
            super::expect::evaluate(&self.lab, &report, |n| site.is_none_or(|s| self.lab.node_site(n) == Some(s)));
        report
    }
}
