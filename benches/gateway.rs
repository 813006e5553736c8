//! `cargo bench --bench gateway`: downloads from a real server on loopback, directly and through
//! the lab (a forward, a router and an exit gateway; then across a UDP tunnel between two sites),
//! and iperf3 through the same paths when it is installed (see `netlab::bench_gateway`).

fn main() {
    let bytes = std::env::var("NETLAB_BENCH_BYTES").ok().and_then(|b| b.parse().ok()).unwrap_or(256 << 20);
    if let Err(e) = netlab::bench_gateway::run_gateway(bytes, 5, &mut std::io::stdout()) {
        eprintln!("bench failed: {e:#}");
        std::process::exit(1);
    }
}
