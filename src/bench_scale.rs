//! Scale benchmark, shared by `netlab bench --scale` and `cargo bench --bench scale`.
//!
//! It generates labs of N hosts ([`scale_lab`]) and measures, for each N:
//! - **build**: lab text → validated [`Lab`](crate::topology::Lab) → [`Sim`];
//! - **memory**: resident memory gained by building, per host, the same at the end of the run, and
//!   the peak;
//! - **speed**: frames delivered per wall-clock second of stepping, and simulated seconds per wall
//!   second, stepping in virtual time (the next deadline at once) with capture off.
//!
//! The labs have no routers, so they are many separate LANs: one switch per segment of hosts, each
//! segment its own subnet, no links between switches (a flat broadcast domain of 10,000 hosts would
//! flood every ARP request to every host). Every host pings its neighbour on the segment, and on
//! every segment one host sends a small TCP transfer to another (with small socket buffers), so
//! that every segment has the same mix of traffic and a larger lab is more of the same lab.
//!
//! Every run is checked before its figures count: each ping answered, each transfer acknowledged
//! and received intact. Small labs run many times, so that their figures are not a millisecond of
//! noise. Each size can run in a process of its own ([`run_all`] with a `spawn`), so that the
//! memory one size freed does not hide what the next one takes, and the peak is that size's own.

use std::fmt::Write as _;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use serde::{Deserialize, Serialize};

use crate::bench::peak_rss_kib;
use crate::sim::apps::{AppState, Outcome};
use crate::sim::Sim;
use crate::stats::Counters;
use crate::time::SimTime;
use crate::topology;

/// The sizes measured by default.
pub const SIZES: [usize; 4] = [10, 100, 1_000, 10_000];
/// Hosts per switch (per LAN segment) by default.
pub const PER_SWITCH: usize = 50;
/// Switches joined by one router in the routed labs ([`routed_lab`]).
pub const PER_ROUTER: usize = 4;
/// The sizes measured with routers by default: 10 hosts are one segment, with nothing to route.
pub const ROUTED_SIZES: [usize; 3] = [100, 1_000, 10_000];

/// Echo requests of each ping, and the time between them.
const PING_COUNT: u32 = 2;
const PING_INTERVAL_MS: u64 = 100;
/// Ping starts are spread over this many slots of 100 µs, so that the lab does not move in
/// lock-step: a step then does the work of a few hosts, not of all of them at once.
const START_SLOTS: usize = 1000;
/// Bytes of the transfer of each segment, per host of the segment.
const TRANSFER_BYTES_PER_HOST: u64 = 1024;
const SINK_PORT: u16 = 9;
/// Socket buffers of the transfer's two hosts. The default 256 KiB buffers, zeroed for every
/// socket, would make the bench measure the zeroing of 1 MiB per segment rather than frames.
const TCP_BUFFER: &str = "16KiB";

/// A run that has not finished by this simulated time is broken (the lab needs well under 1 s).
const MAX_SIM: SimTime = SimTime::from_millis(60_000);
/// Steps that ask for "now" again without moving anything, in a row, before the run counts as stuck.
const MAX_STALLS: u32 = 10_000;
/// Steps of one run, at most.
const MAX_STEPS: u64 = 50_000_000;
/// Small labs are run again until their stepping has taken this long (or [`MAX_RUNS`] runs).
const MIN_STEP_WALL: Duration = Duration::from_millis(300);
const MAX_RUNS: usize = 2000;

/// How the hosts are split into segments and numbered.
struct Layout {
    /// Hosts of each segment; they differ by one at most.
    segments: Vec<usize>,
    /// Prefix length of every segment's subnet.
    prefix: u32,
    /// Addresses per segment (the subnet's size).
    block: u32,
}

impl Layout {
    fn new(hosts: usize, per_switch: usize) -> Self {
        Self::with_reserved(hosts, per_switch, 2)
    }

    /// As [`Layout::new`], for segments with a router: one more address for its interface.
    fn routed(hosts: usize, per_switch: usize) -> Self {
        Self::with_reserved(hosts, per_switch, 3)
    }

    /// `reserved`: the addresses of a subnet that are not for its hosts (network, broadcast, and
    /// a router's if there is one).
    fn with_reserved(hosts: usize, per_switch: usize, reserved: u64) -> Self {
        assert!(hosts >= 2, "a scale lab needs at least 2 hosts (asked for {hosts})");
        assert!(per_switch >= 2, "a segment needs at least 2 hosts (asked for {per_switch})");
        let n = hosts.div_ceil(per_switch);
        let segments: Vec<usize> = (0..n).map(|k| hosts / n + usize::from(k < hosts % n)).collect();
        let largest = segments[0] as u64;
        // The smallest subnet that holds the largest segment besides its network and broadcast
        // addresses (and its router's), and never smaller than a /24.
        let bits = (largest + reserved).next_power_of_two().trailing_zeros().max(8);
        assert!((n as u64) << bits <= 1 << 24, "{hosts} hosts in segments of {per_switch} do not fit in 10.0.0.0/8");
        Layout { segments, prefix: 32 - bits, block: 1 << bits }
    }

    /// The address of host `i` of segment `k`.
    fn address(&self, k: usize, i: usize) -> std::net::Ipv4Addr {
        std::net::Ipv4Addr::from(0x0a00_0000 + k as u32 * self.block + i as u32 + 1)
    }

    /// The address of segment `k`'s router: the last of its subnet before the broadcast address.
    fn gateway(&self, k: usize) -> std::net::Ipv4Addr {
        std::net::Ipv4Addr::from(0x0a00_0000 + k as u32 * self.block + self.block - 2)
    }

    /// The two hosts of a segment's transfer: sender and sink. The sink is the host the sender
    /// pings, so that the sender needs one ARP exchange (smoltcp sends one ARP request a second).
    fn transfer_pair() -> (usize, usize) {
        (0, 1)
    }

    fn transfer_bytes(size: usize) -> u64 {
        size as u64 * TRANSFER_BYTES_PER_HOST
    }
}

fn host_name(k: usize, i: usize) -> String {
    format!("h{k}-{i}")
}

/// The text of a scale lab of `hosts` hosts, `per_switch` to a switch at most (segments are
/// balanced), with apps or without; with `per_router`, the switches are joined that many to a
/// router, and the traffic crosses it (see [`routed_lab`]).
fn lab_text(hosts: usize, per_switch: usize, apps: bool, per_router: Option<usize>) -> String {
    let layout = if per_router.is_some() { Layout::routed(hosts, per_switch) } else { Layout::new(hosts, per_switch) };
    let n = layout.segments.len();
    let groups = per_router.map(|g| n.div_ceil(g.max(1))).unwrap_or(0);
    // The segment whose hosts segment `k`'s hosts aim at: the next one of its router's group, or
    // its own without routers.
    let next = |k: usize| match per_router {
        Some(g) => {
            let g = g.max(1);
            let first = k / g * g;
            let len = g.min(n - first);
            first + (k - first + 1) % len
        }
        None => k,
    };
    let mut s = String::with_capacity(hosts * if apps { 400 } else { 200 });
    match per_router {
        None => {
            let _ = write!(
                s,
                "{{\n  \"name\": \"scale-{hosts}\",\n  \"description\": \"{hosts} hosts, {n} switches of at most {per_switch} hosts; generated\",\n  \"nodes\": {{\n"
            );
        }
        Some(g) => {
            let _ = write!(
                s,
                "{{\n  \"name\": \"scale-routed-{hosts}\",\n  \"description\": \"{hosts} hosts, {n} switches of at most {per_switch} hosts, {groups} routers of at most {g} switches; generated\",\n  \"nodes\": {{\n"
            );
        }
    }
    let mut first = true;
    let mut sep = |s: &mut String| {
        if !first {
            s.push_str(",\n");
        }
        first = false;
    };
    let mut global = 0usize;
    for (k, &size) in layout.segments.iter().enumerate() {
        sep(&mut s);
        let _ = write!(s, "    \"sw{k}\": {{ \"kind\": \"switch\" }}");
        let (sender, sink) = Layout::transfer_pair();
        let (to, to_size) = (next(k), layout.segments[next(k)]);
        for i in 0..size {
            sep(&mut s);
            let gateway = if per_router.is_some() {
                format!(", \"gateways\": [\"{}\"]", layout.gateway(k))
            } else {
                String::new()
            };
            let _ = write!(
                s,
                "    \"{}\": {{ \"kind\": \"host\", \"interfaces\": {{ \"eth0\": {{ \"addresses\": [\"{}/{}\"]{gateway} }} }}",
                host_name(k, i),
                layout.address(k, i),
                layout.prefix
            );
            if apps && (i == sender || i == sink) {
                let _ = write!(
                    s,
                    ",\n      \"tcp\": {{ \"rx_buffer\": \"{TCP_BUFFER}\", \"tx_buffer\": \"{TCP_BUFFER}\" }}"
                );
            }
            if apps {
                let start_us = (global % START_SLOTS) * 100;
                let _ = write!(
                    s,
                    ",\n      \"apps\": [ {{ \"kind\": \"ping\", \"to\": \"{}\", \"count\": {PING_COUNT}, \"interval\": \"{PING_INTERVAL_MS}ms\", \"start\": \"{start_us}us\" }}",
                    host_name(to, (i + 1) % to_size)
                );
                if i == sender {
                    let _ = write!(
                        s,
                        ", {{ \"kind\": \"tcp-transfer\", \"to\": \"{}:{SINK_PORT}\", \"bytes\": {}, \"start\": \"{start_us}us\" }}",
                        host_name(to, sink),
                        Layout::transfer_bytes(size)
                    );
                }
                if i == sink {
                    let _ = write!(s, ", {{ \"kind\": \"tcp-sink\", \"port\": {SINK_PORT} }}");
                }
                s.push_str(" ]");
            }
            s.push_str(" }");
            global += 1;
        }
    }
    if let Some(g) = per_router {
        let g = g.max(1);
        for r in 0..groups {
            sep(&mut s);
            let _ = write!(s, "    \"r{r}\": {{ \"kind\": \"router\", \"interfaces\": {{ ");
            for (j, k) in (r * g..n.min((r + 1) * g)).enumerate() {
                if j > 0 {
                    s.push_str(", ");
                }
                let _ = write!(s, "\"eth{j}\": {{ \"addresses\": [\"{}/{}\"] }}", layout.gateway(k), layout.prefix);
            }
            s.push_str(" } }");
        }
    }
    s.push_str("\n  },\n  \"links\": [\n");
    let mut first = true;
    let mut sep = |s: &mut String| {
        if !first {
            s.push_str(",\n");
        }
        first = false;
    };
    for (k, &size) in layout.segments.iter().enumerate() {
        for i in 0..size {
            sep(&mut s);
            let _ = write!(
                s,
                "    {{ \"a\": \"{}:eth0\", \"b\": \"sw{k}\", \"impair\": {{ \"latency\": \"100us\" }} }}",
                host_name(k, i)
            );
        }
    }
    if let Some(g) = per_router {
        let g = g.max(1);
        for k in 0..n {
            sep(&mut s);
            let _ = write!(
                s,
                "    {{ \"a\": \"r{}:eth{}\", \"b\": \"sw{k}\", \"impair\": {{ \"latency\": \"100us\" }} }}",
                k / g,
                k % g
            );
        }
    }
    s.push_str("\n  ],\n  \"capture\": { \"enabled\": false }\n}\n");
    s
}

/// A lab of `hosts` hosts on switches of at most `per_switch` hosts: one subnet per switch, no
/// links between switches. Host `i` of a segment pings host `i + 1` (twice, 100 ms apart, the
/// starts spread over 100 ms), and host 0 of each segment sends 1 KiB per host of the segment to a
/// `tcp-sink` on host 1, both with 16 KiB socket buffers. Links have 100 µs of latency; capture
/// is off.
///
/// # Panics
/// If `hosts` or `per_switch` is below 2, or the segments do not fit in `10.0.0.0/8`.
#[must_use]
pub fn scale_lab(hosts: usize, per_switch: usize) -> String {
    lab_text(hosts, per_switch, true, None)
}

/// The same lab without apps: hosts that only sit there.
///
/// # Panics
/// As [`scale_lab`].
#[must_use]
pub fn idle_lab(hosts: usize, per_switch: usize) -> String {
    lab_text(hosts, per_switch, false, None)
}

/// The scale lab with routers: the same segments, hosts and apps, but the switches are joined
/// `per_router` at a time to a router (the last group may be smaller), each segment's hosts on its
/// own subnet with the router's interface there (the last address before the broadcast address) as
/// their gateway. Every ping and transfer aims at the next segment of its router's group (the
/// first after the last), so that it crosses the router; a group of one segment stays within it.
/// Links between routers and switches have 100 µs of latency, as the hosts' do.
///
/// # Panics
/// As [`scale_lab`], and if a segment leaves no address for its router.
#[must_use]
pub fn routed_lab(hosts: usize, per_switch: usize, per_router: usize) -> String {
    lab_text(hosts, per_switch, true, Some(per_router))
}

/// Resident memory of this process, from /proc (Linux); `None` elsewhere.
#[must_use]
pub fn rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// Resets the peak resident memory of this process to its current value (Linux); whether it could.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// What building a lab took.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Build {
    /// Text → validated lab.
    pub load: Duration,
    /// Validated lab → `Sim` (and its counters).
    pub sim: Duration,
    /// Resident memory gained from before the text was read to after the `Sim` was built, with the
    /// lab and the `Sim` alive; `None` without /proc.
    pub rss_growth_kib: Option<i64>,
    /// Resident memory before the text was read; `None` without /proc.
    pub rss_before_kib: Option<u64>,
}

/// One run of a scale lab, checked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    pub build: Build,
    /// Frames delivered (every frame that reached the far end of a link).
    pub frames: u64,
    /// Wall-clock time of the stepping.
    pub wall: Duration,
    /// Simulated time reached.
    pub sim_time: Duration,
    pub steps: u64,
    /// Resident memory gained from before the build to the end of the run, with the lab and the
    /// `Sim` alive: the build's and what the apps and the fabric took while running.
    pub rss_run_growth_kib: Option<i64>,
    /// Pings, all answered.
    pub pings: usize,
    /// Transfers, all acknowledged and received intact.
    pub transfers: usize,
    /// Packets the routers forwarded (none without routers).
    #[serde(default)]
    pub forwarded: u64,
}

/// Builds the lab of `text`, reporting the time and memory it took.
fn build(text: &str) -> anyhow::Result<(topology::Lab, Sim, Counters, Build)> {
    let before = rss_kib();
    let t0 = Instant::now();
    let lab = topology::load_str(text, "scale.json").map_err(|d| anyhow::anyhow!("the scale lab is invalid:\n{d}"))?;
    let t1 = Instant::now();
    let sim = Sim::new(&lab, Some(1));
    let counters = Counters::new(&lab);
    let t2 = Instant::now();
    let rss_growth_kib = before.zip(rss_kib()).map(|(b, a)| a as i64 - b as i64);
    Ok((lab, sim, counters, Build { load: t1 - t0, sim: t2 - t1, rss_growth_kib, rss_before_kib: before }))
}

/// Builds and runs the scale lab of `hosts` hosts once, in virtual time, and checks that every ping
/// was answered and every transfer arrived intact: a broken run is an error, not a figure.
pub fn run_once(hosts: usize, per_switch: usize) -> anyhow::Result<Run> {
    run_text(&scale_lab(hosts, per_switch), hosts, per_switch)
}

/// Runs `text`, which should be the scale lab of `hosts` and `per_switch` (or a variant of it), and
/// checks the outcome that lab must reach.
pub fn run_text(text: &str, hosts: usize, per_switch: usize) -> anyhow::Result<Run> {
    let layout = Layout::new(hosts, per_switch);
    let (_lab, mut sim, mut counters, build) = build(text)?;
    let start = Instant::now();
    let mut now = SimTime::ZERO;
    let (mut steps, mut stalls) = (0u64, 0u32);
    loop {
        let stepped = sim.step(now, &mut counters);
        steps += 1;
        if sim.clients_done() {
            break;
        }
        let Some(next) = sim.next_deadline() else {
            bail!("the lab went idle at {} with clients unfinished", sim.now());
        };
        if !stepped.moved() && next == sim.now() {
            stalls += 1;
            ensure!(stalls < MAX_STALLS, "stuck at {}: {stalls} steps in a row moved nothing", sim.now());
        } else {
            stalls = 0;
        }
        ensure!(next <= MAX_SIM, "not finished by {MAX_SIM} of simulated time");
        ensure!(steps < MAX_STEPS, "not finished after {steps} steps, at {}", sim.now());
        now = next;
    }
    let wall = start.elapsed();
    let rss_run_growth_kib = build.rss_before_kib.zip(rss_kib()).map(|(b, a)| a as i64 - b as i64);
    let (pings, transfers) = check(&sim, &layout)?;
    let (mut forwarded, mut dropped) = (0, 0);
    for c in sim.router_counters() {
        forwarded += c.forwarded;
        dropped += c.dropped.values().sum::<u64>();
    }
    ensure!(dropped == 0, "the routers dropped {dropped} packets");
    Ok(Run {
        build,
        frames: counters.frames,
        wall,
        sim_time: sim.now().as_duration(),
        steps,
        rss_run_growth_kib,
        pings,
        transfers,
        forwarded,
    })
}

/// Checks every app's outcome; returns the pings and transfers counted.
fn check(sim: &Sim, layout: &Layout) -> anyhow::Result<(usize, usize)> {
    let (mut pings, mut transfers, mut sinks) = (0, 0, 0);
    let mut sunk = 0u64;
    for a in sim.app_reports() {
        let label = &a.label;
        match a.outcome {
            Outcome::Ping { sent, received, corrupt, .. } => {
                ensure!(a.state == AppState::Finished, "{label} did not finish: {:?}", a.state);
                ensure!(
                    sent == PING_COUNT && received == sent && corrupt == 0,
                    "{label}: {sent} sent, {received} received, {corrupt} corrupt"
                );
                pings += 1;
            }
            Outcome::TcpTransfer { bytes, acked, ref error, .. } => {
                ensure!(a.state == AppState::Finished, "{label} did not finish: {:?}", a.state);
                ensure!(error.is_none() && acked == bytes, "{label}: {acked} of {bytes} bytes acked, error {error:?}");
                transfers += 1;
            }
            Outcome::TcpSink { connections, bytes, corrupt_bytes, .. } => {
                ensure!(
                    connections == 1 && corrupt_bytes == 0,
                    "{label}: {connections} connections, {corrupt_bytes} corrupt bytes"
                );
                sunk += bytes;
                sinks += 1;
            }
            ref o => bail!("{label}: the scale lab has no such app: {o:?}"),
        }
    }
    let hosts: usize = layout.segments.iter().sum();
    let expected: u64 = layout.segments.iter().map(|&n| Layout::transfer_bytes(n)).sum();
    ensure!(pings == hosts, "{pings} pings for {hosts} hosts");
    ensure!(
        transfers == layout.segments.len() && sinks == transfers,
        "{transfers} transfers and {sinks} sinks for {} segments",
        layout.segments.len()
    );
    ensure!(sunk == expected, "the sinks received {sunk} bytes of {expected}");
    Ok((pings, transfers))
}

/// The figures of one size: the first run's build and memory, and the speed over every run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub hosts: usize,
    pub switches: usize,
    /// Routers joining the switches (none in the plain scale lab).
    #[serde(default)]
    pub routers: usize,
    pub runs: usize,
    /// The first run (its memory figures are those of a process that had built nothing yet, when
    /// the size runs in a process of its own).
    pub first: Run,
    /// Mean build time over the runs.
    pub build: Duration,
    /// Over every run: frames, stepping wall time, simulated time.
    pub frames: u64,
    pub wall: Duration,
    pub sim_time: Duration,
    /// Peak resident memory of the process while this size ran (KiB); when the size did not run in
    /// a process of its own and the peak could not be reset, the peak of the process so far.
    pub peak_rss_kib: Option<u64>,
}

impl Row {
    #[must_use]
    pub fn fps(&self) -> f64 {
        self.frames as f64 / self.wall.as_secs_f64()
    }
    /// Simulated seconds per wall-clock second of stepping.
    #[must_use]
    pub fn speed(&self) -> f64 {
        self.sim_time.as_secs_f64() / self.wall.as_secs_f64()
    }
    #[must_use]
    pub fn kib_per_host(&self) -> Option<f64> {
        self.first.build.rss_growth_kib.map(|k| k as f64 / self.hosts as f64)
    }
}

/// Builds a lab of 2 hosts and drops it, so that what a process allocates once (the allocator's
/// first arenas, lazily built tables) is not counted as the first lab's.
fn warm_up() -> anyhow::Result<()> {
    build(&idle_lab(2, 2)).map(drop)
}

/// Measures the scale lab of `hosts`: runs it at least once, and again until the stepping has taken
/// a measurable time.
pub fn measure(hosts: usize, per_switch: usize) -> anyhow::Result<Row> {
    measure_text(&scale_lab(hosts, per_switch), hosts, per_switch, 0)
}

/// Measures the routed lab of `hosts` ([`routed_lab`]) as [`measure`] does the scale lab, and
/// checks that its routers forwarded the traffic.
pub fn measure_routed(hosts: usize, per_switch: usize, per_router: usize) -> anyhow::Result<Row> {
    let layout = Layout::routed(hosts, per_switch);
    let groups: Vec<&[usize]> = layout.segments.chunks(per_router.max(1)).collect();
    let row = measure_text(&routed_lab(hosts, per_switch, per_router), hosts, per_switch, groups.len())?;
    // The ping of every host whose router joins two segments or more crosses it: each request and
    // each reply is forwarded once.
    let crossing: usize = groups.iter().filter(|g| g.len() >= 2).map(|g| g.iter().sum::<usize>()).sum();
    let least = 2 * u64::from(PING_COUNT) * crossing as u64;
    ensure!(row.first.forwarded >= least, "the routers forwarded {} packets of at least {least}", row.first.forwarded);
    Ok(row)
}

/// Measures `text`, a scale lab of `hosts` hosts or a variant with `routers` routers.
fn measure_text(text: &str, hosts: usize, per_switch: usize, routers: usize) -> anyhow::Result<Row> {
    warm_up()?;
    reset_peak_rss();
    let first = run_text(text, hosts, per_switch).with_context(|| format!("the lab of {hosts} hosts"))?;
    let (mut frames, mut wall, mut sim_time, mut build) =
        (first.frames, first.wall, first.sim_time, first.build.load + first.build.sim);
    let mut runs = 1;
    while wall < MIN_STEP_WALL && runs < MAX_RUNS {
        let r = run_text(text, hosts, per_switch).with_context(|| format!("the lab of {hosts} hosts"))?;
        frames += r.frames;
        wall += r.wall;
        sim_time += r.sim_time;
        build += r.build.load + r.build.sim;
        runs += 1;
    }
    Ok(Row {
        hosts,
        switches: Layout::new(hosts, per_switch).segments.len(),
        routers,
        runs,
        build: build / runs as u32,
        frames,
        wall,
        sim_time,
        peak_rss_kib: peak_rss_kib(),
        first,
    })
}

/// Builds the lab of `hosts` hosts without apps: what an idle host costs.
pub fn measure_idle(hosts: usize, per_switch: usize) -> anyhow::Result<Build> {
    warm_up()?;
    let text = idle_lab(hosts, per_switch);
    let (lab, sim, counters, b) = build(&text)?;
    ensure!(lab.nodes.len() == hosts + Layout::new(hosts, per_switch).segments.len(), "the idle lab has {lab}");
    drop((sim, counters, lab));
    Ok(b)
}

/// A measurement [`run_all`] or [`run_routed`] can run in a process of its own: `scale:N`, `idle:N`
/// or `routed:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    Scale(usize),
    Idle(usize),
    /// The routed lab ([`routed_lab`]) of N hosts.
    Routed(usize),
}

impl std::fmt::Display for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Scale(n) => write!(f, "scale:{n}"),
            Job::Idle(n) => write!(f, "idle:{n}"),
            Job::Routed(n) => write!(f, "routed:{n}"),
        }
    }
}

impl std::str::FromStr for Job {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a scale job (`scale:N`, `idle:N` or `routed:N`)");
        let (kind, n) = s.split_once(':').ok_or_else(bad)?;
        let n = n.parse().map_err(|_| bad())?;
        match kind {
            "scale" => Ok(Job::Scale(n)),
            "idle" => Ok(Job::Idle(n)),
            "routed" => Ok(Job::Routed(n)),
            _ => Err(bad()),
        }
    }
}

/// Runs `job` in this process and returns its result as one line of JSON, for [`run_all`] in the
/// parent process.
pub fn run_job(job: Job, per_switch: usize) -> anyhow::Result<String> {
    Ok(match job {
        Job::Scale(n) => serde_json::to_string(&measure(n, per_switch)?)?,
        Job::Idle(n) => serde_json::to_string(&measure_idle(n, per_switch)?)?,
        Job::Routed(n) => serde_json::to_string(&measure_routed(n, per_switch, PER_ROUTER)?)?,
    })
}

/// Runs `job`: in a child process made by `spawn` (which must run [`run_job`] and print its line
/// last), or here when there is none.
fn job<T: serde::de::DeserializeOwned>(
    job: Job,
    per_switch: usize,
    spawn: Option<&dyn Fn(Job) -> std::process::Command>,
) -> anyhow::Result<T> {
    let line = match spawn {
        None => run_job(job, per_switch)?,
        Some(spawn) => {
            let out = spawn(job).output().with_context(|| format!("cannot start the process of {job}"))?;
            ensure!(
                out.status.success(),
                "the process of {job} failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.lines().last().unwrap_or_default().to_string()
        }
    };
    serde_json::from_str(&line).with_context(|| format!("the result of {job} does not parse: {line}"))
}

/// Measures every size of `sizes` (and an idle lab of the largest), each in a process of its own
/// when `spawn` is given, and prints the table.
pub fn run_all(
    sizes: &[usize],
    per_switch: usize,
    spawn: Option<&dyn Fn(Job) -> std::process::Command>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    ensure!(!sizes.is_empty(), "no sizes to measure");
    writeln!(
        out,
        "netlab scale bench: segments of at most {per_switch} hosts on a switch, one /24 or larger each; every host pings \
         its neighbour {PING_COUNT} times, one {TRANSFER_BYTES_PER_HOST} B-per-host TCP transfer per segment; virtual time, capture off"
    )?;
    writeln!(
        out,
        "{}",
        if spawn.is_some() { "each size in a process of its own" } else { "every size in this one process" }
    )?;
    writeln!(
        out,
        "\n{:>6} {:>9} {:>9} {:>9} {:>10} {:>11} {:>13} {:>9}",
        "hosts",
        "build s",
        "KiB/host",
        "peak MiB",
        "frames",
        "frames/s",
        "sim s/wall s",
        format!("fps vs {}", sizes[0])
    )?;
    let mut rows: Vec<Row> = Vec::new();
    for &n in sizes {
        let r: Row = job(Job::Scale(n), per_switch, spawn)?;
        let base = rows.first().unwrap_or(&r).fps();
        let opt = |v: Option<f64>, w: usize, p: usize| v.map_or(format!("{:>w$}", "-"), |v| format!("{v:>w$.p$}"));
        writeln!(
            out,
            "{:>6} {:>9.4} {} {} {:>10} {:>11.0} {:>13.2} {:>9.2}",
            r.hosts,
            r.build.as_secs_f64(),
            opt(r.kib_per_host(), 9, 1),
            opt(r.peak_rss_kib.map(|k| k as f64 / 1024.0), 9, 1),
            r.first.frames,
            r.fps(),
            r.speed(),
            r.fps() / base
        )?;
        out.flush()?;
        rows.push(r);
    }
    writeln!(
        out,
        "\n{:>6} {:>5} {:>9} {:>9} {:>12} {:>9} {:>9} {:>7} {:>7}",
        "hosts", "runs", "load s", "Sim s", "run KiB/host", "sim s", "wall s", "steps", "pings"
    )?;
    for r in &rows {
        writeln!(
            out,
            "{:>6} {:>5} {:>9.4} {:>9.4} {:>12} {:>9.3} {:>9.4} {:>7} {:>7}",
            r.hosts,
            r.runs,
            r.first.build.load.as_secs_f64(),
            r.first.build.sim.as_secs_f64(),
            r.first.rss_run_growth_kib.map_or("-".into(), |k| format!("{:.1}", k as f64 / r.hosts as f64)),
            r.first.sim_time.as_secs_f64(),
            r.first.wall.as_secs_f64(),
            r.first.steps,
            r.first.pings
        )?;
    }
    writeln!(
        out,
        "\nbuild s: text → validated lab → Sim, mean over the runs; load s and Sim s: its two parts, first run\n\
         KiB/host: resident memory the first build took, per host; run KiB/host: the same at the end of the first run\n\
         peak MiB: peak resident memory of the process that ran the size (all its runs)\n\
         frames/s, sim s/wall s: over the stepping of every run; frames, sim s, wall s, steps: the first run"
    )?;
    let largest = *sizes.iter().max().unwrap_or(&10);
    let idle: Build = job(Job::Idle(largest), per_switch, spawn)?;
    if let Some(k) = idle.rss_growth_kib {
        writeln!(
            out,
            "idle hosts (no apps): {largest} hosts take {:.1} KiB each, built in {:.3} s (load {:.3} s, Sim {:.3} s)",
            k as f64 / largest as f64,
            (idle.load + idle.sim).as_secs_f64(),
            idle.load.as_secs_f64(),
            idle.sim.as_secs_f64()
        )?;
    }
    Ok(())
}

/// Rounds of [`run_routed`] by default: each size's two labs measured back to back, this many
/// times; the round of the median ratio is printed.
pub const ROUTED_ROUNDS: usize = 3;

/// Measures the scale lab and the routed lab ([`routed_lab`], [`PER_ROUTER`] switches to a router)
/// of every size of `sizes`, `rounds` times back to back, each in a process of its own when `spawn`
/// is given, and prints them side by side: build time, memory per host and frames a second, the
/// routed lab's against the switch-only lab's of the same size, from the round whose ratio of
/// frames a second is the median.
pub fn run_routed(
    sizes: &[usize],
    per_switch: usize,
    rounds: usize,
    spawn: Option<&dyn Fn(Job) -> std::process::Command>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    ensure!(!sizes.is_empty(), "no sizes to measure");
    let rounds = rounds.max(1);
    writeln!(
        out,
        "netlab scale bench with routers: segments of at most {per_switch} hosts on a switch, each its own subnet; \
         switched: every host pings its neighbour {PING_COUNT} times and one {TRANSFER_BYTES_PER_HOST} B-per-host TCP \
         transfer runs in each segment; routed: the switches joined {PER_ROUTER} to a router, the router each segment's \
         gateway, and the same pings and transfers aimed at the next segment of the router's group (across the router); \
         virtual time, capture off"
    )?;
    writeln!(
        out,
        "{}",
        if spawn.is_some() { "each lab in a process of its own" } else { "every lab in this one process" }
    )?;
    writeln!(
        out,
        "{rounds} round{} of each size, the round of the median fps x printed",
        if rounds == 1 { "" } else { "s" }
    )?;
    writeln!(
        out,
        "\n{:>6} {:<9} {:>8} {:>9} {:>9} {:>9} {:>9} {:>11} {:>10} {:>11} {:>8} {:>8} {:>8}",
        "hosts",
        "lab",
        "routers",
        "build s",
        "KiB/host",
        "peak MiB",
        "frames",
        "forwarded",
        "frames/s",
        "sim s/wall s",
        "build x",
        "KiB x",
        "fps x"
    )?;
    let opt = |v: Option<f64>, w: usize, p: usize| v.map_or(format!("{:>w$}", "-"), |v| format!("{v:>w$.p$}"));
    let mut ratios = Vec::new();
    for &n in sizes {
        let mut pairs = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let switched: Row = job(Job::Scale(n), per_switch, spawn)?;
            let routed: Row = job(Job::Routed(n), per_switch, spawn)?;
            pairs.push((routed.fps() / switched.fps(), switched, routed));
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (low, high) = (pairs[0].0, pairs[rounds - 1].0);
        let (ratio, switched, routed) = pairs.swap_remove(rounds / 2);
        for (name, r) in [("switched", &switched), ("routed", &routed)] {
            let vs = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
            writeln!(
                out,
                "{:>6} {name:<9} {:>8} {:>9.4} {} {} {:>9} {:>11} {:>10.0} {:>11.2} {:>8.2} {} {:>8.2}",
                r.hosts,
                r.routers,
                r.build.as_secs_f64(),
                opt(r.kib_per_host(), 9, 1),
                opt(r.peak_rss_kib.map(|k| k as f64 / 1024.0), 9, 1),
                r.first.frames,
                r.first.forwarded,
                r.fps(),
                r.speed(),
                r.build.as_secs_f64() / switched.build.as_secs_f64(),
                opt(vs(r.kib_per_host(), switched.kib_per_host()), 8, 2),
                r.fps() / switched.fps()
            )?;
        }
        out.flush()?;
        ratios.push((n, ratio, low, high));
    }
    writeln!(
        out,
        "\nbuild s: text → validated lab → Sim, mean over the runs; KiB/host: resident memory the first build took, per host\n\
         (routers and switches included); peak MiB: of the process that ran the lab; frames: delivered on every link in the\n\
         first run (a routed ping crosses 4 links, a switched one 2); forwarded: packets the routers forwarded in it;\n\
         frames/s, sim s/wall s: over the stepping of every run; build x, KiB x, fps x: routed ÷ switched, same size"
    )?;
    for (n, r, low, high) in ratios {
        writeln!(
            out,
            "{n} hosts: the routed lab moves {r:.2} of the switch-only lab's frames a second ({low:.2} to {high:.2} over {rounds} rounds)"
        )?;
    }
    Ok(())
}
