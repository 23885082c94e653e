//! `Guarded`: a store that keeps something alive (a temp directory, a container) as long as
//! the store itself.

use async_trait::async_trait;
use session_core::time::OffsetDateTime;
use session_core::{Record, RecordId, SessionStore, StoreError};

/// A store bundled with a guard that is dropped with it, for factories whose stores live in
/// temporary places:
///
/// ```
/// use session_core::MemoryStore;
/// use session_testkit::Guarded;
///
/// let dir = std::env::temp_dir(); // e.g. a tempfile::TempDir, removed when the case ends
/// let store = Guarded::new(MemoryStore::new(), dir);
/// ```
#[derive(Debug)]
pub struct Guarded<S, G> {
    store: S,
    _guard: G,
}

impl<S, G> Guarded<S, G> {
    /// Bundles `store` with `guard`.
    pub fn new(store: S, guard: G) -> Self {
        Self {
            store,
            _guard: guard,
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }
}

#[async_trait]
impl<S: SessionStore, G: Send + Sync + 'static> SessionStore for Guarded<S, G> {
    async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        self.store.load(id).await
    }
    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        self.store.create(record).await
    }
    async fn update(&self, record: &Record) -> Result<(), StoreError> {
        self.store.update(record).await
    }
    async fn touch(&self, id: &RecordId, expires_at: OffsetDateTime) -> Result<(), StoreError> {
        self.store.touch(id, expires_at).await
    }
    async fn delete(&self, id: &RecordId) -> Result<bool, StoreError> {
        self.store.delete(id).await
    }
    async fn clear_expired(&self) -> Result<u64, StoreError> {
        self.store.clear_expired().await
    }
    fn key_mapping(&self) -> session_core::KeyMapping {
        self.store.key_mapping()
    }
    fn codec(&self) -> &dyn session_core::Codec {
        self.store.codec()
    }
    fn owner_index(&self) -> Option<&dyn session_core::OwnerIndex> {
        self.store.owner_index()
    }
}
