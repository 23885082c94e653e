//! `CountingStore`: counts the calls a store receives, so tests can assert I/O.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use session_core::time::OffsetDateTime;
use session_core::{Record, RecordId, SessionStore, StoreError};

/// How many times each store operation was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// `load` calls.
    pub load: u64,
    /// `create` calls.
    pub create: u64,
    /// `update` calls.
    pub update: u64,
    /// `touch` calls.
    pub touch: u64,
    /// `delete` calls.
    pub delete: u64,
    /// `clear_expired` calls.
    pub clear_expired: u64,
}

impl Counts {
    /// All calls together.
    pub fn total(&self) -> u64 {
        self.load + self.create + self.update + self.touch + self.delete + self.clear_expired
    }

    /// All calls that write.
    pub fn writes(&self) -> u64 {
        self.create + self.update + self.touch + self.delete
    }
}

/// Wraps any store and counts the calls it receives.
///
/// ```
/// use std::sync::Arc;
/// use session_core::{MemoryStore, Session, SessionConfig};
/// use session_testkit::CountingStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store = Arc::new(CountingStore::new(MemoryStore::new()));
/// let session = Session::new(store.clone(), Arc::new(SessionConfig::default()));
/// assert!(session.session_key().is_none());
/// assert_eq!(store.counts().total(), 0, "an untouched session does no I/O");
/// # }
/// ```
#[derive(Debug, Default)]
pub struct CountingStore<S> {
    inner: S,
    load: AtomicU64,
    create: AtomicU64,
    update: AtomicU64,
    touch: AtomicU64,
    delete: AtomicU64,
    clear_expired: AtomicU64,
}

impl<S> CountingStore<S> {
    /// Wraps `inner` with all counts at zero.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            load: AtomicU64::new(0),
            create: AtomicU64::new(0),
            update: AtomicU64::new(0),
            touch: AtomicU64::new(0),
            delete: AtomicU64::new(0),
            clear_expired: AtomicU64::new(0),
        }
    }

    /// The counts so far.
    pub fn counts(&self) -> Counts {
        Counts {
            load: self.load.load(Ordering::SeqCst),
            create: self.create.load(Ordering::SeqCst),
            update: self.update.load(Ordering::SeqCst),
            touch: self.touch.load(Ordering::SeqCst),
            delete: self.delete.load(Ordering::SeqCst),
            clear_expired: self.clear_expired.load(Ordering::SeqCst),
        }
    }

    /// Sets every count back to zero.
    pub fn reset(&self) {
        for count in [
            &self.load,
            &self.create,
            &self.update,
            &self.touch,
            &self.delete,
            &self.clear_expired,
        ] {
            count.store(0, Ordering::SeqCst);
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

fn bump(count: &AtomicU64) {
    count.fetch_add(1, Ordering::SeqCst);
}

#[async_trait]
impl<S: SessionStore> SessionStore for CountingStore<S> {
    async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        bump(&self.load);
        self.inner.load(id).await
    }
    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        bump(&self.create);
        self.inner.create(record).await
    }
    async fn update(&self, record: &Record) -> Result<(), StoreError> {
        bump(&self.update);
        self.inner.update(record).await
    }
    async fn touch(&self, id: &RecordId, expires_at: OffsetDateTime) -> Result<(), StoreError> {
        bump(&self.touch);
        self.inner.touch(id, expires_at).await
    }
    async fn delete(&self, id: &RecordId) -> Result<bool, StoreError> {
        bump(&self.delete);
        self.inner.delete(id).await
    }
    async fn clear_expired(&self) -> Result<u64, StoreError> {
        bump(&self.clear_expired);
        self.inner.clear_expired().await
    }
    fn key_mapping(&self) -> session_core::KeyMapping {
        self.inner.key_mapping()
    }
    fn codec(&self) -> &dyn session_core::Codec {
        self.inner.codec()
    }
    fn owner_index(&self) -> Option<&dyn session_core::OwnerIndex> {
        self.inner.owner_index()
    }
}
