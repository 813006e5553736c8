//! The tunnels of a running lab: one endpoint for each tunnel end that runs in this process, the
//! tokio tasks behind them, and what the driver sees of them (a send queue, frames coming back in
//! through its control channel, and each tunnel's state).
//!
//! The driver never waits on a socket: it hands a step's outbox frames over with `try_send` and
//! drops what does not fit (`queue-full`), or what a down tunnel cannot carry (`transport-down`).
//! The tasks never wait on the driver: frames from a peer go to its control channel with
//! `try_send`, and a full channel drops them (counted as `rx-dropped`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context};
use serde::Serialize;

use super::codec::{self, MAX_FRAME};
use super::secure::{Identity, Psk};
use crate::sim::{DropReason, OutFrame, PacketId};
use crate::topology::{Lab, LinkId, Side, Transport};

/// A tunnel that has not heard from its peer for this long is down.
pub(crate) const SILENCE: Duration = Duration::from_secs(5);
/// How often an idle tunnel says it is alive.
pub(crate) const KEEPALIVE: Duration = Duration::from_secs(1);
/// How long a handshake may take.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// The first wait before calling again, and the longest.
pub(crate) const BACKOFF_MIN: Duration = Duration::from_millis(100);
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Frames in one batch towards the driver.
pub(crate) const BATCH: usize = 64;
/// Frames waiting for an end's task; past that, frames are dropped as `tunnel-full`.
pub(crate) const OUT_FRAMES: usize = 8192;
/// Handshakes a listener runs at once; more connections are closed at once.
pub(crate) const PENDING_HANDSHAKES: usize = 64;
/// Lines of the tunnel log kept.
const LOG_LINES: usize = 200;

/// What a tunnel frame is, on its way in from a peer.
#[derive(Debug)]
pub struct InFrame {
    pub link: LinkId,
    pub from: Side,
    /// Its packet id, when the peer's site could have made it (its origin is a node of that site);
    /// otherwise the lab gives it an id of its own, from outside.
    pub packet: Option<PacketId>,
    pub frame: Vec<u8>,
}

/// How tunnels protect what they carry.
#[derive(Clone)]
pub enum Security {
    /// `"insecure": true`: plaintext, no key.
    Plain,
    /// Noise with a pre-shared key; `text` is what `NETLAB_KEY` held, handed to `exec` children.
    Key { psk: Arc<Psk>, text: String },
}

impl Security {
    /// The key of a run: from `--key-file` or `NETLAB_KEY`; a fresh one when every site runs here
    /// and none was given.
    pub fn for_run(lab: &Lab, key_file: Option<&std::path::Path>, one_process: bool) -> anyhow::Result<Security> {
        if lab.insecure {
            return Ok(Security::Plain);
        }
        let text = match key_file {
            Some(p) => {
                Some(std::fs::read_to_string(p).with_context(|| format!("cannot read the key file {}", p.display()))?)
            }
            None => std::env::var("NETLAB_KEY").ok().filter(|k| !k.trim().is_empty()),
        };
        let text = match text {
            Some(t) => t.trim().to_string(),
            None if one_process => Psk::generate_hex()?,
            None => bail!(
                "the lab's tunnels are encrypted and need a key shared by every site: set NETLAB_KEY or pass \
                 --key-file (make one with `netlab key`), or write `\"insecure\": true` in the lab for plaintext"
            ),
        };
        let psk = Psk::parse(&text).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Security::Key { psk: Arc::new(psk), text })
    }
}

/// Where a run's tunnels listen and connect, when not where the lab file says.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen ADDR`: this site's listen address.
    pub listen: Option<String>,
    /// `--connect [SITE=]HOST:PORT`: where to call a peer (`None`: the one peer this site calls).
    pub connect: Vec<(Option<String>, String)>,
}

/// Which sites this process runs, and how.
#[derive(Debug, Clone)]
pub enum Placement {
    /// Every site, joined by real sockets on loopback.
    All,
    /// One site (`--site`); the other sites are remote.
    Site(usize),
    /// One site started by a peer's `exec` command (`netlab tunnel`): its tunnels to the sites that
    /// started it run over this process's standard input and output.
    Stdio(usize),
}

/// The state of a tunnel end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Not up yet.
    Connecting,
    Up,
    /// Was up, and lost its peer; calling again (or waiting for the call).
    Down,
}

impl State {
    fn from_u8(v: u8) -> State {
        match v {
            1 => State::Up,
            2 => State::Down,
            _ => State::Connecting,
        }
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            State::Connecting => "connecting",
            State::Up => "up",
            State::Down => "down",
        }
    }
}

/// Which end of a tunnel an endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// It calls: dials, or runs the `exec` command.
    Caller,
    /// It waits for the call.
    Callee,
}

/// What a report, the progress line and the TUI show of one tunnel end.
#[derive(Debug, Clone, Serialize)]
pub struct TunnelStatus {
    /// `local<->peer`.
    pub name: String,
    pub local: String,
    pub peer: String,
    pub transport: &'static str,
    /// The links it carries, by id.
    pub links: Vec<u32>,
    pub role: Role,
    pub encrypted: bool,
    pub state: State,
    /// Seconds since the state last changed.
    pub since_s: f64,
    /// Calls that failed.
    pub retries: u64,
    /// Times it came up.
    pub sessions: u64,
    pub frames_out: u64,
    pub bytes_out: u64,
    pub frames_in: u64,
    pub bytes_in: u64,
    /// Frames that reached this end but not the lab: the driver's queue was full.
    pub rx_dropped: u64,
    /// Frames the driver handed over that the connection lost (it went down with them queued).
    pub lost_out: u64,
    /// Messages refused, by reason (`wrong-key`, `wrong-lab`, `replay`, `plaintext`, …).
    pub refused: BTreeMap<String, u64>,
    /// Frames the socket would not send, by why: `too-large` (for the path), `send-failed`.
    pub send_errors: BTreeMap<String, u64>,
    /// The peer's address, once it has called or answered.
    pub peer_addr: Option<String>,
    /// Why it is not up, or what it last said.
    pub detail: String,
    pub peer_done: bool,
}

/// One tunnel end's counters and state, shared between its task and the driver.
pub(crate) struct Shared {
    pub tunnel: usize,
    pub local: usize,
    pub peer: usize,
    pub role: Role,
    pub transport: Transport,
    /// For each link of the tunnel: the side the peer's end is on (frames from the peer come from
    /// there).
    pub links: HashMap<LinkId, Side>,
    state: AtomicU8,
    since: Mutex<Instant>,
    pub retries: AtomicU64,
    pub sessions: AtomicU64,
    pub frames_out: AtomicU64,
    pub bytes_out: AtomicU64,
    pub frames_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub rx_dropped: AtomicU64,
    pub lost_out: AtomicU64,
    refused: Mutex<BTreeMap<String, u64>>,
    /// Frames the socket would not send, by why (`too-large` for the path, `send-failed`).
    pub send_errors: Mutex<BTreeMap<&'static str, u64>>,
    peer_addr: Mutex<Option<String>>,
    detail: Mutex<String>,
    pub peer_done: AtomicBool,
    /// Frames the driver queued that the task has not taken yet.
    pub queued: std::sync::atomic::AtomicUsize,
    /// The run is ending: what arrives now is not counted as refused.
    pub closing: AtomicBool,
    /// Every end's state changes, counted (shared by all ends): the driver looks again when it moves.
    pub changes: Arc<AtomicU64>,
}

impl Shared {
    #[must_use]
    pub fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::Acquire))
    }

    pub fn set_state(&self, s: State, detail: impl Into<String>) {
        let v = match s {
            State::Connecting => 0,
            State::Up => 1,
            State::Down => 2,
        };
        if self.state.swap(v, Ordering::AcqRel) != v {
            self.changes.fetch_add(1, Ordering::AcqRel);
            *lock(&self.since) = Instant::now();
        }
        *lock(&self.detail) = detail.into();
    }

    /// A new session with the peer (a first one, or one that replaces a live one: a restarted
    /// peer): counted, and the peer says again when its apps are done.
    pub fn session_up(&self, detail: impl Into<String>) {
        self.sessions.fetch_add(1, Ordering::Relaxed);
        self.peer_done.store(false, Ordering::Release);
        self.set_state(State::Up, detail);
    }

    /// Marks the end down (or still connecting, if it never came up).
    pub fn lost(&self, why: impl Into<String>) {
        let s = if self.sessions.load(Ordering::Relaxed) > 0 { State::Down } else { State::Connecting };
        // A peer that finished its apps and left stays done.
        self.set_state(s, why);
    }

    pub fn refuse(&self, kind: &str) {
        if self.closing.load(Ordering::Relaxed) {
            return;
        }
        *lock(&self.refused).entry(kind.to_string()).or_default() += 1;
    }

    pub fn set_peer_addr(&self, a: &str) {
        *lock(&self.peer_addr) = Some(a.to_string());
    }

    /// Whether a frame from the peer on this link comes from the peer's side.
    pub fn accepts(&self, link: LinkId, from: Side) -> bool {
        self.links.get(&link) == Some(&from)
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The tunnel log: what happened to connections, and what was refused from where, rate-limited.
#[derive(Default)]
pub(crate) struct Log {
    lines: Mutex<VecDeque<String>>,
    /// When each kind of line was last written, and how many were held back since.
    last: Mutex<HashMap<String, (Instant, u64)>>,
    /// Print each line to standard error as well (headless runs).
    pub echo: AtomicBool,
}

impl Log {
    pub fn line(&self, s: String) {
        if self.echo.load(Ordering::Relaxed) {
            let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("tunnel: {s}\n").as_bytes());
        }
        let mut l = lock(&self.lines);
        if l.len() >= LOG_LINES {
            l.pop_front();
        }
        l.push_back(s);
    }

    /// A line that may come in floods (a refusal): at most one a second for each `key`, with a
    /// count of those held back.
    pub fn limited(&self, key: &str, s: String) {
        let now = Instant::now();
        let held = {
            let mut last = lock(&self.last);
            if last.len() > 1024 {
                last.clear();
            }
            let e = last.entry(key.to_string()).or_insert((now - Duration::from_secs(2), 0));
            if now.duration_since(e.0) < Duration::from_secs(1) {
                e.1 += 1;
                return;
            }
            let held = e.1;
            *e = (now, 0);
            held
        };
        if held > 0 {
            self.line(format!("{s} (and {held} more like it not shown)"));
        } else {
            self.line(s);
        }
    }

    pub fn lines(&self) -> Vec<String> {
        lock(&self.lines).iter().cloned().collect()
    }
}

/// What the driver sends an endpoint's task.
#[derive(Debug)]
pub(crate) enum Out {
    Frames(Vec<OutFrame>),
    /// This process's client apps have finished.
    Done,
    /// The run ends.
    Bye,
}

/// Everything a task needs to know about its run.
pub(crate) struct Ctx {
    pub lab: Arc<Lab>,
    /// The site of each node, by index (looked up for every frame from a peer).
    pub node_sites: Vec<Option<usize>>,
    pub security: Security,
    pub log: Arc<Log>,
    pub ends: Vec<Arc<Shared>>,
    /// Frames from peers go here, to the driver.
    pub to_driver: SyncSender<crate::runtime::Control>,
    pub local_done: AtomicBool,
    pub stopping: AtomicBool,
    /// Ends that said goodbye to their peer and closed.
    pub finished: std::sync::atomic::AtomicUsize,
    /// The newest handshake time accepted from each calling site over a stream: a replayed
    /// handshake (which the attacker could not go on with) must not replace a live connection.
    pub stream_guard: Mutex<super::secure::InitGuard>,
}

impl Ctx {
    /// This site's identity towards its peers.
    pub fn identity(&self, local: usize) -> Identity {
        Identity {
            version: codec::VERSION,
            lab: self.lab.name.clone(),
            links: self.lab.tunnel_digest(),
            site: self.lab.sites[local].name.clone(),
            time_ns: super::secure::now_ns(),
        }
    }

    /// The plaintext hello of a site, as a message's bytes.
    pub fn hello(&self, local: usize) -> Vec<u8> {
        let mut m = Vec::new();
        codec::Message::Hello {
            version: codec::VERSION,
            lab: self.lab.tunnel_digest(),
            site: self.lab.sites[local].name.clone(),
        }
        .encode(&mut m);
        m
    }

    /// The endpoint of `local` towards the site named `peer`, over `transport`.
    pub fn end_for(&self, local: usize, peer: &str, transport: Transport) -> Option<usize> {
        self.ends
            .iter()
            .position(|e| e.local == local && e.transport == transport && self.lab.sites[e.peer].name == peer)
    }

    pub fn site_name(&self, s: usize) -> &str {
        &self.lab.sites[s].name
    }

    /// Hands a batch of frames from a peer to the driver, never waiting.
    pub fn deliver(&self, end: &Shared, batch: &mut Vec<InFrame>) {
        if batch.is_empty() {
            return;
        }
        let n = batch.len() as u64;
        let b = std::mem::replace(batch, Vec::with_capacity(BATCH));
        if self.to_driver.try_send(crate::runtime::Control::Frames(b)).is_err() {
            end.rx_dropped.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Takes a decoded message from a peer: a frame joins the batch (if its link and side belong
    /// to the peer), the rest changes state. Returns false when the peer said goodbye.
    pub fn take(&self, end: &Shared, msg: codec::Message, batch: &mut Vec<InFrame>) -> bool {
        match msg {
            codec::Message::Frame { link, from, packet, frame } => {
                if end.accepts(link, from) {
                    end.frames_in.fetch_add(1, Ordering::Relaxed);
                    end.bytes_in.fetch_add(frame.len() as u64, Ordering::Relaxed);
                    // A packet keeps its identity across sites, but only one the peer could have
                    // made: an id claiming a node of another site is not believed.
                    let packet = packet
                        .origin()
                        .filter(|n| self.node_sites.get(n.index()).copied().flatten() == Some(end.peer))
                        .map(|_| packet);
                    batch.push(InFrame { link, from, packet, frame });
                    if batch.len() >= BATCH {
                        self.deliver(end, batch);
                    }
                } else {
                    end.refuse("wrong-link");
                }
                true
            }
            codec::Message::Done => {
                end.peer_done.store(true, Ordering::Release);
                true
            }
            codec::Message::Keepalive => true,
            codec::Message::Hello { .. } => {
                end.refuse("malformed");
                true
            }
            codec::Message::Bye => false,
        }
    }
}

/// An end task's queue: what the driver sends it, with the end's index.
pub(crate) type OutQueue = tokio::sync::mpsc::UnboundedSender<(usize, Out)>;

/// What an end's task reads the driver's queue through: it keeps each end's count of frames
/// queued (the queue is bounded in frames, not in messages, so that small batches do not fill it).
pub(crate) struct OutRx {
    rx: tokio::sync::mpsc::UnboundedReceiver<(usize, Out)>,
    ends: Vec<Arc<Shared>>,
}

impl OutRx {
    fn took(&self, m: &(usize, Out)) {
        if let (e, Out::Frames(f)) = m {
            if let Some(end) = self.ends.get(*e) {
                end.queued.fetch_sub(f.len(), Ordering::AcqRel);
            }
        }
    }

    pub async fn recv(&mut self) -> Option<(usize, Out)> {
        let m = self.rx.recv().await;
        if let Some(m) = &m {
            self.took(m);
        }
        m
    }

    pub fn try_recv(&mut self) -> Result<(usize, Out), tokio::sync::mpsc::error::TryRecvError> {
        let m = self.rx.try_recv();
        if let Ok(m) = &m {
            self.took(m);
        }
        m
    }
}

/// A queue from the driver to an end's task.
pub(crate) fn out_queue(ends: &[Arc<Shared>]) -> (OutQueue, OutRx) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    (tx, OutRx { rx, ends: ends.to_vec() })
}

/// The driver's handle on a run's tunnels.
pub struct Tunnels {
    rt: Option<tokio::runtime::Runtime>,
    ctx: Arc<Ctx>,
    /// Each endpoint's queue, and the frames gathered for it in this step.
    out: Vec<(OutQueue, Vec<OutFrame>)>,
    /// The endpoint that carries frames sent from each side of each tunneled link.
    route: HashMap<(LinkId, Side), usize>,
    done_sent: bool,
    /// State changes of the ends, and the count last seen by [`Tunnels::reachability`].
    changes: Arc<AtomicU64>,
    seen: u64,
}

/// A frame the tunnels could not take, and why.
pub type Refused = (OutFrame, DropReason);

impl Tunnels {
    /// Starts the tunnels this process has ends of: listeners bound, calls under way. Frames from
    /// peers go to `to_driver`.
    pub fn start(
        lab: &Lab,
        placement: &Placement,
        security: Security,
        overrides: &Overrides,
        to_driver: SyncSender<crate::runtime::Control>,
    ) -> anyhow::Result<Tunnels> {
        let local = |s: usize| match placement {
            Placement::All => true,
            Placement::Site(x) | Placement::Stdio(x) => *x == s,
        };
        // The ends that run here.
        let mut ends = Vec::new();
        let changes = Arc::new(AtomicU64::new(0));
        for (t, tun) in lab.tunnels.iter().enumerate() {
            for (me, peer, role) in [(tun.caller, tun.callee, Role::Caller), (tun.callee, tun.caller, Role::Callee)] {
                if !local(me) {
                    continue;
                }
                let links = tun
                    .links
                    .iter()
                    .filter_map(|l| {
                        let link = &lab.links[l.index()];
                        let side = [Side::A, Side::B]
                            .into_iter()
                            .find(|s| lab.node_site(link.ends[s.index()].node()) == Some(peer))?;
                        Some((*l, side))
                    })
                    .collect();
                ends.push(Arc::new(Shared {
                    tunnel: t,
                    local: me,
                    peer,
                    role,
                    transport: tun.transport,
                    links,
                    state: AtomicU8::new(0),
                    since: Mutex::new(Instant::now()),
                    retries: AtomicU64::new(0),
                    sessions: AtomicU64::new(0),
                    frames_out: AtomicU64::new(0),
                    bytes_out: AtomicU64::new(0),
                    frames_in: AtomicU64::new(0),
                    bytes_in: AtomicU64::new(0),
                    rx_dropped: AtomicU64::new(0),
                    lost_out: AtomicU64::new(0),
                    refused: Mutex::new(BTreeMap::new()),
                    send_errors: Mutex::new(BTreeMap::new()),
                    peer_addr: Mutex::new(None),
                    detail: Mutex::new(String::new()),
                    peer_done: AtomicBool::new(false),
                    closing: AtomicBool::new(false),
                    queued: std::sync::atomic::AtomicUsize::new(0),
                    changes: Arc::clone(&changes),
                }));
            }
        }
        if let Placement::Site(s) = placement {
            if let Some(e) = ends.iter().find(|e| e.transport == Transport::Exec && e.role == Role::Callee) {
                bail!(
                    "site `{}` is started by site `{}` through its `exec` command: run `netlab run {} --site {}` (or \
                     `netlab tunnel` as that command does)",
                    crate::topology::diag::shown(&lab.sites[*s].name),
                    crate::topology::diag::shown(&lab.sites[e.peer].name),
                    "<lab>",
                    crate::topology::diag::shown(&lab.sites[e.peer].name),
                );
            }
        }
        let mut route = HashMap::new();
        for (i, e) in ends.iter().enumerate() {
            let tun = &lab.tunnels[e.tunnel];
            for l in &tun.links {
                let link = &lab.links[l.index()];
                for side in [Side::A, Side::B] {
                    if lab.node_site(link.ends[side.index()].node()) == Some(e.local) {
                        route.insert((*l, side), i);
                    }
                }
            }
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("netlab-tunnel")
            .enable_all()
            .build()
            .context("cannot start the tunnels' runtime")?;
        let ctx = Arc::new(Ctx {
            lab: Arc::new(lab.clone()),
            node_sites: lab.nodes.iter().map(|n| lab.node_site(n.id)).collect(),
            security,
            log: Arc::new(Log::default()),
            ends,
            to_driver,
            local_done: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            finished: std::sync::atomic::AtomicUsize::new(0),
            stream_guard: Mutex::new(super::secure::InitGuard::default()),
        });
        let mut out = Vec::new();
        let mut rxs = Vec::new();
        for _ in &ctx.ends {
            let (tx, rx) = out_queue(&ctx.ends);
            out.push((tx, Vec::new()));
            rxs.push(Some(rx));
        }
        rt.block_on(super::net::spawn_all(&ctx, placement, overrides, &mut rxs, &mut out))?;
        Ok(Tunnels { rt: Some(rt), ctx, out, route, done_sent: false, changes, seen: u64::MAX })
    }

    /// When an end's state changed since the last call: each tunneled link, and whether every end
    /// that carries it here is up.
    pub fn reachability(&mut self) -> Option<Vec<(LinkId, bool)>> {
        let now = self.changes.load(Ordering::Acquire);
        if now == self.seen {
            return None;
        }
        self.seen = now;
        let mut links: BTreeMap<LinkId, bool> = BTreeMap::new();
        for e in &self.ctx.ends {
            let up = e.state() == State::Up;
            for l in &self.ctx.lab.tunnels[e.tunnel].links {
                *links.entry(*l).or_insert(true) &= up;
            }
        }
        Some(links.into_iter().collect())
    }

    /// Echo the tunnel log to standard error as it is written.
    pub fn echo_log(&self, on: bool) {
        if on && !self.ctx.log.echo.swap(true, Ordering::Relaxed) {
            // What was written before (where the sites listen) too.
            for l in self.ctx.log.lines() {
                let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("tunnel: {l}\n").as_bytes());
            }
        }
        if !on {
            self.ctx.log.echo.store(false, Ordering::Relaxed);
        }
    }

    /// Takes a frame from the core's outbox, to go out at the end of the step ([`Tunnels::flush`]).
    /// A frame no tunnel carries, too large, or for a tunnel that is down comes back with why.
    pub fn send(&mut self, f: OutFrame) -> Result<(), Refused> {
        let Some(&i) = self.route.get(&(f.link, f.from)) else { return Err((f, DropReason::TransportDown)) };
        if f.frame.len() > MAX_FRAME {
            return Err((f, DropReason::TooLarge));
        }
        let end = &self.ctx.ends[i];
        if end.state() != State::Up {
            return Err((f, DropReason::TransportDown));
        }
        let pending = &mut self.out[i].1;
        if end.queued.load(Ordering::Acquire) + pending.len() >= OUT_FRAMES {
            return Err((f, DropReason::TunnelFull));
        }
        pending.push(f);
        if pending.len() >= BATCH {
            self.flush_one(i);
        }
        Ok(())
    }

    /// Hands an end's gathered frames to its task (a closed queue, at the end of a run, loses them).
    fn flush_one(&mut self, i: usize) {
        let (tx, pending) = &mut self.out[i];
        if pending.is_empty() {
            return;
        }
        let batch = std::mem::take(pending);
        self.ctx.ends[i].queued.fetch_add(batch.len(), Ordering::AcqRel);
        let _ = tx.send((i, Out::Frames(batch)));
    }

    /// Hands the step's frames to the ends' tasks.
    pub fn flush(&mut self) {
        for i in 0..self.out.len() {
            self.flush_one(i);
        }
    }

    /// Tells every peer that this process's client apps have finished (once).
    pub fn local_done(&mut self) {
        if self.done_sent {
            return;
        }
        self.done_sent = true;
        self.ctx.local_done.store(true, Ordering::Release);
        for (i, (tx, _)) in self.out.iter().enumerate() {
            let _ = tx.send((i, Out::Done));
        }
    }

    /// Every peer has said its client apps have finished.
    #[must_use]
    pub fn peers_done(&self) -> bool {
        self.ctx.ends.iter().all(|e| e.peer_done.load(Ordering::Acquire))
    }

    /// Whether a tunnel over standard input and output has ended (`netlab tunnel`: nothing can call
    /// again, so the run ends).
    #[must_use]
    pub fn stdio_closed(&self) -> bool {
        self.ctx.stopping.load(Ordering::Acquire)
    }

    /// Each tunnel end's state.
    #[must_use]
    pub fn status(&self) -> Vec<TunnelStatus> {
        self.ctx
            .ends
            .iter()
            .map(|e| {
                let (local, peer) = (self.ctx.site_name(e.local), self.ctx.site_name(e.peer));
                TunnelStatus {
                    name: format!("{local}<->{peer}"),
                    local: local.to_string(),
                    peer: peer.to_string(),
                    transport: e.transport.as_str(),
                    links: self.ctx.lab.tunnels[e.tunnel].links.iter().map(|l| l.0).collect(),
                    role: e.role,
                    encrypted: matches!(self.ctx.security, Security::Key { .. }),
                    state: e.state(),
                    since_s: lock(&e.since).elapsed().as_secs_f64(),
                    retries: e.retries.load(Ordering::Relaxed),
                    sessions: e.sessions.load(Ordering::Relaxed),
                    frames_out: e.frames_out.load(Ordering::Relaxed),
                    bytes_out: e.bytes_out.load(Ordering::Relaxed),
                    frames_in: e.frames_in.load(Ordering::Relaxed),
                    bytes_in: e.bytes_in.load(Ordering::Relaxed),
                    rx_dropped: e.rx_dropped.load(Ordering::Relaxed),
                    lost_out: e.lost_out.load(Ordering::Relaxed),
                    refused: lock(&e.refused).clone(),
                    send_errors: lock(&e.send_errors).iter().map(|(k, v)| ((*k).to_string(), *v)).collect(),
                    peer_addr: lock(&e.peer_addr).clone(),
                    detail: lock(&e.detail).clone(),
                    peer_done: e.peer_done.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    /// The tunnel log so far.
    #[must_use]
    pub fn log(&self) -> Vec<String> {
        self.ctx.log.lines()
    }

    /// Says goodbye to every peer and stops the tasks, waiting a moment for the goodbyes to go.
    pub fn shutdown(&mut self) {
        self.ctx.stopping.store(true, Ordering::Release);
        for e in &self.ctx.ends {
            e.closing.store(true, Ordering::Relaxed);
        }
        let mut waiting = Vec::new();
        for (i, (tx, _)) in self.out.iter().enumerate() {
            if self.ctx.ends[i].state() == State::Up {
                let _ = tx.send((i, Out::Bye));
                waiting.push(i);
            }
        }
        if let Some(rt) = self.rt.take() {
            // Each end that was up says goodbye (an `exec` child gets to finish); a bounded wait.
            let started = Instant::now();
            while self.ctx.finished.load(Ordering::Acquire) < waiting.len()
                && started.elapsed() < Duration::from_secs(4)
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            rt.shutdown_timeout(Duration::from_millis(500));
        }
    }
}

impl Drop for Tunnels {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// The wait before the `n`th call again: doubling from [`BACKOFF_MIN`] to [`BACKOFF_MAX`], with
/// ±25% jitter so that many callers do not call in step.
pub(crate) fn backoff(n: u32) -> Duration {
    let base = BACKOFF_MIN.saturating_mul(1u32 << n.min(16)).min(BACKOFF_MAX);
    base.mul_f64(0.75 + 0.5 * f64::from(noise() % 1000) / 1000.0)
}

/// A little unpredictability for jitter and session numbers (not for keys: those come from the
/// operating system's generator, in `secure`).
pub(crate) fn noise() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.finish() as u32
}

/// Resolves `host:port` (a name may give several addresses: the first is used).
pub(crate) async fn resolve(addr: &str) -> std::io::Result<SocketAddr> {
    tokio::net::lookup_host(addr)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, format!("{addr} resolves to no address")))
}
