//! The fields of a link model beyond latency, rate, loss and queue: jitter and its distribution,
//! reordering, bursty loss, duplication, corruption and a queue in bytes. A lab file's `impair`,
//! `a_to_b` and `b_to_a` and a `set-model` command all go through [`apply`], so that the two
//! check these fields alike.

use crate::topology::limits;
use crate::topology::model::{Distribution, GilbertElliott, LinkModel};
use crate::topology::parse;
use crate::topology::spec::{ByteSize, ImpairSpec, LossModelSpec};

/// A bad value in an impair object: the field (`jitter`, or `loss_model.p`), what is wrong and a hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: &'static str,
    pub message: String,
    pub hint: String,
}

fn probability(field: &'static str, what: &str, v: f64, out: &mut Vec<Problem>) -> Option<f64> {
    if (limits::LOSS_MIN..=limits::LOSS_MAX).contains(&v) {
        Some(v)
    } else {
        out.push(Problem {
            field,
            message: format!("{what} {v} is not a probability"),
            hint: "write 0.0 to 1.0; 0.01 is 1 %".into(),
        });
        None
    }
}

/// Sets on `m` the fields of `spec` this module knows, each one given replacing `m`'s; a bad
/// value leaves `m`'s and is reported in `out`. A spec that gives `loss` turns bursty loss off,
/// one that gives `loss_model` turns random loss off: a direction has one loss model.
pub fn apply(m: &mut LinkModel, spec: &ImpairSpec, out: &mut Vec<Problem>) {
    if let Some(j) = &spec.jitter {
        match parse::duration(j) {
            Ok(d) if d <= limits::JITTER_MAX => m.jitter = d,
            Ok(_) => out.push(Problem {
                field: "jitter",
                message: format!("jitter of {j} is more than {}", humantime::format_duration(limits::JITTER_MAX)),
                hint: "jitter varies the latency of each frame; `5ms` on a `50ms` latency is a rough WAN".into(),
            }),
            Err(e) => out.push(Problem {
                field: "jitter",
                message: e,
                hint: "write a number with a unit: `500us`, `2ms`".into(),
            }),
        }
    }
    if let Some(d) = spec.distribution {
        m.distribution = d;
    }
    if let Some(r) = spec.reorder {
        m.reorder = r;
    }
    let bursty = spec.loss_model.map(|LossModelSpec::GilbertElliott(ge)| {
        let p = probability("loss_model.p", "p", ge.p, out);
        let r = probability("loss_model.r", "r", ge.r, out);
        let good = probability("loss_model.loss_good", "loss_good", ge.loss_good.unwrap_or(0.0), out);
        let bad = probability("loss_model.loss_bad", "loss_bad", ge.loss_bad.unwrap_or(1.0), out);
        match (p, r, good, bad) {
            (Some(p), Some(r), Some(loss_good), Some(loss_bad)) => Some(GilbertElliott { p, r, loss_good, loss_bad }),
            _ => None,
        }
    });
    match (spec.loss, bursty) {
        (Some(_), Some(_)) => out.push(Problem {
            field: "loss_model",
            message: "`loss` and `loss_model` are both given".into(),
            hint: "a direction has one loss model: keep `loss` for random loss or `loss_model` for bursts".into(),
        }),
        (Some(_), None) => m.loss_model = None,
        (None, Some(Some(ge))) => {
            m.loss_model = Some(ge);
            m.loss = 0.0;
        }
        (None, Some(None) | None) => {}
    }
    if let Some(v) = spec.duplicate.and_then(|v| probability("duplicate", "duplicate", v, out)) {
        m.duplicate = v;
    }
    if let Some(v) = spec.corrupt.and_then(|v| probability("corrupt", "corrupt", v, out)) {
        m.corrupt = v;
    }
    if let Some(b) = &spec.queue_bytes {
        let n = match b {
            ByteSize::Bytes(n) => Ok(*n),
            ByteSize::Text(t) => parse::bytes(t),
        };
        match n {
            Ok(n) if (limits::QUEUE_BYTES_MIN..=limits::QUEUE_BYTES_MAX).contains(&n) => m.queue_bytes = Some(n),
            Ok(n) => out.push(Problem {
                field: "queue_bytes",
                message: format!("queue of {n} bytes is out of range 64 to 1GiB"),
                hint: "leave `queue_bytes` out for no byte limit; `64KiB` holds about 43 full frames".into(),
            }),
            Err(e) => out.push(Problem {
                field: "queue_bytes",
                message: e,
                hint: "write a byte count such as 65536 or \"64KiB\"".into(),
            }),
        }
    }
}

/// The fields of this module that are set, in a few words each, for labels and the TUI:
/// `±2ms normal`, `reorder`, `bursty loss p=0.01 r=0.3`, `1% duplicate`, `0.1% corrupt`, `queue 64KiB`.
#[must_use]
pub fn words(m: &LinkModel) -> Vec<String> {
    let pct = |x: f64| {
        let s = format!("{:.4}", x * 100.0);
        format!("{}%", s.trim_end_matches('0').trim_end_matches('.'))
    };
    let mut out = Vec::new();
    if !m.jitter.is_zero() {
        let dist = match m.distribution {
            Distribution::Uniform => "",
            Distribution::Normal => " normal",
            Distribution::Pareto => " pareto",
            Distribution::Paretonormal => " paretonormal",
        };
        out.push(format!("±{}{dist}", humantime::format_duration(m.jitter)));
    }
    if m.reorder {
        out.push("reorder".into());
    }
    if let Some(g) = m.loss_model {
        let mut w = format!("bursty loss p={} r={}", g.p, g.r);
        if g.loss_good > 0.0 || g.loss_bad < 1.0 {
            w.push_str(&format!(" good={} bad={}", g.loss_good, g.loss_bad));
        }
        out.push(w);
    }
    if m.duplicate > 0.0 {
        out.push(format!("{} duplicate", pct(m.duplicate)));
    }
    if m.corrupt > 0.0 {
        out.push(format!("{} corrupt", pct(m.corrupt)));
    }
    if let Some(b) = m.queue_bytes {
        out.push(if b % 1024 == 0 { format!("queue {}KiB", b / 1024) } else { format!("queue {b}B") });
    }
    out
}

/// The problems of [`apply`] in one line, for a command.
#[must_use]
pub fn one_line(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("{}: {} ({})", p.field, p.message, p.hint)).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::topology::spec::{Distribution, GilbertElliottSpec};

    fn spec(v: serde_json::Value) -> ImpairSpec {
        serde_json::from_value(v).expect("an impair object")
    }

    #[test]
    fn fields_given_replace_and_others_stay() {
        let mut m = LinkModel { latency: Duration::from_millis(5), ..LinkModel::default() };
        let mut out = Vec::new();
        apply(
            &mut m,
            &spec(
                serde_json::json!({ "jitter": "2ms", "distribution": "normal", "duplicate": 0.1, "queue_bytes": "64KiB" }),
            ),
            &mut out,
        );
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(
            (m.latency, m.jitter, m.distribution, m.duplicate, m.queue_bytes),
            (Duration::from_millis(5), Duration::from_millis(2), Distribution::Normal, 0.1, Some(65_536))
        );
        apply(&mut m, &spec(serde_json::json!({ "corrupt": 0.5 })), &mut out);
        assert_eq!((m.jitter, m.corrupt), (Duration::from_millis(2), 0.5));
    }

    #[test]
    fn one_loss_model_at_a_time() {
        let mut m = LinkModel { loss: 0.2, ..LinkModel::default() };
        let mut out = Vec::new();
        let ge = LossModelSpec::GilbertElliott(GilbertElliottSpec { p: 0.1, r: 0.5, loss_good: None, loss_bad: None });
        apply(&mut m, &ImpairSpec { loss_model: Some(ge), ..ImpairSpec::default() }, &mut out);
        assert_eq!(m.loss, 0.0);
        assert_eq!(m.loss_model.map(|g| (g.loss_good, g.loss_bad)), Some((0.0, 1.0)));
        apply(&mut m, &ImpairSpec { loss: Some(0.3), ..ImpairSpec::default() }, &mut out);
        assert_eq!(m.loss_model, None);
        assert!(out.is_empty());
        apply(&mut m, &ImpairSpec { loss: Some(0.3), loss_model: Some(ge), ..ImpairSpec::default() }, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].field, "loss_model");
    }

    #[test]
    fn bad_values_are_named_and_leave_the_model() {
        let mut m = LinkModel::default();
        let mut out = Vec::new();
        apply(
            &mut m,
            &spec(serde_json::json!({
                "jitter": "11s", "duplicate": 1.5, "corrupt": -0.1, "queue_bytes": 10,
                "loss_model": { "kind": "gilbert-elliott", "p": 2.0, "r": 0.1 }
            })),
            &mut out,
        );
        let fields: Vec<&str> = out.iter().map(|p| p.field).collect();
        assert_eq!(fields, ["jitter", "loss_model.p", "duplicate", "corrupt", "queue_bytes"]);
        assert_eq!(m, LinkModel::default());
        assert!(one_line(&out).contains("duplicate: duplicate 1.5 is not a probability"), "{}", one_line(&out));
    }
}
