//! L2 segments: the hosts that frames pass between, joined through switches and direct links.
//!
//! netlab has no routers: a host reaches another only on its own segment, directly for an address
//! of its own subnets and through its gateway for any other. An app whose target cannot be reached
//! so is an error; hosts of one segment with overlapping but different prefixes, or with different
//! MTUs, are warnings. Segments are known only once every node and link was read and accepted;
//! until then these checks wait, rather than report what only follows from another problem.

use std::collections::HashMap;
use std::net::IpAddr;

use smoltcp::wire::IpCidr;

use super::routes::interfaces;
use super::targets::LabView;
use super::Cx;
use crate::topology::diag::{shown, JsonPath};
use crate::topology::model::{interface_routes, Attachment, Link, Node, NodeKind};

/// Disjoint sets of indices, joined by size, with paths halved on the way to a root: near-constant
/// time per operation.
pub(super) struct Sets {
    parent: Vec<usize>,
    size: Vec<usize>,
}

impl Sets {
    pub(super) fn new(n: usize) -> Sets {
        Sets { parent: (0..n).collect(), size: vec![1; n] }
    }

    /// The representative of `i`'s set.
    pub(super) fn root(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    /// Joins the sets of `a` and `b`; false if they were one set already.
    pub(super) fn join(&mut self, a: usize, b: usize) -> bool {
        let (mut a, mut b) = (self.root(a), self.root(b));
        if a == b {
            return false;
        }
        if self.size[a] < self.size[b] {
            std::mem::swap(&mut a, &mut b);
        }
        self.parent[b] = a;
        self.size[a] += self.size[b];
        true
    }
}

/// The segment of every node, and of every router interface: a router is an L3 boundary, so each
/// of its interfaces is on a segment of its own. So is each interface of a host with several (a
/// host does not forward between them).
pub(super) struct Segments {
    /// A representative point of each point's segment: nodes first, then router interfaces (and
    /// those of hosts with several).
    pub(super) of: Vec<usize>,
    /// The point of each router interface (node, interface), and of each interface of a host with
    /// several.
    iface: HashMap<(usize, usize), usize>,
}

impl Segments {
    pub(super) fn new(nodes: &[Node], links: &[Link]) -> Segments {
        let mut iface = HashMap::new();
        let mut n = nodes.len();
        for (i, node) in nodes.iter().enumerate() {
            let own = match &node.kind {
                NodeKind::Router(r) => r.interfaces.len(),
                NodeKind::Host(h) if h.interfaces.len() > 1 => h.interfaces.len(),
                _ => 0,
            };
            for d in 0..own {
                iface.insert((i, d), n);
                n += 1;
            }
        }
        let mut sets = Sets::new(n);
        let point = |a: Attachment| match a {
            Attachment::HostInterface { node, interface } => {
                iface.get(&(node.index(), interface)).copied().unwrap_or(node.index())
            }
            Attachment::SwitchPort { node, .. } => node.index(),
        };
        for l in links {
            sets.join(point(l.ends[0]), point(l.ends[1]));
        }
        Segments { of: (0..n).map(|i| sets.root(i)).collect(), iface }
    }

    /// The segment of interface `d` of `node` (the interface of a host with one is on the node's).
    pub(super) fn of_iface(&self, node: usize, d: usize) -> usize {
        self.iface.get(&(node, d)).map_or(self.of[node], |p| self.of[*p])
    }

    /// The segment of the interface of `node` that has address `ip`.
    pub(super) fn of_addr(&self, node: usize, ip: IpAddr, nodes: &[Node]) -> Option<usize> {
        let ip = smoltcp::wire::IpAddress::from(ip);
        interfaces(&nodes[node])
            .iter()
            .position(|i| i.addresses.iter().any(|c| c.address() == ip))
            .map(|d| self.of_iface(node, d))
    }
}

/// `node`'s interface for a hint: `laptop:eth0`, or `laptop:<interface>` for a host without one.
fn plug(n: &Node) -> String {
    let i = interfaces(n).first().map_or("<interface>", |i| i.name.as_str());
    format!("{}:{}", shown(&n.name), shown(i))
}

impl Cx {
    /// Whether host `me` reaches `ip`, an address of host `to`: both are plugged in; `me` sends by
    /// the interface its route to `ip` says (the longest prefix among its subnets, routes and
    /// gateways); an address of that interface's subnets is on its link, and any other goes through
    /// the route's next hop, a host on that link or a router whose routes are followed there and
    /// back. Reports at `tp` why not. `me` has an address of `ip`'s family, and a route to `ip`
    /// (checked before).
    pub(super) fn reaches(
        &mut self,
        me: usize,
        to: usize,
        ip: IpAddr,
        lab: &LabView<'_>,
        segments: &Segments,
        tp: &JsonPath,
    ) -> bool {
        let (me_node, to_node) = (&lab.nodes[me], &lab.nodes[to]);
        let linked = |n: &Node| interfaces(n).iter().any(|i| i.link.is_some());
        if !linked(to_node) {
            self.err(
                tp.clone(),
                format!("`{}` has no link, so nothing reaches {ip}", shown(&to_node.name)),
                Some(format!("plug `{}` into a switch under `links`", plug(to_node))),
            );
            return false;
        }
        if !linked(me_node) {
            self.err(
                tp.clone(),
                format!("`{}` has no link, so it cannot reach {ip}", shown(&me_node.name)),
                Some(format!("plug `{}` into a switch under `links`", plug(me_node))),
            );
            return false;
        }
        let NodeKind::Host(h) = &me_node.kind else { return true };
        let Some(route) = h.route(ip) else { return true };
        let out = &h.interfaces[route.dev];
        // A host with several interfaces: the one it sends by, and the one of `to` with `ip`, must
        // be plugged in.
        if out.link.is_none() {
            self.err(
                tp.clone(),
                format!("`{}` sends to {ip} by `{}`, which has no link", shown(&me_node.name), shown(&out.name)),
                Some(format!(
                    "plug `{}:{}` into a switch under `links`, or route {ip} by another interface",
                    shown(&me_node.name),
                    shown(&out.name)
                )),
            );
            return false;
        }
        if let Some(d) = interfaces(to_node).iter().position(|i| i.addresses.iter().any(|c| c.address() == ip.into())) {
            let i = &interfaces(to_node)[d];
            if i.link.is_none() {
                self.err(
                    tp.clone(),
                    format!("{ip} is an address of `{}:{}`, which has no link", shown(&to_node.name), shown(&i.name)),
                    Some(format!(
                        "plug `{}:{}` into a switch under `links`, or target another address of `{}`",
                        shown(&to_node.name),
                        shown(&i.name),
                        shown(&to_node.name)
                    )),
                );
                return false;
            }
        }
        let multi = h.interfaces.len() > 1;
        let seg = segments.of_iface(me, route.dev);
        let Some(next) = route.via else {
            if segments.of_addr(to, ip, lab.nodes) != Some(seg) {
                let (message, hint) = if multi {
                    (
                        format!(
                            "{ip} (`{}`) is on the subnet of `{}:{}` but not on its link: no switch or link joins them",
                            shown(&to_node.name),
                            shown(&me_node.name),
                            shown(&out.name)
                        ),
                        "join them through a switch; a host sends to an address of an interface's subnets by that \
                         interface, directly, never through a gateway or its other interfaces"
                            .to_string(),
                    )
                } else {
                    (
                        format!(
                            "{ip} (`{}`) is on a subnet of `{}` but not on its segment: no switch or link joins them",
                            shown(&to_node.name),
                            shown(&me_node.name)
                        ),
                        "join them through a switch; a host sends to an address of its own subnets directly, \
                         never through a gateway"
                            .to_string(),
                    )
                };
                self.err(tp.clone(), message, Some(hint));
                return false;
            }
            return true;
        };
        let gateway = IpAddr::from(next);
        if let Some(&g) = lab.owners.get(&gateway) {
            if segments.of_addr(g, gateway, lab.nodes) == Some(seg) {
                if !matches!(lab.nodes[g].kind, NodeKind::Router(_)) {
                    // A host as gateway: netlab does not look past it.
                    return true;
                }
                return self.route_walk(g, ip, to, lab, segments, tp, "packets")
                    && self.reply_path(me, route.dev, to, ip, lab, segments, tp);
            }
        }
        let family = if ip.is_ipv6() { "IPv6" } else { "IPv4" };
        let is_gateway = match next {
            smoltcp::wire::IpAddress::Ipv4(g) => out.gateway_v4 == Some(g),
            smoltcp::wire::IpAddress::Ipv6(g) => out.gateway_v6 == Some(g),
        };
        let (through, on) = match (is_gateway, multi) {
            (true, false) => (format!("its {family} gateway {gateway}"), "its segment".to_string()),
            (true, true) => (format!("its {family} gateway {gateway}"), format!("the link of `{}`", shown(&out.name))),
            (false, false) => (format!("next hop {gateway} (a route of its own)"), "its segment".to_string()),
            (false, true) => {
                (format!("next hop {gateway} (a route of its own)"), format!("the link of `{}`", shown(&out.name)))
            }
        };
        let hint = if is_gateway && !multi {
            format!(
                "a gateway must be a host on the segment of `{}`; or give it and `{}` one subnet on one segment",
                shown(&me_node.name),
                shown(&to_node.name)
            )
        } else {
            format!(
                "a next hop must be a router or host on the link of `{}:{}`, the interface the route leaves by",
                shown(&me_node.name),
                shown(&out.name)
            )
        };
        self.err(
            tp.clone(),
            format!(
                "`{}` sends to {ip} (`{}`) through {through}, which is no host on {on}",
                shown(&me_node.name),
                shown(&to_node.name)
            ),
            Some(hint),
        );
        false
    }

    /// Whether replies from `to` (reached at `ip`) find their way back to `me`, which sent by its
    /// interface `dev`. A host answers by the interface `ip` is on: through that interface's
    /// subnets, routes or gateway, and then through routers.
    #[allow(clippy::too_many_arguments)]
    fn reply_path(
        &mut self,
        me: usize,
        dev: usize,
        to: usize,
        ip: IpAddr,
        lab: &LabView<'_>,
        segments: &Segments,
        tp: &JsonPath,
    ) -> bool {
        let nodes = lab.nodes;
        let Some(back) = interfaces(&nodes[me])
            .get(dev)
            .into_iter()
            .flat_map(|i| &i.addresses)
            .map(|c| IpAddr::from(c.address()))
            .find(|a| a.is_ipv6() == ip.is_ipv6())
        else {
            return true;
        };
        if matches!(nodes[to].kind, NodeKind::Router(_)) {
            return self.route_walk(to, back, me, lab, segments, tp, "replies");
        }
        let NodeKind::Host(th) = &nodes[to].kind else { return true };
        let tdev = th.interface_of(ip).unwrap_or(0);
        let Some(ti) = th.interfaces.get(tdev) else { return true };
        if ti.addresses.iter().any(|c| c.contains_addr(&back.into())) {
            return true;
        }
        let routes = interface_routes(&th.interfaces, &th.routes, tdev);
        let gateway = routes
            .iter()
            .filter(|(p, _)| p.contains_addr(&back.into()))
            .max_by_key(|(p, _)| p.prefix_len())
            .map(|(_, v)| IpAddr::from(*v));
        let family = if back.is_ipv6() { "IPv6" } else { "IPv4" };
        let Some(gateway) = gateway else {
            if th.interfaces.len() > 1 {
                self.err(
                    tp.clone(),
                    format!(
                        "replies from `{}` to {back} (`{}`) leave by `{}`, the interface of {ip}, which has no route \
                         to it",
                        shown(&nodes[to].name),
                        shown(&nodes[me].name),
                        shown(&ti.name)
                    ),
                    Some(format!(
                        "a host answers by the interface a request came in on: give `{}:{}` an {family} gateway, or \
                         add a route with `\"dev\": \"{}\"`",
                        shown(&nodes[to].name),
                        shown(&ti.name),
                        shown(&ti.name)
                    )),
                );
            } else {
                self.err(
                    tp.clone(),
                    format!(
                        "replies from `{}` cannot reach {back} (`{}`): `{}` has no {family} gateway",
                        shown(&nodes[to].name),
                        shown(&nodes[me].name),
                        shown(&nodes[to].name)
                    ),
                    Some(format!("give `{}` a gateway under its interface's `gateways`", shown(&nodes[to].name))),
                );
            }
            return false;
        };
        match lab.owners.get(&gateway) {
            Some(&g) if matches!(nodes[g].kind, NodeKind::Router(_)) => {
                if segments.of_addr(g, gateway, nodes) != Some(segments.of_iface(to, tdev)) {
                    self.err(
                        tp.clone(),
                        format!(
                            "replies from `{}` go to its gateway {gateway}, which is not on its segment",
                            shown(&nodes[to].name)
                        ),
                        Some("a gateway must be on the host's own link".into()),
                    );
                    return false;
                }
                self.route_walk(g, back, me, lab, segments, tp, "replies")
            }
            _ => true,
        }
    }

    /// Warns of hosts on one segment whose subnets overlap with different prefixes, and of a
    /// segment that joins hosts of different MTUs.
    pub(super) fn segment_warnings(&mut self, nodes: &[Node], links: &[Link], segments: &Segments) {
        self.overlapping_prefixes(nodes, segments);
        self.mixed_mtus(nodes, links, segments);
    }

    fn overlapping_prefixes(&mut self, nodes: &[Node], segments: &Segments) {
        /// One address: its segment, family, network and prefix length, then where it is written.
        type Entry = (usize, bool, u128, u8, usize, usize, usize);
        let mut entries: Vec<Entry> = Vec::new();
        for (n, node) in nodes.iter().enumerate() {
            for (i, iface) in interfaces(node).iter().enumerate() {
                for (k, c) in iface.addresses.iter().enumerate() {
                    let (v6, net, len) = network(*c);
                    entries.push((segments.of_iface(n, i), v6, net, len, n, i, k));
                }
            }
        }
        // By segment and family, then networks in address order, a wider one before those inside it.
        entries.sort_unstable();
        // The networks that hold the current one, widest first: CIDR networks nest or are apart.
        let mut holders: Vec<Entry> = Vec::new();
        let mut last: Option<Entry> = None;
        for e in entries {
            let (seg, v6, net, len, ..) = e;
            if last.is_some_and(|l| (l.0, l.1, l.2, l.3) == (seg, v6, net, len)) {
                continue;
            }
            last = Some(e);
            holders.retain(|h| h.0 == seg && h.1 == v6 && h.3 < len && mask(net, h.3, v6) == h.2);
            if let Some(h) = holders.iter().rev().find(|h| h.4 != e.4) {
                let (a, b) = (&nodes[e.4], &nodes[h.4]);
                let (ai, bi) = (&interfaces(a)[e.5], &interfaces(b)[h.5]);
                let (wide, narrow) = (net_of(bi.addresses[h.6]), net_of(ai.addresses[e.6]));
                let path = JsonPath::root()
                    .key("nodes")
                    .key(&a.name)
                    .key("interfaces")
                    .key(&ai.name)
                    .key("addresses")
                    .index(e.6);
                self.warn(
                    path,
                    format!(
                        "subnet {narrow} of `{}` overlaps {wide} of `{}` on the same segment",
                        shown(&a.name),
                        shown(&b.name)
                    ),
                    Some(format!(
                        "give the hosts of a segment the same prefix: `{}` reaches all of {wide} directly, while \
                         `{}` sends what is outside {narrow} to a gateway",
                        shown(&b.name),
                        shown(&a.name)
                    )),
                );
            }
            holders.push(e);
        }
    }

    fn mixed_mtus(&mut self, nodes: &[Node], links: &[Link], segments: &Segments) {
        // The first switch of each segment, and its first host with that host's MTU.
        let mut switch: HashMap<usize, usize> = HashMap::new();
        for (n, node) in nodes.iter().enumerate() {
            if matches!(node.kind, NodeKind::Switch(_)) {
                switch.entry(segments.of[n]).or_insert(n);
            }
        }
        // `None` once the segment is warned of: one warning a segment.
        let mut first: HashMap<usize, Option<(usize, usize)>> = HashMap::new();
        // Each linked interface: a router's or a multi-homed host's are on segments of their own.
        for (n, node) in nodes.iter().enumerate() {
            for (d, iface) in interfaces(node).iter().enumerate().filter(|(_, i)| i.link.is_some()) {
                let seg = segments.of_iface(n, d);
                let entry = first.entry(seg).or_insert(Some((n, iface.mtu)));
                let Some((f, mtu)) = *entry else { continue };
                if mtu == iface.mtu {
                    continue;
                }
                *entry = None;
                let joins = match switch.get(&seg) {
                    Some(&sw) => format!("switch `{}`", shown(&nodes[sw].name)),
                    None => {
                        let link = iface.link.map_or("", |(l, _)| links[l.index()].name.as_str());
                        format!("link `{}`", shown(link))
                    }
                };
                self.warn(
                JsonPath::root().key("nodes").key(&node.name).key("interfaces").key(&iface.name).key("mtu"),
                format!(
                    "{joins} joins hosts of MTU {mtu} (`{}`) and MTU {} (`{}`)",
                    shown(&nodes[f].name),
                    iface.mtu,
                    shown(&node.name)
                ),
                Some(
                    "a frame longer than the receiving host's MTU is dropped; give the hosts of a segment the same `mtu`"
                        .into(),
                ),
            );
            }
        }
    }
}

/// Family (true for IPv6), network bits and prefix length of an interface address's subnet.
fn network(c: IpCidr) -> (bool, u128, u8) {
    let len = c.prefix_len();
    match IpAddr::from(c.address()) {
        IpAddr::V4(a) => (false, mask(u128::from(u32::from(a)), len, false), len),
        IpAddr::V6(a) => (true, mask(u128::from(a), len, true), len),
    }
}

/// The first `len` bits of an address (of 32 for IPv4, 128 for IPv6).
fn mask(bits: u128, len: u8, v6: bool) -> u128 {
    let width = if v6 { 128 } else { 32 };
    let keep = u32::from(len.min(width));
    if keep == 0 {
        0
    } else {
        bits & (u128::MAX << (u32::from(width) - keep)) & (u128::MAX >> (128 - u32::from(width)))
    }
}

/// The subnet of an interface address, as a CIDR.
fn net_of(c: IpCidr) -> IpCidr {
    let (v6, net, len) = network(c);
    let addr = if v6 {
        IpAddr::from(std::net::Ipv6Addr::from(net))
    } else {
        IpAddr::from(std::net::Ipv4Addr::from(u32::try_from(net).unwrap_or(0)))
    };
    IpCidr::new(addr.into(), len)
}

#[cfg(test)]
mod tests {
    use super::super::load_str;
    use super::*;

    #[test]
    fn sets_join_once() {
        let mut s = Sets::new(5);
        assert!(s.join(0, 1) && s.join(3, 4) && s.join(1, 4));
        assert!(!s.join(0, 3));
        assert_eq!(s.root(0), s.root(4));
        assert_ne!(s.root(0), s.root(2));
    }

    #[test]
    fn networks() {
        assert_eq!(mask(0x0a00_0102, 16, false), 0x0a00_0000);
        assert_eq!(mask(0x0a00_0102, 0, false), 0);
        assert_eq!(mask(0x0a00_0102, 32, false), 0x0a00_0102);
        assert_eq!(mask(u128::MAX, 64, true), u128::MAX << 64);
        assert_eq!(net_of(crate::topology::parse::cidr("10.1.2.3/23").unwrap()).to_string(), "10.1.2.0/23");
    }

    /// `a` on 10.0.0.0/24 and `b` on 10.0.1.0/24 share a switch; `a` reaches `b` through `gw`, a
    /// host of the segment: the check passes (routers are to come), and hosts of the lab that
    /// share a prefix give no warning.
    #[test]
    fn a_gateway_on_the_segment_passes() {
        let text = r#"{ "name": "gw", "nodes": {
            "sw": { "kind": "switch" },
            "a": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.1/24"], "gateways": ["10.0.0.254"] } },
                   "apps": [ { "kind": "ping", "to": "b" } ] },
            "gw": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.254/24"] } } },
            "b": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.1.2/24"] } } } },
          "links": [ { "a": "a:eth0", "b": "sw" }, { "a": "gw:eth0", "b": "sw" }, { "a": "b:eth0", "b": "sw" } ] }"#;
        let lab = load_str(text, "gw.json").unwrap_or_else(|e| panic!("{e}"));
        assert!(lab.warnings.is_empty(), "{:?}", lab.warnings);
        // Without `gw`, the gateway is no host of the segment.
        let text = text.replace(r#"{ "a": "gw:eth0", "b": "sw" }, "#, "");
        let e = load_str(&text, "gw.json").expect_err("gw is not plugged in").to_string();
        assert!(e.contains("through its IPv4 gateway 10.0.0.254, which is no host on its segment"), "{e}");
    }
}
