//! What the core tells its observers. Capture, counters and (later) the TUI subscribe here; none of
//! them lives inside the core.

use serde::Serialize;

use super::packet::PacketId;
use crate::time::SimTime;
use crate::topology::{LinkId, Side};

/// What happened to a frame on a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Put on the link by the `from` side.
    Sent,
    /// Arrived at the far end and was handed to the node there.
    Delivered,
    /// Arrived at the far end, which is remote: handed to the outbox for a transport to carry.
    ToRemote,
    /// Reached the tunnel of a link whose two ends run in this process (every site in one
    /// process): handed to the outbox, to come back through a real socket and be delivered then.
    /// Captures and counters wait for that delivery.
    Tunneled,
    /// Lost on the way, for this reason.
    Dropped(DropReason),
    /// Reached the far end with a bit flipped by the link model (`corrupt`); the bytes are the
    /// corrupted ones. Not final: a `Delivered` (or `ToRemote`) of the same frame follows.
    Corrupted,
    /// A second copy of a frame the link model duplicates (`duplicate`), put on the link after
    /// it: its own `Delivered` (or drop) follows.
    Duplicated,
}

/// Why a frame was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DropReason {
    /// The link model's random loss.
    Loss,
    /// The link's queue (or the receiver's input queue, or the outbox) was full.
    QueueFull,
    /// Larger than the receiving interface's MTU.
    Mtu,
    /// Too short to be an Ethernet frame.
    Malformed,
    /// Sent on a link that is down, or in flight when it went down.
    LinkDown,
    /// The tunnel that carries the link to another site is down (its peer is gone, or not there yet).
    TransportDown,
    /// Larger than a tunnel carries.
    TooLarge,
    /// The tunnel could not take it: the lab sent faster than the tunnel carries, and its queue
    /// was full.
    TunnelFull,
    /// A router had no route to the destination.
    NoRoute,
    /// A router received it with TTL (hop limit) 1 or 0.
    Ttl,
    /// A router could not resolve the next hop's link-layer address (ARP or NDP went unanswered).
    NeighbourTimeout,
}

impl DropReason {
    pub const ALL: [DropReason; 11] = [
        DropReason::Loss,
        DropReason::QueueFull,
        DropReason::Mtu,
        DropReason::Malformed,
        DropReason::LinkDown,
        DropReason::TransportDown,
        DropReason::TooLarge,
        DropReason::TunnelFull,
        DropReason::NoRoute,
        DropReason::Ttl,
        DropReason::NeighbourTimeout,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Loss => "loss",
            DropReason::QueueFull => "queue-full",
            DropReason::Mtu => "mtu",
            DropReason::Malformed => "malformed",
            DropReason::LinkDown => "link-down",
            DropReason::TransportDown => "transport-down",
            DropReason::TooLarge => "too-large",
            DropReason::TunnelFull => "tunnel-full",
            DropReason::NoRoute => "no-route",
            DropReason::Ttl => "ttl",
            DropReason::NeighbourTimeout => "neighbour-timeout",
        }
    }
}

/// One frame event: its link, the side that sent it, the time, the packet it carries, its fate
/// and its bytes.
#[derive(Debug, Clone, Copy)]
pub struct FrameEvent<'a> {
    pub time: SimTime,
    pub link: LinkId,
    pub from: Side,
    pub packet: PacketId,
    pub fate: Fate,
    pub frame: &'a [u8],
}

/// Receives every frame event of a run, in order.
pub trait Observer {
    fn frame(&mut self, ev: &FrameEvent<'_>);
}

/// Observes nothing.
impl Observer for () {
    #[inline]
    fn frame(&mut self, _: &FrameEvent<'_>) {}
}

impl<A: Observer, B: Observer> Observer for (A, B) {
    #[inline]
    fn frame(&mut self, ev: &FrameEvent<'_>) {
        self.0.frame(ev);
        self.1.frame(ev);
    }
}

impl<A: Observer, B: Observer, C: Observer> Observer for (A, B, C) {
    #[inline]
    fn frame(&mut self, ev: &FrameEvent<'_>) {
        self.0.frame(ev);
        self.1.frame(ev);
        self.2.frame(ev);
    }
}

impl<T: Observer + ?Sized> Observer for &mut T {
    #[inline]
    fn frame(&mut self, ev: &FrameEvent<'_>) {
        (**self).frame(ev);
    }
}

impl<T: Observer> Observer for Option<T> {
    #[inline]
    fn frame(&mut self, ev: &FrameEvent<'_>) {
        if let Some(o) = self {
            o.frame(ev);
        }
    }
}

impl<T: Observer + ?Sized> Observer for Box<T> {
    #[inline]
    fn frame(&mut self, ev: &FrameEvent<'_>) {
        (**self).frame(ev);
    }
}
