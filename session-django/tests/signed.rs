//! `SignedStore`: signing at rest over our own engines. The kit runs through it on memory,
//! files and PostgreSQL; the forgery cases write to the store underneath, as someone with
//! write access to the database, the directory or Redis (but not the secret) would.

use std::sync::Arc;

use session_core::time::{Duration, OffsetDateTime};
use session_core::{MemoryStore, Record, Session, SessionConfig, SessionStore};
use session_django::SignedStore;
use session_django::signing::Keys;
use session_file::FileStore;
use session_testkit::{Capabilities, Service, services, session_conformance, store_conformance};

fn keys() -> Keys {
    Keys::new("signing-at-rest-test-secret")
}

fn signed_file() -> SignedStore<FileStore> {
    let dir = tempfile::tempdir().expect("a directory").keep();
    SignedStore::new(FileStore::new(dir).expect("a session directory"), keys())
}

async fn signed_postgres() -> SignedStore<session_db::PostgresStore> {
    let url = services::url(Service::Postgres).expect("PostgreSQL (required by the caps)");
    let store = session_db::testing::postgres_store(&url, "signed")
        .await
        .expect("a fresh table");
    SignedStore::new(store, keys())
}

store_conformance!(signed_memory, Capabilities::new(), || async {
    SignedStore::new(MemoryStore::new(), keys())
});
session_conformance!(signed_memory_session, Capabilities::new(), || async {
    SignedStore::new(MemoryStore::new(), keys())
});
session_testkit::owner_conformance!(signed_memory_owner, Capabilities::new(), || async {
    SignedStore::new(MemoryStore::new(), keys())
});
store_conformance!(signed_file, Capabilities::new(), || async { signed_file() });
store_conformance!(
    signed_postgres,
    Capabilities::new().requires(Service::Postgres),
    signed_postgres
);

/// A saved session's key, with `user` in it.
async fn saved(store: &Arc<dyn SessionStore>, user: &str) -> session_core::SessionKey {
    let session = Session::new(store.clone(), Arc::new(SessionConfig::default()));
    session.insert("user", user).await.unwrap();
    session.save().await.unwrap();
    session.session_key().unwrap()
}

fn resume(store: &Arc<dyn SessionStore>, key: &session_core::SessionKey) -> Session {
    Session::from_cookie(
        store.clone(),
        Arc::new(SessionConfig::default()),
        key.expose_secret(),
    )
}

fn later() -> OffsetDateTime {
    OffsetDateTime::now_utc() + Duration::hours(1)
}

/// Each way of forging a record through the store underneath, on one engine.
async fn forgeries_are_refused<S: SessionStore + Clone>(inner: S) {
    let signed: Arc<dyn SessionStore> = Arc::new(SignedStore::new(inner.clone(), keys()));
    let victim = saved(&signed, "victim").await;
    let victim_id = victim.record_id();

    // Made up: an unsigned record in our own format.
    let attacker = session_core::SessionKey::generate();
    let made_up = session_core::codec::encode(
        &serde_json::from_value(serde_json::json!({"user": "admin"})).unwrap(),
        session_core::Expiry::Default,
    );
    inner
        .create(&Record::new(attacker.record_id(), made_up, later()))
        .await
        .unwrap();
    assert_eq!(
        resume(&signed, &attacker)
            .get::<String>("user")
            .await
            .unwrap(),
        None
    );

    // Moved: the victim's signed payload copied under the attacker's own id.
    let stolen = inner
        .load(&victim_id)
        .await
        .unwrap()
        .expect("the victim's record");
    let copy = session_core::SessionKey::generate();
    inner
        .create(&Record::new(copy.record_id(), stolen.payload(), later()))
        .await
        .unwrap();
    assert_eq!(
        resume(&signed, &copy).get::<String>("user").await.unwrap(),
        None
    );

    // Changed: the data edited, the signature kept.
    let edited = stolen.payload().replacen("victim", "admin", 1);
    inner
        .update(&Record::new(victim_id.clone(), edited, later()))
        .await
        .unwrap();
    let session = resume(&signed, &victim);
    assert_eq!(session.get::<String>("user").await.unwrap(), None);
    assert!(
        session.session_key().is_none(),
        "a refused record is no session"
    );
}

#[tokio::test]
async fn signed_memory_forged_records_load_as_no_session() {
    forgeries_are_refused(MemoryStore::new()).await;
}

#[tokio::test]
async fn signed_file_forged_records_load_as_no_session() {
    let dir = tempfile::tempdir().unwrap();
    forgeries_are_refused(FileStore::new(dir.path()).unwrap()).await;
}

#[tokio::test]
async fn signed_postgres_forged_records_load_as_no_session() {
    let Some(url) = services::require(Service::Postgres) else {
        return;
    };
    let store = session_db::testing::postgres_store(&url, "forged")
        .await
        .unwrap();
    forgeries_are_refused(store).await;
}

#[tokio::test]
async fn signed_memory_fallback_keys_verify_and_the_next_save_resigns() {
    let inner = MemoryStore::new();
    let old: Arc<dyn SessionStore> = Arc::new(SignedStore::new(inner.clone(), Keys::new("old")));
    let key = saved(&old, "kept").await;
    let rotated: Arc<dyn SessionStore> = Arc::new(SignedStore::new(
        inner.clone(),
        Keys::new("new").with_fallbacks(["old"]),
    ));
    let session = resume(&rotated, &key);
    assert_eq!(
        session.get::<String>("user").await.unwrap().as_deref(),
        Some("kept")
    );
    session.insert("seen", true).await.unwrap();
    session.save().await.unwrap();
    // Re-signed with the current key: the new key alone reads it, the old alone does not.
    let new_only: Arc<dyn SessionStore> =
        Arc::new(SignedStore::new(inner.clone(), Keys::new("new")));
    assert_eq!(
        resume(&new_only, &key).get::<bool>("seen").await.unwrap(),
        Some(true)
    );
    assert_eq!(resume(&old, &key).get::<bool>("seen").await.unwrap(), None);
}
