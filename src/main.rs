//! The `netlab` command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use netlab::runtime::{self, CaptureChoice, RunOptions};
use netlab::topology::{self, LoadError};

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
    },
    /// Run a lab.
    Run {
        /// The lab file (JSON).
        lab: PathBuf,
        /// Run without the terminal UI, printing progress and a summary (the only mode so far).
        #[arg(long)]
        headless: bool,
        /// Stop after this much simulated time, such as `10s` or `2m`. Default: when every client app is done.
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
        /// Jump from event to event instead of following the wall clock (in-memory labs only).
        #[arg(long)]
        virtual_time: bool,
        /// Seed for every random choice; overrides the lab file's.
        #[arg(long)]
        seed: Option<u64>,
        /// Write one pcapng file here (`-` for standard output) instead of the lab's capture settings.
        #[arg(long, conflicts_with = "no_capture")]
        capture: Option<PathBuf>,
        /// Capture nothing.
        #[arg(long)]
        no_capture: bool,
        /// Write the run's report as JSON to this file.
        #[arg(long)]
        report: Option<PathBuf>,
        /// No progress line.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Print the JSON Schema of the lab format.
    Schema,
    /// Measure throughput: a bare smoltcp loop against netlab, with and without capture.
    Bench {
        /// Bytes to move in each measurement, such as `256MiB`.
        #[arg(long, default_value = "256MiB")]
        bytes: String,
        /// Runs of each measurement; the medians are printed.
        #[arg(long, default_value_t = 5)]
        reps: usize,
    },
}

fn load(path: &std::path::Path) -> Result<topology::Lab, ExitCode> {
    match topology::load_file(path) {
        Ok(lab) => Ok(lab),
        Err(LoadError::Invalid(d)) => {
            eprintln!("{d}");
            Err(ExitCode::from(2))
        }
        Err(e @ LoadError::Io { .. }) => {
            eprintln!("error: {e}");
            Err(ExitCode::from(2))
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { lab } => match load(&lab) {
            Ok(l) => {
                println!("ok: {l}");
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Schema => {
            println!("{}", serde_json::to_string_pretty(&topology::schema()).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Command::Bench { bytes, reps } => match topology::parse::bytes(&bytes) {
            Ok(n) => match netlab::bench::run_all(n, reps, &mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(1)
                }
            },
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Run { lab, headless: _, duration, virtual_time, seed, capture, no_capture, report, quiet } => {
            let lab = match load(&lab) {
                Ok(l) => l,
                Err(code) => return code,
            };
            let stop = Arc::new(AtomicBool::new(false));
            for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                // A second signal while the first is being handled exits at once, as 128 + signal.
                let _ = signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, Arc::clone(&stop));
                let _ = signal_hook::flag::register(sig, Arc::clone(&stop));
            }
            let to_stdout = capture.as_deref().is_some_and(|p| p.as_os_str() == "-");
            if to_stdout && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                eprintln!("error: `--capture -` writes pcapng to standard output, which is a terminal");
                eprintln!("    hint: pipe it into Wireshark (`| wireshark -k -i -`) or tshark (`| tshark -i -`)");
                return ExitCode::from(2);
            }
            let opts = RunOptions {
                duration,
                virtual_time,
                seed,
                capture: match (no_capture, capture) {
                    (true, _) => CaptureChoice::Off,
                    (false, Some(p)) => CaptureChoice::File(p),
                    (false, None) => CaptureChoice::Lab,
                },
                progress: !quiet,
                stop,
            };
            match runtime::run(&lab, &opts) {
                Ok(r) => {
                    // With the capture on standard output, everything else goes to standard error.
                    if to_stdout {
                        eprint!("{}", r.summary());
                    } else {
                        print!("{}", r.summary());
                    }
                    if let Some(path) = report {
                        let json = serde_json::to_string_pretty(&r).unwrap_or_default();
                        if let Err(e) = std::fs::write(&path, json + "\n") {
                            eprintln!("error: cannot write {}: {e}", path.display());
                            return ExitCode::from(1);
                        }
                    }
                    if let Some(e) = &r.capture_error {
                        eprintln!("error: the capture failed: {e}");
                        return ExitCode::from(1);
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
    }
}
