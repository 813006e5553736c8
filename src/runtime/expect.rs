//! The lab's expectations, measured against a run's report: each app metric read from the app's
//! entry (as `--report` writes it), each link's drops from its counters, reachability from the
//! pings of one node to another, and the warnings of the lab and of the run.

use std::net::IpAddr;

use serde::Serialize;

use super::report::Report;
use crate::topology::{Check, Expectation, Lab, NodeId, Side};

/// One expectation, measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpectationResult {
    /// What it is about: `laptop/ping loss`, `wan drops (loss)`, `laptop reaches server`.
    pub what: String,
    /// What the run measured, in the bound's unit, or why nothing was.
    pub measured: String,
    /// What it had to be: `at most 1%`, `from 1 to 500`, `reachable`.
    pub bound: String,
    pub ok: bool,
}

/// Measures each expectation of `lab` that is about what this process ran (`runs_here` says which
/// nodes it ran: with `--site`, another site's apps are that site's to measure).
#[must_use]
pub fn evaluate(lab: &Lab, report: &Report, runs_here: impl Fn(NodeId) -> bool) -> Vec<ExpectationResult> {
    lab.expect
        .iter()
        .filter(|e| match &e.check {
            Check::App { label, .. } => {
                let node = label.split_once('/').map_or("", |(n, _)| n);
                lab.node_by_name(node).is_some_and(|n| runs_here(n.id))
            }
            Check::Drops { link, .. } => {
                lab.links.get(link.index()).is_some_and(|l| l.ends.iter().any(|e| runs_here(e.node())))
            }
            Check::Reachable { from, .. } => runs_here(*from),
            Check::NoWarnings => true,
        })
        .map(|e| measure(lab, report, e))
        .collect()
}

fn measure(lab: &Lab, r: &Report, e: &Expectation) -> ExpectationResult {
    let what = e.what(lab);
    let (measured, bound, ok) = match &e.check {
        Check::App { label, nth, metric, bound } => {
            let entry = r.apps.iter().filter(|a| &a.app == label).nth(nth - 1);
            let value = entry.and_then(|a| serde_json::to_value(a).ok()).map(|v| {
                // A yes-or-no field (a trace that `reached`) counts as 1 or 0.
                v.pointer(metric.field)
                    .and_then(|x| x.as_f64().or_else(|| x.as_bool().map(|b| f64::from(u8::from(b)))))
                    .map(|x| x * metric.scale)
            });
            match value {
                None => ("the app did not run".to_string(), bound.to_string(), false),
                Some(None) => ("not measured (the app has no such result yet)".to_string(), bound.to_string(), false),
                Some(Some(v)) => (bound.unit.show(v), bound.to_string(), bound.holds(v)),
            }
        }
        Check::Drops { link, reason, from, bound } => match r.links.get(link.index()) {
            None => ("the link did not run".to_string(), bound.to_string(), false),
            Some(l) => {
                let ways = match from {
                    Some(Side::A) => vec![&l.a_to_b],
                    Some(Side::B) => vec![&l.b_to_a],
                    None => vec![&l.a_to_b, &l.b_to_a],
                };
                let n: u64 = ways
                    .iter()
                    .map(|d| match reason.as_deref() {
                        // Corrupted and duplicated frames are delivered, and counted apart.
                        Some("corrupt") => d.corrupted_frames,
                        Some("duplicate") => d.duplicated_frames,
                        Some(r) => d.drops.get(r).copied().unwrap_or(0),
                        None => d.dropped(),
                    })
                    .sum();
                #[allow(clippy::cast_precision_loss)]
                let v = n as f64;
                (bound.unit.show(v), bound.to_string(), bound.holds(v))
            }
        },
        Check::Reachable { from, addresses, reachable, .. } => {
            let label = format!("{}/ping", lab.node(*from).name);
            let (mut runs, mut sent, mut received) = (0, 0, 0);
            for a in r.apps.iter().filter(|a| a.app == label) {
                let Ok(v) = serde_json::to_value(a) else { continue };
                let to = v.get("to").and_then(|t| t.as_str()).and_then(|t| t.parse::<IpAddr>().ok());
                if to.is_some_and(|t| addresses.contains(&t)) {
                    runs += 1;
                    sent += v.get("sent").and_then(serde_json::Value::as_u64).unwrap_or(0);
                    received += v.get("received").and_then(serde_json::Value::as_u64).unwrap_or(0);
                }
            }
            let bound = if *reachable { "reachable" } else { "unreachable" }.to_string();
            match (runs, sent, received) {
                (0, ..) => ("no ping to it ran".to_string(), bound, false),
                (_, 0, _) => ("no request was sent".to_string(), bound, false),
                (_, s, 0) => (format!("unreachable: none of {s} requests answered"), bound, !reachable),
                (_, s, n) => (format!("reachable: {n} of {s} requests answered"), bound, *reachable),
            }
        }
        Check::NoWarnings => {
            let mut all: Vec<String> = r.warnings.iter().map(|w| w.replace('\n', " ")).collect();
            all.extend(r.run_warnings());
            let measured = match all.len() {
                0 => "none".to_string(),
                n => format!("{n} warning{}: {}", if n == 1 { "" } else { "s" }, all.join("; ")),
            };
            (measured, "none".to_string(), all.is_empty())
        }
    };
    ExpectationResult { what, measured, bound, ok }
}

#[cfg(test)]
mod tests {
    use crate::sim::DropReason;
    use crate::topology::metrics::DROP_REASONS;

    /// An expectation names a drop reason as the counters do: every reason the core has, and no
    /// other, so that a new reason is one to add to the list; then the two counts that are not drops.
    #[test]
    fn expectations_know_every_drop_reason() {
        let mut core: Vec<&str> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        core.extend(["corrupt", "duplicate"]);
        assert_eq!(DROP_REASONS, core.as_slice());
    }
}
