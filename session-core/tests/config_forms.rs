//! The two ways to write a configuration (setters, the documented idiom, and a struct literal
//! over the defaults) give the same value and go through the same start-up check.

use std::sync::Arc;

use session_core::time::Duration;
use session_core::{Expiry, MemoryStore, Session, SessionConfig, SessionManager};

#[test]
fn memory_config_setters_and_literal_agree_and_are_both_checked() {
    let literal = SessionConfig {
        cookie_age: Duration::hours(1),
        cookie_secure: true,
        ..SessionConfig::default()
    };
    let built = SessionConfig::new()
        .cookie_age(Duration::hours(1))
        .cookie_secure(true);
    assert_eq!(literal, built);
    let bad = SessionConfig {
        cookie_name: "__Host-sid".into(),
        ..SessionConfig::default()
    };
    assert!(SessionManager::try_new(MemoryStore::new(), bad.clone()).is_err());
    assert!(SessionManager::try_new(MemoryStore::new(), bad.cookie_secure(true)).is_ok());
}

#[tokio::test]
async fn memory_expiry_age_seconds_is_djangos_get_expiry_age() {
    let session = Session::new(Arc::new(MemoryStore::new()), Arc::new(SessionConfig::new()));
    assert_eq!(session.expiry_age_seconds().await.unwrap(), 1_209_600);
    session
        .set_expiry(Expiry::Inactivity(Duration::minutes(5)))
        .await
        .unwrap();
    assert_eq!(session.expiry_age_seconds().await.unwrap(), 300);
    assert_eq!(session.expiry_age().await.unwrap(), Duration::minutes(5));
}
