//! Snapshots: an owned picture of a running lab for UIs and reports, taken between steps. Nothing
//! in it borrows from the core, so a UI can keep it while the lab runs on.

use std::net::IpAddr;

use serde::Serialize;
use smoltcp::socket::{tcp, Socket};

use super::apps::{AppState, Outcome};
use super::host::Host;
use super::switch::Switch;
use crate::time::SimTime;
use crate::topology::{parse::mac_text, Distribution, GilbertElliott, LinkModel};

#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// Simulated nanoseconds since the start of the run.
    pub now_ns: u64,
    pub links: Vec<LinkSnapshot>,
    pub hosts: Vec<HostSnapshot>,
    pub switches: Vec<SwitchSnapshot>,
    pub routers: Vec<RouterSnapshot>,
    /// Each node that bridges flows to real sockets: a forward's host, an exit gateway.
    pub bridges: Vec<BridgeSnapshot>,
}

/// A node's flows to and from real sockets.
#[derive(Debug, Clone, Serialize)]
pub struct BridgeSnapshot {
    pub node: String,
    /// `gateway` or `forward`.
    pub kind: &'static str,
    pub counters: super::bridge::BridgeCounters,
    /// Open flows, then the most recent that ended.
    pub flows: Vec<super::bridge::FlowInfo>,
}

/// A router: its interfaces, routes, neighbours and counters.
#[derive(Debug, Clone, Serialize)]
pub struct RouterSnapshot {
    pub name: String,
    pub interfaces: Vec<InterfaceSnapshot>,
    /// Longest prefix first, as the router looks them up.
    pub routes: Vec<RouteSnapshot>,
    /// Resolved neighbours per interface.
    pub neighbours: Vec<RouterNeighbour>,
    /// Packets waiting for a neighbour's address.
    pub waiting: usize,
    pub counters: super::router::RouterCounters,
}

#[derive(Debug, Clone, Serialize)]
pub struct RouteSnapshot {
    pub to: String,
    pub dev: String,
    /// The next hop; `None` on-link.
    pub via: Option<String>,
    /// From an interface's own subnet.
    pub connected: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RouterNeighbour {
    pub dev: String,
    pub ip: IpAddr,
    pub mac: String,
    pub age_ns: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LinkSnapshot {
    pub name: String,
    pub up: bool,
    /// Whether each end (A, B) is on a remote site.
    pub remote: [bool; 2],
    pub a_to_b: DirectionSnapshot,
    pub b_to_a: DirectionSnapshot,
}

#[derive(Debug, Clone, Serialize)]
pub struct DirectionSnapshot {
    pub model: ModelSnapshot,
    /// Frames waiting for the wire.
    pub waiting: usize,
    /// Frames on the link, waiting or propagating.
    pub in_flight: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ModelSnapshot {
    pub latency_ns: u64,
    pub rate_bps: Option<u64>,
    pub loss: f64,
    pub queue_frames: usize,
    pub jitter_ns: u64,
    /// `uniform`, `normal`, `pareto` or `paretonormal`.
    pub distribution: Distribution,
    pub reorder: bool,
    /// Gilbert-Elliott loss, when set: `p`, `r`, `loss_good`, `loss_bad`.
    pub loss_model: Option<[f64; 4]>,
    pub duplicate: f64,
    pub corrupt: f64,
    pub queue_bytes: Option<u64>,
}

impl From<&LinkModel> for ModelSnapshot {
    fn from(m: &LinkModel) -> Self {
        let ns = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        ModelSnapshot {
            latency_ns: ns(m.latency),
            rate_bps: m.rate_bps,
            loss: m.loss,
            queue_frames: m.queue_frames,
            jitter_ns: ns(m.jitter),
            distribution: m.distribution,
            reorder: m.reorder,
            loss_model: m.loss_model.map(|g| [g.p, g.r, g.loss_good, g.loss_bad]),
            duplicate: m.duplicate,
            corrupt: m.corrupt,
            queue_bytes: m.queue_bytes,
        }
    }
}

impl ModelSnapshot {
    /// The model again, as the core holds it.
    #[must_use]
    pub fn to_model(&self) -> LinkModel {
        LinkModel {
            latency: std::time::Duration::from_nanos(self.latency_ns),
            rate_bps: self.rate_bps,
            loss: self.loss,
            queue_frames: self.queue_frames,
            jitter: std::time::Duration::from_nanos(self.jitter_ns),
            distribution: self.distribution,
            reorder: self.reorder,
            loss_model: self.loss_model.map(|[p, r, loss_good, loss_bad]| GilbertElliott { p, r, loss_good, loss_bad }),
            duplicate: self.duplicate,
            corrupt: self.corrupt,
            queue_bytes: self.queue_bytes,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct HostSnapshot {
    pub name: String,
    /// Every interface, in lab order.
    pub interfaces: Vec<InterfaceSnapshot>,
    /// Neighbours the host heard from (ARP, NDP), newest knowledge of each.
    pub neighbours: Vec<NeighbourSnapshot>,
    pub sockets: Vec<SocketSnapshot>,
    pub apps: Vec<AppSnapshot>,
    /// Frames received and not yet handled by the stack.
    pub rx_queue: usize,
    /// The host's link queue was full at its last poll (backpressure), on some interface.
    pub blocked: bool,
    /// Its route table, as it places its apps on interfaces: its subnets (`connected`), then its
    /// routes, longest prefix first.
    pub routes: Vec<RouteSnapshot>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InterfaceSnapshot {
    pub name: String,
    pub mac: String,
    pub mtu: usize,
    pub addresses: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NeighbourSnapshot {
    pub ip: IpAddr,
    pub mac: String,
    /// The interface it was heard on.
    pub dev: String,
    /// How long ago it was last heard, in simulated nanoseconds.
    pub age_ns: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SocketSnapshot {
    /// `tcp`, `udp`, `icmp` or `raw`.
    pub kind: &'static str,
    /// The interface whose stack holds it.
    pub dev: String,
    pub local: Option<String>,
    pub remote: Option<String>,
    /// The TCP state (`ESTABLISHED`, `LISTEN`, …); `None` for datagram sockets.
    pub state: Option<String>,
    /// Bytes (TCP) or packets (UDP, ICMP) waiting to be read, and the capacity.
    pub rx_queue: usize,
    pub rx_capacity: usize,
    /// Bytes (TCP) or packets waiting to be sent, and the capacity.
    pub tx_queue: usize,
    pub tx_capacity: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct AppSnapshot {
    pub label: String,
    pub state: AppState,
    pub start_ns: u64,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Serialize)]
pub struct SwitchSnapshot {
    pub name: String,
    pub ports: u32,
    /// Learned MAC addresses and their ports.
    pub table: Vec<MacEntry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MacEntry {
    pub mac: String,
    pub port: usize,
}

pub(crate) fn host(h: &Host, now: SimTime) -> HostSnapshot {
    let interfaces = h
        .interfaces
        .iter()
        .zip(&h.stacks)
        .map(|(i, st)| InterfaceSnapshot {
            name: i.name.clone(),
            mac: mac_text(i.mac),
            mtu: i.mtu,
            addresses: st.iface.ip_addrs().iter().map(ToString::to_string).collect(),
        })
        .collect();
    let neighbours = h
        .neighbours
        .iter()
        .map(|(ip, n)| NeighbourSnapshot {
            ip: *ip,
            mac: mac_text(n.mac),
            dev: h.dev_name(n.dev).to_string(),
            age_ns: (now - n.seen).as_nanos() as u64,
        })
        .collect();
    let sockets = h
        .stacks
        .iter()
        .enumerate()
        .flat_map(|(d, st)| st.sockets.iter().map(move |(_, s)| socket(s, h.dev_name(d))))
        .collect();
    let apps = h
        .apps
        .iter()
        .map(|a| AppSnapshot {
            label: a.label.clone(),
            state: a.state(now),
            start_ns: a.start.as_nanos(),
            outcome: a.app.outcome(),
        })
        .collect();
    HostSnapshot {
        name: h.name.clone(),
        interfaces,
        neighbours,
        sockets,
        apps,
        rx_queue: h.rx_len(),
        blocked: h.blocked,
        routes: host_routes(h),
    }
}

/// A host's table: its subnets and routes, longest prefix first (a subnet first among equals),
/// as [`topology::host_route`](crate::topology::host_route) looks them up.
fn host_routes(h: &Host) -> Vec<RouteSnapshot> {
    let mut v: Vec<(u8, bool, RouteSnapshot)> = Vec::new();
    for i in &h.interfaces {
        for c in &i.addresses {
            let to = super::router::network(*c);
            v.push((
                to.prefix_len(),
                false,
                RouteSnapshot { to: to.to_string(), dev: i.name.clone(), via: None, connected: true },
            ));
        }
    }
    for r in &h.routes {
        v.push((
            r.to.prefix_len(),
            true,
            RouteSnapshot {
                to: r.to.to_string(),
                dev: h.dev_name(r.dev).to_string(),
                via: r.via.map(|v| v.to_string()),
                connected: false,
            },
        ));
    }
    // Stable: among equal prefixes, subnets first, then routes in order.
    v.sort_by_key(|(len, stat, _)| (std::cmp::Reverse(*len), *stat));
    v.into_iter().map(|(_, _, r)| r).collect()
}

fn socket(s: &Socket<'_>, dev: &str) -> SocketSnapshot {
    match s {
        Socket::Tcp(t) => SocketSnapshot {
            kind: "tcp",
            dev: dev.to_string(),
            local: t.local_endpoint().map(|e| e.to_string()),
            remote: t.remote_endpoint().map(|e| e.to_string()),
            state: Some(tcp_state(t.state()).into()),
            rx_queue: t.recv_queue(),
            rx_capacity: t.recv_capacity(),
            tx_queue: t.send_queue(),
            tx_capacity: t.send_capacity(),
        },
        Socket::Udp(u) => SocketSnapshot {
            kind: "udp",
            dev: dev.to_string(),
            local: u.is_open().then(|| u.endpoint().to_string()),
            remote: None,
            state: None,
            rx_queue: usize::from(u.can_recv()),
            rx_capacity: u.packet_recv_capacity(),
            tx_queue: usize::from(!u.can_send()),
            tx_capacity: u.packet_send_capacity(),
        },
        Socket::Icmp(i) => SocketSnapshot {
            kind: "icmp",
            dev: dev.to_string(),
            local: i.is_open().then(|| "icmp".into()),
            remote: None,
            state: None,
            rx_queue: usize::from(i.can_recv()),
            rx_capacity: i.packet_recv_capacity(),
            tx_queue: usize::from(!i.can_send()),
            tx_capacity: i.packet_send_capacity(),
        },
        Socket::Raw(r) => SocketSnapshot {
            kind: "raw",
            dev: dev.to_string(),
            local: None,
            remote: None,
            state: None,
            rx_queue: usize::from(r.can_recv()),
            rx_capacity: r.packet_recv_capacity(),
            tx_queue: usize::from(!r.can_send()),
            tx_capacity: r.packet_send_capacity(),
        },
        #[allow(unreachable_patterns)]
        _ => SocketSnapshot {
            kind: "other",
            dev: dev.to_string(),
            local: None,
            remote: None,
            state: None,
            rx_queue: 0,
            rx_capacity: 0,
            tx_queue: 0,
            tx_capacity: 0,
        },
    }
}

fn tcp_state(s: tcp::State) -> &'static str {
    match s {
        tcp::State::Closed => "CLOSED",
        tcp::State::Listen => "LISTEN",
        tcp::State::SynSent => "SYN-SENT",
        tcp::State::SynReceived => "SYN-RECEIVED",
        tcp::State::Established => "ESTABLISHED",
        tcp::State::FinWait1 => "FIN-WAIT-1",
        tcp::State::FinWait2 => "FIN-WAIT-2",
        tcp::State::CloseWait => "CLOSE-WAIT",
        tcp::State::Closing => "CLOSING",
        tcp::State::LastAck => "LAST-ACK",
        tcp::State::TimeWait => "TIME-WAIT",
    }
}

pub(crate) fn switch(s: &Switch) -> SwitchSnapshot {
    SwitchSnapshot {
        name: s.name.clone(),
        ports: s.ports,
        table: s
            .table
            .entries()
            .map(|(m, port)| MacEntry { mac: mac_text(smoltcp::wire::EthernetAddress(m)), port })
            .collect(),
    }
}

pub(crate) fn router(r: &super::router::Router, now: SimTime) -> RouterSnapshot {
    let p = &r.plane;
    RouterSnapshot {
        name: r.name.clone(),
        interfaces: p
            .ports
            .iter()
            .map(|i| InterfaceSnapshot {
                name: i.name.clone(),
                mac: mac_text(i.mac),
                mtu: i.mtu,
                addresses: i.addresses.iter().map(ToString::to_string).collect(),
            })
            .collect(),
        routes: p
            .routes
            .iter()
            .map(|rt| RouteSnapshot {
                to: rt.to.to_string(),
                dev: p.ports.get(rt.port).map(|x| x.name.clone()).unwrap_or_default(),
                via: rt.via.map(|v| v.to_string()),
                connected: rt.connected,
            })
            .collect(),
        neighbours: p
            .neighbours
            .iter()
            .enumerate()
            .flat_map(|(i, t)| {
                t.iter().map(move |(ip, n)| RouterNeighbour {
                    dev: p.ports.get(i).map(|x| x.name.clone()).unwrap_or_default(),
                    ip: IpAddr::from(*ip),
                    mac: mac_text(n.mac),
                    age_ns: (now - n.seen).as_nanos() as u64,
                })
            })
            .collect(),
        waiting: p.waiting(),
        counters: p.counters.clone(),
    }
}
