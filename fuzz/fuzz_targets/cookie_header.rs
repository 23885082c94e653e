//! Cookie header bytes → session candidates: never a panic, never a key that is not one, and
//! never any store I/O before the handler reads the session.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use session_core::{MemoryStore, SessionConfig, SessionKey, SessionManager};

fn manager() -> &'static (SessionManager, Arc<MemoryStore>) {
    static MANAGER: OnceLock<(SessionManager, Arc<MemoryStore>)> = OnceLock::new();
    MANAGER.get_or_init(|| {
        let store = Arc::new(MemoryStore::new());
        let manager = SessionManager::new(store.clone(), SessionConfig::default());
        (manager, store)
    })
}

fuzz_target!(|data: &[u8]| {
    let (manager, store) = manager();
    // Each line is one `Cookie` header (HTTP/2 splits them).
    let session = manager.session_from_headers(data.split(|&b| b == b'\n'));
    if let Some(key) = session.session_key() {
        let text = key.expose_secret();
        assert_eq!(SessionKey::parse(text).as_ref(), Some(&key));
        assert!(
            data.windows(text.len()).any(|w| w == text.as_bytes()),
            "a key that the header does not hold"
        );
    }
    assert!(store.is_empty(), "building a session did store I/O");
});
