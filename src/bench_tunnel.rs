//! Tunnel benchmark, shared by `netlab bench --tunnel` and `cargo bench --bench tunnel`.
//!
//! It measures, in one process and one run, so that every figure has a baseline taken on the same
//! machine at the same moment:
//!
//! - **baselines**, plain tokio with no netlab code: 1514-byte buffers over a loopback UDP socket
//!   (one `send` a datagram, counting what arrives), over a loopback TCP stream (length-prefixed,
//!   batched in a buffer written when the queue runs dry), through a tokio channel, and through
//!   the tunnels' cipher alone (seal and open, one thread);
//! - **tunnel frames**: the tunnels of two sites, each with its own [`Tunnels`] (as two
//!   `netlab run --site` processes have), fed 1514-byte frames as the driver feeds them, counting
//!   the frames that reach the other site's driver queue: the transport alone, without smoltcp;
//! - **TCP through a tunnel**: two drivers, one a site, on the wall clock at speed 1, a
//!   `tcp-transfer` into a `tcp-sink` across the tunnel for a few seconds: goodput, and the
//!   tunnel's frames a second (both ways), against the same lab carried in memory.
//!
//! Every socket is on 127.0.0.1, every measurement is bounded in time, and every thread, task and
//! runtime it starts is stopped before it returns.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use crate::runtime::{self, CaptureChoice, Control, Report, RunOptions};
use crate::sim::apps::Outcome;
use crate::sim::{OutFrame, PacketId};
use crate::time::SimTime;
use crate::topology::{self, Lab, Side, Transport};
use crate::transport::codec::{self, Message};
use crate::transport::secure::{now_ns, DatagramInitiator, DatagramResponder, Identity, Psk};
use crate::transport::{Overrides, Placement, Security, State, TunnelStatus, Tunnels};

/// The size of every frame: a full Ethernet frame at MTU 1500, without its FCS.
pub const FRAME: usize = 1514;
/// Frames in one batch (the tunnels' own batch towards the driver).
const BATCH: usize = 64;
/// Frames handed to [`Tunnels::send`] between two flushes, as a busy step hands them over.
const SEND_CHUNK: usize = 32;
/// Batches waiting in a queue: the driver's control queue, and the TCP baseline's.
const QUEUE: usize = 256;
/// Bytes gathered before a stream write, and read at once (as the tunnels do).
const WRITE_BATCH: usize = 256 * 1024;
const READ_BUF: usize = 64 * 1024;
/// How long tunnels may take to come up.
const UP_WITHIN: Duration = Duration::from_secs(10);

/// One measurement: frames and bytes that arrived in `wall`, of `offered`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rate {
    pub frames: u64,
    pub bytes: u64,
    /// Frames the sender put out in `wall` (a socket took them, or the tunnels did).
    pub offered: u64,
    /// Frames that were on their way at the end of `wall` and arrived afterwards.
    pub late: u64,
    pub wall: Duration,
}

impl Rate {
    #[must_use]
    pub fn per_sec(&self) -> f64 {
        self.frames as f64 / self.wall.as_secs_f64()
    }

    #[must_use]
    pub fn gbps(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.wall.as_secs_f64() / 1e9
    }

    /// The share of what was offered that never arrived.
    #[must_use]
    pub fn lost(&self) -> f64 {
        if self.offered == 0 {
            return 0.0;
        }
        self.offered.saturating_sub(self.frames + self.late) as f64 / self.offered as f64
    }
}

/// A 1514-byte Ethernet frame: broadcast, from a local address, IPv4, then a byte pattern.
#[must_use]
pub fn frame() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x00]);
    f.extend((0..FRAME - f.len()).map(|i| i as u8));
    f
}

fn tokio_rt(workers: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("bench-baseline")
        .enable_all()
        .build()
        .context("cannot start a tokio runtime")
}

/// Runs `f` on a runtime of two workers, then stops the runtime and whatever is left on it.
fn on_tokio<T>(f: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    let rt = tokio_rt(2)?;
    let r = rt.block_on(f);
    rt.shutdown_timeout(Duration::from_millis(200));
    r
}

/// A sleep until `deadline`, for `select!`.
fn until(deadline: Instant) -> tokio::time::Sleep {
    tokio::time::sleep_until(tokio::time::Instant::from_std(deadline))
}

/// After a measurement, what is still on its way is counted until nothing has come for this
/// long, or for [`DRAIN_MAX`] at most: what never comes was lost.
const QUIET: Duration = Duration::from_millis(100);
const DRAIN_MAX: Duration = Duration::from_secs(1);

/// Takes length-prefixed frames out of a byte stream, counting them.
#[derive(Default)]
struct Deframer {
    acc: Vec<u8>,
}

impl Deframer {
    /// The frames and bytes that `more` completes.
    fn feed(&mut self, more: &[u8]) -> (u64, u64) {
        self.acc.extend_from_slice(more);
        let (mut n, mut bytes, mut at) = (0u64, 0u64, 0usize);
        while self.acc.len() - at >= 4 {
            let a = &self.acc[at..];
            let len = u32::from_be_bytes([a[0], a[1], a[2], a[3]]) as usize;
            if a.len() - 4 < len {
                break;
            }
            n += 1;
            bytes += len as u64;
            at += 4 + len;
        }
        self.acc.drain(..at);
        (n, bytes)
    }
}

/// Plain tokio over loopback UDP: one `send` a datagram as fast as the socket takes them, and a
/// receiver counting what arrives, for `d`.
pub fn udp_baseline(d: Duration) -> anyhow::Result<Rate> {
    on_tokio(async move {
        let rx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let tx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        tx.connect(rx.local_addr()?).await?;
        let deadline = Instant::now() + d;
        let receiver = tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            let (mut n, mut bytes) = (0u64, 0u64);
            let end = until(deadline);
            tokio::pin!(end);
            loop {
                tokio::select! {
                    biased;
                    () = &mut end => break,
                    r = rx.recv(&mut buf) => if let Ok(k) = r {
                        n += 1;
                        bytes += k as u64;
                    }
                }
            }
            let (mut late, drain) = (0u64, Instant::now());
            while drain.elapsed() < DRAIN_MAX
                && matches!(tokio::time::timeout(QUIET, rx.recv(&mut buf)).await, Ok(Ok(_)))
            {
                late += 1;
            }
            (n, bytes, late)
        });
        let sender = tokio::spawn(async move {
            let f = frame();
            let mut n = 0u64;
            while Instant::now() < deadline {
                for _ in 0..BATCH {
                    if tx.send(&f).await.is_ok() {
                        n += 1;
                    }
                }
            }
            n
        });
        let offered = sender.await?;
        let (frames, bytes, late) = receiver.await?;
        Ok(Rate { frames, bytes, offered, late, wall: d })
    })
}

/// Plain tokio over a loopback TCP stream: a producer queues batches of 64 fresh frames, a writer
/// frames each behind its 4-byte length into a buffer and writes it when the queue runs dry (or at
/// 256 KiB), a reader takes the frames out of the stream and counts them, for `d`. Without
/// `queued`, the writer fills its buffer with copies of one frame instead: no producer, no queue,
/// no buffer of its own for each frame.
pub fn tcp_baseline(d: Duration, queued: bool) -> anyhow::Result<Rate> {
    on_tokio(async move {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = l.local_addr()?;
        let (c, s) = tokio::join!(TcpStream::connect(addr), l.accept());
        let (mut w, (mut s, _)) = (c?, s?);
        w.set_nodelay(true)?;
        s.set_nodelay(true)?;
        let deadline = Instant::now() + d;
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; READ_BUF];
            let mut frames = Deframer::default();
            let (mut n, mut bytes) = (0u64, 0u64);
            let end = until(deadline);
            tokio::pin!(end);
            loop {
                let k = tokio::select! {
                    biased;
                    () = &mut end => break,
                    r = s.read(&mut buf) => match r {
                        Ok(0) | Err(_) => break,
                        Ok(k) => k,
                    }
                };
                let (f, b) = frames.feed(&buf[..k]);
                n += f;
                bytes += b;
            }
            let (mut late, drain) = (0u64, Instant::now());
            while drain.elapsed() < DRAIN_MAX {
                match tokio::time::timeout(QUIET, s.read(&mut buf)).await {
                    Ok(Ok(k)) if k > 0 => late += frames.feed(&buf[..k]).0,
                    _ => break,
                }
            }
            (n, bytes, late)
        });
        if !queued {
            let f = frame();
            let mut wbuf = Vec::with_capacity(WRITE_BATCH + 16 * 1024);
            let mut offered = 0u64;
            while Instant::now() < deadline {
                while wbuf.len() < WRITE_BATCH {
                    wbuf.extend_from_slice(&u32::try_from(f.len()).unwrap_or(u32::MAX).to_be_bytes());
                    wbuf.extend_from_slice(&f);
                    offered += 1;
                }
                w.write_all(&wbuf).await?;
                wbuf.clear();
            }
            let (frames, bytes, late) = reader.await?;
            return Ok(Rate { frames, bytes, offered, late, wall: d });
        }
        let (qtx, mut qrx) = tokio::sync::mpsc::channel::<Vec<Vec<u8>>>(QUEUE);
        let writer = tokio::spawn(async move {
            let mut wbuf = Vec::with_capacity(WRITE_BATCH + 16 * 1024);
            while let Some(mut b) = qrx.recv().await {
                loop {
                    for f in b.drain(..) {
                        wbuf.extend_from_slice(&u32::try_from(f.len()).unwrap_or(u32::MAX).to_be_bytes());
                        wbuf.extend_from_slice(&f);
                    }
                    if wbuf.len() >= WRITE_BATCH {
                        break;
                    }
                    match qrx.try_recv() {
                        Ok(x) => b = x,
                        Err(_) => break,
                    }
                }
                if w.write_all(&wbuf).await.is_err() {
                    break;
                }
                wbuf.clear();
            }
        });
        let producer = tokio::spawn(async move {
            let f = frame();
            let mut n = 0u64;
            while Instant::now() < deadline {
                let b: Vec<Vec<u8>> = (0..BATCH).map(|_| f.clone()).collect();
                if qtx.send(b).await.is_err() {
                    break;
                }
                n += BATCH as u64;
            }
            n
        });
        let offered = producer.await?;
        let (frames, bytes, late) = reader.await?;
        writer.abort();
        Ok(Rate { frames, bytes, offered, late, wall: d })
    })
}

/// A tokio channel, for reference: a task sends a fresh 1514-byte buffer a message, another counts
/// them, for `d`.
pub fn mpsc_baseline(d: Duration) -> anyhow::Result<Rate> {
    on_tokio(async move {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(1024);
        let deadline = Instant::now() + d;
        let receiver = tokio::spawn(async move {
            let (mut n, mut bytes) = (0u64, 0u64);
            let end = until(deadline);
            tokio::pin!(end);
            loop {
                tokio::select! {
                    biased;
                    () = &mut end => break,
                    m = rx.recv() => match m {
                        Some(m) => {
                            n += 1;
                            bytes += m.len() as u64;
                        }
                        None => break,
                    }
                }
            }
            (n, bytes)
        });
        let sender = tokio::spawn(async move {
            let f = frame();
            let mut n = 0u64;
            while Instant::now() < deadline {
                for _ in 0..BATCH {
                    if tx.send(f.clone()).await.is_err() {
                        return n;
                    }
                    n += 1;
                }
            }
            n
        });
        let (frames, bytes) = receiver.await?;
        let offered = sender.await?;
        Ok(Rate { frames, bytes, offered, late: offered.saturating_sub(frames), wall: d })
    })
}

/// The tunnels' datagram cipher alone: a frame message (a 1514-byte frame and its header) sealed
/// and opened again, one after the other on one thread, for `d`.
pub fn cipher_baseline(d: Duration) -> anyhow::Result<Rate> {
    let psk = Psk::random()?;
    let id = |site: &str| Identity {
        version: codec::VERSION,
        lab: "tunnel-bench".into(),
        links: [7; 32],
        site: site.into(),
        time_ns: now_ns(),
    };
    let (mut init, hello) = DatagramInitiator::initiate(&psk, &id("one"), 1)?;
    let (reply, mut b, _) =
        DatagramResponder::new(&psk, id("two")).respond(&hello, 2).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (mut a, _) = init.read_response(&reply).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut plain = Vec::new();
    Message::Frame { link: topology::LinkId(0), from: Side::A, packet: PacketId(1), frame: frame() }.encode(&mut plain);
    let (mut sealed, mut opened) = (Vec::with_capacity(FRAME + 64), Vec::with_capacity(FRAME + 64));
    let start = Instant::now();
    let (mut n, mut bytes) = (0u64, 0u64);
    while start.elapsed() < d {
        for _ in 0..BATCH {
            sealed.clear();
            a.seal(&plain, &mut sealed);
            b.open(&sealed, &mut opened).map_err(|e| anyhow::anyhow!("{e}"))?;
            n += 1;
            bytes += opened.len() as u64;
        }
    }
    Ok(Rate { frames: n, bytes, offered: n, late: 0, wall: start.elapsed() })
}

/// The lab of the tunnel measurements: host `a` in site `one` (which listens on `port`) sends
/// `bytes` of TCP to host `b` in site `two` across one link carried by `transport`, with no
/// latency and no rate limit.
pub fn tunnel_lab(transport: Transport, encrypted: bool, port: u16, bytes: u64) -> anyhow::Result<Lab> {
    let text = format!(
        r#"{{
  "name": "tunnel-bench",
  "insecure": {insecure},
  "nodes": {{
    "a": {{ "kind": "host", "site": "one", "interfaces": {{ "eth0": {{ "addresses": ["10.0.0.1/24"] }} }},
           "tcp": {{ "rx_buffer": {buffer}, "tx_buffer": {buffer} }},
           "apps": [ {{ "kind": "tcp-transfer", "to": "b:9", "bytes": {bytes} }} ] }},
    "b": {{ "kind": "host", "site": "two", "interfaces": {{ "eth0": {{ "addresses": ["10.0.0.2/24"] }} }},
           "tcp": {{ "rx_buffer": {buffer}, "tx_buffer": {buffer} }},
           "apps": [ {{ "kind": "tcp-sink", "port": 9 }} ] }}
  }},
  "links": [ {{ "a": "a:eth0", "b": "b:eth0", "transport": "{transport}" }} ],
  "sites": {{ "one": {{ "listen": "127.0.0.1:{port}" }}, "two": {{ "connect": "127.0.0.1:{port}" }} }}
}}"#,
        insecure = !encrypted,
        buffer = 1 << 20,
        transport = transport.as_str(),
    );
    topology::load_str(&text, "tunnel-bench").map_err(|e| anyhow::anyhow!("the tunnel bench lab is invalid: {e}"))
}

/// A loopback port free for both TCP and UDP just now.
pub fn free_port() -> anyhow::Result<u16> {
    for _ in 0..50 {
        let t = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = t.local_addr()?.port();
        if std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free loopback port for both TCP and UDP")
}

fn security(encrypted: bool) -> anyhow::Result<Security> {
    if !encrypted {
        return Ok(Security::Plain);
    }
    let text = Psk::generate_hex()?;
    let psk = Psk::parse(&text).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Security::Key { psk: Arc::new(psk), text })
}

fn all_up(t: &Tunnels) -> bool {
    t.status().iter().all(|e| e.state == State::Up)
}

/// The tunnel alone: two sites' [`Tunnels`] in this process, each on its own runtime as in a
/// process of its own. Site `one` is handed 1514-byte frames as the driver hands it a step's
/// outbox (a few at a time, then a flush; what the queue refuses is offered again), for `d`;
/// what reaches site `two`'s driver queue is counted.
pub fn tunnel_frames(transport: Transport, encrypted: bool, d: Duration) -> anyhow::Result<(Rate, Vec<TunnelStatus>)> {
    let lab = tunnel_lab(transport, encrypted, free_port()?, 1 << 20)?;
    let sec = security(encrypted)?;
    // Site one sends nothing back but keepalives, which stay in its tunnels: its queue stays empty.
    let (tx_one, _rx_one) = sync_channel(QUEUE);
    let (tx_two, rx_two) = sync_channel(QUEUE);
    let mut one = Tunnels::start(&lab, &Placement::Site(0), sec.clone(), &Overrides::default(), tx_one)?;
    let mut two = Tunnels::start(&lab, &Placement::Site(1), sec, &Overrides::default(), tx_two)?;
    let r = (|| {
        let started = Instant::now();
        while !(all_up(&one) && all_up(&two)) {
            ensure!(
                started.elapsed() < UP_WITHIN,
                "the {} tunnel did not come up: {:?}",
                transport.as_str(),
                one.log()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let link = lab.links[0].id;
        let deadline = Instant::now() + d;
        let counter = std::thread::spawn(move || {
            let (mut n, mut bytes) = (0u64, 0u64);
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                match rx_two.recv_timeout(left) {
                    Ok(Control::Frames(b)) => {
                        n += b.len() as u64;
                        bytes += b.iter().map(|f| f.frame.len() as u64).sum::<u64>();
                    }
                    Ok(_) => {}
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                }
            }
            let (mut late, drain) = (0u64, Instant::now());
            while drain.elapsed() < DRAIN_MAX {
                match rx_two.recv_timeout(QUIET) {
                    Ok(Control::Frames(b)) => late += b.len() as u64,
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            (n, bytes, late)
        });
        let template = frame();
        let (mut again, mut packet) = (Vec::new(), 0u64);
        while Instant::now() < deadline {
            for _ in 0..SEND_CHUNK {
                let f = again.pop().unwrap_or_else(|| {
                    packet += 1;
                    OutFrame {
                        link,
                        from: Side::A,
                        at: SimTime::ZERO,
                        packet: PacketId(packet),
                        frame: template.clone(),
                    }
                });
                match one.send(f) {
                    Ok(()) => {}
                    Err((f, crate::sim::DropReason::TunnelFull)) => {
                        again.push(f);
                        break;
                    }
                    Err((_, why)) => bail!("the tunnel refused a frame: {why:?}"),
                }
            }
            one.flush();
            if !again.is_empty() {
                // The tunnel's queue is full: wait for it, as a driver that paced its sends would.
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        let offered = packet - again.len() as u64;
        let (frames, bytes, late) = counter.join().map_err(|_| anyhow::anyhow!("the counting thread panicked"))?;
        let mut status = one.status();
        status.extend(two.status());
        Ok((Rate { frames, bytes, offered, late, wall: d }, status))
    })();
    one.shutdown();
    two.shutdown();
    r
}

/// What a run of TCP through a tunnel gave.
#[derive(Debug, Clone, Copy, Default)]
pub struct Goodput {
    /// Bytes the sink received, in the sink's wall seconds.
    pub bytes: u64,
    pub wall: Duration,
    /// Frames that crossed the tunnel, both ways, as the sink's site counts them.
    pub tunnel_frames: u64,
    /// Frames one site sent through the tunnel that the other had not received when they ended:
    /// lost, or on their way at the end (the sites end at slightly different times).
    pub unreceived: u64,
    /// Frames the lab dropped (the tunnel's queue full, and the like), both sites.
    pub drops: u64,
}

impl Goodput {
    #[must_use]
    pub fn mbps(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.wall.as_secs_f64() / 1e6
    }

    #[must_use]
    pub fn fps(&self) -> f64 {
        self.tunnel_frames as f64 / self.wall.as_secs_f64()
    }
}

fn sink_bytes(r: &Report) -> Option<u64> {
    r.apps.iter().find_map(|a| match a.outcome {
        Outcome::TcpSink { bytes, corrupt_bytes: 0, .. } => Some(bytes),
        _ => None,
    })
}

fn drops(r: &Report) -> u64 {
    r.links.iter().flat_map(|l| [&l.a_to_b, &l.b_to_a]).flat_map(|d| d.drops.values()).sum()
}

/// A transfer far larger than a few seconds carry: the runs end at their duration.
const ENDLESS: u64 = 1 << 40;
/// The in-memory transfer.
const IN_MEMORY: u64 = 256 << 20;

/// TCP through a tunnel: two drivers, one a site (as two `netlab run --site` processes), on the
/// wall clock at speed 1 for `d`; or, with `transport` `None`, the same lab in one driver with
/// the link carried in memory, moving 256 MiB.
pub fn goodput(transport: Option<Transport>, encrypted: bool, d: Duration) -> anyhow::Result<Goodput> {
    let Some(transport) = transport else {
        // Without latency, an in-memory transfer runs at one simulated instant, however long it
        // takes on the wall clock: it is given a size, not a duration.
        let lab = tunnel_lab(Transport::Udp, encrypted, free_port()?, IN_MEMORY)?;
        let opts = RunOptions { in_memory: true, capture: CaptureChoice::Off, ..RunOptions::default() };
        let r = runtime::run(&lab, &opts, &mut ())?;
        let bytes = sink_bytes(&r).context("the sink received nothing, or corrupt bytes")?;
        ensure!(bytes == IN_MEMORY, "the in-memory transfer did not finish: {bytes} bytes");
        return Ok(Goodput {
            bytes,
            wall: Duration::from_secs_f64(r.wall_seconds),
            drops: drops(&r),
            ..Goodput::default()
        });
    };
    let lab = tunnel_lab(transport, encrypted, free_port()?, ENDLESS)?;
    let opts = RunOptions { duration: Some(d), capture: CaptureChoice::Off, ..RunOptions::default() };
    let key: Option<PathBuf> = if encrypted {
        let p = std::env::temp_dir().join(format!("netlab-tunnel-bench-{}.key", std::process::id()));
        std::fs::write(&p, Psk::generate_hex()?)?;
        Some(p)
    } else {
        None
    };
    let stop = Arc::new(AtomicBool::new(false));
    let sites: Vec<_> = (0..2)
        .map(|site| {
            let lab = lab.clone();
            let opts = RunOptions {
                placement: Placement::Site(site),
                key_file: key.clone(),
                stop: Arc::clone(&stop),
                ..opts.clone()
            };
            std::thread::spawn(move || runtime::run(&lab, &opts, &mut ()))
        })
        .collect();
    // Both sites wait for each other without end: a run that does not end in time is stopped.
    let limit = Instant::now() + d + UP_WITHIN;
    while !sites.iter().all(std::thread::JoinHandle::is_finished) {
        if Instant::now() > limit {
            stop.store(true, Ordering::Relaxed);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let reports: Vec<anyhow::Result<Report>> = sites
        .into_iter()
        .map(|t| t.join().map_err(|_| anyhow::anyhow!("a site's thread panicked")).and_then(|r| r))
        .collect();
    if let Some(p) = &key {
        let _ = std::fs::remove_file(p);
    }
    ensure!(!stop.load(Ordering::Relaxed), "the sites did not finish in time");
    let mut reports = reports.into_iter();
    let (one, two) = (reports.next().context("site one")??, reports.next().context("site two")??);
    let bytes = sink_bytes(&two).context("the sink received nothing, or corrupt bytes")?;
    let (t1, t2) =
        (one.tunnels.first().context("site one's tunnel")?, two.tunnels.first().context("site two's tunnel")?);
    Ok(Goodput {
        bytes,
        wall: Duration::from_secs_f64(two.wall_seconds),
        tunnel_frames: t2.frames_in + t2.frames_out,
        unreceived: t1.frames_out.saturating_sub(t2.frames_in) + t2.frames_out.saturating_sub(t1.frames_in),
        drops: drops(&one) + drops(&two),
    })
}

/// The median of some figures.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The run of median frame rate.
fn median_rate(mut v: Vec<Rate>) -> Rate {
    v.sort_by(|a, b| a.per_sec().total_cmp(&b.per_sec()));
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// The four tunnels measured: UDP and TCP, plaintext and encrypted.
pub const TRANSPORTS: [(Transport, bool); 4] =
    [(Transport::Udp, false), (Transport::Udp, true), (Transport::Tcp, false), (Transport::Tcp, true)];

fn label(t: Transport, encrypted: bool) -> String {
    format!("{}, {}", t.as_str(), if encrypted { "encrypted" } else { "plaintext" })
}

/// Every measurement `reps` times, interleaved, each a window of `d` (TCP through the tunnels:
/// `goodput_d`); prints the medians. A ratio is the median of the ratios of each round, each
/// figure against its baseline of the same round.
pub fn run_tunnel(reps: usize, d: Duration, goodput_d: Duration, out: &mut dyn Write) -> anyhow::Result<()> {
    let reps = reps.max(1);
    writeln!(
        out,
        "netlab bench --tunnel: {FRAME}-byte frames on 127.0.0.1, {:.1} s a measurement, median of {reps} rounds",
        d.as_secs_f64()
    )?;
    let (mut udp, mut tcp, mut lean, mut chan, mut crypto) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut tun: Vec<Vec<Rate>> = vec![Vec::new(); TRANSPORTS.len()];
    let mut ratio: Vec<Vec<f64>> = vec![Vec::new(); TRANSPORTS.len()];
    for _ in 0..reps {
        let (u, t) = (udp_baseline(d)?, tcp_baseline(d, true)?);
        lean.push(tcp_baseline(d, false)?);
        chan.push(mpsc_baseline(d)?);
        crypto.push(cipher_baseline(d)?);
        for (i, &(tr, e)) in TRANSPORTS.iter().enumerate() {
            let r = tunnel_frames(tr, e, d)?.0;
            ratio[i].push(r.per_sec() / if tr == Transport::Udp { u.per_sec() } else { t.per_sec() });
            tun[i].push(r);
        }
        udp.push(u);
        tcp.push(t);
    }
    let (udp, tcp) = (median_rate(udp), median_rate(tcp));
    writeln!(out, "\n{:<44} {:>11} {:>8} {:>7} {:>12}", "frames one way", "frames/s", "Gbit/s", "lost", "vs baseline")?;
    let row = |out: &mut dyn Write, name: &str, r: &Rate, ratio: Option<f64>| {
        writeln!(
            out,
            "  {name:<42} {:>11.0} {:>8.2} {:>6.1}% {:>12}",
            r.per_sec(),
            r.gbps(),
            r.lost() * 100.0,
            ratio.map_or_else(String::new, |x| format!("{x:.2}"))
        )
    };
    writeln!(out, "baselines (plain tokio, no netlab)")?;
    row(out, "udp, one send a datagram", &udp, Some(1.0))?;
    row(out, "tcp, length-prefixed, batched writes", &tcp, Some(1.0))?;
    row(out, "tcp, one frame copied, no queue (reference)", &median_rate(lean), None)?;
    row(out, "tokio mpsc channel (reference)", &median_rate(chan), None)?;
    row(out, "cipher alone: seal + open, one thread", &median_rate(crypto), None)?;
    writeln!(out, "tunnels (two sites' Tunnels, no smoltcp)")?;
    let mut goal = Vec::new();
    for (i, &(t, e)) in TRANSPORTS.iter().enumerate() {
        let x = median(std::mem::take(&mut ratio[i]));
        row(out, &label(t, e), &median_rate(std::mem::take(&mut tun[i])), Some(x))?;
        if e {
            goal.push((t, x));
        }
    }

    writeln!(
        out,
        "\nTCP through the tunnel: tcp-transfer into tcp-sink, two sites, speed 1, {:.1} s, median of {reps}",
        goodput_d.as_secs_f64()
    )?;
    writeln!(
        out,
        "{:<44} {:>9} {:>13} {:>12} {:>12} {:>12}",
        "", "Mbit/s", "tunnel fr/s", "unreceived", "queue drops", "vs baseline"
    )?;
    let mut mem = Vec::new();
    let mut runs: Vec<Vec<Goodput>> = vec![Vec::new(); TRANSPORTS.len()];
    for _ in 0..reps {
        mem.push(goodput(None, false, goodput_d)?);
        for (i, &(t, e)) in TRANSPORTS.iter().enumerate() {
            runs[i].push(goodput(Some(t), e, goodput_d)?);
        }
    }
    let pick = |mut v: Vec<Goodput>| {
        v.sort_by(|a, b| a.mbps().total_cmp(&b.mbps()));
        v.get(v.len() / 2).copied().unwrap_or_default()
    };
    let mem = pick(mem);
    writeln!(
        out,
        "  {:<42} {:>9.0} {:>13} {:>12} {:>12} {:>12}",
        "in memory, one process (no tunnel)",
        mem.mbps(),
        "-",
        "-",
        mem.drops,
        "-"
    )?;
    for (i, &(t, e)) in TRANSPORTS.iter().enumerate() {
        let g = pick(std::mem::take(&mut runs[i]));
        let base = if t == Transport::Udp { &udp } else { &tcp };
        writeln!(
            out,
            "  {:<42} {:>9.1} {:>13.0} {:>12} {:>12} {:>12.3}",
            label(t, e),
            g.mbps(),
            g.fps(),
            g.unreceived,
            g.drops,
            g.fps() / base.per_sec()
        )?;
    }
    let verdict = |r: f64| if r >= 0.5 { "met" } else { "not met" };
    let goal: Vec<String> = goal.iter().map(|(t, x)| format!("{} {x:.2} ({})", t.as_str(), verdict(*x))).collect();
    writeln!(out, "\ngoal, an encrypted tunnel's frames at 0.5 of its baseline or better: {}", goal.join(", "))?;
    Ok(())
}
