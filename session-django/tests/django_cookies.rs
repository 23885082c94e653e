//! Django's `signed_cookies` engine and ours share cookies: against real Django 5.2 (the
//! database holds only Django's users; the sessions live in the cookies).

mod common;

use common::{Db, Django, SECRET};
use serde_json::{Value, json};
use session_core::time::{Duration, OffsetDateTime};
use session_core::{CookieSealer, Expiry, Session, SessionConfig, SessionManager};
use session_django::SignedCookies;
use session_django::auth::DjangoLogin;
use session_django::signing::Keys;

const ENGINE: &str = "django.contrib.sessions.backends.signed_cookies";

fn manager(keys: Keys) -> SessionManager {
    let config = SessionConfig::default();
    SessionManager::client_side(SignedCookies::new(keys, config.cookie_age), config)
}

fn session(manager: &SessionManager, cookie: &str) -> Session {
    manager.session_from_cookie(Some(cookie))
}

/// Saves a session with these values (and expiry) in Rust: its cookie value.
async fn rust_cookie(keys: Keys, values: &Value, expiry: Expiry) -> String {
    let manager = manager(keys);
    let session = manager.session_from_cookie(None);
    for (name, value) in values.as_object().unwrap() {
        session.insert(name, value.clone()).await.unwrap();
    }
    session.set_expiry(expiry).await.unwrap();
    let outcome = manager.finish(&session, 200).await;
    outcome.set_cookie.expect("a cookie").value().to_owned()
}

async fn django() -> Option<Django> {
    common::django(Db::Sqlite).await
}

fn values() -> Value {
    json!({"cart": [{"sku": "A-1", "qty": 2}], "name": "Zoë 東京 😀", "count": 7, "flag": false})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_cookie_django_login_and_values_load_in_rust() {
    let Some(django) = django().await else { return };
    let keys = Keys::new(SECRET);
    let login = django
        .run_on(
            ENGINE,
            json!([{"op": "login", "username": "cookie-user", "password": "pw", "extra": values()}]),
            &keys,
        )
        .await
        .remove(0);
    let cookie = login["key"].as_str().unwrap();
    let rust = manager(keys.clone());
    let s = session(&rust, cookie);
    let found = DjangoLogin::read(&s)
        .await
        .unwrap()
        .expect("Django's login");
    assert_eq!(found.user_id, login["user_id"].as_str().unwrap());
    for (name, value) in values().as_object().unwrap() {
        assert_eq!(
            s.get::<Value>(name).await.unwrap().as_ref(),
            Some(value),
            "{name}"
        );
    }
    // An expiry Django set comes through too.
    let written = django
        .run_on(
            ENGINE,
            json!([{"op": "write", "set": {"k": 1}, "expiry": {"seconds": 600}}]),
            &keys,
        )
        .await
        .remove(0);
    let s = session(&rust, written["key"].as_str().unwrap());
    assert_eq!(
        s.expiry().await.unwrap(),
        Expiry::Inactivity(Duration::seconds(600))
    );
    assert_eq!(s.expiry_age().await.unwrap(), Duration::seconds(600));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_cookie_rust_cookie_loads_in_django() {
    let Some(django) = django().await else { return };
    let keys = Keys::new(SECRET);
    for (expiry, age, browser_close) in [
        (Expiry::Default, 1_209_600, false),
        (Expiry::Inactivity(Duration::seconds(600)), 600, false),
        (Expiry::BrowserClose, 1_209_600, true),
    ] {
        let cookie = rust_cookie(keys.clone(), &values(), expiry).await;
        let seen = django
            .run_on(ENGINE, json!([{"op": "read", "key": cookie}]), &keys)
            .await
            .remove(0);
        let mut data = seen["data"].clone();
        data.as_object_mut().unwrap().remove("_session_expiry");
        assert_eq!(data, values(), "{expiry:?}");
        assert_eq!(seen["expiry_age"], json!(age), "{expiry:?}");
        assert_eq!(seen["browser_close"], json!(browser_close), "{expiry:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_cookie_tampered_truncated_or_expired_loads_empty_on_both_sides() {
    let Some(django) = django().await else { return };
    let keys = Keys::new(SECRET);
    let cookie = rust_cookie(keys.clone(), &json!({"role": "user"}), Expiry::Default).await;
    let config = SessionConfig::default();
    let expired = SignedCookies::new(keys.clone(), config.cookie_age).seal_at(
        &serde_json::from_value(json!({"role": "user"})).unwrap(),
        Expiry::Default,
        OffsetDateTime::now_utc().unix_timestamp() - 1_209_600 - 60,
    );
    let forged_data = session_django::signing::b64_encode(br#"{"role":"admin"}"#);
    let (_, rest) = cookie.split_once(':').unwrap();
    let bad = [
        format!("{forged_data}:{rest}"),
        cookie[..cookie.len() - 3].to_owned(),
        expired,
    ];
    let rust = manager(keys.clone());
    for value in &bad {
        let seen = django
            .run_on(ENGINE, json!([{"op": "read", "key": value}]), &keys)
            .await
            .remove(0);
        assert_eq!(seen["data"], json!({}), "Django loaded {value}");
        assert_eq!(
            session(&rust, value).get::<String>("role").await.unwrap(),
            None,
            "{value}"
        );
    }
    // Django's own expired cookie, checked by Django and by us.
    let sealer = SignedCookies::new(keys, config.cookie_age);
    assert!(sealer.open(&bad[2]).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_cookie_fallback_key_verifies_on_both_sides() {
    let Some(django) = django().await else { return };
    let old = Keys::new("the-old-django-secret-key");
    let rotated = Keys::new(SECRET).with_fallbacks(["the-old-django-secret-key"]);
    let written = django
        .run_on(
            ENGINE,
            json!([{"op": "write", "set": {"v": "django-old"}}]),
            &old,
        )
        .await
        .remove(0);
    let cookie = written["key"].as_str().unwrap();
    let rust = manager(rotated.clone());
    assert_eq!(
        session(&rust, cookie)
            .get::<String>("v")
            .await
            .unwrap()
            .as_deref(),
        Some("django-old")
    );
    let strict = manager(Keys::new(SECRET));
    assert_eq!(
        session(&strict, cookie).get::<String>("v").await.unwrap(),
        None
    );

    let ours = rust_cookie(old, &json!({"v": "rust-old"}), Expiry::Default).await;
    let seen = django
        .run_on(ENGINE, json!([{"op": "read", "key": ours}]), &rotated)
        .await
        .remove(0);
    assert_eq!(seen["data"], json!({"v": "rust-old"}));
    let unseen = django
        .run_on(
            ENGINE,
            json!([{"op": "read", "key": ours}]),
            &Keys::new(SECRET),
        )
        .await
        .remove(0);
    assert_eq!(unseen["data"], json!({}));
}
