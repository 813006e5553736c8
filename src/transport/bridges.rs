//! The real sockets of port forwards and exit gateways: the edge half of the core's bridges
//! (`sim::bridge`), on a tokio runtime of one worker thread.
//!
//! A forward listens on its real address; each connection (TCP) or new source (UDP) it accepts
//! becomes a flow that the driver opens in the core ([`BridgeIn::Open`]). An exit gateway's dial
//! ([`BridgeOut::Dial`]) connects a real socket, then says how it went. Between them, bytes move
//! within each flow's window: a reader takes from its real socket only what the core has room for
//! (a semaphore of [`WINDOW`] permits, given back as the core consumes), and a writer writes what
//! the core sends whole (`write_all`) before it says so ([`BridgeIn::Written`]). Nothing here
//! queues without a bound.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::runtime::Control;
use crate::sim::bridge::{BridgeIn, BridgeOut, Dialed, FlowId, WINDOW};
use crate::topology::{Forward, Lab, Proto};

/// The most a reader takes in one read.
const READ_CHUNK: usize = 64 * 1024;
/// UDP sources one forward keeps flows for at once.
const UDP_FLOWS: usize = 256;
/// TCP connections one forward carries at once; one past it is reset at once. Each holds a lab
/// socket's buffers and up to a window each way.
pub const TCP_FLOWS: usize = 256;
/// Messages the driver's inbox holds before UDP datagrams are dropped.
const INBOX_DATAGRAMS: usize = 65_536;
/// The most a writer gathers into one write before it says what it wrote.
const WRITE_GATHER: usize = 1 << 20;
/// Lines of the log kept for the report.
const LOG_LINES: usize = 1000;

/// What the driver hands a flow's real side.
enum ToReal {
    Data(Vec<u8>),
    Eof,
    Close { reset: bool },
}

struct Flow {
    tx: mpsc::UnboundedSender<ToReal>,
    /// TCP: the room the core has for bytes from the real side.
    credit: Option<Arc<Semaphore>>,
}

struct Ctx {
    ctl: SyncSender<Control>,
    /// What the sockets said, for the driver to take whole ([`Bridges::take`]): it is woken by
    /// one [`Control::BridgeWake`] when this fills from empty, so that bridge traffic never takes
    /// more than one place in the driver's channel, which tunnel frames share.
    inbox: Mutex<Vec<BridgeIn>>,
    flows: Mutex<HashMap<FlowId, Flow>>,
    next: AtomicU32,
    log: Mutex<Vec<String>>,
    echo: AtomicBool,
    stopping: AtomicBool,
}

impl Ctx {
    fn log(&self, line: String) {
        if self.echo.load(Ordering::Relaxed) {
            let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("bridge: {line}\n").as_bytes());
        }
        let mut l = self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if l.len() < LOG_LINES {
            l.push(line);
        }
    }

    fn register(&self, flow: FlowId, f: Flow) {
        self.flows.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(flow, f);
    }

    fn forget(&self, flow: FlowId) -> Option<Flow> {
        self.flows.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&flow)
    }

    /// Tells the driver. What the inbox holds is bounded by the flows' windows (TCP) and by
    /// [`INBOX_DATAGRAMS`] (UDP, whose datagrams past it are dropped).
    fn tell(&self, msg: BridgeIn) {
        let mut inbox = self.inbox.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if inbox.len() >= INBOX_DATAGRAMS && matches!(msg, BridgeIn::Data(..)) && self.is_udp(msg.flow()) {
            return;
        }
        let wake = inbox.is_empty();
        inbox.push(msg);
        drop(inbox);
        if wake {
            // Full: the driver is busy with its channel, and takes the inbox when it steps.
            let _ = self.ctl.try_send(Control::BridgeWake);
        }
    }

    fn is_udp(&self, flow: FlowId) -> bool {
        self.flows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&flow)
            .is_some_and(|f| f.credit.is_none())
    }
}

/// A forward as it listens.
#[derive(Debug, Clone)]
pub struct Listening {
    pub forward: Forward,
    pub local: SocketAddr,
}

/// The driver's handle on the real sockets of this process's forwards and exit gateways.
pub struct Bridges {
    rt: Option<tokio::runtime::Runtime>,
    ctx: Arc<Ctx>,
    pub listening: Vec<Listening>,
    /// Unprivileged ping sockets work here.
    echo: bool,
}

impl Bridges {
    /// Binds every forward `forwards` names (so that a port in use fails the start) and starts
    /// accepting. What the sockets say goes to `ctl`.
    pub fn start(lab: &Lab, forwards: &[Forward], ctl: SyncSender<Control>) -> anyhow::Result<Bridges> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("netlab-bridge")
            .enable_all()
            .build()
            .context("cannot start the runtime of the forwards")?;
        let ctx = Arc::new(Ctx {
            ctl,
            inbox: Mutex::new(Vec::new()),
            flows: Mutex::new(HashMap::new()),
            next: AtomicU32::new(1),
            log: Mutex::new(Vec::new()),
            echo: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
        });
        let mut listening = Vec::new();
        for f in forwards {
            let from = lab.nodes.get(f.from.index()).map_or("?", |n| n.name.as_str());
            let what = format!("{} {} → {} → {}", f.proto, f.listen, crate::topology::diag::shown(from), f.to);
            let cannot = || format!("forward {what}: cannot listen on {}", f.listen);
            let _in_runtime = rt.enter();
            let local = match f.proto {
                Proto::Tcp => {
                    let l = std::net::TcpListener::bind(f.listen).with_context(cannot)?;
                    l.set_nonblocking(true)?;
                    let l = TcpListener::from_std(l)?;
                    let local = l.local_addr()?;
                    rt.spawn(accept_tcp(Arc::clone(&ctx), l, f.clone()));
                    local
                }
                Proto::Udp => {
                    let s = std::net::UdpSocket::bind(f.listen).with_context(cannot)?;
                    s.set_nonblocking(true)?;
                    let s = UdpSocket::from_std(s)?;
                    let local = s.local_addr()?;
                    rt.spawn(serve_udp(Arc::clone(&ctx), Arc::new(s), f.clone()));
                    local
                }
            };
            listening.push(Listening { forward: f.clone(), local });
            ctx.log(format!("forward {what} listening"));
        }
        let echo = ping_sockets();
        Ok(Bridges { rt: Some(rt), ctx, listening, echo })
    }

    /// Echo the log to standard error as it is written.
    pub fn echo_log(&self) {
        if !self.ctx.echo.swap(true, Ordering::Relaxed) {
            for l in self.log() {
                let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("bridge: {l}\n").as_bytes());
            }
        }
    }

    /// What the sockets said since the last call, in order.
    #[must_use]
    pub fn take(&self) -> Vec<BridgeIn> {
        std::mem::take(&mut *self.ctx.inbox.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Adds a line to the log.
    pub fn note(&self, line: String) {
        self.ctx.log(line);
    }

    #[must_use]
    pub fn log(&self) -> Vec<String> {
        self.ctx.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Carries out what the core asks.
    pub fn dispatch(&self, o: BridgeOut) {
        let Some(rt) = &self.rt else { return };
        match o {
            BridgeOut::Data(flow, bytes) => self.to_real(flow, ToReal::Data(bytes)),
            BridgeOut::Eof(flow) => self.to_real(flow, ToReal::Eof),
            BridgeOut::Closed { flow, reset } => {
                if let Some(f) = self.ctx.forget(flow) {
                    let _ = f.tx.send(ToReal::Close { reset });
                }
            }
            BridgeOut::Consumed(flow, n) => {
                let flows = self.ctx.flows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some(c) = flows.get(&flow).and_then(|f| f.credit.as_ref()) {
                    c.add_permits(n.min(WINDOW));
                }
            }
            BridgeOut::Dial { flow, proto, real, timeout } => {
                let (tx, rx) = mpsc::unbounded_channel();
                match proto {
                    Proto::Tcp => {
                        let credit = Arc::new(Semaphore::new(WINDOW));
                        self.ctx.register(flow, Flow { tx, credit: Some(Arc::clone(&credit)) });
                        rt.spawn(dial_tcp(Arc::clone(&self.ctx), flow, real, timeout, rx, credit));
                    }
                    Proto::Udp => {
                        self.ctx.register(flow, Flow { tx, credit: None });
                        rt.spawn(dial_udp(Arc::clone(&self.ctx), flow, real, rx));
                    }
                }
            }
            BridgeOut::Log(line) => self.ctx.log(line),
            BridgeOut::Echo { flow, real, data } => {
                if self.echo {
                    let ctx = Arc::clone(&self.ctx);
                    rt.spawn(async move {
                        let answered = tokio::task::spawn_blocking(move || ping(real, &data)).await;
                        if matches!(answered, Ok(Ok(true))) {
                            ctx.tell(BridgeIn::EchoReply(flow));
                        }
                    });
                }
            }
        }
    }

    /// Whether this machine grants unprivileged ping sockets, which carry a gateway's echo
    /// requests out.
    #[must_use]
    pub fn echo_allowed(&self) -> bool {
        self.echo
    }

    fn to_real(&self, flow: FlowId, m: ToReal) {
        let flows = self.ctx.flows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(f) = flows.get(&flow) {
            let _ = f.tx.send(m);
        }
    }

    /// Stops every task and closes every socket.
    pub fn shutdown(&mut self) {
        self.ctx.stopping.store(true, Ordering::Relaxed);
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_millis(200));
        }
    }
}

impl Drop for Bridges {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

async fn accept_tcp(ctx: Arc<Ctx>, l: TcpListener, f: Forward) {
    let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut full = 0u64;
    loop {
        let (stream, peer) = match l.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors and the like: wait, rather than spin.
                ctx.log(format!("forward tcp {}: accept failed: {e}", f.listen));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if open.load(Ordering::Relaxed) >= TCP_FLOWS {
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
            drop(stream);
            full += 1;
            if full == 1 || full.is_multiple_of(1000) {
                ctx.log(format!(
                    "forward tcp {}: {TCP_FLOWS} connections open, {full} refused so far (reset)",
                    f.listen
                ));
            }
            continue;
        }
        let _ = stream.set_nodelay(true);
        let flow = FlowId { node: f.from, n: ctx.next.fetch_add(1, Ordering::Relaxed) & 0x7fff_ffff };
        let (tx, rx) = mpsc::unbounded_channel();
        let credit = Arc::new(Semaphore::new(WINDOW));
        ctx.register(flow, Flow { tx, credit: Some(Arc::clone(&credit)) });
        ctx.tell(BridgeIn::Open { flow, proto: Proto::Tcp, to: f.to, peer, udp_idle: f.udp_idle });
        open.fetch_add(1, Ordering::Relaxed);
        let (c, o) = (Arc::clone(&ctx), Arc::clone(&open));
        tokio::spawn(async move {
            pipe_tcp(c, flow, stream, rx, credit).await;
            o.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

async fn dial_tcp(
    ctx: Arc<Ctx>,
    flow: FlowId,
    real: SocketAddr,
    timeout: Duration,
    rx: mpsc::UnboundedReceiver<ToReal>,
    credit: Arc<Semaphore>,
) {
    let result = match tokio::time::timeout(timeout, TcpStream::connect(real)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Err(Dialed::Refused),
        Ok(Err(_)) => Err(Dialed::Failed),
        Err(_) => Err(Dialed::TimedOut),
    };
    match result {
        Ok(stream) => {
            let _ = stream.set_nodelay(true);
            let local = stream.local_addr().unwrap_or(real);
            ctx.tell(BridgeIn::Dialed(flow, Dialed::Ok(local)));
            pipe_tcp(ctx, flow, stream, rx, credit).await;
        }
        Err(d) => {
            ctx.forget(flow);
            ctx.tell(BridgeIn::Dialed(flow, d));
        }
    }
}

/// Moves one TCP flow's bytes between its real socket and the core, each way on its own.
async fn pipe_tcp(
    ctx: Arc<Ctx>,
    flow: FlowId,
    stream: TcpStream,
    mut rx: mpsc::UnboundedReceiver<ToReal>,
    credit: Arc<Semaphore>,
) {
    let (mut rd, mut wr) = stream.into_split();
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    let rctx = Arc::clone(&ctx);
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            // Room in the core first: at least one byte, then whatever else is free.
            let first = tokio::select! {
                p = credit.acquire() => p,
                _ = &mut stop_rx => return,
            };
            let Ok(p) = first else { return };
            p.forget();
            let more = credit.available_permits().min(READ_CHUNK - 1);
            let extra = u32::try_from(more).unwrap_or(0);
            if extra > 0 {
                if let Ok(p) = credit.try_acquire_many(extra) {
                    p.forget();
                }
            }
            let room = 1 + extra as usize;
            let n = tokio::select! {
                r = rd.read(&mut buf[..room]) => r,
                _ = &mut stop_rx => return,
            };
            match n {
                Ok(0) => {
                    rctx.tell(BridgeIn::Eof(flow));
                    return;
                }
                Ok(n) => {
                    credit.add_permits(room - n);
                    rctx.tell(BridgeIn::Data(flow, buf[..n].to_vec()));
                }
                Err(_) => {
                    rctx.tell(BridgeIn::Reset(flow));
                    return;
                }
            }
        }
    });
    let mut stop = Some(stop_tx);
    let mut reset = false;
    let mut next: Option<ToReal> = None;
    while let Some(m) = match next.take() {
        Some(m) => Some(m),
        None => rx.recv().await,
    } {
        match m {
            ToReal::Data(mut b) => {
                // What else is waiting goes in the same write, and is told in one message.
                while b.len() < WRITE_GATHER {
                    match rx.try_recv() {
                        Ok(ToReal::Data(more)) => b.extend_from_slice(&more),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let n = b.len();
                if wr.write_all(&b).await.is_err() {
                    ctx.forget(flow);
                    ctx.tell(BridgeIn::Reset(flow));
                    break;
                }
                ctx.tell(BridgeIn::Written(flow, n));
            }
            ToReal::Eof => {
                let _ = wr.shutdown().await;
            }
            ToReal::Close { reset: false } => {
                let _ = wr.shutdown().await;
                break;
            }
            ToReal::Close { reset: true } => {
                // Closing with a zero linger sends a reset, as the lab's side was.
                let _ = socket2::SockRef::from(wr.as_ref()).set_linger(Some(Duration::ZERO));
                reset = true;
                break;
            }
        }
    }
    if reset {
        // No FIN first: the socket closes, with its zero linger, when the reader lets go of it.
        wr.forget();
    }
    if let Some(s) = stop.take() {
        let _ = s.send(());
    }
    let _ = reader.await;
}

/// A UDP forward: each real source is a flow of its own, with datagrams back to it.
async fn serve_udp(ctx: Arc<Ctx>, sock: Arc<UdpSocket>, f: Forward) {
    let peers: Arc<Mutex<HashMap<SocketAddr, FlowId>>> = Arc::new(Mutex::new(HashMap::new()));
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, peer) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let known = peers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&peer).copied();
        let flow = match known {
            Some(flow) => flow,
            None => {
                if peers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len() >= UDP_FLOWS {
                    continue;
                }
                let flow = FlowId { node: f.from, n: ctx.next.fetch_add(1, Ordering::Relaxed) & 0x7fff_ffff };
                let (tx, mut rx) = mpsc::unbounded_channel();
                ctx.register(flow, Flow { tx, credit: None });
                peers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(peer, flow);
                ctx.tell(BridgeIn::Open { flow, proto: Proto::Udp, to: f.to, peer, udp_idle: f.udp_idle });
                let (s, p, c) = (Arc::clone(&sock), Arc::clone(&peers), Arc::clone(&ctx));
                tokio::spawn(async move {
                    while let Some(m) = rx.recv().await {
                        match m {
                            ToReal::Data(d) => {
                                let _ = s.send_to(&d, peer).await;
                            }
                            ToReal::Eof => {}
                            ToReal::Close { .. } => break,
                        }
                    }
                    c.forget(flow);
                    p.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&peer);
                });
                flow
            }
        };
        ctx.tell(BridgeIn::Data(flow, buf[..n].to_vec()));
    }
}

/// An exit gateway's UDP flow: a real socket connected to its destination.
async fn dial_udp(ctx: Arc<Ctx>, flow: FlowId, real: SocketAddr, mut rx: mpsc::UnboundedReceiver<ToReal>) {
    let any: SocketAddr = if real.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().unwrap_or(real);
    let sock = match UdpSocket::bind(any).await {
        Ok(s) => s,
        Err(_) => {
            ctx.forget(flow);
            ctx.tell(BridgeIn::Dialed(flow, Dialed::Failed));
            return;
        }
    };
    if sock.connect(real).await.is_err() {
        ctx.forget(flow);
        ctx.tell(BridgeIn::Dialed(flow, Dialed::Failed));
        return;
    }
    let local = sock.local_addr().unwrap_or(any);
    ctx.tell(BridgeIn::Dialed(flow, Dialed::Ok(local)));
    let mut buf = vec![0u8; 65536];
    loop {
        tokio::select! {
            m = rx.recv() => match m {
                Some(ToReal::Data(d)) => {
                    if let Err(e) = sock.send(&d).await {
                        if e.kind() == std::io::ErrorKind::ConnectionRefused {
                            ctx.forget(flow);
                            ctx.tell(BridgeIn::Reset(flow));
                            return;
                        }
                    }
                }
                Some(ToReal::Eof) => {}
                Some(ToReal::Close { .. }) | None => return,
            },
            r = sock.recv(&mut buf) => match r {
                Ok(n) => ctx.tell(BridgeIn::Data(flow, buf[..n].to_vec())),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    ctx.forget(flow);
                    ctx.tell(BridgeIn::Reset(flow));
                    return;
                }
                Err(_) => {}
            },
        }
    }
}

/// Whether this process may open an unprivileged ICMP socket (`net.ipv4.ping_group_range`).
fn ping_sockets() -> bool {
    socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, Some(socket2::Protocol::ICMPV4)).is_ok()
}

/// One ICMP echo to `to` through an unprivileged ping socket (the kernel sets its identifier and
/// checksum): whether a reply came within a second.
fn ping(to: std::net::IpAddr, data: &[u8]) -> std::io::Result<bool> {
    use socket2::{Domain, Protocol, Socket, Type};
    let (domain, proto, request, reply) = if to.is_ipv4() {
        (Domain::IPV4, Protocol::ICMPV4, 8u8, 0u8)
    } else {
        (Domain::IPV6, Protocol::ICMPV6, 128, 129)
    };
    // A datagram socket of ICMP reads and writes as a UDP one does.
    let s: std::net::UdpSocket = Socket::new(domain, Type::DGRAM, Some(proto))?.into();
    s.set_read_timeout(Some(Duration::from_secs(1)))?;
    s.connect(SocketAddr::new(to, 0))?;
    let data = &data[..data.len().min(1400)];
    let mut msg = vec![0u8; 8 + data.len()];
    msg[0] = request;
    msg[6..8].copy_from_slice(&1u16.to_be_bytes());
    msg[8..].copy_from_slice(data);
    s.send(&msg)?;
    let started = std::time::Instant::now();
    let mut buf = [0u8; 2048];
    while started.elapsed() < Duration::from_secs(1) {
        match s.recv(&mut buf) {
            Ok(n) if n > 0 && buf[0] == reply => return Ok(true),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Ok(false)
            }
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}
