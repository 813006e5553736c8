//! The lab file as written: serde types that mirror the JSON one to one, and nothing more.
//!
//! Values that need parsing (addresses, durations, rates, sizes, targets) stay strings here, so that
//! `validate` can report each bad one with its own place and hint instead of stopping at the first.
//! The JSON Schema (`netlab schema`) is derived from these types; its bounds and patterns come from
//! `limits`, which `netlab check` holds to as well.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::topology::limits;

/// A netlab lab: nodes, the links between them, and what to capture.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LabSpec {
    /// Short name; captures go to `captures/<name>/` by default. Letters, digits, `-`, `_` and `.`
    /// (at most 64).
    #[schemars(regex(pattern = limits::NAME_PATTERN), length(max = limits::NAME_MAX_LEN))]
    pub name: String,
    /// Free text; the report repeats it.
    #[serde(default)]
    pub description: String,
    /// Seed for every random choice in the lab: smoltcp's ISNs, ephemeral ports, link loss. Default 1.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Leave IP, TCP, UDP and ICMP checksums out of every frame and verify none, as a veth pair with
    /// checksum offload does: faster, but the checksums in captures read 0. Default false.
    #[serde(default)]
    pub checksum_offload: bool,
    /// Nodes keyed by name. A name uses letters, digits, `-`, `_` and `.` (at most 64).
    #[schemars(extend(
        "propertyNames" = { "pattern": limits::NAME_PATTERN, "maxLength": limits::NAME_MAX_LEN },
        "minProperties" = 1,
    ))]
    pub nodes: IndexMap<String, NodeSpec>,
    /// Links between `node:interface` endpoints; a switch endpoint is just the switch name.
    #[serde(default)]
    pub links: Vec<LinkSpec>,
    /// What to capture, where, and in which format. Captures every link as pcapng by default.
    #[serde(default)]
    pub capture: CaptureSpec,
    /// How the sites of the lab reach each other, keyed by site name: who listens, who connects
    /// where, and which command starts a site reached through `exec`. Needed when a link joins
    /// nodes of two sites.
    #[serde(default)]
    #[schemars(extend(
        "propertyNames" = { "pattern": limits::NAME_PATTERN, "maxLength": limits::NAME_MAX_LEN },
    ))]
    pub sites: IndexMap<String, SiteSpec>,
    /// Carry tunnels between sites in plaintext, without a key: anyone who reaches a tunnel's port
    /// can read and inject frames. Default false: tunnels are authenticated and encrypted.
    #[serde(default)]
    pub insecure: bool,
    /// Changes at simulated times: a link down or up, a link's model, a link that flaps, an app
    /// started or stopped, a partition and its heal. Applied in order of `at` (in file order at
    /// one time), on either clock.
    #[serde(default)]
    pub events: Vec<EventSpec>,
    /// What must hold at the end of a run: an app's result within bounds, a link's drops, whether
    /// one node reaches another, no warnings. `netlab run` says which hold and exits with 1 when
    /// one does not.
    #[serde(default)]
    pub expect: Vec<ExpectSpec>,
    /// Real ports into the lab: each connection (or UDP source) accepted on `listen` on this
    /// machine becomes a flow from a lab host to a target, such as
    /// `{ "listen": "127.0.0.1:8080", "from": "laptop", "to": "10.2.0.20:80" }`.
    #[serde(default)]
    #[schemars(length(max = limits::FORWARDS_MAX))]
    pub forwards: Vec<ForwardSpec>,
}

/// A port forward: a real listening socket whose connections become lab flows.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ForwardSpec {
    /// The real address to listen on, such as `127.0.0.1:8080` or `[::1]:8080`.
    pub listen: String,
    /// The lab host the flows start from (their source address is its).
    pub from: String,
    /// The target in the lab: `address:port` or `node:port`. An address behind an exit gateway
    /// reaches out of the lab again.
    pub to: String,
    /// `tcp` (default) or `udp`.
    #[serde(default)]
    pub proto: Option<ForwardProto>,
    /// UDP: how long a flow lives without a datagram either way, such as `30s` (default).
    #[serde(default)]
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub udp_idle: Option<String>,
}

/// The transport a forward carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ForwardProto {
    #[default]
    Tcp,
    Udp,
}

impl std::fmt::Display for ForwardProto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ForwardProto::Tcp => "tcp",
            ForwardProto::Udp => "udp",
        })
    }
}

/// An exit gateway: a node that terminates the lab's TCP and UDP flows to the prefixes it allows,
/// and dials them from the machine that runs its site.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewaySpec {
    /// The site (process) this node runs in; see a host's `site`. Its flows leave from that machine.
    #[serde(default)]
    pub site: Option<String>,
    /// Network interfaces keyed by name, such as `eth0`; routers reach the gateway at their addresses.
    #[serde(default)]
    #[schemars(extend(
        "propertyNames" = { "pattern": limits::NAME_PATTERN, "maxLength": limits::NAME_MAX_LEN },
        "maxProperties" = limits::INTERFACES_MAX,
    ))]
    pub interfaces: IndexMap<String, InterfaceSpec>,
    /// TCP tuning for the lab side of its flows.
    #[serde(default)]
    pub tcp: Option<TcpSpec>,
    /// Static routes back into the lab, as a host's.
    #[serde(default)]
    #[schemars(length(max = limits::HOST_ROUTES_MAX))]
    pub routes: Vec<RouteSpec>,
    /// What may leave the lab, and where it goes.
    #[serde(default)]
    pub exit: ExitSpec,
}

/// What an exit gateway lets out.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExitSpec {
    /// Lab destinations the gateway dials, as prefixes such as `10.99.0.0/24`. Empty (the default):
    /// nothing leaves. Flows to anything else are refused (TCP reset, ICMP administratively
    /// prohibited), counted and logged.
    #[serde(default)]
    #[schemars(length(max = limits::EXIT_PREFIXES_MAX))]
    pub allow: Vec<String>,
    /// Lab prefix → real prefix of the same family and length, such as
    /// `{ "10.99.0.0/24": "127.0.0.0/24" }`: 10.99.0.7 is dialled as 127.0.0.7.
    #[serde(default)]
    #[schemars(extend("maxProperties" = limits::EXIT_PREFIXES_MAX))]
    pub map: IndexMap<String, String>,
    /// How long a dial may take before the flow is given up (no answer to the SYN), such as `5s` (default).
    #[serde(default)]
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub dial_timeout: Option<String>,
    /// UDP: how long a flow lives without a datagram either way, such as `30s` (default).
    #[serde(default)]
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub udp_idle: Option<String>,
    /// Dials in progress at once, from every source (default 64); a SYN past it is dropped.
    #[serde(default)]
    #[schemars(range(min = 1, max = 65536))]
    pub max_pending: Option<u32>,
    /// Dials in progress at once from one lab address (default 16).
    #[serde(default)]
    #[schemars(range(min = 1, max = 65536))]
    pub max_pending_per_source: Option<u32>,
    /// TCP and UDP flows open at once (default 256); a new one past it is refused.
    #[serde(default)]
    #[schemars(range(min = 1, max = 65536))]
    pub max_flows: Option<u32>,
}

/// How one site is reached, and how it reaches its peers.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SiteSpec {
    /// The address this site listens on for its peers, such as `0.0.0.0:4789` or `[::]:4789`
    /// (TCP and UDP tunnels alike).
    #[serde(default)]
    pub listen: Option<String>,
    /// Where this site calls its peers: `host:port` when it has one peer that listens, or an
    /// object of `peer site: host:port`.
    #[serde(default)]
    pub connect: Option<ConnectSpec>,
    /// For `exec` links: the command that starts this site elsewhere and carries its links over
    /// the command's standard input and output, such as
    /// `ssh branch.example.net netlab tunnel two-site.json --site branch`. Run by `sh -c`.
    #[serde(default)]
    pub exec: Option<String>,
}

/// Where a site calls its peers.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum ConnectSpec {
    /// `host:port` of the one peer that listens.
    One(String),
    /// `host:port` for each peer site, by name.
    Each(IndexMap<String, String>),
}

fn default_seed() -> u64 {
    1
}

/// A node of the lab.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum NodeSpec {
    /// A userspace TCP/IP stack (smoltcp) running apps.
    Host(HostSpec),
    /// A learning Ethernet switch.
    Switch(SwitchSpec),
    /// An IP router: forwards between its interfaces by longest-prefix match over connected and
    /// static routes, IPv4 and IPv6.
    Router(RouterSpec),
    /// An exit gateway: terminates TCP and UDP flows to the prefixes of its `exit.allow` and dials
    /// them from the machine its site runs on.
    Gateway(GatewaySpec),
}

/// A router: interfaces (each on its own subnet) and static routes.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouterSpec {
    /// The site (process) this node runs in; see a host's `site`.
    #[serde(default)]
    pub site: Option<String>,
    /// Network interfaces keyed by name, such as `eth0`; each gives the router a connected route to its subnets.
    #[serde(default)]
    #[schemars(extend(
        "propertyNames" = { "pattern": limits::NAME_PATTERN, "maxLength": limits::NAME_MAX_LEN },
        "maxProperties" = limits::ROUTER_INTERFACES_MAX,
    ))]
    pub interfaces: IndexMap<String, InterfaceSpec>,
    /// Static routes besides the connected ones, such as `{ "to": "10.3.0.0/24", "via": "10.2.0.2" }`.
    #[serde(default)]
    #[schemars(length(max = limits::ROUTES_MAX))]
    pub routes: Vec<RouteSpec>,
}

/// A static route.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// The destination prefix, such as `10.3.0.0/24` or `fd00:3::/64`; `default` is `0.0.0.0/0` or `::/0`
    /// (the family of `via`; both families with `dev` alone).
    pub to: String,
    /// The next hop: an address on the subnet of one of the node's interfaces.
    #[serde(default)]
    #[schemars(regex(pattern = limits::ip_pattern()))]
    pub via: Option<String>,
    /// The interface to send by; without `via`, the destination is on that interface's link.
    #[serde(default)]
    pub dev: Option<String>,
}

/// A host: one smoltcp interface per network interface, static routes, and apps.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// The site (process) this node runs in. A link between nodes of two sites is a tunnel; without
    /// `--site`, every site runs in one process and tunnels still cross real loopback sockets.
    #[serde(default)]
    pub site: Option<String>,
    /// Network interfaces keyed by name, such as `eth0`; at most 8, each on its own link. A host
    /// does not forward between them (use a router).
    #[serde(default)]
    #[schemars(extend(
        "propertyNames" = { "pattern": limits::NAME_PATTERN, "maxLength": limits::NAME_MAX_LEN },
        "maxProperties" = limits::INTERFACES_MAX,
    ))]
    pub interfaces: IndexMap<String, InterfaceSpec>,
    /// TCP tuning for every TCP socket on this host.
    #[serde(default)]
    pub tcp: Option<TcpSpec>,
    /// Programs the host runs, each from its own start time.
    #[serde(default)]
    pub apps: Vec<AppSpec>,
    /// Static routes besides the subnets of its interfaces and their gateways, such as
    /// `{ "to": "10.9.0.0/16", "via": "10.2.0.1" }`; each needs `via`, and `dev` picks the
    /// interface when the next hop alone does not. At most 8 on one interface, its gateways included.
    #[serde(default)]
    #[schemars(length(max = limits::HOST_ROUTES_MAX))]
    pub routes: Vec<RouteSpec>,
}

/// A switch.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchSpec {
    /// The site (process) this node runs in; see a host's `site`.
    #[serde(default)]
    pub site: Option<String>,
    /// How long a learned MAC address stays in the table without traffic, such as `300s`.
    #[serde(default)]
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub mac_ageing: Option<String>,
}

/// A host's network interface.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InterfaceSpec {
    /// IPv4 and/or IPv6 addresses in CIDR form: `10.0.0.1/24`, `fd00::1/64`. At most four.
    #[serde(default)]
    #[schemars(length(max = limits::ADDRESSES_MAX), inner(regex(pattern = limits::cidr_pattern())))]
    pub addresses: Vec<String>,
    /// `aa:bb:cc:dd:ee:ff`; by default a stable locally administered address derived from the names.
    #[serde(default)]
    #[schemars(regex(pattern = limits::MAC_PATTERN))]
    pub mac: Option<String>,
    /// IP MTU in bytes, 576 to 9000 (1280 or more with IPv6). Default 1500.
    #[serde(default)]
    #[schemars(range(min = limits::MTU_MIN, max = limits::MTU_MAX))]
    pub mtu: Option<u32>,
    /// Default gateways, at most one IPv4 and one IPv6; each must lie in one of the interface's subnets.
    #[serde(default)]
    #[schemars(inner(regex(pattern = limits::ip_pattern())))]
    pub gateways: Vec<String>,
}

/// TCP tuning.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpSpec {
    /// Congestion control: `cubic` (default), `reno` or `none`.
    #[serde(default)]
    pub congestion: Option<Congestion>,
    /// Receive buffer per socket, such as `256KiB` (default) or a number of bytes; 1KiB to 1GiB.
    #[serde(default)]
    #[schemars(extend("minimum" = limits::TCP_BUFFER_MIN, "maximum" = limits::TCP_BUFFER_MAX))]
    pub rx_buffer: Option<ByteSize>,
    /// Send buffer per socket, such as `256KiB` (default) or a number of bytes; 1KiB to 1GiB.
    #[serde(default)]
    #[schemars(extend("minimum" = limits::TCP_BUFFER_MIN, "maximum" = limits::TCP_BUFFER_MAX))]
    pub tx_buffer: Option<ByteSize>,
    /// Delayed-ACK timeout such as `10ms`; off by default.
    #[serde(default)]
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub ack_delay: Option<String>,
    /// Nagle's algorithm; off by default.
    #[serde(default)]
    pub nagle: Option<bool>,
}

/// TCP congestion control algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Congestion {
    Cubic,
    Reno,
    None,
}

/// A byte count: a number, or a string with a unit (`64KiB`, `4MiB`, `1GB`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum ByteSize {
    Bytes(u64),
    Text(#[schemars(regex(pattern = limits::byte_size_pattern()))] String),
}

/// IP family to use when a target names a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ipv4,
    Ipv6,
}

/// A program on a host. Every app has a `start` time (default `0s`). Targets (`to`) are an address
/// (`10.0.0.2`, `fd00::2`, `[fd00::2]:7`) or a node name (`server`, `server:7`); a node name uses
/// that node's IPv4 address unless `family` says `ipv6`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[schemars(transform = udp_echo_size)]
pub enum AppSpec {
    /// ICMP echo: reports sent, received, loss and min/avg/max RTT.
    Ping(PingSpec),
    /// Echoes every TCP byte back, on every connection.
    TcpEchoServer(ServerSpec),
    /// Sends `count` messages of `size` bytes over one TCP connection and checks each echo.
    TcpEcho(EchoSpec),
    /// Echoes every UDP datagram back to its sender.
    UdpEchoServer(ServerSpec),
    /// Sends `count` UDP datagrams of `size` bytes and checks each echo.
    UdpEcho(EchoSpec),
    /// Accepts TCP connections and counts (and checks) the bytes received.
    TcpSink(ServerSpec),
    /// Bulk TCP transfer of `bytes` to a `tcp-sink`; reports goodput.
    TcpTransfer(TransferSpec),
    /// Serves HTTP/1.1: every request gets `status` and a body of `body` bytes.
    HttpServer(HttpServerSpec),
    /// HTTP GET requests: reports each status, body size, time to first and last byte.
    HttpGet(HttpGetSpec),
    /// A paced stream of numbered, timestamped UDP datagrams to a `udp-stream-server`.
    UdpStream(UdpStreamSpec),
    /// Receives `udp-stream`s: reports loss, jitter (RFC 3550), reordering, duplicates.
    UdpStreamServer(ServerSpec),
    /// Lists the hops to a host: probes with growing TTL (hop limit), answered by ICMP.
    Traceroute(TracerouteSpec),
}

/// `udp-echo` takes the fields of `tcp-echo`, but a datagram is smaller than a TCP message.
fn udp_echo_size(schema: &mut schemars::Schema) {
    let variants = schema.get_mut("oneOf").and_then(serde_json::Value::as_array_mut);
    for v in variants.into_iter().flatten() {
        if v.pointer("/properties/kind/const").and_then(serde_json::Value::as_str) == Some("udp-echo") {
            if let Some(size) = v.pointer_mut("/properties/size").and_then(serde_json::Value::as_object_mut) {
                size.insert("maximum".into(), limits::UDP_ECHO_SIZE_MAX.into());
            }
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PingSpec {
    /// Address or node name.
    #[schemars(regex(pattern = limits::target_pattern()))]
    pub to: String,
    #[serde(default)]
    pub family: Option<Family>,
    /// Echo requests to send. Default 4.
    #[serde(default)]
    #[schemars(range(min = limits::COUNT_MIN, max = limits::COUNT_MAX))]
    pub count: Option<u32>,
    /// Time between requests. Default `1s`.
    #[serde(default)]
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub interval: Option<String>,
    /// ICMP payload bytes. Default 56.
    #[serde(default)]
    pub size: Option<u32>,
    /// How long to wait for each reply. Default `1s`.
    #[serde(default)]
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub timeout: Option<String>,
    /// When to start, such as `500ms`. Default `0s`.
    #[serde(default)]
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub start: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    /// Port to listen on.
    #[schemars(range(min = limits::PORT_MIN, max = limits::PORT_MAX))]
    pub port: u16,
    #[serde(default)]
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub start: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EchoSpec {
    /// `address:port` or `node:port`.
    #[schemars(regex(pattern = limits::target_pattern()))]
    pub to: String,
    #[serde(default)]
    pub family: Option<Family>,
    /// Messages to send. Default 10.
    #[serde(default)]
    #[schemars(range(min = limits::COUNT_MIN, max = limits::COUNT_MAX))]
    pub count: Option<u32>,
    /// Bytes per message, at most 65536 over TCP and 9000 over UDP (and within the MTU). Default 64.
    #[serde(default)]
    #[schemars(range(min = limits::ECHO_SIZE_MIN, max = limits::TCP_ECHO_SIZE_MAX))]
    pub size: Option<u32>,
    /// Time between messages. Default `0s` for TCP (next message on echo), `100ms` for UDP.
    #[serde(default)]
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub interval: Option<String>,
    /// How long to wait for each echo before counting it lost. Default `1s`.
    #[serde(default)]
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub timeout: Option<String>,
    #[serde(default)]
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub start: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferSpec {
    /// `address:port` or `node:port` of a `tcp-sink`.
    #[schemars(regex(pattern = limits::target_pattern()))]
    pub to: String,
    #[serde(default)]
    pub family: Option<Family>,
    /// Bytes to send, such as `16MiB`.
    #[schemars(extend("minimum" = limits::TRANSFER_BYTES_MIN))]
    pub bytes: ByteSize,
    #[serde(default)]
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub start: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpServerSpec {
    /// Port to listen on.
    #[schemars(range(min = limits::PORT_MIN, max = limits::PORT_MAX))]
    pub port: u16,
    /// Bytes of the body of every response, such as `1MiB`. Default `1KiB` (0 with status 204 or 304).
    #[serde(default)]
    pub body: Option<ByteSize>,
    /// The status of every response, 200 to 599. Default 200.
    #[serde(default)]
    #[schemars(range(min = limits::HTTP_STATUS_MIN, max = limits::HTTP_STATUS_MAX))]
    pub status: Option<u16>,
    /// Keep connections open for further requests (HTTP/1.1 keep-alive). Default true.
    #[serde(default)]
    pub keep_alive: Option<bool>,
    #[serde(default)]
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub start: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpGetSpec {
    /// `address:port` or `node:port` of an HTTP server.
    #[schemars(regex(pattern = limits::target_pattern()))]
    pub to: String,
    #[serde(default)]
    pub family: Option<Family>,
    /// The request target: `/` followed by printable ASCII without spaces. Default `/`.
    #[serde(default)]
    #[schemars(regex(pattern = limits::HTTP_PATH_PATTERN), length(max = limits::HTTP_PATH_MAX_LEN))]
    pub path: Option<String>,
    /// Requests to make. Default 1.
    #[serde(default)]
    #[schemars(range(min = limits::COUNT_MIN, max = limits::HTTP_COUNT_MAX))]
    pub count: Option<u32>,
    /// Time from the start of one request to the start of the next. Default `0s`: the next
    /// request starts when the previous one ends.
    #[serde(default)]
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub interval: Option<String>,
    /// How long a request may take, from its start to the last byte of its body. Default `10s`.
    #[serde(default)]
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub timeout: Option<String>,
    /// Reuse the connection for the next request when the server allows it. Default true.
    #[serde(default)]
    pub keep_alive: Option<bool>,
    #[serde(default)]
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub start: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UdpStreamSpec {
    /// `address:port` or `node:port` of a `udp-stream-server`.
    #[schemars(regex(pattern = limits::target_pattern()))]
    pub to: String,
    #[serde(default)]
    pub family: Option<Family>,
    /// Rate of UDP payload, such as `1Mbit`. Default `1Mbit`.
    #[serde(default)]
    #[schemars(regex(pattern = limits::rate_pattern()))]
    pub rate: Option<String>,
    /// Bytes per datagram (UDP payload), at least 28 (the stream header) and within the MTU. Default 1000.
    #[serde(default)]
    #[schemars(range(min = limits::STREAM_SIZE_MIN, max = limits::UDP_ECHO_SIZE_MAX))]
    pub size: Option<u32>,
    /// How long to send, such as `5s`; give this or `count`. Default `5s`.
    #[serde(default)]
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub duration: Option<String>,
    /// Datagrams to send; give this or `duration`.
    #[serde(default)]
    #[schemars(range(min = limits::COUNT_MIN, max = limits::COUNT_MAX))]
    pub count: Option<u32>,
    /// How long the sender stays after its last datagram, so that the run ends after the last
    /// ones arrive. Default `1s`.
    #[serde(default)]
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub linger: Option<String>,
    #[serde(default)]
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub start: Option<String>,
}

/// What a traceroute probes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TraceProto {
    /// UDP datagrams to high ports; the destination answers ICMP port unreachable.
    Udp,
    /// ICMP echo requests; the destination answers echo replies.
    Icmp,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TracerouteSpec {
    /// Address or node name.
    #[schemars(regex(pattern = limits::target_pattern()))]
    pub to: String,
    #[serde(default)]
    pub family: Option<Family>,
    /// `udp` (default) or `icmp`.
    #[serde(default)]
    pub proto: Option<TraceProto>,
    /// The highest TTL (hop limit) to try, 1 to 255. Default 30.
    #[serde(default)]
    #[schemars(range(min = 1, max = limits::TRACE_HOPS_MAX))]
    pub max_hops: Option<u32>,
    /// Probes per hop, 1 to 10. Default 3.
    #[serde(default)]
    #[schemars(range(min = 1, max = limits::TRACE_PROBES_MAX))]
    pub probes: Option<u32>,
    /// How long to wait for the answer to each probe. Default `1s`.
    #[serde(default)]
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub timeout: Option<String>,
    #[serde(default)]
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub start: Option<String>,
}

/// A point-to-point link carrying Ethernet frames.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// One end: `node:interface` for a host, `switch` for a switch.
    #[schemars(regex(pattern = limits::endpoint_pattern()))]
    pub a: String,
    /// The other end.
    #[schemars(regex(pattern = limits::endpoint_pattern()))]
    pub b: String,
    /// Name of the link in captures and reports; default `a<->b`.
    #[serde(default)]
    #[schemars(regex(pattern = limits::LINK_NAME_PATTERN), length(max = limits::NAME_MAX_LEN))]
    pub name: Option<String>,
    /// How frames travel: `mem` (in one process; the default, for links within a site), or, for
    /// a link between two sites, `udp`, `tcp` or `exec` (the sites' `sites` entries say where).
    #[serde(default)]
    pub transport: Option<TransportKind>,
    /// Link model, applied to each direction.
    #[serde(default)]
    pub impair: Option<ImpairSpec>,
    /// The model of frames from `a` to `b`: each field given here overrides `impair` for that
    /// direction.
    #[serde(default)]
    pub a_to_b: Option<ImpairSpec>,
    /// The model of frames from `b` to `a`: each field given here overrides `impair` for that
    /// direction.
    #[serde(default)]
    pub b_to_a: Option<ImpairSpec>,
    /// `up` (the default) or `down`: the link's state when the lab starts. A down link drops what
    /// is sent on it until a `link-up` command.
    #[serde(default)]
    pub state: Option<LinkStateSpec>,
}

/// A link's state when the lab starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LinkStateSpec {
    Up,
    Down,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TransportKind {
    Mem,
    Udp,
    Tcp,
    Exec,
}

/// The model of each direction of a link.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImpairSpec {
    /// One-way propagation delay, such as `2ms`. Default `0s`.
    #[serde(default)]
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub latency: Option<String>,
    /// Serialisation rate, such as `100Mbit` or `1Gbit`. Default unlimited.
    #[serde(default)]
    #[schemars(regex(pattern = limits::rate_pattern()))]
    pub rate: Option<String>,
    /// Probability that a frame is lost, 0.0 to 1.0. Default 0.
    #[serde(default)]
    #[schemars(range(min = limits::LOSS_MIN, max = limits::LOSS_MAX))]
    pub loss: Option<f64>,
    /// Frames that may wait for the wire. A host sees a full queue as backpressure; a switch drops. Default 1000.
    #[serde(default)]
    #[schemars(range(min = limits::QUEUE_MIN, max = limits::QUEUE_MAX))]
    pub queue: Option<u32>,
    /// Variation of the delay, such as `2ms`, drawn for each frame from `distribution`: with
    /// `uniform`, the delay is `latency` ± `jitter`; with the others, `jitter` is the standard
    /// deviation. The delay is never negative. At most `10s`. Default `0s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub jitter: Option<String>,
    /// How `jitter` is drawn: `uniform` (default), `normal`, `pareto` or `paretonormal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<Distribution>,
    /// Let a frame whose jitter makes it faster overtake the frames sent before it. Default false:
    /// frames arrive in the order they were sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reorder: Option<bool>,
    /// Bursty loss, instead of `loss`: `{ "kind": "gilbert-elliott", "p": 0.01, "r": 0.3 }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_model: Option<LossModelSpec>,
    /// Probability that a frame arrives twice, 0.0 to 1.0. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = limits::LOSS_MIN, max = limits::LOSS_MAX))]
    pub duplicate: Option<f64>,
    /// Probability that a frame arrives with a bit flipped after its IP header (a receiver that
    /// checks checksums drops it), 0.0 to 1.0. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = limits::LOSS_MIN, max = limits::LOSS_MAX))]
    pub corrupt: Option<f64>,
    /// Bytes that may wait for the wire, such as `64KiB` (as well as `queue` frames). Default no
    /// byte limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("minimum" = limits::QUEUE_BYTES_MIN, "maximum" = limits::QUEUE_BYTES_MAX))]
    pub queue_bytes: Option<ByteSize>,
}

/// The distribution jitter is drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    /// Evenly between `latency - jitter` and `latency + jitter`.
    #[default]
    Uniform,
    /// Normal, with `jitter` as its standard deviation.
    Normal,
    /// Pareto (heavy tail above the latency), with `jitter` as its standard deviation.
    Pareto,
    /// A mix of normal (a quarter) and Pareto (three quarters), with `jitter` as its standard deviation.
    Paretonormal,
}

/// A loss model with memory.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum LossModelSpec {
    /// Two states, good and bad, each with its loss probability; the state may change after
    /// each frame.
    GilbertElliott(GilbertElliottSpec),
}

/// The parameters of a Gilbert-Elliott loss model, per frame.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GilbertElliottSpec {
    /// Probability of going from the good state to the bad one, 0.0 to 1.0.
    #[schemars(range(min = limits::LOSS_MIN, max = limits::LOSS_MAX))]
    pub p: f64,
    /// Probability of going from the bad state back to the good one, 0.0 to 1.0.
    #[schemars(range(min = limits::LOSS_MIN, max = limits::LOSS_MAX))]
    pub r: f64,
    /// Loss probability in the good state. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = limits::LOSS_MIN, max = limits::LOSS_MAX))]
    pub loss_good: Option<f64>,
    /// Loss probability in the bad state. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = limits::LOSS_MIN, max = limits::LOSS_MAX))]
    pub loss_bad: Option<f64>,
}

/// Capture settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureSpec {
    /// Capture at all. Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Links to capture, by name or by one of their endpoints. Default: every link.
    #[serde(default)]
    pub links: Option<Vec<String>>,
    /// Output folder. Default `captures/<lab name>`.
    #[serde(default)]
    pub dir: Option<String>,
    /// `pcapng` (one file, one interface per link; the default) or `pcap` (one classic file per link).
    #[serde(default)]
    pub format: Option<CaptureFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CaptureFormat {
    Pcapng,
    Pcap,
}

/// Which way of a link a change applies to: the side that sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DirectionSpec {
    AToB,
    BToA,
}

/// A change to the lab at a simulated time (`at`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum EventSpec {
    /// Takes a link down: the frames on it are lost, what is sent on it is dropped.
    LinkDown(LinkEventSpec),
    /// Brings a link up again.
    LinkUp(LinkEventSpec),
    /// Changes the `impair` fields given of a link's model, both ways or one `direction`.
    Set(SetEventSpec),
    /// Takes a link down for `down`, every `every`, `count` times, from `at` on.
    Flap(FlapEventSpec),
    /// Starts an app on a host.
    Start(StartEventSpec),
    /// Stops an app of a host: its connections are reset.
    Stop(StopEventSpec),
    /// Takes down every link between the `nodes` and the rest of the lab.
    Partition(PartitionEventSpec),
    /// Ends the partition `name`: its links come back as they were before it.
    Heal(HealEventSpec),
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkEventSpec {
    /// When, in simulated time from the start of the run, such as `2s`.
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub at: String,
    /// The link, by name.
    pub link: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetEventSpec {
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub at: String,
    pub link: String,
    /// `a-to-b` or `b-to-a`: the direction that sends from that side. Default: both.
    #[serde(default)]
    pub direction: Option<DirectionSpec>,
    /// The fields of the model to change; the others keep their values.
    pub impair: ImpairSpec,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlapEventSpec {
    /// When the link first goes down.
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub at: String,
    pub link: String,
    /// How long each time it stays down, such as `500ms`; shorter than `every`.
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub down: String,
    /// From one going down to the next, such as `2s`.
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub every: String,
    /// How many times it goes down.
    #[schemars(range(min = limits::COUNT_MIN, max = limits::COUNT_MAX))]
    pub count: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartEventSpec {
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub at: String,
    /// The host that runs it.
    pub node: String,
    /// The app, as a host's `apps` array holds it, without `start` (it starts at `at`).
    #[schemars(with = "AppSpec")]
    pub app: serde_json::Value,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StopEventSpec {
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub at: String,
    pub node: String,
    /// The app: its label `node/kind`, `node/kind#2` for the second of that kind on the host
    /// (apps started by earlier events count, after the host's own).
    pub app: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PartitionEventSpec {
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub at: String,
    /// Names the partition, for its `heal`.
    #[schemars(regex(pattern = limits::NAME_PATTERN), length(max = limits::NAME_MAX_LEN))]
    pub name: String,
    /// The nodes cut off from the rest of the lab.
    #[schemars(length(min = 1))]
    pub nodes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealEventSpec {
    #[schemars(regex(pattern = limits::duration_pattern()))]
    pub at: String,
    /// The partition to end.
    #[schemars(regex(pattern = limits::NAME_PATTERN), length(max = limits::NAME_MAX_LEN))]
    pub name: String,
}

/// What must hold at the end of a run: about one thing, an `app`'s `metric`, a `link`'s `drops`,
/// `reachable` (from a node to another), or `no_warnings`; an app's or link's within `min`,
/// `max` or `equals`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectSpec {
    /// An app, by its label `node/kind` (`node/kind#2` for the second of that kind on the host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// What of the app's result, such as `loss`, `rtt_p95` or `goodput`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// A link, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// With `link`: the drops of this reason (`loss`, `queue-full`, `link-down`, …), or `all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drops: Option<String>,
    /// With `link`: one way only (`a-to-b` or `b-to-a`). Default: both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<DirectionSpec>,
    /// Whether `from` reaches `to`, told by a ping of `from` to an address of `to`: reachable
    /// when one of its requests was answered, unreachable when none was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reachable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// `true`: the lab has no warnings, and neither has the run (commands that could not be
    /// applied, a paced run that fell behind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_warnings: Option<bool>,
    /// The least the value may be: a number, or text with the metric's unit (`50Mbit`, `10ms`, `1%`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<BoundSpec>,
    /// The most the value may be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<BoundSpec>,
    /// The value it must be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<BoundSpec>,
}

/// A bound: a number, or text with a unit.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum BoundSpec {
    Number(f64),
    Text(String),
}
