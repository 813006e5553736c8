//! Pure views: each screen is a widget drawn from `&App`, with nothing to do with the terminal.
//!
//! ```text
//! ┌ netlab two-site  1 Overview  2 Packets  3 Journey  4 Nodes  5 Log ─────────────┐  tabs
//! │                                                                                 │
//! │  the screen of the selected tab                                                │  body
//! │                                                                                 │
//! └─────────────────────────────────────────────────────────────────────────────────┘
//!  1.234s simulated · 1x · running · late 0.4 ms · capture: … · ? help  q quit        status bar
//! ```

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Sparkline, Table, Tabs, Widget, Wrap};

use super::app::{escape, App, Hit, PacketRow, Tab};
use super::keymap::KEYMAP;
use crate::headless::human_bytes;
use crate::runtime::Speed;
use crate::sim::Fate;

/// The whole screen.
pub struct Screen<'a>(pub &'a App);

impl Widget for Screen<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        app.hits.borrow_mut().clear();
        let [top, body, status] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(3), Constraint::Length(1)]).areas(area);
        let titles: Vec<Line> =
            Tab::ALL.iter().enumerate().map(|(i, t)| Line::from(format!("{} {}", i + 1, t.title()))).collect();
        let selected = Tab::ALL.iter().position(|t| *t == app.tab).unwrap_or(0);
        let [name, tabs] =
            Layout::horizontal([Constraint::Length(app.lab.len() as u16 + 9), Constraint::Min(10)]).areas(top);
        Paragraph::new(Line::from(vec![Span::raw(" netlab ").bold(), Span::raw(app.lab.clone())])).render(name, buf);
        Tabs::new(titles)
            .select(selected)
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED))
            .divider(" ")
            .render(tabs, buf);
        match app.tab {
            Tab::Overview => Overview(app).render(body, buf),
            Tab::Flows => Flows(app).render(body, buf),
            Tab::Packets => Packets(app).render(body, buf),
            Tab::Journey => Journey(app).render(body, buf),
            Tab::Nodes => Nodes(app).render(body, buf),
            Tab::Log => LogView(app).render(body, buf),
        }
        match &app.input {
            Some(input) => {
                let prompt = if input.kind == super::app::InputKind::Filter { "/" } else { ":" };
                let mut spans = vec![Span::raw(prompt).bold(), Span::raw(escape(&input.text)), Span::raw("█")];
                // Red or green where colours are welcome; reversed or dim where they are not.
                if let Some(e) = &input.error {
                    let style = if app.no_color {
                        Style::new().add_modifier(Modifier::REVERSED)
                    } else {
                        Style::new().fg(ratatui::style::Color::Red)
                    };
                    spans.push(Span::styled(format!("  {e}"), style));
                } else if let Some(h) = &input.hint {
                    let style = if app.no_color || input.kind != super::app::InputKind::Filter {
                        Style::new().add_modifier(Modifier::DIM)
                    } else {
                        Style::new().fg(ratatui::style::Color::Green)
                    };
                    spans.push(Span::styled(format!("  {h}"), style));
                }
                Paragraph::new(Line::from(spans)).render(status, buf);
            }
            None => StatusBar(app).render(status, buf),
        }
        if app.help {
            Help.render(body, buf);
        }
    }
}

/// The tab whose title is drawn at `column` of the tab bar, as [`Screen`] lays it out.
#[must_use]
pub fn tab_at(app: &App, column: u16) -> Option<usize> {
    let mut x = app.lab.len() as u16 + 9 + 1;
    for (i, t) in Tab::ALL.iter().enumerate() {
        let w = format!("{} {}", i + 1, t.title()).chars().count() as u16;
        if (x..x + w).contains(&column) {
            return Some(i);
        }
        x += w + 3;
    }
    None
}

fn rate(bps: f64) -> String {
    if bps >= 1e9 {
        format!("{:.1} Gbit/s", bps / 1e9)
    } else if bps >= 1e6 {
        format!("{:.1} Mbit/s", bps / 1e6)
    } else if bps >= 1e3 {
        format!("{:.1} kbit/s", bps / 1e3)
    } else {
        format!("{bps:.0} bit/s")
    }
}

fn speed(s: Speed) -> String {
    match s {
        Speed::Max => "max".into(),
        Speed::Factor(f) => format!("{f}x"),
    }
}

struct StatusBar<'a>(&'a App);

impl Widget for StatusBar<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        // A site whose clock has not started yet waits for its tunnels to come up.
        let waiting = app
            .snapshot
            .as_ref()
            .is_some_and(|s| s.steps == 0 && s.tunnels.iter().any(|t| t.state != crate::transport::State::Up));
        let state = match (&app.ended, app.paused) {
            (Some(e), _) => e.clone(),
            (None, true) => "paused".into(),
            (None, false) if waiting => "waiting for the tunnels".into(),
            (None, false) => "running".into(),
        };
        let late = app.snapshot.as_ref().map_or(0.0, |s| s.max_lateness_ms);
        let mut spans = vec![
            Span::raw(format!(" {:.6}s simulated", app.now().as_secs_f64())).bold(),
            Span::raw(format!(" · {} · ", speed(app.speed))),
            Span::raw(state).add_modifier(if app.paused { Modifier::REVERSED } else { Modifier::empty() }),
            Span::raw(format!(" · seed {}", app.seed)),
        ];
        // The event count once the lab itself says it is paused: until then it still moves.
        if let Some(s) = app.snapshot.as_ref().filter(|s| s.paused) {
            spans.push(Span::raw(format!(" · event {} (. steps)", s.steps)));
        }
        if late > 5.0 {
            spans.push(Span::raw(format!(" · late {late:.1} ms")));
        }
        if let Some(f) = app.snapshot.as_ref().and_then(|s| s.capture_files.first()) {
            spans.push(Span::raw(format!(" · capture: {}", escape(f))));
        }
        spans.push(Span::raw(" · ? help  q quit"));
        Paragraph::new(Line::from(spans)).render(area, buf);
    }
}

struct Overview<'a>(&'a App);

impl Widget for Overview<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let Some(s) = &app.snapshot else {
            Paragraph::new("starting…").render(area, buf);
            return;
        };
        // The map beside the table on a wide screen, above it on a narrow one.
        let (map, area) = if area.width >= 140 {
            let [map, rest] = Layout::horizontal([Constraint::Percentage(45), Constraint::Min(60)]).areas(area);
            (map, rest)
        } else {
            let [map, rest] = Layout::vertical([Constraint::Percentage(40), Constraint::Min(8)]).areas(area);
            (map, rest)
        };
        TopologyMap(app).render(map, buf);
        let tunnel_rows = if s.tunnels.is_empty() { 0 } else { s.tunnels.len() as u16 + 1 };
        let [links, tunnels, spark] =
            Layout::vertical([Constraint::Min(4), Constraint::Length(tunnel_rows), Constraint::Length(5)]).areas(area);
        if !s.tunnels.is_empty() {
            let lines: Vec<Line> = s
                .tunnels
                .iter()
                .map(|t| {
                    let line = Line::from(crate::headless::tunnel_brief(t));
                    if t.state == crate::transport::State::Up {
                        line
                    } else {
                        line.add_modifier(Modifier::BOLD)
                    }
                })
                .collect();
            Paragraph::new(lines).block(Block::new().borders(Borders::TOP).title(" tunnels ")).render(tunnels, buf);
        }
        let header = Row::new(["link", "state", "cap", "a→b", "b→a", "frames/s", "in flight", "drops"]).bold();
        let rows: Vec<Row> = s
            .sim
            .links
            .iter()
            .zip(&s.links)
            .zip(&app.rates)
            .enumerate()
            .map(|(i, ((l, c), r))| {
                let drops = crate::headless::drops(&c.a_to_b, &c.b_to_a);
                let tunnel = s.tunnels.iter().find(|t| t.links.contains(&(i as u32)));
                let state = match tunnel {
                    _ if !l.up => "down".to_string(),
                    Some(t) => format!("{} {}", t.transport, t.state.as_str()),
                    None if l.remote.iter().any(|r| *r) => "remote".into(),
                    None => "up".into(),
                };
                let row = Row::new([
                    Cell::from(escape(&l.name)),
                    Cell::from(state),
                    Cell::from(if s.capturing.get(i).copied().unwrap_or(false) { "●" } else { "" }),
                    Cell::from(rate(r.bps[0])),
                    Cell::from(rate(r.bps[1])),
                    Cell::from(format!("{:.0}", r.fps)),
                    Cell::from(format!("{}", l.a_to_b.in_flight + l.b_to_a.in_flight)),
                    Cell::from(drops),
                ]);
                let row = if l.up { row } else { row.add_modifier(Modifier::DIM) };
                if i == app.selected_link {
                    row.add_modifier(Modifier::REVERSED)
                } else {
                    row
                }
            })
            .collect();
        let name_width = app.links.iter().map(|n| n.chars().count()).max().unwrap_or(4).clamp(4, 40) as u16;
        let widths = [
            Constraint::Length(name_width),
            Constraint::Length(if s.tunnels.is_empty() { 6 } else { 14 }),
            Constraint::Length(3),
            Constraint::Length(12),
            Constraint::Length(12),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Min(8),
        ];
        for i in 0..s.sim.links.len().min(links.height.saturating_sub(2) as usize) {
            app.hits.borrow_mut().push((links.y + 2 + i as u16, links.x, links.x + links.width, Hit::Link(i)));
        }
        Table::new(rows, widths)
            .header(header)
            .block(Block::new().borders(Borders::TOP).title(format!(
                " links · {} frames, {} delivered · d: down/up · c: capture ",
                s.frames,
                human_bytes(s.bytes)
            )))
            .render(links, buf);
        if let (Some(r), Some(name)) = (app.rates.get(app.selected_link), app.links.get(app.selected_link)) {
            let data: Vec<u64> = r.history.iter().copied().collect();
            let model = s.sim.links.get(app.selected_link).map_or_else(String::new, model_brief);
            Sparkline::default()
                .block(
                    Block::new().borders(Borders::TOP).title(format!(" {name}: rate, last {} s{model} ", data.len())),
                )
                .data(&data)
                .render(spark, buf);
        }
    }
}

/// The topology on a canvas: nodes where the layout puts them, links coloured by their load (or
/// drawn plainly with `NO_COLOR`), a down link marked with ✗ and one dropping frames with !.
struct TopologyMap<'a>(&'a App);

impl Widget for TopologyMap<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        use ratatui::style::Color;
        use ratatui::symbols::Marker;
        use ratatui::widgets::canvas::{Canvas, Line as CLine};
        let app = self.0;
        let Some(s) = &app.snapshot else { return };
        // Keep the names inside: x from 0.05 to 0.75 (names run right), y from 0.05 to 0.95.
        let pos = |i: usize| {
            let p = &app.layout.nodes[i];
            (0.05 + p.x * 0.7, 0.95 - p.y * 0.9)
        };
        // A link's load: its busier direction against its rate (1 Gbit/s when unlimited).
        let load = |i: usize| {
            let link = &s.sim.links[i];
            let bps = app.rates.get(i).map_or(0.0, |r| r.bps[0].max(r.bps[1]));
            bps / link.a_to_b.model.rate_bps.unwrap_or(1_000_000_000) as f64
        };
        let load_color = |i: usize| {
            if !s.sim.links[i].up {
                return Color::DarkGray;
            }
            match load(i) {
                f if f <= 0.0 => Color::Gray,
                f if f < 0.3 => Color::Green,
                f if f < 0.7 => Color::Yellow,
                _ => Color::Red,
            }
        };
        // One braille dot, in canvas units: 2 across a cell, 4 down it.
        let (dot_x, dot_y) = (1.0 / (f64::from(area.width.max(1)) * 2.0), 1.0 / (f64::from(area.height.max(1)) * 4.0));
        Canvas::default()
            .block(Block::new().borders(Borders::TOP | Borders::RIGHT).title(" topology "))
            .marker(Marker::Braille)
            .x_bounds([0.0, 1.0])
            .y_bounds([0.0, 1.0])
            .paint(|ctx| {
                for (i, [a, b]) in app.link_ends.iter().enumerate() {
                    let ((x1, y1), (x2, y2)) = (pos(*a), pos(*b));
                    let color = if app.no_color { Color::Reset } else { load_color(i) };
                    ctx.draw(&CLine { x1, y1, x2, y2, color });
                    // Thicker as it carries more: a line more beside it past 30 %, two past 70 %.
                    let extra = match load(i) {
                        f if f >= 0.7 => 2,
                        f if f >= 0.3 => 1,
                        _ => 0,
                    };
                    // Beside it: one dot along the normal of the line, measured in dots.
                    let (dx, dy) = ((x2 - x1) / dot_x, (y2 - y1) / dot_y);
                    let len = dx.hypot(dy).max(1e-9);
                    let (nx, ny) = (-dy / len * dot_x, dx / len * dot_y);
                    for k in 1..=extra {
                        let k = f64::from(k);
                        ctx.draw(&CLine { x1: x1 + nx * k, y1: y1 + ny * k, x2: x2 + nx * k, y2: y2 + ny * k, color });
                    }
                    if !s.sim.links[i].up {
                        ctx.print((x1 + x2) / 2.0, (y1 + y2) / 2.0, Span::raw("✗"));
                    } else if app.dropping.get(i).copied().unwrap_or(false) {
                        ctx.print((x1 + x2) / 2.0, (y1 + y2) / 2.0, Span::raw("!"));
                    }
                }
                ctx.layer();
                for (i, (name, mark)) in app.nodes.iter().enumerate() {
                    let (x, y) = pos(i);
                    ctx.print(x, y, Span::raw(format!("{mark} {name}")).bold());
                }
            })
            .render(area, buf);
    }
}

/// A link's model in a few words, for the title of its rate: ` · 10ms, 50 Mbit/s`, or each
/// direction's when they differ (` · a→b 10ms · b→a 30ms ±5ms normal`); nothing for a clear link.
fn model_brief(l: &crate::sim::snapshot::LinkSnapshot) -> String {
    let words = |m: &crate::sim::snapshot::ModelSnapshot| crate::graph::impairments(&m.to_model()).join(", ");
    if l.a_to_b.model == l.b_to_a.model {
        let w = words(&l.a_to_b.model);
        if w.is_empty() {
            String::new()
        } else {
            format!(" · {w}")
        }
    } else {
        let or_clear = |w: String| if w.is_empty() { "clear".to_string() } else { w };
        format!(" · a→b {} · b→a {}", or_clear(words(&l.a_to_b.model)), or_clear(words(&l.b_to_a.model)))
    }
}

fn fate(f: Fate) -> String {
    match f {
        Fate::Sent => "sent".into(),
        Fate::Delivered => "delivered".into(),
        Fate::ToRemote => "to remote".into(),
        Fate::Tunneled => "into tunnel".into(),
        Fate::Dropped(r) => format!("dropped: {}", r.as_str()),
        Fate::Corrupted => "corrupted (a bit flipped)".into(),
        Fate::Duplicated => "duplicated".into(),
    }
}

fn packet_cells(app: &App, p: &PacketRow) -> Vec<String> {
    let d = crate::inspect::decode(&p.event.frame);
    let info = match p.event.fate {
        Fate::Delivered => d.summary.info.clone(),
        other => format!("[{}] {}", fate(other), d.summary.info),
    };
    vec![
        p.no.to_string(),
        format!("{:.6}", p.event.time.as_secs_f64()),
        app.links.get(p.event.link.index()).cloned().unwrap_or_default(),
        escape(&d.summary.src),
        escape(&d.summary.dst),
        d.summary.protocol.to_string(),
        p.event.frame.len().to_string(),
        escape(&info),
    ]
}

struct Flows<'a>(&'a App);

fn ms(ns: Option<u64>) -> String {
    ns.map_or_else(|| "-".into(), |n| format!("{:.2} ms", n as f64 / 1e6))
}

impl Widget for Flows<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let now = app.flows.now_ns();
        let flows = app.sorted_flows();
        let height = area.height.saturating_sub(2) as usize;
        let start = app.selected_flow.saturating_sub(height.saturating_sub(1));
        // A narrow screen keeps the columns that say the most.
        let wide = area.width >= 140;
        let keep = |i: usize| wide || ![3, 5, 9, 10].contains(&i);
        let rows: Vec<Row> = flows
            .iter()
            .enumerate()
            .skip(start)
            .take(height)
            .map(|(i, f)| {
                let (state, retrans, zero) = match &f.tcp {
                    Some(t) => {
                        (t.state.as_str().to_string(), t.retransmissions.to_string(), t.zero_windows.to_string())
                    }
                    None => match &f.echo {
                        Some(e) => (format!("{}/{} answered", e.replies, e.requests), String::new(), String::new()),
                        None => (String::new(), String::new(), String::new()),
                    },
                };
                let cells = [
                    f.key.protocol.to_string(),
                    f.a.to_string(),
                    f.b.to_string(),
                    format!("{}/{}", f.a_to_b.packets, f.b_to_a.packets),
                    format!("{}/{}", human_bytes(f.a_to_b.bytes), human_bytes(f.b_to_a.bytes)),
                    format!("{:.3}", f.first_ns as f64 / 1e9),
                    format!("{:.3}", (f.last_ns - f.first_ns) as f64 / 1e9),
                    rate(f.rate(now) * 8.0),
                    state,
                    retrans,
                    zero,
                    // Each packet is seen once, where its host sent it: the handshake, all sent by
                    // the client but the SYN-ACK, is the round trip that can be timed there.
                    ms(f.tcp.as_ref().and_then(|t| t.handshake_rtt_ns)),
                ];
                let row = Row::new(cells.into_iter().enumerate().filter(|(i, _)| keep(*i)).map(|(_, c)| c));
                if i == app.selected_flow {
                    row.add_modifier(Modifier::REVERSED)
                } else {
                    row
                }
            })
            .collect();
        let widths: Vec<Constraint> = [
            Constraint::Length(6),
            Constraint::Min(16),
            Constraint::Min(16),
            Constraint::Length(11),
            Constraint::Length(19),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(12),
            Constraint::Length(14),
            Constraint::Length(7),
            Constraint::Length(5),
            Constraint::Length(9),
        ]
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .map(|(_, w)| w)
        .collect();
        let header = [
            "proto",
            "A",
            "B",
            "pkts A/B",
            "bytes A/B",
            "start",
            "dur s",
            "rate",
            "state",
            "retrans",
            "0win",
            "hs rtt",
        ]
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .map(|(_, h)| h);
        for (k, i) in (start..flows.len()).take(height).enumerate() {
            app.hits.borrow_mut().push((area.y + 2 + k as u16, area.x, area.x + area.width, Hit::Flow(i)));
        }
        let title = format!(
            " flows · {} · sorted by {} (s) · Enter: its packets{} ",
            app.flows.len(),
            app.flow_sort.name(),
            if app.flows.evicted() > 0 { format!(" · {} forgotten", app.flows.evicted()) } else { String::new() }
        );
        Table::new(rows, widths)
            .header(Row::new(header).bold())
            .block(Block::new().borders(Borders::TOP).title(title))
            .render(area, buf);
    }
}

struct Packets<'a>(&'a App);

impl Widget for Packets<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let lost = app.packets_lost() + app.feed_dropped;
        let visible = app.visible_packets();
        let title = format!(
            " packets{}{} · {} in view{} · {} · Enter: journey · [ ]: field ",
            app.filter.as_ref().map_or(String::new(), |(t, _)| format!(" matching `{}` (/ to change)", escape(t))),
            app.packet_flow.map_or(String::new(), |k| format!(" of {} {} ↔ {} (Esc: all)", k.protocol, k.lo, k.hi)),
            visible.len(),
            if lost > 0 { format!(", {lost} fell out") } else { String::new() },
            if app.follow { "following (f to stop)" } else { "f: follow" }
        );
        let detail_h = if area.height >= 20 { area.height / 3 } else { 0 };
        let hex_h = if area.height >= 20 { (area.height / 5).max(4) } else { 0 };
        let [list, detail, hex] =
            Layout::vertical([Constraint::Min(4), Constraint::Length(detail_h), Constraint::Length(hex_h)]).areas(area);
        let height = list.height.saturating_sub(2) as usize;
        let current = app.current_packet().map(|p| p.no);
        // The window of rows that ends with the selection (or the newest).
        let end = match current {
            Some(no) => visible
                .iter()
                .position(|p| p.no == no)
                .map_or(visible.len(), |i| (i + 1).max(height.min(visible.len()))),
            None => visible.len(),
        };
        let start = end.saturating_sub(height);
        for (k, p) in visible[start..end].iter().enumerate() {
            app.hits.borrow_mut().push((list.y + 2 + k as u16, list.x, list.x + list.width, Hit::Packet(p.no)));
        }
        let rows: Vec<Row> = visible[start..end]
            .iter()
            .map(|p| {
                let row = Row::new(packet_cells(app, p));
                if Some(p.no) == current {
                    row.add_modifier(Modifier::REVERSED)
                } else {
                    row
                }
            })
            .collect();
        let widths = [
            Constraint::Length(7),
            Constraint::Length(9),
            Constraint::Length(12),
            Constraint::Length(15),
            Constraint::Length(15),
            Constraint::Length(6),
            Constraint::Length(5),
            Constraint::Min(10),
        ];
        Table::new(rows, widths)
            .header(Row::new(["no", "time", "link", "source", "destination", "proto", "len", "info"]).bold())
            .block(Block::new().borders(Borders::TOP).title(title))
            .render(list, buf);
        let Some(p) = app.current_packet() else { return };
        if detail_h == 0 {
            return;
        }
        let d = crate::inspect::decode(&p.event.frame);
        let fields: Vec<&crate::inspect::Field> = d.layers.iter().flat_map(|l| &l.fields).collect();
        let selected = app.selected_field.min(fields.len().saturating_sub(1));
        let mut lines = Vec::new();
        let mut n = 0;
        for l in &d.layers {
            lines.push(Line::from(format!("{}, {}", l.name, escape(&l.info))).bold());
            for f in &l.fields {
                let line = Line::from(format!("    {}", escape(&f.label)));
                lines.push(if n == selected { line.add_modifier(Modifier::REVERSED) } else { line });
                n += 1;
            }
        }
        // Keep the selected field in view.
        let sel_line = lines.iter().position(|l| l.style.add_modifier.contains(Modifier::REVERSED)).unwrap_or(0);
        let skip = sel_line.saturating_sub(detail.height.saturating_sub(2) as usize);
        Paragraph::new(lines)
            .scroll((u16::try_from(skip).unwrap_or(0), 0))
            .block(Block::new().borders(Borders::TOP).title(format!(" frame {} · {} ", p.no, fate(p.event.fate))))
            .render(detail, buf);
        let range = fields.get(selected).map(|f| f.range.clone());
        let hl: Vec<Line> = crate::inspect::hex_dump(&p.event.frame)
            .map(|h| {
                let hex = h.hex();
                let spans = match range.as_ref().and_then(|r| h.hex_span(r)) {
                    Some(span) => vec![
                        Span::raw(format!("{}  ", h.offset_text())),
                        Span::raw(hex[..span.start].to_string()),
                        Span::raw(hex[span.clone()].to_string()).add_modifier(Modifier::REVERSED),
                        Span::raw(hex[span.end..].to_string()),
                        Span::raw(format!("  {}", h.ascii())),
                    ],
                    None => vec![Span::raw(format!("{}  {hex}  {}", h.offset_text(), h.ascii()))],
                };
                Line::from(spans)
            })
            .collect();
        let first = range
            .as_ref()
            .map_or(0, |r| r.start / crate::inspect::BYTES_PER_LINE)
            .saturating_sub(hex.height.saturating_sub(2) as usize / 2);
        Paragraph::new(hl)
            .scroll((u16::try_from(first).unwrap_or(0), 0))
            .block(Block::new().borders(Borders::TOP).title(" bytes "))
            .render(hex, buf);
    }
}

struct Journey<'a>(&'a App);

impl Widget for Journey<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let Some(p) = app.current_packet() else {
            Paragraph::new("no packet selected: pick one in Packets and press Enter").render(area, buf);
            return;
        };
        let id = p.event.packet;
        let hops = app.journey(id);
        let origin = id
            .origin()
            .and_then(|n| app.nodes.get(n.index()))
            .map_or_else(|| "from outside".into(), |(name, _)| format!("sent by {name}"));
        let rows: Vec<Row> = hops
            .iter()
            .map(|h| {
                let entered = app.sent_at.get(&(id, h.event.link.0, h.event.from)).copied();
                let on_link =
                    entered.map_or(String::new(), |t| format!("{:.3} ms", (h.event.time - t).as_secs_f64() * 1e3));
                Row::new([
                    entered.map_or("-".into(), |t| format!("{:.6}", t.as_secs_f64())),
                    format!("{:.6}", h.event.time.as_secs_f64()),
                    on_link,
                    app.links.get(h.event.link.index()).cloned().unwrap_or_default(),
                    app.direction(h),
                    fate(h.event.fate),
                ])
            })
            .collect();
        let widths = [
            Constraint::Length(11),
            Constraint::Length(11),
            Constraint::Length(11),
            Constraint::Min(10),
            Constraint::Min(12),
            Constraint::Min(12),
        ];
        Table::new(rows, widths)
            .header(Row::new(["entered", "left", "on the link", "link", "from → to", "fate"]).bold())
            .block(Block::new().borders(Borders::TOP).title(format!(" journey of packet {id} ({origin}) ")))
            .render(area, buf);
    }
}

struct Nodes<'a>(&'a App);

impl Widget for Nodes<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let Some(s) = &app.snapshot else { return };
        let [list, detail] = Layout::horizontal([Constraint::Length(20), Constraint::Min(20)]).areas(area);
        let names: Vec<String> = s
            .sim
            .hosts
            .iter()
            .map(|h| {
                if s.sim.bridges.iter().any(|b| b.kind == "gateway" && b.node == h.name) {
                    format!("{} (gateway)", escape(&h.name))
                } else {
                    escape(&h.name)
                }
            })
            .chain(s.sim.switches.iter().map(|w| format!("{} (switch)", escape(&w.name))))
            .chain(s.sim.routers.iter().map(|r| format!("{} (router)", escape(&r.name))))
            .collect();
        let lines: Vec<Line> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let l = Line::from(n.clone());
                if i == app.selected_node {
                    l.add_modifier(Modifier::REVERSED)
                } else {
                    l
                }
            })
            .collect();
        for i in 0..names.len().min(list.height as usize) {
            app.hits.borrow_mut().push((list.y + i as u16, list.x, list.x + list.width, Hit::Node(i)));
        }
        Paragraph::new(lines).block(Block::new().borders(Borders::RIGHT)).render(list, buf);
        let mut text: Vec<Line> = Vec::new();
        if let Some(h) = s.sim.hosts.get(app.selected_node) {
            for i in &h.interfaces {
                text.push(
                    Line::from(format!("{} {} mtu {}: {}", escape(&i.name), i.mac, i.mtu, i.addresses.join(", ")))
                        .bold(),
                );
            }
            // A host with several interfaces, or routes of its own, shows its table and which
            // interface each neighbour and socket is on.
            let multi = h.interfaces.len() > 1;
            let on = |dev: &str| if multi { format!(" on {}", escape(dev)) } else { String::new() };
            if multi || h.routes.iter().any(|r| !r.connected) {
                text.push(Line::from("routes").bold());
                for rt in &h.routes {
                    let via = rt.via.as_deref().map_or_else(|| "on-link".to_string(), |v| format!("via {v}"));
                    text.push(Line::from(format!("  {} {via} dev {}", rt.to, escape(&rt.dev))));
                }
            }
            text.push(Line::from("neighbours").bold());
            for n in &h.neighbours {
                text.push(Line::from(format!(
                    "  {} at {}{} ({:.1} s ago)",
                    n.ip,
                    n.mac,
                    on(&n.dev),
                    n.age_ns as f64 / 1e9
                )));
            }
            text.push(Line::from("sockets").bold());
            for k in &h.sockets {
                text.push(Line::from(format!(
                    "  {}{} {} → {} {} rx {}/{} tx {}/{}",
                    k.kind,
                    on(&k.dev),
                    k.local.as_deref().unwrap_or("-"),
                    k.remote.as_deref().unwrap_or("-"),
                    k.state.as_deref().unwrap_or(""),
                    k.rx_queue,
                    k.rx_capacity,
                    k.tx_queue,
                    k.tx_capacity
                )));
            }
            if let Some(b) = s.sim.bridges.iter().find(|b| b.node == h.name) {
                // Its flows to and from real sockets.
                let lines = crate::headless::bridge_lines(b, 20);
                for (i, l) in lines.into_iter().enumerate() {
                    text.push(if i == 0 { Line::from(l).bold() } else { Line::from(format!("  {l}")) });
                }
            }
            // A gateway runs no apps.
            if !h.apps.is_empty() || !s.sim.bridges.iter().any(|b| b.kind == "gateway" && b.node == h.name) {
                text.push(Line::from("apps").bold());
            }
            for a in &h.apps {
                let state =
                    serde_json::to_value(a.state).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                text.push(Line::from(format!("  {} ({state})", escape(&a.label))));
                text.push(Line::from(format!("    {}", crate::headless::outcome_line(&a.outcome))));
                for d in crate::headless::outcome_details(&a.outcome) {
                    text.push(Line::from(format!("      {d}")));
                }
            }
        } else if let Some(w) = s.sim.switches.get(app.selected_node.saturating_sub(s.sim.hosts.len())) {
            // Its ports: the links that end on it, in, out and dropped as seen from the switch.
            text.push(Line::from(format!("{} ports", w.ports)).bold());
            let me = app.nodes.iter().position(|(n, _)| *n == escape(&w.name));
            for (i, ends) in app.link_ends.iter().enumerate() {
                let Some(side) = ends.iter().position(|e| Some(*e) == me) else { continue };
                let Some(c) = s.links.get(i) else { continue };
                let (into, out) = if side == 1 { (&c.a_to_b, &c.b_to_a) } else { (&c.b_to_a, &c.a_to_b) };
                text.push(Line::from(format!(
                    "  {}: in {} frames {}, out {} frames {}, dropped {}",
                    app.links.get(i).cloned().unwrap_or_default(),
                    into.delivered_frames,
                    human_bytes(into.delivered_bytes),
                    out.sent_frames,
                    human_bytes(out.sent_bytes),
                    out.dropped()
                )));
            }
            text.push(Line::from("MAC table").bold());
            for e in &w.table {
                text.push(Line::from(format!("  {} on port {}", e.mac, e.port)));
            }
        } else if let Some(r) =
            s.sim.routers.get(app.selected_node.saturating_sub(s.sim.hosts.len() + s.sim.switches.len()))
        {
            for i in &r.interfaces {
                text.push(
                    Line::from(format!("{} {} mtu {}: {}", escape(&i.name), i.mac, i.mtu, i.addresses.join(", ")))
                        .bold(),
                );
            }
            let c = &r.counters;
            let drops: Vec<String> = c.dropped.iter().map(|(k, v)| format!("{k} {v}")).collect();
            text.push(Line::from(format!(
                "forwarded {}, to itself {}, ICMP errors sent {} ({} rate-limited), waiting {}, dropped: {}",
                c.forwarded,
                c.local,
                c.icmp_sent,
                c.icmp_rate_limited,
                r.waiting,
                if drops.is_empty() { "none".into() } else { drops.join(", ") }
            )));
            text.push(Line::from("routes").bold());
            for rt in &r.routes {
                let via = rt.via.as_deref().map_or_else(|| "on-link".to_string(), |v| format!("via {v}"));
                text.push(Line::from(format!("  {} {via} dev {}", rt.to, escape(&rt.dev))));
            }
            text.push(Line::from("neighbours").bold());
            for n in &r.neighbours {
                text.push(Line::from(format!(
                    "  {} at {} on {} ({:.1} s ago)",
                    n.ip,
                    n.mac,
                    escape(&n.dev),
                    n.age_ns as f64 / 1e9
                )));
            }
        }
        Paragraph::new(text).wrap(Wrap { trim: false }).render(detail, buf);
    }
}

struct LogView<'a>(&'a App);

impl Widget for LogView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let lines: Vec<Line> =
            app.log.iter().rev().take(area.height as usize).rev().map(|l| Line::from(l.clone())).collect();
        Paragraph::new(lines)
            .block(Block::new().borders(Borders::TOP).title(" log: commands applied "))
            .render(area, buf);
    }
}

struct Help;

impl Widget for Help {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let mut seen = Vec::new();
        let lines: Vec<Line> = KEYMAP
            .iter()
            .filter_map(|(code, mods, _, help)| {
                let key = match code {
                    ratatui::crossterm::event::KeyCode::Char(c) if mods.is_empty() => c.to_string(),
                    ratatui::crossterm::event::KeyCode::Char(c) => format!("Ctrl-{c}"),
                    other => format!("{other}"),
                };
                if seen.contains(help) {
                    return None;
                }
                seen.push(*help);
                let others: Vec<String> = KEYMAP
                    .iter()
                    .filter(|(c2, m2, _, h2)| h2 == help && !(c2 == code && m2 == mods))
                    .map(|(c2, ..)| match c2 {
                        ratatui::crossterm::event::KeyCode::Char(c) => c.to_string(),
                        other => format!("{other}"),
                    })
                    .collect();
                let keys = if others.is_empty() { key } else { format!("{key} {}", others.join(" ")) };
                Some(Line::from(format!(" {keys:<14} {help}")))
            })
            .collect();
        let h = (lines.len() as u16 + 2).min(area.height);
        let w = 48.min(area.width);
        let r = Rect { x: area.x + area.width.saturating_sub(w) / 2, y: area.y, width: w, height: h };
        Clear.render(r, buf);
        Paragraph::new(lines).block(Block::bordered().title(" keys (? to close) ")).render(r, buf);
    }
}
