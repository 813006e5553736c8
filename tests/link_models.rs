//! The link model's statistics over many seeded frames, in virtual time: random and bursty loss,
//! jitter and its distributions, FIFO order and reordering, duplication and corruption, rate and a
//! queue in bytes, a link that starts down, a model per direction, and determinism. Tolerances are
//! five standard errors of the estimate, worked out from the sample size.

use std::time::Duration;

use netlab::sim::apps::Outcome;
use netlab::sim::link::{Arrival, Direction};
use netlab::sim::{CommandSpec, DropReason, Fate, FrameEvent, Observer, PacketId, Sim};
use netlab::time::SimTime;
use netlab::topology::{load_str, Distribution, GilbertElliott, Lab, LinkId, LinkModel, Side};

/// Every frame event, owned.
#[derive(Default)]
struct Log(Vec<Event>);

#[derive(Clone, Debug, PartialEq)]
struct Event {
    time: SimTime,
    link: LinkId,
    from: Side,
    packet: PacketId,
    fate: Fate,
    frame: Vec<u8>,
}

impl Observer for Log {
    fn frame(&mut self, ev: &FrameEvent<'_>) {
        self.0.push(Event {
            time: ev.time,
            link: ev.link,
            from: ev.from,
            packet: ev.packet,
            fate: ev.fate,
            frame: ev.frame.to_vec(),
        });
    }
}

impl Log {
    fn count(&self, fate: Fate) -> usize {
        self.0.iter().filter(|e| e.fate == fate).count()
    }
}

/// An Ethernet frame carrying an IPv4 UDP datagram of `len` bytes in all, its payload numbered `n`.
fn udp_frame(len: usize, n: u64) -> Vec<u8> {
    let mut f = vec![0u8; len.max(14 + 20 + 8 + 8)];
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    let ip_len = u16::try_from(f.len() - 14).expect("small");
    f[16..18].copy_from_slice(&ip_len.to_be_bytes());
    f[23] = 17;
    f[42..50].copy_from_slice(&n.to_be_bytes());
    f
}

/// A frame arrived: its packet, time and bytes.
struct Got {
    packet: PacketId,
    at: SimTime,
    frame: Vec<u8>,
}

/// Sends `n` frames of `len` bytes, one every `gap`, on a direction with `model`, and takes every
/// arrival in the order the direction hands them over.
fn drive(model: LinkModel, seed: u64, n: u64, gap: Duration, len: usize) -> (Vec<Got>, Log) {
    let mut d = Direction::new(LinkId(0), Side::A, model, seed);
    let mut log = Log::default();
    let mut got = Vec::new();
    let mut now = SimTime::ZERO;
    let take = |d: &mut Direction, now: SimTime, log: &mut Log, got: &mut Vec<Got>| {
        while let Some(a) = d.pop_due(now, log) {
            if let Arrival::Frame { at, packet, frame, .. } = a {
                got.push(Got { packet, at, frame });
            }
        }
    };
    for i in 0..n {
        take(&mut d, now, &mut log, &mut got);
        let frame = udp_frame(len, i);
        if d.has_room_for(now, frame.len()) {
            d.push(now, PacketId(i), frame, &mut log);
        } else {
            d.refuse(now, PacketId(i), &frame, &mut log);
        }
        now = now + gap;
    }
    take(&mut d, SimTime::from_millis(1_000_000_000), &mut log, &mut got);
    (got, log)
}

fn model() -> LinkModel {
    LinkModel { queue_frames: 65_536, ..LinkModel::default() }
}

fn within(what: &str, measured: f64, expected: f64, se: f64) {
    assert!(
        (measured - expected).abs() <= 5.0 * se,
        "{what}: measured {measured}, expected {expected} ± 5 × {se} (standard error)"
    );
}

#[allow(clippy::cast_precision_loss)]
fn f(n: usize) -> f64 {
    n as f64
}

#[test]
fn random_loss_loses_its_share() {
    let (n, p) = (40_000u64, 0.1);
    let (got, log) = drive(LinkModel { loss: p, ..model() }, 3, n, Duration::from_micros(10), 100);
    let lost = log.count(Fate::Dropped(DropReason::Loss));
    assert_eq!(lost + got.len(), 40_000, "every frame either arrives or is reported lost");
    let nf = f(40_000);
    within("loss rate", f(lost) / nf, p, (p * (1.0 - p) / nf).sqrt());
}

/// Runs of consecutive losses, by packet order, from the loss events.
fn bursts(log: &Log, n: u64) -> Vec<usize> {
    let mut lost = vec![false; usize::try_from(n).expect("small")];
    for e in log.0.iter().filter(|e| e.fate == Fate::Dropped(DropReason::Loss)) {
        lost[usize::try_from(e.packet.0).expect("small")] = true;
    }
    let mut runs = Vec::new();
    let mut run = 0;
    for l in lost {
        if l {
            run += 1;
        } else if run > 0 {
            runs.push(run);
            run = 0;
        }
    }
    runs.extend((run > 0).then_some(run));
    runs
}

#[test]
fn gilbert_elliott_loss_has_its_stationary_rate_and_burst_length() {
    let (p, r) = (0.05, 0.25);
    let n = 100_000u64;
    let ge = GilbertElliott { p, r, loss_good: 0.0, loss_bad: 1.0 };
    let (_, log) = drive(LinkModel { loss_model: Some(ge), ..model() }, 11, n, Duration::from_micros(10), 80);
    let nf = f(100_000);
    let lost = f(log.count(Fate::Dropped(DropReason::Loss)));
    // The share of frames lost is the share of time in the bad state, p / (p + r). The losses are
    // correlated: the variance of their mean grows by (1 + λ) / (1 − λ), λ = 1 − p − r.
    let pi = p / (p + r);
    assert!((ge.mean_loss() - pi).abs() < 1e-12);
    let lambda = 1.0 - p - r;
    let se = (pi * (1.0 - pi) * (1.0 + lambda) / (1.0 - lambda) / nf).sqrt();
    within("bursty loss rate", lost / nf, pi, se);
    // A stay in the bad state lasts a geometric number of frames, of mean 1 / r.
    let runs = bursts(&log, n);
    let mean = f(runs.iter().sum()) / f(runs.len());
    let sd = (1.0 - r).sqrt() / r;
    within("mean burst length", mean, 1.0 / r, sd / f(runs.len()).sqrt());
    // Random loss of the same rate has far shorter bursts.
    let (_, random) = drive(LinkModel { loss: pi, ..model() }, 11, n, Duration::from_micros(10), 80);
    let runs = bursts(&random, n);
    let random_mean = f(runs.iter().sum()) / f(runs.len());
    assert!(random_mean < 1.5 && mean > 3.0, "random {random_mean}, bursty {mean}");
}

#[test]
fn gilbert_elliott_with_loss_in_both_states() {
    let (p, r, lg, lb) = (0.02, 0.1, 0.01, 0.5);
    let n = 100_000u64;
    let ge = GilbertElliott { p, r, loss_good: lg, loss_bad: lb };
    let (_, log) = drive(LinkModel { loss_model: Some(ge), ..model() }, 5, n, Duration::from_micros(10), 80);
    let nf = f(100_000);
    let pi = p / (p + r);
    let m = (1.0 - pi) * lg + pi * lb;
    assert!((ge.mean_loss() - m).abs() < 1e-12);
    // Var of the mean: m(1 − m) + 2 (lb − lg)² π (1 − π) λ / (1 − λ), over n.
    let lambda = 1.0 - p - r;
    let var = m * (1.0 - m) + 2.0 * (lb - lg).powi(2) * pi * (1.0 - pi) * lambda / (1.0 - lambda);
    within("loss rate", f(log.count(Fate::Dropped(DropReason::Loss))) / nf, m, (var / nf).sqrt());
}

/// Mean and standard deviation of the delays of the frames that arrived, in milliseconds.
fn delay_stats(got: &[Got], gap: Duration) -> (f64, f64, Vec<f64>) {
    let delays: Vec<f64> = got
        .iter()
        .map(|g| {
            let sent = SimTime::ZERO + gap * u32::try_from(g.packet.0).expect("small");
            (g.at - sent).as_secs_f64() * 1e3
        })
        .collect();
    let n = f(delays.len());
    let mean = delays.iter().sum::<f64>() / n;
    let var = delays.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt(), delays)
}

#[test]
fn uniform_jitter_has_its_mean_and_spread() {
    let gap = Duration::from_micros(100);
    let m = LinkModel {
        latency: Duration::from_millis(50),
        jitter: Duration::from_millis(10),
        distribution: Distribution::Uniform,
        reorder: true,
        ..model()
    };
    let (got, _) = drive(m, 2, 50_000, gap, 100);
    let (mean, sd, delays) = delay_stats(&got, gap);
    let n = f(got.len());
    // Uniform on 50 ± 10 ms: sd = 10 / √3; its sample sd has a standard error of
    // σ √((κ − 1) / 4n), κ = 9/5 for a uniform distribution.
    let sigma = 10.0 / 3f64.sqrt();
    within("mean delay (ms)", mean, 50.0, sigma / n.sqrt());
    within("delay sd (ms)", sd, sigma, sigma * (0.8 / (4.0 * n)).sqrt());
    assert!(delays.iter().all(|d| (40.0..=60.0).contains(d)), "uniform stays within latency ± jitter");
}

#[test]
fn normal_jitter_has_its_mean_and_spread() {
    let gap = Duration::from_micros(100);
    let m = LinkModel {
        latency: Duration::from_millis(50),
        jitter: Duration::from_millis(5),
        distribution: Distribution::Normal,
        reorder: true,
        ..model()
    };
    let (got, _) = drive(m, 4, 50_000, gap, 100);
    let (mean, sd, _) = delay_stats(&got, gap);
    let n = f(got.len());
    within("mean delay (ms)", mean, 50.0, 5.0 / n.sqrt());
    within("delay sd (ms)", sd, 5.0, 5.0 / (2.0 * n).sqrt());
}

#[test]
fn pareto_jitter_is_standardised_and_delay_never_negative() {
    let gap = Duration::from_micros(100);
    for dist in [Distribution::Pareto, Distribution::Paretonormal] {
        let m = LinkModel {
            latency: Duration::from_millis(20),
            jitter: Duration::from_millis(4),
            distribution: dist,
            reorder: true,
            ..model()
        };
        let (got, _) = drive(m, 9, 50_000, gap, 100);
        let (mean, _, delays) = delay_stats(&got, gap);
        // A heavy tail: the mean is held loosely (its variance is finite, its fourth moment not).
        within("mean delay (ms)", mean, 20.0, 4.0 / f(got.len()).sqrt() * 2.0);
        assert!(delays.iter().all(|d| *d >= 0.0));
        let above = delays.iter().filter(|d| **d > 20.0 + 3.0 * 4.0).count();
        let below = delays.iter().filter(|d| **d < 20.0 - 3.0 * 4.0).count();
        assert!(above > below, "{dist:?}: a tail above the latency ({above}) longer than below ({below})");
    }
    // A jitter larger than the latency: the delay is cut at zero, never negative.
    let m = LinkModel {
        latency: Duration::from_millis(1),
        jitter: Duration::from_millis(5),
        distribution: Distribution::Normal,
        reorder: true,
        ..model()
    };
    let (got, _) = drive(m, 1, 10_000, gap, 100);
    let (_, _, delays) = delay_stats(&got, gap);
    assert!(delays.iter().all(|d| *d >= 0.0));
    assert!(delays.iter().filter(|d| **d == 0.0).count() > 1000, "many draws below zero arrive at once");
}

/// Pairs of frames handed over out of their sending order.
fn inversions(got: &[Got]) -> usize {
    got.windows(2).filter(|w| w[1].packet < w[0].packet).count()
}

#[test]
fn jitter_keeps_fifo_order_unless_reordering_is_asked_for() {
    let gap = Duration::from_micros(500);
    let m = LinkModel { latency: Duration::from_millis(20), jitter: Duration::from_millis(5), ..model() };
    let (fifo, _) = drive(m, 6, 10_000, gap, 100);
    assert_eq!(fifo.len(), 10_000);
    assert_eq!(inversions(&fifo), 0, "FIFO: no frame overtakes the one sent before it");
    assert!(fifo.windows(2).all(|w| w[0].at <= w[1].at));
    // Clamped, but still jittered: arrivals are not simply 20 ms after sending.
    let (_, sd, _) = delay_stats(&fifo, gap);
    assert!(sd > 1.0, "{sd}");
    let (reordered, _) = drive(LinkModel { reorder: true, ..m }, 6, 10_000, gap, 100);
    assert_eq!(reordered.len(), 10_000);
    assert!(reordered.windows(2).all(|w| w[0].at <= w[1].at), "handed over in time order");
    assert!(inversions(&reordered) > 1000, "{}", inversions(&reordered));
}

#[test]
fn duplicates_and_corruption_come_at_their_rates() {
    let n = 40_000u64;
    let (pd, pc) = (0.2, 0.3);
    let (got, log) = drive(LinkModel { duplicate: pd, corrupt: pc, ..model() }, 8, n, Duration::from_micros(10), 200);
    let nf = f(40_000);
    let dups = log.count(Fate::Duplicated);
    within("duplicate rate", f(dups) / nf, pd, (pd * (1.0 - pd) / nf).sqrt());
    assert_eq!(got.len(), 40_000 + dups, "every copy arrives too");
    // Each copy carries the packet id of its original.
    let mut per_packet = vec![0u32; 40_000];
    for g in &got {
        per_packet[usize::try_from(g.packet.0).expect("small")] += 1;
    }
    assert_eq!(per_packet.iter().filter(|c| **c == 2).count(), dups);
    // Copies are corrupted independently: the share is of all frames on the wire.
    let corrupted = log.count(Fate::Corrupted);
    let all = f(got.len());
    within("corrupt rate", f(corrupted) / all, pc, (pc * (1.0 - pc) / all).sqrt());
    // A corrupted frame differs from what was sent by one bit, past the Ethernet and IP headers.
    let mut checked = 0;
    for e in log.0.iter().filter(|e| e.fate == Fate::Corrupted) {
        let sent = udp_frame(200, e.packet.0);
        let diff: Vec<usize> = (0..sent.len()).filter(|&i| sent[i] != e.frame[i]).collect();
        assert_eq!(diff.len(), 1);
        assert_eq!((sent[diff[0]] ^ e.frame[diff[0]]).count_ones(), 1);
        assert!(diff[0] >= 14 + 20, "bit {} is in a header", diff[0]);
        checked += 1;
    }
    assert_eq!(checked, corrupted);
    // What arrives is what the observers saw corrupted.
    let corrupt_frames: Vec<&Vec<u8>> = log.0.iter().filter(|e| e.fate == Fate::Corrupted).map(|e| &e.frame).collect();
    let arrived_corrupt = got.iter().filter(|g| g.frame != udp_frame(200, g.packet.0)).count();
    assert_eq!(arrived_corrupt, corrupt_frames.len());
}

#[test]
fn a_rate_holds_and_a_byte_queue_drops_when_full() {
    // 1000-byte frames offered at 16 Mbit/s to a 10 Mbit/s link with a 16 KiB queue.
    let rate = 10_000_000u64;
    let limit = 16 * 1024u64;
    let m = LinkModel { rate_bps: Some(rate), queue_bytes: Some(limit), ..model() };
    let mut d = Direction::new(LinkId(0), Side::A, m, 1);
    let mut log = Log::default();
    let gap = Duration::from_micros(500);
    let mut now = SimTime::ZERO;
    let mut delivered: Vec<(SimTime, usize)> = Vec::new();
    for i in 0..8_000u64 {
        while let Some(Arrival::Frame { at, frame, .. }) = d.pop_due(now, &mut log) {
            delivered.push((at, frame.len()));
        }
        let frame = udp_frame(1000, i);
        if d.has_room_for(now, frame.len()) {
            d.push(now, PacketId(i), frame, &mut log);
        } else {
            d.refuse(now, PacketId(i), &frame, &mut log);
        }
        assert!(d.waiting_bytes(now) <= limit, "the queue holds at most its bytes");
        now = now + gap;
    }
    let drops = log.count(Fate::Dropped(DropReason::QueueFull));
    assert!(drops > 2000, "a 16 Mbit/s offer to a 10 Mbit/s link drops about 3/8: {drops}");
    // Bytes delivered from 1 s to the end (the queue is full throughout): the link's rate.
    let (from, to) = (SimTime::from_millis(1_000), now);
    let bytes: usize = delivered.iter().filter(|(at, _)| *at > from && *at <= to).map(|(_, l)| l).sum();
    let bps = f(bytes) * 8.0 / (to - from).as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let want = rate as f64;
    assert!((bps - want).abs() / want < 0.02, "delivered {bps} bit/s on a {want} bit/s link");
}

fn two_hosts(link: &serde_json::Value, apps: &serde_json::Value) -> Lab {
    let lab = serde_json::json!({
        "name": "t",
        "nodes": {
            "a": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.1/24"] } }, "apps": apps },
            "b": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.2/24"] } },
                   "apps": [ { "kind": "udp-echo-server", "port": 7 } ] }
        },
        "links": [ link ]
    });
    load_str(&lab.to_string(), "t.json").unwrap_or_else(|e| panic!("{e}"))
}

/// Steps `sim` in virtual time up to `until` (or until nothing is due).
fn run_until(sim: &mut Sim, until: SimTime, log: &mut Log) {
    for _ in 0..10_000_000 {
        match sim.next_deadline() {
            Some(t) if t <= until => {
                sim.step(t, log);
            }
            _ => {
                sim.step(until, log);
                return;
            }
        }
    }
    panic!("the lab did not reach {until}");
}

fn ping_outcome(sim: &Sim) -> (u32, u32) {
    let r = sim.app_reports().into_iter().find(|a| a.label == "a/ping").expect("a ping");
    let Outcome::Ping { sent, received, .. } = r.outcome else { panic!("{:?}", r.outcome) };
    (sent, received)
}

fn apply(sim: &mut Sim, lab: &Lab, cmd: serde_json::Value, log: &mut Log) {
    let spec: CommandSpec = serde_json::from_value(cmd).expect("a command");
    let cmd = spec.resolve(lab, |l, s| sim.link_model(l, s).expect("a link")).expect("resolves");
    sim.apply(&cmd, log).expect("applies");
}

fn is_icmp_echo(frame: &[u8], kind: u8) -> bool {
    frame.len() > 34 && frame[12..14] == [0x08, 0x00] && frame[23] == 1 && frame[34] == kind
}

#[test]
fn a_corrupt_frame_is_dropped_by_the_receiving_stack() {
    let ping = serde_json::json!([{ "kind": "ping", "to": "b", "count": 20, "interval": "100ms", "timeout": "500ms" }]);
    let link = serde_json::json!({ "a": "a:eth0", "b": "b:eth0", "impair": { "latency": "1ms" } });
    // Clear: every request is answered.
    let lab = two_hosts(&link, &ping);
    let mut sim = Sim::new(&lab, None);
    let mut log = Log::default();
    run_until(&mut sim, SimTime::from_millis(3_000), &mut log);
    assert_eq!(ping_outcome(&sim), (20, 20));
    // Once ARP is done, every frame from a to b gets a bit flipped: b's stack drops each request
    // on its checksum and answers none, though each one reached it.
    let mut sim = Sim::new(&lab, None);
    let mut log = Log::default();
    run_until(&mut sim, SimTime::from_millis(50), &mut log);
    apply(
        &mut sim,
        &lab,
        serde_json::json!({ "kind": "set-model", "link": "a:eth0<->b:eth0", "direction": "a-to-b", "impair": { "corrupt": 1.0 } }),
        &mut log,
    );
    let mark = log.0.len();
    run_until(&mut sim, SimTime::from_millis(3_000), &mut log);
    assert_eq!(ping_outcome(&sim), (20, 1), "only the request sent before the change is answered");
    let after = &log.0[mark..];
    let corrupted: Vec<&Event> = after.iter().filter(|e| e.fate == Fate::Corrupted).collect();
    assert_eq!(corrupted.iter().filter(|e| is_icmp_echo(&e.frame, 8)).count(), 19);
    // Each corrupted request is delivered as corrupted: the bytes a capture keeps.
    for c in &corrupted {
        let delivered = after.iter().find(|e| e.fate == Fate::Delivered && e.packet == c.packet).expect("delivered");
        assert_eq!(delivered.frame, c.frame);
        assert_eq!(delivered.time, c.time);
    }
    let replies = after.iter().filter(|e| e.fate == Fate::Sent && e.from == Side::B && is_icmp_echo(&e.frame, 0));
    assert_eq!(replies.count(), 0, "b answered no corrupted request");
}

#[test]
fn a_link_that_starts_down_carries_nothing_until_it_is_brought_up() {
    let ping = serde_json::json!([{ "kind": "ping", "to": "b", "count": 10, "interval": "100ms", "timeout": "2s" }]);
    let link = serde_json::json!({ "a": "a:eth0", "b": "b:eth0", "state": "down", "impair": { "latency": "1ms" } });
    let lab = two_hosts(&link, &ping);
    assert!(!lab.links[0].up);
    let mut sim = Sim::new(&lab, None);
    assert_eq!(sim.link_up(LinkId(0)), Some(false));
    let mut log = Log::default();
    run_until(&mut sim, SimTime::from_millis(450), &mut log);
    assert_eq!(log.count(Fate::Delivered), 0);
    assert!(log.count(Fate::Dropped(DropReason::LinkDown)) > 0, "what a sends is dropped as link-down");
    apply(&mut sim, &lab, serde_json::json!({ "kind": "link-up", "link": "a:eth0<->b:eth0" }), &mut log);
    run_until(&mut sim, SimTime::from_millis(5_000), &mut log);
    let (sent, received) = ping_outcome(&sim);
    assert_eq!(sent, 10);
    assert!((5..=10).contains(&received), "the requests after the link came up are answered: {received}");
    assert!(log.0.iter().filter(|e| e.fate == Fate::Delivered).all(|e| e.time >= SimTime::from_millis(450)));
}

#[test]
fn each_direction_has_its_own_model() {
    let ping = serde_json::json!([{ "kind": "ping", "to": "b", "count": 5, "interval": "100ms" }]);
    let link = serde_json::json!({
        "a": "a:eth0", "b": "b:eth0",
        "impair": { "latency": "10ms", "rate": "100Mbit" },
        "b_to_a": { "latency": "30ms" }
    });
    let lab = two_hosts(&link, &ping);
    assert_eq!(lab.links[0].model.latency, Duration::from_millis(10));
    assert_eq!(lab.links[0].model_b_to_a.latency, Duration::from_millis(30));
    assert_eq!(lab.links[0].model_b_to_a.rate_bps, Some(100_000_000), "the rest comes from `impair`");
    let mut sim = Sim::new(&lab, None);
    let mut log = Log::default();
    run_until(&mut sim, SimTime::from_millis(2_000), &mut log);
    assert_eq!(ping_outcome(&sim), (5, 5));
    // Each frame's one-way time: sent to delivered, by direction (less the serialisation time).
    let one_way = |from: Side| -> Vec<Duration> {
        log.0
            .iter()
            .filter(|e| e.fate == Fate::Delivered && e.from == from)
            .map(|d| {
                let sent = log.0.iter().find(|e| e.fate == Fate::Sent && e.packet == d.packet).expect("sent");
                let wire = Duration::from_nanos(d.frame.len() as u64 * 8 * 10);
                d.time - sent.time - wire
            })
            .collect()
    };
    let (ab, ba) = (one_way(Side::A), one_way(Side::B));
    assert!(ab.len() >= 6 && ba.len() >= 6, "ARP and the pings both ways");
    assert!(ab.iter().all(|d| *d == Duration::from_millis(10)), "{ab:?}");
    assert!(ba.iter().all(|d| *d == Duration::from_millis(30)), "{ba:?}");
}

/// A lab of every feature on one link, with UDP echoes both ways.
fn busy_lab(reorder: bool) -> Lab {
    let echo = serde_json::json!([{ "kind": "udp-echo", "to": "b:7", "count": 300, "interval": "1ms", "size": 200 }]);
    let link = serde_json::json!({
        "a": "a:eth0", "b": "b:eth0",
        "impair": { "latency": "20ms", "jitter": "10ms", "distribution": "normal", "reorder": reorder,
                    "duplicate": 0.05, "corrupt": 0.05, "rate": "50Mbit", "queue_bytes": "64KiB",
                    "loss_model": { "kind": "gilbert-elliott", "p": 0.02, "r": 0.3 } }
    });
    two_hosts(&link, &echo)
}

#[test]
fn a_reordering_link_delivers_every_frame_at_its_own_time() {
    let lab = busy_lab(true);
    let mut sim = Sim::new(&lab, None);
    let mut log = Log::default();
    run_until(&mut sim, SimTime::from_millis(3_000), &mut log);
    let delivered: Vec<&Event> = log.0.iter().filter(|e| e.fate == Fate::Delivered && e.from == Side::A).collect();
    assert!(delivered.len() > 200);
    assert!(delivered.windows(2).all(|w| w[0].time <= w[1].time), "in time order");
    assert!(delivered.windows(2).any(|w| w[1].packet < w[0].packet), "some frames overtook others");
    // Normal jitter of 10 ms on 20 ms: a frame that waited for a later one would be late by far.
    for d in delivered {
        let sent = log.0.iter().find(|e| e.fate == Fate::Sent && e.packet == d.packet).expect("sent");
        assert!(d.time - sent.time < Duration::from_millis(80), "{:?} after {:?}", d.time, sent.time);
    }
}

#[test]
fn the_same_seed_gives_the_same_run() {
    for reorder in [false, true] {
        let lab = busy_lab(reorder);
        let run = |seed| {
            let mut sim = Sim::new(&lab, Some(seed));
            let mut log = Log::default();
            run_until(&mut sim, SimTime::from_millis(3_000), &mut log);
            log.0
        };
        let first = run(7);
        assert!(first.iter().any(|e| e.fate == Fate::Duplicated) && first.iter().any(|e| e.fate == Fate::Corrupted));
        assert!(first.iter().any(|e| e.fate == Fate::Dropped(DropReason::Loss)));
        assert_eq!(first, run(7), "same seed, same events, times and bytes");
        assert_ne!(first, run(8), "another seed, another run");
    }
    let m = LinkModel {
        latency: Duration::from_millis(5),
        jitter: Duration::from_millis(2),
        distribution: Distribution::Paretonormal,
        duplicate: 0.1,
        corrupt: 0.1,
        loss_model: Some(GilbertElliott { p: 0.1, r: 0.5, loss_good: 0.0, loss_bad: 1.0 }),
        ..model()
    };
    let arrivals = |seed| {
        drive(m, seed, 2_000, Duration::from_micros(100), 120)
            .0
            .into_iter()
            .map(|g| (g.packet, g.at, g.frame))
            .collect::<Vec<_>>()
    };
    assert_eq!(arrivals(1), arrivals(1));
    assert_ne!(arrivals(1), arrivals(2));
}
