//! Lab text → validated [`Lab`], reporting every problem at once.
//!
//! Deserialisation goes element by element (each node, interface, app, link), so that one wrong
//! type does not hide the problems after it; then the semantic checks run over what parsed.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr, Ipv4Address, Ipv6Address};

use super::diag::{closest, did_you_mean, Diagnostics, JsonPath, Locator, Problem, Seg, Target};
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
    // Some editors start a UTF-8 file with a byte-order mark, which JSON does not allow; editors
    // do not show it, so columns are counted without it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let msg = e.to_string();
            let msg = msg.rsplit_once(" at line ").map_or(msg.as_str(), |(m, _)| m).to_string();
            let hint = if msg.starts_with("trailing characters") {
                "the lab object ends before this place; remove what follows it"
            } else if msg.starts_with("trailing comma") {
                "remove the comma just before this place: JSON allows none after the last member"
            } else if msg.starts_with("EOF") {
                "the text ends too early: close every string, `[` and `{`"
            } else {
                "check for a missing comma, quote or bracket just before this place"
            };
            // serde_json counts a place just after a line break as column 0.
            return Err(Diagnostics(vec![super::diag::Diagnostic {
                file: file.to_string(),
                line: e.line().max(1),
                col: e.column().max(1),
                path: "(top level)".into(),
                message: format!("invalid JSON: {msg}"),
                hint: Some(hint.into()),
            }]));
        }
    };
    let locator = Locator::new(text);
    let mut cx = Cx { problems: locator.duplicate_keys(), ..Cx::default() };
    let lab = cx.lab(value);
    if cx.problems.is_empty() {
        if let Some(lab) = lab {
            return Ok(lab);
        }
    }
    let mut diags: Vec<_> = cx.problems.into_iter().map(|p| locator.place(file, p)).collect();
    diags.sort_by_key(|d| (d.line, d.col));
    diags.dedup();
    Err(Diagnostics(diags))
}

#[derive(Default)]
struct Cx {
    problems: Vec<Problem>,
    /// Addresses written in the lab that were not accepted (bad CIDR, duplicate, or in an interface
    /// that failed to parse): a target naming one is not reported again.
    unaccepted_ips: BTreeSet<IpAddr>,
    /// Interfaces (node, interface) that did not parse: a link to one is not reported again.
    unread_interfaces: BTreeSet<(String, String)>,
    /// Names and ends of links that failed to parse or resolve: a capture naming one is not reported again.
    unaccepted_links: BTreeSet<String>,
}

/// How many problems one element (a node, an interface, an app, a link…) may report.
const MAX_PROBLEMS_PER_ELEMENT: usize = 16;
const TOP_FIELDS: &[&str] = &["name", "description", "seed", "checksum_offload", "nodes", "links", "capture"];
const HOST_FIELDS: &[&str] = &["kind", "site", "interfaces", "tcp", "apps"];
const SWITCH_FIELDS: &[&str] = &["kind", "site", "mac_ageing"];
const APP_KINDS: &[&str] =
    &["ping", "tcp-echo-server", "tcp-echo", "udp-echo-server", "udp-echo", "tcp-sink", "tcp-transfer"];

/// A node as parsed, before links and targets are resolved.
enum Parsed {
    /// `complete` is false when an interface failed to parse (so its addresses are unknown).
    Host {
        spec: Box<HostSpec>,
        interfaces: Vec<(String, InterfaceSpec)>,
        apps: Vec<Option<AppSpec>>,
        complete: bool,
    },
    Switch(SwitchSpec),
}

impl Cx {
    fn err(&mut self, path: JsonPath, message: impl Into<String>, hint: Option<String>) {
        self.problems.push(Problem { path, target: Target::Value, message: message.into(), hint });
    }

    fn err_key(&mut self, path: JsonPath, message: impl Into<String>, hint: Option<String>) {
        self.problems.push(Problem { path, target: Target::Key, message: message.into(), hint });
    }

    /// Deserialises one element and records its problems. serde stops at the first one, so, to
    /// report every problem at once, the field at fault is taken out and the element read again
    /// (at most [`MAX_PROBLEMS_PER_ELEMENT`] times). An element whose only faults were unknown
    /// fields is returned as read without them, so that the checks of its other values still run;
    /// one with a bad value is not returned, since what it meant is unknown.
    fn de<T: DeserializeOwned>(&mut self, v: Value, path: &JsonPath) -> Option<T> {
        match self.read(v, path) {
            Read::Clean(t) | Read::Repaired(t) => Some(t),
            Read::Failed => None,
        }
    }

    /// [`de`](Self::de), telling apart an element read cleanly from one read without its unknown
    /// fields.
    fn read<T: DeserializeOwned>(&mut self, mut v: Value, path: &JsonPath) -> Read<T> {
        let mut bad_value = false;
        // Fields taken out, and the fields their names were probably meant to be: a "missing
        // field" that follows from taking one out is not a problem of its own.
        let mut taken: Vec<String> = Vec::new();
        for _ in 0..MAX_PROBLEMS_PER_ELEMENT {
            let e = match serde_path_to_error::deserialize::<_, T>(&v) {
                Ok(t) if taken.is_empty() => return Read::Clean(t),
                Ok(t) => return if bad_value { Read::Failed } else { Read::Repaired(t) },
                Err(e) => e,
            };
            let rel = JsonPath::root().join_serde(e.path()).0;
            let msg = e.inner().to_string();
            if let Some(field) = msg.strip_prefix("missing field `").and_then(|r| r.split('`').next()) {
                if taken.iter().any(|t| t == field) {
                    return Read::Failed;
                }
            }
            self.serde_problem(path.join_serde(e.path()), &msg);
            let removed = if let Some(rest) = msg.strip_prefix("unknown field `") {
                let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
                let mut at = rel;
                if at.last() != Some(&Seg::Key(field.to_string())) {
                    at.push(Seg::Key(field.to_string()));
                }
                if let Some(meant) = closest(field, expected.split('`').skip(1).step_by(2)) {
                    taken.push(meant.to_string());
                }
                take_out(&mut v, &at)
            } else {
                bad_value = true;
                take_out(&mut v, &rel)
            };
            match removed {
                Some(key) => taken.push(key),
                None => return Read::Failed,
            }
        }
        Read::Failed
    }

    /// serde reads a struct from a JSON array too (field by field, in order); a lab file means an
    /// object there, so say so instead of accepting `"impair": ["1ms", …]`. Checks `v` and the
    /// fields named in `nested`.
    fn objects_only(&mut self, v: &Value, path: &JsonPath, what: &str, nested: &[&str]) -> bool {
        if v.is_array() {
            self.err(
                path.clone(),
                format!("{what} must be an object, not an array"),
                Some("write `{ \"field\": value, … }`".into()),
            );
            return false;
        }
        let mut ok = true;
        for k in nested {
            if v.get(k).is_some_and(Value::is_array) {
                self.err(
                    path.key(k),
                    format!("`{k}` must be an object, not an array"),
                    Some("write `{ \"field\": value, … }`".into()),
                );
                ok = false;
            }
        }
        ok
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
            let hint = if path.0.last() == Some(&super::diag::Seg::Key("transport".into())) {
                Some("only `mem` (frames pass in memory, in this process) exists so far".into())
            } else {
                did_you_mean(word, options.iter().copied())
                    .or_else(|| Some(format!("expected one of: {}", options.join(", "))))
            };
            self.err(path, format!("unknown value `{word}`"), hint);
        } else if msg.contains("untagged enum ByteSize") {
            self.err(path, "expected a byte count such as 1500 or \"4MiB\"", None);
        } else if msg.starts_with("invalid type") || msg.starts_with("invalid value") {
            let msg = json_words(msg);
            let msg = msg.as_str();
            let found_text = msg.starts_with("invalid type: string");
            let found_scalar = msg.starts_with("invalid type: number") || msg.starts_with("invalid type: boolean");
            let hint = if found_scalar && msg.ends_with("expected a string") {
                Some("write the value in double quotes".to_string())
            } else if found_text && msg.ends_with("expected a boolean") {
                Some("write `true` or `false`, without quotes".into())
            } else if found_text && msg.ends_with("expected a number") {
                Some("write a number without quotes, such as `0.01`".into())
            } else if found_text && msg.contains("expected a whole number") {
                Some("write a whole number without quotes, such as `4`".into())
            } else if msg.contains("expected a whole number") {
                Some("write a whole number, without a sign or a fraction, in the range given".into())
            } else if msg.ends_with("expected an array") {
                Some("write a list in square brackets, even of one item: `[ … ]`".into())
            } else {
                None
            };
            self.err(path, msg.to_string(), hint);
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
                            format!("`{name}` is not a valid node name"),
                            Some(
                                "use letters, digits, `-`, `_` and `.` (no `:`; it separates node and interface)"
                                    .into(),
                            ),
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
        let links: Vec<Option<LinkSpec>> = match top.remove("links") {
            None => Vec::new(),
            Some(Value::Array(a)) => a
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    let field = |k| v.get(k).and_then(Value::as_str).unwrap_or("");
                    let words = link_words(field("name"), field("a"), field("b"));
                    let p = root.key("links").index(i);
                    let l = if self.objects_only(&v, &p, "a link", &["impair"]) { self.de(v, &p) } else { None };
                    if l.is_none() {
                        self.unaccepted_links.extend(words);
                    }
                    l
                })
                .collect(),
            Some(_) => {
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

        let lab = self.build(name.clone().unwrap_or_default(), &parsed, &links, capture.as_ref());
        let lab = lab?;
        Some(Lab {
            description: description.unwrap_or_default(),
            seed: seed?,
            checksum_offload: checksum_offload?,
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
                // A bad `site` or `tcp` is reported; the host stays a host so that its interfaces,
                // apps, and the links and targets naming it are still checked.
                let obj = Value::Object(obj);
                let spec: HostSpec =
                    if self.objects_only(&obj, path, "a host", &["tcp"]) { self.de(obj, path) } else { None }
                        .unwrap_or_default();
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
                                    format!("`{iname}` is not a valid interface name"),
                                    Some("use letters, digits, `-`, `_` and `.`".into()),
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
                Some(Parsed::Host { spec: Box::new(spec), interfaces, apps, complete })
            }
            "switch" => {
                self.unknown_keys(&obj, SWITCH_FIELDS, path);
                obj.retain(|k, _| SWITCH_FIELDS.contains(&k.as_str()));
                obj.remove("kind");
                // A bad field is reported; the switch stays a switch for the links naming it.
                Some(Parsed::Switch(self.de::<SwitchSpec>(Value::Object(obj), path).unwrap_or_default()))
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
                    let ageing = self.duration(s.mac_ageing.as_ref(), Duration::from_secs(300), path.key("mac_ageing"));
                    (s.site.clone(), Some(NodeKind::Switch(Switch { mac_ageing: ageing, ports: Vec::new() })))
                }
                Some(Parsed::Host { spec, interfaces, complete, .. }) => {
                    if !complete {
                        st = Status::Incomplete;
                    }
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
                        let (iface, all_addresses) =
                            self.interface(node_name, iname, ispec, &ipath, &mut seen_ip, &mut seen_mac);
                        if !all_addresses {
                            st = Status::Incomplete;
                        }
                        out.push(iface);
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
            status.push(st);
        }
        if parsed.is_empty() && self.problems.is_empty() {
            self.err(nodes_path.clone(), "the lab has no nodes", Some("add hosts and switches under `nodes`".into()));
        }

        let names: Vec<&str> = parsed.keys().map(String::as_str).collect();
        let mut out_links: Vec<Link> = Vec::new();
        // The index in `links` of each entry of `out_links`, for messages.
        let mut spec_index: Vec<usize> = Vec::new();
        let mut link_names: BTreeMap<String, usize> = BTreeMap::new();
        // Union-find over nodes, joined by switch-to-switch links.
        let mut switch_sets: Vec<usize> = (0..nodes.len()).collect();
        for (i, l) in links.iter().enumerate() {
            let Some(l) = l else { continue };
            let path = JsonPath::root().key("links").index(i);
            let id = LinkId(u32::try_from(out_links.len()).unwrap_or(u32::MAX));
            let ends = Ends { names: &names, nodes: &nodes, status: &status, spec_index: &spec_index };
            let a = self.endpoint(&l.a, &ends, &path.key("a"));
            let b = self.endpoint(&l.b, &ends, &path.key("b"));
            let model = self.impair(l.impair.as_ref(), &path.key("impair"));
            let default_name = format!("{}<->{}", l.a.trim(), l.b.trim());
            let lname = match l.name.as_deref() {
                Some(n) if n.trim().is_empty() => {
                    self.err(
                        path.key("name"),
                        "a link name cannot be empty",
                        Some(format!("leave `name` out for the default, `{default_name}`")),
                    );
                    default_name
                }
                Some(n) => n.to_string(),
                None => default_name,
            };
            if let Some(prev) = link_names.insert(lname.clone(), i) {
                self.err(
                    path.clone(),
                    format!("link name `{lname}` is already used by links[{prev}]"),
                    Some("give one of them a distinct `name`".into()),
                );
            }
            let (Some(a), Some(b)) = (a, b) else {
                self.unaccepted_links.extend(link_words(&lname, &l.a, &l.b));
                continue;
            };
            if a.node() == b.node() {
                self.err(
                    path.clone(),
                    format!("link joins `{}` to itself", nodes[a.node().index()].name),
                    Some("a link joins two different nodes".into()),
                );
                self.unaccepted_links.extend(link_words(&lname, &l.a, &l.b));
                continue;
            }
            // Switches run no spanning tree: a loop among them would circulate broadcasts forever.
            if let (Attachment::SwitchPort { .. }, Attachment::SwitchPort { .. }) = (a, b) {
                let (ra, rb) = (root(&mut switch_sets, a.node().index()), root(&mut switch_sets, b.node().index()));
                if ra == rb {
                    self.err(
                        path.clone(),
                        format!(
                            "link `{lname}` closes a loop among switches (`{}` and `{}` are already joined)",
                            nodes[a.node().index()].name,
                            nodes[b.node().index()].name
                        ),
                        Some("netlab switches run no spanning tree, so broadcasts would circle forever; remove a link of the loop".into()),
                    );
                    self.unaccepted_links.extend(link_words(&lname, &l.a, &l.b));
                    continue;
                }
                switch_sets[ra] = rb;
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
            spec_index.push(i);
        }

        // Apps, now that every address is known.
        let by_name: BTreeMap<&str, usize> = parsed.keys().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
        let hosts: Vec<&str> =
            parsed.iter().filter(|(_, p)| matches!(p, Some(Parsed::Host { .. }))).map(|(n, _)| n.as_str()).collect();
        let mut host_apps = Vec::new();
        for (i, (node_name, p)) in parsed.iter().enumerate() {
            let Some(Parsed::Host { apps, .. }) = p else { continue };
            let lab = LabView { nodes: &nodes, status: &status, by_name: &by_name, hosts: &hosts };
            let mut out = Vec::new();
            // Servers of this host by protocol and port, with the app that listens first.
            let mut listening: BTreeMap<(&str, u16), usize> = BTreeMap::new();
            for (j, a) in apps.iter().enumerate() {
                let Some(a) = a else { continue };
                let path = nodes_path.key(node_name).key("apps").index(j);
                if let Some(app) = self.resolve_app(a, i, &lab, &path) {
                    if let Some((proto, port)) = app.1.listens_on() {
                        let first = *listening.entry((proto, port)).or_insert(j);
                        if first != j {
                            self.err(
                                path.key("port"),
                                format!("{proto} port {port} of `{node_name}` is taken by apps[{first}]"),
                                Some("give each server of a host its own port".into()),
                            );
                        }
                    }
                    out.push(App { label: format!("{node_name}/{}", app.1.name()), start: app.0, kind: app.1 });
                }
            }
            host_apps.push((i, out));
        }
        for (i, out) in host_apps {
            if let NodeKind::Host(h) = &mut nodes[i].kind {
                h.apps = out;
            }
        }

        let capture = self.capture(capture, &name, &nodes, &out_links);
        if !self.problems.is_empty() {
            return None;
        }
        Some(Lab {
            name,
            description: String::new(),
            seed: 1,
            checksum_offload: false,
            nodes,
            links: out_links,
            capture: capture?,
        })
    }

    fn interface(
        &mut self,
        node: &str,
        iname: &str,
        spec: &InterfaceSpec,
        path: &JsonPath,
        seen_ip: &mut BTreeMap<IpAddress, JsonPath>,
        seen_mac: &mut BTreeMap<EthernetAddress, JsonPath>,
    ) -> (Interface, bool) {
        let mut addresses: Vec<IpCidr> = Vec::new();
        // Whether every address was accepted; if not, targets naming this node are not checked again.
        let mut all_addresses = true;
        if spec.addresses.len() > 4 {
            self.err(
                path.key("addresses"),
                format!("{} addresses on one interface; at most 4", spec.addresses.len()),
                Some(
                    "a host's stack keeps four addresses per interface; one IPv4 and one IPv6 address is usual".into(),
                ),
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
                        all_addresses = false;
                    } else {
                        seen_ip.insert(c.address(), p);
                        addresses.push(c);
                    }
                }
                Err(e) => {
                    let hint = match address_part(a) {
                        Some(ip) if !a.contains('/') => {
                            format!("add the prefix length: `{ip}/{}`", if ip.is_ipv4() { 24 } else { 64 })
                        }
                        _ if e.contains("network address") || e.contains("broadcast address") => {
                            "the first and last addresses of an IPv4 subnet are reserved; use one in between".into()
                        }
                        _ => "write an address and prefix length: `10.0.0.1/24` or `fd00::1/64`".into(),
                    };
                    self.err(p, e, Some(hint));
                    all_addresses = false;
                    self.unaccepted_ips.extend(address_part(a));
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
                format!("MAC {} is already used at {first}", parse::mac_text(mac)),
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
        let mut gateway_v4: Option<Ipv4Address> = None;
        let mut gateway_v6: Option<Ipv6Address> = None;
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
                self.err(
                    p,
                    format!("gateway {ip} is this interface's own address"),
                    Some("a gateway is another host on the subnet, such as a router's address".into()),
                );
                continue;
            }
            // The first gateway of each family is kept; a later one is reported against it.
            let first = match ip {
                IpAddress::Ipv4(v4) => match gateway_v4 {
                    Some(g) => Some(("IPv4", g.to_string())),
                    None => {
                        gateway_v4 = Some(v4);
                        None
                    }
                },
                IpAddress::Ipv6(v6) => match gateway_v6 {
                    Some(g) => Some(("IPv6", g.to_string())),
                    None => {
                        gateway_v6 = Some(v6);
                        None
                    }
                },
            };
            if let Some((family, first)) = first {
                self.err(
                    p,
                    format!("gateway {ip} is a second {family} gateway (the first is {first})"),
                    Some("give at most one IPv4 and one IPv6 gateway per interface".into()),
                );
            }
        }
        let iface = Interface {
            name: iname.to_string(),
            mac,
            mtu: mtu as usize,
            addresses,
            gateway_v4,
            gateway_v6,
            link: None,
        };
        (iface, all_addresses)
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
            self.err(
                path.key("loss"),
                format!("loss {loss} is not a probability"),
                Some("write 0.0 to 1.0; 0.01 is 1 % loss".into()),
            );
        }
        let queue = s.queue.unwrap_or(1000);
        if !(1..=65_536).contains(&queue) {
            self.err(
                path.key("queue"),
                format!("queue of {queue} frames is out of range 1 to 65536"),
                Some("leave `queue` out for the default of 1000 frames".into()),
            );
        }
        LinkModel { latency, rate_bps, loss: loss.clamp(0.0, 1.0), queue_frames: queue.max(1) as usize }
    }

    fn endpoint(&mut self, text: &str, ends: &Ends<'_>, path: &JsonPath) -> Option<Attachment> {
        let (node_name, iface) = match text.trim().split_once(':') {
            Some((n, i)) => (n, Some(i)),
            None => (text.trim(), None),
        };
        let Some(idx) = ends.names.iter().position(|n| *n == node_name) else {
            // A node whose name is itself invalid (it has a `:`) is reported once, at the node.
            let full = text.trim().rsplit_once(':').map_or(text.trim(), |(n, _)| n);
            if ends.names.contains(&full) || ends.names.contains(&text.trim()) {
                return None;
            }
            let hint = did_you_mean(node_name, ends.names.iter().copied()).or_else(|| {
                Some(if ends.names.is_empty() {
                    "the lab has no nodes yet; add them under `nodes`".into()
                } else {
                    format!("nodes: {}", ends.names.join(", "))
                })
            });
            self.err(path.clone(), format!("link end `{text}` names no node"), hint);
            return None;
        };
        let node = &ends.nodes[idx];
        if ends.status[idx] == Status::Broken {
            // The node itself is reported; its links are not checked against a guess.
            return None;
        }
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
                    let hint = match inames.first() {
                        Some(f) => format!("write `{node_name}:{f}`"),
                        None if ends.status[idx] == Status::Incomplete => {
                            format!("write `{node_name}:<interface>`")
                        }
                        None => format!("`{node_name}` has no interfaces; add one under `interfaces`"),
                    };
                    self.err(path.clone(), format!("link end `{text}` is a host but names no interface"), Some(hint));
                    return None;
                };
                let Some(k) = inames.iter().position(|n| *n == i) else {
                    let unknown_interfaces = ends.status[idx] == Status::Incomplete && h.interfaces.is_empty();
                    if unknown_interfaces || self.unread_interfaces.contains(&(node_name.to_string(), i.to_string())) {
                        // This interface (or every one of this host) failed to parse and is reported.
                        return None;
                    }
                    let hint = did_you_mean(i, inames.iter().copied()).or_else(|| {
                        Some(if inames.is_empty() {
                            format!("`{node_name}` has no interfaces; add `\"{i}\": {{ … }}` under its `interfaces`")
                        } else {
                            format!("interfaces of `{node_name}`: {}", inames.join(", "))
                        })
                    });
                    self.err(path.clone(), format!("`{node_name}` has no interface `{i}`"), hint);
                    return None;
                };
                if let Some((other, _)) = h.interfaces[k].link {
                    let first = ends.spec_index.get(other.index()).copied().unwrap_or(other.index());
                    self.err(
                        path.clone(),
                        format!("interface `{node_name}:{i}` is already used by links[{first}]"),
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
        lab: &LabView<'_>,
        path: &JsonPath,
    ) -> Option<(Duration, AppKind)> {
        let secs = |n: u64| Duration::from_secs(n);
        let nodes = lab.nodes;
        let target = |cx: &mut Cx,
                      to: &str,
                      family: Option<Family>,
                      want_port: bool|
         -> Option<(IpAddr, Option<u16>)> {
            let tp = path.key("to");
            let example = match (lab.hosts.iter().find(|h| **h != nodes[me].name), want_port) {
                (Some(h), true) => format!("`{h}:7`"),
                (Some(h), false) => format!("`{h}`"),
                (None, true) => "`server:7`".to_string(),
                (None, false) => "`server`".to_string(),
            };
            let t = match parse::target(to) {
                Ok(t) => t,
                Err(e) => {
                    let hint = if want_port {
                        format!("write `node:port` or `address:port`, such as {example}")
                    } else {
                        format!("write a node name or an address, such as {example}")
                    };
                    cx.err(tp, e, Some(hint));
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
                let in_lab = |ip: IpAddr| nodes.iter().any(|n| host_addrs(n).any(|c| IpAddr::from(c.address()) == ip));
                let hint = match &t {
                    // `fd00::2:7` is a whole IPv6 address; if the lab has `fd00::2`, `:7` was meant
                    // as the port. Either way the address is not looked up again below.
                    parse::Target::Addr(IpAddr::V6(v6), _) if !in_lab(IpAddr::V6(*v6)) => {
                        let meant = bare.rsplit_once(':').and_then(|(head, last)| {
                            let ip: IpAddr = head.parse().ok()?;
                            (in_lab(ip) && last.parse::<u16>().is_ok()).then(|| format!("[{head}]:{last}"))
                        });
                        let hint = meant.map_or_else(
                            || format!("an IPv6 address with a port is written `[{bare}]:7`"),
                            |m| format!("an IPv6 address with a port is written in brackets: `{m}`"),
                        );
                        cx.err(tp.clone(), format!("`{to}` has no port"), Some(hint));
                        return None;
                    }
                    parse::Target::Addr(IpAddr::V6(_), _) => format!("write `[{bare}]:7`"),
                    _ => format!("write `{bare}:7`"),
                };
                cx.err(tp.clone(), format!("`{to}` has no port"), Some(hint));
                port_ok = false;
            }
            if !want_port && port.is_some() {
                cx.err(
                    tp.clone(),
                    format!("`{to}` has a port, which ping does not use"),
                    Some(format!("write just `{bare}`")),
                );
                port_ok = false;
            }
            let ip = match t {
                parse::Target::Addr(ip, _) => {
                    if let Some(f) = family {
                        if (f == Family::Ipv6) != ip.is_ipv6() {
                            cx.err(
                                path.key("family"),
                                format!(
                                    "`family` says {} but `to` is the {} address {ip}",
                                    if f == Family::Ipv6 { "ipv6" } else { "ipv4" },
                                    if ip.is_ipv6() { "IPv6" } else { "IPv4" }
                                ),
                                Some(
                                    "`family` only chooses among a node's addresses; leave it out with an address"
                                        .into(),
                                ),
                            );
                            return None;
                        }
                    }
                    let owner = nodes.iter().find(|n| host_addrs(n).any(|c| IpAddr::from(c.address()) == ip));
                    if owner.is_none() {
                        if !cx.unaccepted_ips.contains(&ip) {
                            cx.err(
                                tp,
                                format!("no host in the lab has address {ip}"),
                                Some(format!("use an address of a host, or name a node instead, such as {example}")),
                            );
                        }
                        return None;
                    }
                    ip
                }
                parse::Target::Node(name, _) => {
                    let Some(&idx) = lab.by_name.get(name.as_str()) else {
                        let hint = did_you_mean(&name, lab.hosts.iter().copied())
                            .or_else(|| (!lab.hosts.is_empty()).then(|| format!("hosts: {}", lab.hosts.join(", "))));
                        cx.err(tp, format!("target `{name}` names no node"), hint);
                        return None;
                    };
                    let n = &nodes[idx];
                    if lab.status[idx] == Status::Broken {
                        // The node itself is reported.
                        return None;
                    }
                    if !matches!(n.kind, NodeKind::Host(_)) {
                        let hint =
                            (!lab.hosts.is_empty()).then(|| format!("a target is a host: {}", lab.hosts.join(", ")));
                        cx.err(tp, format!("target `{name}` is a switch; it has no address"), hint);
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
                        cx.err(tp, format!("`{name}` has no {fam} address"), Some(hint.into()));
                        return None;
                    };
                    IpAddr::from(c.address())
                }
            };
            if !port_ok {
                return None;
            }
            // The source must be able to reach that family at all.
            if !host_addrs(&nodes[me]).any(|c| IpAddr::from(c.address()).is_ipv6() == ip.is_ipv6())
                && lab.status[me] == Status::Complete
            {
                cx.err(
                    tp,
                    format!(
                        "`{}` has no {} address to reach {ip} from",
                        nodes[me].name,
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
                    cx.err(
                        tp,
                        format!("{ip} is an address of `{me_name}` itself"),
                        Some("a netlab host does not send to itself; target another host".into()),
                    );
                    return None;
                }
                if !reachable(&nodes[me], ip) {
                    let fam = if ip.is_ipv6() { "IPv6" } else { "IPv4" };
                    cx.err(
                        tp,
                        format!("{ip} is on no subnet of `{me_name}`, which has no {fam} gateway"),
                        Some(
                            "target a host on one of its subnets, or set a gateway under the interface's `gateways`"
                                .into(),
                        ),
                    );
                    return None;
                }
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
        // netlab hosts do not fragment: a ping or datagram must fit the sender's MTU.
        let mtu = match &nodes[me].kind {
            NodeKind::Host(h) => h.interfaces.first().map_or(1500, |i| i.mtu),
            NodeKind::Switch(_) => 1500,
        };
        let fits_mtu = |cx: &mut Cx, size: usize, to: IpAddr, what: &str| {
            let (family, header) = if to.is_ipv6() { ("IPv6", 48) } else { ("IPv4", 28) };
            let max = mtu.saturating_sub(header);
            if size > max {
                cx.err(
                    path.key("size"),
                    format!(
                        "a {what} of {size} bytes does not fit the MTU of {mtu} (at most {max} bytes over {family})"
                    ),
                    Some("netlab hosts do not fragment; lower `size` or raise the interface's `mtu`".into()),
                );
            }
        };
        let kind = match a {
            AppSpec::Ping(p) => {
                let st = start(self, &p.start);
                let to = target(self, &p.to, p.family, false);
                let count = positive(self, p.count, "count", 4, 1_000_000);
                let size = p.size.unwrap_or(56) as usize;
                let interval = self.duration(p.interval.as_ref(), secs(1), path.key("interval"));
                let timeout = self.duration(p.timeout.as_ref(), secs(1), path.key("timeout"));
                let to = to?.0;
                fits_mtu(self, size, to, "ping payload");
                (st, AppKind::Ping { to, count, interval, size, timeout })
            }
            AppSpec::TcpEchoServer(s) => (start(self, &s.start), AppKind::TcpEchoServer { port: port(self, s.port) }),
            AppSpec::UdpEchoServer(s) => (start(self, &s.start), AppKind::UdpEchoServer { port: port(self, s.port) }),
            AppSpec::TcpSink(s) => (start(self, &s.start), AppKind::TcpSink { port: port(self, s.port) }),
            AppSpec::TcpEcho(e) | AppSpec::UdpEcho(e) => {
                let udp = matches!(a, AppSpec::UdpEcho(_));
                let st = start(self, &e.start);
                let to = target(self, &e.to, e.family, true);
                let count = positive(self, e.count, "count", 10, 1_000_000);
                let problems = self.problems.len();
                let size = positive(self, e.size, "size", 64, if udp { 9000 } else { 65_536 }) as usize;
                // A size out of range is reported already; its MTU check would be about another number.
                let size_ok = self.problems.len() == problems;
                let interval = self.duration(
                    e.interval.as_ref(),
                    if udp { Duration::from_millis(100) } else { Duration::ZERO },
                    path.key("interval"),
                );
                let timeout = self.duration(e.timeout.as_ref(), secs(1), path.key("timeout"));
                let (ip, p) = to?;
                let to = (ip, p.unwrap_or(7));
                if udp && size_ok {
                    fits_mtu(self, size, ip, "datagram");
                }
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
        };
        Some(kind)
    }

    fn capture(
        &mut self,
        spec: Option<&CaptureSpec>,
        lab_name: &str,
        nodes: &[Node],
        links: &[Link],
    ) -> Option<CaptureConfig> {
        let spec = spec?;
        let path = JsonPath::root().key("capture");
        let mut ids = Vec::new();
        match &spec.links {
            None => ids.extend(links.iter().map(|l| l.id)),
            Some(sel) => {
                for (k, s) in sel.iter().enumerate() {
                    // A link by name, or every link at an endpoint (`laptop:eth0`) or node (`sw1`).
                    let sel = s.trim();
                    let hits: Vec<LinkId> = links
                        .iter()
                        .filter(|l| l.name == sel || l.ends.iter().any(|e| endpoint_matches(nodes, *e, sel)))
                        .map(|l| l.id)
                        .collect();
                    match hits.first() {
                        Some(_) => {
                            for id in hits {
                                if !ids.contains(&id) {
                                    ids.push(id);
                                }
                            }
                        }
                        // A link that failed is reported already.
                        None if self.unaccepted_links.contains(s.trim()) => {}
                        None => {
                            let hint = did_you_mean(s, links.iter().map(|l| l.name.as_str())).or_else(|| {
                                Some(if links.is_empty() {
                                    "the lab has no links; add them under `links`".into()
                                } else {
                                    format!(
                                        "links: {}",
                                        links.iter().map(|l| l.name.as_str()).collect::<Vec<_>>().join(", ")
                                    )
                                })
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

/// An element as [`Cx::read`] read it.
enum Read<T> {
    Clean(T),
    /// Read once its unknown fields were taken out (they are reported).
    Repaired(T),
    /// A value was wrong (reported); what the element meant is unknown.
    Failed,
}

/// How much of a node parsed: a broken node (unknown kind, not an object) is a placeholder, and an
/// incomplete host lost an interface or address; checks that would only echo those problems are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Complete,
    Incomplete,
    Broken,
}

/// What a link end is resolved against.
struct Ends<'a> {
    names: &'a [&'a str],
    nodes: &'a [Node],
    status: &'a [Status],
    /// The index in `links` of each link accepted so far.
    spec_index: &'a [usize],
}

/// What an app target is resolved against.
struct LabView<'a> {
    nodes: &'a [Node],
    status: &'a [Status],
    by_name: &'a BTreeMap<&'a str, usize>,
    hosts: &'a [&'a str],
}

/// Whether `node` can send to `ip`: it is on one of its subnets, or the node has a gateway of its
/// family.
fn reachable(node: &Node, ip: IpAddr) -> bool {
    let NodeKind::Host(h) = &node.kind else { return false };
    h.interfaces.iter().any(|i| {
        i.addresses.iter().any(|c| c.contains_addr(&ip.into()))
            || match ip {
                IpAddr::V4(_) => i.gateway_v4.is_some(),
                IpAddr::V6(_) => i.gateway_v6.is_some(),
            }
    })
}

/// What a capture selection may use to name a link that failed: its name, its ends
/// (`laptop:eth0`) and their nodes (`laptop`). Selecting one of those is not reported again.
fn link_words(name: &str, a: &str, b: &str) -> Vec<String> {
    let mut w = vec![name.trim().to_string()];
    for end in [a.trim(), b.trim()] {
        w.push(end.to_string());
        w.extend(end.split_once(':').map(|(node, _)| node.to_string()));
    }
    w.retain(|s| !s.is_empty());
    w
}

/// Takes out of `v` the field that holds the value at `at` (the innermost object key on the way):
/// for `addresses[1]`, the whole `addresses`. Returns the key taken out, or `None` when there is
/// none, such as a fault in the element itself.
fn take_out(v: &mut Value, at: &[Seg]) -> Option<String> {
    let last_key = at.iter().rposition(|s| matches!(s, Seg::Key(_)))?;
    let mut parent = v;
    for seg in &at[..last_key] {
        parent = match seg {
            Seg::Key(k) => parent.get_mut(k.as_str())?,
            Seg::Index(i) => parent.get_mut(*i)?,
        };
    }
    let Seg::Key(key) = &at[last_key] else { return None };
    parent.as_object_mut()?.remove(key.as_str())?;
    Some(key.clone())
}

/// A serde type error in the words of JSON rather than Rust: `map` is an object, `u32` a whole number.
fn json_words(msg: &str) -> String {
    let mut m = msg
        .replace("invalid type: map", "invalid type: object")
        .replace("invalid type: sequence", "invalid type: array")
        .replace("invalid type: floating point", "invalid type: number")
        .replace("integer `", "number `")
        .replace("expected a sequence", "expected an array")
        .replace("expected a map", "expected an object")
        .replace("expected u16", "expected a whole number from 0 to 65535")
        .replace("expected u32", "expected a whole number from 0 to 4294967295")
        .replace("expected u64", "expected a whole number from 0 to 18446744073709551615")
        .replace("expected f64", "expected a number");
    if m.starts_with("invalid length") && m.contains("expected struct ") {
        // serde takes an array for a struct, field by field; the lab format means an object.
        return "invalid type: array, expected an object".into();
    }
    if m.ends_with("expected string or map") || m.ends_with("expected map with a single key") {
        // A unit enum such as `family` or `congestion`, given something other than a string.
        let found = m.split(',').next().unwrap_or("").replace("invalid value: map", "invalid type: object");
        return format!("{found}, expected a string");
    }
    if let Some(i) = m.find("expected struct ") {
        m.truncate(i);
        m.push_str("expected an object");
    }
    m
}

/// The IP address before any `/prefix` of an address as written, if it is one.
fn address_part(s: &str) -> Option<IpAddr> {
    s.split('/').next()?.trim().parse().ok()
}

fn host_addrs(n: &Node) -> impl Iterator<Item = IpCidr> + '_ {
    let ifaces: &[Interface] = match &n.kind {
        NodeKind::Host(h) => &h.interfaces,
        NodeKind::Switch(_) => &[],
    };
    ifaces.iter().flat_map(|i| i.addresses.iter().copied())
}

/// The representative of `i`'s set, compressing the path on the way.
fn root(sets: &mut [usize], mut i: usize) -> usize {
    while sets[i] != i {
        sets[i] = sets[sets[i]];
        i = sets[i];
    }
    i
}

/// Whether a capture selector names this link end: `node:interface` for a host, or the node's name.
fn endpoint_matches(nodes: &[Node], end: Attachment, sel: &str) -> bool {
    let node = &nodes[end.node().index()];
    if node.name == sel {
        return true;
    }
    match (end, &node.kind) {
        (Attachment::HostInterface { interface, .. }, NodeKind::Host(h)) => h
            .interfaces
            .get(interface)
            .is_some_and(|i| sel.split_once(':') == Some((node.name.as_str(), i.name.as_str()))),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_site() -> Lab {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/labs/two-site.json")).expect("lab");
        load_str(&text, "two-site.json").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn links_plug_into_interfaces_and_numbered_switch_ports() {
        let lab = two_site();
        assert_eq!(lab.to_string(), "6 nodes, 5 links");
        let hq = lab.node_by_name("hq-sw").expect("hq-sw");
        let NodeKind::Switch(sw) = &hq.kind else { panic!("hq-sw is a switch") };
        // laptop, nas, then the WAN: ports in link order.
        assert_eq!(sw.ports, vec![(LinkId(0), Side::B), (LinkId(1), Side::B), (LinkId(4), Side::A)]);
        assert_eq!(sw.mac_ageing, Duration::from_secs(300));
        let wan = lab.link(LinkId(4));
        assert_eq!(wan.name, "wan");
        assert_eq!(wan.ends[1], Attachment::SwitchPort { node: lab.node_by_name("branch-sw").unwrap().id, port: 2 });
        assert_eq!(wan.model.latency, Duration::from_millis(10));
        assert_eq!(wan.model.rate_bps, Some(50_000_000));
        assert_eq!(wan.model.queue_frames, 200);
        let laptop = lab.node_by_name("laptop").expect("laptop");
        let NodeKind::Host(h) = &laptop.kind else { panic!() };
        assert_eq!(h.interfaces[0].link, Some((LinkId(0), Side::A)));
        assert_eq!(h.interfaces[0].mtu, 1500);
        assert_eq!(h.interfaces[0].mac, parse::derived_mac("laptop", "eth0"));
        assert_eq!(lab.link(LinkId(0)).name, "laptop:eth0<->hq-sw");
        assert_eq!(laptop.site.as_deref(), Some("hq"));
    }

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
        assert_eq!(to, ["10.10.2.10", "fd00:10::2:10", "10.10.2.10:9 2097152"]);
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

    #[test]
    fn a_byte_order_mark_is_allowed() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/labs/single-lan.json")).unwrap();
        let lab = load_str(&format!("\u{feff}{text}"), "bom.json").expect("a BOM before the object is fine");
        assert_eq!(lab.name, "single-lan");
        // Places are counted as an editor shows them, without the mark.
        let err = load_str("\u{feff}{\"name\": 5}", "bom.json").unwrap_err().to_string();
        assert!(err.contains("bom.json:1:10: error:"), "{err}");
    }

    #[test]
    fn capture_defaults_to_every_link_in_the_lab_folder() {
        let lab = two_site();
        assert!(lab.capture.enabled);
        assert_eq!(lab.capture.links.len(), 5);
        assert_eq!(lab.capture.dir, PathBuf::from("captures/two-site"));
        assert_eq!(lab.capture.format, CaptureFormat::Pcapng);
        assert!(!lab.checksum_offload);
        assert_eq!(lab.seed, 1);
    }
}
