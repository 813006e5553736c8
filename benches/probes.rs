//! `cargo bench --bench probes`: the cost of a ping request as the number in flight grows.

fn main() {
    if let Err(e) = netlab::bench::run_probes(&mut std::io::stdout()) {
        eprintln!("bench failed: {e:#}");
        std::process::exit(1);
    }
}
