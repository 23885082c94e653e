//! What the owner index ("log out everywhere") costs on each engine, against the same work
//! without an owner, in the same run, alternated:
//!
//! - **login**: a new session gets a user id, `cycle_key`, and is saved; with `set_owner`
//!   and without.
//! - **request**: load a logged-in session, change one value, save it; an owned session and
//!   an unowned one.
//! - **read**: load a logged-in session and only read it (the default `last_seen_interval`
//!   of five minutes, so no write); owned and unowned.
//! - **list**: `sessions_of` an owner with 1,000 live sessions (among 10,000 records),
//!   and `delete_sessions_of` them.
//!
//! ```text
//! SESSION_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//! SESSION_TEST_MYSQL_URL=mysql://root@127.0.0.1:3306/test \
//! SESSION_TEST_REDIS_URL=redis://127.0.0.1:6379 \
//! SESSION_TEST_REDIS_CLUSTER_URLS=redis://127.0.0.1:7000,redis://127.0.0.1:7001,redis://127.0.0.1:7002 \
//!   cargo bench -p demo --bench owner_index
//! ```
//!
//! `BENCH_SECONDS` (default 1) is one measurement, `BENCH_ROUNDS` (default 3) how many times
//! each side runs; `BENCH_ENGINES` picks engines (default: all). An engine whose service URL
//! is not set prints `SKIPPED`. One `RESULT` line per measurement: microseconds per
//! operation, median over the rounds, one task at a time.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use session_cache::{CachedStore, RedisConfig, RedisStore};
use session_core::time::OffsetDateTime;
use session_core::{
    MemoryStore, Ownership, Record, Session, SessionConfig, SessionKey, SessionManager,
    SessionStore,
};
use session_db::{PostgresStore, SqliteStore};
use session_file::FileStore;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `op` repeatedly for `seconds`; returns microseconds per call.
async fn per_op<F, Fut>(seconds: f64, mut op: F) -> f64
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let started = Instant::now();
    let budget = Duration::from_secs_f64(seconds);
    let mut n = 0;
    while started.elapsed() < budget {
        op(n).await;
        n += 1;
    }
    started.elapsed().as_secs_f64() * 1e6 / n.max(1) as f64
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// One request of a browser holding `key`: the handler runs on the session, then the
/// lifecycle's end-of-request writes.
async fn request<F, Fut>(manager: &SessionManager, key: &SessionKey, handler: F)
where
    F: FnOnce(Session) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let header = format!("sessionid={}", key.expose_secret());
    let session = manager.session_from_headers([header.as_str()]);
    handler(session.clone()).await;
    let outcome = manager.finish(&session, 200).await;
    assert!(outcome.replace_with.is_none(), "{outcome:?}");
}

/// A logged-in session (with an owner or without); its key.
async fn logged_in(manager: &SessionManager, user: u64, owned: bool) -> SessionKey {
    let session = manager.session_from_headers(std::iter::empty::<&str>());
    session.insert("user_id", user).await.expect("insert");
    session
        .insert("username", "john_doe")
        .await
        .expect("insert");
    session.cycle_key().await.expect("cycle_key");
    if owned {
        session
            .set_owner(Some(&format!("user-{user}")))
            .await
            .expect("set_owner");
    }
    let _ = manager.finish(&session, 200).await;
    session.session_key().expect("a key")
}

async fn bench_engine(name: &str, store: Arc<dyn SessionStore>, seconds: f64, rounds: usize) {
    let manager = SessionManager::from_shared(store.clone(), Arc::new(SessionConfig::new()));
    let mut results: Vec<(&str, Vec<f64>, Vec<f64>)> = Vec::new();
    let mut login = (Vec::new(), Vec::new());
    let mut write = (Vec::new(), Vec::new());
    let mut read = (Vec::new(), Vec::new());
    let owned_key = logged_in(&manager, 1, true).await;
    let plain_key = logged_in(&manager, 2, false).await;
    for _ in 0..rounds {
        for owned in [false, true] {
            let us = per_op(seconds, |n| {
                let manager = manager.clone();
                async move {
                    logged_in(&manager, 1_000 + n % 100, owned).await;
                }
            })
            .await;
            if owned { &mut login.1 } else { &mut login.0 }.push(us);
            let key = if owned { &owned_key } else { &plain_key };
            let us = per_op(seconds, |n| {
                let manager = manager.clone();
                async move {
                    request(&manager, key, |s| async move {
                        s.insert("counter", n).await.expect("insert");
                    })
                    .await;
                }
            })
            .await;
            if owned { &mut write.1 } else { &mut write.0 }.push(us);
            let us = per_op(seconds, |_| {
                let manager = manager.clone();
                async move {
                    request(&manager, key, |s| async move {
                        s.get::<u64>("user_id").await.expect("get");
                    })
                    .await;
                }
            })
            .await;
            if owned { &mut read.1 } else { &mut read.0 }.push(us);
        }
    }
    results.push(("login", login.0, login.1));
    results.push(("request", write.0, write.1));
    results.push(("read", read.0, read.1));
    for (workload, plain, owned) in results {
        let (plain, owned) = (median(plain), median(owned));
        println!(
            "RESULT engine={name} workload={workload} unowned_us={plain:.1} owned_us={owned:.1} \
             added_us={:.1} ratio={:.2}",
            owned - plain,
            plain / owned
        );
    }

    // Listing: 1,000 sessions of one owner among 10,000 records.
    let index = store.owner_index().expect("an owner index");
    let owner = format!("bench-{}", SessionKey::generate().expose_secret());
    let expires_at = OffsetDateTime::now_utc() + session_core::time::Duration::hours(1);
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in 0..10 {
        let store = store.clone();
        let owner = owner.clone();
        tasks.spawn(async move {
            for n in 0..1_000 {
                let id = SessionKey::generate().record_id();
                let mut record = Record::new(id, r#"{"v":1,"data":{}}"#, expires_at);
                if n % 10 == chunk % 10 {
                    let ownership =
                        Ownership::new(owner.as_str(), OffsetDateTime::now_utc()).expect("owner");
                    record = record.with_ownership(Some(ownership));
                }
                store.create(&record).await.expect("create");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a writer");
    }
    let mut lists = Vec::new();
    for _ in 0..rounds.max(3) {
        let started = Instant::now();
        let listed = index.sessions_of(&owner).await.expect("list");
        lists.push(started.elapsed().as_secs_f64() * 1e3);
        assert_eq!(listed.len(), 1_000);
    }
    let started = Instant::now();
    let ended = index
        .delete_sessions_of(&owner, None)
        .await
        .expect("delete");
    let end_ms = started.elapsed().as_secs_f64() * 1e3;
    assert_eq!(ended.len(), 1_000);
    println!(
        "RESULT engine={name} workload=list sessions=1000 list_ms={:.1} end_all_ms={end_ms:.1}",
        median(lists)
    );
}

fn url(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn redis(url: &str) -> RedisStore {
    let config = RedisConfig::new().prefix(format!(
        "bench-{}:",
        &SessionKey::generate().expose_secret()[..8]
    ));
    RedisStore::new(url, config).expect("redis")
}

async fn postgres(url: &str) -> PostgresStore {
    session_db::testing::postgres_store(url, "ownbench")
        .await
        .expect("postgres")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds = env_or("BENCH_SECONDS", 1.0);
    let rounds = env_or("BENCH_ROUNDS", 3);
    let engines = std::env::var("BENCH_ENGINES")
        .unwrap_or_else(|_| "memory,sqlite,file,postgres,mysql,redis,cluster,cached".to_owned());
    let dir = tempfile::tempdir().expect("a temporary directory");
    for engine in engines.split(',') {
        let store: Arc<dyn SessionStore> = match engine {
            "memory" => Arc::new(MemoryStore::new()),
            "sqlite" => {
                let url = format!("sqlite://{}", dir.path().join("bench.sqlite3").display());
                let store = SqliteStore::connect(&url).await.expect("sqlite");
                store.migrate().await.expect("migrate");
                Arc::new(store)
            }
            "file" => Arc::new(FileStore::new(dir.path().join("files")).expect("file store")),
            "postgres" => match url("SESSION_TEST_POSTGRES_URL") {
                Some(url) => Arc::new(postgres(&url).await),
                None => {
                    println!("SKIPPED engine=postgres: set SESSION_TEST_POSTGRES_URL");
                    continue;
                }
            },
            "mysql" => match url("SESSION_TEST_MYSQL_URL") {
                Some(url) => Arc::new(
                    session_db::testing::mysql_store(&url, "ownbench")
                        .await
                        .expect("mysql"),
                ) as Arc<dyn SessionStore>,
                None => {
                    println!("SKIPPED engine=mysql: set SESSION_TEST_MYSQL_URL");
                    continue;
                }
            },
            "redis" => match url("SESSION_TEST_REDIS_URL") {
                Some(url) => Arc::new(redis(&url)),
                None => {
                    println!("SKIPPED engine=redis: set SESSION_TEST_REDIS_URL");
                    continue;
                }
            },
            "cluster" => match url("SESSION_TEST_REDIS_CLUSTER_URLS") {
                Some(urls) => Arc::new(
                    RedisStore::cluster(urls.split(','), RedisConfig::new()).expect("cluster"),
                ),
                None => {
                    println!("SKIPPED engine=cluster: set SESSION_TEST_REDIS_CLUSTER_URLS");
                    continue;
                }
            },
            "cached" => match (
                url("SESSION_TEST_REDIS_URL"),
                url("SESSION_TEST_POSTGRES_URL"),
            ) {
                (Some(redis_url), Some(pg_url)) => {
                    Arc::new(CachedStore::new(redis(&redis_url), postgres(&pg_url).await))
                }
                _ => {
                    println!(
                        "SKIPPED engine=cached: set SESSION_TEST_REDIS_URL and SESSION_TEST_POSTGRES_URL"
                    );
                    continue;
                }
            },
            other => panic!("unknown engine {other:?}"),
        };
        bench_engine(engine, store, seconds, rounds).await;
    }
}
