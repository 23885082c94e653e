//! Helpers shared by the dialect test files.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use session_core::time::{Duration, OffsetDateTime};
use session_core::{Record, SessionKey, SessionStore};

/// A table name no other case of this process uses: `kit_<tag>_<pid>_<n>`. Tables of earlier
/// runs are dropped once per process by the dialect's `drop_old_tables`.
pub fn unique_table(tag: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "kit_{tag}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The `LIKE` pattern of every test table with this tag.
pub fn table_pattern(tag: &str) -> String {
    format!("kit\\_{tag}\\_%")
}

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

/// Runs `work` once per process on a thread of its own (with its own runtime), while any other
/// caller waits: for clean-up before the first case creates a table.
pub fn once_per_process(once: &'static std::sync::OnceLock<()>, work: fn()) {
    once.get_or_init(|| {
        std::thread::spawn(work).join().expect("clean-up thread");
    });
}

/// A small current-thread runtime for clean-up work.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}
