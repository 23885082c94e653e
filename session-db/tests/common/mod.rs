//! Helpers shared by the dialect test files.

#![allow(dead_code)]

pub mod fault;
pub mod own_server;

use session_core::time::{Duration, OffsetDateTime};
use session_core::{Record, SessionKey, SessionStore};

/// Creates `count` live records through the store and returns them.
pub async fn live_records(store: &dyn SessionStore, count: usize) -> Vec<Record> {
    let mut records = Vec::new();
    for _ in 0..count {
        let record = Record::new(
            SessionKey::generate().record_id(),
            r#"{"v":1,"data":{"live":true}}"#,
            OffsetDateTime::now_utc() + Duration::hours(1),
        );
        store.create(&record).await.expect("create");
        records.push(record);
    }
    records
}
