//! The frames of every shipped lab, in virtual time at a fixed seed, pinned by a digest. A lab with
//! tunnels runs in memory here (`--in-memory`): a tunnel's timing is the real network's.
//!
//! A change to the core that changes what a lab puts on its links shows here. Change a digest only
//! on purpose, and say in the commit why the frames changed.

mod common;

use common::{frames_digest, read_pcapng, run_lab};

/// (lab, frames, SHA-256 of every frame's link, timestamp and bytes).
const GOLDEN: &[(&str, usize, &str)] = &[
    ("labs/single-lan.json", 12259, "144600aaf7efd5edebdec34b0214ff304d0699eddbec30757865ba77db188543"),
    ("labs/two-site.json", 15616, "51a7b5ba21fd1ce508833606845c5a75665a47d59ca55287a8a5818e1f1c4902"),
    // The same lab over a TCP tunnel: in memory, the same frames.
    ("labs/two-site-tcp.json", 15616, "51a7b5ba21fd1ce508833606845c5a75665a47d59ca55287a8a5818e1f1c4902"),
    ("labs/routed.json", 7130, "26abf2291a80a9f6eef517c53acd00d992d41f9a60b7e0b495a66cfeafa6bfc6"),
    ("labs/lossy-wan.json", 56584, "85b5cc5468226ffd8285a7e1bd1bdaa18780f530c21984faad19ea65d82ba113"),
    ("labs/flapping.json", 506, "a037052367727370bfe38061854244bea85e7694f523ca794d753170e362636e"),
    ("labs/services.json", 9814, "3d3c13c22e1af108a64b7f37226576fb0bd06da697cd1fb953758b60b6f40b95"),
];

#[test]
fn shipped_labs_put_the_same_frames_on_their_links() {
    let mut got = Vec::new();
    for (lab, _, _) in GOLDEN {
        let dir = tempfile::tempdir().expect("tmp");
        let cap = dir.path().join("golden.pcapng");
        run_lab(lab, &["--virtual-time", "--seed", "1", "--capture", cap.to_str().expect("utf-8")], dir.path());
        let frames = read_pcapng(&cap);
        got.push((*lab, frames.len(), frames_digest(&frames)));
    }
    let want: Vec<(&str, usize, String)> = GOLDEN.iter().map(|(l, n, d)| (*l, *n, (*d).to_string())).collect();
    assert_eq!(got, want, "the frames of a shipped lab changed");
}
