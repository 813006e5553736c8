//! The elements of a lab file as written: the top-level object, each node (host or switch) and
//! each app, read one by one into the spec types; then [`Cx::build`] puts the checked parts
//! together. Broken elements are kept as placeholders, so that what names them is still checked.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use indexmap::IndexMap;
use serde_json::Value;
use smoltcp::wire::{EthernetAddress, IpAddress};

use super::fields::{
    either, APP_KINDS, GATEWAY_FIELDS, HOST_FIELDS, HOST_OBJECTS, LINK_OBJECTS, NODE_KINDS, ROUTER_FIELDS,
    SWITCH_FIELDS, TOP_FIELDS,
};
use super::interfaces::address_part;
use super::links::link_words;
use super::read::Read;
use super::segments::Segments;
use super::{Cx, Status};
use crate::topology::diag::{did_you_mean, shown, JsonPath};
use crate::topology::model::{Host, Lab, Node, NodeId, NodeKind, Router, Switch, TcpConfig};
use crate::topology::parse;
use crate::topology::spec::{
    AppSpec, ByteSize, CaptureSpec, EchoSpec, ExitSpec, HostSpec, InterfaceSpec, LinkSpec, PingSpec, RouterSpec,
    ServerSpec, SiteSpec, SwitchSpec, TcpSpec, TransferSpec,
};
use crate::topology::spec::{HttpGetSpec, HttpServerSpec, TracerouteSpec, UdpStreamSpec};

/// A node as parsed, before links and targets are resolved.
pub(super) enum Parsed {
    /// `complete` is false when an interface failed to parse (so its addresses are unknown).
    /// A host, or an exit gateway (`exit` set; it has no apps).
    Host {
        spec: Box<HostSpec>,
        interfaces: Vec<(String, InterfaceSpec)>,
        apps: Vec<Option<AppSpec>>,
        complete: bool,
        exit: Option<Box<ExitSpec>>,
    },
    Switch(SwitchSpec),
    Router {
        spec: Box<RouterSpec>,
        interfaces: Vec<(String, InterfaceSpec)>,
        complete: bool,
    },
}

impl Cx {
    pub(super) fn lab(&mut self, value: Value) -> Option<Lab> {
        let root = JsonPath::root();
        let Value::Object(mut top) = value else {
            self.err(
                root,
                "a lab file must be a JSON object",
                Some("start with `{ \"name\": …, \"nodes\": { … } }`".into()),
            );
            return None;
        };
        self.unknown_keys(&top, &TOP_FIELDS, &root);
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
                    format!("`{}` is not a valid lab name", shown(n)),
                    Some(parse::name_hint(n, "use letters, digits, `-`, `_` and `.`; it names the capture folder")),
                );
            }
        }
        let description = top.remove("description").and_then(|v| self.de::<String>(v, &root.key("description")));
        let seed = top.remove("seed").map_or(Some(1), |v| self.de::<u64>(v, &root.key("seed")));
        let checksum_offload =
            top.remove("checksum_offload").map_or(Some(false), |v| self.de::<bool>(v, &root.key("checksum_offload")));

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
                            format!("`{}` is not a valid node name", shown(&name)),
                            Some(parse::name_hint(
                                &name,
                                "use letters, digits, `-`, `_` and `.` (no `:`; it separates node and interface)",
                            )),
                        );
                    }
                    let p = self.node(&name, v, &path);
                    parsed.insert(name, p);
                }
            }
            Some(_) => self.err(
                root.key("nodes"),
                "`nodes` must be an object keyed by node name",
                Some("`\"nodes\": { \"sw1\": { \"kind\": \"switch\" }, … }`".into()),
            ),
        }
        // Whether `links` is what was written: not so when it is no array.
        let mut links_known = true;
        let links: Vec<Option<LinkSpec>> = match top.remove("links") {
            None => Vec::new(),
            Some(Value::Array(a)) => a
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    let field = |k| v.get(k).and_then(Value::as_str).unwrap_or("");
                    let words = link_words(field("name"), field("a"), field("b"));
                    let p = root.key("links").index(i);
                    let l = if self.objects_only(&v, &p, "a link", &LINK_OBJECTS) { self.de(v, &p) } else { None };
                    if l.is_none() {
                        self.unaccepted_links.extend(words);
                    }
                    l
                })
                .collect(),
            Some(_) => {
                links_known = false;
                self.err(
                    root.key("links"),
                    "`links` must be an array",
                    Some("`\"links\": [ { \"a\": \"h1:eth0\", \"b\": \"sw1\" } ]`".into()),
                );
                Vec::new()
            }
        };
        let capture: Option<CaptureSpec> = match top.remove("capture") {
            None => Some(CaptureSpec::default()),
            Some(Value::Null) => {
                self.err(
                    root.key("capture"),
                    "`capture` must be an object, not null",
                    Some(
                        "leave it out to capture every link, or write `{ \"enabled\": false }` to capture none".into(),
                    ),
                );
                None
            }
            Some(v) if self.objects_only(&v, &root.key("capture"), "`capture`", &[]) => {
                self.de(v, &root.key("capture"))
            }
            Some(_) => None,
        };

        let sites: Option<IndexMap<String, SiteSpec>> = match top.remove("sites") {
            None => Some(IndexMap::new()),
            Some(v) if self.objects_only(&v, &root.key("sites"), "`sites`", &[]) => self.de(v, &root.key("sites")),
            Some(_) => None,
        };
        let insecure = top.remove("insecure").map_or(Some(false), |v| self.de::<bool>(v, &root.key("insecure")));
        let forwards = self.read_forwards(top.remove("forwards"));
        let written = super::events::Written {
            events: self.read_events(top.remove("events")),
            expect: self.read_expect(top.remove("expect")),
            links_known,
        };

        let lab = self.build(
            name.clone().unwrap_or_default(),
            &parsed,
            &links,
            links_known,
            capture.as_ref(),
            sites.as_ref(),
            insecure.unwrap_or(false),
            &written,
            &forwards,
        );
        let lab = lab?;
        Some(Lab {
            description: description.unwrap_or_default(),
            seed: seed?,
            checksum_offload: checksum_offload?,
            insecure: insecure?,
            ..lab
        })
    }

    fn node(&mut self, name: &str, v: Value, path: &JsonPath) -> Option<Parsed> {
        let Value::Object(mut obj) = v else {
            self.err(path.clone(), "a node must be an object", Some("`{ \"kind\": \"host\", … }`".into()));
            return None;
        };
        let kind = match obj.get("kind") {
            Some(Value::String(k)) => k.clone(),
            Some(_) => {
                self.err(path.key("kind"), "`kind` must be a string", Some(either(NODE_KINDS.iter())));
                return None;
            }
            None => {
                self.err(
                    path.clone(),
                    "missing field `kind`",
                    Some(format!("add {}", either(NODE_KINDS.iter().map(|k| format!("\"kind\": \"{k}\""))))),
                );
                return None;
            }
        };
        match kind.as_str() {
            "host" | "gateway" => {
                let gateway = kind == "gateway";
                let fields: &[String] = if gateway { &GATEWAY_FIELDS } else { &HOST_FIELDS };
                // Interfaces and apps are taken out and parsed one by one.
                let ifaces = obj.remove("interfaces");
                let apps = if gateway { None } else { obj.remove("apps") };
                let routes = obj.remove("routes");
                let exit = if gateway { obj.remove("exit") } else { None };
                self.unknown_keys(&obj, fields, path);
                obj.retain(|k, _| fields.contains(k));
                obj.remove("kind");
                let exit = gateway.then(|| {
                    let v = exit.unwrap_or_else(|| Value::Object(serde_json::Map::new()));
                    let p = path.key("exit");
                    let e = if self.objects_only(&v, &p, "`exit`", &[]) { self.de::<ExitSpec>(v, &p) } else { None };
                    Box::new(e.unwrap_or_default())
                });
                // A bad `site` or `tcp` is reported; the host stays a host so that its interfaces,
                // apps, and the links and targets naming it are still checked.
                let obj = Value::Object(obj);
                let mut spec: HostSpec =
                    if self.objects_only(&obj, path, "a host", &HOST_OBJECTS) { self.de(obj, path) } else { None }
                        .unwrap_or_default();
                let (interfaces, mut complete) = self.node_interfaces(name, ifaces, path);
                // Routes on their own: one that does not parse leaves the host incomplete, so that
                // targets it would have reached are not reported on top.
                if let Some(r) = routes {
                    match self.de::<Vec<crate::topology::spec::RouteSpec>>(r, &path.key("routes")) {
                        Some(r) => spec.routes = r,
                        None => complete = false,
                    }
                }
                let apps = match apps {
                    None => Vec::new(),
                    Some(Value::Array(a)) => {
                        a.into_iter().enumerate().map(|(i, v)| self.app(v, &path.key("apps").index(i))).collect()
                    }
                    Some(_) => {
                        self.err(
                            path.key("apps"),
                            "`apps` must be an array",
                            Some("`\"apps\": [ { \"kind\": \"ping\", \"to\": \"server\" } ]`".into()),
                        );
                        Vec::new()
                    }
                };
                Some(Parsed::Host { spec: Box::new(spec), interfaces, apps, complete, exit })
            }
            "switch" => {
                self.unknown_keys(&obj, &SWITCH_FIELDS, path);
                obj.retain(|k, _| SWITCH_FIELDS.contains(k));
                obj.remove("kind");
                // A bad field is reported; the switch stays a switch for the links naming it.
                Some(Parsed::Switch(self.de::<SwitchSpec>(Value::Object(obj), path).unwrap_or_default()))
            }
            "router" => {
                let ifaces = obj.remove("interfaces");
                self.unknown_keys(&obj, &ROUTER_FIELDS, path);
                obj.retain(|k, _| ROUTER_FIELDS.contains(k));
                obj.remove("kind");
                let spec: RouterSpec = self.de(Value::Object(obj), path).unwrap_or_default();
                let (interfaces, complete) = self.node_interfaces(name, ifaces, path);
                Some(Parsed::Router { spec: Box::new(spec), interfaces, complete })
            }
            other => {
                let hint = did_you_mean(other, NODE_KINDS.iter().map(String::as_str))
                    .or_else(|| Some(format!("expected {}", either(NODE_KINDS.iter()))));
                self.err(path.key("kind"), format!("unknown node kind `{}`", shown(other)), hint);
                None
            }
        }
    }

    /// The interfaces of a host or router, each read on its own; and whether all of them parsed.
    fn node_interfaces(
        &mut self,
        name: &str,
        ifaces: Option<Value>,
        path: &JsonPath,
    ) -> (Vec<(String, InterfaceSpec)>, bool) {
        let mut interfaces = Vec::new();
        let mut complete = true;
        match ifaces {
            None => {}
            Some(Value::Object(m)) => {
                for (iname, v) in m {
                    let p = path.key("interfaces").key(&iname);
                    if !parse::valid_name(&iname) {
                        self.err_key(
                            p.clone(),
                            format!("`{}` is not a valid interface name", shown(&iname)),
                            Some(parse::name_hint(&iname, "use letters, digits, `-`, `_` and `.`")),
                        );
                    }
                    // Every address written anywhere in the interface (`addresses`, or a
                    // misspelt key): if the interface is not read whole, a target naming
                    // one of them is not reported as unknown on top.
                    let written: Vec<IpAddr> = v
                        .as_object()
                        .into_iter()
                        .flat_map(|o| o.values())
                        .flat_map(|x| x.as_array().map_or_else(|| vec![x], |a| a.iter().collect()))
                        .filter_map(|a| address_part(a.as_str()?))
                        .collect();
                    let parsed = if self.objects_only(&v, &p, "an interface", &[]) {
                        self.read::<InterfaceSpec>(v, &p)
                    } else {
                        Read::Failed
                    };
                    match parsed {
                        Read::Clean(i) => interfaces.push((iname, i)),
                        // Read without a mistyped field, which may have been its addresses
                        // or gateways: checked, but what depends on it is not.
                        Read::Repaired(i) => {
                            complete = false;
                            self.unaccepted_ips.extend(written);
                            interfaces.push((iname, i));
                        }
                        Read::Failed => {
                            complete = false;
                            self.unaccepted_ips.extend(written);
                            self.unread_interfaces.insert((name.to_string(), iname));
                        }
                    }
                }
            }
            Some(_) => {
                complete = false;
                self.err(
                    path.key("interfaces"),
                    "`interfaces` must be an object keyed by interface name",
                    Some("`\"interfaces\": { \"eth0\": { \"addresses\": [\"10.0.0.1/24\"] } }`".into()),
                );
            }
        }
        (interfaces, complete)
    }

    pub(super) fn app(&mut self, v: Value, path: &JsonPath) -> Option<AppSpec> {
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
        self.app_kind = Some(kind.clone());
        let spec = self.app_spec(&kind, v, path);
        self.app_kind = None;
        spec
    }

    fn app_spec(&mut self, kind: &str, v: Value, path: &JsonPath) -> Option<AppSpec> {
        Some(match kind {
            "ping" => AppSpec::Ping(self.de::<PingSpec>(v, path)?),
            "tcp-echo-server" => AppSpec::TcpEchoServer(self.de::<ServerSpec>(v, path)?),
            "tcp-echo" => AppSpec::TcpEcho(self.de::<EchoSpec>(v, path)?),
            "udp-echo-server" => AppSpec::UdpEchoServer(self.de::<ServerSpec>(v, path)?),
            "udp-echo" => AppSpec::UdpEcho(self.de::<EchoSpec>(v, path)?),
            "tcp-sink" => AppSpec::TcpSink(self.de::<ServerSpec>(v, path)?),
            "tcp-transfer" => AppSpec::TcpTransfer(self.de::<TransferSpec>(v, path)?),
            "http-server" => AppSpec::HttpServer(self.de::<HttpServerSpec>(v, path)?),
            "http-get" => AppSpec::HttpGet(self.de::<HttpGetSpec>(v, path)?),
            "udp-stream" => AppSpec::UdpStream(self.de::<UdpStreamSpec>(v, path)?),
            "udp-stream-server" => AppSpec::UdpStreamServer(self.de::<ServerSpec>(v, path)?),
            "traceroute" => AppSpec::Traceroute(self.de::<TracerouteSpec>(v, path)?),
            other => {
                let hint = did_you_mean(other, APP_KINDS.iter().map(String::as_str))
                    .or_else(|| Some(format!("one of: {}", APP_KINDS.join(", "))));
                self.err(path.key("kind"), format!("unknown app kind `{}`", shown(other)), hint);
                return None;
            }
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        &mut self,
        name: String,
        parsed: &IndexMap<String, Option<Parsed>>,
        links: &[Option<LinkSpec>],
        links_known: bool,
        capture: Option<&CaptureSpec>,
        sites: Option<&IndexMap<String, SiteSpec>>,
        insecure: bool,
        written: &super::events::Written,
        forwards: &[Option<crate::topology::spec::ForwardSpec>],
    ) -> Option<Lab> {
        let (mut nodes, status) = self.nodes(parsed);
        let names: Vec<&str> = parsed.keys().map(String::as_str).collect();
        let specs = links;
        let (links, spec_index) = self.links(&names, specs, &mut nodes, &status);
        let (sites, tunnels) = self.sites(&super::sites::SiteInput {
            sites,
            insecure,
            nodes: &nodes,
            links: &links,
            spec_index: &spec_index,
            specs,
        });
        // Segments, once every node and link was read and accepted: else what they would show
        // may only follow from a problem reported already.
        let known = links_known
            && !self.misspelt_shape
            && links.len() == specs.len()
            && !nodes.is_empty()
            && status.iter().all(|s| *s == Status::Complete);
        let segments = known.then(|| Segments::new(&nodes, &links));
        if let Some(s) = &segments {
            self.segment_warnings(&nodes, &links, s);
        }
        // Apps last, now that every address is known.
        self.host_apps(parsed, &mut nodes, &status, segments.as_ref());
        let capture = self.capture(capture, &name, &nodes, &links);
        let (events, expect) = self.timed(written, parsed, &nodes, &links, &status, segments.as_ref());
        let forwards = self.forwards(forwards, &nodes, &status, segments.as_ref());
        if !self.problems.is_empty() {
            return None;
        }
        Some(Lab {
            name,
            description: String::new(),
            seed: 1,
            checksum_offload: false,
            nodes,
            links,
            capture: capture?,
            warnings: Vec::new(),
            sites,
            tunnels,
            insecure,
            events,
            expect,
            forwards,
        })
    }

    /// Each node with its interfaces and settings, and how much of it parsed; links and apps come later.
    fn nodes(&mut self, parsed: &IndexMap<String, Option<Parsed>>) -> (Vec<Node>, Vec<Status>) {
        let nodes_path = JsonPath::root().key("nodes");
        let mut nodes = Vec::new();
        // Every address and MAC, to find duplicates: value -> where it was first seen.
        let mut seen_ip: BTreeMap<IpAddress, JsonPath> = BTreeMap::new();
        let mut seen_mac: BTreeMap<EthernetAddress, JsonPath> = BTreeMap::new();
        let mut status = Vec::new();

        for (i, (node_name, p)) in parsed.iter().enumerate() {
            let id = NodeId(u32::try_from(i).unwrap_or(u32::MAX));
            let path = nodes_path.key(node_name);
            let mut st = Status::Complete;
            let (site, kind) = match p {
                None => {
                    st = Status::Broken;
                    (None, None)
                }
                Some(Parsed::Switch(s)) => {
                    let ageing = self.duration(s.mac_ageing.as_ref(), Duration::from_secs(300), &path, "mac_ageing");
                    (s.site.clone(), Some(NodeKind::Switch(Switch { mac_ageing: ageing, ports: Vec::new() })))
                }
                Some(Parsed::Host { spec, interfaces, complete, exit, .. }) => {
                    if !complete {
                        st = Status::Incomplete;
                    }
                    let mut out = Vec::new();
                    self.host_interface_count(node_name, interfaces.len(), &path);
                    for (iname, ispec) in interfaces {
                        let ipath = path.key("interfaces").key(iname);
                        let (iface, all_addresses) =
                            self.interface(node_name, iname, ispec, &ipath, &mut seen_ip, &mut seen_mac);
                        if !all_addresses {
                            st = Status::Incomplete;
                        }
                        out.push(iface);
                    }
                    let tcp = self.tcp(spec.tcp.as_ref(), &path);
                    let before = self.problems.len();
                    let routes = self.host_routes(node_name, &spec.routes, &mut out, &path);
                    if self.problems.len() > before {
                        st = Status::Incomplete;
                    }
                    let exit = exit.as_ref().map(|e| self.exit(e, &path));
                    (
                        spec.site.clone(),
                        Some(NodeKind::Host(Host { interfaces: out, tcp, apps: Vec::new(), routes, exit })),
                    )
                }
                Some(Parsed::Router { spec, interfaces, complete }) => {
                    if !complete {
                        st = Status::Incomplete;
                    }
                    let mut out = Vec::new();
                    for (iname, ispec) in interfaces {
                        let ipath = path.key("interfaces").key(iname);
                        let (iface, all_addresses) =
                            self.interface(node_name, iname, ispec, &ipath, &mut seen_ip, &mut seen_mac);
                        if !all_addresses {
                            st = Status::Incomplete;
                        }
                        out.push(iface);
                    }
                    let routes = self.routes(node_name, &spec.routes, &mut out, &path);
                    (spec.site.clone(), Some(NodeKind::Router(Router { interfaces: out, routes })))
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
            status.push(st);
        }
        if parsed.is_empty() && self.problems.is_empty() {
            self.err(nodes_path.clone(), "the lab has no nodes", Some("add hosts and switches under `nodes`".into()));
        }
        (nodes, status)
    }

    /// The TCP settings of the host at `node`.
    fn tcp(&mut self, spec: Option<&TcpSpec>, node: &JsonPath) -> TcpConfig {
        let d = TcpConfig::default();
        let Some(s) = spec else { return d };
        let path = &node.key("tcp");
        let buf = |cx: &mut Cx, b: Option<&ByteSize>, key: &str, dflt: usize| -> usize {
            let v = match b {
                None => return dflt,
                Some(ByteSize::Bytes(n)) => Ok(*n),
                Some(ByteSize::Text(t)) => parse::bytes(t),
            };
            match v {
                Ok(n) if (1024..=(1 << 30)).contains(&n) => usize::try_from(n).unwrap_or(dflt),
                Ok(n) => {
                    cx.err(
                        path.key(key),
                        format!("buffer of {n} bytes is out of range 1KiB to 1GiB"),
                        Some("such as `256KiB` (the default)".into()),
                    );
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
        let ack_delay = s.ack_delay.as_ref().map(|a| self.duration(Some(a), Duration::ZERO, path, "ack_delay"));
        TcpConfig {
            congestion: s.congestion.unwrap_or(d.congestion),
            rx_buffer,
            tx_buffer,
            ack_delay: ack_delay.filter(|d| !d.is_zero()),
            nagle: s.nagle.unwrap_or(false),
        }
    }
}
