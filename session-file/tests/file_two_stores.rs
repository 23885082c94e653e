//! Two stores on one directory, as two application processes on one host.

use std::sync::Arc;

use session_core::time::{Duration, OffsetDateTime};
use session_core::{Record, SessionKey, SessionStore, StoreError};
use session_file::FileStore;

fn record(key: &SessionKey, payload: &str) -> Record {
    Record::new(
        key.record_id(),
        payload,
        OffsetDateTime::now_utc() + Duration::hours(1),
    )
}

#[tokio::test]
async fn file_two_stores_see_each_others_writes() {
    let dir = tempfile::tempdir().unwrap();
    let a = FileStore::new(dir.path()).unwrap();
    let b = FileStore::new(dir.path()).unwrap();
    let key = SessionKey::generate();
    a.create(&record(&key, "first")).await.unwrap();
    assert_eq!(
        b.load(&key.record_id()).await.unwrap().unwrap().payload(),
        "first"
    );
    b.update(&record(&key, "second")).await.unwrap();
    assert_eq!(
        a.load(&key.record_id()).await.unwrap().unwrap().payload(),
        "second"
    );
    assert!(matches!(
        b.create(&record(&key, "dup")).await,
        Err(StoreError::DuplicateId)
    ));
    assert!(a.delete(&key.record_id()).await.unwrap());
    assert_eq!(b.load(&key.record_id()).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_two_stores_delete_never_undone_by_update() {
    let dir = tempfile::tempdir().unwrap();
    let a = Arc::new(FileStore::new(dir.path()).unwrap());
    let b = Arc::new(FileStore::new(dir.path()).unwrap());
    let (mut updated_first, mut deleted_first) = (0, 0);
    for _ in 0..1_000 {
        let key = SessionKey::generate();
        a.create(&record(&key, "logged in")).await.unwrap();
        let id = key.record_id();
        let deleter = {
            let a = a.clone();
            let id = id.clone();
            tokio::spawn(async move { a.delete(&id).await })
        };
        let updater = {
            let b = b.clone();
            let record = record(&key, "still here");
            tokio::spawn(async move { b.update(&record).await })
        };
        assert!(
            deleter.await.unwrap().unwrap(),
            "the delete saw a live record"
        );
        match updater.await.unwrap() {
            Ok(()) => updated_first += 1,
            Err(StoreError::NotFound) => deleted_first += 1,
            Err(other) => panic!("update failed: {other}"),
        }
        assert_eq!(b.load(&id).await.unwrap(), None, "a logout was undone");
        assert_eq!(a.load(&id).await.unwrap(), None, "a logout was undone");
    }
    eprintln!("1000 races: update first {updated_first}, delete first {deleted_first}");
}
