//! Lab text → validated [`Lab`], reporting every problem at once.
//!
//! Deserialisation goes element by element (each node, interface, app, link), so that one wrong
//! type does not hide the problems after it; then the semantic checks run over what parsed. Every
//! step records its problems in one `Cx` and goes on, so that a file shows all of its mistakes
//! in one run. The steps are split by concern, each file adding its part of `impl Cx`:
//!
//! - `read`: serde reads one element; each of its problems is reported in a lab file's words.
//! - `fields`: the fields and kinds of the spec types, read from their JSON Schema.
//! - `elements`: the lab object, nodes and apps as written; `build` puts the checked parts together.
//! - `interfaces`: addresses, MACs, MTUs and gateways, unique across the lab.
//! - `links`: link ends, models and names; no loop among switches.
//! - `targets`: what an app means: its target resolved, its numbers checked.
//! - `app_kinds`: the same for the HTTP, UDP stream and traceroute apps.
//! - `segments`: the hosts that frames pass between; whether a target can be reached on them, and
//!   warnings of mixed prefixes and MTUs.
//! - `apps`: each host's apps together (one server per port), and [`app_for_host`] for one more.
//! - `capture`: which links to capture.
//! - `events` and `expect`: changes at simulated times, and what must hold at the end of a run.

mod app_kinds;
mod apps;
mod bridges;
mod capture;
mod elements;
mod events;
mod expect;
mod fields;
mod host_routes;
mod interfaces;
mod links;
mod read;
mod routes;
mod segments;
mod sites;
mod targets;

pub use app_kinds::{check_http_path, stream_count, TRACE_UDP_PORT};
pub use apps::app_for_host;
pub use bridges::forward_for_lab;
pub use sites::valid_host_port;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::diag::{printable, shown, Diagnostic, Diagnostics, JsonPath, Locator, Problem, Severity, Target};
use super::model::Lab;
use super::parse;

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
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io { path: path.display().to_string(), source })?;
    load_bytes(&bytes, &path.display().to_string()).map_err(LoadError::Invalid)
}

/// Validates the bytes of a lab file, which must be UTF-8 (a UTF-8 byte-order mark is allowed);
/// `file` names it in diagnostics. Text in another encoding is one diagnostic: at the first byte
/// that is not UTF-8, or at the start of a file that a byte-order mark (or the zero bytes of its
/// first character) shows to be UTF-16 or UTF-32.
pub fn load_bytes(bytes: &[u8], file: &str) -> Result<Lab, Diagnostics> {
    let problem = |line: usize, col: usize, message: String, hint: &str| {
        Err(Diagnostics(vec![Diagnostic {
            file: file.to_string(),
            line,
            col,
            path: "(top level)".into(),
            severity: Severity::Error,
            message,
            hint: Some(hint.into()),
        }]))
    };
    let save_as_utf8 = "netlab reads lab files as UTF-8: save the file as UTF-8 (in PowerShell, `>` writes \
                        UTF-16; use `Out-File -Encoding utf8`)";
    if let Some(encoding) = wide_encoding(bytes) {
        return problem(1, 1, format!("the file is {encoding}, not UTF-8"), save_as_utf8);
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => load_str(text, file),
        Err(e) => {
            let valid = &bytes[..e.valid_up_to()];
            let valid = std::str::from_utf8(valid).unwrap_or_default();
            let valid = valid.strip_prefix('\u{feff}').unwrap_or(valid);
            let line = valid.matches('\n').count() + 1;
            let col = valid.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            let message = match e.error_len() {
                Some(_) => format!(
                    "the file is not UTF-8: byte 0x{:02X} is not part of a UTF-8 character",
                    bytes[e.valid_up_to()]
                ),
                None => "the file is not UTF-8: it ends inside a character".to_string(),
            };
            problem(
                line,
                col,
                message,
                "netlab reads lab files as UTF-8: save the file as UTF-8 (an editor that wrote Latin-1 or \
                 Windows-1252 writes `é` as the one byte 0xE9)",
            )
        }
    }
}

/// The encoding of text in two or four bytes a character, as its byte-order mark shows it, or as
/// the zero bytes of a first ASCII character (`{` is `7B 00` in UTF-16LE) do.
fn wide_encoding(b: &[u8]) -> Option<&'static str> {
    match b {
        [0xFF, 0xFE, 0, 0, ..] => Some("UTF-32 (it starts with the byte-order mark FF FE 00 00)"),
        [0, 0, 0xFE, 0xFF, ..] => Some("UTF-32 (it starts with the byte-order mark 00 00 FE FF)"),
        [0xFF, 0xFE, ..] => Some("UTF-16 (it starts with the byte-order mark FF FE)"),
        [0xFE, 0xFF, ..] => Some("UTF-16 (it starts with the byte-order mark FE FF)"),
        [c, 0, ..] | [0, c, ..] if c.is_ascii() && *c != 0 => Some("UTF-16 (every other byte is zero)"),
        _ => None,
    }
}

/// Validates lab text; `file` names it in diagnostics.
pub fn load_str(text: &str, file: &str) -> Result<Lab, Diagnostics> {
    // Some editors start a UTF-8 file with a byte-order mark, which JSON does not allow; editors
    // do not show it, so columns are counted without it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return Err(Diagnostics(vec![not_read(text, &e, file)])),
    };
    let locator = Locator::new(text);
    let mut cx = Cx { problems: locator.duplicate_keys(), ..Cx::default() };
    let lab = cx.lab(value);
    if cx.problems.is_empty() {
        if let Some(lab) = lab {
            return Ok(Lab { warnings: locator.place_all(file, cx.warnings, Severity::Warning), ..lab });
        }
    }
    Err(Diagnostics(locator.place_all(file, cx.problems, Severity::Error)))
}

/// The one diagnostic of text that serde_json could not read, at the place it stopped.
fn not_read(text: &str, e: &serde_json::Error, file: &str) -> Diagnostic {
    let msg = e.to_string();
    let msg = msg.rsplit_once(" at line ").map_or(msg.as_str(), |(m, _)| m);
    // serde_json counts columns in bytes, and a place just after a line break as column 0.
    let line_start: usize = text.split_inclusive('\n').take(e.line().saturating_sub(1)).map(str::len).sum();
    let mut at = (line_start + e.column().saturating_sub(1)).min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let invalid = |hint: &str| (format!("invalid JSON: {msg}"), hint.to_string());
    let (message, hint) = match msg {
        "number out of range" => {
            // serde_json stops on the number's last character. The number is JSON; it is too
            // large for any number a program reads.
            let end = text[at..].chars().next().map_or(at, |c| at + c.len_utf8());
            let is_number = |b: &u8| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E');
            at = text.as_bytes()[..end].iter().rposition(|b| !is_number(b)).map_or(0, |i| i + 1);
            (
                format!(
                    "the number `{}` is too large (beyond ±1.8e308, what a 64-bit float holds)",
                    shown(&text[at..end])
                ),
                "no value in a lab comes near this; look for a stray exponent or extra digits".to_string(),
            )
        }
        "recursion limit exceeded" => (
            "the JSON nests more than 128 levels deep".to_string(),
            "a lab nests six levels at most (nodes, a host, its interfaces, an interface, its addresses): this is \
             not a lab file, or brackets were opened by mistake"
                .to_string(),
        ),
        m if m.starts_with("trailing characters") => {
            invalid("the lab object ends before this place; remove what follows it")
        }
        m if m.starts_with("trailing comma") => {
            invalid("remove the comma just before this place: JSON allows none after the last member")
        }
        m if m.starts_with("EOF") => invalid("the text ends too early: close every string, `[` and `{`"),
        m if m.starts_with("control character") => invalid(
            "a string cannot hold a line break, tab or other control character as it is: write `\\n`, `\\t` or \
             `\\u001b`",
        ),
        "invalid escape" => invalid(
            "after a backslash JSON takes only `\"`, `\\`, `/`, `b`, `f`, `n`, `r`, `t` or `u` and four hex \
             digits; write a backslash as `\\\\`",
        ),
        "invalid number" => {
            invalid("write numbers as JSON does: no leading `+` or zero, and a digit on each side of a `.`")
        }
        "key must be a string" => invalid("write every key in double quotes: `\"name\": …`"),
        "invalid unicode code point" | "lone leading surrogate in hex escape" | "unexpected end of hex escape" => {
            invalid(
                "a `\\u` escape takes four hex digits; a character past U+FFFF takes two escapes, a surrogate \
                 pair such as `\\ud83d\\udcbb`",
            )
        }
        _ => invalid("check for a missing comma, quote or bracket just before this place"),
    };
    Diagnostic {
        file: file.to_string(),
        line: e.line().max(1),
        col: text[line_start.min(at)..at].chars().count() + 1,
        path: "(top level)".into(),
        severity: Severity::Error,
        message: printable(&message),
        hint: Some(hint),
    }
}

/// What validation found so far: the problems, and what failed, so that later checks do not
/// report the same mistake again through what depends on it.
#[derive(Default)]
struct Cx {
    problems: Vec<Problem>,
    /// What is likely a mistake but does not stop the lab; reported only for a lab without errors.
    warnings: Vec<Problem>,
    /// Addresses written in the lab that were not accepted (bad CIDR, duplicate, or in an interface
    /// that failed to parse): a target naming one is not reported again.
    unaccepted_ips: BTreeSet<IpAddr>,
    /// Interfaces (node, interface) that did not parse: a link to one is not reported again.
    unread_interfaces: BTreeSet<(String, String)>,
    /// Names and ends of links that failed to parse or resolve: a capture naming one is not reported again.
    unaccepted_links: BTreeSet<String>,
    /// A key of the lab, a host or a switch is unknown: it may be a misspelt `links` or
    /// `interfaces`, so what is plugged into what is not known for sure.
    misspelt_shape: bool,
    /// The kind of the app being read, whose fields' ranges depend on it (a ping's `size` is not
    /// a TCP echo's).
    app_kind: Option<String>,
    /// `links` is not an array: the links are unknown, and a name that seems to name none may
    /// name one of them.
    links_unknown: bool,
}

/// How much of a node parsed: a broken node (unknown kind, not an object) is a placeholder, and an
/// incomplete host lost an interface or address; checks that would only echo those problems are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Complete,
    Incomplete,
    Broken,
}

impl Cx {
    fn err(&mut self, path: JsonPath, message: impl Into<String>, hint: Option<String>) {
        self.problems.push(Problem { path, target: Target::Value, message: message.into(), hint });
    }

    fn warn(&mut self, path: JsonPath, message: impl Into<String>, hint: Option<String>) {
        self.warnings.push(Problem { path, target: Target::Value, message: message.into(), hint });
    }

    fn err_key(&mut self, path: JsonPath, message: impl Into<String>, hint: Option<String>) {
        self.problems.push(Problem { path, target: Target::Key, message: message.into(), hint });
    }

    /// The duration `s` says, or `default` without one; a bad one is reported at `path.key`.
    fn duration(&mut self, s: Option<&String>, default: Duration, path: &JsonPath, key: &str) -> Duration {
        match s.map(|s| parse::duration(s)) {
            None => default,
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                self.err(path.key(key), e, Some("write a number with a unit: `500ms`, `2s`, `1m`".into()));
                default
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example lab with two sites joined by a WAN link, loaded.
    pub(super) fn two_site() -> Lab {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/labs/two-site.json")).expect("lab");
        load_str(&text, "two-site.json").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn text_that_is_not_utf8_is_placed_and_named() {
        let one = |bytes: &[u8]| {
            let d = load_bytes(bytes, "enc.json").expect_err("not UTF-8");
            assert_eq!(d.0.len(), 1, "{d}");
            d.0.into_iter().next().expect("one")
        };
        // Latin-1 `é` in a name: the place of the first bad byte, in characters.
        let d = one(b"{\n  \"name\": \"caf\xe9\", \"nodes\": {}\n}");
        assert_eq!((d.line, d.col), (2, 15), "{d}");
        assert_eq!(d.message, "the file is not UTF-8: byte 0xE9 is not part of a UTF-8 character");
        assert!(d.hint.as_deref().unwrap_or("").contains("save the file as UTF-8"), "{d}");
        // Columns count characters, and not a UTF-8 byte-order mark.
        let d = one("\u{feff}{\"name\": \"é\u{2014}\""
            .as_bytes()
            .iter()
            .copied()
            .chain([0xC3])
            .collect::<Vec<_>>()
            .as_slice());
        assert_eq!((d.line, d.col, d.message.as_str()), (1, 14, "the file is not UTF-8: it ends inside a character"));
        // UTF-16, with and without a byte-order mark, and UTF-32.
        let utf16le: Vec<u8> = "\u{feff}{\"name\": \"x\"}".encode_utf16().flat_map(u16::to_le_bytes).collect();
        let d = one(&utf16le);
        assert_eq!((d.line, d.col), (1, 1));
        assert_eq!(d.message, "the file is UTF-16 (it starts with the byte-order mark FF FE), not UTF-8");
        let utf16be: Vec<u8> = "\u{feff}{}".encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert!(one(&utf16be).message.contains("UTF-16 (it starts with the byte-order mark FE FF)"));
        let bare: Vec<u8> = "{}".encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert!(one(&bare).message.contains("UTF-16 (every other byte is zero)"));
        assert!(one(&[0xFF, 0xFE, 0, 0, b'{', 0, 0, 0]).message.contains("UTF-32"));
        // UTF-8 goes on to be read as JSON.
        let d = load_bytes(b"{\"name\": 5}", "enc.json").expect_err("a bad lab");
        assert!(d.0[1].message.starts_with("invalid type"), "{d}");
    }

    #[test]
    fn json_that_cannot_be_read_is_placed_in_characters_with_its_own_hint() {
        let one = |text: &str| load_str(text, "t.json").expect_err("not read").0.remove(0);
        // serde_json counts bytes; an editor counts characters.
        let d = one("{\"é\": x}");
        assert_eq!((d.line, d.col), (1, 7), "{d}");
        // A number too large for a float is JSON, and no comma is missing: the number is named.
        let d = one("{\"ééé\":\n  [1, -1e400]}");
        assert_eq!((d.line, d.col), (2, 7), "{d}");
        assert_eq!(d.message, "the number `-1e400` is too large (beyond ±1.8e308, what a 64-bit float holds)");
        assert!(!d.hint.as_deref().unwrap_or("").contains("comma"), "{d}");
        let d = one(&format!("{{\"nodes\": {}{}}}", "[".repeat(200), "]".repeat(200)));
        assert_eq!(d.message, "the JSON nests more than 128 levels deep");
        assert!(d.hint.as_deref().unwrap_or("").contains("six levels"), "{d}");
        let d = one("{\"a\": \"x\\qy\"}");
        assert!(d.hint.as_deref().unwrap_or("").contains("write a backslash as"), "{d}");
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
}
