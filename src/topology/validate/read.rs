//! Reading one element with serde, and turning serde's messages into a lab file's words.
//!
//! serde stops at the first problem of a value; [`Cx::read`] takes the field at fault out and reads
//! again, so that one element reports all of its problems, each at its own JSON path with a hint.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::Cx;
use crate::topology::diag::{closest, did_you_mean, shown, shown_quoted, JsonPath, Seg};

/// How many problems one element (a node, an interface, an app, a link…) may report.
const MAX_PROBLEMS_PER_ELEMENT: usize = 16;

impl Cx {
    /// Deserialises one element and records its problems. serde stops at the first one, so, to
    /// report every problem at once, the field at fault is taken out and the element read again
    /// (at most [`MAX_PROBLEMS_PER_ELEMENT`] times). An element whose only faults were unknown
    /// fields is returned as read without them, so that the checks of its other values still run;
    /// one with a bad value is not returned, since what it meant is unknown.
    pub(super) fn de<T: DeserializeOwned>(&mut self, v: Value, path: &JsonPath) -> Option<T> {
        match self.read(v, path) {
            Read::Clean(t) | Read::Repaired(t) => Some(t),
            Read::Failed => None,
        }
    }

    /// [`de`](Self::de), telling apart an element read cleanly from one read without its unknown
    /// fields.
    pub(super) fn read<T: DeserializeOwned>(&mut self, mut v: Value, path: &JsonPath) -> Read<T> {
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
            let msg = shorten_found_string(&e.inner().to_string(), value_at(&v, &rel));
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
    pub(super) fn objects_only(&mut self, v: &Value, path: &JsonPath, what: &str, nested: &[String]) -> bool {
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
            if path.0.last() != Some(&Seg::Key(field.to_string())) {
                path = path.key(field);
            }
            let hint = link_field_misplaced(&path, field)
                .or_else(|| did_you_mean(field, options.iter().copied()))
                .or_else(|| (!options.is_empty()).then(|| format!("known fields: {}", options.join(", "))));
            self.err_key(path, format!("unknown field `{}`", shown(field)), hint);
        } else if let Some(rest) = msg.strip_prefix("missing field `") {
            let field = rest.split('`').next().unwrap_or(rest);
            self.err(path, format!("missing field `{field}`"), Some(format!("add `\"{field}\": …` here")));
        } else if let Some(rest) = msg.strip_prefix("unknown variant `") {
            let (word, expected) = rest.split_once('`').unwrap_or((rest, ""));
            let options: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
            let hint = if path.0.last() == Some(&Seg::Key("transport".into())) {
                Some("`mem` (in memory, within a site), or between sites `udp`, `tcp` or `exec`".into())
            } else if path.0.last() == Some(&Seg::Key("distribution".into())) {
                let gauss = word.to_ascii_lowercase().starts_with("gauss");
                (if gauss {
                    Some("did you mean `normal`?".into())
                } else {
                    did_you_mean(word, options.iter().copied())
                })
                .or_else(|| Some("one of `uniform` (the default), `normal`, `pareto` or `paretonormal`".into()))
            } else {
                did_you_mean(word, options.iter().copied())
                    .or_else(|| Some(format!("expected one of: {}", options.join(", "))))
            };
            self.err(path, format!("unknown value `{}`", shown(word)), hint);
        } else if msg.contains("untagged enum ByteSize") {
            self.err(path, "expected a byte count such as 1500 or \"4MiB\"", None);
        } else if msg.starts_with("invalid type") || msg.starts_with("invalid value") {
            let rule = self.whole_number_rule(&path);
            let msg = json_words(msg, rule.map(|r| r.0));
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
                Some(format!("write a whole number without quotes, such as `{}`", rule.map_or("4", |r| r.1)))
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

    /// The range a whole-number field is held to, as its check enforces it (serde only knows the
    /// range of the Rust type: a count is a `u32`, but 1 to 1000000), and a value in it.
    fn whole_number_rule(&self, path: &JsonPath) -> Option<(&'static str, &'static str)> {
        let Some(Seg::Key(key)) = path.0.last() else { return None };
        let fits_mtu = "that fits the MTU (at most MTU − 28 over IPv4, − 48 over IPv6)";
        Some(match (key.as_str(), self.app_kind.as_deref()) {
            ("count", Some("http-get")) => ("from 1 to 100000", "1"),
            ("size", Some("udp-stream")) => {
                ("from 28 to 9000 that fits the MTU (at most MTU − 28 over IPv4, − 48 over IPv6)", "1000")
            }
            ("status", Some("http-server")) => ("from 200 to 599", "200"),
            ("max_hops", Some(_)) => ("from 1 to 255", "30"),
            ("probes", Some(_)) => ("from 1 to 10", "3"),
            ("count", Some(_)) => ("from 1 to 1000000", "4"),
            ("port", Some(_)) => ("from 1 to 65535", "7"),
            ("size", Some("tcp-echo")) => ("from 1 to 65536", "64"),
            ("size", Some("udp-echo")) => {
                ("from 1 to 9000 that fits the MTU (at most MTU − 28 over IPv4, − 48 over IPv6)", "64")
            }
            ("size", Some("ping")) => (fits_mtu, "56"),
            ("mtu", None) => ("from 576 to 9000 (from 1280 with an IPv6 address)", "1500"),
            ("queue", None) => ("from 1 to 65536", "1000"),
            ("seed", None) => ("from 0 to 18446744073709551615", "1"),
            _ => return None,
        })
    }

    /// Reports the keys of a lab, host or switch object that are not its fields. One of them may be
    /// a misspelt `links` or `interfaces`, so the lab's segments are not known for sure.
    pub(super) fn unknown_keys(&mut self, obj: &Map<String, Value>, known: &[String], path: &JsonPath) {
        for k in obj.keys() {
            if !known.contains(k) {
                self.misspelt_shape = true;
                let hint = did_you_mean(k, known.iter().map(String::as_str))
                    .or_else(|| Some(format!("known fields: {}", known.join(", "))));
                self.err_key(path.key(k), format!("unknown field `{}`", shown(k)), hint);
            }
        }
    }
}

/// A field of a link written inside one of its impair objects (`"impair": { "b_to_a": … }`).
fn link_field_misplaced(path: &JsonPath, field: &str) -> Option<String> {
    let n = path.0.len();
    let inside = match path.0.get(n.wrapping_sub(2)) {
        Some(Seg::Key(k)) if matches!(k.as_str(), "impair" | "a_to_b" | "b_to_a") => k.as_str(),
        _ => return None,
    };
    let in_link = matches!(path.0.first(), Some(Seg::Key(k)) if k == "links");
    match field {
        "a_to_b" | "b_to_a" | "state" if in_link => Some(format!(
            "`{field}` is a field of the link, beside `{inside}`: {}",
            if field == "state" {
                "`\"state\": \"down\"` starts the whole link down"
            } else {
                "`\"a_to_b\": { … }` and `\"b_to_a\": { … }` each override `impair` for one direction"
            }
        )),
        _ => None,
    }
}

/// An element as [`Cx::read`] read it.
pub(super) enum Read<T> {
    Clean(T),
    /// Read once its unknown fields were taken out (they are reported).
    Repaired(T),
    /// A value was wrong (reported); what the element meant is unknown.
    Failed,
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

/// The value at `at` inside `v`, if there is one.
fn value_at<'v>(v: &'v Value, at: &[Seg]) -> Option<&'v Value> {
    at.iter().try_fold(v, |v, seg| match seg {
        Seg::Key(k) => v.get(k.as_str()),
        Seg::Index(i) => v.get(*i),
    })
}

/// serde quotes a string it did not expect whole (`invalid type: string "…", expected …`); a
/// value of megabytes would make a message as long. The string is written again as [`shown_quoted`]
/// writes it: the same text for a short one, cut for a long one.
fn shorten_found_string(msg: &str, found: Option<&Value>) -> String {
    let Some(Value::String(s)) = found else { return msg.to_string() };
    for prefix in ["invalid type: string \"", "invalid value: string \""] {
        let rest = msg.strip_prefix(prefix).and_then(|r| r.rsplit_once("\", expected "));
        if let Some((_, expected)) = rest {
            return format!("{prefix}{}\", expected {expected}", shown_quoted(s));
        }
    }
    msg.to_string()
}

/// A serde type error in the words of JSON rather than Rust: `map` is an object, `u32` a whole
/// number, held to `rule` when the field has one (else to the range of its Rust type).
fn json_words(msg: &str, rule: Option<&str>) -> String {
    let whole = |range: &str| format!("expected a whole number {}", rule.unwrap_or(range));
    let mut m = msg
        .replace("invalid type: map", "invalid type: object")
        .replace("invalid type: sequence", "invalid type: array")
        .replace("invalid type: floating point", "invalid type: number")
        .replace("integer `", "number `")
        .replace("expected a sequence", "expected an array")
        .replace("expected a map", "expected an object")
        .replace("expected u16", &whole("from 0 to 65535"))
        .replace("expected u32", &whole("from 0 to 4294967295"))
        .replace("expected u64", &whole("from 0 to 18446744073709551615"))
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
