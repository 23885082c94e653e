//! Shared test material, public for store authors' own cases: fresh record ids, moments
//! relative to now, codec-shaped payloads, unique names for per-case isolation, and the
//! benchmarks' session.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value, json};
use session_core::record::truncate_to_millis;
use session_core::time::{Duration, OffsetDateTime};
use session_core::{Expiry, RecordId, SessionKey, codec};

/// A record id no other case uses.
pub fn fresh_id() -> RecordId {
    SessionKey::generate().record_id()
}

/// Now plus `ms` milliseconds (negative for the past), in whole milliseconds as core hands
/// moments to stores.
pub fn in_ms(ms: i64) -> OffsetDateTime {
    truncate_to_millis(OffsetDateTime::now_utc() + Duration::milliseconds(ms))
}

/// A codec-shaped payload around the given JSON object text: `{"v":1,"data":<data>}`.
pub fn envelope(data: &str) -> String {
    format!(r#"{{"v":1,"data":{data}}}"#)
}

/// A small codec-shaped payload holding `marker`.
pub fn payload_of(marker: &str) -> String {
    envelope(&format!(r#"{{"marker":"{marker}"}}"#))
}

/// A name no other call of any run uses: `<tag>:<pid>:<nanos>:<n>:`, for per-case key
/// prefixes on a shared server.
pub fn unique_name(tag: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{tag}:{}:{nanos}:{n}:", std::process::id())
}

/// The five-key session every benchmark uses: an integer id, a short name, a ten-integer
/// list, a 64-character token and an ISO timestamp.
pub fn five_key_entries() -> Map<String, Value> {
    let value = json!({
        "user_id": 123_456,
        "username": "john_doe",
        "recent": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        "csrf_token": "a".repeat(64),
        "last_login": "2026-11-26T01:02:03.456Z",
    });
    match value {
        Value::Object(entries) => entries,
        _ => Map::new(),
    }
}

/// The five-key session as a payload (207 bytes).
pub fn five_key_payload() -> String {
    codec::encode(&five_key_entries(), Expiry::Default)
}

/// `n` characters that no compressor shrinks much: a fixed pseudo-random sequence over 64
/// JSON-safe characters, so a payload grows with `n` whatever the codec.
pub fn incompressible(n: usize) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(ALPHABET[(state >> 58) as usize])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn five_key_payload_has_the_documented_size() {
        assert_eq!(super::five_key_payload().len(), 207);
        assert_ne!(super::unique_name("x"), super::unique_name("x"));
    }
}
