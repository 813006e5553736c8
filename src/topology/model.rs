//! The validated lab: every name resolved to an id, every address parsed. Code past `validate`
//! trusts this model and never re-checks it.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use smoltcp::wire::{EthernetAddress, IpCidr, Ipv4Address, Ipv6Address};

pub use super::metrics::{Metric, Unit};
pub use super::spec::{CaptureFormat, Congestion, DirectionSpec, Distribution, ImpairSpec};

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u32);
        impl $name {
            #[must_use]
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }
    };
}
id_type!(
    /// Index of a node in [`Lab::nodes`].
    NodeId
);
id_type!(
    /// Index of a link in [`Lab::links`].
    LinkId
);

#[derive(Debug, Clone)]
pub struct Lab {
    pub name: String,
    pub description: String,
    pub seed: u64,
    /// Frames carry no checksums and nobody verifies them (as on a veth pair with offload).
    pub checksum_offload: bool,
    pub nodes: Vec<Node>,
    pub links: Vec<Link>,
    pub capture: CaptureConfig,
    /// What validation found likely wrong but not fatal, in file order, each with its place
    /// ([`Severity::Warning`](super::diag::Severity::Warning)): hosts of one segment with
    /// overlapping but different prefixes, or with different MTUs. Empty for a lab made in code.
    pub warnings: Vec<super::diag::Diagnostic>,
    /// The sites that nodes name, in order of first mention, with how they reach each other.
    pub sites: Vec<Site>,
    /// Each pair of sites joined by links, with the links it carries.
    pub tunnels: Vec<Tunnel>,
    /// Tunnels carry frames in plaintext (`"insecure": true`).
    pub insecure: bool,
    /// Changes at simulated times, in the order they apply (by time, then file order).
    pub events: Vec<Event>,
    /// What must hold at the end of a run, in file order.
    pub expect: Vec<Expectation>,
    /// Real ports into the lab, in file order.
    pub forwards: Vec<Forward>,
}

/// The transport of a port forward or a bridged flow.
pub use super::spec::ForwardProto as Proto;

/// A port forward: connections (TCP) or sources (UDP) accepted on a real `listen` address become
/// flows from lab host `from` to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub listen: std::net::SocketAddr,
    pub from: NodeId,
    pub to: std::net::SocketAddr,
    pub proto: Proto,
    /// UDP: a flow with no datagram either way for this long ends.
    pub udp_idle: Duration,
}

/// What an exit gateway lets out of the lab, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// Lab destinations it dials; empty: none.
    pub allow: Vec<IpCidr>,
    /// Lab prefix → real prefix, same family and length.
    pub map: Vec<(IpCidr, IpCidr)>,
    pub dial_timeout: Duration,
    pub udp_idle: Duration,
    pub max_pending: usize,
    pub max_pending_per_source: usize,
    pub max_flows: usize,
}

impl Default for Exit {
    fn default() -> Self {
        Exit {
            allow: Vec::new(),
            map: Vec::new(),
            dial_timeout: Duration::from_secs(5),
            udp_idle: Duration::from_secs(30),
            max_pending: 64,
            max_pending_per_source: 16,
            max_flows: 256,
        }
    }
}

impl Exit {
    /// Whether flows to lab address `ip` may leave.
    #[must_use]
    pub fn allows(&self, ip: IpAddr) -> bool {
        let a = smoltcp::wire::IpAddress::from(ip);
        self.allow.iter().any(|c| c.contains_addr(&a))
    }

    /// The real address lab address `ip` is dialled at: mapped by the longest prefix of `map`
    /// that holds it, else itself.
    #[must_use]
    pub fn real(&self, ip: IpAddr) -> IpAddr {
        let a = smoltcp::wire::IpAddress::from(ip);
        let Some((from, to)) = self.map.iter().filter(|(f, _)| f.contains_addr(&a)).max_by_key(|(f, _)| f.prefix_len())
        else {
            return ip;
        };
        map_prefix(ip, *from, *to)
    }
}

/// `ip` (inside `from`) moved to the same offset inside `to`.
#[must_use]
pub fn map_prefix(ip: IpAddr, from: IpCidr, to: IpCidr) -> IpAddr {
    match (ip, to.address()) {
        (IpAddr::V4(a), smoltcp::wire::IpAddress::Ipv4(t)) => {
            let len = u32::from(from.prefix_len().min(32));
            let host_mask = if len == 0 { u32::MAX } else { u32::MAX >> len };
            IpAddr::V4(std::net::Ipv4Addr::from((u32::from(t) & !host_mask) | (u32::from(a) & host_mask)))
        }
        (IpAddr::V6(a), smoltcp::wire::IpAddress::Ipv6(t)) => {
            let len = u32::from(from.prefix_len().min(128));
            let host_mask = if len == 0 { u128::MAX } else { u128::MAX >> len };
            IpAddr::V6(std::net::Ipv6Addr::from((u128::from(t) & !host_mask) | (u128::from(a) & host_mask)))
        }
        _ => ip,
    }
}

/// A site: the nodes that run in one process, and its `sites` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Site {
    pub name: String,
    /// The address it listens on for peers (`host:port`).
    pub listen: Option<String>,
    /// The command that starts it elsewhere, for `exec` tunnels.
    pub exec: Option<String>,
}

/// Two sites joined by one or more links, all carried by one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tunnel {
    /// The site that calls (dials, or runs the `exec` command), by index in [`Lab::sites`].
    pub caller: usize,
    /// The site that waits for the call (listens, or is the `exec` command's own process).
    pub callee: usize,
    pub transport: Transport,
    /// For `udp` and `tcp`: where the caller connects (`host:port`).
    pub connect: Option<String>,
    /// The links it carries, in lab order.
    pub links: Vec<LinkId>,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub id: NodeId,
    pub name: String,
    pub site: Option<String>,
    pub kind: NodeKind,
}

#[derive(Debug, Clone)]
pub enum NodeKind {
    Host(Host),
    Switch(Switch),
    Router(Router),
}

impl NodeKind {
    /// The interfaces of a host or router; a switch has ports, not interfaces.
    #[must_use]
    pub fn interfaces(&self) -> &[Interface] {
        match self {
            NodeKind::Host(h) => &h.interfaces,
            NodeKind::Router(r) => &r.interfaces,
            NodeKind::Switch(_) => &[],
        }
    }

    #[must_use]
    pub fn interfaces_mut(&mut self) -> Option<&mut Vec<Interface>> {
        match self {
            NodeKind::Host(h) => Some(&mut h.interfaces),
            NodeKind::Router(r) => Some(&mut r.interfaces),
            NodeKind::Switch(_) => None,
        }
    }

    /// `host`, `gateway`, `switch` or `router`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            NodeKind::Host(h) if h.exit.is_some() => "gateway",
            NodeKind::Host(_) => "host",
            NodeKind::Switch(_) => "switch",
            NodeKind::Router(_) => "router",
        }
    }
}

/// A router: interfaces, and static routes besides the connected ones its interfaces give.
#[derive(Debug, Clone)]
pub struct Router {
    pub interfaces: Vec<Interface>,
    /// Static routes, in lab order; a default route is `0.0.0.0/0` or `::/0`.
    pub routes: Vec<Route>,
}

/// A static route: packets to `to` leave by interface `dev` (an index in the node's interfaces),
/// to the next hop `via`, or straight to their destination when `via` is `None` (on-link).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub to: IpCidr,
    pub via: Option<smoltcp::wire::IpAddress>,
    pub dev: usize,
}

#[derive(Debug, Clone)]
pub struct Host {
    pub interfaces: Vec<Interface>,
    pub tcp: TcpConfig,
    pub apps: Vec<App>,
    /// Static routes in lab order, then a default route for the first gateway of each family
    /// (unless a static route is a default already); each leaves by interface `dev` to `via`.
    pub routes: Vec<Route>,
    /// Set for an exit gateway (`kind: "gateway"`), which runs no apps.
    pub exit: Option<Exit>,
}

/// How a host sends to an address: out of interface `dev`, to the next hop `via` (`None`: to the
/// address itself, on the link of a subnet of `dev`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostRoute {
    pub dev: usize,
    pub via: Option<smoltcp::wire::IpAddress>,
}

/// The route a host with `interfaces` and `routes` takes to `ip`: the longest prefix among the
/// subnets of its interfaces and its routes; among equal prefixes a subnet of its own, then the
/// routes in order (static ones before gateways). `None`: it has no route to `ip`.
#[must_use]
pub fn host_route(interfaces: &[Interface], routes: &[Route], ip: IpAddr) -> Option<HostRoute> {
    let target = smoltcp::wire::IpAddress::from(ip);
    let mut best: Option<(u8, HostRoute)> = None;
    for (dev, i) in interfaces.iter().enumerate() {
        for c in &i.addresses {
            if c.contains_addr(&target) && best.is_none_or(|b| c.prefix_len() > b.0) {
                best = Some((c.prefix_len(), HostRoute { dev, via: None }));
            }
        }
    }
    for r in routes {
        if r.to.contains_addr(&target) && best.is_none_or(|b| r.to.prefix_len() > b.0) {
            best = Some((r.to.prefix_len(), HostRoute { dev: r.dev, via: r.via }));
        }
    }
    best.map(|b| b.1)
}

impl Host {
    /// The route this host takes to `ip` (see [`host_route`]).
    #[must_use]
    pub fn route(&self, ip: IpAddr) -> Option<HostRoute> {
        host_route(&self.interfaces, &self.routes, ip)
    }

    /// The interface that has address `ip`.
    #[must_use]
    pub fn interface_of(&self, ip: IpAddr) -> Option<usize> {
        let ip = smoltcp::wire::IpAddress::from(ip);
        self.interfaces.iter().position(|i| i.addresses.iter().any(|c| c.address() == ip))
    }
}

/// The routes the stack of interface `dev` of a host holds, as (prefix, next hop): the host's
/// routes that leave by it, in order, then the interface's own gateways as default routes where
/// none of those is a default of that family already. So a packet a socket of that interface sends
/// (a reply included) finds its way out of it.
#[must_use]
pub fn interface_routes(
    interfaces: &[Interface],
    routes: &[Route],
    dev: usize,
) -> Vec<(IpCidr, smoltcp::wire::IpAddress)> {
    use smoltcp::wire::IpAddress;
    let mut out: Vec<(IpCidr, IpAddress)> =
        routes.iter().filter(|r| r.dev == dev).filter_map(|r| r.via.map(|v| (r.to, v))).collect();
    if let Some(i) = interfaces.get(dev) {
        let gateways = [
            i.gateway_v4.map(|g| (IpCidr::new(IpAddress::Ipv4(Ipv4Address::UNSPECIFIED), 0), IpAddress::Ipv4(g))),
            i.gateway_v6.map(|g| (IpCidr::new(IpAddress::Ipv6(Ipv6Address::UNSPECIFIED), 0), IpAddress::Ipv6(g))),
        ];
        for (to, via) in gateways.into_iter().flatten() {
            if !out.iter().any(|(t, _)| *t == to) {
                out.push((to, via));
            }
        }
    }
    out
}

#[derive(Debug, Clone)]
pub struct Interface {
    pub name: String,
    pub mac: EthernetAddress,
    pub mtu: usize,
    pub addresses: Vec<IpCidr>,
    pub gateway_v4: Option<Ipv4Address>,
    pub gateway_v6: Option<Ipv6Address>,
    /// The link plugged into this interface, if any.
    pub link: Option<(LinkId, Side)>,
}

#[derive(Debug, Clone)]
pub struct Switch {
    pub mac_ageing: Duration,
    /// Ports in the order the links name them.
    pub ports: Vec<(LinkId, Side)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpConfig {
    pub congestion: Congestion,
    pub rx_buffer: usize,
    pub tx_buffer: usize,
    pub ack_delay: Option<Duration>,
    pub nagle: bool,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            congestion: Congestion::Cubic,
            rx_buffer: 256 * 1024,
            tx_buffer: 256 * 1024,
            ack_delay: None,
            nagle: false,
        }
    }
}

/// Which end of a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    A,
    B,
}

impl Side {
    #[must_use]
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
    #[must_use]
    pub fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }
}

/// Where a link end plugs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attachment {
    /// An interface of a host or router, by index in its `interfaces`.
    HostInterface { node: NodeId, interface: usize },
    /// A switch port, by index in [`Switch::ports`].
    SwitchPort { node: NodeId, port: usize },
}

impl Attachment {
    #[must_use]
    pub fn node(self) -> NodeId {
        match self {
            Attachment::HostInterface { node, .. } | Attachment::SwitchPort { node, .. } => node,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Link {
    pub id: LinkId,
    pub name: String,
    /// `ends[0]` is side A, `ends[1]` side B.
    pub ends: [Attachment; 2],
    pub transport: Transport,
    /// The model of frames from A to B (of both directions, unless `b_to_a` says otherwise).
    pub model: LinkModel,
    /// The model of frames from B to A.
    pub model_b_to_a: LinkModel,
    /// The link is up when the lab starts (`"state": "down"` starts it down).
    pub up: bool,
}

impl Link {
    /// The model of the direction that `from` sends on.
    #[must_use]
    pub fn model_from(&self, from: Side) -> &LinkModel {
        match from {
            Side::A => &self.model,
            Side::B => &self.model_b_to_a,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Frames pass in memory, within one process.
    Mem,
    /// Between sites: one frame a datagram.
    Udp,
    /// Between sites: length-prefixed frames on a stream.
    Tcp,
    /// Between sites: length-prefixed frames on a child process's standard input and output.
    Exec,
}

impl Transport {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Mem => "mem",
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Exec => "exec",
        }
    }
}

impl Lab {
    /// The index of a site in [`Lab::sites`].
    #[must_use]
    pub fn site_index(&self, name: &str) -> Option<usize> {
        self.sites.iter().position(|s| s.name == name)
    }

    /// The site a node runs in, by index in [`Lab::sites`]; `None` in a lab without sites.
    #[must_use]
    pub fn node_site(&self, node: NodeId) -> Option<usize> {
        self.nodes.get(node.index()).and_then(|n| n.site.as_deref()).and_then(|s| self.site_index(s))
    }

    /// The same lab with every link in memory, in one process: no tunnels, so it runs in virtual
    /// time and replays exactly (`--in-memory`).
    #[must_use]
    pub fn in_memory(mut self) -> Lab {
        for l in &mut self.links {
            l.transport = Transport::Mem;
        }
        self.tunnels.clear();
        self
    }

    /// The tunnel that carries a link, if it joins two sites.
    #[must_use]
    pub fn tunnel_of(&self, link: LinkId) -> Option<usize> {
        self.tunnels.iter().position(|t| t.links.contains(&link))
    }

    /// A digest of what two sites must agree on to exchange frames: the lab's name and each
    /// cross-site link (its id, name, ends and their sites, transport). Two sites running lab
    /// files that differ here refuse each other.
    #[must_use]
    pub fn tunnel_digest(&self) -> [u8; 32] {
        use blake2::{Blake2s256, Digest};
        let mut h = Blake2s256::new();
        let mut put = |b: &[u8]| {
            h.update((b.len() as u64).to_be_bytes());
            h.update(b);
        };
        put(b"netlab tunnel digest v1");
        put(self.name.as_bytes());
        for t in &self.tunnels {
            put(self.sites[t.caller].name.as_bytes());
            put(self.sites[t.callee].name.as_bytes());
            put(t.transport.as_str().as_bytes());
            for l in &t.links {
                let link = &self.links[l.index()];
                put(&l.0.to_be_bytes());
                put(link.name.as_bytes());
                for end in link.ends {
                    let node = &self.nodes[end.node().index()];
                    put(node.name.as_bytes());
                    put(node.site.as_deref().unwrap_or("").as_bytes());
                    let port = match end {
                        Attachment::HostInterface { interface, .. } => interface,
                        Attachment::SwitchPort { port, .. } => port,
                    };
                    put(&(port as u64).to_be_bytes());
                }
            }
        }
        h.finalize().into()
    }
}

/// The model of one direction of a link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkModel {
    pub latency: Duration,
    /// Bits per second; `None` is unlimited.
    pub rate_bps: Option<u64>,
    /// Probability of random loss (unused while `loss_model` is set).
    pub loss: f64,
    pub queue_frames: usize,
    /// Variation of the delay: the half-width of a uniform draw, or the standard deviation of the
    /// other distributions.
    pub jitter: Duration,
    pub distribution: Distribution,
    /// Frames may overtake each other (with jitter); otherwise each arrives after the one before.
    pub reorder: bool,
    /// Bursty loss; when set it replaces `loss`.
    pub loss_model: Option<GilbertElliott>,
    /// Probability that a frame arrives twice.
    pub duplicate: f64,
    /// Probability that a frame arrives with a bit flipped.
    pub corrupt: f64,
    /// Bytes that may wait for the wire; `None`: no byte limit.
    pub queue_bytes: Option<u64>,
}

/// A Gilbert-Elliott loss model: a good and a bad state, each with its loss probability.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GilbertElliott {
    /// P(good → bad) after a frame.
    pub p: f64,
    /// P(bad → good) after a frame.
    pub r: f64,
    pub loss_good: f64,
    pub loss_bad: f64,
}

impl GilbertElliott {
    /// The long-run share of frames lost: the stationary share of each state times its loss.
    #[must_use]
    pub fn mean_loss(&self) -> f64 {
        if self.p + self.r <= 0.0 {
            return self.loss_good;
        }
        let bad = self.p / (self.p + self.r);
        (1.0 - bad) * self.loss_good + bad * self.loss_bad
    }
}

impl Default for LinkModel {
    fn default() -> Self {
        LinkModel {
            latency: Duration::ZERO,
            rate_bps: None,
            loss: 0.0,
            queue_frames: 1000,
            jitter: Duration::ZERO,
            distribution: Distribution::Uniform,
            reorder: false,
            loss_model: None,
            duplicate: 0.0,
            corrupt: 0.0,
            queue_bytes: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct CaptureConfig {
    pub enabled: bool,
    /// Captured links, in lab order.
    pub links: Vec<LinkId>,
    pub dir: PathBuf,
    pub format: CaptureFormat,
}

#[derive(Debug, Clone)]
pub struct App {
    /// `"<node>/<kind>"`, used in reports.
    pub label: String,
    pub start: Duration,
    pub kind: AppKind,
}

#[derive(Debug, Clone)]
pub enum AppKind {
    Ping { to: IpAddr, count: u32, interval: Duration, size: usize, timeout: Duration },
    TcpEchoServer { port: u16 },
    TcpEcho { to: (IpAddr, u16), count: u32, size: usize, interval: Duration, timeout: Duration },
    UdpEchoServer { port: u16 },
    UdpEcho { to: (IpAddr, u16), count: u32, size: usize, interval: Duration, timeout: Duration },
    TcpSink { port: u16 },
    TcpTransfer { to: (IpAddr, u16), bytes: u64 },
    HttpServer { port: u16, status: u16, body: u64, keep_alive: bool },
    HttpGet(HttpGet),
    UdpStream(UdpStream),
    UdpStreamServer { port: u16 },
    Traceroute(Traceroute),
}

/// An `http-get`: requests for `path` on `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpGet {
    pub to: (IpAddr, u16),
    /// The request target, printable ASCII starting with `/`.
    pub path: String,
    pub count: u32,
    pub interval: Duration,
    pub timeout: Duration,
    pub keep_alive: bool,
}

/// A `udp-stream`: `count` datagrams of `size` bytes at `rate_bps`, then `linger`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpStream {
    pub to: (IpAddr, u16),
    pub rate_bps: u64,
    pub size: usize,
    pub count: u32,
    pub linger: Duration,
}

/// What a traceroute probes with.
pub use super::spec::TraceProto;

/// A `traceroute` to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traceroute {
    pub to: IpAddr,
    pub proto: TraceProto,
    pub max_hops: u8,
    pub probes: u32,
    pub timeout: Duration,
}

impl AppKind {
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            AppKind::Ping { .. } => "ping",
            AppKind::TcpEchoServer { .. } => "tcp-echo-server",
            AppKind::TcpEcho { .. } => "tcp-echo",
            AppKind::UdpEchoServer { .. } => "udp-echo-server",
            AppKind::UdpEcho { .. } => "udp-echo",
            AppKind::TcpSink { .. } => "tcp-sink",
            AppKind::TcpTransfer { .. } => "tcp-transfer",
            AppKind::HttpServer { .. } => "http-server",
            AppKind::HttpGet(_) => "http-get",
            AppKind::UdpStream(_) => "udp-stream",
            AppKind::UdpStreamServer { .. } => "udp-stream-server",
            AppKind::Traceroute(_) => "traceroute",
        }
    }

    /// Servers run until the lab stops; a run without `--duration` ends when every client is done.
    #[must_use]
    pub fn is_server(&self) -> bool {
        self.listens_on().is_some()
    }

    /// The protocol (`"TCP"` or `"UDP"`) and port a server listens on.
    #[must_use]
    pub fn listens_on(&self) -> Option<(&'static str, u16)> {
        match *self {
            AppKind::TcpEchoServer { port } | AppKind::TcpSink { port } => Some(("TCP", port)),
            AppKind::UdpEchoServer { port } => Some(("UDP", port)),
            AppKind::HttpServer { port, .. } => Some(("TCP", port)),
            AppKind::UdpStreamServer { port } => Some(("UDP", port)),
            _ => None,
        }
    }
}

impl AppKind {
    /// The address a client sends to, which picks the interface its sockets live on; `None` for
    /// a server, which listens on every interface. (Every kind says which it is.)
    #[must_use]
    pub fn target(&self) -> Option<IpAddr> {
        match *self {
            AppKind::Ping { to, .. } => Some(to),
            AppKind::TcpEcho { to, .. } | AppKind::UdpEcho { to, .. } | AppKind::TcpTransfer { to, .. } => Some(to.0),
            AppKind::HttpGet(ref g) => Some(g.to.0),
            AppKind::UdpStream(u) => Some(u.to.0),
            AppKind::Traceroute(t) => Some(t.to),
            AppKind::TcpEchoServer { .. }
            | AppKind::UdpEchoServer { .. }
            | AppKind::TcpSink { .. }
            | AppKind::HttpServer { .. }
            | AppKind::UdpStreamServer { .. } => None,
        }
    }
}

impl Lab {
    #[must_use]
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.index()]
    }

    #[must_use]
    pub fn link(&self, id: LinkId) -> &Link {
        &self.links[id.index()]
    }

    #[must_use]
    pub fn node_by_name(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

impl fmt::Display for Lab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (n, l) = (self.nodes.len(), self.links.len());
        write!(f, "{n} node{}, {l} link{}", if n == 1 { "" } else { "s" }, if l == 1 { "" } else { "s" })
    }
}

/// A change to the lab at a simulated time (an entry of `events`), checked against the lab.
#[derive(Debug, Clone)]
pub struct Event {
    pub at: Duration,
    /// Its index in the lab file's `events`.
    pub index: usize,
    pub action: EventAction,
}

#[derive(Debug, Clone)]
pub enum EventAction {
    /// A link down or up.
    SetLink { link: LinkId, up: bool },
    /// The `impair` fields given, for one direction or both.
    SetModel { link: LinkId, direction: Option<DirectionSpec>, impair: ImpairSpec },
    /// Down at `at + k × every` for `down`, for `k` from 0 to `count − 1`.
    Flap { link: LinkId, down: Duration, every: Duration, count: u32 },
    /// An app started on a host: as the lab file writes it (checked), and its label.
    StartApp { node: NodeId, app: serde_json::Value, label: String },
    /// An app stopped: its label (`node/kind` or `node/kind#n`) among the host's apps then.
    StopApp { node: NodeId, app: String },
    /// Every link between `nodes` and the rest goes down (`links`, in lab order).
    Partition { name: String, nodes: Vec<NodeId>, links: Vec<LinkId> },
    /// The partition `name` ends.
    Heal { name: String },
}

/// What must hold at the end of a run (an entry of `expect`), checked against the lab.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    /// Its index in the lab file's `expect`.
    pub index: usize,
    pub check: Check,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// A metric of the `nth` app (from 1) labelled `label` (`node/kind`).
    App { label: String, nth: usize, metric: Metric, bound: Bound },
    /// A link's drops of one reason (`None`: all reasons), one way (`Some(side that sends)`) or both.
    Drops { link: LinkId, reason: Option<String>, from: Option<Side>, bound: Bound },
    /// Whether `from` reaches `to`: by the pings of `from` to `addresses` (those of `to`).
    Reachable { from: NodeId, to: NodeId, addresses: Vec<IpAddr>, reachable: bool },
    /// No warning, of the lab or of the run.
    NoWarnings,
}

/// Where a value must lie: at least `min`, at most `max`, or exactly `equals`, in `unit`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound {
    pub unit: Unit,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub equals: Option<f64>,
}

impl Bound {
    /// Whether `v` lies within the bound.
    #[must_use]
    pub fn holds(&self, v: f64) -> bool {
        self.min.is_none_or(|m| v >= m) && self.max.is_none_or(|m| v <= m) && self.equals.is_none_or(|e| v == e)
    }
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let u = self.unit;
        match (self.equals, self.min, self.max) {
            (Some(e), _, _) => write!(f, "equal to {}", u.show(e)),
            (None, Some(lo), Some(hi)) => write!(f, "from {} to {}", u.show(lo), u.show(hi)),
            (None, Some(lo), None) => write!(f, "at least {}", u.show(lo)),
            (None, None, Some(hi)) => write!(f, "at most {}", u.show(hi)),
            (None, None, None) => write!(f, "any value"),
        }
    }
}

impl Expectation {
    /// What it is about, in a few words: `laptop/ping loss`, `wan drops (loss)`,
    /// `laptop reaches server`, `no warnings`.
    #[must_use]
    pub fn what(&self, lab: &Lab) -> String {
        let node = |n: &NodeId| lab.nodes.get(n.index()).map_or("?", |n| n.name.as_str());
        match &self.check {
            Check::App { label, nth: 1, metric, .. } => format!("{label} {}", metric.name),
            Check::App { label, nth, metric, .. } => format!("{label}#{nth} {}", metric.name),
            Check::Drops { link, reason, from, .. } => {
                let name = lab.links.get(link.index()).map_or("?", |l| l.name.as_str());
                let way = match from {
                    Some(Side::A) => " a-to-b",
                    Some(Side::B) => " b-to-a",
                    None => "",
                };
                format!("{name}{way} drops ({})", reason.as_deref().unwrap_or("all"))
            }
            Check::Reachable { from, to, reachable: true, .. } => format!("{} reaches {}", node(from), node(to)),
            Check::Reachable { from, to, reachable: false, .. } => {
                format!("{} does not reach {}", node(from), node(to))
            }
            Check::NoWarnings => "no warnings".to_string(),
        }
    }
}

/// The app that `selector` names among a host's apps, by their labels in order: `node/kind` (the
/// first of that label), `node/kind#n` (the `n`th, from 1), or an index among them (`0`, `1`, …).
#[must_use]
pub fn select_app<'l>(labels: impl IntoIterator<Item = &'l str>, selector: &str) -> Option<usize> {
    let labels: Vec<&str> = labels.into_iter().collect();
    if let Ok(i) = selector.parse::<usize>() {
        return (i < labels.len()).then_some(i);
    }
    let (label, nth) = split_selector(selector)?;
    labels.iter().enumerate().filter(|(_, l)| **l == label).nth(nth - 1).map(|(i, _)| i)
}

/// `node/kind#n` as its label and `n` (from 1); `node/kind` is the first.
#[must_use]
pub fn split_selector(selector: &str) -> Option<(&str, usize)> {
    match selector.rsplit_once('#') {
        Some((label, n)) => n.parse::<usize>().ok().filter(|n| *n >= 1).map(|n| (label, n)),
        None => Some((selector, 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::{select_app, split_selector};

    #[test]
    fn apps_are_selected_by_label_nth_or_index() {
        let labels = ["a/ping", "a/tcp-echo", "a/ping"];
        assert_eq!(select_app(labels, "a/ping"), Some(0));
        assert_eq!(select_app(labels, "a/ping#1"), Some(0));
        assert_eq!(select_app(labels, "a/ping#2"), Some(2));
        assert_eq!(select_app(labels, "a/ping#3"), None);
        assert_eq!(select_app(labels, "a/tcp-echo"), Some(1));
        assert_eq!(select_app(labels, "1"), Some(1));
        assert_eq!(select_app(labels, "3"), None);
        assert_eq!(select_app(labels, "a/ping#0"), None);
        assert_eq!(select_app(labels, "a/ping#x"), None);
        assert_eq!(split_selector("a/ping#12"), Some(("a/ping", 12)));
    }
}
