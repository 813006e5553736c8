//! The bounds and forms of a lab file's values, in one place: the JSON Schema (`netlab schema`)
//! states them through the attributes in `spec.rs`, and `netlab check` enforces them (`parse`
//! builds on the same unit tables and name length; `validate` still writes its numbers out).
//! `tests/schema.rs` loads labs at each bound and just past it, through `check` and the schema,
//! and holds each pattern against the parser it stands for, so that the two cannot drift apart.
//!
//! The schema is never stricter than `check`: what `check` accepts, the schema accepts. Some
//! problems it cannot see (a name that must resolve, an MTU that depends on the addresses, a
//! network address); `check` still reports those.

use crate::topology::parse::{BYTE_UNITS, DURATION_UNITS, RATE_UNITS};

/// Longest node, interface or lab name.
pub const NAME_MAX_LEN: usize = 64;
/// Node, interface and lab names: letters, digits, `-`, `_` and `.`, and not dots alone.
pub const NAME_PATTERN: &str = "^(?!\\.+$)[A-Za-z0-9._-]+$";

/// An interface's MTU: at least [`MTU_MIN`] (or [`MTU_MIN_IPV6`] with an IPv6 address), at most
/// [`MTU_MAX`].
pub const MTU_MIN: u32 = 576;
pub const MTU_MIN_IPV6: u32 = 1280;
pub const MTU_MAX: u32 = 9000;
/// Addresses on one interface.
pub const ADDRESSES_MAX: usize = 4;
/// Interfaces on one host, each with its own smoltcp interface and link.
pub const INTERFACES_MAX: usize = 8;
/// Interfaces on one router.
pub const ROUTER_INTERFACES_MAX: usize = 64;
/// Static routes on one router.
pub const ROUTES_MAX: usize = 1024;
/// Routes one interface of a host holds, its gateways' default routes included (smoltcp's
/// `iface-max-route-count`).
pub const HOST_IFACE_ROUTES_MAX: usize = 8;
/// Static routes on one host: as many as its interfaces hold.
pub const HOST_ROUTES_MAX: usize = INTERFACES_MAX * HOST_IFACE_ROUTES_MAX;

/// Port forwards in one lab.
pub const FORWARDS_MAX: usize = 256;
/// Prefixes an exit gateway's `allow` (or `map`) lists.
pub const EXIT_PREFIXES_MAX: usize = 64;

/// Frames a link direction may queue.
pub const QUEUE_MIN: u32 = 1;
pub const QUEUE_MAX: u32 = 65_536;
/// A link's loss probability.
pub const LOSS_MIN: f64 = 0.0;
pub const LOSS_MAX: f64 = 1.0;
/// Bytes a link direction may queue (`queue_bytes`).
pub const QUEUE_BYTES_MIN: u64 = 64;
pub const QUEUE_BYTES_MAX: u64 = 1 << 30;
/// The largest `jitter`.
pub const JITTER_MAX: std::time::Duration = std::time::Duration::from_secs(10);

/// Ports an app listens on or sends to.
pub const PORT_MIN: u16 = 1;
pub const PORT_MAX: u16 = u16::MAX;
/// Pings, echo messages or datagrams an app sends.
pub const COUNT_MIN: u32 = 1;
pub const COUNT_MAX: u32 = 1_000_000;
/// Bytes per echo message: a TCP message up to [`TCP_ECHO_SIZE_MAX`], a UDP datagram up to
/// [`UDP_ECHO_SIZE_MAX`] (and within the sender's MTU).
pub const ECHO_SIZE_MIN: u32 = 1;
pub const TCP_ECHO_SIZE_MAX: u32 = 65_536;
pub const UDP_ECHO_SIZE_MAX: u32 = 9000;
/// Bytes a `tcp-transfer` sends.
pub const TRANSFER_BYTES_MIN: u64 = 1;
/// An `http-server`'s status: a final status, not an interim (1xx) one.
pub const HTTP_STATUS_MIN: u16 = 200;
pub const HTTP_STATUS_MAX: u16 = 599;
/// An `http-get`'s request target: `/` and printable ASCII without spaces.
pub const HTTP_PATH_PATTERN: &str = "^/[!-~]*$";
pub const HTTP_PATH_MAX_LEN: usize = 2048;
/// Requests an `http-get` makes.
pub const HTTP_COUNT_MAX: u32 = 100_000;
/// A `udp-stream` datagram: at least its header (magic, sequence number, count, send and end times).
pub const STREAM_SIZE_MIN: u32 = 28;
/// A traceroute's highest TTL and probes per hop.
pub const TRACE_HOPS_MAX: u32 = 255;
pub const TRACE_PROBES_MAX: u32 = 10;
/// A TCP socket buffer.
pub const TCP_BUFFER_MIN: u64 = 1024;
pub const TCP_BUFFER_MAX: u64 = 1 << 30;

/// A MAC address as `parse::mac` reads it: six hex bytes split by `:` or `-`, unicast and not zero.
pub const MAC_PATTERN: &str = "^(?!00([:-]00){5}$)[0-9A-Fa-f][02468AaCcEe]([:-][0-9A-Fa-f]{2}){5}$";

/// A link name: as a node's name, or empty for the default name (its two ends).
pub const LINK_NAME_PATTERN: &str = "^(?!\\.+$)[A-Za-z0-9._-]*$";

/// One IPv4 octet as Rust reads it: 0 to 255, no leading zero.
const OCTET: &str = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
/// The characters of an IPv6 address, with at least two `:` as every IPv6 address has (so that
/// `10.0.0.2:7` is not one); its exact form is left to `check`.
const IPV6: &str = "[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*";
/// A port, 1 to 65535, leading zeros allowed.
const PORT: &str = "0*(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})";

fn ipv4() -> String {
    format!("{OCTET}(?:\\.{OCTET}){{3}}")
}

fn name() -> String {
    format!("[A-Za-z0-9._-]{{1,{NAME_MAX_LEN}}}")
}

/// An interface address as `parse::cidr` reads it: an address and a prefix length.
#[must_use]
pub fn cidr_pattern() -> String {
    let v4 = ipv4();
    format!(
        "^\\s*(?:{v4}\\s*/\\s*\\+?0*(?:3[0-2]|[12]?[0-9])|{IPV6}\\s*/\\s*\\+?0*(?:12[0-8]|1[01][0-9]|[1-9]?[0-9]))\\s*$"
    )
}

/// A bare IP address (a gateway).
#[must_use]
pub fn ip_pattern() -> String {
    format!("^\\s*(?:{}|{IPV6})\\s*$", ipv4())
}

/// A link end: `node:interface`, or a switch's name.
#[must_use]
pub fn endpoint_pattern() -> String {
    let n = name();
    format!("^\\s*{n}(?::{n})?\\s*$")
}

/// An app's `to`, as `parse::target` reads it: a node name or an address, with a port or not.
#[must_use]
pub fn target_pattern() -> String {
    format!("^\\s*(?:{}(?::\\+?{PORT})?|{IPV6}|\\[[0-9A-Fa-f:.]+(?:%[0-9A-Za-z]+)?\\](?::{PORT})?)\\s*$", name())
}

/// Alternatives, longest first, so that a unit is not read as the start of a longer one.
fn alternatives<'a>(words: impl Iterator<Item = &'a str>, any_case: bool) -> String {
    let mut words: Vec<String> = words
        .map(|w| {
            w.chars()
                .map(|c| match c {
                    c if any_case && c.is_ascii_alphabetic() => {
                        format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())
                    }
                    c => c.to_string(),
                })
                .collect()
        })
        .collect();
    words.sort_by_key(|w| std::cmp::Reverse(w.len()));
    words.join("|")
}

/// A duration as `parse::duration` reads it: numbers, each with a unit, or `0`.
#[must_use]
pub fn duration_pattern() -> String {
    let units = alternatives(
        DURATION_UNITS.iter().flat_map(|(u, other)| std::iter::once(*u).chain(other.iter().copied())),
        false,
    );
    format!("^\\s*(?:0|(?:[0-9][0-9\\s]*(?:\\.[0-9\\s]*[0-9][0-9\\s]*)?(?:{units})\\s*)+)\\s*$")
}

/// A decimal number as `f64::from_str` reads it, without sign or exponent.
const DECIMAL: &str = "(?:[0-9]+\\.?[0-9]*|\\.[0-9]+)";

/// A rate as `parse::rate_bps` reads it: a number, and a unit in any case or none.
#[must_use]
pub fn rate_pattern() -> String {
    let units = alternatives(
        RATE_UNITS.iter().flat_map(|(u, other, _)| std::iter::once(*u).chain(other.iter().copied())),
        true,
    );
    format!("^\\s*{DECIMAL}\\s*(?:{units})?\\s*$")
}

/// A byte size written as a string, as `parse::bytes` reads it: a number, and a unit or none.
#[must_use]
pub fn byte_size_pattern() -> String {
    let units = alternatives(
        BYTE_UNITS.iter().flat_map(|(u, other, _)| std::iter::once(*u).chain(other.iter().copied())),
        false,
    );
    format!("^\\s*{DECIMAL}\\s*(?:{units})?\\s*$")
}
