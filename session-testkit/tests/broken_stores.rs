//! The kit catches realistic store defects: each deliberately broken variant of an in-memory
//! store fails the contract case written for its kind of defect (and a correct one passes
//! them all, in `third_party_store.rs`). A case that stopped catching its defect fails here.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use session_core::time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time};
use session_core::{Record, RecordId, SessionStore, StoreError, async_trait};
use session_testkit::{Capabilities, CaseContext, run_case};

/// One defect a store author could plausibly write.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Defect {
    /// An operation treats records as live while `expires_at + margin > now`.
    Margin(Op, i64),
    /// Liveness compares against the clock truncated to whole seconds.
    SecondsClock,
    /// The stored expiry is truncated to whole seconds.
    StoredSeconds,
    /// `create` checks, then inserts, without holding the lock in between.
    RacyCreate,
    /// `touch` reads the record and writes it back whole with the new expiry.
    RewritingTouch,
    /// Payloads are trimmed of whitespace.
    TrimmedPayload,
    /// CR LF line endings become LF.
    NormalisedNewlines,
    /// `update` writes half the payload first, then the rest.
    TornUpdate,
    /// Records are keyed by the first 32 characters of the id.
    PrefixKeyed,
    /// Records are keyed by the last 32 characters of the id.
    SuffixKeyed,
    /// A `load` of an expired record removes every expired record.
    LoadPurgesExpired,
    /// `delete` reports any record it removed as live, expired or not.
    DeleteCountsExpired,
    /// `clear_expired` reports how many records it looked at.
    ClearCountsAll,
    /// Expiries are clamped to 2038-01-19 (a 32-bit seconds column).
    Clamped2038,
    /// `touch` only ever extends the expiry.
    ExtendingTouch,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Load,
    Update,
    Touch,
    Delete,
    Clear,
}

struct Broken {
    defect: Defect,
    records: Mutex<HashMap<String, Record>>,
}

impl Broken {
    fn new(defect: Defect) -> Self {
        Self {
            defect,
            records: Mutex::new(HashMap::new()),
        }
    }

    fn records(&self) -> MutexGuard<'_, HashMap<String, Record>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn key(&self, id: &RecordId) -> String {
        let id = id.as_str();
        match self.defect {
            Defect::PrefixKeyed => id[..32].to_owned(),
            Defect::SuffixKeyed => id[32..].to_owned(),
            _ => id.to_owned(),
        }
    }

    fn live(&self, op: Op, record: &Record) -> bool {
        let mut now = OffsetDateTime::now_utc();
        if self.defect == Defect::SecondsClock {
            now = now.replace_millisecond(0).unwrap_or(now);
        }
        let margin = match self.defect {
            Defect::Margin(broken, ms) if broken == op => ms,
            _ => 0,
        };
        record.expires_at() + Duration::milliseconds(margin) > now
    }

    fn stored(&self, record: &Record) -> Record {
        let mut payload = record.payload().to_owned();
        let mut expires_at = record.expires_at();
        match self.defect {
            Defect::TrimmedPayload => payload = payload.trim().to_owned(),
            Defect::NormalisedNewlines => payload = payload.replace("\r\n", "\n"),
            Defect::StoredSeconds => {
                expires_at = expires_at.replace_millisecond(0).unwrap_or(expires_at)
            }
            Defect::Clamped2038 => {
                let limit = PrimitiveDateTime::new(
                    Date::from_calendar_date(2038, Month::January, 19).unwrap(),
                    Time::MIDNIGHT,
                )
                .assume_utc();
                expires_at = expires_at.min(limit);
            }
            _ => {}
        }
        Record::new(record.id().clone(), payload, expires_at)
    }
}

#[async_trait]
impl SessionStore for Broken {
    async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        let mut records = self.records();
        let found = records.get(&self.key(id)).cloned();
        match found {
            Some(record) if self.live(Op::Load, &record) => Ok(Some(record)),
            Some(_) => {
                if self.defect == Defect::LoadPurgesExpired {
                    records.retain(|_, r| r.is_live_at(OffsetDateTime::now_utc()));
                }
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        let key = self.key(record.id());
        let taken = self
            .records()
            .get(&key)
            .is_some_and(|r| self.live(Op::Load, r));
        if taken {
            return Err(StoreError::DuplicateId);
        }
        if self.defect == Defect::RacyCreate {
            tokio::task::yield_now().await;
        }
        self.records().insert(key, self.stored(record));
        Ok(())
    }

    async fn update(&self, record: &Record) -> Result<(), StoreError> {
        let key = self.key(record.id());
        let live = self
            .records()
            .get(&key)
            .is_some_and(|r| self.live(Op::Update, r));
        if !live {
            return Err(StoreError::NotFound);
        }
        let stored = self.stored(record);
        if self.defect == Defect::TornUpdate {
            let half = stored.payload().len() / 2;
            let partial = Record::new(
                stored.id().clone(),
                &stored.payload()[..half],
                stored.expires_at(),
            );
            self.records().insert(key.clone(), partial);
            tokio::task::yield_now().await;
        }
        self.records().insert(key, stored);
        Ok(())
    }

    async fn touch(&self, id: &RecordId, expires_at: OffsetDateTime) -> Result<(), StoreError> {
        let key = self.key(id);
        let Some(mut copy) = self.records().get(&key).cloned() else {
            return Err(StoreError::NotFound);
        };
        if !self.live(Op::Touch, &copy) {
            return Err(StoreError::NotFound);
        }
        let expires_at = if self.defect == Defect::ExtendingTouch {
            expires_at.max(copy.expires_at())
        } else {
            expires_at
        };
        copy.set_expires_at(expires_at);
        if self.defect == Defect::RewritingTouch {
            tokio::task::yield_now().await;
            tokio::time::sleep(std::time::Duration::from_micros(200)).await;
            self.records().insert(key, copy);
        } else if let Some(stored) = self.records().get_mut(&key) {
            stored.set_expires_at(expires_at);
        }
        Ok(())
    }

    async fn delete(&self, id: &RecordId) -> Result<bool, StoreError> {
        let removed = self.records().remove(&self.key(id));
        Ok(match removed {
            Some(_) if self.defect == Defect::DeleteCountsExpired => true,
            Some(record) => self.live(Op::Delete, &record),
            None => false,
        })
    }

    async fn clear_expired(&self) -> Result<u64, StoreError> {
        let mut records = self.records();
        let before = records.len() as u64;
        records.retain(|_, r| self.live(Op::Clear, r));
        let removed = before - records.len() as u64;
        Ok(if self.defect == Defect::ClearCountsAll {
            before
        } else {
            removed
        })
    }
}

/// Runs `case` on a store with `defect` and asserts the case fails.
fn assert_caught(defect: Defect, name: &str, case: fn(CaseContext) -> CaseFuture) {
    let outcome = std::panic::catch_unwind(|| {
        run_case(
            name,
            Capabilities::new(),
            move || async move { Broken::new(defect) },
            case,
        )
    });
    assert!(outcome.is_err(), "{name} passed on a store with {defect:?}");
}

type CaseFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

macro_rules! caught {
    ($($test:ident: $defect:expr => $case:ident;)*) => {$(
        #[test]
        fn $test() {
            fn case(ctx: CaseContext) -> CaseFuture {
                Box::pin(session_testkit::cases::$case(ctx))
            }
            assert_caught($defect, concat!("memory_broken::", stringify!($case)), case);
        }
    )*};
}

caught! {
    memory_broken_load_live_a_millisecond_too_long: Defect::Margin(Op::Load, 1) => store_boundary_load;
    memory_broken_load_gone_a_millisecond_early: Defect::Margin(Op::Load, -1) => store_boundary_load;
    memory_broken_update_live_a_millisecond_too_long: Defect::Margin(Op::Update, 1) => store_boundary_update;
    memory_broken_update_gone_a_millisecond_early: Defect::Margin(Op::Update, -1) => store_boundary_update;
    memory_broken_touch_live_a_millisecond_too_long: Defect::Margin(Op::Touch, 1) => store_boundary_touch;
    memory_broken_touch_gone_a_millisecond_early: Defect::Margin(Op::Touch, -1) => store_boundary_touch;
    memory_broken_delete_live_a_millisecond_too_long: Defect::Margin(Op::Delete, 1) => store_boundary_delete;
    memory_broken_delete_gone_a_millisecond_early: Defect::Margin(Op::Delete, -1) => store_boundary_delete;
    memory_broken_clear_keeps_a_record_expiring_now: Defect::Margin(Op::Clear, 1) => store_boundary_clear_expired;
    memory_broken_seconds_clock: Defect::SecondsClock => store_boundary_load;
    memory_broken_stored_seconds: Defect::StoredSeconds => store_boundary_load;
    memory_broken_racy_create: Defect::RacyCreate => store_create_race_has_one_winner;
    memory_broken_rewriting_touch: Defect::RewritingTouch => store_touch_never_undoes_a_concurrent_update;
    memory_broken_trimmed_payload: Defect::TrimmedPayload => store_payload_kept_byte_for_byte;
    memory_broken_normalised_newlines: Defect::NormalisedNewlines => store_payload_kept_byte_for_byte;
    memory_broken_torn_update: Defect::TornUpdate => store_concurrent_readers_never_see_torn_payloads;
    memory_broken_prefix_keyed: Defect::PrefixKeyed => store_ids_sharing_prefixes_or_suffixes_stay_apart;
    memory_broken_suffix_keyed: Defect::SuffixKeyed => store_ids_sharing_prefixes_or_suffixes_stay_apart;
    memory_broken_load_purges_expired: Defect::LoadPurgesExpired => store_operations_touch_one_record_only;
    memory_broken_delete_counts_expired: Defect::DeleteCountsExpired => store_operations_touch_one_record_only;
    memory_broken_clear_counts_all: Defect::ClearCountsAll => store_boundary_clear_expired;
    memory_broken_clear_removes_records_a_second_early: Defect::Margin(Op::Clear, -1000) => store_boundary_clear_expired;
    memory_broken_clamped_2038: Defect::Clamped2038 => store_far_future_expiries_roundtrip;
    memory_broken_extending_touch: Defect::ExtendingTouch => store_touch_to_the_past_expires_the_record;
}
