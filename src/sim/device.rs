//! The smoltcp `phy::Device` of a host's interface: frames come from the host's input queue and go
//! out of its port through the fabric. A full link queue is backpressure: `transmit` returns `None`
//! and smoltcp retries later.

use std::cell::RefCell;
use std::collections::VecDeque;

use smoltcp::phy::{self, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use super::apps::SentWatch;
use super::fabric::{Fabric, Port};
use super::observe::Observer;
use super::packet::PacketIds;
use crate::time::SimTime;

/// Recycled frame buffers: the frame path allocates only while the pool warms up.
#[derive(Debug, Default)]
pub struct FramePool(Vec<Vec<u8>>);

impl FramePool {
    const KEEP: usize = 8192;

    /// A buffer for a frame of `len` bytes: a spent one, or a new one of just that size, so that a
    /// flood of small frames (ARP to a thousand ports) does not hold a full MTU each.
    pub fn take(&mut self, len: usize) -> Vec<u8> {
        self.0.pop().unwrap_or_else(|| Vec::with_capacity(len))
    }

    pub fn give(&mut self, mut v: Vec<u8>) {
        if self.0.len() < Self::KEEP {
            v.clear();
            self.0.push(v);
        }
    }
}

pub struct NetDevice<'a, O: Observer> {
    pub now: SimTime,
    pub rx: &'a mut VecDeque<Vec<u8>>,
    pub fabric: &'a mut Fabric,
    pub port: Port,
    pub pool: &'a RefCell<FramePool>,
    pub obs: &'a mut O,
    pub packets: &'a mut PacketIds,
    /// IP MTU of the interface.
    pub mtu: usize,
    /// Neither compute nor verify checksums.
    pub checksum_offload: bool,
    pub blocked: bool,
    pub frames: usize,
    /// The host's watch of its own TCP segments, when an app reads it.
    pub watch: Option<&'a mut SentWatch>,
}

impl<O: Observer> NetDevice<'_, O> {
    fn tx_token(&mut self) -> TxToken<'_, O> {
        TxToken {
            now: self.now,
            fabric: self.fabric,
            port: self.port,
            pool: self.pool,
            obs: &mut *self.obs,
            packets: &mut *self.packets,
            frames: &mut self.frames,
            watch: self.watch.as_deref_mut(),
        }
    }
}

impl<O: Observer> phy::Device for NetDevice<'_, O> {
    type RxToken<'b>
        = RxToken<'b>
    where
        Self: 'b;
    type TxToken<'b>
        = TxToken<'b, O>
    where
        Self: 'b;

    fn receive(&mut self, _: Instant) -> Option<(RxToken<'_>, TxToken<'_, O>)> {
        let frame = self.rx.pop_front()?;
        self.frames += 1;
        let rx = RxToken { frame, pool: self.pool };
        Some((rx, self.tx_token()))
    }

    fn transmit(&mut self, _: Instant) -> Option<TxToken<'_, O>> {
        // Room for the largest frame the interface sends: with a queue in bytes, a host waits
        // rather than have a frame dropped.
        if !self.fabric.has_room_for(self.now, self.port, self.mtu + 14) {
            self.blocked = true;
            return None;
        }
        Some(self.tx_token())
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu + 14;
        caps.max_burst_size = None;
        if self.checksum_offload {
            caps.checksum = ChecksumCapabilities::ignored();
        }
        caps
    }
}

pub struct RxToken<'a> {
    frame: Vec<u8>,
    pool: &'a RefCell<FramePool>,
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let r = f(&self.frame);
        self.pool.borrow_mut().give(self.frame);
        r
    }
}

pub struct TxToken<'a, O: Observer> {
    now: SimTime,
    fabric: &'a mut Fabric,
    port: Port,
    pool: &'a RefCell<FramePool>,
    obs: &'a mut O,
    packets: &'a mut PacketIds,
    frames: &'a mut usize,
    watch: Option<&'a mut SentWatch>,
}

impl<O: Observer> phy::TxToken for TxToken<'_, O> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = self.pool.borrow_mut().take(len);
        buf.resize(len, 0);
        let r = f(&mut buf);
        *self.frames += 1;
        if let Some(w) = self.watch {
            w.outgoing(&buf);
        }
        // A packet's identity is born here, when its host first sends it. Only a reply built
        // from a receive token can meet a full queue here (smoltcp asked for no transmit token of
        // its own), so the host is not backpressured and the fabric drops it.
        let id = self.packets.next_id();
        self.fabric.send(self.now, self.port, id, buf, &mut self.pool.borrow_mut(), self.obs);
        r
    }
}
