//! `cargo bench --bench render`: the draw time of each screen of the terminal UI.

fn main() {
    if let Err(e) = netlab::bench::run_render(200, &mut std::io::stdout()) {
        eprintln!("bench failed: {e:#}");
        std::process::exit(1);
    }
}
