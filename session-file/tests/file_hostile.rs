//! Hostile input never reaches outside the session directory.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::sync::Arc;

use session_core::time::{Duration, OffsetDateTime};
use session_core::{Record, SessionConfig, SessionKey, SessionStore, StoreError};
use session_file::FileStore;

fn record(key: &SessionKey, payload: &str) -> Record {
    Record::new(
        key.record_id(),
        payload,
        OffsetDateTime::now_utc() + Duration::hours(1),
    )
}

#[tokio::test]
async fn file_symlink_at_record_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside.txt");
    std::fs::write(&outside, "1 x\nsecret").unwrap();
    let store = FileStore::new(dir.path().join("sessions")).unwrap();
    let key = SessionKey::generate();
    let planted = store.path().join(format!("sessionid{}", key.record_id()));
    symlink(&outside, &planted).unwrap();

    let id = key.record_id();
    assert_eq!(
        store.load(&id).await.unwrap(),
        None,
        "a symlink is no session"
    );
    assert!(matches!(
        store.update(&record(&key, "{}")).await,
        Err(StoreError::NotFound)
    ));
    let later = OffsetDateTime::now_utc() + Duration::hours(2);
    assert!(matches!(
        store.touch(&id, later).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.clear_expired().await.unwrap(), 0);
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "1 x\nsecret");
    assert!(
        std::fs::symlink_metadata(&planted)
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // Through a session, the key is no session, and a save mints a fresh key.
    let session = session_core::Session::from_cookie(
        Arc::new(store.clone()),
        Arc::new(SessionConfig::default()),
        key.expose_secret(),
    );
    assert_eq!(session.get::<i64>("a").await.unwrap(), None);
    session.insert("a", 1).await.unwrap();
    session.save().await.unwrap();
    assert_ne!(session.session_key().as_ref(), Some(&key));

    // A create at that path replaces the link itself, never the file it points to.
    store.create(&record(&key, "{}")).await.unwrap();
    assert!(
        std::fs::symlink_metadata(&planted)
            .unwrap()
            .file_type()
            .is_file()
    );
    assert!(
        !store
            .delete(&SessionKey::generate().record_id())
            .await
            .unwrap()
    );
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "1 x\nsecret");
}

#[tokio::test]
async fn file_symlinked_lock_directory_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let sessions = dir.path().join("sessions");
    std::fs::create_dir(&sessions).unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::create_dir(sessions.join(".sessionid.locks")).unwrap();
    let key = SessionKey::generate();
    let id = key.record_id();
    let stripe = &id.as_str()[..2];
    symlink(
        elsewhere.join("victim"),
        sessions.join(".sessionid.locks").join(stripe),
    )
    .unwrap();
    let store = FileStore::new(&sessions).unwrap();
    store.create(&record(&key, "{}")).await.unwrap();
    assert!(store.update(&record(&key, "{\"a\":1}")).await.is_err());
    assert!(
        !elsewhere.join("victim").exists(),
        "no file created through the link"
    );
}

#[test]
fn file_path_that_is_a_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let error = FileStore::new(&file).unwrap_err();
    let text = session_core::error_chain(&error);
    assert!(text.contains("not a directory"), "{text}");
    assert!(
        matches!(error, StoreError::Config { .. }),
        "a path that is a file is a configuration error, not an outage: {error:?}"
    );
}

#[test]
fn file_read_only_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let readonly = dir.path().join("ro");
    std::fs::create_dir(&readonly).unwrap();
    std::fs::set_permissions(&readonly, std::fs::Permissions::from_mode(0o500)).unwrap();
    // Root writes through mode bits; then use a directory no one may write: sysfs.
    let target = if std::fs::write(readonly.join("probe"), "x").is_ok() {
        std::path::PathBuf::from("/sys/kernel")
    } else {
        readonly.clone()
    };
    let error = FileStore::new(&target).unwrap_err();
    let text = session_core::error_chain(&error);
    assert!(text.contains("not writable"), "{text}");
    std::fs::set_permissions(&readonly, std::fs::Permissions::from_mode(0o700)).unwrap();
}

#[test]
fn file_bad_prefix_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for prefix in ["", "../x", "a/b", ".hidden", "x\0"] {
        let outcome = FileStore::with_prefix(dir.path(), prefix);
        assert!(
            matches!(outcome, Err(StoreError::Config { .. })),
            "a bad prefix is a configuration error: {prefix:?}"
        );
    }
}

#[tokio::test]
async fn file_created_with_private_modes() {
    let dir = tempfile::tempdir().unwrap();
    let sessions = dir.path().join("new").join("sessions");
    let store = FileStore::new(&sessions).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&sessions), 0o700);
    let key = SessionKey::generate();
    store
        .create(&record(&key, "{\"v\":1,\"data\":{}}"))
        .await
        .unwrap();
    let path = sessions.join(format!("sessionid{}", key.record_id()));
    assert_eq!(mode(&path), 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    let (header, payload) = text.split_once('\n').unwrap();
    assert!(header.contains('T') && header.ends_with('Z'), "{header}");
    assert_eq!(payload, "{\"v\":1,\"data\":{}}");
}

#[tokio::test]
async fn file_garbage_files_load_as_no_session() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path()).unwrap();
    for garbage in [
        &b""[..],
        b"\xff\xfe\xfd",
        b"12",
        b"not-a-number\n{}",
        &[0u8; 4096],
    ] {
        let key = SessionKey::generate();
        std::fs::write(
            dir.path().join(format!("sessionid{}", key.record_id())),
            garbage,
        )
        .unwrap();
        assert_eq!(store.load(&key.record_id()).await.unwrap(), None);
        assert!(matches!(
            store.update(&record(&key, "{}")).await,
            Err(StoreError::NotFound)
        ));
        store
            .create(&record(&key, "{}"))
            .await
            .expect("a broken leftover is replaced");
    }
}
