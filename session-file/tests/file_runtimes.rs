//! `FileStore` runs its file work in `block_in_place` on a multi-thread runtime's workers, on
//! the blocking pool on a current-thread runtime, and in place outside tokio: the same
//! session's life on each.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use session_core::time::{Duration, OffsetDateTime};
use session_core::{Record, SessionKey, SessionStore};
use session_file::FileStore;

/// Create, load, update, load, delete: what one login, request and logout do to a file.
async fn one_life(store: &FileStore, n: usize) {
    let id = SessionKey::generate().record_id();
    let expires = OffsetDateTime::now_utc() + Duration::hours(1);
    let record = Record::new(id.clone(), format!("{{\"n\":{n}}}"), expires);
    store.create(&record).await.expect("create");
    let loaded = store.load(&id).await.expect("load").expect("a live record");
    assert_eq!(loaded.payload(), record.payload());
    let changed = Record::new(id.clone(), format!("{{\"n\":{}}}", n + 1), expires);
    store.update(&changed).await.expect("update");
    let loaded = store.load(&id).await.expect("load").expect("a live record");
    assert_eq!(loaded.payload(), changed.payload());
    assert!(store.delete(&id).await.expect("delete"));
    assert!(store.load(&id).await.expect("load").is_none());
}

fn temp_store() -> (tempfile::TempDir, FileStore) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = FileStore::new(dir.path().join("sessions")).expect("a file store");
    (dir, store)
}

#[test]
fn file_store_on_a_current_thread_runtime() {
    let (_dir, store) = temp_store();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(one_life(&store, 1));
}

#[test]
fn file_store_on_multi_thread_workers_concurrently() {
    let (_dir, store) = temp_store();
    let store = Arc::new(store);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let tasks: Vec<_> = (0..16)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move {
                    for round in 0..5 {
                        one_life(&store, n * 10 + round).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("a task that neither panicked nor hung");
        }
    });
}

#[test]
fn file_store_outside_any_runtime_runs_in_place() {
    let (_dir, store) = temp_store();
    let mut life = pin!(one_life(&store, 1));
    // No runtime: the work runs in place, so the future is done at its first poll.
    let polled = life.as_mut().poll(&mut Context::from_waker(Waker::noop()));
    assert!(
        matches!(polled, Poll::Ready(())),
        "outside tokio the store must neither need a runtime nor wait"
    );
}
