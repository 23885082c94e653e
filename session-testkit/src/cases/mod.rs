//! The conformance cases, one `async fn(Ctx)` each. [`store_conformance!`](crate::store_conformance)
//! runs every one of them; engine crates may also call single cases through
//! [`run_case`](crate::run_case).

mod lifecycle;
mod session;
mod store;

pub use lifecycle::*;
pub use session::*;
pub use store::*;

use session_core::record::truncate_to_millis;
use session_core::time::{Duration, OffsetDateTime};
use session_core::{RecordId, SessionKey};

/// A record id no other case uses.
fn fresh_id() -> RecordId {
    SessionKey::generate().record_id()
}

/// Now plus `ms` milliseconds (negative for the past), in whole milliseconds as core hands
/// moments to stores.
fn in_ms(ms: i64) -> OffsetDateTime {
    truncate_to_millis(OffsetDateTime::now_utc() + Duration::milliseconds(ms))
}

/// A codec-shaped payload around the given JSON object text.
fn envelope(data: &str) -> String {
    format!(r#"{{"v":1,"data":{data}}}"#)
}

/// A small payload holding `marker`.
fn payload_of(marker: &str) -> String {
    envelope(&format!(r#"{{"marker":"{marker}"}}"#))
}
