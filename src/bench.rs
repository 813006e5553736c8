//! Throughput benchmark, shared by `netlab bench` and `cargo bench`.
//!
//! It measures, in one process and one run, so that the figures are comparable on a noisy machine:
//! - a **baseline**: two bare smoltcp `Interface`s over `VecDeque` devices, no netlab code but the
//!   byte pattern the apps write and check;
//! - **netlab**: the same transfer between two netlab hosts on an in-memory link in virtual time,
//!   with capture off, then with capture on.
//!
//! Speeds are reported as ratios against the baseline of the same run.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::Write;
use std::time::{Duration, Instant};

use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};

use crate::runtime::{self, CaptureChoice, RunOptions};
use crate::sim::apps::{count_mismatch, fill_pattern};
use crate::topology;

/// Socket buffers for both sides of every measurement.
const BUFFER: usize = 1 << 20;

/// One measurement.
#[derive(Debug, Clone, Copy)]
pub struct Measure {
    pub bytes: u64,
    pub frames: u64,
    pub wall: Duration,
}

impl Measure {
    #[must_use]
    pub fn gbps(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.wall.as_secs_f64() / 1e9
    }
    #[must_use]
    pub fn fps(&self) -> f64 {
        self.frames as f64 / self.wall.as_secs_f64()
    }
}

struct QueueDev<'a> {
    offload: bool,
    rx: &'a mut VecDeque<Vec<u8>>,
    tx: &'a mut VecDeque<Vec<u8>>,
    free: &'a RefCell<Vec<Vec<u8>>>,
    sent: &'a Cell<u64>,
}

struct Rx<'a>(Vec<u8>, &'a RefCell<Vec<Vec<u8>>>);
struct Tx<'a>(&'a mut VecDeque<Vec<u8>>, &'a RefCell<Vec<Vec<u8>>>, &'a Cell<u64>);

impl phy::RxToken for Rx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let r = f(&self.0);
        self.1.borrow_mut().push(self.0);
        r
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut b = self.1.borrow_mut().pop().unwrap_or_default();
        b.clear();
        b.resize(len, 0);
        let r = f(&mut b);
        self.0.push_back(b);
        self.2.set(self.2.get() + 1);
        r
    }
}

impl phy::Device for QueueDev<'_> {
    type RxToken<'b>
        = Rx<'b>
    where
        Self: 'b;
    type TxToken<'b>
        = Tx<'b>
    where
        Self: 'b;
    fn receive(&mut self, _: SmolInstant) -> Option<(Rx<'_>, Tx<'_>)> {
        let f = self.rx.pop_front()?;
        Some((Rx(f, self.free), Tx(self.tx, self.free, self.sent)))
    }
    fn transmit(&mut self, _: SmolInstant) -> Option<Tx<'_>> {
        Some(Tx(self.tx, self.free, self.sent))
    }
    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ethernet;
        c.max_transmission_unit = 1514;
        if self.offload {
            c.checksum = smoltcp::phy::ChecksumCapabilities::ignored();
        }
        c
    }
}

fn tcp_socket() -> tcp::Socket<'static> {
    let mut s = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; BUFFER]), tcp::SocketBuffer::new(vec![0; BUFFER]));
    s.set_congestion_control(tcp::CongestionControl::Cubic);
    s.set_ack_delay(None);
    s.set_nagle_enabled(false);
    s
}

/// Two bare smoltcp interfaces moving `bytes` of TCP; no netlab code on the frame path. With
/// `pattern`, the sender writes and the receiver checks the byte pattern netlab's apps use; without
/// it, the bytes are whatever the socket buffers hold: smoltcp's own cost and nothing else.
#[must_use]
pub fn baseline(bytes: u64, offload: bool, pattern: bool) -> Measure {
    let free = RefCell::new(Vec::new());
    let frames = Cell::new(0);
    let (mut ab, mut ba) = (VecDeque::new(), VecDeque::new());
    let now = SmolInstant::from_micros(0);
    let mk = |last: u8, ip: [u8; 4], rx: &mut VecDeque<Vec<u8>>, tx: &mut VecDeque<Vec<u8>>| {
        let mut cfg = Config::new(HardwareAddress::Ethernet(EthernetAddress([2, 0, 0, 0, 0, last])));
        cfg.random_seed = u64::from(last);
        let mut iface = Interface::new(cfg, &mut QueueDev { offload, rx, tx, free: &free, sent: &frames }, now);
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(IpAddress::v4(ip[0], ip[1], ip[2], ip[3]), 24));
        });
        iface
    };
    let mut ia = mk(1, [10, 0, 0, 1], &mut ba, &mut ab);
    let mut ib = mk(2, [10, 0, 0, 2], &mut ab, &mut ba);
    let (mut sa, mut sb) = (SocketSet::new(vec![]), SocketSet::new(vec![]));
    let client = sa.add(tcp_socket());
    let server = sb.add(tcp_socket());
    let _ = sb.get_mut::<tcp::Socket>(server).listen(9);
    let _ = sa.get_mut::<tcp::Socket>(client).connect(ia.context(), (IpAddress::v4(10, 0, 0, 2), 9), 49152);
    let (mut sent, mut got, mut bad) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    while got < bytes {
        let s = sa.get_mut::<tcp::Socket>(client);
        while sent < bytes && s.can_send() {
            let off = sent;
            sent += s
                .send(|b| {
                    let n = b.len().min(usize::try_from(bytes - off).unwrap_or(usize::MAX));
                    if pattern {
                        fill_pattern(&mut b[..n], off);
                    }
                    (n, n as u64)
                })
                .unwrap_or(0);
        }
        ia.poll(now, &mut QueueDev { offload, rx: &mut ba, tx: &mut ab, free: &free, sent: &frames }, &mut sa);
        ib.poll(now, &mut QueueDev { offload, rx: &mut ab, tx: &mut ba, free: &free, sent: &frames }, &mut sb);
        let s = sb.get_mut::<tcp::Socket>(server);
        while s.can_recv() {
            let off = got;
            got += s
                .recv(|b| {
                    if pattern {
                        bad += count_mismatch(b, off);
                    }
                    (b.len(), b.len() as u64)
                })
                .unwrap_or(0);
        }
    }
    assert_eq!(bad, 0, "baseline transfer corrupted");
    Measure { bytes, frames: frames.get(), wall: start.elapsed() }
}

/// The lab the netlab measurements run: two hosts, one in-memory link, a transfer into a sink.
#[must_use]
pub fn bench_lab(bytes: u64, offload: bool) -> topology::Lab {
    let text = format!(
        r#"{{
  "name": "bench",
  "checksum_offload": {offload},
  "nodes": {{
    "a": {{ "kind": "host", "interfaces": {{ "eth0": {{ "addresses": ["10.0.0.1/24"] }} }},
           "tcp": {{ "rx_buffer": {BUFFER}, "tx_buffer": {BUFFER} }},
           "apps": [ {{ "kind": "tcp-transfer", "to": "b:9", "bytes": {bytes} }} ] }},
    "b": {{ "kind": "host", "interfaces": {{ "eth0": {{ "addresses": ["10.0.0.2/24"] }} }},
           "tcp": {{ "rx_buffer": {BUFFER}, "tx_buffer": {BUFFER} }},
           "apps": [ {{ "kind": "tcp-sink", "port": 9 }} ] }}
  }},
  "links": [ {{ "a": "a:eth0", "b": "b:eth0" }} ]
}}"#
    );
    match topology::load_str(&text, "bench") {
        Ok(lab) => lab,
        Err(e) => panic!("the bench lab is valid: {e}"),
    }
}

/// The same transfer through netlab in virtual time; `capture` is a pcapng path, or none.
pub fn netlab(bytes: u64, offload: bool, capture: Option<&std::path::Path>) -> anyhow::Result<Measure> {
    let lab = bench_lab(bytes, offload);
    let opts = RunOptions {
        speed: runtime::Speed::Max,
        capture: capture.map_or(CaptureChoice::Off, |p| CaptureChoice::File(p.to_path_buf())),
        ..RunOptions::default()
    };
    let start = Instant::now();
    let r = runtime::run(&lab, &opts, &mut ())?;
    let wall = start.elapsed();
    let sunk = r.apps.iter().find_map(|a| match a.outcome {
        crate::sim::apps::Outcome::TcpSink { bytes, corrupt_bytes, .. } => Some((bytes, corrupt_bytes)),
        _ => None,
    });
    anyhow::ensure!(sunk == Some((bytes, 0)), "netlab transfer incomplete or corrupt: {sunk:?}");
    Ok(Measure { bytes, frames: r.frames, wall })
}

/// Peak resident memory of this process, from /proc (Linux); `None` elsewhere.
#[must_use]
pub fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// Writes `bytes` to a new file in `dir` with 1 MiB writes: what the disk alone costs a capture.
pub fn raw_write(dir: &std::path::Path, bytes: u64) -> std::io::Result<Duration> {
    let path = dir.join("raw-write.bin");
    let chunk = vec![0x5au8; 1 << 20];
    let start = Instant::now();
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
    let mut left = bytes;
    while left > 0 {
        let n = usize::try_from(left.min(chunk.len() as u64)).unwrap_or(chunk.len());
        f.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    f.flush()?;
    drop(f);
    let took = start.elapsed();
    std::fs::remove_file(&path)?;
    Ok(took)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Runs every measurement `reps` times, interleaved, and prints the medians: once with checksums
/// computed and verified (the default), once with checksum offload.
pub fn run_all(bytes: u64, reps: usize, out: &mut dyn Write) -> anyhow::Result<()> {
    let reps = reps.max(1);
    anyhow::ensure!(bytes >= 1 << 20, "measure at least 1 MiB (asked for {bytes} bytes)");
    let mib = bytes as f64 / (1 << 20) as f64;
    writeln!(out, "netlab bench: {mib:.0} MiB of TCP per run, MTU 1500, 1 MiB socket buffers, median of {reps} runs")?;
    let dir = std::env::temp_dir().join(format!("netlab-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let r = (|| {
        // Warm up caches and the allocator.
        let _ = baseline(bytes.min(16 << 20), false, true);
        for offload in [false, true] {
            table(bytes, reps, offload, &dir, out)?;
        }
        anyhow::Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    r?;
    if let Some(kib) = peak_rss_kib() {
        writeln!(out, "\npeak resident memory of the whole bench: {:.0} MiB", kib as f64 / 1024.0)?;
    }
    Ok(())
}

fn table(bytes: u64, reps: usize, offload: bool, dir: &std::path::Path, out: &mut dyn Write) -> anyhow::Result<()> {
    let pcap = dir.join("bench.pcapng");
    let (mut bare, mut base, mut off, mut on, mut raw) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut frames = [0u64; 4];
    let mut pcap_size = 0;
    for _ in 0..reps {
        let n = baseline(bytes, offload, false);
        let b = baseline(bytes, offload, true);
        let o = netlab(bytes, offload, None)?;
        let c = netlab(bytes, offload, Some(&pcap))?;
        pcap_size = std::fs::metadata(&pcap).map(|m| m.len()).unwrap_or(0);
        std::fs::remove_file(&pcap)?;
        raw.push(raw_write(dir, pcap_size)?);
        frames = [n.frames, b.frames, o.frames, c.frames];
        bare.push(n.wall);
        base.push(b.wall);
        off.push(o.wall);
        on.push(c.wall);
    }
    let (bare, base, off, on, raw) = (median(bare), median(base), median(off), median(on), median(raw));
    let rate = |d: Duration| bytes as f64 * 8.0 / d.as_secs_f64() / 1e9;
    let mode = if offload { "checksum offload" } else { "checksums computed (default)" };
    writeln!(out, "\n{mode:<32} {:>8} {:>9} {:>12} {:>8} {:>8}", "wall s", "Gbit/s", "frames/s", "ratio", "vs bare")?;
    for (name, d, f) in [
        ("bare smoltcp, no pattern", bare, frames[0]),
        ("baseline (bare smoltcp)", base, frames[1]),
        ("netlab, capture off", off, frames[2]),
        ("netlab, capture on", on, frames[3]),
    ] {
        writeln!(
            out,
            "  {name:<30} {:>8.3} {:>9.2} {:>12.0} {:>8.2} {:>8.2}",
            d.as_secs_f64(),
            rate(d),
            f as f64 / d.as_secs_f64(),
            base.as_secs_f64() / d.as_secs_f64(),
            bare.as_secs_f64() / d.as_secs_f64()
        )?;
    }
    writeln!(
        out,
        "  capture costs {:.0} % of netlab's throughput; it wrote {:.0} MiB, which a plain write loop puts on this disk in {:.3} s ({:.2} GB/s)",
        (1.0 - off.as_secs_f64() / on.as_secs_f64()) * 100.0,
        pcap_size as f64 / (1 << 20) as f64,
        raw.as_secs_f64(),
        pcap_size as f64 / raw.as_secs_f64() / 1e9
    )?;
    Ok(())
}

/// A ping with `count` requests one nanosecond apart across 2 ms of latency each way: about
/// `count` requests in flight at once. Returns the wall time of the run, after checking that
/// every request was answered.
pub fn probes_in_flight(count: u32) -> anyhow::Result<Duration> {
    let text = format!(
        r#"{{ "name": "probes", "nodes": {{
  "a": {{ "kind": "host", "interfaces": {{ "eth0": {{ "addresses": ["10.0.0.1/24"] }} }},
         "apps": [ {{ "kind": "ping", "to": "b", "count": 1 }},
                   {{ "kind": "ping", "to": "b", "count": {count}, "interval": "1ns", "start": "10ms" }} ] }},
  "b": {{ "kind": "host", "interfaces": {{ "eth0": {{ "addresses": ["10.0.0.2/24"] }} }} }} }},
  "links": [ {{ "a": "a:eth0", "b": "b:eth0", "impair": {{ "latency": "2ms" }} }} ] }}"#
    );
    let lab = topology::load_str(&text, "probes").map_err(|e| anyhow::anyhow!("the probe lab is invalid: {e}"))?;
    let opts = RunOptions { speed: runtime::Speed::Max, ..RunOptions::default() };
    let start = Instant::now();
    let r = runtime::run(&lab, &opts, &mut ())?;
    let wall = start.elapsed();
    // The first ping only resolves the neighbour, so that no request of the second waits for ARP.
    let answered = r.apps.iter().skip(1).find_map(|a| match a.outcome {
        crate::sim::apps::Outcome::Ping { sent, received, .. } => Some((sent, received)),
        _ => None,
    });
    anyhow::ensure!(answered == Some((count, count)), "not every probe was answered: {answered:?}");
    Ok(wall)
}

/// The cost of a probe as the number in flight grows: it should stay flat.
pub fn run_probes(out: &mut dyn Write) -> anyhow::Result<()> {
    writeln!(out, "ping: requests 1 ns apart across 2 ms each way, all in flight at once")?;
    writeln!(out, "{:>9} {:>9} {:>12} {:>10}", "requests", "wall s", "us/request", "vs 5000")?;
    let mut first = None;
    for n in [5_000u32, 10_000, 20_000, 40_000] {
        let wall = probes_in_flight(n)?;
        let per = wall.as_secs_f64() * 1e6 / f64::from(n);
        let base = *first.get_or_insert(per);
        writeln!(out, "{n:>9} {:>9.3} {per:>12.2} {:>10.2}", wall.as_secs_f64(), per / base)?;
    }
    Ok(())
}

/// How long each screen of the UI takes to draw with a full packet ring and over a thousand flows,
/// against an empty screen drawn in the same run: a lab of 1,000 hosts (each pinging a neighbour,
/// a transfer in each segment) runs in virtual time to fill them, then every screen is drawn `reps`
/// times at 160x48 on ratatui's `TestBackend`.
pub fn run_render(reps: u32, out: &mut dyn Write) -> anyhow::Result<()> {
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    use crate::ui::app::{App, Tab};
    use crate::ui::keymap::Action;
    use crate::ui::view::Screen;

    let lab = topology::load_str(&crate::bench_scale::scale_lab(1000, crate::bench_scale::PER_SWITCH), "render")
        .map_err(|e| anyhow::anyhow!("the render lab is invalid: {e}"))?;
    let opts = RunOptions { speed: runtime::Speed::Max, ..RunOptions::default() };
    let mut d = runtime::Driver::new(&lab, &opts)?;
    let (rx, _) = d.feed(1 << 20);
    let ended = d.run(&mut ());
    let mut app = App::new(&lab, d.seed(), runtime::Speed::Factor(1.0));
    app.on_snapshot(d.snapshot(), true);
    app.on_events(rx.try_iter());
    let _ = d.finish(ended);
    anyhow::ensure!(app.packets.len() == crate::ui::app::PACKET_RING, "the ring is full: {}", app.packets.len());
    anyhow::ensure!(app.flows.len() >= 1000, "a thousand flows: {}", app.flows.len());
    let empty = App::new(&lab, 1, runtime::Speed::Factor(1.0));
    let mut term = Terminal::new(TestBackend::new(160, 48))?;
    let mut time = |app: &App| -> anyhow::Result<Duration> {
        let start = Instant::now();
        for _ in 0..reps {
            term.draw(|f| f.render_widget(Screen(app), f.area()))?;
        }
        Ok(start.elapsed() / reps)
    };
    let base = time(&empty)?;
    writeln!(
        out,
        "render at 160x48: {} nodes, {} packets in the ring, {} flows; mean of {reps} frames",
        lab.nodes.len(),
        app.packets.len(),
        app.flows.len()
    )?;
    writeln!(out, "{:<12} {:>10} {:>10}", "screen", "ms/frame", "vs empty")?;
    writeln!(out, "{:<12} {:>10.3} {:>10.2}", "empty", base.as_secs_f64() * 1e3, 1.0)?;
    for (i, tab) in Tab::ALL.iter().enumerate() {
        app.update(Action::Tab(i));
        let t = time(&app)?;
        writeln!(
            out,
            "{:<12} {:>10.3} {:>10.2}",
            tab.title(),
            t.as_secs_f64() * 1e3,
            t.as_secs_f64() / base.as_secs_f64()
        )?;
    }
    Ok(())
}

/// CPU time of this process so far (user and system), from /proc (Linux); `None` elsewhere.
#[must_use]
pub fn cpu_time() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // Linux reports in USER_HZ, 100 a second on every architecture it runs on.
    Some(Duration::from_millis(ticks * 10))
}

/// The CPU an idle lab costs: two servers on a switch, paced at real time for `seconds`, with a UI
/// asking for a snapshot ten times a second as the terminal UI does.
pub fn run_idle(seconds: u64, out: &mut dyn Write) -> anyhow::Result<()> {
    let text = r#"{ "name": "idle", "nodes": {
  "sw": { "kind": "switch" },
  "a": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.1/24"] } }, "apps": [ { "kind": "tcp-sink", "port": 9 } ] },
  "b": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.2/24"] } }, "apps": [ { "kind": "udp-echo-server", "port": 7 } ] } },
  "links": [ { "a": "a:eth0", "b": "sw" }, { "a": "b:eth0", "b": "sw" } ] }"#;
    let lab = topology::load_str(text, "idle").map_err(|e| anyhow::anyhow!("the idle lab is invalid: {e}"))?;
    let opts = RunOptions {
        duration: Some(Duration::from_secs(seconds)),
        speed: runtime::Speed::Factor(1.0),
        keep_running: true,
        ..RunOptions::default()
    };
    let mut d = runtime::Driver::new(&lab, &opts)?;
    let ctl = d.control();
    let cpu0 = cpu_time();
    let wall0 = Instant::now();
    let ui = std::thread::spawn(move || {
        // As the UI does: a snapshot every 100 ms while the lab runs.
        while let Ok(()) = {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            ctl.send(runtime::Control::Snapshot(tx))
                .map_err(|_| ())
                .and_then(|()| rx.recv().map(|_| ()).map_err(|_| ()))
        } {
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let ended = d.run(&mut ());
    drop(d.finish(ended));
    let _ = ui.join();
    let wall = wall0.elapsed();
    match (cpu0, cpu_time()) {
        (Some(a), Some(b)) => {
            let cpu = b.saturating_sub(a);
            writeln!(
                out,
                "idle lab, paced at 1x for {:.1} s with snapshots at 10 Hz: {:.3} s of CPU ({:.2} % of a core)",
                wall.as_secs_f64(),
                cpu.as_secs_f64(),
                cpu.as_secs_f64() * 100.0 / wall.as_secs_f64()
            )?;
        }
        _ => writeln!(out, "idle lab: CPU time is read from /proc, which this system does not have")?,
    }
    Ok(())
}
