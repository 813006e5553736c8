//! Helpers shared by the integration tests: the real binary, external tools (tshark, dot), reports,
//! and captures read and decoded in Rust (pcap-file, smoltcp::wire).
#![allow(dead_code)]

use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `netlab` binary built for these tests.
pub fn netlab() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_netlab"));
    c.current_dir(root());
    c
}

/// Runs `netlab run` and returns (output, parsed JSON report). A virtual-time run carries the
/// lab's tunnels in memory (`--in-memory`): tunnels run on the wall clock only.
pub fn run_lab(lab: &str, extra: &[&str], dir: &Path) -> (Output, Value) {
    let (out, report) = run_lab_status(lab, extra, dir);
    assert!(out.status.success(), "netlab run {lab} failed: {}", String::from_utf8_lossy(&out.stderr));
    (out, report)
}

/// [`run_lab`] whatever its exit code (a lab whose expectations fail exits 1, with its report).
#[allow(dead_code)]
pub fn run_lab_status(lab: &str, extra: &[&str], dir: &Path) -> (Output, Value) {
    let report = dir.join("report.json");
    let in_memory = extra.contains(&"--virtual-time") && !extra.contains(&"--in-memory");
    let out = netlab()
        .arg("run")
        .arg(lab)
        .args(["--headless", "-q", "--report"])
        .arg(&report)
        .args(extra)
        .args(in_memory.then_some("--in-memory"))
        .output()
        .expect("netlab runs");
    let text = std::fs::read_to_string(&report).expect("report written");
    (out, serde_json::from_str(&text).expect("report is JSON"))
}

/// How to install each external tool the tests use.
fn install_hint(tool: &str) -> String {
    match tool {
        "tshark" | "tmux" => format!("apt-get install {tool}"),
        "dot" => "apt-get install graphviz".to_string(),
        "xmllint" => "apt-get install libxml2-utils".to_string(),
        _ => format!("install {tool}"),
    }
}

/// Whether `name` is an executable file in one of the folders of `PATH`.
fn on_path(name: &str) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .any(|dir| std::fs::metadata(dir.join(name)).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// Whether the external tool `name` (such as `tshark`) is installed, for the checks that need it.
/// When it is not, prints one line saying those checks are skipped and returns false, so that
/// `cargo test` passes on a machine with only Rust; with `NETLAB_REQUIRE_TOOLS=1` (as in CI), the
/// test fails instead.
pub fn tool(name: &str) -> bool {
    if on_path(name) {
        return true;
    }
    let hint = install_hint(name);
    assert!(
        std::env::var("NETLAB_REQUIRE_TOOLS").as_deref() != Ok("1"),
        "{name} not found ({hint}); NETLAB_REQUIRE_TOOLS=1 requires it"
    );
    let test = std::thread::current().name().unwrap_or("a test").to_string();
    // Straight to standard error, past the test harness's capture, so that it shows.
    let _ = writeln!(
        std::io::stderr(),
        "{test}: {name} checks skipped: {name} not found ({hint}); set NETLAB_REQUIRE_TOOLS=1 to fail instead"
    );
    false
}

/// tshark with its arguments; fails the test if tshark is missing or fails. Call [`tool`] first.
pub fn tshark(args: &[&str]) -> String {
    let out =
        Command::new("tshark").args(args).output().expect("tshark is installed (.ci/run installs it with apt-get)");
    assert!(out.status.success(), "tshark {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Number of frames in `file` matching a display filter.
pub fn count(file: &Path, filter: &str) -> usize {
    // Two passes, so that request/response links such as `icmp.resp_in` are known.
    tshark(&["-2", "-r", file.to_str().expect("utf-8 path"), "-Y", filter]).lines().count()
}

pub fn apps<'a>(report: &'a Value, kind: &str) -> Vec<&'a Value> {
    report["apps"].as_array().expect("apps").iter().filter(|a| a["kind"] == kind).collect()
}

/// One frame of a pcapng file: the name of its interface (the link), its timestamp in
/// nanoseconds, and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedFrame {
    pub link: String,
    pub ts_ns: u64,
    pub data: Vec<u8>,
}

/// Reads every frame of a pcapng file with pcap-file (independent of netlab's writer).
pub fn read_pcapng(path: &Path) -> Vec<CapturedFrame> {
    read_pcapng_from(std::fs::File::open(path).expect("capture exists"))
}

/// Reads every frame of a pcapng stream, such as a pipe, to its end; fails on a partial block.
pub fn read_pcapng_from(stream: impl std::io::Read) -> Vec<CapturedFrame> {
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
    use pcap_file::pcapng::{Block, PcapNgReader};
    let mut r = PcapNgReader::new(stream).expect("a pcapng file");
    let mut names = Vec::new();
    let mut frames = Vec::new();
    while let Some(block) = r.next_block() {
        match block.expect("a whole block") {
            Block::InterfaceDescription(idb) => names.push(
                idb.options
                    .iter()
                    .find_map(|o| match o {
                        InterfaceDescriptionOption::IfName(n) => Some(n.to_string()),
                        _ => None,
                    })
                    .unwrap_or_default(),
            ),
            Block::EnhancedPacket(p) => frames.push(CapturedFrame {
                link: names[p.interface_id as usize].clone(),
                ts_ns: u64::try_from(p.timestamp.as_nanos()).expect("fits"),
                data: p.data.to_vec(),
            }),
            _ => {}
        }
    }
    frames
}

/// SHA-256 of every frame's link, timestamp and bytes, in file order.
pub fn frames_digest(frames: &[CapturedFrame]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for f in frames {
        h.update(f.link.as_bytes());
        h.update([0]);
        h.update(f.ts_ns.to_be_bytes());
        h.update(u32::try_from(f.data.len()).expect("fits").to_be_bytes());
        h.update(&f.data);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads every frame of a classic pcap file; `link` is left empty.
pub fn read_pcap(path: &Path) -> Vec<CapturedFrame> {
    let file = std::fs::File::open(path).expect("capture exists");
    let mut r = pcap_file::pcap::PcapReader::new(file).expect("a pcap file");
    let mut frames = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p.expect("a whole record");
        frames.push(CapturedFrame {
            link: String::new(),
            ts_ns: u64::try_from(p.timestamp.as_nanos()).expect("fits"),
            data: p.data.to_vec(),
        });
    }
    frames
}

/// A frame decoded with smoltcp::wire, every layer checked for length, every checksum verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    Arp { request: bool, sender: IpAddr, target: IpAddr },
    Ip { src: IpAddr, dst: IpAddr, header_checksum: u16, header_checksum_ok: bool, l4: L4 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum L4 {
    /// An ICMP or ICMPv6 echo request or reply.
    Echo {
        request: bool,
        ident: u16,
        seq: u16,
        checksum_ok: bool,
    },
    /// Any other ICMP or ICMPv6 message, such as neighbour discovery.
    Icmp {
        checksum_ok: bool,
    },
    Tcp(Tcp),
    Udp {
        src_port: u16,
        dst_port: u16,
        checksum_ok: bool,
    },
    /// Another protocol, or an IPv6 extension header, not decoded further.
    Other(u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tcp {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack_number: u32,
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    pub checksum_ok: bool,
}

impl Packet {
    /// Whether every checksum the frame carries verifies.
    pub fn checksums_ok(&self) -> bool {
        match self {
            Packet::Arp { .. } => true,
            Packet::Ip { header_checksum_ok, l4, .. } => {
                *header_checksum_ok
                    && match l4 {
                        L4::Echo { checksum_ok, .. } | L4::Icmp { checksum_ok } | L4::Udp { checksum_ok, .. } => {
                            *checksum_ok
                        }
                        L4::Tcp(t) => t.checksum_ok,
                        L4::Other(_) => true,
                    }
            }
        }
    }

    pub fn tcp(&self) -> Option<&Tcp> {
        match self {
            Packet::Ip { l4: L4::Tcp(t), .. } => Some(t),
            _ => None,
        }
    }
}

/// Decodes an Ethernet frame: ARP, or IPv4 or IPv6 carrying ICMP, ICMPv6, TCP or UDP.
#[allow(clippy::cast_sign_loss)]
pub fn decode(frame: &[u8]) -> Result<Packet, String> {
    use smoltcp::wire::{
        ArpOperation, ArpPacket, EthernetFrame, EthernetProtocol, Icmpv4Message, Icmpv4Packet, Icmpv6Message,
        Icmpv6Packet, IpAddress, IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket, UdpPacket,
    };
    fn e(what: &'static str) -> impl Fn(smoltcp::wire::Error) -> String {
        move |err| format!("malformed {what}: {err}")
    }
    let eth = EthernetFrame::new_checked(frame).map_err(e("Ethernet frame"))?;
    let (src, dst, header_checksum, header_checksum_ok, proto, payload) = match eth.ethertype() {
        EthernetProtocol::Arp => {
            let arp = ArpPacket::new_checked(eth.payload()).map_err(e("ARP packet"))?;
            let ip = |b: &[u8]| -> Result<IpAddr, String> {
                Ok(IpAddr::from(<[u8; 4]>::try_from(b).map_err(|_| "ARP for another protocol")?))
            };
            let request = match arp.operation() {
                ArpOperation::Request => true,
                ArpOperation::Reply => false,
                ArpOperation::Unknown(op) => return Err(format!("ARP operation {op}")),
            };
            return Ok(Packet::Arp {
                request,
                sender: ip(arp.source_protocol_addr())?,
                target: ip(arp.target_protocol_addr())?,
            });
        }
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(eth.payload()).map_err(e("IPv4 packet"))?;
            let (src, dst) = (IpAddress::Ipv4(ip.src_addr()), IpAddress::Ipv4(ip.dst_addr()));
            (src, dst, ip.checksum(), ip.verify_checksum(), ip.next_header(), ip.payload())
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(eth.payload()).map_err(e("IPv6 packet"))?;
            let (src, dst) = (IpAddress::Ipv6(ip.src_addr()), IpAddress::Ipv6(ip.dst_addr()));
            (src, dst, 0, true, ip.next_header(), ip.payload())
        }
        other => return Err(format!("unexpected EtherType {other}")),
    };
    let l4 = match (proto, src, dst) {
        (IpProtocol::Icmp, _, _) => {
            let icmp = Icmpv4Packet::new_checked(payload).map_err(e("ICMP message"))?;
            let checksum_ok = icmp.verify_checksum();
            match icmp.msg_type() {
                m @ (Icmpv4Message::EchoRequest | Icmpv4Message::EchoReply) => L4::Echo {
                    request: m == Icmpv4Message::EchoRequest,
                    ident: icmp.echo_ident(),
                    seq: icmp.echo_seq_no(),
                    checksum_ok,
                },
                _ => L4::Icmp { checksum_ok },
            }
        }
        (IpProtocol::Icmpv6, IpAddress::Ipv6(s), IpAddress::Ipv6(d)) => {
            let icmp = Icmpv6Packet::new_checked(payload).map_err(e("ICMPv6 message"))?;
            let checksum_ok = icmp.verify_checksum(&s, &d);
            match icmp.msg_type() {
                m @ (Icmpv6Message::EchoRequest | Icmpv6Message::EchoReply) => L4::Echo {
                    request: m == Icmpv6Message::EchoRequest,
                    ident: icmp.echo_ident(),
                    seq: icmp.echo_seq_no(),
                    checksum_ok,
                },
                _ => L4::Icmp { checksum_ok },
            }
        }
        (IpProtocol::Tcp, _, _) => {
            let t = TcpPacket::new_checked(payload).map_err(e("TCP segment"))?;
            L4::Tcp(Tcp {
                src_port: t.src_port(),
                dst_port: t.dst_port(),
                seq: t.seq_number().0 as u32,
                ack_number: t.ack_number().0 as u32,
                syn: t.syn(),
                ack: t.ack(),
                fin: t.fin(),
                rst: t.rst(),
                checksum_ok: t.verify_checksum(&src, &dst),
            })
        }
        (IpProtocol::Udp, _, _) => {
            let u = UdpPacket::new_checked(payload).map_err(e("UDP datagram"))?;
            L4::Udp { src_port: u.src_port(), dst_port: u.dst_port(), checksum_ok: u.verify_checksum(&src, &dst) }
        }
        (other, _, _) => L4::Other(other.into()),
    };
    Ok(Packet::Ip { src: src.into(), dst: dst.into(), header_checksum, header_checksum_ok, l4 })
}

/// Every frame decoded, with its link; fails the test on the first malformed frame.
pub fn decode_all(frames: &[CapturedFrame]) -> Vec<(&str, Packet)> {
    frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let p = decode(&f.data).unwrap_or_else(|e| panic!("frame {} on {}: {e}", i + 1, f.link));
            (f.link.as_str(), p)
        })
        .collect()
}

/// Checks that ARP requests and replies come in pairs: every reply answers an earlier request on
/// the same link. Returns the numbers of requests and replies.
pub fn arp_pairs(packets: &[(&str, Packet)]) -> (usize, usize) {
    let mut asked = std::collections::HashSet::new();
    let (mut requests, mut replies) = (0, 0);
    for (link, p) in packets {
        if let Packet::Arp { request, sender, target } = p {
            if *request {
                requests += 1;
                asked.insert((*link, *sender, *target));
            } else {
                replies += 1;
                assert!(
                    asked.contains(&(*link, *target, *sender)),
                    "ARP reply {sender} -> {target} on {link} answers no request"
                );
            }
        }
    }
    (requests, replies)
}

/// The ICMP and ICMPv6 echoes between `a` and `b` on `link`: checks that every request has its
/// reply (same identifier and sequence number, addresses swapped) and returns how many pairs.
pub fn echo_pairs(packets: &[(&str, Packet)], link: &str, v6: bool) -> usize {
    let mut requests = Vec::new();
    let mut replies = Vec::new();
    for (l, p) in packets {
        if let (true, Packet::Ip { src, dst, l4: L4::Echo { request, ident, seq, .. }, .. }) = (*l == link, p) {
            if src.is_ipv6() == v6 {
                let key = if *request { (*src, *dst, *ident, *seq) } else { (*dst, *src, *ident, *seq) };
                if *request {
                    requests.push(key)
                } else {
                    replies.push(key)
                }
            }
        }
    }
    requests.sort_unstable();
    replies.sort_unstable();
    assert_eq!(requests, replies, "echo requests and replies on {link} do not pair up");
    requests.len()
}

pub mod scale;

/// Serialises the tests of one binary that load the machine (several netlab processes at once).
pub fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    HEAVY.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn sleep_ms(ms: u64) {
    std::thread::sleep(std::time::Duration::from_millis(ms));
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// A count in a report.
pub fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

pub fn write_json(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(v).expect("json")).expect("write the lab");
}

/// A fresh key from `netlab key`: 64 hex digits.
pub fn new_key() -> String {
    let out = netlab().arg("key").output().expect("netlab key");
    assert!(out.status.success());
    let k = String::from_utf8(out.stdout).expect("utf-8").trim().to_string();
    assert!(k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit()), "a key of 64 hex digits: {k:?}");
    k
}

/// A port free on 127.0.0.1 for both TCP and UDP, just now. Another process may take it before
/// the one it is meant for binds it.
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let u = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = u.local_addr().expect("addr").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both TCP and UDP");
}

/// The inodes of the sockets bound to 127.0.0.1:`port` in `/proc/net/<table>` (TCP: listening).
pub fn bound_inodes(table: &str, port: u16) -> Vec<String> {
    let want = format!("0100007F:{port:04X}");
    let text = std::fs::read_to_string(format!("/proc/net/{table}")).unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let listening = table != "tcp" || f.get(3) == Some(&"0A");
            (f.get(1) == Some(&want.as_str()) && listening).then(|| f.get(9).map(|s| (*s).to_string())).flatten()
        })
        .collect()
}

/// Whether process `pid` itself holds a socket of `table` (`tcp`: listening, `udp`) bound to
/// 127.0.0.1:`port`.
pub fn holds(pid: u32, table: &str, port: u16) -> bool {
    let mine: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter_map(|t| t.to_str()?.strip_prefix("socket:[")?.strip_suffix(']').map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    bound_inodes(table, port).iter().any(|i| mine.contains(i))
}
