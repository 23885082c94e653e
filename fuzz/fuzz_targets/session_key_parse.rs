//! `SessionKey::parse`: accepts exactly 32 of `[a-z0-9]`, gives the same text back, and its
//! record id is 64 lowercase hex digits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_core::{RecordId, SessionKey};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let well_formed =
        text.len() == 32 && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    match SessionKey::parse(text) {
        Some(key) => {
            assert!(well_formed, "accepted {text:?}");
            assert_eq!(key.expose_secret(), text);
            let id = key.record_id();
            assert_eq!(RecordId::parse(id.as_str()).as_ref(), Some(&id));
            assert!(!format!("{key:?}{key}").contains(text), "a log shows the whole key");
        }
        None => assert!(!well_formed, "refused {text:?}"),
    }
    let _ = RecordId::parse(text);
});
