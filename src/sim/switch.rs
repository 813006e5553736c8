//! A learning Ethernet switch: learns source MACs per port, forwards known unicast to one port,
//! floods broadcast, multicast and unknown destinations, and ages entries out.

use std::collections::BTreeMap;
use std::time::Duration;

use smoltcp::wire::EthernetFrame;

use super::device::FramePool;
use super::fabric::{Arrived, Fabric, Port};
use super::observe::{DropReason, Fate, Observer};
use crate::time::SimTime;
use crate::topology::NodeId;

/// A switch node: its ports and its MAC table. It floods and forwards on its own; the fabric only
/// carries what it sends.
pub struct Switch {
    pub id: NodeId,
    pub name: String,
    pub ports: u32,
    pub table: MacTable,
}

impl Switch {
    /// A frame arrived on a port: learn its source, then forward, flood or filter it. Copies keep
    /// the packet's identity. A switch cannot push back, so a full output queue drops.
    pub fn receive<O: Observer>(
        &mut self,
        arr: &Arrived,
        frame: Vec<u8>,
        fabric: &mut Fabric,
        pool: &mut FramePool,
        obs: &mut O,
    ) {
        let Ok(eth) = EthernetFrame::new_checked(&frame[..]) else {
            arr.report(Fate::Dropped(DropReason::Malformed), &frame, obs);
            return pool.give(frame);
        };
        let (dst, src) = (eth.dst_addr().0, eth.src_addr().0);
        arr.report(Fate::Delivered, &frame, obs);
        let now = arr.at;
        let in_port = arr.port as usize;
        match self.table.forward(now, in_port, dst, src) {
            Forward::Filter => pool.give(frame),
            Forward::Port(p) => fabric.send(now, self.port(p), arr.packet, frame, pool, obs),
            Forward::Flood => {
                for p in (0..self.ports as usize).filter(|p| *p != in_port) {
                    let mut copy = pool.take(frame.len());
                    copy.extend_from_slice(&frame);
                    fabric.send(now, self.port(p), arr.packet, copy, pool, obs);
                }
                pool.give(frame);
            }
        }
    }

    fn port(&self, p: usize) -> Port {
        Port { node: self.id, port: p as u32 }
    }
}

/// Where a switch sends a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forward {
    /// To this one port.
    Port(usize),
    /// To every port but the one it came in on.
    Flood,
    /// Nowhere: the destination sits behind the port the frame came in on.
    Filter,
}

/// The switching logic, without ports' plumbing: pure and unit-testable.
#[derive(Debug, Clone)]
pub struct MacTable {
    ageing: Duration,
    entries: BTreeMap<[u8; 6], (usize, SimTime)>,
    capacity: usize,
}

impl MacTable {
    #[must_use]
    pub fn new(ageing: Duration) -> Self {
        MacTable { ageing, entries: BTreeMap::new(), capacity: 8192 }
    }

    /// Learns the source and decides where the frame goes. `frame` is at least 14 bytes.
    pub fn forward(&mut self, now: SimTime, in_port: usize, dst: [u8; 6], src: [u8; 6]) -> Forward {
        if src[0] & 1 == 0 {
            if self.entries.len() >= self.capacity && !self.entries.contains_key(&src) {
                // A full table (a MAC flood) forgets aged entries first, then refuses to learn.
                let ageing = self.ageing;
                self.entries.retain(|_, (_, seen)| now - *seen < ageing);
            }
            if self.entries.len() < self.capacity || self.entries.contains_key(&src) {
                self.entries.insert(src, (in_port, now));
            }
        }
        if dst[0] & 1 == 1 {
            return Forward::Flood;
        }
        match self.entries.get(&dst) {
            Some(&(port, seen)) if now - seen < self.ageing => {
                if port == in_port {
                    Forward::Filter
                } else {
                    Forward::Port(port)
                }
            }
            Some(_) => {
                self.entries.remove(&dst);
                Forward::Flood
            }
            None => Forward::Flood,
        }
    }

    /// Current entries (MAC, port), oldest MAC first by address order.
    pub fn entries(&self) -> impl Iterator<Item = ([u8; 6], usize)> + '_ {
        self.entries.iter().map(|(m, (p, _))| (*m, *p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];
    const BCAST: [u8; 6] = [0xff; 6];

    #[test]
    fn learns_then_forwards_unicast() {
        let mut t = MacTable::new(Duration::from_secs(300));
        let now = SimTime::ZERO;
        assert_eq!(t.forward(now, 0, B, A), Forward::Flood, "unknown destination floods");
        assert_eq!(t.forward(now, 1, A, B), Forward::Port(0), "A was learned on port 0");
        assert_eq!(t.forward(now, 0, B, A), Forward::Port(1));
        assert_eq!(t.forward(now, 0, BCAST, A), Forward::Flood, "broadcast always floods");
        assert_eq!(t.forward(now, 1, B, A), Forward::Filter, "A moved to port 1; B is on port 1 too");
        assert_eq!(t.entries().count(), 2);
    }

    #[test]
    fn entries_age_out() {
        let mut t = MacTable::new(Duration::from_secs(10));
        t.forward(SimTime::ZERO, 0, B, A);
        assert_eq!(t.forward(SimTime::from_millis(9_999), 1, A, B), Forward::Port(0));
        assert_eq!(t.forward(SimTime::from_millis(10_000), 1, A, B), Forward::Flood, "aged out after 10 s");
    }

    #[test]
    fn multicast_sources_are_not_learned_and_table_is_bounded() {
        let mut t = MacTable::new(Duration::from_secs(300));
        t.forward(SimTime::ZERO, 0, B, [1, 0, 0x5e, 0, 0, 1]);
        assert_eq!(t.entries().count(), 0);
        for i in 0..10_000u32 {
            let b = i.to_be_bytes();
            t.forward(SimTime::ZERO, 0, B, [2, 0, b[0], b[1], b[2], b[3]]);
        }
        assert_eq!(t.entries().count(), 8192);
    }
}
