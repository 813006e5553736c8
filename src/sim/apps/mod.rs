//! Apps: small programs on a host's smoltcp sockets, polled with the host at an explicit time.
//! Each reports an outcome a user can check: bytes, round trips, RTTs, loss, errors.

mod echo;
mod http;
pub mod http1;
mod ping;
mod probe;
mod stream;
pub mod trace;
mod transfer;
mod wire;

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;

pub use http::HttpRequestResult;
pub use stream::{Jitter, StreamReport};
pub use trace::{TraceHop, TraceProbe};
pub use wire::{ConnKey, SentSegments, SentWatch};

use crate::time::SimTime;
use crate::topology::{AppKind, Congestion, TcpConfig};

/// What an app gets to work with when polled: the smoltcp interface it sends by and its socket
/// set (a socket made here lives in this set; its handle means nothing in another's). A client is
/// polled on the interface of its route to its target; a server once for each interface of its
/// host, `interface` saying which, so that it listens on every one.
pub struct AppCx<'a> {
    pub now: SimTime,
    pub iface: &'a mut Interface,
    pub sockets: &'a mut SocketSet<'static>,
    pub ids: &'a mut HostIds,
    pub tcp: &'a TcpConfig,
    /// What the host saw of TCP on this interface since its last poll.
    pub wire: &'a TcpWire,
    /// The host neither computes nor verifies checksums (the lab's `checksum_offload`).
    pub checksum_offload: bool,
    /// The index of the interface (in the host's `interfaces`) whose `iface` and `sockets` these are.
    pub interface: usize,
}

/// What a host notices of TCP in the frames it receives, for its apps: connection requests waiting
/// for a listener (a server keeps one listening socket for each, as a backlog does), and resets
/// (so that a client can tell a reset from a timeout).
#[derive(Debug, Default)]
pub struct TcpWire {
    /// SYNs (without ACK) received since the last poll, by destination port.
    pub syns: std::collections::BTreeMap<u16, u32>,
    /// The last RST received for each local port, and when.
    pub resets: std::collections::BTreeMap<u16, SimTime>,
    /// The segments the host sent on connections to the endpoints its apps watch (retransmissions).
    pub sent: SentWatch,
}

/// Ephemeral ports and ICMP idents of one host, handed out in turn from a seeded start, so that two
/// apps on a host never share one and the seed changes them all.
#[derive(Debug, Clone)]
pub struct HostIds {
    next_port: u16,
    next_ident: u16,
}

impl HostIds {
    const FIRST_PORT: u16 = 49152;

    pub fn new(rng: &mut ChaCha8Rng) -> Self {
        HostIds { next_port: rng.random_range(Self::FIRST_PORT..=u16::MAX), next_ident: rng.random_range(1..=u16::MAX) }
    }

    /// The host's next port from the dynamic range (49152 to 65535).
    pub fn take_port(&mut self) -> u16 {
        let p = self.next_port;
        self.next_port = if p == u16::MAX { Self::FIRST_PORT } else { p + 1 };
        p
    }
}

/// A TCP socket tuned as `t` says, added to `sockets`.
pub fn new_tcp_socket(sockets: &mut SocketSet<'static>, t: &TcpConfig) -> SocketHandle {
    let mut s =
        tcp::Socket::new(tcp::SocketBuffer::new(vec![0; t.rx_buffer]), tcp::SocketBuffer::new(vec![0; t.tx_buffer]));
    s.set_congestion_control(match t.congestion {
        Congestion::Cubic => tcp::CongestionControl::Cubic,
        Congestion::Reno => tcp::CongestionControl::Reno,
        Congestion::None => tcp::CongestionControl::None,
    });
    s.set_ack_delay(
        t.ack_delay.map(|d| smoltcp::time::Duration::from_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))),
    );
    s.set_nagle_enabled(t.nagle);
    sockets.add(s)
}

impl AppCx<'_> {
    /// Closes and removes a socket: a TCP connection is reset, as when a process is killed.
    /// A UDP socket is unbound. The socket stays in the set, so that a reset still goes out.
    pub fn close_socket(&mut self, h: SocketHandle) {
        match self.sockets.get_mut::<smoltcp::socket::Socket<'static>>(h) {
            smoltcp::socket::Socket::Tcp(s) => s.abort(),
            smoltcp::socket::Socket::Udp(s) => s.close(),
            _ => {}
        }
    }

    /// The host's next port from the dynamic range (49152 to 65535).
    pub fn ephemeral_port(&mut self) -> u16 {
        self.ids.take_port()
    }

    /// The host's next ICMP echo ident (never 0).
    pub fn icmp_ident(&mut self) -> u16 {
        let i = self.ids.next_ident;
        self.ids.next_ident = i.checked_add(1).unwrap_or(1);
        i
    }

    /// A TCP socket tuned as the host says.
    pub fn new_tcp_socket(&mut self) -> SocketHandle {
        new_tcp_socket(self.sockets, self.tcp)
    }

    /// Opens a client connection from an ephemeral port. A peer that stays silent for
    /// [`TCP_CLIENT_TIMEOUT`] (no SYN-ACK, no ACK of data in flight, no answer to keep-alives)
    /// aborts it.
    /// Returns the socket and its local port.
    pub fn connect_tcp(&mut self, to: (IpAddr, u16)) -> Result<(SocketHandle, u16), String> {
        let h = self.new_tcp_socket();
        let port = self.ephemeral_port();
        let s = self.sockets.get_mut::<tcp::Socket>(h);
        // smoltcp applies the timeout to idle connections too; keep-alives at half the timeout
        // keep an idle but live peer from being timed out.
        let timeout = smoltcp::time::Duration::from_secs(TCP_CLIENT_TIMEOUT.as_secs());
        s.set_timeout(Some(timeout));
        s.set_keep_alive(Some(timeout / 2));
        match s.connect(self.iface.context(), (smoltcp::wire::IpAddress::from(to.0), to.1), port) {
            Ok(()) => Ok((h, port)),
            Err(e) => {
                self.sockets.remove(h);
                Err(format!("cannot connect: {e}"))
            }
        }
    }
}

/// How long a TCP client waits for a silent peer before it gives up.
pub const TCP_CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a client connection closed under it, and when: a reset the host received for its port, or
/// else a silent peer that smoltcp timed out.
pub(crate) fn closed_reason(cx: &AppCx<'_>, local_port: u16, established: bool, since: SimTime) -> String {
    let reset = cx.wire.resets.get(&local_port).filter(|t| **t >= since);
    match (reset, established) {
        (Some(_), false) => "connection refused (the SYN was answered with a reset)".to_string(),
        (Some(t), true) => format!("connection reset by the peer at {t}"),
        (None, false) => {
            format!("connection timed out after {}s (no answer to the SYN)", (cx.now - since).as_secs())
        }
        (None, true) => {
            format!("connection timed out at {}: no answer from the peer for {}s", cx.now, TCP_CLIENT_TIMEOUT.as_secs())
        }
    }
}

/// Where an app stands when the run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AppState {
    /// A client whose start time had not come.
    NotStarted,
    /// A client that had not finished.
    Running,
    /// A client that finished.
    Finished,
    /// A server (servers run until the lab stops).
    Serving,
    /// Stopped by a command.
    Stopped,
}

/// A program on a host. Its slot polls it from its start time on.
pub trait App: Send {
    /// Does what is due at `cx.now`; returns when it next needs to run (`None`: only on traffic).
    fn poll(&mut self, cx: &mut AppCx<'_>) -> Option<SimTime>;
    /// Stops it: its sockets are closed (TCP connections reset) and removed.
    fn stop(&mut self, cx: &mut AppCx<'_>);
    /// Finished (servers never are).
    fn done(&self) -> bool;
    fn outcome(&self) -> Outcome;
}

/// Round-trip times, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RttStats {
    pub min_ms: f64,
    pub avg_ms: f64,
    pub max_ms: f64,
    /// The median and the 95th percentile, by nearest rank: the least sample that at least half
    /// (95 %) of the samples are at most.
    pub p50_ms: f64,
    pub p95_ms: f64,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Rtts {
    n: u32,
    sum: Duration,
    min: Duration,
    max: Duration,
    /// Every sample, in nanoseconds, for the percentiles (an app takes at most a million).
    samples: Vec<u64>,
    /// The percentiles for the first `n` samples, once worked out: a UI asks again and again.
    ranks: std::cell::Cell<Option<(u32, u64, u64)>>,
}

impl Rtts {
    pub fn add(&mut self, d: Duration) {
        if self.n == 0 || d < self.min {
            self.min = d;
        }
        self.max = self.max.max(d);
        self.sum += d;
        self.n += 1;
        self.samples.push(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }
    /// Adds the samples of `other`.
    pub fn merge(&mut self, other: &Rtts) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 || other.min < self.min {
            self.min = other.min;
        }
        self.max = self.max.max(other.max);
        self.sum += other.sum;
        self.n += other.n;
        self.samples.extend_from_slice(&other.samples);
        self.ranks.set(None);
    }

    pub fn stats(&self) -> Option<RttStats> {
        // Whole nanoseconds divided once, so that the JSON reads `2.003776`, not `2.0037760000000002`.
        let ms = |ns: u128| ns as f64 / 1e6;
        if self.n == 0 {
            return None;
        }
        let (p50, p95) = match self.ranks.get() {
            Some((n, p50, p95)) if n == self.n => (p50, p95),
            _ if self.samples.is_empty() => (0, 0),
            _ => {
                let mut samples = self.samples.clone();
                let mut rank = |p: usize| {
                    // Nearest rank: the ceil(p/100 × n)th smallest, from 1.
                    let k = (p * samples.len()).div_ceil(100).clamp(1, samples.len());
                    *samples.select_nth_unstable(k - 1).1
                };
                let (p50, p95) = (rank(50), rank(95));
                self.ranks.set(Some((self.n, p50, p95)));
                (p50, p95)
            }
        };
        Some(RttStats {
            min_ms: ms(self.min.as_nanos()),
            avg_ms: ms(self.sum.as_nanos() / u128::from(self.n)),
            max_ms: ms(self.max.as_nanos()),
            p50_ms: ms(u128::from(p50)),
            p95_ms: ms(u128::from(p95)),
        })
    }
}

/// An amount counted per interval from an app's start: `values[i]` in
/// `[i × interval_ms, (i + 1) × interval_ms)`. The interval starts at 100 ms; a series that would
/// pass [`Series::MAX_LEN`] intervals merges them in pairs and doubles the interval, so its sum
/// is kept and its memory bounded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Series {
    pub interval_ms: u64,
    pub values: Vec<u64>,
    #[serde(skip)]
    last_total: u64,
}

impl Default for Series {
    fn default() -> Self {
        Series { interval_ms: Self::FIRST_INTERVAL_MS, values: Vec::new(), last_total: 0 }
    }
}

impl Series {
    pub const FIRST_INTERVAL_MS: u64 = 100;
    pub const MAX_LEN: usize = 6000;

    /// A running total reached at `since` from the start: what it grew by goes to its interval.
    pub fn record(&mut self, since: Duration, total: u64) {
        let delta = total.saturating_sub(self.last_total);
        if delta == 0 {
            return;
        }
        self.last_total = total;
        let ms = u64::try_from(since.as_millis()).unwrap_or(u64::MAX);
        let mut i = ms / self.interval_ms;
        while i >= Self::MAX_LEN as u64 {
            self.values = self.values.chunks(2).map(|p| p.iter().sum()).collect();
            self.interval_ms = self.interval_ms.saturating_mul(2);
            i = ms / self.interval_ms;
        }
        let i = usize::try_from(i).unwrap_or(usize::MAX);
        if self.values.len() <= i {
            self.values.resize(i + 1, 0);
        }
        self.values[i] += delta;
    }

    /// The sum over every interval.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.values.iter().sum()
    }
}

/// What an app did, for the summary and `--report`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Outcome {
    Ping {
        to: IpAddr,
        sent: u32,
        received: u32,
        loss_pct: f64,
        corrupt: u32,
        /// Requests the socket refused (its buffer full while ARP/NDP was pending); counted as lost.
        send_errors: u32,
        rtt: Option<RttStats>,
        /// The numbers (from 0, the ICMP sequence number below 65,536) of the requests lost:
        /// refused, unanswered in time, or answered corrupt; the first 1,000, in order.
        lost_seqs: Vec<u32>,
    },
    TcpEcho {
        to: String,
        sent: u32,
        echoed: u32,
        mismatched: u32,
        rtt: Option<RttStats>,
        error: Option<String>,
    },
    UdpEcho {
        to: String,
        sent: u32,
        received: u32,
        mismatched: u32,
        loss_pct: f64,
        send_errors: u32,
        rtt: Option<RttStats>,
    },
    TcpTransfer {
        to: String,
        bytes: u64,
        acked: u64,
        seconds: Option<f64>,
        goodput_mbps: Option<f64>,
        error: Option<String>,
        /// Segments the host sent again (data, SYN or FIN below the highest sequence sent).
        retransmissions: u64,
        retransmitted_bytes: u64,
        /// Segments sent that carried data, SYN or FIN.
        segments: u64,
        /// Bytes acknowledged in each interval from the app's start.
        acked_series: Series,
    },
    TcpSink {
        port: u16,
        connections: u32,
        /// The most connections open at once.
        peak_connections: u32,
        bytes: u64,
        corrupt_bytes: u64,
    },
    TcpEchoServer {
        port: u16,
        connections: u32,
        /// The most connections open at once.
        peak_connections: u32,
        bytes: u64,
    },
    UdpEchoServer {
        port: u16,
        datagrams: u64,
        bytes: u64,
    },
    HttpServer {
        port: u16,
        connections: u32,
        /// The most connections open at once.
        peak_connections: u32,
        /// Requests read whole (a bad one is not counted here).
        requests: u64,
        /// Requests refused as malformed (400, 431, 501, 505), each answered and its connection closed.
        bad_requests: u64,
        /// Responses sent, by status.
        responses: std::collections::BTreeMap<u16, u64>,
        /// Body bytes written.
        body_bytes: u64,
    },
    HttpGet {
        to: String,
        path: String,
        /// Requests started.
        sent: u32,
        /// Requests answered with a whole response.
        completed: u32,
        /// Requests that ended in an error (refused, reset, timed out, malformed).
        failed: u32,
        /// Connections opened.
        connections: u32,
        /// The status of the last whole response.
        status: Option<u16>,
        /// Whole responses by status.
        statuses: std::collections::BTreeMap<u16, u32>,
        /// Body bytes received, over every request.
        body_bytes: u64,
        /// Time to the first byte and to the last byte, over the requests that got them.
        ttfb: Option<RttStats>,
        ttlb: Option<RttStats>,
        /// The first requests, one by one.
        requests: Vec<HttpRequestResult>,
        /// The last request's error.
        error: Option<String>,
    },
    UdpStream {
        to: String,
        /// Datagrams the stream was to send.
        count: u32,
        sent: u32,
        /// Datagrams the socket refused (its buffer full): not sent.
        send_errors: u32,
        bytes: u64,
        /// The rate asked for, in Mbit/s of UDP payload.
        rate_mbps: f64,
        /// From the first send to the last.
        seconds: f64,
    },
    UdpStreamServer {
        port: u16,
        streams: u32,
        /// Datagrams received, duplicates left out.
        received: u64,
        bytes: u64,
        expected: u64,
        lost: u64,
        loss_pct: f64,
        duplicates: u64,
        reordered: u64,
        corrupt: u64,
        /// Datagrams that are not stream datagrams (or of a stream past the 64th).
        malformed: u64,
        /// RFC 3550 interarrival jitter in microseconds: the highest of the streams'.
        jitter_us: f64,
        /// One-way delay over every stream, min/avg/max in ms.
        delay: Option<RttStats>,
        per_stream: Vec<StreamReport>,
    },
    Traceroute {
        to: IpAddr,
        /// `udp` or `icmp`.
        proto: crate::topology::TraceProto,
        /// The destination answered.
        reached: bool,
        /// Hops listed: the TTL of the last one probed.
        hop_count: u32,
        hops: Vec<TraceHop>,
    },
}

/// Builds the app a lab describes.
#[must_use]
pub fn build(kind: &AppKind, start: Duration) -> Box<dyn App> {
    let start = SimTime::from_duration(start);
    match *kind {
        AppKind::Ping { to, count, interval, size, timeout } => {
            Box::new(ping::Ping::new(start, to, count, interval, size, timeout))
        }
        AppKind::TcpEchoServer { port } => Box::new(echo::TcpServer::new(port, echo::ServerMode::Echo)),
        AppKind::TcpSink { port } => Box::new(echo::TcpServer::new(port, echo::ServerMode::Sink)),
        AppKind::TcpEcho { to, count, size, interval, timeout } => {
            Box::new(echo::TcpEchoClient::new(start, echo::EchoParams { to, count, size, interval, timeout }))
        }
        AppKind::UdpEchoServer { port } => Box::new(echo::UdpServer::new(port)),
        AppKind::UdpEcho { to, count, size, interval, timeout } => {
            Box::new(echo::UdpEchoClient::new(start, echo::EchoParams { to, count, size, interval, timeout }))
        }
        AppKind::TcpTransfer { to, bytes } => Box::new(transfer::TcpTransfer::new(start, to, bytes)),
        AppKind::HttpServer { port, status, body, keep_alive } => {
            Box::new(http::HttpServer::new(port, status, body, keep_alive))
        }
        AppKind::HttpGet(ref g) => Box::new(http::HttpGet::new(start, g.clone())),
        AppKind::UdpStream(u) => Box::new(stream::StreamSender::new(u)),
        AppKind::UdpStreamServer { port } => Box::new(stream::StreamServer::new(port)),
        AppKind::Traceroute(t) => Box::new(trace::Traceroute::new(t)),
    }
}

/// The bytes a transfer sends: byte `i` of a stream is `i mod 251` (a prime, so that a shifted or
/// repeated segment does not line up with itself).
pub(crate) fn pattern() -> &'static [u8] {
    static P: OnceLock<Vec<u8>> = OnceLock::new();
    P.get_or_init(|| (0..251 * 64).map(|i| (i % 251) as u8).collect())
}

/// Fills `buf` with the stream pattern from stream offset `offset`.
pub fn fill_pattern(buf: &mut [u8], offset: u64) {
    let p = pattern();
    let mut at = (offset % 251) as usize;
    for chunk in buf.chunks_mut(251 * 63) {
        chunk.copy_from_slice(&p[at..at + chunk.len()]);
        at = (at + chunk.len()) % 251;
    }
}

/// Counts bytes of `buf` that differ from the stream pattern at `offset`.
pub fn count_mismatch(buf: &[u8], offset: u64) -> u64 {
    let p = pattern();
    let mut at = (offset % 251) as usize;
    let mut bad = 0;
    for chunk in buf.chunks(251 * 63) {
        let want = &p[at..at + chunk.len()];
        if chunk != want {
            bad += chunk.iter().zip(want).filter(|(a, b)| a != b).count() as u64;
        }
        at = (at + chunk.len()) % 251;
    }
    bad
}

pub(crate) fn endpoint_str(to: (IpAddr, u16)) -> String {
    std::net::SocketAddr::from(to).to_string()
}

pub(crate) fn min_wake(a: Option<SimTime>, b: Option<SimTime>) -> Option<SimTime> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_round_trips_at_any_offset() {
        for off in [0u64, 1, 250, 251, 100_000] {
            let mut b = vec![0u8; 40_000];
            fill_pattern(&mut b, off);
            assert_eq!(b[0], (off % 251) as u8);
            assert_eq!(count_mismatch(&b, off), 0);
            assert!(count_mismatch(&b, off + 1) > 39_000);
        }
    }

    #[test]
    fn a_series_keeps_its_sum_when_it_coarsens() {
        let mut s = Series::default();
        s.record(Duration::from_millis(50), 10);
        s.record(Duration::from_millis(99), 15);
        s.record(Duration::from_millis(350), 40);
        assert_eq!((s.interval_ms, s.values.clone()), (100, vec![15, 0, 0, 25]));
        // Past 6000 intervals (600 s), intervals double.
        s.record(Duration::from_secs(700), 100);
        assert_eq!(s.interval_ms, 200);
        assert_eq!(s.values.len(), 3501);
        assert_eq!((s.values[0], s.values[1], s.values[3500]), (15, 25, 60));
        assert_eq!(s.total(), 100);
        s.record(Duration::from_secs(100_000), 101);
        assert!(s.values.len() <= Series::MAX_LEN && s.total() == 101, "{}", s.values.len());
    }

    #[test]
    fn rtt_stats() {
        let mut r = Rtts::default();
        assert_eq!(r.stats(), None);
        r.add(Duration::from_millis(2));
        r.add(Duration::from_millis(4));
        assert_eq!(r.stats(), Some(RttStats { min_ms: 2.0, avg_ms: 3.0, max_ms: 4.0, p50_ms: 2.0, p95_ms: 4.0 }));
        // Nearest rank over 1 to 20 ms, added out of order: the 10th and the 19th.
        let mut r = Rtts::default();
        for i in (1..=20).rev() {
            r.add(Duration::from_millis(i));
        }
        let s = r.stats().expect("samples");
        assert_eq!((s.p50_ms, s.p95_ms, s.max_ms), (10.0, 19.0, 20.0));
        // Worked out again once a sample is added.
        r.add(Duration::from_millis(30));
        let s = r.stats().expect("samples");
        assert_eq!((s.p50_ms, s.p95_ms, s.max_ms), (11.0, 20.0, 30.0));
    }
}
