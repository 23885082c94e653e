//! Store-contract cases that pin the rules down where defects hide: the live/expired boundary
//! to the millisecond, atomic `create`, `touch` against concurrent `update`, byte-exact and
//! untorn payloads, ids kept apart, operations that must touch one record only, far-future
//! expiries. Each case says in its doc comment which rule it checks.
//!
//! The boundary cases cannot set the store's clock, so they watch it: every call is bracketed
//! by the wall clock read just before and just after it. A record answered as live by a call
//! that started at or after its expiry, or as gone by a call that ended before its expiry,
//! breaks the rule "live exactly while `expires_at > now`", whatever else the timing was.
//! Calls are repeated around the boundary so that a store off by a millisecond is caught,
//! not only one off by seconds.

use std::collections::HashSet;
use std::time::Duration as StdDuration;

use session_core::record::{from_unix_millis, unix_millis};
use session_core::time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};
use session_core::{Record, RecordId, StoreError};

use crate::CaseContext;
use crate::fixtures::{envelope, payload_of};

/// The wall clock in Unix milliseconds.
fn now_ms() -> i64 {
    unix_millis(OffsetDateTime::now_utc())
}

/// A record with `payload` expiring at `expires_ms` (Unix milliseconds).
fn record_at(id: &RecordId, payload: &str, expires_ms: i64) -> Record {
    let at = from_unix_millis(expires_ms).unwrap_or_else(OffsetDateTime::now_utc);
    Record::new(id.clone(), payload, at)
}

/// Waits until the wall clock reads `ms` (Unix milliseconds) or later.
async fn wait_until(ms: i64) {
    let ahead = ms - now_ms();
    if ahead > 3 {
        tokio::time::sleep(StdDuration::from_millis((ahead - 3).unsigned_abs())).await;
    }
    while now_ms() < ms {
        std::hint::spin_loop();
        tokio::task::yield_now().await;
    }
}

/// What one bracketed call said about liveness.
struct Observation {
    before: i64,
    after: i64,
    live: bool,
}

/// Checks one observation against the rule; `op` names the operation for the message.
fn check(op: &str, expires_ms: i64, seen: &Observation) {
    assert!(
        !(seen.live && seen.before >= expires_ms),
        "{op} answered a record as live although the call started {} ms after it expired \
         (a record is live exactly while expires_at > now)",
        seen.before - expires_ms
    );
    assert!(
        seen.live || seen.after >= expires_ms,
        "{op} answered a record as gone although the call ended {} ms before it expired \
         (a record is live exactly while expires_at > now)",
        expires_ms - seen.after
    );
}

/// Repeats `probe` on one record from a second before its expiry until just after it;
/// `probe` says whether the store answered the record as live. A slow or loaded store may
/// cross the boundary in a few calls: the rule holds for every call whatever their number,
/// and the other boundary records of the case give more chances.
async fn probe_boundary<F, Fut>(op: &str, expires_ms: i64, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    wait_until(expires_ms - 1_050).await;
    loop {
        let before = now_ms();
        let live = probe().await;
        let after = now_ms();
        check(
            op,
            expires_ms,
            &Observation {
                before,
                after,
                live,
            },
        );
        if before > expires_ms + 15 {
            break;
        }
        // Densely around the boundary, sparsely before it.
        if expires_ms - after > 60 {
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        }
    }
}

/// How many records each boundary case watches expire, one after another: a thread that is
/// descheduled through one boundary millisecond is unlikely to miss all of them.
const BOUNDARIES: i64 = 5;

/// The expiries the boundary cases use: a little over a second from now, then 150 ms apart.
fn soon() -> Vec<i64> {
    let base = now_ms() + 1_200;
    (0..BOUNDARIES).map(|k| base + k * 150).collect()
}

/// Creates one record per expiry.
async fn boundary_records(ctx: &CaseContext, expiries: &[i64]) -> Vec<RecordId> {
    let mut ids = Vec::new();
    for &expires in expiries {
        let id = ctx.fresh_id();
        ctx.store()
            .create(&record_at(&id, &payload_of("edge"), expires))
            .await
            .expect("create");
        ids.push(id);
    }
    ids
}

/// `load` answers a record exactly while `expires_at > now`: not a millisecond longer or
/// shorter, and not off by whole seconds (a store comparing seconds, or rounding the stored
/// expiry, fails).
pub async fn store_boundary_load(ctx: CaseContext) {
    let expiries = soon();
    let ids = boundary_records(&ctx, &expiries).await;
    let store = ctx.store().clone();
    for (id, &expires) in ids.iter().zip(&expiries) {
        probe_boundary("load", expires, || async {
            store.load(id).await.expect("load").is_some()
        })
        .await;
    }
}

/// `update` with an unchanged expiry succeeds exactly while the record is live and is
/// `NotFound` from its expiry on; it never extends the expiry it was given.
pub async fn store_boundary_update(ctx: CaseContext) {
    let expiries = soon();
    let ids = boundary_records(&ctx, &expiries).await;
    let store = ctx.store().clone();
    let mut n = 0u64;
    for (id, &expires) in ids.iter().zip(&expiries) {
        probe_boundary("update", expires, || {
            n += 1;
            let written = record_at(id, &payload_of(&format!("edge{n}")), expires);
            let store = store.clone();
            async move {
                match store.update(&written).await {
                    Ok(()) => true,
                    Err(StoreError::NotFound) => false,
                    Err(error) => panic!("update failed: {error:?}"),
                }
            }
        })
        .await;
    }
}

/// `touch` to the record's own (unchanged) expiry succeeds exactly while the record is live,
/// and is `NotFound` from its expiry on.
pub async fn store_boundary_touch(ctx: CaseContext) {
    let expiries = soon();
    let ids = boundary_records(&ctx, &expiries).await;
    let store = ctx.store().clone();
    for (id, &expires) in ids.iter().zip(&expiries) {
        let at = from_unix_millis(expires).expect("a date");
        probe_boundary("touch", expires, || async {
            match store.touch(id, at).await {
                Ok(()) => true,
                Err(StoreError::NotFound) => false,
                Err(error) => panic!("touch failed: {error:?}"),
            }
        })
        .await;
    }
}

/// `delete` reports `true` exactly for a record still live when it runs: one deleted just
/// before its expiry was live, one deleted at or after it was not.
pub async fn store_boundary_delete(ctx: CaseContext) {
    let store = ctx.store().clone();
    let base = now_ms() + 400;
    // Pairs of records, one deleted in the last millisecond before its expiry, one right at
    // it.
    for step in 0..12i64 {
        let expires = base + step * 25;
        let early = ctx.fresh_id();
        let late = ctx.fresh_id();
        for id in [&early, &late] {
            store
                .create(&record_at(id, &payload_of("edge"), expires))
                .await
                .expect("create");
        }
        for (id, at) in [(&early, expires - 1), (&late, expires)] {
            wait_until(at).await;
            let before = now_ms();
            let live = store.delete(id).await.expect("delete");
            let after = now_ms();
            check(
                "delete",
                expires,
                &Observation {
                    before,
                    after,
                    live,
                },
            );
        }
    }
}

/// `clear_expired` removes a record whose expiry has come (`expires_at <= now`), counts it,
/// and leaves every record that is still live, even one a second from its expiry (a store
/// off by whole seconds in either direction fails); run again, it counts nothing.
pub async fn store_boundary_clear_expired(ctx: CaseContext) {
    let store = ctx.store().clone();
    let live = ctx.fresh_id();
    store
        .create(&record_at(&live, &payload_of("live"), now_ms() + 60_000))
        .await
        .expect("create");
    let near = ctx.fresh_id();
    let near_expires = now_ms() + 1_500;
    store
        .create(&record_at(&near, &payload_of("near"), near_expires))
        .await
        .expect("create");
    for step in 0..8i64 {
        let id = ctx.fresh_id();
        let expires = now_ms() + 60 + step;
        store
            .create(&record_at(&id, &payload_of("edge"), expires))
            .await
            .expect("create");
        wait_until(expires).await;
        let removed = store.clear_expired().await.expect("clear_expired");
        let again = store.clear_expired().await.expect("again");
        // Until `near` expires, exactly the one record at its expiry may go.
        let near_live = now_ms() < near_expires;
        if !ctx.caps().self_expiring && near_live {
            assert_eq!(
                removed, 1,
                "clear_expired at a record's expiry counted {removed}, not 1: a record with \
                 expires_at <= now is expired, one with expires_at > now is not"
            );
            assert_eq!(
                again, 0,
                "a second clear_expired counted {again} records again"
            );
        }
        assert_eq!(store.load(&id).await.expect("load"), None);
        if near_live {
            assert!(
                store.load(&near).await.expect("load").is_some(),
                "clear_expired removed a record {} ms before its expiry",
                near_expires - now_ms()
            );
        }
    }
    assert!(
        store.load(&live).await.expect("load").is_some(),
        "clear_expired removed a live record"
    );
}

/// `create` of one id from many tasks at once is atomic: exactly one wins, every other gets
/// `DuplicateId`, and the record holds the winner's payload.
pub async fn store_create_race_has_one_winner(ctx: CaseContext) {
    for round in 0..5 {
        let id = ctx.fresh_id();
        let tasks: Vec<_> = (0..32)
            .map(|n| {
                let store = ctx.store().clone();
                let record = record_at(
                    &id,
                    &payload_of(&format!("r{round}n{n}")),
                    now_ms() + 60_000,
                );
                tokio::spawn(async move { (store.create(&record).await, record) })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            match task.await.expect("task") {
                (Ok(()), record) => winners.push(record),
                (Err(StoreError::DuplicateId), _) => {}
                (Err(error), _) => panic!("create failed: {error:?}"),
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "{} of 32 concurrent creates of one id succeeded; exactly one may",
            winners.len()
        );
        let loaded = ctx.store().load(&id).await.expect("load");
        assert_eq!(
            loaded.as_ref(),
            winners.first(),
            "the record is not the winner's"
        );
    }
}

/// `touch` moves the expiry only: run against concurrent `update`s it never brings back an
/// older payload (a store that reads the record and writes it back whole does).
pub async fn store_touch_never_undoes_a_concurrent_update(ctx: CaseContext) {
    let id = ctx.fresh_id();
    let store = ctx.store().clone();
    store
        .create(&record_at(&id, &payload_of("v0"), now_ms() + 600_000))
        .await
        .expect("create");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let toucher = {
        let (store, id, stop) = (store.clone(), id.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0i64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let at = from_unix_millis(now_ms() + 600_000 + n).expect("a date");
                store.touch(&id, at).await.expect("touch");
            }
        })
    };
    for v in 1..=150 {
        let payload = payload_of(&format!("v{v}"));
        store
            .update(&record_at(&id, &payload, now_ms() + 600_000))
            .await
            .expect("update");
        // Once at once, once after a pause in which a rewriting touch lands.
        for pause in [0, 2] {
            tokio::time::sleep(StdDuration::from_millis(pause)).await;
            let loaded = store.load(&id).await.expect("load").expect("live");
            assert_eq!(
                loaded.payload(),
                payload,
                "after update {v} the store returned an older payload: a concurrent touch \
                 rewrote the record (touch must change the expiry only)"
            );
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    toucher.await.expect("toucher");
}

/// Payloads are kept byte for byte: whitespace at either end, CR/LF line endings, escapes,
/// and characters of every Unicode plane.
pub async fn store_payload_kept_byte_for_byte(ctx: CaseContext) {
    let planes =
        "\u{7f}\u{80}\u{7ff}\u{800}\u{ffef}\u{1f600}\u{20000}\u{30000}\u{e0001}\u{f0000}\u{10fffd}";
    let payloads = [
        format!("  {}  ", envelope(r#"{"a":1}"#)),
        format!("\n\t{}\r\n", envelope(r#"{"a":1}"#)),
        envelope("{\"lines\":\"one\\r\\ntwo\\nthree\\r\"}"),
        envelope(r#"{"esc":"\\\" \\\\ \\/ \\b\\f\\n\\r\\t \\u00e9 \\ud83d\\ude00 %25 ' ` $1 ?"}"#),
        envelope(&format!(r#"{{"planes":"{planes}"}}"#)),
        String::from(" "),
        format!("{}\r\n\r\n", envelope("{}")),
    ];
    for (n, payload) in payloads.iter().enumerate() {
        let id = ctx.fresh_id();
        let store = ctx.store();
        store
            .create(&record_at(&id, payload, now_ms() + 60_000))
            .await
            .expect("create");
        let loaded = store.load(&id).await.expect("load").expect("live");
        assert!(
            loaded.payload() == payload,
            "payload {n} came back changed after create: wrote {payload:?}, read {:?}",
            loaded.payload()
        );
        let next = payloads[(n + 1) % payloads.len()].clone();
        store
            .update(&record_at(&id, &next, now_ms() + 60_000))
            .await
            .expect("update");
        let loaded = store.load(&id).await.expect("load").expect("live");
        assert!(
            loaded.payload() == next,
            "payload came back changed after update: wrote {next:?}, read {:?}",
            loaded.payload()
        );
    }
}

/// Readers never see a torn payload: while one task rewrites a record with two large
/// payloads in turn, every concurrent load returns one of them whole.
pub async fn store_concurrent_readers_never_see_torn_payloads(ctx: CaseContext) {
    let id = ctx.fresh_id();
    let a = envelope(&format!(r#"{{"fill":"{}"}}"#, "a".repeat(96 * 1024)));
    let b = envelope(&format!(r#"{{"fill":"{}"}}"#, "b".repeat(64 * 1024)));
    let store = ctx.store().clone();
    store
        .create(&record_at(&id, &a, now_ms() + 600_000))
        .await
        .expect("create");
    let writer = {
        let (store, id, a, b) = (store.clone(), id.clone(), a.clone(), b.clone());
        tokio::spawn(async move {
            for n in 0..60 {
                let payload = if n % 2 == 0 { &b } else { &a };
                store
                    .update(&record_at(&id, payload, now_ms() + 600_000))
                    .await
                    .expect("update");
            }
        })
    };
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (store, id, a, b) = (store.clone(), id.clone(), a.clone(), b.clone());
            tokio::spawn(async move {
                for _ in 0..60 {
                    let loaded = store.load(&id).await.expect("load").expect("live");
                    let payload = loaded.payload();
                    assert!(
                        payload == a || payload == b,
                        "a reader saw a torn payload of {} bytes (wrote {} or {})",
                        payload.len(),
                        a.len(),
                        b.len()
                    );
                }
            })
        })
        .collect();
    writer.await.expect("writer");
    for reader in readers {
        reader.await.expect("reader");
    }
}

/// Ids are whole keys: ids that share all but their last or first character are separate
/// records (a store keying by part of the id mixes them up).
pub async fn store_ids_sharing_prefixes_or_suffixes_stay_apart(ctx: CaseContext) {
    let salt = ctx.fresh_id();
    let len = salt.as_str().len();
    let stem: String = salt.as_str()[..len - 1].to_owned();
    let ids: Vec<RecordId> = ["0", "1", "f"]
        .iter()
        .flat_map(|end| [format!("{stem}{end}"), format!("{end}{stem}")])
        .map(|text| ctx.id_from_text(&text).expect("an id of the store's shape"))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let store = ctx.store();
    for (n, id) in ids.iter().enumerate() {
        store
            .create(&record_at(
                id,
                &payload_of(&format!("id{n}")),
                now_ms() + 60_000,
            ))
            .await
            .unwrap_or_else(|error| {
                panic!("create of id {n} failed ({error:?}): ids are mixed up")
            });
    }
    for (n, id) in ids.iter().enumerate() {
        let loaded = store.load(id).await.expect("load").expect("live");
        assert_eq!(
            loaded.payload(),
            payload_of(&format!("id{n}")),
            "id {id} returned another id's record"
        );
    }
    assert!(store.delete(&ids[0]).await.expect("delete"));
    for id in &ids[1..] {
        assert!(
            store.load(id).await.expect("load").is_some(),
            "deleting {} removed {id}",
            ids[0]
        );
    }
}

/// Operations on one record touch no other: a `load` of an expired record removes at most
/// that record, a `delete` only its own, and `delete` and `clear_expired` count right when
/// run one after another.
pub async fn store_operations_touch_one_record_only(ctx: CaseContext) {
    let store = ctx.store();
    let live: Vec<RecordId> = (0..3).map(|_| ctx.fresh_id()).collect();
    let expired: Vec<RecordId> = (0..3).map(|_| ctx.fresh_id()).collect();
    for id in &live {
        store
            .create(&record_at(id, &payload_of("live"), now_ms() + 60_000))
            .await
            .expect("create");
    }
    for id in &expired {
        store
            .create(&record_at(id, &payload_of("old"), now_ms() - 60_000))
            .await
            .expect("create");
    }
    assert_eq!(store.load(&expired[0]).await.expect("load"), None);
    assert_eq!(store.load(&ctx.fresh_id()).await.expect("load"), None);
    for id in &live {
        assert!(
            store.load(id).await.expect("load").is_some(),
            "loading another record removed a live one"
        );
    }
    assert!(store.delete(&live[0]).await.expect("delete"));
    assert!(
        !store.delete(&live[0]).await.expect("delete again"),
        "a second delete reported a live record"
    );
    assert!(!store.delete(&expired[1]).await.expect("delete expired"));
    for id in &live[1..] {
        assert!(
            store.load(id).await.expect("load").is_some(),
            "deleting one record removed another"
        );
    }
    let removed = store.clear_expired().await.expect("clear_expired");
    if !ctx.caps().self_expiring {
        // expired[0] may be gone (a load may delete the expired record it found) and so may
        // expired[1] (deleted above); expired[2] must still be there for clear_expired.
        assert!(
            (1..=3).contains(&removed),
            "clear_expired counted {removed}: expired[2] was removed earlier (a load or \
             delete touched another record), or it counted more than was there"
        );
        assert_eq!(store.clear_expired().await.expect("again"), 0);
    }
    for id in &live[1..] {
        assert!(
            store.load(id).await.expect("load").is_some(),
            "clear_expired removed a live record"
        );
    }
}

/// Far-future expiries (past 2038, past 2106, the last millisecond of year 9999) round-trip
/// to the millisecond through `create`, `update` and `touch`, and the record stays live.
pub async fn store_far_future_expiries_roundtrip(ctx: CaseContext) {
    let moment = |year, month, day, ms| {
        let date = Date::from_calendar_date(year, month, day).expect("a date");
        let time = Time::from_hms_milli(23, 59, 59, ms).expect("a time");
        PrimitiveDateTime::new(date, time).assume_utc()
    };
    let far = [
        moment(2038, Month::January, 19, 7),
        moment(2106, Month::February, 7, 500),
        moment(2200, Month::June, 30, 1),
        moment(9999, Month::December, 31, 999),
    ];
    let store = ctx.store();
    for at in far {
        let id = ctx.fresh_id();
        let written = Record::new(id.clone(), payload_of("far"), at);
        store.create(&written).await.expect("create");
        let loaded = store.load(&id).await.expect("load");
        assert_eq!(
            loaded.as_ref(),
            Some(&written),
            "expiry {at} did not round-trip"
        );
        let updated = Record::new(id.clone(), payload_of("far2"), at);
        store
            .update(&updated)
            .await
            .expect("update with an unchanged expiry");
        store
            .touch(&id, at)
            .await
            .expect("touch with an unchanged expiry");
        let loaded = store.load(&id).await.expect("load");
        assert_eq!(loaded.as_ref(), Some(&updated), "expiry {at} changed");
    }
}

/// `touch` sets the expiry it is given, earlier ones included: a touch to a past moment
/// succeeds and leaves the record expired (a store that only ever extends fails).
pub async fn store_touch_to_the_past_expires_the_record(ctx: CaseContext) {
    let store = ctx.store();
    let id = ctx.fresh_id();
    store
        .create(&record_at(&id, &payload_of("x"), now_ms() + 60_000))
        .await
        .expect("create");
    let earlier = from_unix_millis(now_ms() + 30_000).expect("a date");
    store
        .touch(&id, earlier)
        .await
        .expect("touch to an earlier moment");
    let loaded = store.load(&id).await.expect("load").expect("live");
    assert_eq!(
        loaded.expires_at(),
        earlier,
        "touch did not set the earlier expiry it was given"
    );
    let past = from_unix_millis(now_ms() - 1_000).expect("a date");
    store
        .touch(&id, past)
        .await
        .expect("touch to a past moment");
    assert_eq!(
        store.load(&id).await.expect("load"),
        None,
        "a record touched to a past moment is still served"
    );
    assert!(
        matches!(store.touch(&id, earlier).await, Err(StoreError::NotFound)),
        "touch revived an expired record"
    );
}
