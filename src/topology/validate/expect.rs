//! The lab's `expect`: what must hold at the end of a run, each about one thing (an app's metric,
//! a link's drops, whether a node reaches another, warnings), resolved against the lab and the
//! apps its events start.

use std::net::IpAddr;

use serde_json::Value;

use super::elements::Parsed;
use super::events::{app_choices, apps_whole, Started};
use super::interfaces::host_addrs;
use super::targets::LabView;
use super::{Cx, Status};
use crate::topology::diag::{did_you_mean, listing, shown, JsonPath};
use crate::topology::metrics::{app_metrics, Unit, DROP_REASONS};
use crate::topology::model::{
    select_app, split_selector, AppKind, Bound, Check, DirectionSpec, Expectation, Link, NodeId, NodeKind, Side,
};
use crate::topology::spec::{BoundSpec, ExpectSpec};

/// The things an expectation can be about, each with the fields that go with it.
const SUBJECTS: &[(&str, &[&str])] = &[
    ("app", &["metric", "min", "max", "equals"]),
    ("link", &["drops", "direction", "min", "max", "equals"]),
    ("reachable", &["from", "to"]),
    ("no_warnings", &[]),
];

const SHAPES: &str = "`app` and `metric`, `link` and `drops`, `reachable` with `from` and `to`, or `no_warnings`";

impl Cx {
    /// Reads `expect`, each expectation on its own.
    pub(super) fn read_expect(&mut self, v: Option<Value>) -> Vec<Option<ExpectSpec>> {
        let path = JsonPath::root().key("expect");
        match v {
            None => Vec::new(),
            Some(Value::Array(a)) => a
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    let p = path.index(i);
                    if self.objects_only(&v, &p, "an expectation", &[]) {
                        self.de(v, &p)
                    } else {
                        None
                    }
                })
                .collect(),
            Some(_) => {
                self.err(
                    path,
                    "`expect` must be an array",
                    Some(
                        "`\"expect\": [ { \"app\": \"laptop/ping\", \"metric\": \"loss\", \"max\": \"1%\" } ]`".into(),
                    ),
                );
                Vec::new()
            }
        }
    }

    /// Resolves the expectations against the lab.
    pub(super) fn resolve_expect(
        &mut self,
        specs: &[Option<ExpectSpec>],
        lab: &LabView<'_>,
        links: &[Link],
        parsed: &indexmap::IndexMap<String, Option<Parsed>>,
        started: &Started,
    ) -> Vec<Expectation> {
        let root = JsonPath::root().key("expect");
        let mut out = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            let Some(e) = spec else { continue };
            let path = root.index(i);
            let before = self.problems.len();
            let check = self.expectation(e, &path, lab, links, parsed, started);
            if self.problems.len() == before {
                if let Some(check) = check {
                    out.push(Expectation { index: i, check });
                }
            }
        }
        out
    }

    fn expectation(
        &mut self,
        e: &ExpectSpec,
        path: &JsonPath,
        lab: &LabView<'_>,
        links: &[Link],
        parsed: &indexmap::IndexMap<String, Option<Parsed>>,
        started: &Started,
    ) -> Option<Check> {
        let Ok(Value::Object(fields)) = serde_json::to_value(e) else { return None };
        let given: Vec<&str> = SUBJECTS.iter().map(|(s, _)| *s).filter(|s| fields.contains_key(*s)).collect();
        let subject = match given.as_slice() {
            [] => {
                self.err(path.clone(), "an expectation names what it is about", Some(format!("give {SHAPES}")));
                return None;
            }
            [one] => *one,
            [first, second, ..] => {
                self.err_key(
                    path.key(second),
                    format!("an expectation is about one thing: `{first}` or `{second}`, not both"),
                    Some("write two expectations".into()),
                );
                return None;
            }
        };
        let allowed = SUBJECTS.iter().find(|(s, _)| *s == subject).map_or(&[][..], |(_, f)| f);
        for key in fields.keys() {
            if key != subject && !allowed.contains(&key.as_str()) {
                let owner = SUBJECTS.iter().filter(|(_, f)| f.contains(&key.as_str())).map(|(s, _)| format!("`{s}`"));
                let owner: Vec<String> = owner.collect();
                self.err_key(
                    path.key(key),
                    format!("`{key}` does not go with `{subject}`"),
                    Some(format!("`{key}` goes with {}", owner.join(" or "))),
                );
            }
        }
        match subject {
            "app" => self.app_expectation(e, path, lab, parsed, started),
            "link" => {
                let link = self.link_named(e.link.as_deref().unwrap_or_default(), links, path.key("link"));
                let reason = match e.drops.as_deref() {
                    None => {
                        self.err(
                            path.clone(),
                            "missing field `drops`",
                            Some(format!("the drops of one reason ({}), or `all`", DROP_REASONS.join(", "))),
                        );
                        None
                    }
                    Some("all") => Some(None),
                    Some(r) if DROP_REASONS.contains(&r) => Some(Some(r.to_string())),
                    Some(r) => {
                        let hint = did_you_mean(r, DROP_REASONS.iter().copied().chain(["all"]))
                            .unwrap_or_else(|| format!("one of: {}, or `all`", DROP_REASONS.join(", ")));
                        self.err(path.key("drops"), format!("unknown drop reason `{}`", shown(r)), Some(hint));
                        None
                    }
                };
                let bound = self.bound(e, path, Unit::Count);
                let from = e.direction.map(|d| match d {
                    DirectionSpec::AToB => Side::A,
                    DirectionSpec::BToA => Side::B,
                });
                Some(Check::Drops { link: link?, reason: reason?, from, bound: bound? })
            }
            "reachable" => {
                let (Some(from), Some(to)) = (e.from.as_deref(), e.to.as_deref()) else {
                    let missing = if e.from.is_none() { "from" } else { "to" };
                    self.err(
                        path.clone(),
                        format!("missing field `{missing}`"),
                        Some("`reachable` is told from one node (`from`) to another (`to`)".into()),
                    );
                    return None;
                };
                let from_node = self.node_named(from, lab, path.key("from"), true);
                let to_node = self.node_named(to, lab, path.key("to"), true);
                let (f, t) = (from_node?, to_node?);
                let addresses: Vec<IpAddr> = host_addrs(&lab.nodes[t]).map(|c| IpAddr::from(c.address())).collect();
                let NodeKind::Host(h) = &lab.nodes[f].kind else { return None };
                let pings = h
                    .apps
                    .iter()
                    .chain(started.apps.get(&f).into_iter().flatten())
                    .any(|a| matches!(a.kind, AppKind::Ping { to, .. } if addresses.contains(&to)));
                let whole = lab.status[f] == Status::Complete
                    && apps_whole(parsed, f, h.apps.len())
                    && !started.unknown.contains(&f);
                if !pings && whole {
                    self.err(
                        path.clone(),
                        format!("no ping from `{}` to `{}` tells whether it reaches it", shown(from), shown(to)),
                        Some(format!(
                            "add `{{ \"kind\": \"ping\", \"to\": \"{}\" }}` to the apps of `{}`",
                            shown(to),
                            shown(from)
                        )),
                    );
                }
                Some(Check::Reachable {
                    from: NodeId(f as u32),
                    to: NodeId(t as u32),
                    addresses,
                    reachable: e.reachable.unwrap_or(true),
                })
            }
            _ => {
                if e.no_warnings == Some(false) {
                    self.err(
                        path.key("no_warnings"),
                        "`no_warnings` takes only `true`",
                        Some("leave the expectation out to allow warnings".into()),
                    );
                }
                Some(Check::NoWarnings)
            }
        }
    }

    fn app_expectation(
        &mut self,
        e: &ExpectSpec,
        path: &JsonPath,
        lab: &LabView<'_>,
        parsed: &indexmap::IndexMap<String, Option<Parsed>>,
        started: &Started,
    ) -> Option<Check> {
        let selector = e.app.as_deref().unwrap_or_default();
        let at = path.key("app");
        let parts = split_selector(selector).and_then(|(label, nth)| {
            let (node, kind) = label.split_once('/')?;
            Some((label, nth, node, kind))
        });
        let Some((label, nth, node, kind)) = parts else {
            self.err(
                at,
                format!("`{}` is not an app's label", shown(selector)),
                Some("write `node/kind`, such as `laptop/ping`, or `laptop/ping#2` for the second".into()),
            );
            return None;
        };
        let n = self.node_named(node, lab, at.clone(), true)?;
        let NodeKind::Host(h) = &lab.nodes[n].kind else { return None };
        let labels = started.labels(&h.apps, n);
        let whole =
            lab.status[n] == Status::Complete && apps_whole(parsed, n, h.apps.len()) && !started.unknown.contains(&n);
        if select_app(labels.iter().copied(), selector).is_none() {
            if whole {
                self.err(
                    at,
                    format!("`{}` runs no app `{}`", shown(node), shown(selector)),
                    Some(app_choices(&labels)),
                );
            }
            return None;
        }
        let metrics = app_metrics(kind);
        let Some(name) = e.metric.as_deref() else {
            let hint = if metrics.is_empty() {
                format!("`{}` has no metrics to expect", shown(kind))
            } else {
                format!("its metrics: {}", listing(metrics.iter().map(|m| m.name)))
            };
            self.err(path.clone(), "missing field `metric`", Some(hint));
            return None;
        };
        let Some(metric) = metrics.iter().find(|m| m.name == name) else {
            let hint = if metrics.is_empty() {
                format!("`{}` has no metrics to expect", shown(kind))
            } else {
                let list = format!("its metrics: {}", listing(metrics.iter().map(|m| m.name)));
                match did_you_mean(name, metrics.iter().map(|m| m.name)) {
                    Some(d) => format!("{d} {list}"),
                    None => list,
                }
            };
            self.err(path.key("metric"), format!("`{}` has no metric `{}`", shown(kind), shown(name)), Some(hint));
            return None;
        };
        let bound = self.bound(e, path, metric.unit)?;
        Some(Check::App { label: label.to_string(), nth, metric: *metric, bound })
    }

    /// The bounds of an expectation, in `unit`.
    fn bound(&mut self, e: &ExpectSpec, path: &JsonPath, unit: Unit) -> Option<Bound> {
        let before = self.problems.len();
        let read = |cx: &mut Cx, b: Option<&BoundSpec>, key: &str| {
            b.and_then(|b| match unit.parse(b) {
                Ok(v) => Some(v),
                Err((message, hint)) => {
                    cx.err(path.key(key), message, Some(hint));
                    None
                }
            })
        };
        let min = read(self, e.min.as_ref(), "min");
        let max = read(self, e.max.as_ref(), "max");
        let equals = read(self, e.equals.as_ref(), "equals");
        if e.min.is_none() && e.max.is_none() && e.equals.is_none() {
            self.err(path.clone(), "an expectation needs a bound", Some("give `min`, `max` or `equals`".into()));
        }
        if e.equals.is_some() && (e.min.is_some() || e.max.is_some()) {
            self.err_key(
                path.key("equals"),
                "`equals` takes no `min` or `max` beside it",
                Some("give `equals` alone, or `min` and `max`".into()),
            );
        }
        if let (Some(lo), Some(hi)) = (min, max) {
            if lo > hi {
                self.err(
                    path.key("min"),
                    format!("`min` {} is more than `max` {}", unit.show(lo), unit.show(hi)),
                    Some("no value can be both".into()),
                );
            }
        }
        (self.problems.len() == before).then_some(Bound { unit, min, max, equals })
    }
}
