//! A router: N ports, each an Ethernet interface with addresses, and a forwarding plane written on
//! `smoltcp::wire` (smoltcp's `Interface` does not forward between interfaces).
//!
//! - Longest-prefix match over connected and static routes, IPv4 and IPv6.
//! - ARP (IPv4) and NDP (IPv6) per port, with a bounded queue of packets waiting for resolution.
//! - TTL / hop-limit decrement; ICMP time exceeded; destination unreachable (net, host, port);
//!   "fragmentation needed" and ICMPv6 "packet too big" on an MTU step, so that path MTU discovery
//!   works across it. An IPv4 packet without DF that is too large is fragmented.
//! - Ping to the router's own addresses is answered; UDP to them gets port unreachable.
//!
//! Forwarded frames keep their packet id; packets the router makes (ARP, NDP, ICMP) get ids of its
//! own. Every drop is reported on the link the packet came in on, with its reason (`no-route`,
//! `ttl`, `mtu`, `neighbour-timeout`, `malformed`, `queue-full`).
//!
//! The plane is split in two: [`Plane`] decides (pure: bytes in, actions out), [`Router`] plugs it
//! into the fabric. Tests feed the plane byte fixtures.
//!
//! A packet that needs nothing but forwarding takes a fast path ([`Plane::fast_hop`]): it is decided
//! without building anything and goes out in the arriving frame's own buffer, MACs, TTL and
//! checksum rewritten in place. The general path would send the same bytes; tests hold the two
//! together.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv4Packet,
    Icmpv6Packet, Icmpv6Repr, IpAddress, IpCidr, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, Ipv6Address,
    Ipv6Packet, Ipv6Repr, NdiscNeighborFlags, NdiscRepr, RawHardwareAddress,
};

use super::device::FramePool;
use super::fabric::{Arrived, Fabric, Port};
use super::observe::{DropReason, Fate, Observer};
use super::packet::{PacketId, PacketIds};
use crate::time::SimTime;
use crate::topology::{self, LinkId, NodeId, Side};

/// How long a resolved neighbour is kept without being confirmed again.
pub const NEIGHBOUR_LIFETIME: Duration = Duration::from_secs(60);
/// Between two ARP requests (or neighbour solicitations) for one address.
pub const RESOLVE_RETRY: Duration = Duration::from_secs(1);
/// Requests sent before the packets waiting for an address are dropped as `neighbour-timeout`.
pub const RESOLVE_TRIES: u32 = 3;
/// Packets that may wait for one neighbour's address; past it, `queue-full`.
pub const PENDING_PER_NEIGHBOUR: usize = 64;
/// Addresses being resolved at once by one router; past it, `queue-full`.
pub const PENDING_NEIGHBOURS: usize = 256;
/// Neighbours one port remembers.
pub const NEIGHBOURS_PER_PORT: usize = 1024;
/// ICMP errors a router sends: a token bucket of this many, refilled at this rate a second.
pub const ICMP_BURST: u32 = 100;
pub const ICMP_RATE: u32 = 1000;
/// How much of an offending IPv6 packet an ICMPv6 error quotes (the error fits 1280 bytes).
const ICMPV6_QUOTE: usize = 1280 - 40 - 8;
/// How much of an offending IPv4 packet an ICMP error quotes (the error fits 576 bytes).
const ICMPV4_QUOTE: usize = 576 - 20 - 8;
const DEFAULT_TTL: u8 = 64;

/// A route, resolved: a prefix, out of a port, to a next hop (`None`: the destination is on-link).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub to: IpCidr,
    pub port: usize,
    pub via: Option<IpAddress>,
    /// A connected route (from an interface's own subnet), not a static one.
    pub connected: bool,
}

/// The routes of a router, longest prefix first.
#[derive(Debug, Clone, Default)]
pub struct Routes(Vec<Route>);

impl Routes {
    /// The connected routes of `ports`, then the static ones; sorted so that the first match is
    /// the longest prefix (a connected route first among equals).
    #[must_use]
    pub fn new(ports: &[PortConfig], statics: &[topology::Route]) -> Routes {
        let mut v: Vec<Route> = Vec::new();
        for (i, p) in ports.iter().enumerate() {
            for c in &p.addresses {
                let net = network(*c);
                if !v.iter().any(|r| r.to == net && r.connected) {
                    v.push(Route { to: net, port: i, via: None, connected: true });
                }
            }
        }
        for r in statics {
            v.push(Route { to: network(r.to), port: r.dev, via: r.via, connected: false });
        }
        // Stable: among equal prefixes, connected first, then in lab order.
        v.sort_by_key(|r| (std::cmp::Reverse(r.to.prefix_len()), !r.connected));
        Routes(v)
    }

    /// The route for `dst`: longest prefix match.
    #[must_use]
    pub fn lookup(&self, dst: IpAddress) -> Option<&Route> {
        self.0.iter().find(|r| r.to.contains_addr(&dst))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.0.iter()
    }
}

/// The network of an address with its prefix (host bits cleared).
#[must_use]
pub fn network(c: IpCidr) -> IpCidr {
    match c {
        IpCidr::Ipv4(c) => IpCidr::Ipv4(c.network()),
        IpCidr::Ipv6(c) => {
            let len = c.prefix_len();
            let bits = u128::from(c.address());
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
            IpCidr::new(IpAddress::Ipv6(Ipv6Address::from(bits & mask)), len)
        }
    }
}

/// One port's settings.
#[derive(Debug, Clone)]
pub struct PortConfig {
    pub name: String,
    pub mac: EthernetAddress,
    pub mtu: usize,
    pub addresses: Vec<IpCidr>,
}

/// A neighbour a port resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbour {
    pub mac: EthernetAddress,
    pub seen: SimTime,
}

/// A packet waiting for its next hop's link-layer address: its IP bytes, id, and where it came in.
#[derive(Debug)]
struct Waiting {
    packet: Vec<u8>,
    id: PacketId,
    came: Option<(LinkId, Side)>,
}

#[derive(Debug)]
struct Resolving {
    tries: u32,
    next: SimTime,
    packets: VecDeque<Waiting>,
}

/// What a router counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RouterCounters {
    pub forwarded: u64,
    pub fragmented: u64,
    pub icmp_sent: u64,
    pub icmp_rate_limited: u64,
    pub local: u64,
    /// Packets dropped, by reason (`no-route`, `ttl`, `mtu`, `neighbour-timeout`, ...).
    pub dropped: BTreeMap<String, u64>,
}

/// A packet dropped after it waited: the link it came in on, its id, why, and its IP bytes.
pub type LateDrop = (Option<(LinkId, Side)>, PacketId, DropReason, Vec<u8>);

/// What the plane decided for one frame: the fate of the frame that came in, and frames to send.
#[derive(Debug, Default)]
pub struct Actions {
    /// How the arriving frame ended: `None` taken (delivered), or dropped for a reason.
    pub drop: Option<DropReason>,
    /// Frames to send: out of a port, with their packet id.
    pub out: Vec<(usize, PacketId, Vec<u8>)>,
    /// Earlier packets (waiting for resolution) dropped now: reported on the link they came in on.
    pub late_drops: Vec<LateDrop>,
}

/// The forwarding plane of one router: ports, routes, neighbours, waiting packets.
pub struct Plane {
    pub ports: Vec<PortConfig>,
    pub routes: Routes,
    pub neighbours: Vec<BTreeMap<IpAddress, Neighbour>>,
    resolving: BTreeMap<(usize, IpAddress), Resolving>,
    ids: PacketIds,
    checksum_offload: bool,
    tokens: u32,
    refilled: SimTime,
    pub counters: RouterCounters,
}

/// The checksums to compute and verify: all, or none (`checksum_offload`).
pub(crate) fn caps(offload: bool) -> ChecksumCapabilities {
    if offload {
        ChecksumCapabilities::ignored()
    } else {
        ChecksumCapabilities::default()
    }
}

/// The MAC of IPv6 multicast address `a`: 33:33 and its last four bytes.
fn multicast_mac(a: Ipv6Address) -> EthernetAddress {
    let o = a.octets();
    EthernetAddress([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

fn solicited_node(a: Ipv6Address) -> Ipv6Address {
    let o = a.octets();
    Ipv6Address::new(0xff02, 0, 0, 0, 0, 1, 0xff00 | u16::from(o[13]), u16::from_be_bytes([o[14], o[15]]))
}

/// The Ethernet address an NDP link-layer address option carries.
fn lladdr_mac(lladdr: Option<RawHardwareAddress>) -> Option<EthernetAddress> {
    match lladdr?.parse(smoltcp::phy::Medium::Ethernet).ok()? {
        smoltcp::wire::HardwareAddress::Ethernet(e) => Some(e),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// A source address that must never get an ICMP error (RFC 1812 4.3.2.7, RFC 4443 2.4).
fn no_error_to(src: IpAddress) -> bool {
    match src {
        IpAddress::Ipv4(a) => a.is_unspecified() || a.is_broadcast() || a.is_multicast() || a.is_loopback(),
        IpAddress::Ipv6(a) => a.is_unspecified() || a.is_multicast() || a.is_loopback(),
    }
}

/// Why an ICMP error is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IcmpError {
    TimeExceeded,
    NetUnreachable,
    HostUnreachable,
    PortUnreachable,
    /// Fragmentation needed (IPv4) or packet too big (IPv6), with the next hop's MTU.
    TooBig(u16),
}

impl Plane {
    #[must_use]
    pub fn new(node: NodeId, ports: Vec<PortConfig>, statics: &[topology::Route], checksum_offload: bool) -> Plane {
        let routes = Routes::new(&ports, statics);
        Plane {
            neighbours: vec![BTreeMap::new(); ports.len()],
            ports,
            routes,
            resolving: BTreeMap::new(),
            ids: PacketIds::new(node),
            checksum_offload,
            tokens: ICMP_BURST,
            refilled: SimTime::ZERO,
            counters: RouterCounters::default(),
        }
    }

    fn count_drop(&mut self, r: DropReason) {
        *self.counters.dropped.entry(r.as_str().to_string()).or_default() += 1;
    }

    /// Whether `a` is an address of this router (on any port).
    fn is_mine(&self, a: IpAddress) -> bool {
        self.ports.iter().any(|p| p.addresses.iter().any(|c| c.address() == a))
    }

    fn port_has(&self, port: usize, a: IpAddress) -> bool {
        self.ports[port].addresses.iter().any(|c| c.address() == a)
    }

    /// The address of `port` to send from towards `dst`: one on `dst`'s subnet, else the first of
    /// its family; else one of any port.
    fn source_for(&self, port: usize, dst: IpAddress) -> Option<IpAddress> {
        let same_family = |c: &&IpCidr| {
            matches!(
                (c.address(), dst),
                (IpAddress::Ipv4(_), IpAddress::Ipv4(_)) | (IpAddress::Ipv6(_), IpAddress::Ipv6(_))
            )
        };
        let p = &self.ports[port];
        p.addresses
            .iter()
            .find(|c| c.contains_addr(&dst))
            .or_else(|| p.addresses.iter().find(same_family))
            .or_else(|| self.ports.iter().flat_map(|p| &p.addresses).find(same_family))
            .map(IpCidr::address)
    }

    /// Packets waiting for a neighbour's address.
    #[must_use]
    pub fn waiting(&self) -> usize {
        self.resolving.values().map(|r| r.packets.len()).sum()
    }

    /// When the plane next needs a poll (a retry or a timeout of a resolution).
    #[must_use]
    pub fn next_wake(&self) -> Option<SimTime> {
        self.resolving.values().map(|r| r.next).min()
    }

    /// Retries and times out resolutions due by `now`.
    pub fn poll(&mut self, now: SimTime, acts: &mut Actions) {
        let due: Vec<(usize, IpAddress)> =
            self.resolving.iter().filter(|(_, r)| r.next <= now).map(|(k, _)| *k).collect();
        for key in due {
            let Some(r) = self.resolving.get_mut(&key) else { continue };
            if r.tries >= RESOLVE_TRIES {
                let r = self.resolving.remove(&key).map(|r| r.packets).unwrap_or_default();
                for w in r {
                    self.count_drop(DropReason::NeighbourTimeout);
                    self.icmp_error(now, &w.packet, None, IcmpError::HostUnreachable, acts);
                    acts.late_drops.push((w.came, w.id, DropReason::NeighbourTimeout, w.packet));
                }
            } else {
                r.tries += 1;
                r.next = now + RESOLVE_RETRY;
                self.solicit(key.0, key.1, acts);
            }
        }
    }

    /// A frame arrived on `port` at `now`, with packet id `id` (it came over `came`).
    pub fn receive(
        &mut self,
        now: SimTime,
        port: usize,
        id: PacketId,
        frame: &[u8],
        came: Option<(LinkId, Side)>,
    ) -> Actions {
        let mut acts = Actions::default();
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            acts.drop = Some(DropReason::Malformed);
            return acts;
        };
        let dst = eth.dst_addr();
        let me = self.ports[port].mac;
        if dst != me && !dst.is_broadcast() && !dst.is_multicast() {
            // Not addressed to this port (flooded by a switch): a NIC filters it.
            return acts;
        }
        let src_mac = eth.src_addr();
        match eth.ethertype() {
            EthernetProtocol::Arp => self.arp(now, port, eth.payload(), &mut acts),
            EthernetProtocol::Ipv4 => self.ipv4(now, port, id, eth.payload(), came, &mut acts),
            EthernetProtocol::Ipv6 => self.ipv6(now, port, id, src_mac, eth.payload(), came, &mut acts),
            _ => {}
        }
        if let Some(r) = acts.drop {
            self.count_drop(r);
        }
        acts
    }

    fn learn(&mut self, now: SimTime, port: usize, ip: IpAddress, mac: EthernetAddress, acts: &mut Actions) {
        if !mac.is_unicast() {
            return;
        }
        let table = &mut self.neighbours[port];
        if table.len() >= NEIGHBOURS_PER_PORT && !table.contains_key(&ip) {
            table.retain(|_, n| now - n.seen < NEIGHBOUR_LIFETIME);
            if table.len() >= NEIGHBOURS_PER_PORT {
                return;
            }
        }
        table.insert(ip, Neighbour { mac, seen: now });
        // Packets that waited for it go now.
        if let Some(r) = self.resolving.remove(&(port, ip)) {
            for w in r.packets {
                let frame = self.frame(port, mac, &w.packet);
                acts.out.push((port, w.id, frame));
                self.counters.forwarded += 1;
            }
        }
    }

    fn arp(&mut self, now: SimTime, port: usize, payload: &[u8], acts: &mut Actions) {
        let Ok(p) = ArpPacket::new_checked(payload) else {
            acts.drop = Some(DropReason::Malformed);
            return;
        };
        let Ok(ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr,
            source_protocol_addr,
            target_protocol_addr,
            ..
        }) = ArpRepr::parse(&p)
        else {
            acts.drop = Some(DropReason::Malformed);
            return;
        };
        let for_me = self.port_has(port, IpAddress::Ipv4(target_protocol_addr));
        let known = self.neighbours[port].contains_key(&IpAddress::Ipv4(source_protocol_addr))
            || self.resolving.contains_key(&(port, IpAddress::Ipv4(source_protocol_addr)));
        if (for_me || known) && !source_protocol_addr.is_unspecified() {
            self.learn(now, port, IpAddress::Ipv4(source_protocol_addr), source_hardware_addr, acts);
        }
        if operation == ArpOperation::Request && for_me {
            let reply = ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Reply,
                source_hardware_addr: self.ports[port].mac,
                source_protocol_addr: target_protocol_addr,
                target_hardware_addr: source_hardware_addr,
                target_protocol_addr: source_protocol_addr,
            };
            let mut buf = vec![0; reply.buffer_len()];
            reply.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
            let f = self.ethernet(port, source_hardware_addr, EthernetProtocol::Arp, &buf);
            let id = self.ids.next_id();
            acts.out.push((port, id, f));
        }
    }

    /// Sends an ARP request or a neighbour solicitation for `ip` out of `port`.
    fn solicit(&mut self, port: usize, ip: IpAddress, acts: &mut Actions) {
        let Some(src) = self.source_for(port, ip) else { return };
        let mac = self.ports[port].mac;
        let frame = match (ip, src) {
            (IpAddress::Ipv4(target), IpAddress::Ipv4(src)) => {
                let req = ArpRepr::EthernetIpv4 {
                    operation: ArpOperation::Request,
                    source_hardware_addr: mac,
                    source_protocol_addr: src,
                    target_hardware_addr: EthernetAddress([0; 6]),
                    target_protocol_addr: target,
                };
                let mut buf = vec![0; req.buffer_len()];
                req.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
                self.ethernet(port, EthernetAddress::BROADCAST, EthernetProtocol::Arp, &buf)
            }
            (IpAddress::Ipv6(target), IpAddress::Ipv6(src)) => {
                let dst = solicited_node(target);
                let repr = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
                    target_addr: target,
                    lladdr: Some(RawHardwareAddress::from(mac)),
                });
                let ip6 = self.ipv6_packet(src, dst, 255, &repr);
                self.ethernet(port, multicast_mac(dst), EthernetProtocol::Ipv6, &ip6)
            }
            _ => return,
        };
        let id = self.ids.next_id();
        acts.out.push((port, id, frame));
    }

    fn ipv6_packet(&self, src: Ipv6Address, dst: Ipv6Address, hop_limit: u8, icmp: &Icmpv6Repr<'_>) -> Vec<u8> {
        let ip = Ipv6Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Icmpv6,
            payload_len: icmp.buffer_len(),
            hop_limit,
        };
        let mut buf = vec![0; ip.buffer_len() + icmp.buffer_len()];
        ip.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..]));
        icmp.emit(
            &src,
            &dst,
            &mut Icmpv6Packet::new_unchecked(&mut buf[ip.buffer_len()..]),
            &caps(self.checksum_offload),
        );
        buf
    }

    fn ethernet(&self, port: usize, dst: EthernetAddress, proto: EthernetProtocol, payload: &[u8]) -> Vec<u8> {
        let repr = EthernetRepr { src_addr: self.ports[port].mac, dst_addr: dst, ethertype: proto };
        let mut buf = vec![0; repr.buffer_len() + payload.len()];
        let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
        repr.emit(&mut f);
        f.payload_mut().copy_from_slice(payload);
        buf
    }

    /// An IP packet in a frame to `mac` out of `port`.
    fn frame(&self, port: usize, mac: EthernetAddress, packet: &[u8]) -> Vec<u8> {
        let proto =
            if packet.first().is_some_and(|b| b >> 4 == 6) { EthernetProtocol::Ipv6 } else { EthernetProtocol::Ipv4 };
        self.ethernet(port, mac, proto, packet)
    }

    #[allow(clippy::too_many_arguments)]
    fn ipv4(
        &mut self,
        now: SimTime,
        port: usize,
        id: PacketId,
        payload: &[u8],
        came: Option<(LinkId, Side)>,
        acts: &mut Actions,
    ) {
        let Ok(p) = Ipv4Packet::new_checked(payload) else {
            acts.drop = Some(DropReason::Malformed);
            return;
        };
        if p.version() != 4 || (!self.checksum_offload && !p.verify_checksum()) {
            acts.drop = Some(DropReason::Malformed);
            return;
        }
        let packet = &payload[..usize::from(p.total_len())];
        let dst = p.dst_addr();
        if self.is_mine(IpAddress::Ipv4(dst)) {
            self.counters.local += 1;
            return self.local_v4(now, port, packet, acts);
        }
        if dst.is_broadcast() || dst.is_multicast() || self.is_subnet_broadcast(port, dst) {
            return;
        }
        self.forward(now, port, id, packet, came, acts);
    }

    fn is_subnet_broadcast(&self, port: usize, a: Ipv4Address) -> bool {
        self.ports[port].addresses.iter().any(|c| matches!(c, IpCidr::Ipv4(c) if c.broadcast() == Some(a)))
    }

    #[allow(clippy::too_many_arguments)]
    fn ipv6(
        &mut self,
        now: SimTime,
        port: usize,
        id: PacketId,
        src_mac: EthernetAddress,
        payload: &[u8],
        came: Option<(LinkId, Side)>,
        acts: &mut Actions,
    ) {
        let Ok(p) = Ipv6Packet::new_checked(payload) else {
            acts.drop = Some(DropReason::Malformed);
            return;
        };
        if p.version() != 6 {
            acts.drop = Some(DropReason::Malformed);
            return;
        }
        let packet = &payload[..40 + usize::from(p.payload_len())];
        let (src, dst) = (p.src_addr(), p.dst_addr());
        if p.next_header() == IpProtocol::Icmpv6 {
            let icmp = Icmpv6Packet::new_checked(p.payload());
            let repr = icmp
                .as_ref()
                .ok()
                .and_then(|icmp| Icmpv6Repr::parse(&src, &dst, icmp, &caps(self.checksum_offload)).ok());
            if let Some(Icmpv6Repr::Ndisc(nd)) = repr {
                match nd {
                    NdiscRepr::NeighborSolicit { target_addr, lladdr } => {
                        if self.port_has(port, IpAddress::Ipv6(target_addr)) {
                            let mac = lladdr_mac(lladdr).unwrap_or(src_mac);
                            if !src.is_unspecified() {
                                self.learn(now, port, IpAddress::Ipv6(src), mac, acts);
                            }
                            let reply_to =
                                if src.is_unspecified() { Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 1) } else { src };
                            let na = Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
                                flags: NdiscNeighborFlags::ROUTER
                                    | NdiscNeighborFlags::SOLICITED
                                    | NdiscNeighborFlags::OVERRIDE,
                                target_addr,
                                lladdr: Some(RawHardwareAddress::from(self.ports[port].mac)),
                            });
                            let buf = self.ipv6_packet(target_addr, reply_to, 255, &na);
                            let dst_mac = if src.is_unspecified() { multicast_mac(reply_to) } else { mac };
                            let f = self.ethernet(port, dst_mac, EthernetProtocol::Ipv6, &buf);
                            let id = self.ids.next_id();
                            acts.out.push((port, id, f));
                        }
                        return;
                    }
                    NdiscRepr::NeighborAdvert { target_addr, lladdr, .. } => {
                        let mac = lladdr_mac(lladdr).unwrap_or(src_mac);
                        let ip = IpAddress::Ipv6(target_addr);
                        if self.neighbours[port].contains_key(&ip) || self.resolving.contains_key(&(port, ip)) {
                            self.learn(now, port, ip, mac, acts);
                        }
                        return;
                    }
                    _ => return,
                }
            }
        }
        if self.is_mine(IpAddress::Ipv6(dst)) {
            self.counters.local += 1;
            return self.local_v6(now, port, packet, acts);
        }
        if dst.is_multicast() || src.is_multicast() || dst.is_unicast_link_local() || src.is_unicast_link_local() {
            // Link-scoped: never forwarded.
            return;
        }
        self.forward(now, port, id, packet, came, acts);
    }

    /// A packet to one of the router's own addresses: echo requests are answered, UDP gets port
    /// unreachable, anything else is taken and ignored.
    fn local_v4(&mut self, now: SimTime, port: usize, packet: &[u8], acts: &mut Actions) {
        let Ok(p) = Ipv4Packet::new_checked(packet) else { return };
        if p.more_frags() || p.frag_offset() != 0 {
            return;
        }
        match p.next_header() {
            IpProtocol::Icmp => {
                let Ok(icmp) = Icmpv4Packet::new_checked(p.payload()) else { return };
                if icmp.msg_type() != smoltcp::wire::Icmpv4Message::EchoRequest || icmp.msg_code() != 0 {
                    return;
                }
                if !self.checksum_offload && !icmp.verify_checksum() {
                    return;
                }
                let mut reply = p.payload().to_vec();
                let mut r = Icmpv4Packet::new_unchecked(&mut reply[..]);
                r.set_msg_type(smoltcp::wire::Icmpv4Message::EchoReply);
                r.fill_checksum();
                self.send_own(
                    now,
                    port,
                    IpAddress::Ipv4(p.dst_addr()),
                    IpAddress::Ipv4(p.src_addr()),
                    IpProtocol::Icmp,
                    &reply,
                    acts,
                );
            }
            IpProtocol::Udp => self.icmp_error(now, packet, Some(port), IcmpError::PortUnreachable, acts),
            _ => {}
        }
    }

    fn local_v6(&mut self, now: SimTime, port: usize, packet: &[u8], acts: &mut Actions) {
        let Ok(p) = Ipv6Packet::new_checked(packet) else { return };
        match p.next_header() {
            IpProtocol::Icmpv6 => {
                let (src, dst) = (p.src_addr(), p.dst_addr());
                let Ok(icmp) = Icmpv6Packet::new_checked(p.payload()) else { return };
                let Ok(Icmpv6Repr::EchoRequest { ident, seq_no, data }) =
                    Icmpv6Repr::parse(&src, &dst, &icmp, &caps(self.checksum_offload))
                else {
                    return;
                };
                let repr = Icmpv6Repr::EchoReply { ident, seq_no, data };
                let mut buf = vec![0; repr.buffer_len()];
                repr.emit(&dst, &src, &mut Icmpv6Packet::new_unchecked(&mut buf[..]), &caps(self.checksum_offload));
                self.send_own(now, port, IpAddress::Ipv6(dst), IpAddress::Ipv6(src), IpProtocol::Icmpv6, &buf, acts);
            }
            IpProtocol::Udp => self.icmp_error(now, packet, Some(port), IcmpError::PortUnreachable, acts),
            _ => {}
        }
    }

    /// Sends a packet the router made (from `src` to `dst`): routed like any other.
    #[allow(clippy::too_many_arguments)]
    fn send_own(
        &mut self,
        now: SimTime,
        _in_port: usize,
        src: IpAddress,
        dst: IpAddress,
        proto: IpProtocol,
        payload: &[u8],
        acts: &mut Actions,
    ) {
        let packet = match (src, dst) {
            (IpAddress::Ipv4(s), IpAddress::Ipv4(d)) => {
                let ip = Ipv4Repr {
                    src_addr: s,
                    dst_addr: d,
                    next_header: proto,
                    payload_len: payload.len(),
                    hop_limit: DEFAULT_TTL,
                };
                let mut buf = vec![0; ip.buffer_len() + payload.len()];
                ip.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), &caps(self.checksum_offload));
                buf[ip.buffer_len()..].copy_from_slice(payload);
                buf
            }
            (IpAddress::Ipv6(s), IpAddress::Ipv6(d)) => {
                let ip = Ipv6Repr {
                    src_addr: s,
                    dst_addr: d,
                    next_header: proto,
                    payload_len: payload.len(),
                    hop_limit: DEFAULT_TTL,
                };
                let mut buf = vec![0; ip.buffer_len() + payload.len()];
                ip.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..]));
                buf[ip.buffer_len()..].copy_from_slice(payload);
                buf
            }
            _ => return,
        };
        let Some(route) = self.routes.lookup(dst).copied() else { return };
        let id = self.ids.next_id();
        let next = route.via.unwrap_or(dst);
        self.send_to_neighbour(now, route.port, next, id, packet, None, acts);
    }

    /// Builds and routes an ICMP error about `packet` back to its source. `in_port` is the port
    /// it came in on (the error's source address is one of it), `None` for a packet the router held.
    fn icmp_error(&mut self, now: SimTime, packet: &[u8], in_port: Option<usize>, why: IcmpError, acts: &mut Actions) {
        // Token bucket.
        let elapsed = now - self.refilled;
        let add = u32::try_from(elapsed.as_nanos() * u128::from(ICMP_RATE) / 1_000_000_000).unwrap_or(u32::MAX);
        if add > 0 {
            self.tokens = self.tokens.saturating_add(add).min(ICMP_BURST);
            self.refilled = now;
        }
        let v6 = packet.first().is_some_and(|b| b >> 4 == 6);
        let (src, payload): (IpAddress, Vec<u8>) = if v6 {
            let Ok(p) = Ipv6Packet::new_checked(packet) else { return };
            let src = p.src_addr();
            if no_error_to(IpAddress::Ipv6(src)) || p.dst_addr().is_multicast() {
                return;
            }
            // Never about an ICMPv6 error message.
            if p.next_header() == IpProtocol::Icmpv6 && p.payload().first().is_some_and(|t| *t < 128) {
                return;
            }
            let (ty, code, rest): (u8, u8, u32) = match why {
                IcmpError::TimeExceeded => (3, 0, 0),
                IcmpError::NetUnreachable => (1, 0, 0),
                IcmpError::HostUnreachable => (1, 3, 0),
                IcmpError::PortUnreachable => (1, 4, 0),
                IcmpError::TooBig(mtu) => (2, 0, u32::from(mtu)),
            };
            let quote = &packet[..packet.len().min(ICMPV6_QUOTE)];
            let mut buf = vec![0; 8 + quote.len()];
            buf[0] = ty;
            buf[1] = code;
            buf[4..8].copy_from_slice(&rest.to_be_bytes());
            buf[8..].copy_from_slice(quote);
            (IpAddress::Ipv6(src), buf)
        } else {
            let Ok(p) = Ipv4Packet::new_checked(packet) else { return };
            let src = p.src_addr();
            if no_error_to(IpAddress::Ipv4(src)) || p.dst_addr().is_multicast() || p.dst_addr().is_broadcast() {
                return;
            }
            if p.frag_offset() != 0 {
                return;
            }
            // Never about an ICMP error message (only echo and its reply are queries here).
            if p.next_header() == IpProtocol::Icmp && p.payload().first().is_some_and(|t| !matches!(t, 0 | 8)) {
                return;
            }
            let (ty, code, rest): (u8, u8, u32) = match why {
                IcmpError::TimeExceeded => (11, 0, 0),
                IcmpError::NetUnreachable => (3, 0, 0),
                IcmpError::HostUnreachable => (3, 1, 0),
                IcmpError::PortUnreachable => (3, 3, 0),
                IcmpError::TooBig(mtu) => (3, 4, u32::from(mtu)),
            };
            let hl = usize::from(p.header_len());
            let quote = &packet[..packet.len().min(ICMPV4_QUOTE).max(hl.min(packet.len()))];
            let mut buf = vec![0; 8 + quote.len()];
            buf[0] = ty;
            buf[1] = code;
            buf[4..8].copy_from_slice(&rest.to_be_bytes());
            buf[8..].copy_from_slice(quote);
            let mut icmp = Icmpv4Packet::new_unchecked(&mut buf[..]);
            icmp.fill_checksum();
            (IpAddress::Ipv4(src), buf)
        };
        if self.tokens == 0 {
            self.counters.icmp_rate_limited += 1;
            return;
        }
        self.tokens -= 1;
        // From an address of the port the packet came in on (or of the route back to its source).
        let from_port = in_port.or_else(|| self.routes.lookup(src).map(|r| r.port));
        let Some(me) = from_port.and_then(|p| self.source_for(p, src)) else { return };
        let mut payload = payload;
        if let (IpAddress::Ipv6(me6), IpAddress::Ipv6(src6)) = (me, src) {
            let mut icmp = Icmpv6Packet::new_unchecked(&mut payload[..]);
            if self.checksum_offload {
                icmp.set_checksum(0);
            } else {
                icmp.fill_checksum(&me6, &src6);
            }
        }
        self.counters.icmp_sent += 1;
        let proto = if v6 { IpProtocol::Icmpv6 } else { IpProtocol::Icmp };
        self.send_own(now, from_port.unwrap_or(0), me, src, proto, &payload, acts);
    }

    /// Forwards an IP packet that is not for the router.
    fn forward(
        &mut self,
        now: SimTime,
        in_port: usize,
        id: PacketId,
        packet: &[u8],
        came: Option<(LinkId, Side)>,
        acts: &mut Actions,
    ) {
        let v6 = packet.first().is_some_and(|b| b >> 4 == 6);
        let (dst, ttl) = if v6 {
            let p = Ipv6Packet::new_unchecked(packet);
            (IpAddress::Ipv6(p.dst_addr()), p.hop_limit())
        } else {
            let p = Ipv4Packet::new_unchecked(packet);
            (IpAddress::Ipv4(p.dst_addr()), p.hop_limit())
        };
        if ttl <= 1 {
            acts.drop = Some(DropReason::Ttl);
            self.icmp_error(now, packet, Some(in_port), IcmpError::TimeExceeded, acts);
            return;
        }
        let Some(route) = self.routes.lookup(dst).copied() else {
            acts.drop = Some(DropReason::NoRoute);
            self.icmp_error(now, packet, Some(in_port), IcmpError::NetUnreachable, acts);
            return;
        };
        let mtu = self.ports[route.port].mtu;
        let mut out = packet.to_vec();
        if v6 {
            Ipv6Packet::new_unchecked(&mut out[..]).set_hop_limit(ttl - 1);
        } else {
            let mut p = Ipv4Packet::new_unchecked(&mut out[..]);
            p.set_hop_limit(ttl - 1);
            if !self.checksum_offload {
                p.fill_checksum();
            }
        }
        let next = route.via.unwrap_or(dst);
        if out.len() > mtu {
            let df = v6 || Ipv4Packet::new_unchecked(packet).dont_frag();
            if df {
                acts.drop = Some(DropReason::Mtu);
                self.icmp_error(
                    now,
                    packet,
                    Some(in_port),
                    IcmpError::TooBig(u16::try_from(mtu).unwrap_or(u16::MAX)),
                    acts,
                );
                return;
            }
            let Some(frags) = fragment(&out, mtu, self.checksum_offload) else {
                acts.drop = Some(DropReason::Mtu);
                return;
            };
            self.counters.fragmented += 1;
            for f in frags {
                self.send_to_neighbour(now, route.port, next, id, f, came, acts);
            }
            return;
        }
        self.send_to_neighbour(now, route.port, next, id, out, came, acts);
    }

    /// Sends an IP packet to `next` on `port`: now if its address is known, else after resolving it.
    #[allow(clippy::too_many_arguments)]
    fn send_to_neighbour(
        &mut self,
        now: SimTime,
        port: usize,
        next: IpAddress,
        id: PacketId,
        packet: Vec<u8>,
        came: Option<(LinkId, Side)>,
        acts: &mut Actions,
    ) {
        if let Some(n) = self.neighbours[port].get(&next).copied() {
            if now - n.seen < NEIGHBOUR_LIFETIME {
                let frame = self.frame(port, n.mac, &packet);
                self.counters.forwarded += 1;
                acts.out.push((port, id, frame));
                return;
            }
            self.neighbours[port].remove(&next);
        }
        let key = (port, next);
        if let Some(r) = self.resolving.get_mut(&key) {
            if r.packets.len() >= PENDING_PER_NEIGHBOUR {
                self.count_drop(DropReason::QueueFull);
                acts.late_drops.push((came, id, DropReason::QueueFull, packet));
            } else {
                r.packets.push_back(Waiting { packet, id, came });
            }
            return;
        }
        if self.resolving.len() >= PENDING_NEIGHBOURS {
            self.count_drop(DropReason::QueueFull);
            acts.late_drops.push((came, id, DropReason::QueueFull, packet));
            return;
        }
        let mut packets = VecDeque::new();
        packets.push_back(Waiting { packet, id, came });
        self.resolving.insert(key, Resolving { tries: 1, next: now + RESOLVE_RETRY, packets });
        self.solicit(port, next, acts);
    }
}

/// Where a packet that needs nothing but forwarding goes (see [`Plane::fast_hop`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FastHop {
    /// The port it leaves by.
    pub port: usize,
    /// The next hop's MAC.
    pub mac: EthernetAddress,
    /// The IP packet's length: the frame is cut to it (no Ethernet padding goes on).
    pub ip_len: usize,
    pub v6: bool,
}

/// The forwarding fast path: the common case of [`Plane::receive`] decided without building
/// anything, and done in the arriving frame's own buffer.
impl Plane {
    /// The hop of a frame that [`Plane::receive`] would only forward: an IPv4 packet, or an IPv6
    /// packet other than ICMPv6 (which may be NDP), addressed to this port's MAC and not to the
    /// router, unicast, valid (and with a good header checksum unless offloaded), with TTL to spare,
    /// a route, a next hop resolved and alive, and room in the next port's MTU. `None` for anything
    /// else; nothing has changed then, and the general path decides the frame from scratch.
    #[must_use]
    pub fn fast_hop(&self, now: SimTime, port: usize, frame: &[u8]) -> Option<FastHop> {
        let eth = EthernetFrame::new_checked(frame).ok()?;
        if eth.dst_addr() != self.ports.get(port)?.mac {
            return None;
        }
        let payload = eth.payload();
        let (dst, ttl, ip_len, v6) = match eth.ethertype() {
            EthernetProtocol::Ipv4 => {
                let p = Ipv4Packet::new_checked(payload).ok()?;
                if p.version() != 4 || (!self.checksum_offload && !p.verify_checksum()) {
                    return None;
                }
                let dst = p.dst_addr();
                if dst.is_broadcast() || dst.is_multicast() || self.is_subnet_broadcast(port, dst) {
                    return None;
                }
                (IpAddress::Ipv4(dst), p.hop_limit(), usize::from(p.total_len()), false)
            }
            EthernetProtocol::Ipv6 => {
                let p = Ipv6Packet::new_checked(payload).ok()?;
                if p.version() != 6 || p.next_header() == IpProtocol::Icmpv6 {
                    return None;
                }
                let (src, dst) = (p.src_addr(), p.dst_addr());
                if dst.is_multicast()
                    || src.is_multicast()
                    || dst.is_unicast_link_local()
                    || src.is_unicast_link_local()
                {
                    return None;
                }
                (IpAddress::Ipv6(dst), p.hop_limit(), 40 + usize::from(p.payload_len()), true)
            }
            _ => return None,
        };
        if ttl <= 1 || self.is_mine(dst) {
            return None;
        }
        let route = self.routes.lookup(dst)?;
        if ip_len > self.ports[route.port].mtu {
            return None;
        }
        let n = self.neighbours[route.port].get(&route.via.unwrap_or(dst))?;
        if now - n.seen >= NEIGHBOUR_LIFETIME {
            return None;
        }
        Some(FastHop { port: route.port, mac: n.mac, ip_len, v6 })
    }

    /// Forwards `frame` along `hop` in place, as the general path would: the next hop's MAC and the
    /// port's own, the TTL (or hop limit) one less and the IPv4 header checksum filled again (unless
    /// offloaded), the Ethernet padding cut off. The same bytes as [`Plane::receive`] sends.
    pub fn forward_in_place(&mut self, hop: FastHop, frame: &mut Vec<u8>) {
        frame.truncate(14 + hop.ip_len);
        let mut eth = EthernetFrame::new_unchecked(&mut frame[..]);
        eth.set_dst_addr(hop.mac);
        eth.set_src_addr(self.ports[hop.port].mac);
        let ip = eth.payload_mut();
        if hop.v6 {
            let mut p = Ipv6Packet::new_unchecked(ip);
            p.set_hop_limit(p.hop_limit() - 1);
        } else {
            let mut p = Ipv4Packet::new_unchecked(ip);
            p.set_hop_limit(p.hop_limit() - 1);
            if !self.checksum_offload {
                p.fill_checksum();
            }
        }
        self.counters.forwarded += 1;
    }
}

/// Splits an IPv4 packet into fragments of at most `mtu` bytes (RFC 791), or `None` if its header
/// alone leaves no room for 8 bytes of data.
fn fragment(packet: &[u8], mtu: usize, offload: bool) -> Option<Vec<Vec<u8>>> {
    let p = Ipv4Packet::new_checked(packet).ok()?;
    let hl = usize::from(p.header_len());
    let data = &packet[hl..];
    let chunk = (mtu.checked_sub(hl)? / 8) * 8;
    if chunk == 0 {
        return None;
    }
    let base = usize::from(p.frag_offset());
    let last_mf = p.more_frags();
    let mut out = Vec::new();
    let mut off = 0;
    while off < data.len() {
        let end = (off + chunk).min(data.len());
        let mut f = Vec::with_capacity(hl + end - off);
        f.extend_from_slice(&packet[..hl]);
        f.extend_from_slice(&data[off..end]);
        let mut q = Ipv4Packet::new_unchecked(&mut f[..]);
        q.set_total_len(u16::try_from(hl + end - off).ok()?);
        q.set_frag_offset(u16::try_from(base + off).ok()?);
        q.set_more_frags(end < data.len() || last_mf);
        if !offload {
            q.fill_checksum();
        }
        out.push(f);
        off = end;
    }
    Some(out)
}

/// A router node: its plane, plugged into the fabric.
pub struct Router {
    pub id: NodeId,
    pub name: String,
    pub plane: Plane,
}

impl Router {
    #[must_use]
    pub fn new(id: NodeId, name: &str, r: &topology::Router, checksum_offload: bool) -> Router {
        let ports = r
            .interfaces
            .iter()
            .map(|i| PortConfig { name: i.name.clone(), mac: i.mac, mtu: i.mtu, addresses: i.addresses.clone() })
            .collect();
        Router { id, name: name.to_string(), plane: Plane::new(id, ports, &r.routes, checksum_offload) }
    }

    /// A frame arrived on a port: forward, answer or drop it.
    pub fn receive<O: Observer>(
        &mut self,
        arr: &Arrived,
        frame: Vec<u8>,
        fabric: &mut Fabric,
        pool: &mut FramePool,
        obs: &mut O,
    ) {
        let port = arr.port as usize;
        if port >= self.plane.ports.len() {
            arr.report(Fate::Dropped(DropReason::Malformed), &frame, obs);
            return pool.give(frame);
        }
        if frame.len() > self.plane.ports[port].mtu + 14 {
            self.plane.count_drop(DropReason::Mtu);
            arr.report(Fate::Dropped(DropReason::Mtu), &frame, obs);
            return pool.give(frame);
        }
        if let Some(hop) = self.plane.fast_hop(arr.at, port, &frame) {
            // Only forwarded: in the frame's own buffer, with the same events as the general path.
            arr.report(Fate::Delivered, &frame, obs);
            let mut frame = frame;
            self.plane.forward_in_place(hop, &mut frame);
            let out = Port { node: self.id, port: hop.port as u32 };
            return fabric.send(arr.at, out, arr.packet, frame, pool, obs);
        }
        let acts = self.plane.receive(arr.at, port, arr.packet, &frame, Some((arr.link, arr.from)));
        // The frame crossed the link whatever the router does with it (captures show it); a drop
        // at the router is a second event for the same packet.
        match acts.drop {
            Some(DropReason::Malformed) if frame.len() < 14 => {
                arr.report(Fate::Dropped(DropReason::Malformed), &frame, obs)
            }
            Some(r) => {
                arr.report(Fate::Delivered, &frame, obs);
                arr.report(Fate::Dropped(r), &frame, obs);
            }
            None => arr.report(Fate::Delivered, &frame, obs),
        }
        pool.give(frame);
        self.act(arr.at, acts, fabric, pool, obs);
    }

    /// Retries and timeouts due by `now`.
    pub fn poll<O: Observer>(&mut self, now: SimTime, fabric: &mut Fabric, pool: &mut FramePool, obs: &mut O) {
        let mut acts = Actions::default();
        self.plane.poll(now, &mut acts);
        self.act(now, acts, fabric, pool, obs);
    }

    fn act<O: Observer>(
        &mut self,
        now: SimTime,
        acts: Actions,
        fabric: &mut Fabric,
        pool: &mut FramePool,
        obs: &mut O,
    ) {
        for (came, id, reason, packet) in acts.late_drops {
            if let Some((link, from)) = came {
                // The packet as it waited, in a frame from the router's port with no destination yet.
                let frame = self.plane.frame(0, EthernetAddress([0; 6]), &packet);
                obs.frame(&super::FrameEvent {
                    time: now,
                    link,
                    from,
                    packet: id,
                    fate: Fate::Dropped(reason),
                    frame: &frame,
                });
            }
        }
        for (port, id, frame) in acts.out {
            let mut buf = pool.take(frame.len());
            buf.extend_from_slice(&frame);
            fabric.send(now, Port { node: self.id, port: port as u32 }, id, buf, pool, obs);
        }
    }

    #[must_use]
    pub fn next_wake(&self) -> Option<SimTime> {
        self.plane.next_wake()
    }

    /// Each neighbour: port, address, MAC.
    pub fn neighbours(&self) -> impl Iterator<Item = (usize, IpAddr, EthernetAddress)> + '_ {
        self.plane
            .neighbours
            .iter()
            .enumerate()
            .flat_map(|(p, t)| t.iter().map(move |(ip, n)| (p, IpAddr::from(*ip), n.mac)))
    }
}

#[cfg(test)]
#[path = "router_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "router_fast_tests.rs"]
mod fast_tests;
