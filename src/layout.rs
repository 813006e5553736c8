//! A layered picture of a lab's topology: every node on a grid of layers, for `netlab graph`'s text
//! picture and the terminal UI's overview.
//!
//! Sugiyama-style, in three steps, each deterministic (same lab, same layout; no hash map order,
//! ties broken by node id or by the order before the step):
//!
//! 1. **Layers**: each connected part is layered by breadth-first distance from its centre, the
//!    middle of a longest path (found by two breadth-first sweeps). In today's labs hosts are leaves,
//!    so the centre is a switch, or two joined switches side by side in layer 0, and every layer
//!    below is one hop further out. An edge then joins two neighbouring layers, or (between the two
//!    centres, or across an odd cycle) two nodes of one layer; never layers further apart, so no
//!    edge needs the dummy nodes of the general method.
//! 2. **Order within each layer**: barycentre sweeps, down and up, keeping the order with the
//!    fewest crossings.
//! 3. **Positions**: each node is pulled to the mean position of its neighbours in the next layer,
//!    keeping the order and one slot between nodes (two between nodes joined in one layer, room
//!    for that edge), then put on a whole slot.
//!
//! Layers run left to right: layer `k` is grid column `k`, and a layer's nodes stand one above the
//! other, in slots. A terminal is wider than tall and a lab has far more hosts than layers, so a
//! picture of 1,000 hosts is long rather than wide. Connected parts are stacked, in the order of
//! their lowest node id, with an empty slot between two parts.

use crate::topology::{Lab, NodeId, NodeKind};

/// Where every node of a lab goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// One per node, in [`Lab::nodes`] order: `nodes[i].node == NodeId(i)`.
    pub nodes: Vec<Placed>,
    /// Columns of the grid: the number of layers (1 for an empty lab).
    pub width: u32,
    /// Slots of the grid, the tallest column (with the empty slots between connected parts).
    pub height: u32,
}

/// One node on the grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placed {
    pub node: NodeId,
    /// Its layer, which is its grid column: 0 for the centre of its connected part.
    pub layer: u32,
    /// Its slot in the column, from 0 at the top: unique within the column.
    pub slot: u32,
    /// `layer` on a canvas of width 1: 0 for layer 0, 1 for the last layer (0.5 if there is one).
    pub x: f64,
    /// `slot` on a canvas of height 1: 0 at the top, 1 at the bottom (0.5 if there is one slot).
    pub y: f64,
}

/// Lays out the lab: see the module's documentation.
#[must_use]
pub fn layout(lab: &Lab) -> Layout {
    let graph = Graph::new(lab);
    let n = graph.adj.len();
    let mut layer = vec![0u32; n];
    let mut slot = vec![0u32; n];
    let mut seen = vec![false; n];
    let mut dist = vec![u32::MAX; n];
    let mut next_slot = 0u32;
    let mut width = 1u32;
    for start in 0..n {
        if seen[start] {
            continue;
        }
        let part = graph.bfs(&[start], &mut dist, None);
        for &v in &part {
            seen[v] = true;
        }
        let roots = graph.centre(lab, start, &part, &mut dist);
        let layers = graph.layers(&roots, &part, &mut dist, &mut layer);
        let layers = graph.order(layers, &layer);
        let height = graph.slots(&layers, &layer, next_slot, &mut slot);
        width = width.max(u32::try_from(layers.len()).unwrap_or(u32::MAX));
        // An empty slot between two connected parts, so that they read as apart.
        next_slot = next_slot.saturating_add(height).saturating_add(1);
    }
    let height = next_slot.saturating_sub(1).max(1);
    let unit = |v: u32, size: u32| if size <= 1 { 0.5 } else { f64::from(v) / f64::from(size - 1) };
    let nodes = (0..n)
        .map(|i| Placed {
            node: NodeId(u32::try_from(i).unwrap_or(u32::MAX)),
            layer: layer[i],
            slot: slot[i],
            x: unit(layer[i], width),
            y: unit(slot[i], height),
        })
        .collect();
    Layout { nodes, width, height }
}

/// The lab as an undirected multigraph: for each node, its neighbours in link order (a neighbour
/// twice for two parallel links). A link from a node to itself is left out.
struct Graph {
    adj: Vec<Vec<usize>>,
}

impl Graph {
    fn new(lab: &Lab) -> Graph {
        let mut adj = vec![Vec::new(); lab.nodes.len()];
        for link in &lab.links {
            let (a, b) = (link.ends[0].node().index(), link.ends[1].node().index());
            if a != b && a < adj.len() && b < adj.len() {
                adj[a].push(b);
                adj[b].push(a);
            }
        }
        Graph { adj }
    }

    /// Breadth-first search from `from`: the nodes reached, in the order reached, with their
    /// distance in `dist` (which must be `u32::MAX` for every node not in `from`'s part; the
    /// caller resets it with [`Graph::reset`]). With `parent`, each node's predecessor too.
    fn bfs(&self, from: &[usize], dist: &mut [u32], mut parent: Option<&mut [usize]>) -> Vec<usize> {
        let mut order: Vec<usize> = Vec::new();
        for &s in from {
            if dist[s] == u32::MAX {
                dist[s] = 0;
                order.push(s);
            }
        }
        let mut head = 0;
        while head < order.len() {
            let u = order[head];
            head += 1;
            for &v in &self.adj[u] {
                if dist[v] == u32::MAX {
                    dist[v] = dist[u] + 1;
                    if let Some(p) = parent.as_deref_mut() {
                        p[v] = u;
                    }
                    order.push(v);
                }
            }
        }
        order
    }

    fn reset(dist: &mut [u32], part: &[usize]) {
        for &v in part {
            dist[v] = u32::MAX;
        }
    }

    /// The middle node of a longest path of the part, found by two sweeps (exact on a tree, close
    /// on other graphs); both middle nodes when the path has an even number of nodes, unless only
    /// one of them is a switch: a host is not the core of a network that has switches.
    fn centre(&self, lab: &Lab, start: usize, part: &[usize], dist: &mut [u32]) -> Vec<usize> {
        Graph::reset(dist, part);
        let first = self.bfs(&[start], dist, None);
        let far = *first.last().unwrap_or(&start);
        Graph::reset(dist, part);
        let mut parent = vec![usize::MAX; self.adj.len()];
        let second = self.bfs(&[far], dist, Some(&mut parent));
        let end = *second.last().unwrap_or(&far);
        let mut path = vec![end];
        while let Some(&p) = path.last().map(|&v| &parent[v]) {
            if p == usize::MAX {
                break;
            }
            path.push(p);
        }
        Graph::reset(dist, part);
        let len = path.len();
        let mut roots = if len % 2 == 1 { vec![path[len / 2]] } else { vec![path[len / 2 - 1], path[len / 2]] };
        let is_host = |v: usize| matches!(lab.nodes.get(v).map(|n| &n.kind), Some(NodeKind::Host(_)));
        if roots.len() == 2 && is_host(roots[0]) != is_host(roots[1]) {
            roots.retain(|&v| !is_host(v));
        }
        roots.sort_unstable();
        roots
    }

    /// Layers of the part by distance from `roots`, each in the order the search reached it (so
    /// that a tree starts with no crossing); each node's layer in `layer`.
    fn layers(&self, roots: &[usize], part: &[usize], dist: &mut [u32], layer: &mut [u32]) -> Vec<Vec<usize>> {
        let order = self.bfs(roots, dist, None);
        let mut layers: Vec<Vec<usize>> = Vec::new();
        for &v in &order {
            let d = dist[v] as usize;
            if layers.len() <= d {
                layers.resize_with(d + 1, Vec::new);
            }
            layers[d].push(v);
            layer[v] = dist[v];
        }
        Graph::reset(dist, part);
        layers
    }

    /// Reorders each layer by barycentre sweeps, and returns the order with the fewest crossings
    /// seen.
    fn order(&self, mut layers: Vec<Vec<usize>>, layer: &[u32]) -> Vec<Vec<usize>> {
        const ROUNDS: usize = 12;
        let mut pos = vec![0usize; self.adj.len()];
        let place = |layers: &[Vec<usize>], pos: &mut [usize]| {
            for l in layers {
                for (i, &v) in l.iter().enumerate() {
                    pos[v] = i;
                }
            }
        };
        place(&layers, &mut pos);
        let mut best = layers.clone();
        let mut best_crossings = self.crossings(&layers, layer, &pos);
        let mut stale = 0;
        for round in 0..ROUNDS {
            if best_crossings == 0 || stale >= 2 {
                break;
            }
            let down = round % 2 == 0;
            let steps: Vec<usize> =
                if down { (1..layers.len()).collect() } else { (0..layers.len().saturating_sub(1)).rev().collect() };
            for l in steps {
                let fixed = if down { layer_index(l) - 1 } else { layer_index(l) + 1 };
                self.sort_by_barycentre(&mut layers[l], fixed, layer, &mut pos);
            }
            let c = self.crossings(&layers, layer, &pos);
            if c < best_crossings {
                best_crossings = c;
                best.clone_from(&layers);
                stale = 0;
            } else {
                stale += 1;
            }
        }
        best
    }

    /// Sorts one layer by the mean position of each node's neighbours in layer `fixed`; a node
    /// with none there keeps its own position as its key. Ties keep the order they had.
    fn sort_by_barycentre(&self, nodes: &mut [usize], fixed: u32, layer: &[u32], pos: &mut [usize]) {
        let mut keyed: Vec<(f64, usize, usize)> = nodes
            .iter()
            .map(|&v| {
                let (sum, count) = self.adj[v]
                    .iter()
                    .filter(|&&w| layer[w] == fixed)
                    .fold((0.0, 0u32), |(s, c), &w| (s + pos[w] as f64, c + 1));
                let key = if count == 0 { pos[v] as f64 } else { sum / f64::from(count) };
                (key, pos[v], v)
            })
            .collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (i, &(_, _, v)) in keyed.iter().enumerate() {
            nodes[i] = v;
            pos[v] = i;
        }
    }

    /// Crossings between every two neighbouring layers: pairs of edges whose ends are in opposite
    /// orders (counted with a Fenwick tree, in O(E log V)).
    fn crossings(&self, layers: &[Vec<usize>], layer: &[u32], pos: &[usize]) -> u64 {
        let mut total = 0;
        for l in 1..layers.len() {
            let upper = &layers[l - 1];
            let mut edges: Vec<(usize, usize)> = upper
                .iter()
                .flat_map(|&u| self.adj[u].iter().filter(|&&v| layer[v] as usize == l).map(move |&v| (pos[u], pos[v])))
                .collect();
            edges.sort_unstable();
            let size = layers[l].len();
            let mut tree = vec![0u64; size + 1];
            for (seen, &(_, b)) in edges.iter().enumerate() {
                // Edges already seen whose lower end is right of `b` cross this one.
                let mut not_right = 0;
                let mut i = b + 1;
                while i > 0 {
                    not_right += tree[i];
                    i &= i - 1;
                }
                total += seen as u64 - not_right;
                let mut i = b + 1;
                while i <= size {
                    tree[i] += 1;
                    i += i & i.wrapping_neg();
                }
            }
        }
        total
    }

    /// Gives each node of the part a slot (from `first` on), in its layer's order, and returns the
    /// number of slots the part takes.
    fn slots(&self, layers: &[Vec<usize>], layer: &[u32], first: u32, slot: &mut [u32]) -> u32 {
        const ROUNDS: usize = 4;
        let n = self.adj.len();
        let mut p = vec![0.0f64; n];
        // The least distance from each node to the next one in its layer.
        let gaps: Vec<Vec<f64>> = layers
            .iter()
            .map(|l| l.windows(2).map(|w| if self.adj[w[0]].contains(&w[1]) { 2.0 } else { 1.0 }).collect())
            .collect();
        for (l, nodes) in layers.iter().enumerate() {
            let mut at = 0.0;
            for (i, &v) in nodes.iter().enumerate() {
                p[v] = at;
                at += gaps[l].get(i).copied().unwrap_or(1.0);
            }
        }
        // Up first, so that parents start centred on their children; up last, so that they end so.
        for round in 0..=2 * ROUNDS {
            let up = round % 2 == 0;
            let steps: Vec<usize> =
                if up { (0..layers.len().saturating_sub(1)).rev().collect() } else { (1..layers.len()).collect() };
            for l in steps {
                let other = if up { layer_index(l) + 1 } else { layer_index(l) - 1 };
                let want: Vec<f64> = layers[l]
                    .iter()
                    .map(|&v| {
                        let (sum, count) = self.adj[v]
                            .iter()
                            .filter(|&&w| layer[w] == other)
                            .fold((0.0, 0u32), |(s, c), &w| (s + p[w], c + 1));
                        if count == 0 {
                            p[v]
                        } else {
                            sum / f64::from(count)
                        }
                    })
                    .collect();
                for (&v, x) in layers[l].iter().zip(fit(&want, &gaps[l])) {
                    p[v] = x;
                }
            }
        }
        let low = layers.iter().flatten().map(|&v| p[v]).fold(f64::INFINITY, f64::min);
        let mut height = 0u32;
        for (l, nodes) in layers.iter().enumerate() {
            let mut prev: Option<u32> = None;
            for (i, &v) in nodes.iter().enumerate() {
                // Rounded first, so that float noise cannot move a node across a half slot; then
                // half slots go up (a parent between two children stands level with the first).
                let x = ((p[v] - low) * 1e6).round() / 1e6;
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let mut s = (x - 0.5).ceil().max(0.0) as u32;
                if let Some(q) = prev {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let gap = gaps[l][i - 1] as u32;
                    s = s.max(q + gap);
                }
                prev = Some(s);
                slot[v] = first.saturating_add(s);
                height = height.max(s + 1);
            }
        }
        height
    }
}

fn layer_index(l: usize) -> u32 {
    u32::try_from(l).unwrap_or(u32::MAX)
}

/// The positions closest to `want` (least squares) that keep the order and at least `gaps[i]`
/// between node `i` and node `i + 1`: isotonic regression by pooling adjacent violators, O(n).
fn fit(want: &[f64], gaps: &[f64]) -> Vec<f64> {
    // With `offset[i]` the sum of the gaps before node `i`, `want[i] - offset[i]` must become
    // non-decreasing.
    let mut offset = Vec::with_capacity(want.len());
    let mut at = 0.0;
    for i in 0..want.len() {
        offset.push(at);
        at += gaps.get(i).copied().unwrap_or(1.0);
    }
    // Blocks of pooled nodes: (sum, count).
    let mut blocks: Vec<(f64, f64, usize)> = Vec::new();
    for (i, &w) in want.iter().enumerate() {
        blocks.push((w - offset[i], 1.0, 1));
        while blocks.len() >= 2 {
            let (s2, c2, n2) = blocks[blocks.len() - 1];
            let (s1, c1, n1) = blocks[blocks.len() - 2];
            if s1 / c1 <= s2 / c2 {
                break;
            }
            blocks.pop();
            let last = blocks.len() - 1;
            blocks[last] = (s1 + s2, c1 + c2, n1 + n2);
        }
    }
    let mut out = Vec::with_capacity(want.len());
    for (s, c, n) in blocks {
        for _ in 0..n {
            out.push(s / c + offset[out.len()]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{
        Attachment, CaptureConfig, CaptureFormat, Host, Link, LinkId, LinkModel, Node, Switch, TcpConfig, Transport,
    };
    use std::time::Duration;

    /// A lab of `hosts` hosts and `switches` switches (ids: switches first) joined by `links`;
    /// the model is not validated, so that any graph can be laid out.
    fn lab(switches: usize, hosts: usize, links: &[(usize, usize)]) -> Lab {
        let mut nodes = Vec::new();
        for i in 0..switches + hosts {
            let id = NodeId(u32::try_from(i).unwrap());
            let kind = if i < switches {
                NodeKind::Switch(Switch { mac_ageing: Duration::from_secs(300), ports: Vec::new() })
            } else {
                NodeKind::Host(Host {
                    interfaces: Vec::new(),
                    tcp: TcpConfig::default(),
                    apps: Vec::new(),
                    routes: Vec::new(),
                    exit: None,
                })
            };
            let name = if i < switches { format!("sw{i}") } else { format!("h{i}") };
            nodes.push(Node { id, name, site: None, kind });
        }
        let end = |v: usize| {
            let node = NodeId(u32::try_from(v).unwrap());
            if v < switches {
                Attachment::SwitchPort { node, port: 0 }
            } else {
                Attachment::HostInterface { node, interface: 0 }
            }
        };
        let links = links
            .iter()
            .enumerate()
            .map(|(i, &(a, b))| Link {
                id: LinkId(u32::try_from(i).unwrap()),
                name: format!("l{i}"),
                ends: [end(a), end(b)],
                transport: Transport::Mem,
                model: LinkModel::default(),
                model_b_to_a: LinkModel::default(),
                up: true,
            })
            .collect();
        Lab {
            name: "test".into(),
            description: String::new(),
            seed: 1,
            checksum_offload: false,
            warnings: Vec::new(),
            sites: Vec::new(),
            tunnels: Vec::new(),
            insecure: false,
            events: Vec::new(),
            expect: Vec::new(),
            forwards: Vec::new(),
            nodes,
            links,
            capture: CaptureConfig {
                enabled: false,
                links: Vec::new(),
                dir: "captures".into(),
                format: CaptureFormat::Pcapng,
            },
        }
    }

    fn edges(lab: &Lab) -> Vec<(usize, usize)> {
        lab.links.iter().map(|l| (l.ends[0].node().index(), l.ends[1].node().index())).collect()
    }

    /// Every node once, in order, on the unit square, and no two on one grid cell or point.
    fn check_placed(lab: &Lab, l: &Layout) {
        assert_eq!(l.nodes.len(), lab.nodes.len());
        let mut cells = std::collections::BTreeSet::new();
        let mut points = std::collections::BTreeSet::new();
        for (i, p) in l.nodes.iter().enumerate() {
            assert_eq!(p.node.index(), i);
            assert!((0.0..=1.0).contains(&p.x) && (0.0..=1.0).contains(&p.y), "{p:?} is off the unit square");
            assert!(p.layer < l.width && p.slot < l.height, "{p:?} is off the {}x{} grid", l.width, l.height);
            assert!(cells.insert((p.layer, p.slot)), "two nodes on grid cell {:?}", (p.layer, p.slot));
            assert!(points.insert((p.x.to_bits(), p.y.to_bits())), "two nodes at ({}, {})", p.x, p.y);
        }
    }

    /// Edges between neighbouring layers that cross, counted pair by pair.
    fn crossings(lab: &Lab, l: &Layout) -> usize {
        let span: Vec<(u32, u32, u32, u32)> = edges(lab)
            .into_iter()
            .map(|(a, b)| (l.nodes[a], l.nodes[b]))
            .filter(|(a, b)| a.layer + 1 == b.layer || b.layer + 1 == a.layer)
            .map(|(a, b)| if a.layer < b.layer { (a.layer, a.slot, b.slot, 0) } else { (b.layer, b.slot, a.slot, 0) })
            .collect();
        let mut n = 0;
        for (i, e) in span.iter().enumerate() {
            for f in &span[i + 1..] {
                if e.0 == f.0 && ((e.1 < f.1 && e.2 > f.2) || (e.1 > f.1 && e.2 < f.2)) {
                    n += 1;
                }
            }
        }
        n
    }

    /// Two switches joined by a link, two hosts on each: `labs/two-site.json`'s shape.
    fn two_site() -> Lab {
        lab(2, 4, &[(2, 0), (3, 0), (4, 1), (5, 1), (0, 1)])
    }

    #[test]
    fn two_joined_switches_are_the_core_and_their_hosts_stand_beside_them() {
        let lab = two_site();
        let l = layout(&lab);
        check_placed(&lab, &l);
        let at: Vec<(u32, u32)> = l.nodes.iter().map(|p| (p.layer, p.slot)).collect();
        // The switches in layer 0, two slots apart (room for their link); each one level with its
        // first host.
        assert_eq!(at, [(0, 0), (0, 2), (1, 0), (1, 1), (1, 2), (1, 3)]);
        assert_eq!((l.width, l.height), (2, 4));
        assert_eq!(crossings(&lab, &l), 0);
    }

    #[test]
    fn a_switch_stands_in_the_middle_of_its_hosts() {
        let lab = lab(1, 3, &[(1, 0), (2, 0), (3, 0)]);
        let l = layout(&lab);
        check_placed(&lab, &l);
        assert_eq!((l.nodes[0].layer, l.nodes[0].slot), (0, 1));
        assert_eq!(l.nodes[1..].iter().map(|p| (p.layer, p.slot)).collect::<Vec<_>>(), [(1, 0), (1, 1), (1, 2)]);
        assert_eq!((l.nodes[0].x, l.nodes[0].y), (0.0, 0.5));
    }

    #[test]
    fn a_host_is_not_the_core_of_a_part_with_a_switch() {
        // A switch and one host: the longest path has two middle nodes; the switch is the core.
        let lab = lab(1, 1, &[(1, 0)]);
        let l = layout(&lab);
        assert_eq!((l.nodes[0].layer, l.nodes[1].layer), (0, 1));
        // Two hosts alone: both are.
        let lab = self::lab(0, 2, &[(0, 1)]);
        let l = layout(&lab);
        assert_eq!((l.nodes[0].layer, l.nodes[1].layer), (0, 0));
        assert_eq!((l.nodes[0].slot, l.nodes[1].slot), (0, 2), "room for the link between them");
        check_placed(&lab, &l);
    }

    #[test]
    fn an_empty_lab_and_a_node_alone() {
        let empty = lab(0, 0, &[]);
        let l = layout(&empty);
        assert!(l.nodes.is_empty());
        assert_eq!((l.width, l.height), (1, 1));
        let alone = lab(0, 1, &[]);
        let l = layout(&alone);
        check_placed(&alone, &l);
        assert_eq!((l.nodes[0].x, l.nodes[0].y, l.nodes[0].layer, l.nodes[0].slot), (0.5, 0.5, 0, 0));
    }

    #[test]
    fn separate_parts_are_stacked_with_a_slot_between_them() {
        // A switch with two hosts, a host alone, then two hosts joined.
        let lab = lab(1, 5, &[(1, 0), (2, 0), (4, 5)]);
        let l = layout(&lab);
        check_placed(&lab, &l);
        let slots: Vec<u32> = l.nodes.iter().map(|p| p.slot).collect();
        // Part 1 takes slots 0 and 1, then an empty slot; the host alone 3; the pair 5 and 7.
        assert_eq!(slots, [0, 0, 1, 3, 5, 7]);
        assert_eq!(l.height, 8);
    }

    #[test]
    fn layers_follow_the_links() {
        // A core switch, three access switches, hosts under each; a host with two links (to two
        // access switches) and a cycle of switches, as routers and multi-homed hosts will bring.
        let mut links = vec![(1, 0), (2, 0), (3, 0)];
        for h in 4..16 {
            links.push((h, 1 + (h - 4) % 3));
        }
        links.push((15, 2));
        links.push((1, 2));
        let lab = lab(4, 12, &links);
        let l = layout(&lab);
        check_placed(&lab, &l);
        assert_eq!(l.nodes[0].layer, 0, "the core switch is the centre");
        for (a, b) in edges(&lab) {
            let (la, lb) = (l.nodes[a].layer, l.nodes[b].layer);
            assert!(la.abs_diff(lb) <= 1, "link {a}-{b} spans layers {la} and {lb}");
        }
        for s in 1..4 {
            assert_eq!(l.nodes[s].layer, 1);
        }
        for h in 4..16 {
            assert_eq!(l.nodes[h].layer, 2);
        }
    }

    #[test]
    fn barycentre_sweeps_undo_crossings() {
        // A switch with two switches under it, three hosts under each, listed crosswise.
        let lab = lab(3, 6, &[(1, 0), (2, 0), (3, 1), (4, 2), (5, 1), (6, 2), (7, 1), (8, 2)]);
        let graph = Graph::new(&lab);
        let layer = [0, 1, 1, 2, 2, 2, 2, 2, 2];
        let crosswise = vec![vec![0], vec![1, 2], vec![3, 4, 5, 6, 7, 8]];
        let mut pos = vec![0; 9];
        for l in &crosswise {
            for (i, &v) in l.iter().enumerate() {
                pos[v] = i;
            }
        }
        assert_eq!(graph.crossings(&crosswise, &layer, &pos), 3);
        let sorted = graph.order(crosswise, &layer);
        assert_eq!(sorted, [vec![0], vec![1, 2], vec![3, 5, 7, 4, 6, 8]]);
        let l = layout(&lab);
        check_placed(&lab, &l);
        assert_eq!(crossings(&lab, &l), 0);
    }

    #[test]
    fn the_same_lab_gets_the_same_layout() {
        let lab = generated(2_000, 7);
        assert_eq!(layout(&lab), layout(&lab));
        assert_eq!(layout(&two_site()), layout(&two_site()));
    }

    #[test]
    fn fit_keeps_order_and_gaps() {
        assert_eq!(fit(&[0.5, 0.5, 2.5, 2.5], &[1.0, 1.0, 1.0]), [0.0, 1.0, 2.0, 3.0]);
        assert_eq!(fit(&[3.0, 0.0], &[2.0]), [0.5, 2.5]);
        assert_eq!(fit(&[0.0, 5.0], &[1.0]), [0.0, 5.0]);
        assert!(fit(&[], &[]).is_empty());
    }

    /// A lab of `n` nodes of every shape at once: a tree of switches (core, distribution,
    /// access) with hosts, some hosts on two switches, parallel links, a few cycles among
    /// switches, small separate parts and nodes alone.
    fn generated(n: usize, seed: u64) -> Lab {
        let switches = n / 20;
        let mut rng = seed;
        let mut next = move |m: usize| {
            // xorshift: enough for a test's shapes, and the same on every machine.
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            usize::try_from(rng % m as u64).unwrap()
        };
        let mut links = Vec::new();
        for s in 1..switches {
            // Each switch under an earlier one: a tree, a few levels deep.
            links.push((s, next(s.min(1 + s / 8))));
        }
        for _ in 0..switches / 10 {
            let (a, b) = (next(switches), next(switches));
            links.push((a, b));
        }
        let alone = n / 50;
        for h in switches..n - alone {
            if h % 97 == 0 {
                // A small part of its own: a host pair.
                links.push((h, h - 1));
                continue;
            }
            let s = next(switches);
            links.push((h, s));
            if h % 31 == 0 {
                links.push((h, s));
            }
            if h % 37 == 0 {
                links.push((h, next(switches)));
            }
        }
        lab(switches, n - switches, &links)
    }

    #[test]
    fn two_thousand_nodes_each_in_a_place_of_its_own() {
        let lab = generated(2_000, 1);
        let t = std::time::Instant::now();
        let l = layout(&lab);
        let took = t.elapsed();
        check_placed(&lab, &l);
        for (a, b) in edges(&lab) {
            assert!(l.nodes[a].layer.abs_diff(l.nodes[b].layer) <= 1, "link {a}-{b}");
        }
        // Unoptimised test builds are several times slower than `--release`; this only catches a
        // layout that grows much faster than the lab.
        assert!(took < std::time::Duration::from_secs(5), "2,000 nodes took {took:?}");
    }
}
