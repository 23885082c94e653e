#![allow(missing_docs)]
//! Load + update of a five-key session through `FileStore`, against raw `std::fs` doing the
//! same read, temp-write, fsync and rename of the same bytes, in the same run.

use std::fs;
use std::hint::black_box;
use std::io::Write;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use session_core::time::{Duration, OffsetDateTime};
use session_core::{Record, SessionKey, SessionStore};
use session_file::FileStore;

fn raw_read_write(dir: &Path, path: &Path, bytes: &[u8], sync_dir: bool) {
    let read = fs::read(path).expect("read");
    black_box(&read);
    let temp = dir.join(".raw.tmp");
    let mut file = fs::File::create(&temp).expect("temp");
    file.write_all(bytes).expect("write");
    file.sync_all().expect("fsync");
    fs::rename(&temp, path).expect("rename");
    if sync_dir {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .expect("fsync dir");
    }
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("dir");
    let store = FileStore::new(dir.path().join("sessions")).expect("store");
    let payload = session_testkit::fixtures::five_key_payload();
    let id = SessionKey::generate().record_id();
    let expires = OffsetDateTime::now_utc() + Duration::hours(1);
    let record = Record::new(id.clone(), payload.clone(), expires);
    runtime.block_on(store.create(&record)).expect("create");

    let raw_dir = dir.path().join("raw");
    fs::create_dir(&raw_dir).expect("raw dir");
    let raw_path = raw_dir.join("session");
    fs::write(&raw_path, payload.as_bytes()).expect("raw file");

    let mut group = c.benchmark_group("load_update_five_keys");
    group.bench_function("file_store", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let loaded = store.load(&id).await.expect("load").expect("live");
                store.update(black_box(&loaded)).await.expect("update");
            })
        })
    });
    group.bench_function("raw_std_fs", |b| {
        b.iter(|| raw_read_write(&raw_dir, &raw_path, payload.as_bytes(), false))
    });
    // The same plus the directory fsync that makes the rename durable, as FileStore does.
    group.bench_function("raw_std_fs_dir_fsync", |b| {
        b.iter(|| raw_read_write(&raw_dir, &raw_path, payload.as_bytes(), true))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
