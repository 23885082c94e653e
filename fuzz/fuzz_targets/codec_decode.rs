//! The codec's `decode` on any stored payload: an error or data, never a panic; what decodes
//! encodes and decodes again to the same data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_core::codec;

fuzz_target!(|data: &[u8]| {
    let Ok(payload) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(decoded) = codec::decode(payload) {
        let again = codec::decode(&codec::encode(&decoded.entries, decoded.expiry))
            .expect("what was decoded re-encodes");
        assert_eq!(again.entries, decoded.entries);
        assert_eq!(again.expiry, decoded.expiry);
    }
});
