//! The fabric: link directions between ports, and nothing else. A node hands a frame to one of
//! its ports; the fabric puts it on the link plugged in there, and, when it arrives, hands it to
//! the port at the far end, or to the outbox when that end is remote. Admission, flooding and
//! forwarding belong to the nodes.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use super::device::FramePool;
use super::link::{Arrival, Direction};
use super::observe::{DropReason, Fate, Observer};
use super::packet::PacketId;
use crate::time::SimTime;
use crate::topology::{LinkId, LinkModel, NodeId, Side};

/// A node's port: where a link end plugs in. Hosts number their interfaces, switches their ports,
/// in lab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Port {
    pub node: NodeId,
    pub port: u32,
}

/// One end of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// A port of a node in this process.
    Local(Port),
    /// A port of a node that runs elsewhere: frames that reach it go to the outbox.
    Remote(Port),
}

impl End {
    #[must_use]
    pub fn port(self) -> Port {
        match self {
            End::Local(p) | End::Remote(p) => p,
        }
    }
}

pub(crate) struct LinkState {
    pub ends: [End; 2],
    pub up: bool,
    /// Frames cross it through a transport even when both ends are local (every site of a lab in
    /// one process): they go to the outbox, and come back through `inject`.
    pub tunneled: bool,
    /// The transport that carries it to its remote end (or through its tunnel) is up: while it is
    /// not, frames that reach that end are dropped as `transport-down`.
    pub reachable: bool,
    /// `dirs[0]` carries frames from side A to B, `dirs[1]` from B to A.
    pub dirs: [Direction; 2],
}

/// A frame that reached a remote end, for the driver to carry there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutFrame {
    pub link: LinkId,
    /// The side that sent it; it goes to the other side.
    pub from: Side,
    /// When it reached the far end, as the link model says.
    pub at: SimTime,
    pub packet: PacketId,
    pub frame: Vec<u8>,
}

/// Frames the outbox holds before the driver drains it; past that, frames are dropped and counted
/// as `queue-full`, never buffered without bound.
pub const OUTBOX_LIMIT: usize = 1 << 16;

/// A frame handed to a node: where and when it arrived, and its packet.
#[derive(Debug, Clone, Copy)]
pub struct Arrived {
    pub at: SimTime,
    pub link: LinkId,
    pub from: Side,
    pub port: u32,
    pub packet: PacketId,
}

impl Arrived {
    /// Tells the observers what the receiving node did with the frame.
    pub fn report<O: Observer>(&self, fate: Fate, frame: &[u8], obs: &mut O) {
        obs.frame(&super::FrameEvent {
            time: self.at,
            link: self.link,
            from: self.from,
            packet: self.packet,
            fate,
            frame,
        });
    }
}

/// A direction's next arrival in the scheduler. Ordered by time, then link, then A→B before B→A,
/// so that simultaneous arrivals go in lab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct ArrivalKey {
    at: SimTime,
    link: u32,
    side: u8,
}

pub struct Fabric {
    pub(crate) links: Vec<LinkState>,
    /// For each node, the link end plugged into each of its ports.
    plugs: Vec<Vec<Option<(LinkId, Side)>>>,
    /// The arrival of each armed direction's first frame, earliest first.
    arrivals: BinaryHeap<Reverse<ArrivalKey>>,
    pub(crate) outbox: VecDeque<OutFrame>,
}

impl Fabric {
    pub(crate) fn new(nodes: usize, links: Vec<LinkState>) -> Self {
        let mut plugs: Vec<Vec<Option<(LinkId, Side)>>> = vec![Vec::new(); nodes];
        for (i, l) in links.iter().enumerate() {
            for side in [Side::A, Side::B] {
                if let End::Local(p) = l.ends[side.index()] {
                    let ports = &mut plugs[p.node.index()];
                    let at = p.port as usize;
                    if ports.len() <= at {
                        ports.resize(at + 1, None);
                    }
                    ports[at] = Some((LinkId(i as u32), side));
                }
            }
        }
        Fabric { links, plugs, arrivals: BinaryHeap::new(), outbox: VecDeque::new() }
    }

    /// The link end plugged into a port.
    #[must_use]
    pub fn plug(&self, port: Port) -> Option<(LinkId, Side)> {
        self.plugs.get(port.node.index()).and_then(|p| p.get(port.port as usize)).copied().flatten()
    }

    fn out_dir(&self, port: Port) -> Option<(&LinkState, &Direction)> {
        let (l, side) = self.plug(port)?;
        let link = &self.links[l.index()];
        Some((link, &link.dirs[side.index()]))
    }

    /// Whether a frame sent from `port` now would be taken. An unplugged port or a down link takes
    /// (and drops) anything; only a full queue pushes back.
    #[must_use]
    pub fn has_room(&self, now: SimTime, port: Port) -> bool {
        self.has_room_for(now, port, 0)
    }

    /// Whether a frame of `len` bytes sent from `port` now would be taken: as
    /// [`has_room`](Self::has_room), and within a queue in bytes. A host asks for its largest frame.
    #[must_use]
    pub fn has_room_for(&self, now: SimTime, port: Port, len: usize) -> bool {
        self.out_dir(port).is_none_or(|(l, d)| !l.up || d.has_room_for(now, len))
    }

    /// When the link out of `port` next frees a queue slot.
    #[must_use]
    pub fn next_departure(&self, now: SimTime, port: Port) -> Option<SimTime> {
        self.out_dir(port).and_then(|(_, d)| d.next_departure(now))
    }

    /// Sends a frame out of `port` at `now`. A full queue drops it (the caller asked
    /// [`has_room`](Self::has_room) when it can push back), as does a down link; an unplugged port
    /// goes nowhere.
    pub fn send<O: Observer>(
        &mut self,
        now: SimTime,
        port: Port,
        packet: PacketId,
        frame: Vec<u8>,
        pool: &mut FramePool,
        obs: &mut O,
    ) {
        let Some((l, side)) = self.plug(port) else { return pool.give(frame) };
        let link = &mut self.links[l.index()];
        let d = &mut link.dirs[side.index()];
        if !link.up {
            d.report(now, packet, Fate::Dropped(DropReason::LinkDown), &frame, obs);
            pool.give(frame);
        } else if d.has_room_for(now, frame.len()) {
            d.push(now, packet, frame, obs);
            Self::arm(&mut self.arrivals, d);
        } else {
            d.refuse(now, packet, &frame, obs);
            pool.give(frame);
        }
    }

    /// Makes sure the scheduler holds the arrival of a direction's first frame: a frame that came
    /// to the front ahead of the armed one (a reordering link) is armed too, and the later event
    /// goes stale.
    fn arm(arrivals: &mut BinaryHeap<Reverse<ArrivalKey>>, d: &mut Direction) {
        if !d.held {
            if let Some(at) = d.next_arrival() {
                if d.armed.is_none_or(|armed| d.model().reorder && at < armed) {
                    d.armed = Some(at);
                    arrivals.push(Reverse(ArrivalKey { at, link: d.link.0, side: d.from.index() as u8 }));
                }
            }
        }
    }

    /// A frame from a remote `from` side that reaches the local end of its link at `at` (not
    /// before `now`). The link model was applied on the far side. The link's hard bound on frames
    /// in flight refuses the excess (reported as `queue-full`).
    pub fn inject<O: Observer>(&mut self, now: SimTime, f: OutFrame, pool: &mut FramePool, obs: &mut O) {
        let OutFrame { link, from, at, packet, frame } = f;
        let Some(l) = self.links.get_mut(link.index()) else { return pool.give(frame) };
        let d = &mut l.dirs[from.index()];
        if !l.up {
            d.report(now, packet, Fate::Dropped(DropReason::LinkDown), &frame, obs);
            pool.give(frame);
        } else if d.in_flight() >= super::link::MAX_IN_FLIGHT {
            d.refuse(now, packet, &frame, obs);
            pool.give(frame);
        } else {
            d.push_arrival(at.max(now), packet, frame);
            Self::arm(&mut self.arrivals, d);
        }
    }

    /// When the next frame arrives anywhere.
    #[must_use]
    pub fn next_arrival(&self) -> Option<SimTime> {
        self.arrivals.peek().map(|Reverse(k)| k.at)
    }

    /// Takes the next frame that has arrived by `now`, earliest first across links. A frame for a
    /// remote end goes to the outbox here; a frame for a local port is returned for its node.
    pub fn pop_arrival<O: Observer>(
        &mut self,
        now: SimTime,
        pool: &mut FramePool,
        obs: &mut O,
    ) -> Option<(Arrived, Vec<u8>)> {
        while let Some(&Reverse(ArrivalKey { at, link: li, side })) = self.arrivals.peek() {
            if at > now {
                return None;
            }
            self.arrivals.pop();
            let side = if side == 0 { Side::A } else { Side::B };
            let link = &mut self.links[li as usize];
            let far = link.ends[side.other().index()];
            let d = &mut link.dirs[side.index()];
            if d.armed != Some(at) {
                // Stale: a frame that arrives earlier was armed since.
                continue;
            }
            d.armed = None;
            let got = d.pop_due(now, obs);
            Self::arm(&mut self.arrivals, d);
            let (packet, frame, crossed) = match got {
                Some(Arrival::Frame { packet, frame, crossed, .. }) => (packet, frame, crossed),
                Some(Arrival::Lost(frame)) => {
                    pool.give(frame);
                    continue;
                }
                None => continue,
            };
            let link = LinkId(li);
            let tunneled = self.links[li as usize].tunneled;
            let fate = match far {
                End::Local(p) if crossed || !tunneled => {
                    return Some((Arrived { at, link, from: side, port: p.port, packet }, frame));
                }
                End::Local(_) => Fate::Tunneled,
                End::Remote(_) => Fate::ToRemote,
            };
            let d = &self.links[li as usize].dirs[side.index()];
            if !self.links[li as usize].reachable {
                d.report(at, packet, Fate::Dropped(DropReason::TransportDown), &frame, obs);
                pool.give(frame);
            } else if self.outbox.len() >= OUTBOX_LIMIT {
                d.report(at, packet, Fate::Dropped(DropReason::QueueFull), &frame, obs);
                pool.give(frame);
            } else {
                d.report(at, packet, fate, &frame, obs);
                self.outbox.push_back(OutFrame { link, from: side, at, packet, frame });
            }
        }
        None
    }

    /// A frame its node could not take yet (a host's full input queue): it goes back to the head
    /// of its link, which waits until [`release`](Self::release).
    pub fn hold(&mut self, arr: &Arrived, frame: Vec<u8>) {
        self.links[arr.link.index()].dirs[arr.from.index()].hold(arr.at, arr.packet, frame);
    }

    /// Lets a held link hand over its frames again.
    pub fn release(&mut self, link: LinkId, from: Side) {
        let d = &mut self.links[link.index()].dirs[from.index()];
        if d.held {
            d.held = false;
            Self::arm(&mut self.arrivals, d);
        }
    }

    /// The node a link end plugs into, by the side a frame came from.
    #[must_use]
    pub fn far_node(&self, link: LinkId, from: Side) -> NodeId {
        self.links[link.index()].ends[from.other().index()].port().node
    }

    /// Brings a link up or down. Going down loses every frame on it (reported as `link-down`).
    pub fn set_up<O: Observer>(&mut self, now: SimTime, link: LinkId, up: bool, pool: &mut FramePool, obs: &mut O) {
        let Some(l) = self.links.get_mut(link.index()) else { return };
        l.up = up;
        if up {
            return;
        }
        for d in &mut l.dirs {
            let (id, from) = (d.link, d.from);
            for f in d.drain() {
                obs.frame(&super::FrameEvent {
                    time: now,
                    link: id,
                    from,
                    packet: f.packet,
                    fate: Fate::Dropped(DropReason::LinkDown),
                    frame: &f.frame,
                });
                pool.give(f.frame);
            }
        }
        // Its arrival events are gone: keep the heap free of stale entries.
        let links = &self.links;
        self.arrivals.retain(|Reverse(k)| links[k.link as usize].dirs[usize::from(k.side)].armed == Some(k.at));
    }

    /// Sets the model of one direction, or both.
    pub fn set_model(&mut self, link: LinkId, from: Option<Side>, model: LinkModel) {
        let Some(l) = self.links.get_mut(link.index()) else { return };
        for d in &mut l.dirs {
            if from.is_none_or(|s| s == d.from) {
                d.set_model(model);
            }
        }
    }
}
