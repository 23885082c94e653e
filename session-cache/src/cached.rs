//! `CachedStore`: Django's `cached_db`, write-through over any two stores.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use session_core::time::OffsetDateTime;
use session_core::{
    OwnedSession, OwnerIndex, Ownership, Record, RecordId, SessionStore, StoreError, error_chain,
};

use crate::epoch::{self, Epochs};

/// The payload of a tombstone: never valid codec output (which is JSON).
const TOMBSTONE: &str = "!logged-out";

/// Settings of a [`CachedStore`]: `CachedConfig::new()` (the defaults), then chained setters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedConfig {
    /// How long a deleted session's tombstone stays in the cache, blocking fills that read
    /// the durable store just before the delete (60 s by default; keep it longer than any
    /// request takes).
    pub tombstone_ttl: Duration,
    /// After this many cache failures in a row, the cache is bypassed (3 by default).
    pub failure_threshold: u32,
    /// How long the cache is bypassed before it is tried again (5 s by default).
    pub cool_down: Duration,
    /// How often an instance reads the newest cache epoch from the durable store (1 s by
    /// default): the longest a cache fault seen by *another* instance only (a partition) can
    /// leave this one serving an entry that missed a write.
    pub epoch_refresh: Duration,
    /// After a cache failure, how long this instance reads the durable store instead of the
    /// cache (10 s by default), then reads the newest epoch before trusting the cache again.
    /// Keep it above every instance's `cool_down` plus the cache's timeout: other instances
    /// may still be bypassing the cache (and publishing epochs) that long after the fault.
    pub recovery_window: Duration,
}

impl Default for CachedConfig {
    fn default() -> Self {
        Self {
            tombstone_ttl: Duration::from_secs(60),
            failure_threshold: 3,
            cool_down: Duration::from_secs(5),
            epoch_refresh: Duration::from_secs(1),
            recovery_window: Duration::from_secs(10),
        }
    }
}

impl CachedConfig {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`tombstone_ttl`](Self::tombstone_ttl).
    pub const fn tombstone_ttl(mut self, tombstone_ttl: Duration) -> Self {
        self.tombstone_ttl = tombstone_ttl;
        self
    }

    /// Sets [`failure_threshold`](Self::failure_threshold).
    pub const fn failure_threshold(mut self, failure_threshold: u32) -> Self {
        self.failure_threshold = failure_threshold;
        self
    }

    /// Sets [`cool_down`](Self::cool_down).
    pub const fn cool_down(mut self, cool_down: Duration) -> Self {
        self.cool_down = cool_down;
        self
    }

    /// Sets [`epoch_refresh`](Self::epoch_refresh).
    pub const fn epoch_refresh(mut self, epoch_refresh: Duration) -> Self {
        self.epoch_refresh = epoch_refresh;
        self
    }

    /// Sets [`recovery_window`](Self::recovery_window).
    pub const fn recovery_window(mut self, recovery_window: Duration) -> Self {
        self.recovery_window = recovery_window;
        self
    }
}

/// Django's `cached_db`: reads from a cache first, writes through to a durable store: database
/// durability at cache speed. Generic over any two stores, typically
/// `CachedStore<RedisStore, PostgresStore>`. The durable store is the truth; the cache is an
/// accelerator that is never trusted after it may have missed a write or a delete.
///
/// **The guarantee.** A write or logout that `CachedStore` acknowledged is never rolled back
/// or undone by the cache, whatever the cache does (goes down, comes back empty or from old
/// saved data, freezes and resumes, refuses writes), on this instance and on every instance
/// that saw the fault too. A fault that only another instance sees (a partition) can leave an
/// entry that missed that instance's write served here for at most
/// [`epoch_refresh`](CachedConfig::epoch_refresh).
///
/// **How.** Every cache entry carries the *epoch* it was written under. When a cache write
/// fails or is skipped (the cache is down or bypassed), the instance publishes a new epoch in
/// the durable store (a create-only record) before acknowledging the write; entries of older
/// epochs are misses from then on, for every instance once it reads the newest epoch (every
/// `epoch_refresh`). After a cache failure of its own, an instance reads the durable store for
/// `recovery_window`, then learns the newest epoch before it trusts the cache again. Epoch
/// records (ids starting `ce`/`cf`, payload `epoch`, never expiring) live beside the
/// sessions; `clear_expired` removes all but the newest thousand.
///
/// - `load` reads the cache; on a miss (or an entry of an old epoch) it reads the durable
///   store and fills the cache with a create-only write, so a fill never overwrites a newer
///   entry. A fill is tagged with the epoch read before the durable read, so a fill that
///   lands late is never newer than a fault it raced with.
/// - `create`, `update` and `touch` go to the durable store first, so `DuplicateId` and
///   `NotFound` come from it before the cache is touched; then to the cache.
/// - A cache that fails on a read or a write is logged and bypassed: the request does not fail
///   (Django 5.1 does the same). After `failure_threshold` failures in a row the cache is left
///   alone for `cool_down`, then tried again, so a dead cache does not cost its timeout on
///   every request. A write that fails or is skipped publishes an epoch (a durable write):
///   the write is acknowledged only once the cache cannot undo it; if the epoch cannot be
///   published, the write reports an error although the durable store holds it.
/// - `delete` removes the durable record, then leaves a **tombstone** in the cache for
///   `tombstone_ttl`. A tombstone loads as no session and makes every fill fail, which closes
///   the race where a load read the durable store just before a logout and fills the cache
///   just after it. A logout the cache cannot take still succeeds: the epoch it publishes
///   keeps the cache from serving the session again.
/// - `clear_expired` clears the durable store; the cache expires entries itself.
/// - The owner index is the durable store's (when it has one): sessions ended through it
///   get tombstones like a logout; the owner travels inside the cache entry's tag.
///
/// Concurrent updates of one session are last-writer-wins per store, so under a write race the
/// cache and the durable store may briefly hold different complete versions (as in Django).
///
/// Clones share the same two stores, breaker and epoch view (behind an `Arc`).
#[derive(Debug)]
pub struct CachedStore<C, D> {
    shared: Arc<Shared<C, D>>,
}

impl<C, D> Clone for CachedStore<C, D> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

#[derive(Debug)]
struct Shared<C, D> {
    cache: C,
    durable: D,
    config: CachedConfig,
    breaker: Breaker,
    epochs: Epochs,
}

impl<C: SessionStore, D: SessionStore> CachedStore<C, D> {
    /// Write-through over `durable`, reading from `cache` first, with default settings.
    pub fn new(cache: C, durable: D) -> Self {
        Self::with_config(cache, durable, CachedConfig::default())
    }

    /// Write-through with these settings.
    pub fn with_config(cache: C, durable: D, config: CachedConfig) -> Self {
        let breaker = Breaker::new(config.failure_threshold, config.cool_down);
        let epochs = Epochs::new(config.epoch_refresh, config.recovery_window);
        Self {
            shared: Arc::new(Shared {
                cache,
                durable,
                config,
                breaker,
                epochs,
            }),
        }
    }

    /// The cache.
    pub fn cache(&self) -> &C {
        &self.shared.cache
    }

    /// The durable store.
    pub fn durable(&self) -> &D {
        &self.shared.durable
    }

    /// Whether the cache is being bypassed after repeated failures.
    pub fn cache_bypassed(&self) -> bool {
        !self.shared.breaker.allows()
    }

    /// The newest cache epoch this instance knows (see the type's docs).
    pub fn cache_epoch(&self) -> u64 {
        self.shared.epochs.current()
    }

    /// Records a cache outcome in the breaker and logs failures; a failure also makes this
    /// instance distrust cache reads for the recovery window.
    fn observe<T>(&self, what: &str, outcome: Result<T, StoreError>) -> Option<T> {
        match outcome {
            Ok(value) => {
                self.shared.breaker.success();
                Some(value)
            }
            Err(error) => {
                tracing::error!(error = %error_chain(&error), "session cache failed while {what}; using the durable store");
                self.shared.epochs.distrust();
                if self.shared.breaker.failure() {
                    tracing::warn!(
                        cool_down = ?self.shared.config.cool_down,
                        "session cache failed repeatedly; bypassing it for a while"
                    );
                }
                None
            }
        }
    }

    /// Writes `record` to the cache whether or not an entry is there, trying first the write
    /// that usually fits (`create` for a new session). `Err` on a cache failure.
    async fn cache_put(&self, record: &Record, new: bool) -> Result<(), StoreError> {
        if new {
            match self.shared.cache.create(record).await {
                // A stale entry or a fill is there: replace it.
                Err(StoreError::DuplicateId) => {}
                other => return other,
            }
        }
        match self.shared.cache.update(record).await {
            Err(StoreError::NotFound) => match self.shared.cache.create(record).await {
                // A fill got there in between: replace it.
                Err(StoreError::DuplicateId) => self.shared.cache.update(record).await,
                other => other,
            },
            other => other,
        }
    }

    /// A cache write that did not certainly happen: publish a new epoch before the write is
    /// acknowledged, so the entry it should have replaced is never served again.
    async fn invalidate(&self) -> Result<(), StoreError> {
        self.shared
            .epochs
            .bump(&self.shared.durable)
            .await
            .map_err(|error| StoreError::backend("publishing a session cache epoch", error))
    }

    /// Writes a changed record (or a tombstone) through to the cache under `epoch`.
    async fn write_through(
        &self,
        record: &Record,
        epoch: u64,
        new: bool,
    ) -> Result<(), StoreError> {
        if !self.shared.breaker.allows() {
            return self.invalidate().await;
        }
        let outcome = self.cache_put(&tagged(record, epoch), new).await;
        match self.observe("writing a session", outcome) {
            Some(()) => Ok(()),
            None => self.invalidate().await,
        }
    }

    fn tombstone(&self, id: &RecordId) -> Record {
        let ttl = session_core::time::Duration::try_from(self.shared.config.tombstone_ttl)
            .unwrap_or(session_core::time::Duration::MINUTE);
        Record::new(id.clone(), TOMBSTONE, OffsetDateTime::now_utc() + ttl)
    }

    /// Reads the cache, if it may be read now. `Hit(None)` is a tombstone; `Miss` says
    /// whether a fill may follow.
    async fn read_cache(&self, id: &RecordId) -> Cached {
        if !self.shared.breaker.allows() || !self.shared.epochs.ready(&self.shared.durable).await {
            return Cached::Miss { fill: false };
        }
        let Some(found) = self.observe("loading a session", self.shared.cache.load(id).await)
        else {
            return Cached::Miss { fill: false };
        };
        let Some(record) = found else {
            return Cached::Miss { fill: true };
        };
        let (id, mut payload, expires_at) = record.into_parts();
        let parsed = epoch::parse_tag(&payload).map(|tag| {
            let ownership = tag.ownership.map(Ownership::from_json);
            (tag.epoch, ownership, tag.start)
        });
        match parsed {
            // An ownership that does not read back is a stale entry, like an old epoch.
            Some((epoch, ownership, start))
                if self.shared.epochs.trusts(epoch) && !matches!(ownership, Some(None)) =>
            {
                if &payload[start..] == TOMBSTONE {
                    return Cached::Hit(None);
                }
                payload.drain(..start);
                Cached::Hit(Some(
                    Record::new(id, payload, expires_at).with_ownership(ownership.flatten()),
                ))
            }
            _ => {
                // Written before a fault, or by an older version: drop it, then fill anew.
                let dropped = self.shared.cache.delete(&id).await;
                let fill = self
                    .observe("dropping a stale session entry", dropped)
                    .is_some();
                Cached::Miss { fill }
            }
        }
    }
}

/// The cache entry of `record` under `epoch`: the tagged payload, the ownership inside the
/// tag (so a cache with an owner index of its own does not index it twice).
fn tagged(record: &Record, epoch: u64) -> Record {
    let ownership = record.ownership().map(Ownership::to_json);
    Record::new(
        record.id().clone(),
        epoch::tag(epoch, ownership.as_deref(), record.payload()),
        record.expires_at(),
    )
}

/// What a cache read gave.
enum Cached {
    Hit(Option<Record>),
    Miss { fill: bool },
}

#[async_trait]
impl<C: SessionStore, D: SessionStore> SessionStore for CachedStore<C, D> {
    async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        let fill = match self.read_cache(id).await {
            Cached::Hit(record) => return Ok(record),
            Cached::Miss { fill } => fill,
        };
        // Read before the durable store: a fill is never tagged newer than what it read.
        let epoch = self.shared.epochs.current();
        let Some(record) = self.shared.durable.load(id).await? else {
            return Ok(None);
        };
        if fill && self.shared.breaker.allows() {
            // Create-only: a newer entry or a logout's tombstone wins over this fill. A fill
            // that fails needs no epoch: any later write replaces it or publishes one.
            match self.shared.cache.create(&tagged(&record, epoch)).await {
                Ok(()) | Err(StoreError::DuplicateId) => self.shared.breaker.success(),
                Err(error) => {
                    self.observe::<()>("filling the cache", Err(error));
                }
            }
        }
        Ok(Some(record))
    }

    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        let epoch = self.shared.epochs.current();
        self.shared.durable.create(record).await?;
        self.write_through(record, epoch, true).await
    }

    async fn update(&self, record: &Record) -> Result<(), StoreError> {
        let epoch = self.shared.epochs.current();
        self.shared.durable.update(record).await?;
        self.write_through(record, epoch, false).await
    }

    async fn touch(&self, id: &RecordId, expires_at: OffsetDateTime) -> Result<(), StoreError> {
        self.shared.durable.touch(id, expires_at).await?;
        if !self.shared.breaker.allows() {
            return self.invalidate().await;
        }
        let outcome = match self.shared.cache.touch(id, expires_at).await {
            // Not cached: the next load fills it from the durable store.
            Err(StoreError::NotFound) => Ok(()),
            other => other,
        };
        match self.observe("touching a session", outcome) {
            Some(()) => Ok(()),
            // The cached copy may keep an expiry the durable store no longer has.
            None => self.invalidate().await,
        }
    }

    async fn delete(&self, id: &RecordId) -> Result<bool, StoreError> {
        let epoch = self.shared.epochs.current();
        let live = self.shared.durable.delete(id).await?;
        self.write_through(&self.tombstone(id), epoch, false)
            .await?;
        Ok(live)
    }

    async fn clear_expired(&self) -> Result<u64, StoreError> {
        let cleared = self.shared.durable.clear_expired().await?;
        if let Err(error) = self.shared.epochs.collect(&self.shared.durable).await {
            tracing::warn!(error = %error_chain(&error), "could not remove old session cache epochs");
        }
        Ok(cleared)
    }
    fn key_mapping(&self) -> session_core::KeyMapping {
        self.shared.durable.key_mapping()
    }
    fn codec(&self) -> &dyn session_core::Codec {
        self.shared.durable.codec()
    }
    fn owner_index(&self) -> Option<&dyn OwnerIndex> {
        self.shared
            .durable
            .owner_index()
            .map(|_| self as &dyn OwnerIndex)
    }
}

/// The durable store's owner index, with the cache kept from serving what it deleted: every
/// record `delete_sessions_of` removes gets a tombstone in the cache, as a logout does (and a
/// tombstone the cache cannot take publishes an epoch), so a revoked session is never served
/// from the cache afterwards.
#[async_trait]
impl<C: SessionStore, D: SessionStore> OwnerIndex for CachedStore<C, D> {
    async fn sessions_of(&self, owner: &str) -> Result<Vec<OwnedSession>, StoreError> {
        self.durable_index()?.sessions_of(owner).await
    }

    async fn delete_sessions_of(
        &self,
        owner: &str,
        keep: Option<&RecordId>,
    ) -> Result<Vec<RecordId>, StoreError> {
        let epoch = self.shared.epochs.current();
        let deleted = self
            .durable_index()?
            .delete_sessions_of(owner, keep)
            .await?;
        for id in &deleted {
            self.write_through(&self.tombstone(id), epoch, false)
                .await?;
        }
        Ok(deleted)
    }

    async fn touch_owned(
        &self,
        id: &RecordId,
        expires_at: OffsetDateTime,
        ownership: &Ownership,
    ) -> Result<(), StoreError> {
        self.durable_index()?
            .touch_owned(id, expires_at, ownership)
            .await?;
        if !self.shared.breaker.allows() {
            return self.invalidate().await;
        }
        // The cached copy holds the old ownership: drop it, the next load fills it anew.
        let dropped = self.shared.cache.delete(id).await.map(|_| ());
        match self.observe("dropping a touched session entry", dropped) {
            Some(()) => Ok(()),
            None => self.invalidate().await,
        }
    }
}

impl<C: SessionStore, D: SessionStore> CachedStore<C, D> {
    fn durable_index(&self) -> Result<&dyn OwnerIndex, StoreError> {
        self.shared.durable.owner_index().ok_or_else(|| {
            StoreError::config("the durable store of this CachedStore keeps no owner index")
        })
    }
}

/// Counts cache failures in a row and bypasses the cache for a while after too many.
#[derive(Debug)]
struct Breaker {
    started: Instant,
    threshold: u32,
    cool_down: Duration,
    failures: AtomicU32,
    /// Milliseconds since `started` until which the cache is bypassed.
    open_until: AtomicU64,
}

impl Breaker {
    fn new(threshold: u32, cool_down: Duration) -> Self {
        Self {
            started: Instant::now(),
            threshold: threshold.max(1),
            cool_down,
            failures: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn allows(&self) -> bool {
        self.now() >= self.open_until.load(Ordering::Relaxed)
    }

    fn success(&self) {
        self.failures.store(0, Ordering::Relaxed);
    }

    /// Counts a failure; true when it opens the breaker.
    fn failure(&self) -> bool {
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures < self.threshold {
            return false;
        }
        let cool_down = u64::try_from(self.cool_down.as_millis()).unwrap_or(u64::MAX);
        self.open_until
            .store(self.now().saturating_add(cool_down), Ordering::Relaxed);
        // One more failure after the cool-down opens it again at once.
        self.failures.store(self.threshold - 1, Ordering::Relaxed);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_breaker_opens_after_the_threshold_and_closes_after_the_cool_down() {
        let breaker = Breaker::new(3, Duration::from_millis(50));
        assert!(breaker.allows());
        assert!(!breaker.failure());
        assert!(!breaker.failure());
        assert!(breaker.failure());
        assert!(!breaker.allows());
        std::thread::sleep(Duration::from_millis(80));
        assert!(breaker.allows());
        assert!(
            breaker.failure(),
            "one failure after the cool-down reopens it"
        );
        std::thread::sleep(Duration::from_millis(80));
        breaker.success();
        assert!(!breaker.failure());
    }
}
