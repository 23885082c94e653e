//! Owner-index cases ("log out everywhere"), for stores that implement
//! [`OwnerIndex`](session_core::OwnerIndex): run them with
//! [`owner_conformance!`](crate::owner_conformance).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use session_core::time::{Duration, OffsetDateTime};
use session_core::{
    Expiry, OwnedSession, OwnerIndex, Ownership, Record, RecordId, Session, SessionConfig,
    SessionError, SessionKey, SessionManager,
};

use super::{envelope, in_ms};
use crate::CaseContext;

/// The store's owner index; a store without one fails every owner case, loudly.
fn index(ctx: &CaseContext) -> &dyn OwnerIndex {
    ctx.store()
        .owner_index()
        .expect("owner_conformance! runs on a store whose owner_index() is Some")
}

/// An owner id no other case (or run) uses.
fn owner(tag: &str) -> String {
    crate::unique_name(&format!("owner-{tag}"))
}

/// A saved session of `owner`; returns its key.
async fn logged_in(ctx: &CaseContext, owner: &str) -> SessionKey {
    let session = ctx.session();
    session.insert("user_id", owner).await.expect("insert");
    session.set_owner(Some(owner)).await.expect("set_owner");
    session.cycle_key().await.expect("cycle_key");
    session.save().await.expect("save");
    session.session_key().expect("a saved session has a key")
}

/// The ids of `owner`'s live sessions.
async fn listed(ctx: &CaseContext, owner: &str) -> HashSet<RecordId> {
    index(ctx)
        .sessions_of(owner)
        .await
        .expect("sessions_of")
        .into_iter()
        .map(|session| session.id)
        .collect()
}

fn ids(ctx: &CaseContext, keys: &[&SessionKey]) -> HashSet<RecordId> {
    keys.iter().map(|key| ctx.id_of(key)).collect()
}

/// A record of `owner` straight through the store.
fn owned_record(ctx: &CaseContext, owner: &str, expires_at: OffsetDateTime) -> Record {
    let ownership = Ownership::new(owner, OffsetDateTime::now_utc()).expect("a valid owner");
    Record::new(ctx.fresh_id(), envelope("{}"), expires_at).with_ownership(Some(ownership))
}

/// The store gives back a record's ownership as written; `update` replaces it (or drops it),
/// `touch` keeps it, and `touch_owned` writes a new one without touching the payload.
pub async fn owner_record_roundtrips_beside_the_payload(ctx: CaseContext) {
    let store = ctx.store();
    let mut ownership = Ownership::new(owner("roundtrip"), in_ms(-60_000)).unwrap();
    ownership.set_client(
        Some("Mozilla/5.0 \"quoted\" é".into()),
        Some("2001:db8::1".into()),
    );
    let record = Record::new(ctx.fresh_id(), envelope(r#"{"a":1}"#), in_ms(3_600_000))
        .with_ownership(Some(ownership.clone()));
    store.create(&record).await.unwrap();
    let loaded = store.load(record.id()).await.unwrap().expect("live");
    assert_eq!(
        loaded, record,
        "payload, expiry and ownership come back as written"
    );

    store.touch(record.id(), in_ms(7_200_000)).await.unwrap();
    let touched = store.load(record.id()).await.unwrap().expect("live");
    assert_eq!(
        touched.ownership(),
        Some(&ownership),
        "touch keeps the ownership"
    );

    let mut seen = ownership.clone();
    seen.set_last_seen(OffsetDateTime::now_utc());
    let later = in_ms(10_800_000);
    index(&ctx)
        .touch_owned(record.id(), later, &seen)
        .await
        .unwrap();
    let touched = store.load(record.id()).await.unwrap().expect("live");
    assert_eq!(touched.ownership(), Some(&seen));
    assert_eq!(
        touched.payload(),
        record.payload(),
        "touch_owned keeps the payload"
    );
    assert_eq!(
        touched.expires_at(),
        session_core::record::truncate_to_millis(later),
        "touch_owned moves the expiry"
    );

    let unowned = Record::new(record.id().clone(), envelope("{}"), in_ms(3_600_000));
    store.update(&unowned).await.unwrap();
    let loaded = store.load(record.id()).await.unwrap().expect("live");
    assert_eq!(
        loaded.ownership(),
        None,
        "an update without an owner drops it"
    );
    assert!(listed(&ctx, ownership.owner()).await.is_empty());

    let missing = ctx.fresh_id();
    assert!(matches!(
        index(&ctx)
            .touch_owned(&missing, in_ms(60_000), &seen)
            .await,
        Err(session_core::StoreError::NotFound)
    ));
    assert!(
        store.load(&missing).await.unwrap().is_none(),
        "touch_owned creates nothing"
    );
}

/// The owner is carried across `cycle_key` (the old record leaves the list, the new one joins
/// it) and dropped by `flush`.
pub async fn owner_survives_cycle_key_and_flush_drops_it(ctx: CaseContext) {
    let alice = owner("cycle");
    let key = logged_in(&ctx, &alice).await;
    assert_eq!(listed(&ctx, &alice).await, ids(&ctx, &[&key]));

    let session = ctx.resume(&key);
    assert_eq!(
        session.owner().await.unwrap().as_deref(),
        Some(alice.as_str())
    );
    let created = session.ownership().await.unwrap().unwrap().created_at();
    session.cycle_key().await.unwrap();
    session.save().await.unwrap();
    let rotated = session.session_key().unwrap();
    assert_ne!(rotated, key);
    assert_eq!(
        listed(&ctx, &alice).await,
        ids(&ctx, &[&rotated]),
        "the old record is gone, the new one is listed"
    );
    let resumed = ctx.resume(&rotated);
    let ownership = resumed
        .ownership()
        .await
        .unwrap()
        .expect("the owner survives cycle_key");
    assert_eq!(ownership.owner(), alice);
    assert_eq!(
        ownership.created_at(),
        created,
        "created at login, not at rotation"
    );

    resumed.flush().await.unwrap();
    assert!(
        resumed.owner().await.unwrap().is_none(),
        "flush drops the owner"
    );
    assert!(
        listed(&ctx, &alice).await.is_empty(),
        "a flushed session is not listed"
    );
    resumed.insert("anonymous", true).await.unwrap();
    resumed.save().await.unwrap();
    assert!(
        listed(&ctx, &alice).await.is_empty(),
        "the next session starts unowned"
    );

    // `set_owner(None)` at logout without a flush also leaves the list.
    let key = logged_in(&ctx, &alice).await;
    let session = ctx.resume(&key);
    session.set_owner(None).await.unwrap();
    session.save().await.unwrap();
    assert!(listed(&ctx, &alice).await.is_empty());
}

/// Expired and deleted sessions are never listed, whatever the index still holds.
pub async fn owner_expired_and_deleted_sessions_are_never_listed(ctx: CaseContext) {
    let alice = owner("expired");
    let live = logged_in(&ctx, &alice).await;
    let deleted = logged_in(&ctx, &alice).await;
    ctx.resume(&deleted).flush().await.unwrap();
    let removed = owned_record(&ctx, &alice, in_ms(3_600_000));
    ctx.store().create(&removed).await.unwrap();
    assert!(ctx.store().delete(removed.id()).await.unwrap());

    let short = owned_record(&ctx, &alice, in_ms(400));
    ctx.store().create(&short).await.unwrap();
    let session = ctx.session();
    session.set_owner(Some(&alice)).await.unwrap();
    session
        .set_expiry(Expiry::Inactivity(Duration::milliseconds(400)))
        .await
        .unwrap();
    session.save().await.unwrap();
    let touched_short = owned_record(&ctx, &alice, in_ms(3_600_000));
    ctx.store().create(&touched_short).await.unwrap();
    ctx.store()
        .touch(touched_short.id(), in_ms(400))
        .await
        .unwrap();
    assert_eq!(listed(&ctx, &alice).await.len(), 4);

    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(
        listed(&ctx, &alice).await,
        ids(&ctx, &[&live]),
        "only the live session is listed"
    );
    let ended = index(&ctx).delete_sessions_of(&alice, None).await.unwrap();
    assert!(ended.contains(&ctx.id_of(&live)));
    assert!(listed(&ctx, &alice).await.is_empty());
    assert!(
        ctx.resume(&live)
            .get::<String>("user_id")
            .await
            .unwrap()
            .is_none()
    );
}

/// "Sign out everywhere else": the current session keeps working, every other one is logged
/// out, and a request that was in flight on one of them cannot write it back.
pub async fn owner_end_other_sessions_keeps_only_the_current_one(ctx: CaseContext) {
    let alice = owner("others");
    let phone = logged_in(&ctx, &alice).await;
    let tablet = logged_in(&ctx, &alice).await;
    let laptop = logged_in(&ctx, &alice).await;
    let manager = SessionManager::from_shared(ctx.store().clone(), Arc::new(SessionConfig::new()));

    // A request on the phone is in flight: it loaded its session before the revocation.
    let in_flight = ctx.resume(&phone);
    assert!(in_flight.get::<String>("user_id").await.unwrap().is_some());
    // And one on the tablet that only reads, under save_every_request.
    let renewing = SessionManager::from_shared(
        ctx.store().clone(),
        Arc::new(SessionConfig::new().save_every_request(true)),
    );
    let header = format!("sessionid={}", tablet.expose_secret());
    let reading = renewing.session_from_headers([header.as_str()]);
    assert!(reading.get::<String>("user_id").await.unwrap().is_some());

    let current = ctx.resume(&laptop);
    let others = current.other_sessions().await.unwrap();
    assert_eq!(
        others.iter().map(|s| s.id.clone()).collect::<HashSet<_>>(),
        ids(&ctx, &[&phone, &tablet])
    );
    assert_eq!(current.end_other_sessions().await.unwrap(), 2);
    assert!(current.other_sessions().await.unwrap().is_empty());
    assert_eq!(
        current.owner_sessions().await.unwrap().len(),
        1,
        "the current session stays listed"
    );

    // The in-flight writer is interrupted and writes nothing back.
    in_flight.insert("cart", 3).await.unwrap();
    assert!(matches!(
        in_flight.save().await,
        Err(SessionError::Interrupted)
    ));
    let outcome = renewing.finish(&reading, 200).await;
    assert!(
        outcome.removes_cookie(),
        "the renewal finds the session gone"
    );
    for key in [&phone, &tablet] {
        assert!(
            ctx.store().load(&ctx.id_of(key)).await.unwrap().is_none(),
            "a revoked session stays deleted"
        );
        let next = manager.session_from_headers([format!("sessionid={}", key.expose_secret())]);
        assert!(next.get::<String>("user_id").await.unwrap().is_none());
        assert!(
            manager.finish(&next, 200).await.removes_cookie(),
            "logged out"
        );
    }
    assert!(listed(&ctx, &alice).await.len() == 1);

    // The current session still works, and can still be saved.
    let session = ctx.resume(&laptop);
    assert_eq!(
        session.get::<String>("user_id").await.unwrap().as_deref(),
        Some(alice.as_str())
    );
    session.insert("still", "here").await.unwrap();
    session.save().await.unwrap();

    // An admin ends the rest.
    assert_eq!(manager.end_sessions_of(&alice).await.unwrap(), 1);
    assert!(
        ctx.resume(&laptop)
            .get::<String>("user_id")
            .await
            .unwrap()
            .is_none()
    );
}

/// Two owners never see or end each other's sessions, and a session that changed owner is
/// listed (and ended) only under its new one.
pub async fn owner_two_owners_never_see_each_other(ctx: CaseContext) {
    let alice = owner("alice");
    let bob = owner("bob");
    let a1 = logged_in(&ctx, &alice).await;
    let a2 = logged_in(&ctx, &alice).await;
    let b1 = logged_in(&ctx, &bob).await;
    let moved = logged_in(&ctx, &alice).await;
    let session = ctx.resume(&moved);
    session.set_owner(Some(&bob)).await.unwrap();
    session.save().await.unwrap();

    assert_eq!(listed(&ctx, &alice).await, ids(&ctx, &[&a1, &a2]));
    assert_eq!(listed(&ctx, &bob).await, ids(&ctx, &[&b1, &moved]));
    let ended = index(&ctx).delete_sessions_of(&alice, None).await.unwrap();
    assert_eq!(
        ended.into_iter().collect::<HashSet<_>>(),
        ids(&ctx, &[&a1, &a2])
    );
    assert_eq!(
        listed(&ctx, &bob).await,
        ids(&ctx, &[&b1, &moved]),
        "ending alice's sessions leaves bob's, including the one that was hers"
    );
    for key in [&b1, &moved] {
        assert!(
            ctx.resume(key)
                .get::<String>("user_id")
                .await
                .unwrap()
                .is_some()
        );
    }
    assert!(listed(&ctx, &owner("nobody")).await.is_empty());
}

/// A read-only request refreshes an owned session's `last_seen` once the interval has passed
/// (an expiry-only write that keeps the expiry, with no cookie), and not before.
pub async fn owner_last_seen_follows_reads_at_the_interval(ctx: CaseContext) {
    let alice = owner("seen");
    let key = logged_in(&ctx, &alice).await;
    let first = index(&ctx).sessions_of(&alice).await.unwrap();
    let [
        OwnedSession {
            expires_at,
            ownership,
            ..
        },
    ] = first.as_slice()
    else {
        panic!("one session listed: {first:?}");
    };
    let header = format!("sessionid={}", key.expose_secret());

    let lazy = SessionManager::from_shared(
        ctx.store().clone(),
        Arc::new(SessionConfig::new().last_seen_interval(Duration::hours(1))),
    );
    let session = lazy.session_from_headers([header.as_str()]);
    session.get::<String>("user_id").await.unwrap();
    assert_eq!(lazy.finish(&session, 200).await.set_cookie, None);
    let listed = index(&ctx).sessions_of(&alice).await.unwrap();
    assert_eq!(
        listed[0].ownership.last_seen(),
        ownership.last_seen(),
        "not due yet"
    );

    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let eager = SessionManager::from_shared(
        ctx.store().clone(),
        Arc::new(SessionConfig::new().last_seen_interval(Duration::milliseconds(10))),
    );
    let session = eager.session_from_headers([header.as_str()]);
    session.get::<String>("user_id").await.unwrap();
    let outcome = eager.finish(&session, 200).await;
    assert_eq!(
        outcome.set_cookie, None,
        "a last-seen write sends no cookie"
    );
    let listed = index(&ctx).sessions_of(&alice).await.unwrap();
    assert!(
        listed[0].ownership.last_seen() > ownership.last_seen(),
        "refreshed"
    );
    assert_eq!(listed[0].expires_at, *expires_at, "the expiry did not move");
    assert_eq!(listed[0].ownership.created_at(), ownership.created_at());
}

/// 1,000 sessions of one owner among 100,000 (9,000 of 90 other owners, 90,000 without one):
/// the listing has exactly that owner's 1,000, and ending them leaves every other session.
/// The time the listing took is printed (`owner listing:`), not asserted.
pub async fn owner_lists_1000_sessions_among_100000(ctx: CaseContext) {
    const OWNED: usize = 1_000;
    const OTHERS: usize = 90;
    const PER_OTHER: usize = 100;
    const UNOWNED: usize = 90_000;
    let target = owner("many");
    let run = crate::unique_name("o");
    let expires_at = in_ms(3_600_000);
    let mut records = Vec::with_capacity(OWNED + OTHERS * PER_OTHER + UNOWNED);
    let mut wanted = HashSet::new();
    for _ in 0..OWNED {
        let record = owned_record(&ctx, &target, expires_at);
        wanted.insert(record.id().clone());
        records.push(record);
    }
    for other in 0..OTHERS {
        let name = format!("{run}-{other}");
        records.extend((0..PER_OTHER).map(|_| owned_record(&ctx, &name, expires_at)));
    }
    records.extend((0..UNOWNED).map(|_| Record::new(ctx.fresh_id(), envelope("{}"), expires_at)));
    // Interleaved, as real logins are, and written by 16 tasks at once.
    let mut shuffled = Vec::with_capacity(records.len());
    let stride = 101;
    for start in 0..stride {
        shuffled.extend(records.iter().skip(start).step_by(stride).cloned());
    }
    let started = Instant::now();
    let chunks: Vec<Vec<Record>> = shuffled
        .chunks(shuffled.len().div_ceil(16))
        .map(<[Record]>::to_vec)
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in chunks {
        let store = ctx.store().clone();
        tasks.spawn(async move {
            for record in chunk {
                store.create(&record).await.expect("create");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a writer task");
    }
    eprintln!(
        "owner listing: wrote {} records in {:?}",
        shuffled.len(),
        started.elapsed()
    );

    let started = Instant::now();
    let sessions = index(&ctx).sessions_of(&target).await.unwrap();
    let took = started.elapsed();
    eprintln!(
        "owner listing: listed {} of {} sessions in {took:?}",
        sessions.len(),
        shuffled.len()
    );
    assert_eq!(sessions.len(), OWNED);
    assert_eq!(
        sessions
            .iter()
            .map(|s| s.id.clone())
            .collect::<HashSet<_>>(),
        wanted
    );
    assert!(sessions.iter().all(|s| s.ownership.owner() == target));

    let keep = sessions[0].id.clone();
    let started = Instant::now();
    let ended = index(&ctx)
        .delete_sessions_of(&target, Some(&keep))
        .await
        .unwrap();
    eprintln!(
        "owner listing: ended {} sessions in {:?}",
        ended.len(),
        started.elapsed()
    );
    assert_eq!(ended.len(), OWNED - 1);
    assert_eq!(listed(&ctx, &target).await, HashSet::from([keep]));
    let other = format!("{run}-7");
    assert_eq!(
        listed(&ctx, &other).await.len(),
        PER_OTHER,
        "other owners keep theirs"
    );
    let unowned = records.last().expect("records");
    assert!(ctx.store().load(unowned.id()).await.unwrap().is_some());
}

/// Without an owner index, owner calls fail clearly (never silently): checked on a session
/// whose store keeps none, and on a valid index with a bad owner id.
pub async fn owner_ids_are_checked(ctx: CaseContext) {
    let session = ctx.session();
    for bad in ["", "a\nb"] {
        assert!(matches!(
            session.set_owner(Some(bad)).await,
            Err(SessionError::InvalidOwner(_))
        ));
    }
    let too_long = "x".repeat(session_core::owner::MAX_OWNER_LEN + 1);
    assert!(session.set_owner(Some(&too_long)).await.is_err());
    let unicode = format!("{}-δοκιμή-{{tag}}", owner("unicode"));
    session.set_owner(Some(&unicode)).await.unwrap();
    session.save().await.unwrap();
    assert_eq!(
        listed(&ctx, &unicode).await,
        ids(&ctx, &[&session.session_key().unwrap()])
    );
    assert!(
        listed(&ctx, &format!("{unicode}x")).await.is_empty(),
        "owners are whole ids, not prefixes"
    );
    let plain = Session::new(
        Arc::new(session_core::client_side::CookieJar::new(Arc::new(
            NoSealer,
        ))),
        Arc::new(SessionConfig::new()),
    );
    assert!(matches!(
        plain.set_owner(Some("42")).await,
        Err(SessionError::NoOwnerIndex)
    ));
}

/// A sealer for the no-index check (a client-side jar keeps no owner index).
struct NoSealer;

impl session_core::CookieSealer for NoSealer {
    fn seal(
        &self,
        _entries: &serde_json::Map<String, serde_json::Value>,
        _expiry: Expiry,
    ) -> String {
        String::new()
    }

    fn open(
        &self,
        _value: &str,
    ) -> Result<(session_core::codec::SessionData, i64), session_core::codec::DecodeError> {
        Err(session_core::codec::DecodeError::BadSignature)
    }
}
