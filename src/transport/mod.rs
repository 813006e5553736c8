//! Transports: the edge that carries a link between sites. Frames that reach a remote link end
//! (or the tunnel of a link between two sites of this process) leave through the core's outbox;
//! frames from a peer come back in through the driver's control channel, stamped with the paced
//! clock's time.
//!
//! - `codec`: the messages and their framing.
//! - `secure`, `replay`: the Noise handshakes and ciphers, and the datagram replay window.
//! - `tunnel`: what the driver holds (send queues, states, counters, the log).
//! - `net`: the sockets, on tokio: listeners, calls, handshakes, the loops that move frames.
//! - `udp`: a UDP socket that sends and receives in batches (GSO, GRO, `recvmmsg`).
//!
//! Never imported here: the core's internals beyond its ids and outbox frames, ratatui, crossterm.

pub mod bridges;
pub mod codec;
mod net;
pub mod replay;
pub mod secure;
pub mod tunnel;
mod udp;

pub use tunnel::{InFrame, Overrides, Placement, Role, Security, State, TunnelStatus, Tunnels};
