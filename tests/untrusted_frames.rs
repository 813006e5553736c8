//! Frames that arrive from outside (tunnels, later) are untrusted: random bytes, truncated and
//! mutated frames injected into a running lab must never panic it, must be counted, and must not
//! stop the lab's own traffic.

use netlab::sim::{DropReason, Sim};
use netlab::stats::Counters;
use netlab::time::SimTime;
use netlab::topology::{self, LinkId, Side};
use proptest::prelude::*;

fn lab() -> topology::Lab {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/labs/single-lan.json")).expect("lab");
    topology::load_str(&text, "single-lan.json").unwrap_or_else(|e| panic!("{e}"))
}

/// A real frame to mutate: an ARP request, as the laptop sends it.
const ARP: [u8; 42] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x10, 0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 0x06,
    0x04, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x10, 10, 0, 0, 10, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2,
];

fn frames() -> impl Strategy<Value = Vec<(u8, bool, Vec<u8>)>> {
    let random = proptest::collection::vec(any::<u8>(), 0..1600);
    let mutated = (proptest::collection::vec((0..42usize, any::<u8>()), 1..6), 0..=42usize).prop_map(|(edits, len)| {
        let mut f = ARP.to_vec();
        for (i, b) in edits {
            f[i] = b;
        }
        f.truncate(len);
        f
    });
    proptest::collection::vec((0..3u8, any::<bool>(), prop_oneof![random, mutated]), 1..40)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn injected_garbage_never_panics_and_the_lab_still_works(batch in frames()) {
        let lab = lab();
        let mut sim = Sim::new(&lab, None);
        let mut c = Counters::new(&lab);
        let mut now = SimTime::ZERO;
        let mut injected = false;
        let mut short = 0;
        for _ in 0..2_000_000 {
            sim.step(now, &mut c);
            if !injected && now >= SimTime::from_millis(150) {
                // Mid-run, while the transfer and the echoes are going on.
                for (link, from_a, f) in &batch {
                    short += usize::from(f.len() < 14);
                    sim.inject(LinkId(u32::from(*link)), if *from_a { Side::A } else { Side::B }, now, None, f, &mut c);
                }
                injected = true;
            }
            if sim.clients_done() {
                break;
            }
            now = sim.next_deadline().expect("work is left while clients run");
        }
        prop_assert!(sim.clients_done(), "the lab finished");
        prop_assert_eq!(c.drops(DropReason::Malformed), short as u64, "runts are counted as malformed");
        for a in sim.app_reports() {
            let label = a.label;
            match a.outcome {
                netlab::sim::apps::Outcome::TcpSink { bytes, corrupt_bytes, .. } => {
                    prop_assert_eq!((bytes, corrupt_bytes), (4 << 20, 0), "{}", label);
                }
                netlab::sim::apps::Outcome::TcpEcho { echoed, sent, error, .. } => {
                    prop_assert_eq!(error, None);
                    prop_assert_eq!(echoed, sent);
                }
                _ => {}
            }
        }
    }
}
