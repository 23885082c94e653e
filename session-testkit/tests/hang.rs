//! A store that blocks its thread fails its case within the timeout, naming the case, instead
//! of hanging the run.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use session_core::time::OffsetDateTime;
use session_core::{Record, RecordId, SessionStore, StoreError};
use session_testkit::{Capabilities, run_case};

/// Takes a `std::sync::Mutex` twice in `load`: its thread deadlocks for good.
#[derive(Default)]
struct Deadlocking {
    lock: Mutex<()>,
}

#[session_core::async_trait]
impl SessionStore for Deadlocking {
    async fn load(&self, _id: &RecordId) -> Result<Option<Record>, StoreError> {
        let _first = self.lock.lock();
        let _second = self.lock.lock();
        Ok(None)
    }
    async fn create(&self, _record: &Record) -> Result<(), StoreError> {
        Ok(())
    }
    async fn update(&self, _record: &Record) -> Result<(), StoreError> {
        Err(StoreError::NotFound)
    }
    async fn touch(&self, _id: &RecordId, _at: OffsetDateTime) -> Result<(), StoreError> {
        Err(StoreError::NotFound)
    }
    async fn delete(&self, _id: &RecordId) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn clear_expired(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}

#[test]
fn memory_blocking_store_fails_its_case_within_the_timeout() {
    let timeout = Duration::from_millis(500);
    let started = Instant::now();
    let outcome = std::panic::catch_unwind(|| {
        run_case(
            "blocking::store_load_missing_is_none",
            Capabilities::new().timeout(timeout),
            || async { Deadlocking::default() },
            session_testkit::cases::store_load_missing_is_none,
        )
    });
    let elapsed = started.elapsed();
    let panic = outcome.expect_err("a blocked case fails");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("blocking::store_load_missing_is_none")
            && message.contains("did not finish within"),
        "{message}"
    );
    assert!(elapsed < timeout * 4, "it took {elapsed:?}");
    // The next case runs as usual.
    run_case(
        "memory::store_load_missing_is_none",
        Capabilities::new(),
        || async { session_core::MemoryStore::new() },
        session_testkit::cases::store_load_missing_is_none,
    );
}
