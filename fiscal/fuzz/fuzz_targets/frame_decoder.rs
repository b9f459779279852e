//! Fuzz target: the Shtrih-M frame decoder and the FFD TLV parser must never panic, and a
//! decoded frame must encode back to the bytes it came from.
#![no_main]

use fiscal::shtrih::frame::{decode_frame, encode_frame};
use fiscal::shtrih::tlv;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((frame, used)) = decode_frame(data) {
        let encoded = encode_frame(&frame).expect("a decoded frame re-encodes");
        assert_eq!(&encoded[..], &data[..used]);
    }
    let _ = tlv::parse(data);
});
