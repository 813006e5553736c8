//! `cargo bench --bench router`: the frames a second one router forwards against a direct link,
//! and `labs/routed.json` in virtual time against its switched twin (see `netlab::bench_router`).
//! Set NETLAB_BENCH_BYTES (such as `64MiB`) to move less than the default 256 MiB a transfer.

fn main() {
    let bytes = std::env::var("NETLAB_BENCH_BYTES")
        .ok()
        .and_then(|s| netlab::topology::parse::bytes(&s).ok())
        .unwrap_or(256 << 20);
    let r = netlab::bench_router::run_router(bytes, 5, netlab::bench_router::LAB_REPS, &mut std::io::stdout());
    if let Err(e) = r {
        eprintln!("bench failed: {e:#}");
        std::process::exit(1);
    }
}
