//! `CachedStore`: Django's `cached_db`, write-through over any two stores.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use session_core::time::OffsetDateTime;
use session_core::{Record, RecordId, SessionStore, StoreError, error_chain};

/// The payload of a tombstone: never valid codec output (which is JSON).
const TOMBSTONE: &str = "!logged-out";

/// Settings of a [`CachedStore`].
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
}

impl Default for CachedConfig {
    fn default() -> Self {
        Self {
            tombstone_ttl: Duration::from_secs(60),
            failure_threshold: 3,
            cool_down: Duration::from_secs(5),
        }
    }
}

/// Django's `cached_db`: reads from a cache first, writes through to a durable store: database
/// durability at cache speed. Generic over any two stores, typically
/// `CachedStore<RedisStore, PostgresStore>`.
///
/// - `load` reads the cache; on a miss it reads the durable store and fills the cache with a
///   create-only write, so a fill never overwrites a newer entry.
/// - `create`, `update` and `touch` go to the durable store first, so `DuplicateId` and
///   `NotFound` come from it before the cache is touched; then to the cache.
/// - A cache that fails on a read or a write is logged and bypassed: the request does not fail
///   (Django 5.1 does the same). After a failed cache write, the entry is removed best-effort
///   so it cannot serve stale data. After `failure_threshold` failures in a row the cache is
///   left alone for `cool_down`, then tried again, so a dead cache does not cost its timeout on
///   every request.
/// - `delete` removes the durable record, then leaves a **tombstone** in the cache for
///   `tombstone_ttl`. A tombstone loads as no session and makes every fill fail, which closes
///   the race where a load read the durable store just before a logout and fills the cache
///   just after it. If the cache cannot take the tombstone, `delete` returns an error rather
///   than report a logout that the cache might undo.
/// - `clear_expired` clears the durable store; the cache expires entries itself.
///
/// Concurrent updates of one session are last-writer-wins per store, so under a write race the
/// cache and the durable store may briefly hold different complete versions (as in Django).
/// While the cache is unreachable, updates reach only the durable store: if the cache comes
/// back with its data, it can serve the version from before the outage until that entry
/// expires or is written again.
#[derive(Debug)]
pub struct CachedStore<C, D> {
    cache: C,
    durable: D,
    config: CachedConfig,
    breaker: Breaker,
}

impl<C: SessionStore, D: SessionStore> CachedStore<C, D> {
    /// Write-through over `durable`, reading from `cache` first, with default settings.
    pub fn new(cache: C, durable: D) -> Self {
        Self::with_config(cache, durable, CachedConfig::default())
    }

    /// Write-through with these settings.
    pub fn with_config(cache: C, durable: D, config: CachedConfig) -> Self {
        let breaker = Breaker::new(config.failure_threshold, config.cool_down);
        Self {
            cache,
            durable,
            config,
            breaker,
        }
    }

    /// The cache.
    pub fn cache(&self) -> &C {
        &self.cache
    }

    /// The durable store.
    pub fn durable(&self) -> &D {
        &self.durable
    }

    /// Whether the cache is being bypassed after repeated failures.
    pub fn cache_bypassed(&self) -> bool {
        !self.breaker.allows()
    }

    /// Records a cache outcome in the breaker and logs failures.
    fn observe<T>(&self, what: &str, outcome: Result<T, StoreError>) -> Option<T> {
        match outcome {
            Ok(value) => {
                self.breaker.success();
                Some(value)
            }
            Err(error) => {
                tracing::error!(error = %error_chain(&error), "session cache failed while {what}; using the durable store");
                if self.breaker.failure() {
                    tracing::warn!(
                        cool_down = ?self.config.cool_down,
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
            match self.cache.create(record).await {
                // A stale entry or a fill is there: replace it.
                Err(StoreError::DuplicateId) => {}
                other => return other,
            }
        }
        match self.cache.update(record).await {
            Err(StoreError::NotFound) => match self.cache.create(record).await {
                // A fill got there in between: replace it.
                Err(StoreError::DuplicateId) => self.cache.update(record).await,
                other => other,
            },
            other => other,
        }
    }

    /// After a failed cache write: drop the entry so it cannot serve stale data.
    async fn cache_forget(&self, id: &RecordId) {
        if let Err(error) = self.cache.delete(id).await {
            tracing::warn!(error = %error_chain(&error), "could not drop a stale session cache entry");
        }
    }

    /// Writes a changed record through to the cache, best-effort.
    async fn write_through(&self, record: &Record, new: bool) {
        if !self.breaker.allows() {
            return;
        }
        let outcome = self.cache_put(record, new).await;
        if self.observe("writing a session", outcome).is_none() {
            self.cache_forget(record.id()).await;
        }
    }

    fn tombstone(&self, id: &RecordId) -> Record {
        let ttl = session_core::time::Duration::try_from(self.config.tombstone_ttl)
            .unwrap_or(session_core::time::Duration::MINUTE);
        Record::new(id.clone(), TOMBSTONE, OffsetDateTime::now_utc() + ttl)
    }
}

#[async_trait]
impl<C: SessionStore, D: SessionStore> SessionStore for CachedStore<C, D> {
    async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        let use_cache = self.breaker.allows();
        if use_cache {
            let cached = self.cache.load(id).await;
            if let Some(found) = self.observe("loading a session", cached) {
                match found {
                    Some(record) if record.payload() == TOMBSTONE => return Ok(None),
                    Some(record) => return Ok(Some(record)),
                    None => {}
                }
            }
        }
        let Some(record) = self.durable.load(id).await? else {
            return Ok(None);
        };
        if use_cache && self.breaker.allows() {
            // Create-only: a newer entry or a logout's tombstone wins over this fill.
            match self.cache.create(&record).await {
                Ok(()) | Err(StoreError::DuplicateId) => self.breaker.success(),
                Err(error) => {
                    self.observe::<()>("filling the cache", Err(error));
                }
            }
        }
        Ok(Some(record))
    }

    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        self.durable.create(record).await?;
        self.write_through(record, true).await;
        Ok(())
    }

    async fn update(&self, record: &Record) -> Result<(), StoreError> {
        self.durable.update(record).await?;
        self.write_through(record, false).await;
        Ok(())
    }

    async fn touch(&self, id: &RecordId, expires_at: OffsetDateTime) -> Result<(), StoreError> {
        self.durable.touch(id, expires_at).await?;
        if self.breaker.allows() {
            let outcome = match self.cache.touch(id, expires_at).await {
                // Not cached: the next load fills it from the durable store.
                Err(StoreError::NotFound) => Ok(()),
                other => other,
            };
            if self.observe("touching a session", outcome).is_none() {
                self.cache_forget(id).await;
            }
        }
        Ok(())
    }

    async fn delete(&self, id: &RecordId) -> Result<bool, StoreError> {
        let live = self.durable.delete(id).await?;
        // The cache is told even while bypassed: a logout must not be undone by it.
        let outcome = self.cache_put(&self.tombstone(id), false).await;
        match self.observe("recording a logout", outcome) {
            Some(()) => Ok(live),
            None => Err(StoreError::backend(
                "deleting a cached session",
                "the durable record is deleted, but the cache could not be told; \
                 it may still serve the session",
            )),
        }
    }

    async fn clear_expired(&self) -> Result<u64, StoreError> {
        self.durable.clear_expired().await
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
