//! Store-contract cases: what every `SessionStore` must do with records.

use std::collections::HashSet;
use std::time::Duration as StdDuration;

use session_core::time::{Duration, OffsetDateTime};
use session_core::{Record, RecordId, StoreError};

use super::{envelope, in_ms, payload_of};
use crate::CaseContext;

fn record(id: &RecordId, payload: &str, expires_in_ms: i64) -> Record {
    Record::new(id.clone(), payload, in_ms(expires_in_ms))
}

async fn roundtrip(ctx: &CaseContext, payload: String) {
    let id = ctx.fresh_id();
    let written = record(&id, &payload, 3_600_000);
    ctx.store().create(&written).await.expect("create");
    let loaded = ctx.store().load(&id).await.expect("load");
    assert_eq!(
        loaded.as_ref(),
        Some(&written),
        "the record must load back exactly"
    );
}

/// Loading an id that was never stored gives `None`.
pub async fn store_load_missing_is_none(ctx: CaseContext) {
    assert_eq!(ctx.store().load(&ctx.fresh_id()).await.expect("load"), None);
}

/// Unicode in the payload round-trips.
pub async fn store_roundtrip_unicode(ctx: CaseContext) {
    roundtrip(
        &ctx,
        envelope(r#"{"name":"Zoë Ångström","city":"東京","mood":"🎉","rtl":"שלום"}"#),
    )
    .await;
}

/// A JSON `\u0000` escape round-trips untouched.
pub async fn store_roundtrip_nul_escape(ctx: CaseContext) {
    roundtrip(
        &ctx,
        envelope(r#"{"nul":"a\u0000b","quote":"\"","backslash":"\\"}"#),
    )
    .await;
}

/// A 100 KiB payload round-trips.
pub async fn store_roundtrip_100_kib(ctx: CaseContext) {
    let big = "x".repeat(100 * 1024);
    roundtrip(&ctx, envelope(&format!(r#"{{"big":"{big}"}}"#))).await;
}

/// A payload of exactly the default session size limit (1 MiB, multi-byte characters
/// included) round-trips byte for byte, and so does it after an `update`: a store must hold
/// whatever `SessionConfig::max_payload_bytes` lets through.
pub async fn store_roundtrip_at_size_limit(ctx: CaseContext) {
    let limit = session_core::DEFAULT_MAX_PAYLOAD_BYTES;
    let frame = envelope(r#"{"big":""}"#).len();
    let mut big = String::from("é€😀");
    big.push_str(&"y".repeat(limit - frame - big.len()));
    let payload = envelope(&format!(r#"{{"big":"{big}"}}"#));
    assert_eq!(payload.len(), limit);
    roundtrip(&ctx, payload.clone()).await;
    let id = ctx.fresh_id();
    ctx.store()
        .create(&record(&id, &payload_of("small"), 3_600_000))
        .await
        .expect("create");
    let full = record(&id, &payload, 3_600_000);
    ctx.store()
        .update(&full)
        .await
        .expect("update at the limit");
    let loaded = ctx.store().load(&id).await.expect("load").expect("live");
    assert!(
        loaded.payload() == payload,
        "the 1 MiB payload came back changed"
    );
}

/// An empty payload object round-trips.
pub async fn store_roundtrip_empty_object(ctx: CaseContext) {
    roundtrip(&ctx, String::from("{}")).await;
}

/// `create` of a live id is `DuplicateId` and leaves the first record untouched.
pub async fn store_create_live_duplicate_is_rejected(ctx: CaseContext) {
    let id = ctx.fresh_id();
    let first = record(&id, &payload_of("first"), 3_600_000);
    ctx.store().create(&first).await.expect("create");
    let second = record(&id, &payload_of("second"), 7_200_000);
    let outcome = ctx.store().create(&second).await;
    assert!(
        matches!(outcome, Err(StoreError::DuplicateId)),
        "expected DuplicateId, got {outcome:?}"
    );
    assert_eq!(ctx.store().load(&id).await.expect("load"), Some(first));
}

/// `create` over an expired leftover with the same id succeeds and replaces it.
pub async fn store_create_replaces_expired_leftover(ctx: CaseContext) {
    let id = ctx.fresh_id();
    ctx.store()
        .create(&record(&id, &payload_of("old"), -60_000))
        .await
        .expect("create expired");
    let fresh = record(&id, &payload_of("new"), 3_600_000);
    ctx.store()
        .create(&fresh)
        .await
        .expect("create over expired");
    assert_eq!(ctx.store().load(&id).await.expect("load"), Some(fresh));
}

/// `update` of a live record replaces payload and expiry.
pub async fn store_update_live_record(ctx: CaseContext) {
    let id = ctx.fresh_id();
    ctx.store()
        .create(&record(&id, &payload_of("before"), 3_600_000))
        .await
        .expect("create");
    let after = record(&id, &payload_of("after"), 7_200_000);
    ctx.store().update(&after).await.expect("update");
    assert_eq!(ctx.store().load(&id).await.expect("load"), Some(after));
}

async fn assert_update_not_found(ctx: &CaseContext, id: &RecordId) {
    let outcome = ctx
        .store()
        .update(&record(id, &payload_of("revived"), 3_600_000))
        .await;
    assert!(
        matches!(outcome, Err(StoreError::NotFound)),
        "expected NotFound, got {outcome:?}"
    );
    assert_eq!(
        ctx.store().load(id).await.expect("load"),
        None,
        "a failed update must not create a record"
    );
}

/// `update` of an id never stored is `NotFound` and creates nothing.
pub async fn store_update_missing_is_not_found(ctx: CaseContext) {
    assert_update_not_found(&ctx, &ctx.fresh_id()).await;
}

/// `update` after `delete` is `NotFound`: a logout stays a logout.
pub async fn store_update_deleted_is_not_found(ctx: CaseContext) {
    let id = ctx.fresh_id();
    ctx.store()
        .create(&record(&id, &payload_of("x"), 3_600_000))
        .await
        .expect("create");
    assert!(ctx.store().delete(&id).await.expect("delete"));
    assert_update_not_found(&ctx, &id).await;
}

/// `update` of an expired record is `NotFound` and does not revive it.
pub async fn store_update_expired_is_not_found(ctx: CaseContext) {
    let id = ctx.fresh_id();
    ctx.store()
        .create(&record(&id, &payload_of("x"), -1_000))
        .await
        .expect("create expired");
    assert_update_not_found(&ctx, &id).await;
}

/// `update` with the payload and expiry unchanged succeeds (no "zero rows changed" error).
pub async fn store_update_unchanged_payload(ctx: CaseContext) {
    let id = ctx.fresh_id();
    let same = record(&id, &payload_of("same"), 3_600_000);
    ctx.store().create(&same).await.expect("create");
    ctx.store()
        .update(&same)
        .await
        .expect("update with the same record");
    ctx.store().update(&same).await.expect("and again");
    assert_eq!(ctx.store().load(&id).await.expect("load"), Some(same));
}

/// A record whose expiry has passed loads as `None`.
pub async fn store_load_expired_is_none(ctx: CaseContext) {
    let id = ctx.fresh_id();
    ctx.store()
        .create(&record(&id, &payload_of("x"), -10_000))
        .await
        .expect("create expired");
    assert_eq!(ctx.store().load(&id).await.expect("load"), None);
}

/// A record one second from expiry is live, and gone once that second has passed.
pub async fn store_record_expires_after_deadline(ctx: CaseContext) {
    let id = ctx.fresh_id();
    ctx.store()
        .create(&record(&id, &payload_of("x"), 1_000))
        .await
        .expect("create");
    assert!(ctx.store().load(&id).await.expect("load").is_some());
    tokio::time::sleep(StdDuration::from_millis(1_300)).await;
    assert_eq!(ctx.store().load(&id).await.expect("load"), None);
}

/// `delete` reports whether a live record existed, and is idempotent.
pub async fn store_delete_reports_live_and_is_idempotent(ctx: CaseContext) {
    let id = ctx.fresh_id();
    ctx.store()
        .create(&record(&id, &payload_of("x"), 3_600_000))
        .await
        .expect("create");
    assert!(ctx.store().delete(&id).await.expect("delete"));
    assert_eq!(ctx.store().load(&id).await.expect("load"), None);
    assert!(!ctx.store().delete(&id).await.expect("delete again"));
    assert!(
        !ctx.store()
            .delete(&ctx.fresh_id())
            .await
            .expect("delete missing")
    );
}

/// `delete` of an expired record reports `false` (no live record existed).
pub async fn store_delete_expired_reports_false(ctx: CaseContext) {
    let id = ctx.fresh_id();
    ctx.store()
        .create(&record(&id, &payload_of("x"), -5_000))
        .await
        .expect("create expired");
    assert!(!ctx.store().delete(&id).await.expect("delete"));
}

/// `touch` moves the expiry and keeps the payload.
pub async fn store_touch_moves_expiry_keeps_payload(ctx: CaseContext) {
    let id = ctx.fresh_id();
    let payload = payload_of("kept");
    ctx.store()
        .create(&record(&id, &payload, 60_000))
        .await
        .expect("create");
    let later = in_ms(7_200_123);
    ctx.store().touch(&id, later).await.expect("touch");
    let loaded = ctx.store().load(&id).await.expect("load").expect("live");
    assert_eq!(loaded.payload(), payload);
    assert_eq!(loaded.expires_at(), later);
}

/// `touch` of an id never stored is `NotFound` and creates nothing.
pub async fn store_touch_missing_is_not_found(ctx: CaseContext) {
    let id = ctx.fresh_id();
    let outcome = ctx.store().touch(&id, in_ms(60_000)).await;
    assert!(
        matches!(outcome, Err(StoreError::NotFound)),
        "got {outcome:?}"
    );
    assert_eq!(ctx.store().load(&id).await.expect("load"), None);
}

/// `touch` of an expired record is `NotFound` and does not revive it.
pub async fn store_touch_expired_is_not_found(ctx: CaseContext) {
    let id = ctx.fresh_id();
    ctx.store()
        .create(&record(&id, &payload_of("x"), -1_000))
        .await
        .expect("create expired");
    let outcome = ctx.store().touch(&id, in_ms(60_000)).await;
    assert!(
        matches!(outcome, Err(StoreError::NotFound)),
        "got {outcome:?}"
    );
    assert_eq!(ctx.store().load(&id).await.expect("load"), None);
}

/// `clear_expired` removes exactly the expired records and returns how many (self-expiring
/// engines may return 0, but nothing expired may load).
pub async fn store_clear_expired_removes_only_expired(ctx: CaseContext) {
    let expired: Vec<RecordId> = (0..3).map(|_| ctx.fresh_id()).collect();
    let live: Vec<RecordId> = (0..2).map(|_| ctx.fresh_id()).collect();
    for id in &expired {
        ctx.store()
            .create(&record(id, &payload_of("old"), -60_000))
            .await
            .expect("create expired");
    }
    for id in &live {
        ctx.store()
            .create(&record(id, &payload_of("live"), 3_600_000))
            .await
            .expect("create live");
    }
    let removed = ctx.store().clear_expired().await.expect("clear_expired");
    if ctx.caps().self_expiring {
        assert!(removed <= 3, "removed {removed}");
    } else {
        assert_eq!(removed, 3);
        assert_eq!(ctx.store().clear_expired().await.expect("again"), 0);
    }
    for id in &expired {
        assert_eq!(ctx.store().load(id).await.expect("load"), None);
    }
    for id in &live {
        assert!(ctx.store().load(id).await.expect("load").is_some());
    }
}

/// `expires_at` comes back to the millisecond, in UTC.
pub async fn store_expires_at_roundtrips_to_the_millisecond(ctx: CaseContext) {
    let id = ctx.fresh_id();
    let base = OffsetDateTime::now_utc() + Duration::hours(5);
    let at = base.replace_millisecond(987).unwrap_or(base);
    let written = Record::new(id.clone(), payload_of("x"), at);
    ctx.store().create(&written).await.expect("create");
    let loaded = ctx.store().load(&id).await.expect("load").expect("live");
    assert_eq!(loaded.expires_at(), written.expires_at());
    assert_eq!(loaded.expires_at().millisecond(), 987);
    assert!(loaded.expires_at().offset().is_utc());
}

/// Writes to one record never touch another.
pub async fn store_records_are_independent(ctx: CaseContext) {
    let a = record(&ctx.fresh_id(), &payload_of("a"), 3_600_000);
    let b = record(&ctx.fresh_id(), &payload_of("b"), 3_600_000);
    ctx.store().create(&a).await.expect("create a");
    ctx.store().create(&b).await.expect("create b");
    ctx.store()
        .update(&record(a.id(), &payload_of("a2"), 3_600_000))
        .await
        .expect("update a");
    ctx.store()
        .touch(a.id(), in_ms(9_000_000))
        .await
        .expect("touch a");
    assert!(ctx.store().delete(a.id()).await.expect("delete a"));
    assert_eq!(ctx.store().load(b.id()).await.expect("load b"), Some(b));
}

/// 100 concurrent creates all succeed and all load back.
pub async fn store_concurrent_creates_all_load(ctx: CaseContext) {
    let records: Vec<Record> = (0..100)
        .map(|i| record(&ctx.fresh_id(), &payload_of(&format!("n{i}")), 3_600_000))
        .collect();
    let tasks: Vec<_> = records
        .iter()
        .cloned()
        .map(|r| {
            let store = ctx.store().clone();
            tokio::spawn(async move { store.create(&r).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("create");
    }
    for written in &records {
        let loaded = ctx.store().load(written.id()).await.expect("load");
        assert_eq!(loaded.as_ref(), Some(written));
    }
}

/// Concurrent updates of one record leave exactly one complete payload, never a mix.
pub async fn store_concurrent_updates_never_mix(ctx: CaseContext) {
    let id = ctx.fresh_id();
    ctx.store()
        .create(&record(&id, &payload_of("start"), 3_600_000))
        .await
        .expect("create");
    let candidates: Vec<String> = ('a'..='p')
        .map(|c| {
            envelope(&format!(
                r#"{{"fill":"{}"}}"#,
                c.to_string().repeat(32 * 1024)
            ))
        })
        .collect();
    let tasks: Vec<_> = candidates
        .iter()
        .cloned()
        .map(|payload| {
            let store = ctx.store().clone();
            let id = id.clone();
            tokio::spawn(async move {
                for _ in 0..3 {
                    store.update(&record(&id, &payload, 3_600_000)).await?;
                }
                Ok::<_, StoreError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("update");
    }
    let loaded = ctx.store().load(&id).await.expect("load").expect("live");
    let known: HashSet<&str> = candidates.iter().map(String::as_str).collect();
    assert!(
        known.contains(loaded.payload()),
        "the stored payload ({} bytes) is not one complete written payload",
        loaded.payload().len()
    );
}
