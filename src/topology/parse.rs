//! Parsers for the string values of a lab file: durations, rates, byte sizes, CIDRs, MACs and targets.
//! Each returns a sentence a user can act on.

use std::net::IpAddr;
use std::time::Duration;

use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr};

use super::diag::shown;
use crate::topology::limits;

/// The time units of a duration, each with the other spellings humantime reads for it.
///
/// humantime also reads weeks (`w`, `wk`, `wks`, `week`, `weeks`), months (`M`, `month`, `months`)
/// and years (`y`, `yr`, `yrs`, `year`, `years`). A lab does not take them: a month is easily written
/// for a minute (`M` for `m`), and a run in virtual time stops at 24 hours anyway.
pub const DURATION_UNITS: &[(&str, &[&str])] = &[
    ("ns", &["nanos", "nsec"]),
    ("us", &["\u{b5}s", "usec"]),
    ("ms", &["millis", "msec"]),
    ("s", &["sec", "secs", "second", "seconds"]),
    ("m", &["min", "mins", "minute", "minutes"]),
    ("h", &["hr", "hrs", "hour", "hours"]),
    ("d", &["day", "days"]),
];

/// `500ms`, `2s`, `1.5s`, `1m 30s`, or `0`.
pub fn duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let units = || either(DURATION_UNITS.iter().map(|(u, _)| *u));
    let d = humantime::parse_duration(t).map_err(|e| match e {
        humantime::DurationError::Empty => "an empty string is not a duration".to_string(),
        humantime::DurationError::UnknownUnit { unit, .. } if unit.is_empty() => {
            format!("`{}` has no time unit", shown(s))
        }
        humantime::DurationError::UnknownUnit { unit, .. } => {
            format!("`{}` has an unknown time unit `{}` (use {})", shown(s), shown(&unit), units())
        }
        humantime::DurationError::NumberOverflow => {
            format!("`{}` is out of range: a duration is whole nanoseconds, up to 2^64 − 1 seconds", shown(s))
        }
        humantime::DurationError::InvalidCharacter(_) | humantime::DurationError::NumberExpected(_) => {
            format!("`{}` is not a duration", shown(s))
        }
    })?;
    // A unit is a run of the letters humantime reads as one.
    let words = t.split(|c: char| !(c.is_ascii_alphabetic() || c == '\u{b5}')).filter(|w| !w.is_empty());
    for w in words {
        if !DURATION_UNITS.iter().any(|(u, other)| *u == w || other.contains(&w)) {
            return Err(format!(
                "`{}` has a time unit `{}` that a lab does not take (use {})",
                shown(s),
                shown(w),
                units()
            ));
        }
    }
    Ok(d)
}

/// `a`, `a or b`, `a, b or c`.
fn either<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.collect();
    match items.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => items.concat(),
    }
}

/// Rate units, in any case, each with its other spellings and its bits per second.
pub const RATE_UNITS: &[(&str, &[&str], f64)] = &[
    ("bit", &["bps", "bit/s"], 1.0),
    ("kbit", &["kbps", "kbit/s"], 1e3),
    ("Mbit", &["Mbps", "Mbit/s"], 1e6),
    ("Gbit", &["Gbps", "Gbit/s"], 1e9),
    ("Tbit", &["Tbps", "Tbit/s"], 1e12),
];

/// The highest rate, in bits per second: 1000 Tbit/s.
pub const RATE_MAX_BPS: f64 = 1e15;

/// `100Mbit`, `1Gbit`, `1.5Gbps`, `64kbit`, `1000000` (bits per second).
pub fn rate_bps(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("`{}` is not a rate", shown(s)))?;
    let unit = unit.trim();
    let mult = if unit.is_empty() {
        1.0
    } else {
        let known = RATE_UNITS
            .iter()
            .find(|(u, other, _)| u.eq_ignore_ascii_case(unit) || other.iter().any(|o| o.eq_ignore_ascii_case(unit)));
        match known {
            Some((_, _, mult)) => *mult,
            None => {
                let units = either(RATE_UNITS.iter().map(|(u, _, _)| *u));
                return Err(format!(
                    "`{}` has an unknown rate unit `{}` (use {units} per second)",
                    shown(s),
                    shown(unit)
                ));
            }
        }
    };
    let bps = n * mult;
    if !(1.0..=RATE_MAX_BPS).contains(&bps) {
        return Err(format!("rate `{}` is out of range (1 bit/s to 1000 Tbit/s)", shown(s)));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(bps.round() as u64)
}

/// Byte-size units, case sensitive, each with its other spellings and its bytes.
pub const BYTE_UNITS: &[(&str, &[&str], f64)] = &[
    ("B", &[], 1.0),
    ("kB", &["KB"], 1e3),
    ("MB", &[], 1e6),
    ("GB", &[], 1e9),
    ("KiB", &["K"], 1024.0),
    ("MiB", &["M"], 1024.0 * 1024.0),
    ("GiB", &["G"], 1024.0 * 1024.0 * 1024.0),
];

/// `1500`, `64KiB`, `4MiB`, `1GB`, `10kB`.
pub fn bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("`{}` is not a size in bytes", shown(s)))?;
    let unit = unit.trim();
    let mult = if unit.is_empty() {
        1.0
    } else {
        match BYTE_UNITS.iter().find(|(u, other, _)| *u == unit || other.contains(&unit)) {
            Some((_, _, mult)) => *mult,
            None => {
                let units = either(BYTE_UNITS.iter().map(|(u, _, _)| *u));
                return Err(format!("`{}` has an unknown size unit `{}` (use {units})", shown(s), shown(unit)));
            }
        }
    };
    let v = n * mult;
    if !(0.0..=1e15).contains(&v) {
        return Err(format!("size `{}` is out of range (at most 1 PB, 10^15 bytes)", shown(s)));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(v.round() as u64)
}

/// The two halves of `address/length`: an IP address, and a prefix length that fits its family.
pub fn address_and_length(addr: &str, len: &str) -> Result<(IpAddr, u8), String> {
    let ip: IpAddr = addr.trim().parse().map_err(|_| format!("`{}` is not an IPv4 or IPv6 address", shown(addr)))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len: u8 = len
        .trim()
        .parse()
        .ok()
        .filter(|l| *l <= max)
        .ok_or_else(|| format!("`/{}` is not a prefix length (0 to {max})", shown(len)))?;
    Ok((ip, len))
}

/// An interface address with its prefix: `10.0.0.1/24` or `fd00::1/64`.
pub fn cidr(s: &str) -> Result<IpCidr, String> {
    let Some((addr, len)) = s.split_once('/') else {
        return Err(format!("`{}` has no prefix length", shown(s)));
    };
    let (ip, len) = address_and_length(addr, len)?;
    if ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() {
        return Err(format!("`{ip}` cannot be an interface address"));
    }
    if let IpAddr::V4(v4) = ip {
        if v4.is_broadcast() {
            return Err(format!("`{ip}` cannot be an interface address"));
        }
        if len < 31 {
            let bits = u32::from(v4);
            let host = bits & (u32::MAX >> len);
            if host == 0 {
                return Err(format!("`{}` is the network address of its subnet", shown(s)));
            }
            if host == u32::MAX >> len {
                return Err(format!("`{}` is the broadcast address of its subnet", shown(s)));
            }
        }
    }
    Ok(IpCidr::new(IpAddress::from(ip), len))
}

pub fn mac(s: &str) -> Result<EthernetAddress, String> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    let mut b = [0u8; 6];
    if parts.len() != 6 {
        return Err(format!("`{}` is not a MAC address (six hex bytes, aa:bb:cc:dd:ee:ff)", shown(s)));
    }
    for (i, p) in parts.iter().enumerate() {
        if p.chars().count() != 2 {
            return Err(format!("`{}` is not a MAC address (six hex bytes, aa:bb:cc:dd:ee:ff)", shown(s)));
        }
        // `from_str_radix` alone would take `+1`.
        if !p.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("`{}` is not a MAC address (`{}` is not hex)", shown(s), shown(p)));
        }
        b[i] = u8::from_str_radix(p, 16)
            .map_err(|_| format!("`{}` is not a MAC address (`{}` is not hex)", shown(s), shown(p)))?;
    }
    let m = EthernetAddress(b);
    if !m.is_unicast() || b == [0; 6] {
        return Err(format!("`{}` is a multicast, broadcast or zero MAC; an interface needs a unicast one", shown(s)));
    }
    Ok(m)
}

/// A MAC as the lab file writes it: `02:00:00:00:00:01`.
#[must_use]
pub fn mac_text(m: EthernetAddress) -> String {
    let b = m.0;
    format!("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
}

/// A stable, locally administered unicast MAC derived from a node and interface name (FNV-1a).
#[must_use]
pub fn derived_mac(node: &str, iface: &str) -> EthernetAddress {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in node.bytes().chain([0u8]).chain(iface.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let x = h.to_be_bytes();
    EthernetAddress([0x02, x[3], x[4], x[5], x[6], x[7]])
}

/// What `to` says before it is resolved against the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Addr(IpAddr, Option<u16>),
    Node(String, Option<u16>),
}

pub fn target(s: &str) -> Result<Target, String> {
    let t = s.trim();
    if let Ok(sa) = t.parse::<std::net::SocketAddr>() {
        if sa.port() == 0 {
            return Err("`0` is not a port (1 to 65535)".into());
        }
        return Ok(Target::Addr(sa.ip(), Some(sa.port())));
    }
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Ok(Target::Addr(ip, None));
    }
    // `[fd00::2]` without a port.
    if let Some(ip) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')).and_then(|r| r.parse::<IpAddr>().ok()) {
        return Ok(Target::Addr(ip, None));
    }
    let (name, port) = match t.rsplit_once(':') {
        Some((n, p)) => {
            let port: u16 = p
                .parse()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("`{}` is not a port (1 to 65535)", shown(p)))?;
            (n, Some(port))
        }
        None => (t, None),
    };
    if name.is_empty() || !valid_name(name) {
        return Err(format!("`{}` is neither an address nor a node name", shown(s)));
    }
    Ok(Target::Node(name.to_string(), port))
}

/// Lab, node, interface and link names: 1 to 64 letters, digits, `-`, `_` and `.`, and not only
/// dots (`.` and `..` name folders: the lab's name names its capture folder).
#[must_use]
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= limits::NAME_MAX_LEN
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !s.chars().all(|c| c == '.')
}

/// The hint for a name that [`valid_name`] refuses: `usual` for a character outside the rule, or
/// what else is wrong with it.
#[must_use]
pub fn name_hint(s: &str, usual: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c == '.') {
        "a name cannot be dots alone: `.` and `..` name folders; add a letter or digit".into()
    } else if s.len() > limits::NAME_MAX_LEN
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        format!("a name has at most {} characters; this one has {}", limits::NAME_MAX_LEN, s.len())
    } else {
        usual.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("0"), Ok(Duration::ZERO));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("1s 500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("fast"), Err("`fast` is not a duration".into()));
        assert_eq!(duration("5"), Err("`5` has no time unit".into()));
        assert!(duration("2 fortnights").unwrap_err().contains("unknown time unit `fortnights`"));
    }

    #[test]
    fn duration_units_are_those_the_message_lists() {
        let list = "(use ns, us, ms, s, m, h or d)";
        for (unit, other) in DURATION_UNITS {
            for u in std::iter::once(unit).chain(other.iter()) {
                assert!(duration(&format!("2{u}")).is_ok(), "{u}");
                assert!(duration(&format!("1h 2 {u}")).is_ok(), "{u}");
            }
        }
        // humantime also reads weeks, months and years; a lab does not take them, and says which
        // units it does take.
        for u in ["w", "wk", "wks", "week", "weeks", "M", "month", "months", "y", "yr", "yrs", "year", "years"] {
            assert!(humantime::parse_duration(&format!("2{u}")).is_ok(), "humantime reads `{u}`");
            let e = duration(&format!("1h 2{u}")).unwrap_err();
            assert_eq!(e, format!("`1h 2{u}` has a time unit `{u}` that a lab does not take {list}"));
        }
        assert_eq!(duration("1 fortnight"), Err(format!("`1 fortnight` has an unknown time unit `fortnight` {list}")));
    }

    #[test]
    fn the_rate_range_is_written_in_units_the_parser_reads() {
        let e = rate_bps("1001Tbit").unwrap_err();
        assert_eq!(e, "rate `1001Tbit` is out of range (1 bit/s to 1000 Tbit/s)");
        let range = e.split_once('(').and_then(|(_, r)| r.strip_suffix(')')).expect("a range");
        let (low, high) = range.split_once(" to ").expect("two ends");
        assert_eq!(rate_bps(low), Ok(1));
        assert_eq!(rate_bps(high), Ok(1_000_000_000_000_000));
        assert!(rate_bps("0.4bit").unwrap_err().contains("(1 bit/s to 1000 Tbit/s)"));
        // Every unit the message of an unknown unit lists is read, in any case.
        let e = rate_bps("1Pbit").unwrap_err();
        assert_eq!(e, "`1Pbit` has an unknown rate unit `Pbit` (use bit, kbit, Mbit, Gbit or Tbit per second)");
        for (unit, other, mult) in RATE_UNITS {
            for u in std::iter::once(unit).chain(other.iter()) {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let expected = Ok((2.0 * mult) as u64);
                assert_eq!(rate_bps(&format!("2{u}")), expected, "{u}");
                assert_eq!(rate_bps(&format!("2 {}", u.to_ascii_uppercase())), expected, "{u}");
            }
        }
    }

    #[test]
    fn rates_and_sizes() {
        assert_eq!(rate_bps("100Mbit"), Ok(100_000_000));
        assert_eq!(rate_bps("1.5Gbps"), Ok(1_500_000_000));
        assert!(rate_bps("10 furlongs").is_err());
        assert_eq!(bytes("4MiB"), Ok(4 << 20));
        assert_eq!(bytes("10kB"), Ok(10_000));
        assert!(bytes("4MiBs").is_err());
    }

    #[test]
    fn cidrs() {
        assert_eq!(cidr("10.0.0.1/24").map(|c| c.prefix_len()), Ok(24));
        assert!(cidr("fd00::1/64").is_ok());
        assert!(cidr("10.0.0.1").unwrap_err().contains("no prefix"));
        assert!(cidr("10.0.0.0/24").unwrap_err().contains("network address"));
        assert!(cidr("10.0.0.255/24").unwrap_err().contains("broadcast"));
        assert!(cidr("10.0.0.1/33").is_err());
        assert!(cidr("10.0.0.300/24").is_err());
    }

    #[test]
    fn macs() {
        assert_eq!(mac("02:00:00:00:00:01"), Ok(EthernetAddress([2, 0, 0, 0, 0, 1])));
        assert!(mac("01:00:5e:00:00:01").is_err());
        assert!(mac("02:00:00:00:00").is_err());
        assert!(mac("02:00:00:00:00:zz").is_err());
        assert!(mac("02:00:00:00:00:+1").is_err());
        assert_eq!(mac_text(EthernetAddress([2, 0, 0, 0, 0, 0xab])), "02:00:00:00:00:ab");
        let a = derived_mac("laptop", "eth0");
        assert_eq!(a, derived_mac("laptop", "eth0"));
        assert_ne!(a, derived_mac("laptop", "eth1"));
        assert!(a.is_unicast() && a.0[0] & 2 == 2);
    }

    #[test]
    fn targets() {
        assert_eq!(target("server:7"), Ok(Target::Node("server".into(), Some(7))));
        assert_eq!(target("server"), Ok(Target::Node("server".into(), None)));
        assert_eq!(target("[fd00::2]:7"), Ok(Target::Addr("fd00::2".parse().unwrap(), Some(7))));
        assert_eq!(target("fd00::2"), Ok(Target::Addr("fd00::2".parse().unwrap(), None)));
        assert!(target("server:0").is_err());
        assert!(target("10.0.0.2:0").is_err());
        assert_eq!(target("[fd00::2]"), Ok(Target::Addr("fd00::2".parse().unwrap(), None)));
        assert!(target("a b").is_err());
    }

    #[test]
    fn names() {
        for ok in ["sw1", "lab-1.v2", "a_b", "a.", ".a", "..a", &"x".repeat(64)] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", "...", "a b", "a:b", "a\u{1b}", &"x".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(name_hint("..", "usual").contains("dots alone"));
        assert_eq!(name_hint(&"x".repeat(65), "usual"), "a name has at most 64 characters; this one has 65");
        assert_eq!(name_hint("a b", "usual"), "usual");
    }
}
