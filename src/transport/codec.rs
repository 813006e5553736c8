//! The wire format of a tunnel between sites: messages, and their framing on a byte stream.
//!
//! A stream (TCP, or an `exec` child's stdin and stdout) carries messages each behind a 4-byte
//! big-endian length; a datagram (UDP) carries one message and no length. A message is a tag byte
//! and its fields:
//!
//! ```text
//! hello  0x01  version u16 · lab digest [u8; 32] · site name (u8 length, then UTF-8)
//! frame  0x02  link u32 · from side u8 (0 A, 1 B) · packet id u64 · the Ethernet frame
//! bye    0x03
//! done   0x04  (the sender's own apps have finished)
//! alive  0x05  (a keepalive: nothing else to say)
//! ```
//!
//! Everything here is read from the network and so untrusted: a decoder never panics, never holds
//! more than one message of at most [`MAX_MESSAGE`] bytes, and answers a bad length or tag with an
//! error (the connection is then closed), not with a guess.

use std::fmt;

use crate::sim::PacketId;
use crate::topology::{LinkId, Side};

/// The version of this format; a peer of another version is refused at hello.
pub const VERSION: u16 = 1;
/// The largest Ethernet frame a tunnel carries: a 9,000-byte MTU with its headers, with room.
pub const MAX_FRAME: usize = 9216;
/// The largest message: a frame and its header.
pub const MAX_MESSAGE: usize = MAX_FRAME + 1 + 4 + 1 + 8;
/// The longest site name a hello carries.
pub const MAX_SITE_NAME: usize = 64;

/// One message between two sites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// The first message each way: who is speaking, and about which lab (the digest of the lab
    /// file, so that two sites running different labs do not talk).
    Hello { version: u16, lab: [u8; 32], site: String },
    /// A frame that reached the remote end of a link, for the local end.
    Frame { link: LinkId, from: Side, packet: PacketId, frame: Vec<u8> },
    /// The sender is leaving.
    Bye,
    /// The sender's client apps have all finished (a run of sites ends when every site's have).
    Done,
    /// Nothing to say: the link is alive.
    Keepalive,
}

/// Why bytes from a peer are not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("a message of {0} bytes is longer than the {MAX_MESSAGE} a tunnel carries")]
    TooLong(usize),
    #[error("an empty message")]
    Empty,
    #[error("unknown message tag {0:#04x}")]
    UnknownTag(u8),
    #[error("a {what} message cut short ({len} bytes)")]
    Short { what: &'static str, len: usize },
    #[error("a frame from side {0}, which is neither A (0) nor B (1)")]
    BadSide(u8),
    #[error("a site name that is not UTF-8, or longer than {MAX_SITE_NAME} bytes")]
    BadName,
    #[error("{0} bytes after the end of a {1} message")]
    Trailing(usize, &'static str),
}

impl Message {
    /// The message's bytes, without a length.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Message::Hello { version, lab, site } => {
                out.push(0x01);
                out.extend_from_slice(&version.to_be_bytes());
                out.extend_from_slice(lab);
                let name = &site.as_bytes()[..site.len().min(MAX_SITE_NAME)];
                out.push(name.len() as u8);
                out.extend_from_slice(name);
            }
            Message::Frame { link, from, packet, frame } => {
                out.push(0x02);
                out.extend_from_slice(&link.0.to_be_bytes());
                out.push(from.index() as u8);
                out.extend_from_slice(&packet.0.to_be_bytes());
                out.extend_from_slice(&frame[..frame.len().min(MAX_FRAME)]);
            }
            Message::Bye => out.push(0x03),
            Message::Done => out.push(0x04),
            Message::Keepalive => out.push(0x05),
        }
    }

    /// The message's bytes behind their 4-byte length, for a stream.
    pub fn encode_framed(&self, out: &mut Vec<u8>) {
        let at = out.len();
        out.extend_from_slice(&[0; 4]);
        self.encode(out);
        let len = u32::try_from(out.len() - at - 4).unwrap_or(u32::MAX);
        out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }

    /// Reads one message (a datagram, or a stream message without its length).
    pub fn decode(b: &[u8]) -> Result<Message, CodecError> {
        if b.len() > MAX_MESSAGE {
            return Err(CodecError::TooLong(b.len()));
        }
        let (&tag, body) = b.split_first().ok_or(CodecError::Empty)?;
        match tag {
            0x01 => {
                let short = CodecError::Short { what: "hello", len: b.len() };
                if body.len() < 2 + 32 + 1 {
                    return Err(short);
                }
                let version = u16::from_be_bytes([body[0], body[1]]);
                let mut lab = [0u8; 32];
                lab.copy_from_slice(&body[2..34]);
                let n = usize::from(body[34]);
                let name = body.get(35..35 + n).ok_or(short)?;
                if n > MAX_SITE_NAME {
                    return Err(CodecError::BadName);
                }
                let site = std::str::from_utf8(name).map_err(|_| CodecError::BadName)?.to_string();
                let rest = body.len() - 35 - n;
                if rest > 0 {
                    return Err(CodecError::Trailing(rest, "hello"));
                }
                Ok(Message::Hello { version, lab, site })
            }
            0x02 => {
                if body.len() < 4 + 1 + 8 {
                    return Err(CodecError::Short { what: "frame", len: b.len() });
                }
                let link = LinkId(u32::from_be_bytes([body[0], body[1], body[2], body[3]]));
                let from = match body[4] {
                    0 => Side::A,
                    1 => Side::B,
                    s => return Err(CodecError::BadSide(s)),
                };
                let mut id = [0u8; 8];
                id.copy_from_slice(&body[5..13]);
                Ok(Message::Frame { link, from, packet: PacketId(u64::from_be_bytes(id)), frame: body[13..].to_vec() })
            }
            0x03 if body.is_empty() => Ok(Message::Bye),
            0x03 => Err(CodecError::Trailing(body.len(), "bye")),
            0x04 if body.is_empty() => Ok(Message::Done),
            0x04 => Err(CodecError::Trailing(body.len(), "done")),
            0x05 if body.is_empty() => Ok(Message::Keepalive),
            0x05 => Err(CodecError::Trailing(body.len(), "keepalive")),
            t => Err(CodecError::UnknownTag(t)),
        }
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::Hello { version, site, .. } => write!(f, "hello v{version} from site {}", site.escape_debug()),
            Message::Frame { link, from, packet, frame } => {
                write!(f, "frame on link {} from {from:?}, packet {packet}, {} bytes", link.0, frame.len())
            }
            Message::Bye => write!(f, "bye"),
            Message::Done => write!(f, "done"),
            Message::Keepalive => write!(f, "keepalive"),
        }
    }
}

/// The largest message on a stream, with the room an encrypted message needs (a type byte, a
/// session index, a counter and an authentication tag).
pub const MAX_WIRE: usize = MAX_MESSAGE + 64;

/// Reads messages out of a byte stream as the bytes come, in pieces of any size. It holds at most
/// one message: a length past [`MAX_MESSAGE`] is an error at once, before its bytes arrive.
#[derive(Debug, Default)]
pub struct Decoder {
    framer: Framer,
}

impl Decoder {
    /// Takes the bytes that arrived; returns the messages they complete, in order. After an error
    /// the stream is broken: the caller closes it.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Message>) -> Result<(), CodecError> {
        let mut err = None;
        self.framer.feed(bytes, MAX_MESSAGE, |m| match Message::decode(m) {
            Ok(msg) => {
                out.push(msg);
                true
            }
            Err(e) => {
                err = Some(e);
                false
            }
        })?;
        err.map_or(Ok(()), Err)
    }

    /// Bytes of a message still waiting for the rest of it.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.framer.pending()
    }
}

/// Cuts a byte stream into the messages behind their 4-byte lengths, whatever they hold (plain
/// messages, or encrypted ones). It holds at most one message of at most the given size.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    /// Takes the bytes that arrived and hands each whole message to `each`, which says whether to
    /// go on. A length past `max` (or of zero) is an error before its bytes arrive; after an error,
    /// or a `false` from `each`, the stream is broken and the caller closes it.
    pub fn feed(
        &mut self,
        mut bytes: &[u8],
        max: usize,
        mut each: impl FnMut(&[u8]) -> bool,
    ) -> Result<(), CodecError> {
        while !bytes.is_empty() {
            // A whole message with its length in the new bytes, nothing held: no copy.
            if self.buf.is_empty() && bytes.len() >= 4 {
                let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
                if len > max {
                    return Err(CodecError::TooLong(len));
                }
                if len == 0 {
                    return Err(CodecError::Empty);
                }
                if bytes.len() >= 4 + len {
                    if !each(&bytes[4..4 + len]) {
                        return Ok(());
                    }
                    bytes = &bytes[4 + len..];
                    continue;
                }
            }
            // First the length, then the message it announces; never more than that at once.
            let want = if self.buf.len() < 4 {
                4
            } else {
                let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
                if len > max {
                    return Err(CodecError::TooLong(len));
                }
                4 + len
            };
            let take = (want - self.buf.len()).min(bytes.len());
            self.buf.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.buf.len() == 4 {
                let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
                if len > max {
                    return Err(CodecError::TooLong(len));
                }
                if len == 0 {
                    return Err(CodecError::Empty);
                }
            }
            if self.buf.len() > 4 && self.buf.len() == want {
                let go_on = each(&self.buf[4..]);
                self.buf.clear();
                if !go_on {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Bytes of a message still waiting for the rest of it.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Message> {
        vec![
            Message::Hello { version: VERSION, lab: [7; 32], site: "hq".into() },
            Message::Frame {
                link: LinkId(4),
                from: Side::B,
                packet: PacketId(0x0000_0200_0000_0011),
                frame: vec![0xff; 60],
            },
            Message::Frame { link: LinkId(0), from: Side::A, packet: PacketId(1), frame: vec![1; MAX_FRAME] },
            Message::Bye,
            Message::Done,
            Message::Keepalive,
        ]
    }

    #[test]
    fn messages_round_trip_as_datagrams_and_on_a_stream() {
        let mut stream = Vec::new();
        for m in samples() {
            let mut d = Vec::new();
            m.encode(&mut d);
            assert_eq!(Message::decode(&d), Ok(m.clone()));
            m.encode_framed(&mut stream);
        }
        // Whole, then a byte at a time: the same messages either way.
        for piece in [stream.len(), 1, 7] {
            let (mut dec, mut got) = (Decoder::default(), Vec::new());
            for chunk in stream.chunks(piece) {
                assert_eq!(dec.feed(chunk, &mut got), Ok(()));
            }
            assert_eq!(got, samples());
            assert_eq!(dec.pending(), 0);
        }
    }

    #[test]
    fn a_frame_message_has_fixed_bytes() {
        let mut b = Vec::new();
        Message::Frame { link: LinkId(2), from: Side::B, packet: PacketId(0x0102), frame: vec![0xaa, 0xbb] }
            .encode_framed(&mut b);
        assert_eq!(b, [0, 0, 0, 16, 0x02, 0, 0, 0, 2, 1, 0, 0, 0, 0, 0, 0, 1, 2, 0xaa, 0xbb]);
    }

    #[test]
    fn bad_bytes_are_errors() {
        assert_eq!(Message::decode(&[]), Err(CodecError::Empty));
        assert_eq!(Message::decode(&[0x09]), Err(CodecError::UnknownTag(9)));
        assert!(matches!(Message::decode(&[0x02, 0, 0, 0]), Err(CodecError::Short { .. })));
        assert_eq!(Message::decode(&[0x02, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 1]), Err(CodecError::BadSide(2)));
        assert_eq!(Message::decode(&[0x03, 0]), Err(CodecError::Trailing(1, "bye")));
        let mut hello = vec![0x01, 0, 1];
        hello.extend_from_slice(&[0; 32]);
        hello.extend_from_slice(&[2, 0xff, 0xfe]);
        assert_eq!(Message::decode(&hello), Err(CodecError::BadName));
        // A stream that announces more than a tunnel carries is refused at its length.
        let mut dec = Decoder::default();
        assert_eq!(dec.feed(&[0xff, 0xff, 0xff, 0xff], &mut Vec::new()), Err(CodecError::TooLong(0xffff_ffff)));
        assert_eq!(Decoder::default().feed(&[0, 0, 0, 0], &mut Vec::new()), Err(CodecError::Empty));
    }

    proptest::proptest! {
        /// Whatever a peer sends, the decoder answers without panicking and holds at most one
        /// message's bytes.
        #[test]
        fn any_bytes_are_read_safely(chunks in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), 0..20)) {
            let mut dec = Decoder::default();
            let mut out = Vec::new();
            for c in &chunks {
                if dec.feed(c, &mut out).is_err() {
                    break;
                }
                proptest::prop_assert!(dec.pending() <= 4 + MAX_MESSAGE);
            }
            for c in &chunks {
                let _ = Message::decode(c);
            }
        }
    }
}
