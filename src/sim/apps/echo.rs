//! TCP and UDP echo servers and clients, and the TCP sink.

use std::net::IpAddr;
use std::time::Duration;

use smoltcp::iface::SocketHandle;
use smoltcp::socket::{tcp, udp};
use smoltcp::wire::IpAddress;

use super::probe::Probes;
use super::{closed_reason, count_mismatch, endpoint_str, fill_pattern, min_wake, App, AppCx, Outcome, Rtts};
use crate::time::SimTime;

/// Connections (and listening sockets) a server keeps at once; a SYN past that is refused.
pub const MAX_CONNECTIONS: usize = 1024;
/// Bytes an echo connection holds while the peer does not read.
const ECHO_PENDING: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerMode {
    Echo,
    Sink,
}

struct Conn {
    /// The interface whose socket set holds it.
    iface: usize,
    handle: SocketHandle,
    counted: bool,
    pending: Vec<u8>,
    offset: u64,
}

/// A TCP server: echoes, or sinks and checks the transfer pattern. It is polled once for each
/// interface of its host, and keeps listening sockets in each interface's set.
pub struct TcpServer {
    port: u16,
    mode: ServerMode,
    conns: Vec<Conn>,
    connections: u32,
    /// The most connections open at once.
    peak: u32,
    bytes: u64,
    corrupt: u64,
    scratch: Vec<u8>,
}

impl TcpServer {
    pub fn new(port: u16, mode: ServerMode) -> Self {
        TcpServer {
            port,
            mode,
            conns: Vec::new(),
            connections: 0,
            peak: 0,
            bytes: 0,
            corrupt: 0,
            scratch: vec![0; ECHO_PENDING],
        }
    }
}

impl App for TcpServer {
    fn poll(&mut self, cx: &mut AppCx<'_>) -> Option<SimTime> {
        // Only the connections of this interface are in `cx.sockets`.
        let me = cx.interface;
        // A listening socket takes one connection request; keep one for each SYN waiting (a
        // backlog), so that clients that call at the same instant are all served.
        let want = cx.wire.syns.get(&self.port).map_or(1, |n| (*n as usize).max(1));
        let is_listening = |cx: &AppCx<'_>, c: &Conn| {
            c.iface == me && cx.sockets.get::<tcp::Socket>(c.handle).state() == tcp::State::Listen
        };
        let mut listening = self.conns.iter().filter(|c| is_listening(cx, c)).count();
        while listening < want && self.conns.len() < MAX_CONNECTIONS {
            let h = cx.new_tcp_socket();
            if cx.sockets.get_mut::<tcp::Socket>(h).listen(self.port).is_err() {
                cx.sockets.remove(h);
                break;
            }
            self.conns.push(Conn { iface: me, handle: h, counted: false, pending: Vec::new(), offset: 0 });
            listening += 1;
        }
        // Listeners left over from a burst go, so that the host's sockets do not pile up.
        while listening > want {
            let Some(i) = self.conns.iter().rposition(|c| is_listening(cx, c)) else { break };
            cx.sockets.remove(self.conns.remove(i).handle);
            listening -= 1;
        }
        for c in self.conns.iter_mut().filter(|c| c.iface == me) {
            let s = cx.sockets.get_mut::<tcp::Socket>(c.handle);
            if !c.counted && s.is_active() {
                c.counted = true;
                self.connections += 1;
            } else if c.counted && s.state() == tcp::State::Listen {
                // An RST during the handshake puts the socket back to listening.
                c.counted = false;
            }
            match self.mode {
                ServerMode::Sink => {
                    while s.can_recv() {
                        let (n, bad) = s
                            .recv(|buf| (buf.len(), (buf.len() as u64, count_mismatch(buf, c.offset))))
                            .unwrap_or((0, 0));
                        if n == 0 {
                            break;
                        }
                        c.offset += n;
                        self.bytes += n;
                        self.corrupt += bad;
                    }
                }
                ServerMode::Echo => loop {
                    if !c.pending.is_empty() {
                        let n = s.send_slice(&c.pending).unwrap_or(0);
                        c.pending.drain(..n);
                        if !c.pending.is_empty() {
                            break;
                        }
                    }
                    if !s.can_recv() {
                        break;
                    }
                    let n = s.recv_slice(&mut self.scratch).unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    self.bytes += n as u64;
                    c.pending.extend_from_slice(&self.scratch[..n]);
                },
            }
            if s.state() == tcp::State::CloseWait && c.pending.is_empty() {
                s.close();
            }
        }
        let open = self.conns.iter().filter(|c| c.counted).count();
        self.peak = self.peak.max(u32::try_from(open).unwrap_or(u32::MAX));
        // Free the sockets of finished connections.
        self.conns.retain(|c| {
            let closed = c.iface == me
                && c.counted
                && matches!(cx.sockets.get::<tcp::Socket>(c.handle).state(), tcp::State::Closed | tcp::State::TimeWait);
            if closed {
                cx.sockets.remove(c.handle);
            }
            !closed
        });
        None
    }

    fn stop(&mut self, cx: &mut AppCx<'_>) {
        let me = cx.interface;
        self.conns.retain(|c| {
            if c.iface == me {
                cx.close_socket(c.handle);
            }
            c.iface != me
        });
    }

    fn done(&self) -> bool {
        false
    }

    fn outcome(&self) -> Outcome {
        match self.mode {
            ServerMode::Echo => Outcome::TcpEchoServer {
                port: self.port,
                connections: self.connections,
                peak_connections: self.peak,
                bytes: self.bytes,
            },
            ServerMode::Sink => Outcome::TcpSink {
                port: self.port,
                connections: self.connections,
                peak_connections: self.peak,
                bytes: self.bytes,
                corrupt_bytes: self.corrupt,
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Waiting,
    Open,
    Closing,
    Done,
}

/// What an echo client sends, to where, how often, and how long it waits for each echo.
#[derive(Debug, Clone, Copy)]
pub struct EchoParams {
    pub to: (IpAddr, u16),
    pub count: u32,
    pub size: usize,
    pub interval: Duration,
    pub timeout: Duration,
}

/// The message in flight: when it was started, how much of it is written, what has come back.
struct Message {
    sent_at: SimTime,
    written: usize,
    got: Vec<u8>,
}

/// Sends `count` messages over one TCP connection, one at a time, and checks each echo.
pub struct TcpEchoClient {
    p: EchoParams,
    handle: Option<SocketHandle>,
    phase: Phase,
    sent: u32,
    echoed: u32,
    mismatched: u32,
    in_flight: Option<Message>,
    next_send: SimTime,
    rtts: Rtts,
    error: Option<String>,
    message: Vec<u8>,
    connect_at: SimTime,
    local_port: u16,
    established: bool,
}

impl TcpEchoClient {
    pub fn new(start: SimTime, p: EchoParams) -> Self {
        TcpEchoClient {
            p,
            handle: None,
            phase: Phase::Waiting,
            sent: 0,
            echoed: 0,
            mismatched: 0,
            in_flight: None,
            next_send: start,
            rtts: Rtts::default(),
            error: None,
            message: vec![0; p.size],
            connect_at: start,
            local_port: 0,
            established: false,
        }
    }

    fn fail(&mut self, cx: &mut AppCx<'_>, why: String) {
        if let Some(h) = self.handle {
            cx.sockets.get_mut::<tcp::Socket>(h).abort();
        }
        self.error = Some(why);
        self.phase = Phase::Done;
    }
}

impl App for TcpEchoClient {
    fn poll(&mut self, cx: &mut AppCx<'_>) -> Option<SimTime> {
        if self.phase == Phase::Done {
            return None;
        }
        let h = match self.handle {
            Some(h) => h,
            None => match cx.connect_tcp(self.p.to) {
                Ok((h, port)) => {
                    self.handle = Some(h);
                    self.local_port = port;
                    self.connect_at = cx.now;
                    self.phase = Phase::Open;
                    h
                }
                Err(e) => {
                    self.fail(cx, e);
                    return None;
                }
            },
        };
        let s = cx.sockets.get_mut::<tcp::Socket>(h);
        match (self.phase, s.state()) {
            (Phase::Closing, tcp::State::Closed | tcp::State::TimeWait | tcp::State::FinWait2) => {
                self.phase = Phase::Done;
                return None;
            }
            (_, tcp::State::Closed) => {
                let why = closed_reason(cx, self.local_port, self.established, self.connect_at);
                self.fail(cx, why);
                return None;
            }
            (_, tcp::State::Established) => self.established = true,
            _ => {}
        }
        if self.phase == Phase::Open
            && self.in_flight.is_none()
            && self.sent < self.p.count
            && self.next_send <= cx.now
            && s.may_send()
        {
            fill_pattern(&mut self.message, u64::from(self.sent) * self.p.size as u64);
            self.in_flight = Some(Message { sent_at: cx.now, written: 0, got: Vec::with_capacity(self.p.size) });
            self.sent += 1;
        }
        if let Some(m) = &mut self.in_flight {
            // A message larger than the send buffer goes out in pieces as the peer acknowledges.
            if m.written < self.p.size {
                m.written += s.send_slice(&self.message[m.written..]).unwrap_or(0);
            }
            while s.can_recv() && m.got.len() < self.p.size {
                let want = self.p.size - m.got.len();
                let got = &mut m.got;
                let _ = s.recv(|buf| {
                    let n = buf.len().min(want);
                    got.extend_from_slice(&buf[..n]);
                    (n, ())
                });
            }
            if m.got.len() == self.p.size {
                if m.got == self.message {
                    self.echoed += 1;
                } else {
                    self.mismatched += 1;
                }
                self.rtts.add(cx.now - m.sent_at);
                self.next_send = (m.sent_at + self.p.interval).max(cx.now);
                self.in_flight = None;
            } else if cx.now - m.sent_at >= self.p.timeout {
                let why = format!("no echo of message {} within {:?}", self.sent, self.p.timeout);
                self.fail(cx, why);
                return None;
            }
        }
        if self.phase == Phase::Open && self.sent == self.p.count && self.in_flight.is_none() {
            cx.sockets.get_mut::<tcp::Socket>(h).close();
            self.phase = Phase::Closing;
        }
        let timeout = self.in_flight.as_ref().map(|m| m.sent_at + self.p.timeout);
        // The next message is due at `next_send`; one due already (the echo just came back) is
        // sent on the next poll, at once, if the socket can take it (otherwise traffic wakes us).
        let can_send = cx.sockets.get::<tcp::Socket>(h).may_send();
        let next = (self.phase == Phase::Open
            && self.in_flight.is_none()
            && self.sent < self.p.count
            && (self.next_send > cx.now || can_send))
            .then_some(self.next_send.max(cx.now));
        min_wake(timeout, next)
    }

    fn stop(&mut self, cx: &mut AppCx<'_>) {
        if let Some(h) = self.handle {
            cx.close_socket(h);
        }
    }

    fn done(&self) -> bool {
        self.phase == Phase::Done
    }

    fn outcome(&self) -> Outcome {
        Outcome::TcpEcho {
            to: endpoint_str(self.p.to),
            sent: self.sent,
            echoed: self.echoed,
            mismatched: self.mismatched,
            rtt: self.rtts.stats(),
            error: self.error.clone(),
        }
    }
}

fn udp_socket(cx: &mut AppCx<'_>) -> SocketHandle {
    let buf = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 128], vec![0; 128 * 1500]);
    cx.sockets.add(udp::Socket::new(buf(), buf()))
}

/// Echoes every datagram back to its sender, with a socket on each interface of its host.
pub struct UdpServer {
    port: u16,
    /// The socket of each interface it was polled on: (interface, handle).
    handles: Vec<(usize, SocketHandle)>,
    datagrams: u64,
    bytes: u64,
    scratch: Vec<u8>,
}

impl UdpServer {
    pub fn new(port: u16) -> Self {
        UdpServer { port, handles: Vec::new(), datagrams: 0, bytes: 0, scratch: vec![0; 65_536] }
    }
}

impl App for UdpServer {
    fn poll(&mut self, cx: &mut AppCx<'_>) -> Option<SimTime> {
        let h = match self.handles.iter().find(|(d, _)| *d == cx.interface) {
            Some(&(_, h)) => h,
            None => {
                let h = udp_socket(cx);
                let _ = cx.sockets.get_mut::<udp::Socket>(h).bind(self.port);
                self.handles.push((cx.interface, h));
                h
            }
        };
        let s = cx.sockets.get_mut::<udp::Socket>(h);
        while s.can_recv() && s.can_send() {
            let Ok((n, meta)) = s.recv_slice(&mut self.scratch) else { break };
            self.datagrams += 1;
            self.bytes += n as u64;
            let _ = s.send_slice(&self.scratch[..n], meta.endpoint);
        }
        None
    }

    fn stop(&mut self, cx: &mut AppCx<'_>) {
        if let Some(i) = self.handles.iter().position(|(d, _)| *d == cx.interface) {
            cx.close_socket(self.handles.remove(i).1);
        }
    }

    fn done(&self) -> bool {
        false
    }

    fn outcome(&self) -> Outcome {
        Outcome::UdpEchoServer { port: self.port, datagrams: self.datagrams, bytes: self.bytes }
    }
}

/// Sends numbered datagrams and matches each echo.
pub struct UdpEchoClient {
    to: (IpAddr, u16),
    size: usize,
    handle: Option<SocketHandle>,
    probes: Probes,
    scratch: Vec<u8>,
    msg: Vec<u8>,
}

impl UdpEchoClient {
    pub fn new(start: SimTime, p: EchoParams) -> Self {
        UdpEchoClient {
            to: p.to,
            size: p.size.max(4),
            handle: None,
            probes: Probes::new(start, p.count, p.interval, p.timeout),
            scratch: vec![0; 65_536],
            msg: Vec::new(),
        }
    }

    /// Datagram `seq`: its number, then the stream pattern.
    fn datagram(size: usize, seq: u32, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&seq.to_be_bytes());
        out.resize(size, 0);
        fill_pattern(&mut out[4..], u64::from(seq));
    }
}

impl App for UdpEchoClient {
    fn poll(&mut self, cx: &mut AppCx<'_>) -> Option<SimTime> {
        let h = match self.handle {
            Some(h) => h,
            None => {
                let h = udp_socket(cx);
                let port = cx.ephemeral_port();
                let _ = cx.sockets.get_mut::<udp::Socket>(h).bind(port);
                self.handle = Some(h);
                h
            }
        };
        let remote = (IpAddress::from(self.to.0), self.to.1);
        while let Some(seq) = self.probes.due(cx.now) {
            Self::datagram(self.size, seq, &mut self.msg);
            let ok = cx.sockets.get_mut::<udp::Socket>(h).send_slice(&self.msg, remote).is_ok();
            self.probes.sent(cx.now, ok);
        }
        loop {
            let s = cx.sockets.get_mut::<udp::Socket>(h);
            let Ok((n, meta)) = s.recv_slice(&mut self.scratch) else { break };
            if meta.endpoint.addr != remote.0 || meta.endpoint.port != remote.1 || n < 4 {
                continue;
            }
            let seq = u32::from_be_bytes([self.scratch[0], self.scratch[1], self.scratch[2], self.scratch[3]]);
            Self::datagram(self.size, seq, &mut self.msg);
            let intact = self.scratch[..n] == self.msg[..];
            self.probes.answer(cx.now, seq, intact);
        }
        self.probes.expire(cx.now)
    }

    fn stop(&mut self, cx: &mut AppCx<'_>) {
        if let Some(h) = self.handle.take() {
            cx.close_socket(h);
        }
    }

    fn done(&self) -> bool {
        self.probes.done()
    }

    fn outcome(&self) -> Outcome {
        Outcome::UdpEcho {
            to: endpoint_str(self.to),
            sent: self.probes.sent_count(),
            received: self.probes.answered,
            mismatched: self.probes.corrupt,
            loss_pct: self.probes.loss_pct(),
            send_errors: self.probes.send_errors,
            rtt: self.probes.rtts.stats(),
        }
    }
}
