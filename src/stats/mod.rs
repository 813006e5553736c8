//! Statistics: an [`Observer`] that counts frames and bytes per link and direction, and drops by
//! reason. It reads frame events only; it never reaches into the core.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::sim::{DropReason, Fate, FrameEvent, Observer};
use crate::topology::{Lab, Side};

/// Counters of one direction of a link.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DirCounters {
    pub sent_frames: u64,
    pub sent_bytes: u64,
    pub delivered_frames: u64,
    pub delivered_bytes: u64,
    /// Drops by reason (`loss`, `queue-full`, `mtu`, `malformed`).
    pub drops: BTreeMap<&'static str, u64>,
    /// Frames the link model corrupted (delivered, with a bit flipped).
    #[serde(skip_serializing_if = "is_zero")]
    pub corrupted_frames: u64,
    /// Extra copies the link model made (each delivered as a frame of its own).
    #[serde(skip_serializing_if = "is_zero")]
    pub duplicated_frames: u64,
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl DirCounters {
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.drops.values().sum()
    }
}

/// Counters of a link: `a_to_b` and `b_to_a`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LinkCounters {
    pub name: String,
    pub a_to_b: DirCounters,
    pub b_to_a: DirCounters,
}

#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub links: Vec<LinkCounters>,
    pub frames: u64,
    pub bytes: u64,
    /// Every frame event seen (sent, delivered or dropped): a cheap "did anything happen".
    events: u64,
}

impl Counters {
    #[must_use]
    pub fn events(&self) -> u64 {
        self.events
    }

    #[must_use]
    pub fn new(lab: &Lab) -> Self {
        Counters {
            links: lab.links.iter().map(|l| LinkCounters { name: l.name.clone(), ..Default::default() }).collect(),
            frames: 0,
            bytes: 0,
            events: 0,
        }
    }

    #[must_use]
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.links
            .iter()
            .map(|l| {
                l.a_to_b.drops.get(reason.as_str()).unwrap_or(&0) + l.b_to_a.drops.get(reason.as_str()).unwrap_or(&0)
            })
            .sum()
    }
}

impl Observer for Counters {
    #[inline]
    fn frame(&mut self, ev: &FrameEvent<'_>) {
        self.events += 1;
        let Some(l) = self.links.get_mut(ev.link.index()) else { return };
        let d = match ev.from {
            Side::A => &mut l.a_to_b,
            Side::B => &mut l.b_to_a,
        };
        let len = ev.frame.len() as u64;
        match ev.fate {
            Fate::Sent => {
                d.sent_frames += 1;
                d.sent_bytes += len;
            }
            // Handed to a remote end counts as delivered: the link carried it to its far end.
            Fate::Delivered | Fate::ToRemote => {
                d.delivered_frames += 1;
                d.delivered_bytes += len;
                self.frames += 1;
                self.bytes += len;
            }
            Fate::Dropped(r) => *d.drops.entry(r.as_str()).or_default() += 1,
            Fate::Corrupted => d.corrupted_frames += 1,
            Fate::Duplicated => d.duplicated_frames += 1,
            // In a tunnel between sites of this process: counted when it comes out, delivered.
            Fate::Tunneled => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::SimTime;
    use crate::topology::LinkId;

    #[test]
    fn counts_each_direction_and_drop_reason() {
        let mut c = Counters { links: vec![LinkCounters::default()], frames: 0, bytes: 0, events: 0 };
        let f = [0u8; 60];
        let ev = |from, fate| FrameEvent {
            time: SimTime::ZERO,
            link: LinkId(0),
            from,
            packet: crate::sim::PacketId(0),
            fate,
            frame: &f,
        };
        c.frame(&ev(Side::A, Fate::Sent));
        c.frame(&ev(Side::A, Fate::Delivered));
        c.frame(&ev(Side::B, Fate::Sent));
        c.frame(&ev(Side::B, Fate::Dropped(DropReason::Loss)));
        c.frame(&ev(Side::B, Fate::Corrupted));
        c.frame(&ev(Side::A, Fate::Duplicated));
        assert_eq!((c.links[0].b_to_a.corrupted_frames, c.links[0].a_to_b.duplicated_frames), (1, 1));
        assert_eq!(c.links[0].a_to_b.delivered_bytes, 60);
        assert_eq!(c.links[0].b_to_a.delivered_frames, 0);
        assert_eq!(c.links[0].b_to_a.dropped(), 1);
        assert_eq!(c.drops(DropReason::Loss), 1);
        assert_eq!((c.frames, c.bytes), (1, 60));
    }
}
