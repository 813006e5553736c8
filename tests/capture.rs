//! Captures: interface names, nanosecond timestamps, ARP, ICMP, TCP, checksums, no malformed
//! frames; pcapng on standard output; files readable after SIGINT/SIGTERM; determinism.
//!
//! Each capture is read back in Rust (pcap-file) and its frames decoded with smoltcp::wire, so a
//! machine with only Rust checks its structure. tshark, when installed, reads it as well, with its
//! own dissectors; without it, those checks are skipped with a line saying so (or fail, with
//! `NETLAB_REQUIRE_TOOLS=1`, as in CI).

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{count, decode_all, netlab, read_pcapng, run_lab, tool, tshark, Packet};

/// The links of a capture, each once, sorted.
fn link_names(frames: &[common::CapturedFrame]) -> Vec<String> {
    let mut names: Vec<String> = frames.iter().map(|f| f.link.clone()).collect();
    names.sort();
    names.dedup();
    names
}

fn capture_single_lan(dir: &Path, seed: &str) -> std::path::PathBuf {
    let file = dir.join(format!("seed{seed}.pcapng"));
    run_lab("labs/single-lan.json", &["--virtual-time", "--seed", seed, "--capture", file.to_str().unwrap()], dir);
    file
}

#[test]
fn a_pcapng_of_every_link_reads_whole() {
    let dir = tempfile::tempdir().expect("tmp");
    let f = capture_single_lan(dir.path(), "1");

    // In Rust: one named interface per link, every frame decoded, every checksum valid.
    let frames = read_pcapng(&f);
    assert_eq!(link_names(&frames), ["desktop:eth0<->sw1", "laptop:eth0<->sw1", "server:eth0<->sw1"]);
    // Nanosecond resolution: some timestamps are not whole microseconds (links add 500 us plus
    // serialisation times such as 336 ns for a 42-byte frame at 1 Gbit/s). Virtual time starts at
    // the epoch.
    assert!(frames.iter().take(50).any(|f| f.ts_ns % 1000 != 0), "expected nanosecond timestamps");
    assert!(frames[0].ts_ns < 1_000_000_000, "{}", frames[0].ts_ns);
    let packets = decode_all(&frames);
    assert!(packets.iter().all(|(_, p)| p.checksums_ok()), "a checksum does not verify");
    // ARP requests, each reply answering one.
    let (requests, replies) = common::arp_pairs(&packets);
    assert!(requests > 0 && replies > 0, "{requests} ARP requests, {replies} replies");
    // ICMP and ICMPv6 echo on the laptop's link: every request answered.
    let laptop = "laptop:eth0<->sw1";
    assert_eq!(common::echo_pairs(&packets, laptop, false), 4);
    assert_eq!(common::echo_pairs(&packets, laptop, true), 4);
    // A full TCP handshake and FIN on the desktop's transfer.
    let desk: Vec<&common::Tcp> = packets
        .iter()
        .filter(|(l, _)| *l == "desktop:eth0<->sw1")
        .filter_map(|(_, p)| p.tcp())
        .filter(|t| t.src_port == 9 || t.dst_port == 9)
        .collect();
    let syn: Vec<_> = desk.iter().filter(|t| t.syn && !t.ack).collect();
    let syn_ack: Vec<_> = desk.iter().filter(|t| t.syn && t.ack).collect();
    assert_eq!((syn.len(), syn_ack.len()), (1, 1), "one SYN and one SYN-ACK");
    assert_eq!((syn[0].dst_port, syn_ack[0].src_port), (9, 9));
    assert_eq!(syn_ack[0].ack_number, syn[0].seq.wrapping_add(1), "the SYN-ACK acknowledges the SYN");
    assert!(
        desk.iter().any(|t| !t.syn
            && t.ack
            && t.src_port == syn[0].src_port
            && t.ack_number == syn_ack[0].seq.wrapping_add(1)),
        "the client acknowledges the SYN-ACK"
    );
    assert_eq!(desk.iter().filter(|t| t.fin).count(), 2);
    assert_eq!(desk.iter().filter(|t| t.rst).count(), 0);

    if !tool("tshark") {
        return;
    }
    let fs = f.to_str().unwrap();
    // tshark's view: the same interfaces, nanosecond timestamps from the epoch.
    let mut names: Vec<String> =
        tshark(&["-r", fs, "-T", "fields", "-e", "frame.interface_name"]).lines().map(str::to_string).collect();
    names.sort();
    names.dedup();
    assert_eq!(names, link_names(&frames));
    let times = tshark(&["-r", fs, "-T", "fields", "-e", "frame.time_epoch", "-c", "50"]);
    assert!(
        times.lines().any(|t| t.len() >= 10 && !t.ends_with("000")),
        "expected nanosecond timestamps, got:\n{times}"
    );
    assert!(times.lines().next().unwrap().starts_with("0."), "{times}");

    // ARP request and reply.
    assert!(count(&f, "arp.opcode == 1") > 0);
    assert!(count(&f, "arp.opcode == 2") > 0);

    // ICMP and ICMPv6 echo: every request answered, seen on the laptop's link.
    let laptop = "frame.interface_name == \"laptop:eth0<->sw1\"";
    assert_eq!(count(&f, &format!("{laptop} && icmp.type == 8")), 4);
    assert_eq!(count(&f, &format!("{laptop} && icmp.type == 0")), 4);
    assert_eq!(count(&f, &format!("{laptop} && icmpv6.type == 128")), 4);
    assert_eq!(count(&f, &format!("{laptop} && icmpv6.type == 129")), 4);

    // A full TCP handshake and FIN on the desktop's transfer.
    let desk = "frame.interface_name == \"desktop:eth0<->sw1\" && tcp.port == 9";
    assert_eq!(count(&f, &format!("{desk} && tcp.flags.syn == 1 && tcp.flags.ack == 0")), 1);
    assert_eq!(count(&f, &format!("{desk} && tcp.flags.syn == 1 && tcp.flags.ack == 1")), 1);
    assert_eq!(count(&f, &format!("{desk} && tcp.flags.fin == 1")), 2);
    assert_eq!(count(&f, &format!("{desk} && tcp.flags.reset == 1")), 0);

    // Nothing malformed, no expert errors.
    assert_eq!(count(&f, "_ws.malformed || _ws.expert.severity == error"), 0);
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let dir = tempfile::tempdir().expect("tmp");
    let a = std::fs::read(capture_single_lan(dir.path(), "7")).expect("read");
    let sub = dir.path().join("again");
    std::fs::create_dir_all(&sub).expect("mkdir");
    let b = std::fs::read(capture_single_lan(&sub, "7")).expect("read");
    assert!(a.len() > 100_000);
    assert!(a == b, "two virtual-time runs with seed 7 gave different captures");

    let c_path = capture_single_lan(dir.path(), "8");
    let c = std::fs::read(&c_path).expect("read");
    assert!(a != c, "seeds 7 and 8 gave the same capture");
    // The seed drives smoltcp's initial sequence numbers and the ephemeral ports.
    let syn = |f: &Path| {
        tshark(&[
            "-r",
            f.to_str().unwrap(),
            "-Y",
            "tcp.flags.syn == 1 && tcp.flags.ack == 0",
            "-T",
            "fields",
            "-e",
            "tcp.seq_raw",
            "-e",
            "tcp.srcport",
        ])
    };
    let syn_rust = |f: &Path| -> Vec<(u32, u16)> {
        let frames = read_pcapng(f);
        let packets = decode_all(&frames);
        packets.iter().filter_map(|(_, p)| p.tcp()).filter(|t| t.syn && !t.ack).map(|t| (t.seq, t.src_port)).collect()
    };
    let (r7, r8) = (syn_rust(&dir.path().join("seed7.pcapng")), syn_rust(&c_path));
    assert!(!r7.is_empty());
    assert_ne!(r7, r8);
    if !tool("tshark") {
        return;
    }
    let (s7, s8) = (syn(&dir.path().join("seed7.pcapng")), syn(&c_path));
    assert!(!s7.is_empty());
    assert_ne!(s7, s8);
}

#[test]
fn classic_pcap_per_link() {
    let dir = tempfile::tempdir().expect("tmp");
    let lab = dir.path().join("lab.json");
    let text = std::fs::read_to_string(common::root().join("labs/single-lan.json")).expect("read");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let out = dir.path().join("pcaps");
    v["capture"] = serde_json::json!({ "format": "pcap", "dir": out, "links": ["laptop:eth0"] });
    std::fs::write(&lab, v.to_string()).expect("write");
    run_lab(lab.to_str().unwrap(), &["--virtual-time"], dir.path());
    let files: Vec<_> = std::fs::read_dir(out.join("virtual-seed1")).expect("dir").map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].ends_with("laptop_eth0--sw1.pcap"), "{files:?}");
    let frames = common::read_pcap(&files[0]);
    let packets = decode_all(&frames);
    assert!(packets.iter().all(|(_, p)| p.checksums_ok()));
    assert_eq!(common::echo_pairs(&packets, "", false), 4);
    if !tool("tshark") {
        return;
    }
    assert_eq!(count(&files[0], "icmp.type == 0"), 4);
    // With one link per file, Wireshark pairs every request with its reply. (In a pcapng of several
    // links the same frame appears once per link, and Wireshark pairs a request with the last copy.)
    assert_eq!(count(&files[0], "icmp.type == 8 && !icmp.resp_in"), 0);
    assert_eq!(count(&files[0], "icmp.type == 8 && icmp.resp_in"), 4);
    assert_eq!(count(&files[0], "_ws.malformed"), 0);
}

/// single-lan in virtual time, its pcapng on standard output.
fn single_lan_streaming() -> std::process::Child {
    netlab()
        .args(["run", "labs/single-lan.json", "--headless", "-q", "--virtual-time", "--capture", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("netlab")
}

/// Waits for a run whose summary goes to standard error, and checks it.
fn finished(mut lab: std::process::Child) {
    let status = lab.wait().expect("netlab exits");
    let mut err = String::new();
    lab.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "{err}");
    assert!(err.contains("every app finished"), "the summary goes to stderr: {err}");
}

#[test]
fn pcapng_streams_on_standard_output() {
    // Read as it comes, in Rust.
    let mut lab = single_lan_streaming();
    let frames = common::read_pcapng_from(lab.stdout.take().expect("stdout"));
    finished(lab);
    assert!(frames.len() > 10_000, "{} frames from the pipe", frames.len());
    assert_eq!(link_names(&frames), ["desktop:eth0<->sw1", "laptop:eth0<->sw1", "server:eth0<->sw1"]);
    let packets = decode_all(&frames);
    assert_eq!(common::echo_pairs(&packets, "laptop:eth0<->sw1", false), 4, "four echoes on the laptop link");

    if !tool("tshark") {
        return;
    }
    // Straight into tshark.
    let mut lab = single_lan_streaming();
    let pipe = lab.stdout.take().expect("stdout");
    let ts = Command::new("tshark")
        .args(["-i", "-", "-T", "fields", "-e", "frame.interface_name", "-e", "icmp.type"])
        .stdin(pipe)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("tshark");
    finished(lab);
    let out = String::from_utf8_lossy(&ts.stdout);
    let frames = out.lines().count();
    assert!(
        frames > 10_000,
        "tshark read {frames} frames from the pipe; stderr: {}",
        String::from_utf8_lossy(&ts.stderr)
    );
    assert_eq!(out.lines().filter(|l| *l == "laptop:eth0<->sw1\t0").count(), 4, "four echo replies on the laptop link");
}

/// Waits for `child`; kills it and fails the test if it has not exited in `limit`.
fn wait_at_most(child: &mut std::process::Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("netlab did not {what} within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A wall-clock run, stopped by a signal part way, leaves a capture tshark reads whole.
fn stopped_by(signal: &str) {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("stopped.pcapng");
    let report = dir.path().join("report.json");
    let mut child = netlab()
        .args(["run", "labs/two-site.json", "--headless", "-q", "--duration", "60s", "--capture"])
        .arg(&file)
        .arg("--report")
        .arg(&report)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("netlab");
    std::thread::sleep(Duration::from_millis(2000));
    let kill = Command::new("kill").args([signal, &child.id().to_string()]).status().expect("kill");
    assert!(kill.success());
    let status = wait_at_most(&mut child, Duration::from_secs(20), &format!("stop after {signal}"));
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "{signal}: {status:?} {err}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("json");
    assert_eq!(r["ended"], "signal");
    let sim = r["sim_seconds"].as_f64().unwrap();
    // Stopped part way: well before the 60 s asked for (a slow start may leave it short of 2 s).
    assert!(sim > 0.5 && sim < 30.0, "{sim}");
    // pcap-file reads every block whole, in time order.
    let frames = read_pcapng(&file);
    assert!(frames.len() > 100, "{}", frames.len());
    assert_eq!(frames.len() as u64, r["capture"]["frames"].as_u64().unwrap());
    // On the wall clock too, frames are written in time order across links (a frame a switch
    // forwards is not written after a later one from another link).
    assert!(frames.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns), "frames out of time order");
    decode_all(&frames);
    if !tool("tshark") {
        return;
    }
    // tshark reads every frame and finds no truncated record.
    let out = Command::new("tshark").arg("-r").arg(&file).output().expect("tshark");
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !e.contains("cut short") && !e.contains("appears to be damaged"), "{e}");
    let frames = String::from_utf8_lossy(&out.stdout).lines().count() as u64;
    assert!(frames > 100, "{frames}");
    assert_eq!(frames, r["capture"]["frames"].as_u64().unwrap());
    // On the wall clock too, frames are written in time order across links (a frame a switch
    // forwards is not written after a later one from another link).
    assert_eq!(count(&file, "frame.time_delta < 0"), 0, "frames out of time order");
}

#[test]
fn sigint_leaves_a_whole_capture() {
    stopped_by("-INT");
}

#[test]
fn sigterm_leaves_a_whole_capture() {
    stopped_by("-TERM");
}

/// Runs single-lan with a changed top level; returns the capture path.
fn single_lan_with(dir: &Path, change: impl FnOnce(&mut serde_json::Value)) -> std::path::PathBuf {
    let text = std::fs::read_to_string(common::root().join("labs/single-lan.json")).expect("read");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
    change(&mut v);
    let lab = dir.join("lab.json");
    std::fs::write(&lab, v.to_string()).expect("write");
    let file = dir.join("out.pcapng");
    let (_, r) = run_lab(lab.to_str().unwrap(), &["--virtual-time", "--capture", file.to_str().unwrap()], dir);
    assert_eq!(r["ended"], "apps-finished");
    let sunk = common::apps(&r, "tcp-sink")[0]["bytes"].as_u64();
    assert_eq!(sunk, Some(4 << 20), "the transfer completes either way");
    file
}

#[test]
fn checksums_are_valid_by_default_and_absent_with_offload() {
    let dir = tempfile::tempdir().expect("tmp");
    let f = single_lan_with(dir.path(), |_| {});
    let dir2 = tempfile::tempdir().expect("tmp");
    let f2 = single_lan_with(dir2.path(), |v| v["checksum_offload"] = serde_json::json!(true));

    // In Rust: every IP header, ICMP, TCP and UDP checksum verifies by default.
    let frames = read_pcapng(&f);
    let packets = decode_all(&frames);
    assert!(packets.iter().all(|(_, p)| p.checksums_ok()), "every checksum verifies");
    assert!(packets.iter().filter(|(_, p)| p.tcp().is_some()).count() > 1000);
    // The decoder is not blind: a flipped byte fails the checksum, a cut frame fails to decode.
    let tcp = frames.iter().zip(&packets).find(|(_, (_, p))| p.tcp().is_some()).map(|(f, _)| f).expect("a segment");
    let mut flipped = tcp.data.clone();
    *flipped.last_mut().expect("bytes") ^= 0x01;
    assert!(!common::decode(&flipped).expect("decodes").checksums_ok());
    assert!(common::decode(&tcp.data[..30]).is_err());
    // With offload, IPv4 header checksums are 0, and TCP checksums do not verify.
    let frames = read_pcapng(&f2);
    let packets = decode_all(&frames);
    let v4_headers: Vec<u16> = packets
        .iter()
        .filter_map(|(_, p)| match p {
            Packet::Ip { src, header_checksum, .. } if src.is_ipv4() => Some(*header_checksum),
            _ => None,
        })
        .collect();
    assert!(!v4_headers.is_empty() && v4_headers.iter().all(|c| *c == 0), "no IPv4 header checksum is filled in");
    assert!(packets.iter().filter_map(|(_, p)| p.tcp()).filter(|t| !t.checksum_ok).count() > 1000);

    if !tool("tshark") {
        return;
    }
    let check = ["-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"];
    let bad = |f: &Path| {
        let mut args = vec!["-r", f.to_str().unwrap()];
        args.extend(check);
        args.extend([
            "-Y",
            "ip.checksum.status == \"Bad\" || tcp.checksum.status == \"Bad\" || udp.checksum.status == \"Bad\"",
        ]);
        tshark(&args).lines().count()
    };
    let good = {
        let mut args = vec!["-r", f.to_str().unwrap()];
        args.extend(check);
        args.extend(["-Y", "tcp.checksum.status == \"Good\""]);
        tshark(&args).lines().count()
    };
    assert_eq!(bad(&f), 0, "every checksum verifies");
    assert!(good > 1000, "{good}");
    assert_eq!(count(&f2, "ip && ip.checksum != 0"), 0, "no IPv4 header checksum is filled in");
    assert!(bad(&f2) > 1000, "with offload, checksums read 0 and do not verify");
}

#[test]
fn capture_selects_links_by_name_endpoint_or_node() {
    let dir = tempfile::tempdir().expect("tmp");
    let f = single_lan_with(dir.path(), |v| v["capture"] = serde_json::json!({ "links": ["server", "laptop:eth0"] }));
    assert_eq!(link_names(&read_pcapng(&f)), ["laptop:eth0<->sw1", "server:eth0<->sw1"]);
    let dir2 = tempfile::tempdir().expect("tmp");
    let f2 = single_lan_with(dir2.path(), |v| v["capture"] = serde_json::json!({ "links": ["sw1"] }));
    assert_eq!(link_names(&read_pcapng(&f2)).len(), 3, "a switch's name selects all its links");
    if !tool("tshark") {
        return;
    }
    let mut names: Vec<String> = tshark(&["-r", f.to_str().unwrap(), "-T", "fields", "-e", "frame.interface_name"])
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names, ["laptop:eth0<->sw1", "server:eth0<->sw1"]);

    let n = tshark(&["-r", f2.to_str().unwrap(), "-T", "fields", "-e", "frame.interface_name"]);
    let mut names: Vec<&str> = n.lines().collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 3, "a switch's name selects all its links: {names:?}");
}

/// A minute of two-site on the wall clock, its pcapng on a pipe.
fn two_site_streaming() -> std::process::Child {
    netlab()
        .args(["run", "labs/two-site.json", "--headless", "-q", "--duration", "60s", "--capture", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("netlab")
}

#[test]
fn a_reader_that_goes_away_stops_the_run() {
    // Wireshark closed, or `| head`: the pipe breaks, and netlab stops instead of running on.
    let mut child = two_site_streaming();
    let mut pipe = child.stdout.take().expect("stdout");
    let mut head = [0u8; 2000];
    pipe.read_exact(&mut head).expect("the pcapng starts");
    assert_eq!(&head[..4], &[0x0a, 0x0d, 0x0d, 0x0a], "a pcapng section header block");
    drop(pipe);
    let status = wait_at_most(&mut child, Duration::from_secs(20), "stop when its capture reader went away");
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("stopped: the capture could not be written"), "{err}");
    assert!(err.contains("error: the capture failed: Broken pipe"), "{err}");
}

#[test]
fn ctrl_c_works_even_when_the_capture_reader_stops_reading() {
    // A reader that neither reads nor exits (a paused Wireshark): the pipe fills, the writer
    // blocks, and the run waits for it. Ctrl-C must still end the run, at the first press.
    let mut child = two_site_streaming();
    let pipe = child.stdout.take().expect("stdout");
    std::thread::sleep(Duration::from_millis(2000));
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill");
    assert!(kill.success());
    let status = wait_at_most(&mut child, Duration::from_secs(15), "stop at the first Ctrl-C");
    drop(pipe);
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("stopped by signal"), "{err}");
    assert!(err.contains("the capture's reader stopped reading"), "{err}");
}
