//! Cache epochs: how every `CachedStore` sharing a durable store learns that the cache may
//! have missed a write, so that no entry written before that moment is trusted again.
//!
//! Every cache entry carries the epoch it was written under (`#<epoch>:<payload>`). When a
//! cache write fails or is skipped, the instance publishes a new epoch in the durable store
//! (a create-only record, so two instances never publish the same one) before the write is
//! acknowledged, and entries of older epochs are misses from then on. Instances read the
//! newest epoch from the durable store every `epoch_refresh`, and before they read the cache
//! again after a failure of their own.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use session_core::time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};
use session_core::{Record, RecordId, SessionStore, StoreError};

/// Epoch records never expire: `clear_expired` must not remove them.
fn never() -> OffsetDateTime {
    let date = Date::from_calendar_date(9999, Month::December, 31).unwrap_or(Date::MAX);
    PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_utc()
}

/// The durable record that says epoch `n` exists. Ids start with `ce` and are no SHA-256 any
/// session key could hash to (that would need a preimage), so no cookie can name them.
pub(crate) fn epoch_id(n: u64) -> RecordId {
    fixed_id('e', n)
}

/// The durable record holding the newest epoch published (last writer wins: a hint where the
/// search for the newest epoch starts, never trusted alone).
fn hint_id() -> RecordId {
    fixed_id('f', 0)
}

/// The durable record holding the lowest epoch record not yet removed by `clear_expired`.
fn floor_id() -> RecordId {
    fixed_id('f', 1)
}

/// `c<kind><n as 62 hex digits>`: 64 lowercase hex digits, which always parse; the fallback
/// only keeps this free of panics.
fn fixed_id(kind: char, n: u64) -> RecordId {
    RecordId::parse(&format!("c{kind}{n:062x}"))
        .unwrap_or_else(|| session_core::SessionKey::generate().record_id())
}

/// How many epoch records below the newest `clear_expired` keeps, for instances that lag.
const KEPT_EPOCHS: u64 = 1000;
/// How many old epoch records one `clear_expired` removes at most.
const GC_BATCH: u64 = 10_000;

/// The tag on a cache entry's payload: `#<epoch>:<payload>`, or for an owned session
/// `#<epoch>+<n>:<ownership, n bytes of JSON><payload>`, so the cache keeps the owner with
/// the entry without indexing it.
pub(crate) fn tag(epoch: u64, ownership: Option<&str>, payload: &str) -> String {
    let extra = ownership.map_or(0, |json| json.len() + 8);
    let mut tagged = String::with_capacity(payload.len() + 22 + extra);
    tagged.push('#');
    tagged.push_str(&epoch.to_string());
    if let Some(json) = ownership {
        tagged.push('+');
        tagged.push_str(&json.len().to_string());
    }
    tagged.push(':');
    tagged.push_str(ownership.unwrap_or_default());
    tagged.push_str(payload);
    tagged
}

/// What a tag says: the epoch, the ownership JSON (if any) and where the payload starts.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Tag<'a> {
    pub(crate) epoch: u64,
    pub(crate) ownership: Option<&'a str>,
    pub(crate) start: usize,
}

/// Reads a tagged payload's tag; `None` for an untagged one (written by an older version:
/// never trusted) or a malformed one.
pub(crate) fn parse_tag(payload: &str) -> Option<Tag<'_>> {
    let rest = payload.strip_prefix('#')?;
    let colon = rest.find(':')?;
    let head = &rest[..colon];
    let (epoch, owned) = match head.split_once('+') {
        Some((epoch, len)) => (epoch, Some(len.parse::<usize>().ok()?)),
        None => (head, None),
    };
    let epoch = epoch.parse().ok()?;
    let body = colon + 2;
    let Some(len) = owned else {
        return Some(Tag {
            epoch,
            ownership: None,
            start: body,
        });
    };
    let end = body.checked_add(len)?;
    Some(Tag {
        epoch,
        ownership: Some(payload.get(body..end)?),
        start: end,
    })
}

/// One instance's view of the epochs.
#[derive(Debug)]
pub(crate) struct Epochs {
    started: Instant,
    refresh_every: Duration,
    recovery_window: Duration,
    /// The newest epoch this instance knows.
    current: AtomicU64,
    /// Milliseconds since `started` of the last successful refresh.
    refreshed_at: AtomicU64,
    /// No refresh has succeeded yet, or one is required before the cache is read again.
    must_refresh: AtomicBool,
    /// Milliseconds since `started` until which cache reads are not trusted (after a failure).
    distrust_until: AtomicU64,
    /// A publication that failed: retried before the cache is read again.
    unpublished: AtomicBool,
    /// Bumps begun; a skipped or failed write waits for one begun after it.
    bumps_begun: AtomicU64,
    refresh_lock: tokio::sync::Mutex<()>,
    bump_lock: tokio::sync::Mutex<()>,
}

impl Epochs {
    pub(crate) fn new(refresh_every: Duration, recovery_window: Duration) -> Self {
        Self {
            started: Instant::now(),
            refresh_every,
            recovery_window,
            current: AtomicU64::new(0),
            refreshed_at: AtomicU64::new(0),
            must_refresh: AtomicBool::new(true),
            distrust_until: AtomicU64::new(0),
            unpublished: AtomicBool::new(false),
            bumps_begun: AtomicU64::new(0),
            refresh_lock: tokio::sync::Mutex::new(()),
            bump_lock: tokio::sync::Mutex::new(()),
        }
    }

    fn now(&self) -> u64 {
        millis(self.started.elapsed())
    }

    /// The epoch new cache entries are written under.
    pub(crate) fn current(&self) -> u64 {
        self.current.load(Ordering::Acquire)
    }

    /// Whether an entry written under `epoch` may be served.
    pub(crate) fn trusts(&self, epoch: u64) -> bool {
        let current = self.current();
        if epoch > current {
            // Another instance knows a newer epoch: learn it soon.
            self.must_refresh.store(true, Ordering::Release);
        }
        epoch >= current
    }

    /// After any cache failure: cache reads are distrusted for the recovery window, then the
    /// newest epoch is read before the cache is trusted again. Other instances may still be
    /// skipping the cache during that window (their breakers close later).
    pub(crate) fn distrust(&self) {
        let until = self.now().saturating_add(millis(self.recovery_window));
        self.distrust_until.fetch_max(until, Ordering::AcqRel);
        self.must_refresh.store(true, Ordering::Release);
    }

    /// Whether the cache may be read now: not within the recovery window, and the newest
    /// epoch is known (refreshed from `durable` when due). `false` when the refresh failed.
    pub(crate) async fn ready<D: SessionStore + ?Sized>(&self, durable: &D) -> bool {
        if self.now() < self.distrust_until.load(Ordering::Acquire) {
            return false;
        }
        let due = self.must_refresh.load(Ordering::Acquire)
            || self.unpublished.load(Ordering::Acquire)
            || self
                .now()
                .saturating_sub(self.refreshed_at.load(Ordering::Acquire))
                >= millis(self.refresh_every);
        if !due {
            return true;
        }
        match self.refresh(durable).await {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(
                    error = %session_core::error_chain(&error),
                    "could not read the session cache epoch; not using the cache"
                );
                false
            }
        }
    }

    /// Reads the newest epoch: from the hint (or what is known) upward while epoch records
    /// exist. Retries a failed publication first.
    async fn refresh<D: SessionStore + ?Sized>(&self, durable: &D) -> Result<(), StoreError> {
        let _guard = self.refresh_lock.lock().await;
        let started = self.now();
        if self.unpublished.load(Ordering::Acquire) {
            self.publish_after(durable, self.current()).await?;
        }
        let must = self.must_refresh.swap(false, Ordering::AcqRel);
        let result = async {
            let hint = read_counter(durable, &hint_id()).await?;
            let mut newest = self.current().max(hint);
            while durable.load(&epoch_id(newest + 1)).await?.is_some() {
                newest += 1;
            }
            self.current.fetch_max(newest, Ordering::AcqRel);
            Ok(())
        }
        .await;
        match result {
            Ok(()) => self.refreshed_at.store(started, Ordering::Release),
            Err(_) if must => self.must_refresh.store(true, Ordering::Release),
            Err(_) => {}
        }
        result
    }

    /// Publishes an epoch newer than every cache write begun before this call, so none of
    /// them is trusted again by any instance (after its next refresh). Concurrent callers share
    /// one publication when it began after they called. On error the new epoch is still in
    /// force here and is published later; the caller must not report its write as safe.
    pub(crate) async fn bump<D: SessionStore + ?Sized>(
        &self,
        durable: &D,
    ) -> Result<(), StoreError> {
        let ticket = self.bumps_begun.load(Ordering::Acquire);
        let _guard = self.bump_lock.lock().await;
        if self.bumps_begun.load(Ordering::Acquire) > ticket
            && !self.unpublished.load(Ordering::Acquire)
        {
            return Ok(());
        }
        self.bumps_begun.fetch_add(1, Ordering::AcqRel);
        // In force here at once: this instance trusts no older entry from now on.
        let mine = self.current.fetch_add(1, Ordering::AcqRel) + 1;
        self.publish_after(durable, mine - 1).await
    }

    /// Creates the first free epoch record above `known` and makes it current; sets the hint.
    async fn publish_after<D: SessionStore + ?Sized>(
        &self,
        durable: &D,
        known: u64,
    ) -> Result<(), StoreError> {
        self.unpublished.store(true, Ordering::Release);
        let mut next = known + 1;
        loop {
            let record = Record::new(epoch_id(next), "epoch", never());
            match durable.create(&record).await {
                Ok(()) => break,
                // Another instance published this one: ours must be newer still.
                Err(StoreError::DuplicateId) => next += 1,
                Err(error) => return Err(error),
            }
        }
        self.current.fetch_max(next, Ordering::AcqRel);
        self.unpublished.store(false, Ordering::Release);
        tracing::info!(
            epoch = next,
            "session cache epoch published: older cache entries are no longer trusted"
        );
        write_counter(durable, hint_id(), next).await
    }

    /// Removes old epoch records (all but the newest [`KEPT_EPOCHS`]), at most [`GC_BATCH`].
    pub(crate) async fn collect<D: SessionStore + ?Sized>(
        &self,
        durable: &D,
    ) -> Result<(), StoreError> {
        let floor = read_counter(durable, &floor_id()).await?;
        let until = self
            .current()
            .saturating_sub(KEPT_EPOCHS)
            .min(floor + GC_BATCH);
        if until <= floor {
            return Ok(());
        }
        for n in floor..until {
            durable.delete(&epoch_id(n)).await?;
        }
        write_counter(durable, floor_id(), until).await
    }
}

/// The number a counter record (the hint, the floor) holds; 0 when there is none.
async fn read_counter<D: SessionStore + ?Sized>(
    durable: &D,
    id: &RecordId,
) -> Result<u64, StoreError> {
    Ok(durable
        .load(id)
        .await?
        .and_then(|record| record.payload().parse().ok())
        .unwrap_or(0))
}

/// Writes a counter record; the last writer wins.
async fn write_counter<D: SessionStore + ?Sized>(
    durable: &D,
    id: RecordId,
    value: u64,
) -> Result<(), StoreError> {
    let record = Record::new(id, value.to_string(), never());
    match durable.update(&record).await {
        Err(StoreError::NotFound) => match durable.create(&record).await {
            Ok(()) | Err(StoreError::DuplicateId) => Ok(()),
            Err(error) => Err(error),
        },
        other => other,
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cached_epochs_are_published_found_by_others_and_collected() {
        let durable = session_core::MemoryStore::new();
        let mine = Epochs::new(Duration::from_millis(1), Duration::ZERO);
        let bumps = KEPT_EPOCHS + 250;
        for _ in 0..bumps {
            mine.bump(&durable).await.unwrap();
        }
        assert_eq!(mine.current(), bumps);
        // Another instance finds the newest epoch from the hint.
        let other = Epochs::new(Duration::from_millis(1), Duration::ZERO);
        assert!(other.ready(&durable).await);
        assert_eq!(other.current(), bumps);
        assert!(!other.trusts(bumps - 1) && other.trusts(bumps));
        // A publication by the other one is newer still, and this one learns it.
        other.bump(&durable).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(mine.ready(&durable).await);
        assert_eq!(mine.current(), bumps + 1);
        // Cleanup keeps the newest thousand records, and the newest is still found.
        mine.collect(&durable).await.unwrap();
        for n in [1, 100, 250] {
            assert!(
                durable.load(&epoch_id(n)).await.unwrap().is_none(),
                "epoch {n}"
            );
        }
        for n in [bumps + 1 - KEPT_EPOCHS, bumps + 1] {
            assert!(
                durable.load(&epoch_id(n)).await.unwrap().is_some(),
                "epoch {n}"
            );
        }
        mine.collect(&durable).await.unwrap();
        let late = Epochs::new(Duration::from_millis(1), Duration::ZERO);
        assert!(late.ready(&durable).await);
        assert_eq!(late.current(), bumps + 1);
    }

    #[test]
    fn cached_epoch_tags_round_trip_and_untagged_payloads_are_refused() {
        let tagged = tag(42, None, r#"{"v":1}"#);
        assert_eq!(tagged, r##"#42:{"v":1}"##);
        let parsed = parse_tag(&tagged).unwrap();
        assert_eq!((parsed.epoch, &tagged[parsed.start..]), (42, r#"{"v":1}"#));
        let owned = tag(7, Some(r#"{"o":"a:b"}"#), r#"{"v":1}"#);
        let parsed = parse_tag(&owned).unwrap();
        assert_eq!(parsed.ownership, Some(r#"{"o":"a:b"}"#));
        assert_eq!(&owned[parsed.start..], r#"{"v":1}"#);
        for untagged in [
            r#"{"v":1}"#,
            "#x:{}",
            "#:{}",
            "#12",
            "",
            "!logged-out",
            "#1+99:{}",
            "#1+x:{}",
        ] {
            assert_eq!(parse_tag(untagged), None, "{untagged}");
        }
        assert_ne!(epoch_id(0), hint_id());
        assert_ne!(epoch_id(1), floor_id());
        assert_eq!(epoch_id(u64::MAX).as_str().len(), 64);
    }
}
