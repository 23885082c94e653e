//! Checks shared by the fault tests: with the server down, every operation fails within the
//! bound, and its error names the server once, without the password.

use std::future::Future;
use std::time::{Duration, Instant};

use session_core::time::OffsetDateTime;
use session_core::{Record, SessionKey, SessionStore, StoreError, error_chain};

use super::own_server::PASSWORD;

/// A live record with a fresh id.
pub fn record() -> Record {
    Record::new(
        SessionKey::generate().record_id(),
        r#"{"v":1,"data":{"fault":true}}"#,
        OffsetDateTime::now_utc() + session_core::time::Duration::hours(1),
    )
}

/// Awaits `op`, returning its outcome and how long it took.
pub async fn timed<T>(op: impl Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let outcome = op.await;
    (outcome, started.elapsed())
}

/// The error's whole chain, checked: it names `127.0.0.1:<port>`, holds no password, and no
/// part of it is said twice.
pub fn checked_text(error: &StoreError, port: u16) -> String {
    let text = error_chain(error);
    assert!(
        text.contains(&format!("127.0.0.1:{port}")),
        "names the server: {text}"
    );
    assert!(!text.contains(PASSWORD), "no password: {text}");
    let parts: Vec<&str> = text.split(": ").collect();
    for (i, part) in parts.iter().enumerate() {
        assert!(
            !parts[i + 1..].contains(part),
            "{part:?} said twice in: {text}"
        );
    }
    text
}

/// With the server down, `load`, `update`, `create`, `delete` and `touch` each fail within
/// three times `bound`, with a checked error. They run at once, so the check costs one bound;
/// returns each one's name and time.
pub async fn every_operation_fails_within(
    store: &dyn SessionStore,
    known: &Record,
    bound: Duration,
    port: u16,
) -> Vec<(&'static str, Duration)> {
    let fresh = record();
    let (load, update, create, delete, touch) = tokio::join!(
        timed(async { store.load(known.id()).await.map(drop) }),
        timed(store.update(known)),
        timed(store.create(&fresh)),
        timed(async { store.delete(known.id()).await.map(drop) }),
        timed(store.touch(known.id(), known.expires_at())),
    );
    let outcomes = [
        ("load", load),
        ("update", update),
        ("create", create),
        ("delete", delete),
        ("touch", touch),
    ];
    for (name, (outcome, took)) in &outcomes {
        let text = outcome.as_ref().map_err(|e| error_chain(e));
        eprintln!("server down: {name} took {took:?}: {text:?}");
    }
    let mut times = Vec::new();
    for (name, (outcome, took)) in outcomes {
        let error = outcome.expect_err(name);
        assert!(
            matches!(error, StoreError::Backend { .. }),
            "{name}: {error:?}"
        );
        let text = checked_text(&error, port);
        assert!(
            took < bound * 3,
            "{name} took {took:?}, over 3 × {bound:?}: {text}"
        );
        times.push((name, took));
    }
    times
}

/// Once the server is back, the same store serves every operation again.
pub async fn store_works_again(store: &dyn SessionStore, known: &Record) {
    assert_eq!(
        store.load(known.id()).await.expect("load after restart"),
        Some(known.clone()),
        "the record written before the crash"
    );
    store.update(known).await.expect("update after restart");
    let fresh = record();
    store.create(&fresh).await.expect("create after restart");
    assert!(
        store
            .delete(fresh.id())
            .await
            .expect("delete after restart")
    );
}
