//! The real binary on a real terminal: `netlab run` in a tmux pane, driven with `send-keys` and read
//! with `capture-pane`. Skipped (with a line saying so) where tmux is missing, unless
//! NETLAB_REQUIRE_TOOLS=1.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{read_pcapng, root, tool};

/// A tmux server of its own, killed when the test ends.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(shell: &str) -> Tmux {
        let socket = format!("netlab-test-{}-{}", std::process::id(), rand_suffix());
        let t = Tmux { socket };
        let ok = t.cmd(&["new-session", "-d", "-x", "120", "-y", "40", shell]).status.success();
        assert!(ok, "tmux starts");
        t
    }

    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux").args(["-L", &self.socket]).args(args).output().expect("tmux runs")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p"]).stdout).into_owned()
    }

    /// The screen and the lines scrolled off it (a summary longer than the pane).
    fn history(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-S", "-200"]).stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys"];
        args.extend_from_slice(keys);
        assert!(self.cmd(&args).status.success());
    }

    /// Waits (at most 30 s) until the screen shows what `test` looks for; returns that screen.
    fn wait(&self, what: &str, test: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.screen();
            if test(&s) {
                if std::env::var_os("NETLAB_TMUX_DEBUG").is_some() {
                    eprintln!("--- {what}:\n{s}");
                }
                return s;
            }
            assert!(Instant::now() < deadline, "waited for {what}; the screen:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The pid of the program the pane's shell runs.
    fn child_pid(&self) -> String {
        let sh = String::from_utf8_lossy(&self.cmd(&["list-panes", "-F", "#{pane_pid}"]).stdout).trim().to_string();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = Command::new("pgrep").args(["-P", &sh, "netlab"]).output().expect("pgrep");
            let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if !pid.is_empty() {
                return pid;
            }
            assert!(Instant::now() < deadline, "netlab started in the pane");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| u64::from(d.subsec_nanos()))
}

/// The shell line that runs netlab in the pane, then records how it exited and the terminal's mode.
fn shell(dir: &Path, args: &str) -> (String, PathBuf) {
    let stty = dir.join("stty.txt");
    let line = format!(
        "cd '{}' && '{}' run {args}; echo EXITED $?; stty -a > '{}'; sleep 60",
        root().display(),
        env!("CARGO_BIN_EXE_netlab"),
        stty.display()
    );
    (line, stty)
}

/// The status bar's event count, while paused.
fn event_count(screen: &str) -> u64 {
    let at = screen.find(" · event ").expect("an event count on the status bar");
    screen[at + 9..].split_whitespace().next().and_then(|n| n.parse().ok()).expect("a number")
}

fn cooked(stty: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !stty.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    let s = std::fs::read_to_string(stty).unwrap_or_default();
    s.split_whitespace().any(|w| w == "icanon") && s.split_whitespace().any(|w| w == "echo")
}

#[test]
fn a_session_at_the_keyboard() {
    if !tool("tmux") {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let cap = dir.path().join("live.pcapng");
    let report = dir.path().join("report.json");
    let (line, stty) = shell(
        dir.path(),
        &format!("labs/single-lan.json --speed 0.25 --capture '{}' --report '{}'", cap.display(), report.display()),
    );
    let t = Tmux::start(&line);
    // 1-2. The nodes' links, and traffic on them.
    t.wait("the links and a rate", |s| {
        s.contains("laptop:eth0<->sw1")
            && s.lines().any(|l| {
                l.contains("desktop:eth0")
                    && (l.contains("Mbit/s") || l.contains("kbit/s"))
                    && !l.contains(" 0 bit/s   0 bit/s")
            })
    });
    // The conversations, with the TCP transfer's state as seen on the wire.
    t.keys(&["2"]);
    t.wait("the flows", |s| {
        s.contains("flows ·")
            && s.lines().any(|l| {
                l.starts_with("TCP") && (l.contains("established") || l.contains("closed")) && l.contains(" ms")
            })
    });
    // 3. The packets, newest first in view.
    t.keys(&["3"]);
    t.wait("the packets list and a decoded frame", |s| {
        s.contains("destination")
            && (s.contains("TCP") || s.contains("ICMP") || s.contains("ARP"))
            && s.contains("Ethernet II, Src: ")
    });
    // A filter, wrong then right: where it is wrong shows as it is typed; applied, the list
    // holds only what it lets through.
    t.keys(&["/", "tcp.prot"]);
    t.wait("the filter's error", |s| s.contains("did you mean `tcp.port`"));
    t.keys(&["BSpace", "BSpace", "BSpace", "BSpace", "BSpace", "BSpace", "BSpace", "BSpace", "icmp", "Enter"]);
    let s = t.wait("the filtered list", |s| s.contains("matching `icmp`") && s.contains("Echo (ping)"));
    let rows: Vec<&str> =
        s.lines().skip(3).take_while(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit())).collect();
    assert!(!rows.is_empty() && rows.iter().all(|r| r.contains("ICMP")), "{s}");
    // 4. A packet's journey.
    t.keys(&["Enter"]);
    t.wait("a journey", |s| s.contains("journey of packet") && s.contains("delivered"));
    // 5. Pause, then one step: exactly one event more.
    t.keys(&["p"]);
    let before = event_count(&t.wait("paused", |s| s.contains("paused") && s.contains(" · event ")));
    t.keys(&["."]);
    let after = t.wait("one step", |s| event_count(s) != before);
    assert_eq!(event_count(&after), before + 1, "{after}");
    // 6. Take the first link down, and watch its drops grow once the lab runs again.
    t.keys(&["p", "1", "Home", "d"]);
    t.wait("the link down, dropping", |s| {
        s.lines().any(|l| l.starts_with("laptop:eth0") && l.contains(" down ") && l.contains("link-down"))
    });
    // A command typed with completion, and one the lab refuses before it is sent.
    t.keys(&[":", "down nowh", "Enter"]);
    t.wait("the refusal", |s| s.contains("no link `nowh`"));
    // Escape alone, then a pause: a terminal cannot tell an Escape from the start of a sequence.
    t.keys(&["Escape"]);
    std::thread::sleep(Duration::from_millis(300));
    t.keys(&[":", "ping lap", "Tab", " desktop count=2", "Enter", "6"]);
    t.wait("the command in the log", |s| {
        s.contains("start-app laptop ping") && s.contains("link-down laptop:eth0<->sw1")
    });
    // 7. Quit: the summary, a cooked terminal, a whole capture, a report whose log replays.
    t.keys(&["q"]);
    let end = t.wait("the exit", |s| s.contains("EXITED"));
    let all = t.history();
    assert!(end.contains("EXITED 0") && all.contains("lab single-lan"), "{all}");
    assert!(cooked(&stty), "the terminal is back in cooked mode with echo");
    let live = read_pcapng(&cap);
    assert!(!live.is_empty());
    if tool("tshark") {
        let read = common::tshark(&["-r", cap.to_str().expect("utf-8")]);
        assert_eq!(read.lines().count(), live.len(), "tshark reads every frame of the session's capture");
    }
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("json");
    assert_eq!(r["ended"], "stopped");
    assert_eq!(r["commands"][0]["command"]["kind"], "link-down", "{r}");
    assert_eq!(r["commands"][1]["command"]["kind"], "start-app", "{r}");
    let replayed = dir.path().join("replayed.pcapng");
    let out = common::netlab()
        .args(["run", "labs/single-lan.json", "--virtual-time", "-q", "--replay"])
        .arg(&report)
        .arg("--duration")
        .arg(format!("{}ns", (r["sim_seconds"].as_f64().unwrap() * 1e9).round() as u64))
        .arg("--capture")
        .arg(&replayed)
        .output()
        .expect("replay");
    // The session took a link down: when that was early enough to cost the apps what the lab's
    // expectations ask, the replay (a run that ends by itself) says so with exit code 1.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let verdict = out.status.code() == Some(1) && stdout.contains("FAIL");
    assert!(out.status.success() || verdict, "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let again = read_pcapng(&replayed);
    assert_eq!(live.len(), again.len(), "the replay gives the frames of the session");
    let epoch = live[0].ts_ns - again[0].ts_ns;
    for (a, b) in live.iter().zip(&again) {
        assert_eq!((&a.link, a.ts_ns - epoch, &a.data), (&b.link, b.ts_ns, &b.data));
    }
}

#[test]
fn sigterm_restores_the_terminal() {
    if !tool("tmux") {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let (line, stty) = shell(dir.path(), "labs/two-site.json --no-capture");
    let t = Tmux::start(&line);
    t.wait("the lab on screen", |s| s.contains("1 Overview") && s.contains("wan"));
    let pid = t.child_pid();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let end = t.wait("the exit", |s| s.contains("EXITED"));
    // Stopped before its apps finished: its expectations are printed, with no verdict (exit 0).
    let all = t.history();
    assert!(end.contains("EXITED 0") && all.contains("stopped by signal"), "{all}");
    assert!(cooked(&stty), "the terminal is back in cooked mode with echo");
}

/// Two sites, each in its own terminal UI: the first waits for its tunnel (and says so), then both
/// show the tunnel up, the lab runs across it, and each quits on `q`.
#[test]
fn each_site_shows_its_tunnel() {
    if !tool("tmux") {
        return;
    }
    let key =
        String::from_utf8(Command::new(env!("CARGO_BIN_EXE_netlab")).arg("key").output().expect("netlab key").stdout)
            .expect("utf-8");
    let port = std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).expect("a port").port();
    let line = |site: &str, how: &str| {
        format!(
            "cd '{}' && NETLAB_KEY={} '{}' run labs/two-site.json --no-capture --site {site} {how}; echo EXITED $?; sleep 60",
            root().display(),
            key.trim(),
            env!("CARGO_BIN_EXE_netlab"),
        )
    };
    let hq = Tmux::start(&line("hq", &format!("--listen 127.0.0.1:{port}")));
    hq.wait("hq waiting for its tunnel", |s| {
        s.contains("waiting for the tunnels") && s.contains("hq<->branch udp connecting")
    });
    let branch = Tmux::start(&line("branch", &format!("--connect hq=127.0.0.1:{port}")));
    for (t, name) in [(&hq, "hq<->branch"), (&branch, "branch<->hq")] {
        let s = t.wait("the tunnel up and the lab running", |s| {
            s.contains(&format!("{name} udp up")) && s.contains("running") && s.contains("udp up")
        });
        assert!(!s.contains("waiting for the tunnels"), "{s}");
    }
    // The transfer crossed: hq sent its 2 MiB through the tunnel.
    hq.wait("the transfer through the tunnel", |s| s.contains("hq<->branch udp up") && s.contains("2.1 MiB out"));
    for t in [&hq, &branch] {
        t.keys(&["q"]);
        let end = t.wait("the exit", |s| s.contains("EXITED"));
        assert!(end.contains("EXITED 0"), "{end}");
    }
}

#[test]
fn a_forward_through_a_gateway_shows_on_the_nodes_page() {
    if !tool("tmux") {
        return;
    }
    // gateway-local on ports of its own, in front of a real server.
    let server = netlab::bench_gateway::Server::start(2048).expect("server");
    let forward = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a port").port();
    let text = std::fs::read_to_string(root().join("labs/gateway-local.json"))
        .expect("lab")
        .replace("18080", &forward.to_string())
        .replace("18081", &server.addr.port().to_string());
    let dir = tempfile::tempdir().expect("tmp");
    let lab = dir.path().join("gateway.json");
    std::fs::write(&lab, text).expect("write");
    let (line, _) = shell(dir.path(), &format!("'{}' --no-capture", lab.display()));
    let t = Tmux::start(&line);
    t.wait("the lab running", |s| s.contains("running"));
    let to: std::net::SocketAddr = format!("127.0.0.1:{forward}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while netlab::bench_gateway::fetch(to, 2048).is_err() {
        assert!(Instant::now() < deadline, "the forward answered");
        std::thread::sleep(Duration::from_millis(100));
    }
    t.keys(&["5"]);
    t.wait("the forward's host", |s| s.contains("forward client: 1 flows") && s.contains("gw (gateway)"));
    t.keys(&["Down"]);
    let s = t.wait("the gateway's flow", |s| s.contains("gateway gw: 1 flows, 1 dials"));
    assert!(s.contains(&format!("⇒ 127.0.0.1:{}", server.addr.port())), "{s}");
    t.keys(&["q"]);
    let end = t.wait("the exit", |s| s.contains("EXITED"));
    assert!(end.contains("EXITED 0"), "{end}");
    let all = t.history();
    assert!(all.contains("real sockets") && all.contains(&format!("forward tcp 127.0.0.1:{forward}")), "{all}");
}
