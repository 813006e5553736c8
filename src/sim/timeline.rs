//! The timeline: commands due at simulated times, from the lab file's `events` or from a command
//! log (`--replay`). It is pure: it says when its next entry is due, and hands over the commands
//! of each entry once the driver has run the lab up to that time; the driver applies them as it
//! applies any command ([`Sim::apply`](super::Sim::apply)), logged.
//!
//! Entries at one time go in file order (a log's in its order). A flap is one entry that comes
//! back for each of its downs and ups. A partition takes down the links it cuts that are up, and
//! its heal brings up those of them that no other partition still cuts.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use super::command::{CommandSpec, DirectionSpec, LoggedCommand};
use crate::time::SimTime;
use crate::topology::{Event, EventAction, Lab, LinkId, NodeId};

/// The commands of one entry, due at `at`.
#[derive(Debug, Clone)]
pub struct Fired {
    pub at: SimTime,
    /// The lab file's event, in a few words (`events[2] flap wan 1/3 down`); `None` for a command
    /// of a log that no event applied.
    pub event: Option<String>,
    pub commands: Vec<CommandSpec>,
}

#[derive(Debug, Clone)]
enum Item {
    /// A command from a log, with the event it came from, if any.
    Logged(Box<CommandSpec>, Option<String>),
    /// An event of the lab file; for a flap, its `k`th time down (`up`: its coming back up).
    Event { event: usize, k: u32, up: bool },
}

#[derive(Debug, Clone)]
struct Entry {
    at: SimTime,
    /// Ties at one time go by this: the event's index in the file (a log's position), then
    /// a flap's repetition.
    order: (usize, u32),
    item: Item,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

/// Commands due at simulated times.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    queue: BinaryHeap<Reverse<Entry>>,
    events: Vec<Event>,
    link_names: Vec<String>,
    node_names: Vec<String>,
    /// Per link: how many partitions cut it, and whether it was up when the first did.
    cuts: Vec<(u32, bool)>,
    /// The partitions in place, with the links each cuts.
    partitions: BTreeMap<String, Vec<LinkId>>,
}

impl Timeline {
    /// The lab file's events; `runs_here` says which nodes this process runs (with `--site`, an
    /// app of another site's host is that site's to start and stop).
    #[must_use]
    pub fn of_lab(lab: &Lab, runs_here: impl Fn(NodeId) -> bool) -> Self {
        let mut t = Timeline::names(lab);
        for (n, e) in lab.events.iter().enumerate() {
            let here = match &e.action {
                EventAction::StartApp { node, .. } | EventAction::StopApp { node, .. } => runs_here(*node),
                _ => true,
            };
            if here {
                t.queue.push(Reverse(Entry {
                    at: SimTime::from_duration(e.at),
                    order: (n, 0),
                    item: Item::Event { event: n, k: 0, up: false },
                }));
            }
        }
        t.events = lab.events.clone();
        t
    }

    /// The commands of a log, at their times.
    #[must_use]
    pub fn of_log(lab: &Lab, log: &[LoggedCommand]) -> Self {
        let mut t = Timeline::names(lab);
        for (n, c) in log.iter().enumerate() {
            t.queue.push(Reverse(Entry {
                at: c.at(),
                order: (n, 0),
                item: Item::Logged(Box::new(c.command.clone()), c.event.clone()),
            }));
        }
        t
    }

    fn names(lab: &Lab) -> Self {
        Timeline {
            link_names: lab.links.iter().map(|l| l.name.clone()).collect(),
            node_names: lab.nodes.iter().map(|n| n.name.clone()).collect(),
            cuts: vec![(0, false); lab.links.len()],
            ..Timeline::default()
        }
    }

    /// When the next entry is due.
    #[must_use]
    pub fn next_at(&self) -> Option<SimTime> {
        self.queue.peek().map(|Reverse(e)| e.at)
    }

    /// Nothing is left to apply.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Takes the next entry due by `now`, with its commands; `link_up` says whether a link is up
    /// now (a partition takes down only the links that are).
    pub fn pop_due(&mut self, now: SimTime, link_up: impl Fn(LinkId) -> bool) -> Option<Fired> {
        if self.next_at().is_none_or(|t| t > now) {
            return None;
        }
        let Reverse(entry) = self.queue.pop()?;
        let (event, k, up) = match entry.item {
            Item::Logged(command, event) => return Some(Fired { at: entry.at, event, commands: vec![*command] }),
            Item::Event { event, k, up } => (event, k, up),
        };
        let e = self.events[event].clone();
        let link = |l: LinkId| self.link_names.get(l.index()).cloned().unwrap_or_default();
        let (words, commands) = match &e.action {
            EventAction::SetLink { link: l, up: true } => {
                (format!("link-up {}", link(*l)), vec![CommandSpec::LinkUp { link: link(*l) }])
            }
            EventAction::SetLink { link: l, up: false } => {
                (format!("link-down {}", link(*l)), vec![CommandSpec::LinkDown { link: link(*l) }])
            }
            EventAction::SetModel { link: l, direction, impair } => {
                let way = match direction {
                    Some(DirectionSpec::AToB) => " a-to-b",
                    Some(DirectionSpec::BToA) => " b-to-a",
                    None => "",
                };
                (
                    format!("set {}{way}", link(*l)),
                    vec![CommandSpec::SetModel { link: link(*l), direction: *direction, impair: impair.clone() }],
                )
            }
            EventAction::Flap { link: l, down, every, count } => {
                // Down at `at + k × every`, up `down` later; then the next time, if any.
                // Past the end of time, a time is the end of time (a lab may write `1000000d`).
                let start = SimTime::from_duration(e.at);
                let nth = |k: u32| every.checked_mul(k).map_or(SimTime::MAX, |d| start + d);
                let next = if up {
                    (k + 1 < *count).then(|| (nth(k + 1), k + 1, false))
                } else {
                    Some((nth(k) + *down, k, true))
                };
                if let Some((at, k, up)) = next {
                    self.queue.push(Reverse(Entry {
                        at,
                        order: (event, 2 * k + u32::from(up)),
                        item: Item::Event { event, k, up },
                    }));
                }
                let name = link(*l);
                let words = format!("flap {name} {}/{count} {}", k + 1, if up { "up" } else { "down" });
                let command =
                    if up { CommandSpec::LinkUp { link: name } } else { CommandSpec::LinkDown { link: name } };
                (words, vec![command])
            }
            EventAction::StartApp { node, app, label } => {
                let node = self.node_names.get(node.index()).cloned().unwrap_or_default();
                (format!("start {label}"), vec![CommandSpec::StartApp { node, app: app.clone() }])
            }
            EventAction::StopApp { node, app } => {
                let node = self.node_names.get(node.index()).cloned().unwrap_or_default();
                (format!("stop {node} {app}"), vec![CommandSpec::StopApp { node, app: app.clone() }])
            }
            EventAction::Partition { name, links, .. } => {
                let mut down = Vec::new();
                for &l in links {
                    let Some(cut) = self.cuts.get_mut(l.index()) else { continue };
                    if cut.0 == 0 {
                        cut.1 = link_up(l);
                        if cut.1 {
                            down.push(CommandSpec::LinkDown { link: link(l) });
                        }
                    }
                    cut.0 += 1;
                }
                self.partitions.insert(name.clone(), links.clone());
                (format!("partition {name}: {} link{} down", down.len(), plural(down.len())), down)
            }
            EventAction::Heal { name } => {
                let mut up = Vec::new();
                for l in self.partitions.remove(name).unwrap_or_default() {
                    let Some(cut) = self.cuts.get_mut(l.index()) else { continue };
                    cut.0 = cut.0.saturating_sub(1);
                    if cut.0 == 0 && cut.1 {
                        up.push(CommandSpec::LinkUp { link: link(l) });
                    }
                }
                (format!("heal {name}: {} link{} up", up.len(), plural(up.len())), up)
            }
        };
        Some(Fired { at: entry.at, event: Some(format!("events[{}] {words}", e.index)), commands })
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(events: serde_json::Value) -> Lab {
        let text = serde_json::json!({
            "name": "t",
            "nodes": {
                "sw": { "kind": "switch" },
                "a": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.1/24"] } },
                       "apps": [ { "kind": "ping", "to": "b" } ] },
                "b": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.2/24"] } } },
                "c": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.3/24"] } } }
            },
            "links": [ { "a": "a:eth0", "b": "sw", "name": "la" },
                       { "a": "b:eth0", "b": "sw", "name": "lb" },
                       { "a": "c:eth0", "b": "sw", "name": "lc" } ],
            "events": events
        });
        crate::topology::load_str(&text.to_string(), "t.json").unwrap_or_else(|e| panic!("{e}"))
    }

    /// Every entry, with the time and the commands, applying nothing (every link stays up).
    fn drain(t: &mut Timeline) -> Vec<(u64, String, Vec<String>)> {
        let mut out = Vec::new();
        for _ in 0..1000 {
            let Some(at) = t.next_at() else { break };
            let f = t.pop_due(at, |_| true).expect("due");
            out.push((
                at.as_nanos() / 1_000_000,
                f.event.unwrap_or_default(),
                f.commands.iter().map(ToString::to_string).collect(),
            ));
        }
        out
    }

    #[test]
    fn a_flap_goes_down_and_up_count_times() {
        let l = lab(serde_json::json!([
            { "at": "1s", "kind": "flap", "link": "la", "down": "500ms", "every": "2s", "count": 3 },
            { "at": "3s", "kind": "link-down", "link": "lc" }
        ]));
        let mut t = Timeline::of_lab(&l, |_| true);
        let got = drain(&mut t);
        let times: Vec<u64> = got.iter().map(|g| g.0).collect();
        assert_eq!(times, [1000, 1500, 3000, 3000, 3500, 5000, 5500]);
        // At 3 s the flap (events[0]) goes before the link-down (events[1]).
        assert_eq!(got[2].1, "events[0] flap la 2/3 down");
        assert_eq!(got[3].2, ["link-down lc"]);
        assert_eq!(got[6].1, "events[0] flap la 3/3 up");
        assert_eq!(got[6].2, ["link-up la"]);
        assert!(t.is_empty());
    }

    #[test]
    fn a_heal_brings_back_only_what_its_partition_took_down() {
        let l = lab(serde_json::json!([
            { "at": "1s", "kind": "partition", "name": "p", "nodes": ["a", "b"] },
            { "at": "2s", "kind": "partition", "name": "q", "nodes": ["b"] },
            { "at": "3s", "kind": "heal", "name": "p" },
            { "at": "4s", "kind": "heal", "name": "q" }
        ]));
        let mut t = Timeline::of_lab(&l, |_| true);
        // Link `lc` was down before the partition: it stays down after the heal.
        let lc = LinkId(2);
        let up = |l: LinkId| l != lc;
        let f = t.pop_due(SimTime::from_millis(1000), up).expect("partition p");
        let cmds: Vec<String> = f.commands.iter().map(ToString::to_string).collect();
        assert_eq!(cmds, ["link-down la", "link-down lb"], "{f:?}");
        assert_eq!(f.event.as_deref(), Some("events[0] partition p: 2 links down"));
        // q cuts lb only, down already: nothing to do, but it holds lb.
        let f = t.pop_due(SimTime::from_millis(2000), |_| false).expect("partition q");
        assert!(f.commands.is_empty());
        // Healing p brings back la; lb stays down while q holds it.
        let f = t.pop_due(SimTime::from_millis(3000), |_| false).expect("heal p");
        let cmds: Vec<String> = f.commands.iter().map(ToString::to_string).collect();
        assert_eq!(cmds, ["link-up la"]);
        let f = t.pop_due(SimTime::from_millis(4000), |_| false).expect("heal q");
        let cmds: Vec<String> = f.commands.iter().map(ToString::to_string).collect();
        assert_eq!(cmds, ["link-up lb"]);
        assert!(t.pop_due(SimTime::MAX, up).is_none());
    }

    #[test]
    fn a_flap_past_the_end_of_time_stays_there() {
        let l = lab(serde_json::json!([
            { "at": "1s", "kind": "flap", "link": "la", "down": "1s", "every": "10000000000d", "count": 1000000 }
        ]));
        let mut t = Timeline::of_lab(&l, |_| true);
        assert!(t.pop_due(SimTime::from_millis(1000), |_| true).is_some());
        assert!(t.pop_due(SimTime::from_millis(2000), |_| true).is_some());
        assert_eq!(t.next_at(), Some(SimTime::MAX));
    }

    #[test]
    fn nothing_is_handed_over_before_its_time() {
        let l = lab(serde_json::json!([{ "at": "2s", "kind": "link-down", "link": "la" }]));
        let mut t = Timeline::of_lab(&l, |_| true);
        assert_eq!(t.next_at(), Some(SimTime::from_millis(2000)));
        assert!(t.pop_due(SimTime::from_millis(1999), |_| true).is_none());
        assert!(t.pop_due(SimTime::from_millis(2000), |_| true).is_some());
    }
}
