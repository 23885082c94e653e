//! Sessions shared with real Django (5.2, from `ci/django.sh`'s environment) through one
//! `django_session` table, on SQLite, PostgreSQL and MariaDB: each case runs on the three,
//! and its name carries `django` and the database.

mod common;

use std::sync::Arc;

use common::{Db, Django, SECRET};
use serde_json::{Value, json};
use session_core::time::{Duration, OffsetDateTime};
use session_core::{Expiry, KeyMapping, Record, Session, SessionConfig, SessionKey, SessionStore};
use session_django::auth::{self, DjangoLogin, Verified};
use session_django::signing::Keys;
use session_django::{DjangoStore, isoformat};

fn keys() -> Keys {
    Keys::new(SECRET)
}

fn resume(store: &Arc<DjangoStore>, key: &str) -> Session {
    Session::from_cookie(store.clone(), Arc::new(SessionConfig::default()), key)
}

fn key_of(value: &Value) -> String {
    value["key"].as_str().expect("a session key").to_owned()
}

/// Values of every JSON kind, non-ASCII included.
fn values() -> Value {
    json!({
        "cart": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}],
        "name": "Zoë 東京 😀 \"quoted\" \\ tab\t",
        "count": 48213,
        "negative": -7,
        "ratio": 0.25,
        "flag": true,
        "nothing": null,
        "nested": {"a": {"b": [1, 2, {"c": "d"}]}},
    })
}

async fn login_is_read_and_verified(django: Django) {
    let extra = values();
    let login = django
        .one(json!({"op": "login", "username": "alice", "password": "pw-alice", "extra": extra}))
        .await;
    let store = Arc::new(django.store(keys()).await);
    let session = resume(&store, &key_of(&login));
    let found = DjangoLogin::read(&session)
        .await
        .expect("read")
        .expect("a Django login");
    assert_eq!(found.user_id, login["user_id"].as_str().unwrap());
    assert_eq!(found.backend, "django.contrib.auth.backends.ModelBackend");
    assert_eq!(
        found.hash.as_deref(),
        login["data"]["_auth_user_hash"].as_str()
    );
    let password_hash = login["password_hash"].as_str().unwrap();
    assert_eq!(
        auth::verify(&session, &found, password_hash, &keys())
            .await
            .unwrap(),
        Verified::Current
    );
    for (name, value) in extra.as_object().unwrap() {
        assert_eq!(
            session.get::<Value>(name).await.unwrap().as_ref(),
            Some(value),
            "{name}"
        );
    }
    // Another password hash (the password changed): rejected and logged out, as Django.
    assert_eq!(
        auth::verify(&session, &found, "md5$other$hash", &keys())
            .await
            .unwrap(),
        Verified::Rejected
    );
    let after = django
        .one(json!({"op": "read", "key": key_of(&login)}))
        .await;
    assert_eq!(
        after["key"],
        Value::Null,
        "the rejected login is gone for Django too"
    );
}

async fn rust_writes_values_and_expiries_django_reads(django: Django) {
    let store = Arc::new(django.store(keys()).await);
    let at = session_core::record::truncate_to_millis(
        OffsetDateTime::now_utc() + Duration::days(3) + Duration::milliseconds(250),
    );
    for expiry in [
        Expiry::Default,
        Expiry::Inactivity(Duration::seconds(600)),
        Expiry::At(at),
        Expiry::BrowserClose,
    ] {
        let session = Session::new(store.clone(), Arc::new(SessionConfig::default()));
        for (name, value) in values().as_object().unwrap() {
            session.insert(name, value.clone()).await.unwrap();
        }
        session.set_expiry(expiry).await.unwrap();
        session.save().await.unwrap();
        let key = session.session_key().unwrap();
        let seen = django
            .one(json!({"op": "read", "key": key.expose_secret()}))
            .await;
        assert_eq!(
            seen["key"].as_str(),
            Some(key.expose_secret()),
            "{expiry:?}"
        );
        let mut data = seen["data"].clone();
        // Django keeps the setting in the data.
        let stored_expiry = data.as_object_mut().unwrap().remove("_session_expiry");
        assert_eq!(
            stored_expiry.is_some(),
            expiry != Expiry::Default,
            "{expiry:?}"
        );
        assert_eq!(data, values(), "{expiry:?}");
        assert_eq!(
            seen["browser_close"],
            json!(session.expire_at_browser_close().await.unwrap()),
            "{expiry:?}"
        );
        let age = session.expiry_age().await.unwrap().whole_seconds();
        let django_age = seen["expiry_age"].as_i64().unwrap();
        match expiry {
            // Computed a moment later by Django: the same second or the one before.
            Expiry::At(at) => {
                assert!((age - django_age).abs() <= 1, "{age} vs {django_age}");
                assert_eq!(seen["expiry_date"], json!(isoformat(at)));
            }
            _ => assert_eq!(django_age, age, "{expiry:?}"),
        }
        // And Django's change comes back.
        django
            .one(json!({"op": "write", "key": key.expose_secret(), "set": {"from_django": "ü"}}))
            .await;
        let again = resume(&store, key.expose_secret());
        assert_eq!(
            again.get::<String>("from_django").await.unwrap().as_deref(),
            Some("ü")
        );
        assert_eq!(again.get::<i64>("count").await.unwrap(), Some(48213));
        // Moments keep their milliseconds (as microseconds), ages whole seconds.
        assert_eq!(again.expiry().await.unwrap(), expiry);
    }
}

async fn flush_and_cycle_key_reach_the_other_side(django: Django) {
    let store = Arc::new(django.store(keys()).await);
    // Rust flush → Django sees no session.
    let written = django
        .one(json!({"op": "write", "set": {"user": "bob"}}))
        .await;
    let key = key_of(&written);
    let session = resume(&store, &key);
    assert_eq!(
        session.get::<String>("user").await.unwrap().as_deref(),
        Some("bob")
    );
    session.flush().await.unwrap();
    let seen = django.one(json!({"op": "read", "key": key})).await;
    assert_eq!(seen["key"], Value::Null);
    assert_eq!(seen["data"], json!({}));

    // Django flush → Rust sees none.
    let session = Session::new(store.clone(), Arc::new(SessionConfig::default()));
    session.insert("user", "carol").await.unwrap();
    session.save().await.unwrap();
    let key = session.session_key().unwrap();
    django
        .one(json!({"op": "flush", "key": key.expose_secret()}))
        .await;
    let later = resume(&store, key.expose_secret());
    assert_eq!(later.get::<String>("user").await.unwrap(), None);
    assert!(later.session_key().is_none());

    // Rust cycle_key → Django finds the data under the new key only.
    let written = django
        .one(json!({"op": "write", "set": {"cart": [1, 2, 3]}}))
        .await;
    let old = key_of(&written);
    let session = resume(&store, &old);
    session.cycle_key().await.unwrap();
    session.save().await.unwrap();
    let new = session.session_key().unwrap();
    assert_ne!(new.expose_secret(), old);
    let seen = django
        .run(json!([
            {"op": "read", "key": new.expose_secret()},
            {"op": "read", "key": old},
        ]))
        .await;
    assert_eq!(seen[0]["data"], json!({"cart": [1, 2, 3]}));
    assert_eq!(seen[1]["key"], Value::Null);
    assert_eq!(seen[1]["data"], json!({}));
}

async fn fallback_keys_verify_on_both_sides(django: Django) {
    let old = Keys::new("an-old-secret-key-being-rotated-out");
    let rotated = Keys::new(SECRET).with_fallbacks(["an-old-secret-key-being-rotated-out"]);
    // Django signed with the old key; Rust with the new key and the old as fallback reads it.
    let written = django
        .run_with(
            json!([{"op": "write", "set": {"v": "from-old-django"}}]),
            &old,
        )
        .await
        .remove(0);
    let store = Arc::new(django.store(rotated.clone()).await);
    let session = resume(&store, &key_of(&written));
    assert_eq!(
        session.get::<String>("v").await.unwrap().as_deref(),
        Some("from-old-django")
    );
    // Without the fallback it does not verify.
    let strict = Arc::new(django.store(keys()).await);
    assert_eq!(
        resume(&strict, &key_of(&written))
            .get::<String>("v")
            .await
            .unwrap(),
        None
    );

    // Rust signed with the old key; Django with the new one and the fallback reads it.
    let old_store = Arc::new(django.store(old.clone()).await);
    let session = Session::new(old_store, Arc::new(SessionConfig::default()));
    session.insert("v", "from-old-rust").await.unwrap();
    session.save().await.unwrap();
    let key = session.session_key().unwrap();
    let seen = django
        .run_with(
            json!([{"op": "read", "key": key.expose_secret()}]),
            &rotated,
        )
        .await
        .remove(0);
    assert_eq!(seen["data"], json!({"v": "from-old-rust"}));
    let unseen = django
        .one(json!({"op": "read", "key": key.expose_secret()}))
        .await;
    assert_eq!(
        unseen["data"],
        json!({}),
        "without the fallback Django reads nothing"
    );

    // A login made under the old key: Rust verifies it through the fallback, cycles the key
    // and rewrites the hash, as Django's get_user; Django then trusts the new session.
    let login = django
        .run_with(
            json!([{"op": "login", "username": "dave", "password": "pw-dave"}]),
            &old,
        )
        .await
        .remove(0);
    let session = resume(&store, &key_of(&login));
    let found = DjangoLogin::read(&session).await.unwrap().unwrap();
    let verified = auth::verify(
        &session,
        &found,
        login["password_hash"].as_str().unwrap(),
        &rotated,
    )
    .await
    .unwrap();
    assert_eq!(verified, Verified::Rotated);
    session.save().await.unwrap();
    let new = session.session_key().unwrap();
    assert_ne!(new.expose_secret(), key_of(&login));
    let user = django
        .run_with(
            json!([{"op": "get_user", "key": new.expose_secret()}]),
            &keys(),
        )
        .await
        .remove(0);
    assert_eq!(user["user_id"], login["user_id"]);
    assert_eq!(
        user["key"].as_str(),
        Some(new.expose_secret()),
        "no second rotation"
    );
}

async fn tampered_data_loads_empty_on_both_sides(django: Django) {
    let store = Arc::new(django.store(keys()).await);
    let written = django
        .one(json!({"op": "write", "set": {"role": "user"}}))
        .await;
    let key = key_of(&written);
    let id = SessionKey::parse(&key)
        .unwrap()
        .record_id_for(KeyMapping::RawKey);
    let record = store.load(&id).await.unwrap().expect("the row");
    // Change the data and keep the signature: what an attacker with only table access can do.
    let (data, rest) = record.payload().split_once(':').unwrap();
    let forged_data = session_django::signing::b64_encode(br#"{"role":"admin"}"#);
    assert_ne!(data, forged_data);
    let forged = Record::new(
        id.clone(),
        format!("{forged_data}:{rest}"),
        record.expires_at(),
    );
    store.update(&forged).await.unwrap();
    let seen = django.one(json!({"op": "read", "key": key})).await;
    assert_eq!(seen["data"], json!({}));
    let session = resume(&store, &key);
    assert_eq!(session.get::<String>("role").await.unwrap(), None);
    assert!(session.is_empty().await.unwrap());

    // A truncated value too.
    let truncated = Record::new(
        id,
        &record.payload()[..record.payload().len() - 5],
        record.expires_at(),
    );
    store.update(&truncated).await.unwrap();
    let seen = django.one(json!({"op": "read", "key": key})).await;
    assert_eq!(seen["data"], json!({}));
    assert_eq!(
        resume(&store, &key).get::<String>("role").await.unwrap(),
        None
    );
}

async fn clearsessions_agree_on_what_is_expired(django: Django) {
    let store = Arc::new(django.store(keys()).await);
    for rust_clears in [false, true] {
        // Expired and live rows written by each side.
        let mut expired = Vec::new();
        let mut live = Vec::new();
        for seconds in [-3600, -2] {
            let row = django
                .one(json!({"op": "write", "set": {"x": 1}, "expiry": {"seconds": seconds}}))
                .await;
            expired.push(key_of(&row));
        }
        for seconds in [60, 3600] {
            let row = django
                .one(json!({"op": "write", "set": {"x": 1}, "expiry": {"seconds": seconds}}))
                .await;
            live.push(key_of(&row));
        }
        for ms in [-86_400_000, -1_500, 60_000, 86_400_000] {
            let key = SessionKey::generate();
            let at = OffsetDateTime::now_utc() + Duration::milliseconds(ms);
            let payload = session_core::codec::Codec::encode(
                store.codec(),
                &serde_json::Map::new(),
                Expiry::Default,
            );
            store
                .create(&Record::new(
                    key.record_id_for(KeyMapping::RawKey),
                    payload,
                    at,
                ))
                .await
                .unwrap();
            if ms < 0 { &mut expired } else { &mut live }.push(key.expose_secret().to_owned());
        }
        if rust_clears {
            assert!(store.clear_expired().await.unwrap() >= expired.len() as u64);
        } else {
            django.manage(&["clearsessions"]).await;
        }
        let all: Vec<String> = expired.iter().chain(&live).cloned().collect();
        let rows = django.one(json!({"op": "rows", "keys": all})).await;
        let mut want = live.clone();
        want.sort();
        assert_eq!(
            rows["keys"],
            json!(want),
            "cleared by {}",
            if rust_clears { "Rust" } else { "Django" }
        );
    }
}

async fn a_missing_table_says_to_run_migrate(django: Django) {
    let store = DjangoStore::connect(&django.url, keys())
        .await
        .unwrap()
        .with_table("no_such_django_session")
        .unwrap();
    let error = store.check_table().await.unwrap_err();
    let text = session_core::error_chain(&error);
    assert!(text.contains("manage.py migrate sessions"), "{text}");
    assert!(text.contains("no_such_django_session"), "{text}");
}

macro_rules! on_every_database {
    ($($case:ident),* $(,)?) => {
        mod django_sqlite { use super::*; $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() { if let Some(django) = common::django(Db::Sqlite).await { super::$case(django).await } }
        )* }
        mod django_postgres { use super::*; $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() { if let Some(django) = common::django(Db::Postgres).await { super::$case(django).await } }
        )* }
        mod django_mysql { use super::*; $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() { if let Some(django) = common::django(Db::MySql).await { super::$case(django).await } }
        )* }
    };
}

on_every_database!(
    login_is_read_and_verified,
    rust_writes_values_and_expiries_django_reads,
    flush_and_cycle_key_reach_the_other_side,
    fallback_keys_verify_on_both_sides,
    tampered_data_loads_empty_on_both_sides,
    clearsessions_agree_on_what_is_expired,
    a_missing_table_says_to_run_migrate,
);
