//! Lab text → validated [`Lab`], reporting every problem at once.
//!
//! Deserialisation goes element by element (each node, interface, app, link), so that one wrong
//! type does not hide the problems after it; then the semantic checks run over what parsed.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr};

use super::diag::{did_you_mean, Diagnostics, JsonPath, Locator, Problem, Target};
use super::model::{
    App, AppKind, Attachment, CaptureConfig, Host, Interface, Lab, Link, LinkId, LinkModel, Node, NodeId, NodeKind,
    Side, Switch, TcpConfig, Transport,
};
use super::parse;
use super::spec::{
    AppSpec, ByteSize, CaptureFormat, CaptureSpec, EchoSpec, Family, HostSpec, ImpairSpec, InterfaceSpec, LinkSpec,
    PingSpec, ServerSpec, SwitchSpec, TcpSpec, TransferSpec, TransportKind,
};

/// Why a lab could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{0}")]
    Invalid(Diagnostics),
}

/// Reads and validates a lab file.
pub fn load_file(path: &Path) -> Result<Lab, LoadError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| LoadError::Io { path: path.display().to_string(), source })?;
    load_str(&text, &path.display().to_string()).map_err(LoadError::Invalid)
}

/// Validates lab text; `file` names it in diagnostics.
pub fn load_str(text: &str, file: &str) -> Result<Lab, Diagnostics> {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let msg = e.to_string();
            let msg = msg.rsplit_once(" at line ").map_or(msg.as_str(), |(m, _)| m).to_string();
            return Err(Diagnostics(vec![super::diag::Diagnostic {
                file: file.to_string(),
                line: e.line(),
                col: e.column(),
                path: "(top level)".into(),
                message: format!("invalid JSON: {msg}"),
                hint: Some("check for a missing comma, quote or bracket just before this place".into()),
            }]));
        }
    };
    let locator = Locator::new(text);
    let mut cx = Cx { problems: locator.duplicate_keys() };
    let lab = cx.lab(value);
    if cx.problems.is_empty() {
        if let Some(lab) = lab {
            return Ok(lab);
        }
    }
    let mut diags: Vec<_> = cx.problems.into_iter().map(|p| locator.place(file, p)).collect();
    diags.sort_by(|a, b| (a.line, a.col).cmp(&(b.line, b.col)));
    diags.dedup();
    Err(Diagnostics(diags))
}

struct Cx {
    problems: Vec<Problem>,
}

const TOP_FIELDS: &[&str] = &["name", "description", "seed", "nodes", "links", "capture"];
const HOST_FIELDS: &[&str] = &["kind", "site", "interfaces", "tcp", "apps"];
const APP_KINDS: &[&str] =
    &["ping", "tcp-echo-server", "tcp-echo", "udp-echo-server", "udp-echo", "tcp-sink", "tcp-transfer"];

/// A node as parsed, before links and targets are resolved.
enum Parsed {
    Host { spec: HostSpec, interfaces: Vec<(String, InterfaceSpec)>, apps: Vec<Option<AppSpec>> },
    Switch(SwitchSpec),
}

impl Cx {
    fn err(&mut self, path: JsonPath, message: impl Into<String>, hint: Option<String>) {
        self.problems.push(Problem { path, target: Target::Value, message: message.into(), hint });
    }

    fn err_key(&mut self, path: JsonPath, message: impl Into<String>, hint: Option<String>) {
        self.problems.push(Problem { path, target: Target::Key, message: message.into(), hint });
    }

    /// Deserialises one element, recording its problem (with the path serde saw) on failure.
    fn de<T: DeserializeOwned>(&mut self, v: Value, path: &JsonPath) -> Option<T> {
        match serde_path_to_error::deserialize::<_, T>(v) {
            Ok(t) => Some(t),
            Err(e) => {
                let p = path.join_serde(e.path());
                let msg = e.inner().to_string();
                self.serde_problem(p, &msg);
                None
            }
        }
    }

    fn serde_problem(&mut self, mut path: JsonPath, msg: &str) {
        if let Some(rest) = msg.strip_prefix("unknown field `") {
            let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
            let options: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
            if path.0.last() != Some(&super::diag::Seg::Key(field.to_string())) {
                path = path.key(field);
            }
            let hint = did_you_mean(field, options.iter().copied())
                .or_else(|| (!options.is_empty()).then(|| format!("known fields: {}", options.join(", "))));
            self.err_key(path, format!("unknown field `{field}`"), hint);
        } else if let Some(rest) = msg.strip_prefix("missing field `") {
            let field = rest.split('`').next().unwrap_or(rest);
            self.err(path, format!("missing field `{field}`"), Some(format!("add `\"{field}\": …` here")));
        } else if let Some(rest) = msg.strip_prefix("unknown variant `") {
            let (word, expected) = rest.split_once('`').unwrap_or((rest, ""));
            let options: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
            let hint = did_you_mean(word, options.iter().copied())
                .or_else(|| Some(format!("expected one of: {}", options.join(", "))));
            self.err(path, format!("unknown value `{word}`"), hint);
        } else if msg.contains("untagged enum ByteSize") {
            self.err(path, "expected a byte count such as 1500 or \"4MiB\"", None);
        } else {
            self.err(path, msg.to_string(), None);
        }
    }

    fn unknown_keys(&mut self, obj: &Map<String, Value>, known: &[&str], path: &JsonPath) {
        for k in obj.keys() {
            if !known.contains(&k.as_str()) {
                let hint = did_you_mean(k, known.iter().copied())
                    .or_else(|| Some(format!("known fields: {}", known.join(", "))));
                self.err_key(path.key(k), format!("unknown field `{k}`"), hint);
            }
        }
    }

    fn duration(&mut self, s: Option<&String>, default: Duration, path: JsonPath) -> Duration {
        match s.map(|s| parse::duration(s)) {
            None => default,
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                self.err(path, e, Some("write a number with a unit: `500ms`, `2s`, `1m`".into()));
                default
            }
        }
    }

    fn lab(&mut self, value: Value) -> Option<Lab> {
        let root = JsonPath::root();
        let Value::Object(mut top) = value else {
            self.err(
                root,
                "a lab file must be a JSON object",
                Some("start with `{ \"name\": …, \"nodes\": { … } }`".into()),
            );
            return None;
        };
        self.unknown_keys(&top, TOP_FIELDS, &root);
        let name = match top.remove("name") {
            None => {
                self.err(root.clone(), "missing field `name`", Some("add `\"name\": \"my-lab\"`".into()));
                None
            }
            Some(v) => self.de::<String>(v, &root.key("name")),
        };
        if let Some(n) = &name {
            if !parse::valid_name(n) {
                self.err(
                    root.key("name"),
                    format!("`{n}` is not a valid lab name"),
                    Some("use letters, digits, `-`, `_` and `.`; it names the capture folder".into()),
                );
            }
        }
        let description = top.remove("description").and_then(|v| self.de::<String>(v, &root.key("description")));
        let seed = top.remove("seed").map_or(Some(1), |v| self.de::<u64>(v, &root.key("seed")));

        // Nodes, one at a time.
        let mut parsed: IndexMap<String, Option<Parsed>> = IndexMap::new();
        match top.remove("nodes") {
            None => self.err(
                root.clone(),
                "missing field `nodes`",
                Some("add `\"nodes\": { \"h1\": { \"kind\": \"host\", … } }`".into()),
            ),
            Some(Value::Object(nodes)) => {
                for (name, v) in nodes {
                    let path = root.key("nodes").key(&name);
                    if !parse::valid_name(&name) {
                        self.err_key(
                            path.clone(),
                            format!("`{name}` is not a valid node name"),
                            Some(
                                "use letters, digits, `-`, `_` and `.` (no `:`; it separates node and interface)"
                                    .into(),
                            ),
                        );
                    }
                    let p = self.node(v, &path);
                    parsed.insert(name, p);
                }
            }
            Some(_) => self.err(root.key("nodes"), "`nodes` must be an object keyed by node name", None),
        }
        let links: Vec<Option<LinkSpec>> = match top.remove("links") {
            None => Vec::new(),
            Some(Value::Array(a)) => {
                a.into_iter().enumerate().map(|(i, v)| self.de(v, &root.key("links").index(i))).collect()
            }
            Some(_) => {
                self.err(root.key("links"), "`links` must be an array", None);
                Vec::new()
            }
        };
        let capture: Option<CaptureSpec> = match top.remove("capture") {
            None => Some(CaptureSpec::default()),
            Some(v) => self.de(v, &root.key("capture")),
        };

        let lab = self.build(name.clone().unwrap_or_default(), &parsed, &links, capture.as_ref());
        let lab = lab?;
        Some(Lab { description: description.unwrap_or_default(), seed: seed?, ..lab })
    }

    fn node(&mut self, v: Value, path: &JsonPath) -> Option<Parsed> {
        let Value::Object(mut obj) = v else {
            self.err(path.clone(), "a node must be an object", Some("`{ \"kind\": \"host\", … }`".into()));
            return None;
        };
        let kind = match obj.get("kind") {
            Some(Value::String(k)) => k.clone(),
            Some(_) => {
                self.err(path.key("kind"), "`kind` must be a string", Some("`host` or `switch`".into()));
                return None;
            }
            None => {
                self.err(
                    path.clone(),
                    "missing field `kind`",
                    Some("add `\"kind\": \"host\"` or `\"kind\": \"switch\"`".into()),
                );
                return None;
            }
        };
        match kind.as_str() {
            "host" => {
                // Interfaces and apps are taken out and parsed one by one.
                let ifaces = obj.remove("interfaces");
                let apps = obj.remove("apps");
                self.unknown_keys(&obj, HOST_FIELDS, path);
                obj.retain(|k, _| HOST_FIELDS.contains(&k.as_str()));
                obj.remove("kind");
                let spec: HostSpec = self.de(Value::Object(obj), path)?;
                let mut interfaces = Vec::new();
                match ifaces {
                    None => {}
                    Some(Value::Object(m)) => {
                        for (name, v) in m {
                            let p = path.key("interfaces").key(&name);
                            if !parse::valid_name(&name) {
                                self.err_key(
                                    p.clone(),
                                    format!("`{name}` is not a valid interface name"),
                                    Some("use letters, digits, `-`, `_` and `.`".into()),
                                );
                            }
                            if let Some(i) = self.de::<InterfaceSpec>(v, &p) {
                                interfaces.push((name, i));
                            }
                        }
                    }
                    Some(_) => self.err(
                        path.key("interfaces"),
                        "`interfaces` must be an object keyed by interface name",
                        Some("`\"interfaces\": { \"eth0\": { \"addresses\": [\"10.0.0.1/24\"] } }`".into()),
                    ),
                }
                let apps = match apps {
                    None => Vec::new(),
                    Some(Value::Array(a)) => {
                        a.into_iter().enumerate().map(|(i, v)| self.app(v, &path.key("apps").index(i))).collect()
                    }
                    Some(_) => {
                        self.err(path.key("apps"), "`apps` must be an array", None);
                        Vec::new()
                    }
                };
                Some(Parsed::Host { spec, interfaces, apps })
            }
            "switch" => {
                obj.remove("kind");
                self.de::<SwitchSpec>(Value::Object(obj), path).map(Parsed::Switch)
            }
            other => {
                let hint = if other == "router" {
                    Some("routers are not supported yet; join subnets with a switch".into())
                } else {
                    did_you_mean(other, ["host", "switch"]).or_else(|| Some("expected `host` or `switch`".into()))
                };
                self.err(path.key("kind"), format!("unknown node kind `{other}`"), hint);
                None
            }
        }
    }

    fn app(&mut self, v: Value, path: &JsonPath) -> Option<AppSpec> {
        let Value::Object(mut obj) = v else {
            self.err(
                path.clone(),
                "an app must be an object",
                Some("`{ \"kind\": \"ping\", \"to\": \"server\" }`".into()),
            );
            return None;
        };
        let kind = match obj.remove("kind") {
            Some(Value::String(k)) => k,
            Some(_) => {
                self.err(
                    path.key("kind"),
                    "`kind` must be a string",
                    Some(format!("one of: {}", APP_KINDS.join(", "))),
                );
                return None;
            }
            None => {
                self.err(path.clone(), "missing field `kind`", Some(format!("one of: {}", APP_KINDS.join(", "))));
                return None;
            }
        };
        let v = Value::Object(obj);
        Some(match kind.as_str() {
            "ping" => AppSpec::Ping(self.de::<PingSpec>(v, path)?),
            "tcp-echo-server" => AppSpec::TcpEchoServer(self.de::<ServerSpec>(v, path)?),
            "tcp-echo" => AppSpec::TcpEcho(self.de::<EchoSpec>(v, path)?),
            "udp-echo-server" => AppSpec::UdpEchoServer(self.de::<ServerSpec>(v, path)?),
            "udp-echo" => AppSpec::UdpEcho(self.de::<EchoSpec>(v, path)?),
            "tcp-sink" => AppSpec::TcpSink(self.de::<ServerSpec>(v, path)?),
            "tcp-transfer" => AppSpec::TcpTransfer(self.de::<TransferSpec>(v, path)?),
            other => {
                let hint = did_you_mean(other, APP_KINDS.iter().copied())
                    .or_else(|| Some(format!("one of: {}", APP_KINDS.join(", "))));
                self.err(path.key("kind"), format!("unknown app kind `{other}`"), hint);
                return None;
            }
        })
    }

    #[allow(clippy::too_many_lines)]
    fn build(
        &mut self,
        name: String,
        parsed: &IndexMap<String, Option<Parsed>>,
        links: &[Option<LinkSpec>],
        capture: Option<&CaptureSpec>,
    ) -> Option<Lab> {
        let nodes_path = JsonPath::root().key("nodes");
        let mut nodes = Vec::new();
        // Every address and MAC, to find duplicates: value -> where it was first seen.
        let mut seen_ip: BTreeMap<IpAddress, JsonPath> = BTreeMap::new();
        let mut seen_mac: BTreeMap<EthernetAddress, JsonPath> = BTreeMap::new();

        for (i, (node_name, p)) in parsed.iter().enumerate() {
            let id = NodeId(u32::try_from(i).unwrap_or(u32::MAX));
            let path = nodes_path.key(node_name);
            let (site, kind) = match p {
                None => (None, None),
                Some(Parsed::Switch(s)) => {
                    let ageing = self.duration(s.mac_ageing.as_ref(), Duration::from_secs(300), path.key("mac_ageing"));
                    (s.site.clone(), Some(NodeKind::Switch(Switch { mac_ageing: ageing, ports: Vec::new() })))
                }
                Some(Parsed::Host { spec, interfaces, .. }) => {
                    let mut out = Vec::new();
                    if interfaces.len() > 1 {
                        self.err(
                            path.key("interfaces"),
                            format!("host `{node_name}` has {} interfaces; a host has one", interfaces.len()),
                            Some(
                                "give each subnet its own host for now; routers come with multi-interface forwarding"
                                    .into(),
                            ),
                        );
                    }
                    for (iname, ispec) in interfaces {
                        let ipath = path.key("interfaces").key(iname);
                        out.push(self.interface(node_name, iname, ispec, &ipath, &mut seen_ip, &mut seen_mac));
                    }
                    let tcp = self.tcp(spec.tcp.as_ref(), &path.key("tcp"));
                    (spec.site.clone(), Some(NodeKind::Host(Host { interfaces: out, tcp, apps: Vec::new() })))
                }
            };
            nodes.push(Node {
                id,
                name: node_name.clone(),
                site,
                // A node that failed to parse stays as a placeholder switch so that links naming it
                // resolve and report only their own problems.
                kind: kind.unwrap_or(NodeKind::Switch(Switch { mac_ageing: Duration::ZERO, ports: Vec::new() })),
            });
        }
        if parsed.is_empty() && self.problems.is_empty() {
            self.err(nodes_path.clone(), "the lab has no nodes", Some("add hosts and switches under `nodes`".into()));
        }

        let names: Vec<&str> = parsed.keys().map(String::as_str).collect();
        let mut out_links: Vec<Link> = Vec::new();
        let mut link_names: BTreeMap<String, usize> = BTreeMap::new();
        for (i, l) in links.iter().enumerate() {
            let Some(l) = l else { continue };
            let path = JsonPath::root().key("links").index(i);
            let id = LinkId(u32::try_from(out_links.len()).unwrap_or(u32::MAX));
            let a = self.endpoint(&l.a, &names, &nodes, &path.key("a"));
            let b = self.endpoint(&l.b, &names, &nodes, &path.key("b"));
            let model = self.impair(l.impair.as_ref(), &path.key("impair"));
            let lname = l.name.clone().unwrap_or_else(|| format!("{}<->{}", l.a.trim(), l.b.trim()));
            if let Some(prev) = link_names.insert(lname.clone(), i) {
                self.err(
                    path.clone(),
                    format!("link name `{lname}` is already used by links[{prev}]"),
                    Some("give one of them a distinct `name`".into()),
                );
            }
            let (Some(a), Some(b)) = (a, b) else { continue };
            if a.node() == b.node() {
                self.err(
                    path.clone(),
                    format!("link joins `{}` to itself", nodes[a.node().index()].name),
                    Some("a link joins two different nodes".into()),
                );
                continue;
            }
            // Plug the ends in; a switch gets a new port per link.
            let mut ends = [a, b];
            for (att, side) in ends.iter_mut().zip([Side::A, Side::B]) {
                let ni = att.node().index();
                match (att, &mut nodes[ni].kind) {
                    (Attachment::HostInterface { interface, .. }, NodeKind::Host(h)) => {
                        h.interfaces[*interface].link = Some((id, side));
                    }
                    (Attachment::SwitchPort { port, .. }, NodeKind::Switch(s)) => {
                        *port = s.ports.len();
                        s.ports.push((id, side));
                    }
                    _ => {}
                }
            }
            let transport = match l.transport.unwrap_or(TransportKind::Mem) {
                TransportKind::Mem => Transport::Mem,
            };
            out_links.push(Link { id, name: lname, ends, transport, model });
        }

        // Apps, now that every address is known.
        let by_name: BTreeMap<&str, usize> = parsed.keys().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
        for (i, (node_name, p)) in parsed.iter().enumerate() {
            let Some(Parsed::Host { apps, .. }) = p else { continue };
            let mut out = Vec::new();
            for (j, a) in apps.iter().enumerate() {
                let Some(a) = a else { continue };
                let path = nodes_path.key(node_name).key("apps").index(j);
                if let Some(app) = self.resolve_app(a, i, &nodes, &by_name, &names, &path) {
                    out.push(App { label: format!("{node_name}/{}", app.1.name()), start: app.0, kind: app.1 });
                }
            }
            if let NodeKind::Host(h) = &mut nodes[i].kind {
                h.apps = out;
            }
        }

        let capture = self.capture(capture, &name, &out_links);
        if !self.problems.is_empty() {
            return None;
        }
        Some(Lab { name, description: String::new(), seed: 1, nodes, links: out_links, capture: capture? })
    }

    fn interface(
        &mut self,
        node: &str,
        iname: &str,
        spec: &InterfaceSpec,
        path: &JsonPath,
        seen_ip: &mut BTreeMap<IpAddress, JsonPath>,
        seen_mac: &mut BTreeMap<EthernetAddress, JsonPath>,
    ) -> Interface {
        let mut addresses: Vec<IpCidr> = Vec::new();
        if spec.addresses.len() > 4 {
            self.err(
                path.key("addresses"),
                format!("{} addresses on one interface; at most 4", spec.addresses.len()),
                None,
            );
        }
        for (k, a) in spec.addresses.iter().enumerate() {
            let p = path.key("addresses").index(k);
            match parse::cidr(a) {
                Ok(c) => {
                    if let Some(first) = seen_ip.get(&c.address()) {
                        self.err(
                            p,
                            format!("address {} is already used at {first}", c.address()),
                            Some("every interface address in a lab must be unique".into()),
                        );
                    } else {
                        seen_ip.insert(c.address(), p);
                        addresses.push(c);
                    }
                }
                Err(e) => {
                    let hint = if a.contains('/') {
                        "write an address and prefix length: `10.0.0.1/24` or `fd00::1/64`"
                    } else {
                        "add the prefix length: `10.0.0.1/24`"
                    };
                    self.err(p, e, Some(hint.into()));
                }
            }
        }
        let mac = match &spec.mac {
            None => parse::derived_mac(node, iname),
            Some(m) => match parse::mac(m) {
                Ok(m) => m,
                Err(e) => {
                    self.err(path.key("mac"), e, Some("or leave `mac` out for a stable derived one".into()));
                    parse::derived_mac(node, iname)
                }
            },
        };
        if let Some(first) = seen_mac.get(&mac) {
            self.err(
                if spec.mac.is_some() { path.key("mac") } else { path.clone() },
                format!("MAC {mac} is already used at {first}"),
                Some("every interface in a lab needs its own MAC".into()),
            );
        } else {
            seen_mac.insert(mac, path.clone());
        }
        let has_v6 = addresses.iter().any(|c| matches!(c, IpCidr::Ipv6(_)));
        let mtu = spec.mtu.unwrap_or(1500);
        let min = if has_v6 { 1280 } else { 576 };
        if !(min..=9000).contains(&mtu) {
            let why = if has_v6 && mtu < 1280 { " (IPv6 needs at least 1280)" } else { "" };
            self.err(
                path.key("mtu"),
                format!("MTU {mtu} is out of range {min} to 9000{why}"),
                Some("1500 is the Ethernet default".into()),
            );
        }
        let mut gateway_v4 = None;
        let mut gateway_v6 = None;
        for (k, g) in spec.gateways.iter().enumerate() {
            let p = path.key("gateways").index(k);
            let Ok(ip) = g.trim().parse::<IpAddr>() else {
                self.err(
                    p,
                    format!("`{g}` is not an IP address"),
                    Some("a gateway is a bare address such as `10.0.0.254`".into()),
                );
                continue;
            };
            let ip = IpAddress::from(ip);
            if !addresses.iter().any(|c| c.contains_addr(&ip)) {
                let subnets: Vec<String> = addresses.iter().map(ToString::to_string).collect();
                self.err(
                    p,
                    format!("gateway {ip} is outside every subnet of this interface"),
                    Some(format!(
                        "a gateway must be on-link; this interface has {}",
                        if subnets.is_empty() { "no addresses".into() } else { subnets.join(", ") }
                    )),
                );
                continue;
            }
            if addresses.iter().any(|c| c.address() == ip) {
                self.err(p, format!("gateway {ip} is this interface's own address"), None);
                continue;
            }
            let slot = match ip {
                IpAddress::Ipv4(v4) => gateway_v4.replace(v4).is_some(),
                IpAddress::Ipv6(v6) => gateway_v6.replace(v6).is_some(),
            };
            if slot {
                self.err(
                    p,
                    "a second gateway of the same family",
                    Some("give at most one IPv4 and one IPv6 gateway".into()),
                );
            }
        }
        Interface { name: iname.to_string(), mac, mtu: mtu as usize, addresses, gateway_v4, gateway_v6, link: None }
    }

    fn tcp(&mut self, spec: Option<&TcpSpec>, path: &JsonPath) -> TcpConfig {
        let d = TcpConfig::default();
        let Some(s) = spec else { return d };
        let buf = |cx: &mut Cx, b: Option<&ByteSize>, key: &str, dflt: usize| -> usize {
            let v = match b {
                None => return dflt,
                Some(ByteSize::Bytes(n)) => Ok(*n),
                Some(ByteSize::Text(t)) => parse::bytes(t),
            };
            match v {
                Ok(n) if (1024..=(1 << 30)).contains(&n) => usize::try_from(n).unwrap_or(dflt),
                Ok(n) => {
                    cx.err(path.key(key), format!("buffer of {n} bytes is out of range 1KiB to 1GiB"), None);
                    dflt
                }
                Err(e) => {
                    cx.err(path.key(key), e, Some("such as `256KiB`".into()));
                    dflt
                }
            }
        };
        let rx_buffer = buf(self, s.rx_buffer.as_ref(), "rx_buffer", d.rx_buffer);
        let tx_buffer = buf(self, s.tx_buffer.as_ref(), "tx_buffer", d.tx_buffer);
        let ack_delay = s.ack_delay.as_ref().map(|a| self.duration(Some(a), Duration::ZERO, path.key("ack_delay")));
        TcpConfig {
            congestion: s.congestion.unwrap_or(d.congestion),
            rx_buffer,
            tx_buffer,
            ack_delay: ack_delay.filter(|d| !d.is_zero()),
            nagle: s.nagle.unwrap_or(false),
        }
    }

    fn impair(&mut self, spec: Option<&ImpairSpec>, path: &JsonPath) -> LinkModel {
        let d = LinkModel::default();
        let Some(s) = spec else { return d };
        let latency = self.duration(s.latency.as_ref(), d.latency, path.key("latency"));
        let rate_bps = match s.rate.as_ref().map(|r| parse::rate_bps(r)) {
            None => None,
            Some(Ok(r)) => Some(r),
            Some(Err(e)) => {
                self.err(path.key("rate"), e, Some("such as `100Mbit` or `1Gbit`".into()));
                None
            }
        };
        let loss = s.loss.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&loss) {
            self.err(path.key("loss"), format!("loss {loss} is not a probability"), Some("0.01 is 1 % loss".into()));
        }
        let queue = s.queue.unwrap_or(1000);
        if !(1..=1_000_000).contains(&queue) {
            self.err(path.key("queue"), format!("queue of {queue} frames is out of range 1 to 1000000"), None);
        }
        LinkModel { latency, rate_bps, loss: loss.clamp(0.0, 1.0), queue_frames: queue.max(1) as usize }
    }

    fn endpoint(&mut self, text: &str, names: &[&str], nodes: &[Node], path: &JsonPath) -> Option<Attachment> {
        let (node_name, iface) = match text.trim().split_once(':') {
            Some((n, i)) => (n, Some(i)),
            None => (text.trim(), None),
        };
        let Some(idx) = names.iter().position(|n| *n == node_name) else {
            let hint =
                did_you_mean(node_name, names.iter().copied()).or_else(|| Some(format!("nodes: {}", names.join(", "))));
            self.err(path.clone(), format!("link end `{text}` names no node"), hint);
            return None;
        };
        let node = &nodes[idx];
        match &node.kind {
            NodeKind::Switch(_) => {
                if let Some(i) = iface {
                    self.err(
                        path.clone(),
                        format!("`{node_name}` is a switch; its ports have no names (`:{i}`)"),
                        Some(format!("write just `{node_name}`; each link gets a new port")),
                    );
                    return None;
                }
                // The port number is given when the link is plugged in.
                Some(Attachment::SwitchPort { node: node.id, port: 0 })
            }
            NodeKind::Host(h) => {
                let inames: Vec<&str> = h.interfaces.iter().map(|i| i.name.as_str()).collect();
                let Some(i) = iface else {
                    let hint = inames.first().map_or_else(
                        || format!("`{node_name}` has no interfaces; add one under `interfaces`"),
                        |f| format!("write `{node_name}:{f}`"),
                    );
                    self.err(path.clone(), format!("link end `{text}` is a host but names no interface"), Some(hint));
                    return None;
                };
                let Some(k) = inames.iter().position(|n| *n == i) else {
                    let hint = did_you_mean(i, inames.iter().copied()).or_else(|| {
                        Some(if inames.is_empty() {
                            format!("`{node_name}` has no interfaces")
                        } else {
                            format!("interfaces of `{node_name}`: {}", inames.join(", "))
                        })
                    });
                    self.err(path.clone(), format!("`{node_name}` has no interface `{i}`"), hint);
                    return None;
                };
                if let Some((other, _)) = h.interfaces[k].link {
                    self.err(
                        path.clone(),
                        format!("interface `{node_name}:{i}` is already used by links[{}]", other.index()),
                        Some("an interface takes one link; join more nodes through a switch".into()),
                    );
                    return None;
                }
                Some(Attachment::HostInterface { node: node.id, interface: k })
            }
        }
    }

    fn resolve_app(
        &mut self,
        a: &AppSpec,
        me: usize,
        nodes: &[Node],
        by_name: &BTreeMap<&str, usize>,
        names: &[&str],
        path: &JsonPath,
    ) -> Option<(Duration, AppKind)> {
        let secs = |n: u64| Duration::from_secs(n);
        let target =
            |cx: &mut Cx, to: &str, family: Option<Family>, want_port: bool| -> Option<(IpAddr, Option<u16>)> {
                let tp = path.key("to");
                let t = match parse::target(to) {
                    Ok(t) => t,
                    Err(e) => {
                        cx.err(
                            tp,
                            e,
                            Some(
                                if want_port {
                                    "write `node:port` or `address:port`"
                                } else {
                                    "write a node name or an address"
                                }
                                .into(),
                            ),
                        );
                        return None;
                    }
                };
                let (ip, port) = match t {
                    parse::Target::Addr(ip, port) => {
                        let owner = nodes.iter().find(|n| host_addrs(n).any(|c| IpAddr::from(c.address()) == ip));
                        if owner.is_none() {
                            cx.err(
                                tp,
                                format!("no host in the lab has address {ip}"),
                                Some("name a node instead, such as `server:7`".into()),
                            );
                            return None;
                        }
                        (ip, port)
                    }
                    parse::Target::Node(name, port) => {
                        let Some(&idx) = by_name.get(name.as_str()) else {
                            let hint = did_you_mean(&name, names.iter().copied())
                                .or_else(|| Some(format!("nodes: {}", names.join(", "))));
                            cx.err(tp, format!("target `{name}` names no node"), hint);
                            return None;
                        };
                        let n = &nodes[idx];
                        if !matches!(n.kind, NodeKind::Host(_)) {
                            cx.err(tp, format!("target `{name}` is a switch; it has no address"), None);
                            return None;
                        }
                        let want_v6 = family == Some(Family::Ipv6);
                        let pick = host_addrs(n).find(|c| matches!(c, IpCidr::Ipv6(_)) == want_v6).or_else(|| {
                            if family.is_none() {
                                host_addrs(n).next()
                            } else {
                                None
                            }
                        });
                        let Some(c) = pick else {
                            cx.err(
                                tp,
                                format!("`{name}` has no {} address", if want_v6 { "IPv6" } else { "IP" }),
                                Some("add one to its interface, or change `family`".into()),
                            );
                            return None;
                        };
                        (IpAddr::from(c.address()), port)
                    }
                };
                if want_port && port.is_none() {
                    cx.err(tp, format!("`{to}` has no port"), Some(format!("write `{to}:7`")));
                    return None;
                }
                if !want_port && port.is_some() {
                    cx.err(tp, format!("`{to}` has a port, which ping does not use"), None);
                    return None;
                }
                // The source must be able to reach that family at all.
                if !host_addrs(&nodes[me]).any(|c| IpAddr::from(c.address()).is_ipv6() == ip.is_ipv6()) {
                    cx.err(
                        tp,
                        format!(
                            "`{}` has no {} address to reach {ip} from",
                            nodes[me].name,
                            if ip.is_ipv6() { "IPv6" } else { "IPv4" }
                        ),
                        None,
                    );
                    return None;
                }
                Some((ip, port))
            };
        let start = |cx: &mut Cx, s: &Option<String>| cx.duration(s.as_ref(), Duration::ZERO, path.key("start"));
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
        let kind = match a {
            AppSpec::Ping(p) => {
                let st = start(self, &p.start);
                let to = target(self, &p.to, p.family, false);
                let count = positive(self, p.count, "count", 4, 1_000_000);
                let size = p.size.unwrap_or(56);
                if size > 65_000 {
                    self.err(
                        path.key("size"),
                        format!("ping payload of {size} bytes is too large"),
                        Some("at most 65000".into()),
                    );
                }
                let interval = self.duration(p.interval.as_ref(), secs(1), path.key("interval"));
                let timeout = self.duration(p.timeout.as_ref(), secs(1), path.key("timeout"));
                (st, AppKind::Ping { to: to?.0, count, interval, size: size as usize, timeout })
            }
            AppSpec::TcpEchoServer(s) => (start(self, &s.start), AppKind::TcpEchoServer { port: port(self, s.port) }),
            AppSpec::UdpEchoServer(s) => (start(self, &s.start), AppKind::UdpEchoServer { port: port(self, s.port) }),
            AppSpec::TcpSink(s) => (start(self, &s.start), AppKind::TcpSink { port: port(self, s.port) }),
            AppSpec::TcpEcho(e) | AppSpec::UdpEcho(e) => {
                let udp = matches!(a, AppSpec::UdpEcho(_));
                let st = start(self, &e.start);
                let to = target(self, &e.to, e.family, true);
                let count = positive(self, e.count, "count", 10, 1_000_000);
                let size = positive(self, e.size, "size", 64, if udp { 1400 } else { 65_536 }) as usize;
                let interval = self.duration(
                    e.interval.as_ref(),
                    if udp { Duration::from_millis(100) } else { Duration::ZERO },
                    path.key("interval"),
                );
                let timeout = self.duration(e.timeout.as_ref(), secs(1), path.key("timeout"));
                let (ip, p) = to?;
                let to = (ip, p.unwrap_or(7));
                if udp {
                    (st, AppKind::UdpEcho { to, count, size, interval, timeout })
                } else {
                    (st, AppKind::TcpEcho { to, count, size, interval, timeout })
                }
            }
            AppSpec::TcpTransfer(t) => {
                let st = start(self, &t.start);
                let to = target(self, &t.to, t.family, true);
                let bytes = match &t.bytes {
                    ByteSize::Bytes(n) => Ok(*n),
                    ByteSize::Text(s) => parse::bytes(s),
                };
                let bytes = match bytes {
                    Ok(0) => {
                        self.err(path.key("bytes"), "a transfer of 0 bytes", None);
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
        };
        Some(kind)
    }

    fn capture(&mut self, spec: Option<&CaptureSpec>, lab_name: &str, links: &[Link]) -> Option<CaptureConfig> {
        let spec = spec?;
        let path = JsonPath::root().key("capture");
        let mut ids = Vec::new();
        match &spec.links {
            None => ids.extend(links.iter().map(|l| l.id)),
            Some(sel) => {
                for (k, s) in sel.iter().enumerate() {
                    let hit = links.iter().find(|l| l.name == *s || l.name.split("<->").any(|e| e == s));
                    match hit {
                        Some(l) if !ids.contains(&l.id) => ids.push(l.id),
                        Some(_) => {}
                        None => {
                            let hint = did_you_mean(s, links.iter().map(|l| l.name.as_str())).or_else(|| {
                                Some(format!(
                                    "links: {}",
                                    links.iter().map(|l| l.name.as_str()).collect::<Vec<_>>().join(", ")
                                ))
                            });
                            self.err(path.key("links").index(k), format!("`{s}` names no link"), hint);
                        }
                    }
                }
            }
        }
        ids.sort();
        Some(CaptureConfig {
            enabled: spec.enabled.unwrap_or(true),
            links: ids,
            dir: spec.dir.as_ref().map_or_else(|| PathBuf::from("captures").join(lab_name), PathBuf::from),
            format: spec.format.unwrap_or(CaptureFormat::Pcapng),
        })
    }
}

fn host_addrs(n: &Node) -> impl Iterator<Item = IpCidr> + '_ {
    let ifaces: &[Interface] = match &n.kind {
        NodeKind::Host(h) => &h.interfaces,
        NodeKind::Switch(_) => &[],
    };
    ifaces.iter().flat_map(|i| i.addresses.iter().copied())
}
