//! netlab: a network lab of userspace TCP/IP hosts, switches and links, with live captures.
//!
//! Layers, with dependencies pointing down only:
//!
//! ```text
//!  main.rs    CLI: parse args, load the lab, run it in the UI or headless
//!  ui/        front end: the terminal UI (ratatui, crossterm); model, keymap, pure views
//!  headless.rs front end: the progress line and the summary
//!  junit.rs   front end: the expectations as JUnit XML, for CI
//!  runtime/   the driver: owns the core, its observers and the paced clock; controls, replay, report
//!  output.rs  output files written whole (temporary name, then rename), paths checked for clashes
//!  sim/       PURE CORE: nodes with ports, the fabric of links, a scheduler, commands, snapshots;
//!             step(now), next_deadline(), apply(cmd), the outbox and inject for remote link ends
//!  capture/   observer: pcapng / pcap writers on their own thread
//!  stats/     observer: per-link counters and drops by reason
//!  inspect/   PURE: frames decoded into layers, conversations, display filters (for the UI and reports)
//!  topology/  lab file → validated model, with diagnostics
//!  layout.rs  a layered picture of the topology (pure): `netlab graph`, the UI's overview
//!  graph.rs   the topology as Graphviz dot, a Mermaid flowchart or a text picture of the layout
//!  time.rs    SimTime, the only notion of time the core knows
//! ```
//!
//! The core (`sim`, `topology`, `time`) and `inspect` never import tokio, ratatui, crossterm or
//! `std::time::Instant`.

pub mod bench;
pub mod bench_gateway;
pub mod bench_router;
pub mod bench_scale;
pub mod bench_tunnel;
pub mod capture;
pub mod graph;
pub mod headless;
pub mod inspect;
pub mod junit;
pub mod layout;
pub mod output;
pub mod runtime;
pub mod sim;
pub mod stats;
pub mod time;
pub mod topology;
pub mod transport;
pub mod ui;
