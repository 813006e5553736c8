//! `cargo bench --bench tunnel`: frames a second through the tunnels between sites (UDP and TCP,
//! encrypted and plaintext) and TCP goodput through them, each against a plain tokio baseline
//! measured in the same run (see `netlab::bench_tunnel`).

use std::time::Duration;

fn main() {
    let r = netlab::bench_tunnel::run_tunnel(3, Duration::from_secs(1), Duration::from_secs(2), &mut std::io::stdout());
    if let Err(e) = r {
        eprintln!("bench failed: {e:#}");
        std::process::exit(1);
    }
}
