//! A third-party store written from the guide ("Writing a store" in the crate docs), hooked up
//! exactly as the guide says: the kit builds and runs outside the workspace's own stores.

mod my_store {
    use std::collections::HashMap;
    use std::sync::{Mutex, MutexGuard};

    use session_core::time::OffsetDateTime;
    use session_core::{Record, RecordId, SessionStore, StoreError, async_trait};

    /// Sessions in a `HashMap`: the whole store contract in a few lines. The lock is never held
    /// across an `.await`, so every operation is atomic.
    #[derive(Debug, Default)]
    pub struct MapStore {
        records: Mutex<HashMap<RecordId, Record>>,
    }

    impl MapStore {
        fn records(&self) -> MutexGuard<'_, HashMap<RecordId, Record>> {
            // A panic elsewhere while the lock was held leaves whole records only.
            self.records
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }
    }

    /// Live exactly while `expires_at > now`, on the application's clock.
    fn live(record: &Record) -> bool {
        record.is_live_at(OffsetDateTime::now_utc())
    }

    #[async_trait]
    impl SessionStore for MapStore {
        async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
            Ok(self
                .records()
                .get(id)
                .filter(|record| live(record))
                .cloned())
        }

        async fn create(&self, record: &Record) -> Result<(), StoreError> {
            let mut records = self.records();
            if records.get(record.id()).is_some_and(live) {
                return Err(StoreError::DuplicateId);
            }
            records.insert(record.id().clone(), record.clone());
            Ok(())
        }

        async fn update(&self, record: &Record) -> Result<(), StoreError> {
            match self.records().get_mut(record.id()) {
                Some(stored) if live(stored) => {
                    *stored = record.clone();
                    Ok(())
                }
                _ => Err(StoreError::NotFound),
            }
        }

        async fn touch(&self, id: &RecordId, expires_at: OffsetDateTime) -> Result<(), StoreError> {
            match self.records().get_mut(id) {
                Some(stored) if live(stored) => {
                    stored.set_expires_at(expires_at);
                    Ok(())
                }
                _ => Err(StoreError::NotFound),
            }
        }

        async fn delete(&self, id: &RecordId) -> Result<bool, StoreError> {
            Ok(self
                .records()
                .remove(id)
                .is_some_and(|record| live(&record)))
        }

        async fn clear_expired(&self) -> Result<u64, StoreError> {
            let mut records = self.records();
            let before = records.len();
            records.retain(|_, record| live(record));
            Ok((before - records.len()) as u64)
        }
    }
}

use session_testkit::{Capabilities, store_conformance};

store_conformance!(map, Capabilities::new(), || async {
    my_store::MapStore::default()
});
