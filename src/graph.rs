//! `netlab graph`: a lab's topology as Graphviz dot, a Mermaid flowchart, or a text picture of its
//! layered [layout](crate::layout), for documentation and review pages.
//!
//! Names come from the lab file and are not trusted: node names are restricted today, but a link
//! name may hold anything but blanks. Each format escapes what it must (quotes and backslashes in
//! dot, everything but a few plain characters in Mermaid), and every format shows control and
//! invisible formatting characters (such as bidirectional overrides) as `\u{…}` instead of letting
//! them reach a terminal or a page.

use std::fmt::Write as _;

use unicode_width::UnicodeWidthChar;

use crate::layout::{self, Layout};
use crate::topology::{Attachment, Lab, Link, LinkModel, NodeKind};

/// The narrowest text picture [`text`] draws: narrower widths are taken as this.
pub const MIN_WIDTH: usize = 20;

/// `s` with control and invisible formatting characters written as `\u{…}`.
#[must_use]
pub fn visible(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() || is_invisible(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// Characters that change how the text around them shows without showing themselves: zero-width
/// spaces and joiners, bidirectional marks, embeddings, overrides and isolates, the byte-order mark.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

/// A link end as a lab file writes it: `node:interface` for a host, `node` for a switch.
fn end_text(lab: &Lab, end: Attachment) -> String {
    let node = lab.node(end.node());
    match (end, &node.kind) {
        (Attachment::HostInterface { interface, .. }, NodeKind::Host(h)) => match h.interfaces.get(interface) {
            Some(i) => format!("{}:{}", node.name, i.name),
            None => node.name.clone(),
        },
        _ => node.name.clone(),
    }
}

/// Whether the link has the name the lab format gives a link without one (`a<->b`).
fn has_default_name(lab: &Lab, link: &Link) -> bool {
    link.name == format!("{}<->{}", end_text(lab, link.ends[0]), end_text(lab, link.ends[1]))
}

/// The impairments of a link that are set: latency, rate and loss, such as `10ms, 50 Mbit/s`.
#[must_use]
/// What a link's label says besides its name: its tunnel (`udp tunnel`), then its impairments.
fn notes(link: &crate::topology::Link) -> Vec<String> {
    let mut v = Vec::new();
    if link.transport != crate::topology::Transport::Mem {
        v.push(format!("{} tunnel", link.transport.as_str()));
    }
    if link.model == link.model_b_to_a {
        v.extend(impairments(&link.model));
    } else {
        // Each direction its own: `a→b 10ms`, `b→a 30ms, 1% loss`.
        for (arrow, m) in [("a→b", &link.model), ("b→a", &link.model_b_to_a)] {
            let words = impairments(m);
            v.push(format!("{arrow} {}", if words.is_empty() { "clear".into() } else { words.join(", ") }));
        }
    }
    if !link.up {
        v.push("starts down".into());
    }
    v
}

pub fn impairments(m: &LinkModel) -> Vec<String> {
    let mut out = Vec::new();
    if !m.latency.is_zero() {
        out.push(humantime::format_duration(m.latency).to_string());
    }
    if let Some(bps) = m.rate_bps {
        out.push(rate_text(bps));
    }
    if m.loss > 0.0 {
        out.push(format!("{}% loss", decimal(m.loss * 100.0, 4)));
    }
    out.extend(crate::topology::impair::words(m));
    out
}

/// `50 Mbit/s`, `1.5 Gbit/s`: the largest unit the rate has at least one of.
fn rate_text(bps: u64) -> String {
    const UNITS: [(f64, &str); 5] =
        [(1e12, "Tbit/s"), (1e9, "Gbit/s"), (1e6, "Mbit/s"), (1e3, "kbit/s"), (1.0, "bit/s")];
    #[allow(clippy::cast_precision_loss)]
    let b = bps as f64;
    let (scale, unit) = UNITS.iter().find(|(s, _)| b >= *s).copied().unwrap_or((1.0, "bit/s"));
    format!("{} {unit}", decimal(b / scale, 3))
}

/// `x` with at most `places` decimals, without trailing zeros.
fn decimal(x: f64, places: usize) -> String {
    let s = format!("{x:.places$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Sites in the order their first node comes, each with its nodes; nodes of no site last.
fn by_site(lab: &Lab) -> (Vec<(&str, Vec<usize>)>, Vec<usize>) {
    let mut sites: Vec<(&str, Vec<usize>)> = Vec::new();
    let mut none = Vec::new();
    for (i, n) in lab.nodes.iter().enumerate() {
        match n.site.as_deref() {
            Some(s) => match sites.iter_mut().find(|(name, _)| *name == s) {
                Some((_, nodes)) => nodes.push(i),
                None => sites.push((s, vec![i])),
            },
            None => none.push(i),
        }
    }
    (sites, none)
}

/// The inside of a double-quoted dot string.
fn dot_escape(s: &str) -> String {
    visible(s).replace('\\', "\\\\").replace('"', "\\\"")
}

/// The lab as a Graphviz graph, left to right: hosts are boxes, switches hexagons, each site a
/// cluster; each link is labelled with its name and impairments.
#[must_use]
pub fn dot(lab: &Lab) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "graph \"{}\" {{", dot_escape(&lab.name));
    out.push_str("  rankdir=LR;\n");
    out.push_str("  node [fontname=\"Helvetica\", fontsize=11];\n");
    out.push_str("  edge [fontname=\"Helvetica\", fontsize=9];\n");
    let node_line = |out: &mut String, i: usize, indent: &str| {
        let n = &lab.nodes[i];
        let shape = match &n.kind {
            NodeKind::Host(h) if h.exit.is_some() => "doubleoctagon",
            NodeKind::Host(_) => "box",
            NodeKind::Switch(_) => "hexagon",
            NodeKind::Router(_) => "octagon",
        };
        let _ = writeln!(out, "{indent}\"{}\" [shape={shape}];", dot_escape(&n.name));
    };
    let (sites, none) = by_site(lab);
    for (site, nodes) in &sites {
        let s = dot_escape(site);
        let _ = writeln!(out, "  subgraph \"cluster_{s}\" {{\n    label=\"{s}\";");
        for &i in nodes {
            node_line(&mut out, i, "    ");
        }
        out.push_str("  }\n");
    }
    for &i in &none {
        node_line(&mut out, i, "  ");
    }
    // Each link is written from its end nearer the centre, and a link within a layer does not
    // rank its ends, so that Graphviz draws the layers of the text picture, left to right.
    let layout = layout::layout(lab);
    for link in &lab.links {
        let (mut a, mut b) = (link.ends[0].node().index(), link.ends[1].node().index());
        let (la, lb) = (layout.nodes[a].layer, layout.nodes[b].layer);
        if lb < la {
            std::mem::swap(&mut a, &mut b);
        }
        let extra = if la == lb { ", constraint=false" } else { "" };
        let (a, b) = (&lab.nodes[a].name, &lab.nodes[b].name);
        let mut label = dot_escape(&link.name);
        let imp = notes(link);
        if !imp.is_empty() {
            // `\n`: a line break in a dot label.
            label.push_str("\\n");
            label.push_str(&dot_escape(&imp.join(", ")));
        }
        let _ = writeln!(out, "  \"{}\" -- \"{}\" [label=\"{label}\"{extra}];", dot_escape(a), dot_escape(b));
    }
    out.push_str("}\n");
    out
}

/// Text for inside a double-quoted Mermaid label: letters, digits and `._-:/,` and spaces as
/// they are, every other character as an entity code (`#34;`), so that neither quotes, nor
/// `<br>`, nor markdown, nor a `%%` comment can come from a name.
fn mermaid_escape(s: &str) -> String {
    let mut out = String::new();
    for c in visible(s).chars() {
        if c.is_ascii_alphanumeric() || " ._-:/,".contains(c) {
            out.push(c);
        } else {
            let _ = write!(out, "#{};", u32::from(c));
        }
    }
    out
}

/// The lab as a Mermaid flowchart, left to right: hosts are rectangles, switches hexagons, each
/// site a subgraph; each link is labelled with its name and impairments.
#[must_use]
pub fn mermaid(lab: &Lab) -> String {
    let mut out = String::from("graph LR\n");
    // Nodes are `n0`, `n1`, … in the chart, whatever their names: a name is only ever a label.
    let node_line = |out: &mut String, i: usize, indent: &str| {
        let n = &lab.nodes[i];
        let name = mermaid_escape(&n.name);
        let _ = match &n.kind {
            NodeKind::Host(h) if h.exit.is_some() => writeln!(out, "{indent}n{i}[[\"{name}\"]]"),
            NodeKind::Host(_) => writeln!(out, "{indent}n{i}[\"{name}\"]"),
            NodeKind::Switch(_) => writeln!(out, "{indent}n{i}{{{{\"{name}\"}}}}"),
            NodeKind::Router(_) => writeln!(out, "{indent}n{i}((\"{name}\"))"),
        };
    };
    let (sites, none) = by_site(lab);
    for (k, (site, nodes)) in sites.iter().enumerate() {
        let _ = writeln!(out, "  subgraph site{k} [\"{}\"]", mermaid_escape(site));
        for &i in nodes {
            node_line(&mut out, i, "    ");
        }
        out.push_str("  end\n");
    }
    for &i in &none {
        node_line(&mut out, i, "  ");
    }
    // From the end nearer the centre, as in `dot`.
    let layout = layout::layout(lab);
    for link in &lab.links {
        let mut label = mermaid_escape(&link.name);
        let imp = notes(link);
        if !imp.is_empty() {
            label.push_str("<br/>");
            label.push_str(&mermaid_escape(&imp.join(", ")));
        }
        let (mut a, mut b) = (link.ends[0].node().index(), link.ends[1].node().index());
        if layout.nodes[b].layer < layout.nodes[a].layer {
            std::mem::swap(&mut a, &mut b);
        }
        let _ = writeln!(out, "  n{a} ---|\"{label}\"| n{b}");
    }
    out
}

/// Display width of `s` in a terminal.
fn width_of(s: &str) -> usize {
    s.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// `s` cut to at most `max` columns, ending in `…` when cut.
fn truncate(s: &str, max: usize) -> String {
    if width_of(s) <= max {
        return s.to_string();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if w + cw + 1 > max {
            break;
        }
        out.push(c);
        w += cw;
    }
    if max > 0 {
        out.push('…');
    }
    out
}

/// The label of a node in the picture, at most `max` columns: switches in brackets, routers in
/// parentheses, exit gateways in angle brackets.
fn node_label(lab: &Lab, i: usize, max: usize) -> String {
    let n = &lab.nodes[i];
    let name = visible(&n.name);
    match &n.kind {
        NodeKind::Switch(_) => format!("[{}]", truncate(&name, max.saturating_sub(2).max(1))),
        NodeKind::Host(h) if h.exit.is_some() => format!("<{}>", truncate(&name, max.saturating_sub(2).max(1))),
        NodeKind::Host(_) => truncate(&name, max.max(1)),
        NodeKind::Router(_) => format!("({})", truncate(&name, max.saturating_sub(2).max(1))),
    }
}

const UP: u8 = 1;
const DOWN: u8 = 2;
const LEFT: u8 = 4;
const RIGHT: u8 = 8;

/// The box-drawing character for lines leaving a cell in the given directions.
fn line_char(mask: u8) -> char {
    match mask {
        0 => ' ',
        m if m == UP | DOWN || m == UP || m == DOWN => '│',
        m if m == LEFT | RIGHT || m == LEFT || m == RIGHT => '─',
        m if m == DOWN | RIGHT => '┌',
        m if m == DOWN | LEFT => '┐',
        m if m == UP | RIGHT => '└',
        m if m == UP | LEFT => '┘',
        m if m == LEFT | RIGHT | DOWN => '┬',
        m if m == LEFT | RIGHT | UP => '┴',
        m if m == UP | DOWN | RIGHT => '├',
        m if m == UP | DOWN | LEFT => '┤',
        _ => '┼',
    }
}

/// A grid of terminal cells: lines drawn as direction masks, text written over them.
struct Canvas {
    width: usize,
    masks: Vec<Vec<u8>>,
    text: Vec<Vec<Option<char>>>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Canvas {
        Canvas { width, masks: vec![vec![0; width]; height], text: vec![vec![None; width]; height] }
    }

    fn mark(&mut self, x: usize, y: usize, dirs: u8) {
        if let Some(m) = self.masks.get_mut(y).and_then(|r| r.get_mut(x)) {
            *m |= dirs;
        }
    }

    /// A horizontal line on row `y` from column `x0` to `x1`, both included.
    fn hline(&mut self, y: usize, x0: usize, x1: usize) {
        let (a, b) = (x0.min(x1), x0.max(x1));
        for x in a..=b {
            let dirs = if a == b {
                LEFT | RIGHT
            } else if x == a {
                RIGHT
            } else if x == b {
                LEFT
            } else {
                LEFT | RIGHT
            };
            self.mark(x, y, dirs);
        }
    }

    /// A vertical line in column `x` from row `y0` to `y1`, both included; nothing if they are one.
    fn vline(&mut self, x: usize, y0: usize, y1: usize) {
        let (a, b) = (y0.min(y1), y0.max(y1));
        if a == b {
            return;
        }
        for y in a..=b {
            let dirs = if a == b {
                UP | DOWN
            } else if y == a {
                DOWN
            } else if y == b {
                UP
            } else {
                UP | DOWN
            };
            self.mark(x, y, dirs);
        }
    }

    /// Writes `s` from column `x` of row `y`; a wide character takes two cells.
    fn write(&mut self, x: usize, y: usize, s: &str) {
        let mut x = x;
        for c in s.chars() {
            let w = c.width().unwrap_or(0);
            if w == 0 {
                continue;
            }
            if x + w > self.width {
                break;
            }
            if let Some(row) = self.text.get_mut(y) {
                row[x] = Some(c);
                if w == 2 {
                    // The second cell is covered by the character: `\0` is printed as nothing.
                    row[x + 1] = Some('\0');
                }
            }
            x += w;
        }
    }

    /// Writes `s` from column `x` of row `y` into the cells that are free there, cut with `…` if
    /// they are too few.
    fn write_free(&mut self, x: usize, y: usize, s: &str) {
        let free = (x..self.width)
            .take_while(|&c| {
                self.masks.get(y).is_some_and(|m| m[c] == 0) && self.text.get(y).is_some_and(|t| t[c].is_none())
            })
            .count();
        self.write(x, y, &truncate(s, free));
    }

    fn lines(&self) -> Vec<String> {
        self.text
            .iter()
            .zip(&self.masks)
            .map(|(text, masks)| {
                let mut line: String = text
                    .iter()
                    .zip(masks)
                    .filter_map(|(t, &m)| match t {
                        Some('\0') => None,
                        Some(c) => Some(*c),
                        None => Some(line_char(m)),
                    })
                    .collect();
                line.truncate(line.trim_end().len());
                line
            })
            .collect()
    }
}

/// The lines of one channel, the space between layer `k` and layer `k + 1` (or after the last
/// layer, for links within it): each bus is a vertical line on a track of its own, with the nodes
/// of layer `k` it joins on its left and those of layer `k + 1` on its right.
#[derive(Default)]
struct Channel {
    buses: Vec<Bus>,
    tracks: usize,
    /// Widest link name written on a right-hand branch.
    label: usize,
}

struct Bus {
    /// The nodes of layer `k` on it, each with its slot.
    left: Vec<(usize, usize)>,
    /// Slots of the nodes of layer `k + 1` on it, each with the names of its links to show.
    right: Vec<(usize, String)>,
    track: usize,
}

impl Bus {
    fn span(&self) -> (usize, usize) {
        let all = self.left.iter().map(|(s, _)| s).chain(self.right.iter().map(|(s, _)| s));
        (all.clone().copied().min().unwrap_or(0), all.copied().max().unwrap_or(0))
    }
}

/// A link within one layer drawn down the layer's column, between two nodes with no other between.
struct Rung {
    layer: usize,
    from: usize,
    to: usize,
    label: String,
}

/// The lab's layered layout as a picture at most `width` columns wide (at least [`MIN_WIDTH`]),
/// then its links with their impairments: layers left to right, switches in brackets, routers in
/// parentheses, link names
/// on the links where they were given and there is room.
#[must_use]
pub fn text(lab: &Lab, width: usize) -> String {
    let width = width.max(MIN_WIDTH);
    let l = layout::layout(lab);
    let mut out = String::new();
    let switches = lab.nodes.iter().any(|n| matches!(n.kind, NodeKind::Switch(_)));
    let routers = lab.nodes.iter().any(|n| matches!(n.kind, NodeKind::Router(_)));
    let gateways = lab.nodes.iter().any(|n| n.kind.name() == "gateway");
    let head = format!(
        "{}: {lab}{}{}{}",
        visible(&lab.name),
        if switches { ", switches in [brackets]" } else { "" },
        if routers { ", routers in (parentheses)" } else { "" },
        if gateways { ", exit gateways in <angle brackets>" } else { "" }
    );
    out.push_str(&truncate(&head, width));
    out.push('\n');
    if lab.nodes.is_empty() {
        return out;
    }
    out.push('\n');
    for line in picture(lab, &l, width) {
        out.push_str(&line);
        out.push('\n');
    }
    if !lab.links.is_empty() {
        out.push_str("\nlinks\n");
        let names: Vec<String> = lab.links.iter().map(|k| visible(&k.name)).collect();
        let pad = names.iter().map(|n| width_of(n)).max().unwrap_or(0).min(width / 2);
        for (link, name) in lab.links.iter().zip(&names) {
            let mut details = Vec::new();
            if !has_default_name(lab, link) {
                details.push(format!(
                    "{} <-> {}",
                    visible(&end_text(lab, link.ends[0])),
                    visible(&end_text(lab, link.ends[1]))
                ));
            }
            let imp = notes(link);
            details.push(if imp.is_empty() { "no impairment".to_string() } else { imp.join(", ") });
            let gap = " ".repeat(pad.saturating_sub(width_of(name)));
            out.push_str(&truncate(&format!("  {name}{gap}  {}", details.join(", ")), width));
            out.push('\n');
        }
    }
    out
}

/// The picture of [`text`], without the heading and the list of links: one line per slot of the
/// layout `l` of `lab`, each at most `width` columns (at least [`MIN_WIDTH`]).
#[must_use]
pub fn picture(lab: &Lab, l: &Layout, width: usize) -> Vec<String> {
    let width = width.max(MIN_WIDTH);
    let layers = l.width as usize;
    let height = l.height as usize;
    let at = |v: usize| (l.nodes[v].layer as usize, l.nodes[v].slot as usize);
    // Each layer's nodes by slot.
    let mut columns: Vec<Vec<(usize, usize)>> = vec![Vec::new(); layers];
    for v in 0..lab.nodes.len() {
        let (k, s) = at(v);
        columns[k].push((s, v));
    }
    for c in &mut columns {
        c.sort_unstable();
    }
    let neighbours_in_column = |k: usize, a: usize, b: usize| {
        let (a, b) = (a.min(b), a.max(b));
        !columns[k].iter().any(|&(s, _)| s > a && s < b)
    };

    // Buses: one per node for its links to the next layer; one per link within a layer that
    // cannot go down the column.
    let mut channels: Vec<Channel> = (0..layers).map(|_| Channel::default()).collect();
    let mut rungs: Vec<Rung> = Vec::new();
    let mut down: Vec<Option<usize>> = vec![None; lab.nodes.len()];
    for link in &lab.links {
        let (a, b) = (link.ends[0].node().index(), link.ends[1].node().index());
        let ((ka, sa), (kb, sb)) = (at(a), at(b));
        let shown = if has_default_name(lab, link) { String::new() } else { visible(&link.name) };
        if a == b {
            continue;
        }
        if ka == kb {
            let (from, to) = (sa.min(sb), sa.max(sb));
            if to >= from + 2 && neighbours_in_column(ka, from, to) {
                match rungs.iter_mut().find(|r| r.layer == ka && r.from == from && r.to == to) {
                    Some(r) => join_label(&mut r.label, &shown),
                    None => rungs.push(Rung { layer: ka, from, to, label: shown }),
                }
            } else {
                channels[ka].buses.push(Bus { left: vec![(sa, a), (sb, b)], right: Vec::new(), track: 0 });
            }
            continue;
        }
        let (upper, lower, k) = if ka + 1 == kb {
            (a, b, ka)
        } else if kb + 1 == ka {
            (b, a, kb)
        } else {
            // The layout never puts a link across a layer; the list of links below still has it.
            continue;
        };
        let bus = *down[upper].get_or_insert_with(|| {
            channels[k].buses.push(Bus { left: vec![(at(upper).1, upper)], right: Vec::new(), track: 0 });
            channels[k].buses.len() - 1
        });
        channels[k].buses[bus].right.push((at(lower).1, shown));
    }
    // Parallel links: one branch, with the names of all.
    for bus in channels.iter_mut().flat_map(|c| &mut c.buses) {
        bus.right.sort_by_key(|&(s, _)| s);
        let mut merged: Vec<(usize, String)> = Vec::with_capacity(bus.right.len());
        for (s, label) in bus.right.drain(..) {
            match merged.last_mut() {
                Some((last, names)) if *last == s => join_label(names, &label),
                _ => merged.push((s, label)),
            }
        }
        bus.right = merged;
    }
    for ch in &mut channels {
        assign_tracks(ch);
    }

    // Widths: node labels as long as the longest in their layer; link names on the links when
    // they fit, then node labels shortened until the picture fits.
    let natural: Vec<usize> = columns
        .iter()
        .map(|c| c.iter().map(|&(_, v)| width_of(&node_label(lab, v, usize::MAX))).max().unwrap_or(1))
        .collect();
    let total = |cap: usize, labels: bool| -> usize {
        let mut x = 0;
        for k in 0..layers {
            x += natural[k].min(cap);
            x += channel_width(&channels[k], labels, k + 1 < layers);
        }
        x
    };
    let longest = natural.iter().copied().max().unwrap_or(1);
    let labels = total(longest, true) <= width;
    let cap = (3..=longest).rev().find(|&c| total(c, labels) <= width).unwrap_or(3.min(longest));
    let node_width: Vec<usize> = natural.iter().map(|&n| n.min(cap)).collect();
    let full = total(cap, labels);

    // As wide as allowed (a name beside a link within a column may reach past the last column),
    // and one more column, so that a line cut at the width can end in `…`; never wider, however
    // deep the lab.
    let mut canvas = Canvas::new(width + 1, height);
    let mut x = 0;
    for k in 0..layers {
        let col = x;
        for &(s, v) in &columns[k] {
            canvas.write(col, s, &node_label(lab, v, node_width[k]));
        }
        let start = col + node_width[k] + 1;
        let ch = &channels[k];
        let track_x = |t: usize| start + 1 + 2 * t;
        let last_track = track_x(ch.tracks.saturating_sub(1));
        let next_col = col + node_width[k] + channel_width(ch, labels, k + 1 < layers);
        for bus in &ch.buses {
            let tx = track_x(bus.track);
            let (lo, hi) = bus.span();
            canvas.vline(tx, lo, hi);
            for &(s, v) in &bus.left {
                let label_end = col + width_of(&node_label(lab, v, node_width[k]));
                canvas.hline(s, label_end + 1, tx);
            }
            for (s, label) in &bus.right {
                canvas.hline(*s, tx, next_col - 2);
                if labels && !label.is_empty() {
                    canvas.write(last_track + 2, *s, &format!(" {label} "));
                }
            }
        }
        x = next_col;
    }
    // Links within a column: down from one node to the next, named beside the line.
    let mut col = 0;
    for k in 0..layers {
        for r in rungs.iter().filter(|r| r.layer == k) {
            canvas.vline(col + 1, r.from + 1, r.to - 1);
            // Mark both ends as going on, so that the line reads as joining the labels.
            canvas.mark(col + 1, r.from + 1, UP);
            canvas.mark(col + 1, r.to - 1, DOWN);
            if !r.label.is_empty() {
                canvas.write_free(col + 3, (r.from + r.to) / 2, &r.label);
            }
        }
        col += node_width[k] + channel_width(&channels[k], labels, k + 1 < layers);
    }
    let mut lines: Vec<String> = canvas.lines().iter().map(|l| truncate(l, width)).collect();
    if full > width {
        lines.push(truncate(&format!("(cut: the picture needs {full} columns; give a larger --width)"), width));
    }
    lines
}

fn join_label(label: &mut String, more: &str) {
    if more.is_empty() || label.split(", ").any(|l| l == more) {
        return;
    }
    if !label.is_empty() {
        label.push_str(", ");
    }
    label.push_str(more);
}

/// Columns from the end of a layer's labels to the start of the next layer's: a space, a lead,
/// the tracks two apart, then a branch to the next layer (with a link name when shown) and a
/// space. The last layer's channel, if it has no links within the layer, takes none.
fn channel_width(ch: &Channel, labels: bool, has_next: bool) -> usize {
    if ch.buses.is_empty() {
        return if has_next { 3 } else { 0 };
    }
    let tracks = 2 * ch.tracks;
    let branch = if !has_next {
        0
    } else if labels && ch.label > 0 {
        ch.label + 5
    } else {
        2
    };
    1 + tracks + branch + usize::from(!has_next)
}

/// Gives each bus a track: the first whose buses all end above it starts, so that no two buses on
/// one track touch. Buses are taken by their top slot.
fn assign_tracks(ch: &mut Channel) {
    let mut order: Vec<usize> = (0..ch.buses.len()).collect();
    order.sort_by_key(|&b| ch.buses[b].span());
    let mut ends: Vec<usize> = Vec::new();
    for b in order {
        let (lo, hi) = ch.buses[b].span();
        let track = match ends.iter().position(|&e| e < lo) {
            Some(t) => t,
            None => {
                ends.push(0);
                ends.len() - 1
            }
        };
        ends[track] = hi;
        ch.buses[b].track = track;
    }
    ch.tracks = ends.len();
    ch.label = ch.buses.iter().flat_map(|b| b.right.iter().map(|(_, l)| width_of(l))).max().unwrap_or(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_for_each_format() {
        let nasty = "a\"b\\c\u{7}<br/>#x;%%\u{202e}end";
        assert_eq!(visible(nasty), "a\"b\\c\\u{7}<br/>#x;%%\\u{202e}end");
        assert_eq!(dot_escape(nasty), "a\\\"b\\\\c\\\\u{7}<br/>#x;%%\\\\u{202e}end");
        let m = mermaid_escape(nasty);
        assert!(m.chars().all(|c| c.is_ascii_alphanumeric() || " ._-:/,#;".contains(c)), "{m}");
        assert!(m.starts_with("a#34;b#92;c#92;u#123;7#125;#60;br/#62;#35;x#59;#37;#37;"), "{m}");
    }

    #[test]
    fn rates_losses_and_latencies_read_as_written() {
        assert_eq!(rate_text(50_000_000), "50 Mbit/s");
        assert_eq!(rate_text(1_500_000_000), "1.5 Gbit/s");
        assert_eq!(rate_text(64_000), "64 kbit/s");
        assert_eq!(rate_text(999), "999 bit/s");
        let m = LinkModel {
            latency: std::time::Duration::from_micros(1500),
            rate_bps: Some(1_000_000_000),
            loss: 0.001,
            queue_frames: 10,
            ..LinkModel::default()
        };
        assert_eq!(impairments(&m), ["1ms 500us", "1 Gbit/s", "0.1% loss"]);
        assert!(impairments(&LinkModel::default()).is_empty());
    }

    #[test]
    fn truncation_counts_columns() {
        assert_eq!(truncate("fileserver", 5), "file…");
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("日本語", 4), "日…");
        assert_eq!(width_of(&truncate("日本語ab", 5)), 5);
    }

    #[test]
    fn line_characters() {
        assert_eq!(line_char(LEFT | RIGHT | DOWN), '┬');
        assert_eq!(line_char(UP | DOWN | LEFT | RIGHT), '┼');
        assert_eq!(line_char(UP | RIGHT), '└');
        assert_eq!(line_char(0), ' ');
    }
}
