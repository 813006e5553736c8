//! What an expectation (`expect`) can measure: each app kind's metrics, read from its result in
//! the run's report, and the reasons a link drops frames. Validation checks an expectation against
//! these tables; the runtime reads the values they point to.
//!
//! A metric is a field of an app's result as the report writes it (a JSON pointer into the app's
//! entry), scaled into its unit. Giving a new app kind metrics is one row in [`APP_METRICS`].

use std::fmt::Write as _;

use super::diag::shown;
use super::parse;
use super::spec::BoundSpec;

/// The unit of a metric: how a bound is written, and how a value is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A fraction, 0 to 1: written `0.01` or `"1%"`, shown as a percentage.
    Fraction,
    /// Seconds: written with a unit, `"30ms"`.
    Duration,
    /// Bits per second: written with a unit, `"50Mbit"`.
    Rate,
    /// A whole number: `3`.
    Count,
    /// Bytes: `1500` or `"4MiB"`.
    Bytes,
}

/// One metric of an app kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric {
    /// Its name in an expectation's `metric`.
    pub name: &'static str,
    /// Where its value is in the app's entry of the report (`apps[i]`), as a JSON pointer.
    pub field: &'static str,
    /// What the field is multiplied by to give the value in `unit` (milliseconds to seconds: 1e-3).
    pub scale: f64,
    pub unit: Unit,
}

const fn m(name: &'static str, field: &'static str, scale: f64, unit: Unit) -> Metric {
    Metric { name, field, scale, unit }
}

/// The round-trip times of an app whose result has `rtt` (ping, tcp-echo, udp-echo).
macro_rules! rtt {
    () => {
        [
            m("rtt_min", "/rtt/min_ms", 1e-3, Unit::Duration),
            m("rtt_avg", "/rtt/avg_ms", 1e-3, Unit::Duration),
            m("rtt_p50", "/rtt/p50_ms", 1e-3, Unit::Duration),
            m("rtt_p95", "/rtt/p95_ms", 1e-3, Unit::Duration),
            m("rtt_max", "/rtt/max_ms", 1e-3, Unit::Duration),
        ]
    };
}

const PING: &[Metric] = &{
    let [a, b, c, d, e] = rtt!();
    [
        m("loss", "/loss_pct", 0.01, Unit::Fraction),
        m("sent", "/sent", 1.0, Unit::Count),
        m("received", "/received", 1.0, Unit::Count),
        m("corrupt", "/corrupt", 1.0, Unit::Count),
        a,
        b,
        c,
        d,
        e,
    ]
};

const UDP_ECHO: &[Metric] = &{
    let [a, b, c, d, e] = rtt!();
    [
        m("loss", "/loss_pct", 0.01, Unit::Fraction),
        m("sent", "/sent", 1.0, Unit::Count),
        m("received", "/received", 1.0, Unit::Count),
        m("mismatched", "/mismatched", 1.0, Unit::Count),
        a,
        b,
        c,
        d,
        e,
    ]
};

const TCP_ECHO: &[Metric] = &{
    let [a, b, c, d, e] = rtt!();
    [
        m("sent", "/sent", 1.0, Unit::Count),
        m("echoed", "/echoed", 1.0, Unit::Count),
        m("mismatched", "/mismatched", 1.0, Unit::Count),
        a,
        b,
        c,
        d,
        e,
    ]
};

/// Each app kind's metrics. A kind not listed has none.
pub const APP_METRICS: &[(&str, &[Metric])] = &[
    ("ping", PING),
    ("udp-echo", UDP_ECHO),
    ("tcp-echo", TCP_ECHO),
    (
        "tcp-transfer",
        &[
            // Bytes acknowledged over the time from the connection's start to the last ACK.
            m("goodput", "/goodput_mbps", 1e6, Unit::Rate),
            m("acked", "/acked", 1.0, Unit::Bytes),
            m("seconds", "/seconds", 1.0, Unit::Duration),
        ],
    ),
    (
        "tcp-sink",
        &[
            m("bytes", "/bytes", 1.0, Unit::Bytes),
            m("corrupt_bytes", "/corrupt_bytes", 1.0, Unit::Bytes),
            m("connections", "/connections", 1.0, Unit::Count),
        ],
    ),
    ("tcp-echo-server", &[m("bytes", "/bytes", 1.0, Unit::Bytes), m("connections", "/connections", 1.0, Unit::Count)]),
    ("udp-echo-server", &[m("datagrams", "/datagrams", 1.0, Unit::Count), m("bytes", "/bytes", 1.0, Unit::Bytes)]),
    (
        "http-get",
        &[
            // The status of the last response.
            m("status", "/status", 1.0, Unit::Count),
            m("completed", "/completed", 1.0, Unit::Count),
            m("failed", "/failed", 1.0, Unit::Count),
            m("body_bytes", "/body_bytes", 1.0, Unit::Bytes),
            m("ttfb_avg", "/ttfb/avg_ms", 1e-3, Unit::Duration),
            m("ttfb_max", "/ttfb/max_ms", 1e-3, Unit::Duration),
            m("ttlb_avg", "/ttlb/avg_ms", 1e-3, Unit::Duration),
            m("ttlb_max", "/ttlb/max_ms", 1e-3, Unit::Duration),
        ],
    ),
    (
        "http-server",
        &[
            m("requests", "/requests", 1.0, Unit::Count),
            m("bad_requests", "/bad_requests", 1.0, Unit::Count),
            m("connections", "/connections", 1.0, Unit::Count),
            m("body_bytes", "/body_bytes", 1.0, Unit::Bytes),
        ],
    ),
    (
        "traceroute",
        &[
            // Hops listed: the TTL of the last one.
            m("hop_count", "/hop_count", 1.0, Unit::Count),
            // 1 when the destination answered, else 0.
            m("reached", "/reached", 1.0, Unit::Count),
        ],
    ),
    ("udp-stream", &[m("sent", "/sent", 1.0, Unit::Count), m("bytes", "/bytes", 1.0, Unit::Bytes)]),
    (
        "udp-stream-server",
        &[
            m("received", "/received", 1.0, Unit::Count),
            m("loss", "/loss_pct", 0.01, Unit::Fraction),
            m("lost", "/lost", 1.0, Unit::Count),
            // RFC 3550 interarrival jitter.
            m("jitter", "/jitter_us", 1e-6, Unit::Duration),
            m("reordered", "/reordered", 1.0, Unit::Count),
            m("duplicates", "/duplicates", 1.0, Unit::Count),
            m("delay_avg", "/delay/avg_ms", 1e-3, Unit::Duration),
        ],
    ),
];

/// The metrics of an app kind.
#[must_use]
pub fn app_metrics(kind: &str) -> &'static [Metric] {
    APP_METRICS.iter().find(|(k, _)| *k == kind).map_or(&[], |(_, ms)| ms)
}

/// The reasons a link drops a frame, as the report's `drops` names them. `all` in an expectation
/// sums them.
pub const DROP_REASONS: &[&str] = &[
    "loss",
    "queue-full",
    "mtu",
    "malformed",
    "link-down",
    "transport-down",
    "too-large",
    "tunnel-full",
    "no-route",
    "ttl",
    "neighbour-timeout",
    // Not drops: frames the link delivered corrupted, and copies it added; counted all the same.
    "corrupt",
    "duplicate",
];

/// A bound as it reads in text, for a problem's hint.
fn example(unit: Unit) -> &'static str {
    match unit {
        Unit::Fraction => "a fraction such as `0.01` or a percentage such as `\"1%\"`",
        Unit::Duration => "a duration with a unit, such as `\"30ms\"`",
        Unit::Rate => "a rate with a unit, such as `\"50Mbit\"`",
        Unit::Count => "a whole number, such as `3`",
        Unit::Bytes => "a number of bytes, such as `1500` or `\"4MiB\"`",
    }
}

impl Unit {
    /// The value a bound says, in this unit; or why it says none, and a hint.
    pub fn parse(self, b: &BoundSpec) -> Result<f64, (String, String)> {
        let hint = || format!("write {}", example(self));
        let not = |what: &str| Err((format!("{what} is not {}", self.what()), hint()));
        match (self, b) {
            (Unit::Fraction, BoundSpec::Number(n)) if (0.0..=1.0).contains(n) => Ok(*n),
            (Unit::Fraction, BoundSpec::Number(n)) => Err((
                format!("{n} is not a fraction from 0 to 1"),
                "write `0.01` or `\"1%\"` for one in a hundred".into(),
            )),
            (Unit::Fraction, BoundSpec::Text(t)) => match t.trim().strip_suffix('%').map(|p| p.trim().parse::<f64>()) {
                Some(Ok(p)) if (0.0..=100.0).contains(&p) => Ok(p / 100.0),
                _ => not(&format!("`{}`", shown(t))),
            },
            (Unit::Duration, BoundSpec::Text(t)) => {
                parse::duration(t).map(|d| d.as_secs_f64()).map_err(|e| (e, hint()))
            }
            (Unit::Rate, BoundSpec::Text(t)) =>
            {
                #[allow(clippy::cast_precision_loss)]
                parse::rate_bps(t).map(|r| r as f64).map_err(|e| (e, hint()))
            }
            (Unit::Bytes, BoundSpec::Text(t)) =>
            {
                #[allow(clippy::cast_precision_loss)]
                parse::bytes(t).map(|r| r as f64).map_err(|e| (e, hint()))
            }
            (Unit::Count | Unit::Bytes, BoundSpec::Number(n)) if *n >= 0.0 && n.fract() == 0.0 => Ok(*n),
            (Unit::Duration | Unit::Rate, BoundSpec::Number(n)) => Err((format!("{n} has no unit"), hint())),
            (_, BoundSpec::Number(n)) => not(&n.to_string()),
            (Unit::Count, BoundSpec::Text(t)) => not(&format!("`{}`", shown(t))),
        }
    }

    fn what(self) -> &'static str {
        match self {
            Unit::Fraction => "a fraction",
            Unit::Duration => "a duration",
            Unit::Rate => "a rate",
            Unit::Count => "a whole number",
            Unit::Bytes => "a number of bytes",
        }
    }

    /// A value in this unit as a person reads it: `1.5%`, `12.345 ms`, `93.214 Mbit/s`, `3`,
    /// `4.0 MiB (4194304 bytes)`.
    #[must_use]
    pub fn show(self, v: f64) -> String {
        match self {
            Unit::Fraction => format!("{}%", trim(v * 100.0, 3)),
            Unit::Duration if v < 1.0 => format!("{} ms", trim(v * 1e3, 3)),
            Unit::Duration => format!("{} s", trim(v, 3)),
            Unit::Rate => {
                let (d, u) = match v {
                    v if v >= 1e9 => (1e9, "Gbit/s"),
                    v if v >= 1e6 => (1e6, "Mbit/s"),
                    v if v >= 1e3 => (1e3, "kbit/s"),
                    _ => (1.0, "bit/s"),
                };
                format!("{} {u}", trim(v / d, 3))
            }
            Unit::Count => trim(v, 3),
            Unit::Bytes if v < 1024.0 => format!("{} B", trim(v, 0)),
            Unit::Bytes => {
                let (d, u) = match v {
                    v if v >= 1024.0 * 1024.0 * 1024.0 => (1024.0 * 1024.0 * 1024.0, "GiB"),
                    v if v >= 1024.0 * 1024.0 => (1024.0 * 1024.0, "MiB"),
                    _ => (1024.0, "KiB"),
                };
                format!("{} {u} ({} bytes)", trim(v / d, 1), trim(v, 0))
            }
        }
    }
}

/// `v` with at most `places` decimals, without trailing zeros: `1.5`, `2`, `0.125`.
fn trim(v: f64, places: usize) -> String {
    let mut s = String::new();
    let _ = write!(s, "{v:.places$}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" {
        s = "0".into();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_app_metric_has_a_unique_name_and_a_pointer() {
        for (kind, metrics) in APP_METRICS {
            let mut names: Vec<&str> = metrics.iter().map(|m| m.name).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), metrics.len(), "{kind}: a metric named twice");
            assert!(metrics.iter().all(|m| m.field.starts_with('/') && m.scale > 0.0), "{kind}");
        }
        assert_eq!(app_metrics("ping")[0].name, "loss");
        assert!(app_metrics("no-such-kind").is_empty());
    }

    #[test]
    fn every_app_kind_has_its_row() {
        let schema = schemars::schema_for!(crate::topology::spec::AppSpec).to_value();
        let kinds: Vec<&str> = schema["oneOf"]
            .as_array()
            .expect("variants")
            .iter()
            .filter_map(|v| v.pointer("/properties/kind/const").and_then(serde_json::Value::as_str))
            .collect();
        assert!(kinds.len() >= 12, "{kinds:?}");
        for kind in kinds {
            assert!(APP_METRICS.iter().any(|(k, _)| *k == kind), "app kind `{kind}` has no row in APP_METRICS");
        }
    }

    #[test]
    fn bounds_read_in_their_units() {
        let t = |s: &str| BoundSpec::Text(s.into());
        let n = BoundSpec::Number;
        assert_eq!(Unit::Fraction.parse(&t("1%")), Ok(0.01));
        assert_eq!(Unit::Fraction.parse(&n(0.25)), Ok(0.25));
        assert!(Unit::Fraction.parse(&n(2.0)).is_err());
        assert!(Unit::Fraction.parse(&t("150%")).is_err());
        assert_eq!(Unit::Duration.parse(&t("30ms")), Ok(0.03));
        assert!(Unit::Duration.parse(&n(30.0)).unwrap_err().0.contains("has no unit"));
        assert_eq!(Unit::Rate.parse(&t("50Mbit")), Ok(50e6));
        assert_eq!(Unit::Count.parse(&n(3.0)), Ok(3.0));
        assert!(Unit::Count.parse(&n(2.5)).is_err());
        assert!(Unit::Count.parse(&t("3")).is_err());
        assert_eq!(Unit::Bytes.parse(&t("4MiB")), Ok(4.0 * 1024.0 * 1024.0));
        assert_eq!(Unit::Bytes.parse(&n(1500.0)), Ok(1500.0));
    }

    #[test]
    fn values_show_in_their_units() {
        assert_eq!(Unit::Fraction.show(0.015), "1.5%");
        assert_eq!(Unit::Fraction.show(0.0), "0%");
        assert_eq!(Unit::Duration.show(0.012_345_6), "12.346 ms");
        assert_eq!(Unit::Duration.show(2.5), "2.5 s");
        assert_eq!(Unit::Rate.show(93_214_000.0), "93.214 Mbit/s");
        assert_eq!(Unit::Count.show(3.0), "3");
        assert_eq!(Unit::Bytes.show(512.0), "512 B");
        assert_eq!(Unit::Bytes.show(4.0 * 1024.0 * 1024.0), "4 MiB (4194304 bytes)");
    }
}
