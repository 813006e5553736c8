//! `cargo bench --bench link_models`: frames per second through one link direction, with the
//! model of latency, rate and loss alone, and with every feature of the link model on.

use std::time::{Duration, Instant};

use netlab::sim::link::{Arrival, Direction};
use netlab::sim::PacketId;
use netlab::time::SimTime;
use netlab::topology::{Distribution, GilbertElliott, LinkId, LinkModel, Side};

const FRAMES: u64 = 2_000_000;

fn run(model: LinkModel) -> Duration {
    let mut d = Direction::new(LinkId(0), Side::A, model, 1);
    let mut spare: Vec<Vec<u8>> = Vec::new();
    let start = Instant::now();
    let mut now = SimTime::ZERO;
    for i in 0..FRAMES {
        let mut frame = spare.pop().unwrap_or_else(|| vec![0u8; 1000]);
        frame.resize(1000, 0);
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        frame[14] = 0x45;
        if d.has_room_for(now, frame.len()) {
            d.push(now, PacketId(i), frame, &mut ());
        }
        while let Some(a) = d.pop_due(now, &mut ()) {
            match a {
                Arrival::Frame { frame, .. } | Arrival::Lost(frame) => spare.push(frame),
            }
        }
        now = now + Duration::from_micros(1);
    }
    start.elapsed()
}

fn main() {
    let plain = LinkModel {
        latency: Duration::from_millis(10),
        rate_bps: Some(10_000_000_000),
        loss: 0.01,
        queue_frames: 65_536,
        ..LinkModel::default()
    };
    let every = LinkModel {
        jitter: Duration::from_millis(2),
        distribution: Distribution::Normal,
        reorder: true,
        loss: 0.0,
        loss_model: Some(GilbertElliott { p: 0.01, r: 0.3, loss_good: 0.001, loss_bad: 0.5 }),
        duplicate: 0.01,
        corrupt: 0.01,
        queue_bytes: Some(16 << 20),
        ..plain
    };
    let fifo = LinkModel { reorder: false, ..every };
    for (name, model) in [
        ("latency, rate, loss", plain),
        ("every feature, FIFO", fifo),
        ("every feature, reordering (10k in flight)", every),
    ] {
        let t = run(model);
        #[allow(clippy::cast_precision_loss)]
        let rate = FRAMES as f64 / t.as_secs_f64();
        println!("link direction, {name:<44} {:>6.2} M frames/s", rate / 1e6);
    }
}
