//! Remote link ends: a lab split in two, joined by an in-process stand-in transport that carries
//! each side's outbox to the other's `inject`, gives the frames of the lab whole.

use netlab::sim::{Fate, FrameEvent, Observer, PacketId, Sim};
use netlab::stats::Counters;
use netlab::time::SimTime;
use netlab::topology::{self, Lab, NodeId};

/// Every frame delivered to a node: (time, link, from side, packet, bytes).
#[derive(Default)]
struct Delivered(Vec<(u64, u32, u8, PacketId, Vec<u8>)>);

impl Observer for Delivered {
    fn frame(&mut self, ev: &FrameEvent<'_>) {
        if ev.fate == Fate::Delivered {
            self.0.push((ev.time.as_nanos(), ev.link.0, ev.from as u8, ev.packet, ev.frame.to_vec()));
        }
    }
}

fn two_site() -> Lab {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/labs/two-site.json")).expect("lab");
    topology::load_str(&text, "two-site.json").expect("valid").in_memory()
}

fn whole(lab: &Lab) -> (Delivered, Sim) {
    let mut sim = Sim::new(lab, None);
    let mut obs = Delivered::default();
    let mut now = SimTime::ZERO;
    for _ in 0..10_000_000 {
        sim.step(now, &mut obs);
        if sim.clients_done() {
            return (obs, sim);
        }
        now = sim.next_deadline().expect("work left");
    }
    panic!("the whole lab did not finish");
}

/// The stand-in transport: it carries a frame that reached a remote end to the other part, where
/// it arrives at the time the sending side's link model gave it.
fn carry(from: &mut Sim, to: &mut Sim, obs: &mut impl Observer) -> usize {
    let frames: Vec<_> = from.drain_outbox().collect();
    let n = frames.len();
    for f in frames {
        to.inject(f.link, f.from, f.at, Some(f.packet), &f.frame, obs);
        from.recycle(f.frame);
    }
    n
}

#[test]
fn a_lab_split_in_two_gives_the_frames_of_the_lab_whole() {
    let lab = two_site();
    let (mut want, whole_sim) = whole(&lab);
    let hq = |n: NodeId| lab.node(n).site.as_deref() == Some("hq");
    let mut a = Sim::with_remote(&lab, None, |n| !hq(n));
    let mut b = Sim::with_remote(&lab, None, hq);
    let (mut oa, mut ob) = (Delivered::default(), Delivered::default());
    let mut counters = (Counters::new(&lab), Counters::new(&lab));
    let mut now = SimTime::ZERO;
    let mut crossed = 0;
    for _ in 0..10_000_000 {
        // Both parts run every instant to the end, passing frames across until none is left.
        loop {
            a.step(now, &mut (&mut oa, &mut counters.0));
            b.step(now, &mut (&mut ob, &mut counters.1));
            let n = carry(&mut a, &mut b, &mut ob) + carry(&mut b, &mut a, &mut oa);
            crossed += n;
            if n == 0 && a.next_deadline() != Some(now) && b.next_deadline() != Some(now) {
                break;
            }
        }
        if a.clients_done() && b.clients_done() {
            break;
        }
        now = [a.next_deadline(), b.next_deadline()].into_iter().flatten().min().expect("work left");
    }
    assert!(a.clients_done() && b.clients_done(), "the split lab finished");
    assert!(crossed > 1000, "the transfer crossed the stand-in transport: {crossed} frames");

    // The same deliveries, with the same packet ids, at the same times, on every link.
    let mut got = oa.0;
    got.extend(ob.0);
    let key = |d: &(u64, u32, u8, PacketId, Vec<u8>)| (d.0, d.1, d.2);
    got.sort_by_key(key);
    want.0.sort_by_key(key);
    assert_eq!(got.len(), want.0.len());
    for (g, w) in got.iter().zip(&want.0) {
        assert_eq!(g, w, "a delivery differs between the split lab and the lab whole");
    }
    // The apps say the same, each in the part that runs it.
    let mut outcomes: Vec<_> =
        a.app_reports().into_iter().chain(b.app_reports()).map(|r| (r.label, r.outcome)).collect();
    let mut whole_outcomes: Vec<_> = whole_sim.app_reports().into_iter().map(|r| (r.label, r.outcome)).collect();
    outcomes.sort_by(|x, y| x.0.cmp(&y.0));
    whole_outcomes.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(outcomes, whole_outcomes);
    // Each part counts the WAN's frames: the side that sends hands them to its outbox.
    let wan = lab.links.iter().position(|l| l.name == "wan").unwrap();
    assert_eq!(
        counters.0.links[wan].a_to_b.delivered_frames, counters.1.links[wan].a_to_b.delivered_frames,
        "what hq hands to the transport is what branch receives"
    );
}

#[test]
fn untrusted_injection_is_bounded() {
    let lab = two_site();
    let hq = |n: NodeId| lab.node(n).site.as_deref() == Some("hq");
    let mut a = Sim::with_remote(&lab, None, |n| !hq(n));
    let mut c = Counters::new(&lab);
    let wan = lab.links.iter().find(|l| l.name == "wan").unwrap().id;
    // A flood from the remote side, all due far in the future: the link holds a bounded number.
    for i in 0..70_000u32 {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[2, 0, 0, 0, (i >> 8) as u8, i as u8]);
        f.extend_from_slice(&[0x08, 0x06]);
        f.resize(60, 0);
        a.inject(wan, netlab::topology::Side::B, SimTime::from_millis(100_000), None, &f, &mut c);
    }
    let refused = c.links[wan.index()].b_to_a.drops.get("queue-full").copied().unwrap_or(0);
    assert_eq!(refused, 70_000 - netlab::sim::link::MAX_IN_FLIGHT as u64);
    let snap = a.snapshot();
    assert_eq!(snap.links[wan.index()].b_to_a.in_flight, netlab::sim::link::MAX_IN_FLIGHT);
    assert_eq!(snap.links[wan.index()].remote, [false, true]);
}
