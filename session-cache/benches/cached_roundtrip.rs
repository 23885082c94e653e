//! A read-mostly mix (nine loads to one update) of the five-key session on
//! `CachedStore<RedisStore, PostgresStore>` against `PostgresStore` alone, same servers, same
//! run, timed alternately. Servers from `SESSION_TEST_REDIS_URL` and
//! `SESSION_TEST_POSTGRES_URL`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use session_cache::{CachedStore, RedisConfig, RedisStore};
use session_core::time::OffsetDateTime;
use session_core::{Record, SessionKey, SessionStore};
use session_db::PostgresStore;
use tokio::runtime::Runtime;

fn five_key_record() -> Record {
    Record::new(
        SessionKey::generate().record_id(),
        session_testkit::fixtures::five_key_payload(),
        OffsetDateTime::now_utc() + session_core::time::Duration::hours(1),
    )
}

/// Nine loads and one update.
async fn read_mostly(store: &dyn SessionStore, record: &Record) {
    for _ in 0..9 {
        black_box(store.load(record.id()).await.expect("load").expect("live"));
    }
    store.update(record).await.expect("update");
}

fn alternate(
    rt: &Runtime,
    iters: u64,
    timed: (&dyn SessionStore, &Record),
    other: (&dyn SessionStore, &Record),
) -> Duration {
    let mut spent = Duration::ZERO;
    for _ in 0..iters {
        rt.block_on(read_mostly(other.0, other.1));
        let start = Instant::now();
        rt.block_on(read_mostly(timed.0, timed.1));
        spent += start.elapsed();
    }
    spent
}

fn bench(c: &mut Criterion) {
    let (Ok(redis_url), Ok(pg_url)) = (
        std::env::var("SESSION_TEST_REDIS_URL"),
        std::env::var("SESSION_TEST_POSTGRES_URL"),
    ) else {
        eprintln!(
            "SKIPPED cached bench: SESSION_TEST_REDIS_URL and SESSION_TEST_POSTGRES_URL are needed"
        );
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (cached, alone) = rt.block_on(async {
        let config = RedisConfig::new().prefix("bench:cached:");
        let cache = RedisStore::new(&redis_url, config).expect("redis");
        let durable = session_db::testing::postgres_store(&pg_url, "bench")
            .await
            .expect("pg");
        let alone = PostgresStore::new(durable.pool().clone())
            .with_table(durable.table())
            .expect("table");
        (CachedStore::new(cache, durable), alone)
    });
    let (a, b) = (five_key_record(), five_key_record());
    rt.block_on(async {
        cached.create(&a).await.expect("create");
        alone.create(&b).await.expect("create");
    });
    let mut group = c.benchmark_group("read_mostly_9_loads_1_update");
    group.bench_function("cached_redis_postgres", |bench| {
        bench.iter_custom(|iters| alternate(&rt, iters, (&cached, &a), (&alone, &b)))
    });
    group.bench_function("postgres_alone", |bench| {
        bench.iter_custom(|iters| alternate(&rt, iters, (&alone, &b), (&cached, &a)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
