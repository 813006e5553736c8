//! The lab's `events`: changes at simulated times, read one by one like apps, then resolved against
//! the lab in the order they apply (by `at`, then file order), so that a `stop` finds the apps
//! that earlier `start`s added and a `heal` the partition it ends.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

use super::apps::labelled;
use super::elements::Parsed;
use super::fields::EVENT_KINDS;
use super::targets::LabView;
use super::{Cx, Status};
use crate::topology::diag::{did_you_mean, listing, shown, JsonPath, Suggestions};
use crate::topology::limits;
use crate::topology::model::{select_app, App, Event, EventAction, Link, LinkId, NodeId, NodeKind};
use crate::topology::parse;
use crate::topology::spec::{EventSpec, ExpectSpec, ImpairSpec};

/// The `events` and `expect` of a lab file as read, before they are resolved against the lab.
#[derive(Default)]
pub(super) struct Written {
    pub(super) events: Vec<Option<EventSpec>>,
    pub(super) expect: Vec<Option<ExpectSpec>>,
    /// `links` was an array: the lab's links are those read.
    pub(super) links_known: bool,
}

/// What the events add to the lab's hosts, for the expectations that name it.
#[derive(Default)]
pub(super) struct Started {
    /// Apps started by events, by host, in the order they start.
    pub(super) apps: BTreeMap<usize, Vec<App>>,
    /// Hosts of a `start` event that did not resolve: their apps are not known whole.
    pub(super) unknown: BTreeSet<usize>,
}

impl Started {
    /// The labels of a host's apps: its own, then those events start on it.
    pub(super) fn labels<'a>(&'a self, own: &'a [App], node: usize) -> Vec<&'a str> {
        own.iter().chain(self.apps.get(&node).into_iter().flatten()).map(|a| a.label.as_str()).collect()
    }
}

impl Cx {
    /// Reads `events`, each event on its own.
    pub(super) fn read_events(&mut self, v: Option<Value>) -> Vec<Option<EventSpec>> {
        let path = JsonPath::root().key("events");
        match v {
            None => Vec::new(),
            Some(Value::Array(a)) => {
                a.into_iter().enumerate().map(|(i, v)| self.read_event(v, &path.index(i))).collect()
            }
            Some(_) => {
                self.err(
                    path,
                    "`events` must be an array",
                    Some("`\"events\": [ { \"at\": \"2s\", \"kind\": \"link-down\", \"link\": \"wan\" } ]`".into()),
                );
                Vec::new()
            }
        }
    }

    fn read_event(&mut self, v: Value, path: &JsonPath) -> Option<EventSpec> {
        let kinds = || format!("one of: {}", EVENT_KINDS.join(", "));
        let Value::Object(mut obj) = v else {
            self.err(
                path.clone(),
                "an event must be an object",
                Some("`{ \"at\": \"2s\", \"kind\": \"link-down\", \"link\": \"wan\" }`".into()),
            );
            return None;
        };
        let kind = match obj.remove("kind") {
            Some(Value::String(k)) => k,
            Some(_) => {
                self.err(path.key("kind"), "`kind` must be a string", Some(kinds()));
                return None;
            }
            None => {
                self.err(path.clone(), "missing field `kind`", Some(kinds()));
                return None;
            }
        };
        let v = Value::Object(obj);
        if !self.objects_only(&v, path, "an event", &["impair".to_string()]) {
            return None;
        }
        Some(match kind.as_str() {
            "link-down" => EventSpec::LinkDown(self.de(v, path)?),
            "link-up" => EventSpec::LinkUp(self.de(v, path)?),
            "set" => EventSpec::Set(self.de(v, path)?),
            "flap" => EventSpec::Flap(self.de(v, path)?),
            "start" => EventSpec::Start(self.de(v, path)?),
            "stop" => EventSpec::Stop(self.de(v, path)?),
            "partition" => EventSpec::Partition(self.de(v, path)?),
            "heal" => EventSpec::Heal(self.de(v, path)?),
            other => {
                let hint = did_you_mean(other, EVENT_KINDS.iter().map(String::as_str)).or_else(|| Some(kinds()));
                self.err(path.key("kind"), format!("unknown event kind `{}`", shown(other)), hint);
                return None;
            }
        })
    }

    /// A time of the lab file (`at`, a flap's `down`), or `None` when it is wrong (reported).
    fn time(&mut self, s: &str, path: &JsonPath, key: &str) -> Option<Duration> {
        let before = self.problems.len();
        let d = self.duration(Some(&s.to_string()), Duration::ZERO, path, key);
        (self.problems.len() == before).then_some(d)
    }

    /// The link named `name`, for the value at `at`; an unknown one is reported, unless it is a
    /// link that failed (reported already).
    pub(super) fn link_named(&mut self, name: &str, links: &[Link], at: JsonPath) -> Option<LinkId> {
        if let Some(l) = links.iter().find(|l| l.name == name) {
            return Some(l.id);
        }
        if self.unaccepted_links.contains(name) || self.misspelt_shape || self.links_unknown {
            return None;
        }
        let names = Suggestions::new(links.iter().map(|l| l.name.as_str()));
        let hint = names.did_you_mean(name).or_else(|| {
            Some(if links.is_empty() {
                "the lab has no links".into()
            } else {
                format!("links: {}", listing(links.iter().map(|l| l.name.as_str())))
            })
        });
        self.err(at, format!("`{}` names no link", shown(name)), hint);
        None
    }

    /// The node named `name` (a host, if `host`), for the value at `at`; problems reported,
    /// except those of a node that failed to parse (reported already).
    pub(super) fn node_named(&mut self, name: &str, lab: &LabView<'_>, at: JsonPath, host: bool) -> Option<usize> {
        match lab.by_name.get(name) {
            // No node was read (`nodes` is wrong, reported): any name would seem unknown.
            None if lab.by_name.is_empty() => None,
            Some(&i) if lab.status[i] == Status::Broken => None,
            Some(&i) if host && !matches!(lab.nodes[i].kind, NodeKind::Host(_)) => {
                let hosts = lab.hosts.candidates();
                let hint = (!hosts.is_empty()).then(|| format!("hosts: {}", listing(hosts.iter().copied())));
                self.err(at, format!("`{}` is a switch; it runs no apps", shown(name)), hint);
                None
            }
            Some(&i) => Some(i),
            None => {
                let hint =
                    if host { lab.hosts.did_you_mean(name) } else { did_you_mean(name, lab.by_name.keys().copied()) };
                let hint = hint.or_else(|| {
                    let names: Vec<&str> =
                        if host { lab.hosts.candidates().to_vec() } else { lab.by_name.keys().copied().collect() };
                    (!names.is_empty()).then(|| format!("{}: {}", if host { "hosts" } else { "nodes" }, listing(names)))
                });
                self.err(at, format!("`{}` names no node", shown(name)), hint);
                None
            }
        }
    }

    /// Resolves the events against the lab, in the order they apply; returns them in that order,
    /// with the apps they start.
    pub(super) fn resolve_events(
        &mut self,
        specs: &[Option<EventSpec>],
        lab: &LabView<'_>,
        links: &[Link],
        parsed: &indexmap::IndexMap<String, Option<Parsed>>,
    ) -> (Vec<Event>, Started) {
        let root = JsonPath::root().key("events");
        // When each applies: by time, then in file order.
        let mut order: Vec<(Duration, usize)> = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            let Some(spec) = spec else { continue };
            if let Some(at) = self.time(at_of(spec), &root.index(i), "at") {
                order.push((at, i));
            }
        }
        order.sort();
        let mut events = Vec::new();
        let mut started = Started::default();
        let mut servers = BTreeMap::new();
        let mut stopped: BTreeMap<(usize, usize), usize> = BTreeMap::new();
        // Partitions in place: name → (its event, its time).
        let mut partitions: BTreeMap<String, (usize, Duration)> = BTreeMap::new();
        // Partitions by name, each event that names one, for a heal that comes too early.
        let named_later: BTreeMap<&str, Duration> = order
            .iter()
            .rev()
            .filter_map(|(at, i)| match &specs[*i] {
                Some(EventSpec::Partition(p)) => Some((p.name.as_str(), *at)),
                _ => None,
            })
            .collect();
        for (at, i) in order {
            let Some(spec) = &specs[i] else { continue };
            let path = root.index(i);
            let before = self.problems.len();
            let action = match spec {
                EventSpec::LinkDown(e) | EventSpec::LinkUp(e) => self
                    .link_named(&e.link, links, path.key("link"))
                    .map(|link| EventAction::SetLink { link, up: matches!(spec, EventSpec::LinkUp(_)) }),
                EventSpec::Set(e) => {
                    let link = self.link_named(&e.link, links, path.key("link"));
                    self.impair(crate::topology::LinkModel::default(), &e.impair, &path.key("impair"));
                    if changes_nothing(&e.impair) {
                        self.err(
                            path.key("impair"),
                            "`impair` changes nothing",
                            Some("give what changes: `latency`, `rate`, `loss` or `queue`".into()),
                        );
                    }
                    link.map(|link| EventAction::SetModel { link, direction: e.direction, impair: e.impair.clone() })
                }
                EventSpec::Flap(e) => {
                    let link = self.link_named(&e.link, links, path.key("link"));
                    let down = self.time(&e.down, &path, "down");
                    let every = self.time(&e.every, &path, "every");
                    if !(limits::COUNT_MIN..=limits::COUNT_MAX).contains(&e.count) {
                        self.err(
                            path.key("count"),
                            format!("`count` must be 1 to {}, not {}", limits::COUNT_MAX, e.count),
                            Some("how many times the link goes down".into()),
                        );
                    }
                    match (down, every) {
                        (Some(d), _) if d.is_zero() => {
                            self.err(path.key("down"), "a flap down for 0s never goes down", None);
                        }
                        (Some(d), Some(ev)) if d >= ev => self.err(
                            path.key("down"),
                            format!(
                                "down for {} every {}, the link would never come up",
                                shown(&e.down),
                                shown(&e.every)
                            ),
                            Some("make `down` shorter than `every`".into()),
                        ),
                        _ => {}
                    }
                    match (link, down, every) {
                        (Some(link), Some(down), Some(every)) => {
                            Some(EventAction::Flap { link, down, every, count: e.count })
                        }
                        _ => None,
                    }
                }
                EventSpec::Start(e) => {
                    let node = self.node_named(&e.node, lab, path.key("node"), true);
                    let app = self.start_event(node, &e.app, (i, at), lab, &path, &mut servers);
                    if let (Some(n), None) = (node, &app) {
                        started.unknown.insert(n);
                    }
                    match (node, app) {
                        (Some(n), Some(app)) => {
                            let label = app.label.clone();
                            started.apps.entry(n).or_default().push(app);
                            Some(EventAction::StartApp { node: NodeId(n as u32), app: e.app.clone(), label })
                        }
                        _ => None,
                    }
                }
                EventSpec::Stop(e) => {
                    let node = self.node_named(&e.node, lab, path.key("node"), true);
                    node.and_then(|n| {
                        let NodeKind::Host(h) = &lab.nodes[n].kind else { return None };
                        let labels = started.labels(&h.apps, n);
                        match select_app(labels.iter().copied(), &e.app) {
                            Some(j) => {
                                if let Some(first) = stopped.insert((n, j), i) {
                                    self.err(
                                        path.key("app"),
                                        format!("`{}` is stopped already, by events[{first}]", shown(&e.app)),
                                        None,
                                    );
                                }
                                Some(EventAction::StopApp { node: NodeId(n as u32), app: e.app.clone() })
                            }
                            // An app that failed, or a start that did: reported already.
                            None if started.unknown.contains(&n) || !apps_whole(parsed, n, h.apps.len()) => None,
                            None => {
                                self.err(
                                    path.key("app"),
                                    format!(
                                        "`{}` runs no app `{}` at {}",
                                        shown(&e.node),
                                        shown(&e.app),
                                        shown(at_of(spec))
                                    ),
                                    Some(app_choices(&labels)),
                                );
                                None
                            }
                        }
                    })
                }
                EventSpec::Partition(e) => {
                    if !parse::valid_name(&e.name) {
                        self.err(
                            path.key("name"),
                            format!("`{}` is not a valid partition name", shown(&e.name)),
                            Some(parse::name_hint(&e.name, "use letters, digits, `-`, `_` and `.`")),
                        );
                    }
                    if let Some((first, since)) = partitions.get(&e.name) {
                        self.err(
                            path.key("name"),
                            format!(
                                "partition `{}` is in place already, since {} (events[{first}])",
                                shown(&e.name),
                                humantime::format_duration(*since)
                            ),
                            Some("heal it first, or give this partition another name".into()),
                        );
                    }
                    let mut inside = BTreeSet::new();
                    let mut whole = true;
                    for (k, name) in e.nodes.iter().enumerate() {
                        match self.node_named(name, lab, path.key("nodes").index(k), false) {
                            Some(n) => {
                                inside.insert(n);
                            }
                            None => whole = false,
                        }
                    }
                    if e.nodes.is_empty() {
                        self.err(path.key("nodes"), "a partition needs at least one node", None);
                    }
                    let cut: Vec<LinkId> = links
                        .iter()
                        .filter(|l| {
                            inside.contains(&l.ends[0].node().index()) != inside.contains(&l.ends[1].node().index())
                        })
                        .map(|l| l.id)
                        .collect();
                    if whole && !e.nodes.is_empty() && cut.is_empty() {
                        self.err(
                            path.key("nodes"),
                            "the partition cuts no link: no link joins these nodes to the rest of the lab",
                            Some("name the nodes to cut off, such as the hosts of one side of a link".into()),
                        );
                    }
                    partitions.entry(e.name.clone()).or_insert((i, at));
                    whole.then(|| EventAction::Partition {
                        name: e.name.clone(),
                        nodes: inside.iter().map(|n| NodeId(*n as u32)).collect(),
                        links: cut,
                    })
                }
                EventSpec::Heal(e) => {
                    if partitions.remove(&e.name).is_none() {
                        let hint = match named_later.get(e.name.as_str()) {
                            Some(t) if *t >= at => {
                                format!("its partition comes later, at {}", humantime::format_duration(*t))
                            }
                            _ if partitions.is_empty() => {
                                "a `partition` event with this `name` must come before its heal".into()
                            }
                            _ => {
                                format!("partitions in place then: {}", listing(partitions.keys().map(String::as_str)))
                            }
                        };
                        self.err(
                            path.key("name"),
                            format!("no partition `{}` is in place at {}", shown(&e.name), shown(at_of(spec))),
                            Some(hint),
                        );
                    }
                    Some(EventAction::Heal { name: e.name.clone() })
                }
            };
            if self.problems.len() == before {
                if let Some(action) = action {
                    events.push(Event { at, index: i, action });
                }
            }
        }
        (events, started)
    }

    /// The app a `start` event (`events[i]`) starts on host `node`, checked as a host's own apps
    /// are; a server must not take a port that one of the host's own servers, or one an earlier
    /// event started, listens on.
    #[allow(clippy::too_many_arguments)]
    fn start_event(
        &mut self,
        node: Option<usize>,
        app: &Value,
        (i, at): (usize, Duration),
        lab: &LabView<'_>,
        path: &JsonPath,
        servers: &mut BTreeMap<(usize, &'static str, u16), usize>,
    ) -> Option<App> {
        let app_path = path.key("app");
        if app.get("start").is_some() {
            self.err(
                app_path.key("start"),
                "an app that an event starts has no `start`",
                Some("it starts at the event's `at`; write the time there".into()),
            );
        }
        let spec = self.app(app.clone(), &app_path)?;
        let me = node?;
        let (_, kind) = self.resolve_app(&spec, me, lab, &app_path)?;
        let node = &lab.nodes[me];
        let NodeKind::Host(h) = &node.kind else { return None };
        if let Some((proto, port)) = kind.listens_on() {
            let taken = h
                .apps
                .iter()
                .position(|a| a.kind.listens_on() == Some((proto, port)))
                .map(|j| format!("its apps[{j}]"))
                .or_else(|| servers.get(&(me, proto, port)).map(|e| format!("the app events[{e}] starts")));
            if let Some(by) = taken {
                self.err(
                    app_path.key("port"),
                    format!("{proto} port {port} of `{}` is taken by {by}", shown(&node.name)),
                    Some("give each server of a host its own port".into()),
                );
                return None;
            }
            servers.insert((me, proto, port), i);
        }
        Some(labelled(&node.name, at, kind))
    }
}

/// The `at` of an event.
fn at_of(spec: &EventSpec) -> &str {
    match spec {
        EventSpec::LinkDown(e) | EventSpec::LinkUp(e) => &e.at,
        EventSpec::Set(e) => &e.at,
        EventSpec::Flap(e) => &e.at,
        EventSpec::Start(e) => &e.at,
        EventSpec::Stop(e) => &e.at,
        EventSpec::Partition(e) => &e.at,
        EventSpec::Heal(e) => &e.at,
    }
}

/// Whether an `impair` gives no field at all (whatever fields the model has).
fn changes_nothing(impair: &ImpairSpec) -> bool {
    serde_json::to_value(impair)
        .ok()
        .and_then(|v| v.as_object().map(|o| o.values().all(Value::is_null)))
        .unwrap_or(false)
}

/// Whether every app written for host `node` was accepted (`resolved` of them): if not, a label
/// that names none of them may name the one that failed.
pub(super) fn apps_whole(parsed: &indexmap::IndexMap<String, Option<Parsed>>, node: usize, resolved: usize) -> bool {
    match parsed.get_index(node) {
        Some((_, Some(Parsed::Host { apps, .. }))) => apps.len() == resolved,
        _ => false,
    }
}

/// A host's apps as a hint names them: `laptop/ping, laptop/ping#2, laptop/tcp-echo`.
pub(super) fn app_choices(labels: &[&str]) -> String {
    if labels.is_empty() {
        return "the host runs no apps then".into();
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let named: Vec<String> = labels
        .iter()
        .map(|l| {
            let n = seen.entry(l).or_default();
            *n += 1;
            if *n == 1 {
                (*l).to_string()
            } else {
                format!("{l}#{n}")
            }
        })
        .collect();
    format!("its apps: {}", listing(named.iter().map(String::as_str)))
}

impl Cx {
    /// The events and expectations of the lab, once its nodes, links and apps are known.
    pub(super) fn timed(
        &mut self,
        written: &Written,
        parsed: &indexmap::IndexMap<String, Option<Parsed>>,
        nodes: &[crate::topology::model::Node],
        links: &[Link],
        status: &[Status],
        segments: Option<&super::segments::Segments>,
    ) -> (Vec<Event>, Vec<crate::topology::model::Expectation>) {
        if written.events.is_empty() && written.expect.is_empty() {
            return (Vec::new(), Vec::new());
        }
        self.links_unknown = !written.links_known;
        let by_name: BTreeMap<&str, usize> = parsed.keys().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
        let hosts: Vec<&str> = parsed
            .iter()
            .filter(|(n, p)| matches!(p, Some(Parsed::Host { .. })) && parse::valid_name(n))
            .map(|(n, _)| n.as_str())
            .collect();
        let hosts = Suggestions::new(hosts);
        let owners = LabView::owners(nodes);
        let view = LabView { nodes, status, by_name: &by_name, hosts: &hosts, owners: &owners, segments };
        let (events, started) = self.resolve_events(&written.events, &view, links, parsed);
        let expect = self.resolve_expect(&written.expect, &view, links, parsed, &started);
        (events, expect)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::topology::validate::load_str;

    fn errors(lab: &serde_json::Value) -> Vec<String> {
        match load_str(&lab.to_string(), "t.json") {
            Ok(_) => Vec::new(),
            Err(d) => d.0.iter().map(|d| format!("{}: {}", d.path, d.message)).collect(),
        }
    }

    #[test]
    fn names_that_only_seem_unknown_after_another_mistake_are_not_reported() {
        let host = json!({ "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.1/24"] } } });
        // `links` is no array: which links there are is unknown.
        let lab = json!({
            "name": "t", "nodes": { "a": host }, "links": { "a": "a:eth0" },
            "events": [{ "at": "1s", "kind": "link-down", "link": "wan" }],
            "expect": [{ "link": "wan", "drops": "all", "max": 0 }]
        });
        assert_eq!(errors(&lab), ["links: `links` must be an array"]);
        // A link that failed is reported at the link.
        let lab = json!({
            "name": "t", "nodes": { "a": host }, "links": [{ "name": "wan", "a": "a:eth0", "b": "nowhere" }],
            "events": [{ "at": "1s", "kind": "link-down", "link": "wan" }]
        });
        let e = errors(&lab);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("links[0].b"), "{e:?}");
        // No node was read: the names of events are not reported as unknown.
        let lab = json!({
            "name": "t", "nodes": [], "events": [{ "at": "1s", "kind": "partition", "name": "p", "nodes": ["a"] }]
        });
        assert_eq!(errors(&lab), ["nodes: `nodes` must be an object keyed by node name"]);
    }

    #[test]
    fn events_are_kept_in_the_order_they_apply() {
        let host = |ip: &str| json!({ "kind": "host", "interfaces": { "eth0": { "addresses": [ip] } } });
        let lab = json!({
            "name": "t", "nodes": { "a": host("10.0.0.1/24"), "b": host("10.0.0.2/24") },
            "links": [{ "name": "wan", "a": "a:eth0", "b": "b:eth0" }],
            "events": [
                { "at": "2s", "kind": "link-up", "link": "wan" },
                { "at": "1s", "kind": "link-down", "link": "wan" },
                { "at": "2s", "kind": "set", "link": "wan", "impair": { "latency": "5ms" } }
            ]
        });
        let lab = load_str(&lab.to_string(), "t.json").unwrap_or_else(|e| panic!("{e}"));
        let order: Vec<usize> = lab.events.iter().map(|e| e.index).collect();
        assert_eq!(order, [1, 0, 2]);
    }
}
