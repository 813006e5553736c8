//! The plaintext wire format: any bytes, whole or as a stream in pieces, are read without a panic;
//! the decoder never holds more than one message; whatever decodes encodes back to its bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use netlab::transport::codec::{Decoder, Message, MAX_MESSAGE};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::decode(data) {
        let mut again = Vec::new();
        m.encode(&mut again);
        assert_eq!(again, data, "{m} encodes back to its bytes");
    }
    // The first byte sets the size of the pieces the rest arrives in.
    let Some((&piece, stream)) = data.split_first() else {
        return;
    };
    let (mut dec, mut out) = (Decoder::default(), Vec::new());
    for chunk in stream.chunks(usize::from(piece).max(1)) {
        if dec.feed(chunk, &mut out).is_err() {
            break;
        }
        assert!(dec.pending() <= 4 + MAX_MESSAGE);
    }
    // Every message read from the stream is one of its framed messages, in order.
    let mut framed = Vec::new();
    for m in &out {
        m.encode_framed(&mut framed);
    }
    assert!(stream.starts_with(&framed), "the messages read are the stream's own");
});
