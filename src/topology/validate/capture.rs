//! The capture selection: which links to capture, by link name, endpoint or node, and where.

use std::collections::HashMap;
use std::path::PathBuf;

use super::Cx;
use crate::topology::diag::{listing, shown, JsonPath, Suggestions};
use crate::topology::model::{Attachment, CaptureConfig, CaptureFormat, Link, LinkId, Node, NodeKind};
use crate::topology::spec::CaptureSpec;

impl Cx {
    pub(super) fn capture(
        &mut self,
        spec: Option<&CaptureSpec>,
        lab_name: &str,
        nodes: &[Node],
        links: &[Link],
    ) -> Option<CaptureConfig> {
        let spec = spec?;
        let path = JsonPath::root().key("capture");
        let mut ids = Vec::new();
        match &spec.links {
            None => ids.extend(links.iter().map(|l| l.id)),
            Some(sel) => {
                let selectors = selectors(nodes, links);
                let mut suggestions = None;
                let mut selected = vec![false; links.len()];
                for (k, s) in sel.iter().enumerate() {
                    // A link by name, or every link at an endpoint (`laptop:eth0`) or node (`sw1`).
                    match selectors.get(s.trim()) {
                        Some(hits) => {
                            for id in hits {
                                selected[id.index()] = true;
                            }
                        }
                        // A link that failed is reported already.
                        None if self.unaccepted_links.contains(s.trim()) => {}
                        None => {
                            let names = suggestions
                                .get_or_insert_with(|| Suggestions::new(links.iter().map(|l| l.name.as_str())));
                            let hint = names.did_you_mean(s).or_else(|| {
                                Some(if links.is_empty() {
                                    "the lab has no links; add them under `links`".into()
                                } else {
                                    format!("links: {}", listing(links.iter().map(|l| l.name.as_str())))
                                })
                            });
                            self.err(path.key("links").index(k), format!("`{}` names no link", shown(s)), hint);
                        }
                    }
                }
                // In lab order, each link once.
                ids.extend(links.iter().filter(|l| selected[l.id.index()]).map(|l| l.id));
            }
        }
        Some(CaptureConfig {
            enabled: spec.enabled.unwrap_or(true),
            links: ids,
            dir: spec.dir.as_ref().map_or_else(|| PathBuf::from("captures").join(lab_name), PathBuf::from),
            format: spec.format.unwrap_or(CaptureFormat::Pcapng),
        })
    }
}

/// What a capture selector can name, with the links it selects: a link by its name, and each end
/// by its node's name (`sw1`) and, for a host, by `node:interface`.
fn selectors(nodes: &[Node], links: &[Link]) -> HashMap<String, Vec<LinkId>> {
    let mut out: HashMap<String, Vec<LinkId>> = HashMap::new();
    for l in links {
        let mut add = |key: String| {
            let ids = out.entry(key).or_default();
            if ids.last() != Some(&l.id) {
                ids.push(l.id);
            }
        };
        add(l.name.clone());
        for end in l.ends {
            let node = &nodes[end.node().index()];
            add(node.name.clone());
            if let (Attachment::HostInterface { interface, .. }, NodeKind::Host(h)) = (end, &node.kind) {
                if let Some(i) = h.interfaces.get(interface) {
                    add(format!("{}:{}", node.name, i.name));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::tests::two_site;
    use crate::topology::model::CaptureFormat;

    #[test]
    fn capture_defaults_to_every_link_in_the_lab_folder() {
        let lab = two_site();
        assert!(lab.capture.enabled);
        assert_eq!(lab.capture.links.len(), 7);
        assert_eq!(lab.capture.dir, PathBuf::from("captures/two-site"));
        assert_eq!(lab.capture.format, CaptureFormat::Pcapng);
        assert!(!lab.checksum_offload);
        assert_eq!(lab.seed, 1);
    }
}
