//! Links: each end resolved to a host interface or a new switch port, the link model, names, and
//! the check that switches form no loop (they run no spanning tree).

use std::collections::{BTreeMap, HashMap};

use super::segments::Sets;
use super::{Cx, Status};
use crate::topology::diag::{did_you_mean, listing, shown, JsonPath, Suggestions};
use crate::topology::model::{Attachment, Link, LinkId, LinkModel, Node, NodeKind, Side, Transport};
use crate::topology::spec::{ImpairSpec, LinkSpec, LinkStateSpec, TransportKind};
use crate::topology::{impair, parse};

/// What a link end is resolved against.
struct Ends<'a> {
    /// Every node by name.
    by_name: &'a HashMap<&'a str, usize>,
    /// Nodes offered in hints: those whose names are valid (a misnamed one is reported at its name).
    offered: &'a Suggestions<'a>,
    /// Every host interface by node and name.
    interfaces: &'a HashMap<(usize, String), usize>,
    nodes: &'a [Node],
    status: &'a [Status],
    /// The index in `links` of each link accepted so far.
    spec_index: &'a [usize],
}

impl Cx {
    /// Resolves the links that parsed, in order, and plugs each into its nodes' interfaces and ports.
    pub(super) fn links(
        &mut self,
        names: &[&str],
        specs: &[Option<LinkSpec>],
        nodes: &mut [Node],
        status: &[Status],
    ) -> (Vec<Link>, Vec<usize>) {
        let mut out_links: Vec<Link> = Vec::new();
        // The index in `links` of each entry of `out_links`, for messages.
        let mut spec_index: Vec<usize> = Vec::new();
        let mut link_names: BTreeMap<String, usize> = BTreeMap::new();
        // Nodes joined by switch-to-switch links.
        let mut switch_sets = Sets::new(nodes.len());
        let by_name: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let offered = Suggestions::new(names.iter().copied().filter(|n| parse::valid_name(n)));
        let interfaces: HashMap<(usize, String), usize> = nodes
            .iter()
            .enumerate()
            .flat_map(|(n, node)| node.kind.interfaces().iter().enumerate().map(move |(k, i)| ((n, i.name.clone()), k)))
            .collect();
        for (i, l) in specs.iter().enumerate() {
            let Some(l) = l else { continue };
            let path = JsonPath::root().key("links").index(i);
            let id = LinkId(u32::try_from(out_links.len()).unwrap_or(u32::MAX));
            let ends = Ends {
                by_name: &by_name,
                offered: &offered,
                interfaces: &interfaces,
                nodes: &*nodes,
                status,
                spec_index: &spec_index,
            };
            let a = self.endpoint(&l.a, &ends, &path, "a");
            let b = self.endpoint(&l.b, &ends, &path, "b");
            let (model, model_b_to_a) = self.link_models(l, &path);
            let default_name = format!("{}<->{}", l.a.trim(), l.b.trim());
            let lname = match l.name.as_deref() {
                Some(n) if n.trim().is_empty() => {
                    self.err(
                        path.key("name"),
                        "a link name cannot be empty",
                        Some(format!("leave `name` out for the default, `{}`", shown(&default_name))),
                    );
                    default_name
                }
                Some(n) => {
                    if !parse::valid_name(n) {
                        self.err(
                            path.key("name"),
                            format!("`{}` is not a valid link name", shown(n)),
                            Some(parse::name_hint(
                                n,
                                &format!(
                                    "use letters, digits, `-`, `_` and `.`, as in a node name; or leave `name` out for the default, `{}`",
                                    shown(&default_name)
                                ),
                            )),
                        );
                    }
                    n.to_string()
                }
                None => default_name,
            };
            if let Some(prev) = link_names.insert(lname.clone(), i) {
                self.err(
                    path.clone(),
                    format!("link name `{}` is already used by links[{prev}]", shown(&lname)),
                    Some("give one of them a distinct `name`".into()),
                );
            }
            let (Some(a), Some(b)) = (a, b) else {
                self.unaccepted_links.extend(link_words(&lname, &l.a, &l.b));
                continue;
            };
            if a.node() == b.node() {
                self.err(
                    path.clone(),
                    format!("link joins `{}` to itself", shown(&nodes[a.node().index()].name)),
                    Some("a link joins two different nodes".into()),
                );
                self.unaccepted_links.extend(link_words(&lname, &l.a, &l.b));
                continue;
            }
            // Switches run no spanning tree: a loop among them would circulate broadcasts forever.
            if let (Attachment::SwitchPort { .. }, Attachment::SwitchPort { .. }) = (a, b) {
                if !switch_sets.join(a.node().index(), b.node().index()) {
                    self.err(
                        path.clone(),
                        format!(
                            "link `{}` closes a loop among switches (`{}` and `{}` are already joined)",
                            shown(&lname),
                            shown(&nodes[a.node().index()].name),
                            shown(&nodes[b.node().index()].name)
                        ),
                        Some("netlab switches run no spanning tree, so broadcasts would circle forever; remove a link of the loop".into()),
                    );
                    self.unaccepted_links.extend(link_words(&lname, &l.a, &l.b));
                    continue;
                }
            }
            // Plug the ends in; a switch gets a new port per link.
            let mut ends = [a, b];
            for (att, side) in ends.iter_mut().zip([Side::A, Side::B]) {
                let ni = att.node().index();
                match (att, &mut nodes[ni].kind) {
                    (Attachment::HostInterface { interface, .. }, kind) => {
                        if let Some(i) = kind.interfaces_mut().and_then(|v| v.get_mut(*interface)) {
                            i.link = Some((id, side));
                        }
                    }
                    (Attachment::SwitchPort { port, .. }, NodeKind::Switch(s)) => {
                        *port = s.ports.len();
                        s.ports.push((id, side));
                    }
                    _ => {}
                }
            }
            let transport = match l.transport.unwrap_or(TransportKind::Mem) {
                TransportKind::Mem => Transport::Mem,
                TransportKind::Udp => Transport::Udp,
                TransportKind::Tcp => Transport::Tcp,
                TransportKind::Exec => Transport::Exec,
            };
            let up = l.state != Some(LinkStateSpec::Down);
            out_links.push(Link { id, name: lname, ends, transport, model, model_b_to_a, up });
            spec_index.push(i);
        }
        (out_links, spec_index)
    }

    /// The model of each direction of the link at `link`: `impair`, then `a_to_b` or `b_to_a` over it.
    fn link_models(&mut self, l: &LinkSpec, link: &JsonPath) -> (LinkModel, LinkModel) {
        let shared = match &l.impair {
            Some(s) => self.impair(LinkModel::default(), s, &link.key("impair")),
            None => LinkModel::default(),
        };
        let one_way = |cx: &mut Cx, spec: Option<&ImpairSpec>, key: &str| match spec {
            Some(s) => cx.impair(shared, s, &link.key(key)),
            None => shared,
        };
        let a_to_b = one_way(self, l.a_to_b.as_ref(), "a_to_b");
        let b_to_a = one_way(self, l.b_to_a.as_ref(), "b_to_a");
        (a_to_b, b_to_a)
    }

    /// `base` with the fields given in the impair object at `path`.
    pub(super) fn impair(&mut self, base: LinkModel, s: &ImpairSpec, path: &JsonPath) -> LinkModel {
        let d = base;
        let latency = self.duration(s.latency.as_ref(), d.latency, path, "latency");
        let rate_bps = match s.rate.as_ref().map(|r| parse::rate_bps(r)) {
            None => d.rate_bps,
            Some(Ok(r)) => Some(r),
            Some(Err(e)) => {
                self.err(path.key("rate"), e, Some("such as `100Mbit` or `1Gbit`".into()));
                d.rate_bps
            }
        };
        let loss = s.loss.unwrap_or(d.loss);
        if !(0.0..=1.0).contains(&loss) {
            self.err(
                path.key("loss"),
                format!("loss {loss} is not a probability"),
                Some("write 0.0 to 1.0; 0.01 is 1 % loss".into()),
            );
        }
        let queue = s.queue.map_or(d.queue_frames, |q| q as usize);
        if !(1..=65_536).contains(&queue) {
            self.err(
                path.key("queue"),
                format!("queue of {queue} frames is out of range 1 to 65536"),
                Some("leave `queue` out for the default of 1000 frames".into()),
            );
        }
        let mut m = LinkModel { latency, rate_bps, loss: loss.clamp(0.0, 1.0), queue_frames: queue.max(1), ..d };
        let mut problems = Vec::new();
        impair::apply(&mut m, s, &mut problems);
        for p in problems {
            let at = p.field.split('.').fold(path.clone(), |at, k| at.key(k));
            self.err(at, p.message, Some(p.hint));
        }
        m
    }

    /// End `key` (`a` or `b`) of the link at `link`, written `text`.
    fn endpoint(&mut self, text: &str, ends: &Ends<'_>, link: &JsonPath, key: &str) -> Option<Attachment> {
        let path = || link.key(key);
        let (node_name, iface) = match text.trim().split_once(':') {
            Some((n, i)) => (n, Some(i)),
            None => (text.trim(), None),
        };
        let Some(&idx) = ends.by_name.get(node_name) else {
            // A node whose name is itself invalid (it has a `:`) is reported once, at the node.
            let full = text.trim().rsplit_once(':').map_or(text.trim(), |(n, _)| n);
            if ends.by_name.contains_key(full) || ends.by_name.contains_key(text.trim()) {
                return None;
            }
            let offered = ends.offered.candidates();
            let hint = ends.offered.did_you_mean(node_name).or_else(|| {
                Some(if offered.is_empty() {
                    "the lab has no nodes yet; add them under `nodes`".into()
                } else {
                    format!("nodes: {}", listing(offered.iter().copied()))
                })
            });
            self.err(path(), format!("link end `{}` names no node", shown(text)), hint);
            return None;
        };
        let node = &ends.nodes[idx];
        if ends.status[idx] == Status::Broken {
            // The node itself is reported; its links are not checked against a guess.
            return None;
        }
        match &node.kind {
            NodeKind::Switch(_) => {
                if let Some(i) = iface {
                    self.err(
                        path(),
                        format!("`{}` is a switch; its ports have no names (`:{}`)", shown(node_name), shown(i)),
                        Some(format!("write just `{}`; each link gets a new port", shown(node_name))),
                    );
                    return None;
                }
                // The port number is given when the link is plugged in.
                Some(Attachment::SwitchPort { node: node.id, port: 0 })
            }
            NodeKind::Host(_) | NodeKind::Router(_) => {
                let kind = node.kind.name();
                let ifaces = node.kind.interfaces();
                let Some(i) = iface else {
                    let hint = match ifaces.first() {
                        Some(f) => format!("write `{}:{}`", shown(node_name), shown(&f.name)),
                        None if ends.status[idx] == Status::Incomplete => {
                            format!("write `{}:<interface>`", shown(node_name))
                        }
                        None => format!("`{}` has no interfaces; add one under `interfaces`", shown(node_name)),
                    };
                    self.err(
                        path(),
                        format!("link end `{}` is a {kind} but names no interface", shown(text)),
                        Some(hint),
                    );
                    return None;
                };
                let Some(&k) = ends.interfaces.get(&(idx, i.to_string())) else {
                    let inames: Vec<&str> = ifaces.iter().map(|i| i.name.as_str()).collect();
                    let unknown_interfaces = ends.status[idx] == Status::Incomplete && ifaces.is_empty();
                    if unknown_interfaces || self.unread_interfaces.contains(&(node_name.to_string(), i.to_string())) {
                        // This interface (or every one of this host) failed to parse and is reported.
                        return None;
                    }
                    let hint = did_you_mean(i, inames.iter().copied()).or_else(|| {
                        Some(if inames.is_empty() {
                            format!(
                                "`{}` has no interfaces; add `\"{}\": {{ … }}` under its `interfaces`",
                                shown(node_name),
                                shown(i)
                            )
                        } else {
                            format!("interfaces of `{}`: {}", shown(node_name), listing(inames.iter().copied()))
                        })
                    });
                    self.err(path(), format!("`{}` has no interface `{}`", shown(node_name), shown(i)), hint);
                    return None;
                };
                if let Some((other, _)) = ifaces[k].link {
                    let first = ends.spec_index.get(other.index()).copied().unwrap_or(other.index());
                    self.err(
                        path(),
                        format!("interface `{}:{}` is already used by links[{first}]", shown(node_name), shown(i)),
                        Some("an interface takes one link; join more nodes through a switch".into()),
                    );
                    return None;
                }
                Some(Attachment::HostInterface { node: node.id, interface: k })
            }
        }
    }
}

/// What a capture selection may use to name a link that failed: its name, its ends
/// (`laptop:eth0`) and their nodes (`laptop`). Selecting one of those is not reported again.
pub(super) fn link_words(name: &str, a: &str, b: &str) -> Vec<String> {
    let mut w = vec![name.trim().to_string()];
    for end in [a.trim(), b.trim()] {
        w.push(end.to_string());
        w.extend(end.split_once(':').map(|(node, _)| node.to_string()));
    }
    w.retain(|s| !s.is_empty());
    w
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::tests::two_site;
    use crate::topology::model::{Attachment, LinkId, NodeKind, Side};
    use crate::topology::parse;

    #[test]
    fn links_plug_into_interfaces_and_numbered_switch_ports() {
        let lab = two_site();
        assert_eq!(lab.to_string(), "8 nodes, 7 links");
        let hq = lab.node_by_name("hq-sw").expect("hq-sw");
        let NodeKind::Switch(sw) = &hq.kind else { panic!("hq-sw is a switch") };
        // laptop, nas, then the router: ports in link order.
        assert_eq!(sw.ports, vec![(LinkId(0), Side::B), (LinkId(1), Side::B), (LinkId(2), Side::B)]);
        assert_eq!(sw.mac_ageing, Duration::from_secs(300));
        let wan = lab.link(LinkId(6));
        assert_eq!(wan.name, "wan");
        // A router's interface, by its index among the router's interfaces.
        assert_eq!(
            wan.ends[1],
            Attachment::HostInterface { node: lab.node_by_name("branch-r").unwrap().id, interface: 1 }
        );
        assert_eq!(wan.model.latency, Duration::from_millis(10));
        assert_eq!(wan.model.rate_bps, Some(50_000_000));
        assert_eq!(wan.model.queue_frames, 200);
        let laptop = lab.node_by_name("laptop").expect("laptop");
        let NodeKind::Host(h) = &laptop.kind else { panic!() };
        assert_eq!(h.interfaces[0].link, Some((LinkId(0), Side::A)));
        assert_eq!(h.interfaces[0].mtu, 1500);
        assert_eq!(h.interfaces[0].mac, parse::derived_mac("laptop", "eth0"));
        assert_eq!(lab.link(LinkId(0)).name, "laptop:eth0<->hq-sw");
        assert_eq!(laptop.site.as_deref(), Some("hq"));
    }
}
