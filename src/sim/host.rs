//! A host: for each of its interfaces a [`Stack`] (a smoltcp `Interface` and `SocketSet` over a
//! [`NetDevice`] on the port of the same index), its apps, and its own admission of frames (size,
//! input queue) and record of the neighbours it has heard from.
//!
//! smoltcp polls a `SocketSet` through one `Interface`, so each interface has its own set, and an
//! app's sockets live in the set of the interface it sends by: a client's, the interface of its
//! route to its target ([`topology::host_route`]); a server's, every interface (it is polled once
//! for each, and keeps a listening socket in each). A host does not forward between interfaces.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use smoltcp::iface::{Config, Interface, Route, SocketSet};
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol, HardwareAddress, Icmpv6Packet,
    Icmpv6Repr, IpAddress, IpCidr, IpProtocol, Ipv4Packet, Ipv6Packet, NdiscRepr, RawHardwareAddress, TcpPacket,
};

use super::apps::{self, App, AppCx, AppState, HostIds, TcpWire};
use super::bridge::{Bridge, BridgeIn, Verdict};
use super::device::{FramePool, NetDevice};
use super::fabric::{Arrived, Fabric, Port};
use super::observe::{DropReason, Fate, Observer};
use super::packet::PacketIds;
use crate::time::SimTime;
use crate::topology::{self, LinkId, NodeId, Side, TcpConfig};

/// Frames a host's input queue holds; smoltcp drains it at every poll, so only a flood fills it.
pub const RX_QUEUE: usize = 4096;

/// Rounds of apps-then-stack in one poll of a host.
const POLL_ROUNDS: usize = 4;

/// Neighbours a host remembers, as many as smoltcp's cache holds, for as long as it keeps them.
const NEIGHBOURS: usize = 256;
const NEIGHBOUR_LIFETIME: Duration = Duration::from_secs(60);

/// An app with what the report needs to know of it. The slot keeps the app asleep until its start
/// time, so that no app checks it for itself.
pub struct AppSlot {
    pub label: String,
    pub server: bool,
    pub start: SimTime,
    /// Stopped by a command: no longer polled, its sockets closed.
    pub stopped: bool,
    pub app: Box<dyn App>,
    /// The interface whose sockets the app uses (a client's, by its route); `None`: every
    /// interface, each in turn (a server).
    pub interface: Option<usize>,
}

impl AppSlot {
    #[must_use]
    pub fn new(a: &topology::App) -> Self {
        AppSlot {
            label: a.label.clone(),
            server: a.kind.is_server(),
            start: SimTime::from_duration(a.start),
            stopped: false,
            app: apps::build(&a.kind, a.start),
            interface: None,
        }
    }

    fn poll(&mut self, cx: &mut AppCx<'_>) -> Option<SimTime> {
        if self.stopped {
            None
        } else if cx.now < self.start {
            Some(self.start)
        } else {
            self.app.poll(cx)
        }
    }

    /// Where the app stands at `now`.
    #[must_use]
    pub fn state(&self, now: SimTime) -> AppState {
        if self.stopped {
            AppState::Stopped
        } else if self.server {
            AppState::Serving
        } else if self.app.done() {
            AppState::Finished
        } else if now < self.start {
            AppState::NotStarted
        } else {
            AppState::Running
        }
    }

    /// Finished by itself or stopped; servers are never finished.
    #[must_use]
    pub fn over(&self) -> bool {
        self.stopped || (!self.server && self.app.done())
    }
}

/// A neighbour a host heard from (ARP, or NDP with a link-layer address option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbour {
    pub mac: EthernetAddress,
    pub seen: SimTime,
    /// The interface it was heard on.
    pub dev: usize,
}

/// One interface of a host: its smoltcp `Interface` and the sockets it polls, its input queue,
/// and what it saw of TCP. It sends by the host's port of the same index.
pub struct Stack {
    pub iface: Interface,
    pub sockets: SocketSet<'static>,
    pub rx: VecDeque<Vec<u8>>,
    /// IP MTU.
    pub mtu: usize,
    /// What this interface received of TCP since the last poll.
    pub wire: TcpWire,
    /// The last poll could not transmit here: the link queue was full.
    pub blocked: bool,
}

impl Stack {
    /// The stack of interface `ifc` (a stand-in for a host without interfaces), with `routes` as
    /// (prefix, next hop).
    fn new(
        ifc: Option<&topology::Interface>,
        routes: &[(IpCidr, IpAddress)],
        seed: u64,
        checksum_offload: bool,
    ) -> Self {
        let mac = ifc.map_or(EthernetAddress([2, 0, 0, 0, 0, 1]), |i| i.mac);
        let mut config = Config::new(HardwareAddress::Ethernet(mac));
        config.random_seed = seed;
        let mtu = ifc.map_or(1500, |i| i.mtu);
        let mut iface = Interface::new(config, &mut Probe { mtu, checksum_offload }, SimTime::ZERO.to_smoltcp());
        if let Some(i) = ifc {
            iface.update_ip_addrs(|addrs| {
                for a in &i.addresses {
                    // Validation caps addresses at the smoltcp limit.
                    let _ = addrs.push(*a);
                }
            });
        }
        // Validation caps the routes of an interface at the smoltcp limit. A default route goes in
        // as smoltcp's own default (one per family), as a gateway always did.
        for &(to, via) in routes {
            match (to.prefix_len(), via) {
                (0, IpAddress::Ipv4(g)) => {
                    let _ = iface.routes_mut().add_default_ipv4_route(g);
                }
                (0, IpAddress::Ipv6(g)) => {
                    let _ = iface.routes_mut().add_default_ipv6_route(g);
                }
                _ => iface.routes_mut().update(|t| {
                    let _ = t.push(Route { cidr: to, via_router: via, preferred_until: None, expires_at: None });
                }),
            }
        }
        Stack {
            iface,
            sockets: SocketSet::new(Vec::new()),
            rx: VecDeque::new(),
            mtu,
            wire: TcpWire::default(),
            blocked: false,
        }
    }
}

pub struct Host {
    pub id: NodeId,
    pub name: String,
    /// One stack per interface, in lab order (one without an interface for a host that has none).
    pub stacks: Vec<Stack>,
    /// The interfaces as the lab describes them, in the order of `stacks`.
    pub interfaces: Vec<topology::Interface>,
    /// The host's routes (see [`topology::Host::routes`]): with its subnets, they place its apps.
    pub routes: Vec<topology::Route>,
    pub checksum_offload: bool,
    pub apps: Vec<AppSlot>,
    ids: HostIds,
    packets: PacketIds,
    tcp: TcpConfig,
    /// When the host next needs a poll even without traffic.
    pub wake: Option<SimTime>,
    /// The last poll could not transmit on some interface: its link queue was full.
    pub blocked: bool,
    pub neighbours: BTreeMap<IpAddr, Neighbour>,
    /// Whether any app uses TCP: only then are received segments looked at for SYNs and RSTs.
    watch_tcp: bool,
    /// Links whose next frame waits for room in the input queue.
    held: Vec<(LinkId, Side)>,
    /// Flows bridged to real sockets: a forward's, or every flow of an exit gateway.
    pub bridge: Option<Box<Bridge>>,
}

/// What a host did with a frame that arrived.
pub enum Admit {
    /// Into the input queue.
    Taken,
    /// Dropped, and reported.
    Dropped,
    /// The input queue is full: the frame goes back to wait on its link.
    Full(Vec<u8>),
}

impl Host {
    pub fn new(id: NodeId, name: &str, h: &topology::Host, seed: u64, checksum_offload: bool) -> Self {
        // The first interface has the host's seed, as a host of one interface always had; the
        // others seeds of their own. A host without interfaces still runs its apps.
        let stacks = if h.interfaces.is_empty() {
            vec![Stack::new(None, &[], seed, checksum_offload)]
        } else {
            h.interfaces
                .iter()
                .enumerate()
                .map(|(d, i)| {
                    let seed = if d == 0 { seed } else { super::derive_seed(seed, 3, d as u64) };
                    let routes = topology::interface_routes(&h.interfaces, &h.routes, d);
                    Stack::new(Some(i), &routes, seed, checksum_offload)
                })
                .collect()
        };
        let mut host = Host {
            id,
            name: name.to_string(),
            stacks,
            interfaces: h.interfaces.clone(),
            routes: h.routes.clone(),
            checksum_offload,
            apps: Vec::new(),
            ids: HostIds::new(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_a995)),
            packets: PacketIds::new(id),
            tcp: h.tcp,
            wake: Some(SimTime::ZERO),
            blocked: false,
            neighbours: BTreeMap::new(),
            watch_tcp: h.apps.iter().any(|a| uses_tcp(&a.kind)),
            held: Vec::new(),
            bridge: h.exit.as_ref().map(|e| Box::new(Bridge::new(id, Some(e), checksum_offload))),
        };
        if host.bridge.is_some() {
            // An exit gateway's stacks take packets for any address; its bridge decides which
            // reach them.
            for st in &mut host.stacks {
                st.iface.set_any_ip(true);
            }
        }
        for a in &h.apps {
            let slot = host.slot(a);
            host.watch_sent(&slot, &a.kind);
            host.apps.push(slot);
        }
        host
    }

    /// Has the interface an app sends by watch the segments sent to its target, when the app
    /// counts retransmissions ([`apps::SentWatch`]).
    fn watch_sent(&mut self, slot: &AppSlot, kind: &topology::AppKind) {
        let Some(to) = watched(kind) else { return };
        let dev = slot.interface.unwrap_or(0);
        let targets = &mut self.stacks[dev].wire.sent.targets;
        if !targets.contains(&to) {
            targets.push(to);
        }
    }

    /// The slot of app `a`, placed on the interface it sends by.
    fn slot(&self, a: &topology::App) -> AppSlot {
        AppSlot { interface: self.place(&a.kind), ..AppSlot::new(a) }
    }

    /// The interface whose socket set an app of `kind` uses: a client's is the interface of its
    /// route to its target (the first when it has none; its packets then find no route); a server
    /// (`None`) has sockets on every interface.
    #[must_use]
    pub fn place(&self, kind: &topology::AppKind) -> Option<usize> {
        if kind.is_server() {
            return None;
        }
        let dev = kind.target().and_then(|ip| topology::host_route(&self.interfaces, &self.routes, ip)).map(|r| r.dev);
        Some(dev.filter(|d| *d < self.stacks.len()).unwrap_or(0))
    }

    fn port(&self, dev: usize) -> Port {
        Port { node: self.id, port: u32::try_from(dev).unwrap_or(u32::MAX) }
    }

    /// Frames received on any interface and not yet handled by its stack.
    #[must_use]
    pub fn rx_len(&self) -> usize {
        self.stacks.iter().map(|s| s.rx.len()).sum()
    }

    /// The name of interface `dev` (empty for the stand-in of a host without interfaces).
    #[must_use]
    pub fn dev_name(&self, dev: usize) -> &str {
        self.interfaces.get(dev).map_or("", |i| i.name.as_str())
    }

    /// Admits a frame that arrived on a port: runts and frames over the MTU are dropped with their
    /// reason. A full input queue does not drop: the frame is handed back to wait on its link until
    /// the host has read its queue (as a NIC's flow control would), so that a burst of replies at one
    /// instant is served rather than lost.
    pub fn receive<O: Observer>(&mut self, arr: &Arrived, frame: Vec<u8>, pool: &mut FramePool, obs: &mut O) -> Admit {
        // The fabric hands a host frames only on the ports of its interfaces.
        let dev = (arr.port as usize).min(self.stacks.len() - 1);
        let stack = &self.stacks[dev];
        let reason = match EthernetFrame::new_checked(&frame[..]) {
            Err(_) => DropReason::Malformed,
            // The MTU is of the IP packet: the Ethernet header and a VLAN tag may come on top.
            Ok(_) if frame.len() > stack.mtu + 14 + 4 => DropReason::Mtu,
            Ok(_) if stack.rx.len() >= RX_QUEUE => {
                if !self.held.contains(&(arr.link, arr.from)) {
                    self.held.push((arr.link, arr.from));
                }
                return Admit::Full(frame);
            }
            Ok(eth) => {
                self.learn(arr.at, dev, &eth);
                if self.watch_tcp {
                    self.watch(arr.at, dev, &eth);
                    let sent = &mut self.stacks[dev].wire.sent;
                    if !sent.targets.is_empty() {
                        sent.incoming(&frame);
                    }
                }
                arr.report(Fate::Delivered, &frame, obs);
                if let Some(b) = self.bridge.as_mut().filter(|b| b.is_exit()) {
                    let st = &self.stacks[dev];
                    let mine = |ip: IpAddr| st.iface.ip_addrs().iter().any(|c| IpAddr::from(c.address()) == ip);
                    let mac = self.interfaces.get(dev).map_or(EthernetAddress([2, 0, 0, 0, 0, 1]), |i| i.mac);
                    if let Verdict::Taken = b.filter(arr.at, dev, &frame, &mine, mac) {
                        pool.give(frame);
                        self.wake = Some(arr.at);
                        return Admit::Taken;
                    }
                }
                self.stacks[dev].rx.push_back(frame);
                return Admit::Taken;
            }
        };
        arr.report(Fate::Dropped(reason), &frame, obs);
        pool.give(frame);
        Admit::Dropped
    }

    /// The links held back by a full input queue, to release once the host has read it.
    pub fn take_held(&mut self) -> Vec<(LinkId, Side)> {
        std::mem::take(&mut self.held)
    }

    /// Notes who answered or asked for this host: ARP, and NDP solicitations and advertisements
    /// that carry a link-layer address.
    fn learn(&mut self, now: SimTime, dev: usize, eth: &EthernetFrame<&[u8]>) {
        // Most frames are neither: leave them at the first question.
        if !matches!(eth.ethertype(), EthernetProtocol::Arp | EthernetProtocol::Ipv6) {
            return;
        }
        let mine = self.interfaces.get(dev).map(|i| i.mac);
        if Some(eth.dst_addr()) != mine && !eth.dst_addr().is_multicast() && !eth.dst_addr().is_broadcast() {
            return;
        }
        let heard = match eth.ethertype() {
            EthernetProtocol::Arp => {
                ArpPacket::new_checked(eth.payload()).ok().and_then(|p| ArpRepr::parse(&p).ok()).and_then(|r| match r {
                    ArpRepr::EthernetIpv4 {
                        operation,
                        source_hardware_addr,
                        source_protocol_addr,
                        target_protocol_addr,
                        ..
                    } if operation == ArpOperation::Reply
                        || self.stacks[dev].iface.has_ip_addr(target_protocol_addr) =>
                    {
                        Some((IpAddr::V4(source_protocol_addr), source_hardware_addr))
                    }
                    _ => None,
                })
            }
            EthernetProtocol::Ipv6 => Self::ndp(eth.payload()),
            _ => None,
        };
        if let Some((ip, mac)) = heard {
            if ip.is_unspecified() || !mac.is_unicast() {
                return;
            }
            if self.neighbours.len() >= NEIGHBOURS && !self.neighbours.contains_key(&ip) {
                self.neighbours.retain(|_, n| now - n.seen < NEIGHBOUR_LIFETIME);
                if self.neighbours.len() >= NEIGHBOURS {
                    return;
                }
            }
            self.neighbours.insert(ip, Neighbour { mac, seen: now, dev });
        }
    }

    /// Notes connection requests and resets for the apps (see [`TcpWire`]).
    fn watch(&mut self, now: SimTime, dev: usize, eth: &EthernetFrame<&[u8]>) {
        let tcp = match eth.ethertype() {
            EthernetProtocol::Ipv4 => Ipv4Packet::new_checked(eth.payload())
                .ok()
                .filter(|ip| ip.next_header() == IpProtocol::Tcp)
                .and_then(|ip| {
                    TcpPacket::new_checked(ip.payload()).ok().map(|t| (t.dst_port(), t.syn() && !t.ack(), t.rst()))
                }),
            EthernetProtocol::Ipv6 => Ipv6Packet::new_checked(eth.payload())
                .ok()
                .filter(|ip| ip.next_header() == IpProtocol::Tcp)
                .and_then(|ip| {
                    TcpPacket::new_checked(ip.payload()).ok().map(|t| (t.dst_port(), t.syn() && !t.ack(), t.rst()))
                }),
            _ => None,
        };
        let wire = &mut self.stacks[dev].wire;
        match tcp {
            Some((port, true, _)) => *wire.syns.entry(port).or_default() += 1,
            Some((port, _, true)) => {
                wire.resets.insert(port, now);
            }
            _ => {}
        }
    }

    fn ndp(payload: &[u8]) -> Option<(IpAddr, EthernetAddress)> {
        let ip = Ipv6Packet::new_checked(payload).ok()?;
        if ip.next_header() != IpProtocol::Icmpv6 {
            return None;
        }
        let icmp = Icmpv6Packet::new_checked(ip.payload()).ok()?;
        let repr =
            Icmpv6Repr::parse(&ip.src_addr(), &ip.dst_addr(), &icmp, &smoltcp::phy::ChecksumCapabilities::ignored())
                .ok()?;
        let mac = |l: Option<RawHardwareAddress>| l.and_then(|l| l.parse(smoltcp::phy::Medium::Ethernet).ok());
        match repr {
            Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert { target_addr, lladdr, .. }) => match mac(lladdr)? {
                HardwareAddress::Ethernet(m) => Some((IpAddr::V6(target_addr), m)),
                #[allow(unreachable_patterns)]
                _ => None,
            },
            Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit { lladdr, .. }) => match mac(lladdr)? {
                HardwareAddress::Ethernet(m) => Some((IpAddr::V6(ip.src_addr()), m)),
                #[allow(unreachable_patterns)]
                _ => None,
            },
            _ => None,
        }
    }

    /// Whether this host has anything to do at `now`: input waiting, a timer due, or a full link
    /// that has room again.
    #[must_use]
    pub fn due(&self, now: SimTime, fabric: &Fabric) -> bool {
        self.stacks.iter().any(|s| !s.rx.is_empty())
            || self.wake.is_some_and(|w| w <= now)
            || (self.blocked
                && self
                    .stacks
                    .iter()
                    .enumerate()
                    .any(|(d, s)| s.blocked && fabric.has_room_for(now, self.port(d), s.mtu + 14)))
    }

    /// When the host next needs a poll with no traffic: its timer, or, when it is blocked on a full
    /// link, the time a queue slot frees (a timer that is due already waits for that too).
    #[must_use]
    pub fn next_wake(&self, now: SimTime, fabric: &Fabric) -> Option<SimTime> {
        if self.blocked {
            let freed = self
                .stacks
                .iter()
                .enumerate()
                .filter(|(_, s)| s.blocked)
                .fold(None, |t, (d, _)| apps::min_wake(t, fabric.next_departure(now, self.port(d))));
            apps::min_wake(freed, self.wake.filter(|w| *w > now))
        } else {
            self.wake
        }
    }

    /// The interfaces app slot `slot` is polled on.
    fn devs(&self, slot: usize) -> std::ops::Range<usize> {
        match self.apps[slot].interface {
            Some(d) => d..d + 1,
            None => 0..self.stacks.len(),
        }
    }

    /// Runs apps and the stacks at `now`; returns the number of frames received and sent.
    pub fn poll<O: Observer>(
        &mut self,
        now: SimTime,
        fabric: &mut Fabric,
        pool: &RefCell<FramePool>,
        obs: &mut O,
    ) -> usize {
        let ts = now.to_smoltcp();
        for s in &mut self.stacks {
            s.blocked = false;
        }
        // Apps, then the stacks, again while frames move: what a stack just received (an echo,
        // an ACK that frees buffer space) is for the apps to act on at once. The rounds are
        // bounded; if frames still moved in the last one, the host asks to be polled again now.
        let mut frames = 0;
        let mut app_wake = None;
        let mut moved = false;
        for _ in 0..POLL_ROUNDS {
            app_wake = None;
            for a in 0..self.apps.len() {
                for d in self.devs(a) {
                    let mut cx = app_cx(now, d, &mut self.stacks[d], &mut self.ids, &self.tcp, self.checksum_offload);
                    app_wake = apps::min_wake(app_wake, self.apps[a].poll(&mut cx));
                }
            }
            if let Some(b) = &mut self.bridge {
                b.pump(now, &mut self.stacks);
            }
            let before = frames;
            for (d, st) in self.stacks.iter_mut().enumerate() {
                let watch_sent = !st.wire.sent.targets.is_empty();
                let mut dev = NetDevice {
                    now,
                    rx: &mut st.rx,
                    fabric: &mut *fabric,
                    port: Port { node: self.id, port: u32::try_from(d).unwrap_or(u32::MAX) },
                    pool,
                    obs: &mut *obs,
                    packets: &mut self.packets,
                    mtu: st.mtu,
                    checksum_offload: self.checksum_offload,
                    blocked: false,
                    frames: 0,
                    watch: watch_sent.then_some(&mut st.wire.sent),
                };
                st.iface.poll(ts, &mut dev, &mut st.sockets);
                st.blocked |= dev.blocked;
                frames += dev.frames;
            }
            moved = frames != before;
            if !moved {
                break;
            }
        }
        if let Some(b) = &mut self.bridge {
            // What the stacks received last is the edge's at once.
            b.pump(now, &mut self.stacks);
            // Frames the bridge built, as room on their links allows.
            while let Some((d, f)) = b.raw.pop_front() {
                let port = Port { node: self.id, port: u32::try_from(d).unwrap_or(u32::MAX) };
                if !fabric.has_room_for(now, port, f.len()) {
                    b.raw.push_front((d, f));
                    if let Some(st) = self.stacks.get_mut(d) {
                        st.blocked = true;
                    }
                    break;
                }
                let id = self.packets.next_id();
                fabric.send(now, port, id, f, &mut pool.borrow_mut(), obs);
                frames += 1;
            }
        }
        self.blocked = self.stacks.iter().any(|s| s.blocked);
        let mut stack = None;
        for st in &mut self.stacks {
            // The stack has handled the SYNs it received: they have their listeners or their resets.
            st.wire.syns.clear();
            stack = apps::min_wake(stack, st.iface.poll_at(ts, &st.sockets).map(SimTime::from_smoltcp));
        }
        let bridge = self.bridge.as_ref().and_then(|b| b.next_wake());
        self.wake = apps::min_wake(apps::min_wake(stack, app_wake), moved.then_some(now));
        self.wake = apps::min_wake(self.wake, bridge);
        frames
    }

    /// Sets up the bridge a port forward's flows start from.
    pub fn enable_bridge(&mut self) {
        if self.bridge.is_none() {
            self.bridge = Some(Box::new(Bridge::new(self.id, None, self.checksum_offload)));
        }
    }

    /// What the edge says of one of this host's bridged flows.
    pub fn bridge_input(&mut self, now: SimTime, msg: BridgeIn) {
        let Some(b) = &mut self.bridge else { return };
        let (interfaces, routes) = (&self.interfaces, &self.routes);
        let route = |ip: IpAddr| topology::host_route(interfaces, routes, ip).map_or(0, |r| r.dev);
        b.input(now, msg, &mut self.stacks, &mut self.ids, &self.tcp, route);
        self.wake = Some(now);
    }

    /// Starts an app (a command): it runs from its start time, or at once if that has passed.
    pub fn start_app(&mut self, now: SimTime, app: &topology::App) {
        self.watch_tcp |= uses_tcp(&app.kind);
        let slot = self.slot(app);
        self.watch_sent(&slot, &app.kind);
        self.apps.push(slot);
        self.wake = Some(now);
    }

    /// Stops an app (a command): its sockets are closed and it is polled no more.
    pub fn stop_app(&mut self, now: SimTime, index: usize) -> bool {
        let Some(slot) = self.apps.get_mut(index) else { return false };
        if slot.stopped {
            return false;
        }
        slot.stopped = true;
        for d in self.devs(index) {
            let mut cx = app_cx(now, d, &mut self.stacks[d], &mut self.ids, &self.tcp, self.checksum_offload);
            self.apps[index].app.stop(&mut cx);
        }
        // The stack has a RST or a FIN to send.
        self.wake = Some(now);
        true
    }

    /// Every app is done (servers excepted, which never are).
    #[must_use]
    pub fn clients_done(&self) -> bool {
        self.apps.iter().all(|a| a.server || a.over())
    }
}

/// What an app polled on interface `d`, whose stack is `st`, works with.
fn app_cx<'a>(
    now: SimTime,
    d: usize,
    st: &'a mut Stack,
    ids: &'a mut HostIds,
    tcp: &'a TcpConfig,
    checksum_offload: bool,
) -> AppCx<'a> {
    AppCx {
        now,
        iface: &mut st.iface,
        sockets: &mut st.sockets,
        ids,
        tcp,
        wire: &st.wire,
        checksum_offload,
        interface: d,
    }
}

fn uses_tcp(kind: &topology::AppKind) -> bool {
    use topology::AppKind as K;
    matches!(
        kind,
        K::TcpEcho { .. }
            | K::TcpEchoServer { .. }
            | K::TcpSink { .. }
            | K::TcpTransfer { .. }
            | K::HttpServer { .. }
            | K::HttpGet(_)
    )
}

/// The remote endpoint whose connections an app counts the retransmissions of.
fn watched(kind: &topology::AppKind) -> Option<(IpAddr, u16)> {
    match kind {
        topology::AppKind::TcpTransfer { to, .. } => Some(*to),
        _ => None,
    }
}

/// A device that only answers smoltcp's questions while the interface is built.
struct Probe {
    mtu: usize,
    checksum_offload: bool,
}

impl smoltcp::phy::Device for Probe {
    type RxToken<'a> = NoToken;
    type TxToken<'a> = NoToken;
    fn receive(&mut self, _: smoltcp::time::Instant) -> Option<(NoToken, NoToken)> {
        None
    }
    fn transmit(&mut self, _: smoltcp::time::Instant) -> Option<NoToken> {
        None
    }
    fn capabilities(&self) -> smoltcp::phy::DeviceCapabilities {
        let mut caps = smoltcp::phy::DeviceCapabilities::default();
        caps.medium = smoltcp::phy::Medium::Ethernet;
        caps.max_transmission_unit = self.mtu + 14;
        if self.checksum_offload {
            caps.checksum = smoltcp::phy::ChecksumCapabilities::ignored();
        }
        caps
    }
}

struct NoToken;
impl smoltcp::phy::RxToken for NoToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&[])
    }
}
impl smoltcp::phy::TxToken for NoToken {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        f(&mut vec![0; len])
    }
}
