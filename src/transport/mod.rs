//! Transports: the edge that carries a link between sites. Frames that reach a remote link end
//! leave through the core's outbox; frames from a remote site come back in through the driver's
//! control channel, stamped with the paced clock's time.
//!
//! So far: the wire format (`codec`). The sockets (TCP, UDP, an `exec` child's pipes) come next;
//! they live on tokio at the edge and never wait on the core.
//!
//! Never imported here: the core's internals beyond its ids, ratatui, crossterm.

pub mod codec;
pub mod replay;
pub mod secure;
