//! The headless front end: a progress line while a lab runs, and the summary a person reads at
//! its end. The runtime hands over progress and a report; how they read is decided here.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};

use crate::runtime::{Ended, Presenter, Progress, Report, LATE_WARNING_MS};
use crate::sim::apps::{AppState, Outcome, RttStats};
use crate::stats::DirCounters;

/// Prints a progress line on standard error: rewritten in place on a terminal, one per line
/// otherwise.
#[derive(Debug, Default)]
pub struct ProgressLine;

impl Presenter for ProgressLine {
    fn progress(&mut self, p: &Progress) {
        let mut line = format!(
            "[{:>10.3}s simulated, {:>7.1}s wall] {} frames, {}",
            p.sim.as_secs_f64(),
            p.wall.as_secs_f64(),
            p.frames,
            human_bytes(p.bytes)
        );
        for t in &p.tunnels {
            line.push_str(" | ");
            line.push_str(&tunnel_brief(t));
        }
        let tty = std::io::stderr().is_terminal();
        let mut text = if tty { format!("\r{line}\x1b[K") } else { format!("{line}\n") };
        if p.final_tick && tty {
            text.push('\n');
        }
        // A closed standard error (`2>&1 | head`) is no reason to stop the run: the line is dropped.
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(text.as_bytes()).and_then(|()| e.flush());
    }

    fn event(&mut self, at: crate::time::SimTime, what: &str) {
        // A line of its own, above the progress line on a terminal (which the next tick draws again).
        let line = format!("[{:>10.3}s simulated] {}", at.as_secs_f64(), crate::topology::diag::printable(what));
        let text = if std::io::stderr().is_terminal() { format!("\r\x1b[K{line}\n") } else { format!("{line}\n") };
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(text.as_bytes()).and_then(|()| e.flush());
    }
}

/// One tunnel end in a few words: `hq<->branch udp up 12s, 4.1 MiB out, 3.9 MiB in, 2 retries, 1 refused`.
#[must_use]
pub fn tunnel_brief(t: &crate::transport::TunnelStatus) -> String {
    let mut s = format!(
        "{} {} {} {}, {} out, {} in",
        crate::topology::diag::shown(&t.name),
        t.transport,
        t.state.as_str(),
        since(t.since_s),
        human_bytes(t.bytes_out),
        human_bytes(t.bytes_in)
    );
    if t.retries > 0 {
        let _ = write!(s, ", {} retr{}", t.retries, if t.retries == 1 { "y" } else { "ies" });
    }
    let refused: u64 = t.refused.values().sum();
    if refused > 0 {
        let _ = write!(s, ", {refused} refused");
    }
    s
}

/// A time span as a person says it: `12s`, `3m05s`, `2h10m`.
fn since(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The summary a person reads.
#[must_use]
pub fn summary(r: &Report) -> String {
    let mut s = String::new();
    let ended = match r.ended {
        Ended::AppsFinished => "every app finished",
        Ended::Duration => "duration reached",
        Ended::Signal => "stopped by signal",
        Ended::Stopped => "stopped",
        Ended::Idle => "nothing left to do",
        Ended::TimeLimit => "virtual-time limit reached",
        Ended::CaptureFailed => "stopped: the capture could not be written",
        Ended::PeerLeft => "the site that started this one left",
    };
    let _ = writeln!(
        s,
        "lab {} ({}, seed {}): {ended} at {:.3}s simulated, {:.3}s wall{}",
        r.lab,
        r.mode,
        r.seed,
        r.sim_seconds,
        r.wall_seconds,
        // A run that ended at 0 s has no speed worth a figure.
        if r.mode == "virtual-time" && r.sim_seconds > 0.0 {
            if r.speedup >= 1.0 {
                format!(", {:.1}x faster than real time", r.speedup)
            } else if r.speedup > 0.0 {
                format!(", {:.1}x slower than real time", 1.0 / r.speedup)
            } else {
                String::new()
            }
        } else {
            String::new()
        }
    );
    if let Some(late) = r.max_lateness_ms.filter(|ms| *ms > LATE_WARNING_MS) {
        let _ = writeln!(
            s,
            "warning: events ran up to {late:.1} ms behind the wall clock (a busy machine, or more lab \
             than one core runs in real time): RTTs and rates are stretched; --virtual-time gives exact timings"
        );
    }
    let _ = writeln!(s, "\napps");
    let w = r.apps.iter().map(|a| a.app.len()).max().unwrap_or(0);
    for a in &r.apps {
        let line = match a.state {
            AppState::NotStarted => {
                let line = outcome_line(&a.outcome);
                let what = line.split_once(": ").map_or(line.as_str(), |(what, _)| what);
                format!("{what}: not started (starts at {:.3}s)", a.start_seconds)
            }
            AppState::Running => format!("{} (still running)", outcome_line(&a.outcome)),
            AppState::Stopped => format!("{} (stopped)", outcome_line(&a.outcome)),
            AppState::Finished | AppState::Serving => outcome_line(&a.outcome),
        };
        let _ = writeln!(s, "  {:w$}  {line}", a.app);
        for d in outcome_details(&a.outcome) {
            let _ = writeln!(s, "  {:w$}    {d}", "");
        }
    }
    let lw = r.links.iter().map(|l| l.name.len()).max().unwrap_or(0);
    let _ =
        writeln!(s, "\n{:lw$}    {:>17} | {:>17}   drops", "links", "a->b frames/bytes", "b->a frames/bytes", lw = lw);
    for l in &r.links {
        let _ = writeln!(
            s,
            "  {:lw$}  {:>7} {:>9} | {:>7} {:>9}   {}",
            l.name,
            l.a_to_b.delivered_frames,
            human_bytes(l.a_to_b.delivered_bytes),
            l.b_to_a.delivered_frames,
            human_bytes(l.b_to_a.delivered_bytes),
            drops(&l.a_to_b, &l.b_to_a)
        );
    }
    if !r.routers.is_empty() {
        let _ = writeln!(s, "\nrouters");
        let rw = r.routers.iter().map(|x| x.name.len()).max().unwrap_or(0);
        for x in &r.routers {
            let c = &x.counters;
            let drops: Vec<String> = c.dropped.iter().map(|(k, v)| format!("{v} {k}")).collect();
            let _ = writeln!(
                s,
                "  {:rw$}  forwarded {}, ICMP errors sent {}, dropped {}",
                crate::topology::diag::shown(&x.name).to_string(),
                c.forwarded,
                c.icmp_sent,
                if drops.is_empty() { "0".to_string() } else { drops.join(", ") }
            );
        }
    }
    if !r.bridges.is_empty() || !r.forwards.is_empty() {
        bridges(&mut s, r);
    }
    if !r.tunnels.is_empty() {
        let _ = writeln!(
            s,
            "\ntunnels{}",
            r.site.as_deref().map_or(String::new(), |x| format!(" of site {}", crate::topology::diag::shown(x)))
        );
        for t in &r.tunnels {
            let _ = writeln!(s, "  {}", tunnel_brief(t));
            if !t.refused.is_empty() {
                let kinds: Vec<String> = t.refused.iter().map(|(k, v)| format!("{v} {k}")).collect();
                let _ = writeln!(s, "    refused: {}", kinds.join(", "));
            }
            if t.rx_dropped + t.lost_out > 0 {
                let _ = writeln!(
                    s,
                    "    lost: {} frames in (the lab's queue was full), {} out (the connection went down with them)",
                    t.rx_dropped, t.lost_out
                );
            }
        }
    }
    if let Some(flows) = &r.flows {
        let _ = writeln!(s, "\nflows ({}), most bytes first", flows.len());
        for f in flows.iter().take(10) {
            let tcp = match (f.tcp_state, f.handshake_rtt_ms) {
                (Some(st), Some(rtt)) => {
                    format!(", {st}, handshake {rtt:.3} ms, {} retransmitted", f.retransmissions.unwrap_or(0))
                }
                (Some(st), None) => format!(", {st}"),
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "  {:<6} {} <-> {}: {}/{} packets, {}/{}{tcp}",
                f.protocol,
                f.a,
                f.b,
                f.packets_a_to_b,
                f.packets_b_to_a,
                human_bytes(f.bytes_a_to_b),
                human_bytes(f.bytes_b_to_a)
            );
        }
    }
    if let Some(c) = &r.capture {
        let _ = writeln!(s, "\ncapture: {} ({} frames)", c.files.join(", "), c.frames);
    }
    s.push_str(&expectations(r));
    s
}

/// The expectations, each with what the run measured: `PASS laptop/ping loss: 0% (at most 1%)`.
#[must_use]
pub fn expectations(r: &Report) -> String {
    let mut s = String::new();
    if r.expectations.is_empty() {
        return s;
    }
    let held = r.expectations.iter().filter(|e| e.ok).count();
    let _ = writeln!(s, "\nexpectations: {held} of {} hold", r.expectations.len());
    for e in &r.expectations {
        let p = crate::topology::diag::printable;
        let verdict = if e.ok { "PASS" } else { "FAIL" };
        let _ = writeln!(s, "  {verdict} {}: {} (expected {})", p(&e.what), p(&e.measured), p(&e.bound));
    }
    s
}

/// A link's drops both ways, by reason: `0`, or `3 loss, 1 queue-full`.
#[must_use]
pub fn drops(a: &DirCounters, b: &DirCounters) -> String {
    let mut all = a.drops.clone();
    for (k, v) in &b.drops {
        *all.entry(k).or_default() += v;
    }
    let mut words: Vec<String> = all.iter().map(|(k, v)| format!("{v} {k}")).collect();
    // Not drops of the link, but what its model did to frames it delivered: a receiver that checks
    // checksums drops a corrupt one, and a duplicate arrives twice.
    for (n, what) in
        [(a.corrupted_frames + b.corrupted_frames, "corrupt"), (a.duplicated_frames + b.duplicated_frames, "duplicate")]
    {
        if n > 0 {
            words.push(format!("{n} {what}"));
        }
    }
    if words.is_empty() {
        return "0".into();
    }
    words.join(", ")
}

fn rtt(r: Option<&RttStats>) -> String {
    r.map_or_else(|| "rtt -".into(), |r| format!("rtt min/avg/max {:.3}/{:.3}/{:.3} ms", r.min_ms, r.avg_ms, r.max_ms))
}

/// One line for an app's outcome, as the summary prints it.
#[must_use]
pub fn outcome_line(o: &Outcome) -> String {
    match o {
        Outcome::Ping { to, sent, received, loss_pct, corrupt, send_errors, rtt: r, .. } => {
            let mut bad = if *corrupt > 0 { format!(", {corrupt} corrupt") } else { String::new() };
            if *send_errors > 0 {
                bad += &format!(", {send_errors} not sent (socket buffer full)");
            }
            format!("ping {to}: {sent} sent, {received} received, {loss_pct:.1}% loss{bad}, {}", rtt(r.as_ref()))
        }
        Outcome::TcpEcho { to, sent, echoed, mismatched, rtt: r, error } => {
            let e = error.as_ref().map_or(String::new(), |e| format!(", error: {e}"));
            format!("tcp-echo {to}: {sent} sent, {echoed} echoed, {mismatched} mismatched, {}{e}", rtt(r.as_ref()))
        }
        Outcome::UdpEcho { to, sent, received, mismatched, loss_pct, send_errors, rtt: r } => {
            let refused = if *send_errors > 0 { format!(", {send_errors} not sent") } else { String::new() };
            format!(
                "udp-echo {to}: {sent} sent, {received} echoed, {mismatched} mismatched, {loss_pct:.1}% loss{refused}, {}",
                rtt(r.as_ref())
            )
        }
        Outcome::TcpTransfer { to, bytes, acked, seconds, goodput_mbps, error, retransmissions, .. } => {
            let mut e = error.as_ref().map_or(String::new(), |e| format!(", error: {e}"));
            if *retransmissions > 0 {
                e = format!(", {retransmissions} retransmitted{e}");
            }
            let t = match (seconds, goodput_mbps) {
                (Some(s), Some(g)) if *g < 1.0 => format!(" in {s:.3}s, goodput {:.1} kbit/s", g * 1e3),
                (Some(s), Some(g)) => format!(" in {s:.3}s, goodput {g:.1} Mbit/s"),
                (Some(s), None) => format!(" in {s:.3}s"),
                _ => String::new(),
            };
            format!("tcp-transfer {to}: {} of {} acked{t}{e}", human_bytes(*acked), human_bytes(*bytes))
        }
        Outcome::TcpSink { port, connections, peak_connections, bytes, corrupt_bytes } => {
            format!(
                "tcp-sink :{port}: {}, {} received, {corrupt_bytes} corrupt bytes",
                connections_text(*connections, *peak_connections),
                human_bytes(*bytes)
            )
        }
        Outcome::TcpEchoServer { port, connections, peak_connections, bytes } => {
            format!(
                "tcp-echo-server :{port}: {}, {} echoed",
                connections_text(*connections, *peak_connections),
                human_bytes(*bytes)
            )
        }
        Outcome::UdpEchoServer { port, datagrams, bytes } => {
            format!("udp-echo-server :{port}: {datagrams} datagrams, {} echoed", human_bytes(*bytes))
        }
        Outcome::HttpServer { port, connections, peak_connections, requests, bad_requests, responses, body_bytes } => {
            let by_status: Vec<String> = responses.iter().map(|(s, n)| format!("{n}× {s}")).collect();
            let bad = if *bad_requests > 0 { format!(", {bad_requests} bad") } else { String::new() };
            format!(
                "http-server :{port}: {}, {requests} request{}{bad}, answered {}, {} of body sent",
                connections_text(*connections, *peak_connections),
                if *requests == 1 { "" } else { "s" },
                if by_status.is_empty() { "none".to_string() } else { by_status.join(", ") },
                human_bytes(*body_bytes)
            )
        }
        Outcome::HttpGet { to, path, sent, completed, failed, statuses, body_bytes, ttfb, ttlb, error, .. } => {
            let by_status: Vec<String> = statuses.iter().map(|(s, n)| format!("{n}× {s}")).collect();
            let times = |name: &str, t: &Option<RttStats>| match t {
                Some(t) if t.min_ms == t.max_ms => format!(", {name} {:.3} ms", t.min_ms),
                Some(t) => format!(", {name} min/avg/max {:.3}/{:.3}/{:.3} ms", t.min_ms, t.avg_ms, t.max_ms),
                None => String::new(),
            };
            let failed = if *failed > 0 { format!(", {failed} failed") } else { String::new() };
            let e = error.as_ref().map_or(String::new(), |e| format!(", error: {e}"));
            format!(
                "http-get {to}{}: {completed} of {sent} answered{}, {} of body{}{}{failed}{e}",
                crate::topology::diag::shown(path),
                if by_status.is_empty() { String::new() } else { format!(" ({})", by_status.join(", ")) },
                human_bytes(*body_bytes),
                times("ttfb", ttfb),
                times("ttlb", ttlb)
            )
        }
        Outcome::UdpStream { to, count, sent, send_errors, rate_mbps, seconds, .. } => {
            let refused =
                if *send_errors > 0 { format!(", {send_errors} not sent (socket buffer full)") } else { String::new() };
            format!(
                "udp-stream {to}: {sent} of {count} datagrams sent at {} in {seconds:.3}s{refused}",
                rate_text(*rate_mbps)
            )
        }
        Outcome::UdpStreamServer {
            port,
            streams,
            received,
            lost,
            loss_pct,
            duplicates,
            reordered,
            corrupt,
            malformed,
            jitter_us,
            delay,
            ..
        } => {
            let mut extra = String::new();
            if *corrupt > 0 {
                extra += &format!(", {corrupt} corrupt");
            }
            if *malformed > 0 {
                extra += &format!(", {malformed} malformed");
            }
            let delay = delay.as_ref().map_or(String::new(), |d| {
                format!(", delay min/avg/max {:.3}/{:.3}/{:.3} ms", d.min_ms, d.avg_ms, d.max_ms)
            });
            format!(
                "udp-stream-server :{port}: {streams} stream(s), {received} received, {lost} lost ({loss_pct:.1}%), \
                 jitter {jitter_us:.1} us, {reordered} reordered, {duplicates} duplicates{extra}{delay}"
            )
        }
        Outcome::Traceroute { to, proto, reached, hop_count, hops } => {
            let last = hops.last().map_or(String::new(), |h| format!(": {}", hop_text(h)));
            format!(
                "traceroute {to} ({}): {} after {hop_count} hop{}{last}",
                match proto {
                    crate::topology::TraceProto::Udp => "udp",
                    crate::topology::TraceProto::Icmp => "icmp",
                },
                if *reached { "reached" } else { "not reached" },
                if *hop_count == 1 { "" } else { "s" }
            )
        }
    }
}

/// The lines under an app's outcome that list what one line cannot: a traceroute's hops.
#[must_use]
pub fn outcome_details(o: &Outcome) -> Vec<String> {
    match o {
        Outcome::Traceroute { hops, .. } if hops.len() > 1 => hops.iter().map(hop_text).collect(),
        _ => Vec::new(),
    }
}

/// `2  10.0.1.1  0.512 ms  *  0.530 ms`, as traceroute prints a hop.
fn hop_text(h: &crate::sim::apps::TraceHop) -> String {
    let mut s = format!("{:>2} ", h.ttl);
    let mut last = None;
    for p in &h.probes {
        match (p.from, p.rtt_ms) {
            (Some(from), Some(ms)) => {
                if last != Some(from) {
                    let _ = write!(s, " {from}");
                    last = Some(from);
                }
                let _ = write!(s, "  {ms:.3} ms");
            }
            _ => s.push_str("  *"),
        }
    }
    if let Some(n) = &h.note {
        let _ = write!(s, " {n}");
    }
    s
}

/// `1.0 Mbit/s`, `250 kbit/s`.
fn rate_text(mbps: f64) -> String {
    if mbps >= 1000.0 {
        format!("{:.1} Gbit/s", mbps / 1e3)
    } else if mbps >= 1.0 {
        format!("{mbps:.1} Mbit/s")
    } else {
        format!("{:.1} kbit/s", mbps * 1e3)
    }
}

/// `1 connection(s)`, and how many were open at once when more than one was.
fn connections_text(connections: u32, peak: u32) -> String {
    if peak > 1 {
        format!("{connections} connection(s), up to {peak} at once")
    } else {
        format!("{connections} connection(s)")
    }
}

/// `1.5 MiB`.
#[must_use]
pub fn human_bytes(b: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let f = b as f64;
    if b < 1024 {
        format!("{b} B")
    } else if f < 1024.0 * 1024.0 {
        format!("{:.1} KiB", f / 1024.0)
    } else if f < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", f / 1024.0 / 1024.0)
    } else {
        format!("{:.2} GiB", f / 1024.0 / 1024.0 / 1024.0)
    }
}

/// Forwards, gateways and their flows.
fn bridges(s: &mut String, r: &Report) {
    use crate::topology::diag::shown;
    let _ = writeln!(s, "\nreal sockets");
    for f in &r.forwards {
        let _ = writeln!(s, "  forward {} {} → {} → {}", f.proto, f.listen, shown(&f.from), f.to);
    }
    for b in &r.bridges {
        for (i, l) in bridge_lines(b, 10).iter().enumerate() {
            let _ = writeln!(s, "{}{l}", if i == 0 { "  " } else { "    " });
        }
    }
}

/// A node's bridged flows as lines: its counters first, then up to `max` flows.
#[must_use]
pub fn bridge_lines(b: &crate::sim::snapshot::BridgeSnapshot, max: usize) -> Vec<String> {
    let c = &b.counters;
    let mut parts = vec![format!("{} flows", c.flows)];
    if b.kind == "gateway" {
        parts.push(format!("{} dials", c.dials));
        for (n, what) in [
            (c.dials_refused, "refused by the real side"),
            (c.dials_timed_out, "dials timed out"),
            (c.denied, "denied (not in exit.allow)"),
            (c.pending_full, "SYNs dropped (too many dials pending)"),
            (c.flows_full, "refused (max_flows)"),
            (c.echo_prohibited, "echo requests prohibited"),
            (c.echo_sent, "echo requests carried out"),
            (c.echo_answered, "echo requests answered"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
    }
    if c.resets > 0 {
        parts.push(format!("{} reset", c.resets));
    }
    if c.udp_timeouts > 0 {
        parts.push(format!("{} UDP flows idled out", c.udp_timeouts));
    }
    if c.dropped > 0 {
        parts.push(format!("{} dropped (queue full)", c.dropped));
    }
    let mut out = vec![format!("{} {}: {}", b.kind, crate::topology::diag::shown(&b.node), parts.join(", "))];
    for f in b.flows.iter().take(max) {
        let proto = f.proto;
        let lab = format!("{} → {}", f.lab_src, f.lab_dst);
        let path = match f.role {
            crate::sim::bridge::Role::Forward => format!("{} ⇒ {lab}", f.real),
            crate::sim::bridge::Role::Exit => format!("{lab} ⇒ {}", f.real),
        };
        out.push(format!(
            "{proto} {path}  {}, {} in, {} out",
            f.state,
            human_bytes(f.bytes_in),
            human_bytes(f.bytes_out)
        ));
    }
    if b.flows.len() > max {
        out.push(format!("… {} more", b.flows.len() - max));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::runtime::Speed;
    use crate::sim::Sim;
    use crate::stats::Counters;
    use std::time::Duration;

    fn report(virtual_time: bool, wall: Duration) -> Report {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/labs/single-lan.json")).unwrap();
        let lab = crate::topology::load_str(&text, "single-lan.json").unwrap();
        let mut sim = Sim::new(&lab, None);
        let mut counters = Counters::new(&lab);
        sim.step(crate::time::SimTime::from_millis(500), &mut counters);
        Report::new(
            &lab,
            1,
            if virtual_time { Speed::Max } else { Speed::Factor(1.0) },
            Ended::Duration,
            &sim,
            counters,
            wall,
            None,
        )
    }

    #[test]
    fn the_summary_says_how_the_clock_kept_up() {
        let mut r = report(false, Duration::from_millis(500));
        r.max_lateness_ms = Some(0.4);
        assert!(!summary(&r).contains("warning"), "{}", summary(&r));
        r.max_lateness_ms = Some(26.14);
        assert!(summary(&r).contains("warning: events ran up to 26.1 ms behind the wall clock"), "{}", summary(&r));
        // Virtual time says how much faster, or slower, than real time it ran.
        assert!(summary(&report(true, Duration::from_millis(100))).contains("5.0x faster than real time"));
        assert!(summary(&report(true, Duration::from_secs(2))).contains("4.0x slower than real time"));
    }
}
