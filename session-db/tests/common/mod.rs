//! Helpers shared by the dialect test files.

#![allow(dead_code)]

pub mod fault;
pub mod own_server;

use session_core::time::{Duration, OffsetDateTime};
use session_core::{Ownership, Record, SessionKey, SessionStore};

/// Creates `count` live records through the store and returns them.
pub async fn live_records(store: &dyn SessionStore, count: usize) -> Vec<Record> {
    let mut records = Vec::new();
    for _ in 0..count {
        let record = Record::new(
            SessionKey::generate().record_id(),
            r#"{"v":1,"data":{"live":true}}"#,
            OffsetDateTime::now_utc() + Duration::hours(1),
        );
        store.create(&record).await.expect("create");
        records.push(record);
    }
    records
}

/// The sessions a table of the previous version holds before `migrate()` upgrades it: three
/// live records and one expired, as `(id, payload, expires_at)` for the dialect's own insert.
pub fn previous_version_rows() -> (Vec<Record>, Record) {
    let now = OffsetDateTime::now_utc();
    let at = |offset: Duration| session_core::record::truncate_to_millis(now + offset);
    let live = (1..=3)
        .map(|n| {
            Record::new(
                SessionKey::generate().record_id(),
                format!(r#"{{"v":1,"data":{{"n":{n}}}}}"#),
                at(Duration::hours(n)),
            )
        })
        .collect();
    let expired = Record::new(
        SessionKey::generate().record_id(),
        r#"{"v":1,"data":{}}"#,
        at(-Duration::minutes(5)),
    );
    (live, expired)
}

/// What an upgraded table must still do: serve the live sessions it held, byte for byte,
/// update and touch them, clear the expired one (and one that expires after the upgrade),
/// and take new sessions.
pub async fn upgraded_table_keeps_working(
    store: &dyn SessionStore,
    live: &[Record],
    expired: &Record,
) {
    for record in live {
        assert_eq!(
            store.load(record.id()).await.expect("load"),
            Some(record.clone()),
            "a live session of the previous version survives the upgrade"
        );
    }
    assert_eq!(store.load(expired.id()).await.expect("load"), None);
    let now = session_core::record::truncate_to_millis(OffsetDateTime::now_utc());
    let updated = Record::new(
        live[0].id().clone(),
        r#"{"v":1,"data":{"n":10}}"#,
        now + Duration::days(14),
    );
    store
        .update(&updated)
        .await
        .expect("update an upgraded row");
    assert_eq!(store.load(updated.id()).await.expect("load"), Some(updated));
    store
        .touch(live[1].id(), now + Duration::days(1))
        .await
        .expect("touch an upgraded row");
    assert_eq!(
        store
            .load(live[1].id())
            .await
            .expect("load")
            .map(|r| r.expires_at()),
        Some(now + Duration::days(1))
    );
    assert_eq!(
        store.clear_expired().await.expect("clear"),
        1,
        "the expired row goes"
    );
    store
        .touch(live[2].id(), now - Duration::seconds(1))
        .await
        .expect("expire an upgraded row");
    assert_eq!(
        store.clear_expired().await.expect("clear"),
        1,
        "a row that expires after the upgrade is found by the new index"
    );
    assert!(store.load(live[0].id()).await.expect("load").is_some());
    live_records(store, 2).await;
    assert_eq!(store.clear_expired().await.expect("clear"), 0);
}

/// What a table created before the owner columns must do once `migrate()` added them: serve
/// its live sessions as they were (without an owner), take an owner on one, list it under
/// that owner only, end it, and leave the others alone.
pub async fn owner_upgrade_keeps_working(store: &dyn SessionStore, live: &[Record]) {
    for record in live {
        let loaded = store.load(record.id()).await.expect("load");
        assert_eq!(
            loaded.as_ref(),
            Some(record),
            "a live session survives the upgrade"
        );
        assert_eq!(loaded.and_then(|r| r.ownership().cloned()), None);
    }
    let index = store
        .owner_index()
        .expect("an owner index after the upgrade");
    let owner = session_testkit::unique_name("upgraded");
    let ownership = Ownership::new(owner.as_str(), OffsetDateTime::now_utc()).expect("owner");
    let owned = live[0].clone().with_ownership(Some(ownership));
    store
        .update(&owned)
        .await
        .expect("give an upgraded row an owner");
    let listed = index.sessions_of(&owner).await.expect("list");
    assert_eq!(
        listed.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        [owned.id().clone()]
    );
    assert_eq!(
        index.delete_sessions_of(&owner, None).await.expect("end"),
        [owned.id().clone()]
    );
    assert!(store.load(owned.id()).await.expect("load").is_none());
    for record in &live[1..] {
        assert!(store.load(record.id()).await.expect("load").is_some());
    }
}
