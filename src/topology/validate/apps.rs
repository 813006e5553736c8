//! Each host's apps, checked against the whole lab once every address is known: targets resolve
//! (see `targets`), and no two servers of a host share a protocol and port. An app's label in
//! reports is `"<node>/<kind>"`.

use std::collections::BTreeMap;
use std::time::Duration;

use indexmap::IndexMap;

use super::elements::Parsed;
use super::targets::LabView;
use super::{Cx, Status};
use crate::topology::diag::JsonPath;
use crate::topology::model::{App, AppKind, Node, NodeKind};

impl Cx {
    /// Resolves every host's apps and hands them to their nodes.
    pub(super) fn host_apps(
        &mut self,
        parsed: &IndexMap<String, Option<Parsed>>,
        nodes: &mut [Node],
        status: &[Status],
    ) {
        let nodes_path = JsonPath::root().key("nodes");
        let by_name: BTreeMap<&str, usize> = parsed.keys().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
        let hosts: Vec<&str> =
            parsed.iter().filter(|(_, p)| matches!(p, Some(Parsed::Host { .. }))).map(|(n, _)| n.as_str()).collect();
        let mut host_apps = Vec::new();
        for (i, (node_name, p)) in parsed.iter().enumerate() {
            let Some(Parsed::Host { apps, .. }) = p else { continue };
            let lab = LabView { nodes: &*nodes, status, by_name: &by_name, hosts: &hosts };
            let mut out = Vec::new();
            let mut servers = Servers::default();
            for (j, a) in apps.iter().enumerate() {
                let Some(a) = a else { continue };
                let path = nodes_path.key(node_name).key("apps").index(j);
                if let Some((start, kind)) = self.resolve_app(a, i, &lab, &path) {
                    self.claim_port(&mut servers, &kind, j, node_name, &path);
                    out.push(labelled(node_name, start, kind));
                }
            }
            host_apps.push((i, out));
        }
        for (i, out) in host_apps {
            if let NodeKind::Host(h) = &mut nodes[i].kind {
                h.apps = out;
            }
        }
    }

    /// Records the server app `j` of `node` runs, if it is one, and reports a port an earlier app
    /// of the same host listens on already.
    fn claim_port(&mut self, servers: &mut Servers, kind: &AppKind, j: usize, node: &str, path: &JsonPath) {
        let Some((proto, port)) = kind.listens_on() else { return };
        let first = *servers.0.entry((proto, port)).or_insert(j);
        if first != j {
            self.err(
                path.key("port"),
                format!("{proto} port {port} of `{node}` is taken by apps[{first}]"),
                Some("give each server of a host its own port".into()),
            );
        }
    }
}

/// The servers of one host by protocol and port, with the index of the app that listens first.
#[derive(Default)]
struct Servers(BTreeMap<(&'static str, u16), usize>);

fn labelled(node: &str, start: Duration, kind: AppKind) -> App {
    App { label: format!("{node}/{}", kind.name()), start, kind }
}
