//! `FaultyStore`: a store that fails on demand, for the error paths of the lifecycle.

use std::sync::atomic::{AtomicU8, Ordering};

use async_trait::async_trait;
use session_core::time::OffsetDateTime;
use session_core::{Record, RecordId, SessionStore, StoreError};

/// Which operations a [`FaultyStore`] fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Faults {
    /// Every call goes through.
    None = 0,
    /// Reads (`load`) fail; writes go through.
    Reads = 1,
    /// Writes (`create`, `update`, `touch`, `delete`, `clear_expired`) fail; reads go through.
    Writes = 2,
    /// Every call fails.
    All = 3,
}

/// The error a [`FaultyStore`] injects, kept as the `Backend` error's source.
#[derive(Debug)]
pub struct InjectedFault;

impl std::fmt::Display for InjectedFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fault injected by FaultyStore")
    }
}

impl std::error::Error for InjectedFault {}

/// Wraps any store and makes chosen operations fail with a `Backend` error, as a store whose
/// server went away would.
#[derive(Debug)]
pub struct FaultyStore<S> {
    inner: S,
    faults: AtomicU8,
}

impl<S> FaultyStore<S> {
    /// Wraps `inner`; nothing fails until [`set_faults`](Self::set_faults).
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            faults: AtomicU8::new(Faults::None as u8),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Chooses which operations fail from now on.
    pub fn set_faults(&self, faults: Faults) {
        self.faults.store(faults as u8, Ordering::SeqCst);
    }

    fn check(&self, write: bool) -> Result<(), StoreError> {
        let faults = self.faults.load(Ordering::SeqCst);
        let wanted = if write { Faults::Writes } else { Faults::Reads } as u8;
        if faults & wanted != 0 {
            Err(StoreError::backend("fault injection", InjectedFault))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl<S: SessionStore> SessionStore for FaultyStore<S> {
    async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        self.check(false)?;
        self.inner.load(id).await
    }
    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        self.check(true)?;
        self.inner.create(record).await
    }
    async fn update(&self, record: &Record) -> Result<(), StoreError> {
        self.check(true)?;
        self.inner.update(record).await
    }
    async fn touch(&self, id: &RecordId, expires_at: OffsetDateTime) -> Result<(), StoreError> {
        self.check(true)?;
        self.inner.touch(id, expires_at).await
    }
    async fn delete(&self, id: &RecordId) -> Result<bool, StoreError> {
        self.check(true)?;
        self.inner.delete(id).await
    }
    async fn clear_expired(&self) -> Result<u64, StoreError> {
        self.check(true)?;
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
