//! Load + update of a five-key session through `RedisStore` against raw `GET` + `SET` of the
//! same bytes through the same client on the same server, same run: one at a time, and 32
//! concurrent tasks. The server comes from `SESSION_TEST_REDIS_URL`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use redis::aio::ConnectionManager;
use session_cache::{RedisConfig, RedisStore};
use session_core::time::OffsetDateTime;
use session_core::{Record, SessionKey, SessionStore};
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

const TASKS: usize = 32;

fn record() -> Record {
    Record::new(
        SessionKey::generate().record_id(),
        session_testkit::fixtures::five_key_payload(),
        OffsetDateTime::now_utc() + session_core::time::Duration::hours(1),
    )
}

async fn store_round(store: &RedisStore, record: &Record) {
    let loaded = store.load(record.id()).await.expect("load").expect("live");
    store.update(black_box(&loaded)).await.expect("update");
}

async fn raw_round(mut conn: ConnectionManager, key: &str) {
    let bytes: Vec<u8> = redis::cmd("GET")
        .arg(key)
        .query_async(&mut conn)
        .await
        .expect("GET");
    let expires = session_core::record::unix_millis(OffsetDateTime::now_utc()) + 3_600_000;
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg(black_box(bytes))
        .arg("PXAT")
        .arg(expires)
        .query_async(&mut conn)
        .await
        .expect("SET");
}

/// Runs one round of `TASKS` concurrent store round trips.
async fn store_concurrent(store: &RedisStore, records: &Arc<Vec<Record>>) {
    let mut set = JoinSet::new();
    for i in 0..TASKS {
        let store = store.clone();
        let records = records.clone();
        set.spawn(async move { store_round(&store, &records[i]).await });
    }
    while set.join_next().await.is_some() {}
}

async fn raw_concurrent(conn: &ConnectionManager, keys: &Arc<Vec<String>>) {
    let mut set = JoinSet::new();
    for i in 0..TASKS {
        let conn = conn.clone();
        let keys = keys.clone();
        set.spawn(async move { raw_round(conn, &keys[i]).await });
    }
    while set.join_next().await.is_some() {}
}

/// Times `timed` with `other` run (untimed) before each call, so drift hits both alike.
fn interleaved<A, B>(
    rt: &Runtime,
    iters: u64,
    timed: impl Fn() -> A,
    other: impl Fn() -> B,
) -> Duration
where
    A: std::future::Future<Output = ()>,
    B: std::future::Future<Output = ()>,
{
    let mut spent = Duration::ZERO;
    for _ in 0..iters {
        rt.block_on(other());
        let start = Instant::now();
        rt.block_on(timed());
        spent += start.elapsed();
    }
    spent
}

fn bench(c: &mut Criterion) {
    let Ok(url) = std::env::var("SESSION_TEST_REDIS_URL") else {
        eprintln!("SKIPPED redis bench: SESSION_TEST_REDIS_URL is not set");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let config = RedisConfig::new().prefix("bench:");
    let (store, conn) = rt.block_on(async {
        let store = RedisStore::new(&url, config).expect("store");
        let conn = ConnectionManager::new(redis::Client::open(url.as_str()).expect("client"))
            .await
            .expect("raw connection");
        (store, conn)
    });
    let records: Arc<Vec<Record>> = Arc::new((0..TASKS).map(|_| record()).collect());
    let keys: Arc<Vec<String>> = Arc::new((0..TASKS).map(|i| format!("bench:raw:{i}")).collect());
    rt.block_on(async {
        for (record, key) in records.iter().zip(keys.iter()) {
            store.create(record).await.expect("create");
            let _: () = redis::cmd("SET")
                .arg(key)
                .arg(record.payload())
                .query_async(&mut conn.clone())
                .await
                .expect("SET");
        }
    });

    let mut group = c.benchmark_group("redis_load_update");
    group.bench_function("store_sequential", |b| {
        b.iter_custom(|iters| {
            interleaved(
                &rt,
                iters,
                || store_round(&store, &records[0]),
                || raw_round(conn.clone(), &keys[0]),
            )
        })
    });
    group.bench_function("raw_sequential", |b| {
        b.iter_custom(|iters| {
            interleaved(
                &rt,
                iters,
                || raw_round(conn.clone(), &keys[0]),
                || store_round(&store, &records[0]),
            )
        })
    });
    group.bench_function("store_32_tasks", |b| {
        b.iter_custom(|iters| {
            interleaved(
                &rt,
                iters,
                || store_concurrent(&store, &records),
                || raw_concurrent(&conn, &keys),
            )
        })
    });
    group.bench_function("raw_32_tasks", |b| {
        b.iter_custom(|iters| {
            interleaved(
                &rt,
                iters,
                || raw_concurrent(&conn, &keys),
                || store_concurrent(&store, &records),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
