//! The sockets: listeners, calls, handshakes and the loops that move frames, on tokio.
//!
//! A stream (TCP, an `exec` child's pipes, or this process's own standard input and output)
//! carries messages behind 4-byte lengths; a reader task takes them in, and the end's own task
//! writes, batching whatever the driver queued into one write. UDP carries one message a
//! datagram: a caller has a socket of its own, a listening site one socket for all its peers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc::{self, Receiver, Sender};

use super::codec::{Framer, Message, MAX_WIRE, VERSION};
use super::secure::{
    self, DatagramCipher, DatagramInitiator, DatagramResponder, Refusal, StreamCipher, StreamHandshake,
};
use super::tunnel::{
    backoff, lock, noise, resolve, Ctx, InFrame, Out, Overrides, Placement, Role, Security, Shared, BATCH,
    HANDSHAKE_TIMEOUT, KEEPALIVE, PENDING_HANDSHAKES, SILENCE,
};
use super::udp::UdpIo;
use crate::sim::OutFrame;
use crate::topology::diag::shown;
use crate::topology::Transport;

type Rd = Box<dyn AsyncRead + Unpin + Send>;
type Wr = Box<dyn AsyncWrite + Unpin + Send>;
use super::tunnel::{out_queue, OutQueue as OutTx, OutRx};

/// Bytes gathered before a stream write.
const WRITE_BATCH: usize = 256 * 1024;
/// A write that takes longer than this means the peer stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshake inits a listening UDP socket answers each second, in all and from one IP address.
const INITS_PER_SECOND: u32 = 1000;
const INITS_PER_IP: u32 = 20;

/// A stream that finished its handshake.
struct Conn {
    rd: Rd,
    wr: Wr,
    cipher: Option<StreamCipher>,
    addr: String,
    /// The `exec` child, killed when the connection is dropped.
    _child: Option<tokio::process::Child>,
}

/// How a stream end gets its connections.
enum Dial {
    Tcp(String),
    Exec(String),
    Accept(Receiver<Conn>),
    Stdio,
}

/// Binds the listeners and starts a task for every end.
pub(crate) async fn spawn_all(
    ctx: &Arc<Ctx>,
    placement: &Placement,
    ov: &Overrides,
    rxs: &mut [Option<OutRx>],
    out: &mut [(OutTx, Vec<OutFrame>)],
) -> anyhow::Result<()> {
    let lab = &ctx.lab;
    let all = matches!(placement, Placement::All);
    let stdio = matches!(placement, Placement::Stdio(_));
    // In one process, `exec` links cross a loopback TCP connection instead of a child.
    let by_stream = |t: Transport| t == Transport::Tcp || (all && t == Transport::Exec);
    let mut tcp_addr: HashMap<usize, SocketAddr> = HashMap::new();
    let mut udp_addr: HashMap<usize, SocketAddr> = HashMap::new();
    // Listeners, site by site.
    let mut sites: Vec<usize> = ctx.ends.iter().filter(|e| e.role == Role::Callee).map(|e| e.local).collect();
    sites.dedup();
    for site in sites {
        let stream_ends: Vec<usize> = (0..ctx.ends.len())
            .filter(|&i| {
                ctx.ends[i].local == site && ctx.ends[i].role == Role::Callee && by_stream(ctx.ends[i].transport)
            })
            .collect();
        let udp_ends: Vec<usize> = (0..ctx.ends.len())
            .filter(|&i| {
                ctx.ends[i].local == site && ctx.ends[i].role == Role::Callee && ctx.ends[i].transport == Transport::Udp
            })
            .collect();
        let exec_ends: Vec<usize> = (0..ctx.ends.len())
            .filter(|&i| {
                ctx.ends[i].local == site
                    && ctx.ends[i].role == Role::Callee
                    && ctx.ends[i].transport == Transport::Exec
            })
            .collect();
        let listen = if all {
            "127.0.0.1:0".to_string()
        } else {
            ov.listen.clone().or_else(|| lab.sites[site].listen.clone()).unwrap_or_else(|| "0.0.0.0:0".into())
        };
        if !stream_ends.is_empty() {
            let l = TcpListener::bind(&listen)
                .await
                .with_context(|| format!("site `{}` cannot listen on TCP {listen}", shown(&lab.sites[site].name)))?;
            tcp_addr.insert(site, l.local_addr()?);
            let mut txs = HashMap::new();
            for &i in &stream_ends {
                let (tx, rx) = mpsc::channel(1);
                txs.insert(i, tx);
                let orx = rxs[i].take().context("an end started twice")?;
                tokio::spawn(stream_end(Arc::clone(ctx), i, orx, Dial::Accept(rx)));
            }
            ctx.log.line(format!(
                "site `{}` listens on tcp {}",
                shown(&lab.sites[site].name),
                l.local_addr().map_or(listen.clone(), |a| a.to_string())
            ));
            tokio::spawn(acceptor(Arc::clone(ctx), l, site, txs));
        }
        if !udp_ends.is_empty() {
            let s = UdpSocket::bind(&listen)
                .await
                .with_context(|| format!("site `{}` cannot listen on UDP {listen}", shown(&lab.sites[site].name)))?;
            udp_addr.insert(site, s.local_addr()?);
            ctx.log.line(format!(
                "site `{}` listens on udp {}",
                shown(&lab.sites[site].name),
                s.local_addr().map_or(listen.clone(), |a| a.to_string())
            ));
            // One task for the socket: every end it serves sends through one queue.
            let (tx, rx) = out_queue(&ctx.ends);
            for &i in &udp_ends {
                out[i].0 = tx.clone();
                rxs[i] = None;
            }
            tokio::spawn(udp_callee(Arc::clone(ctx), s, site, udp_ends, rx));
        }
        if stdio && !exec_ends.is_empty() {
            anyhow::ensure!(
                exec_ends.len() == 1,
                "site `{}` is started by {} sites through `exec`, but has one standard input",
                shown(&lab.sites[site].name),
                exec_ends.len()
            );
            let i = exec_ends[0];
            let orx = rxs[i].take().context("an end started twice")?;
            tokio::spawn(stream_end(Arc::clone(ctx), i, orx, Dial::Stdio));
        }
    }
    // Calls.
    for (i, e) in ctx.ends.iter().enumerate() {
        if e.role != Role::Caller {
            continue;
        }
        let tun = &lab.tunnels[e.tunnel];
        let peer_name = &lab.sites[e.peer].name;
        let target = || -> anyhow::Result<String> {
            if all {
                let map = if e.transport == Transport::Udp { &udp_addr } else { &tcp_addr };
                return map.get(&e.peer).map(ToString::to_string).context("the peer's listener is missing");
            }
            let given = ov
                .connect
                .iter()
                .find(|(s, _)| s.as_deref() == Some(peer_name.as_str()))
                .or_else(|| ov.connect.iter().find(|(s, _)| s.is_none()))
                .map(|(_, a)| a.clone());
            given.or_else(|| tun.connect.clone()).context("no address to call")
        };
        let orx = rxs[i].take().context("an end started twice")?;
        match e.transport {
            Transport::Udp => {
                tokio::spawn(udp_caller(Arc::clone(ctx), i, orx, target()?));
            }
            t if by_stream(t) => {
                tokio::spawn(stream_end(Arc::clone(ctx), i, orx, Dial::Tcp(target()?)));
            }
            Transport::Exec => {
                let cmd = lab.sites[e.peer].exec.clone().context("no exec command")?;
                tokio::spawn(stream_end(Arc::clone(ctx), i, orx, Dial::Exec(cmd)));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Counts a refusal against every end in `ends` and logs it, rate-limited, with the address.
fn refuse_all(ctx: &Ctx, ends: &[usize], kind: &str, addr: &str, why: &str) {
    if ctx.stopping.load(Ordering::Acquire) {
        // The run is ending: what a peer still sends is no attack.
        return;
    }
    for &i in ends {
        ctx.ends[i].refuse(kind);
    }
    // One line a second for each kind and sender's IP address (its ports are many in a flood).
    ctx.log.limited(&format!("{kind} {}", ip_of(addr)), format!("refused {addr}: {why} ({kind})"));
}

/// The IP address of `ip:port` (`[v6]:port` too), or the text as it is.
fn ip_of(addr: &str) -> &str {
    addr.rsplit_once(':').map_or(addr, |(ip, _)| ip)
}

/// Waits `d` while dropping what the driver queues (the end is down); false when the run ends.
async fn wait_down(end: &Shared, rx: &mut OutRx, d: Duration) -> bool {
    let sleep = tokio::time::sleep(d);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            () = &mut sleep => return true,
            o = rx.recv() => match o {
                None | Some((_, Out::Bye)) => return false,
                Some((_, Out::Frames(f))) => { end.lost_out.fetch_add(f.len() as u64, Ordering::Relaxed); }
                Some((_, Out::Done)) => {}
            }
        }
    }
}

/// One end of a stream tunnel: gets a connection (calls, runs the command, or takes what the
/// listener accepted), moves frames until it breaks, and starts again.
async fn stream_end(ctx: Arc<Ctx>, i: usize, mut rx: OutRx, mut dial: Dial) {
    let end = Arc::clone(&ctx.ends[i]);
    let mut attempt = 0u32;
    let mut next: Option<Conn> = None;
    loop {
        if ctx.stopping.load(Ordering::Acquire) {
            return;
        }
        let conn = if let Some(c) = next.take() {
            c
        } else {
            let got = match &mut dial {
                Dial::Accept(crx) => loop {
                    tokio::select! {
                        c = crx.recv() => match c { Some(c) => break Ok(c), None => return },
                        o = rx.recv() => match o {
                            None | Some((_, Out::Bye)) => return,
                            Some((_, Out::Frames(f))) => { end.lost_out.fetch_add(f.len() as u64, Ordering::Relaxed); }
                            Some((_, Out::Done)) => {}
                        }
                    }
                },
                Dial::Tcp(addr) => call_tcp(&ctx, i, addr).await,
                Dial::Exec(cmd) => call_exec(&ctx, i, cmd).await,
                Dial::Stdio => {
                    let rd: Rd = Box::new(tokio::io::stdin());
                    let wr: Wr = Box::new(tokio::io::stdout());
                    let r = tokio::time::timeout(
                        HANDSHAKE_TIMEOUT * 4,
                        answer(&ctx, end.local, rd, wr, "stdin", |t| t == Transport::Exec),
                    )
                    .await;
                    match r {
                        Ok(Ok((j, c))) if j == i => Ok(c),
                        Ok(Ok(_)) => Err("the peer is not the site that runs this one".into()),
                        Ok(Err((kind, why))) => {
                            end.refuse(kind);
                            Err(why)
                        }
                        Err(_) => Err("no handshake on standard input".into()),
                    }
                }
            };
            match got {
                Ok(c) => c,
                Err(why) => {
                    end.retries.fetch_add(1, Ordering::Relaxed);
                    ctx.log.limited(&format!("call {i}"), format!("{}: {why}", name(&ctx, &end)));
                    end.lost(why);
                    if matches!(dial, Dial::Stdio) {
                        ctx.stopping.store(true, Ordering::Release);
                        return;
                    }
                    if !wait_down(&end, &mut rx, backoff(attempt)).await {
                        return;
                    }
                    attempt = attempt.saturating_add(1);
                    continue;
                }
            }
        };
        attempt = 0;
        end.set_peer_addr(&conn.addr);
        end.session_up(format!("up with {}", conn.addr));
        ctx.log.line(format!("{}: up with {}", name(&ctx, &end), conn.addr));
        let replace = match &mut dial {
            Dial::Accept(crx) => Some(crx),
            _ => None,
        };
        let ended = pump(&ctx, &end, conn, &mut rx, replace).await;
        match ended {
            Ended::Replaced(c) => {
                ctx.log
                    .line(format!("{}: the peer called again; the new connection replaces the old", name(&ctx, &end)));
                next = Some(*c);
            }
            Ended::Closing => {
                ctx.finished.fetch_add(1, Ordering::AcqRel);
                return;
            }
            Ended::Broken(why) => {
                ctx.log.line(format!("{}: down: {why}", name(&ctx, &end)));
                end.lost(why);
                if matches!(dial, Dial::Stdio) {
                    ctx.stopping.store(true, Ordering::Release);
                    return;
                }
                if matches!(dial, Dial::Exec(_)) && end.peer_done.load(Ordering::Acquire) {
                    // The site the command started finished its apps and left: starting it again
                    // would run its apps again. Nothing more to call.
                    ctx.log.line(format!("{}: the peer finished; its command is not run again", name(&ctx, &end)));
                    loop {
                        match rx.recv().await {
                            None | Some((_, Out::Bye)) => return,
                            Some((_, Out::Frames(f))) => {
                                end.lost_out.fetch_add(f.len() as u64, Ordering::Relaxed);
                            }
                            Some((_, Out::Done)) => {}
                        }
                    }
                }
                // A peer that drops each session at once is not called in a tight loop.
                if !matches!(dial, Dial::Accept(_)) && !wait_down(&end, &mut rx, backoff(0)).await {
                    return;
                }
            }
        }
    }
}

fn name(ctx: &Ctx, end: &Shared) -> String {
    format!(
        "tunnel {}<->{} ({})",
        shown(ctx.site_name(end.local)),
        shown(ctx.site_name(end.peer)),
        end.transport.as_str()
    )
}

async fn call_tcp(ctx: &Ctx, i: usize, addr: &str) -> Result<Conn, String> {
    let s = tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| format!("no answer from {addr}"))?
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let _ = s.set_nodelay(true);
    let peer = s.peer_addr().map_or_else(|_| addr.to_string(), |a| a.to_string());
    let (rd, wr) = s.into_split();
    call(ctx, i, Box::new(rd), Box::new(wr), peer, None).await
}

async fn call_exec(ctx: &Ctx, i: usize, cmd: &str) -> Result<Conn, String> {
    let mut c = tokio::process::Command::new("sh");
    c.arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    if let Security::Key { text, .. } = &ctx.security {
        c.env("NETLAB_KEY", text);
    }
    let mut child = c.spawn().map_err(|e| format!("cannot run `{}`: {e}", shown(cmd)))?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err("the command has no standard input or output".into());
    };
    if let Some(err) = child.stderr.take() {
        // What the command says on standard error goes to the tunnel log, a bounded number of lines.
        let log = Arc::clone(&ctx.log);
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(err.take(1 << 20));
            let mut line = String::new();
            let mut n = 0;
            while n < 200 && tokio::io::AsyncBufReadExt::read_line(&mut lines, &mut line).await.is_ok_and(|k| k > 0) {
                let t: String = line.trim_end().chars().take(300).collect();
                if !t.is_empty() {
                    log.line(format!("exec: {}", shown(&t)));
                }
                line.clear();
                n += 1;
            }
        });
    }
    let addr = format!("exec `{}`", shown(cmd));
    call(ctx, i, Box::new(stdout), Box::new(stdin), addr, Some(child)).await
}

/// Reads one length-framed message of at most [`MAX_WIRE`] bytes.
async fn read_message(rd: &mut Rd) -> Result<Vec<u8>, String> {
    let mut len = [0u8; 4];
    rd.read_exact(&mut len).await.map_err(|e| format!("the connection closed during the handshake ({e})"))?;
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 || len > MAX_WIRE {
        return Err(format!("a handshake message of {len} bytes"));
    }
    let mut m = vec![0; len];
    rd.read_exact(&mut m).await.map_err(|e| format!("the connection closed during the handshake ({e})"))?;
    Ok(m)
}

async fn write_message(wr: &mut Wr, m: &[u8]) -> std::io::Result<()> {
    let mut b = Vec::with_capacity(m.len() + 4);
    b.extend_from_slice(&u32::try_from(m.len()).unwrap_or(u32::MAX).to_be_bytes());
    b.extend_from_slice(m);
    wr.write_all(&b).await?;
    wr.flush().await
}

/// The caller's side of a stream handshake.
async fn call(
    ctx: &Ctx,
    i: usize,
    mut rd: Rd,
    mut wr: Wr,
    addr: String,
    child: Option<tokio::process::Child>,
) -> Result<Conn, String> {
    let end = &ctx.ends[i];
    let peer = ctx.site_name(end.peer).to_string();
    let work = async {
        match &ctx.security {
            Security::Key { psk, .. } => {
                let (hs, m1) = StreamHandshake::initiate(psk, &ctx.identity(end.local)).map_err(|e| e.to_string())?;
                write_message(&mut wr, &m1).await.map_err(|e| e.to_string())?;
                let m2 = read_message(&mut rd).await?;
                let done = match hs.read(&m2) {
                    Ok(secure::Step::Done { cipher, peer }) => Ok((cipher, peer)),
                    Ok(secure::Step::Reply { .. }) => Err(Refusal::Malformed("an unexpected handshake step")),
                    Err(r) => Err(r),
                };
                answered(end, &addr, &peer, done).map(Some)
            }
            Security::Plain => {
                let m = ctx.hello(end.local);
                write_message(&mut wr, &m).await.map_err(|e| e.to_string())?;
                let reply = read_message(&mut rd).await?;
                check_hello(ctx, &reply, Some(&peer)).map_err(|(kind, why)| {
                    end.refuse(kind);
                    why
                })?;
                Ok(None)
            }
        }
    };
    let cipher =
        tokio::time::timeout(HANDSHAKE_TIMEOUT, work).await.map_err(|_| format!("no handshake from {addr}"))??;
    Ok(Conn { rd, wr, cipher, addr, _child: child })
}

/// The caller's side of a handshake's answer: the cipher, if the answer came from the site called
/// (`peer`); else the refusal, counted.
fn answered<C>(end: &Shared, addr: &str, peer: &str, r: Result<(C, secure::Identity), Refusal>) -> Result<C, String> {
    match r {
        Ok((cipher, id)) if id.site == peer => Ok(cipher),
        Ok((_, id)) => {
            end.refuse("wrong-site");
            Err(format!("{addr} is site `{}`, not `{}`", shown(&id.site), shown(peer)))
        }
        Err(r) => {
            end.refuse(r.kind());
            Err(format!("{addr} refused or was refused: {r}"))
        }
    }
}

/// Checks a plaintext hello: the peer's format version, lab and site. Returns the peer's site.
fn check_hello(ctx: &Ctx, m: &[u8], expect: Option<&str>) -> Result<String, (&'static str, String)> {
    if secure::message_type(m).is_ok() {
        return Err(("encrypted", "the peer speaks encrypted, and this lab is `insecure`".into()));
    }
    match Message::decode(m) {
        Ok(Message::Hello { version, .. }) if version != VERSION => {
            Err(("wrong-version", format!("the peer speaks version {version}, this side {VERSION}")))
        }
        Ok(Message::Hello { lab, .. }) if lab != ctx.lab.tunnel_digest() => {
            Err(("wrong-lab", "the peer runs a different lab (its name or cross-site links differ)".into()))
        }
        Ok(Message::Hello { site, .. }) if expect.is_some_and(|e| e != site) => {
            Err(("wrong-site", format!("the peer is site `{}`", shown(&site))))
        }
        Ok(Message::Hello { site, .. }) => Ok(site),
        Ok(_) | Err(_) => Err(("malformed", "the peer did not start with a hello".into())),
    }
}

/// The listening side of a stream handshake: who called, and the connection. Refusals say their
/// kind and why.
async fn answer(
    ctx: &Ctx,
    site: usize,
    mut rd: Rd,
    mut wr: Wr,
    addr: &str,
    serves: impl Fn(Transport) -> bool,
) -> Result<(usize, Conn), (&'static str, String)> {
    let m1 = read_message(&mut rd).await.map_err(|e| ("malformed", e))?;
    let find = |peer: &str| {
        ctx.ends
            .iter()
            .position(|e| {
                e.local == site && e.role == Role::Callee && serves(e.transport) && ctx.site_name(e.peer) == peer
            })
            .ok_or(("unknown-site", format!("site `{}` has no tunnel to this one", shown(peer))))
    };
    let (i, cipher) = match &ctx.security {
        Security::Key { psk, .. } => {
            let me = ctx.identity(site);
            let hs = StreamHandshake::respond(psk, &me).map_err(|e| ("local-error", e.to_string()))?;
            match hs.read(&m1) {
                Ok(secure::Step::Reply { reply, cipher, peer }) => {
                    let i = find(&peer.site)?;
                    lock(&ctx.stream_guard).accept(&peer.site, peer.time_ns).map_err(|r| {
                        (r.kind(), "a handshake no newer than one accepted before (replayed)".to_string())
                    })?;
                    write_message(&mut wr, &reply).await.map_err(|e| ("malformed", e.to_string()))?;
                    (i, Some(cipher))
                }
                Ok(secure::Step::Done { .. }) => return Err(("malformed", "an unexpected handshake step".into())),
                Err(r) => return Err((r.kind(), r.to_string())),
            }
        }
        Security::Plain => {
            let peer = check_hello(ctx, &m1, None)?;
            let i = find(&peer)?;
            let m = ctx.hello(site);
            write_message(&mut wr, &m).await.map_err(|e| ("malformed", e.to_string()))?;
            (i, None)
        }
    };
    Ok((i, Conn { rd, wr, cipher, addr: addr.to_string(), _child: None }))
}

/// Takes TCP connections for a site, runs their handshakes (a bounded number at once, each with
/// a time limit) and hands each to its end.
async fn acceptor(ctx: Arc<Ctx>, l: TcpListener, site: usize, txs: HashMap<usize, Sender<Conn>>) {
    let ends: Vec<usize> = txs.keys().copied().collect();
    let slots = Arc::new(tokio::sync::Semaphore::new(PENDING_HANDSHAKES));
    let txs = Arc::new(txs);
    loop {
        let (s, addr) = match l.accept().await {
            Ok(x) => x,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let addr = addr.to_string();
        if ctx.stopping.load(Ordering::Acquire) {
            return;
        }
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            refuse_all(&ctx, &ends, "busy", &addr, "too many handshakes under way");
            continue;
        };
        let _ = s.set_nodelay(true);
        let (ctx, txs, ends) = (Arc::clone(&ctx), Arc::clone(&txs), ends.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let (rd, wr) = s.into_split();
            let by_stream = |t: Transport| t == Transport::Tcp || t == Transport::Exec;
            match tokio::time::timeout(
                HANDSHAKE_TIMEOUT,
                answer(&ctx, site, Box::new(rd), Box::new(wr), &addr, by_stream),
            )
            .await
            {
                Ok(Ok((i, c))) => {
                    if let Some(tx) = txs.get(&i) {
                        let _ = tx.send(c).await;
                    }
                }
                Ok(Err((kind, why))) => refuse_all(&ctx, &ends, kind, &addr, &why),
                Err(_) => refuse_all(&ctx, &ends, "timeout", &addr, "no handshake in time"),
            }
        });
    }
}

enum Ended {
    Replaced(Box<Conn>),
    Closing,
    Broken(String),
}

fn millis(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Appends a message to the write buffer: framed, and sealed if the tunnel is encrypted.
fn put(m: &Message, cipher: Option<&Mutex<StreamCipher>>, scratch: &mut Vec<u8>, wbuf: &mut Vec<u8>) {
    match cipher {
        None => m.encode_framed(wbuf),
        Some(c) => {
            scratch.clear();
            m.encode(scratch);
            let at = wbuf.len();
            wbuf.extend_from_slice(&[0; 4]);
            lock(c).seal(scratch, wbuf);
            let len = u32::try_from(wbuf.len() - at - 4).unwrap_or(u32::MAX);
            wbuf[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
    }
}

/// Moves frames over one connection until it breaks, the peer leaves, or the run ends.
async fn pump(
    ctx: &Arc<Ctx>,
    end: &Arc<Shared>,
    conn: Conn,
    rx: &mut OutRx,
    mut replace: Option<&mut Receiver<Conn>>,
) -> Ended {
    let Conn { rd, mut wr, cipher, _child: child, .. } = conn;
    let cipher = cipher.map(|c| Arc::new(Mutex::new(c)));
    let start = Instant::now();
    let last_rx = Arc::new(AtomicU64::new(0));
    let mut reader =
        tokio::spawn(read_loop(Arc::clone(ctx), Arc::clone(end), rd, cipher.clone(), start, Arc::clone(&last_rx)));
    let mut ka = tokio::time::interval(KEEPALIVE);
    ka.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut wbuf, mut scratch) = (Vec::with_capacity(WRITE_BATCH + 16 * 1024), Vec::new());
    let mut last_tx = Instant::now();
    if ctx.local_done.load(Ordering::Acquire) {
        put(&Message::Done, cipher.as_deref(), &mut scratch, &mut wbuf);
    }
    let ended = loop {
        let mut bye = false;
        tokio::select! {
            biased;
            r = &mut reader => break Ended::Broken(r.unwrap_or_else(|_| "the reader stopped".into())),
            c = async { match replace.as_mut() { Some(r) => r.recv().await, None => std::future::pending().await } } => {
                match c {
                    Some(c) => break Ended::Replaced(Box::new(c)),
                    None => break Ended::Closing,
                }
            }
            o = rx.recv(), if wbuf.is_empty() => {
                let mut o = o;
                loop {
                    match o {
                        None => { bye = true; break; }
                        Some((_, Out::Frames(fs))) => {
                            for f in fs {
                                end.frames_out.fetch_add(1, Ordering::Relaxed);
                                end.bytes_out.fetch_add(f.frame.len() as u64, Ordering::Relaxed);
                                let m = Message::Frame { link: f.link, from: f.from, packet: f.packet, frame: f.frame };
                                put(&m, cipher.as_deref(), &mut scratch, &mut wbuf);
                            }
                        }
                        Some((_, Out::Done)) => put(&Message::Done, cipher.as_deref(), &mut scratch, &mut wbuf),
                        Some((_, Out::Bye)) => { put(&Message::Bye, cipher.as_deref(), &mut scratch, &mut wbuf); bye = true; break; }
                    }
                    if wbuf.len() >= WRITE_BATCH {
                        break;
                    }
                    // Flush when the queue runs dry, not once a frame.
                    match rx.try_recv() {
                        Ok(x) => o = Some(x),
                        Err(_) => break,
                    }
                }
            }
            _ = ka.tick() => {
                if Duration::from_millis(millis(start).saturating_sub(last_rx.load(Ordering::Relaxed))) > SILENCE {
                    break Ended::Broken(format!("nothing heard from the peer for {} s", SILENCE.as_secs()));
                }
                if last_tx.elapsed() >= KEEPALIVE && wbuf.is_empty() {
                    put(&Message::Keepalive, cipher.as_deref(), &mut scratch, &mut wbuf);
                }
            }
        }
        if !wbuf.is_empty() {
            let w = async {
                wr.write_all(&wbuf).await?;
                wr.flush().await
            };
            match tokio::time::timeout(WRITE_TIMEOUT, w).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => break Ended::Broken(format!("cannot write: {e}")),
                Err(_) => break Ended::Broken("the peer stopped reading".into()),
            }
            wbuf.clear();
            last_tx = Instant::now();
        }
        if bye {
            let _ = tokio::time::timeout(Duration::from_millis(200), wr.shutdown()).await;
            break Ended::Closing;
        }
    };
    reader.abort();
    let closing = matches!(ended, Ended::Closing);
    if let (true, Some(mut c)) = (closing, child) {
        // An `exec` site heard the goodbye: let it write its capture and report before it goes.
        drop(wr);
        let _ = tokio::time::timeout(Duration::from_secs(3), c.wait()).await;
    }
    ended
}

/// Reads messages from the peer and hands their frames to the driver; returns why it stopped.
async fn read_loop(
    ctx: Arc<Ctx>,
    end: Arc<Shared>,
    mut rd: Rd,
    cipher: Option<Arc<Mutex<StreamCipher>>>,
    start: Instant,
    last_rx: Arc<AtomicU64>,
) -> String {
    let mut buf = vec![0u8; 64 * 1024];
    let mut framer = Framer::default();
    let mut plain = Vec::new();
    let mut batch: Vec<InFrame> = Vec::with_capacity(BATCH);
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) => return "the peer closed the connection".into(),
            Ok(n) => n,
            Err(e) => return format!("cannot read: {e}"),
        };
        last_rx.store(millis(start), Ordering::Relaxed);
        let mut stop: Option<String> = None;
        let fed = framer.feed(&buf[..n], MAX_WIRE, |m| {
            let msg = match &cipher {
                Some(c) => match lock(c).open(m, &mut plain) {
                    Ok(()) => Message::decode(&plain),
                    Err(r) => {
                        end.refuse(r.kind());
                        stop = Some(format!("a message that does not open: {r}"));
                        return false;
                    }
                },
                None => Message::decode(m),
            };
            match msg {
                Ok(msg) => {
                    if ctx.take(&end, msg, &mut batch) {
                        true
                    } else {
                        stop = Some("the peer left".into());
                        false
                    }
                }
                Err(e) => {
                    end.refuse("malformed");
                    stop = Some(format!("a bad message: {e}"));
                    false
                }
            }
        });
        ctx.deliver(&end, &mut batch);
        if let Err(e) = fed {
            end.refuse("malformed");
            return format!("a bad message: {e}");
        }
        if let Some(s) = stop {
            return s;
        }
    }
}

/// A UDP tunnel's session: its cipher (none in plaintext).
enum Session {
    Key(Box<DatagramCipher>),
    Plain,
}

impl Session {
    /// The datagram that carries `m`.
    fn seal(&mut self, m: &Message, scratch: &mut Vec<u8>, out: &mut Vec<u8>) {
        out.clear();
        match self {
            Session::Plain => m.encode(out),
            Session::Key(c) => {
                scratch.clear();
                m.encode(scratch);
                c.seal(scratch, out);
            }
        }
    }

    /// The message a datagram carries; `Ok(None)` for one to ignore (a repeated handshake reply).
    fn open(&mut self, d: &[u8], plain: &mut Vec<u8>) -> Result<Option<Message>, &'static str> {
        match self {
            Session::Plain => match d.first() {
                Some(0x10..=0x12) => Err("encrypted"),
                Some(0x01) => Ok(None),
                _ => Message::decode(d).map(Some).map_err(|_| "malformed"),
            },
            Session::Key(c) => match secure::message_type(d) {
                Ok(0x12) => {
                    c.open(d, plain).map_err(|r| r.kind())?;
                    Message::decode(plain).map(Some).map_err(|_| "malformed")
                }
                Ok(_) => Ok(None),
                Err(r) => Err(r.kind()),
            },
        }
    }
}

/// The calling end of a UDP tunnel.
async fn udp_caller(ctx: Arc<Ctx>, i: usize, mut rx: OutRx, addr: String) {
    let end = Arc::clone(&ctx.ends[i]);
    let mut attempt = 0u32;
    loop {
        if ctx.stopping.load(Ordering::Acquire) {
            return;
        }
        let got = udp_call(&ctx, &end, &addr).await;
        let (mut io, target, session) = match got {
            Ok(x) => x,
            Err(why) => {
                end.retries.fetch_add(1, Ordering::Relaxed);
                ctx.log.limited(&format!("call {i}"), format!("{}: {why}", name(&ctx, &end)));
                end.lost(why);
                if !wait_down(&end, &mut rx, backoff(attempt)).await {
                    return;
                }
                attempt = attempt.saturating_add(1);
                continue;
            }
        };
        attempt = 0;
        let peer = target.to_string();
        end.set_peer_addr(&peer);
        end.session_up(format!("up with {peer}"));
        ctx.log.line(format!("{}: up with {peer}", name(&ctx, &end)));
        match udp_pump(&ctx, &end, &mut io, target, session, &mut rx).await {
            None => {
                ctx.finished.fetch_add(1, Ordering::AcqRel);
                return;
            }
            Some(why) => {
                ctx.log.line(format!("{}: down: {why}", name(&ctx, &end)));
                end.lost(why);
            }
        }
    }
}

/// Waits for the answer to a handshake from `target` (datagrams from anywhere else are ignored).
async fn udp_answer(io: &mut UdpIo, target: SocketAddr, addr: &str) -> Result<Vec<u8>, String> {
    let wait = HANDSHAKE_TIMEOUT.min(Duration::from_secs(1));
    tokio::time::timeout(wait, async {
        loop {
            let n = io.recv().await.map_err(|e| format!("no answer from {addr}: {e}"))?;
            if let Some(d) = (0..n).map(|k| io.datagram(k)).find(|(from, _)| *from == target).map(|(_, d)| d.to_vec()) {
                return Ok(d);
            }
        }
    })
    .await
    .map_err(|_| format!("no answer from {addr}"))?
}

/// Calls a UDP peer: a socket of its own, and the handshake.
async fn udp_call(ctx: &Ctx, end: &Shared, addr: &str) -> Result<(UdpIo, SocketAddr, Session), String> {
    let target = resolve(addr).await.map_err(|e| format!("cannot resolve {addr}: {e}"))?;
    let bind = if target.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let sock = UdpSocket::bind(bind).await.map_err(|e| e.to_string())?;
    let mut io = UdpIo::new(sock).map_err(|e| e.to_string())?;
    let peer = ctx.site_name(end.peer).to_string();
    let send = |e: (usize, std::io::Error)| format!("cannot send to {addr}: {}", e.1);
    match &ctx.security {
        Security::Key { psk, .. } => {
            let (mut init, m) =
                DatagramInitiator::initiate(psk, &ctx.identity(end.local), noise()).map_err(|e| e.to_string())?;
            io.send(target, &m).await.map_err(send)?;
            io.flush().await.map_err(send)?;
            let d = udp_answer(&mut io, target, addr).await?;
            let cipher = answered(end, addr, &peer, init.read_response(&d))?;
            Ok((io, target, Session::Key(Box::new(cipher))))
        }
        Security::Plain => {
            let m = ctx.hello(end.local);
            io.send(target, &m).await.map_err(send)?;
            io.flush().await.map_err(send)?;
            let d = udp_answer(&mut io, target, addr).await?;
            check_hello(ctx, &d, Some(&peer)).map_err(|(kind, why)| {
                end.refuse(kind);
                why
            })?;
            Ok((io, target, Session::Plain))
        }
    }
}

/// Moves frames over a caller's UDP session; `None` when the run ends, else why it went down.
async fn udp_pump(
    ctx: &Ctx,
    end: &Shared,
    io: &mut UdpIo,
    target: SocketAddr,
    mut s: Session,
    rx: &mut OutRx,
) -> Option<String> {
    let (mut plain, mut scratch, mut dgram) = (Vec::new(), Vec::new(), Vec::new());
    let mut batch = Vec::with_capacity(BATCH);
    let mut ka = tokio::time::interval(KEEPALIVE);
    let (mut last_rx, mut last_tx) = (Instant::now(), Instant::now());
    if ctx.local_done.load(Ordering::Acquire) {
        send_out(end, &mut s, Out::Done, &mut scratch, &mut dgram, io, target).await;
    }
    loop {
        tokio::select! {
            r = io.recv() => {
                // An error here is an ICMP "port unreachable" from a peer that is gone: silence decides.
                let Ok(n) = r else { continue };
                for k in 0..n {
                    let (from, d) = io.datagram(k);
                    if from != target {
                        end.refuse("unknown-session");
                        continue;
                    }
                    match s.open(d, &mut plain) {
                        Ok(Some(m)) => {
                            last_rx = Instant::now();
                            if !ctx.take(end, m, &mut batch) {
                                ctx.deliver(end, &mut batch);
                                return Some("the peer left".into());
                            }
                        }
                        Ok(None) => last_rx = Instant::now(),
                        Err(kind) => {
                            end.refuse(kind);
                            ctx.log.limited(&format!("{kind} udp {}", end.tunnel), format!("{}: refused a datagram ({kind})", name(ctx, end)));
                        }
                    }
                }
                ctx.deliver(end, &mut batch);
            }
            o = rx.recv() => {
                let (_, mut o) = o?;
                // Everything queued now goes in one batch of system calls.
                loop {
                    let bye = send_out(end, &mut s, o, &mut scratch, &mut dgram, io, target).await;
                    if bye {
                        flush_out(end, io).await;
                        return None;
                    }
                    match rx.try_recv() {
                        Ok((_, next)) => o = next,
                        Err(_) => break,
                    }
                }
                flush_out(end, io).await;
                last_tx = Instant::now();
            }
            _ = ka.tick() => {
                if last_rx.elapsed() > SILENCE {
                    return Some(format!("nothing heard from the peer for {} s", SILENCE.as_secs()));
                }
                if last_tx.elapsed() >= KEEPALIVE {
                    s.seal(&Message::Keepalive, &mut scratch, &mut dgram);
                    let _ = io.send(target, &dgram).await;
                    flush_out(end, io).await;
                    last_tx = Instant::now();
                }
            }
        }
    }
}

/// Sends what was gathered; datagrams a failed send lost are counted.
async fn flush_out(end: &Shared, io: &mut UdpIo) {
    if let Err((n, e)) = io.flush().await {
        lost(end, n, &e);
    }
}

fn lost(end: &Shared, n: usize, e: &std::io::Error) {
    let kind = if e.raw_os_error() == Some(90) { "too-large" } else { "send-failed" };
    end.lost_out.fetch_add(n as u64, Ordering::Relaxed);
    *lock(&end.send_errors).entry(kind).or_default() += n as u64;
}

/// Gathers what the driver queued for a UDP session, a datagram a message (sent by the next
/// flush); returns whether it was the goodbye.
async fn send_out(
    end: &Shared,
    s: &mut Session,
    o: Out,
    scratch: &mut Vec<u8>,
    dgram: &mut Vec<u8>,
    io: &mut UdpIo,
    to: SocketAddr,
) -> bool {
    let msgs: Vec<Message> = match o {
        Out::Frames(fs) => fs
            .into_iter()
            .map(|f| Message::Frame { link: f.link, from: f.from, packet: f.packet, frame: f.frame })
            .collect(),
        Out::Done => vec![Message::Done],
        Out::Bye => vec![Message::Bye],
    };
    let bye = matches!(msgs.last(), Some(Message::Bye));
    for m in &msgs {
        s.seal(m, scratch, dgram);
        if let Message::Frame { frame, .. } = m {
            end.frames_out.fetch_add(1, Ordering::Relaxed);
            end.bytes_out.fetch_add(frame.len() as u64, Ordering::Relaxed);
        }
        if let Err((n, e)) = io.send(to, dgram).await {
            lost(end, n, &e);
        }
    }
    bye
}

/// A listening site's UDP socket: answers handshakes, and carries the sessions of every peer that
/// calls it.
async fn udp_callee(ctx: Arc<Ctx>, sock: UdpSocket, site: usize, ends: Vec<usize>, mut rx: OutRx) {
    struct Peer {
        session: Session,
        addr: SocketAddr,
        index: u32,
        last_rx: Instant,
        last_tx: Instant,
    }
    let mut io = match UdpIo::new(sock) {
        Ok(io) => io,
        Err(e) => {
            for &i in &ends {
                ctx.ends[i].lost(format!("the listening socket failed: {e}"));
            }
            return;
        }
    };
    let mut responder = match &ctx.security {
        Security::Key { psk, .. } => Some(DatagramResponder::new(psk, ctx.identity(site))),
        Security::Plain => None,
    };
    // Each end's session, by end; the end of each session index (encrypted) or address (plaintext).
    let mut peers: HashMap<usize, Peer> = HashMap::new();
    let mut by_index: HashMap<u32, usize> = HashMap::new();
    let mut by_addr: HashMap<SocketAddr, usize> = HashMap::new();
    let (mut plain, mut scratch, mut dgram) = (Vec::new(), Vec::new(), Vec::new());
    let mut batches: Vec<Vec<InFrame>> = (0..ctx.ends.len()).map(|_| Vec::new()).collect();
    // Handshake answers, sent once the datagrams of a read are taken.
    let mut replies: Vec<(SocketAddr, Vec<u8>)> = Vec::new();
    let mut ka = tokio::time::interval(KEEPALIVE);
    // Handshakes answered this second: in all, and from each sender's IP address (so that a flood
    // from one address does not lock a real peer out).
    let (mut tokens, mut refill) = (INITS_PER_SECOND, Instant::now());
    let mut per_ip: HashMap<std::net::IpAddr, u32> = HashMap::new();
    let mut next_index = noise();
    loop {
        tokio::select! {
            r = io.recv() => {
                let Ok(n) = r else { continue };
                for k in 0..n {
                    let (from, d) = io.datagram(k);
                    let addr = from.to_string();
                    let first = d.first().copied().unwrap_or(0);
                    // A handshake (or a plaintext hello): a new session for the end of the peer's site.
                    let hello = if responder.is_some() { first == 0x10 } else { first == 0x01 };
                    if hello && ctx.stopping.load(Ordering::Acquire) {
                        // The run is ending: no new sessions.
                    } else if hello {
                        if refill.elapsed() >= Duration::from_secs(1) {
                            (tokens, refill) = (INITS_PER_SECOND, Instant::now());
                            per_ip.clear();
                        }
                        // At most 4,096 addresses are remembered in a second; a flood from more is busy.
                        if per_ip.len() >= 4096 && !per_ip.contains_key(&from.ip()) {
                            refuse_all(&ctx, &ends, "busy", &addr, "too many handshakes this second");
                            continue;
                        }
                        let from_ip = per_ip.entry(from.ip()).or_insert(0);
                        if tokens == 0 || *from_ip >= INITS_PER_IP {
                            refuse_all(&ctx, &ends, "busy", &addr, "too many handshakes this second");
                            continue;
                        }
                        tokens -= 1;
                        *from_ip += 1;
                        next_index = next_index.wrapping_add(1);
                        let answered = match responder.as_mut() {
                            Some(r) => r.respond(d, next_index).map(|(reply, c, id)| (reply, Session::Key(Box::new(c)), id.site)).map_err(|e| (e.kind(), e.to_string())),
                            None => check_hello(&ctx, d, None).map(|s| {
                                let m = ctx.hello(site);
                                (m, Session::Plain, s)
                            }),
                        };
                        match answered {
                            Ok((reply, session, peer)) => match ctx.end_for(site, &peer, Transport::Udp) {
                                Some(e) => {
                                    if let Some(old) = peers.remove(&e) {
                                        by_index.remove(&old.index);
                                        by_addr.remove(&old.addr);
                                    }
                                    by_index.insert(next_index, e);
                                    by_addr.insert(from, e);
                                    replies.push((from, reply));
                                    let end = &ctx.ends[e];
                                    end.set_peer_addr(&addr);
                                    end.session_up(format!("up with {addr}"));
                                    ctx.log.line(format!("{}: up with {addr}", name(&ctx, end)));
                                    let mut p = Peer { session, addr: from, index: next_index, last_rx: Instant::now(), last_tx: Instant::now() };
                                    if ctx.local_done.load(Ordering::Acquire) {
                                        p.session.seal(&Message::Done, &mut scratch, &mut dgram);
                                        replies.push((from, dgram.clone()));
                                    }
                                    peers.insert(e, p);
                                }
                                None => refuse_all(&ctx, &ends, "unknown-site", &addr, &format!("site `{}` has no udp tunnel to this one", shown(&peer))),
                            },
                            Err((kind, why)) => refuse_all(&ctx, &ends, kind, &addr, &why),
                        }
                    } else {
                        let e = match &responder {
                            Some(_) => secure::data_index(d).and_then(|k| by_index.get(&k).copied()),
                            None => by_addr.get(&from).copied(),
                        };
                        match e.and_then(|e| peers.get_mut(&e).map(|p| (e, p))) {
                            Some((e, p)) => {
                                let end = &ctx.ends[e];
                                match p.session.open(d, &mut plain) {
                                    Ok(m) => {
                                        p.last_rx = Instant::now();
                                        if p.addr != from {
                                            // The peer moved (a new address, same session): answer there.
                                            by_addr.remove(&p.addr);
                                            by_addr.insert(from, e);
                                            p.addr = from;
                                            end.set_peer_addr(&addr);
                                        }
                                        if let Some(m) = m {
                                            if !ctx.take(end, m, &mut batches[e]) {
                                                ctx.deliver(end, &mut batches[e]);
                                                if let Some(p) = peers.remove(&e) {
                                                    by_index.remove(&p.index);
                                                    by_addr.remove(&p.addr);
                                                }
                                                ctx.log.line(format!("{}: down: the peer left", name(&ctx, end)));
                                                end.lost("the peer left");
                                            }
                                        }
                                    }
                                    Err(kind) => {
                                        end.refuse(kind);
                                        ctx.log.limited(&format!("{kind} {}", ip_of(&addr)), format!("refused {addr}: a datagram that does not open ({kind})"));
                                    }
                                }
                            }
                            None => {
                                let kind = match secure::message_type(d) {
                                    Err(r) if responder.is_some() => r.kind(),
                                    Ok(_) if responder.is_none() => "encrypted",
                                    _ => "unknown-session",
                                };
                                refuse_all(&ctx, &ends, kind, &addr, "a datagram for no session");
                            }
                        }
                    }
                }
                for &e in &ends {
                    ctx.deliver(&ctx.ends[e], &mut batches[e]);
                }
                for (to, reply) in replies.drain(..) {
                    let _ = io.send(to, &reply).await;
                }
                let _ = io.flush().await;
            }
            o = rx.recv() => {
                let Some((mut e, mut o)) = o else { return };
                loop {
                    let bye = matches!(o, Out::Bye);
                    match peers.get_mut(&e) {
                        Some(p) => {
                            let to = p.addr;
                            send_out(&ctx.ends[e], &mut p.session, o, &mut scratch, &mut dgram, &mut io, to).await;
                            p.last_tx = Instant::now();
                        }
                        None => {
                            if let Out::Frames(f) = o {
                                ctx.ends[e].lost_out.fetch_add(f.len() as u64, Ordering::Relaxed);
                            }
                        }
                    }
                    if bye {
                        if let Some(end) = ctx.ends.get(e) {
                            flush_out(end, &mut io).await;
                        }
                        peers.remove(&e);
                        ctx.finished.fetch_add(1, Ordering::AcqRel);
                    }
                    match rx.try_recv() {
                        Ok((next_e, next)) => (e, o) = (next_e, next),
                        Err(_) => break,
                    }
                }
                if let Some(end) = ctx.ends.get(e) {
                    flush_out(end, &mut io).await;
                }
            }
            _ = ka.tick() => {
                let gone: Vec<usize> = peers.iter().filter(|(_, p)| p.last_rx.elapsed() > SILENCE).map(|(e, _)| *e).collect();
                for e in gone {
                    if let Some(p) = peers.remove(&e) {
                        by_index.remove(&p.index);
                        by_addr.remove(&p.addr);
                    }
                    let end = &ctx.ends[e];
                    let why = format!("nothing heard from the peer for {} s", SILENCE.as_secs());
                    ctx.log.line(format!("{}: down: {why}", name(&ctx, end)));
                    end.lost(why);
                }
                for p in peers.values_mut() {
                    if p.last_tx.elapsed() >= KEEPALIVE {
                        p.session.seal(&Message::Keepalive, &mut scratch, &mut dgram);
                        let _ = io.send(p.addr, &dgram).await;
                        p.last_tx = Instant::now();
                    }
                }
                let _ = io.flush().await;
            }
        }
    }
}
