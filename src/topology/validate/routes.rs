//! Routes: a router's static routes resolved against its interfaces, and the path a packet takes
//! from a host to an address through gateways and routers, followed hop by hop so that `check`
//! names the hop where it breaks (no route, a next hop on no link, a loop between routers).

use std::net::IpAddr;

use smoltcp::wire::{IpAddress, IpCidr};

use super::segments::Segments;
use super::targets::LabView;
use super::Cx;
use crate::topology::diag::{did_you_mean, shown, JsonPath};
use crate::topology::limits;
use crate::topology::model::{Interface, Node, NodeKind, Route};
use crate::topology::spec::RouteSpec;

/// A prefix as a route writes it: `10.1.0.0/16`, `fd00::/48`, or `default` (`None`: both families).
pub(super) fn prefix(s: &str) -> Result<IpCidr, String> {
    let s = s.trim();
    let Some((addr, len)) = s.split_once('/') else {
        return Err(format!("`{}` is not a prefix", shown(s)));
    };
    let (ip, len) = crate::topology::parse::address_and_length(addr, len)?;
    let c = IpCidr::new(IpAddress::from(ip), len);
    let net = crate::sim::router::network(c);
    if net != c {
        return Err(format!("`{}` has host bits set; the prefix is `{net}`", shown(s)));
    }
    Ok(c)
}

fn same_family(a: IpAddress, b: IpAddress) -> bool {
    matches!((a, b), (IpAddress::Ipv4(_), IpAddress::Ipv4(_)) | (IpAddress::Ipv6(_), IpAddress::Ipv6(_)))
}

/// The default route's prefix of a family: `0.0.0.0/0` or `::/0`.
pub(super) fn default_of(v6: bool) -> IpCidr {
    if v6 {
        IpCidr::new(IpAddress::Ipv6(std::net::Ipv6Addr::UNSPECIFIED), 0)
    } else {
        IpCidr::new(IpAddress::Ipv4(std::net::Ipv4Addr::UNSPECIFIED), 0)
    }
}

impl Cx {
    /// The static routes of router `node`, resolved against its interfaces; an interface's
    /// `gateways` add default routes too.
    pub(super) fn routes(
        &mut self,
        node: &str,
        specs: &[RouteSpec],
        ifaces: &mut [Interface],
        path: &JsonPath,
    ) -> Vec<Route> {
        let mut out: Vec<Route> = Vec::new();
        if specs.len() > limits::ROUTES_MAX {
            self.err(
                path.key("routes"),
                format!("{} routes; a router takes at most {}", specs.len(), limits::ROUTES_MAX),
                Some("summarise routes into wider prefixes".into()),
            );
        }
        let names: Vec<&str> = ifaces.iter().map(|i| i.name.as_str()).collect();
        for (k, r) in specs.iter().enumerate() {
            let p = path.key("routes").index(k);
            let to = if r.to.trim() == "default" {
                Ok(None)
            } else {
                prefix(&r.to).map(Some).map_err(|e| {
                    self.err(
                        p.key("to"),
                        e,
                        Some("write a prefix such as `10.2.0.0/24` or `fd00:2::/64`, or `default`".into()),
                    );
                })
            };
            let via = match r.via.as_deref().map(|v| v.trim().parse::<IpAddr>()) {
                None => Ok(None),
                Some(Ok(ip)) => Ok(Some(IpAddress::from(ip))),
                Some(Err(_)) => {
                    self.err(
                        p.key("via"),
                        format!("`{}` is not an IP address", shown(r.via.as_deref().unwrap_or(""))),
                        Some("the next hop is a bare address such as `10.1.0.2`".into()),
                    );
                    Err(())
                }
            };
            let dev = match r.dev.as_deref() {
                None => Ok(None),
                Some(d) => match names.iter().position(|n| *n == d) {
                    Some(i) => Ok(Some(i)),
                    None => {
                        let hint = did_you_mean(d, names.iter().copied())
                            .or_else(|| Some(format!("`{}` has interfaces: {}", shown(node), names.join(", "))));
                        self.err(p.key("dev"), format!("`{}` is no interface of `{}`", shown(d), shown(node)), hint);
                        Err(())
                    }
                },
            };
            let (Ok(to), Ok(via), Ok(dev)) = (to, via, dev) else { continue };
            if via.is_none() && dev.is_none() {
                self.err(
                    p.clone(),
                    "a route needs `via` (a next hop) or `dev` (an interface)",
                    Some("such as `{ \"to\": \"10.3.0.0/24\", \"via\": \"10.2.0.2\" }`".into()),
                );
                continue;
            }
            if let (Some(to), Some(via)) = (to, via) {
                if !same_family(to.address(), via) {
                    self.err(
                        p.key("via"),
                        format!("next hop {via} is not of the family of {to}"),
                        Some("an IPv4 prefix takes an IPv4 next hop, an IPv6 prefix an IPv6 one".into()),
                    );
                    continue;
                }
            }
            // The interface: the one named, or the one whose subnet holds the next hop.
            let dev = match (via, dev) {
                (Some(via), dev) => {
                    let on = |i: &Interface| i.addresses.iter().any(|c| c.contains_addr(&via));
                    if ifaces.iter().any(|i| i.addresses.iter().any(|c| c.address() == via)) {
                        self.err(
                            p.key("via"),
                            format!("next hop {via} is an address of `{}` itself", shown(node)),
                            Some("the next hop is another router's or host's address on a shared subnet".into()),
                        );
                        continue;
                    }
                    match dev {
                        Some(d) if on(&ifaces[d]) => d,
                        Some(d) => {
                            self.err(
                                p.key("via"),
                                format!("next hop {via} is on no subnet of interface `{}`", shown(&ifaces[d].name)),
                                Some(
                                    "the next hop must be on the link of `dev`; leave `dev` out to pick it by subnet"
                                        .into(),
                                ),
                            );
                            continue;
                        }
                        None => match ifaces.iter().position(on) {
                            Some(d) => d,
                            None => {
                                let subnets: Vec<String> = ifaces
                                    .iter()
                                    .flat_map(|i| &i.addresses)
                                    .map(|c| crate::sim::router::network(*c).to_string())
                                    .collect();
                                self.err(
                                    p.key("via"),
                                    format!("next hop {via} is on no subnet of `{}`", shown(node)),
                                    Some(if subnets.is_empty() {
                                        "give the router's interfaces addresses".into()
                                    } else {
                                        format!(
                                            "a next hop must be on-link; `{}` has {}",
                                            shown(node),
                                            subnets.join(", ")
                                        )
                                    }),
                                );
                                continue;
                            }
                        },
                    }
                }
                (None, Some(d)) => d,
                (None, None) => continue,
            };
            let tos: Vec<IpCidr> = match (to, via) {
                (Some(t), _) => vec![t],
                (None, Some(v)) => vec![default_of(matches!(v, IpAddress::Ipv6(_)))],
                (None, None) => vec![default_of(false), default_of(true)],
            };
            for to in tos {
                if out.iter().any(|o| o.to == to) {
                    self.err(
                        p.key("to"),
                        format!("a second route to {to}"),
                        Some("give each prefix one route; remove one of them".into()),
                    );
                    continue;
                }
                out.push(Route { to, via, dev });
            }
        }
        // Gateways of a router's interfaces are default routes, unless a route says otherwise.
        for (d, i) in ifaces.iter().enumerate() {
            let gws = [i.gateway_v4.map(IpAddress::Ipv4), i.gateway_v6.map(IpAddress::Ipv6)];
            for g in gws.into_iter().flatten() {
                let to = default_of(matches!(g, IpAddress::Ipv6(_)));
                if !out.iter().any(|o| o.to == to) {
                    out.push(Route { to, via: Some(g), dev: d });
                }
            }
        }
        out
    }

    /// Follows `ip` from router `r` (reached on its interface `at`) to its owner `to`, hop by hop.
    /// Reports at `tp` where the path breaks; `what` says whose packets these are.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn route_walk(
        &mut self,
        mut r: usize,
        ip: IpAddr,
        to: usize,
        lab: &LabView<'_>,
        segments: &Segments,
        tp: &JsonPath,
        what: &str,
    ) -> bool {
        let nodes = lab.nodes;
        let target = IpAddress::from(ip);
        let mut visited: Vec<usize> = Vec::new();
        loop {
            if let Some(at) = visited.iter().position(|v| *v == r) {
                let cycle: Vec<String> =
                    visited[at..].iter().chain([&r]).map(|n| format!("`{}`", shown(&nodes[*n].name))).collect();
                self.err(
                    tp.clone(),
                    format!("{what} to {ip} loop between routers: {}", cycle.join(" → ")),
                    Some(format!(
                        "the static routes of `{}` send {ip} back the way it came; point one of them at a router nearer \
                         the destination",
                        shown(&nodes[r].name)
                    )),
                );
                return false;
            }
            visited.push(r);
            let NodeKind::Router(router) = &nodes[r].kind else { return true };
            let name = shown(&nodes[r].name);
            // Longest prefix: connected routes first among equals.
            let mut best: Option<(u8, bool, usize, Option<IpAddress>)> = None;
            for (d, i) in router.interfaces.iter().enumerate() {
                for c in &i.addresses {
                    if c.contains_addr(&target) && best.is_none_or(|b| c.prefix_len() > b.0) {
                        best = Some((c.prefix_len(), true, d, None));
                    }
                }
            }
            for rt in &router.routes {
                if rt.to.contains_addr(&target) && best.is_none_or(|b| rt.to.prefix_len() > b.0) {
                    best = Some((rt.to.prefix_len(), false, rt.dev, rt.via));
                }
            }
            let Some((_, _, dev, via)) = best else {
                self.err(
                    tp.clone(),
                    format!("{what} to {ip} reach router `{name}`, which has no route to it"),
                    Some(format!("add a route to `{name}`: `{{ \"to\": \"<prefix of {ip}>\", \"via\": \"<next hop>\" }}`, or a `default` route")),
                );
                return false;
            };
            let iface = &router.interfaces[dev];
            let seg = segments.of_iface(r, dev);
            match via {
                None => {
                    // On-link: the destination must be on that interface's link.
                    if segments.of_addr(to, ip, nodes) == Some(seg) {
                        return true;
                    }
                    self.err(
                        tp.clone(),
                        format!(
                            "{what} to {ip} leave router `{name}` by `{}`, but `{}` is not on that link",
                            shown(&iface.name),
                            shown(&nodes[to].name)
                        ),
                        Some(format!(
                            "plug `{}` into the link of `{name}:{}`, or fix the route",
                            shown(&nodes[to].name),
                            shown(&iface.name)
                        )),
                    );
                    return false;
                }
                Some(next) => {
                    let next_ip = IpAddr::from(next);
                    let owner = lab.owners.get(&next_ip).copied();
                    let on_link = owner.and_then(|o| segments.of_addr(o, next_ip, nodes)) == Some(seg);
                    let Some(o) = owner.filter(|_| on_link) else {
                        self.err(
                            tp.clone(),
                            format!(
                                "{what} to {ip} go from router `{name}` to next hop {next}, which {}",
                                if owner.is_some() { "is not on the link of that interface" } else { "no node has" }
                            ),
                            Some("a next hop must be an address of a router or host on the same link".into()),
                        );
                        return false;
                    };
                    if o == to {
                        return self.arrives_on_its_interface(to, next_ip, ip, lab, tp, what);
                    }
                    match nodes[o].kind {
                        NodeKind::Router(_) => r = o,
                        _ => {
                            self.err(
                                tp.clone(),
                                format!(
                                    "{what} to {ip} go from router `{name}` to {next}, host `{}`, which does not forward",
                                    shown(&nodes[o].name)
                                ),
                                Some("a next hop that forwards must be a router".into()),
                            );
                            return false;
                        }
                    }
                }
            }
        }
    }
}

/// The interfaces of a host or router.
pub(super) fn interfaces(n: &Node) -> &[Interface] {
    n.kind.interfaces()
}
