//! The pure core: nodes with ports, the fabric of links between them, and a scheduler, stepped
//! with an explicit time.
//!
//! `Sim::step(now, observer)` does everything due at `now`; `Sim::next_deadline()` says when the next
//! thing is due. Nothing here reads a clock, spawns a thread or imports tokio: a driver at the edge
//! (`runtime`) paces the steps. Frame events go to an [`Observer`]; capture and statistics are
//! observers, not parts of the core. Commands ([`Sim::apply`]) change a running lab; snapshots
//! ([`Sim::snapshot`]) show it; the outbox and [`Sim::inject`] connect link ends on other sites.
//!
//! Never imported here: tokio, ratatui, crossterm, `std::time::Instant`, `SystemTime`.

pub mod apps;
pub mod bridge;
#[cfg(test)]
mod bridge_tests;
pub mod command;
pub mod device;
pub mod fabric;
pub mod host;
pub mod link;
pub mod observe;
pub mod packet;
pub mod router;
pub mod snapshot;
pub mod switch;
pub mod timeline;

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

pub use command::{Command, CommandError, CommandSpec, LoggedCommand};
use device::FramePool;
pub use fabric::{End, OutFrame, Port};
use fabric::{Fabric, LinkState};
use host::Host;
use link::Direction;
pub use observe::{DropReason, Fate, FrameEvent, Observer};
pub use packet::PacketId;
use router::Router;
pub use snapshot::Snapshot;
use switch::{MacTable, Switch};

use crate::time::SimTime;
use crate::topology::{Attachment, Lab, LinkId, NodeId, NodeKind, Side};

/// Rounds of deliver-then-poll in one `step`; past it, `step` returns so that the driver can look
/// at signals and the clock, and `next_deadline` answers "now".
const ROUNDS_PER_STEP: usize = 256;

/// A node of the lab, as this process runs it.
enum NodeState {
    Host(Box<Host>),
    Switch(Switch),
    Router(Box<Router>),
    /// A node of another site: its link ends are remote.
    Remote,
}

/// What a step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stepped {
    /// Frames that arrived at a node.
    pub delivered: usize,
    /// Frames the hosts received and sent.
    pub frames: usize,
}

impl Stepped {
    /// Whether anything moved.
    #[must_use]
    pub fn moved(&self) -> bool {
        self.delivered > 0 || self.frames > 0
    }
}

/// One app's label, state, start and outcome, for reports.
#[derive(Debug, Clone)]
pub struct AppReport {
    pub label: String,
    pub state: apps::AppState,
    pub start: SimTime,
    pub outcome: apps::Outcome,
}

/// A node's timer: when, and which setting of it (older entries in the heap are stale).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    at: SimTime,
    node: u32,
    generation: u32,
}

/// The node wake-ups: a heap of timers, and the nodes to poll in the next round.
#[derive(Default)]
struct Scheduler {
    /// Timers, earliest first; an entry is live while it is its node's current one.
    timers: BinaryHeap<Reverse<Timer>>,
    /// Each node's current timer, if it has one, and the generation of its last setting.
    timer: Vec<(Option<SimTime>, u32)>,
    /// Nodes with work at the current time (input, a due timer, room on a full link), polled in
    /// index order; `is_due` keeps each in once.
    due: Vec<u32>,
    is_due: Vec<bool>,
}

impl Scheduler {
    fn live(&self, t: &Timer) -> bool {
        self.timer[t.node as usize] == (Some(t.at), t.generation)
    }

    fn set_timer(&mut self, node: u32, at: Option<SimTime>) {
        let slot = &mut self.timer[node as usize];
        if slot.0 == at {
            return;
        }
        slot.0 = at;
        if let Some(at) = at {
            slot.1 = slot.1.wrapping_add(1);
            self.timers.push(Reverse(Timer { at, node, generation: slot.1 }));
            // Each node has one live entry at most; timers that were moved leave stale ones
            // behind, swept when they outnumber the nodes.
            if self.timers.len() > 4 * self.timer.len() + 4096 {
                let timer = &self.timer;
                self.timers.retain(|Reverse(t)| timer[t.node as usize] == (Some(t.at), t.generation));
            }
        }
    }

    fn make_due(&mut self, node: u32) {
        self.timer[node as usize].0 = None;
        if !std::mem::replace(&mut self.is_due[node as usize], true) {
            self.due.push(node);
        }
    }

    /// Takes the due nodes, in index order, into `into`.
    fn take_due(&mut self, into: &mut Vec<u32>) {
        into.clear();
        into.append(&mut self.due);
        into.sort_unstable();
        for &n in &*into {
            self.is_due[n as usize] = false;
        }
    }

    /// Moves every timer due by `now` into the due set.
    fn fire(&mut self, now: SimTime) {
        while let Some(&Reverse(t)) = self.timers.peek() {
            if t.at > now {
                break;
            }
            self.timers.pop();
            if self.live(&t) {
                self.make_due(t.node);
            }
        }
    }

    /// The earliest live timer; drops stale entries on the way.
    fn next_timer(&mut self) -> Option<SimTime> {
        while let Some(&Reverse(t)) = self.timers.peek() {
            if self.live(&t) {
                return Some(t.at);
            }
            self.timers.pop();
        }
        None
    }
}

/// A running lab, or the part of it that runs in this process.
pub struct Sim {
    now: SimTime,
    nodes: Vec<NodeState>,
    fabric: Fabric,
    link_names: Vec<String>,
    pool: RefCell<FramePool>,
    sched: Scheduler,
    /// Work left over when a step ran out of rounds.
    pending: bool,
    /// The earliest timer, kept between steps so that `next_deadline` needs no `&mut`.
    next_timer: Option<SimTime>,
    /// Frames that entered from outside without an id.
    foreign: u64,
    /// The nodes with a bridge to real sockets (forwards, exit gateways).
    bridged: Vec<u32>,
    /// Hosts with a client app still to finish: kept as hosts are polled, so that asking whether
    /// the run is over costs nothing however large the lab.
    unfinished: usize,
    /// The nodes polled in a round (see `step`).
    ready: Vec<u32>,
}

/// A 64-bit mix (splitmix64) so that nearby seeds give unrelated streams.
#[must_use]
pub fn derive_seed(seed: u64, a: u64, b: u64) -> u64 {
    let mut z = seed ^ a.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b.wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn port_of(a: Attachment) -> Port {
    match a {
        Attachment::HostInterface { node, interface } => Port { node, port: interface as u32 },
        Attachment::SwitchPort { node, port } => Port { node, port: port as u32 },
    }
}

impl Sim {
    /// Builds the whole lab; `seed` overrides the lab file's.
    #[must_use]
    pub fn new(lab: &Lab, seed: Option<u64>) -> Self {
        Self::with_remote(lab, seed, |_| false)
    }

    /// Builds the part of the lab whose nodes are not `remote`. A link between a local and a remote
    /// node has a remote end: frames that reach it go to the outbox ([`Sim::drain_outbox`]), and
    /// frames from it come in through [`Sim::inject`]. Seeds and packet ids are those of the whole
    /// lab, so the parts of a split lab together behave as the lab whole.
    #[must_use]
    pub fn with_remote(lab: &Lab, seed: Option<u64>, remote: impl Fn(NodeId) -> bool) -> Self {
        let seed = seed.unwrap_or(lab.seed);
        let nodes: Vec<NodeState> = lab
            .nodes
            .iter()
            .map(|n| match &n.kind {
                _ if remote(n.id) => NodeState::Remote,
                NodeKind::Host(h) => NodeState::Host(Box::new(Host::new(
                    n.id,
                    &n.name,
                    h,
                    derive_seed(seed, 1, u64::from(n.id.0)),
                    lab.checksum_offload,
                ))),
                NodeKind::Switch(s) => NodeState::Switch(Switch {
                    id: n.id,
                    name: n.name.clone(),
                    ports: s.ports.len() as u32,
                    table: MacTable::new(s.mac_ageing),
                }),
                NodeKind::Router(r) => NodeState::Router(Box::new(Router::new(n.id, &n.name, r, lab.checksum_offload))),
            })
            .collect();
        let links = lab
            .links
            .iter()
            .map(|l| LinkState {
                ends: l.ends.map(|a| if remote(a.node()) { End::Remote(port_of(a)) } else { End::Local(port_of(a)) }),
                up: l.up,
                tunneled: false,
                reachable: true,
                dirs: [Side::A, Side::B].map(|side| {
                    Direction::new(
                        l.id,
                        side,
                        *l.model_from(side),
                        derive_seed(seed, 2, u64::from(l.id.0) * 2 + side.index() as u64),
                    )
                }),
            })
            .collect();
        let mut nodes = nodes;
        // The hosts port forwards start from carry their flows in a bridge; exit gateways have one.
        for f in &lab.forwards {
            if let Some(NodeState::Host(h)) = nodes.get_mut(f.from.index()) {
                h.enable_bridge();
            }
        }
        let bridged: Vec<u32> = nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| matches!(n, NodeState::Host(h) if h.bridge.is_some()))
            .map(|(i, _)| i as u32)
            .collect();
        let mut sched =
            Scheduler { timer: vec![(None, 0); nodes.len()], is_due: vec![false; nodes.len()], ..Scheduler::default() };
        // Every host starts with a poll at time zero.
        for (i, n) in nodes.iter().enumerate() {
            if matches!(n, NodeState::Host(_)) {
                sched.make_due(i as u32);
            }
        }
        let unfinished = nodes.iter().filter(|n| matches!(n, NodeState::Host(h) if !h.clients_done())).count();
        Sim {
            unfinished,
            ready: Vec::new(),
            now: SimTime::ZERO,
            fabric: Fabric::new(nodes.len(), links),
            nodes,
            link_names: lab.links.iter().map(|l| l.name.clone()).collect(),
            pool: RefCell::new(FramePool::default()),
            sched,
            pending: false,
            next_timer: None,
            foreign: 0,
            bridged,
        }
    }

    /// What the edge says of a bridged flow (a forward's or an exit gateway's), at the current
    /// time. A flow of a node this process does not run, or that has no bridge, is ignored.
    pub fn bridge_in(&mut self, msg: bridge::BridgeIn) {
        let node = msg.flow().node.index();
        let now = self.now;
        if let Some(NodeState::Host(h)) = self.nodes.get_mut(node) {
            if h.bridge.is_some() {
                h.bridge_input(now, msg);
                self.sched.make_due(node as u32);
            }
        }
    }

    /// Takes what the bridges ask of the edge, in node order.
    pub fn drain_bridges(&mut self, out: &mut Vec<bridge::BridgeOut>) {
        for &n in &self.bridged {
            if let Some(NodeState::Host(h)) = self.nodes.get_mut(n as usize) {
                if let Some(b) = &mut h.bridge {
                    out.append(&mut b.out);
                }
            }
        }
    }

    /// Whether exit gateways carry ICMP echo out (the edge can: the machine grants unprivileged
    /// ping sockets), or answer it with administratively prohibited.
    pub fn set_exit_echo(&mut self, on: bool) {
        for &n in &self.bridged {
            if let Some(NodeState::Host(h)) = self.nodes.get_mut(n as usize) {
                if let Some(b) = &mut h.bridge {
                    b.set_echo(on);
                }
            }
        }
    }

    /// Whether any node here bridges flows to real sockets.
    #[must_use]
    pub fn has_bridges(&self) -> bool {
        !self.bridged.is_empty()
    }

    /// The bridged flows and counters of each node that has a bridge.
    #[must_use]
    pub fn bridges(&self) -> Vec<snapshot::BridgeSnapshot> {
        self.bridged
            .iter()
            .filter_map(|&n| match self.nodes.get(n as usize) {
                Some(NodeState::Host(h)) => h.bridge.as_ref().map(|b| snapshot::BridgeSnapshot {
                    node: h.name.clone(),
                    kind: if b.is_exit() { "gateway" } else { "forward" },
                    counters: b.counters,
                    flows: b.flows(),
                }),
                _ => None,
            })
            .collect()
    }

    #[must_use]
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Does everything due at `now` (time never goes back: an earlier `now` counts as the current)
    /// and says what moved.
    ///
    /// A step repeats rounds of *deliver every frame that has arrived by `now`, earliest first, then
    /// poll every node with work, in index order* until a round moves nothing. Only nodes with work
    /// are looked at, so a step costs what happens in it, not the size of the lab.
    pub fn step<O: Observer>(&mut self, now: SimTime, obs: &mut O) -> Stepped {
        self.now = self.now.max(now);
        let now = self.now;
        self.pending = false;
        self.sched.fire(now);
        let mut total = Stepped::default();
        // The nodes of a round, in a buffer kept from step to step: the hot path does not allocate.
        let mut ready = std::mem::take(&mut self.ready);
        let mut done = false;
        for _ in 0..ROUNDS_PER_STEP {
            let delivered = self.deliver(now, obs);
            let mut frames = 0;
            self.sched.take_due(&mut ready);
            for &n in &ready {
                if let NodeState::Router(r) = &mut self.nodes[n as usize] {
                    r.poll(now, &mut self.fabric, self.pool.get_mut(), obs);
                    self.sched.set_timer(n, r.next_wake());
                    continue;
                }
                let NodeState::Host(h) = &mut self.nodes[n as usize] else { continue };
                if h.due(now, &self.fabric) {
                    let was_done = h.clients_done();
                    frames += h.poll(now, &mut self.fabric, &self.pool, obs);
                    Self::count_done(&mut self.unfinished, was_done, h.clients_done());
                    // Its input queue is read: links it held back hand over their frames again.
                    for (l, side) in h.take_held() {
                        self.fabric.release(l, side);
                    }
                }
                if h.due(now, &self.fabric) {
                    self.sched.make_due(n);
                } else {
                    self.sched.set_timer(n, h.next_wake(now, &self.fabric));
                }
            }
            total.delivered += delivered;
            total.frames += frames;
            if delivered == 0 && frames == 0 {
                done = true;
                break;
            }
        }
        self.ready = ready;
        self.pending = !done;
        self.next_timer = self.sched.next_timer();
        total
    }

    /// Hands every frame that has arrived by `now` to its node, in order of arrival across links,
    /// each at its own arrival time (ties go by link, then A→B before B→A). A frame a switch
    /// forwards may be due before `now` ends and goes in its turn. Returns how many arrived.
    fn deliver<O: Observer>(&mut self, now: SimTime, obs: &mut O) -> usize {
        let mut n = 0;
        let pool = self.pool.get_mut();
        while let Some((arr, frame)) = self.fabric.pop_arrival(now, pool, obs) {
            n += 1;
            let node = self.fabric.far_node(arr.link, arr.from);
            match &mut self.nodes[node.index()] {
                NodeState::Host(h) => match h.receive(&arr, frame, pool, obs) {
                    host::Admit::Taken => self.sched.make_due(node.0),
                    host::Admit::Dropped => {}
                    host::Admit::Full(frame) => {
                        self.fabric.hold(&arr, frame);
                        self.sched.make_due(node.0);
                    }
                },
                NodeState::Switch(s) => s.receive(&arr, frame, &mut self.fabric, pool, obs),
                NodeState::Router(r) => {
                    r.receive(&arr, frame, &mut self.fabric, pool, obs);
                    self.sched.set_timer(node.0, r.next_wake());
                }
                NodeState::Remote => pool.give(frame),
            }
        }
        n
    }

    /// A frame from a remote end: it reaches the local end of `link` at `at` (not before now), sent
    /// by side `from`. `packet` is its id from the far side, if the transport carried one. The
    /// bytes are untrusted; the link's bound on frames in flight drops (and counts) the excess.
    pub fn inject<O: Observer>(
        &mut self,
        link: LinkId,
        from: Side,
        at: SimTime,
        packet: Option<PacketId>,
        frame: &[u8],
        obs: &mut O,
    ) {
        let pool = self.pool.get_mut();
        let packet = packet.unwrap_or_else(|| {
            self.foreign += 1;
            PacketId::foreign(self.foreign)
        });
        let mut buf = pool.take(frame.len());
        buf.extend_from_slice(frame);
        self.fabric.inject(self.now, OutFrame { link, from, at, packet, frame: buf }, pool, obs);
    }

    /// Takes the frames that reached remote link ends, oldest first.
    pub fn drain_outbox(&mut self) -> impl Iterator<Item = OutFrame> + '_ {
        self.fabric.outbox.drain(..)
    }

    /// Sends the frames of these links through the outbox even where both ends run here, so that a
    /// transport carries them (every site of a lab in one process, joined by real sockets).
    pub fn tunnel_links(&mut self, links: &[LinkId]) {
        for l in links {
            if let Some(s) = self.fabric.links.get_mut(l.index()) {
                s.tunneled = true;
            }
        }
    }

    /// Says whether the transport that carries a link's frames to its remote end (or through its
    /// tunnel) is up; while it is down, those frames are dropped as `transport-down` when they
    /// reach that end.
    pub fn set_reachable(&mut self, link: LinkId, up: bool) {
        if let Some(s) = self.fabric.links.get_mut(link.index()) {
            s.reachable = up;
        }
    }

    /// Gives a spent outbox frame's buffer back for reuse.
    pub fn recycle(&mut self, frame: Vec<u8>) {
        self.pool.get_mut().give(frame);
    }

    /// When something is next due; `None` when nothing ever will be (an idle lab).
    #[must_use]
    pub fn next_deadline(&self) -> Option<SimTime> {
        if self.pending {
            return Some(self.now);
        }
        let mut next = apps::min_wake(self.fabric.next_arrival(), self.next_timer);
        for &n in &self.sched.due {
            let NodeState::Host(h) = &self.nodes[n as usize] else { continue };
            // A host blocked on a full link waits for a free slot even if its timer has passed.
            let t = if h.rx_len() > 0 {
                Some(self.now)
            } else if h.blocked || !h.due(self.now, &self.fabric) {
                h.next_wake(self.now, &self.fabric)
            } else {
                Some(self.now)
            };
            next = apps::min_wake(next, t);
        }
        next.map(|t| t.max(self.now))
    }

    /// Applies a command at the current time.
    pub fn apply<O: Observer>(&mut self, cmd: &Command, obs: &mut O) -> Result<(), CommandError> {
        let now = self.now;
        match cmd {
            Command::SetLink { link, up } => {
                if link.index() >= self.fabric.links.len() {
                    return Err(CommandError::NoLink(link.0.to_string()));
                }
                self.fabric.set_up(now, *link, *up, self.pool.get_mut(), obs);
                // Hosts blocked on this link's queue have room now (it is empty, or takes and drops).
                for end in self.fabric.links[link.index()].ends {
                    if let (End::Local(p), Some(NodeState::Host(_))) = (end, self.nodes.get(end.port().node.index())) {
                        self.sched.make_due(p.node.0);
                    }
                }
            }
            Command::SetModel { link, from, model } => {
                if link.index() >= self.fabric.links.len() {
                    return Err(CommandError::NoLink(link.0.to_string()));
                }
                self.fabric.set_model(*link, *from, *model);
            }
            Command::SetModels { link, a_to_b, b_to_a } => {
                if link.index() >= self.fabric.links.len() {
                    return Err(CommandError::NoLink(link.0.to_string()));
                }
                self.fabric.set_model(*link, Some(Side::A), *a_to_b);
                self.fabric.set_model(*link, Some(Side::B), *b_to_a);
            }
            Command::StartApp { node, app } => {
                let h = self.host_mut(*node)?;
                let was_done = h.clients_done();
                // A start already past is now: the app's schedule (a ping's requests) begins
                // here, rather than catching up on what it would have sent since.
                let mut app = app.clone();
                app.start = app.start.max(now.as_duration());
                h.start_app(now, &app);
                let is_done = h.clients_done();
                Self::count_done(&mut self.unfinished, was_done, is_done);
                self.sched.make_due(node.0);
            }
            Command::StopApp { node, app } => {
                let h = self.host_mut(*node)?;
                let was_done = h.clients_done();
                let label = h.apps.get(*app).map(|a| a.label.clone());
                match label {
                    None => return Err(CommandError::NoApp { node: h.name.clone(), app: app.to_string() }),
                    Some(l) if !h.stop_app(now, *app) => return Err(CommandError::Stopped(l)),
                    Some(_) => {}
                }
                let is_done = h.clients_done();
                Self::count_done(&mut self.unfinished, was_done, is_done);
                self.sched.make_due(node.0);
            }
        }
        self.next_timer = self.sched.next_timer();
        Ok(())
    }

    fn host_mut(&mut self, node: NodeId) -> Result<&mut Host, CommandError> {
        match self.nodes.get_mut(node.index()) {
            Some(NodeState::Host(h)) => Ok(h),
            Some(NodeState::Remote) => Err(CommandError::Remote(node.0.to_string())),
            Some(NodeState::Switch(s)) => Err(CommandError::NotAHost(s.name.clone())),
            Some(NodeState::Router(r)) => Err(CommandError::NotAHost(r.name.clone())),
            None => Err(CommandError::NoNode(node.0.to_string())),
        }
    }

    /// The model of one direction of a link now.
    #[must_use]
    pub fn link_model(&self, link: LinkId, from: Side) -> Option<crate::topology::LinkModel> {
        self.fabric.links.get(link.index()).map(|l| *l.dirs[from.index()].model())
    }

    /// The labels of a host's apps, in order (its own, then those started by commands); none for
    /// a node that is not a host here.
    #[must_use]
    pub fn app_labels(&self, node: NodeId) -> Vec<String> {
        match self.nodes.get(node.index()) {
            Some(NodeState::Host(h)) => h.apps.iter().map(|a| a.label.clone()).collect(),
            _ => Vec::new(),
        }
    }

    /// Whether a link is up.
    #[must_use]
    pub fn link_up(&self, link: LinkId) -> Option<bool> {
        self.fabric.links.get(link.index()).map(|l| l.up)
    }

    fn hosts(&self) -> impl Iterator<Item = &Host> {
        self.nodes.iter().filter_map(|n| match n {
            NodeState::Host(h) => Some(&**h),
            _ => None,
        })
    }

    /// Whether any app finishes by itself; a lab of servers alone runs until it is stopped.
    #[must_use]
    pub fn has_clients(&self) -> bool {
        self.hosts().any(|h| h.apps.iter().any(|a| !a.server))
    }

    /// Every client app on every host has finished.
    #[must_use]
    pub fn clients_done(&self) -> bool {
        self.unfinished == 0
    }

    fn count_done(unfinished: &mut usize, was: bool, is: bool) {
        match (was, is) {
            (true, false) => *unfinished += 1,
            (false, true) => *unfinished -= 1,
            _ => {}
        }
    }

    /// Each app's label, state, start and outcome, in lab order.
    #[must_use]
    pub fn app_reports(&self) -> Vec<AppReport> {
        self.hosts()
            .flat_map(|h| {
                h.apps.iter().map(|a| AppReport {
                    label: a.label.clone(),
                    state: a.state(self.now),
                    start: a.start,
                    outcome: a.app.outcome(),
                })
            })
            .collect()
    }

    /// MAC table of a switch, by node index.
    #[must_use]
    pub fn mac_table(&self, node: usize) -> Vec<([u8; 6], usize)> {
        match self.nodes.get(node) {
            Some(NodeState::Switch(s)) => s.table.entries().collect(),
            _ => Vec::new(),
        }
    }

    /// An owned picture of the lab now.
    #[must_use]
    pub fn snapshot(&self) -> Snapshot {
        let dir = |d: &Direction| snapshot::DirectionSnapshot {
            model: d.model().into(),
            waiting: d.waiting(self.now),
            in_flight: d.in_flight(),
        };
        Snapshot {
            now_ns: self.now.as_nanos(),
            links: self
                .fabric
                .links
                .iter()
                .zip(&self.link_names)
                .map(|(l, name)| snapshot::LinkSnapshot {
                    name: name.clone(),
                    up: l.up,
                    remote: l.ends.map(|e| matches!(e, End::Remote(_))),
                    a_to_b: dir(&l.dirs[0]),
                    b_to_a: dir(&l.dirs[1]),
                })
                .collect(),
            hosts: self.hosts().map(|h| snapshot::host(h, self.now)).collect(),
            switches: self
                .nodes
                .iter()
                .filter_map(|n| match n {
                    NodeState::Switch(s) => Some(snapshot::switch(s)),
                    _ => None,
                })
                .collect(),
            routers: self
                .nodes
                .iter()
                .filter_map(|n| match n {
                    NodeState::Router(r) => Some(snapshot::router(r, self.now)),
                    _ => None,
                })
                .collect(),
            bridges: self.bridges(),
        }
    }
}

/// What benches read of a run without the cost of a snapshot.
impl Sim {
    /// Each router's counters, in lab order.
    pub fn router_counters(&self) -> impl Iterator<Item = &router::RouterCounters> + '_ {
        self.nodes.iter().filter_map(|n| match n {
            NodeState::Router(r) => Some(&r.plane.counters),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Counters;
    use apps::Outcome;

    fn lab(links: &str, apps_a: &str) -> Lab {
        let text = format!(
            r#"{{ "name": "t", "nodes": {{
                "sw": {{ "kind": "switch" }},
                "a": {{ "kind": "host", "interfaces": {{ "eth0": {{ "addresses": ["10.0.0.1/24"] }} }}, "apps": [{apps_a}] }},
                "b": {{ "kind": "host", "interfaces": {{ "eth0": {{ "addresses": ["10.0.0.2/24"] }} }},
                       "apps": [ {{ "kind": "tcp-sink", "port": 9 }} ] }} }},
              "links": [{links}] }}"#
        );
        crate::topology::load_str(&text, "t.json").unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs in virtual time until the clients are done; returns the sim and its counters.
    fn run(lab: &Lab) -> (Sim, Counters) {
        let mut sim = Sim::new(lab, None);
        let mut c = Counters::new(lab);
        let mut now = SimTime::ZERO;
        for _ in 0..10_000_000 {
            sim.step(now, &mut c);
            if sim.clients_done() {
                return (sim, c);
            }
            now = sim.next_deadline().expect("something is due while clients run");
        }
        panic!("lab did not finish");
    }

    fn outcome(sim: &Sim, label: &str) -> Outcome {
        sim.app_reports().into_iter().find(|a| a.label == label).map(|a| a.outcome).expect("app")
    }

    #[test]
    fn ping_through_a_switch_learns_macs_and_measures_rtt() {
        let l = lab(
            r#"{ "a": "a:eth0", "b": "sw", "impair": { "latency": "1ms" } }, { "a": "b:eth0", "b": "sw", "impair": { "latency": "1ms" } }"#,
            r#"{ "kind": "ping", "to": "b", "count": 3, "interval": "100ms" }"#,
        );
        let (sim, c) = run(&l);
        let Outcome::Ping { sent, received, rtt, .. } = outcome(&sim, "a/ping") else { panic!() };
        assert_eq!((sent, received), (3, 3));
        // Four 1 ms hops; the first ping also waits for ARP.
        let rtt = rtt.expect("rtts");
        assert!((4.0..4.01).contains(&rtt.min_ms), "{rtt:?}");
        assert!(rtt.max_ms >= 4.0);
        let table = sim.mac_table(0);
        assert_eq!(table.len(), 2, "both hosts learned: {table:?}");
        assert_eq!(c.drops(DropReason::QueueFull), 0);
    }

    #[test]
    fn full_link_queue_backpressures_the_host_without_drops() {
        // 10 Mbit/s with a 4-frame queue: the sender's device is refused often, yet nothing drops.
        let l = crate::topology::load_str(
            &serde_json::json!({
                "name": "t",
                "nodes": {
                    "a": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.1/24"] } },
                           "apps": [ { "kind": "tcp-transfer", "to": "b:9", "bytes": "512KiB" } ] },
                    "b": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.2/24"] } },
                           "apps": [ { "kind": "tcp-sink", "port": 9 } ] }
                },
                "links": [ { "a": "a:eth0", "b": "b:eth0", "impair": { "rate": "10Mbit", "queue": 4, "latency": "1ms" } } ]
            })
            .to_string(),
            "t.json",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let (sim, c) = run(&l);
        let Outcome::TcpTransfer { acked, goodput_mbps, error, .. } = outcome(&sim, "a/tcp-transfer") else { panic!() };
        assert_eq!((acked, error), (512 * 1024, None));
        let g = goodput_mbps.expect("goodput");
        assert!((7.0..10.0).contains(&g), "goodput {g} Mbit/s is bounded by the 10 Mbit/s link");
        assert_eq!(c.links[0].a_to_b.dropped(), 0, "a host is backpressured, never dropped");
        let Outcome::TcpSink { bytes, corrupt_bytes, .. } = outcome(&sim, "b/tcp-sink") else { panic!() };
        assert_eq!((bytes, corrupt_bytes), (512 * 1024, 0));
    }

    #[test]
    fn switch_drops_when_its_output_queue_is_full_and_tcp_recovers() {
        // Fast in, slow out: the switch's egress towards b overflows.
        let l = lab(
            r#"{ "a": "a:eth0", "b": "sw", "impair": { "rate": "1Gbit" } }, { "a": "b:eth0", "b": "sw", "impair": { "rate": "10Mbit", "queue": 8 } }"#,
            r#"{ "kind": "tcp-transfer", "to": "b:9", "bytes": "256KiB" }"#,
        );
        let (sim, c) = run(&l);
        assert!(c.links[1].b_to_a.drops.get("queue-full").copied().unwrap_or(0) > 0, "{:?}", c.links[1]);
        let Outcome::TcpSink { bytes, corrupt_bytes, .. } = outcome(&sim, "b/tcp-sink") else { panic!() };
        assert_eq!((bytes, corrupt_bytes), (256 * 1024, 0), "TCP retransmits what the switch dropped");
    }

    #[test]
    fn random_loss_is_counted_and_reproducible() {
        let links = r#"{ "a": "a:eth0", "b": "sw", "impair": { "loss": 0.05, "latency": "1ms" } }, { "a": "b:eth0", "b": "sw" }"#;
        let l = lab(links, r#"{ "kind": "tcp-transfer", "to": "b:9", "bytes": "128KiB" }"#);
        let (s1, c1) = run(&l);
        let (_, c2) = run(&l);
        let lost = c1.drops(DropReason::Loss);
        assert!(lost > 0);
        assert_eq!(lost, c2.drops(DropReason::Loss), "same seed, same losses");
        assert_eq!(c1.links, c2.links);
        let Outcome::TcpSink { bytes, .. } = outcome(&s1, "b/tcp-sink") else { panic!() };
        assert_eq!(bytes, 128 * 1024);
    }

    #[test]
    fn oversized_frames_are_dropped_for_mtu() {
        let text = serde_json::json!({
            "name": "mtu",
            "nodes": {
                "a": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.1/24"], "mtu": 9000 } },
                       "apps": [ { "kind": "ping", "to": "b", "count": 1, "size": 4000 } ] },
                "b": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.2/24"], "mtu": 1500 } } }
            },
            "links": [ { "a": "a:eth0", "b": "b:eth0" } ]
        });
        let l = crate::topology::load_str(&text.to_string(), "t.json").unwrap_or_else(|e| panic!("{e}"));
        let (sim, c) = run(&l);
        assert_eq!(c.drops(DropReason::Mtu), 1, "the 4000-byte echo request does not fit b's MTU");
        let Outcome::Ping { received, .. } = outcome(&sim, "a/ping") else { panic!() };
        assert_eq!(received, 0);
    }

    #[test]
    fn the_largest_probes_that_fit_the_mtu_get_through() {
        let text = serde_json::json!({
            "name": "mtu-edge",
            "nodes": {
                "a": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.1/24", "fd00::1/64"], "mtu": 1280 } },
                       "apps": [ { "kind": "ping", "to": "b", "count": 2, "size": 1252 },
                                 { "kind": "ping", "to": "b", "family": "ipv6", "count": 2, "size": 1232, "start": "1500ms" },
                                 { "kind": "udp-echo", "to": "b:7", "count": 2, "size": 1252 } ] },
                "b": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.2/24", "fd00::2/64"], "mtu": 1280 } },
                       "apps": [ { "kind": "udp-echo-server", "port": 7 } ] }
            },
            "links": [ { "a": "a:eth0", "b": "b:eth0" } ]
        });
        let l = crate::topology::load_str(&text.to_string(), "t.json").unwrap_or_else(|e| panic!("{e}"));
        let (sim, c) = run(&l);
        for AppReport { label, outcome: o, .. } in sim.app_reports() {
            match o {
                Outcome::Ping { received, sent, .. } => assert_eq!((label.as_str(), received), (label.as_str(), sent)),
                Outcome::UdpEcho { received, sent, .. } => assert_eq!(received, sent, "{label}"),
                _ => {}
            }
        }
        assert_eq!(c.drops(DropReason::Mtu), 0);
    }

    #[test]
    fn timers_set_again_and_again_keep_the_heap_bounded() {
        let mut s = Scheduler { timer: vec![(None, 0); 10], is_due: vec![false; 10], ..Scheduler::default() };
        for i in 0..100_000u64 {
            // The same time set, taken back by a poll, and set again: one live entry at a time.
            s.set_timer(3, Some(SimTime::from_millis(5)));
            s.make_due(3);
            s.set_timer(4, Some(SimTime::from_nanos(i)));
        }
        s.set_timer(3, Some(SimTime::from_millis(5)));
        assert!(s.timers.len() <= 4 * 10 + 4096 + 1, "{} entries", s.timers.len());
        assert_eq!(s.next_timer(), Some(SimTime::from_nanos(99_999)));
        s.fire(SimTime::from_millis(5));
        let mut due = Vec::new();
        s.take_due(&mut due);
        assert_eq!(due, [3, 4]);
        assert_eq!(s.next_timer(), None);
    }

    /// Every event, for following packets.
    #[derive(Default)]
    struct Events(Vec<(SimTime, LinkId, Side, PacketId, Fate, usize)>);
    impl Observer for Events {
        fn frame(&mut self, ev: &FrameEvent<'_>) {
            self.0.push((ev.time, ev.link, ev.from, ev.packet, ev.fate, ev.frame.len()));
        }
    }

    fn three_hosts() -> Lab {
        let text = serde_json::json!({
            "name": "t",
            "nodes": {
                "sw": { "kind": "switch" },
                "a": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.1/24"] } },
                       "apps": [ { "kind": "ping", "to": "b", "count": 1 } ] },
                "b": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.2/24"] } },
                       "apps": [ { "kind": "tcp-sink", "port": 9 } ] },
                "c": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.3/24"] } } }
            },
            "links": [ { "a": "a:eth0", "b": "sw", "impair": { "latency": "1ms" } },
                       { "a": "b:eth0", "b": "sw", "impair": { "latency": "1ms" } },
                       { "a": "c:eth0", "b": "sw", "impair": { "latency": "1ms" } } ]
        });
        crate::topology::load_str(&text.to_string(), "t.json").unwrap_or_else(|e| panic!("{e}"))
    }

    fn run_until<O: Observer>(sim: &mut Sim, until: SimTime, obs: &mut O) {
        let mut now = sim.now();
        loop {
            sim.step(now, obs);
            match sim.next_deadline() {
                Some(t) if t <= until => now = t,
                _ => break,
            }
        }
        sim.step(until, obs);
    }

    #[test]
    fn a_flooded_packet_keeps_its_id_on_every_link_it_crosses() {
        let l = three_hosts();
        let mut sim = Sim::new(&l, None);
        let mut ev = Events::default();
        run_until(&mut sim, SimTime::from_millis(100), &mut ev);
        // a's ARP request: sent once by a, flooded by the switch to b and c, same id everywhere.
        let arp = ev.0.iter().find(|e| e.1 == LinkId(0) && e.4 == Fate::Sent).expect("a sent").3;
        assert_eq!(arp.origin(), Some(NodeId(1)), "node 1 (a) sent it");
        let journey: Vec<_> = ev.0.iter().filter(|e| e.3 == arp).map(|e| (e.1, e.4)).collect();
        assert_eq!(
            journey,
            vec![
                (LinkId(0), Fate::Sent),
                (LinkId(0), Fate::Delivered),
                (LinkId(1), Fate::Sent),
                (LinkId(2), Fate::Sent),
                (LinkId(1), Fate::Delivered),
                (LinkId(2), Fate::Delivered),
            ]
        );
        // Each hop takes its 1 ms.
        let times: Vec<_> = ev.0.iter().filter(|e| e.3 == arp && e.4 == Fate::Delivered).map(|e| e.0).collect();
        assert_eq!(times, [SimTime::from_millis(1), SimTime::from_millis(2), SimTime::from_millis(2)]);
        // Every packet a host sends (side A of each link is a host) has an id of its own.
        let sent: Vec<_> = ev.0.iter().filter(|e| e.4 == Fate::Sent && e.2 == Side::A).map(|e| e.3).collect();
        let unique: std::collections::BTreeSet<_> = sent.iter().collect();
        assert!(sent.len() >= 3 && unique.len() == sent.len(), "{sent:?}");
    }

    #[test]
    fn a_link_that_goes_down_loses_what_is_on_it_and_refuses_more() {
        let l = three_hosts();
        let mut sim = Sim::new(&l, None);
        let mut ev = Events::default();
        let mut c = Counters::new(&l);
        // a's ARP request is on link 0 at 0.5 ms; take the link down then.
        run_until(&mut sim, SimTime::from_micros(500), &mut (&mut ev, &mut c));
        assert_eq!(sim.snapshot().links[0].a_to_b.in_flight, 1);
        sim.apply(&Command::SetLink { link: LinkId(0), up: false }, &mut (&mut ev, &mut c)).expect("applies");
        assert_eq!(sim.link_up(LinkId(0)), Some(false));
        assert_eq!(c.drops(DropReason::LinkDown), 1, "the frame in flight is lost");
        run_until(&mut sim, SimTime::from_millis(1500), &mut (&mut ev, &mut c));
        // smoltcp asks again after a second; the down link takes and drops it.
        assert_eq!(c.drops(DropReason::LinkDown), 2);
        assert_eq!(c.links[0].a_to_b.delivered_frames, 0);
        sim.apply(&Command::SetLink { link: LinkId(0), up: true }, &mut c).expect("applies");
        run_until(&mut sim, SimTime::from_millis(4000), &mut c);
        let Outcome::Ping { sent, received, .. } = outcome(&sim, "a/ping") else { panic!() };
        assert_eq!((sent, received), (1, 0), "the one ping was sent into the down link");
        assert!(c.links[0].a_to_b.delivered_frames > 0, "up again, frames flow");
    }

    #[test]
    fn a_model_change_applies_to_frames_sent_after_it() {
        let l = three_hosts();
        let mut sim = Sim::new(&l, None);
        let model = crate::topology::LinkModel { latency: std::time::Duration::from_millis(20), ..Default::default() };
        sim.apply(&Command::SetModel { link: LinkId(1), from: Some(Side::B), model }, &mut ()).expect("applies");
        assert_eq!(sim.link_model(LinkId(1), Side::B).map(|m| m.latency), Some(std::time::Duration::from_millis(20)));
        assert_eq!(sim.link_model(LinkId(1), Side::A).map(|m| m.latency), Some(std::time::Duration::from_millis(1)));
        run_until(&mut sim, SimTime::from_millis(500), &mut ());
        let Outcome::Ping { received, rtt, .. } = outcome(&sim, "a/ping") else { panic!() };
        // 1 + 1 ms out, 20 + 1 ms back, twice: the ARP exchange, then the echo.
        assert_eq!(received, 1);
        assert!((46.0..46.1).contains(&rtt.expect("rtt").min_ms), "{rtt:?}");
    }

    #[test]
    fn apps_start_and_stop_by_command_and_snapshots_show_the_lab() {
        let l = three_hosts();
        let mut sim = Sim::new(&l, None);
        run_until(&mut sim, SimTime::from_millis(10), &mut ());
        let app = crate::topology::App {
            label: "c/tcp-transfer".into(),
            start: std::time::Duration::ZERO,
            kind: crate::topology::AppKind::TcpTransfer { to: ("10.0.0.2".parse().unwrap(), 9), bytes: 10_000_000 },
        };
        sim.apply(&Command::StartApp { node: NodeId(3), app }, &mut ()).expect("applies");
        run_until(&mut sim, SimTime::from_millis(30), &mut ());
        let snap = sim.snapshot();
        let c = snap.hosts.iter().find(|h| h.name == "c").expect("c");
        let tcp = c.sockets.iter().find(|s| s.kind == "tcp").expect("a TCP socket");
        assert_eq!(tcp.state.as_deref(), Some("ESTABLISHED"));
        assert_eq!(tcp.remote.as_deref(), Some("10.0.0.2:9"));
        assert!(c.neighbours.iter().any(|n| n.ip.to_string() == "10.0.0.2"), "{:?}", c.neighbours);
        assert_eq!(c.apps[0].state, apps::AppState::Running);
        let b = snap.hosts.iter().find(|h| h.name == "b").expect("b");
        assert!(b.sockets.iter().any(|s| s.state.as_deref() == Some("LISTEN")));
        assert_eq!(b.interfaces[0].addresses, ["10.0.0.2/24"]);
        assert_eq!(snap.switches[0].table.len(), 3, "{:?}", snap.switches[0]);
        // Stop the transfer: it resets its connection and is reported stopped.
        assert!(matches!(
            sim.apply(&Command::StopApp { node: NodeId(3), app: 1 }, &mut ()),
            Err(CommandError::NoApp { .. })
        ));
        sim.apply(&Command::StopApp { node: NodeId(3), app: 0 }, &mut ()).expect("applies");
        assert!(matches!(
            sim.apply(&Command::StopApp { node: NodeId(3), app: 0 }, &mut ()),
            Err(CommandError::Stopped(_))
        ));
        run_until(&mut sim, SimTime::from_millis(60), &mut ());
        let snap = sim.snapshot();
        let c = snap.hosts.iter().find(|h| h.name == "c").expect("c");
        assert_eq!(c.apps[0].state, apps::AppState::Stopped);
        let Outcome::TcpTransfer { acked, .. } = c.apps[0].outcome else { panic!() };
        assert!(acked > 0 && acked < 10_000_000);
        assert!(
            sim.apply(
                &Command::StartApp {
                    node: NodeId(0),
                    app: crate::topology::App {
                        label: "sw/x".into(),
                        start: std::time::Duration::ZERO,
                        kind: crate::topology::AppKind::TcpSink { port: 1 }
                    }
                },
                &mut ()
            )
            .is_err(),
            "a switch runs no apps"
        );
    }
}
