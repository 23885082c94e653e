//! `spawn_cleanup` on `MemoryStore`: runs on its period, survives store errors, stops with
//! its handle.

use std::sync::Arc;
use std::time::Duration;

use session_core::time::OffsetDateTime;
use session_core::{MemoryStore, Record, SessionKey, SessionStore, spawn_cleanup};
use session_testkit::{CountingStore, Faults, FaultyStore};

#[tokio::test]
async fn memory_cleanup_runs_survives_errors_and_stops_when_dropped() {
    let faulty = FaultyStore::new(MemoryStore::new());
    let store = Arc::new(CountingStore::new(faulty));
    let expired = Record::new(
        SessionKey::generate().record_id(),
        "{}",
        OffsetDateTime::now_utc() - session_core::time::Duration::seconds(1),
    );
    store
        .inner()
        .inner()
        .create(&expired)
        .await
        .expect("create");
    assert_eq!(store.inner().inner().len(), 1);

    let handle = spawn_cleanup(store.clone(), Duration::from_millis(20));
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(store.counts().clear_expired >= 2, "runs on its period");
    assert_eq!(store.inner().inner().len(), 0, "the expired record is gone");

    store.inner().set_faults(Faults::All);
    let before = store.counts().clear_expired;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(
        store.counts().clear_expired >= before + 2,
        "keeps going after errors"
    );

    drop(handle);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stopped = store.counts().clear_expired;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        store.counts().clear_expired,
        stopped,
        "stops when the handle is dropped"
    );
}
