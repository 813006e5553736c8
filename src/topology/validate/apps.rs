//! Each host's apps, checked against the whole lab once every address is known: targets resolve
//! (see `targets`), and no two servers of a host share a protocol and port. An app's label in
//! reports is `"<node>/<kind>"`.
//!
//! [`app_for_host`] runs the same checks on one app for a lab already loaded, such as a command
//! typed in a UI or read from a replay log: there is no text to place problems in, so each is a
//! sentence that starts with its JSON path inside the app.

use std::collections::BTreeMap;
use std::time::Duration;

use indexmap::IndexMap;
use serde_json::Value;

use super::elements::Parsed;
use super::segments::Segments;
use super::targets::LabView;
use super::{Cx, Status};
use crate::topology::diag::{listing, printable, shown, JsonPath, Problem, Suggestions};
use crate::topology::model::{App, AppKind, Lab, Node, NodeId, NodeKind};
use crate::topology::parse;

impl Cx {
    /// Resolves every host's apps and hands them to their nodes.
    pub(super) fn host_apps(
        &mut self,
        parsed: &IndexMap<String, Option<Parsed>>,
        nodes: &mut [Node],
        status: &[Status],
        segments: Option<&Segments>,
    ) {
        let nodes_path = JsonPath::root().key("nodes");
        let by_name: BTreeMap<&str, usize> = parsed.keys().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
        // Hosts offered in hints: a misnamed one is reported at its name.
        let hosts: Vec<&str> = parsed
            .iter()
            .filter(|(n, p)| matches!(p, Some(Parsed::Host { .. })) && parse::valid_name(n))
            .map(|(n, _)| n.as_str())
            .collect();
        let suggested = Suggestions::new(hosts);
        let owners = LabView::owners(nodes);
        let mut host_apps = Vec::new();
        for (i, (node_name, p)) in parsed.iter().enumerate() {
            let Some(Parsed::Host { apps, .. }) = p else { continue };
            let lab =
                LabView { nodes: &*nodes, status, by_name: &by_name, hosts: &suggested, owners: &owners, segments };
            let mut out = Vec::new();
            let mut servers = Servers::default();
            for (j, a) in apps.iter().enumerate() {
                let Some(a) = a else { continue };
                let path = nodes_path.key(node_name).key("apps").index(j);
                if let Some((start, kind)) = self.resolve_app(a, i, &lab, &path) {
                    self.claim_port(&mut servers, &kind, j, node_name, &path);
                    out.push(labelled(node_name, start, kind));
                }
            }
            host_apps.push((i, out));
        }
        for (i, out) in host_apps {
            if let NodeKind::Host(h) = &mut nodes[i].kind {
                h.apps = out;
            }
        }
    }

    /// Records the server app `j` of `node` runs, if it is one, and reports a port an earlier app
    /// of the same host listens on already.
    fn claim_port(&mut self, servers: &mut Servers, kind: &AppKind, j: usize, node: &str, path: &JsonPath) {
        let Some((proto, port)) = kind.listens_on() else { return };
        let first = *servers.0.entry((proto, port)).or_insert(j);
        if first != j {
            self.err(
                path.key("port"),
                format!("{proto} port {port} of `{}` is taken by apps[{first}]", shown(node)),
                Some("give each server of a host its own port".into()),
            );
        }
    }
}

/// How deep the JSON of one app may nest. A valid app nests two levels; lab text cannot nest
/// deeper than serde_json's limit of 128, and a value built some other way is held to the same
/// before anything recurses into it (cloning, reading), so that it cannot exhaust the stack.
const MAX_DEPTH: usize = 128;

/// Validates one app spec (JSON as in a lab file's `apps` array) as if it were appended to host
/// `node`'s apps in `lab`: targets resolve against the lab, ports are checked against the host's
/// existing servers. The app's label is `"<node>/<kind>"`, as for the apps of a lab file.
///
/// # Errors
///
/// Every problem found, each a whole sentence: its JSON path inside the app (`(top level)` for the
/// app itself), the message and any hint, such as
/// ``to: target `sever` names no node (hint: did you mean `server`?)``. A `node` that is not a
/// host of `lab` is an error too. No JSON value makes this panic.
pub fn app_for_host(lab: &Lab, node: NodeId, app: &Value) -> Result<App, Vec<String>> {
    let root = JsonPath::root();
    let mut cx = Cx::default();
    let Some(me) = lab.nodes.get(node.index()) else {
        cx.err(root, format!("node {} is not in lab `{}`", node.index(), shown(&lab.name)), None);
        return Err(sentences(cx.problems));
    };
    let hosts: Vec<&str> =
        lab.nodes.iter().filter(|n| matches!(n.kind, NodeKind::Host(_))).map(|n| n.name.as_str()).collect();
    let NodeKind::Host(host) = &me.kind else {
        let hint = (!hosts.is_empty()).then(|| format!("apps run on hosts: {}", listing(hosts.iter().copied())));
        cx.err(root, format!("`{}` is a switch; it runs no apps", shown(&me.name)), hint);
        return Err(sentences(cx.problems));
    };
    let too_deep: Vec<JsonPath> = match app {
        Value::Object(fields) => {
            fields.iter().filter(|(_, v)| nests_deeper(v, MAX_DEPTH - 1)).map(|(k, _)| root.key(k)).collect()
        }
        _ if nests_deeper(app, MAX_DEPTH) => vec![root.clone()],
        _ => Vec::new(),
    };
    if !too_deep.is_empty() {
        for path in too_deep {
            cx.err(path, format!("the value nests more than {MAX_DEPTH} levels deep"), None);
        }
        return Err(sentences(cx.problems));
    }
    let spec = cx.app(app.clone(), &root);
    let by_name: BTreeMap<&str, usize> = lab.nodes.iter().enumerate().map(|(i, n)| (n.name.as_str(), i)).collect();
    // A loaded lab is whole: no node or address of it failed.
    let status = vec![Status::Complete; lab.nodes.len()];
    let owners = LabView::owners(&lab.nodes);
    let segments = Segments::new(&lab.nodes, &lab.links);
    let view = LabView {
        nodes: &lab.nodes,
        status: &status,
        by_name: &by_name,
        hosts: &Suggestions::new(hosts.iter().copied()),
        owners: &owners,
        segments: Some(&segments),
    };
    let resolved = spec.and_then(|spec| cx.resolve_app(&spec, node.index(), &view, &root));
    if let Some((start, kind)) = resolved {
        let mut servers = Servers::of(&host.apps);
        cx.claim_port(&mut servers, &kind, host.apps.len(), &me.name, &root);
        if cx.problems.is_empty() {
            return Ok(labelled(&me.name, start, kind));
        }
    }
    if cx.problems.is_empty() {
        // Every path that rejects an app reports why; this only keeps an error from being empty.
        cx.err(root, "the app was not accepted", None);
    }
    Err(sentences(cx.problems))
}

/// Each problem as `path: message (hint: …)`, in the order found, without repeats.
pub(super) fn sentences(problems: Vec<Problem>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in problems {
        let s = match p.hint {
            Some(h) => format!("{}: {} (hint: {})", p.path, printable(&p.message), printable(&h)),
            None => format!("{}: {}", p.path, printable(&p.message)),
        };
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// Whether `v` nests more than `limit` levels (a scalar is one), found without recursing.
fn nests_deeper(v: &Value, limit: usize) -> bool {
    let mut stack = vec![(v, 1)];
    while let Some((v, depth)) = stack.pop() {
        if depth > limit {
            return true;
        }
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|x| (x, depth + 1))),
            Value::Object(fields) => stack.extend(fields.values().map(|x| (x, depth + 1))),
            _ => {}
        }
    }
    false
}

/// The servers of one host by protocol and port, with the index of the app that listens first.
#[derive(Default)]
struct Servers(BTreeMap<(&'static str, u16), usize>);

impl Servers {
    /// The servers of apps already checked.
    fn of(apps: &[App]) -> Servers {
        let mut servers = Servers::default();
        for (j, a) in apps.iter().enumerate() {
            if let Some(at) = a.kind.listens_on() {
                servers.0.entry(at).or_insert(j);
            }
        }
        servers
    }
}

pub(super) fn labelled(node: &str, start: Duration, kind: AppKind) -> App {
    App { label: format!("{node}/{}", kind.name()), start, kind }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::time::Duration;

    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::app_for_host;
    use crate::topology::model::{AppKind, Lab, NodeId};
    use crate::topology::validate::load_str;

    /// Three hosts on one switch; `server` runs TCP and UDP echo servers on 7 and a TCP sink on 9.
    fn single_lan() -> Lab {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/labs/single-lan.json")).expect("lab");
        load_str(&text, "single-lan.json").unwrap_or_else(|e| panic!("{e}"))
    }

    fn id(lab: &Lab, name: &str) -> NodeId {
        lab.node_by_name(name).unwrap_or_else(|| panic!("no node {name}")).id
    }

    fn errors(lab: &Lab, node: &str, app: &Value) -> Vec<String> {
        match app_for_host(lab, id(lab, node), app) {
            Ok(a) => panic!("{app} was accepted as {a:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn a_ping_by_node_name() {
        let lab = single_lan();
        let app = app_for_host(&lab, id(&lab, "laptop"), &json!({ "kind": "ping", "to": "server", "count": 2 }))
            .expect("valid");
        assert_eq!(app.label, "laptop/ping");
        assert_eq!(app.start, Duration::ZERO);
        let AppKind::Ping { to, count, .. } = app.kind else { panic!("{:?}", app.kind) };
        assert_eq!((to, count), ("10.0.0.2".parse::<IpAddr>().unwrap(), 2));
    }

    #[test]
    fn a_tcp_transfer_to_name_and_port() {
        let lab = single_lan();
        let spec = json!({ "kind": "tcp-transfer", "to": "server:9", "bytes": "1MiB", "start": "2s" });
        let app = app_for_host(&lab, id(&lab, "desktop"), &spec).expect("valid");
        assert_eq!(app.label, "desktop/tcp-transfer");
        assert_eq!(app.start, Duration::from_secs(2));
        let AppKind::TcpTransfer { to, bytes } = app.kind else { panic!("{:?}", app.kind) };
        assert_eq!(to, ("10.0.0.2".parse::<IpAddr>().unwrap(), 9));
        assert_eq!(bytes, 1 << 20);
    }

    #[test]
    fn an_unknown_kind() {
        let lab = single_lan();
        let e = errors(&lab, "laptop", &json!({ "kind": "pong", "to": "server" }));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("kind: unknown app kind `pong` (hint: did you mean `ping`?)"), "{e:?}");
    }

    #[test]
    fn a_bad_target_with_its_hint() {
        let lab = single_lan();
        let e = errors(&lab, "laptop", &json!({ "kind": "ping", "to": "sever" }));
        assert_eq!(e, ["to: target `sever` names no node (hint: did you mean `server`?)"]);
        let e = errors(&lab, "laptop", &json!({ "kind": "tcp-echo", "to": "server", "count": 0 }));
        assert_eq!(
            e,
            ["to: `server` has no port (hint: write `server:7`)", "count: `count` must be 1 to 1000000, not 0"]
        );
    }

    #[test]
    fn ports_are_checked_against_the_hosts_servers() {
        let lab = single_lan();
        let e = errors(&lab, "server", &json!({ "kind": "tcp-sink", "port": 7 }));
        assert_eq!(
            e,
            ["port: TCP port 7 of `server` is taken by apps[0] (hint: give each server of a host its own port)"]
        );
        // UDP port 9 is free.
        let app = app_for_host(&lab, id(&lab, "server"), &json!({ "kind": "udp-echo-server", "port": 9 }));
        assert_eq!(app.expect("valid").label, "server/udp-echo-server");
    }

    #[test]
    fn a_node_that_is_not_a_host() {
        let lab = single_lan();
        let e = errors(&lab, "sw1", &json!({ "kind": "ping", "to": "server" }));
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("(top level): `sw1` is a switch; it runs no apps (hint: apps run on hosts: "),
            "{e:?}"
        );
        let e = app_for_host(&lab, NodeId(99), &json!({ "kind": "ping", "to": "server" })).expect_err("no node 99");
        assert_eq!(e, ["(top level): node 99 is not in lab `single-lan`"]);
    }

    /// `depth` arrays, one inside the other, around `inner`.
    fn nested(depth: usize, inner: Value) -> Value {
        (0..depth).fold(inner, |v, _| Value::Array(vec![v]))
    }

    /// `app` with `key` set to `v`. (`json!` would copy `v` by serialising it, recursively.)
    fn with(mut app: Value, key: &str, v: Value) -> Value {
        app.as_object_mut().expect("an object").insert(key.into(), v);
        app
    }

    /// Drops `v` level by level: dropping a value nested thousands deep recurses as deep.
    fn dismantle(v: Value) {
        let mut stack = vec![v];
        while let Some(v) = stack.pop() {
            match v {
                Value::Array(items) => stack.extend(items),
                Value::Object(fields) => stack.extend(fields.into_iter().map(|(_, v)| v)),
                _ => {}
            }
        }
    }

    #[test]
    fn hostile_values_are_errors_not_panics() {
        let lab = single_lan();
        let hostile = [
            json!(null),
            json!(7),
            json!(-1.5e300),
            json!("ping"),
            json!([{ "kind": "ping", "to": "server" }]),
            json!({}),
            json!({ "kind": null }),
            json!({ "kind": ["ping"] }),
            json!({ "kind": "ping", "to": 10 }),
            json!({ "kind": "ping", "to": null }),
            json!({ "kind": "ping", "to": ["server"] }),
            json!({ "kind": "ping", "to": { "node": "server" } }),
            json!({ "kind": "ping", "to": "server", "count": -1 }),
            json!({ "kind": "ping", "to": "server", "count": 1e20 }),
            json!({ "kind": "ping", "to": "server", "size": u64::MAX }),
            json!({ "kind": "ping", "to": "server", "interval": "99999999999999999999h" }),
            json!({ "kind": "ping", "to": "server:65536" }),
            json!({ "kind": "ping", "to": "[::1" }),
            json!({ "kind": "ping", "to": "\u{0}\u{ffff}::" }),
            json!({ "kind": "tcp-sink", "port": 70000 }),
            json!({ "kind": "tcp-transfer", "to": "server:9", "bytes": "9999999PiB" }),
            json!({ "kind": "tcp-transfer", "to": "server:9", "bytes": [[[]]] }),
            with(json!({ "kind": "tcp-transfer", "to": "server:9" }), "bytes", nested(100, json!(1))),
            with(json!({ "kind": "ping", "to": "server" }), "extra", nested(100, json!({}))),
            with(json!({ "kind": "ping" }), "to", nested(100_000, json!("server"))),
            nested(100_000, json!(null)),
        ];
        for app in hostile {
            let e = errors(&lab, "laptop", &app);
            assert!(!e.is_empty() && e.iter().all(|s| !s.trim().is_empty()), "{e:?}");
            dismantle(app);
        }
        let deep = with(json!({ "kind": "ping" }), "to", nested(100_000, json!("server")));
        assert_eq!(errors(&lab, "laptop", &deep), ["to: the value nests more than 128 levels deep"]);
        dismantle(deep);
        let deep = nested(100_000, json!({ "kind": "ping", "to": "server" }));
        assert_eq!(errors(&lab, "laptop", &deep), ["(top level): the value nests more than 128 levels deep"]);
        dismantle(deep);
    }

    /// Any JSON value: a few levels of arrays and objects over scalars, with the keys an app uses.
    fn any_json() -> impl Strategy<Value = Value> {
        let key = proptest::sample::select(vec![
            "kind", "to", "port", "count", "size", "bytes", "start", "family", "x", "path", "status", "body", "rate",
            "duration", "proto", "max_hops", "probes",
        ]);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            proptest::sample::select(vec![
                "ping",
                "tcp-echo",
                "tcp-sink",
                "tcp-transfer",
                "http-get",
                "http-server",
                "udp-stream",
                "udp-stream-server",
                "traceroute",
                "server",
                "server:7",
                "10.0.0.2",
                "fd00::2",
                "1s",
                "4MiB",
                "ipv6",
                ""
            ])
            .prop_map(Value::from),
            any::<String>().prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec((key.clone(), inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_value_is_an_app_or_errors(app in any_json()) {
            let lab = single_lan();
            match app_for_host(&lab, NodeId(1), &app) {
                Ok(a) => prop_assert!(a.label.starts_with("laptop/")),
                Err(e) => prop_assert!(!e.is_empty() && e.iter().all(|s| !s.is_empty())),
            }
        }
    }
}
