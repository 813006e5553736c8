//! Commands: changes to a running lab, as data. A command is applied at a simulated time, between
//! steps, so that a run given the same lab, seed and command log repeats itself exactly. Keys in a
//! UI, timed events and `--replay` all end in [`Sim::apply`](super::Sim::apply).
//!
//! [`CommandSpec`] is the logged form, with names instead of ids; [`CommandSpec::resolve`] turns it
//! into a [`Command`] against the lab, checking it as the lab file's own checks would.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::time::SimTime;
use crate::topology::{self, parse, spec::ImpairSpec, Lab, LinkId, LinkModel, NodeId, NodeKind, Side};

/// A change to a running lab.
#[derive(Debug, Clone)]
pub enum Command {
    /// Bring a link up or down. Down, it drops what is sent on it and loses what is in flight.
    SetLink { link: LinkId, up: bool },
    /// Change the model of one direction of a link (`from`: the side that sends), or of both.
    SetModel { link: LinkId, from: Option<Side>, model: LinkModel },
    /// Change the models of both directions of a link at once, each to its own (a change of some
    /// fields of a link whose directions differ).
    SetModels { link: LinkId, a_to_b: LinkModel, b_to_a: LinkModel },
    /// Start an app on a host.
    StartApp { node: NodeId, app: topology::App },
    /// Stop an app of a host, by its index among the host's apps.
    StopApp { node: NodeId, app: usize },
}

/// Why a command could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("no link `{0}`")]
    NoLink(String),
    #[error("no node `{0}`")]
    NoNode(String),
    #[error("`{0}` is not a host")]
    NotAHost(String),
    #[error("`{0}` runs elsewhere (a remote site)")]
    Remote(String),
    #[error("no app `{app}` on `{node}`")]
    NoApp { node: String, app: String },
    #[error("app `{0}` is stopped already")]
    Stopped(String),
    #[error("{0}")]
    Invalid(String),
}

/// Which way a model change applies (the lab file's events name it too).
pub use crate::topology::spec::DirectionSpec;

/// A command as logged and replayed: names from the lab file, values as a lab file writes them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum CommandSpec {
    LinkUp {
        link: String,
    },
    LinkDown {
        link: String,
    },
    /// Changes only the fields given; the others keep their current values.
    SetModel {
        link: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        direction: Option<DirectionSpec>,
        impair: ImpairSpec,
    },
    StartApp {
        node: String,
        /// An app as a lab file's `apps` array holds it.
        app: serde_json::Value,
    },
    StopApp {
        node: String,
        /// The app's label (`node/kind`, the first of that name) or its index among the host's apps.
        app: String,
    },
}

impl fmt::Display for CommandSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandSpec::LinkUp { link } => write!(f, "link-up {link}"),
            CommandSpec::LinkDown { link } => write!(f, "link-down {link}"),
            CommandSpec::SetModel { link, direction, .. } => {
                write!(f, "set-model {link}")?;
                match direction {
                    Some(DirectionSpec::AToB) => write!(f, " a-to-b"),
                    Some(DirectionSpec::BToA) => write!(f, " b-to-a"),
                    None => Ok(()),
                }
            }
            CommandSpec::StartApp { node, app } => {
                write!(f, "start-app {node} {}", app.get("kind").and_then(|k| k.as_str()).unwrap_or("?"))
            }
            CommandSpec::StopApp { node, app } => write!(f, "stop-app {node} {app}"),
        }
    }
}

/// A command applied at a simulated time: one entry of a run's command log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggedCommand {
    /// Simulated nanoseconds since the start of the run.
    pub at_ns: u64,
    pub command: CommandSpec,
    /// The lab file's event that applied it (`events[3] flap wan`), if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
}

impl LoggedCommand {
    #[must_use]
    pub fn at(&self) -> SimTime {
        SimTime::from_nanos(self.at_ns)
    }
}

impl CommandSpec {
    /// Resolves names against the lab and checks values. `current` gives a link direction's model
    /// now, for a model change that names only some fields.
    pub fn resolve(&self, lab: &Lab, current: impl Fn(LinkId, Side) -> LinkModel) -> Result<Command, CommandError> {
        self.resolve_with(lab, current, |node| match &lab.node(node).kind {
            NodeKind::Host(h) => h.apps.iter().map(|a| a.label.clone()).collect(),
            NodeKind::Switch(_) | NodeKind::Router(_) => Vec::new(),
        })
    }

    /// [`resolve`](Self::resolve) against a running lab: models as they are now, and an app to
    /// stop among the host's apps now, those started by commands included.
    pub fn resolve_in(&self, lab: &Lab, sim: &super::Sim) -> Result<Command, CommandError> {
        self.resolve_with(lab, |l, side| sim.link_model(l, side).unwrap_or_default(), |n| sim.app_labels(n))
    }

    fn resolve_with(
        &self,
        lab: &Lab,
        current: impl Fn(LinkId, Side) -> LinkModel,
        apps: impl Fn(NodeId) -> Vec<String>,
    ) -> Result<Command, CommandError> {
        let link = |name: &str| {
            lab.links.iter().find(|l| l.name == name).map(|l| l.id).ok_or_else(|| CommandError::NoLink(name.into()))
        };
        let host = |name: &str| {
            let n = lab.node_by_name(name).ok_or_else(|| CommandError::NoNode(name.into()))?;
            match n.kind {
                NodeKind::Host(_) => Ok(n),
                NodeKind::Switch(_) | NodeKind::Router(_) => Err(CommandError::NotAHost(name.into())),
            }
        };
        Ok(match self {
            CommandSpec::LinkUp { link: l } => Command::SetLink { link: link(l)?, up: true },
            CommandSpec::LinkDown { link: l } => Command::SetLink { link: link(l)?, up: false },
            CommandSpec::SetModel { link: l, direction, impair } => {
                let id = link(l)?;
                let from = direction.map(|d| match d {
                    DirectionSpec::AToB => Side::A,
                    DirectionSpec::BToA => Side::B,
                });
                let model = merge_model(current(id, from.unwrap_or(Side::A)), impair).map_err(CommandError::Invalid)?;
                let b_to_a = current(id, Side::B);
                if from.is_none() && current(id, Side::A) != b_to_a {
                    // The directions differ: each keeps the fields the command does not give.
                    let b_to_a = merge_model(b_to_a, impair).map_err(CommandError::Invalid)?;
                    Command::SetModels { link: id, a_to_b: model, b_to_a }
                } else {
                    Command::SetModel { link: id, from, model }
                }
            }
            CommandSpec::StartApp { node, app } => {
                let n = host(node)?;
                let app = topology::app_for_host(lab, n.id, app).map_err(|e| CommandError::Invalid(e.join("; ")))?;
                Command::StartApp { node: n.id, app }
            }
            CommandSpec::StopApp { node, app } => {
                let n = host(node)?;
                let labels = apps(n.id);
                let index = topology::select_app(labels.iter().map(String::as_str), app)
                    .ok_or_else(|| CommandError::NoApp { node: node.clone(), app: app.clone() })?;
                Command::StopApp { node: n.id, app: index }
            }
        })
    }
}

/// The fields given in `impair` over `base`, checked as the lab file checks them.
pub fn merge_model(base: LinkModel, impair: &ImpairSpec) -> Result<LinkModel, String> {
    let mut m = base;
    if let Some(l) = &impair.latency {
        m.latency = parse::duration(l).map_err(|e| format!("latency: {e}"))?;
    }
    if let Some(r) = &impair.rate {
        m.rate_bps = if r == "unlimited" { None } else { Some(parse::rate_bps(r).map_err(|e| format!("rate: {e}"))?) };
    }
    if let Some(loss) = impair.loss {
        if !(0.0..=1.0).contains(&loss) {
            return Err(format!("loss: {loss} is not a probability (write 0.0 to 1.0)"));
        }
        m.loss = loss;
    }
    if let Some(q) = impair.queue {
        if !(1..=65_536).contains(&q) {
            return Err(format!("queue: {q} frames is out of range 1 to 65536"));
        }
        m.queue_frames = q as usize;
    }
    let mut problems = Vec::new();
    topology::impair::apply(&mut m, impair, &mut problems);
    if !problems.is_empty() {
        return Err(topology::impair::one_line(&problems));
    }
    Ok(m)
}

/// Reads a command log: a JSON array of logged commands, or a run's report (its `commands`).
pub fn read_log(text: &str) -> Result<Vec<LoggedCommand>, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let list = match v {
        serde_json::Value::Object(mut o) => o.remove("commands").ok_or("a report with no `commands`")?,
        v => v,
    };
    let mut log: Vec<LoggedCommand> =
        serde_path_to_error::deserialize(list).map_err(|e| format!("at {}: {}", e.path(), e.inner()))?;
    // Commands apply in time order; entries at one time keep their order.
    log.sort_by_key(|c| c.at_ns);
    Ok(log)
}
