//! One direction of a link: a FIFO of frames in flight with its model (latency, rate, loss, queue)
//! and its own seeded RNG, so that a lab's randomness does not depend on the order links are used.
//!
//! The RNG is drawn from for each feature of the model that is on, in a fixed order per frame:
//! loss (random or Gilbert-Elliott), corruption, jitter, duplication; a model of latency, rate,
//! loss and queue alone draws what it always drew.

use std::collections::VecDeque;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::observe::{DropReason, Fate, FrameEvent, Observer};
use super::packet::PacketId;
use crate::time::SimTime;
use crate::topology::{Distribution, LinkId, LinkModel, Side};

/// Frames a direction may hold in flight whatever its queue size: a hard bound on memory.
pub const MAX_IN_FLIGHT: usize = 1 << 16;

/// A frame on a link, waiting for the wire or propagating.
#[derive(Debug)]
pub(crate) struct InFlight {
    pub arrive: SimTime,
    pub lost: bool,
    pub packet: PacketId,
    pub frame: Vec<u8>,
    /// It came through a tunnel already (injected): it goes to its node, not into the tunnel again.
    pub crossed: bool,
    /// The link flipped a bit of it: observers hear so when it arrives.
    pub corrupted: bool,
}

/// The first frame of a direction, taken when it arrived.
#[derive(Debug)]
pub enum Arrival {
    /// It reached the far end.
    Frame { at: SimTime, packet: PacketId, frame: Vec<u8>, crossed: bool },
    /// The link lost it on the way (already reported as dropped); its buffer is spare.
    Lost(Vec<u8>),
}

/// Frames sent from one side of a link towards the other.
#[derive(Debug)]
pub struct Direction {
    pub link: LinkId,
    pub from: Side,
    model: LinkModel,
    rng: ChaCha8Rng,
    busy_until: SimTime,
    /// Frames on the link, by arrival time (in the order sent, unless the model reorders).
    pub(crate) queue: VecDeque<InFlight>,
    /// The departure of each frame put on the link that may still wait for the wire, in the order
    /// sent, with the bytes sent on the link up to and including it: the queue the model limits.
    wire: VecDeque<(SimTime, u64)>,
    /// Bytes sent on the link before the first entry of `wire`.
    wire_base: u64,
    /// Bytes sent on the link in all.
    wire_total: u64,
    /// The Gilbert-Elliott loss model is in its bad state.
    bad_state: bool,
    /// The arrival time of the event the scheduler holds for this direction's first frame. A
    /// scheduler event at another time is stale (a reordered frame came to the front before it).
    pub(crate) armed: Option<SimTime>,
    /// The first frame arrived at a host whose input queue was full: it waits on the link until
    /// the host has read its queue (the link is not armed meanwhile).
    pub(crate) held: bool,
}

impl Direction {
    #[must_use]
    pub fn new(link: LinkId, from: Side, model: LinkModel, seed: u64) -> Self {
        Direction {
            link,
            from,
            model,
            rng: ChaCha8Rng::seed_from_u64(seed),
            busy_until: SimTime::ZERO,
            queue: VecDeque::new(),
            wire: VecDeque::new(),
            wire_base: 0,
            wire_total: 0,
            bad_state: false,
            armed: None,
            held: false,
        }
    }

    #[must_use]
    pub fn model(&self) -> &LinkModel {
        &self.model
    }

    /// Changes the model for frames sent from now on; frames already on the link keep their times.
    pub fn set_model(&mut self, model: LinkModel) {
        if model.loss_model.is_none() {
            self.bad_state = false;
        }
        self.model = model;
    }

    /// Frames still waiting for the wire at `now` (those in propagation do not count).
    #[must_use]
    pub fn waiting(&self, now: SimTime) -> usize {
        self.wire.len() - self.first_waiting(now)
    }

    /// Bytes of the frames still waiting for the wire at `now`.
    #[must_use]
    pub fn waiting_bytes(&self, now: SimTime) -> u64 {
        match self.first_waiting(now) {
            i if i == self.wire.len() => 0,
            0 => self.wire_total - self.wire_base,
            i => self.wire_total - self.wire[i - 1].1,
        }
    }

    /// Index in `wire` of the first frame still waiting at `now`. Departures are in order and the
    /// last one is `busy_until`, so a link that is idle by `now` (always, without a rate) needs no
    /// search.
    fn first_waiting(&self, now: SimTime) -> usize {
        if self.busy_until <= now {
            self.wire.len()
        } else {
            self.wire.partition_point(|w| w.0 <= now)
        }
    }

    /// Whether one more frame fits, whatever its size, as far as the queue in frames says; a host
    /// that sees `false` holds the frame (backpressure). See [`has_room_for`](Self::has_room_for).
    #[must_use]
    pub fn has_room(&self, now: SimTime) -> bool {
        self.has_room_for(now, 0)
    }

    /// Whether one more frame of `len` bytes fits: the queue holds fewer than its frames, and,
    /// with a queue in bytes, it holds nothing or the frame fits in its bytes (drop-tail).
    #[must_use]
    pub fn has_room_for(&self, now: SimTime, len: usize) -> bool {
        if self.queue.len() >= MAX_IN_FLIGHT {
            return false;
        }
        let waiting = self.waiting(now);
        waiting < self.model.queue_frames
            && self.model.queue_bytes.is_none_or(|limit| waiting == 0 || self.waiting_bytes(now) + len as u64 <= limit)
    }

    /// When the next waiting frame leaves for the wire, freeing a queue slot (or, with nothing
    /// waiting, when the first frame in flight arrives).
    #[must_use]
    pub fn next_departure(&self, now: SimTime) -> Option<SimTime> {
        self.wire.get(self.first_waiting(now)).map(|w| w.0).or_else(|| self.queue.front().map(|f| f.arrive))
    }

    /// Reports a frame this direction had no room for.
    pub fn refuse<O: Observer>(&self, now: SimTime, packet: PacketId, frame: &[u8], obs: &mut O) {
        self.report(now, packet, Fate::Dropped(DropReason::QueueFull), frame, obs);
    }

    /// Tells the observers what happened to a frame of this direction.
    #[inline]
    pub fn report<O: Observer>(&self, time: SimTime, packet: PacketId, fate: Fate, frame: &[u8], obs: &mut O) {
        obs.frame(&FrameEvent { time, link: self.link, from: self.from, packet, fate, frame });
    }

    /// Frames on the link: waiting for the wire or in flight.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// When the first frame in flight arrives.
    #[must_use]
    pub fn next_arrival(&self) -> Option<SimTime> {
        self.queue.front().map(|f| f.arrive)
    }

    /// Puts a frame on the link. The caller checked [`has_room_for`](Self::has_room_for).
    pub fn push<O: Observer>(&mut self, now: SimTime, packet: PacketId, frame: Vec<u8>, obs: &mut O) {
        self.report(now, packet, Fate::Sent, &frame, obs);
        if let Some(copy) = self.put(now, packet, frame, true) {
            // The copy follows the frame onto the wire, if the queue has room for it too.
            if self.has_room_for(now, copy.len()) {
                self.report(now, packet, Fate::Duplicated, &copy, obs);
                self.put(now, packet, copy, false);
            }
        }
    }

    /// Puts one frame on the wire with the model's draws; returns a copy to send after it when the
    /// model duplicates it (only when `may_copy`).
    fn put(&mut self, now: SimTime, packet: PacketId, mut frame: Vec<u8>, may_copy: bool) -> Option<Vec<u8>> {
        let m = self.model;
        let tx = match m.rate_bps {
            None => Duration::ZERO,
            Some(bps) => {
                // Preamble, SFD, FCS and inter-frame gap are not modelled: the rate is of frame bytes.
                let bits = frame.len() as u64 * 8;
                Duration::from_nanos(bits.saturating_mul(1_000_000_000) / bps.max(1))
            }
        };
        let start = self.busy_until.max(now);
        let depart = start + tx;
        self.busy_until = depart;
        self.wire_total += frame.len() as u64;
        while self.wire.front().is_some_and(|w| w.0 <= now) {
            self.wire_base = self.wire.pop_front().map_or(self.wire_base, |w| w.1);
        }
        self.wire.push_back((depart, self.wire_total));
        let lost = match m.loss_model {
            None => m.loss > 0.0 && self.rng.random::<f64>() < m.loss,
            Some(ge) => {
                // The frame meets the state it finds; the state may change after it.
                let loss = if self.bad_state { ge.loss_bad } else { ge.loss_good };
                let lost = self.chance(loss);
                let turn = if self.bad_state { ge.r } else { ge.p };
                if self.chance(turn) {
                    self.bad_state = !self.bad_state;
                }
                lost
            }
        };
        let corrupt = m.corrupt > 0.0 && self.rng.random::<f64>() < m.corrupt;
        let delay = if m.jitter.is_zero() { m.latency } else { self.jittered(m.latency, m.jitter, m.distribution) };
        let copy = (may_copy && m.duplicate > 0.0 && self.rng.random::<f64>() < m.duplicate).then(|| frame.clone());
        let corrupted = corrupt && !lost && self.flip_a_bit(&mut frame);
        let arrive = depart + delay;
        let f = InFlight { arrive, lost, packet, frame, crossed: false, corrupted };
        if m.reorder {
            // A frame may overtake those sent before it: the link holds frames by arrival time.
            let at = self.queue.partition_point(|g| g.arrive <= arrive);
            self.queue.insert(at, f);
        } else {
            // FIFO: a frame never overtakes the one before it, even after the latency was lowered.
            let arrive = arrive.max(self.queue.back().map_or(SimTime::ZERO, |g| g.arrive));
            self.queue.push_back(InFlight { arrive, ..f });
        }
        copy
    }

    /// A draw that is true with probability `p`, drawing nothing when `p` is 0 or 1.
    fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            false
        } else if p >= 1.0 {
            true
        } else {
            self.rng.random::<f64>() < p
        }
    }

    /// `latency` varied by a draw of `jitter` from `dist`, never below zero.
    fn jittered(&mut self, latency: Duration, jitter: Duration, dist: Distribution) -> Duration {
        let z = match dist {
            Distribution::Uniform => self.rng.random::<f64>() * 2.0 - 1.0,
            Distribution::Normal => self.normal(),
            Distribution::Pareto => self.pareto(),
            // As netem's table: a quarter normal, three quarters Pareto, scaled back to a standard
            // deviation of one.
            Distribution::Paretonormal => (0.25 * self.normal() + 0.75 * self.pareto()) / 0.625f64.sqrt(),
        };
        #[allow(clippy::cast_precision_loss)]
        let ns = latency.as_nanos() as f64 + z * jitter.as_nanos() as f64;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Duration::from_nanos(ns.max(0.0).round() as u64)
    }

    /// A standard normal draw (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.rng.random::<f64>();
        let u2 = self.rng.random::<f64>();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// A Pareto draw of shape 3, shifted and scaled to mean 0 and standard deviation 1: its tail
    /// is long above the mean, short below it.
    fn pareto(&mut self) -> f64 {
        const SHAPE: f64 = 3.0;
        let u = 1.0 - self.rng.random::<f64>();
        let x = u.powf(-1.0 / SHAPE);
        let mean = SHAPE / (SHAPE - 1.0);
        let sd = (SHAPE / ((SHAPE - 1.0) * (SHAPE - 1.0) * (SHAPE - 2.0))).sqrt();
        (x - mean) / sd
    }

    /// Flips one random bit of the frame past its Ethernet header, and past the IP header when it
    /// carries IP, so that it still reaches its destination and the checksum of its transport
    /// (TCP, UDP, ICMP) no longer holds. Returns false for a frame with nothing past its headers.
    fn flip_a_bit(&mut self, frame: &mut [u8]) -> bool {
        const ETH: usize = 14;
        let ethertype = frame.get(12..14).map(|t| u16::from_be_bytes([t[0], t[1]]));
        let l3 = match ethertype {
            Some(0x0800) => frame.get(ETH).map_or(0, |b| usize::from(b & 0x0f) * 4).max(20),
            Some(0x86dd) => 40,
            _ => 0,
        };
        let start = ETH + l3;
        if frame.len() <= start {
            return false;
        }
        let at = self.rng.random_range(start..frame.len());
        let bit = self.rng.random_range(0..8u32);
        frame[at] ^= 1 << bit;
        true
    }

    /// Puts a frame on the link that arrives at `at` (not before the frames ahead of it), with no
    /// model applied: the far side of a remote link applied it already.
    pub fn push_arrival(&mut self, at: SimTime, packet: PacketId, frame: Vec<u8>) {
        let arrive = at.max(self.queue.back().map_or(SimTime::ZERO, |f| f.arrive));
        self.queue.push_back(InFlight { arrive, lost: false, packet, frame, crossed: true, corrupted: false });
    }

    /// Puts an arrived frame back at the head of the link, to be handed over again later.
    pub(crate) fn hold(&mut self, at: SimTime, packet: PacketId, frame: Vec<u8>) {
        self.held = true;
        self.queue.push_front(InFlight { arrive: at, lost: false, packet, frame, crossed: true, corrupted: false });
    }

    /// Takes every frame off the link (it went down); the caller reports and recycles them.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = InFlight> + '_ {
        self.armed = None;
        self.held = false;
        self.busy_until = SimTime::ZERO;
        self.wire.clear();
        self.wire_base = self.wire_total;
        self.queue.drain(..)
    }

    /// Takes the first frame if it has arrived by `now`; a frame the link lost is reported as
    /// dropped here.
    pub fn pop_due<O: Observer>(&mut self, now: SimTime, obs: &mut O) -> Option<Arrival> {
        if self.queue.front().is_none_or(|f| f.arrive > now) {
            return None;
        }
        let f = self.queue.pop_front()?;
        if f.lost {
            self.report(f.arrive, f.packet, Fate::Dropped(DropReason::Loss), &f.frame, obs);
            return Some(Arrival::Lost(f.frame));
        }
        if f.corrupted {
            self.report(f.arrive, f.packet, Fate::Corrupted, &f.frame, obs);
        }
        Some(Arrival::Frame { at: f.arrive, packet: f.packet, frame: f.frame, crossed: f.crossed })
    }

    /// Takes the next frame that has arrived by `now`, reporting a lost one as dropped and skipping it.
    #[cfg(test)]
    pub fn pop_arrived<O: Observer>(
        &mut self,
        now: SimTime,
        obs: &mut O,
        spare: &mut Vec<Vec<u8>>,
    ) -> Option<(SimTime, Vec<u8>)> {
        loop {
            match self.pop_due(now, obs)? {
                Arrival::Frame { at, frame, .. } => return Some((at, frame)),
                Arrival::Lost(lost) => spare.push(lost),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Log(Vec<(SimTime, Fate, usize)>);
    impl Observer for Log {
        fn frame(&mut self, ev: &FrameEvent<'_>) {
            self.0.push((ev.time, ev.fate, ev.frame.len()));
        }
    }

    fn model(latency_ms: u64, rate: Option<u64>, loss: f64, queue: usize) -> LinkModel {
        LinkModel {
            latency: Duration::from_millis(latency_ms),
            rate_bps: rate,
            loss,
            queue_frames: queue,
            ..LinkModel::default()
        }
    }

    #[test]
    fn latency_and_rate_set_arrival_times() {
        // 1000-byte frames at 8 Mbit/s take 1 ms each on the wire, plus 5 ms of latency.
        let mut d = Direction::new(LinkId(0), Side::A, model(5, Some(8_000_000), 0.0, 10), 1);
        let mut log = Log::default();
        d.push(SimTime::ZERO, PacketId(0), vec![0; 1000], &mut log);
        d.push(SimTime::ZERO, PacketId(0), vec![0; 1000], &mut log);
        assert_eq!(d.waiting(SimTime::ZERO), 2);
        assert_eq!(d.waiting(SimTime::from_millis(1)), 1);
        let mut spare = Vec::new();
        assert!(d.pop_arrived(SimTime::from_millis(5), &mut log, &mut spare).is_none());
        assert_eq!(
            d.pop_arrived(SimTime::from_millis(6), &mut log, &mut spare).map(|f| f.0),
            Some(SimTime::from_millis(6))
        );
        assert_eq!(d.next_arrival(), Some(SimTime::from_millis(7)));
        assert_eq!(log.0.iter().filter(|e| e.1 == Fate::Sent).count(), 2);
    }

    #[test]
    fn queue_limit_counts_only_waiting_frames() {
        let mut d = Direction::new(LinkId(0), Side::A, model(100, Some(8_000_000), 0.0, 2), 1);
        let mut log = Log::default();
        for _ in 0..2 {
            d.push(SimTime::ZERO, PacketId(0), vec![0; 1000], &mut log);
        }
        assert!(!d.has_room(SimTime::ZERO));
        assert_eq!(d.next_departure(SimTime::ZERO), Some(SimTime::from_millis(1)));
        // After 1 ms the first frame is on the wire (propagating): a slot is free.
        assert!(d.has_room(SimTime::from_millis(1)));
    }

    #[test]
    fn loss_is_seeded_and_reported() {
        let run = |seed| {
            let mut d = Direction::new(LinkId(0), Side::B, model(0, None, 0.5, 1000), seed);
            let mut log = Log::default();
            for _ in 0..200 {
                d.push(SimTime::ZERO, PacketId(0), vec![0; 60], &mut log);
            }
            let mut spare = Vec::new();
            let mut got = 0;
            while d.pop_arrived(SimTime::ZERO, &mut log, &mut spare).is_some() {
                got += 1;
            }
            assert_eq!(got + spare.len(), 200);
            assert_eq!(log.0.iter().filter(|e| e.1 == Fate::Dropped(DropReason::Loss)).count(), spare.len());
            got
        };
        assert_eq!(run(7), run(7));
        assert!((60..140).contains(&run(7)), "about half survive");
        assert!((1..20).any(|s| run(s) != run(7)), "another seed gives another pattern");
    }

    proptest::proptest! {
        /// The idle-link shortcut gives the same answers as counting the queue.
        #[test]
        fn waiting_matches_a_plain_count(
            rate in proptest::option::of(1_000_000u64..100_000_000),
            steps in proptest::collection::vec((0u64..2_000_000, 60usize..1515), 1..60),
        ) {
            let mut d = Direction::new(LinkId(0), Side::A, model(3, rate, 0.0, 1000), 1);
            let mut log = Log::default();
            let mut now = SimTime::ZERO;
            for (gap_ns, len) in steps {
                now = now + Duration::from_nanos(gap_ns);
                d.push(now, PacketId(0), vec![0; len], &mut log);
                for probe in [now, now + Duration::from_nanos(gap_ns / 2), now + Duration::from_millis(1)] {
                    let count = d.wire.iter().filter(|w| w.0 > probe).count();
                    proptest::prop_assert_eq!(d.waiting(probe), count);
                    let next = d.wire.iter().find(|w| w.0 > probe).map(|w| w.0)
                        .or_else(|| d.queue.front().map(|f| f.arrive));
                    proptest::prop_assert_eq!(d.next_departure(probe), next);
                }
            }
        }
    }
}
