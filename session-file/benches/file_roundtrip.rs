#![allow(missing_docs)]
//! Load + update of a five-key session through `FileStore`, against raw `std::fs` doing the
//! same read, temp write, fsync and rename of the same bytes, alternated in the same run;
//! then the same with `durable_updates` against raw plus the directory fsync. Both in a task
//! on a multi-thread runtime (`#[tokio::main]`'s, where a web application's handlers run),
//! then on a current-thread runtime.
//!
//! ```text
//! cargo bench -p session-file --bench file_roundtrip
//! ```
//!
//! The two sides run one call each in turn, each call timed (fsync times drift a lot on a
//! small machine); each side's rate is over its own time. Each mode runs `BENCH_SECONDS`
//! (default 3) times `BENCH_ROUNDS` (default 3) seconds.

use std::fs;
use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::time::{Duration as StdDuration, Instant};

use session_core::time::{Duration, OffsetDateTime};
use session_core::{Record, RecordId, SessionKey, SessionStore};
use session_file::{FileOptions, FileStore};

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

async fn raw_tokio_read_write(dir: &Path, path: &Path, bytes: &[u8]) {
    use tokio::io::AsyncWriteExt;
    let read = tokio::fs::read(path).await.expect("read");
    black_box(&read);
    let temp = dir.join(".raw.tmp");
    let mut file = tokio::fs::File::create(&temp).await.expect("temp");
    file.write_all(bytes).await.expect("write");
    file.sync_all().await.expect("fsync");
    tokio::fs::rename(&temp, path).await.expect("rename");
}

/// The hand-written side of a comparison.
#[derive(Clone, Copy)]
enum Raw {
    /// `std::fs` on the task's thread.
    Std,
    /// `std::fs`, then the directory fsync.
    StdDirSync,
    /// The same steps through `tokio::fs`.
    Tokio,
}

/// Runs our load + update and `raw` one call each in turn for `seconds`, timing each call,
/// so that the drift of fsync times on a small machine hits both sides alike; returns each
/// side's operations per second of its own time.
async fn interleaved(
    seconds: f64,
    store: &FileStore,
    id: &RecordId,
    raw: Raw,
    raw_dir: &Path,
    bytes: &[u8],
) -> (f64, f64) {
    let raw_path = raw_dir.join("session");
    let start = Instant::now();
    let (mut ours_time, mut raw_time) = (StdDuration::ZERO, StdDuration::ZERO);
    let mut n = 0u64;
    while start.elapsed() < StdDuration::from_secs_f64(seconds) {
        let began = Instant::now();
        let loaded = store.load(id).await.expect("load").expect("live");
        store.update(black_box(&loaded)).await.expect("update");
        ours_time += began.elapsed();
        let began = Instant::now();
        match raw {
            Raw::Std => raw_read_write(raw_dir, &raw_path, bytes, false),
            Raw::StdDirSync => raw_read_write(raw_dir, &raw_path, bytes, true),
            Raw::Tokio => raw_tokio_read_write(raw_dir, &raw_path, bytes).await,
        }
        raw_time += began.elapsed();
        n += 1;
    }
    (
        n as f64 / ours_time.as_secs_f64(),
        n as f64 / raw_time.as_secs_f64(),
    )
}

fn env(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let seconds = env("BENCH_SECONDS", 3.0) * env("BENCH_ROUNDS", 3.0);
    let dir = tempfile::tempdir().expect("dir");
    let payload = session_testkit::fixtures::five_key_payload();
    let raw_dir = dir.path().join("raw");
    fs::create_dir(&raw_dir).expect("raw dir");
    fs::write(raw_dir.join("session"), payload.as_bytes()).expect("raw file");

    // `#[tokio::main]`'s runtime first (where a web application's handlers run: on a
    // worker, so the whole comparison runs in one spawned task), then a current-thread one.
    let comparisons = [
        ("multi-thread", false, Raw::Std, "vs raw std::fs        "),
        ("multi-thread", false, Raw::Tokio, "vs raw tokio::fs      "),
        (
            "multi-thread",
            true,
            Raw::StdDirSync,
            "vs raw + dir fsync    ",
        ),
        ("current-thread", false, Raw::Std, "vs raw std::fs        "),
        (
            "current-thread",
            true,
            Raw::StdDirSync,
            "vs raw + dir fsync    ",
        ),
    ];
    for (flavor, durable, raw, label) in comparisons {
        let runtime = if flavor == "multi-thread" {
            tokio::runtime::Builder::new_multi_thread()
        } else {
            tokio::runtime::Builder::new_current_thread()
        }
        .enable_all()
        .build()
        .expect("runtime");
        let options = FileOptions::new().durable_updates(durable);
        let store_dir = dir.path().join(format!("{flavor}-{durable}"));
        let store = FileStore::with_options(&store_dir, options).expect("store");
        let id = SessionKey::generate().record_id();
        let expires = OffsetDateTime::now_utc() + Duration::hours(1);
        let record = Record::new(id.clone(), payload.clone(), expires);
        let (raw_dir, bytes) = (raw_dir.clone(), payload.clone().into_bytes());
        let (ours, raw) = runtime.block_on(async {
            let task = async move {
                store.create(&record).await.expect("create");
                interleaved(seconds, &store, &id, raw, &raw_dir, &bytes).await
            };
            if flavor == "multi-thread" {
                tokio::spawn(task).await.expect("task")
            } else {
                task.await
            }
        });
        let mode = if durable {
            "durable_updates"
        } else {
            "default"
        };
        println!(
            "RESULT file {mode:<15} {flavor:<14} {label} ours={ours:.0}/s raw={raw:.0}/s ratio={:.2}",
            ours / raw
        );
    }
}
