//! `cargo bench --bench router_scale`: the scale bench's labs with routers (the switches joined four
//! to a router, the traffic across it) against the same labs without them, at 100 to 10,000 hosts:
//! build time, memory per host and frames a second (see `netlab::bench_scale::run_routed`). Each
//! lab runs in a process of its own: this program again, with NETLAB_SCALE_JOB set.
//! NETLAB_SCALE_HOSTS (such as `100,1000`) chooses the sizes.

use netlab::bench_scale::{run_job, run_routed, Job, PER_SWITCH, ROUTED_ROUNDS, ROUTED_SIZES};

const JOB: &str = "NETLAB_SCALE_JOB";

fn main() {
    if let Some(job) = std::env::var(JOB).ok().and_then(|j| j.parse::<Job>().ok()) {
        match run_job(job, PER_SWITCH) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("{job} failed: {e:#}");
                std::process::exit(1);
            }
        }
        return;
    }
    let sizes: Vec<usize> = std::env::var("NETLAB_SCALE_HOSTS")
        .ok()
        .and_then(|s| s.split(',').map(|n| n.trim().parse().ok().filter(|&n| n >= 2)).collect())
        .unwrap_or_else(|| ROUTED_SIZES.to_vec());
    let exe = std::env::current_exe().ok();
    let spawn = |job: Job| {
        let mut c = std::process::Command::new(exe.as_deref().unwrap_or(std::path::Path::new("router_scale")));
        c.env(JOB, job.to_string());
        c
    };
    let spawn: Option<&dyn Fn(Job) -> std::process::Command> = if exe.is_some() { Some(&spawn) } else { None };
    if let Err(e) = run_routed(&sizes, PER_SWITCH, ROUTED_ROUNDS, spawn, &mut std::io::stdout()) {
        eprintln!("bench failed: {e:#}");
        std::process::exit(1);
    }
}
