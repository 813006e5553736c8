//! The `netlab` command line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use netlab::output::AtomicFile;
use netlab::runtime::{self, CaptureChoice, RunOptions};
use netlab::topology::{self, LoadError};

/// `eprintln!` that does not panic: see [`err`].
macro_rules! errln {
    ($($arg:tt)*) => {
        err(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// A network lab in your terminal: userspace TCP/IP hosts, switches and links, with live captures.
#[derive(Parser)]
#[command(name = "netlab", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a lab file and report every problem at once.
    Check {
        /// The lab file (JSON).
        lab: PathBuf,
        /// Fail (exit code 2) when the lab has warnings, as when it has errors.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Run a lab.
    Run {
        /// The lab file (JSON).
        lab: PathBuf,
        /// Run without the terminal UI, printing a progress line and a summary (the default when
        /// standard output is not a terminal).
        #[arg(long)]
        headless: bool,
        /// Stop after this much simulated time, such as `10s` or `2m`. Default: when every client app is done.
        #[arg(long, value_parser = topology::parse::duration)]
        duration: Option<Duration>,
        /// Jump from event to event instead of following the wall clock (in-memory labs only); the
        /// same as `--speed max`.
        #[arg(long, conflicts_with = "speed")]
        virtual_time: bool,
        /// Simulated seconds per real second: 0.01 to 1000, or `max` for virtual time. Default 1.
        /// A run that cannot keep up runs late, and computes the same frames.
        #[arg(long, value_parser = runtime::Speed::parse)]
        speed: Option<runtime::Speed>,
        /// Apply the commands of a command log at their simulated times: a report written by
        /// `--report`, or a JSON array of `{"at_ns": …, "command": {…}}`.
        #[arg(long, value_name = "LOG")]
        replay: Option<PathBuf>,
        /// Seed for every random choice; overrides the lab file's.
        #[arg(long)]
        seed: Option<u64>,
        /// Write one pcapng file here (`-` for standard output) instead of the lab's capture settings.
        #[arg(long, conflicts_with = "no_capture")]
        capture: Option<PathBuf>,
        /// Capture nothing.
        #[arg(long)]
        no_capture: bool,
        /// Refuse to run a lab that has warnings (exit code 2), as `check --deny-warnings` does.
        #[arg(long)]
        deny_warnings: bool,
        /// Track the conversations (TCP, UDP, ICMP echo, ARP) and list them in the report and the
        /// summary. It reads every packet once, so it costs a little throughput.
        #[arg(long)]
        flows: bool,
        /// Write the run's report as JSON to this file (`-`: standard output, the summary then going
        /// to standard error).
        #[arg(long)]
        report: Option<PathBuf>,
        /// Write the lab's expectations, measured, as JUnit XML to this file (for CI): a test case
        /// each, a failure for each that does not hold.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// No progress line.
        #[arg(long, short)]
        quiet: bool,
        /// Run this site's nodes only; the other sites' nodes are remote, reached through the
        /// lab's tunnels. Without it, every site runs here, joined by real sockets on loopback.
        #[arg(long, value_name = "NAME")]
        site: Option<String>,
        /// Carry every link in memory, tunnels too: one process, no sockets, and so any speed and
        /// virtual time work, and a replay repeats the frames exactly.
        #[arg(long, conflicts_with_all = ["site", "listen", "connect", "key_file"])]
        in_memory: bool,
        /// The tunnels' pre-shared key, in a file (instead of the NETLAB_KEY variable).
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
        /// With --site: listen here instead of at the site's `listen` address, such as `0.0.0.0:7450`.
        #[arg(long, value_name = "ADDR", requires = "site")]
        listen: Option<String>,
        /// With --site: call a peer here instead of at the lab's `connect` address: `HOST:PORT`
        /// (the one peer this site calls) or `SITE=HOST:PORT`. Repeat for several peers.
        #[arg(long, value_name = "[SITE=]HOST:PORT", requires = "site")]
        connect: Vec<String>,
        /// A port forward besides the lab file's `forwards`: connections to the real LISTEN address
        /// become flows from lab host FROM to TO (`address:port` or `node:port`), such as
        /// `127.0.0.1:8080,laptop,10.2.0.20:80`; add `,udp` for UDP. Repeat for several.
        #[arg(long, value_name = "LISTEN,FROM,TO[,udp]")]
        forward: Vec<String>,
    },
    /// Run one site of a lab, its tunnel carried over standard input and output
    ///
    /// This is what a site's `exec` command runs, such as
    /// `ssh branch.example.net netlab tunnel two-site.json --site branch`: the site that started it
    /// talks to it through the command's pipes. Standard output carries the tunnel; the summary goes
    /// to standard error.
    Tunnel {
        /// The lab file (JSON), the same as the calling site's.
        lab: PathBuf,
        /// The site to run.
        #[arg(long, value_name = "NAME")]
        site: String,
        /// The tunnels' pre-shared key, in a file (instead of the NETLAB_KEY variable).
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
        /// Stop after this much simulated time. Default: when the calling site leaves, or every
        /// site's client apps are done.
        #[arg(long, value_parser = topology::parse::duration)]
        duration: Option<Duration>,
        /// Write one pcapng file here instead of the lab's capture settings.
        #[arg(long, conflicts_with = "no_capture")]
        capture: Option<PathBuf>,
        /// Capture nothing.
        #[arg(long)]
        no_capture: bool,
        /// Write the run's report as JSON to this file.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Print a new random key for the tunnels between sites
    ///
    /// 64 hex digits: give every site the same one, in NETLAB_KEY or in a file named by --key-file.
    Key,
    /// Print the JSON Schema of the lab format.
    Schema,
    /// Print a lab's topology: a Graphviz graph, a Mermaid flowchart, or a text picture.
    Graph {
        /// The lab file (JSON).
        lab: PathBuf,
        /// What to print: `dot` for Graphviz, `mermaid` for a Mermaid flowchart, `text` for a
        /// picture of the layered layout.
        #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
        format: GraphFormat,
        /// Columns the text picture may take, 20 or more. Default: the terminal's width, or 100.
        #[arg(long, value_parser = clap::value_parser!(u16).range(20..))]
        width: Option<u16>,
    },
    /// Measure throughput: a bare smoltcp loop against netlab, with and without capture.
    ///
    /// With `--scale`, measure generated labs of many hosts instead: build time, memory per host,
    /// frames per second.
    Bench {
        /// Bytes to move in each measurement, such as `256MiB`; at least 1 MiB.
        #[arg(long, default_value = "256MiB", value_parser = bench_bytes)]
        bytes: u64,
        /// Runs of each measurement; the medians are printed.
        #[arg(long, default_value_t = 5, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
        reps: usize,
        /// Run the scale bench: generated labs of `--hosts` hosts, each size in a process of its own.
        #[arg(long, conflicts_with_all = ["bytes", "reps"])]
        scale: bool,
        /// Measure the cost of a ping request as the number in flight grows (5,000 to 40,000).
        #[arg(long, conflicts_with_all = ["bytes", "reps", "scale"])]
        probes: bool,
        /// Measure how long each screen of the terminal UI takes to draw with a full packet ring.
        #[arg(long, conflicts_with_all = ["bytes", "reps", "scale", "probes"])]
        render: bool,
        /// Measure the CPU an idle lab costs over 10 s, paced at real time.
        #[arg(long, conflicts_with_all = ["bytes", "reps", "scale", "probes", "render"])]
        idle: bool,
        /// Measure the tunnels between sites: frames a second over UDP and TCP, encrypted and
        /// plaintext, and TCP goodput through them, against plain tokio sockets on loopback.
        #[arg(long, conflicts_with_all = ["bytes", "reps", "scale", "probes", "render", "idle"])]
        tunnel: bool,
        /// Measure routers: the frames a second one router forwards against a direct link (a
        /// transfer of `--bytes`, `--reps` runs), and labs/routed.json in virtual time.
        #[arg(long, conflicts_with_all = ["scale", "probes", "render", "idle", "tunnel"])]
        router: bool,
        /// Measure port forwards and exit gateways: downloads of `--bytes` from a real server on
        /// loopback, directly and through a forward, a router and a gateway (in one process, then
        /// across a UDP tunnel between two sites); iperf3 through the same paths when installed.
        #[arg(long, conflicts_with_all = ["scale", "probes", "render", "idle", "tunnel", "router"])]
        gateway: bool,
        /// Sizes of the scale bench, in hosts. Default: 10,100,1000,10000; with `--routers`,
        /// 100,1000,10000.
        #[arg(long, requires = "scale", value_delimiter = ',')]
        hosts: Option<Vec<usize>>,
        /// With `--scale`: measure each size with routers too (the switches joined four to a router,
        /// the traffic across it) against the same size without them.
        #[arg(long, requires = "scale")]
        routers: bool,
        /// Hosts per switch (per LAN segment) in the scale bench.
        #[arg(long, requires = "scale", default_value_t = netlab::bench_scale::PER_SWITCH)]
        per_switch: usize,
        /// One measurement of the scale bench, in this process (`scale:N`, `idle:N` or `routed:N`): what
        /// `--scale` runs in its child processes.
        #[arg(long, requires = "scale", hide = true)]
        scale_job: Option<netlab::bench_scale::Job>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum GraphFormat {
    Dot,
    Mermaid,
    Text,
}

/// The exit code of a run that ended, whose expectations do not all hold: 1, as for a run that
/// could not start or finish (a CI job fails either way; the summary says which); 2 stays a wrong
/// lab or command line.
const EXPECTATIONS_FAILED: u8 = 1;

/// The least `bench` measures (`bench::run_all` refuses less).
const BENCH_MIN_BYTES: u64 = 1 << 20;

/// `bench --bytes`: a size, at least [`BENCH_MIN_BYTES`]; anything else is a command-line error.
fn bench_bytes(s: &str) -> Result<u64, String> {
    let n = topology::parse::bytes(s)?;
    if n < BENCH_MIN_BYTES {
        return Err(format!("measure at least 1 MiB, not {n} bytes"));
    }
    Ok(n)
}

fn load(path: &std::path::Path) -> Result<topology::Lab, ExitCode> {
    match topology::load_file(path) {
        Ok(lab) => Ok(lab),
        Err(LoadError::Invalid(d)) => {
            errln!("{d}");
            Err(ExitCode::from(2))
        }
        Err(e @ LoadError::Io { .. }) => {
            errln!("error: {e}");
            Err(ExitCode::from(2))
        }
    }
}

/// Writes `text` to standard output. A reader that went away (`| head`) is not an error: the rest
/// is dropped quietly, as `cat` would.
fn out(text: &str) {
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(text.as_bytes()).and_then(|()| o.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            errln!("error: cannot write to standard output: {e}");
        }
    }
}

/// Writes `text` to standard error. A reader that went away (`2>&1 | head`) is not an error, as for
/// [`out`]; nor is any other failure, as there is nowhere left to report it. (`eprintln!` panics.)
fn err(text: &str) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(text.as_bytes()).and_then(|()| e.flush());
}

/// Whether `e` is, or was caused by, a write to a pipe whose reader went away.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe))
}

fn is_stdout(p: &Path) -> bool {
    p.as_os_str() == "-"
}

/// `netlab bench --scale`: every size in a child process of this program, or one `job` here.
fn scale_bench(hosts: &[usize], per_switch: usize, job: Option<netlab::bench_scale::Job>, routers: bool) -> ExitCode {
    use netlab::bench_scale::{run_all, run_job, run_routed, Job, ROUTED_ROUNDS};
    let run =
        |hosts: &[usize], per_switch, spawn: Option<&dyn Fn(Job) -> std::process::Command>, out: &mut dyn Write| {
            if routers {
                run_routed(hosts, per_switch, ROUTED_ROUNDS, spawn, out)
            } else {
                run_all(hosts, per_switch, spawn, out)
            }
        };
    if per_switch < 2 || hosts.iter().any(|&n| n < 2) {
        errln!("error: --hosts and --per-switch must be 2 or more");
        return ExitCode::from(2);
    }
    let r = match job {
        Some(job) => run_job(job, per_switch).map(|line| out(&(line + "\n"))),
        None => match std::env::current_exe() {
            Ok(exe) => {
                let spawn = |job: Job| {
                    let mut c = std::process::Command::new(&exe);
                    c.args([
                        "bench",
                        "--scale",
                        "--per-switch",
                        &per_switch.to_string(),
                        "--scale-job",
                        &job.to_string(),
                    ]);
                    c
                };
                run(hosts, per_switch, Some(&spawn), &mut std::io::stdout())
            }
            Err(_) => run(hosts, per_switch, None, &mut std::io::stdout()),
        },
    };
    bench_exit(r)
}

/// The exit code of a bench: nobody reading the figures any more (`| head`) is not an error, as
/// with `cat`; anything else is, with its message.
fn bench_exit(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            errln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Says why the report cannot be written to `path`, in words, with what to do about it.
fn report_error(path: &Path, e: &std::io::Error) -> String {
    output_error(("the report", "--report", "report.json", " (`-` for standard output)"), path, e)
}

/// Says why the JUnit file cannot be written to `path`.
fn junit_error(path: &Path, e: &std::io::Error) -> String {
    output_error(("the JUnit file", "--junit", "junit.xml", ""), path, e)
}

/// Says why an output (`what`, given by option `flag`; `file` a name for it; `or` another way to
/// write it) cannot be written to `path`.
fn output_error((what, flag, file, or): (&str, &str, &str, &str), path: &Path, e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    let p = path.display();
    let (why, hint) = match e.kind() {
        K::StorageFull | K::QuotaExceeded => (
            "the disk or device is full".to_string(),
            format!("free some space, or give `{flag}` a file on another disk{or}"),
        ),
        K::PermissionDenied => {
            ("permission denied".to_string(), format!("give `{flag}` a file in a folder you may write to{or}"))
        }
        K::ReadOnlyFilesystem => {
            ("the file system is read-only".to_string(), format!("give `{flag}` a file on a writable disk{or}"))
        }
        K::IsADirectory => ("it is a folder".to_string(), format!("name a file in it: `{flag} {p}/{file}`")),
        // The system's words, without their number: `Not a directory (os error 20)`.
        _ => (
            e.to_string().split(" (os error").next().unwrap_or_default().to_string(),
            format!("give `{flag}` a regular file that can be written{or}"),
        ),
    };
    format!("error: cannot write {what} to {p}: {why}\n    hint: {hint}\n")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { lab, deny_warnings } => match load(&lab) {
            Ok(l) => {
                for w in &l.warnings {
                    eprintln!("{w}");
                }
                let n = l.warnings.len();
                let warnings = format!("{n} warning{}", if n == 1 { "" } else { "s" });
                if deny_warnings && n > 0 {
                    eprintln!("{warnings} found (denied by --deny-warnings)");
                    return ExitCode::from(2);
                }
                // A lab of several sites says how they are joined: `2 sites, 1 tunnel (udp)`.
                let sites = if l.sites.len() > 1 {
                    let t = l.tunnels.len();
                    let kinds: std::collections::BTreeSet<&str> =
                        l.tunnels.iter().map(|t| t.transport.as_str()).collect();
                    let kinds = kinds.into_iter().collect::<Vec<_>>().join(", ");
                    let kinds = if kinds.is_empty() { String::new() } else { format!(" ({kinds})") };
                    format!(", {} sites, {t} tunnel{}{kinds}", l.sites.len(), if t == 1 { "" } else { "s" })
                } else {
                    String::new()
                };
                // Events and expectations, when the lab has them: `, 4 events, 2 expectations`.
                let count = |n: usize, what: &str| format!(", {n} {what}{}", if n == 1 { "" } else { "s" });
                let mut timed = String::new();
                if !l.events.is_empty() {
                    timed += &count(l.events.len(), "event");
                }
                if !l.expect.is_empty() {
                    timed += &count(l.expect.len(), "expectation");
                }
                // What reaches real sockets: `, 2 forwards, 1 exit gateway`.
                if !l.forwards.is_empty() {
                    timed += &count(l.forwards.len(), "forward");
                }
                let gateways = l.nodes.iter().filter(|n| n.kind.name() == "gateway").count();
                if gateways > 0 {
                    timed += &count(gateways, "exit gateway");
                }
                out(&if n == 0 {
                    format!("ok: {l}{sites}{timed}\n")
                } else {
                    format!("ok: {l}{sites}{timed}, {warnings}\n")
                });
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Graph { lab, format, width } => match load(&lab) {
            Ok(l) => {
                out(&match format {
                    GraphFormat::Dot => netlab::graph::dot(&l),
                    GraphFormat::Mermaid => netlab::graph::mermaid(&l),
                    GraphFormat::Text => {
                        let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout())
                            .then(|| crossterm::terminal::size().ok())
                            .flatten()
                            .map(|(cols, _)| cols);
                        netlab::graph::text(&l, usize::from(width.or(terminal).unwrap_or(100)))
                    }
                });
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Schema => {
            out(&(serde_json::to_string_pretty(&topology::schema()).unwrap_or_default() + "\n"));
            ExitCode::SUCCESS
        }
        Command::Bench { scale: true, hosts, per_switch, scale_job, routers, .. } => {
            let default: &[usize] =
                if routers { &netlab::bench_scale::ROUTED_SIZES } else { &netlab::bench_scale::SIZES };
            scale_bench(hosts.as_deref().unwrap_or(default), per_switch, scale_job, routers)
        }
        Command::Bench { tunnel: true, .. } => bench_exit(netlab::bench_tunnel::run_tunnel(
            3,
            std::time::Duration::from_secs(1),
            std::time::Duration::from_secs(2),
            &mut std::io::stdout(),
        )),
        Command::Bench { router: true, bytes, reps, .. } => bench_exit(netlab::bench_router::run_router(
            bytes,
            reps,
            netlab::bench_router::LAB_REPS,
            &mut std::io::stdout(),
        )),
        Command::Bench { gateway: true, bytes, reps, .. } => {
            bench_exit(netlab::bench_gateway::run_gateway(bytes, reps, &mut std::io::stdout()))
        }
        Command::Bench { idle: true, .. } => bench_exit(netlab::bench::run_idle(10, &mut std::io::stdout())),
        Command::Bench { render: true, .. } => bench_exit(netlab::bench::run_render(200, &mut std::io::stdout())),
        Command::Bench { probes: true, .. } => bench_exit(netlab::bench::run_probes(&mut std::io::stdout())),
        Command::Bench { bytes, reps, .. } => bench_exit(netlab::bench::run_all(bytes, reps, &mut std::io::stdout())),
        Command::Run {
            lab,
            headless,
            duration,
            virtual_time,
            speed,
            replay,
            seed,
            capture,
            no_capture,
            deny_warnings,
            flows,
            report,
            junit,
            quiet,
            site,
            in_memory,
            key_file,
            listen,
            connect,
            forward,
        } => run_lab(RunArgs {
            lab,
            headless,
            duration,
            virtual_time,
            speed,
            replay,
            seed,
            capture,
            no_capture,
            deny_warnings,
            flows,
            report,
            junit,
            quiet,
            site,
            in_memory,
            key_file,
            listen,
            connect,
            forward,
            stdio: false,
        }),
        Command::Tunnel { lab, site, key_file, duration, capture, no_capture, report } => run_lab(RunArgs {
            lab,
            headless: true,
            duration,
            virtual_time: false,
            speed: None,
            replay: None,
            seed: None,
            capture,
            no_capture,
            deny_warnings: false,
            flows: false,
            report,
            junit: None,
            quiet: true,
            site: Some(site),
            in_memory: false,
            key_file,
            listen: None,
            connect: Vec::new(),
            forward: Vec::new(),
            stdio: true,
        }),
        Command::Key => match netlab::transport::secure::Psk::generate_hex() {
            Ok(key) => {
                out(&(key + "\n"));
                ExitCode::SUCCESS
            }
            Err(e) => {
                errln!("error: {e}");
                ExitCode::from(1)
            }
        },
    }
}

/// What `run` (and `tunnel`) were asked.
struct RunArgs {
    lab: PathBuf,
    headless: bool,
    duration: Option<Duration>,
    virtual_time: bool,
    speed: Option<runtime::Speed>,
    replay: Option<PathBuf>,
    seed: Option<u64>,
    capture: Option<PathBuf>,
    no_capture: bool,
    deny_warnings: bool,
    flows: bool,
    report: Option<PathBuf>,
    junit: Option<PathBuf>,
    quiet: bool,
    site: Option<String>,
    in_memory: bool,
    key_file: Option<PathBuf>,
    listen: Option<String>,
    connect: Vec<String>,
    forward: Vec<String>,
    /// `netlab tunnel`: standard output carries the tunnel.
    stdio: bool,
}

fn run_lab(a: RunArgs) -> ExitCode {
    let RunArgs {
        lab,
        headless,
        duration,
        virtual_time,
        speed,
        replay,
        seed,
        capture,
        no_capture,
        deny_warnings,
        flows,
        report,
        junit,
        quiet,
        site,
        in_memory,
        key_file,
        listen,
        connect,
        forward,
        stdio,
    } = a;
    let lab_path = lab;
    let mut lab = match load(&lab_path) {
        Ok(l) => l,
        Err(code) => return code,
    };
    for w in &lab.warnings {
        errln!("{w}");
    }
    if deny_warnings && !lab.warnings.is_empty() {
        let n = lab.warnings.len();
        errln!("{n} warning{} found (denied by --deny-warnings)", if n == 1 { "" } else { "s" });
        return ExitCode::from(2);
    }
    let mut forwards = Vec::new();
    for f in &forward {
        match topology::forward_for_lab(&lab, f) {
            Ok(f) => forwards.push(f),
            Err(problems) => {
                for p in problems {
                    errln!("error: --forward {}: {p}", topology::diag::shown(f));
                }
                return ExitCode::from(2);
            }
        }
    }
    // Which sites run here.
    let placement = match site.as_deref() {
        None => netlab::transport::Placement::All,
        Some(name) => match lab.site_index(name) {
            Some(i) if stdio => netlab::transport::Placement::Stdio(i),
            Some(i) => netlab::transport::Placement::Site(i),
            None => {
                let sites: Vec<&str> = lab.sites.iter().map(|s| s.name.as_str()).collect();
                errln!("error: the lab has no site `{}`", topology::diag::shown(name));
                if sites.is_empty() {
                    errln!("    hint: give nodes `\"site\": …` in the lab file to split it into sites");
                } else {
                    errln!("    hint: its sites: {}", sites.join(", "));
                }
                return ExitCode::from(2);
            }
        },
    };
    let mut connect_to = Vec::new();
    for c in &connect {
        let (site, addr) = match c.split_once('=') {
            Some((s, a)) => (Some(s.trim().to_string()), a.trim().to_string()),
            None => (None, c.trim().to_string()),
        };
        if !topology::validate::valid_host_port(&addr) {
            errln!("error: --connect `{}` is not HOST:PORT or SITE=HOST:PORT", topology::diag::shown(c));
            return ExitCode::from(2);
        }
        if let Some(s) = site.as_deref().filter(|s| lab.site_index(s).is_none()) {
            errln!("error: --connect names no site `{}`", topology::diag::shown(s));
            return ExitCode::from(2);
        }
        connect_to.push((site, addr));
    }
    let connect = connect_to;
    if let Some(l) = listen.as_deref().filter(|l| l.parse::<std::net::SocketAddr>().is_err()) {
        errln!("error: --listen `{}` is not an address to listen on, such as 0.0.0.0:7450", topology::diag::shown(l));
        return ExitCode::from(2);
    }
    if replay.is_some() {
        // The log holds every command of the run it replays, its events' too.
        lab.events.clear();
    }
    let replay = match replay.as_deref().map(|p| (p, std::fs::read_to_string(p))) {
        None => Vec::new(),
        Some((p, Err(e))) => {
            errln!("error: cannot read the command log {}: {e}", p.display());
            return ExitCode::from(2);
        }
        Some((p, Ok(text))) => match netlab::sim::command::read_log(&text) {
            Ok(log) => log,
            Err(e) => {
                errln!("error: {} is not a command log: {e}", p.display());
                errln!("    hint: give a report written by `--report`, or a JSON array of logged commands");
                return ExitCode::from(2);
            }
        },
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while the first is being handled exits at once, as 128 + signal.
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, Arc::clone(&stop));
        let _ = signal_hook::flag::register(sig, Arc::clone(&stop));
    }
    let to_stdout = capture.as_deref().is_some_and(is_stdout);
    if to_stdout && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        errln!("error: `--capture -` writes pcapng to standard output, which is a terminal");
        errln!("    hint: pipe it into Wireshark (`| wireshark -k -i -`) or tshark (`| tshark -i -`)");
        return ExitCode::from(2);
    }
    if capture.as_deref().is_some_and(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("pcap"))) {
        errln!("warning: `--capture` writes pcapng, whatever the file is called");
        errln!("    hint: for classic pcap, set `\"format\": \"pcap\"` under `capture` in the lab file");
    }
    let report_to_stdout = report.as_deref().is_some_and(is_stdout);
    if to_stdout && report_to_stdout {
        errln!("error: `--capture -` and `--report -` cannot both write to standard output");
        errln!("    hint: write the report to a file: `--report report.json`");
        return ExitCode::from(2);
    }
    // Two outputs on one file, or an output over the lab, would lose one of them.
    let mut uses = vec![("the lab file", lab_path.as_path())];
    uses.extend(capture.as_deref().filter(|_| !no_capture).map(|p| ("--capture", p)));
    uses.extend(report.as_deref().map(|p| ("--report", p)));
    uses.extend(junit.as_deref().map(|p| ("--junit", p)));
    if let Some((a, b, path)) = netlab::output::clash(&uses) {
        errln!("error: {a} and {b} are the same file ({})", path.display());
        errln!("    hint: give each output a path of its own");
        return ExitCode::from(2);
    }
    // The report is written under a temporary name, made now so that a bad path fails
    // before the run, and renamed over its name once whole.
    let report_file = match report.as_deref().filter(|p| !is_stdout(p)).map(|p| (p, AtomicFile::create(p))) {
        None => None,
        Some((_, Ok(f))) => Some(f),
        Some((p, Err(e))) => {
            err(&report_error(p, &e));
            return ExitCode::from(1);
        }
    };
    if junit.as_deref().is_some_and(is_stdout) {
        errln!("error: `--junit` writes a file, not standard output");
        errln!("    hint: give it a path, such as `--junit results.xml`");
        return ExitCode::from(2);
    }
    let junit_file = match junit.as_deref().map(|p| (p, AtomicFile::create(p))) {
        None => None,
        Some((_, Ok(f))) => Some(f),
        Some((p, Err(e))) => {
            err(&junit_error(p, &e));
            return ExitCode::from(1);
        }
    };
    let opts = RunOptions {
        duration,
        speed: if virtual_time { runtime::Speed::Max } else { speed.unwrap_or(runtime::Speed::Factor(1.0)) },
        seed,
        replay,
        capture: match (no_capture, capture) {
            (true, _) => CaptureChoice::Off,
            (false, Some(p)) => CaptureChoice::File(p),
            (false, None) => CaptureChoice::Lab,
        },
        stop,
        keep_running: false,
        flows,
        in_memory,
        placement,
        key_file,
        overrides: netlab::transport::Overrides { listen, connect },
        log_tunnels: !quiet || stdio,
        forwards,
    };
    // The terminal UI when standard output is a terminal and nothing else writes to it.
    let tui = !stdio
        && !headless
        && !to_stdout
        && !report_to_stdout
        && std::io::IsTerminal::is_terminal(&std::io::stdout())
        && std::io::IsTerminal::is_terminal(&std::io::stdin());
    let result = if tui {
        netlab::ui::run(&lab, &opts)
    } else if quiet {
        runtime::run(&lab, &opts, &mut ())
    } else {
        runtime::run(&lab, &opts, &mut netlab::headless::ProgressLine)
    };
    match result {
        Ok(r) => {
            let json = serde_json::to_string_pretty(&r).unwrap_or_default() + "\n";
            if let Some(f) = report_file {
                if let Err(e) = f.write_all_and_commit(json.as_bytes()) {
                    err(&report_error(report.as_deref().unwrap_or(Path::new("-")), &e));
                    return ExitCode::from(1);
                }
            }
            if let Some(f) = junit_file {
                if let Err(e) = f.write_all_and_commit(netlab::junit::junit(&r).as_bytes()) {
                    err(&junit_error(junit.as_deref().unwrap_or(Path::new("-")), &e));
                    return ExitCode::from(1);
                }
            }
            // With the capture or the report on standard output, the summary goes to
            // standard error.
            if to_stdout || report_to_stdout || stdio {
                err(&netlab::headless::summary(&r));
            } else {
                out(&netlab::headless::summary(&r));
            }
            if report_to_stdout {
                out(&json);
            }
            if let Some(e) = &r.capture_error {
                errln!("error: the capture failed: {e}");
                return ExitCode::from(1);
            }
            // A run someone stopped (Ctrl-C, SIGTERM, the UI's `q`) prints its expectations, but was
            // stopped before it could tell: only a run that ended by itself gives them a verdict.
            let stopped = matches!(r.ended, runtime::Ended::Signal | runtime::Ended::Stopped);
            if !r.expectations_hold() && !stopped {
                return ExitCode::from(EXPECTATIONS_FAILED);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            // The run did not happen: the report's temporary file goes, an old report stays.
            drop(report_file);
            drop(junit_file);
            errln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
