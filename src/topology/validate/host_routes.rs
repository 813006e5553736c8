//! A host's interfaces and routes: how many it may have, its static routes checked as a router's
//! are (`Cx::routes`) and then as a host's stack holds them, and warnings where an interface's
//! gateway or subnet is not what the host sends by.
//!
//! A host has up to [`limits::INTERFACES_MAX`] interfaces, each its own smoltcp interface on its
//! own link. It sends to an address by the longest prefix among its subnets, its routes and its
//! first gateway of each family; it answers on the interface a request came in on, through that
//! interface's own subnets, routes and gateway. It never forwards between its interfaces.

use smoltcp::wire::IpAddress;

use super::Cx;
use crate::topology::diag::{shown, JsonPath};
use crate::topology::limits;
use crate::topology::model::{interface_routes, Interface, Route};
use crate::topology::spec::RouteSpec;

use super::routes::default_of;

impl Cx {
    /// Reports a host with more interfaces than a host takes.
    pub(super) fn host_interface_count(&mut self, node: &str, n: usize, path: &JsonPath) {
        if n > limits::INTERFACES_MAX {
            self.err(
                path.key("interfaces"),
                format!("host `{}` has {n} interfaces; a host has at most {}", shown(node), limits::INTERFACES_MAX),
                Some("join more links to one interface through a switch, or use a router".into()),
            );
        }
    }

    /// The routes of host `node`, resolved against its interfaces as a router's are (a next hop on
    /// a subnet of the host, `dev` one of its interfaces, one route a prefix), then held to what a
    /// host's stack does: every route has a next hop, and each interface holds at most
    /// [`limits::HOST_IFACE_ROUTES_MAX`] routes. Warns of gateways the host does not send by and of
    /// interfaces whose subnets overlap.
    pub(super) fn host_routes(
        &mut self,
        node: &str,
        specs: &[RouteSpec],
        ifaces: &mut [Interface],
        path: &JsonPath,
    ) -> Vec<Route> {
        let specs = if specs.len() > limits::HOST_ROUTES_MAX {
            self.err(
                path.key("routes"),
                format!("{} routes; a host takes at most {}", specs.len(), limits::HOST_ROUTES_MAX),
                Some("summarise routes into wider prefixes, or route through a router".into()),
            );
            &specs[..limits::HOST_ROUTES_MAX]
        } else {
            specs
        };
        let mut out = self.routes(node, specs, ifaces, path);
        // smoltcp sends straight only to the subnets of an interface: a route needs a next hop.
        for (k, r) in specs.iter().enumerate() {
            if let (None, Some(dev)) = (&r.via, &r.dev) {
                if ifaces.iter().any(|i| i.name == *dev) {
                    self.err(
                        path.key("routes").index(k),
                        format!("a route of host `{}` needs `via`, a next hop", shown(node)),
                        Some(format!(
                            "a host sends straight only to the subnets of its interfaces; add `\"via\"`, a router \
                             on the link of `{}`, or give that interface an address on the subnet",
                            shown(dev)
                        )),
                    );
                }
            }
        }
        out.retain(|r| r.via.is_some());
        for (d, i) in ifaces.iter().enumerate() {
            let n = interface_routes(ifaces, &out, d).len();
            if n > limits::HOST_IFACE_ROUTES_MAX {
                self.err(
                    path.key("routes"),
                    format!(
                        "interface `{}` of `{}` holds {n} routes (its gateways count too); an interface of a host \
                         holds at most {}",
                        shown(&i.name),
                        shown(node),
                        limits::HOST_IFACE_ROUTES_MAX
                    ),
                    Some("summarise routes into wider prefixes, or route through a router".into()),
                );
            }
        }
        self.unused_gateways(node, ifaces, &out, path);
        self.overlapping_interfaces(node, ifaces, path);
        out
    }

    /// Warns of an interface's gateway that is not the host's default route: it carries only the
    /// replies that leave by its interface, or, when a `default` route leaves by the same
    /// interface, nothing.
    fn unused_gateways(&mut self, node: &str, ifaces: &[Interface], routes: &[Route], path: &JsonPath) {
        for (d, i) in ifaces.iter().enumerate() {
            let gws = [i.gateway_v4.map(IpAddress::Ipv4), i.gateway_v6.map(IpAddress::Ipv6)];
            for g in gws.into_iter().flatten() {
                let v6 = matches!(g, IpAddress::Ipv6(_));
                let Some(def) = routes.iter().find(|r| r.to == default_of(v6)) else { continue };
                if def.dev == d && def.via == Some(g) {
                    continue;
                }
                let family = if v6 { "IPv6" } else { "IPv4" };
                let via = def.via.map_or_else(String::new, |v| format!(" via {v}"));
                let dev = shown(&ifaces[def.dev].name);
                let (message, hint) = if def.dev == d {
                    (
                        format!(
                            "gateway {g} of `{}` is never used: a `default` route leaves by it{via}",
                            shown(&i.name)
                        ),
                        "remove the gateway or the route".to_string(),
                    )
                } else {
                    (
                        format!(
                            "the {family} default route of `{}` goes{via} by `{dev}`; gateway {g} of `{}` carries only \
                             the replies `{}` sends",
                            shown(node),
                            shown(&i.name),
                            shown(&i.name)
                        ),
                        format!(
                            "a host's default route is its first gateway of each family; to send by `{}`, write \
                             that interface first or add `{{ \"to\": \"default\", \"via\": \"{g}\" }}` to its `routes`",
                            shown(&i.name)
                        ),
                    )
                };
                self.warn(path.key("interfaces").key(&i.name).key("gateways"), message, Some(hint));
            }
        }
    }

    /// Warns of two interfaces of one host with overlapping subnets: the host sends to the
    /// overlap by one of them only.
    fn overlapping_interfaces(&mut self, node: &str, ifaces: &[Interface], path: &JsonPath) {
        for (d, i) in ifaces.iter().enumerate() {
            for (k, c) in i.addresses.iter().enumerate() {
                let net = crate::sim::router::network(*c);
                let earlier = ifaces[..d].iter().find_map(|o| {
                    o.addresses
                        .iter()
                        .map(|x| crate::sim::router::network(*x))
                        .find(|x| x.contains_subnet(&net) || net.contains_subnet(x))
                        .map(|x| (o, x))
                });
                if let Some((o, x)) = earlier {
                    self.warn(
                        path.key("interfaces").key(&i.name).key("addresses").index(k),
                        format!(
                            "subnet {net} of `{}:{}` overlaps {x} of its `{}`",
                            shown(node),
                            shown(&i.name),
                            shown(&o.name)
                        ),
                        Some(format!(
                            "a host sends to an address by the longest prefix, its first interface among equals; \
                             give each interface of `{}` its own subnet",
                            shown(node)
                        )),
                    );
                }
            }
        }
    }
}

impl Cx {
    /// Whether packets for `ip`, an address of host `to`, that a router hands to `to` at `next`
    /// (another of its addresses) are taken: a host takes on each interface only the packets for
    /// that interface's addresses, and does not forward between its interfaces.
    pub(super) fn arrives_on_its_interface(
        &mut self,
        to: usize,
        next: std::net::IpAddr,
        ip: std::net::IpAddr,
        lab: &super::targets::LabView<'_>,
        tp: &JsonPath,
        what: &str,
    ) -> bool {
        let node = &lab.nodes[to];
        let crate::topology::model::NodeKind::Host(h) = &node.kind else { return true };
        if h.exit.is_some() && h.interface_of(ip).is_none() {
            // An exit gateway takes the flows it lets out on any interface.
            return true;
        }
        let (at, of) = (h.interface_of(next), h.interface_of(ip));
        if at == of {
            return true;
        }
        let name = |d: Option<usize>| d.and_then(|d| h.interfaces.get(d)).map_or("?", |i| i.name.as_str());
        self.err(
            tp.clone(),
            format!(
                "{what} to {ip} reach `{}` at {next}, on `{}`, but {ip} is an address of its `{}`",
                shown(&node.name),
                shown(name(at)),
                shown(name(of))
            ),
            Some(format!(
                "a host takes on each interface only the packets for that interface's addresses, and does not \
                 forward between them; route {ip} to the link of `{}:{}`, or target {next}",
                shown(&node.name),
                shown(name(of))
            )),
        );
        false
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use smoltcp::wire::IpAddress;

    use super::super::load_str;
    use crate::topology::model::{interface_routes, HostRoute, NodeKind};

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    /// A host's table: its subnets, its routes, then its first gateway; each interface's stack
    /// holds the routes that leave by it and its own gateway.
    #[test]
    fn a_host_routes_by_longest_prefix_and_each_interface_holds_its_own() {
        let text = r#"{ "name": "t", "nodes": {
            "h": { "kind": "host",
                   "interfaces": { "eth0": { "addresses": ["10.1.0.10/24"], "gateways": ["10.1.0.1"] },
                                   "eth1": { "addresses": ["10.2.0.10/24", "fd00:2::10/64"], "gateways": ["10.2.0.1", "fd00:2::1"] } },
                   "routes": [ { "to": "10.9.0.0/16", "via": "10.2.0.1" },
                               { "to": "10.9.9.0/24", "via": "10.1.0.2", "dev": "eth0" },
                               { "to": "10.2.0.128/25", "via": "10.1.0.3" } ] } } }"#;
        let lab = load_str(text, "t.json").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(lab.warnings.len(), 1, "eth1's IPv4 gateway is not the default: {:?}", lab.warnings);
        let NodeKind::Host(h) = &lab.nodes[0].kind else { panic!("a host") };
        let via = |s: &str| Some(IpAddress::from(ip(s)));
        for (to, dev, next) in [
            ("10.1.0.77", 0, None),
            ("10.2.0.77", 1, None),
            // A route's longer prefix wins over a subnet of its own.
            ("10.2.0.200", 0, via("10.1.0.3")),
            ("10.9.1.1", 1, via("10.2.0.1")),
            ("10.9.9.9", 0, via("10.1.0.2")),
            // The first gateway is the default route; IPv6 has one on eth1 only.
            ("192.0.2.1", 0, via("10.1.0.1")),
            ("2001:db8::1", 1, via("fd00:2::1")),
        ] {
            assert_eq!(h.route(ip(to)), Some(HostRoute { dev, via: next }), "{to}");
        }
        assert_eq!(h.interface_of(ip("fd00:2::10")), Some(1));
        let held = |d: usize| -> Vec<String> {
            interface_routes(&h.interfaces, &h.routes, d).iter().map(|(to, v)| format!("{to} via {v}")).collect()
        };
        assert_eq!(held(0), ["10.9.9.0/24 via 10.1.0.2", "10.2.0.128/25 via 10.1.0.3", "0.0.0.0/0 via 10.1.0.1"]);
        // eth1 keeps its own IPv4 gateway for what leaves by it.
        assert_eq!(held(1), ["10.9.0.0/16 via 10.2.0.1", "::/0 via fd00:2::1", "0.0.0.0/0 via 10.2.0.1"]);
    }
}
