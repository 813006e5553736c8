//! Port forwards and exit gateways end to end: real clients on 127.0.0.1 reach a forward's
//! listening socket, the flow crosses the lab (and, for `remote-reach`, a UDP tunnel between two
//! `netlab` processes) to an exit gateway, and the gateway dials a real server on 127.0.0.1 that
//! the test runs itself. Refused dials, destinations outside `exit.allow`, UDP flows and their
//! idle ends, and forwards given on the command line are each checked against what the real
//! client sees and what the report counts.
//!
//! Every process and server runs under a guard that stops it when dropped, whatever happened to
//! the test; every wait is bounded. Only [`shipped_gateway_local_lab`] uses fixed ports (those of
//! `labs/gateway-local.json`); every other lab is a copy written with free ports.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

mod common;

use common::{free_port, heavy, holds, new_key, path_str, sleep_ms, u, write_json};

/// The `netlab` binary built for these tests.
const BIN: &str = env!("CARGO_BIN_EXE_netlab");

const MIB: u64 = 1024 * 1024;

/// The longest any one `netlab` process of these tests may run (its `--duration`).
const PROCESS_LIMIT: &str = "150s";

fn say(line: &str) {
    // Straight to standard error, past the test harness's capture, so that it shows.
    let _ = writeln!(std::io::stderr(), "{line}");
}

// ---------------------------------------------------------------------------------------------
// netlab processes

/// A running `netlab` process: killed and reaped when dropped, whatever happened to the test.
struct Proc {
    name: String,
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
    report: PathBuf,
    status: Option<ExitStatus>,
}

impl Proc {
    /// `netlab run LAB --headless --report DIR/NAME.json EXTRA…`, its output to files in `dir`.
    /// With `key`, `NETLAB_KEY` is set for the tunnels.
    fn run(dir: &Path, name: &str, lab: &Path, extra: &[&str], key: Option<&str>) -> Proc {
        let report = dir.join(format!("{name}.json"));
        let stdout = dir.join(format!("{name}.stdout"));
        let stderr = dir.join(format!("{name}.stderr"));
        let mut c = Command::new(BIN);
        c.args(["run", path_str(lab), "--headless", "--report", path_str(&report)])
            .args(extra)
            .current_dir(common::root())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"));
        match key {
            Some(k) => c.env("NETLAB_KEY", k),
            None => c.env_remove("NETLAB_KEY"),
        };
        let child = c.spawn().expect("netlab starts");
        Proc { name: name.to_string(), child, stdout, stderr, report, status: None }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn running(&mut self) -> bool {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status.is_none()
    }

    /// Waits for the process to exit; fails the test (and kills it, on drop) after `limit`.
    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        while self.running() {
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {limit:?}; its standard error:\n{}",
                self.name,
                self.tail()
            );
            sleep_ms(20);
        }
        self.status.expect("exited")
    }

    /// SIGTERM, a clean stop (the summary is printed, the report written); waits for exit code 0.
    fn stop(&mut self) {
        assert!(self.running(), "{} ended before it was stopped:\n{}", self.name, self.tail());
        let ok = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().expect("kill");
        assert!(ok.success(), "kill -TERM {}", self.pid());
        let s = self.wait(Duration::from_secs(15));
        assert!(s.success(), "{} exited with {s:?} after SIGTERM:\n{}", self.name, self.tail());
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The last lines of standard error (without progress lines), for failure messages.
    fn tail(&self) -> String {
        let e = self.stderr();
        let lines: Vec<&str> = e.lines().filter(|l| !l.contains(" simulated, ")).collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Waits until standard error has a line containing `needle`.
    fn wait_for_stderr(&mut self, needle: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.stderr().contains(needle) {
            assert!(self.running(), "{} exited before saying {needle:?}:\n{}", self.name, self.tail());
            assert!(
                Instant::now() < deadline,
                "{} did not say {needle:?} within {limit:?}:\n{}",
                self.name,
                self.tail()
            );
            sleep_ms(20);
        }
    }

    fn report(&self) -> Value {
        let text = std::fs::read_to_string(&self.report)
            .unwrap_or_else(|e| panic!("{}'s report {}: {e}\n{}", self.name, self.report.display(), self.tail()));
        serde_json::from_str(&text).expect("the report is JSON")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A shipped lab, parsed.
fn shipped(name: &str) -> Value {
    let text = std::fs::read_to_string(common::root().join("labs").join(name)).expect("the shipped lab");
    serde_json::from_str(&text).expect("JSON")
}

/// `labs/gateway-local.json` with other forwards: the same client, router and gateway.
fn local_lab(name: &str, forwards: Value) -> Value {
    let mut lab = shipped("gateway-local.json");
    lab["name"] = json!(name);
    lab["forwards"] = forwards;
    lab
}

fn tcp_forward(listen: u16, to: &str) -> Value {
    json!({ "listen": format!("127.0.0.1:{listen}"), "from": "client", "to": to })
}

// ---------------------------------------------------------------------------------------------
// Reports

/// The bridge of `node` (a forward's host or a gateway) in a report.
fn bridge<'a>(r: &'a Value, node: &str) -> &'a Value {
    r["bridges"].as_array().expect("bridges").iter().find(|b| b["node"] == node).unwrap_or_else(|| {
        panic!("no bridge for {node}: {}", r["bridges"]);
    })
}

fn counter(r: &Value, node: &str, name: &str) -> u64 {
    let c = &bridge(r, node)["counters"];
    c[name].as_u64().unwrap_or_else(|| panic!("no counter {name} for {node}: {c}"))
}

/// The flows of `node`'s bridge of transport `proto`.
fn flows<'a>(r: &'a Value, node: &str, proto: &str) -> Vec<&'a Value> {
    bridge(r, node)["flows"].as_array().expect("flows").iter().filter(|f| f["proto"] == proto).collect()
}

fn bridge_log(r: &Value) -> Vec<String> {
    r["bridge_log"].as_array().expect("bridge_log").iter().map(|l| l.as_str().expect("a line").to_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// Pseudo-random bodies

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Bytes `start..start + buf.len()` of body `seed` (`start` a multiple of 8).
fn fill(seed: u64, start: u64, buf: &mut [u8]) {
    debug_assert_eq!(start % 8, 0);
    let base = start / 8;
    for (k, chunk) in buf.chunks_mut(8).enumerate() {
        let w = splitmix(seed.wrapping_mul(0xA24B_AED4_963E_E407) ^ (base + k as u64));
        chunk.copy_from_slice(&w.to_le_bytes()[..chunk.len()]);
    }
}

/// Body `seed`, `len` bytes, each 64 KiB piece handed to `sink` in turn.
fn each_piece(seed: u64, len: u64, mut sink: impl FnMut(&[u8]) -> bool) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = 0;
    while at < len {
        let n = usize::try_from((len - at).min(buf.len() as u64)).expect("fits");
        fill(seed, at, &mut buf[..n]);
        if !sink(&buf[..n]) {
            return;
        }
        at += n as u64;
    }
}

fn body(seed: u64, len: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(usize::try_from(len).expect("fits"));
    each_piece(seed, len, |p| {
        v.extend_from_slice(p);
        true
    });
    v
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn body_sha256(seed: u64, len: u64) -> String {
    let mut h = Sha256::new();
    each_piece(seed, len, |p| {
        h.update(p);
        true
    });
    hex(&h.finalize())
}

// ---------------------------------------------------------------------------------------------
// A real HTTP server and client

/// The response header the server writes before a body of `len` bytes.
fn response_header(len: u64) -> String {
    format!("HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")
}

/// A minimal HTTP/1.0 server on a real socket, in threads of the test: `GET /` is the page it was
/// given; `GET /gen/SEED/LEN` is body SEED of LEN pseudo-random bytes, made as it is sent. Stops
/// (and joins its threads) when dropped.
struct HttpServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Each request's head, as it arrived.
    requests: Arc<Mutex<Vec<Vec<u8>>>>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl HttpServer {
    fn bind(addr: &str, page: Vec<u8>) -> HttpServer {
        let l =
            TcpListener::bind(addr).unwrap_or_else(|e| panic!("the test's HTTP server cannot listen on {addr}: {e}"));
        l.set_nonblocking(true).expect("nonblocking");
        let addr = l.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let threads: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::new(Mutex::new(Vec::new()));
        let page = Arc::new(page);
        let (s, r, t) = (Arc::clone(&stop), Arc::clone(&requests), Arc::clone(&threads));
        let acceptor = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((stream, _)) => {
                        let (s, r, page) = (Arc::clone(&s), Arc::clone(&r), Arc::clone(&page));
                        let h = std::thread::spawn(move || serve_http(stream, &s, &r, &page));
                        t.lock().expect("threads").push(h);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => sleep_ms(2),
                    Err(_) => sleep_ms(10),
                }
            }
        });
        HttpServer { addr, stop, requests, threads, acceptor: Some(acceptor) }
    }

    fn requests(&self) -> Vec<Vec<u8>> {
        self.requests.lock().expect("requests").clone()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for t in threads {
            let _ = t.join();
        }
    }
}

/// One connection: reads the request head, answers, closes gracefully.
fn serve_http(mut stream: TcpStream, stop: &AtomicBool, requests: &Mutex<Vec<Vec<u8>>>, page: &[u8]) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(20);
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if stop.load(Ordering::Relaxed) || Instant::now() > deadline || head.len() > 16 * 1024 {
            return;
        }
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
    requests.lock().expect("requests").push(head.clone());
    let line = String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_string();
    let path = line.split_whitespace().nth(1).unwrap_or_default().to_string();
    let gen: Option<(u64, u64)> = path.strip_prefix("/gen/").and_then(|rest| {
        let (s, l) = rest.split_once('/')?;
        Some((s.parse().ok()?, l.parse().ok()?))
    });
    let ok = match (path.as_str(), gen) {
        ("/", _) => {
            stream.write_all(response_header(page.len() as u64).as_bytes()).and_then(|()| stream.write_all(page))
        }
        (_, Some((seed, len))) => {
            let mut r = stream.write_all(response_header(len).as_bytes());
            each_piece(seed, len, |p| {
                if r.is_ok() {
                    r = if stop.load(Ordering::Relaxed) {
                        Err(std::io::Error::other("stopping"))
                    } else {
                        stream.write_all(p)
                    };
                }
                r.is_ok()
            });
            r
        }
        _ => stream.write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    };
    if ok.is_ok() {
        // A graceful close: FIN, then wait (bounded) for the client to close its side.
        let _ = stream.shutdown(Shutdown::Write);
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
    }
}

/// What a GET got: the status code, the `Content-Length` said, and the body's length.
#[derive(Debug)]
struct Got {
    status: u16,
    content_length: Option<u64>,
    received: u64,
}

/// A minimal HTTP/1.0 GET of `path` from `addr`; the body goes to `sink` as it arrives. Each read
/// may wait `timeout`.
fn http_get(addr: SocketAddr, path: &str, timeout: Duration, mut sink: impl FnMut(&[u8])) -> std::io::Result<Got> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: netlab-test\r\n\r\n").as_bytes())?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut head = Vec::new();
    let end = loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed before the response head"));
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if head.len() > 16 * 1024 {
            return Err(std::io::Error::other("response head too long"));
        }
    };
    let text = String::from_utf8_lossy(&head[..end]).to_string();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let content_length = text
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
        .and_then(|v| v.parse().ok());
    let mut received = (head.len() - end) as u64;
    sink(&head[end..]);
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        received += n as u64;
        sink(&buf[..n]);
    }
    Ok(Got { status, content_length, received })
}

/// GETs `/gen/SEED/LEN` and checks the body byte for byte.
fn get_and_check(addr: SocketAddr, seed: u64, len: u64, timeout: Duration) -> Result<(), String> {
    let mut got_body = Vec::new();
    let got = http_get(addr, &format!("/gen/{seed}/{len}"), timeout, |b| got_body.extend_from_slice(b))
        .map_err(|e| format!("GET /gen/{seed}/{len}: {e}"))?;
    if got.status != 200 || got.content_length != Some(len) || got.received != len {
        return Err(format!("GET /gen/{seed}/{len}: {got:?}"));
    }
    if got_body != body(seed, len) {
        return Err(format!("GET /gen/{seed}/{len}: the body differs"));
    }
    Ok(())
}

/// Retries a small GET through `addr` until one succeeds: the forward listens before the lab (or
/// its tunnel) is up.
fn wait_ready(addr: SocketAddr, limit: Duration, p: &mut Proc) -> u32 {
    let deadline = Instant::now() + limit;
    let mut tries = 0;
    loop {
        tries += 1;
        match get_and_check(addr, 1, 1000, Duration::from_secs(3)) {
            Ok(()) => return tries,
            Err(e) => {
                say(&format!("not ready after {:?}: {e}", deadline - Instant::now()));
                assert!(p.running(), "{} exited:\n{}", p.name, p.tail());
                assert!(Instant::now() < deadline, "no answer through {addr} within {limit:?}: {e}\n{}", p.tail());
                sleep_ms(200);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A real UDP echo server

/// Echoes every datagram back to its sender, on a real socket, until dropped. Remembers the
/// sources it heard from.
struct UdpEcho {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    sources: Arc<Mutex<Vec<SocketAddr>>>,
    thread: Option<JoinHandle<()>>,
}

impl UdpEcho {
    fn bind(addr: &str) -> UdpEcho {
        let s = UdpSocket::bind(addr).unwrap_or_else(|e| panic!("the test's UDP echo cannot bind {addr}: {e}"));
        s.set_read_timeout(Some(Duration::from_millis(20))).expect("timeout");
        let addr = s.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let sources = Arc::new(Mutex::new(Vec::new()));
        let (st, so) = (Arc::clone(&stop), Arc::clone(&sources));
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while !st.load(Ordering::Relaxed) {
                if let Ok((n, from)) = s.recv_from(&mut buf) {
                    so.lock().expect("sources").push(from);
                    let _ = s.send_to(&buf[..n], from);
                }
            }
        });
        UdpEcho { addr, stop, sources, thread: Some(thread) }
    }

    fn sources(&self) -> Vec<SocketAddr> {
        self.sources.lock().expect("sources").clone()
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sends `msg` from `sock` to `to` and waits for the same bytes back, sending again every 500 ms
/// (the first datagram of a flow may wait on ARP in the lab); fails after `tries`.
fn udp_exchange(sock: &UdpSocket, to: SocketAddr, msg: &[u8], tries: u32) -> Result<u32, String> {
    sock.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
    let mut buf = [0u8; 65536];
    for attempt in 1..=tries {
        sock.send_to(msg, to).map_err(|e| format!("send: {e}"))?;
        let until = Instant::now() + Duration::from_millis(500);
        while Instant::now() < until {
            match sock.recv_from(&mut buf) {
                Ok((n, from)) if from == to && &buf[..n] == msg => return Ok(attempt),
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
    Err(format!("no echo of {:?} through {to} after {tries} tries", String::from_utf8_lossy(msg)))
}

/// `labs/remote-reach.json` as two processes, one per site, on free ports: `hq` edits the lab
/// for site hq (given the port its forwards may listen on), `branch` edits it further for the
/// branch (each machine runs its own copy of the lab file). Returns once the tunnel is up and hq's
/// clock runs.
fn remote_reach(
    dir: &Path,
    key: &str,
    hq_edit: impl Fn(&mut Value, u16),
    branch_edit: impl Fn(&mut Value),
    hq_extra: &[&str],
    branch_extra: &[&str],
) -> (Proc, Proc, u16) {
    let (hq_lab, branch_lab) = (dir.join("hq-lab.json"), dir.join("branch-lab.json"));
    let hq_args = [&["--site", "hq", "--duration", PROCESS_LIMIT], hq_extra].concat();
    for _ in 0..5 {
        let (tunnel, fwd) = (free_port(), free_port());
        let mut lab = shipped("remote-reach.json");
        lab["sites"]["hq"]["listen"] = json!(format!("127.0.0.1:{tunnel}"));
        lab["sites"]["branch"]["connect"] = json!(format!("127.0.0.1:{tunnel}"));
        hq_edit(&mut lab, fwd);
        write_json(&hq_lab, &lab);
        branch_edit(&mut lab);
        write_json(&branch_lab, &lab);
        let mut hq = Proc::run(dir, "hq", &hq_lab, &hq_args, Some(key));
        let deadline = Instant::now() + Duration::from_secs(20);
        while hq.running() && !(holds(hq.pid(), "udp", tunnel) && holds(hq.pid(), "tcp", fwd)) {
            assert!(Instant::now() < deadline, "hq does not listen:\n{}", hq.tail());
            sleep_ms(20);
        }
        if !hq.running() {
            let e = hq.stderr();
            assert!(e.contains("cannot listen"), "hq exited before listening:\n{e}");
            continue;
        }
        let branch_args = [&["--site", "branch", "--duration", PROCESS_LIMIT], branch_extra].concat();
        let mut branch = Proc::run(dir, "branch", &branch_lab, &branch_args, Some(key));
        // A site drops what its forwards say while it waits for its peer (a connection accepted
        // then is never carried), so the first request waits until hq's clock runs.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !hq.stderr().contains("tunnel hq<->branch (udp): up with 127.0.0.1:") {
            assert!(branch.running(), "branch exited:\n{}", branch.tail());
            assert!(hq.running(), "hq exited:\n{}", hq.tail());
            assert!(Instant::now() < deadline, "the tunnel is not up:\nhq:\n{}\nbranch:\n{}", hq.tail(), branch.tail());
            sleep_ms(20);
        }
        sleep_ms(300);
        return (hq, branch, fwd);
    }
    panic!("no free ports for hq after 5 tries");
}

// ---------------------------------------------------------------------------------------------
// Tests

/// The shipped `labs/gateway-local.json`, ports as written (127.0.0.1:18080 and :18081 must be
/// free): curl through 127.0.0.1:18080 gets the
/// page a real server on 127.0.0.1:18081 serves; a datagram through the UDP forward comes back
/// from a real echo there. The report lists one TCP flow at the forward and one at the gateway,
/// each with the request's and the response's bytes; the capture shows the lab's side.
#[test]
fn shipped_gateway_local_lab() {
    let _heavy = heavy();
    let lab = common::root().join("labs/gateway-local.json");
    let (fwd_port, srv_port) = (18080, 18081);
    let page: Vec<u8> = {
        let mut p = b"<html><body><h1>behind the gateway</h1>\n".to_vec();
        p.extend((0..20_000u32).map(|i| b'a' + u8::try_from(i % 26).expect("fits")));
        p.extend_from_slice(b"\n</body></html>\n");
        p
    };
    let server = HttpServer::bind(&format!("127.0.0.1:{srv_port}"), page.clone());
    let echo = UdpEcho::bind(&format!("127.0.0.1:{srv_port}"));
    let dir = tempfile::tempdir().expect("tempdir");
    let pcap = dir.path().join("lab.pcapng");
    let mut p =
        Proc::run(dir.path(), "local", &lab, &["--duration", PROCESS_LIMIT, "--capture", path_str(&pcap)], None);
    let forward = format!("127.0.0.1:{fwd_port} → client → 10.99.0.1:{srv_port}");
    p.wait_for_stderr(&format!("bridge: forward tcp {forward} listening"), Duration::from_secs(20));
    p.wait_for_stderr(&format!("bridge: forward udp {forward} listening"), Duration::from_secs(5));
    let fwd: SocketAddr = format!("127.0.0.1:{fwd_port}").parse().expect("addr");

    // One GET, by curl if it is installed, else by the test's own client.
    if common::tool("curl") {
        let out = dir.path().join("page");
        let start = Instant::now();
        let r = Command::new("curl")
            .args(["-sS", "--max-time", "20", "-o", path_str(&out), &format!("http://{fwd}/")])
            .output()
            .expect("curl runs");
        assert!(r.status.success(), "curl failed: {r:?}\n{}", p.tail());
        assert_eq!(std::fs::read(&out).expect("curl wrote the page"), page, "curl got another page");
        say(&format!("shipped_gateway_local_lab: curl got {} bytes in {:?}", page.len(), start.elapsed()));
    } else {
        let mut got = Vec::new();
        let g =
            http_get(fwd, "/", Duration::from_secs(20), |b| got.extend_from_slice(b)).expect("GET through the forward");
        assert_eq!((g.status, g.received), (200, page.len() as u64), "{g:?}");
        assert_eq!(got, page);
    }
    let client = UdpSocket::bind("127.0.0.1:0").expect("bind");
    udp_exchange(&client, fwd, b"a datagram through gateway-local", 10).unwrap_or_else(|e| panic!("{e}\n{}", p.tail()));
    // Let the flow's close cross both sides before the report is taken.
    sleep_ms(500);
    p.stop();

    let requests = server.requests();
    assert_eq!(requests.len(), 1, "one request reached the real server");
    assert!(requests[0].starts_with(b"GET / HTTP/1."), "{:?}", String::from_utf8_lossy(&requests[0]));
    let (req, resp) = (requests[0].len() as u64, response_header(page.len() as u64).len() as u64 + page.len() as u64);
    let sources = echo.sources();
    assert!(!sources.is_empty() && sources.iter().all(|s| s.ip().is_loopback()), "{sources:?}");

    let r = p.report();
    let (listen, to) = (fwd.to_string(), format!("10.99.0.1:{srv_port}"));
    assert_eq!(
        r["forwards"],
        json!([
            { "proto": "tcp", "listen": listen, "from": "client", "to": to },
            { "proto": "udp", "listen": listen, "from": "client", "to": to },
        ])
    );
    assert_eq!(bridge(&r, "client")["kind"], "forward");
    assert_eq!(bridge(&r, "gw")["kind"], "gateway");
    let (f, g) = (flows(&r, "client", "tcp"), flows(&r, "gw", "tcp"));
    assert_eq!((f.len(), g.len()), (1, 1), "one TCP flow each side:\n{}", r["bridges"]);
    let (f, g) = (f[0], g[0]);
    assert_eq!(f["role"], "forward", "{f}");
    assert_eq!(g["role"], "exit", "{g}");
    assert_eq!(f["lab_dst"], json!(to), "{f}");
    assert!(f["lab_src"].as_str().expect("lab_src").starts_with("10.0.1.10:"), "{f}");
    assert!(f["real"].as_str().expect("real").starts_with("127.0.0.1:"), "{f}");
    assert_eq!(
        (&g["lab_src"], &g["lab_dst"], &g["real"]),
        (&f["lab_src"], &f["lab_dst"], &json!(format!("127.0.0.1:{srv_port}"))),
        "{g}"
    );
    // In: from the real side into the lab. The forward took the request from curl and gave back
    // the response; the gateway took the response from the server and gave it the request.
    assert_eq!((u(&f["bytes_in"]), u(&f["bytes_out"])), (req, resp), "forward flow {f}");
    assert_eq!((u(&g["bytes_in"]), u(&g["bytes_out"])), (resp, req), "gateway flow {g}");
    assert!(!f["ended"].is_null() && !g["ended"].is_null(), "both flows ended: {f}\n{g}");
    assert_eq!(counter(&r, "gw", "dials"), 2, "a TCP dial and a UDP one: {}", bridge(&r, "gw")["counters"]);
    for c in ["dials_refused", "dials_timed_out", "denied", "resets", "dropped"] {
        assert_eq!(counter(&r, "gw", c), 0, "{c}: {}", bridge(&r, "gw")["counters"]);
    }
    let (fu, gu) = (flows(&r, "client", "udp"), flows(&r, "gw", "udp"));
    assert_eq!((fu.len(), gu.len()), (1, 1), "one UDP flow each side:\n{}", r["bridges"]);
    assert_eq!(gu[0]["real"], json!(echo.addr.to_string()), "{}", gu[0]);
    assert_eq!(u(&fu[0]["bytes_in"]), u(&gu[0]["bytes_out"]), "{}\n{}", fu[0], gu[0]);
    assert_eq!(u(&fu[0]["bytes_out"]), u(&gu[0]["bytes_in"]), "{}\n{}", fu[0], gu[0]);
    let summary = p.stdout();
    assert!(summary.contains("real sockets"), "{summary}");
    assert!(summary.contains(&format!("forward tcp {forward}")), "{summary}");

    // The lab's side of it, in the capture.
    if common::tool("tshark") {
        let file = path_str(&pcap);
        let syn = format!(
            "tcp.flags.syn == 1 && tcp.flags.ack == 0 && ip.src == 10.0.1.10 && ip.dst == 10.99.0.1 \
             && tcp.dstport == {srv_port}"
        );
        assert!(common::count(&pcap, &syn) >= 1, "no SYN to {to} in the capture");
        let response = format!(
            "http.response.code == 200 && ip.src == 10.99.0.1 && ip.dst == 10.0.1.10 && http.content_length == {}",
            page.len()
        );
        let http = format!("tcp.port=={srv_port},http");
        let lines = common::tshark(&["-2", "-r", file, "-d", &http, "-Y", &response]);
        assert!(lines.lines().count() >= 1, "no HTTP response from 10.99.0.1 in the capture");
        let udp = format!("udp && ip.src == 10.0.1.10 && ip.dst == 10.99.0.1 && udp.dstport == {srv_port}");
        assert!(common::count(&pcap, &udp) >= 1, "no datagram to {to} in the capture");
    }
}

/// `remote-reach` across two processes, one per site, joined by an encrypted UDP tunnel: 100 MiB
/// from a real server behind the branch's gateway arrives whole through hq's forward (SHA-256),
/// then 50 GETs at once all get their own bodies.
#[test]
fn remote_reach_across_two_processes() {
    let _heavy = heavy();
    let dir = tempfile::tempdir().expect("tempdir");
    let key = new_key();
    let server = HttpServer::bind("127.0.0.1:0", Vec::new());
    let server_port = server.addr.port();
    let (mut hq, mut branch, fwd) = remote_reach(
        dir.path(),
        &key,
        |lab, fwd| {
            lab["forwards"][0]["listen"] = json!(format!("127.0.0.1:{fwd}"));
            lab["forwards"][0]["to"] = json!(format!("10.99.0.1:{server_port}"));
        },
        |_| {},
        &["--no-capture"],
        &["--no-capture"],
    );
    let fwd: SocketAddr = format!("127.0.0.1:{fwd}").parse().expect("addr");
    let tries = wait_ready(fwd, Duration::from_secs(30), &mut hq);
    let ready = server.requests().len() as u64;

    // 100 MiB, pseudo-random, checked by its SHA-256.
    const BIG: u64 = 100 * MIB;
    let want = body_sha256(7, BIG);
    let start = Instant::now();
    let mut h = Sha256::new();
    let got = http_get(fwd, &format!("/gen/7/{BIG}"), Duration::from_secs(30), |b| h.update(b)).unwrap_or_else(|e| {
        panic!("100 MiB GET through the forward: {e}\nhq:\n{}\nbranch:\n{}", hq.tail(), branch.tail())
    });
    let secs = start.elapsed().as_secs_f64();
    assert_eq!((got.status, got.content_length, got.received), (200, Some(BIG), BIG), "{got:?}");
    assert_eq!(hex(&h.finalize()), want, "the 100 MiB body arrived changed");
    assert!(secs < 120.0, "100 MiB took {secs:.1} s");

    // 50 at once, each its own body.
    let start = Instant::now();
    let gets: Vec<JoinHandle<Result<(), String>>> = (0..50u64)
        .map(|i| std::thread::spawn(move || get_and_check(fwd, 100 + i, 20_000 + i * 997, Duration::from_secs(30))))
        .collect();
    let failed: Vec<String> = gets.into_iter().filter_map(|t| t.join().expect("a GET thread").err()).collect();
    let parallel = start.elapsed().as_secs_f64();
    assert!(
        failed.is_empty(),
        "{} of 50 GETs failed: {failed:?}\nhq:\n{}\nbranch:\n{}",
        failed.len(),
        hq.tail(),
        branch.tail()
    );
    assert_eq!(server.requests().len() as u64, ready + 51, "every GET reached the real server once");

    sleep_ms(300);
    hq.stop();
    branch.stop();
    let (h, b) = (hq.report(), branch.report());
    // Each connection through the forward is one flow at hq, one dial and flow at the branch, and
    // one request at the real server.
    let flows_total = ready + 51;
    assert_eq!(counter(&h, "laptop", "flows"), flows_total, "{}", bridge(&h, "laptop")["counters"]);
    assert_eq!(counter(&b, "exit", "flows"), flows_total, "{}", bridge(&b, "exit")["counters"]);
    assert_eq!(counter(&b, "exit", "dials"), flows_total, "{}", bridge(&b, "exit")["counters"]);
    // 50 SYNs from one lab address at once pass `max_pending_per_source` (16): some wait for their
    // retransmission (`pending_full`), none is refused.
    for c in ["dials_refused", "dials_timed_out", "denied", "resets", "flows_full", "dropped"] {
        assert_eq!(counter(&b, "exit", c), 0, "{c}: {}", bridge(&b, "exit")["counters"]);
    }
    assert_eq!(counter(&h, "laptop", "resets"), 0, "{}", bridge(&h, "laptop")["counters"]);
    // Each process runs its own half: the forward at hq, the gateway at the branch.
    assert!(h["bridges"].as_array().expect("bridges").iter().all(|x| x["node"] != "exit"), "{}", h["bridges"]);
    assert!(b["bridges"].as_array().expect("bridges").iter().all(|x| x["node"] != "laptop"), "{}", b["bridges"]);
    assert_eq!(h["forwards"].as_array().expect("forwards").len(), 1, "{}", h["forwards"]);
    assert_eq!(b["forwards"], json!([]), "{}", b["forwards"]);
    say(&format!(
        "remote_reach_across_two_processes: ready after {tries} GET(s); 100 MiB in {secs:.2} s ({:.1} MiB/s); \
         50 parallel GETs in {parallel:.2} s; tunnel frames hq could not take: {}",
        100.0 / secs,
        h["tunnels"][0]["rx_dropped"]
    ));
}

/// A forward to a port where no real server listens: the gateway's dial is refused, the lab client
/// gets a reset, and so does the real client, at once. The gateway counts each refused dial.
#[test]
fn refused_dial_resets_the_real_client() {
    let _heavy = heavy();
    let dir = tempfile::tempdir().expect("tempdir");
    let (fwd, closed) = (free_port(), free_port());
    let lab_path = dir.path().join("lab.json");
    write_json(&lab_path, &local_lab("refused", json!([tcp_forward(fwd, &format!("10.99.0.1:{closed}"))])));
    let mut p = Proc::run(dir.path(), "refused", &lab_path, &["--no-capture", "--duration", PROCESS_LIMIT], None);
    p.wait_for_stderr("listening", Duration::from_secs(20));
    let addr: SocketAddr = format!("127.0.0.1:{fwd}").parse().expect("addr");

    let mut attempts = 0;
    for _ in 0..2 {
        attempts += 1;
        let start = Instant::now();
        let r = http_get(addr, "/", Duration::from_secs(5), |_| {});
        let took = start.elapsed();
        let e = r.expect_err("a GET to a closed port cannot succeed");
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "the real client sees a reset: {e}\n{}", p.tail());
        assert!(took < Duration::from_secs(2), "the reset took {took:?}");
    }
    if common::tool("curl") {
        attempts += 1;
        let start = Instant::now();
        let r = Command::new("curl")
            .args(["-sS", "--max-time", "10", "-o", "/dev/null", &format!("http://{addr}/")])
            .output()
            .expect("curl runs");
        let took = start.elapsed();
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(56), "curl sees a reset (exit 56): {err}");
        assert!(err.contains("reset by peer"), "{err}");
        assert!(took < Duration::from_secs(2), "the reset took {took:?}");
    }
    sleep_ms(200);
    p.stop();
    let r = p.report();
    assert_eq!(counter(&r, "gw", "dials"), attempts, "{}", bridge(&r, "gw")["counters"]);
    assert_eq!(counter(&r, "gw", "dials_refused"), attempts, "{}", bridge(&r, "gw")["counters"]);
    assert_eq!(counter(&r, "gw", "flows"), 0, "{}", bridge(&r, "gw")["counters"]);
    let f = flows(&r, "client", "tcp");
    assert_eq!(f.len() as u64, attempts, "{}", r["bridges"]);
    assert!(f.iter().all(|f| f["state"] == "refused"), "{f:?}");
}

/// A destination the gateway does not let out. `check` takes a forward's target only if some
/// gateway allows it, so the two sites' copies of `remote-reach` differ, as two machines' files
/// may: hq's lets 10.99.0.0/24 out, the branch's (which runs the gateway) only 10.99.0.1/32. A
/// TCP connection to 10.99.0.2 is reset at once and a datagram is answered with ICMP
/// administratively prohibited, inside the lab; a real listener where 10.99.0.2 maps to
/// (127.0.0.2) hears nothing; the gateway counts and logs the refusals.
#[test]
fn destination_outside_exit_allow_is_refused() {
    let _heavy = heavy();
    let dir = tempfile::tempdir().expect("tempdir");
    let key = new_key();
    // The trap: TCP and UDP on 127.0.0.2, one port.
    let (trap, trap_udp) = (0..100)
        .find_map(|_| {
            let t = TcpListener::bind("127.0.0.2:0").ok()?;
            let u = UdpSocket::bind(("127.0.0.2", t.local_addr().ok()?.port())).ok()?;
            Some((t, u))
        })
        .expect("a port free on 127.0.0.2");
    trap.set_nonblocking(true).expect("nonblocking");
    trap_udp.set_nonblocking(true).expect("nonblocking");
    let port = trap.local_addr().expect("addr").port();
    let pcap = dir.path().join("branch.pcapng");
    let (mut hq, mut branch, fwd) = remote_reach(
        dir.path(),
        &key,
        |lab, fwd| {
            let to = format!("10.99.0.2:{port}");
            let listen = format!("127.0.0.1:{fwd}");
            lab["forwards"] = json!([
                { "listen": listen, "from": "laptop", "to": to },
                { "listen": listen, "from": "laptop", "to": to, "proto": "udp" },
            ]);
        },
        |lab| {
            lab["nodes"]["exit"]["exit"]["allow"] = json!(["10.99.0.1/32"]);
            // The forwards run at hq; the branch's copy has none (it could not name 10.99.0.2).
            lab["forwards"] = json!([]);
        },
        &["--no-capture"],
        &["--capture", path_str(&pcap)],
    );
    let fwd: SocketAddr = format!("127.0.0.1:{fwd}").parse().expect("addr");

    let mut tcp_attempts = 0;
    for _ in 0..2 {
        tcp_attempts += 1;
        let start = Instant::now();
        let e = http_get(fwd, "/", Duration::from_secs(5), |_| {}).expect_err("a refused destination cannot answer");
        let took = start.elapsed();
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "the real client sees a reset: {e}\n{}", hq.tail());
        assert!(took < Duration::from_secs(2), "the reset took {took:?}");
    }
    if common::tool("curl") {
        tcp_attempts += 1;
        let r = Command::new("curl")
            .args(["-sS", "--max-time", "10", "-o", "/dev/null", &format!("http://{fwd}/")])
            .output()
            .expect("curl runs");
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(56), "curl sees a reset (exit 56): {err}");
    }
    let client = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let e = udp_exchange(&client, fwd, b"to a destination the gateway refuses", 2);
    assert!(e.is_err(), "a refused datagram came back: {e:?}");

    // Nothing reached the real listener where 10.99.0.2 maps.
    let until = Instant::now() + Duration::from_millis(1500);
    let mut buf = [0u8; 2048];
    while Instant::now() < until {
        match trap.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("the gateway dialled a destination it does not allow: {other:?}"),
        }
        match trap_udp.recv_from(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("the gateway sent to a destination it does not allow: {other:?}"),
        }
        sleep_ms(20);
    }
    hq.stop();
    branch.stop();
    let (h, b) = (hq.report(), branch.report());
    let counters = &bridge(&b, "exit")["counters"];
    // Two datagrams (the exchange's two tries) and every SYN, retransmissions aside.
    assert!(counter(&b, "exit", "denied") >= tcp_attempts + 2, "{counters}");
    for c in ["dials", "flows", "dials_refused"] {
        assert_eq!(counter(&b, "exit", c), 0, "{c}: {counters}");
    }
    let log = bridge_log(&b);
    let refused: Vec<&String> = log.iter().filter(|l| l.contains("exit refused")).collect();
    assert!(!refused.is_empty(), "no `exit refused` line: {log:?}");
    assert!(
        refused[0].starts_with("exit refused tcp 10.20.1.10:")
            && refused[0].contains(&format!("→ 10.99.0.2:{port}: not in exit.allow")),
        "{log:?}"
    );
    assert!(branch.stderr().contains("bridge: exit refused tcp 10.20.1.10:"), "{}", branch.tail());
    // At hq, the lab's side of each TCP flow was refused.
    let f = flows(&h, "laptop", "tcp");
    assert_eq!(f.len() as u64, tcp_attempts, "{}", h["bridges"]);
    assert!(f.iter().all(|f| f["state"] == "refused"), "{f:?}");
    // The gateway's answers, in the lab at the branch: a reset for each SYN, ICMP administratively
    // prohibited (type 3, code 13) for each datagram.
    if common::tool("tshark") {
        let rst =
            format!("tcp.flags.reset == 1 && ip.src == 10.99.0.2 && tcp.srcport == {port} && ip.dst == 10.20.1.10");
        assert!(common::count(&pcap, &rst) >= 1, "no reset from 10.99.0.2 in the branch's capture");
        let prohibited = "icmp.type == 3 && icmp.code == 13 && ip.src == 10.99.0.2 && ip.dst == 10.20.1.10";
        assert!(common::count(&pcap, prohibited) >= 1, "no ICMP administratively prohibited in the branch's capture");
    }
}

/// UDP through a forward (idle after 1 s) and the gateway (idle after 1 s): two real client
/// sockets are two flows each side, every datagram comes back from a real echo server; once idle,
/// the flows end on both sides, and a datagram after that opens a new flow that is answered too. A
/// datagram to a real port where nothing listens ends the gateway's flow as refused by the real
/// side.
#[test]
fn udp_forward_flows_and_idle_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let echo = UdpEcho::bind("127.0.0.1:0");
    let (fwd, fwd_closed, closed) = (free_port(), free_port(), free_port());
    let mut lab = local_lab(
        "udp",
        json!([
            { "listen": format!("127.0.0.1:{fwd}"), "from": "client", "to": format!("10.99.0.1:{}", echo.addr.port()),
              "proto": "udp", "udp_idle": "1s" },
            { "listen": format!("127.0.0.1:{fwd_closed}"), "from": "client", "to": format!("10.99.0.1:{closed}"),
              "proto": "udp", "udp_idle": "1s" },
        ]),
    );
    lab["nodes"]["gw"]["exit"]["udp_idle"] = json!("1s");
    let lab_path = dir.path().join("lab.json");
    write_json(&lab_path, &lab);
    let capture = dir.path().join("udp.pcapng");
    let cap = capture.to_string_lossy().to_string();
    let mut p = Proc::run(dir.path(), "udp", &lab_path, &["--duration", PROCESS_LIMIT, "--capture", &cap], None);
    p.wait_for_stderr(&format!("bridge: forward udp 127.0.0.1:{fwd_closed} → client"), Duration::from_secs(20));
    let to: SocketAddr = format!("127.0.0.1:{fwd}").parse().expect("addr");

    let (a, b) = (UdpSocket::bind("127.0.0.1:0").expect("bind"), UdpSocket::bind("127.0.0.1:0").expect("bind"));
    for i in 0..3 {
        for (name, s) in [("a", &a), ("b", &b)] {
            let msg = format!("datagram {i} from {name}");
            udp_exchange(s, to, msg.as_bytes(), 10).unwrap_or_else(|e| panic!("{e}\n{}", p.tail()));
        }
    }
    let distinct = |v: Vec<SocketAddr>| v.into_iter().collect::<std::collections::BTreeSet<_>>().len();
    assert_eq!(distinct(echo.sources()), 2, "two flows, two real sources at the server: {:?}", echo.sources());
    // Past both idle times: the flows end; a datagram from `a` then is a new flow, answered.
    sleep_ms(2500);
    udp_exchange(&a, to, b"after the idle end", 10).unwrap_or_else(|e| panic!("{e}\n{}", p.tail()));
    assert_eq!(distinct(echo.sources()), 3, "a new flow, a new real source: {:?}", echo.sources());
    // To a real port where nothing listens.
    let c = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let closed_to: SocketAddr = format!("127.0.0.1:{fwd_closed}").parse().expect("addr");
    for _ in 0..3 {
        c.send_to(b"nobody here", closed_to).expect("send");
        sleep_ms(200);
    }
    sleep_ms(2500);
    p.stop();

    let r = p.report();
    let (fc, gc) = (&bridge(&r, "client")["counters"], &bridge(&r, "gw")["counters"]);
    // a, b, a again, and c.
    assert_eq!(counter(&r, "client", "flows"), 4, "{fc}");
    assert!(counter(&r, "client", "udp_timeouts") >= 4, "{fc}");
    assert!(counter(&r, "gw", "udp_timeouts") >= 3, "{gc}");
    let fwd_flows = flows(&r, "client", "udp");
    let real = |s: &UdpSocket| json!(s.local_addr().expect("addr").to_string());
    for (s, n) in [(&a, 2), (&b, 1), (&c, 1)] {
        let mine: Vec<&&Value> = fwd_flows.iter().filter(|f| f["real"] == real(s)).collect();
        assert_eq!(mine.len(), n, "flows of {}: {fwd_flows:?}", real(s));
        assert!(mine.iter().all(|f| f["state"] == "idle" && !f["ended"].is_null()), "{mine:?}");
    }
    let gw_flows = flows(&r, "gw", "udp");
    let echoed: Vec<&&Value> = gw_flows.iter().filter(|f| f["real"] == json!(echo.addr.to_string())).collect();
    assert_eq!(echoed.len(), 3, "{gw_flows:?}");
    assert!(echoed.iter().all(|f| f["state"] == "idle"), "{echoed:?}");
    // Each datagram to the closed port after a refusal is a new flow, refused in turn.
    let refused: Vec<&&Value> = gw_flows.iter().filter(|f| f["real"] == json!(format!("127.0.0.1:{closed}"))).collect();
    assert!(!refused.is_empty(), "{gw_flows:?}");
    assert!(refused.iter().all(|f| f["state"] == "refused by the real side"), "{refused:?}");
    assert_eq!(counter(&r, "gw", "flows"), 3 + refused.len() as u64, "{gc}");
    // Each refusal comes back into the lab as ICMP port unreachable from the destination, quoting
    // the datagram (with its payload) it is about.
    if common::tool("tshark") {
        let filter = format!(
            "icmp.type == 3 && icmp.code == 3 && ip.src == 10.99.0.1 && ip.dst == 10.0.1.10 && udp.dstport == {closed}"
        );
        let lines = common::tshark(&["-r", &cap, "-Y", &filter]);
        let n = lines.lines().filter(|l| !l.trim().is_empty()).count();
        // Once on each of the two links it crosses.
        assert_eq!(n, 2 * refused.len(), "{lines}");
    }
}

/// `--forward` on the command line works as a lab file's forward does; a bad one stops the run
/// before it starts, exit code 2, naming the problem.
#[test]
fn command_line_forwards() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = HttpServer::bind("127.0.0.1:0", b"from the command line\n".to_vec());
    let lab_path = dir.path().join("lab.json");
    write_json(&lab_path, &local_lab("cli", json!([])));
    let fwd = free_port();
    let arg = format!("127.0.0.1:{fwd},client,10.99.0.1:{}", server.addr.port());
    let mut p = Proc::run(
        dir.path(),
        "cli",
        &lab_path,
        &["--no-capture", "--duration", PROCESS_LIMIT, "--forward", &arg],
        None,
    );
    p.wait_for_stderr(
        &format!("bridge: forward tcp 127.0.0.1:{fwd} → client → 10.99.0.1:{} listening", server.addr.port()),
        Duration::from_secs(20),
    );
    let mut got = Vec::new();
    let g = http_get(format!("127.0.0.1:{fwd}").parse().expect("addr"), "/", Duration::from_secs(10), |b| {
        got.extend_from_slice(b);
    })
    .unwrap_or_else(|e| panic!("GET through --forward: {e}\n{}", p.tail()));
    assert_eq!(g.status, 200, "{g:?}");
    assert_eq!(got, b"from the command line\n");
    p.stop();
    let r = p.report();
    assert_eq!(
        r["forwards"],
        json!([{ "proto": "tcp", "listen": format!("127.0.0.1:{fwd}"), "from": "client",
                 "to": format!("10.99.0.1:{}", server.addr.port()) }])
    );
    assert_eq!(counter(&r, "gw", "flows"), 1, "{}", bridge(&r, "gw")["counters"]);

    let bad = free_port();
    for (forward, says) in [
        (format!("127.0.0.1:{bad},r1,10.99.0.1:80"), "`r1` is a router; a forward's flows start from a host"),
        (format!("127.0.0.1:{bad},gw,10.99.0.1:80"), "`gw` is a gateway; a forward's flows start from a host"),
        (format!("127.0.0.1:{bad},nobody,10.99.0.1:80"), "`nobody` names no node"),
        (format!("127.0.0.1:{bad},client"), "is not a forward"),
        ("127.0.0.1,client,10.99.0.1:80".to_string(), "has no port"),
    ] {
        let out = Command::new(BIN)
            .args(["run", path_str(&lab_path), "--headless", "--no-capture", "--duration", "5s", "--forward", &forward])
            .output()
            .expect("netlab runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--forward {forward}: {err}");
        assert!(err.contains("error: --forward"), "--forward {forward}: {err}");
        assert!(err.contains(says), "--forward {forward}: expected {says:?} in:\n{err}");
        assert!(TcpStream::connect(("127.0.0.1", bad)).is_err(), "a bad --forward left a listener");
    }
}
