//! The security layer of a tunnel, without any I/O: a handshake that proves both sides hold the
//! same key and run the same lab, then encrypted, authenticated messages.
//!
//! The handshake is Noise `NNpsk0_25519_ChaChaPoly_BLAKE2s`: fresh ephemeral keys on both sides,
//! mixed with the pre-shared key from the first message on, so a sender without the key gets no
//! answer and learns nothing. Each side's [`Identity`] travels encrypted in its handshake message,
//! and each side checks the other's before the tunnel is up.
//!
//! Every message of this format starts with a type byte; the unencrypted format of
//! [`codec`](super::codec) uses tags below `0x10`, so a side can tell a peer without a key.
//!
//! ```text
//! stream (TCP, exec; each message behind the stream's 4-byte length):
//!   init      0x10 · noise message 1 (ephemeral key · encrypted identity)
//!   response  0x11 · noise message 2 (ephemeral key · encrypted identity)
//!   data      0x12 · ciphertext of one codec message (the nonce is implicit: messages count)
//!
//! datagram (UDP; one message per datagram, sessions named by indices as in WireGuard):
//!   init      0x10 · sender index u32 · noise message 1
//!   response  0x11 · sender index u32 · receiver index u32 · noise message 2
//!   data      0x12 · receiver index u32 · counter u64 · ciphertext (nonce = counter)
//! ```
//!
//! A datagram handshake message's encrypted payload starts with a copy of its plain header, so
//! the indices are authenticated too. A datagram's counter is checked against a [`ReplayWindow`]
//! before it is decrypted and marked only after.
//!
//! Everything read here is untrusted: no input panics, and nothing longer than [`MAX_SEALED`] is
//! looked at.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use blake2::{Blake2s256, Digest};
use snow::{HandshakeState, StatelessTransportState, TransportState};

use super::codec::{self, MAX_MESSAGE, MAX_SITE_NAME};
use super::replay::{ReplayWindow, MAX_COUNTER};

/// The Noise protocol of every tunnel.
const PATTERN: &str = "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s";
/// Noise prologues: a stream handshake message is never taken for a datagram one, nor the reverse.
const STREAM_PROLOGUE: &[u8] = b"netlab tunnel, stream";
const DATAGRAM_PROLOGUE: &[u8] = b"netlab tunnel, datagram";
/// Hashed before a passphrase, so that its key is netlab's own.
const PASSPHRASE_DOMAIN: &[u8] = b"netlab tunnel key from a passphrase, v1\0";

/// The type byte of a handshake init.
pub const HANDSHAKE_INIT: u8 = 0x10;
/// The type byte of a handshake response.
pub const HANDSHAKE_RESPONSE: u8 = 0x11;
/// The type byte of a data message.
pub const DATA: u8 = 0x12;
/// The longest message of this format; anything longer is refused unread.
pub const MAX_SEALED: usize = MAX_MESSAGE + 64;
/// The longest plaintext a data message carries: one codec message.
pub const MAX_PLAIN: usize = MAX_MESSAGE;
/// The longest lab name an [`Identity`] carries.
pub const MAX_LAB_NAME: usize = 255;
/// The shortest passphrase taken for a key.
pub const MIN_PASSPHRASE: usize = 16;
/// How many sites a [`InitGuard`] remembers.
pub const MAX_GUARDED_SITES: usize = 1024;

const TAG: usize = 16;
const DH: usize = 32;
const DATAGRAM_INIT_HEADER: usize = 1 + 4;
const DATAGRAM_RESPONSE_HEADER: usize = 1 + 4 + 4;
const DATAGRAM_DATA_HEADER: usize = 1 + 4 + 8;

/// The key both sides of a tunnel share. Its `Debug` does not show it, and it has no `==`.
#[derive(Clone)]
pub struct Psk([u8; 32]);

/// Why text is not a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the key is empty: make one with `netlab key` and give it as NETLAB_KEY or in a key file")]
    Empty,
    #[error(
        "a key of {0} characters is too short: give the 64 hex digits that `netlab key` prints, \
         or a passphrase of at least {MIN_PASSPHRASE} characters"
    )]
    TooShort(usize),
    /// The system gave no random bytes for a new key.
    #[error("the system's source of randomness failed: {0}")]
    NoRandomness(String),
}

/// Why a handshake could not start on this side (not the peer's doing): the Noise state could not
/// be built, or the system gave no random bytes for an ephemeral key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the Noise handshake could not start: {0}")]
pub struct HandshakeError(String);

impl From<snow::Error> for HandshakeError {
    fn from(e: snow::Error) -> Self {
        HandshakeError(e.to_string())
    }
}

impl fmt::Debug for Psk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Psk(..)")
    }
}

impl Psk {
    /// From the text of NETLAB_KEY or a key file's contents (surrounding whitespace trimmed):
    /// exactly 64 hex digits is the key itself; any other text of at least [`MIN_PASSPHRASE`]
    /// characters is a passphrase, hashed (BLAKE2s, after a netlab-specific prefix) into a key. A
    /// passphrase is only as strong as it is hard to guess: prefer the digits of `netlab key`.
    pub fn parse(text: &str) -> Result<Psk, KeyError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(KeyError::Empty);
        }
        if let Some(key) = parse_hex(text) {
            return Ok(Psk(key));
        }
        let chars = text.chars().count();
        if chars < MIN_PASSPHRASE {
            return Err(KeyError::TooShort(chars));
        }
        let mut hash = Blake2s256::new();
        hash.update(PASSPHRASE_DOMAIN);
        hash.update(text.as_bytes());
        Ok(Psk(hash.finalize().into()))
    }

    /// A fresh random key, for a run that holds every site in one process.
    pub fn random() -> Result<Psk, KeyError> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| KeyError::NoRandomness(e.to_string()))?;
        Ok(Psk(key))
    }

    /// 64 lowercase hex digits of a fresh random key, for `netlab key`.
    pub fn generate_hex() -> Result<String, KeyError> {
        use std::fmt::Write;
        Ok(Psk::random()?.0.iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        }))
    }
}

fn parse_hex(text: &str) -> Option<[u8; 32]> {
    let b = text.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let digit = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    let mut key = [0u8; 32];
    for (k, pair) in key.iter_mut().zip(b.chunks_exact(2)) {
        *k = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(key)
}

/// What both sides of a tunnel must agree on, and who is speaking. Sent inside the first two
/// handshake messages, encrypted and authenticated under the key, so the handshake binds them.
///
/// ```text
/// version u16 · lab (u8 length, UTF-8) · links [u8; 32] · site (u8 length, UTF-8) · time_ns u64
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The wire format's version ([`codec::VERSION`]).
    pub version: u16,
    /// The lab's name, at most [`MAX_LAB_NAME`] bytes of UTF-8 (longer is cut when encoded).
    pub lab: String,
    /// The digest of the lab's cross-site links.
    pub links: [u8; 32],
    /// The speaking site's name, at most [`MAX_SITE_NAME`] bytes (longer is cut when encoded).
    pub site: String,
    /// The sender's Unix time in nanoseconds when it started this handshake: a responder refuses
    /// an init that is not newer than the last it accepted from that site. See [`now_ns`].
    pub time_ns: u64,
}

impl Identity {
    /// Appends the identity's bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.version.to_be_bytes());
        let lab = cut(&self.lab, MAX_LAB_NAME);
        out.push(lab.len() as u8);
        out.extend_from_slice(lab.as_bytes());
        out.extend_from_slice(&self.links);
        let site = cut(&self.site, MAX_SITE_NAME);
        out.push(site.len() as u8);
        out.extend_from_slice(site.as_bytes());
        out.extend_from_slice(&self.time_ns.to_be_bytes());
    }

    /// Reads an identity, all of `b`. Bytes that do not parse but start with another version
    /// than [`codec::VERSION`] are [`Refusal::WrongVersion`]: a later format may differ.
    pub fn decode(b: &[u8]) -> Result<Identity, Refusal> {
        let version = match b {
            [hi, lo, ..] => u16::from_be_bytes([*hi, *lo]),
            _ => return Err(Refusal::Malformed("identity cut short")),
        };
        match Self::decode_rest(version, &b[2..]) {
            Err(Refusal::Malformed(_)) if version != codec::VERSION => Err(Refusal::WrongVersion { theirs: version }),
            r => r,
        }
    }

    fn decode_rest(version: u16, mut b: &[u8]) -> Result<Identity, Refusal> {
        let lab = take_name(&mut b, MAX_LAB_NAME)?;
        let links: [u8; 32] = take(&mut b, 32)?.try_into().map_err(|_| Refusal::Malformed("identity cut short"))?;
        let site = take_name(&mut b, MAX_SITE_NAME)?;
        let time: [u8; 8] = take(&mut b, 8)?.try_into().map_err(|_| Refusal::Malformed("identity cut short"))?;
        if !b.is_empty() {
            return Err(Refusal::Malformed("bytes after an identity"));
        }
        Ok(Identity { version, lab, links, site, time_ns: u64::from_be_bytes(time) })
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character.
fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], Refusal> {
    if b.len() < n {
        return Err(Refusal::Malformed("identity cut short"));
    }
    let (head, rest) = b.split_at(n);
    *b = rest;
    Ok(head)
}

fn take_name(b: &mut &[u8], max: usize) -> Result<String, Refusal> {
    let n = usize::from(*take(b, 1)?.first().unwrap_or(&0));
    if n > max {
        return Err(Refusal::Malformed("a name too long in an identity"));
    }
    let name = take(b, n)?;
    std::str::from_utf8(name).map(str::to_string).map_err(|_| Refusal::Malformed("a name not UTF-8 in an identity"))
}

/// A Unix time in nanoseconds for [`Identity::time_ns`]: never the same twice in this process and
/// never going backwards, even when the system clock does. (A site restarted with its clock set
/// back is refused as a replay by a responder that remembers it, until its clock catches up.)
#[must_use]
pub fn now_ns() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now =
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last.saturating_add(1));
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// Why a message from a peer was refused. [`kind`](Refusal::kind) names each for counters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The handshake or message did not decrypt: the peer has another key, or the bytes were
    /// damaged or forged.
    #[error("the message did not decrypt: the peer has another key, or the bytes were damaged or forged")]
    WrongKey,
    /// The peer proved the key, but runs another lab (its name, or its cross-site links, differ).
    #[error("the peer runs lab {theirs:?}, not this one: the lab's name or its cross-site links differ")]
    WrongLab { theirs: String },
    /// The peer speaks another version of the wire format.
    #[error("the peer speaks version {theirs} of the tunnel format, this side version {}", codec::VERSION)]
    WrongVersion { theirs: u16 },
    /// The peer speaks the unencrypted format to a side that has a key.
    #[error("the peer speaks the unencrypted tunnel format: give both sides the same key, or neither")]
    Plaintext,
    /// A datagram counter already seen or too old, or a handshake init not newer than the last
    /// one accepted from that site.
    #[error("a replayed or too old message")]
    Replay,
    /// Too short, too long, or of an unknown type.
    #[error("a malformed message: {0}")]
    Malformed(&'static str),
    /// A data datagram, or a handshake response, for no live session.
    #[error("a message for no live session")]
    UnknownSession,
    /// Not the peer's doing: this side could not answer (its handshake state could not be built).
    #[error("this side could not answer: {0}")]
    Local(String),
}

impl Refusal {
    /// A short stable name, for counters: `wrong-key`, `wrong-lab`, `wrong-version`,
    /// `plaintext`, `replay`, `malformed`, `unknown-session`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::WrongKey => "wrong-key",
            Refusal::WrongLab { .. } => "wrong-lab",
            Refusal::WrongVersion { .. } => "wrong-version",
            Refusal::Plaintext => "plaintext",
            Refusal::Replay => "replay",
            Refusal::Malformed(_) => "malformed",
            Refusal::UnknownSession => "unknown-session",
            Refusal::Local(_) => "local-error",
        }
    }
}

/// Why [`StreamCipher::try_seal`] or [`DatagramCipher::try_seal`] sealed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("a plaintext of {0} bytes is longer than the {MAX_PLAIN} a message carries")]
    TooLong(usize),
    #[error("the session has used all its nonces: a new handshake is needed")]
    Exhausted,
}

/// The type of a message of this format: `Ok(0x10 | 0x11 | 0x12)`, or [`Refusal::Plaintext`] for a
/// message of the unencrypted format, or [`Refusal::Malformed`] for anything else (empty, longer
/// than [`MAX_SEALED`], an unknown type).
pub fn message_type(msg: &[u8]) -> Result<u8, Refusal> {
    if msg.len() > MAX_SEALED {
        return Err(Refusal::Malformed("a message too long"));
    }
    match msg.first() {
        None => Err(Refusal::Malformed("an empty message")),
        Some(&t @ (HANDSHAKE_INIT | HANDSHAKE_RESPONSE | DATA)) => Ok(t),
        Some(0x01..=0x0f) => Err(Refusal::Plaintext),
        Some(_) => Err(Refusal::Malformed("an unknown message type")),
    }
}

/// The message's body after its type byte, if it is of type `want`.
fn body<'a>(msg: &'a [u8], want: u8, what: &'static str) -> Result<&'a [u8], Refusal> {
    if message_type(msg)? != want {
        return Err(Refusal::Malformed(what));
    }
    Ok(&msg[1..])
}

/// The peer's identity against ours: the version first, then the lab.
fn check_peer(me: &Identity, peer: &Identity) -> Result<(), Refusal> {
    if peer.version != me.version {
        return Err(Refusal::WrongVersion { theirs: peer.version });
    }
    if peer.lab != cut(&me.lab, MAX_LAB_NAME) || peer.links != me.links {
        return Err(Refusal::WrongLab { theirs: peer.lab.clone() });
    }
    Ok(())
}

fn builder<'a>(psk: &'a Psk, prologue: &'a [u8]) -> Result<snow::Builder<'a>, snow::Error> {
    snow::Builder::new(PATTERN.parse()?).psk(0, &psk.0)?.prologue(prologue)
}

fn initiator(psk: &Psk, prologue: &[u8]) -> Result<HandshakeState, snow::Error> {
    builder(psk, prologue)?.build_initiator()
}

fn responder(psk: &Psk, prologue: &[u8]) -> Result<HandshakeState, snow::Error> {
    builder(psk, prologue)?.build_responder()
}

/// Appends a handshake message: `header`, then Noise's message with `payload`.
fn write_handshake(hs: &mut HandshakeState, header: &[u8], payload: &[u8]) -> Result<Vec<u8>, snow::Error> {
    let mut msg = vec![0; header.len() + DH + payload.len() + TAG];
    msg[..header.len()].copy_from_slice(header);
    let n = hs.write_message(payload, &mut msg[header.len()..])?;
    msg.truncate(header.len() + n);
    Ok(msg)
}

/// Reads Noise's handshake message and returns its payload.
fn read_handshake(hs: &mut HandshakeState, noise: &[u8]) -> Result<Vec<u8>, Refusal> {
    if noise.len() < DH + TAG {
        return Err(Refusal::Malformed("a handshake message cut short"));
    }
    let mut payload = vec![0; noise.len()];
    let n = hs.read_message(noise, &mut payload).map_err(|_| Refusal::WrongKey)?;
    payload.truncate(n);
    Ok(payload)
}

/// The handshake of a stream tunnel (TCP, exec). The caller frames each message with the
/// stream's length.
pub struct StreamHandshake {
    state: HandshakeState,
    me: Identity,
}

/// What a stream handshake's message brings.
#[derive(Debug)]
pub enum Step {
    /// Responder: send `reply` (a whole message, type 0x11), and the tunnel is up.
    Reply { reply: Vec<u8>, cipher: StreamCipher, peer: Identity },
    /// Initiator: the tunnel is up.
    Done { cipher: StreamCipher, peer: Identity },
}

impl fmt::Debug for StreamHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamHandshake")
            .field("initiator", &self.state.is_initiator())
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

impl StreamHandshake {
    /// The dialling side: returns the handshake and its first message (type 0x10).
    pub fn initiate(psk: &Psk, me: &Identity) -> Result<(StreamHandshake, Vec<u8>), HandshakeError> {
        let mut state = initiator(psk, STREAM_PROLOGUE)?;
        let mut payload = Vec::new();
        me.encode(&mut payload);
        let msg = write_handshake(&mut state, &[HANDSHAKE_INIT], &payload)?;
        Ok((StreamHandshake { state, me: me.clone() }, msg))
    }

    /// The listening side, waiting for the first message.
    pub fn respond(psk: &Psk, me: &Identity) -> Result<StreamHandshake, HandshakeError> {
        Ok(StreamHandshake { state: responder(psk, STREAM_PROLOGUE)?, me: me.clone() })
    }

    /// Reads the peer's handshake message. The responder checks the peer's [`Identity`] against
    /// its own (version, then lab name and links digest) before replying: a mismatch is refused
    /// and no reply is produced, so an unauthenticated or mismatched sender gets nothing back.
    /// The initiator checks the responder's identity the same way.
    ///
    /// A responder accepts a replayed init too (its reply is of no use without the initiator's
    /// ephemeral key, and no data message will open); a caller that must not let a replay
    /// replace a live tunnel to that site checks `peer.time_ns` with an [`InitGuard`].
    pub fn read(mut self, msg: &[u8]) -> Result<Step, Refusal> {
        let initiator = self.state.is_initiator();
        let noise = if initiator {
            body(msg, HANDSHAKE_RESPONSE, "not a handshake response")?
        } else {
            body(msg, HANDSHAKE_INIT, "not a handshake init")?
        };
        let payload = read_handshake(&mut self.state, noise)?;
        let peer = Identity::decode(&payload)?;
        check_peer(&self.me, &peer)?;
        if initiator {
            let state = self.state.into_transport_mode().map_err(|_| Refusal::WrongKey)?;
            return Ok(Step::Done { cipher: StreamCipher { state }, peer });
        }
        let mut mine = Vec::new();
        self.me.encode(&mut mine);
        let reply = write_handshake(&mut self.state, &[HANDSHAKE_RESPONSE], &mine).map_err(|_| Refusal::WrongKey)?;
        let state = self.state.into_transport_mode().map_err(|_| Refusal::WrongKey)?;
        Ok(Step::Reply { reply, cipher: StreamCipher { state }, peer })
    }
}

/// The two ciphers of a stream tunnel once it is up. Messages on a stream arrive in order, so
/// each side counts them for its nonces: a message lost, repeated or reordered fails to open.
pub struct StreamCipher {
    state: TransportState,
}

impl fmt::Debug for StreamCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamCipher")
            .field("sent", &self.state.sending_nonce())
            .field("received", &self.state.receiving_nonce())
            .finish_non_exhaustive()
    }
}

impl StreamCipher {
    /// Appends one whole encrypted message (type 0x12 and ciphertext) for `plain` to `out`. When
    /// [`try_seal`](Self::try_seal) refuses, nothing is appended.
    pub fn seal(&mut self, plain: &[u8], out: &mut Vec<u8>) {
        let _ = self.try_seal(plain, out);
    }

    /// As [`seal`](Self::seal), saying why nothing was appended: a plaintext longer than
    /// [`MAX_PLAIN`], or a session past [`MAX_COUNTER`] messages (which never reuses a nonce;
    /// a new handshake is the cure).
    pub fn try_seal(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<(), SealError> {
        if plain.len() > MAX_PLAIN {
            return Err(SealError::TooLong(plain.len()));
        }
        if self.is_exhausted() {
            return Err(SealError::Exhausted);
        }
        let at = out.len();
        out.push(DATA);
        out.resize(at + 1 + plain.len() + TAG, 0);
        match self.state.write_message(plain, &mut out[at + 1..]) {
            Ok(n) => {
                out.truncate(at + 1 + n);
                Ok(())
            }
            Err(_) => {
                out.truncate(at);
                Err(SealError::Exhausted)
            }
        }
    }

    /// Whether this side has sent so many messages that it must not send more.
    #[must_use]
    pub fn is_exhausted(&self) -> bool {
        self.state.sending_nonce() > MAX_COUNTER
    }

    /// Decrypts one whole message into `out` (cleared first). Bytes that are not a data message
    /// are [`Refusal::Malformed`] (or [`Refusal::Plaintext`]); a message that does not decrypt —
    /// another key, damaged, forged, repeated or out of order — is [`Refusal::WrongKey`]. After a
    /// refusal the stream is not to be trusted: the caller closes it.
    pub fn open(&mut self, msg: &[u8], out: &mut Vec<u8>) -> Result<(), Refusal> {
        out.clear();
        let sealed = body(msg, DATA, "not a data message")?;
        if sealed.len() < TAG {
            return Err(Refusal::Malformed("a data message cut short"));
        }
        out.resize(sealed.len() - TAG, 0);
        match self.state.read_message(sealed, out) {
            Ok(n) => {
                out.truncate(n);
                Ok(())
            }
            Err(_) => {
                out.clear();
                Err(Refusal::WrongKey)
            }
        }
    }
}

/// The dialling side of a datagram handshake, waiting for the response.
pub struct DatagramInitiator {
    /// `None` once the handshake has ended, well or not.
    state: Option<HandshakeState>,
    me: Identity,
    local_index: u32,
}

impl fmt::Debug for DatagramInitiator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramInitiator")
            .field("me", &self.me)
            .field("local_index", &self.local_index)
            .field("waiting", &self.state.is_some())
            .finish()
    }
}

impl DatagramInitiator {
    /// The init datagram: 0x10 · sender index u32 · noise message 1. `local_index` names this
    /// session at the initiator: the responder's data datagrams carry it. `me.time_ns` must be
    /// newer than that of any init this site sent before under this key ([`now_ns`]): a
    /// responder refuses an init that is not, as a replay. A retry is a new `initiate`.
    pub fn initiate(
        psk: &Psk,
        me: &Identity,
        local_index: u32,
    ) -> Result<(DatagramInitiator, Vec<u8>), HandshakeError> {
        let mut state = initiator(psk, DATAGRAM_PROLOGUE)?;
        let mut header = [0u8; DATAGRAM_INIT_HEADER];
        header[0] = HANDSHAKE_INIT;
        header[1..5].copy_from_slice(&local_index.to_be_bytes());
        let mut payload = header.to_vec();
        me.encode(&mut payload);
        let msg = write_handshake(&mut state, &header, &payload)?;
        Ok((DatagramInitiator { state: Some(state), me: me.clone(), local_index }, msg))
    }

    /// Reads the response (0x11 · sender index u32 · receiver index u32 · noise message 2); the
    /// receiver index must be ours ([`Refusal::UnknownSession`] if not).
    ///
    /// Takes `&mut self`: a datagram that is not the response (malformed, for another session,
    /// or that does not decrypt) leaves the initiator waiting, so stray or forged datagrams do not
    /// end a handshake. Once a response has decrypted, the handshake is over whatever it says
    /// (another lab, or a header changed on the way: an on-path change is no worse than a loss),
    /// and later calls answer [`Refusal::UnknownSession`]; a new `initiate` is the retry.
    pub fn read_response(&mut self, dgram: &[u8]) -> Result<(DatagramCipher, Identity), Refusal> {
        let rest = body(dgram, HANDSHAKE_RESPONSE, "not a handshake response")?;
        if rest.len() < DATAGRAM_RESPONSE_HEADER - 1 + DH + TAG {
            return Err(Refusal::Malformed("a handshake response cut short"));
        }
        let header = &dgram[..DATAGRAM_RESPONSE_HEADER];
        let peer_index = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
        let receiver = u32::from_be_bytes([header[5], header[6], header[7], header[8]]);
        let Some(state) = self.state.as_mut() else {
            return Err(Refusal::UnknownSession);
        };
        if receiver != self.local_index {
            return Err(Refusal::UnknownSession);
        }
        let payload = read_handshake(state, &dgram[DATAGRAM_RESPONSE_HEADER..])?;
        // From here the response is genuine: the handshake is over either way.
        let state = self.state.take().ok_or(Refusal::UnknownSession)?;
        let peer = decode_after_header(&payload, header)?;
        check_peer(&self.me, &peer)?;
        let state = state.into_stateless_transport_mode().map_err(|_| Refusal::WrongKey)?;
        Ok((DatagramCipher::new(state, self.local_index, peer_index), peer))
    }

    /// The index that names this session at the initiator.
    #[must_use]
    pub fn local_index(&self) -> u32 {
        self.local_index
    }
}

/// The identity in a datagram handshake's payload, after its copy of the plain header. A copy
/// that differs means the plain header was changed on the way.
fn decode_after_header(payload: &[u8], header: &[u8]) -> Result<Identity, Refusal> {
    match payload.split_at_checked(header.len()) {
        Some((copy, identity)) if copy == header => Identity::decode(identity),
        _ => Err(Refusal::WrongKey),
    }
}

/// For each peer site, the newest handshake init time accepted from it, so that a replayed init
/// is refused. Remembers at most [`MAX_GUARDED_SITES`] sites, forgetting the one accepted
/// longest ago to make room.
#[derive(Debug, Default)]
pub struct InitGuard {
    /// Site → (newest `time_ns` accepted, when it was accepted on `seq`'s count).
    latest: HashMap<String, (u64, u64)>,
    seq: u64,
}

impl InitGuard {
    /// Whether an init from `site` started at `time_ns` is newer than any accepted from it.
    #[must_use]
    pub fn check(&self, site: &str, time_ns: u64) -> bool {
        self.latest.get(site).is_none_or(|&(last, _)| time_ns > last)
    }

    /// Checks an init, and records it if it is new: [`Refusal::Replay`] if not.
    pub fn accept(&mut self, site: &str, time_ns: u64) -> Result<(), Refusal> {
        if !self.check(site, time_ns) {
            return Err(Refusal::Replay);
        }
        self.seq += 1;
        if let Some(entry) = self.latest.get_mut(site) {
            *entry = (time_ns, self.seq);
            return Ok(());
        }
        if self.latest.len() >= MAX_GUARDED_SITES {
            let oldest = self.latest.iter().min_by_key(|(_, &(_, seq))| seq).map(|(s, _)| s.clone());
            if let Some(oldest) = oldest {
                self.latest.remove(&oldest);
            }
        }
        self.latest.insert(site.to_string(), (time_ns, self.seq));
        Ok(())
    }

    /// How many sites it remembers.
    #[must_use]
    pub fn len(&self) -> usize {
        self.latest.len()
    }

    /// Whether it remembers no site.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }
}

/// The listening side of datagram tunnels: answers each genuine, new init with a response and a
/// session, and nothing else with anything.
pub struct DatagramResponder {
    psk: Psk,
    me: Identity,
    guard: InitGuard,
}

impl fmt::Debug for DatagramResponder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramResponder").field("me", &self.me).field("sites", &self.guard.len()).finish()
    }
}

impl DatagramResponder {
    /// A responder with the key and this side's identity.
    #[must_use]
    pub fn new(psk: &Psk, me: Identity) -> Self {
        DatagramResponder { psk: psk.clone(), me, guard: InitGuard::default() }
    }

    /// Reads an init; on success returns the response datagram, the new session's cipher (named
    /// `local_index` here) and the peer. Refuses [`Refusal::Plaintext`], [`Refusal::Malformed`],
    /// [`Refusal::WrongKey`], [`Refusal::WrongVersion`], [`Refusal::WrongLab`], and
    /// [`Refusal::Replay`] for an init whose `time_ns` is not newer than the last accepted from
    /// that site; a refused init gets no response.
    pub fn respond(&mut self, dgram: &[u8], local_index: u32) -> Result<(Vec<u8>, DatagramCipher, Identity), Refusal> {
        let rest = body(dgram, HANDSHAKE_INIT, "not a handshake init")?;
        if rest.len() < DATAGRAM_INIT_HEADER - 1 + DH + TAG {
            return Err(Refusal::Malformed("a handshake init cut short"));
        }
        let header = &dgram[..DATAGRAM_INIT_HEADER];
        let peer_index = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
        let mut state = responder(&self.psk, DATAGRAM_PROLOGUE).map_err(|e| Refusal::Local(e.to_string()))?;
        let payload = read_handshake(&mut state, &dgram[DATAGRAM_INIT_HEADER..])?;
        let peer = decode_after_header(&payload, header)?;
        check_peer(&self.me, &peer)?;
        if !self.guard.check(&peer.site, peer.time_ns) {
            return Err(Refusal::Replay);
        }
        let mut reply_header = [0u8; DATAGRAM_RESPONSE_HEADER];
        reply_header[0] = HANDSHAKE_RESPONSE;
        reply_header[1..5].copy_from_slice(&local_index.to_be_bytes());
        reply_header[5..9].copy_from_slice(&peer_index.to_be_bytes());
        let mut mine = reply_header.to_vec();
        self.me.encode(&mut mine);
        let reply = write_handshake(&mut state, &reply_header, &mine).map_err(|_| Refusal::WrongKey)?;
        let state = state.into_stateless_transport_mode().map_err(|_| Refusal::WrongKey)?;
        self.guard.accept(&peer.site, peer.time_ns)?;
        Ok((reply, DatagramCipher::new(state, local_index, peer_index), peer))
    }
}

/// A datagram session once the handshake is done: explicit counters for nonces, a replay window
/// for the datagrams that arrive, and the indices that name the session at each end.
pub struct DatagramCipher {
    state: StatelessTransportState,
    send: u64,
    window: ReplayWindow,
    local: u32,
    peer: u32,
}

impl fmt::Debug for DatagramCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramCipher")
            .field("local", &self.local)
            .field("peer", &self.peer)
            .field("sent", &self.send)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl DatagramCipher {
    fn new(state: StatelessTransportState, local: u32, peer: u32) -> Self {
        DatagramCipher { state, send: 0, window: ReplayWindow::default(), local, peer }
    }

    /// Appends 0x12 · receiver (the peer's) index u32 · counter u64 · ciphertext of `plain`, with
    /// the counter as the nonce. When [`try_seal`](Self::try_seal) refuses, nothing is appended.
    pub fn seal(&mut self, plain: &[u8], out: &mut Vec<u8>) {
        let _ = self.try_seal(plain, out);
    }

    /// As [`seal`](Self::seal), saying why nothing was appended: a plaintext longer than
    /// [`MAX_PLAIN`], or a counter past [`MAX_COUNTER`] (a nonce is never used twice; a new
    /// handshake is the cure).
    pub fn try_seal(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<(), SealError> {
        if plain.len() > MAX_PLAIN {
            return Err(SealError::TooLong(plain.len()));
        }
        if self.is_exhausted() {
            return Err(SealError::Exhausted);
        }
        let at = out.len();
        out.push(DATA);
        out.extend_from_slice(&self.peer.to_be_bytes());
        out.extend_from_slice(&self.send.to_be_bytes());
        let start = at + DATAGRAM_DATA_HEADER;
        out.resize(start + plain.len() + TAG, 0);
        match self.state.write_message(self.send, plain, &mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                self.send += 1;
                Ok(())
            }
            Err(_) => {
                out.truncate(at);
                Err(SealError::Exhausted)
            }
        }
    }

    /// Whether this side has sent so many datagrams that it must not send more.
    #[must_use]
    pub fn is_exhausted(&self) -> bool {
        self.send > MAX_COUNTER
    }

    /// Opens a data datagram into `out` (cleared first). Checks the counter against the window
    /// (seen, or too old: [`Refusal::Replay`]) without updating it, decrypts
    /// ([`Refusal::WrongKey`] if that fails), and only then marks the counter seen. A datagram
    /// for another index is [`Refusal::UnknownSession`].
    pub fn open(&mut self, dgram: &[u8], out: &mut Vec<u8>) -> Result<(), Refusal> {
        out.clear();
        let rest = body(dgram, DATA, "not a data message")?;
        if rest.len() < DATAGRAM_DATA_HEADER - 1 + TAG {
            return Err(Refusal::Malformed("a data datagram cut short"));
        }
        let (header, sealed) = dgram.split_at(DATAGRAM_DATA_HEADER);
        if u32::from_be_bytes([header[1], header[2], header[3], header[4]]) != self.local {
            return Err(Refusal::UnknownSession);
        }
        let mut counter = [0u8; 8];
        counter.copy_from_slice(&header[5..13]);
        let counter = u64::from_be_bytes(counter);
        if !self.window.check(counter) {
            return Err(Refusal::Replay);
        }
        out.resize(sealed.len() - TAG, 0);
        match self.state.read_message(counter, sealed, out) {
            Ok(n) => {
                out.truncate(n);
                self.window.mark(counter);
                Ok(())
            }
            Err(_) => {
                out.clear();
                Err(Refusal::WrongKey)
            }
        }
    }

    /// The index that names this session here: data datagrams for it carry it.
    #[must_use]
    pub fn local_index(&self) -> u32 {
        self.local
    }

    /// The index that names this session at the peer.
    #[must_use]
    pub fn peer_index(&self) -> u32 {
        self.peer
    }
}

/// The receiver index of a data datagram (0x12), to find its session; `None` if it is not one.
#[must_use]
pub fn data_index(dgram: &[u8]) -> Option<u32> {
    match dgram {
        [DATA, a, b, c, d, ..] if dgram.len() >= DATAGRAM_DATA_HEADER + TAG && dgram.len() <= MAX_SEALED => {
            Some(u32::from_be_bytes([*a, *b, *c, *d]))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::codec::Message;
    use crate::transport::replay::WINDOW;

    fn psk() -> Psk {
        Psk::parse("a passphrase for the tests of netlab").unwrap()
    }

    fn id(site: &str) -> Identity {
        Identity { version: codec::VERSION, lab: "campus".into(), links: [3; 32], site: site.into(), time_ns: now_ns() }
    }

    fn hello() -> Vec<u8> {
        let mut b = Vec::new();
        Message::Hello { version: codec::VERSION, lab: [3; 32], site: "hq".into() }.encode(&mut b);
        b
    }

    /// A stream tunnel that is up: the initiator's cipher, the responder's, and what each saw.
    fn stream_pair(psk: &Psk) -> (StreamCipher, StreamCipher) {
        let (init, msg) = StreamHandshake::initiate(psk, &id("hq")).expect("a handshake starts");
        let Ok(Step::Reply { reply, cipher: theirs, peer }) =
            StreamHandshake::respond(psk, &id("branch")).expect("a responder starts").read(&msg)
        else {
            panic!("the responder accepts a genuine init");
        };
        assert_eq!(peer.site, "hq");
        let Ok(Step::Done { cipher: mine, peer }) = init.read(&reply) else {
            panic!("the initiator accepts a genuine response");
        };
        assert_eq!(peer.site, "branch");
        (mine, theirs)
    }

    fn datagram_pair() -> (DatagramCipher, DatagramCipher) {
        let mut resp = DatagramResponder::new(&psk(), id("branch"));
        let (mut init, msg) = DatagramInitiator::initiate(&psk(), &id("hq"), 7).expect("a handshake starts");
        let (reply, theirs, peer) = resp.respond(&msg, 42).unwrap();
        assert_eq!(peer.site, "hq");
        let (mine, peer) = init.read_response(&reply).unwrap();
        assert_eq!(peer.site, "branch");
        (mine, theirs)
    }

    fn sealed(c: &mut DatagramCipher, plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        c.seal(plain, &mut out);
        out
    }

    #[test]
    fn keys_come_from_hex_digits_or_a_passphrase() {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
        let k = Psk::parse(&format!("  {hex}\n")).unwrap();
        assert_eq!(k.0[..4], [0x00, 0x11, 0x22, 0x33]);
        assert_eq!(k.0[31], 0xff);
        // A passphrase: the same text, the same key; other text, another; never the text itself.
        let p = Psk::parse("correct horse battery staple").unwrap();
        assert_eq!(p.0, Psk::parse("correct horse battery staple\n").unwrap().0);
        assert_ne!(p.0, Psk::parse("correct horse battery stapler").unwrap().0);
        assert_ne!(p.0, *b"correct horse battery staple\0\0\0\0");
        // 63 hex digits are no key, but a passphrase.
        assert_ne!(Psk::parse(&hex[..63]).unwrap().0, Psk::parse(&hex[..62]).unwrap().0);
        assert_eq!(Psk::parse(" \n").err(), Some(KeyError::Empty));
        assert_eq!(Psk::parse("short ключ").err(), Some(KeyError::TooShort(10)));
        assert!(KeyError::Empty.to_string().contains("netlab key"));
        assert!(KeyError::TooShort(3).to_string().contains("netlab key"));
        assert_eq!(format!("{k:?}"), "Psk(..)");
    }

    #[test]
    fn generated_keys_are_fresh_hex_that_parses() {
        let (a, b) = (Psk::generate_hex().expect("random bytes"), Psk::generate_hex().expect("random bytes"));
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)), "{a}");
        assert_ne!(a, b);
        let parsed = Psk::parse(&a).unwrap();
        assert_eq!(parsed.0.iter().map(|b| format!("{b:02x}")).collect::<String>(), a);
        assert_ne!(Psk::random().expect("random bytes").0, Psk::random().expect("random bytes").0);
    }

    #[test]
    fn identities_round_trip_and_bad_bytes_are_refused() {
        let me = id("hq");
        let mut b = Vec::new();
        me.encode(&mut b);
        assert_eq!(Identity::decode(&b), Ok(me.clone()));
        // Names too long are cut on a character, and still decode.
        let long = Identity { lab: "é".repeat(200), site: "ß".repeat(40), ..me.clone() };
        let mut b2 = Vec::new();
        long.encode(&mut b2);
        let back = Identity::decode(&b2).unwrap();
        assert_eq!((back.lab.len(), back.site.len()), (254, 64));
        for n in 0..b.len() {
            assert_eq!(Identity::decode(&b[..n]), Err(Refusal::Malformed("identity cut short")), "{n} bytes");
        }
        let mut trailing = b.clone();
        trailing.push(0);
        assert_eq!(Identity::decode(&trailing), Err(Refusal::Malformed("bytes after an identity")));
        let mut bad_utf8 = b.clone();
        bad_utf8[3] = 0xff;
        assert!(matches!(Identity::decode(&bad_utf8), Err(Refusal::Malformed(_))));
        // Another version whose bytes do not parse is told as another version.
        assert_eq!(Identity::decode(&[0, 9, 0xff]), Err(Refusal::WrongVersion { theirs: 9 }));
    }

    #[test]
    fn time_for_handshakes_only_goes_forward() {
        let mut last = now_ns();
        for _ in 0..1000 {
            let t = now_ns();
            assert!(t > last);
            last = t;
        }
    }

    #[test]
    fn message_types_tell_the_unencrypted_format() {
        assert_eq!(message_type(&[0x10]), Ok(0x10));
        assert_eq!(message_type(&[0x12, 1, 2]), Ok(0x12));
        assert_eq!(message_type(&hello()), Err(Refusal::Plaintext));
        assert_eq!(message_type(&[0x0f]), Err(Refusal::Plaintext));
        assert!(matches!(message_type(&[]), Err(Refusal::Malformed(_))));
        assert!(matches!(message_type(&[0x00]), Err(Refusal::Malformed(_))));
        assert!(matches!(message_type(&[0x13]), Err(Refusal::Malformed(_))));
        let mut long = vec![DATA; MAX_SEALED];
        assert_eq!(message_type(&long), Ok(DATA));
        long.push(0);
        assert!(matches!(message_type(&long), Err(Refusal::Malformed(_))));
        let kinds: Vec<_> = [
            Refusal::WrongKey,
            Refusal::WrongLab { theirs: String::new() },
            Refusal::WrongVersion { theirs: 2 },
            Refusal::Plaintext,
            Refusal::Replay,
            Refusal::Malformed("x"),
            Refusal::UnknownSession,
        ]
        .iter()
        .map(Refusal::kind)
        .collect();
        assert_eq!(
            kinds,
            ["wrong-key", "wrong-lab", "wrong-version", "plaintext", "replay", "malformed", "unknown-session"]
        );
    }

    #[test]
    fn a_stream_tunnel_carries_messages_both_ways() {
        let (mut a, mut b) = stream_pair(&psk());
        let (mut wire, mut got) = (Vec::new(), Vec::new());
        for i in 0..500usize {
            let plain: Vec<u8> = (0..(i * 37) % (MAX_PLAIN + 1)).map(|j| (i + j) as u8).collect();
            let (from, to) = if i % 3 == 0 { (&mut b, &mut a) } else { (&mut a, &mut b) };
            wire.clear();
            from.seal(&plain, &mut wire);
            assert_eq!(wire.len(), 1 + plain.len() + TAG);
            assert_eq!(wire[0], DATA);
            assert!(wire.len() <= MAX_SEALED);
            assert_eq!(to.open(&wire, &mut got), Ok(()));
            assert_eq!(got, plain);
        }
        // The largest plaintext is sealed; a larger one is not, and nothing is appended.
        wire.clear();
        assert_eq!(a.try_seal(&[1; MAX_PLAIN + 1], &mut wire), Err(SealError::TooLong(MAX_PLAIN + 1)));
        assert!(wire.is_empty());
        assert_eq!(a.try_seal(&[1; MAX_PLAIN], &mut wire), Ok(()));
        assert_eq!(b.open(&wire, &mut got), Ok(()));
        assert_eq!(got.len(), MAX_PLAIN);
        // Sealing appends after what `out` holds.
        let mut two = Vec::new();
        a.seal(b"one", &mut two);
        let first = two.len();
        a.seal(b"two", &mut two);
        assert_eq!(b.open(&two[..first], &mut got), Ok(()));
        assert_eq!(got, b"one");
        assert_eq!(b.open(&two[first..], &mut got), Ok(()));
        assert_eq!(got, b"two");
    }

    #[test]
    fn a_stream_responder_answers_no_one_without_the_key() {
        let (_, msg) =
            StreamHandshake::initiate(&Psk::random().expect("random bytes"), &id("hq")).expect("a handshake starts");
        assert_eq!(
            StreamHandshake::respond(&psk(), &id("branch")).expect("a responder starts").read(&msg).err(),
            Some(Refusal::WrongKey)
        );
    }

    #[test]
    fn a_stream_responder_refuses_another_lab_or_version() {
        let cases = [
            (Identity { lab: "other".into(), ..id("hq") }, Refusal::WrongLab { theirs: "other".into() }),
            (Identity { links: [4; 32], ..id("hq") }, Refusal::WrongLab { theirs: "campus".into() }),
            (
                Identity { version: codec::VERSION + 1, lab: "other".into(), ..id("hq") },
                Refusal::WrongVersion { theirs: 2 },
            ),
        ];
        for (theirs, want) in cases {
            let (_, msg) = StreamHandshake::initiate(&psk(), &theirs).expect("a handshake starts");
            assert_eq!(
                StreamHandshake::respond(&psk(), &id("branch")).expect("a responder starts").read(&msg).err(),
                Some(want)
            );
        }
    }

    /// A responder that holds the key but answers with another identity: the initiator checks it.
    #[test]
    fn a_stream_initiator_refuses_a_responder_of_another_lab() {
        for (theirs, want) in [
            (Identity { lab: "other".into(), ..id("branch") }, Refusal::WrongLab { theirs: "other".into() }),
            (Identity { version: 7, ..id("branch") }, Refusal::WrongVersion { theirs: 7 }),
        ] {
            let (init, msg) = StreamHandshake::initiate(&psk(), &id("hq")).expect("a handshake starts");
            let mut rogue = responder(&psk(), STREAM_PROLOGUE).expect("a responder starts");
            read_handshake(&mut rogue, &msg[1..]).unwrap();
            let mut payload = Vec::new();
            theirs.encode(&mut payload);
            let reply = write_handshake(&mut rogue, &[HANDSHAKE_RESPONSE], &payload).unwrap();
            assert_eq!(init.read(&reply).err(), Some(want));
        }
    }

    #[test]
    fn an_unencrypted_peer_is_told_as_such() {
        let mut out = Vec::new();
        assert_eq!(
            StreamHandshake::respond(&psk(), &id("b")).expect("a responder starts").read(&hello()).err(),
            Some(Refusal::Plaintext)
        );
        let (init, _) = StreamHandshake::initiate(&psk(), &id("hq")).expect("a handshake starts");
        assert_eq!(init.read(&hello()).err(), Some(Refusal::Plaintext));
        let (mut a, _) = stream_pair(&psk());
        assert_eq!(a.open(&hello(), &mut out), Err(Refusal::Plaintext));
        let mut resp = DatagramResponder::new(&psk(), id("b"));
        assert_eq!(resp.respond(&hello(), 1).err(), Some(Refusal::Plaintext));
        let (mut d, _) = datagram_pair();
        assert_eq!(d.open(&hello(), &mut out), Err(Refusal::Plaintext));
        let mut bye = Vec::new();
        Message::Bye.encode(&mut bye);
        assert_eq!(d.open(&bye, &mut out), Err(Refusal::Plaintext));
    }

    #[test]
    fn a_stream_message_replayed_or_changed_does_not_open() {
        let (mut a, mut b) = stream_pair(&psk());
        let (mut first, mut second, mut got) = (Vec::new(), Vec::new(), vec![9]);
        a.seal(b"frame one", &mut first);
        a.seal(b"frame two", &mut second);
        assert_eq!(b.open(&first, &mut got), Ok(()));
        assert_eq!(b.open(&first, &mut got), Err(Refusal::WrongKey), "replayed");
        assert!(got.is_empty());
        let mut changed = second.clone();
        changed[3] ^= 1;
        assert_eq!(b.open(&changed, &mut got), Err(Refusal::WrongKey), "changed");
        let mut tag = second.clone();
        *tag.last_mut().unwrap() ^= 0x80;
        assert_eq!(b.open(&tag, &mut got), Err(Refusal::WrongKey), "changed tag");
        // A message sealed by one side does not open on the same side (each way has its key).
        let mut back = Vec::new();
        b.seal(b"reply", &mut back);
        assert_eq!(b.open(&back, &mut got), Err(Refusal::WrongKey));
        // A message out of order does not open: streams count their messages.
        let mut third = Vec::new();
        a.seal(b"frame three", &mut third);
        assert_eq!(b.open(&third, &mut got), Err(Refusal::WrongKey));
    }

    #[test]
    fn a_stream_message_cut_short_is_refused() {
        // Every prefix of an init, of a response and of a data message.
        let (_, init) = StreamHandshake::initiate(&psk(), &id("hq")).expect("a handshake starts");
        for n in 0..init.len() {
            let r = StreamHandshake::respond(&psk(), &id("b")).expect("a responder starts").read(&init[..n]).err();
            assert!(matches!(r, Some(Refusal::Malformed(_) | Refusal::WrongKey)), "{n}: {r:?}");
        }
        let (i, init) = StreamHandshake::initiate(&psk(), &id("hq")).expect("a handshake starts");
        let Ok(Step::Reply { reply, .. }) =
            StreamHandshake::respond(&psk(), &id("b")).expect("a responder starts").read(&init)
        else {
            panic!("a genuine init");
        };
        drop(i);
        for n in 0..reply.len() {
            let (i, _) = StreamHandshake::initiate(&psk(), &id("hq")).expect("a handshake starts");
            let r = i.read(&reply[..n]).err();
            assert!(matches!(r, Some(Refusal::Malformed(_) | Refusal::WrongKey)), "{n}: {r:?}");
        }
        let (mut a, mut b) = stream_pair(&psk());
        let mut msg = Vec::new();
        a.seal(b"some frame", &mut msg);
        let mut got = Vec::new();
        for n in 0..msg.len() {
            let r = b.open(&msg[..n], &mut got);
            assert!(matches!(r, Err(Refusal::Malformed(_) | Refusal::WrongKey)), "{n}: {r:?}");
        }
        // The whole message still opens: a refused one did not move the count.
        assert_eq!(b.open(&msg, &mut got), Ok(()));
        // A message of the wrong type at the wrong time.
        let (i, init) = StreamHandshake::initiate(&psk(), &id("hq")).expect("a handshake starts");
        assert!(matches!(i.read(&init), Err(Refusal::Malformed(_))));
        assert!(matches!(b.open(&init, &mut got), Err(Refusal::Malformed(_))));
        assert!(matches!(
            StreamHandshake::respond(&psk(), &id("b")).expect("a responder starts").read(&msg),
            Err(Refusal::Malformed(_))
        ));
        // Too long, before anything else.
        let long = vec![DATA; MAX_SEALED + 1];
        assert!(matches!(b.open(&long, &mut got), Err(Refusal::Malformed(_))));
    }

    #[test]
    fn stream_and_datagram_handshakes_do_not_mix() {
        let (_, stream_init) = StreamHandshake::initiate(&psk(), &id("hq")).expect("a handshake starts");
        let (_, dgram_init) = DatagramInitiator::initiate(&psk(), &id("hq"), 1).expect("a handshake starts");
        assert_eq!(
            StreamHandshake::respond(&psk(), &id("b")).expect("a responder starts").read(&dgram_init).err(),
            Some(Refusal::WrongKey)
        );
        let mut resp = DatagramResponder::new(&psk(), id("b"));
        assert_eq!(resp.respond(&stream_init, 1).err(), Some(Refusal::WrongKey));
    }

    #[test]
    fn a_datagram_session_carries_datagrams_both_ways() {
        let (mut a, mut b) = datagram_pair();
        assert_eq!((a.local_index(), a.peer_index()), (7, 42));
        assert_eq!((b.local_index(), b.peer_index()), (42, 7));
        let mut got = Vec::new();
        for i in 0..300usize {
            let plain: Vec<u8> = (0..(i * 91) % (MAX_PLAIN + 1)).map(|j| (j * i) as u8).collect();
            let (from, to) = if i % 2 == 0 { (&mut a, &mut b) } else { (&mut b, &mut a) };
            let d = sealed(from, &plain);
            assert_eq!(d.len(), DATAGRAM_DATA_HEADER + plain.len() + TAG);
            assert!(d.len() <= MAX_SEALED);
            assert_eq!(data_index(&d), Some(to.local_index()));
            assert_eq!(u64::from_be_bytes(d[5..13].try_into().unwrap()), (i / 2) as u64, "the counter");
            assert_eq!(to.open(&d, &mut got), Ok(()));
            assert_eq!(got, plain);
        }
    }

    #[test]
    fn a_datagram_opens_once_and_may_overtake_others() {
        let (mut a, mut b) = datagram_pair();
        let ds: Vec<Vec<u8>> = (0..10u8).map(|i| sealed(&mut a, &[i; 20])).collect();
        let mut got = Vec::new();
        assert_eq!(b.open(&ds[5], &mut got), Ok(()));
        assert_eq!(b.open(&ds[5], &mut got), Err(Refusal::Replay));
        assert!(got.is_empty());
        for i in [9, 0, 3, 4, 8] {
            assert_eq!(b.open(&ds[i], &mut got), Ok(()), "datagram {i}");
            assert_eq!(got, [i as u8; 20]);
        }
        assert_eq!(b.open(&ds[0], &mut got), Err(Refusal::Replay));
        // One held back while a window's worth go by is too old.
        let late = sealed(&mut a, b"late");
        let mut last = Vec::new();
        for _ in 0..WINDOW {
            last = sealed(&mut a, b"x");
        }
        assert_eq!(b.open(&last, &mut got), Ok(()));
        assert_eq!(b.open(&late, &mut got), Err(Refusal::Replay));
        assert_eq!(b.open(&ds[1], &mut got), Err(Refusal::Replay));
    }

    #[test]
    fn a_changed_datagram_does_not_open_nor_mark_its_counter() {
        let (mut a, mut b) = datagram_pair();
        let d = sealed(&mut a, b"genuine");
        let mut got = Vec::new();
        for at in [0, 1, 5, 12, 13, d.len() - 1] {
            let mut bad = d.clone();
            bad[at] ^= 0x04;
            let r = b.open(&bad, &mut got);
            let want = match at {
                0 => Err(Refusal::Malformed("an unknown message type")),
                1 => Err(Refusal::UnknownSession),
                _ => Err(Refusal::WrongKey),
            };
            assert_eq!(r, want, "byte {at}");
        }
        // A forgery with this counter, then with the counter changed: neither marked a counter.
        assert_eq!(b.open(&d, &mut got), Ok(()));
        assert_eq!(got, b"genuine");
        let next = sealed(&mut a, b"next");
        let mut forged = next.clone();
        forged[12] ^= 1; // counter 1 → 0, seen: refused before decrypting
        assert_eq!(b.open(&forged, &mut got), Err(Refusal::Replay));
        forged[12] ^= 3; // counter 2, new: does not decrypt, and is not marked
        assert_eq!(b.open(&forged, &mut got), Err(Refusal::WrongKey));
        let _ = sealed(&mut a, b"skipped");
        let third = sealed(&mut a, b"counter 2");
        assert_eq!(b.open(&next, &mut got), Ok(()));
        assert_eq!(b.open(&third, &mut got), Ok(()));
        assert_eq!(got, b"counter 2");
    }

    #[test]
    fn a_datagram_cut_short_or_for_another_session_is_refused() {
        let (mut a, mut b) = datagram_pair();
        let d = sealed(&mut a, b"frame");
        let mut got = Vec::new();
        for n in 0..d.len() {
            let r = b.open(&d[..n], &mut got);
            assert!(matches!(r, Err(Refusal::Malformed(_) | Refusal::WrongKey)), "{n}: {r:?}");
            assert_eq!(data_index(&d[..n]).is_some(), n >= DATAGRAM_DATA_HEADER + TAG, "{n}");
        }
        assert_eq!(b.open(&d, &mut got), Ok(()));
        // Opened by the session at the other end, it is for no session there.
        let d2 = sealed(&mut a, b"frame");
        assert_eq!(a.open(&d2, &mut got), Err(Refusal::UnknownSession));
        assert_eq!(data_index(&hello()), None);
        let (_, init) = DatagramInitiator::initiate(&psk(), &id("hq"), 1).expect("a handshake starts");
        assert_eq!(data_index(&init), None);
        assert_eq!(data_index(&vec![DATA; MAX_SEALED + 1]), None);
    }

    #[test]
    fn a_session_never_reuses_a_counter() {
        let (mut a, _) = datagram_pair();
        a.send = MAX_COUNTER;
        let mut out = vec![1, 2];
        assert_eq!(a.try_seal(b"last", &mut out), Ok(()));
        assert_eq!(u64::from_be_bytes(out[7..15].try_into().unwrap()), MAX_COUNTER);
        assert!(a.is_exhausted());
        let before = out.clone();
        assert_eq!(a.try_seal(b"one more", &mut out), Err(SealError::Exhausted));
        a.seal(b"one more", &mut out);
        assert_eq!(out, before, "nothing appended");
        let (mut fresh, _) = datagram_pair();
        assert_eq!(fresh.try_seal(&[0; MAX_PLAIN + 1], &mut out), Err(SealError::TooLong(MAX_PLAIN + 1)));
        assert_eq!(out, before);
    }

    #[test]
    fn a_replayed_datagram_init_gets_no_response() {
        let mut resp = DatagramResponder::new(&psk(), id("branch"));
        let me = id("hq");
        let (_, init) = DatagramInitiator::initiate(&psk(), &me, 1).expect("a handshake starts");
        assert!(resp.respond(&init, 10).is_ok());
        assert_eq!(resp.respond(&init, 11).err(), Some(Refusal::Replay));
        // The same time in a new init is no newer either; a later one is.
        let (_, same) = DatagramInitiator::initiate(&psk(), &me, 2).expect("a handshake starts");
        assert_eq!(resp.respond(&same, 12).err(), Some(Refusal::Replay));
        let earlier = Identity { time_ns: me.time_ns - 1, ..me.clone() };
        let (_, old) = DatagramInitiator::initiate(&psk(), &earlier, 3).expect("a handshake starts");
        assert_eq!(resp.respond(&old, 13).err(), Some(Refusal::Replay));
        let (mut init2, later) = DatagramInitiator::initiate(&psk(), &id("hq"), 4).expect("a handshake starts");
        let (reply, _, _) = resp.respond(&later, 14).unwrap();
        assert!(init2.read_response(&reply).is_ok());
        // Another site's clock is its own.
        let other = Identity { time_ns: 5, ..id("lab-2") };
        let (_, init3) = DatagramInitiator::initiate(&psk(), &other, 5).expect("a handshake starts");
        assert!(resp.respond(&init3, 15).is_ok());
    }

    #[test]
    fn a_datagram_responder_refuses_what_a_stream_one_does() {
        let mut resp = DatagramResponder::new(&psk(), id("branch"));
        let cases = [
            (Psk::random().expect("random bytes"), id("hq"), Refusal::WrongKey),
            (psk(), Identity { lab: "other".into(), ..id("hq") }, Refusal::WrongLab { theirs: "other".into() }),
            (psk(), Identity { links: [0; 32], ..id("hq") }, Refusal::WrongLab { theirs: "campus".into() }),
            (psk(), Identity { version: 3, ..id("hq") }, Refusal::WrongVersion { theirs: 3 }),
        ];
        for (key, me, want) in cases {
            let (_, init) = DatagramInitiator::initiate(&key, &me, 1).expect("a handshake starts");
            assert_eq!(resp.respond(&init, 2).err(), Some(want));
        }
        // None of them counted as an init from "hq": a genuine one is still new.
        assert!(resp.guard.is_empty());
        let (_, init) = DatagramInitiator::initiate(&psk(), &id("hq"), 1).expect("a handshake starts");
        for n in 0..init.len() {
            let r = resp.respond(&init[..n], 2).err();
            assert!(matches!(r, Some(Refusal::Malformed(_) | Refusal::WrongKey)), "{n}: {r:?}");
        }
        // The sender index is authenticated: changed on the way, the init does not pass.
        let mut moved = init.clone();
        moved[4] ^= 1;
        assert_eq!(resp.respond(&moved, 2).err(), Some(Refusal::WrongKey));
        assert!(resp.respond(&init, 2).is_ok());
    }

    #[test]
    fn a_datagram_initiator_waits_through_stray_responses() {
        let mut resp = DatagramResponder::new(&psk(), id("branch"));
        let (mut init, msg) = DatagramInitiator::initiate(&psk(), &id("hq"), 7).expect("a handshake starts");
        let (reply, mut theirs, _) = resp.respond(&msg, 42).unwrap();
        // For another session; cut short; forged; with its sender index changed.
        let mut other = reply.clone();
        other[8] ^= 1;
        assert_eq!(init.read_response(&other).err(), Some(Refusal::UnknownSession));
        for n in 0..reply.len() {
            let r = init.read_response(&reply[..n]).err();
            assert!(
                matches!(r, Some(Refusal::Malformed(_) | Refusal::WrongKey | Refusal::UnknownSession)),
                "{n}: {r:?}"
            );
        }
        let mut forged = reply.clone();
        forged[20] ^= 1;
        assert_eq!(init.read_response(&forged).err(), Some(Refusal::WrongKey));
        assert_eq!(init.read_response(&msg).err(), Some(Refusal::Malformed("not a handshake response")));
        // The genuine response still completes the handshake, once.
        let (mut mine, peer) = init.read_response(&reply).unwrap();
        assert_eq!(peer, id("branch").clone_with_time(peer.time_ns));
        assert_eq!(init.read_response(&reply).err(), Some(Refusal::UnknownSession));
        let mut got = Vec::new();
        assert_eq!(theirs.open(&sealed(&mut mine, b"up"), &mut got), Ok(()));
        assert_eq!(got, b"up");
    }

    /// The responder's index is authenticated: a genuine response whose index was changed on the
    /// way is refused, and ends the handshake (as if it had been lost).
    #[test]
    fn a_datagram_response_with_a_changed_index_is_refused() {
        let mut resp = DatagramResponder::new(&psk(), id("branch"));
        let (mut init, msg) = DatagramInitiator::initiate(&psk(), &id("hq"), 7).expect("a handshake starts");
        let (reply, _, _) = resp.respond(&msg, 42).unwrap();
        let mut moved = reply.clone();
        moved[2] ^= 1;
        assert_eq!(init.read_response(&moved).err(), Some(Refusal::WrongKey));
        assert_eq!(init.read_response(&reply).err(), Some(Refusal::UnknownSession));
        // A new handshake is the cure.
        let (mut init, msg) = DatagramInitiator::initiate(&psk(), &id("hq"), 8).expect("a handshake starts");
        let (reply, _, _) = resp.respond(&msg, 43).unwrap();
        assert_eq!(init.read_response(&reply).map(|(c, _)| c.peer_index()), Ok(43));
    }

    /// A responder that holds the key but answers with another lab: the initiator checks it.
    #[test]
    fn a_datagram_initiator_refuses_a_responder_of_another_lab() {
        let (mut init, msg) = DatagramInitiator::initiate(&psk(), &id("hq"), 7).expect("a handshake starts");
        // A responder's own check would refuse first: answer by hand, as a rogue key holder would.
        let mut rogue = responder(&psk(), DATAGRAM_PROLOGUE).expect("a responder starts");
        let payload = read_handshake(&mut rogue, &msg[DATAGRAM_INIT_HEADER..]).unwrap();
        assert_eq!(decode_after_header(&payload, &msg[..DATAGRAM_INIT_HEADER]).unwrap().site, "hq");
        let header = [HANDSHAKE_RESPONSE, 0, 0, 0, 1, 0, 0, 0, 7];
        let mut theirs = header.to_vec();
        Identity { lab: "other".into(), ..id("branch") }.encode(&mut theirs);
        let reply = write_handshake(&mut rogue, &header, &theirs).unwrap();
        assert_eq!(init.read_response(&reply).err(), Some(Refusal::WrongLab { theirs: "other".into() }));
        assert_eq!(init.read_response(&reply).err(), Some(Refusal::UnknownSession), "the handshake is over");
    }

    #[test]
    fn the_init_guard_forgets_the_site_accepted_longest_ago() {
        let mut g = InitGuard::default();
        for i in 0..MAX_GUARDED_SITES {
            assert_eq!(g.accept(&format!("site-{i}"), 10), Ok(()));
        }
        assert_eq!(g.accept("site-0", 11), Ok(()), "site-0 is now the newest");
        assert_eq!(g.accept("new", 1), Ok(()));
        assert_eq!(g.len(), MAX_GUARDED_SITES);
        assert!(g.check("site-1", 10), "forgotten");
        assert!(!g.check("site-0", 11) && !g.check("site-2", 10) && !g.check("new", 1));
    }

    impl Identity {
        fn clone_with_time(&self, time_ns: u64) -> Identity {
            Identity { time_ns, ..self.clone() }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Whatever a peer sends, the handshakes, sessions and identity decoder answer without
        /// panicking, and nothing but genuine bytes opens.
        #[test]
        fn any_bytes_are_refused_safely(
            kind in 0u8..5,
            mut bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        ) {
            if let (Some(first), 1..=3) = (bytes.first_mut(), kind) {
                *first = 0x0f + kind; // a type byte of this format, to get past the first check
            }
            let _ = Identity::decode(&bytes);
            proptest::prop_assert!(StreamHandshake::respond(&psk(), &id("b")).expect("a responder starts").read(&bytes).is_err());
            let (init, _) = StreamHandshake::initiate(&psk(), &id("hq")).expect("a handshake starts");
            proptest::prop_assert!(init.read(&bytes).is_err());
            let mut resp = DatagramResponder::new(&psk(), id("b"));
            proptest::prop_assert!(resp.respond(&bytes, 1).is_err());
            let (mut dinit, _) = DatagramInitiator::initiate(&psk(), &id("hq"), 7).expect("a handshake starts");
            if bytes.len() > 8 && kind == 4 {
                bytes[5..9].copy_from_slice(&7u32.to_be_bytes());
            }
            proptest::prop_assert!(dinit.read_response(&bytes).is_err());
            let (mut s, _) = stream_pair(&psk());
            let mut out = Vec::new();
            proptest::prop_assert!(s.open(&bytes, &mut out).is_err());
            let (mut d, _) = datagram_pair();
            if bytes.len() > 4 && kind == 3 {
                bytes[1..5].copy_from_slice(&7u32.to_be_bytes());
            }
            proptest::prop_assert!(d.open(&bytes, &mut out).is_err());
            proptest::prop_assert!(out.is_empty());
        }

        /// A genuine message with one byte changed never opens, and the genuine one still does.
        #[test]
        fn one_changed_byte_is_refused(at in 0usize..200, flip in 1u8..=255, len in 0usize..150) {
            let (mut a, mut b) = datagram_pair();
            let d = sealed(&mut a, &vec![0xab; len]);
            let mut bad = d.clone();
            let at = at % d.len();
            bad[at] ^= flip;
            let mut out = Vec::new();
            proptest::prop_assert!(b.open(&bad, &mut out).is_err());
            proptest::prop_assert_eq!(b.open(&d, &mut out), Ok(()));
            let (mut s, mut t) = stream_pair(&psk());
            let mut m = Vec::new();
            s.seal(&vec![0xcd; len], &mut m);
            let mut bad = m.clone();
            let at = at % m.len();
            bad[at] ^= flip;
            proptest::prop_assert!(t.open(&bad, &mut out).is_err());
            proptest::prop_assert_eq!(t.open(&m, &mut out), Ok(()));
        }
    }
}
