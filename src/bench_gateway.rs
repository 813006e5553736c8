//! The gateway bench (`cargo bench --bench gateway`, `netlab bench --gateway`): downloads from a
//! real HTTP server on loopback, directly (the baseline) and through the lab, measured in one run:
//! a forward into the lab, a router and an exit gateway back out in one process
//! (`labs/gateway-local.json`'s shape), and a forward, a UDP tunnel between two sites and a gateway
//! (`labs/remote-reach.json`'s shape). With `iperf3` on the machine, iperf3's TCP test runs the
//! same paths too.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};

use crate::bench_tunnel::free_port;
use crate::runtime::{self, CaptureChoice, Report, RunOptions};
use crate::sim::apps::{count_mismatch, fill_pattern};
use crate::topology::{self, Lab};
use crate::transport::Placement;

/// The longest a lab may take to start taking connections.
const UP_WITHIN: Duration = Duration::from_secs(15);

/// A real HTTP/1.0 server on loopback that answers `GET /N` with N bytes of the transfer pattern
/// (any other path: `bytes`), until dropped.
pub struct Server {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(bytes: u64) -> anyhow::Result<Server> {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        l.set_nonblocking(true)?;
        let addr = l.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((c, _)) => {
                        std::thread::spawn(move || {
                            let _ = serve(c, bytes);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Ok(Server { addr, stop, thread: Some(thread) })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut c: TcpStream, bytes: u64) -> std::io::Result<()> {
    c.set_nonblocking(false)?;
    c.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = c.read(&mut buf)?;
        if n == 0 || req.len() > 16 * 1024 {
            return Ok(());
        }
        req.extend_from_slice(&buf[..n]);
    }
    let asked = String::from_utf8_lossy(&req)
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.trim_start_matches('/').parse::<u64>().ok());
    let bytes = asked.unwrap_or(bytes);
    c.write_all(format!("HTTP/1.0 200 OK\r\nContent-Length: {bytes}\r\n\r\n").as_bytes())?;
    let mut chunk = vec![0u8; 256 * 1024];
    let mut sent = 0u64;
    while sent < bytes {
        let n = usize::try_from((bytes - sent).min(chunk.len() as u64)).unwrap_or(chunk.len());
        fill_pattern(&mut chunk[..n], sent);
        c.write_all(&chunk[..n])?;
        sent += n as u64;
    }
    c.shutdown(std::net::Shutdown::Write)
}

/// One GET of `bytes` from `addr`: the wall time of the body, checked byte for byte.
pub fn fetch(addr: SocketAddr, bytes: u64) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut c = TcpStream::connect(addr)?;
    c.set_read_timeout(Some(Duration::from_secs(60)))?;
    c.write_all(format!("GET /{bytes} HTTP/1.0\r\nHost: bench\r\n\r\n").as_bytes())?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut head = Vec::new();
    let mut body = 0u64;
    let mut bad = 0u64;
    loop {
        let n = c.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let data = &buf[..n];
        if head.len() < 4 || !head.windows(4).any(|w| w == b"\r\n\r\n") {
            head.extend_from_slice(data);
            let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
            let rest = head.split_off(end + 4);
            ensure!(head.starts_with(b"HTTP/1.0 200"), "{}", String::from_utf8_lossy(&head));
            bad += count_mismatch(&rest, body);
            body += rest.len() as u64;
            continue;
        }
        bad += count_mismatch(data, body);
        body += data.len() as u64;
    }
    let wall = start.elapsed();
    ensure!(body == bytes, "received {body} of {bytes} bytes");
    ensure!(bad == 0, "{bad} bytes differ from what was sent");
    Ok(wall)
}

/// The lab of a path: forwards on loopback port `forward` into host `client`, to
/// 10.99.0.1:`target`, for each pair of `ports`, through router `r1` to gateway `gw`, which maps
/// 10.99.0.0/24 onto 127.0.0.0/24. With `tunnel`, the router-to-gateway link is a UDP tunnel
/// between sites `one` (listening there) and `two`.
pub fn lab(ports: &[(u16, u16)], tunnel: Option<u16>) -> anyhow::Result<Lab> {
    let forwards: Vec<String> = ports
        .iter()
        .map(|(f, t)| format!(r#"{{ "listen": "127.0.0.1:{f}", "from": "client", "to": "10.99.0.1:{t}" }}"#))
        .collect();
    let forwards = forwards.join(", ");
    let (site_one, site_two, transport, sites) = match tunnel {
        None => ("", "", "", String::new()),
        Some(p) => (
            r#""site": "one","#,
            r#""site": "two","#,
            r#", "transport": "udp""#,
            format!(
                r#", "sites": {{ "one": {{ "listen": "127.0.0.1:{p}" }}, "two": {{ "connect": "127.0.0.1:{p}" }} }}"#
            ),
        ),
    };
    let text = format!(
        r#"{{
  "name": "gateway-bench",
  "nodes": {{
    "client": {{ "kind": "host", {site_one} "interfaces": {{ "eth0": {{ "addresses": ["10.0.1.10/24"], "gateways": ["10.0.1.1"] }} }} }},
    "r1": {{ "kind": "router", {site_one}
      "interfaces": {{ "lan": {{ "addresses": ["10.0.1.1/24"] }}, "edge": {{ "addresses": ["10.0.2.1/24"] }} }},
      "routes": [ {{ "to": "10.99.0.0/24", "via": "10.0.2.2" }} ] }},
    "gw": {{ "kind": "gateway", {site_two}
      "interfaces": {{ "eth0": {{ "addresses": ["10.0.2.2/24"], "gateways": ["10.0.2.1"] }} }},
      "exit": {{ "allow": ["10.99.0.0/24"], "map": {{ "10.99.0.0/24": "127.0.0.0/24" }} }} }}
  }},
  "links": [
    {{ "a": "client:eth0", "b": "r1:lan" }},
    {{ "a": "r1:edge", "b": "gw:eth0"{transport} }}
  ],
  "capture": {{ "enabled": false }},
  "forwards": [ {forwards} ]
  {sites}
}}"#
    );
    topology::load_str(&text, "gateway-bench").map_err(|e| anyhow::anyhow!("the gateway bench lab is invalid: {e}"))
}

/// A lab running in threads of this process (one per site), until dropped.
pub struct Running {
    stop: Arc<AtomicBool>,
    sites: Vec<std::thread::JoinHandle<anyhow::Result<Report>>>,
    key: Option<PathBuf>,
    /// Where each forward listens, in lab order.
    pub forwards: Vec<SocketAddr>,
}

impl Running {
    /// Starts `lab` (each of its sites in a driver of its own, as `--site` processes would be) and
    /// waits until its first forward answers (it must lead to a [`Server`]).
    pub fn start(lab: &Lab) -> anyhow::Result<Running> {
        let stop = Arc::new(AtomicBool::new(false));
        let forwards: Vec<SocketAddr> = lab.forwards.iter().map(|f| f.listen).collect();
        let forward = *forwards.first().context("the lab has no forward")?;
        let key = if lab.sites.len() > 1 {
            let p = std::env::temp_dir().join(format!("netlab-gateway-bench-{}.key", std::process::id()));
            std::fs::write(&p, crate::transport::secure::Psk::generate_hex()?)?;
            Some(p)
        } else {
            None
        };
        let placements: Vec<Placement> = if lab.sites.len() > 1 {
            (0..lab.sites.len()).map(Placement::Site).collect()
        } else {
            vec![Placement::All]
        };
        let sites = placements
            .into_iter()
            .map(|placement| {
                let lab = lab.clone();
                let opts = RunOptions {
                    placement,
                    key_file: key.clone(),
                    stop: Arc::clone(&stop),
                    capture: CaptureChoice::Off,
                    ..RunOptions::default()
                };
                std::thread::spawn(move || runtime::run(&lab, &opts, &mut ()))
            })
            .collect();
        let r = Running { stop, sites, key, forwards };
        let until = Instant::now() + UP_WITHIN;
        loop {
            if fetch(forward, 1024).is_ok() {
                return Ok(r);
            }
            ensure!(Instant::now() < until, "the lab did not answer on {forward} within {UP_WITHIN:?}");
            ensure!(!r.sites.iter().any(std::thread::JoinHandle::is_finished), "the lab stopped before it answered");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the lab and returns its reports.
    pub fn stop(mut self) -> Vec<anyhow::Result<Report>> {
        self.stop.store(true, Ordering::Relaxed);
        let sites = std::mem::take(&mut self.sites);
        sites
            .into_iter()
            .map(|t| t.join().map_err(|_| anyhow::anyhow!("a site's thread panicked")).and_then(|r| r))
            .collect()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in std::mem::take(&mut self.sites) {
            let _ = t.join();
        }
        if let Some(p) = &self.key {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Median MB/s of `reps` downloads of `bytes` from `addr`.
fn download(addr: SocketAddr, bytes: u64, reps: usize) -> anyhow::Result<f64> {
    let mut v = Vec::new();
    for _ in 0..reps {
        let wall = fetch(addr, bytes)?;
        v.push(bytes as f64 / wall.as_secs_f64() / 1e6);
    }
    v.sort_by(f64::total_cmp);
    Ok(v[v.len() / 2])
}

/// iperf3's TCP test to `port` for `secs`: Mbit/s received, or why not.
fn iperf3(port: u16, secs: u32) -> anyhow::Result<f64> {
    let out = std::process::Command::new("iperf3")
        .args(["-c", "127.0.0.1", "-p", &port.to_string(), "-t", &secs.to_string(), "-J"])
        .output()
        .context("iperf3 did not run")?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("iperf3's JSON")?;
    if let Some(e) = v.get("error").and_then(serde_json::Value::as_str) {
        bail!("iperf3: {e}");
    }
    v["end"]["sum_received"]["bits_per_second"].as_f64().map(|b| b / 1e6).context("no figure in iperf3's JSON")
}

/// An `iperf3 -s` on a port of its own, stopped when dropped.
struct Iperf3Server {
    child: std::process::Child,
    port: u16,
}

impl Iperf3Server {
    fn start() -> anyhow::Result<Iperf3Server> {
        let port = free_port()?;
        let child = std::process::Command::new("iperf3")
            .args(["-s", "-p", &port.to_string(), "-B", "127.0.0.1"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("iperf3 -s did not start")?;
        let until = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            ensure!(Instant::now() < until, "iperf3 -s did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Iperf3Server { child, port })
    }
}

impl Drop for Iperf3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn has_iperf3() -> bool {
    std::process::Command::new("iperf3").arg("--version").output().is_ok_and(|o| o.status.success())
}

/// Runs the bench and prints its table.
pub fn run_gateway(bytes: u64, reps: usize, out: &mut impl Write) -> anyhow::Result<()> {
    let server = Server::start(bytes)?;
    let iperf = if has_iperf3() { Some(Iperf3Server::start()?) } else { None };
    writeln!(out, "gateway bench: {} MiB downloads over HTTP/1.0, median of {reps}", bytes >> 20)?;
    let direct = download(server.addr, bytes, reps)?;
    let direct_iperf = iperf.as_ref().map(|s| iperf3(s.port, 3)).transpose()?;
    let mut rows = vec![("direct (baseline)", direct, direct_iperf)];
    for (what, tunnel) in [
        ("forward + router + gateway, one process", None),
        ("forward + UDP tunnel (encrypted) + gateway", Some(free_port()?)),
    ] {
        let mut ports = vec![(free_port()?, server.addr.port())];
        if let Some(s) = &iperf {
            ports.push((free_port()?, s.port));
        }
        let run = Running::start(&lab(&ports, tunnel)?)?;
        let http = download(run.forwards[0], bytes, reps);
        let tcp = run.forwards.get(1).map(|f| iperf3(f.port(), 3)).transpose();
        drop(run);
        rows.push((what, http?, tcp?));
    }
    writeln!(out, "{:<48} {:>10} {:>8}", "path", "MB/s", "ratio")?;
    for (what, v, _) in &rows {
        writeln!(out, "{what:<48} {v:>10.1} {:>8.3}", v / direct)?;
    }
    match direct_iperf {
        Some(base) => {
            writeln!(out, "\niperf3 TCP, 3 s each")?;
            writeln!(out, "{:<48} {:>10} {:>8}", "path", "Mbit/s", "ratio")?;
            for (what, _, v) in &rows {
                let v = v.unwrap_or(f64::NAN);
                writeln!(out, "{what:<48} {v:>10.1} {:>8.3}", v / base)?;
            }
        }
        None => writeln!(out, "\niperf3: not installed, skipped")?,
    }
    writeln!(
        out,
        "\nfor context, onetun's users report 2.4 MB/s through onetun against 20 MB/s direct (ratio 0.12, onetun issue #29)"
    )?;
    Ok(())
}
