//! `FileStore` through the conformance kit, each case in its own temporary directory: with
//! the default options, and with `durable_updates` (a directory fsync after every update).

use session_file::{FileOptions, FileStore};
use session_testkit::{Capabilities, Guarded, store_conformance};

async fn temp_store() -> Guarded<FileStore, tempfile::TempDir> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = FileStore::new(dir.path().join("sessions")).expect("a file store");
    Guarded::new(store, dir)
}

async fn durable_store() -> Guarded<FileStore, tempfile::TempDir> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let options = FileOptions::new().durable_updates(true);
    let store = FileStore::with_options(dir.path().join("sessions"), options).expect("a store");
    Guarded::new(store, dir)
}

store_conformance!(file, Capabilities::new(), temp_store);
store_conformance!(file_durable, Capabilities::new(), durable_store);
session_testkit::owner_conformance!(file_owner, Capabilities::new(), temp_store);
