//! The capture selection: which links to capture, by link name, endpoint or node, and where.

use std::path::PathBuf;

use super::Cx;
use crate::topology::diag::{did_you_mean, listing, shown, JsonPath};
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
                for (k, s) in sel.iter().enumerate() {
                    // A link by name, or every link at an endpoint (`laptop:eth0`) or node (`sw1`).
                    let sel = s.trim();
                    let hits: Vec<LinkId> = links
                        .iter()
                        .filter(|l| l.name == sel || l.ends.iter().any(|e| endpoint_matches(nodes, *e, sel)))
                        .map(|l| l.id)
                        .collect();
                    match hits.first() {
                        Some(_) => {
                            for id in hits {
                                if !ids.contains(&id) {
                                    ids.push(id);
                                }
                            }
                        }
                        // A link that failed is reported already.
                        None if self.unaccepted_links.contains(s.trim()) => {}
                        None => {
                            let hint = did_you_mean(s, links.iter().map(|l| l.name.as_str())).or_else(|| {
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
            }
        }
        ids.sort();
        Some(CaptureConfig {
            enabled: spec.enabled.unwrap_or(true),
            links: ids,
            dir: spec.dir.as_ref().map_or_else(|| PathBuf::from("captures").join(lab_name), PathBuf::from),
            format: spec.format.unwrap_or(CaptureFormat::Pcapng),
        })
    }
}

/// Whether a capture selector names this link end: `node:interface` for a host, or the node's name.
fn endpoint_matches(nodes: &[Node], end: Attachment, sel: &str) -> bool {
    let node = &nodes[end.node().index()];
    if node.name == sel {
        return true;
    }
    match (end, &node.kind) {
        (Attachment::HostInterface { interface, .. }, NodeKind::Host(h)) => h
            .interfaces
            .get(interface)
            .is_some_and(|i| sel.split_once(':') == Some((node.name.as_str(), i.name.as_str()))),
        _ => false,
    }
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
        assert_eq!(lab.capture.links.len(), 5);
        assert_eq!(lab.capture.dir, PathBuf::from("captures/two-site"));
        assert_eq!(lab.capture.format, CaptureFormat::Pcapng);
        assert!(!lab.checksum_offload);
        assert_eq!(lab.seed, 1);
    }
}
