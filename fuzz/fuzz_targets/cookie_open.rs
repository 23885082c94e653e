//! A client's session cookie, opened by both client-side engines (Django's signed cookies
//! and encrypted cookies) and by Django's session decoding: an error or a session, never a
//! panic; what opens seals and opens again to the same session.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_core::CookieSealer;
use session_core::codec::Codec;
use session_core::time::Duration;
use session_django::signing::Keys;
use session_django::{DjangoCodec, EncryptedCookies, SignedCookies};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let keys = Keys::new("fuzz-secret").with_fallbacks(["old-fuzz-secret"]);
    let age = Duration::weeks(2);
    let sealers: [&dyn CookieSealer; 2] = [
        &SignedCookies::new(keys.clone(), age),
        &EncryptedCookies::new(keys.clone(), age),
    ];
    for sealer in sealers {
        if let Ok((session, _)) = sealer.open(value) {
            let again = sealer
                .open(&sealer.seal(&session.entries, session.expiry))
                .expect("what opened seals and opens again");
            assert_eq!(again.0.entries, session.entries);
        }
    }
    let _ = DjangoCodec::new(keys).decode(value);
});
