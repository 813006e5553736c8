//! The UI's model: what the screens show, and `update`, which turns an action into changes of the
//! model and controls for the driver. Nothing here draws or touches the terminal.

use std::collections::VecDeque;

use super::keymap::Action;
use crate::inspect::flows::{Flow, FlowKey, FlowTable};
use crate::runtime::{Control, FeedEvent, LabSnapshot, Speed};
use crate::sim::{CommandSpec, Fate, PacketId};
use crate::time::SimTime;
use crate::topology::{Lab, Side};

/// Packets the UI keeps; older ones fall out (and are counted).
pub const PACKET_RING: usize = 10_000;
/// Conversations the UI tracks; the least recently seen go first.
pub const FLOWS: usize = 65_536;
/// Rate samples kept per link: a minute at one a second.
pub const HISTORY: usize = 60;
/// Speeds the `+` and `-` keys step through.
pub const SPEEDS: [f64; 9] = [0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 50.0, 100.0];

/// The screens, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Overview,
    Flows,
    Packets,
    Journey,
    Nodes,
    Log,
}

impl Tab {
    pub const ALL: [Tab; 6] = [Tab::Overview, Tab::Flows, Tab::Packets, Tab::Journey, Tab::Nodes, Tab::Log];

    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            Tab::Overview => "Overview",
            Tab::Flows => "Flows",
            Tab::Packets => "Packets",
            Tab::Journey => "Journey",
            Tab::Nodes => "Nodes",
            Tab::Log => "Log",
        }
    }
}

/// One frame event as the packets list shows it.
#[derive(Debug, Clone)]
pub struct PacketRow {
    /// Its number in the whole run, from 1.
    pub no: u64,
    pub event: FeedEvent,
    /// The conversation it belongs to, if any.
    pub flow: Option<FlowKey>,
    /// Whether the display filter lets it through.
    pub matched: bool,
}

/// How the flows are sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowSort {
    Bytes,
    Packets,
    Rate,
    Start,
}

impl FlowSort {
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            FlowSort::Bytes => "bytes",
            FlowSort::Packets => "packets",
            FlowSort::Rate => "rate",
            FlowSort::Start => "start",
        }
    }

    fn next(self) -> FlowSort {
        match self {
            FlowSort::Bytes => FlowSort::Packets,
            FlowSort::Packets => FlowSort::Rate,
            FlowSort::Rate => FlowSort::Start,
            FlowSort::Start => FlowSort::Bytes,
        }
    }
}

/// A link's delivered frames (both ways) and bytes (A→B, B→A) at a snapshot.
type Delivered = (u64, u64, u64);

/// A link's rates, computed from two snapshots.
#[derive(Debug, Clone, Default)]
pub struct LinkRates {
    /// Bits per simulated second, each way.
    pub bps: [f64; 2],
    /// Frames per simulated second, both ways.
    pub fps: f64,
    /// Total rate samples, newest last, for the sparkline.
    pub history: VecDeque<u64>,
}

/// What a line typed at the bottom of the screen is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InputKind {
    /// A command (`:`).
    #[default]
    Command,
    /// A display filter (`/`), checked as it is typed.
    Filter,
}

/// What a click on the screen lands on, as the last drawing laid it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hit {
    Link(usize),
    Flow(usize),
    Packet(u64),
    Node(usize),
}

/// A line being typed at the bottom of the screen.
#[derive(Debug, Clone, Default)]
pub struct Input {
    pub kind: InputKind,
    pub text: String,
    /// What is wrong with the line, once Enter was pressed.
    pub error: Option<String>,
    /// What helps to write it (a link's model now).
    pub hint: Option<String>,
}

pub struct App {
    /// The lab, for checking and completing typed commands.
    model: Lab,
    /// Where the Overview draws each node.
    pub layout: crate::layout::Layout,
    /// Each node's name, escaped, and whether it is a switch.
    /// Each node's escaped name and its mark on the map: ■ host, ◆ switch, ⊕ router, ⊗ exit gateway.
    pub nodes: Vec<(String, &'static str)>,
    /// Each link's two nodes, by index.
    pub link_ends: Vec<[usize; 2]>,
    /// Draw without colours (`NO_COLOR`).
    pub no_color: bool,
    /// Where the last drawing put each clickable row: (row, from column, to column, what).
    pub hits: std::cell::RefCell<Vec<(u16, u16, u16, Hit)>>,
    /// The command line (`:`), while it is open.
    pub input: Option<Input>,
    pub lab: String,
    pub seed: u64,
    /// Link names, escaped for the terminal.
    pub links: Vec<String>,
    /// The two node names of each link, escaped.
    pub link_nodes: Vec<[String; 2]>,
    pub tab: Tab,
    pub help: bool,
    pub snapshot: Option<LabSnapshot>,
    /// The snapshot the rates were last taken against: its time and each link's totals.
    last: Option<(u64, Vec<Delivered>)>,
    pub rates: Vec<LinkRates>,
    /// Links that dropped frames since the snapshot before.
    pub dropping: Vec<bool>,
    /// Each link's drops at the last snapshot.
    drops_before: Vec<u64>,
    pub selected_link: usize,
    pub packets: VecDeque<PacketRow>,
    pub packets_seen: u64,
    /// Conversations, each packet counted once (where its host sent it).
    pub flows: FlowTable,
    pub flow_sort: FlowSort,
    pub selected_flow: usize,
    /// Packets shows only this conversation's frames (Enter on a flow; Esc clears).
    pub packet_flow: Option<FlowKey>,
    /// When each packet of the ring was put on each link (its journey's "entered"), oldest out first.
    pub sent_at: std::collections::HashMap<(PacketId, u32, Side), SimTime>,
    sent_order: VecDeque<(PacketId, u32, Side)>,
    /// The display filter applied to packets and flows, as typed.
    pub filter: Option<(String, crate::inspect::Filter)>,
    /// Events the feed could not take (the UI fell behind).
    pub feed_dropped: u64,
    pub selected_packet: Option<u64>,
    /// The decoded field selected in the packet's detail.
    pub selected_field: usize,
    /// Follow the newest packet.
    pub follow: bool,
    pub selected_node: usize,
    pub log: Vec<String>,
    /// Events of the lab file the log shows so far.
    events_seen: u64,
    pub speed: Speed,
    pub paused: bool,
    pub ended: Option<String>,
}

/// Escapes text from a lab file, a log or the network before a terminal sees it: control and
/// invisible characters (a bidi override would reorder the screen), as every message is escaped.
pub use crate::topology::diag::printable as escape;

impl App {
    #[must_use]
    pub fn new(lab: &Lab, seed: u64, speed: Speed) -> Self {
        let name = |n: crate::topology::NodeId| escape(&lab.node(n).name);
        App {
            layout: crate::layout::layout(lab),
            nodes: lab
                .nodes
                .iter()
                .map(|n| {
                    let mark = match &n.kind {
                        crate::topology::NodeKind::Switch(_) => "◆",
                        crate::topology::NodeKind::Router(_) => "⊕",
                        crate::topology::NodeKind::Host(h) if h.exit.is_some() => "⊗",
                        crate::topology::NodeKind::Host(_) => "■",
                    };
                    (escape(&n.name), mark)
                })
                .collect(),
            link_ends: lab.links.iter().map(|l| [l.ends[0].node().index(), l.ends[1].node().index()]).collect(),
            no_color: std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
            hits: std::cell::RefCell::new(Vec::new()),
            log: lab.warnings.iter().map(|w| escape(&w.to_string().replace('\n', " "))).collect(),
            model: lab.clone(),
            input: None,
            lab: escape(&lab.name),
            seed,
            links: lab.links.iter().map(|l| escape(&l.name)).collect(),
            link_nodes: lab.links.iter().map(|l| [name(l.ends[0].node()), name(l.ends[1].node())]).collect(),
            tab: Tab::Overview,
            help: false,
            snapshot: None,
            last: None,
            rates: vec![LinkRates::default(); lab.links.len()],
            dropping: vec![false; lab.links.len()],
            drops_before: vec![0; lab.links.len()],
            selected_link: 0,
            packets: VecDeque::new(),
            packets_seen: 0,
            flows: FlowTable::new(FLOWS),
            flow_sort: FlowSort::Bytes,
            selected_flow: 0,
            packet_flow: None,
            filter: None,
            sent_at: std::collections::HashMap::new(),
            sent_order: VecDeque::new(),
            feed_dropped: 0,
            selected_packet: None,
            selected_field: 0,
            follow: true,
            selected_node: 0,
            events_seen: 0,
            speed,
            paused: false,
            ended: None,
        }
    }

    /// Takes a new snapshot; every `sample`th one also feeds the sparklines.
    pub fn on_snapshot(&mut self, s: LabSnapshot, sample: bool) {
        let now = s.sim.now_ns;
        let totals: Vec<Delivered> = s
            .links
            .iter()
            .map(|l| {
                (
                    l.a_to_b.delivered_frames + l.b_to_a.delivered_frames,
                    l.a_to_b.delivered_bytes,
                    l.b_to_a.delivered_bytes,
                )
            })
            .collect();
        if let Some((t0, before)) = &self.last {
            let dt = (now.saturating_sub(*t0)) as f64 / 1e9;
            if dt > 0.0 {
                for (r, (now_c, then_c)) in self.rates.iter_mut().zip(totals.iter().zip(before)) {
                    r.fps = now_c.0.saturating_sub(then_c.0) as f64 / dt;
                    r.bps = [
                        now_c.1.saturating_sub(then_c.1) as f64 * 8.0 / dt,
                        now_c.2.saturating_sub(then_c.2) as f64 * 8.0 / dt,
                    ];
                }
            }
        }
        if sample {
            for r in &mut self.rates {
                r.history.push_back((r.bps[0] + r.bps[1]) as u64);
                if r.history.len() > HISTORY {
                    r.history.pop_front();
                }
            }
        }
        if self.last.as_ref().is_none_or(|(t0, _)| now > *t0) {
            self.last = Some((now, totals));
        }
        // Link state changes, whoever made them (a key, the command line, a replayed log).
        if let Some(before) = &self.snapshot {
            for (l, was) in s.sim.links.iter().zip(&before.sim.links) {
                if l.up != was.up {
                    let at = SimTime::from_nanos(s.sim.now_ns);
                    self.log.push(format!("{at} link {} is {}", escape(&l.name), if l.up { "up" } else { "down" }));
                }
            }
        }
        // Events of the lab file applied since the last snapshot (the most recent, if many).
        let new = usize::try_from(s.events_applied.saturating_sub(self.events_seen)).unwrap_or(usize::MAX);
        let recent = &s.recent_events;
        for line in recent.iter().skip(recent.len().saturating_sub(new)) {
            self.log.push(escape(line));
        }
        self.events_seen = s.events_applied;
        let drops: Vec<u64> = s.links.iter().map(|l| l.a_to_b.dropped() + l.b_to_a.dropped()).collect();
        self.dropping = drops.iter().zip(&self.drops_before).map(|(now, before)| now > before).collect();
        self.drops_before = drops;
        self.paused = s.paused;
        self.snapshot = Some(s);
    }

    /// Takes frame events from the feed into the packet ring.
    pub fn on_events(&mut self, events: impl IntoIterator<Item = FeedEvent>) {
        for e in events {
            if e.fate == Fate::Sent {
                let key = (e.packet, e.link.0, e.from);
                if self.sent_at.insert(key, e.time).is_none() {
                    self.sent_order.push_back(key);
                    if self.sent_order.len() > 2 * PACKET_RING {
                        if let Some(old) = self.sent_order.pop_front() {
                            self.sent_at.remove(&old);
                        }
                    }
                }
                // A packet counts once in its flow: where the host that made it sent it.
                let sender = self.link_ends[e.link.index()][e.from.index()];
                if e.packet.origin().is_some_and(|n| n.index() == sender) {
                    self.flows.observe(e.time.as_nanos(), &e.frame);
                }
                continue;
            }
            // The list shows where each frame went: delivered, handed on, or dropped.
            self.packets_seen += 1;
            let flow = FlowKey::of(&e.frame);
            let mut row = PacketRow { no: self.packets_seen, event: e, flow, matched: true };
            row.matched = self.matches(&row);
            self.packets.push_back(row);
            if self.packets.len() > PACKET_RING {
                self.packets.pop_front();
            }
        }
    }

    /// Packets that fell out of the ring.
    #[must_use]
    pub fn packets_lost(&self) -> u64 {
        self.packets_seen - self.packets.len() as u64
    }

    /// Whether the display filter lets a packet through.
    fn matches(&self, row: &PacketRow) -> bool {
        let Some((_, f)) = &self.filter else { return true };
        let decoded = crate::inspect::decode(&row.event.frame);
        let l = row.event.link.index();
        let nodes = self
            .link_ends
            .get(l)
            .map_or(["", ""], |[a, b]| [self.model.nodes[*a].name.as_str(), self.model.nodes[*b].name.as_str()]);
        let link = self.model.links.get(l).map_or("", |k| k.name.as_str());
        f.matches(&crate::inspect::Packet { frame: &row.event.frame, decoded: &decoded, link, nodes })
    }

    /// Applies a display filter (an empty one shows everything); says what is wrong with it.
    pub fn set_filter(&mut self, text: &str) -> Result<(), crate::inspect::FilterError> {
        let f = crate::inspect::Filter::parse(text)?;
        self.filter = (!f.is_empty()).then(|| (text.trim().to_string(), f));
        let matched: Vec<bool> = self.packets.iter().map(|p| self.matches(p)).collect();
        for (p, m) in self.packets.iter_mut().zip(matched) {
            p.matched = m;
        }
        self.follow = true;
        Ok(())
    }

    /// The packets the list shows: every one the filter lets through, or one conversation's.
    #[must_use]
    pub fn visible_packets(&self) -> Vec<&PacketRow> {
        self.packets
            .iter()
            .filter(|p| p.matched && (self.packet_flow.is_none() || p.flow == self.packet_flow))
            .collect()
    }

    /// The packet row selected, or the newest shown when following.
    #[must_use]
    pub fn current_packet(&self) -> Option<&PacketRow> {
        let visible = |p: &&PacketRow| p.matched && (self.packet_flow.is_none() || p.flow == self.packet_flow);
        match self.selected_packet {
            Some(no) if !self.follow => self.packets.iter().find(|p| p.no == no),
            _ => self.packets.iter().rev().find(visible),
        }
    }

    /// The flows in the chosen order; with a filter, those with a packet in view that it lets
    /// through.
    #[must_use]
    pub fn sorted_flows(&self) -> Vec<&Flow> {
        let now = self.flows.now_ns();
        let shown: Option<std::collections::HashSet<FlowKey>> =
            self.filter.as_ref().map(|_| self.packets.iter().filter(|p| p.matched).filter_map(|p| p.flow).collect());
        let mut v: Vec<&Flow> =
            self.flows.iter().filter(|f| shown.as_ref().is_none_or(|s| s.contains(&f.key))).collect();
        match self.flow_sort {
            FlowSort::Bytes => v.sort_by_key(|f| std::cmp::Reverse(f.bytes())),
            FlowSort::Packets => v.sort_by_key(|f| std::cmp::Reverse(f.packets())),
            FlowSort::Rate => v.sort_by(|a, b| b.rate(now).total_cmp(&a.rate(now))),
            FlowSort::Start => v.sort_by_key(|f| f.first_ns),
        }
        v
    }

    /// Every event of one packet still in the ring: its journey.
    #[must_use]
    pub fn journey(&self, packet: PacketId) -> Vec<&PacketRow> {
        self.packets.iter().filter(|p| p.event.packet == packet).collect()
    }

    /// The simulated time now.
    #[must_use]
    pub fn now(&self) -> SimTime {
        SimTime::from_nanos(self.snapshot.as_ref().map_or(0, |s| s.sim.now_ns))
    }

    fn move_selection(&mut self, by: i64) {
        match self.tab {
            Tab::Overview => {
                let n = self.links.len() as i64;
                if n > 0 {
                    self.selected_link = (self.selected_link as i64 + by).clamp(0, n - 1) as usize;
                }
            }
            Tab::Packets | Tab::Journey => {
                let Some(cur) = self.current_packet().map(|p| p.no) else { return };
                let visible = self.visible_packets();
                let Some(at) = visible.iter().position(|p| p.no == cur) else { return };
                let to = (at as i64 + by).clamp(0, visible.len() as i64 - 1) as usize;
                let (follow, no) = (to + 1 == visible.len() && by > 0, visible[to].no);
                self.follow = follow;
                self.selected_packet = Some(no);
            }
            Tab::Flows => {
                let n = self.flows.len() as i64;
                if n > 0 {
                    self.selected_flow = (self.selected_flow as i64 + by).clamp(0, n - 1) as usize;
                }
            }
            Tab::Nodes => {
                let n = self
                    .snapshot
                    .as_ref()
                    .map_or(0, |s| s.sim.hosts.len() + s.sim.switches.len() + s.sim.routers.len())
                    as i64;
                if n > 0 {
                    self.selected_node = (self.selected_node as i64 + by).clamp(0, n - 1) as usize;
                }
            }
            Tab::Log => {}
        }
    }

    /// Applies an action to the model; returns what the driver must be told.
    pub fn update(&mut self, action: Action) -> Vec<Control> {
        let mut out = Vec::new();
        match action {
            Action::Quit => out.push(Control::Stop),
            Action::Help => self.help = !self.help,
            Action::NextTab | Action::PrevTab => {
                let i = Tab::ALL.iter().position(|t| *t == self.tab).unwrap_or(0);
                let n = Tab::ALL.len();
                let j = if action == Action::NextTab { (i + 1) % n } else { (i + n - 1) % n };
                self.tab = Tab::ALL[j];
            }
            Action::Tab(i) => self.tab = Tab::ALL.get(i).copied().unwrap_or(self.tab),
            Action::Up => self.move_selection(-1),
            Action::Down => self.move_selection(1),
            Action::PageUp => self.move_selection(-20),
            Action::PageDown => self.move_selection(20),
            Action::Home => self.move_selection(i64::MIN / 2),
            Action::End => self.move_selection(i64::MAX / 2),
            Action::Pause => {
                out.push(if self.paused { Control::Resume } else { Control::Pause });
                self.paused = !self.paused;
            }
            Action::Step => {
                if self.paused {
                    out.push(Control::Step);
                }
            }
            Action::Faster | Action::Slower => {
                let cur = match self.speed {
                    Speed::Max => f64::INFINITY,
                    Speed::Factor(f) => f,
                };
                let next = if action == Action::Faster {
                    SPEEDS.iter().copied().find(|s| *s > cur + 1e-9).map_or(Speed::Max, Speed::Factor)
                } else if cur.is_infinite() {
                    Speed::Factor(SPEEDS[SPEEDS.len() - 1])
                } else {
                    Speed::Factor(SPEEDS.iter().copied().rev().find(|s| *s < cur - 1e-9).unwrap_or(SPEEDS[0]))
                };
                self.speed = next;
                out.push(Control::SetSpeed(next));
            }
            Action::ToggleLink => {
                if let Some(name) = self.snapshot.as_ref().and_then(|s| s.sim.links.get(self.selected_link)) {
                    let link = name.name.clone();
                    let cmd = if name.up { CommandSpec::LinkDown { link } } else { CommandSpec::LinkUp { link } };
                    self.log.push(format!("{} {}", self.now(), escape(&cmd.to_string())));
                    out.push(Control::Apply(cmd));
                }
            }
            Action::Follow => {
                self.follow = !self.follow;
                if !self.follow {
                    self.selected_packet = self.packets.back().map(|p| p.no);
                }
            }
            Action::Journey if self.tab == Tab::Flows => {
                // The flow's packets.
                self.packet_flow = self.sorted_flows().get(self.selected_flow).map(|f| f.key);
                self.follow = true;
                self.tab = Tab::Packets;
            }
            Action::SortFlows => self.flow_sort = self.flow_sort.next(),
            Action::Model => {
                if let Some(name) = self.links.get(self.selected_link) {
                    let m = self
                        .snapshot
                        .as_ref()
                        .and_then(|s| s.sim.links.get(self.selected_link))
                        .map(|l| &l.a_to_b.model);
                    let hint = m.map(|m| {
                        let mut h = format!(
                            "now latency={}us rate={} loss={} queue={}",
                            m.latency_ns / 1000,
                            m.rate_bps.map_or("unlimited".into(), |r| r.to_string()),
                            m.loss,
                            m.queue_frames
                        );
                        let more = crate::topology::impair::words(&m.to_model());
                        if !more.is_empty() {
                            h.push_str(&format!(" · {}", more.join(", ")));
                        }
                        h
                    });
                    self.input = Some(Input { text: format!("model {name} "), hint, ..Input::default() });
                }
            }
            Action::ClearFlow => self.packet_flow = None,
            Action::Journey => {
                if self.tab == Tab::Packets {
                    self.selected_packet = self.current_packet().map(|p| p.no);
                    self.follow = false;
                    self.tab = Tab::Journey;
                }
            }
            Action::Filter => {
                let text = self.filter.as_ref().map(|(t, _)| t.clone()).unwrap_or_default();
                self.input = Some(Input { kind: InputKind::Filter, text, ..Input::default() });
            }
            Action::Command => self.input = Some(Input::default()),
            Action::PrevField => self.selected_field = self.selected_field.saturating_sub(1),
            Action::NextField => {
                let fields = self.current_packet().map_or(0, |p| {
                    crate::inspect::decode(&p.event.frame).layers.iter().map(|l| l.fields.len()).sum::<usize>()
                });
                self.selected_field = (self.selected_field + 1).min(fields.saturating_sub(1));
            }
            Action::ToggleCapture => {
                if let Some(s) = &self.snapshot {
                    let on = !s.capturing.get(self.selected_link).copied().unwrap_or(false);
                    let link = crate::topology::LinkId(self.selected_link as u32);
                    let name = self.links.get(self.selected_link).cloned().unwrap_or_default();
                    self.log.push(format!("{} capture {} {name}", self.now(), if on { "on" } else { "off" }));
                    out.push(Control::Capture { link, on });
                }
            }
        }
        out
    }

    /// A click at a column and row: selects what the last drawing put there.
    pub fn click(&mut self, column: u16, row: u16) {
        let hit =
            self.hits.borrow().iter().find(|(y, x0, x1, _)| *y == row && (*x0..*x1).contains(&column)).map(|h| h.3);
        match hit {
            Some(Hit::Link(i)) => self.selected_link = i,
            Some(Hit::Flow(i)) => self.selected_flow = i,
            Some(Hit::Packet(no)) => {
                self.selected_packet = Some(no);
                self.follow = false;
            }
            Some(Hit::Node(i)) => self.selected_node = i,
            None => {}
        }
    }

    /// A key while the command line is open: edit, complete, run, or close it.
    pub fn on_input_key(&mut self, key: &ratatui::crossterm::event::KeyEvent) -> Vec<Control> {
        use ratatui::crossterm::event::{KeyCode, KeyModifiers};
        let Some(input) = &mut self.input else { return Vec::new() };
        match key.code {
            KeyCode::Esc => self.input = None,
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => self.input = None,
            KeyCode::Backspace => {
                input.text.pop();
                input.error = None;
                Self::check_filter(input);
            }
            KeyCode::Tab if input.kind == InputKind::Command => {
                input.text = super::prompt::complete(&input.text, &self.model);
            }
            KeyCode::Enter if input.kind == InputKind::Filter => {
                let text = input.text.clone();
                match self.set_filter(&text) {
                    Ok(()) => self.input = None,
                    Err(e) => {
                        if let Some(i) = &mut self.input {
                            i.error = Some(escape(&e.to_string()));
                        }
                    }
                }
            }
            KeyCode::Enter => {
                let snapshot = self.snapshot.as_ref();
                let model = |l: usize, side: Side| {
                    snapshot
                        .and_then(|s| s.sim.links.get(l))
                        .map(|l| if side == Side::A { l.a_to_b.model.to_model() } else { l.b_to_a.model.to_model() })
                        .unwrap_or_default()
                };
                let parsed = super::prompt::parse(&input.text)
                    .and_then(|cmd| super::prompt::check(&cmd, &self.model, model).map(|()| cmd));
                match parsed {
                    Ok(cmd) => {
                        self.log.push(format!("{} {}", self.now(), escape(&cmd.to_string())));
                        self.input = None;
                        return vec![Control::Apply(cmd)];
                    }
                    Err(e) => input.error = Some(escape(&e)),
                }
            }
            KeyCode::Char(c) if !c.is_control() && input.text.len() < 256 => {
                input.text.push(c);
                input.error = None;
                Self::check_filter(input);
            }
            _ => {}
        }
        Vec::new()
    }

    /// A filter being typed is checked at every key: what is wrong shows at once.
    fn check_filter(input: &mut Input) {
        if input.kind == InputKind::Filter {
            match crate::inspect::Filter::parse(&input.text) {
                Ok(_) => {
                    input.error = None;
                    input.hint = Some("ok · Enter applies, Esc leaves".into());
                }
                Err(e) => {
                    input.error = Some(escape(&e.to_string()));
                    input.hint = None;
                }
            }
        }
    }

    /// The side a frame of this row came from, as a direction arrow between the link's nodes.
    #[must_use]
    pub fn direction(&self, row: &PacketRow) -> String {
        let [a, b] = &self.link_nodes[row.event.link.index()];
        match row.event.from {
            Side::A => format!("{a} → {b}"),
            Side::B => format!("{b} → {a}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_before_a_terminal_sees_them() {
        assert_eq!(escape("wan\u{1b}[2J\u{7}"), "wan\\u{1b}[2J\\u{7}");
        assert_eq!(escape("laptop"), "laptop");
        assert_eq!(escape("a\u{202e}b"), "a\\u{202e}b");
    }
}
