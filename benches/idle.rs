//! `cargo bench --bench idle`: the CPU an idle lab costs over 10 s, paced at real time.

fn main() {
    if let Err(e) = netlab::bench::run_idle(10, &mut std::io::stdout()) {
        eprintln!("bench failed: {e:#}");
        std::process::exit(1);
    }
}
