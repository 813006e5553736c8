//! `cargo bench`: the throughput figures of docs/performance.md.
//! Set NETLAB_BENCH_BYTES (such as `64MiB`) to move less than the default 256 MiB.

fn main() {
    let bytes = std::env::var("NETLAB_BENCH_BYTES")
        .ok()
        .and_then(|s| netlab::topology::parse::bytes(&s).ok())
        .unwrap_or(256 << 20);
    if let Err(e) = netlab::bench::run_all(bytes, 5, &mut std::io::stdout()) {
        eprintln!("bench failed: {e:#}");
        std::process::exit(1);
    }
}
