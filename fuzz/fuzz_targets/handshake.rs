//! The encrypted wire format: bytes from anyone but a key holder are refused, without a panic, by
//! the identity decoder, both handshakes and a live datagram session; a genuine datagram changed
//! anywhere does not open, and the unchanged one still does.

#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use netlab::transport::codec::VERSION;
use netlab::transport::secure::{
    now_ns, DatagramCipher, DatagramInitiator, DatagramResponder, Identity, Psk, StreamHandshake, MAX_PLAIN,
};

const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn psk() -> Psk {
    Psk::parse(KEY).expect("a key of 64 hex digits")
}

fn me(site: &str) -> Identity {
    Identity { version: VERSION, lab: "fuzz".into(), links: [1; 32], site: site.into(), time_ns: now_ns() }
}

/// A session set up once per thread: the sender's end and the receiver's.
fn session() -> (DatagramCipher, DatagramCipher) {
    let mut resp = DatagramResponder::new(&psk(), me("responder"));
    let (mut init, msg) = DatagramInitiator::initiate(&psk(), &me("initiator"), 1).expect("a handshake starts");
    let (reply, theirs, _) = resp.respond(&msg, 2).expect("a genuine init");
    let (mine, _) = init.read_response(&reply).expect("a genuine response");
    (mine, theirs)
}

thread_local! {
    static SESSION: RefCell<(DatagramCipher, DatagramCipher)> = RefCell::new(session());
}

fuzz_target!(|data: &[u8]| {
    if let Ok(id) = Identity::decode(data) {
        let mut again = Vec::new();
        id.encode(&mut again);
        assert_eq!(again, data, "an identity encodes back to its bytes");
    }
    assert!(StreamHandshake::respond(&psk(), &me("responder")).expect("a responder starts").read(data).is_err());
    assert!(DatagramResponder::new(&psk(), me("responder")).respond(data, 3).is_err());
    let mut init = DatagramInitiator::initiate(&psk(), &me("initiator"), 1).expect("a handshake starts").0;
    assert!(init.read_response(data).is_err());

    SESSION.with(|s| {
        let (from, to) = &mut *s.borrow_mut();
        let mut out = Vec::new();
        assert!(to.open(data, &mut out).is_err(), "forged bytes do not open");
        assert!(out.is_empty());
        // The input as a frame: changed at a byte the input picks, it is refused; as sent, it opens.
        if data.len() > MAX_PLAIN {
            return;
        }
        let mut sealed = Vec::new();
        from.seal(data, &mut sealed);
        let pick = data.first().copied().unwrap_or(0);
        let mut changed = sealed.clone();
        let at = usize::from(pick) * 31 % changed.len();
        changed[at] ^= pick | 1;
        assert!(to.open(&changed, &mut out).is_err(), "a changed datagram does not open");
        assert_eq!(to.open(&sealed, &mut out), Ok(()), "the genuine datagram opens");
        assert_eq!(out, data);
    });
});
