//! How long `netlab check` takes on large labs, for 10k, 50k and 100k nodes: a valid lab, and one
//! with a mistake or two for every node (see `tests/common/scale.rs`). Each step of the check is
//! linear or n·log n, so ten times the nodes should take about ten times as long.
//!
//! ```sh
//! cargo bench --bench check_scale
//! ```

use std::time::{Duration, Instant};

use netlab::topology::load_str;

#[path = "../tests/common/scale.rs"]
mod scale;

/// The median of `runs` timings of `f`.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut t: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    t.sort();
    t[runs / 2]
}

fn main() {
    println!("{:>8}  {:>12}  {:>12}  {:>9}", "nodes", "valid", "mistakes", "problems");
    for nodes in [10_000, 50_000, 100_000] {
        let valid = scale::valid(nodes);
        let wrong = scale::with_mistakes(nodes);
        let ok = median(3, || {
            let lab = load_str(&valid, "scale.json").unwrap_or_else(|d| panic!("{}", d.0[0]));
            assert_eq!(lab.nodes.len(), nodes);
        });
        let mut problems = 0;
        let bad = median(3, || problems = load_str(&wrong, "scale.json").map_or_else(|d| d.0.len(), |_| 0));
        assert_eq!(problems, scale::mistakes(nodes));
        println!("{nodes:>8}  {:>10.3} s  {:>10.3} s  {problems:>9}", ok.as_secs_f64(), bad.as_secs_f64());
    }
}
