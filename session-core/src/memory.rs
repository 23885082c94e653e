//! `MemoryStore`: sessions in process memory, for tests, demos and single-process apps.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::owner::sort_listing;
use crate::{OwnedSession, OwnerIndex, Ownership, Record, RecordId, SessionStore, StoreError};

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
///
/// It keeps an [`OwnerIndex`]: owner → record ids, updated with every write, cleaned by every
/// sweep, and checked against the records themselves on every read.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    shards: Arc<[Mutex<Shard>; SHARDS]>,
    /// Owner → ids of records written with that owner. Locked after a shard, never before.
    owners: Arc<Mutex<HashMap<String, HashSet<RecordId>>>>,
}

#[derive(Debug)]
struct Shard {
    records: HashMap<RecordId, Record>,
    sweep_at: usize,
}

impl Shard {
    /// Drops expired records; returns how many, and the owned ones' (owner, id).
    fn sweep(&mut self, now: OffsetDateTime) -> (u64, Vec<(String, RecordId)>) {
        let before = self.records.len();
        let mut owned = Vec::new();
        self.records.retain(|id, record| {
            let live = record.is_live_at(now);
            if let (false, Some(ownership)) = (live, record.ownership()) {
                owned.push((ownership.owner().to_owned(), id.clone()));
            }
            live
        });
        self.sweep_at = (self.records.len() * 2).max(FIRST_SWEEP_AT);
        ((before - self.records.len()) as u64, owned)
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
            owners: Arc::default(),
        }
    }

    fn owners(&self) -> MutexGuard<'_, HashMap<String, HashSet<RecordId>>> {
        // Every mutation is a single set operation: a poisoned lock is still consistent.
        self.owners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Moves `id` in the owner index from `before`'s owner to `after`'s.
    fn reindex(&self, id: &RecordId, before: Option<&Ownership>, after: Option<&Ownership>) {
        let (before, after) = (before.map(Ownership::owner), after.map(Ownership::owner));
        if before == after {
            return;
        }
        let mut owners = self.owners();
        if let Some(owner) = before {
            forget(&mut owners, owner, id);
        }
        if let Some(owner) = after {
            owners
                .entry(owner.to_owned())
                .or_default()
                .insert(id.clone());
        }
    }

    /// The live record `id` in `shard`; an expired one is dropped (and unindexed).
    fn live<'a>(
        &self,
        shard: &'a mut Shard,
        id: &RecordId,
        now: OffsetDateTime,
    ) -> Option<&'a mut Record> {
        if shard
            .records
            .get(id)
            .is_some_and(|record| !record.is_live_at(now))
        {
            if let Some(record) = shard.records.remove(id) {
                self.reindex(id, record.ownership(), None);
            }
            return None;
        }
        shard.records.get_mut(id)
    }

    /// Sweeps a shard and removes what it dropped from the owner index.
    fn sweep(&self, shard: &mut Shard, now: OffsetDateTime) -> u64 {
        let (count, owned) = shard.sweep(now);
        if !owned.is_empty() {
            let mut owners = self.owners();
            for (owner, id) in owned {
                forget(&mut owners, &owner, &id);
            }
        }
        count
    }

    /// The ids the index holds for `owner`.
    fn indexed(&self, owner: &str) -> Vec<RecordId> {
        self.owners()
            .get(owner)
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default()
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
        Ok(self
            .live(&mut self.shard(id), id, now)
            .map(|record| record.clone()))
    }

    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        let mut shard = self.shard(record.id());
        if self.live(&mut shard, record.id(), now).is_some() {
            return Err(StoreError::DuplicateId);
        }
        let replaced = shard.records.insert(record.id().clone(), record.clone());
        self.reindex(
            record.id(),
            replaced.as_ref().and_then(Record::ownership),
            record.ownership(),
        );
        if shard.records.len() >= shard.sweep_at {
            self.sweep(&mut shard, now);
        }
        Ok(())
    }

    async fn update(&self, record: &Record) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        let mut shard = self.shard(record.id());
        let existing = self
            .live(&mut shard, record.id(), now)
            .ok_or(StoreError::NotFound)?;
        let before = std::mem::replace(existing, record.clone());
        self.reindex(record.id(), before.ownership(), record.ownership());
        Ok(())
    }

    async fn touch(&self, id: &RecordId, expires_at: OffsetDateTime) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        let mut shard = self.shard(id);
        let existing = self.live(&mut shard, id, now).ok_or(StoreError::NotFound)?;
        existing.set_expires_at(expires_at);
        Ok(())
    }

    async fn delete(&self, id: &RecordId) -> Result<bool, StoreError> {
        let now = OffsetDateTime::now_utc();
        let mut shard = self.shard(id);
        let removed = shard.records.remove(id);
        if let Some(record) = &removed {
            self.reindex(id, record.ownership(), None);
        }
        Ok(removed.is_some_and(|record| record.is_live_at(now)))
    }

    async fn clear_expired(&self) -> Result<u64, StoreError> {
        let now = OffsetDateTime::now_utc();
        Ok((0..SHARDS)
            .map(|i| self.sweep(&mut self.lock(i), now))
            .sum())
    }

    fn owner_index(&self) -> Option<&dyn OwnerIndex> {
        Some(self)
    }
}

/// Removes `id` from `owner`'s set, and the set when it empties.
fn forget(owners: &mut HashMap<String, HashSet<RecordId>>, owner: &str, id: &RecordId) {
    if let Some(ids) = owners.get_mut(owner) {
        ids.remove(id);
        if ids.is_empty() {
            owners.remove(owner);
        }
    }
}

#[async_trait]
impl OwnerIndex for MemoryStore {
    async fn sessions_of(&self, owner: &str) -> Result<Vec<OwnedSession>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let mut sessions = Vec::new();
        for id in self.indexed(owner) {
            let shard = self.shard(&id);
            let Some(record) = shard.records.get(&id) else {
                continue;
            };
            match record.ownership() {
                Some(ownership) if record.is_live_at(now) && ownership.owner() == owner => {
                    sessions.push(OwnedSession {
                        id,
                        expires_at: record.expires_at(),
                        ownership: ownership.clone(),
                    });
                }
                _ => {}
            }
        }
        sort_listing(&mut sessions);
        Ok(sessions)
    }

    async fn delete_sessions_of(
        &self,
        owner: &str,
        keep: Option<&RecordId>,
    ) -> Result<Vec<RecordId>, StoreError> {
        let mut deleted = Vec::new();
        for id in self.indexed(owner) {
            if Some(&id) == keep {
                continue;
            }
            let mut shard = self.shard(&id);
            let owned = shard
                .records
                .get(&id)
                .and_then(Record::ownership)
                .is_some_and(|ownership| ownership.owner() == owner);
            if owned && let Some(record) = shard.records.remove(&id) {
                self.reindex(&id, record.ownership(), None);
                deleted.push(id);
            }
        }
        Ok(deleted)
    }

    async fn touch_owned(
        &self,
        id: &RecordId,
        expires_at: OffsetDateTime,
        ownership: &Ownership,
    ) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        let mut shard = self.shard(id);
        let existing = self.live(&mut shard, id, now).ok_or(StoreError::NotFound)?;
        existing.set_expires_at(expires_at);
        let before = existing.take_ownership();
        *existing = existing.clone().with_ownership(Some(ownership.clone()));
        self.reindex(id, before.as_ref(), Some(ownership));
        Ok(())
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
