//! The client-side engines through `SessionManager::client_side`: the request lifecycle of
//! the kit's cases that apply to a session kept in its cookie, on both modes (names carry
//! `signed_cookie` or `encrypted_cookie`).
//!
//! The kit's session and lifecycle cases also run over each sealer's `CookieJar` (the store a
//! client-side session lives in during a request), as `signed_cookie_kit` and
//! `encrypted_cookie_kit`: the session rules over sealed payloads.
//!
//! Not applicable, because there is no store: the kit's store-contract cases, and the
//! lifecycle cases that count store I/O, race a logout in another request (nothing on the
//! server to delete: a copied cookie stays valid until it expires), or look up unknown keys
//! (there are no keys: a cookie either opens or is no session).

use std::future::Future;
use std::sync::Arc;

use serde_json::{Value, json};
use session_core::cookie::Cookie;
use session_core::time::{Duration, OffsetDateTime};
use session_core::{
    CookieSealer, Expiry, MAX_COOKIE_BYTES, Replacement, Session, SessionConfig, SessionError,
    SessionManager,
};
use session_django::signing::Keys;
use session_django::{EncryptedCookies, SignedCookies};

fn keys() -> Keys {
    Keys::new("client-side-test-secret")
}

/// Which mode a case runs on.
#[derive(Clone, Copy)]
enum Mode {
    Signed,
    Encrypted,
}

impl Mode {
    fn sealer(self, keys: Keys, config: &SessionConfig) -> Arc<dyn CookieSealer> {
        match self {
            Mode::Signed => Arc::new(SignedCookies::new(keys, config.cookie_age)),
            Mode::Encrypted => Arc::new(EncryptedCookies::new(keys, config.cookie_age)),
        }
    }

    fn manager_with(self, keys: Keys, config: SessionConfig) -> SessionManager {
        SessionManager::try_client_side(self.sealer(keys, &config), config).expect("valid")
    }

    fn manager(self) -> SessionManager {
        self.manager_with(keys(), SessionConfig::default())
    }
}

/// One request: the session from `cookie`, the handler, the lifecycle at `status`.
async fn request<F, Fut>(
    manager: &SessionManager,
    cookie: Option<&str>,
    status: u16,
    handler: F,
) -> session_core::Outcome
where
    F: FnOnce(Session) -> Fut,
    Fut: Future<Output = ()>,
{
    let session = match cookie {
        Some(value) => manager.session_from_headers([format!("sessionid={value}")]),
        None => manager.session_from_headers(Vec::<String>::new()),
    };
    handler(session.clone()).await;
    manager.finish(&session, status).await
}

fn value_of(outcome: &session_core::Outcome) -> String {
    let cookie: &Cookie = outcome.set_cookie.as_ref().expect("a cookie");
    assert!(
        !outcome.removes_cookie(),
        "a removal instead of a session cookie"
    );
    cookie.value().to_owned()
}

async fn saved_with(mode: Mode, values: Value) -> String {
    let manager = mode.manager();
    let outcome = request(&manager, None, 200, |s| async move {
        for (name, value) in values.as_object().unwrap() {
            s.insert(name, value.clone()).await.unwrap();
        }
    })
    .await;
    value_of(&outcome)
}

async fn reads(mode: Mode, cookie: &str, name: &str) -> Option<Value> {
    let manager = mode.manager();
    let name = name.to_owned();
    let found = Arc::new(std::sync::Mutex::new(None));
    let slot = found.clone();
    let _ = request(&manager, Some(cookie), 200, |s| async move {
        *slot.lock().unwrap() = s.get::<Value>(&name).await.unwrap();
    })
    .await;
    found.lock().unwrap().take()
}

async fn the_session_round_trips_through_the_cookie(mode: Mode) {
    let values = json!({"user_id": 42, "name": "Zoë 東京 😀", "cart": [1, {"a": null}]});
    let cookie = saved_with(mode, values.clone()).await;
    assert!(cookie.len() > 32, "the cookie carries the data, not a key");
    for (name, value) in values.as_object().unwrap() {
        assert_eq!(
            reads(mode, &cookie, name).await.as_ref(),
            Some(value),
            "{name}"
        );
    }
    let outcome = request(&mode.manager(), None, 200, |s| async move {
        s.insert("n", 1).await.unwrap();
    })
    .await;
    let max_age = outcome.set_cookie.as_ref().unwrap().max_age();
    assert_eq!(
        max_age,
        Some(Duration::seconds(1_209_600)),
        "Django's cookie age"
    );
}

async fn an_untouched_or_read_session_sets_no_cookie(mode: Mode) {
    let manager = mode.manager();
    let cookie = saved_with(mode, json!({"k": "v"})).await;
    let untouched = request(&manager, Some(&cookie), 200, |_| async {}).await;
    assert_eq!(untouched.set_cookie, None);
    assert!(!untouched.vary_cookie);
    let read = request(&manager, Some(&cookie), 200, |s| async move {
        s.get::<String>("k").await.unwrap();
    })
    .await;
    assert_eq!(read.set_cookie, None);
    assert!(read.vary_cookie);
    let fresh = request(&manager, None, 200, |s| async move {
        s.get::<String>("k").await.unwrap();
    })
    .await;
    assert_eq!(fresh.set_cookie, None, "an empty session is never sent");
}

async fn flush_sends_the_removal_cookie(mode: Mode) {
    let cookie = saved_with(mode, json!({"user_id": 1})).await;
    let outcome = request(&mode.manager(), Some(&cookie), 200, |s| async move {
        s.flush().await.unwrap();
    })
    .await;
    assert!(outcome.removes_cookie());
}

async fn cycle_key_keeps_the_data_in_a_new_cookie(mode: Mode) {
    let cookie = saved_with(mode, json!({"cart": [1, 2]})).await;
    // Signed values are deterministic within a second: wait for the next one.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let outcome = request(&mode.manager(), Some(&cookie), 200, |s| async move {
        s.cycle_key().await.unwrap();
    })
    .await;
    let cycled = value_of(&outcome);
    assert_ne!(cycled, cookie);
    assert_eq!(reads(mode, &cycled, "cart").await, Some(json!([1, 2])));
}

async fn each_expiry_setting_shapes_the_cookie(mode: Mode) {
    let manager = mode.manager();
    for (expiry, max_age) in [
        (
            Expiry::Inactivity(Duration::seconds(60)),
            Some(Duration::seconds(60)),
        ),
        (Expiry::BrowserClose, None),
    ] {
        let outcome = request(&manager, None, 200, |s| async move {
            s.insert("k", 1).await.unwrap();
            s.set_expiry(expiry).await.unwrap();
        })
        .await;
        assert_eq!(
            outcome.set_cookie.as_ref().unwrap().max_age(),
            max_age,
            "{expiry:?}"
        );
        let cookie = value_of(&outcome);
        let kept = Arc::new(std::sync::Mutex::new(None));
        let slot = kept.clone();
        let _ = request(&manager, Some(&cookie), 200, |s| async move {
            *slot.lock().unwrap() = Some(s.expiry().await.unwrap());
        })
        .await;
        assert_eq!(kept.lock().unwrap().take(), Some(expiry));
    }
}

async fn a_short_inactivity_expiry_is_honoured(mode: Mode) {
    let manager = mode.manager();
    let outcome = request(&manager, None, 200, |s| async move {
        s.insert("k", 1).await.unwrap();
        s.set_expiry(Expiry::Inactivity(Duration::seconds(1)))
            .await
            .unwrap();
    })
    .await;
    let cookie = value_of(&outcome);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(reads(mode, &cookie, "k").await, None);
    let outcome = request(&manager, Some(&cookie), 200, |s| async move {
        s.get::<i64>("k").await.unwrap();
    })
    .await;
    assert!(outcome.removes_cookie(), "an expired cookie is removed");
}

async fn a_cookie_older_than_the_cookie_age_loads_empty(mode: Mode) {
    let config = SessionConfig::default();
    let entries = serde_json::from_value(json!({"k": "old"})).unwrap();
    let old = match mode {
        Mode::Signed => SignedCookies::new(keys(), config.cookie_age).seal_at(
            &entries,
            Expiry::Default,
            OffsetDateTime::now_utc().unix_timestamp() - 1_209_600 - 10,
        ),
        Mode::Encrypted => EncryptedCookies::new(keys(), config.cookie_age).seal_at(
            &entries,
            // Even with a longer age of its own, the cookie age bounds it.
            Expiry::Inactivity(Duration::days(30)),
            OffsetDateTime::now_utc().unix_timestamp() - 1_209_600 - 10,
        ),
    };
    assert_eq!(reads(mode, &old, "k").await, None);
}

async fn tampered_and_truncated_cookies_load_empty_without_panicking(mode: Mode) {
    let cookie = saved_with(mode, json!({"role": "user", "blob": "x".repeat(200)})).await;
    let sealer = mode.sealer(keys(), &SessionConfig::default());
    assert!(sealer.open(&cookie).is_ok());
    for end in 0..cookie.len() {
        assert!(sealer.open(&cookie[..end]).is_err(), "prefix {end}");
    }
    let bytes = cookie.as_bytes();
    for at in 0..bytes.len() {
        for bit in 0..7 {
            let mut flipped = bytes.to_vec();
            flipped[at] ^= 1 << bit;
            if let Ok(text) = std::str::from_utf8(&flipped)
                && text != cookie
            {
                // Base64's last character may carry unused bits: Django's text comparison
                // rejects those too; what must never happen is data that opens changed.
                if let Ok((data, _)) = sealer.open(text) {
                    assert_eq!(data.entries["role"], json!("user"), "flip {at}/{bit}");
                }
            }
        }
    }
    for bad in ["", ":", "::", "é", "\u{0}", &"a".repeat(5000)] {
        assert!(sealer.open(bad).is_err());
    }
    // One character in the middle changed (the last may carry unused base64 bits).
    let middle = cookie.len() / 2;
    let swapped = if cookie.as_bytes()[middle] == b'A' {
        "B"
    } else {
        "A"
    };
    let forged = format!("{}{swapped}{}", &cookie[..middle], &cookie[middle + 1..]);
    let outcome = request(&mode.manager(), Some(&forged), 200, |s| async move {
        assert_eq!(s.get::<String>("role").await.unwrap(), None);
    })
    .await;
    assert!(outcome.removes_cookie());
}

async fn an_oversized_session_fails_its_save_naming_the_size(mode: Mode) {
    let manager = mode.manager();
    let blob = session_testkit::fixtures::incompressible(5000);
    let outcome = request(&manager, None, 200, |s| async move {
        s.insert("blob", blob).await.unwrap();
    })
    .await;
    assert_eq!(outcome.replace_with, Some(Replacement::ServerError));
    assert_eq!(outcome.set_cookie, None);
    let session = manager.session_from_cookie(None);
    session
        .insert("blob", session_testkit::fixtures::incompressible(5000))
        .await
        .unwrap();
    match session.save().await {
        Err(SessionError::TooLarge { size, limit }) => {
            assert_eq!(limit, MAX_COOKIE_BYTES - "sessionid".len() - 1);
            assert!(size > limit, "{size}");
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // Just under the limit still fits, and its cookie is at most 4,093 bytes.
    let fitting = request(&manager, None, 200, |s| async move {
        s.insert("blob", session_testkit::fixtures::incompressible(2500))
            .await
            .unwrap();
    })
    .await;
    let cookie = fitting.set_cookie.expect("a cookie");
    assert!(cookie.name().len() + 1 + cookie.value().len() <= MAX_COOKIE_BYTES);
}

async fn fallback_keys_open_and_new_cookies_use_the_current_key(mode: Mode) {
    let config = SessionConfig::default();
    let old = mode.manager_with(Keys::new("old-key"), config.clone());
    let outcome = request(&old, None, 200, |s| async move {
        s.insert("k", "from-old").await.unwrap();
    })
    .await;
    let cookie = value_of(&outcome);
    let rotated = mode.manager_with(Keys::new("new-key").with_fallbacks(["old-key"]), config);
    let outcome = request(&rotated, Some(&cookie), 200, |s| async move {
        assert_eq!(
            s.get::<String>("k").await.unwrap().as_deref(),
            Some("from-old")
        );
        s.insert("seen", true).await.unwrap();
    })
    .await;
    let resealed = value_of(&outcome);
    let new_only = mode.sealer(Keys::new("new-key"), &SessionConfig::default());
    let old_only = mode.sealer(Keys::new("old-key"), &SessionConfig::default());
    assert!(new_only.open(&resealed).is_ok());
    assert!(old_only.open(&resealed).is_err());
}

async fn save_every_request_reseals_and_a_5xx_writes_nothing(mode: Mode) {
    let config = SessionConfig::default().save_every_request(true);
    let manager = mode.manager_with(keys(), config);
    let cookie = saved_with(mode, json!({"k": 1})).await;
    let renewed = request(&manager, Some(&cookie), 200, |_| async {}).await;
    assert_eq!(reads(mode, &value_of(&renewed), "k").await, Some(json!(1)));
    let failed = request(&mode.manager(), Some(&cookie), 500, |s| async move {
        s.insert("k", 2).await.unwrap();
    })
    .await;
    assert_eq!(failed.set_cookie, None);
}

async fn the_modes_do_not_open_each_others_cookies(mode: Mode) {
    let cookie = saved_with(mode, json!({"k": 1})).await;
    let other = match mode {
        Mode::Signed => Mode::Encrypted,
        Mode::Encrypted => Mode::Signed,
    };
    assert_eq!(reads(other, &cookie, "k").await, None);
    if let Mode::Encrypted = mode {
        let bytes = session_django::signing::b64_decode(&cookie).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("\"k\""),
            "the client can read an encrypted cookie"
        );
    }
}

macro_rules! on_both_modes {
    ($($case:ident),* $(,)?) => {
        mod signed_cookie { use super::*; $(
            #[tokio::test]
            async fn $case() { super::$case(Mode::Signed).await }
        )* }
        mod encrypted_cookie { use super::*; $(
            #[tokio::test]
            async fn $case() { super::$case(Mode::Encrypted).await }
        )* }
    };
}

on_both_modes!(
    the_session_round_trips_through_the_cookie,
    an_untouched_or_read_session_sets_no_cookie,
    flush_sends_the_removal_cookie,
    cycle_key_keeps_the_data_in_a_new_cookie,
    each_expiry_setting_shapes_the_cookie,
    a_short_inactivity_expiry_is_honoured,
    a_cookie_older_than_the_cookie_age_loads_empty,
    tampered_and_truncated_cookies_load_empty_without_panicking,
    an_oversized_session_fails_its_save_naming_the_size,
    fallback_keys_open_and_new_cookies_use_the_current_key,
    save_every_request_reseals_and_a_5xx_writes_nothing,
    the_modes_do_not_open_each_others_cookies,
);

fn jar(mode: Mode) -> session_core::client_side::CookieJar {
    session_core::client_side::CookieJar::new(mode.sealer(keys(), &SessionConfig::default()))
}

session_testkit::session_conformance!(
    signed_cookie_kit,
    session_testkit::Capabilities::new(),
    || async { jar(Mode::Signed) }
);
// Sealing the 1 MiB sessions of the size-limit case is slow in a debug build.
session_testkit::session_conformance!(
    encrypted_cookie_kit,
    session_testkit::Capabilities::new().timeout(std::time::Duration::from_secs(240)),
    || async { jar(Mode::Encrypted) }
);
