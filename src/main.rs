//! The `netlab` command line.

use std::io::Write;
use std::path::{Path, PathBuf};
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
        /// Fail (exit code 2) when the lab has warnings, as when it has errors.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Run a lab.
    Run {
        /// The lab file (JSON).
        lab: PathBuf,
        /// Run without the terminal UI, printing progress and a summary (the only mode so far).
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
        /// Write the run's report as JSON to this file (`-`: standard output, the summary then going
        /// to standard error).
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

/// Writes `text` to standard output. A reader that went away (`| head`) is not an error: the rest
/// is dropped quietly, as `cat` would.
fn out(text: &str) {
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(text.as_bytes()).and_then(|()| o.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write to standard output: {e}");
        }
    }
}

fn is_stdout(p: &Path) -> bool {
    p.as_os_str() == "-"
}

/// Opens the report file before the run, so that a bad path fails at once, not after the run.
/// An existing report is kept until the new one is written. Returns whether the file is new.
fn open_report(path: &Path) -> std::io::Result<(std::fs::File, bool)> {
    netlab::capture::make_parent_dir(path)?;
    let new = !path.exists();
    let f = std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(path)?;
    Ok((f, new))
}

/// Replaces the report file's content with `json`.
fn write_report(f: &mut std::fs::File, json: &str) -> std::io::Result<()> {
    f.set_len(0)?;
    std::io::Seek::rewind(f)?;
    f.write_all(json.as_bytes())
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
                out(&if n == 0 { format!("ok: {l}\n") } else { format!("ok: {l}, {warnings}\n") });
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Schema => {
            out(&(serde_json::to_string_pretty(&topology::schema()).unwrap_or_default() + "\n"));
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
        Command::Run {
            lab,
            headless: _,
            duration,
            virtual_time,
            speed,
            replay,
            seed,
            capture,
            no_capture,
            report,
            quiet,
        } => {
            let lab = match load(&lab) {
                Ok(l) => l,
                Err(code) => return code,
            };
            let replay = match replay.as_deref().map(|p| (p, std::fs::read_to_string(p))) {
                None => Vec::new(),
                Some((p, Err(e))) => {
                    eprintln!("error: cannot read the command log {}: {e}", p.display());
                    return ExitCode::from(2);
                }
                Some((p, Ok(text))) => match netlab::sim::command::read_log(&text) {
                    Ok(log) => log,
                    Err(e) => {
                        eprintln!("error: {} is not a command log: {e}", p.display());
                        eprintln!("    hint: give a report written by `--report`, or a JSON array of logged commands");
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
                eprintln!("error: `--capture -` writes pcapng to standard output, which is a terminal");
                eprintln!("    hint: pipe it into Wireshark (`| wireshark -k -i -`) or tshark (`| tshark -i -`)");
                return ExitCode::from(2);
            }
            if capture.as_deref().is_some_and(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("pcap"))) {
                eprintln!("warning: `--capture` writes pcapng, whatever the file is called");
                eprintln!("    hint: for classic pcap, set `\"format\": \"pcap\"` under `capture` in the lab file");
            }
            let report_to_stdout = report.as_deref().is_some_and(is_stdout);
            if to_stdout && report_to_stdout {
                eprintln!("error: `--capture -` and `--report -` cannot both write to standard output");
                eprintln!("    hint: write the report to a file: `--report report.json`");
                return ExitCode::from(2);
            }
            let mut report_file = match report.as_deref().filter(|p| !is_stdout(p)).map(|p| (p, open_report(p))) {
                None => None,
                Some((_, Ok(opened))) => Some(opened),
                Some((p, Err(e))) => {
                    eprintln!("error: cannot write the report to {}: {e}", p.display());
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
            };
            let result = if quiet {
                runtime::run(&lab, &opts, &mut ())
            } else {
                runtime::run(&lab, &opts, &mut netlab::headless::ProgressLine::default())
            };
            match result {
                Ok(r) => {
                    let json = serde_json::to_string_pretty(&r).unwrap_or_default() + "\n";
                    if let Some((f, _)) = &mut report_file {
                        if let Err(e) = write_report(f, &json) {
                            let path = report.as_deref().unwrap_or(Path::new("-"));
                            eprintln!("error: cannot write the report to {}: {e}", path.display());
                            return ExitCode::from(1);
                        }
                    }
                    // With the capture or the report on standard output, the summary goes to
                    // standard error.
                    if to_stdout || report_to_stdout {
                        eprint!("{}", netlab::headless::summary(&r));
                    } else {
                        out(&netlab::headless::summary(&r));
                    }
                    if report_to_stdout {
                        out(&json);
                    }
                    if let Some(e) = &r.capture_error {
                        eprintln!("error: the capture failed: {e}");
                        return ExitCode::from(1);
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    if let (Some(p), Some((_, true))) = (report.as_deref(), &report_file) {
                        // Made for the run, which did not happen: leave no empty file behind.
                        let _ = std::fs::remove_file(p);
                    }
                    ExitCode::from(1)
                }
            }
        }
    }
}
