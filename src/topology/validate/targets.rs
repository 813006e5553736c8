//! What an app means once the lab is known: its target (`to`) resolved to an address the app's
//! host can reach, and its counts, sizes and times checked.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use smoltcp::wire::IpCidr;

use super::interfaces::host_addrs;
use super::segments::Segments;
use super::{Cx, Status};
use crate::topology::diag::{listing, shown, JsonPath, Suggestions};
use crate::topology::model::{AppKind, Node, NodeKind};
use crate::topology::parse;
use crate::topology::spec::{AppSpec, ByteSize, Family};

/// What an app target is resolved against.
pub(super) struct LabView<'a> {
    pub(super) nodes: &'a [Node],
    pub(super) status: &'a [Status],
    pub(super) by_name: &'a BTreeMap<&'a str, usize>,
    /// Hosts offered in hints: those whose names are valid.
    pub(super) hosts: &'a Suggestions<'a>,
    /// The host of every accepted address.
    pub(super) owners: &'a HashMap<IpAddr, usize>,
    /// The segments, once every node and link is known.
    pub(super) segments: Option<&'a Segments>,
}

impl LabView<'_> {
    /// The host of every accepted address of `nodes`.
    pub(super) fn owners(nodes: &[Node]) -> HashMap<IpAddr, usize> {
        let mut owners = HashMap::new();
        for (i, n) in nodes.iter().enumerate() {
            for c in host_addrs(n) {
                owners.entry(IpAddr::from(c.address())).or_insert(i);
            }
        }
        owners
    }

    /// The first exit gateway of the lab, if it has one.
    pub(super) fn any_exit(&self) -> Option<usize> {
        self.nodes.iter().position(|n| matches!(&n.kind, NodeKind::Host(h) if h.exit.is_some()))
    }

    /// The exit gateway that lets `ip` out of the lab, when no node has the address.
    pub(super) fn exit_for(&self, ip: IpAddr) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| matches!(&n.kind, NodeKind::Host(h) if h.exit.as_ref().is_some_and(|e| e.allows(ip))))
    }
}

impl Cx {
    pub(super) fn resolve_app(
        &mut self,
        a: &AppSpec,
        me: usize,
        lab: &LabView<'_>,
        path: &JsonPath,
    ) -> Option<(Duration, AppKind)> {
        let secs = |n: u64| Duration::from_secs(n);
        let start = |cx: &mut Cx, s: &Option<String>| cx.duration(s.as_ref(), Duration::ZERO, path, "start");
        let positive = |cx: &mut Cx, v: Option<u32>, key: &str, dflt: u32, max: u32| -> u32 {
            let v = v.unwrap_or(dflt);
            if v == 0 || v > max {
                cx.err(path.key(key), format!("`{key}` must be 1 to {max}, not {v}"), None);
            }
            v.clamp(1, max)
        };
        let port = |cx: &mut Cx, p: u16| {
            if p == 0 {
                cx.err(path.key("port"), "port 0 cannot be listened on", Some("use 1 to 65535".into()));
            }
            p
        };
        if let Some(more) = self.resolve_more_app(a, me, lab, path) {
            return more;
        }
        let kind = match a {
            AppSpec::Ping(p) => {
                let st = start(self, &p.start);
                let to = self.target(&p.to, p.family, false, "ping", me, lab, path);
                let count = positive(self, p.count, "count", 4, 1_000_000);
                let size = p.size.unwrap_or(56) as usize;
                let interval = self.duration(p.interval.as_ref(), secs(1), path, "interval");
                let timeout = self.duration(p.timeout.as_ref(), secs(1), path, "timeout");
                let to = to?.0;
                self.fits_mtu(me, lab, size, to, path, "ping payload");
                (st, AppKind::Ping { to, count, interval, size, timeout })
            }
            AppSpec::TcpEchoServer(s) => (start(self, &s.start), AppKind::TcpEchoServer { port: port(self, s.port) }),
            AppSpec::UdpEchoServer(s) => (start(self, &s.start), AppKind::UdpEchoServer { port: port(self, s.port) }),
            AppSpec::TcpSink(s) => (start(self, &s.start), AppKind::TcpSink { port: port(self, s.port) }),
            AppSpec::TcpEcho(e) | AppSpec::UdpEcho(e) => {
                let udp = matches!(a, AppSpec::UdpEcho(_));
                let st = start(self, &e.start);
                let to = self.target(&e.to, e.family, true, if udp { "udp-echo" } else { "tcp-echo" }, me, lab, path);
                let count = positive(self, e.count, "count", 10, 1_000_000);
                let problems = self.problems.len();
                let size = positive(self, e.size, "size", 64, if udp { 9000 } else { 65_536 }) as usize;
                // A size out of range is reported already; its MTU check would be about another number.
                let size_ok = self.problems.len() == problems;
                let interval = self.duration(
                    e.interval.as_ref(),
                    if udp { Duration::from_millis(100) } else { Duration::ZERO },
                    path,
                    "interval",
                );
                let timeout = self.duration(e.timeout.as_ref(), secs(1), path, "timeout");
                let (ip, p) = to?;
                let to = (ip, p.unwrap_or(7));
                if udp && size_ok {
                    self.fits_mtu(me, lab, size, ip, path, "datagram");
                }
                if udp {
                    (st, AppKind::UdpEcho { to, count, size, interval, timeout })
                } else {
                    (st, AppKind::TcpEcho { to, count, size, interval, timeout })
                }
            }
            AppSpec::TcpTransfer(t) => {
                let st = start(self, &t.start);
                let to = self.target(&t.to, t.family, true, "tcp-transfer", me, lab, path);
                let bytes = match &t.bytes {
                    ByteSize::Bytes(n) => Ok(*n),
                    ByteSize::Text(s) => parse::bytes(s),
                };
                let bytes = match bytes {
                    Ok(0) => {
                        self.err(
                            path.key("bytes"),
                            "a transfer of 0 bytes sends nothing",
                            Some("such as `16MiB`".into()),
                        );
                        0
                    }
                    Ok(n) => n,
                    Err(e) => {
                        self.err(path.key("bytes"), e, Some("such as `16MiB`".into()));
                        0
                    }
                };
                let (ip, p) = to?;
                (st, AppKind::TcpTransfer { to: (ip, p.unwrap_or(9)), bytes })
            }
            // Resolved above.
            AppSpec::HttpServer(_)
            | AppSpec::HttpGet(_)
            | AppSpec::UdpStream(_)
            | AppSpec::UdpStreamServer(_)
            | AppSpec::Traceroute(_) => return None,
        };
        Some(kind)
    }

    /// Resolves an app's `to` to an address (and the port written, if any) that the app's host,
    /// `me`, can send to.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn target(
        &mut self,
        to: &str,
        family: Option<Family>,
        want_port: bool,
        app: &str,
        me: usize,
        lab: &LabView<'_>,
        path: &JsonPath,
    ) -> Option<(IpAddr, Option<u16>)> {
        let nodes = lab.nodes;
        let tp = path.key("to");
        let hosts = lab.hosts.candidates();
        // The port a hint shows: the usual one of the app's server.
        let port_eg = match app {
            "http-get" => 80,
            "udp-stream" => 5001,
            _ => 7,
        };
        let example = match (hosts.iter().find(|h| **h != nodes[me].name), want_port) {
            (Some(h), true) => format!("`{}:{port_eg}`", shown(h)),
            (Some(h), false) => format!("`{}`", shown(h)),
            (None, true) => format!("`server:{port_eg}`"),
            (None, false) => "`server`".to_string(),
        };
        let t = match parse::target(to) {
            Ok(t) => t,
            // A node whose name breaks the rule is reported at the node; naming it is no second mistake.
            Err(_) if names_misnamed_node(to, lab) => return None,
            Err(e) => {
                let hint = if want_port {
                    format!("write `node:port` or `address:port`, such as {example}")
                } else {
                    format!("write a node name or an address, such as {example}")
                };
                self.err(tp, e, Some(hint));
                return None;
            }
        };
        // Whether a port is written does not depend on what the target resolves to.
        let (port, bare) = match &t {
            parse::Target::Addr(ip, port) => (*port, ip.to_string()),
            parse::Target::Node(name, port) => (*port, name.clone()),
        };
        let mut port_ok = true;
        if want_port && port.is_none() {
            let in_lab = |ip: IpAddr| lab.owners.contains_key(&ip);
            let hint = match &t {
                // `fd00::2:7` is a whole IPv6 address; if the lab has `fd00::2`, `:7` was meant
                // as the port. Either way the address is not looked up again below.
                parse::Target::Addr(IpAddr::V6(v6), _) if !in_lab(IpAddr::V6(*v6)) => {
                    let meant = bare.rsplit_once(':').and_then(|(head, last)| {
                        let ip: IpAddr = head.parse().ok()?;
                        (in_lab(ip) && last.parse::<u16>().is_ok()).then(|| format!("[{head}]:{last}"))
                    });
                    let hint = meant.map_or_else(
                        || format!("an IPv6 address with a port is written `[{bare}]:{port_eg}`"),
                        |m| format!("an IPv6 address with a port is written in brackets: `{m}`"),
                    );
                    self.err(tp.clone(), format!("`{}` has no port", shown(to)), Some(hint));
                    return None;
                }
                parse::Target::Addr(IpAddr::V6(_), _) => format!("write `[{bare}]:{port_eg}`"),
                _ => format!("write `{}:{port_eg}`", shown(&bare)),
            };
            self.err(tp.clone(), format!("`{}` has no port", shown(to)), Some(hint));
            port_ok = false;
        }
        if !want_port && port.is_some() {
            self.err(
                tp.clone(),
                format!("`{}` has a port, which {app} does not use", shown(to)),
                Some(format!("write just `{}`", shown(&bare))),
            );
            port_ok = false;
        }
        let (ip, owner) = match t {
            parse::Target::Addr(ip, _) => {
                if let Some(f) = family {
                    if (f == Family::Ipv6) != ip.is_ipv6() {
                        self.err(
                            path.key("family"),
                            format!(
                                "`family` says {} but `to` is the {} address {ip}",
                                if f == Family::Ipv6 { "ipv6" } else { "ipv4" },
                                if ip.is_ipv6() { "IPv6" } else { "IPv4" }
                            ),
                            Some("`family` only chooses among a node's addresses; leave it out with an address".into()),
                        );
                        return None;
                    }
                }
                let refused_exit = lab.owners.get(&ip).is_none() && lab.exit_for(ip).is_none();
                let gateway = refused_exit.then(|| lab.any_exit()).flatten();
                if let Some(g) = gateway {
                    // Packets to it may well reach a gateway, which refuses them: that is worth
                    // running (to see the refusal), and worth a warning.
                    let allow = match &nodes[g].kind {
                        NodeKind::Host(h) => h.exit.as_ref().map_or_else(String::new, |e| {
                            e.allow.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                        }),
                        _ => String::new(),
                    };
                    self.warn(
                        tp.clone(),
                        format!("no host in the lab has address {ip}, and exit gateway `{}` does not let it out", shown(&nodes[g].name)),
                        Some(if allow.is_empty() {
                            format!("its `exit.allow` is empty: flows to {ip} will be refused; add a prefix of {ip} to let them out")
                        } else {
                            format!("it allows {allow}: flows to {ip} will be refused; add a prefix of {ip} to `exit.allow` to let them out")
                        }),
                    );
                }
                let Some(owner) = lab.owners.get(&ip).copied().or_else(|| lab.exit_for(ip)).or(gateway) else {
                    if !self.unaccepted_ips.contains(&ip) {
                        self.err(
                            tp,
                            format!("no host in the lab has address {ip}"),
                            Some(format!("use an address of a host, or name a node instead, such as {example}")),
                        );
                    }
                    return None;
                };
                (ip, owner)
            }
            parse::Target::Node(name, _) => {
                let Some(&idx) = lab.by_name.get(name.as_str()) else {
                    let hint = lab
                        .hosts
                        .did_you_mean(&name)
                        .or_else(|| (!hosts.is_empty()).then(|| format!("hosts: {}", listing(hosts.iter().copied()))));
                    self.err(tp, format!("target `{}` names no node", shown(&name)), hint);
                    return None;
                };
                let n = &nodes[idx];
                if lab.status[idx] == Status::Broken {
                    // The node itself is reported.
                    return None;
                }
                if matches!(n.kind, NodeKind::Switch(_)) {
                    let hint =
                        (!hosts.is_empty()).then(|| format!("a target is a host: {}", listing(hosts.iter().copied())));
                    self.err(tp, format!("target `{}` is a switch; it has no address", shown(&name)), hint);
                    return None;
                }
                // An address the app's host can reach first, then IPv4 before IPv6, then a
                // global address before a link-local one (`fe80::/10`, which needs a scope).
                let mut addrs: Vec<IpCidr> = host_addrs(n)
                    .filter(|c| family.is_none_or(|f| matches!(c, IpCidr::Ipv6(_)) == (f == Family::Ipv6)))
                    .collect();
                addrs.sort_by_key(|c| {
                    let ip = IpAddr::from(c.address());
                    let link_local = matches!(c, IpCidr::Ipv6(c6) if c6.address().is_unicast_link_local());
                    (!reachable(&nodes[me], ip), ip.is_ipv6(), link_local)
                });
                let pick = addrs.first().copied();
                let Some(c) = pick else {
                    if lab.status[idx] == Status::Incomplete {
                        // One of its addresses or interfaces is reported already.
                        return None;
                    }
                    let fam = match family {
                        None => "IP",
                        Some(Family::Ipv4) => "IPv4",
                        Some(Family::Ipv6) => "IPv6",
                    };
                    let hint = if family.is_some() {
                        "add one to its interface, or change `family`"
                    } else {
                        "add one to its interface"
                    };
                    self.err(tp, format!("`{}` has no {fam} address", shown(&name)), Some(hint.into()));
                    return None;
                };
                (IpAddr::from(c.address()), idx)
            }
        };
        if !port_ok {
            return None;
        }
        // The source must be able to reach that family at all.
        if !host_addrs(&nodes[me]).any(|c| IpAddr::from(c.address()).is_ipv6() == ip.is_ipv6())
            && lab.status[me] == Status::Complete
        {
            self.err(
                tp,
                format!(
                    "`{}` has no {} address to reach {ip} from",
                    shown(&nodes[me].name),
                    if ip.is_ipv6() { "IPv6" } else { "IPv4" }
                ),
                Some(if family.is_some() {
                    "add one to its interface, or change `family`".into()
                } else {
                    "add one to its interface".into()
                }),
            );
            return None;
        }
        if lab.status[me] == Status::Complete {
            let me_name = &nodes[me].name;
            if host_addrs(&nodes[me]).any(|c| IpAddr::from(c.address()) == ip) {
                self.err(
                    tp,
                    format!("{ip} is an address of `{}` itself", shown(me_name)),
                    Some("a netlab host does not send to itself; target another host".into()),
                );
                return None;
            }
            if !reachable(&nodes[me], ip) {
                let fam = if ip.is_ipv6() { "IPv6" } else { "IPv4" };
                let routes =
                    matches!(&nodes[me].kind, NodeKind::Host(h) if h.routes.iter().any(|r| r.to.prefix_len() > 0));
                let or_route = if routes { " or route to it" } else { "" };
                self.err(
                    tp,
                    format!("{ip} is on no subnet of `{}`, which has no {fam} gateway{or_route}", shown(me_name)),
                    Some(
                        "target a host on one of its subnets, or set a gateway under the interface's `gateways`".into(),
                    ),
                );
                return None;
            }
        }
        if let Some(segments) = lab.segments {
            if !self.reaches(me, owner, ip, lab, segments, &tp) {
                return None;
            }
        }
        Some((ip, port))
    }
}

/// Whether `to` names a node whose name is not valid (`my host`, or `lab:pc:7` with a port), which
/// cannot parse as a target.
fn names_misnamed_node(to: &str, lab: &LabView<'_>) -> bool {
    let misnamed = |name: &str| !parse::valid_name(name) && lab.by_name.contains_key(name);
    let to = to.trim();
    misnamed(to) || to.rsplit_once(':').is_some_and(|(name, port)| port.parse::<u16>().is_ok() && misnamed(name))
}

/// Whether `node` can send to `ip`: it is on one of its subnets, or the node has a route to it (a
/// gateway of its family is a default route).
fn reachable(node: &Node, ip: IpAddr) -> bool {
    let NodeKind::Host(h) = &node.kind else { return false };
    h.route(ip).is_some()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::load_str;
    use super::super::tests::two_site;
    use crate::topology::model::{AppKind, NodeKind};

    #[test]
    fn targets_resolve_to_addresses_by_family() {
        let lab = two_site();
        let NodeKind::Host(h) = &lab.node_by_name("laptop").unwrap().kind else { panic!() };
        let to: Vec<String> = h
            .apps
            .iter()
            .map(|a| match &a.kind {
                AppKind::Ping { to, .. } => to.to_string(),
                AppKind::TcpTransfer { to, bytes } => format!("{}:{} {bytes}", to.0, to.1),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(to, ["10.10.2.10", "fd00:10:2::10", "10.10.2.10:9 2097152"]);
        assert_eq!(h.apps[1].start, Duration::from_secs(1));
        assert_eq!(h.apps[0].label, "laptop/ping");
    }

    #[test]
    fn a_node_target_prefers_a_global_address_to_a_link_local_one() {
        let text = r#"{ "name": "ll", "nodes": {
            "a": { "kind": "host", "interfaces": { "eth0": { "addresses": ["fd00::1/64"] } },
                   "apps": [ { "kind": "ping", "to": "b" } ] },
            "b": { "kind": "host", "interfaces": { "eth0": { "addresses": ["fe80::2/64", "fd00::2/64"] } } } },
          "links": [ { "a": "a:eth0", "b": "b:eth0" } ] }"#;
        let lab = load_str(text, "ll.json").expect("valid");
        let NodeKind::Host(h) = &lab.node_by_name("a").unwrap().kind else { panic!() };
        let AppKind::Ping { to, .. } = &h.apps[0].kind else { panic!() };
        assert_eq!(to.to_string(), "fd00::2");
    }
}
