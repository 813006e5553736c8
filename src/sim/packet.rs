//! Packet identity: a number given when a host first sends a frame, kept by every copy a switch
//! floods and every hop that forwards it, so that a packet can be followed across the lab.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::topology::NodeId;

/// Bits of a [`PacketId`] that count a node's packets; the bits above name the node.
const SEQ_BITS: u32 = 40;

/// The identity of one packet.
///
/// The high bits are the sending node's index plus one and the low 40 bits count that node's
/// packets, so that ids do not depend on which other nodes share the process: a lab split across
/// sites numbers its packets as the whole lab does. Frames that entered from outside without an id
/// have node bits 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PacketId(pub u64);

impl PacketId {
    /// The `seq`-th packet sent by `node`.
    #[must_use]
    pub fn new(node: NodeId, seq: u64) -> Self {
        PacketId((u64::from(node.0) + 1) << SEQ_BITS | (seq & ((1 << SEQ_BITS) - 1)))
    }

    /// The `seq`-th frame that entered from outside without an id.
    #[must_use]
    pub fn foreign(seq: u64) -> Self {
        PacketId(seq & ((1 << SEQ_BITS) - 1))
    }

    /// The node that sent it, if a node of the lab did.
    #[must_use]
    pub fn origin(self) -> Option<NodeId> {
        let n = self.0 >> SEQ_BITS;
        (n > 0).then(|| NodeId(u32::try_from(n - 1).unwrap_or(u32::MAX)))
    }

    /// Its number among its origin's packets.
    #[must_use]
    pub fn seq(self) -> u64 {
        self.0 & ((1 << SEQ_BITS) - 1)
    }
}

/// `3.17`: the 17th packet of node 3; `x.17` for a frame from outside.
impl fmt::Display for PacketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.origin() {
            Some(n) => write!(f, "{}.{}", n.0, self.seq()),
            None => write!(f, "x.{}", self.seq()),
        }
    }
}

impl Serialize for PacketId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Hands out the ids of one node's packets in turn.
#[derive(Debug, Clone)]
pub struct PacketIds {
    node: NodeId,
    next: u64,
}

impl PacketIds {
    #[must_use]
    pub fn new(node: NodeId) -> Self {
        PacketIds { node, next: 0 }
    }

    pub fn next_id(&mut self) -> PacketId {
        let id = PacketId::new(self.node, self.next);
        self.next += 1;
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_their_origin_and_number() {
        let mut ids = PacketIds::new(NodeId(3));
        let a = ids.next_id();
        let b = ids.next_id();
        assert_eq!((a.origin(), a.seq(), b.seq()), (Some(NodeId(3)), 0, 1));
        assert_eq!(b.to_string(), "3.1");
        assert_ne!(PacketId::new(NodeId(0), 5), PacketId::foreign(5));
        assert_eq!(PacketId::foreign(5).origin(), None);
        assert_eq!(PacketId::foreign(5).to_string(), "x.5");
    }
}
