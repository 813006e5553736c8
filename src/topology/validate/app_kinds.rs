//! What the HTTP, UDP stream and traceroute apps mean once the lab is known: their targets resolved
//! (through `targets`), their numbers, rates, paths and protocols checked.

use std::net::IpAddr;
use std::time::Duration;

use super::targets::LabView;
use super::Cx;
use crate::topology::diag::{shown, JsonPath};
use crate::topology::limits;
use crate::topology::model::{AppKind, HttpGet, NodeKind, TraceProto, Traceroute, UdpStream};
use crate::topology::parse;
use crate::topology::spec::{AppSpec, ByteSize, HttpGetSpec, HttpServerSpec, TracerouteSpec, UdpStreamSpec};

/// The port a traceroute's first UDP probe goes to; each further probe adds one (as traceroute does).
pub const TRACE_UDP_PORT: u16 = 33434;

impl Cx {
    /// Resolves the apps of this file; `None` for the kinds `targets` resolves.
    pub(super) fn resolve_more_app(
        &mut self,
        a: &AppSpec,
        me: usize,
        lab: &LabView<'_>,
        path: &JsonPath,
    ) -> Option<Option<(Duration, AppKind)>> {
        Some(match a {
            AppSpec::HttpServer(h) => self.http_server(h, path),
            AppSpec::HttpGet(g) => self.http_get(g, me, lab, path),
            AppSpec::UdpStream(u) => self.udp_stream(u, me, lab, path),
            AppSpec::UdpStreamServer(s) => {
                let st = self.duration(s.start.as_ref(), Duration::ZERO, path, "start");
                let port = self.listen_port(s.port, path);
                Some((st, AppKind::UdpStreamServer { port }))
            }
            AppSpec::Traceroute(t) => self.traceroute(t, me, lab, path),
            _ => return None,
        })
    }

    fn listen_port(&mut self, p: u16, path: &JsonPath) -> u16 {
        if p == 0 {
            self.err(path.key("port"), "port 0 cannot be listened on", Some("use 1 to 65535".into()));
        }
        p
    }

    /// `v` (or `dflt`) held to `min..=max`; out of range is reported at `key`.
    fn in_range(&mut self, v: Option<u32>, dflt: u32, min: u32, max: u32, path: &JsonPath, key: &str) -> u32 {
        let v = v.unwrap_or(dflt);
        if v < min || v > max {
            self.err(path.key(key), format!("`{key}` must be {min} to {max}, not {v}"), None);
        }
        v.clamp(min, max)
    }

    /// A timeout that is not zero.
    fn timeout(&mut self, s: Option<&String>, dflt: Duration, path: &JsonPath) -> Duration {
        let t = self.duration(s, dflt, path, "timeout");
        if t.is_zero() {
            self.err(path.key("timeout"), "a timeout of 0s gives up at once", Some("such as `1s`".into()));
        }
        t
    }

    fn http_server(&mut self, h: &HttpServerSpec, path: &JsonPath) -> Option<(Duration, AppKind)> {
        let st = self.duration(h.start.as_ref(), Duration::ZERO, path, "start");
        let port = self.listen_port(h.port, path);
        let status = h.status.unwrap_or(200);
        let (lo, hi) = (limits::HTTP_STATUS_MIN, limits::HTTP_STATUS_MAX);
        if !(lo..=hi).contains(&status) {
            let hint = if status < lo {
                "a 1xx status is interim, not an answer; use a final status such as 200 or 404"
            } else {
                "such as 200, 404 or 503"
            };
            self.err(path.key("status"), format!("`status` must be {lo} to {hi}, not {status}"), Some(hint.into()));
        }
        // 204 and 304 responses carry no body (RFC 9110).
        let bodiless = matches!(status, 204 | 304);
        let body = match &h.body {
            None if bodiless => 0,
            None => 1024,
            Some(b) => {
                let n = match b {
                    ByteSize::Bytes(n) => Ok(*n),
                    ByteSize::Text(s) => parse::bytes(s),
                };
                match n {
                    Ok(n) if bodiless && n > 0 => {
                        self.err(
                            path.key("body"),
                            format!("a {status} response has no body, but `body` is {n} bytes"),
                            Some("leave `body` out, or choose another status".into()),
                        );
                        0
                    }
                    Ok(n) => n,
                    Err(e) => {
                        self.err(path.key("body"), e, Some("such as `1MiB` or `0`".into()));
                        0
                    }
                }
            }
        };
        Some((st, AppKind::HttpServer { port, status, body, keep_alive: h.keep_alive.unwrap_or(true) }))
    }

    fn http_get(
        &mut self,
        g: &HttpGetSpec,
        me: usize,
        lab: &LabView<'_>,
        path: &JsonPath,
    ) -> Option<(Duration, AppKind)> {
        let st = self.duration(g.start.as_ref(), Duration::ZERO, path, "start");
        let to = self.target(&g.to, g.family, true, "http-get", me, lab, path);
        let count = self.in_range(g.count, 1, 1, limits::HTTP_COUNT_MAX, path, "count");
        let interval = self.duration(g.interval.as_ref(), Duration::ZERO, path, "interval");
        let timeout = self.timeout(g.timeout.as_ref(), Duration::from_secs(10), path);
        let target = g.path.clone().unwrap_or_else(|| "/".into());
        if let Err(why) = check_http_path(&target) {
            self.err(
                path.key("path"),
                format!("`{}` is not a request path: {why}", shown(&target)),
                Some("such as `/` or `/files/big.bin`; write a space as `%20`".into()),
            );
        }
        let (ip, port) = to?;
        let to = (ip, port.unwrap_or(80));
        let keep_alive = g.keep_alive.unwrap_or(true);
        Some((st, AppKind::HttpGet(HttpGet { to, path: target, count, interval, timeout, keep_alive })))
    }

    fn udp_stream(
        &mut self,
        u: &UdpStreamSpec,
        me: usize,
        lab: &LabView<'_>,
        path: &JsonPath,
    ) -> Option<(Duration, AppKind)> {
        let st = self.duration(u.start.as_ref(), Duration::ZERO, path, "start");
        let to = self.target(&u.to, u.family, true, "udp-stream", me, lab, path);
        let rate_bps = match u.rate.as_deref().map(parse::rate_bps) {
            None => Some(1_000_000),
            Some(Ok(r)) => Some(r),
            Some(Err(e)) => {
                self.err(path.key("rate"), e, Some("such as `1Mbit` or `250kbit`".into()));
                None
            }
        };
        let problems = self.problems.len();
        let size = self.in_range(u.size, 1000, limits::STREAM_SIZE_MIN, limits::UDP_ECHO_SIZE_MAX, path, "size");
        let size_ok = self.problems.len() == problems;
        let linger = self.duration(u.linger.as_ref(), Duration::from_secs(1), path, "linger");
        let count = match (u.count, &u.duration) {
            (Some(_), Some(_)) => {
                self.err(
                    path.key("count"),
                    "`count` and `duration` both say when the stream ends",
                    Some("give one of them".into()),
                );
                None
            }
            (Some(c), None) => Some(self.in_range(Some(c), 1, limits::COUNT_MIN, limits::COUNT_MAX, path, "count")),
            (None, d) => {
                let problems = self.problems.len();
                let d = self.duration(d.as_ref(), Duration::from_secs(5), path, "duration");
                if self.problems.len() > problems {
                    None
                } else if d.is_zero() {
                    self.err(path.key("duration"), "a stream of 0s sends nothing", Some("such as `5s`".into()));
                    None
                } else if let (Some(rate), true) = (rate_bps, size_ok) {
                    let n = stream_count(d, rate, size as usize);
                    if n > u64::from(limits::COUNT_MAX) {
                        self.err(
                            path.key("duration"),
                            format!(
                                "{} at {} in datagrams of {size} bytes is {n} datagrams, more than {}",
                                shown(u.duration.as_deref().unwrap_or("5s")),
                                shown(u.rate.as_deref().unwrap_or("1Mbit")),
                                limits::COUNT_MAX
                            ),
                            Some("lower `rate` or `duration`, or send larger datagrams".into()),
                        );
                        None
                    } else {
                        u32::try_from(n).ok()
                    }
                } else {
                    None
                }
            }
        };
        let (ip, port) = to?;
        if size_ok {
            self.fits_mtu(me, lab, size as usize, ip, path, "datagram");
        }
        let stream = UdpStream {
            to: (ip, port.unwrap_or(5001)),
            rate_bps: rate_bps?,
            size: size as usize,
            count: count?,
            linger,
        };
        Some((st, AppKind::UdpStream(stream)))
    }

    fn traceroute(
        &mut self,
        t: &TracerouteSpec,
        me: usize,
        lab: &LabView<'_>,
        path: &JsonPath,
    ) -> Option<(Duration, AppKind)> {
        let st = self.duration(t.start.as_ref(), Duration::ZERO, path, "start");
        let to = self.target(&t.to, t.family, false, "traceroute", me, lab, path);
        let max_hops = self.in_range(t.max_hops, 30, 1, limits::TRACE_HOPS_MAX, path, "max_hops");
        let probes = self.in_range(t.probes, 3, 1, limits::TRACE_PROBES_MAX, path, "probes");
        let timeout = self.timeout(t.timeout.as_ref(), Duration::from_secs(1), path);
        let (to, _) = to?;
        let trace = Traceroute {
            to,
            proto: t.proto.unwrap_or(TraceProto::Udp),
            max_hops: u8::try_from(max_hops).unwrap_or(u8::MAX),
            probes,
            timeout,
        };
        Some((st, AppKind::Traceroute(trace)))
    }

    /// netlab hosts do not fragment: a ping or datagram (`what`) must fit the MTU of the interface
    /// it leaves by.
    pub(super) fn fits_mtu(
        &mut self,
        me: usize,
        lab: &LabView<'_>,
        size: usize,
        to: IpAddr,
        path: &JsonPath,
        what: &str,
    ) {
        let mtu = match &lab.nodes[me].kind {
            NodeKind::Host(h) => {
                let dev = h.route(to).map_or(0, |r| r.dev);
                h.interfaces.get(dev).map_or(1500, |i| i.mtu)
            }
            NodeKind::Switch(_) | NodeKind::Router(_) => 1500,
        };
        let (family, header) = if to.is_ipv6() { ("IPv6", 48) } else { ("IPv4", 28) };
        let max = mtu.saturating_sub(header);
        if size > max {
            self.err(
                path.key("size"),
                format!("a {what} of {size} bytes does not fit the MTU of {mtu} (at most {max} bytes over {family})"),
                Some("netlab hosts do not fragment; lower `size` or raise the interface's `mtu`".into()),
            );
        }
    }
}

/// Datagrams a stream of `d` at `rate_bps` sends, `size` bytes each: one every `size × 8 / rate`
/// seconds from the start, while before the end.
#[must_use]
pub fn stream_count(d: Duration, rate_bps: u64, size: usize) -> u64 {
    let bits = (size as u128) * 8 * 1_000_000_000;
    // Datagram k goes at k × bits / rate nanoseconds; count the k with that before d.
    let n = (d.as_nanos() * u128::from(rate_bps)).div_ceil(bits);
    u64::try_from(n.max(1)).unwrap_or(u64::MAX)
}

/// Whether `p` is a request target an `http-get` can send: `/`, then printable ASCII without
/// spaces, at most [`limits::HTTP_PATH_MAX_LEN`] bytes.
pub fn check_http_path(p: &str) -> Result<(), String> {
    if !p.starts_with('/') {
        return Err("it must start with `/`".into());
    }
    if p.len() > limits::HTTP_PATH_MAX_LEN {
        return Err(format!("it is longer than {} bytes", limits::HTTP_PATH_MAX_LEN));
    }
    match p.chars().find(|c| !('!'..='~').contains(c)) {
        Some(' ') => Err("it has a space".into()),
        Some(c) => Err(format!("it has the character {}", c.escape_debug())),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::model::{Lab, NodeKind};
    use crate::topology::validate::load_str;

    fn apps_of(lab: &Lab, node: &str) -> Vec<AppKind> {
        let NodeKind::Host(h) = &lab.node_by_name(node).expect("node").kind else { panic!("not a host") };
        h.apps.iter().map(|a| a.kind.clone()).collect()
    }

    #[test]
    fn defaults() {
        let text = r#"{ "name": "d", "nodes": {
            "a": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.1/24", "fd00::1/64"] } },
                   "apps": [ { "kind": "http-get", "to": "b:8080" },
                             { "kind": "udp-stream", "to": "b:5001" },
                             { "kind": "udp-stream", "to": "b:5001", "rate": "100kbit", "size": 28, "count": 3, "linger": "0s" },
                             { "kind": "traceroute", "to": "b", "family": "ipv6" } ] },
            "b": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.2/24", "fd00::2/64"] } },
                   "apps": [ { "kind": "http-server", "port": 8080 }, { "kind": "http-server", "port": 81, "status": 304 },
                             { "kind": "udp-stream-server", "port": 5001 } ] } },
          "links": [ { "a": "a:eth0", "b": "b:eth0" } ] }"#;
        let lab = load_str(text, "d.json").unwrap_or_else(|e| panic!("{e}"));
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a = apps_of(&lab, "a");
        let AppKind::HttpGet(g) = &a[0] else { panic!() };
        assert_eq!(
            *g,
            HttpGet {
                to: (b, 8080),
                path: "/".into(),
                count: 1,
                interval: Duration::ZERO,
                timeout: Duration::from_secs(10),
                keep_alive: true
            }
        );
        // 5 s of 1 Mbit/s in 1000-byte datagrams.
        let AppKind::UdpStream(u) = a[1] else { panic!() };
        assert_eq!((u.rate_bps, u.size, u.count, u.linger), (1_000_000, 1000, 625, Duration::from_secs(1)));
        let AppKind::UdpStream(u) = a[2] else { panic!() };
        assert_eq!((u.rate_bps, u.size, u.count, u.linger), (100_000, 28, 3, Duration::ZERO));
        let AppKind::Traceroute(t) = a[3] else { panic!() };
        assert_eq!(
            t,
            Traceroute {
                to: "fd00::2".parse().unwrap(),
                proto: TraceProto::Udp,
                max_hops: 30,
                probes: 3,
                timeout: Duration::from_secs(1)
            }
        );
        let b = apps_of(&lab, "b");
        assert!(matches!(b[0], AppKind::HttpServer { port: 8080, status: 200, body: 1024, keep_alive: true }));
        // A 304 has no body.
        assert!(matches!(b[1], AppKind::HttpServer { status: 304, body: 0, .. }));
        assert!(matches!(b[2], AppKind::UdpStreamServer { port: 5001 }));
        assert_eq!(b[2].listens_on(), Some(("UDP", 5001)));
        assert!(b[0].is_server() && !a[0].is_server() && !a[3].is_server());
    }

    #[test]
    fn a_stream_counts_the_datagrams_due_before_its_end() {
        // 1 Mbit/s in 1000-byte datagrams: one every 8 ms, 625 in 5 s.
        assert_eq!(stream_count(Duration::from_secs(5), 1_000_000, 1000), 625);
        // 9 ms: datagrams at 0 and 8 ms.
        assert_eq!(stream_count(Duration::from_millis(9), 1_000_000, 1000), 2);
        assert_eq!(stream_count(Duration::from_millis(8), 1_000_000, 1000), 1);
        assert_eq!(stream_count(Duration::from_nanos(1), 1, 9000), 1);
    }

    #[test]
    fn request_paths() {
        assert!(check_http_path("/").is_ok());
        assert!(check_http_path("/a/b?c=d&e=%20#x").is_ok());
        assert!(check_http_path("").unwrap_err().contains("start with"));
        assert!(check_http_path("index.html").is_err());
        assert!(check_http_path("/a b").unwrap_err().contains("space"));
        assert!(check_http_path("/a\r\nHost: x").unwrap_err().contains("\\r"));
        assert!(check_http_path("/é").is_err());
        assert!(check_http_path(&format!("/{}", "a".repeat(limits::HTTP_PATH_MAX_LEN))).is_err());
    }
}
