//! `MemoryStore`: sessions in process memory, for tests, demos and single-process apps.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::{Record, RecordId, SessionStore, StoreError};

const SHARDS: usize = 16;
const FIRST_SWEEP_AT: usize = 1024;

/// Sessions kept in process memory: lost on restart, not shared between processes.
///
/// Records are spread over 16 independently locked shards (no lock is ever held across an
/// `.await`). Expired records are dropped when a load finds them, by
/// [`clear_expired`](SessionStore::clear_expired), and by an amortised sweep of a shard each
/// time it doubles in size, so memory stays bounded by the live sessions even without a
/// cleanup task.
///
/// ```
/// use session_core::{MemoryStore, Session, SessionConfig};
/// use std::sync::Arc;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), session_core::SessionError> {
/// let store = Arc::new(MemoryStore::new());
/// let config = Arc::new(SessionConfig::default());
///
/// let session = Session::new(store.clone(), config.clone());
/// session.insert("user_id", 123).await?;
/// session.save().await?;
/// let key = session.session_key().expect("a saved session has a key");
///
/// // The next request brings the key back in its cookie.
/// let next = Session::from_cookie(store, config, key.expose_secret());
/// assert_eq!(next.get::<i32>("user_id").await?, Some(123));
/// # Ok(())
/// # }
/// ```
///
/// Clones share the same sessions (the shards sit behind an `Arc`), so one store can serve a
/// layer and a cleanup task at once.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    shards: Arc<[Mutex<Shard>; SHARDS]>,
}

#[derive(Debug)]
struct Shard {
    records: HashMap<RecordId, Record>,
    sweep_at: usize,
}

impl Shard {
    fn sweep(&mut self, now: OffsetDateTime) -> u64 {
        let before = self.records.len();
        self.records.retain(|_, record| record.is_live_at(now));
        self.sweep_at = (self.records.len() * 2).max(FIRST_SWEEP_AT);
        (before - self.records.len()) as u64
    }

    fn live(&mut self, id: &RecordId, now: OffsetDateTime) -> Option<&mut Record> {
        match self.records.get(id) {
            Some(record) if !record.is_live_at(now) => {
                self.records.remove(id);
                None
            }
            _ => self.records.get_mut(id),
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            shards: Arc::new(std::array::from_fn(|_| {
                Mutex::new(Shard {
                    records: HashMap::new(),
                    sweep_at: FIRST_SWEEP_AT,
                })
            })),
        }
    }

    /// How many records the store holds, expired ones not yet purged included.
    pub fn len(&self) -> usize {
        (0..SHARDS).map(|i| self.lock(i).records.len()).sum()
    }

    /// Whether the store holds no records at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, id: &RecordId) -> MutexGuard<'_, Shard> {
        // Record ids are hex SHA-256 digests: their first digit spreads evenly over 16 shards.
        let index = id
            .as_str()
            .as_bytes()
            .first()
            .map_or(0, |&b| usize::from(b) % SHARDS);
        self.lock(index)
    }

    fn lock(&self, index: usize) -> MutexGuard<'_, Shard> {
        // A panic while holding a shard lock cannot leave a record half-written (every
        // mutation is a single map operation), so a poisoned lock is safe to keep using.
        self.shards[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        let now = OffsetDateTime::now_utc();
        Ok(self.shard(id).live(id, now).map(|record| record.clone()))
    }

    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        let mut shard = self.shard(record.id());
        if shard.live(record.id(), now).is_some() {
            return Err(StoreError::DuplicateId);
        }
        shard.records.insert(record.id().clone(), record.clone());
        if shard.records.len() >= shard.sweep_at {
            shard.sweep(now);
        }
        Ok(())
    }

    async fn update(&self, record: &Record) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        let mut shard = self.shard(record.id());
        let existing = shard.live(record.id(), now).ok_or(StoreError::NotFound)?;
        *existing = record.clone();
        Ok(())
    }

    async fn touch(&self, id: &RecordId, expires_at: OffsetDateTime) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        let mut shard = self.shard(id);
        let existing = shard.live(id, now).ok_or(StoreError::NotFound)?;
        existing.set_expires_at(expires_at);
        Ok(())
    }

    async fn delete(&self, id: &RecordId) -> Result<bool, StoreError> {
        let now = OffsetDateTime::now_utc();
        let removed = self.shard(id).records.remove(id);
        Ok(removed.is_some_and(|record| record.is_live_at(now)))
    }

    async fn clear_expired(&self) -> Result<u64, StoreError> {
        let now = OffsetDateTime::now_utc();
        Ok((0..SHARDS).map(|i| self.lock(i).sweep(now)).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SessionKey;
    use time::Duration;

    #[tokio::test]
    async fn memory_sweeps_expired_records_as_it_grows() {
        let store = MemoryStore::new();
        let past = OffsetDateTime::now_utc() - Duration::seconds(1);
        for _ in 0..(SHARDS * FIRST_SWEEP_AT * 3) {
            let record = Record::new(SessionKey::generate().record_id(), "{}", past);
            store.create(&record).await.unwrap();
        }
        // Without the amortised sweep every record would still be held.
        assert!(
            store.len() < SHARDS * FIRST_SWEEP_AT * 2,
            "held {}",
            store.len()
        );
    }
}
