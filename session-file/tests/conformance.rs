//! `FileStore` through the conformance kit, each case in its own temporary directory.

use session_file::FileStore;
use session_testkit::{Capabilities, Guarded, store_conformance};

async fn temp_store() -> Guarded<FileStore, tempfile::TempDir> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = FileStore::new(dir.path().join("sessions")).expect("a file store");
    Guarded::new(store, dir)
}

store_conformance!(file, Capabilities::new(), temp_store);
