//! `SqliteStore` on disk (one database file per case) and in memory: the conformance kit and
//! the dialect's own cases.

mod common;

use common::live_records;
use session_core::record::unix_millis;
use session_core::time::{Duration, OffsetDateTime};
use session_core::{Record, SessionKey, SessionStore, StoreError};
use session_db::SqliteStore;
use session_db::testing::unique_table;
use session_testkit::{Capabilities, Guarded, run_case, store_conformance};
use sqlx::sqlite::SqlitePoolOptions;

async fn sqlite_file_store() -> Guarded<SqliteStore, tempfile::TempDir> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("sessions.db").display());
    let store = SqliteStore::connect(&url).await.expect("open");
    store.migrate().await.expect("migrate");
    Guarded::new(store, dir)
}

async fn sqlite_memory_store() -> SqliteStore {
    let store = SqliteStore::connect("sqlite::memory:").await.expect("open");
    store.migrate().await.expect("migrate");
    store
}

store_conformance!(sqlite_file, Capabilities::new(), sqlite_file_store);
store_conformance!(sqlite_memory, Capabilities::new(), sqlite_memory_store);
session_testkit::owner_conformance!(sqlite_file_owner, Capabilities::new(), sqlite_file_store);
session_testkit::owner_conformance!(
    sqlite_memory_owner,
    Capabilities::new(),
    sqlite_memory_store
);

/// Two instances (two pools, as two processes would) migrating one database file at once
/// both succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_concurrent_migrations_succeed() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    for _ in 0..5 {
        let table = unique_table("lite");
        let a = SqliteStore::connect(&url)
            .await
            .expect("open")
            .with_table(&table)
            .expect("table");
        let b = SqliteStore::connect(&url)
            .await
            .expect("open")
            .with_table(&table)
            .expect("table");
        let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
        ra.expect("first migrate");
        rb.expect("second migrate");
        live_records(&b, 1).await;
        assert_eq!(a.clear_expired().await.expect("clear"), 0);
    }
}

/// Two tables in one database each get their own, table-named expiry index.
#[tokio::test]
async fn sqlite_two_tables_get_their_own_index() {
    let store = SqliteStore::connect("sqlite::memory:").await.expect("open");
    for table in ["first_sessions", "second_sessions"] {
        let store = store.clone().with_table(table).expect("table");
        store.migrate().await.expect("migrate");
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1 \
             AND sql LIKE '%expires_hour%'",
        )
        .bind(table)
        .fetch_all(store.pool())
        .await
        .expect("indexes");
        assert_eq!(indexes, [format!("{table}_expiry_idx")]);
    }
}

/// A hostile table name is refused before any SQL runs.
#[tokio::test]
async fn sqlite_hostile_table_name_refused_before_sql() {
    let pool = SqlitePoolOptions::new()
        .connect_lazy("sqlite:///nonexistent/dir/never.db")
        .expect("a lazy pool");
    for name in ["x; DROP TABLE y", "sessions\"--", "", "a.b"] {
        let outcome = SqliteStore::new(pool.clone()).with_table(name);
        assert!(
            matches!(outcome, Err(StoreError::Config { .. })),
            "a bad table name is a configuration error, not an outage: {name:?}"
        );
    }
    assert_eq!(pool.size(), 0, "no connection was ever opened");
}

/// `clear_expired` over 20,000 expired rows returns 20,000 and leaves the live rows.
#[test]
fn sqlite_clear_expired_20000_rows() {
    run_case(
        "sqlite_clear_expired_20000_rows",
        Capabilities::new(),
        sqlite_file_store,
        |ctx| async move {
            let _ = ctx;
            let guarded = sqlite_file_store().await;
            let store = guarded.store();
            let live = live_records(store, 10).await;
            let past = unix_millis(OffsetDateTime::now_utc() - Duration::minutes(5));
            sqlx::query(
            "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 20000) \
             INSERT INTO sessions (id, payload, expires_at) \
             SELECT printf('%064d', n), '{}', ?1 FROM seq",
        )
        .bind(past)
        .execute(store.pool())
        .await
        .expect("bulk insert");
            assert_eq!(store.clear_expired().await.expect("clear_expired"), 20_000);
            assert_eq!(store.clear_expired().await.expect("again"), 0);
            for record in live {
                assert_eq!(store.load(record.id()).await.expect("load"), Some(record));
            }
        },
    );
}

/// With every pooled connection busy, an operation fails after the acquire bound set through
/// `connect_with`, and its error names the database and the wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_acquire_wait_is_bounded() {
    let bound = std::time::Duration::from_millis(300);
    let options = session_db::StoreOptions::new().acquire_timeout(bound);
    let store = SqliteStore::connect_with("sqlite::memory:", options)
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    let record = live_records(&store, 1).await.remove(0);
    // An in-memory database has one connection: hold it.
    let held = store.pool().acquire().await.expect("the only connection");
    let started = std::time::Instant::now();
    let error = store
        .load(record.id())
        .await
        .expect_err("no free connection");
    let took = started.elapsed();
    assert!(took < bound * 3, "took {took:?}");
    let text = session_core::error_chain(&error);
    assert!(
        text.contains("SQLite at file:sqlx-in-memory-")
            && text.contains("no connection within 300ms"),
        "{text}"
    );
    drop(held);
    assert_eq!(store.load(record.id()).await.expect("load"), Some(record));
}

/// A database file that cannot be created fails `connect` with an error naming the file,
/// the driver's text said once.
#[tokio::test]
async fn sqlite_unopenable_file_is_named_once() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("missing-dir").join("sessions.db");
    let error = SqliteStore::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect_err("no such directory");
    let text = session_core::error_chain(&error);
    assert!(text.contains(&path.display().to_string()), "{text}");
    let parts: Vec<&str> = text.split(": ").collect();
    for (i, part) in parts.iter().enumerate() {
        assert!(!parts[i + 1..].contains(part), "{part:?} twice in {text}");
    }
}

/// A URL that does not parse is a configuration error, not an outage.
#[tokio::test]
async fn sqlite_bad_url_is_a_configuration_error() {
    let outcome = SqliteStore::connect("sqlite://?mode=nonsense").await;
    assert!(
        matches!(outcome, Err(StoreError::Config { .. })),
        "{outcome:?}"
    );
}

/// A table created by the previous version (no `expires_hour`, an index on `expires_at`)
/// holding live sessions is upgraded in place by `migrate()`: the sessions stay, the new
/// index replaces the old one, and everything works on it.
#[tokio::test]
async fn sqlite_migrate_upgrades_a_previous_version_table_in_place() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    let store = SqliteStore::connect(&url).await.expect("open");
    let pool = store.pool().clone();
    for sql in [
        "CREATE TABLE \"sessions\" (id TEXT PRIMARY KEY NOT NULL, payload TEXT NOT NULL, \
         expires_at INTEGER NOT NULL)",
        "CREATE INDEX \"sessions_expires_at_idx\" ON \"sessions\" (expires_at)",
    ] {
        sqlx::query(sql)
            .execute(&pool)
            .await
            .expect("the previous version's schema");
    }
    let (live, expired) = common::previous_version_rows();
    for record in live.iter().chain([&expired]) {
        sqlx::query("INSERT INTO sessions (id, payload, expires_at) VALUES (?1, ?2, ?3)")
            .bind(record.id().as_str())
            .bind(record.payload())
            .bind(record.expires_at_unix_millis())
            .execute(&pool)
            .await
            .expect("a session of the previous version");
    }
    upgrade_and_check_indexes(&store).await;
    common::upgraded_table_keeps_working(&store, &live, &expired).await;
}

/// A table created by the version before the owner index (`expires_hour`, no `owner`)
/// holding live sessions gets the owner columns and index from `migrate()`, in place.
#[tokio::test]
async fn sqlite_owner_migrate_adds_the_owner_index_in_place() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("before-owner.db").display());
    let store = SqliteStore::connect(&url).await.expect("open");
    let pool = store.pool().clone();
    for sql in [
        "CREATE TABLE \"sessions\" (id TEXT PRIMARY KEY NOT NULL, payload TEXT NOT NULL, \
         expires_at INTEGER NOT NULL, expires_hour INTEGER NOT NULL DEFAULT 0)",
        "CREATE INDEX \"sessions_expiry_idx\" ON \"sessions\" (expires_hour)",
    ] {
        sqlx::query(sql)
            .execute(&pool)
            .await
            .expect("the schema before the owner index");
    }
    let (live, _) = common::previous_version_rows();
    for record in &live {
        sqlx::query(
            "INSERT INTO sessions (id, payload, expires_at, expires_hour) VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(record.id().as_str())
        .bind(record.payload())
        .bind(record.expires_at_unix_millis())
        .bind(record.expires_at_unix_millis() / 3_600_000)
        .execute(&pool)
        .await
        .expect("a session of the previous version");
    }
    upgrade_and_check_indexes(&store).await;
    common::owner_upgrade_keeps_working(&store, &live).await;
}

/// Migrates the old `sessions` table twice (the second run has nothing left to do) and checks
/// it ends with exactly the current indexes.
async fn upgrade_and_check_indexes(store: &SqliteStore) {
    store.migrate().await.expect("upgrade");
    store
        .migrate()
        .await
        .expect("and again: nothing left to do");
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'sessions' \
         AND sql IS NOT NULL ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .expect("indexes");
    assert_eq!(indexes, ["sessions_expiry_idx", "sessions_owner_idx"]);
}

/// `clear_expired` finds expired rows through the expiry index, and a save whose hour did
/// not move leaves the index alone (the statement that does not assign the hour matched).
#[tokio::test]
async fn sqlite_clear_expired_uses_the_expiry_index() {
    let store = SqliteStore::connect("sqlite::memory:").await.expect("open");
    store.migrate().await.expect("migrate");
    let rows = sqlx::query(
        "EXPLAIN QUERY PLAN DELETE FROM sessions WHERE rowid IN \
         (SELECT rowid FROM sessions WHERE expires_hour <= ?1 AND expires_at <= ?2 ORDER BY expires_hour LIMIT ?3)",
    )
    .bind(1_i64)
    .bind(2_i64)
    .bind(3_i64)
    .fetch_all(store.pool())
    .await
    .expect("explain");
    let plan: Vec<String> = rows
        .iter()
        .map(|row| sqlx::Row::get::<String, _>(row, "detail"))
        .collect();
    let plan = plan.join("\n");
    assert!(
        plan.contains("USING INDEX sessions_expiry_idx")
            || plan.contains("USING COVERING INDEX sessions_expiry_idx"),
        "the cleanup reads the expiry index, not the table:\n{plan}"
    );
}

/// Writes from one store wait for each other in-process instead of meeting SQLite's busy
/// lock: with the busy timeout at zero (a busy writer fails at once), 16 tasks writing at
/// once through 8 connections never see "database is locked".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_concurrent_writes_of_one_store_never_meet_the_busy_lock() {
    use std::str::FromStr;
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("busy.db").display());
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
        .expect("url")
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .busy_timeout(std::time::Duration::ZERO);
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
        .expect("open");
    let store = SqliteStore::new(pool);
    store.migrate().await.expect("migrate");
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut records = live_records(&store, 1).await;
            let mut record = records.remove(0);
            for n in 0..40 {
                record.set_expires_at(OffsetDateTime::now_utc() + Duration::minutes(n + 1));
                store.update(&record).await?;
                store.touch(record.id(), record.expires_at()).await?;
            }
            store.delete(record.id()).await.map(drop)
        }));
    }
    for task in tasks {
        task.await
            .expect("task")
            .expect("no write of one store meets another's lock");
    }
}

/// Writes that queue behind one another share a transaction, but each caller still gets its
/// own answer: 48 writes at once (creates, a duplicate create, updates and deletes of rows
/// that exist and of rows that do not), in rounds, each answered as it would be alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writes_committed_together_keep_their_own_answers() {
    let guarded = sqlite_file_store().await;
    let store = guarded.store();
    for round in 0..5 {
        let existing = live_records(store, 8).await;
        let fresh = || {
            Record::new(
                SessionKey::generate().record_id(),
                format!(r#"{{"v":1,"data":{{"round":{round}}}}}"#),
                OffsetDateTime::now_utc() + Duration::hours(1),
            )
        };
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(48));
        let mut tasks = Vec::new();
        for n in 0..48 {
            let store = store.clone();
            let barrier = barrier.clone();
            let mine = existing[n % 8].clone();
            let new = fresh();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                match n % 6 {
                    0 => store.create(&new).await.map(|()| "created"),
                    1 => match store.create(&mine).await {
                        Err(StoreError::DuplicateId) => Ok("duplicate"),
                        other => other.map(|()| "created a duplicate"),
                    },
                    2 => store.update(&mine).await.map(|()| "updated"),
                    3 => match store.update(&new).await {
                        Err(StoreError::NotFound) => Ok("not found"),
                        other => other.map(|()| "updated a missing row"),
                    },
                    4 => store
                        .touch(mine.id(), mine.expires_at())
                        .await
                        .map(|()| "touched"),
                    _ => store.delete(new.id()).await.map(|live| {
                        if live {
                            "deleted a missing row"
                        } else {
                            "nothing to delete"
                        }
                    }),
                }
            }));
        }
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.expect("task").expect("each write answers"));
        }
        let expected = [
            "created",
            "duplicate",
            "updated",
            "not found",
            "touched",
            "nothing to delete",
        ];
        for (n, answer) in answers.iter().enumerate() {
            assert_eq!(*answer, expected[n % 6], "round {round}, write {n}");
        }
        for record in &existing {
            assert!(store.load(record.id()).await.expect("load").is_some());
            assert!(store.delete(record.id()).await.expect("delete"));
        }
    }
}

/// A caller that leaves while its write is queued (a timed-out request) never takes others'
/// writes with it, even when its own task was the one running the shared transaction: half of
/// 32 writers are aborted at once, round after round, and every write of the other half is
/// answered and on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_dropped_writers_do_not_cut_short_the_others_writes() {
    let guarded = sqlite_file_store().await;
    let store = guarded.store();
    let records = live_records(store, 32).await;
    for round in 0..40 {
        let mut kept = Vec::new();
        let mut dropped = Vec::new();
        for (n, record) in records.iter().enumerate() {
            let store = store.clone();
            let record = Record::new(
                record.id().clone(),
                format!(r#"{{"v":1,"data":{{"round":{round}}}}}"#),
                record.expires_at(),
            );
            let task = tokio::spawn(async move { store.update(&record).await });
            if n % 2 == 0 {
                kept.push(task)
            } else {
                dropped.push(task)
            }
            if n == 1 {
                // A writer to be dropped is first in the queue and runs the first group.
                tokio::task::yield_now().await;
            }
        }
        // Mid-commit, most rounds: a commit here takes from 0.1 ms to a few.
        tokio::time::sleep(std::time::Duration::from_micros(50 * round)).await;
        dropped.iter().for_each(tokio::task::JoinHandle::abort);
        for task in kept {
            task.await.expect("task").expect("a kept write is answered");
        }
        for task in dropped {
            // Aborted or finished: either way its write happened whole or not at all.
            let _ = task.await;
        }
        for record in records.iter().step_by(2) {
            let loaded = store.load(record.id()).await.expect("load").expect("live");
            assert_eq!(
                loaded.payload(),
                format!(r#"{{"v":1,"data":{{"round":{round}}}}}"#),
                "round {round}"
            );
        }
    }
}

/// One write's failure is never another's: when a write fails inside a shared transaction
/// (here a trigger refuses it, by aborting the statement or by rolling the whole transaction
/// back), the group is rolled back and every write runs again on its own, so only the refused
/// one fails and every other is on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_refused_write_fails_alone_in_a_shared_transaction() {
    for action in ["ABORT", "ROLLBACK"] {
        let guarded = sqlite_file_store().await;
        let store = guarded.store();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE TRIGGER refuse BEFORE UPDATE ON sessions WHEN NEW.payload = 'refused' \
             BEGIN SELECT RAISE({action}, 'refused by the test'); END"
        )))
        .execute(store.pool())
        .await
        .expect("trigger");
        let records = live_records(store, 16).await;
        for round in 0..10 {
            let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(16));
            let tasks: Vec<_> = records
                .iter()
                .enumerate()
                .map(|(n, record)| {
                    let payload = if n == round {
                        "refused".to_owned()
                    } else {
                        format!(r#"{{"v":1,"data":{{"round":{round}}}}}"#)
                    };
                    let record = Record::new(record.id().clone(), payload, record.expires_at());
                    let (store, barrier) = (store.clone(), barrier.clone());
                    tokio::spawn(async move {
                        barrier.wait().await;
                        store.update(&record).await
                    })
                })
                .collect();
            for (n, task) in tasks.into_iter().enumerate() {
                let answer = task.await.expect("task");
                assert_eq!(
                    answer.is_err(),
                    n == round,
                    "{action}, round {round}, write {n}"
                );
            }
            for (n, record) in records.iter().enumerate() {
                let loaded = store.load(record.id()).await.expect("load").expect("live");
                if n != round {
                    let expected = format!(r#"{{"v":1,"data":{{"round":{round}}}}}"#);
                    assert_eq!(loaded.payload(), expected, "{action}, round {round}");
                }
            }
        }
    }
}
