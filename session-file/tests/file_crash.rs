//! Crash safety: a writer process killed with SIGKILL at random moments never leaves a torn
//! record, and `clear_expired` removes the temp files it left behind.

use std::fs::{File, FileTimes};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use session_core::time::OffsetDateTime;
use session_core::{Record, RecordId, SessionKey, SessionStore};
use session_file::FileStore;

/// Set in the child process: the directory to write into, forever.
const CHILD_DIR: &str = "SESSION_FILE_CRASH_CHILD_DIR";
const RECORDS: usize = 6;
const KILLS: usize = 200;

/// The payload of write number `n`: its size and fill character follow from `n`, so a
/// torn or mixed file cannot pass for a complete one.
fn payload(n: u64) -> String {
    let fill = char::from(b'a' + (n % 26) as u8)
        .to_string()
        .repeat(fill_len(n));
    format!(r#"{{"v":1,"data":{{"n":{n},"fill":"{fill}"}}}}"#)
}

fn fill_len(n: u64) -> usize {
    512 + (n as usize * 7_919) % 48_000
}

/// Checks a payload is exactly one complete `payload(n)`.
fn assert_complete(text: &str) {
    let value: serde_json::Value = serde_json::from_str(text).expect("a complete JSON payload");
    let n = value["data"]["n"].as_u64().expect("n");
    assert_eq!(text, payload(n), "payload {n} is not the one written");
}

fn ids(dir: &Path) -> Vec<RecordId> {
    (0..RECORDS)
        .map(|i| {
            let key = std::fs::read_to_string(dir.join(format!("key{i}"))).expect("key file");
            SessionKey::parse(key.trim()).expect("key").record_id()
        })
        .collect()
}

/// Updates every record in turn, `limit` rounds (forever with `None`).
async fn write_loop(store: &FileStore, ids: &[RecordId], limit: Option<u64>) {
    let mut n = 0;
    while limit.is_none_or(|limit| n < limit) {
        for id in ids {
            n += 1;
            let expires = OffsetDateTime::now_utc() + session_core::time::Duration::hours(1);
            let record = Record::new(id.clone(), payload(n), expires);
            store.update(&record).await.expect("update");
        }
    }
}

async fn prepare(dir: &Path) -> FileStore {
    let store = FileStore::new(dir).expect("store");
    for i in 0..RECORDS {
        let key = SessionKey::generate();
        std::fs::write(dir.join(format!("key{i}")), key.expose_secret()).expect("key file");
        let expires = OffsetDateTime::now_utc() + session_core::time::Duration::hours(1);
        let record = Record::new(key.record_id(), payload(0), expires);
        store.create(&record).await.expect("create");
    }
    store
}

async fn assert_all_complete(store: &FileStore, ids: &[RecordId]) {
    for id in ids {
        let record = store
            .load(id)
            .await
            .expect("load")
            .expect("every record stays live");
        assert_complete(record.payload());
    }
}

/// In the parent run: a bounded writer loop that must leave complete records. In the child
/// process (with `SESSION_FILE_CRASH_CHILD_DIR` set): the endless writer the parent kills.
#[tokio::test(flavor = "current_thread")]
async fn file_crash_writer_loop() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        let store = FileStore::new(&dir).expect("store");
        write_loop(&store, &ids(Path::new(&dir)), None).await;
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let store = prepare(dir.path()).await;
    write_loop(&store, &ids(dir.path()), Some(20)).await;
    assert_all_complete(&store, &ids(dir.path())).await;
}

/// A small xorshift, seeded from the clock: random kill moments without a dependency.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn temp_files(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with(".sessionid.tmp."))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_crash_sigkill_never_tears_a_record() {
    let dir = tempfile::tempdir().expect("dir");
    let store = prepare(dir.path()).await;
    let ids = ids(dir.path());
    let exe = std::env::current_exe().expect("the test binary");
    let mut seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0x9e37_79b9, |d| d.as_nanos() as u64)
        | 1;

    for _ in 0..KILLS {
        let mut child = Command::new(&exe)
            .args(["--exact", "file_crash_writer_loop", "--test-threads=1"])
            .env(CHILD_DIR, dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the writer");
        let wait = Duration::from_micros(2_000 + next_random(&mut seed) % 38_000);
        tokio::time::sleep(wait).await;
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        assert_all_complete(&store, &ids).await;
    }

    // Age whatever temp files the kills left, as if a minute had passed.
    let leftovers = temp_files(dir.path());
    let long_ago = SystemTime::now() - Duration::from_secs(120);
    for path in &leftovers {
        let file = File::options().write(true).open(path).expect("open temp");
        file.set_times(FileTimes::new().set_modified(long_ago))
            .expect("set mtime");
    }
    assert_eq!(store.clear_expired().await.expect("clear_expired"), 0);
    assert!(
        temp_files(dir.path()).is_empty(),
        "leftover temp files removed"
    );
    assert_all_complete(&store, &ids).await;
    eprintln!(
        "file crash test: {KILLS} kills, {} temp files left and cleared",
        leftovers.len()
    );
}
