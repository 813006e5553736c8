//! A UDP socket that moves datagrams in batches: many datagrams a system call where the platform
//! allows (Linux: GSO to send a run of equal-sized datagrams at once, GRO and `recvmmsg` to read
//! many), through `quinn-udp`; one at a time elsewhere.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;

use quinn_udp::{RecvMeta, Transmit, UdpSocketState};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Buffers read in one call, each up to 64 KiB (one datagram, or a GRO run of equal ones).
const RECV_BUFFERS: usize = 16;
const RECV_BUFFER: usize = 64 * 1024;
/// The socket buffers asked for, each way.
const SOCKET_BUFFER: usize = 4 << 20;
/// The most bytes a send batch gathers.
const SEND_BYTES: usize = 60 * 1024;

pub(crate) struct UdpIo {
    pub sock: UdpSocket,
    state: UdpSocketState,
    bufs: Vec<Vec<u8>>,
    metas: Vec<RecvMeta>,
    /// What the last read got: (buffer, offset, length, sender).
    ready: Vec<(usize, usize, usize, SocketAddr)>,
    /// Datagrams gathered to send at once: all of `seg` bytes but the last, to `to`.
    out: Vec<u8>,
    seg: usize,
    count: usize,
    /// The last datagram gathered was shorter than `seg`: the batch takes no more.
    closed: bool,
    to: Option<SocketAddr>,
}

impl UdpIo {
    pub fn new(sock: UdpSocket) -> io::Result<UdpIo> {
        // Room for a burst: a lab without a rate limit sends a whole TCP window at once, and the
        // system's default buffer (about 200 KiB) holds fewer than a hundred full-size datagrams.
        // The system may grant less (its `rmem_max`, `wmem_max`); what it grants is enough to run.
        let s = socket2::SockRef::from(&sock);
        let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
        let _ = s.set_send_buffer_size(SOCKET_BUFFER);
        let state = UdpSocketState::new((&sock).into())?;
        Ok(UdpIo {
            sock,
            state,
            bufs: (0..RECV_BUFFERS).map(|_| vec![0; RECV_BUFFER]).collect(),
            metas: vec![RecvMeta::default(); RECV_BUFFERS],
            ready: Vec::with_capacity(RECV_BUFFERS * 4),
            out: Vec::with_capacity(SEND_BYTES + super::codec::MAX_WIRE),
            seg: 0,
            count: 0,
            closed: false,
            to: None,
        })
    }

    /// Waits until datagrams can be read, reads a batch of them, and returns how many it got (see
    /// [`UdpIo::datagram`]).
    pub async fn recv(&mut self) -> io::Result<usize> {
        loop {
            self.sock.readable().await?;
            match self.try_recv() {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn try_recv(&mut self) -> io::Result<usize> {
        let UdpIo { sock, state, bufs, metas, ready, .. } = self;
        let mut slices: Vec<IoSliceMut<'_>> = bufs.iter_mut().map(|b| IoSliceMut::new(b)).collect();
        let sock: &UdpSocket = sock;
        let n = sock.try_io(Interest::READABLE, || state.recv(sock.into(), &mut slices, metas))?;
        ready.clear();
        for (i, m) in metas.iter().enumerate().take(n) {
            // A GRO read holds a run of datagrams of `stride` bytes (the last may be shorter).
            let stride = m.stride.max(1);
            let mut off = 0;
            while off < m.len {
                let len = stride.min(m.len - off);
                ready.push((i, off, len, m.addr));
                off += len;
            }
        }
        Ok(ready.len())
    }

    /// The `i`th datagram of the last read, and who sent it.
    pub fn datagram(&self, i: usize) -> (SocketAddr, &[u8]) {
        let (b, off, len, addr) = self.ready[i];
        (addr, &self.bufs[b][off..off + len])
    }

    /// Gathers a datagram to send; sends what was gathered first when this one cannot join it.
    /// Returns how many datagrams a failed send lost.
    pub async fn send(&mut self, to: SocketAddr, d: &[u8]) -> Result<(), (usize, io::Error)> {
        let joins = self.count > 0
            && self.to == Some(to)
            && !self.closed
            && d.len() <= self.seg
            && self.count < self.state.max_gso_segments()
            && self.out.len() + d.len() <= SEND_BYTES;
        if !joins {
            self.flush().await?;
        }
        if self.count == 0 {
            self.seg = d.len();
            self.to = Some(to);
        }
        self.out.extend_from_slice(d);
        self.count += 1;
        self.closed = d.len() < self.seg;
        Ok(())
    }

    /// Sends what was gathered, in one system call where the platform allows.
    pub async fn flush(&mut self) -> Result<(), (usize, io::Error)> {
        let (count, Some(to)) = (self.count, self.to) else { return Ok(()) };
        if count == 0 {
            return Ok(());
        }
        let t = Transmit {
            destination: to,
            ecn: None,
            contents: &self.out,
            segment_size: (count > 1).then_some(self.seg),
            src_ip: None,
        };
        let r = loop {
            if let Err(e) = self.sock.writable().await {
                break Err(e);
            }
            match self.sock.try_io(Interest::WRITABLE, || self.state.try_send((&self.sock).into(), &t)) {
                Ok(()) => break Ok(()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => break Err(e),
            }
        };
        self.out.clear();
        self.count = 0;
        self.closed = false;
        r.map_err(|e| (count, e))
    }
}
