//! Inspection: what a frame says, which conversation it belongs to, and whether a display filter
//! selects it. The layer under the terminal UI and the headless report.
//!
//! - [`decode`](mod@decode): a frame into protocol layers with named fields and their byte ranges,
//!   a summary line; [`hex_dump`] lines that can highlight a field's bytes.
//! - [`flows`]: conversations (TCP and UDP by 5-tuple, ICMP echo by identifier, ARP), with
//!   counters, rates, TCP state as seen on the wire, retransmissions and RTT estimates.
//! - [`filter`]: Wireshark-style display filters over decoded frames (`docs/filters.md`).
//!
//! Pure: it sees bytes and the times it is given, nothing else. Never import ratatui, crossterm,
//! tokio or a clock here; the UI and the report depend on this module, not the other way round.
//! Every input is untrusted (frames from a lab, filter text from a person): nothing here panics on
//! it, and nothing grows without bound.

pub mod decode;
pub mod fields;
pub mod filter;
pub mod flows;
mod hexdump;
mod peek;

#[cfg(test)]
pub(crate) mod fixtures;

pub use decode::{decode, Decoded, Field, Layer, Summary, Value};
pub use filter::{Filter, FilterError, Packet};
pub use flows::{Flow, FlowId, FlowKey, FlowTable, TcpState};
pub use hexdump::{hex_dump, HexLine, BYTES_PER_LINE, HEX_WIDTH};
