//! Flows between lab sockets and real ones: the core's half of port forwards and exit gateways.
//!
//! The core never touches a real socket. A forward's connection accepted at the edge comes in as
//! [`BridgeIn::Open`]: the host it starts from opens a smoltcp socket to the target, and bytes move
//! between that socket and the edge as [`BridgeIn::Data`] and [`BridgeOut::Data`]. An exit gateway
//! (a host with an [`Exit`]) looks at every packet before its stack does: a SYN to an allowed
//! destination becomes a [`BridgeOut::Dial`], held until the edge says how the dial went; only then
//! does a listening socket take the SYN (and answer it), or the stack answer it with a reset. UDP to
//! an allowed destination never reaches the stack: each datagram goes to the edge, and the edge's
//! datagrams come back as packets the gateway builds itself.
//!
//! Every buffer is bounded. Each TCP flow has a window of [`WINDOW`] bytes each way between core
//! and edge: the edge reads no more from its real socket than the core has room for (it hears of
//! room with [`BridgeOut::Consumed`]), and the core reads no more from its lab socket than the edge
//! has written out (it hears with [`BridgeIn::Written`]). A full window stops reading, and TCP's own
//! flow control does the rest on either side.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Serialize;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::{tcp, udp};
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv4Packet, IpAddress, IpEndpoint,
    IpListenEndpoint, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, TcpPacket, UdpPacket, UdpRepr,
};

use super::host::Stack;
use super::router::caps;
use crate::time::SimTime;
use crate::topology::{Exit, NodeId, Proto};

/// Bytes in flight each way between the core and the edge, per TCP flow.
pub const WINDOW: usize = 256 * 1024;
/// The most one [`BridgeOut::Data`] carries.
const CHUNK: usize = 64 * 1024;
/// Datagrams a UDP flow keeps while its real socket is being opened (at the edge) or its lab
/// socket is full.
const UDP_QUEUE: usize = 64;
/// Bytes of datagrams a forward's UDP socket holds each way.
const UDP_BUFFER: usize = 128 * 1024;
/// Frames the gateway builds itself (UDP, ICMP) waiting for room on its link.
const RAW_QUEUE: usize = 1024;
/// How often refused destinations are logged, at most.
const LOG_EVERY: Duration = Duration::from_secs(5);
/// Flows whose end the snapshot keeps, the most recent.
const ENDED_KEPT: usize = 32;
/// How long a forward's lab connection may wait for an answer (SYN-ACK, ACKs of data in flight).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(20);

/// A flow: the node whose socket carries it, and a number of its own there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowId {
    pub node: NodeId,
    pub n: u32,
}

impl Serialize for FlowId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn secs<S: serde::Serializer>(t: &SimTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(t.as_secs_f64())
}

fn opt_secs<S: serde::Serializer>(t: &Option<SimTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_some(&t.as_secs_f64()),
        None => s.serialize_none(),
    }
}

impl std::fmt::Display for FlowId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.node.0, self.n)
    }
}

/// How a dial from an exit gateway went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dialed {
    /// Connected (TCP) or opened (UDP), from this real local address.
    Ok(SocketAddr),
    /// The real side refused: a TCP reset, or ICMP port unreachable for UDP.
    Refused,
    /// No answer within the dial timeout.
    TimedOut,
    /// Any other failure (no route, no permission); treated as refused.
    Failed,
}

/// What the edge tells the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BridgeIn {
    /// A forward accepted a real connection (TCP) or heard from a new real source (UDP): open a
    /// lab flow from `host` to `to`. `peer` is the real client.
    Open { flow: FlowId, proto: Proto, to: SocketAddr, peer: SocketAddr, udp_idle: Duration },
    /// Bytes (TCP, within the window) or one datagram (UDP) from the real side.
    Data(FlowId, Vec<u8>),
    /// The edge wrote this many bytes of the flow's [`BridgeOut::Data`] to its real socket.
    Written(FlowId, usize),
    /// The real side will send nothing more (it shut its write half): the lab socket closes its
    /// sending side once what came before is sent.
    Eof(FlowId),
    /// The real side is gone abruptly: the lab socket is reset.
    Reset(FlowId),
    /// How a gateway's dial went.
    Dialed(FlowId, Dialed),
    /// The real destination of a gateway's [`BridgeOut::Echo`] answered.
    EchoReply(FlowId),
}

impl BridgeIn {
    #[must_use]
    pub fn flow(&self) -> FlowId {
        match self {
            BridgeIn::Open { flow, .. }
            | BridgeIn::Data(flow, _)
            | BridgeIn::Written(flow, _)
            | BridgeIn::Eof(flow)
            | BridgeIn::Reset(flow)
            | BridgeIn::Dialed(flow, _)
            | BridgeIn::EchoReply(flow) => *flow,
        }
    }
}

/// What the core asks of the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BridgeOut {
    /// Bytes (TCP) or one datagram (UDP) for the real side.
    Data(FlowId, Vec<u8>),
    /// This many bytes from the real side entered the lab socket: the window has that much room again.
    Consumed(FlowId, usize),
    /// The lab side sends nothing more: shut the real socket's write half once all is written.
    Eof(FlowId),
    /// The flow is over. `reset`: abruptly (reset the real socket); else close it once written.
    Closed { flow: FlowId, reset: bool },
    /// An exit gateway asks for a real socket to `real`.
    Dial { flow: FlowId, proto: Proto, real: SocketAddr, timeout: Duration },
    /// A line for the run's log (refused destinations, at most once per interval).
    Log(String),
    /// An exit gateway asks for an ICMP echo to `real` carrying `data`; the answer comes back as
    /// [`BridgeIn::EchoReply`], or not at all.
    Echo { flow: FlowId, real: IpAddr, data: Vec<u8> },
}

/// Whose flow it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// From a real client, through a port forward, into the lab.
    Forward,
    /// From the lab, through an exit gateway, to a real server.
    Exit,
}

/// One bridged flow, as a snapshot and the report show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowInfo {
    pub id: FlowId,
    pub role: Role,
    pub proto: Proto,
    /// The lab side: the source and destination of the flow's first packet.
    pub lab_src: SocketAddr,
    pub lab_dst: SocketAddr,
    /// The real peer: a forward's client, or the address a gateway dialled.
    pub real: SocketAddr,
    pub state: &'static str,
    /// Bytes from the real side into the lab, and from the lab to the real side.
    pub bytes_in: u64,
    pub bytes_out: u64,
    #[serde(serialize_with = "secs")]
    pub opened: SimTime,
    #[serde(serialize_with = "opt_secs")]
    pub ended: Option<SimTime>,
}

/// What a node's bridge counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BridgeCounters {
    pub flows: u64,
    pub resets: u64,
    pub dials: u64,
    pub dials_refused: u64,
    pub dials_timed_out: u64,
    /// SYNs dropped because too many dials were pending (overall or from their source).
    pub pending_full: u64,
    /// New flows refused because the gateway had `max_flows` open.
    pub flows_full: u64,
    /// Packets to destinations outside `exit.allow`, refused.
    pub denied: u64,
    pub udp_timeouts: u64,
    /// Datagrams or frames dropped for a full queue.
    pub dropped: u64,
    /// ICMP echo requests to allowed destinations answered with administratively prohibited.
    pub echo_prohibited: u64,
    /// ICMP echo requests carried out, and those answered.
    pub echo_sent: u64,
    pub echo_answered: u64,
}

struct TcpPipe {
    dev: usize,
    handle: SocketHandle,
    info: FlowInfo,
    /// Bytes from the edge not yet in the lab socket.
    to_lab: VecDeque<u8>,
    /// Bytes handed to the edge and not yet written by it.
    unwritten: usize,
    /// Bytes taken into the lab socket and not yet told to the edge.
    consumed: usize,
    real_eof: bool,
    fin_sent: bool,
    eof_told: bool,
    established: bool,
    /// An exit flow whose socket has just taken its SYN: check it took the right one.
    expect_remote: Option<IpEndpoint>,
}

/// The lab side of a UDP flow.
enum UdpSide {
    /// A forward's: a smoltcp socket on `dev` bound to an ephemeral port, sending to the target.
    Socket { dev: usize, handle: SocketHandle, to: IpEndpoint },
    /// An exit's: datagrams built by the gateway, to the flow's source at its MAC.
    Raw { dev: usize, mac: EthernetAddress, my_mac: EthernetAddress, last_header: Vec<u8> },
}

struct UdpPipe {
    side: UdpSide,
    info: FlowInfo,
    idle: Duration,
    last: SimTime,
    /// Datagrams for the lab socket that did not fit yet.
    queue: VecDeque<Vec<u8>>,
}

/// A SYN held while its dial is in progress.
struct Pending {
    dev: usize,
    syn: Vec<u8>,
    src: SocketAddr,
    dst: SocketAddr,
    since: SimTime,
}

/// An echo request carried out, waiting for the real answer.
struct EchoPending {
    dev: usize,
    mac: EthernetAddress,
    my_mac: EthernetAddress,
    src: IpAddr,
    dst: IpAddr,
    /// The request's identifier and sequence number, as they were.
    rest: [u8; 4],
    data: Vec<u8>,
    since: SimTime,
}

/// Echo requests carried out at once, at most.
const ECHO_PENDING: usize = 64;
/// How long an echo request carried out waits for its answer.
const ECHO_WAIT: Duration = Duration::from_secs(2);

/// An exit gateway's state: its rules and the flows it keeps by their lab endpoints.
struct ExitState {
    rules: Exit,
    /// The edge can carry echo out (the machine grants unprivileged ping sockets).
    echo: bool,
    echo_pending: BTreeMap<u32, EchoPending>,
    /// Lab (source, destination) → flow number, TCP and UDP apart.
    tcp_by_ends: HashMap<(SocketAddr, SocketAddr), u32>,
    udp_by_ends: HashMap<(SocketAddr, SocketAddr), u32>,
    pending: BTreeMap<u32, Pending>,
    pending_by_source: HashMap<IpAddr, usize>,
    /// Refused since the last log line, and when that was.
    denied_unlogged: u64,
    last_denied: Option<String>,
    logged_at: Option<SimTime>,
}

/// What an exit gateway does with a frame that arrived.
pub enum Verdict {
    /// The stack takes it (for the gateway itself, or a flow's socket; or to answer with a reset).
    Stack,
    /// Handled here (held, or carried to the edge).
    Taken,
}

/// The bridged flows of one node: a host that forwards start from, or an exit gateway.
pub struct Bridge {
    node: NodeId,
    tcp: BTreeMap<u32, TcpPipe>,
    udp: BTreeMap<u32, UdpPipe>,
    /// Sockets closing after their flow ended (TIME-WAIT, a FIN to resend), removed once closed.
    draining: Vec<(usize, SocketHandle)>,
    exit: Option<ExitState>,
    pub out: Vec<BridgeOut>,
    /// Frames built here, for the host to send: (interface, frame).
    pub raw: VecDeque<(usize, Vec<u8>)>,
    pub counters: BridgeCounters,
    ended: VecDeque<FlowInfo>,
    next: u32,
    checksum_offload: bool,
}

fn endpoint(a: SocketAddr) -> IpEndpoint {
    IpEndpoint::new(IpAddress::from(a.ip()), a.port())
}

fn tcp_state(s: tcp::State) -> &'static str {
    match s {
        tcp::State::Closed => "closed",
        tcp::State::Listen => "listen",
        tcp::State::SynSent => "syn-sent",
        tcp::State::SynReceived => "syn-received",
        tcp::State::Established => "established",
        tcp::State::FinWait1 => "fin-wait-1",
        tcp::State::FinWait2 => "fin-wait-2",
        tcp::State::CloseWait => "close-wait",
        tcp::State::Closing => "closing",
        tcp::State::LastAck => "last-ack",
        tcp::State::TimeWait => "time-wait",
    }
}

/// The parts of an IP packet a gateway decides on.
struct Seen {
    proto: IpProtocol,
    src: IpAddr,
    dst: IpAddr,
    /// TCP/UDP ports, ICMP type in the first.
    sport: u16,
    dport: u16,
    syn_only: bool,
    /// Where the IP packet (without any Ethernet padding after it) and its transport payload
    /// stand in the frame.
    packet: std::ops::Range<usize>,
    payload: std::ops::Range<usize>,
    header_len: usize,
}

fn seen(frame: &[u8]) -> Option<Seen> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let at = 14;
    let (proto, src, dst, hl, total) = match eth.ethertype() {
        EthernetProtocol::Ipv4 => {
            let p = Ipv4Packet::new_checked(eth.payload()).ok()?;
            if p.frag_offset() != 0 || p.more_frags() {
                return None;
            }
            (
                p.next_header(),
                IpAddr::V4(p.src_addr()),
                IpAddr::V4(p.dst_addr()),
                usize::from(p.header_len()),
                usize::from(p.total_len()),
            )
        }
        EthernetProtocol::Ipv6 => {
            let p = Ipv6Packet::new_checked(eth.payload()).ok()?;
            (p.next_header(), IpAddr::V6(p.src_addr()), IpAddr::V6(p.dst_addr()), 40, 40 + usize::from(p.payload_len()))
        }
        _ => return None,
    };
    let ip = &eth.payload()[..total.min(eth.payload().len())];
    let l4 = ip.get(hl..)?;
    let (sport, dport, syn_only, payload) = match proto {
        IpProtocol::Tcp => {
            let t = TcpPacket::new_checked(l4).ok()?;
            (t.src_port(), t.dst_port(), t.syn() && !t.ack() && !t.rst(), 0..0)
        }
        IpProtocol::Udp => {
            let u = UdpPacket::new_checked(l4).ok()?;
            let len = usize::from(u.len()).clamp(8, l4.len());
            (u.src_port(), u.dst_port(), false, at + hl + 8..at + hl + len)
        }
        IpProtocol::Icmp | IpProtocol::Icmpv6 => (u16::from(*l4.first()?), 0, false, 0..0),
        _ => (0, 0, false, 0..0),
    };
    Some(Seen { proto, src, dst, sport, dport, syn_only, packet: at..at + ip.len(), payload, header_len: hl })
}

impl Bridge {
    #[must_use]
    pub fn new(node: NodeId, exit: Option<&Exit>, checksum_offload: bool) -> Self {
        Bridge {
            node,
            tcp: BTreeMap::new(),
            udp: BTreeMap::new(),
            draining: Vec::new(),
            exit: exit.map(|e| ExitState {
                rules: e.clone(),
                echo: false,
                echo_pending: BTreeMap::new(),
                tcp_by_ends: HashMap::new(),
                udp_by_ends: HashMap::new(),
                pending: BTreeMap::new(),
                pending_by_source: HashMap::new(),
                denied_unlogged: 0,
                last_denied: None,
                logged_at: None,
            }),
            out: Vec::new(),
            raw: VecDeque::new(),
            counters: BridgeCounters::default(),
            ended: VecDeque::new(),
            // Forwards number their flows at the edge from 1; a gateway's own start high.
            next: 1 << 31,
            checksum_offload,
        }
    }

    #[must_use]
    pub fn is_exit(&self) -> bool {
        self.exit.is_some()
    }

    /// The flows open now, then those that ended most recently.
    #[must_use]
    pub fn flows(&self) -> Vec<FlowInfo> {
        let mut v: Vec<FlowInfo> = self.tcp.values().map(|p| p.info.clone()).collect();
        v.extend(self.udp.values().map(|p| p.info.clone()));
        v.sort_by_key(|f| f.id);
        v.extend(self.ended.iter().rev().cloned());
        v
    }

    #[must_use]
    pub fn open_flows(&self) -> usize {
        self.tcp.len() + self.udp.len() + self.exit.as_ref().map_or(0, |e| e.pending.len())
    }

    fn end(&mut self, mut info: FlowInfo, now: SimTime, state: &'static str) {
        info.state = state;
        info.ended = Some(now);
        if self.ended.len() == ENDED_KEPT {
            self.ended.pop_front();
        }
        self.ended.push_back(info);
    }

    /// When this bridge next needs a poll without traffic: a UDP flow's idle end, a held SYN past
    /// its time.
    #[must_use]
    pub fn next_wake(&self) -> Option<SimTime> {
        let udp = self.udp.values().map(|p| p.last + p.idle).min();
        let pending = self.exit.as_ref().and_then(|e| {
            let t = e.rules.dial_timeout * 2;
            e.pending.values().map(|p| p.since + t).min()
        });
        let echo = self.exit.as_ref().and_then(|e| e.echo_pending.values().map(|p| p.since + ECHO_WAIT).min());
        [udp, pending, echo].into_iter().flatten().min()
    }

    /// Takes what the edge says. Returns whether the host should be polled.
    pub fn input(
        &mut self,
        now: SimTime,
        msg: BridgeIn,
        stacks: &mut [Stack],
        ids: &mut super::apps::HostIds,
        tcp: &crate::topology::TcpConfig,
        route: impl Fn(IpAddr) -> usize,
    ) {
        let flow = msg.flow();
        match msg {
            BridgeIn::Open { proto, to, peer, udp_idle, .. } => {
                let dev = route(to.ip()).min(stacks.len() - 1);
                let st = &mut stacks[dev];
                let local = st.iface.ipv4_addr().map(IpAddr::V4).filter(|_| to.is_ipv4()).or_else(|| {
                    st.iface.ip_addrs().iter().map(|c| IpAddr::from(c.address())).find(|a| a.is_ipv6() == to.is_ipv6())
                });
                let Some(local) = local else {
                    self.out.push(BridgeOut::Closed { flow, reset: true });
                    return;
                };
                let port = ids.take_port();
                let info = FlowInfo {
                    id: flow,
                    role: Role::Forward,
                    proto,
                    lab_src: SocketAddr::new(local, port),
                    lab_dst: to,
                    real: peer,
                    state: "opening",
                    bytes_in: 0,
                    bytes_out: 0,
                    opened: now,
                    ended: None,
                };
                self.counters.flows += 1;
                match proto {
                    Proto::Tcp => {
                        let h = super::apps::new_tcp_socket(&mut st.sockets, tcp);
                        let s = st.sockets.get_mut::<tcp::Socket>(h);
                        let t = smoltcp::time::Duration::from_secs(FORWARD_TIMEOUT.as_secs());
                        s.set_timeout(Some(t));
                        s.set_keep_alive(Some(t / 2));
                        if s.connect(st.iface.context(), endpoint(to), port).is_err() {
                            st.sockets.remove(h);
                            self.out.push(BridgeOut::Closed { flow, reset: true });
                            return;
                        }
                        self.tcp.insert(flow.n, TcpPipe::new(dev, h, info, None));
                    }
                    Proto::Udp => {
                        let s = udp::Socket::new(
                            udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; UDP_QUEUE], vec![0; UDP_BUFFER]),
                            udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; UDP_QUEUE], vec![0; UDP_BUFFER]),
                        );
                        let h = st.sockets.add(s);
                        if st.sockets.get_mut::<udp::Socket>(h).bind(port).is_err() {
                            st.sockets.remove(h);
                            self.out.push(BridgeOut::Closed { flow, reset: true });
                            return;
                        }
                        let info = FlowInfo { state: "open", ..info };
                        self.udp.insert(
                            flow.n,
                            UdpPipe {
                                side: UdpSide::Socket { dev, handle: h, to: endpoint(to) },
                                info,
                                idle: udp_idle,
                                last: now,
                                queue: VecDeque::new(),
                            },
                        );
                    }
                }
            }
            BridgeIn::Data(_, bytes) => {
                if let Some(p) = self.tcp.get_mut(&flow.n) {
                    p.info.bytes_in += bytes.len() as u64;
                    p.to_lab.extend(bytes);
                } else if let Some(p) = self.udp.get_mut(&flow.n) {
                    p.info.bytes_in += bytes.len() as u64;
                    p.last = now;
                    if p.queue.len() < UDP_QUEUE {
                        p.queue.push_back(bytes);
                    } else {
                        self.counters.dropped += 1;
                    }
                }
            }
            BridgeIn::Written(_, n) => {
                if let Some(p) = self.tcp.get_mut(&flow.n) {
                    p.unwritten = p.unwritten.saturating_sub(n);
                }
            }
            BridgeIn::Eof(_) => {
                if let Some(p) = self.tcp.get_mut(&flow.n) {
                    p.real_eof = true;
                }
            }
            BridgeIn::Reset(_) => {
                // The edge forgets the flow when it hears it closed.
                self.out.push(BridgeOut::Closed { flow, reset: true });
                if let Some(p) = self.tcp.remove(&flow.n) {
                    stacks[p.dev].sockets.get_mut::<tcp::Socket>(p.handle).abort();
                    self.draining.push((p.dev, p.handle));
                    self.counters.resets += 1;
                    self.forget_tcp(&p.info);
                    self.end(p.info, now, "reset by the real side");
                } else if let Some(p) = self.udp.remove(&flow.n) {
                    // The real side refused a datagram: ICMP port unreachable to the lab source.
                    if let UdpSide::Raw { dev, mac, my_mac, last_header } = &p.side {
                        if let Some(f) =
                            icmp_error(*my_mac, *mac, &last_header[..], IcmpWhy::PortUnreachable, self.checksum_offload)
                        {
                            self.push_raw(*dev, f);
                        }
                    }
                    self.close_udp(stacks, &p);
                    self.end(p.info, now, "refused by the real side");
                }
            }
            BridgeIn::Dialed(_, result) => self.dialed(now, flow, result, stacks, tcp),
            BridgeIn::EchoReply(_) => {
                let Some(p) = self.exit.as_mut().and_then(|e| e.echo_pending.remove(&flow.n)) else { return };
                self.counters.echo_answered += 1;
                if let Some(f) = echo_reply(&p, self.checksum_offload) {
                    self.push_raw(p.dev, f);
                }
            }
        }
    }

    /// Whether an exit gateway carries ICMP echo out (the edge says whether the machine can).
    pub fn set_echo(&mut self, on: bool) {
        if let Some(e) = &mut self.exit {
            e.echo = on;
        }
    }

    fn push_raw(&mut self, dev: usize, f: Vec<u8>) {
        if self.raw.len() < RAW_QUEUE {
            self.raw.push_back((dev, f));
        } else {
            self.counters.dropped += 1;
        }
    }

    fn forget_tcp(&mut self, info: &FlowInfo) {
        if let Some(e) = &mut self.exit {
            e.tcp_by_ends.remove(&(info.lab_src, info.lab_dst));
        }
    }

    fn close_udp(&mut self, stacks: &mut [Stack], p: &UdpPipe) {
        match &p.side {
            UdpSide::Socket { dev, handle, .. } => {
                stacks[*dev].sockets.remove(*handle);
            }
            UdpSide::Raw { .. } => {
                if let Some(e) = &mut self.exit {
                    e.udp_by_ends.remove(&(p.info.lab_src, p.info.lab_dst));
                }
            }
        }
    }

    fn dialed(
        &mut self,
        now: SimTime,
        flow: FlowId,
        result: Dialed,
        stacks: &mut [Stack],
        tcp: &crate::topology::TcpConfig,
    ) {
        let Some(e) = &mut self.exit else { return };
        if let Some(p) = e.pending.remove(&flow.n) {
            if let Some(c) = e.pending_by_source.get_mut(&p.src.ip()) {
                *c = c.saturating_sub(1);
                if *c == 0 {
                    e.pending_by_source.remove(&p.src.ip());
                }
            }
            let real = SocketAddr::new(e.rules.real(p.dst.ip()), p.dst.port());
            let st = &mut stacks[p.dev];
            match result {
                Dialed::Ok(_) => {
                    let h = super::apps::new_tcp_socket(&mut st.sockets, tcp);
                    let s = st.sockets.get_mut::<tcp::Socket>(h);
                    let t = smoltcp::time::Duration::from_secs(FORWARD_TIMEOUT.as_secs());
                    s.set_timeout(Some(t));
                    s.set_keep_alive(Some(t / 2));
                    let listen = IpListenEndpoint { addr: Some(IpAddress::from(p.dst.ip())), port: p.dst.port() };
                    if s.listen(listen).is_err() {
                        st.sockets.remove(h);
                        e.tcp_by_ends.remove(&(p.src, p.dst));
                        self.out.push(BridgeOut::Closed { flow, reset: true });
                        return;
                    }
                    // The held SYN goes first: the socket answers it now.
                    st.rx.push_front(p.syn);
                    let info = FlowInfo {
                        id: flow,
                        role: Role::Exit,
                        proto: Proto::Tcp,
                        lab_src: p.src,
                        lab_dst: p.dst,
                        real,
                        state: "syn-received",
                        bytes_in: 0,
                        bytes_out: 0,
                        opened: now,
                        ended: None,
                    };
                    self.counters.flows += 1;
                    self.tcp.insert(flow.n, TcpPipe::new(p.dev, h, info, Some(endpoint(p.src))));
                }
                Dialed::Refused | Dialed::Failed | Dialed::TimedOut => {
                    e.tcp_by_ends.remove(&(p.src, p.dst));
                    if result == Dialed::TimedOut {
                        // Nothing goes back: the lab client times out as it would have.
                        self.counters.dials_timed_out += 1;
                    } else {
                        // The stack has no socket for it, and answers the SYN with a reset.
                        self.counters.dials_refused += 1;
                        st.rx.push_front(p.syn);
                    }
                }
            }
        } else if !self.udp.contains_key(&flow.n) {
            // A dial given up here meanwhile: its real socket goes too.
            if matches!(result, Dialed::Ok(_)) {
                self.out.push(BridgeOut::Closed { flow, reset: true });
            }
        } else if let Some(p) = self.udp.get_mut(&flow.n) {
            match result {
                Dialed::Ok(_) => p.info.state = "open",
                _ => {
                    if let Some(p) = self.udp.remove(&flow.n) {
                        self.counters.dials_refused += 1;
                        self.close_udp(stacks, &p);
                        self.end(p.info, now, "dial failed");
                    }
                }
            }
        }
    }

    /// An exit gateway's look at a frame before its stack: what it takes and what it leaves.
    pub fn filter(
        &mut self,
        now: SimTime,
        dev: usize,
        frame: &[u8],
        mine: &dyn Fn(IpAddr) -> bool,
        my_mac: EthernetAddress,
    ) -> Verdict {
        let Some(e) = &mut self.exit else { return Verdict::Stack };
        let Some(s) = seen(frame) else {
            // ARP for an address not its own is not answered (smoltcp would, with any-IP).
            return if arp_for_other(frame, mine) { Verdict::Taken } else { Verdict::Stack };
        };
        if mine(s.dst) {
            return Verdict::Stack;
        }
        // NDP and other multicast are the stack's.
        if match s.dst {
            IpAddr::V4(a) => a.is_multicast() || a.is_broadcast(),
            IpAddr::V6(a) => a.is_multicast(),
        } {
            return Verdict::Stack;
        }
        let src = SocketAddr::new(s.src, s.sport);
        let dst = SocketAddr::new(s.dst, s.dport);
        let Ok(eth) = EthernetFrame::new_checked(frame) else { return Verdict::Taken };
        let peer_mac = eth.src_addr();
        let packet = &frame[s.packet.clone()];
        if !e.rules.allows(s.dst) {
            return self.deny(now, dev, &s, packet, peer_mac, my_mac);
        }
        match s.proto {
            IpProtocol::Tcp => {
                if e.tcp_by_ends.contains_key(&(src, dst)) {
                    // A flow's, or a SYN again while its dial is pending (dropped).
                    let pending = e.tcp_by_ends.get(&(src, dst)).is_some_and(|n| e.pending.contains_key(n));
                    return if pending { Verdict::Taken } else { Verdict::Stack };
                }
                if !s.syn_only {
                    // No flow: the stack answers with a reset.
                    return Verdict::Stack;
                }
                if self.tcp.len() + self.udp.len() + e.pending.len() >= e.rules.max_flows {
                    self.counters.flows_full += 1;
                    return Verdict::Stack;
                }
                let from_source = e.pending_by_source.get(&s.src).copied().unwrap_or(0);
                if e.pending.len() >= e.rules.max_pending || from_source >= e.rules.max_pending_per_source {
                    // Dropped: the client sends its SYN again later.
                    self.counters.pending_full += 1;
                    return Verdict::Taken;
                }
                let n = self.next;
                self.next = self.next.wrapping_add(1).max(1 << 31);
                let flow = FlowId { node: self.node, n };
                e.tcp_by_ends.insert((src, dst), n);
                *e.pending_by_source.entry(s.src).or_default() += 1;
                e.pending.insert(n, Pending { dev, syn: frame.to_vec(), src, dst, since: now });
                self.counters.dials += 1;
                let real = SocketAddr::new(e.rules.real(s.dst), s.dport);
                self.out.push(BridgeOut::Dial { flow, proto: Proto::Tcp, real, timeout: e.rules.dial_timeout });
                Verdict::Taken
            }
            IpProtocol::Udp => {
                let payload = frame[s.payload.clone()].to_vec();
                let n = match e.udp_by_ends.get(&(src, dst)) {
                    Some(n) => *n,
                    None => {
                        if self.tcp.len() + self.udp.len() + e.pending.len() >= e.rules.max_flows {
                            self.counters.flows_full += 1;
                            return self.deny(now, dev, &s, packet, peer_mac, my_mac);
                        }
                        let n = self.next;
                        self.next = self.next.wrapping_add(1).max(1 << 31);
                        let flow = FlowId { node: self.node, n };
                        e.udp_by_ends.insert((src, dst), n);
                        let real = SocketAddr::new(e.rules.real(s.dst), s.dport);
                        self.counters.dials += 1;
                        self.counters.flows += 1;
                        self.out.push(BridgeOut::Dial { flow, proto: Proto::Udp, real, timeout: e.rules.dial_timeout });
                        self.udp.insert(
                            n,
                            UdpPipe {
                                side: UdpSide::Raw { dev, mac: peer_mac, my_mac, last_header: Vec::new() },
                                info: FlowInfo {
                                    id: flow,
                                    role: Role::Exit,
                                    proto: Proto::Udp,
                                    lab_src: src,
                                    lab_dst: dst,
                                    real,
                                    state: "opening",
                                    bytes_in: 0,
                                    bytes_out: 0,
                                    opened: now,
                                    ended: None,
                                },
                                idle: e.rules.udp_idle,
                                last: now,
                                queue: VecDeque::new(),
                            },
                        );
                        n
                    }
                };
                if let Some(p) = self.udp.get_mut(&n) {
                    p.last = now;
                    p.info.bytes_out += payload.len() as u64;
                    if let UdpSide::Raw { mac, last_header, .. } = &mut p.side {
                        *mac = peer_mac;
                        // What an ICMP error quotes: the IP header and 8 bytes past it.
                        last_header.clear();
                        last_header.extend_from_slice(&packet[..packet.len().min(s.header_len + 8)]);
                    }
                    self.out.push(BridgeOut::Data(FlowId { node: self.node, n }, payload));
                }
                Verdict::Taken
            }
            IpProtocol::Icmp | IpProtocol::Icmpv6
                if (s.proto, s.sport) == (IpProtocol::Icmp, 8) || (s.proto, s.sport) == (IpProtocol::Icmpv6, 128) =>
            {
                // Echo to an allowed destination: carried out only where the machine grants ping
                // sockets (see docs/gateways.md); else administratively prohibited.
                let l4 = &packet[s.header_len..];
                if e.echo && e.echo_pending.len() < ECHO_PENDING && l4.len() >= 8 {
                    let n = self.next;
                    self.next = self.next.wrapping_add(1).max(1 << 31);
                    let flow = FlowId { node: self.node, n };
                    e.echo_pending.insert(
                        n,
                        EchoPending {
                            dev,
                            mac: peer_mac,
                            my_mac,
                            src: s.src,
                            dst: s.dst,
                            rest: l4[4..8].try_into().unwrap_or([0; 4]),
                            data: l4[8..].to_vec(),
                            since: now,
                        },
                    );
                    self.out.push(BridgeOut::Echo { flow, real: e.rules.real(s.dst), data: l4[8..].to_vec() });
                    self.counters.echo_sent += 1;
                    return Verdict::Taken;
                }
                if e.echo {
                    // Too many pending: as a loss.
                    self.counters.dropped += 1;
                    return Verdict::Taken;
                }
                self.counters.echo_prohibited += 1;
                if let Some(f) = icmp_error(my_mac, peer_mac, packet, IcmpWhy::Prohibited, self.checksum_offload) {
                    self.push_raw(dev, f);
                }
                Verdict::Taken
            }
            _ => self.deny(now, dev, &s, packet, peer_mac, my_mac),
        }
    }

    /// Refuses a packet to a destination the exit does not allow: a TCP reset (from the stack) or
    /// ICMP administratively prohibited; counted, and logged at most once per interval.
    fn deny(
        &mut self,
        now: SimTime,
        dev: usize,
        s: &Seen,
        packet: &[u8],
        peer: EthernetAddress,
        me: EthernetAddress,
    ) -> Verdict {
        let Some(e) = &mut self.exit else { return Verdict::Stack };
        self.counters.denied += 1;
        let what = match s.proto {
            IpProtocol::Tcp => format!("tcp {} → {}", SocketAddr::new(s.src, s.sport), SocketAddr::new(s.dst, s.dport)),
            IpProtocol::Udp => format!("udp {} → {}", SocketAddr::new(s.src, s.sport), SocketAddr::new(s.dst, s.dport)),
            p => format!("{p} {} → {}", s.src, s.dst),
        };
        let due = e.logged_at.is_none_or(|t| now - t >= LOG_EVERY);
        if due {
            let more = if e.denied_unlogged > 0 {
                format!(" ({} more refused since the last line)", e.denied_unlogged)
            } else {
                String::new()
            };
            self.out.push(BridgeOut::Log(format!("exit refused {what}: not in exit.allow{more}")));
            e.logged_at = Some(now);
            e.denied_unlogged = 0;
        } else {
            e.denied_unlogged += 1;
            e.last_denied = Some(what);
        }
        if s.proto == IpProtocol::Tcp {
            // With no socket for it, the stack answers with a reset.
            return Verdict::Stack;
        }
        if let Some(f) = icmp_error(me, peer, packet, IcmpWhy::Prohibited, self.checksum_offload) {
            self.push_raw(dev, f);
        }
        Verdict::Taken
    }

    /// Moves bytes between the flows' lab sockets and their buffers; notes flows that ended.
    pub fn pump(&mut self, now: SimTime, stacks: &mut [Stack]) {
        let node = self.node;
        let mut ended = Vec::new();
        // An exit's new sockets: make sure each took its own SYN (two listening on one endpoint
        // take SYNs in set order).
        let fresh: Vec<u32> = self.tcp.iter().filter(|(_, p)| p.expect_remote.is_some()).map(|(n, _)| *n).collect();
        if fresh.len() > 1 {
            let remotes: Vec<(u32, Option<IpEndpoint>)> = fresh
                .iter()
                .map(|n| {
                    let p = &self.tcp[n];
                    (*n, stacks[p.dev].sockets.get::<tcp::Socket>(p.handle).remote_endpoint())
                })
                .collect();
            for (n, remote) in &remotes {
                let Some(remote) = remote else { continue };
                if self.tcp[n].expect_remote != Some(*remote) {
                    if let Some((m, _)) =
                        fresh.iter().map(|m| (*m, self.tcp[m].expect_remote)).find(|(_, e)| *e == Some(*remote))
                    {
                        let a = self.tcp[n].handle;
                        let b = self.tcp[&m].handle;
                        if let Some(p) = self.tcp.get_mut(n) {
                            p.handle = b;
                        }
                        if let Some(p) = self.tcp.get_mut(&m) {
                            p.handle = a;
                        }
                    }
                }
            }
        }
        for (n, p) in &mut self.tcp {
            let flow = FlowId { node, n: *n };
            let s = stacks[p.dev].sockets.get_mut::<tcp::Socket>(p.handle);
            if p.expect_remote.is_some() && s.remote_endpoint().is_some() {
                p.expect_remote = None;
            }
            p.info.state = tcp_state(s.state());
            if s.state() == tcp::State::Established {
                p.established = true;
            }
            // Into the lab.
            while !p.to_lab.is_empty() && s.can_send() {
                let (a, _) = p.to_lab.as_slices();
                let Ok(k) = s.send_slice(a) else { break };
                if k == 0 {
                    break;
                }
                p.to_lab.drain(..k);
                p.consumed += k;
            }
            if p.consumed > 0 {
                self.out.push(BridgeOut::Consumed(flow, p.consumed));
                p.consumed = 0;
            }
            if p.real_eof && p.to_lab.is_empty() && !p.fin_sent && (s.may_send() || p.established) {
                s.close();
                p.fin_sent = true;
            }
            // Out of the lab.
            while p.unwritten < WINDOW && s.can_recv() {
                let room = (WINDOW - p.unwritten).min(CHUNK);
                let Ok(chunk) = s.recv(|b| {
                    let k = b.len().min(room);
                    (k, b[..k].to_vec())
                }) else {
                    break;
                };
                if chunk.is_empty() {
                    break;
                }
                p.unwritten += chunk.len();
                p.info.bytes_out += chunk.len() as u64;
                self.out.push(BridgeOut::Data(flow, chunk));
            }
            if p.established && !p.eof_told && !s.may_recv() && s.recv_queue() == 0 {
                p.eof_told = true;
                self.out.push(BridgeOut::Eof(flow));
            }
            // Over: reset or timed out (CLOSED), or both sides closed (TIME-WAIT, or CLOSED after
            // the last ACK).
            let st = s.state();
            if matches!(st, tcp::State::Closed | tcp::State::TimeWait) {
                let graceful = p.eof_told && p.fin_sent;
                ended.push((*n, !graceful));
            }
        }
        for (n, reset) in ended {
            let Some(p) = self.tcp.remove(&n) else { continue };
            let flow = FlowId { node, n };
            self.out.push(BridgeOut::Closed { flow, reset });
            if reset {
                self.counters.resets += 1;
            }
            let st = stacks[p.dev].sockets.get::<tcp::Socket>(p.handle).state();
            if st == tcp::State::Closed {
                stacks[p.dev].sockets.remove(p.handle);
            } else {
                self.draining.push((p.dev, p.handle));
            }
            self.forget_tcp(&p.info);
            let why = if reset {
                if p.established {
                    "reset"
                } else {
                    "refused"
                }
            } else {
                "closed"
            };
            self.end(p.info, now, why);
        }
        self.draining.retain(|(dev, h)| {
            let closed = stacks[*dev].sockets.get::<tcp::Socket>(*h).state() == tcp::State::Closed;
            if closed {
                stacks[*dev].sockets.remove(*h);
            }
            !closed
        });
        // UDP.
        let mut idle = Vec::new();
        for (n, p) in &mut self.udp {
            let flow = FlowId { node, n: *n };
            match &mut p.side {
                UdpSide::Socket { dev, handle, to } => {
                    let s = stacks[*dev].sockets.get_mut::<udp::Socket>(*handle);
                    while let Some(d) = p.queue.front() {
                        if s.send_slice(d, *to).is_err() {
                            break;
                        }
                        p.queue.pop_front();
                    }
                    while let Ok((data, meta)) = s.recv() {
                        if meta.endpoint != *to {
                            continue;
                        }
                        p.last = now;
                        p.info.bytes_out += data.len() as u64;
                        self.out.push(BridgeOut::Data(flow, data.to_vec()));
                    }
                }
                UdpSide::Raw { dev, mac, my_mac, .. } => {
                    while let Some(d) = p.queue.pop_front() {
                        let f = udp_frame(*my_mac, *mac, p.info.lab_dst, p.info.lab_src, &d, self.checksum_offload);
                        if self.raw.len() < RAW_QUEUE {
                            self.raw.push_back((*dev, f));
                        } else {
                            self.counters.dropped += 1;
                        }
                    }
                }
            }
            if now >= p.last + p.idle {
                idle.push(*n);
            }
        }
        for n in idle {
            if let Some(p) = self.udp.remove(&n) {
                self.counters.udp_timeouts += 1;
                self.out.push(BridgeOut::Closed { flow: FlowId { node, n }, reset: false });
                self.close_udp(stacks, &p);
                self.end(p.info, now, "idle");
            }
        }
        // Held SYNs the edge never answered for: given up; and echoes unanswered.
        if let Some(e) = &mut self.exit {
            e.echo_pending.retain(|_, p| now < p.since + ECHO_WAIT);
            let limit = e.rules.dial_timeout * 2;
            let stale: Vec<u32> = e.pending.iter().filter(|(_, p)| now >= p.since + limit).map(|(n, _)| *n).collect();
            for n in stale {
                if let Some(p) = e.pending.remove(&n) {
                    e.tcp_by_ends.remove(&(p.src, p.dst));
                    if let Some(c) = e.pending_by_source.get_mut(&p.src.ip()) {
                        *c = c.saturating_sub(1);
                    }
                    self.counters.dials_timed_out += 1;
                }
            }
        }
    }
}

impl TcpPipe {
    fn new(dev: usize, handle: SocketHandle, info: FlowInfo, expect_remote: Option<IpEndpoint>) -> Self {
        TcpPipe {
            dev,
            handle,
            info,
            to_lab: VecDeque::new(),
            unwritten: 0,
            consumed: 0,
            real_eof: false,
            fin_sent: false,
            eof_told: false,
            established: false,
            expect_remote,
        }
    }
}

/// An ARP request for an address that is not the gateway's own.
fn arp_for_other(frame: &[u8], mine: &dyn Fn(IpAddr) -> bool) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(frame) else { return false };
    if eth.ethertype() != EthernetProtocol::Arp {
        return false;
    }
    let Ok(p) = smoltcp::wire::ArpPacket::new_checked(eth.payload()) else { return true };
    let Ok(smoltcp::wire::ArpRepr::EthernetIpv4 { target_protocol_addr, .. }) = smoltcp::wire::ArpRepr::parse(&p)
    else {
        return true;
    };
    !mine(IpAddr::V4(target_protocol_addr))
}

#[derive(Clone, Copy)]
enum IcmpWhy {
    PortUnreachable,
    Prohibited,
}

/// An ICMP destination unreachable about `packet` (an IP packet), from its destination back to its
/// source, in a frame to `to`. None about an ICMP error, a fragment past the first, or to a
/// source that takes none.
fn icmp_error(me: EthernetAddress, to: EthernetAddress, packet: &[u8], why: IcmpWhy, offload: bool) -> Option<Vec<u8>> {
    let v6 = packet.first().is_some_and(|b| b >> 4 == 6);
    // A quote kept of an earlier packet may be its headers alone: read them, never its length.
    let ip = if v6 {
        if packet.len() < 40 {
            return None;
        }
        let p = Ipv6Packet::new_unchecked(packet);
        if p.next_header() == IpProtocol::Icmpv6 && packet.get(40).is_some_and(|t| *t < 128) {
            return None;
        }
        if p.src_addr().is_multicast() || p.src_addr().is_unspecified() {
            return None;
        }
        let code = match why {
            IcmpWhy::PortUnreachable => 4,
            IcmpWhy::Prohibited => 1,
        };
        let quote = &packet[..packet.len().min(1232)];
        let mut icmp = vec![0u8; 8 + quote.len()];
        icmp[0] = 1;
        icmp[1] = code;
        icmp[8..].copy_from_slice(quote);
        ip_packet(IpAddr::V6(p.dst_addr()), IpAddr::V6(p.src_addr()), IpProtocol::Icmpv6, &icmp, offload)?
    } else {
        let hl = usize::from(packet.first()? & 0x0f) * 4;
        if hl < 20 || packet.len() < hl {
            return None;
        }
        let p = Ipv4Packet::new_unchecked(packet);
        if p.frag_offset() != 0
            || p.src_addr().is_broadcast()
            || p.src_addr().is_multicast()
            || p.src_addr().is_unspecified()
        {
            return None;
        }
        if p.next_header() == IpProtocol::Icmp && packet.get(hl).is_some_and(|t| !matches!(t, 0 | 8)) {
            return None;
        }
        let code = match why {
            IcmpWhy::PortUnreachable => 3,
            IcmpWhy::Prohibited => 13,
        };
        let quote = &packet[..packet.len().min(hl + 8)];
        let mut icmp = vec![0u8; 8 + quote.len()];
        icmp[0] = 3;
        icmp[1] = code;
        icmp[8..].copy_from_slice(quote);
        if !offload {
            Icmpv4Packet::new_unchecked(&mut icmp[..]).fill_checksum();
        }
        ip_packet(IpAddr::V4(p.dst_addr()), IpAddr::V4(p.src_addr()), IpProtocol::Icmp, &icmp, offload)?
    };
    Some(ethernet(me, to, v6, &ip))
}

fn ethernet(me: EthernetAddress, to: EthernetAddress, v6: bool, ip: &[u8]) -> Vec<u8> {
    let repr = EthernetRepr {
        src_addr: me,
        dst_addr: to,
        ethertype: if v6 { EthernetProtocol::Ipv6 } else { EthernetProtocol::Ipv4 },
    };
    let mut buf = vec![0; repr.buffer_len() + ip.len()];
    let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
    repr.emit(&mut f);
    f.payload_mut().copy_from_slice(ip);
    buf
}

/// A UDP datagram from `src` to `dst`, in a frame from `me` to `to`.
fn udp_frame(
    me: EthernetAddress,
    to: EthernetAddress,
    src: SocketAddr,
    dst: SocketAddr,
    data: &[u8],
    offload: bool,
) -> Vec<u8> {
    let udp = UdpRepr { src_port: src.port(), dst_port: dst.port() };
    let (s, d) = (IpAddress::from(src.ip()), IpAddress::from(dst.ip()));
    let mut l4 = vec![0; udp.header_len() + data.len()];
    udp.emit(
        &mut UdpPacket::new_unchecked(&mut l4[..]),
        &s,
        &d,
        data.len(),
        |b| b.copy_from_slice(data),
        &caps(offload),
    );
    let ip = ip_packet(src.ip(), dst.ip(), IpProtocol::Udp, &l4, offload).unwrap_or_default();
    ethernet(me, to, dst.is_ipv6(), &ip)
}

/// The echo reply to a request carried out: from its destination back to its source.
fn echo_reply(p: &EchoPending, offload: bool) -> Option<Vec<u8>> {
    let mut icmp = vec![0u8; 8 + p.data.len()];
    icmp[4..8].copy_from_slice(&p.rest);
    icmp[8..].copy_from_slice(&p.data);
    if p.src.is_ipv6() {
        icmp[0] = 129;
    } else if !offload {
        Icmpv4Packet::new_unchecked(&mut icmp[..]).fill_checksum();
    }
    let proto = if p.src.is_ipv6() { IpProtocol::Icmpv6 } else { IpProtocol::Icmp };
    let ip = ip_packet(p.dst, p.src, proto, &icmp, offload)?;
    Some(ethernet(p.my_mac, p.mac, p.src.is_ipv6(), &ip))
}

/// An IP packet from `src` to `dst` around `l4` (hop limit 64). An ICMPv6 message gets its
/// checksum here, over the pseudo-header; other transports come with theirs. `None` when the two
/// addresses are of different families.
fn ip_packet(src: IpAddr, dst: IpAddr, proto: IpProtocol, l4: &[u8], offload: bool) -> Option<Vec<u8>> {
    match (src, dst) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let repr = Ipv4Repr { src_addr: a, dst_addr: b, next_header: proto, payload_len: l4.len(), hop_limit: 64 };
            let mut buf = vec![0; repr.buffer_len() + l4.len()];
            repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), &caps(offload));
            buf[20..].copy_from_slice(l4);
            Some(buf)
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let repr = Ipv6Repr { src_addr: a, dst_addr: b, next_header: proto, payload_len: l4.len(), hop_limit: 64 };
            let mut buf = vec![0; repr.buffer_len() + l4.len()];
            repr.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..]));
            buf[40..].copy_from_slice(l4);
            if proto == IpProtocol::Icmpv6 && !offload {
                smoltcp::wire::Icmpv6Packet::new_unchecked(&mut buf[40..]).fill_checksum(&a, &b);
            }
            Some(buf)
        }
        _ => None,
    }
}
