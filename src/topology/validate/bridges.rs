//! What joins the lab to real sockets: port forwards (`forwards`) and the `exit` of a gateway.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde_json::Value;
use smoltcp::wire::IpCidr;

use super::segments::Segments;
use super::targets::LabView;
use super::{Cx, Status};
use crate::topology::diag::{listing, shown, JsonPath, Suggestions};
use crate::topology::limits;
use crate::topology::model::{Exit, Forward, Node, NodeId, NodeKind, Proto};
use crate::topology::parse;
use crate::topology::spec::{ExitSpec, ForwardSpec};

impl Cx {
    /// The `forwards` array, each element read on its own.
    pub(super) fn read_forwards(&mut self, v: Option<Value>) -> Vec<Option<ForwardSpec>> {
        let path = JsonPath::root().key("forwards");
        match v {
            None => Vec::new(),
            Some(Value::Array(a)) => {
                if a.len() > limits::FORWARDS_MAX {
                    self.err(
                        path.clone(),
                        format!("{} forwards; a lab takes at most {}", a.len(), limits::FORWARDS_MAX),
                        None,
                    );
                }
                a.into_iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let p = path.index(i);
                        if v.is_object() {
                            self.de::<ForwardSpec>(v, &p)
                        } else {
                            self.err(
                                p,
                                "a forward must be an object",
                                Some(
                                    "`{ \"listen\": \"127.0.0.1:8080\", \"from\": \"laptop\", \"to\": \"10.2.0.20:80\" }`"
                                        .into(),
                                ),
                            );
                            None
                        }
                    })
                    .collect()
            }
            Some(_) => {
                self.err(
                    path,
                    "`forwards` must be an array",
                    Some("`\"forwards\": [ { \"listen\": \"127.0.0.1:8080\", \"from\": \"laptop\", \"to\": \"server:80\" } ]`".into()),
                );
                Vec::new()
            }
        }
    }

    /// The forwards resolved against the lab: a real listen address, a host to start from, and a
    /// target that host reaches.
    pub(super) fn forwards(
        &mut self,
        specs: &[Option<ForwardSpec>],
        nodes: &[Node],
        status: &[Status],
        segments: Option<&Segments>,
    ) -> Vec<Forward> {
        let path = JsonPath::root().key("forwards");
        let by_name: BTreeMap<&str, usize> = nodes.iter().enumerate().map(|(i, n)| (n.name.as_str(), i)).collect();
        let hosts: Vec<&str> = nodes
            .iter()
            .filter(|n| matches!(&n.kind, NodeKind::Host(h) if h.exit.is_none()) && parse::valid_name(&n.name))
            .map(|n| n.name.as_str())
            .collect();
        let suggested = Suggestions::new(hosts.clone());
        let owners = LabView::owners(nodes);
        let view = LabView { nodes, status, by_name: &by_name, hosts: &suggested, owners: &owners, segments };
        let mut out = Vec::new();
        let mut seen: BTreeMap<(SocketAddr, Proto), usize> = BTreeMap::new();
        for (i, f) in specs.iter().enumerate() {
            let Some(f) = f else { continue };
            let p = path.index(i);
            let proto = f.proto.unwrap_or_default();
            let listen = match parse_listen(&f.listen) {
                Ok(a) => Some(a),
                Err(e) => {
                    self.err(
                        p.key("listen"),
                        e,
                        Some("a real address and port: `127.0.0.1:8080`, `[::1]:8080`, `0.0.0.0:8080`".into()),
                    );
                    None
                }
            };
            if let Some(a) = listen {
                if let Some(first) = seen.insert((a, proto), i) {
                    self.err(
                        p.key("listen"),
                        format!("{proto} {a} is where forwards[{first}] listens already"),
                        Some("give each forward its own port".into()),
                    );
                }
            }
            let udp_idle = self.duration(f.udp_idle.as_ref(), Duration::from_secs(30), &p, "udp_idle");
            if udp_idle.is_zero() {
                self.err(p.key("udp_idle"), "`udp_idle` must be more than 0", Some("such as `30s`".into()));
            }
            let from = match by_name.get(f.from.as_str()) {
                None => {
                    let hint = suggested
                        .did_you_mean(&f.from)
                        .or_else(|| (!hosts.is_empty()).then(|| format!("hosts: {}", listing(hosts.iter().copied()))));
                    self.err(p.key("from"), format!("`{}` names no node", shown(&f.from)), hint);
                    None
                }
                Some(&n) if status[n] == Status::Broken => None,
                Some(&n) => match &nodes[n].kind {
                    NodeKind::Host(h) if h.exit.is_none() => Some(n),
                    k => {
                        self.err(
                            p.key("from"),
                            format!("`{}` is a {}; a forward's flows start from a host", shown(&f.from), k.name()),
                            (!hosts.is_empty()).then(|| format!("hosts: {}", listing(hosts.iter().copied()))),
                        );
                        None
                    }
                },
            };
            let Some(me) = from else { continue };
            let target = self.target(&f.to, None, true, "forward", me, &view, &p);
            let (Some(listen), Some((ip, Some(port)))) = (listen, target) else { continue };
            out.push(Forward {
                listen,
                from: NodeId(u32::try_from(me).unwrap_or(u32::MAX)),
                to: SocketAddr::new(ip, port),
                proto,
                udp_idle,
            });
        }
        out
    }

    /// The exit of gateway `path`.
    pub(super) fn exit(&mut self, spec: &ExitSpec, path: &JsonPath) -> Exit {
        let path = path.key("exit");
        let d = Exit::default();
        let prefix = |cx: &mut Cx, s: &str, p: JsonPath| -> Option<IpCidr> {
            match super::routes::prefix(s) {
                Ok(c) => Some(c),
                Err(e) => {
                    cx.err(p, e, Some("write a prefix such as `10.99.0.0/24` or `fd00:99::/64`".into()));
                    None
                }
            }
        };
        let mut allow = Vec::new();
        if spec.allow.len() > limits::EXIT_PREFIXES_MAX {
            self.err(
                path.key("allow"),
                format!("{} prefixes; `allow` takes at most {}", spec.allow.len(), limits::EXIT_PREFIXES_MAX),
                Some("summarise them into wider prefixes".into()),
            );
        }
        for (i, a) in spec.allow.iter().enumerate() {
            if a.trim() == "default" {
                self.err(
                    path.key("allow").index(i),
                    "`default` is no prefix an exit allows",
                    Some("name what may leave the lab: `0.0.0.0/0` lets everything out, on purpose".into()),
                );
                continue;
            }
            if let Some(c) = prefix(self, a, path.key("allow").index(i)) {
                allow.push(c);
            }
        }
        let mut map = Vec::new();
        if spec.map.len() > limits::EXIT_PREFIXES_MAX {
            self.err(
                path.key("map"),
                format!("{} prefixes; `map` takes at most {}", spec.map.len(), limits::EXIT_PREFIXES_MAX),
                None,
            );
        }
        for (from, to) in &spec.map {
            let p = path.key("map").key(from);
            let (Some(f), Some(t)) = (prefix(self, from, p.clone()), prefix(self, to, p.clone())) else { continue };
            if f.prefix_len() != t.prefix_len() || matches!(f, IpCidr::Ipv4(_)) != matches!(t, IpCidr::Ipv4(_)) {
                self.err(
                    p,
                    format!("{f} maps onto {t}, a prefix of another family or length"),
                    Some(format!(
                        "map a prefix onto one of the same size, such as `\"{f}\": \"<real prefix>/{}\"`",
                        f.prefix_len()
                    )),
                );
                continue;
            }
            if !allow.iter().any(|a| a.contains_subnet(&f) || f.contains_subnet(a)) {
                self.err(
                    p,
                    format!("{f} is mapped, but `allow` lets none of it out"),
                    Some(format!("add `\"{f}\"` to `allow`, or drop the mapping")),
                );
                continue;
            }
            map.push((f, t));
        }
        let count = |cx: &mut Cx, v: Option<u32>, key: &str, dflt: usize| -> usize {
            match v {
                None => dflt,
                Some(0) => {
                    cx.err(path.key(key), format!("`{key}` must be at least 1"), None);
                    dflt
                }
                Some(n) => n as usize,
            }
        };
        let max_pending = count(self, spec.max_pending, "max_pending", d.max_pending);
        let max_pending_per_source =
            count(self, spec.max_pending_per_source, "max_pending_per_source", d.max_pending_per_source);
        let max_flows = count(self, spec.max_flows, "max_flows", d.max_flows);
        let dial_timeout = self.duration(spec.dial_timeout.as_ref(), d.dial_timeout, &path, "dial_timeout");
        let udp_idle = self.duration(spec.udp_idle.as_ref(), d.udp_idle, &path, "udp_idle");
        for (key, v) in [("dial_timeout", dial_timeout), ("udp_idle", udp_idle)] {
            if v.is_zero() {
                self.err(path.key(key), format!("`{key}` must be more than 0"), Some("such as `5s`".into()));
            }
        }
        Exit { allow, map, dial_timeout, udp_idle, max_pending, max_pending_per_source, max_flows }
    }
}

/// A real socket address: `127.0.0.1:8080`, `[::1]:8080`; `localhost:8080` is 127.0.0.1.
pub(crate) fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Some(port) = s.strip_prefix("localhost:") {
        if let Ok(p) = port.parse::<u16>() {
            return Ok(SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), p));
        }
    }
    if s.parse::<IpAddr>().is_ok() {
        return Err(format!("`{}` has no port", shown(s)));
    }
    Err(format!("`{}` is not an address and port", shown(s)))
}

/// Checks a forward given outside the lab file (`--forward LISTEN,FROM,TO[,udp]`) against a loaded
/// lab, as one of its `forwards` would be.
///
/// # Errors
///
/// Every problem, each a sentence with its field and hint.
pub fn forward_for_lab(lab: &crate::topology::Lab, text: &str) -> Result<Forward, Vec<String>> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let usage = "write `LISTEN,FROM,TO` or `LISTEN,FROM,TO,udp`, such as `127.0.0.1:8080,laptop,10.2.0.20:80`";
    let (listen, from, to, proto) = match parts.as_slice() {
        [l, f, t] => (*l, *f, *t, None),
        [l, f, t, p] if p.eq_ignore_ascii_case("udp") => (*l, *f, *t, Some(crate::topology::spec::ForwardProto::Udp)),
        [l, f, t, p] if p.eq_ignore_ascii_case("tcp") => (*l, *f, *t, Some(crate::topology::spec::ForwardProto::Tcp)),
        _ => return Err(vec![format!("`{}` is not a forward (hint: {usage})", shown(text))]),
    };
    let spec = ForwardSpec { listen: listen.into(), from: from.into(), to: to.into(), proto, udp_idle: None };
    let mut cx = Cx::default();
    let status = vec![Status::Complete; lab.nodes.len()];
    let segments = Segments::new(&lab.nodes, &lab.links);
    let out = cx.forwards(&[Some(spec)], &lab.nodes, &status, Some(&segments));
    match out.into_iter().next() {
        Some(f) if cx.problems.is_empty() => Ok(f),
        _ => Err(super::apps::sentences(cx.problems)),
    }
}
