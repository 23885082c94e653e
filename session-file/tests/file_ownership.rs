//! Local forgery: no other user can plant a session in the file engine's directory.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use session_core::time::{Duration, OffsetDateTime};
use session_core::{Record, SessionKey, SessionStore};
use session_file::{FileOptions, FileStore};
use session_testkit::services;

/// `nobody`: a user other than the one running the tests.
const OTHER_UID: u32 = 65534;

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn chown(path: &std::path::Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), None).expect("chown (as root)");
}

fn record(key: &SessionKey) -> Record {
    Record::new(
        key.record_id(),
        r#"{"v":1,"data":{"user_id":1}}"#,
        OffsetDateTime::now_utc() + Duration::hours(1),
    )
}

#[test]
fn file_group_or_world_writable_directory_is_refused() {
    let parent = tempfile::tempdir().unwrap();
    for mode in [0o777, 0o770, 0o1777, 0o702] {
        let dir = parent.path().join(format!("m{mode:o}"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        let error = FileStore::new(&dir).expect_err("a shared directory is refused");
        let text = session_core::error_chain(&error);
        assert!(text.contains("writable by group or others"), "{text}");
        assert!(text.contains(&dir.display().to_string()), "{text}");
        let options = FileOptions::new().allow_shared_directory(true);
        FileStore::with_options(&dir, options).expect("the documented opt-out");
    }
    let private = parent.path().join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o755)).unwrap();
    FileStore::new(&private).expect("a directory only its owner can write is fine");
}

#[test]
fn file_directory_of_another_user_is_refused() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("theirs");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    if !is_root() {
        // Without root no directory can be given away; "/" belongs to root.
        let error = FileStore::new("/").expect_err("root's directory is not ours");
        assert!(session_core::error_chain(&error).contains("owned by uid 0"));
        return;
    }
    chown(&dir, OTHER_UID);
    let error = FileStore::new(&dir).expect_err("another user's directory is refused");
    let text = session_core::error_chain(&error);
    assert!(
        text.contains(&format!("owned by uid {OTHER_UID}")),
        "{text}"
    );
}

#[tokio::test]
async fn file_record_of_another_user_or_writable_by_others_loads_as_no_session() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("sessions")).unwrap();
    let writable = SessionKey::generate();
    store.create(&record(&writable)).await.unwrap();
    let path = |key: &SessionKey| store.path().join(format!("sessionid{}", key.record_id()));
    std::fs::set_permissions(path(&writable), std::fs::Permissions::from_mode(0o666)).unwrap();
    assert_eq!(store.load(&writable.record_id()).await.unwrap(), None);

    if !is_root() {
        services::skip(
            "file-foreign-owner",
            "giving a file to another user needs root",
        );
        return;
    }
    let foreign = SessionKey::generate();
    store.create(&record(&foreign)).await.unwrap();
    chown(&path(&foreign), OTHER_UID);
    assert_eq!(std::fs::metadata(path(&foreign)).unwrap().uid(), OTHER_UID);
    assert_eq!(
        store.load(&foreign.record_id()).await.unwrap(),
        None,
        "a planted record is no session"
    );
    // Cleanup leaves what it does not trust alone, without failing.
    assert_eq!(store.clear_expired().await.unwrap(), 0);
    assert!(path(&foreign).exists());
    // A create of the same id replaces the planted file with one of ours.
    store.create(&record(&foreign)).await.unwrap();
    assert_eq!(std::fs::metadata(path(&foreign)).unwrap().uid(), 0);
    assert!(store.load(&foreign.record_id()).await.unwrap().is_some());
}

#[test]
fn file_shared_or_foreign_directory_is_a_configuration_error() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("shared");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let error = FileStore::new(&dir).expect_err("refused");
    assert!(
        matches!(error, session_core::StoreError::Config { .. }),
        "a directory others can write is a setting to fix, not an outage: {error:?}"
    );
}
