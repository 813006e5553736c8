//! Tunnels between sites, end to end: real `netlab` processes, one per site, joined over UDP, TCP
//! and `exec`; a site killed and started again; refusals (a wrong key, another lab, plaintext, a
//! replayed datagram) seen in the counters and the log; listeners under hostile input; and the two
//! ends' captures of a tunnel link compared frame by frame.
//!
//! Every process runs under a [`Proc`] guard that kills and reaps it when dropped, every wait is
//! bounded, and all traffic stays on 127.0.0.1. The tests that move bulk data or attack a site take
//! the [`heavy`] lock, one at a time (the machine may have two cores); the others run alongside.

use std::io::Write as _;
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;

use common::{free_port, heavy, holds, new_key, path_str, sleep_ms, u, write_json};

/// The `netlab` binary built for these tests.
const BIN: &str = env!("CARGO_BIN_EXE_netlab");

/// The bulk transfer that crosses a tunnel (about 2.5 s in a debug build).
const TRANSFER: u64 = 50 * MIB;
const TRANSFER_TEXT: &str = "50MiB";
const MIB: u64 = 1024 * 1024;

/// The longest any one process of these tests may run.
const PROCESS_LIMIT: Duration = Duration::from_secs(60);

/// Polls `done` every 20 ms until it holds; fails the test after `limit`.
fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        sleep_ms(20);
    }
}

/// The tunnels' key, as a site is given it.
#[derive(Clone, Copy)]
enum Key<'a> {
    /// `NETLAB_KEY`.
    Env(&'a str),
    /// No key at all (`NETLAB_KEY` removed from the environment).
    None,
}

/// A running `netlab` process: killed and reaped when dropped, whatever happened to the test.
struct Proc {
    name: String,
    child: Child,
    stderr: PathBuf,
    report: PathBuf,
    status: Option<ExitStatus>,
}

impl Proc {
    /// `netlab ARGS` in `dir`, standard output and error to files there.
    fn spawn(dir: &Path, name: &str, args: &[String], key: Key<'_>) -> Proc {
        let stderr = dir.join(format!("{name}.stderr"));
        let stdout = dir.join(format!("{name}.stdout"));
        let mut c = Command::new(BIN);
        c.args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"));
        match key {
            Key::Env(k) => c.env("NETLAB_KEY", k),
            Key::None => c.env_remove("NETLAB_KEY"),
        };
        let child = c.spawn().expect("netlab starts");
        Proc { name: name.to_string(), child, stderr, report: dir.join(format!("{name}.json")), status: None }
    }

    /// `netlab run LAB --site SITE --headless --report DIR/NAME.json`, capturing nothing unless
    /// `extra` says `--capture`.
    fn site(dir: &Path, name: &str, lab: &Path, site: &str, key: Key<'_>, extra: &[&str]) -> Proc {
        let mut args: Vec<String> = vec!["run".into(), path_str(lab).into(), "--site".into(), site.into()];
        args.extend(["--headless".into(), "--report".into(), path_str(&dir.join(format!("{name}.json"))).into()]);
        if !extra.contains(&"--capture") {
            args.push("--no-capture".into());
        }
        args.extend(extra.iter().map(ToString::to_string));
        Proc::spawn(dir, name, &args, key)
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
            if Instant::now() > deadline {
                panic!("{} did not exit within {limit:?}; its standard error:\n{}", self.name, self.tail());
            }
            sleep_ms(20);
        }
        self.status.expect("exited")
    }

    /// Waits for a clean exit (code 0).
    fn wait_ok(&mut self, limit: Duration) {
        let s = self.wait(limit);
        assert!(s.success(), "{} exited with {s:?}; its standard error:\n{}", self.name, self.tail());
    }

    /// Sends SIGTERM (a clean stop: the report is written) if it still runs.
    fn terminate(&mut self) {
        if self.running() {
            let ok = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().expect("kill");
            assert!(ok.success(), "kill -TERM {}", self.pid());
        }
    }

    /// SIGKILL, at once, and reaped.
    fn kill9(&mut self) {
        let _ = self.child.kill();
        self.status = Some(self.child.wait().expect("wait"));
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The last lines of standard error, for failure messages.
    fn tail(&self) -> String {
        let e = self.stderr();
        let lines: Vec<&str> = e.lines().collect();
        let lines: Vec<&str> = lines.into_iter().filter(|l| !l.contains(" simulated, ")).collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    fn report(&self) -> Value {
        let text = std::fs::read_to_string(&self.report)
            .unwrap_or_else(|e| panic!("{}'s report {}: {e}\n{}", self.name, self.report.display(), self.tail()));
        serde_json::from_str(&text).expect("the report is JSON")
    }

    /// Resident memory, in KiB, from `/proc/PID/status`.
    fn rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("/proc status");
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_none() {
            // Its `netlab tunnel` children first: one with nothing to do outlives its caller.
            for c in children(self.pid()).into_iter().filter(|p| is_tunnel_process(*p)) {
                drop(TunnelChild(c));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether process `pid` itself holds the TCP listener and/or the UDP socket on `port`.
fn listens(pid: u32, port: u16, tcp: bool, udp: bool) -> bool {
    (!tcp || holds(pid, "tcp", port)) && (!udp || holds(pid, "udp", port))
}

/// Starts a listening site on a free port: `spawn` writes the lab for the port and starts the
/// process. Waits until the process holds its sockets; if the port was taken meanwhile (the site
/// says it cannot listen), tries another.
fn start_listener(tcp: bool, udp: bool, mut spawn: impl FnMut(u16) -> Proc) -> (Proc, u16) {
    for _ in 0..5 {
        let port = free_port();
        let mut p = spawn(port);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if listens(p.pid(), port, tcp, udp) {
                return (p, port);
            }
            if !p.running() {
                let err = p.stderr();
                assert!(err.contains("cannot listen"), "{} exited before listening:\n{err}", p.name);
                break;
            }
            assert!(Instant::now() < deadline, "{} does not listen on port {port}:\n{}", p.name, p.tail());
            sleep_ms(20);
        }
    }
    panic!("no free port after 5 tries");
}

/// `hq` listens on `port`, `branch` calls it.
fn socket_sites(port: u16) -> Value {
    json!({ "hq": { "listen": format!("127.0.0.1:{port}") }, "branch": { "connect": format!("127.0.0.1:{port}") } })
}

/// Two hosts, `a` (10.9.0.1) in site `hq` and `b` (10.9.0.2) in site `branch`, on one link `wan`
/// carried by `transport`, 1 ms each way and no rate limit.
fn pair_lab(name: &str, transport: &str, sites: Value, a_apps: Value, b_apps: Value) -> Value {
    json!({
        "name": name,
        "seed": 1,
        "nodes": {
            "a": { "kind": "host", "site": "hq", "interfaces": { "eth0": { "addresses": ["10.9.0.1/24"] } }, "apps": a_apps },
            "b": { "kind": "host", "site": "branch", "interfaces": { "eth0": { "addresses": ["10.9.0.2/24"] } }, "apps": b_apps },
        },
        "links": [ { "name": "wan", "a": "a:eth0", "b": "b:eth0", "transport": transport, "impair": { "latency": "1ms" } } ],
        "sites": sites,
    })
}

fn ping(to: &str, count: u32, interval: &str) -> Value {
    json!({ "kind": "ping", "to": to, "count": count, "interval": interval })
}

/// The only app of `kind` in a report.
fn app<'a>(r: &'a Value, kind: &str) -> &'a Value {
    let v: Vec<&Value> = r["apps"].as_array().expect("apps").iter().filter(|a| a["kind"] == kind).collect();
    assert_eq!(v.len(), 1, "one {kind} app in {}", r["apps"]);
    v[0]
}

/// The tunnel end towards `peer` in a report.
fn tunnel<'a>(r: &'a Value, peer: &str) -> &'a Value {
    r["tunnels"].as_array().expect("tunnels").iter().find(|t| t["peer"] == peer).unwrap_or_else(|| {
        panic!("no tunnel to {peer}: {}", r["tunnels"]);
    })
}

fn refused(t: &Value, kind: &str) -> u64 {
    t["refused"][kind].as_u64().unwrap_or(0)
}

fn log_lines(r: &Value) -> Vec<String> {
    r["tunnel_log"].as_array().expect("tunnel_log").iter().map(|l| l.as_str().expect("a line").to_string()).collect()
}

fn count_lines(r: &Value, needle: &str) -> usize {
    log_lines(r).iter().filter(|l| l.contains(needle)).count()
}

/// A ping that got every reply, without corruption.
fn assert_ping_whole(r: &Value, count: u64) {
    let p = app(r, "ping");
    assert_eq!(u(&p["sent"]), count, "{p}");
    assert_eq!(u(&p["received"]), count, "{p}");
    assert_eq!(u(&p["corrupt"]), 0, "{p}");
}

/// A sink that took `bytes` bytes, every one as sent.
fn assert_sink_whole(r: &Value, bytes: u64) {
    let s = app(r, "tcp-sink");
    assert_eq!(u(&s["bytes"]), bytes, "{s}");
    assert_eq!(u(&s["corrupt_bytes"]), 0, "{s}");
    assert_eq!(u(&s["connections"]), 1, "{s}");
}

/// A transfer that finished, every byte acknowledged.
fn assert_transfer_done(r: &Value, bytes: u64) -> f64 {
    let t = app(r, "tcp-transfer");
    assert!(t["error"].is_null(), "{t}");
    assert_eq!(u(&t["acked"]), bytes, "{t}");
    t["seconds"].as_f64().unwrap_or_else(|| panic!("the transfer finished: {t}"))
}

/// Both ends of a tunnel that came up once, carried the lab's frames and refused nothing.
fn assert_clean_tunnel(hq: &Value, branch: &Value, transport: &str) {
    let (h, b) = (tunnel(hq, "branch"), tunnel(branch, "hq"));
    for (t, role) in [(h, "callee"), (b, "caller")] {
        assert_eq!(t["transport"], transport, "{t}");
        assert_eq!(t["encrypted"], true, "{t}");
        assert_eq!(u(&t["sessions"]), 1, "{t}");
        assert_eq!(t["refused"], json!({}), "{t}");
        assert_eq!(t["role"], role, "{t}");
    }
    // What one end received, the other sent (a frame may be lost on the way, never made up).
    assert!(u(&b["frames_in"]) <= u(&h["frames_out"]) && u(&b["frames_in"]) > 0, "{h}\n{b}");
    assert!(u(&h["frames_in"]) <= u(&b["frames_out"]) && u(&h["frames_in"]) > 0, "{h}\n{b}");
    assert!(u(&b["bytes_in"]) <= u(&h["bytes_out"]), "{h}\n{b}");
}

/// `a` (hq) pings `b` and sends it `bytes` bytes; `b` (branch) pings `a`.
fn transfer_lab(name: &str, transport: &str, sites: Value, bytes: u64) -> Value {
    pair_lab(
        name,
        transport,
        sites,
        json!([ping("b", 5, "100ms"), { "kind": "tcp-transfer", "to": "b:9", "bytes": format!("{}MiB", bytes / MIB) }]),
        json!([{ "kind": "tcp-sink", "port": 9 }, ping("a", 5, "100ms")]),
    )
}

/// Two processes, one a site, over `transport` (udp or tcp), encrypted: both pings cross, the bulk
/// transfer arrives whole, and both processes end by themselves once every site's apps are done.
fn two_processes_over(transport: &str, bytes: u64) {
    let _heavy = heavy();
    let dir = tempfile::tempdir().expect("tempdir");
    let lab = dir.path().join("lab.json");
    let key = new_key();
    let (mut hq, _) = start_listener(transport == "tcp", transport == "udp", |port| {
        write_json(&lab, &transfer_lab(&format!("bulk-{transport}"), transport, socket_sites(port), bytes));
        Proc::site(dir.path(), "hq", &lab, "hq", Key::Env(&key), &[])
    });
    let start = Instant::now();
    let mut branch = Proc::site(dir.path(), "branch", &lab, "branch", Key::Env(&key), &[]);
    branch.wait_ok(PROCESS_LIMIT);
    hq.wait_ok(PROCESS_LIMIT);
    let wall = start.elapsed();
    let (h, b) = (hq.report(), branch.report());
    for r in [&h, &b] {
        assert_eq!(r["ended"], "apps-finished", "{}", r["ended"]);
        assert_ping_whole(r, 5);
    }
    let secs = assert_transfer_done(&h, bytes);
    assert_sink_whole(&b, bytes);
    assert_clean_tunnel(&h, &b, transport);
    assert!(u(&tunnel(&h, "branch")["bytes_out"]) > bytes);
    assert_eq!(count_lines(&h, "up with 127.0.0.1:"), 1, "{:?}", log_lines(&h));
    let (h, b) = (tunnel(&h, "branch"), tunnel(&b, "hq"));
    let _ = writeln!(
        std::io::stderr(),
        "{transport}: {} MiB in {secs:.2} s, both processes done in {:.2} s; frames hq->branch {} sent, {} received; \
         branch->hq {} sent, {} received",
        bytes / MIB,
        wall.as_secs_f64(),
        h["frames_out"],
        b["frames_in"],
        b["frames_out"],
        h["frames_in"]
    );
}

#[test]
fn two_processes_over_udp() {
    two_processes_over("udp", TRANSFER);
}

#[test]
fn two_processes_over_tcp() {
    two_processes_over("tcp", TRANSFER);
}

/// The same over `exec`: site `hq` runs the lab's command for `branch`, `netlab tunnel`, a local
/// child standing in for ssh, and the link crosses the child's standard input and output. The
/// bulk transfer goes from the child's host to a sink at `hq`, whose report shows every byte.
///
/// `hq` stops at `--duration 5s` (the transfer takes about 2 s), and the child pings all along.
#[test]
fn two_processes_over_exec() {
    let _heavy = heavy();
    let dir = tempfile::tempdir().expect("tempdir");
    let lab = dir.path().join("lab.json");
    let cmd = format!("exec '{BIN}' tunnel '{}' --site branch --no-capture", path_str(&lab));
    let l = pair_lab(
        "bulk-exec",
        "exec",
        json!({ "branch": { "exec": cmd } }),
        json!([{ "kind": "tcp-sink", "port": 9 }, ping("b", 5, "100ms")]),
        json!([{ "kind": "tcp-transfer", "to": "a:9", "bytes": TRANSFER_TEXT }, ping("a", 300, "100ms")]),
    );
    write_json(&lab, &l);
    let key = new_key();
    let start = Instant::now();
    let mut hq = Proc::site(dir.path(), "hq", &lab, "hq", Key::Env(&key), &["--duration", "5s"]);
    hq.wait_ok(PROCESS_LIMIT);
    let wall = start.elapsed();
    let h = hq.report();
    assert_eq!(h["ended"], "duration");
    assert_ping_whole(&h, 5);
    assert_sink_whole(&h, TRANSFER);
    let t = tunnel(&h, "branch");
    assert_eq!((&t["role"], &t["transport"], &t["encrypted"]), (&json!("caller"), &json!("exec"), &json!(true)), "{t}");
    assert_eq!(u(&t["sessions"]), 1, "{t}");
    assert_eq!(t["refused"], json!({}), "{t}");
    assert!(u(&t["bytes_in"]) > TRANSFER, "{t}");
    assert_eq!(count_lines(&h, "up with exec `"), 1, "{:?}", log_lines(&h));
    // The child's own log reaches the caller's, line by line.
    assert_eq!(count_lines(&h, "exec: tunnel: tunnel branch<->hq (exec): up with stdin"), 1, "{:?}", log_lines(&h));
    let _ = writeln!(
        std::io::stderr(),
        "exec: {TRANSFER_TEXT} crossed, {} frames in; hq done in {:.2} s",
        t["frames_in"],
        wall.as_secs_f64()
    );
}

/// `netlab tunnel --report` under `exec` writes its report when its caller leaves: the child's
/// apps (its ping) and its end of the tunnel are in it. The caller stops first (`--duration`);
/// the child, with a long ping of its own, ends because its peer left.
#[test]
fn exec_child_writes_its_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lab = dir.path().join("lab.json");
    let child_report = dir.path().join("child.json");
    let cmd = format!(
        "exec '{BIN}' tunnel '{}' --site branch --no-capture --report '{}'",
        path_str(&lab),
        path_str(&child_report)
    );
    let l = pair_lab(
        "exec-report",
        "exec",
        json!({ "branch": { "exec": cmd } }),
        json!([ping("b", 5, "100ms")]),
        json!([ping("a", 300, "100ms")]),
    );
    write_json(&lab, &l);
    let key = new_key();
    let mut hq = Proc::site(dir.path(), "hq", &lab, "hq", Key::Env(&key), &["--duration", "2s"]);
    hq.wait_ok(PROCESS_LIMIT);
    let h = hq.report();
    assert_ping_whole(&h, 5);
    assert_eq!(count_lines(&h, "up with exec `"), 1, "{:?}", log_lines(&h));
    // The child ends once its caller has left; give it a moment to write.
    let mut text = None;
    let deadline = Instant::now() + Duration::from_secs(5);
    while text.is_none() && Instant::now() < deadline {
        text = std::fs::read_to_string(&child_report).ok();
        sleep_ms(50);
    }
    let text = text.unwrap_or_else(|| panic!("the exec child wrote no report; hq's log: {:?}", log_lines(&h)));
    let b: Value = serde_json::from_str(&text).expect("the child's report is JSON");
    assert_eq!(b["ended"], "peer-left");
    let p = app(&b, "ping");
    assert!(u(&p["received"]) >= 10 && u(&p["received"]) < 300, "{p}");
    assert_eq!(u(&tunnel(&b, "hq")["sessions"]), 1);
}

/// Two sites end to end over `exec`, as when both end on their own: the caller runs the command
/// once, and does not start the site again once it has finished and left.
#[test]
fn an_exec_site_that_finished_is_not_started_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lab = dir.path().join("lab.json");
    let cmd = format!("exec '{BIN}' tunnel '{}' --site branch --no-capture", path_str(&lab));
    let l = pair_lab(
        "exec-once",
        "exec",
        json!({ "branch": { "exec": cmd } }),
        json!([ping("b", 3, "100ms")]),
        json!([ping("a", 3, "100ms")]),
    );
    write_json(&lab, &l);
    let key = new_key();
    let mut hq = Proc::site(dir.path(), "hq", &lab, "hq", Key::Env(&key), &[]);
    hq.wait_ok(Duration::from_secs(10));
    let h = hq.report();
    assert_ping_whole(&h, 3);
    let runs = count_lines(&h, "exec: tunnel: tunnel branch<->hq (exec): up with stdin");
    assert_eq!(runs, 1, "the command ran {runs} times: {:?}", log_lines(&h));
}

/// The number after the last "] " and before " frames" on a progress line of standard error.
fn frames_so_far(p: &Proc) -> u64 {
    p.stderr()
        .lines()
        .rev()
        .find_map(|l| l.split("] ").nth(1)?.split(" frames").next()?.trim().parse().ok())
        .unwrap_or(0)
}

/// Kills one site with SIGKILL in the middle of a bulk transfer and starts it again, the other
/// site running on: the tunnel comes back by itself, and the restarted site's ping is answered.
///
/// The survivor's host sends the killed site's host a bulk transfer, which the kill cuts short;
/// the survivor runs on (`--duration 60s`) until the test stops it with SIGTERM. The killed site's
/// host pings the survivor's, once in each life; the second life ends by itself (`--duration`).
fn kill_and_restart(transport: &str, killed: &str) {
    let _heavy = heavy();
    let dir = tempfile::tempdir().expect("tempdir");
    let lab = dir.path().join("lab.json");
    let key = new_key();
    let survivor = if killed == "hq" { "branch" } else { "hq" };
    let (victim_host, survivor_host) = if killed == "hq" { ("a", "b") } else { ("b", "a") };
    let transfer = json!([{ "kind": "tcp-transfer", "to": format!("{victim_host}:9"), "bytes": TRANSFER_TEXT }]);
    let pinger = json!([{ "kind": "tcp-sink", "port": 9 }, ping(survivor_host, 5, "100ms")]);
    let (a_apps, b_apps) = if killed == "hq" { (pinger, transfer) } else { (transfer, pinger) };
    let keep_on: &[&str] = &["--duration", "60s"];
    let (hq_args, branch_args) = if killed == "hq" { (&[][..], keep_on) } else { (keep_on, &[][..]) };
    let (hq, port) = start_listener(transport == "tcp", transport == "udp", |port| {
        let mut l =
            pair_lab(&format!("restart-{transport}"), transport, socket_sites(port), a_apps.clone(), b_apps.clone());
        // At 100 Mbit/s the transfer takes over 4 s: the kill, after about 1 s, comes in its middle.
        l["links"][0]["impair"]["rate"] = json!("100Mbit");
        write_json(&lab, &l);
        Proc::site(dir.path(), "hq", &lab, "hq", Key::Env(&key), hq_args)
    });
    let branch = Proc::site(dir.path(), "branch", &lab, "branch", Key::Env(&key), branch_args);
    let (mut victim, mut other) = if killed == "hq" { (hq, branch) } else { (branch, hq) };
    // Mid-transfer: thousands of frames through, the transfer far from done.
    wait_until(Duration::from_secs(30), "the transfer under way", || frames_so_far(&victim) > 3000);
    victim.kill9();
    let killed_at = Instant::now();
    assert!(other.running(), "{survivor} ended with its peer:\n{}", other.tail());
    let name = format!("{killed}-again");
    let mut again = Proc::site(dir.path(), &name, &lab, killed, Key::Env(&key), &["--duration", "2s"]);
    if killed == "hq" {
        // The same port: the survivor calls there.
        wait_until(Duration::from_secs(10), "the restarted site listening", || {
            listens(again.pid(), port, transport == "tcp", transport == "udp")
        });
    }
    again.wait_ok(PROCESS_LIMIT);
    let back_in = killed_at.elapsed();
    assert!(other.running(), "{survivor} still runs:\n{}", other.tail());
    other.terminate();
    other.wait_ok(Duration::from_secs(10));
    let (s, r) = (other.report(), again.report());
    // The restarted site's ping crossed the tunnel that came back.
    assert_eq!(r["ended"], "duration", "{}", r["ended"]);
    assert_ping_whole(&r, 5);
    assert_eq!(u(&tunnel(&r, survivor)["sessions"]), 1);
    assert_eq!(s["ended"], "signal", "{}", s["ended"]);
    // The survivor's transfer did not finish: its peer died with the connection.
    let t = app(&s, "tcp-transfer");
    assert!(u(&t["acked"]) < TRANSFER, "{t}");
    let end = tunnel(&s, killed);
    let ups = count_lines(&s, ": up with ");
    let _ = writeln!(
        std::io::stderr(),
        "{transport}, {killed} killed: the restarted site was done {:.1} s after the kill; the survivor's tunnel: \
         {} sessions, {} retries, {ups} `up with` lines, refused {}",
        back_in.as_secs_f64(),
        end["sessions"],
        end["retries"],
        end["refused"]
    );
    assert!(ups >= 2, "the survivor's log shows the tunnel up again: {:?}", log_lines(&s));
    // A UDP listener that hears a new handshake within 5 s of the old session's last datagram
    // replaces the session without going down, and does not count it (see
    // `a_restarted_udp_peer_is_a_new_session`).
    if !(transport == "udp" && killed == "branch") {
        assert!(u(&end["sessions"]) >= 2, "the survivor's tunnel came up twice: {end}");
    }
}

#[test]
fn udp_dialler_killed_and_restarted() {
    kill_and_restart("udp", "branch");
}

#[test]
fn tcp_dialler_killed_and_restarted() {
    kill_and_restart("tcp", "branch");
}

#[test]
fn udp_listener_killed_and_restarted() {
    kill_and_restart("udp", "hq");
}

#[test]
fn tcp_listener_killed_and_restarted() {
    kill_and_restart("tcp", "hq");
}

/// A site's child processes (any thread may have started them).
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("children")).ok())
        .flat_map(|s| s.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<u32>>())
        .collect()
}

/// Whether `pid` is a `netlab tunnel` process (and not another that took its number).
fn is_tunnel_process(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == b"tunnel") && c.starts_with(BIN.as_bytes()))
}

/// A `netlab tunnel` process started by a site of this test: killed when dropped if it still runs.
struct TunnelChild(u32);

impl Drop for TunnelChild {
    fn drop(&mut self) {
        if is_tunnel_process(self.0) {
            let _ = Command::new("kill").args(["-KILL", &self.0.to_string()]).status();
        }
    }
}

/// A site with nothing of its own left to do ends once its peers' apps are done, as they do.
#[test]
fn an_idle_site_ends_when_its_peers_are_done() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lab = dir.path().join("lab.json");
    let key = new_key();
    let (mut hq, _) = start_listener(false, true, |port| {
        write_json(&lab, &pair_lab("idle", "udp", socket_sites(port), json!([ping("b", 3, "100ms")]), json!([])));
        Proc::site(dir.path(), "hq", &lab, "hq", Key::Env(&key), &[])
    });
    let mut branch = Proc::site(dir.path(), "branch", &lab, "branch", Key::Env(&key), &[]);
    hq.wait_ok(Duration::from_secs(30));
    assert_ping_whole(&hq.report(), 3);
    // hq has told branch that its apps are done; branch has none, so it ends too.
    branch.wait_ok(Duration::from_secs(5));
    let b = branch.report();
    assert_eq!(b["ended"], "apps-finished");
    assert_eq!(tunnel(&b, "hq")["peer_done"], true);
}

/// A `netlab tunnel` child ends when the site that started it dies (its standard input closes),
/// even with nothing of its own to do.
#[test]
fn an_exec_child_ends_when_its_caller_is_killed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lab = dir.path().join("lab.json");
    let cmd = format!("exec '{BIN}' tunnel '{}' --site branch --no-capture", path_str(&lab));
    let l =
        pair_lab("orphan", "exec", json!({ "branch": { "exec": cmd } }), json!([ping("b", 600, "100ms")]), json!([]));
    write_json(&lab, &l);
    let key = new_key();
    let mut hq = Proc::site(dir.path(), "hq", &lab, "hq", Key::Env(&key), &[]);
    wait_until(Duration::from_secs(20), "the ping under way", || frames_so_far(&hq) > 10);
    let kids: Vec<u32> = children(hq.pid()).into_iter().filter(|p| is_tunnel_process(*p)).collect();
    assert_eq!(kids.len(), 1, "one `netlab tunnel` child: {:?}", children(hq.pid()));
    let child = TunnelChild(kids[0]);
    hq.kill9();
    let deadline = Instant::now() + Duration::from_secs(5);
    while is_tunnel_process(child.0) && Instant::now() < deadline {
        sleep_ms(50);
    }
    assert!(!is_tunnel_process(child.0), "`netlab tunnel` (pid {}) still runs 5 s after its caller died", child.0);
}

/// A lab of two hosts that ping each other `count` times, over `transport`.
fn ping_lab(name: &str, transport: &str, port: u16, count: u32) -> Value {
    pair_lab(
        name,
        transport,
        socket_sites(port),
        json!([ping("b", count, "100ms")]),
        json!([ping("a", count, "100ms")]),
    )
}

/// Runs `hq` (listening) and `branch` (calling) over `transport`, each with its own lab from
/// `labs(port)` and its own key, until hq's log (echoed on its standard error) shows a refusal of
/// `kind`; then stops both with SIGTERM. Checks that no tunnel came up and no app ran, and that
/// hq counted and logged the refusal with the caller's address; returns both reports.
fn refused_run(
    transport: &str,
    labs: impl Fn(u16) -> (Value, Value),
    keys: (Key<'_>, Key<'_>),
    kind: &str,
) -> (Value, Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hq_lab, branch_lab) = (dir.path().join("hq-lab.json"), dir.path().join("branch-lab.json"));
    let (mut hq, _) = start_listener(transport == "tcp", transport == "udp", |port| {
        let (h, b) = labs(port);
        write_json(&hq_lab, &h);
        write_json(&branch_lab, &b);
        Proc::site(dir.path(), "hq", &hq_lab, "hq", keys.0, &[])
    });
    let mut branch = Proc::site(dir.path(), "branch", &branch_lab, "branch", keys.1, &[]);
    let needle = format!("({kind})");
    wait_until(Duration::from_secs(20), &format!("hq refusing ({kind}) over {transport}"), || {
        hq.stderr().contains(&needle)
    });
    // The caller's call failed, and it says so (it then calls again, after a while).
    wait_until(Duration::from_secs(10), "the caller's failed call", || {
        branch.stderr().contains("tunnel: tunnel branch<->hq (")
    });
    hq.terminate();
    branch.terminate();
    hq.wait_ok(Duration::from_secs(10));
    branch.wait_ok(Duration::from_secs(10));
    let (h, b) = (hq.report(), branch.report());
    for r in [&h, &b] {
        assert_eq!(r["ended"], "signal");
        // The lab's clock never started (it waits for the tunnel), and no ping went out.
        assert_eq!(r["sim_seconds"], 0.0);
        assert_eq!(u(&app(r, "ping")["sent"]), 0, "{}", app(r, "ping"));
    }
    let t = tunnel(&h, "branch");
    assert!(refused(t, kind) >= 1, "{transport}: hq counts {kind}: {t}");
    assert_eq!((u(&t["sessions"]), &t["state"]), (0, &json!("connecting")), "{t}");
    let lines = log_lines(&h);
    assert!(
        lines.iter().any(|l| l.starts_with("refused 127.0.0.1:") && l.contains(&needle)),
        "{transport}: hq logs the refusal with the caller's address: {lines:?}"
    );
    let c = tunnel(&b, "hq");
    assert_eq!(u(&c["sessions"]), 0, "{c}");
    assert!(u(&c["retries"]) >= 1, "the caller tried again: {c}");
    (h, b)
}

/// Two sites with different keys: the listener refuses the caller's handshake as `wrong-key`.
#[test]
fn a_wrong_key_is_refused() {
    let (k1, k2) = (new_key(), new_key());
    for transport in ["udp", "tcp"] {
        let labs = |port| (ping_lab("keys", transport, port, 3), ping_lab("keys", transport, port, 3));
        refused_run(transport, labs, (Key::Env(&k1), Key::Env(&k2)), "wrong-key");
    }
}

/// Two sites with the same key but different labs (another name, or other cross-site links): the
/// listener refuses the caller as `wrong-lab`.
#[test]
fn another_lab_is_refused() {
    let key = new_key();
    for transport in ["udp", "tcp"] {
        let renamed = |port| (ping_lab("ours", transport, port, 3), ping_lab("theirs", transport, port, 3));
        refused_run(transport, renamed, (Key::Env(&key), Key::Env(&key)), "wrong-lab");
        let relinked = |port| {
            let mut other = ping_lab("ours", transport, port, 3);
            other["links"][0]["name"] = json!("another-wan");
            (ping_lab("ours", transport, port, 3), other)
        };
        refused_run(transport, relinked, (Key::Env(&key), Key::Env(&key)), "wrong-lab");
    }
}

/// A caller whose lab is `"insecure": true` (plaintext) facing a listener with a key: refused as
/// `plaintext`; and the other way round, an encrypted caller facing a plaintext listener: refused
/// as `encrypted`.
#[test]
fn plaintext_and_encrypted_sites_refuse_each_other() {
    let key = new_key();
    let insecure = |mut l: Value| {
        l["insecure"] = json!(true);
        l
    };
    for transport in ["udp", "tcp"] {
        let labs = |port| (ping_lab("mixed", transport, port, 3), insecure(ping_lab("mixed", transport, port, 3)));
        refused_run(transport, labs, (Key::Env(&key), Key::None), "plaintext");
        let labs = |port| (insecure(ping_lab("mixed", transport, port, 3)), ping_lab("mixed", transport, port, 3));
        refused_run(transport, labs, (Key::None, Key::Env(&key)), "encrypted");
    }
}

/// How long a relay's threads run at most.
const RELAY_LIMIT: Duration = Duration::from_secs(120);
/// Datagrams a relay keeps a copy of, at most.
const RELAY_KEEPS: usize = 20_000;

/// A UDP relay of this test between a caller and a listener on 127.0.0.1: forwards every datagram
/// both ways, and keeps a copy of what the caller sent. Its threads stop when it is dropped.
struct Relay {
    port: u16,
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Relay {
    fn start(listener: u16) -> Relay {
        let front = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let back = UdpSocket::bind("127.0.0.1:0").expect("bind");
        back.connect(("127.0.0.1", listener)).expect("connect");
        for s in [&front, &back] {
            s.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
        }
        let port = front.local_addr().expect("addr").port();
        let caller = Arc::new(Mutex::new(None));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let mut threads = Vec::new();
        {
            let (front, back) = (front.try_clone().expect("clone"), back.try_clone().expect("clone"));
            let (caller, seen, stop) = (Arc::clone(&caller), Arc::clone(&seen), Arc::clone(&stop));
            threads.push(std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::Relaxed) && started.elapsed() < RELAY_LIMIT {
                    if let Ok((n, from)) = front.recv_from(&mut buf) {
                        *caller.lock().expect("lock") = Some(from);
                        let mut s = seen.lock().expect("lock");
                        if s.len() < RELAY_KEEPS {
                            s.push(buf[..n].to_vec());
                        }
                        drop(s);
                        let _ = back.send(&buf[..n]);
                    }
                }
            }));
        }
        {
            let stop = Arc::clone(&stop);
            threads.push(std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::Relaxed) && started.elapsed() < RELAY_LIMIT {
                    if let Ok(n) = back.recv(&mut buf) {
                        if let Some(to) = *caller.lock().expect("lock") {
                            let _ = front.send_to(&buf[..n], to);
                        }
                    }
                }
            }));
        }
        Relay { port, seen, stop, threads }
    }

    /// The datagrams the caller sent so far whose first byte is `kind`.
    fn sent(&self, kind: u8) -> Vec<Vec<u8>> {
        self.seen.lock().expect("lock").iter().filter(|d| d.first() == Some(&kind)).cloned().collect()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The types of the encrypted datagrams: a handshake init, a data message.
const INIT: u8 = 0x10;
const DATA: u8 = 0x12;

/// A data datagram caught on its way (by a relay of the test between the two sites) and sent to
/// the listener again is refused as `replay`, and so is the caller's handshake init; the session
/// carries on.
#[test]
fn a_replayed_datagram_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lab = dir.path().join("lab.json");
    let key = new_key();
    let (mut hq, port) = start_listener(false, true, |port| {
        write_json(&lab, &pair_lab("replay", "udp", socket_sites(port), json!([]), json!([ping("a", 40, "100ms")])));
        Proc::site(dir.path(), "hq", &lab, "hq", Key::Env(&key), &["--duration", "6s"])
    });
    let relay = Relay::start(port);
    let via = format!("127.0.0.1:{}", relay.port);
    let args = ["--connect", &via, "--duration", "6s"];
    let mut branch = Proc::site(dir.path(), "branch", &lab, "branch", Key::Env(&key), &args);
    wait_until(Duration::from_secs(20), "data through the relay", || relay.sent(DATA).len() >= 10);
    // Every one of them has reached hq by now.
    sleep_ms(200);
    let data = relay.sent(DATA);
    let init = relay.sent(INIT);
    assert_eq!(init.len(), 1, "one handshake");
    let attacker = UdpSocket::bind("127.0.0.1:0").expect("bind");
    for d in data.iter().take(5).chain(&init) {
        attacker.send_to(d, ("127.0.0.1", port)).expect("send");
    }
    branch.wait_ok(PROCESS_LIMIT);
    hq.wait_ok(PROCESS_LIMIT);
    let (h, b) = (hq.report(), branch.report());
    assert_ping_whole(&b, 40);
    let t = tunnel(&h, "branch");
    assert_eq!(refused(t, "replay"), 6, "five data datagrams and the init: {t}");
    assert_eq!(u(&t["sessions"]), 1, "{t}");
    let me = attacker.local_addr().expect("addr").to_string();
    let lines = log_lines(&h);
    assert!(
        lines.iter().any(|l| l.starts_with(&format!("refused {me}:")) && l.contains("(replay)")),
        "the log names the sender of the replay, {me}: {lines:?}"
    );
}

/// A calling site killed after its apps are done and started again at once is a new session at
/// the UDP listener: counted, and not taken for done until it says so again. The listener's own
/// ping lasts 6 s; the restarted caller's lasts 10 s, and the listener waits for it to finish,
/// answering every request.
#[test]
fn a_restarted_udp_peer_is_a_new_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (lab, again_lab) = (dir.path().join("lab.json"), dir.path().join("again.json"));
    let key = new_key();
    // The same lab (name, sites and links) for both lives of `branch`; its apps differ.
    let with_pings = |port, b_count| {
        pair_lab(
            "new-session",
            "udp",
            socket_sites(port),
            json!([ping("b", 60, "100ms")]),
            json!([ping("a", b_count, "100ms")]),
        )
    };
    let (mut hq, port) = start_listener(false, true, |port| {
        write_json(&lab, &with_pings(port, 3));
        Proc::site(dir.path(), "hq", &lab, "hq", Key::Env(&key), &[])
    });
    write_json(&again_lab, &with_pings(port, 100));
    let mut branch = Proc::site(dir.path(), "branch", &lab, "branch", Key::Env(&key), &[]);
    // branch's 3 pings are done, and it has said so; it waits for hq's.
    wait_until(Duration::from_secs(20), "branch's pings done", || frames_so_far(&branch) >= 12);
    sleep_ms(300);
    branch.kill9();
    let mut again = Proc::site(dir.path(), "branch-again", &again_lab, "branch", Key::Env(&key), &[]);
    again.wait_ok(Duration::from_secs(40));
    hq.wait_ok(Duration::from_secs(40));
    let (h, r) = (hq.report(), again.report());
    assert_eq!(count_lines(&h, ": up with "), 2, "{:?}", log_lines(&h));
    let p = app(&r, "ping");
    assert_eq!(
        (u(&p["sent"]), u(&p["received"])),
        (100, 100),
        "hq ended ({:.1} s) before the restarted branch's pings were done: {p}",
        h["sim_seconds"].as_f64().unwrap_or(0.0)
    );
    let t = tunnel(&h, "branch");
    assert_eq!(u(&t["sessions"]), 2, "{t}");
}

/// A small generator of hostile bytes, the same every run (xorshift64*).
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).expect("fits")
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Hostile datagrams at a listening UDP socket: random bytes, random bodies behind each message
/// type, real datagrams (caught by the relay) cut short or with their ciphertext or counter
/// changed, datagrams too long, and real datagrams and the real handshake init replayed.
fn udp_attack(port: u16, real: &[Vec<u8>], rng: &mut Noise) -> usize {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut sent = 0;
    let mut send = |d: &[u8]| {
        let _ = s.send_to(d, ("127.0.0.1", port));
        sent += 1;
        // A flood, but one the real peer's datagrams still get through.
        if sent % 100 == 0 {
            sleep_ms(2);
        }
    };
    for _ in 0..2000 {
        let n = rng.below(1400);
        send(&rng.bytes(n));
    }
    for t in [INIT, 0x11, DATA] {
        for _ in 0..300 {
            let mut d = vec![t];
            let n = rng.below(300);
            d.extend(rng.bytes(n));
            send(&d);
        }
    }
    let data: Vec<&Vec<u8>> = real.iter().filter(|d| d[0] == DATA).take(100).collect();
    for d in &data {
        let cut = 1 + rng.below(d.len() - 1);
        send(&d[..cut]);
        // The real session's index, another ciphertext.
        let mut forged = d.to_vec();
        let i = 13 + rng.below(forged.len() - 13);
        forged[i] ^= 0x5a;
        send(&forged);
        // A counter far ahead, which must not move the replay window (it does not open).
        let mut ahead = d.to_vec();
        ahead[5..13].copy_from_slice(&(u64::MAX / 2 + rng.next() % 1000).to_be_bytes());
        send(&ahead);
    }
    for _ in 0..20 {
        send(&rng.bytes(65_000));
    }
    for d in real.iter().filter(|d| d[0] == DATA || d[0] == INIT).take(200) {
        send(d);
    }
    sent
}

/// A TCP connection to the listener that writes `bytes` (may fail: the listener may have closed).
fn tcp_probe(port: u16, bytes: &[u8]) -> Option<TcpStream> {
    let mut c = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)).ok()?;
    let _ = c.write_all(bytes);
    Some(c)
}

/// A TCP connection that writes `bytes` and waits (at most 2 s) for the listener to close it, as
/// it does once it has refused them; so that each refusal is done before the next connection.
fn tcp_refused(port: u16, bytes: &[u8]) {
    if let Some(mut c) = tcp_probe(port, bytes) {
        let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut b = [0u8; 256];
        while Instant::now() < deadline && matches!(std::io::Read::read(&mut c, &mut b), Ok(n) if n > 0) {}
    }
}

/// A length-framed message: its length, then its bytes.
fn framed(body: &[u8]) -> Vec<u8> {
    let mut m = u32::try_from(body.len()).expect("fits").to_be_bytes().to_vec();
    m.extend_from_slice(body);
    m
}

/// Hostile connections at a listening TCP socket: huge and zero lengths, random bytes, a forged
/// handshake, a plaintext hello, half messages kept open, and then 1,000 connections that send
/// nothing (or half a message) and stay open. Returns the connections still held.
fn tcp_attack(port: u16, rng: &mut Noise) -> Vec<TcpStream> {
    for _ in 0..10 {
        tcp_refused(port, &[0xff, 0xff, 0xff, 0xff]);
        tcp_refused(port, &[0, 0, 0, 0]);
    }
    for _ in 0..50 {
        // Random bytes, behind a length of at least 256 MiB.
        let n = 4 + rng.below(200);
        let mut b = rng.bytes(n);
        b[0] |= 0x10;
        tcp_refused(port, &b);
    }
    for _ in 0..10 {
        let mut init = vec![INIT];
        init.extend(rng.bytes(99));
        tcp_refused(port, &framed(&init));
    }
    for _ in 0..5 {
        let mut hello = vec![0x01, 0, 1];
        hello.extend(rng.bytes(32));
        hello.push(6);
        hello.extend(b"branch");
        tcp_refused(port, &framed(&hello));
    }
    let mut held = Vec::new();
    for _ in 0..10 {
        held.extend(tcp_probe(port, &framed(&rng.bytes(200))[..104]));
    }
    for i in 0..1000 {
        let half: &[u8] = if i % 4 == 0 { &[0, 0, 0, 100, INIT] } else { &[] };
        held.extend(tcp_probe(port, half));
    }
    held
}

/// Lines of standard error that log a refusal of `kind`.
fn refusal_lines(p: &Proc, kind: &str) -> usize {
    let needle = format!("({kind})");
    p.stderr().lines().filter(|l| l.starts_with("tunnel: refused ") && l.contains(&needle)).count()
}

/// Both listeners of a site (UDP and TCP, one port) under hostile input while two real peers use
/// them: the site survives, its memory stays bounded, the peers' pings and transfers go on, and
/// the refusals are counted by kind.
#[test]
fn listeners_survive_hostile_input() {
    let _heavy = heavy();
    let dir = tempfile::tempdir().expect("tempdir");
    let lab = dir.path().join("lab.json");
    let key = new_key();
    let host = |site: &str, ip: &str, apps: Value| json!({ "kind": "host", "site": site, "interfaces": { "eth0": { "addresses": [format!("{ip}/24")] } }, "apps": apps });
    let peer_apps =
        || json!([ping("a", 45, "200ms"), { "kind": "tcp-transfer", "to": "a:9", "bytes": "4MiB", "start": "1s" }]);
    let (mut hq, port) = start_listener(true, true, |port| {
        let at = format!("127.0.0.1:{port}");
        let l = json!({
            "name": "hostile",
            "nodes": {
                "sw": { "kind": "switch", "site": "hq" },
                "a": host("hq", "10.9.0.1", json!([{ "kind": "tcp-sink", "port": 9 }])),
                "b": host("branch-udp", "10.9.0.2", peer_apps()),
                "c": host("branch-tcp", "10.9.0.3", peer_apps()),
            },
            "links": [
                { "a": "a:eth0", "b": "sw" },
                { "name": "wan-udp", "a": "b:eth0", "b": "sw", "transport": "udp", "impair": { "latency": "1ms" } },
                { "name": "wan-tcp", "a": "c:eth0", "b": "sw", "transport": "tcp", "impair": { "latency": "1ms" } },
            ],
            "sites": { "hq": { "listen": at }, "branch-udp": { "connect": at }, "branch-tcp": { "connect": at } },
        });
        write_json(&lab, &l);
        Proc::site(dir.path(), "hq", &lab, "hq", Key::Env(&key), &["--duration", "11s"])
    });
    let relay = Relay::start(port);
    let via = format!("127.0.0.1:{}", relay.port);
    let args = ["--connect", &via, "--duration", "11s"];
    let mut bu = Proc::site(dir.path(), "branch-udp", &lab, "branch-udp", Key::Env(&key), &args);
    let mut bt = Proc::site(dir.path(), "branch-tcp", &lab, "branch-tcp", Key::Env(&key), &["--duration", "11s"]);
    // Both tunnels up (hq's clock runs only then) and the pings going.
    wait_until(Duration::from_secs(20), "hq's lab running", || frames_so_far(&hq) > 30);
    wait_until(Duration::from_secs(10), "data through the relay", || relay.sent(DATA).len() >= 20);
    let rss_before = hq.rss_kib();
    let attack = Instant::now();
    let mut rng = Noise(0x9e37_79b9_7f4a_7c15);
    let held = tcp_attack(port, &mut rng);
    let real: Vec<Vec<u8>> = relay.seen.lock().expect("lock").clone();
    let datagrams = udp_attack(port, &real, &mut rng);
    // Every handshake slot stays taken by a silent connection until its 5 s run out.
    let hold = Duration::from_millis(6500);
    while attack.elapsed() < hold {
        assert!(hq.running(), "hq died under attack:\n{}", hq.tail());
        sleep_ms(100);
    }
    let rss_after = hq.rss_kib();
    let held_n = held.len();
    drop(held);
    let attack_s = attack.elapsed().as_secs_f64();
    assert!(hq.running(), "hq survived:\n{}", hq.tail());
    for p in [&mut bu, &mut bt, &mut hq] {
        p.wait_ok(PROCESS_LIMIT);
    }
    let (h, ru, rt) = (hq.report(), bu.report(), bt.report());
    let (tu, tt) = (tunnel(&h, "branch-udp"), tunnel(&h, "branch-tcp"));
    let _ = writeln!(
        std::io::stderr(),
        "hostile: {datagrams} datagrams and {held_n} connections held in {attack_s:.1} s; hq VmRSS {rss_before} KiB \
         before, {rss_after} KiB after; refused on udp {}, on tcp {}; log lines: {} busy, {} timeout, {} malformed; \
         pings: udp peer {}/{}, tcp peer {}/{}",
        tu["refused"],
        tt["refused"],
        refusal_lines(&hq, "busy"),
        refusal_lines(&hq, "timeout"),
        refusal_lines(&hq, "malformed"),
        app(&ru, "ping")["received"],
        app(&ru, "ping")["sent"],
        app(&rt, "ping")["received"],
        app(&rt, "ping")["sent"],
    );
    // Memory: the attack may cost buffers, never a growth with what it sends.
    assert!(rss_after < rss_before + 16 * 1024, "VmRSS grew from {rss_before} KiB to {rss_after} KiB");
    // The real peers' links carried on through the attack.
    for r in [&ru, &rt] {
        let p = app(r, "ping");
        assert_eq!(u(&p["sent"]), 45, "{p}");
        assert!(u(&p["received"]) >= 40, "at most 10% lost: {p}");
        assert_eq!(u(&p["corrupt"]), 0, "{p}");
        assert_transfer_done(r, 4 * MIB);
    }
    let sink = app(&h, "tcp-sink");
    assert_eq!((u(&sink["bytes"]), u(&sink["corrupt_bytes"]), u(&sink["connections"])), (8 * MIB, 0, 2), "{sink}");
    for t in [tu, tt] {
        assert_eq!(u(&t["sessions"]), 1, "no session lost or taken over: {t}");
    }
    // The refusals, by kind.
    assert!(refused(tt, "busy") >= 500, "connections past the handshake slots: {tt}");
    assert!(refused(tt, "timeout") >= 50, "silent connections time out: {tt}");
    assert!(refused(tt, "malformed") >= 70, "{tt}");
    assert_eq!((refused(tt, "wrong-key"), refused(tt, "plaintext")), (10, 5), "{tt}");
    for kind in ["malformed", "unknown-session", "wrong-key", "replay", "busy"] {
        assert!(refused(tu, kind) >= 1, "udp refuses {kind}: {tu}");
    }
    // The log says what was refused from where, but a flood does not flood it: at most about a
    // line a second for each kind of refusal from one address.
    let busy_lines = refusal_lines(&hq, "busy");
    assert!(busy_lines <= 20, "{busy_lines} lines logged a busy refusal in {attack_s:.1} s");
    // The report's log (its last lines) still says when the tunnels came up.
    assert_eq!(count_lines(&h, ": up with "), 2, "{:?}", log_lines(&h));
}

/// The frames of `link` in a pcapng file: the SHA-256 of each, sorted (a multiset of frames).
fn frame_hashes(path: &Path, link: &str) -> Vec<[u8; 32]> {
    use sha2::{Digest, Sha256};
    let mut v: Vec<[u8; 32]> =
        common::read_pcapng(path).iter().filter(|f| f.link == link).map(|f| Sha256::digest(&f.data).into()).collect();
    v.sort_unstable();
    v
}

/// Both ends of a tunnel capture the same frames: each site's pcapng holds, for the tunnel
/// link, the frames it sent and those it received, so the two files hold the same multiset.
fn both_ends_capture_the_same_frames(transport: &str, a_apps: Value, b_apps: Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    let lab = dir.path().join("lab.json");
    let key = new_key();
    let (hq_cap, branch_cap) = (dir.path().join("hq.pcapng"), dir.path().join("branch.pcapng"));
    let (mut hq, _) = start_listener(transport == "tcp", transport == "udp", |port| {
        write_json(&lab, &pair_lab("captures", transport, socket_sites(port), a_apps.clone(), b_apps.clone()));
        Proc::site(dir.path(), "hq", &lab, "hq", Key::Env(&key), &["--capture", path_str(&hq_cap), "--duration", "4s"])
    });
    let args = ["--capture", path_str(&branch_cap), "--duration", "4s"];
    let mut branch = Proc::site(dir.path(), "branch", &lab, "branch", Key::Env(&key), &args);
    hq.wait_ok(PROCESS_LIMIT);
    branch.wait_ok(PROCESS_LIMIT);
    let (h, b) = (hq.report(), branch.report());
    let (a, z) = (frame_hashes(&hq_cap, "wan"), frame_hashes(&branch_cap, "wan"));
    let (th, tb) = (tunnel(&h, "branch"), tunnel(&b, "hq"));
    let _ = writeln!(
        std::io::stderr(),
        "captures over {transport}: hq {} frames, branch {} frames on `wan`; tunnel hq->branch {} out {} in, \
         branch->hq {} out {} in",
        a.len(),
        z.len(),
        th["frames_out"],
        tb["frames_in"],
        tb["frames_out"],
        th["frames_in"]
    );
    assert!(a.len() > 40, "{}", a.len());
    assert_eq!(a.len(), z.len(), "both captures hold as many frames of the tunnel link");
    assert!(a == z, "both captures hold the same frames of the tunnel link");
    // And they are what crossed: every frame sent one way arrived, none twice.
    assert_eq!(u(&th["frames_out"]) + u(&tb["frames_out"]), a.len() as u64);
    assert_eq!(u(&th["frames_in"]) + u(&tb["frames_in"]), a.len() as u64);
}

/// Over TCP, with a transfer: the captures agree frame for frame.
#[test]
fn both_ends_capture_the_same_frames_over_tcp() {
    both_ends_capture_the_same_frames(
        "tcp",
        json!([ping("b", 10, "50ms"), { "kind": "tcp-transfer", "to": "b:9", "bytes": "2MiB" }]),
        json!([{ "kind": "tcp-sink", "port": 9 }, ping("a", 10, "50ms")]),
    );
}

/// Over UDP, with pings and a small transfer (no burst that the receiving socket could drop).
#[test]
fn both_ends_capture_the_same_frames_over_udp() {
    both_ends_capture_the_same_frames(
        "udp",
        json!([ping("b", 20, "50ms"), { "kind": "tcp-transfer", "to": "b:9", "bytes": "64KiB" }]),
        json!([{ "kind": "tcp-sink", "port": 9 }, ping("a", 20, "50ms")]),
    );
}
