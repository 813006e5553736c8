//! The pure core: links, switches and smoltcp hosts, stepped with an explicit time.
//!
//! `Sim::step(now, observer)` does everything due at `now`; `Sim::next_deadline()` says when the next
//! thing is due. Nothing here reads a clock, spawns a thread or imports tokio: a driver at the edge
//! (`runtime`) chooses between virtual time (jump to the deadline) and the wall clock (sleep until it).
//! Frame events go to an [`Observer`]; capture and statistics are observers, not parts of the core.

pub mod apps;
pub mod device;
pub mod host;
pub mod link;
pub mod observe;
pub mod switch;

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use device::FramePool;
use host::HostState;
use link::Direction;
pub use observe::{DropReason, Fate, FrameEvent, Observer};
use switch::{Forward, MacTable};

use crate::time::SimTime;
use crate::topology::{Attachment, Lab, LinkId, NodeKind, Side};

/// Rounds of deliver-then-poll in one `step`; past it, `step` returns so that the driver can look
/// at signals and the clock, and `next_deadline` answers "now".
const ROUNDS_PER_STEP: usize = 256;

struct SwitchState {
    ports: Vec<(LinkId, Side)>,
    table: MacTable,
}

enum NodeState {
    Host(Box<HostState>),
    Switch(SwitchState),
}

struct LinkState {
    ends: [Attachment; 2],
    /// `dirs[0]` carries frames from side A to B, `dirs[1]` from B to A.
    dirs: [Direction; 2],
}

/// A running lab.
pub struct Sim {
    now: SimTime,
    nodes: Vec<NodeState>,
    links: Vec<LinkState>,
    pool: RefCell<FramePool>,
    /// Work left over when a step ran out of rounds.
    pending: bool,
    /// Link directions whose first frame has arrived, earliest first (see [`Sim::deliver`]).
    due: BinaryHeap<Reverse<(SimTime, u32, u8)>>,
}

/// A 64-bit mix (splitmix64) so that nearby seeds give unrelated streams.
#[must_use]
pub fn derive_seed(seed: u64, a: u64, b: u64) -> u64 {
    let mut z = seed ^ a.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b.wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Sim {
    /// Builds the lab; `seed` overrides the lab file's.
    #[must_use]
    pub fn new(lab: &Lab, seed: Option<u64>) -> Self {
        let seed = seed.unwrap_or(lab.seed);
        let pool = RefCell::new(FramePool::default());
        let nodes = lab
            .nodes
            .iter()
            .map(|n| match &n.kind {
                NodeKind::Host(h) => NodeState::Host(Box::new(HostState::new(
                    &n.name,
                    h,
                    derive_seed(seed, 1, u64::from(n.id.0)),
                    lab.checksum_offload,
                    &pool,
                ))),
                NodeKind::Switch(s) => {
                    NodeState::Switch(SwitchState { ports: s.ports.clone(), table: MacTable::new(s.mac_ageing) })
                }
            })
            .collect();
        let links = lab
            .links
            .iter()
            .map(|l| LinkState {
                ends: l.ends,
                dirs: [Side::A, Side::B].map(|side| {
                    Direction::new(
                        l.id,
                        side,
                        l.model,
                        derive_seed(seed, 2, u64::from(l.id.0) * 2 + side.index() as u64),
                    )
                }),
            })
            .collect();
        Sim { now: SimTime::ZERO, nodes, links, pool, pending: false, due: BinaryHeap::new() }
    }

    #[must_use]
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Does everything due at `now` (time never goes back: an earlier `now` counts as the current).
    pub fn step<O: Observer>(&mut self, now: SimTime, obs: &mut O) {
        self.now = self.now.max(now);
        let now = self.now;
        self.pending = false;
        for _ in 0..ROUNDS_PER_STEP {
            let delivered = self.deliver(now, obs);
            let mut frames = 0;
            // Only hosts with something to do are polled, so that a step costs what happens in
            // it, not the size of the lab: input waiting, a timer due, or a full link that has
            // room again.
            for n in &mut self.nodes {
                let NodeState::Host(h) = n else { continue };
                let mut tx = h.link.map(|(l, side)| &mut self.links[l.index()].dirs[side.index()]);
                let unblocked = h.blocked && tx.as_deref().is_some_and(|d| d.has_room(now));
                if !(h.due(now) || unblocked) {
                    continue;
                }
                frames += h.poll(now, tx.take(), &self.pool, obs);
            }
            if delivered == 0 && frames == 0 {
                return;
            }
        }
        self.pending = true;
    }

    /// Moves every frame that has arrived by `now` into its node: a host's input queue, or through
    /// a switch onto its next link. Returns how many arrived.
    ///
    /// Frames are handled in order of arrival across all links, each at its own arrival time, so
    /// that observers (the capture) see time go forward. On the wall clock one step gathers frames
    /// that arrived at different times, and a frame a switch forwards can arrive before another
    /// that was already waiting; a heap of the links' first frames keeps them in order. (In virtual
    /// time a step's frames share one time; ties go by link, then direction, in lab order.)
    fn deliver<O: Observer>(&mut self, now: SimTime, obs: &mut O) -> usize {
        let mut due = std::mem::take(&mut self.due);
        due.clear();
        for li in 0..self.links.len() {
            for side in [Side::A, Side::B] {
                self.push_due(&mut due, li, side, now);
            }
        }
        let mut n = 0;
        while let Some(Reverse((at, li, s))) = due.pop() {
            let (li, side) = (li as usize, if s == 0 { Side::A } else { Side::B });
            let l = &mut self.links[li];
            let dir = &mut l.dirs[side.index()];
            // An entry is stale once its frame is gone; the direction's next frame has its own.
            if dir.next_arrival() != Some(at) {
                continue;
            }
            let f = match dir.pop_due(now, obs) {
                Some(Ok(f)) => f,
                Some(Err(lost)) => {
                    // Lost on the way (reported); the frame behind it may be due too.
                    self.pool.get_mut().give(lost);
                    self.push_due(&mut due, li, side, now);
                    continue;
                }
                None => continue,
            };
            let to = l.ends[side.other().index()];
            self.arrive(at, to, LinkId(li as u32), side, f, obs);
            n += 1;
            self.push_due(&mut due, li, side, now);
            // A switch may have put the frame on other links, due before `now` ends. Only a
            // direction the frame arrived into empty has a new first frame; the others are in the
            // heap already, or not due.
            if let NodeState::Switch(sw) = &self.nodes[to.node().index()] {
                for &(l, side) in &sw.ports {
                    let dir = &self.links[l.index()].dirs[side.index()];
                    if let Some(t) = dir.next_arrival().filter(|t| *t <= now && dir.in_flight() == 1) {
                        due.push(Reverse((t, l.0, side.index() as u8)));
                    }
                }
            }
        }
        self.due = due;
        n
    }

    fn push_due(&self, due: &mut BinaryHeap<Reverse<(SimTime, u32, u8)>>, li: usize, side: Side, now: SimTime) {
        if let Some(t) = self.links[li].dirs[side.index()].next_arrival().filter(|t| *t <= now) {
            due.push(Reverse((t, li as u32, side.index() as u8)));
        }
    }

    fn arrive<O: Observer>(
        &mut self,
        now: SimTime,
        to: Attachment,
        link: LinkId,
        from: Side,
        frame: Vec<u8>,
        obs: &mut O,
    ) {
        let ev = |fate| FrameEvent { time: now, link, from, fate, frame: &[] };
        let drop = |obs: &mut O, frame: &[u8], reason| obs.frame(&FrameEvent { frame, ..ev(Fate::Dropped(reason)) });
        if frame.len() < 14 {
            drop(obs, &frame, DropReason::Malformed);
            self.pool.get_mut().give(frame);
            return;
        }
        match (&mut self.nodes[to.node().index()], to) {
            (NodeState::Host(h), _) => {
                if frame.len() > h.mtu + 14 + 4 {
                    drop(obs, &frame, DropReason::Mtu);
                    self.pool.get_mut().give(frame);
                } else if h.rx.len() >= host::RX_QUEUE {
                    drop(obs, &frame, DropReason::QueueFull);
                    self.pool.get_mut().give(frame);
                } else {
                    obs.frame(&FrameEvent { frame: &frame, ..ev(Fate::Delivered) });
                    h.rx.push_back(frame);
                }
            }
            (NodeState::Switch(sw), Attachment::SwitchPort { port, .. }) => {
                obs.frame(&FrameEvent { frame: &frame, ..ev(Fate::Delivered) });
                let mut dst = [0u8; 6];
                let mut src = [0u8; 6];
                dst.copy_from_slice(&frame[0..6]);
                src.copy_from_slice(&frame[6..12]);
                let pool = self.pool.get_mut();
                match sw.table.forward(now, port, dst, src) {
                    Forward::Filter => pool.give(frame),
                    Forward::Port(p) => {
                        let (l, side) = sw.ports[p];
                        enqueue(&mut self.links[l.index()].dirs[side.index()], now, frame, obs, pool);
                    }
                    Forward::Flood => {
                        for (p, (l, side)) in sw.ports.iter().enumerate() {
                            if p != port {
                                let mut copy = pool.take();
                                copy.extend_from_slice(&frame);
                                enqueue(&mut self.links[l.index()].dirs[side.index()], now, copy, obs, pool);
                            }
                        }
                        pool.give(frame);
                    }
                }
            }
            (NodeState::Switch(_), Attachment::HostInterface { .. }) => self.pool.get_mut().give(frame),
        }
    }

    /// Puts a frame on a link as if its `from` side had sent it now: what a tunnel will do with
    /// frames from a remote site. The bytes are untrusted; a full queue drops and counts them.
    pub fn inject<O: Observer>(&mut self, link: LinkId, from: Side, frame: &[u8], obs: &mut O) {
        let Some(l) = self.links.get_mut(link.index()) else { return };
        let pool = self.pool.get_mut();
        let mut buf = pool.take();
        buf.extend_from_slice(frame);
        enqueue(&mut l.dirs[from.index()], self.now, buf, obs, pool);
    }

    /// When something is next due; `None` when nothing ever will be (an idle lab).
    #[must_use]
    pub fn next_deadline(&self) -> Option<SimTime> {
        if self.pending {
            return Some(self.now);
        }
        let mut next: Option<SimTime> = None;
        let mut take = |t: Option<SimTime>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        for l in &self.links {
            for d in &l.dirs {
                take(d.next_arrival());
            }
        }
        for n in &self.nodes {
            let NodeState::Host(h) = n else { continue };
            if !h.rx.is_empty() {
                take(Some(self.now));
            }
            match (h.blocked, h.link) {
                // Blocked on a full queue: nothing to do before a slot frees.
                (true, Some((l, side))) => {
                    take(self.links[l.index()].dirs[side.index()].next_departure(self.now));
                    take(h.wake.filter(|w| *w > self.now));
                }
                _ => take(h.wake),
            }
        }
        next.map(|t| t.max(self.now))
    }

    /// Whether any app finishes by itself; a lab of servers alone runs until it is stopped.
    #[must_use]
    pub fn has_clients(&self) -> bool {
        self.nodes.iter().any(|n| matches!(n, NodeState::Host(h) if h.apps.iter().any(|a| !a.server)))
    }

    /// Every client app on every host has finished.
    #[must_use]
    pub fn clients_done(&self) -> bool {
        self.nodes.iter().all(|n| match n {
            NodeState::Host(h) => h.clients_done(),
            NodeState::Switch(_) => true,
        })
    }

    /// Each app's label, state and outcome, in lab order.
    #[must_use]
    pub fn outcomes(&self) -> Vec<(String, apps::AppState, SimTime, apps::Outcome)> {
        let mut out = Vec::new();
        for n in &self.nodes {
            if let NodeState::Host(h) = n {
                out.extend(h.apps.iter().map(|a| {
                    let state = if a.server {
                        apps::AppState::Serving
                    } else if a.app.done() {
                        apps::AppState::Finished
                    } else if self.now < a.start {
                        apps::AppState::NotStarted
                    } else {
                        apps::AppState::Running
                    };
                    (a.label.clone(), state, a.start, a.app.outcome())
                }));
            }
        }
        out
    }

    /// MAC table of a switch, by node index.
    #[must_use]
    pub fn mac_table(&self, node: usize) -> Vec<([u8; 6], usize)> {
        match self.nodes.get(node) {
            Some(NodeState::Switch(s)) => s.table.entries().collect(),
            _ => Vec::new(),
        }
    }
}

/// A switch's output: no backpressure upstream, so a full queue drops.
fn enqueue<O: Observer>(d: &mut Direction, now: SimTime, frame: Vec<u8>, obs: &mut O, pool: &mut FramePool) {
    if d.has_room(now) {
        d.push(now, frame, obs);
    } else {
        d.refuse(now, &frame, obs);
        pool.give(frame);
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
        sim.outcomes().into_iter().find(|(l, ..)| l == label).map(|(.., o)| o).expect("app")
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
        for (label, _, _, o) in sim.outcomes() {
            match o {
                Outcome::Ping { received, sent, .. } => assert_eq!((label.as_str(), received), (label.as_str(), sent)),
                Outcome::UdpEcho { received, sent, .. } => assert_eq!(received, sent, "{label}"),
                _ => {}
            }
        }
        assert_eq!(c.drops(DropReason::Mtu), 0);
    }
}
