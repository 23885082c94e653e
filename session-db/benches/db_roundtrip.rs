//! Per dialect, in the same run on the same server: load + update of a five-key session
//! through the store against raw sqlx doing the same select and update, and session creation
//! against a raw insert. PostgreSQL and MySQL come from `SESSION_TEST_POSTGRES_URL` and
//! `SESSION_TEST_MYSQL_URL` (skipped when unset); SQLite runs on a temporary file.
#![allow(missing_docs)]

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::time::Instant;

use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use session_core::record::unix_millis;
use session_core::time::{Duration, OffsetDateTime, PrimitiveDateTime};
use session_core::{Record, SessionKey, SessionStore};
use session_db::{MySqlStore, PostgresStore, SqliteStore};
use sqlx::{AssertSqlSafe, Row};
use tokio::runtime::Runtime;

fn record() -> Record {
    Record::new(
        SessionKey::generate().record_id(),
        session_testkit::fixtures::five_key_payload(),
        OffsetDateTime::now_utc() + Duration::hours(1),
    )
}

fn utc(at: OffsetDateTime) -> PrimitiveDateTime {
    PrimitiveDateTime::new(at.date(), at.time())
}

type Op<'a> = Box<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + 'a>> + 'a>;

/// Times `timed` and `other` alternately, one call each per iteration, so disk and server
/// drift (fsync times vary a lot on a small machine) hits both sides alike.
fn interleaved(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    name: &str,
    timed: &Op<'_>,
    other: &Op<'_>,
) {
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut spent = std::time::Duration::ZERO;
            for _ in 0..iters {
                rt.block_on(other());
                let start = Instant::now();
                rt.block_on(timed());
                spent += start.elapsed();
            }
            spent
        })
    });
}

/// The four measurements of a dialect: the store's load + update against raw select +
/// update, and the store's create against a raw insert.
fn compare(
    c: &mut Criterion,
    rt: &Runtime,
    name: &str,
    store: &dyn SessionStore,
    raw_load_update: Op<'_>,
    raw_insert: Op<'_>,
) {
    let existing = record();
    rt.block_on(store.create(&existing)).expect("create");
    let store_load_update: Op<'_> = Box::new(|| {
        Box::pin(async {
            let loaded = store
                .load(existing.id())
                .await
                .expect("load")
                .expect("live");
            store.update(black_box(&loaded)).await.expect("update");
        })
    });
    let store_create: Op<'_> =
        Box::new(|| Box::pin(async { store.create(&record()).await.expect("create") }));
    let mut group = c.benchmark_group(name);
    interleaved(
        &mut group,
        rt,
        "store_load_update",
        &store_load_update,
        &raw_load_update,
    );
    interleaved(
        &mut group,
        rt,
        "raw_select_update",
        &raw_load_update,
        &store_load_update,
    );
    interleaved(&mut group, rt, "store_create", &store_create, &raw_insert);
    interleaved(&mut group, rt, "raw_insert", &raw_insert, &store_create);
    group.finish();
}

fn postgres(c: &mut Criterion, rt: &Runtime) {
    let Ok(url) = std::env::var("SESSION_TEST_POSTGRES_URL") else {
        eprintln!("SKIPPED postgres bench: SESSION_TEST_POSTGRES_URL is not set");
        return;
    };
    for unlogged in [false, true] {
        let name = if unlogged {
            "postgres_unlogged"
        } else {
            "postgres"
        };
        let table = format!("bench_{name}");
        let store = rt.block_on(async {
            let store = PostgresStore::connect(&url).await.expect("connect");
            let drop = format!("DROP TABLE IF EXISTS {table}");
            sqlx::query(AssertSqlSafe(drop))
                .execute(store.pool())
                .await
                .expect("drop");
            let store = store.with_table(&table).expect("table").unlogged(unlogged);
            store.migrate().await.expect("migrate");
            store
        });
        let pool = store.pool().clone();
        let raw = record();
        rt.block_on(store.create(&raw)).expect("create");
        let select = format!(
            "SELECT payload, expires_at FROM \"{table}\" WHERE id = $1::CHAR(64) AND expires_at > $2"
        );
        let update = format!(
            "UPDATE \"{table}\" SET payload = $2, expires_at = $3 WHERE id = $1::CHAR(64) AND expires_at > $4"
        );
        let insert =
            format!("INSERT INTO \"{table}\" (id, payload, expires_at) VALUES ($1, $2, $3)");
        let raw_load_update: Op<'_> = Box::new(|| {
            Box::pin(async {
                let row = sqlx::query(AssertSqlSafe(select.as_str()))
                    .bind(raw.id().as_str())
                    .bind(OffsetDateTime::now_utc())
                    .fetch_one(&pool)
                    .await
                    .expect("select");
                let payload: String = row.get(0);
                let expires_at: OffsetDateTime = row.get(1);
                sqlx::query(AssertSqlSafe(update.as_str()))
                    .bind(raw.id().as_str())
                    .bind(black_box(payload))
                    .bind(expires_at)
                    .bind(OffsetDateTime::now_utc())
                    .execute(&pool)
                    .await
                    .expect("update");
            })
        });
        let raw_insert: Op<'_> = Box::new(|| {
            Box::pin(async {
                let r = record();
                sqlx::query(AssertSqlSafe(insert.as_str()))
                    .bind(r.id().as_str())
                    .bind(r.payload())
                    .bind(r.expires_at())
                    .execute(&pool)
                    .await
                    .expect("insert");
            })
        });
        compare(c, rt, name, &store, raw_load_update, raw_insert);
    }
}

fn mysql(c: &mut Criterion, rt: &Runtime) {
    let Ok(url) = std::env::var("SESSION_TEST_MYSQL_URL") else {
        eprintln!("SKIPPED mysql bench: SESSION_TEST_MYSQL_URL is not set");
        return;
    };
    let table = "bench_mysql";
    let store = rt.block_on(async {
        let store = MySqlStore::connect(&url).await.expect("connect");
        let drop = format!("DROP TABLE IF EXISTS {table}");
        sqlx::query(AssertSqlSafe(drop))
            .execute(store.pool())
            .await
            .expect("drop");
        let store = store.with_table(table).expect("table");
        store.migrate().await.expect("migrate");
        store
    });
    let pool = store.pool().clone();
    let raw = record();
    rt.block_on(store.create(&raw)).expect("create");
    let select =
        format!("SELECT payload, expires_at FROM `{table}` WHERE id = ? AND expires_at > ?");
    let update =
        format!("UPDATE `{table}` SET payload = ?, expires_at = ? WHERE id = ? AND expires_at > ?");
    let insert = format!("INSERT INTO `{table}` (id, payload, expires_at) VALUES (?, ?, ?)");
    let raw_load_update: Op<'_> = Box::new(|| {
        Box::pin(async {
            let row = sqlx::query(AssertSqlSafe(select.as_str()))
                .bind(raw.id().as_str())
                .bind(utc(OffsetDateTime::now_utc()))
                .fetch_one(&pool)
                .await
                .expect("select");
            let payload: String = row.get(0);
            let expires_at: PrimitiveDateTime = row.get(1);
            sqlx::query(AssertSqlSafe(update.as_str()))
                .bind(black_box(payload))
                .bind(expires_at)
                .bind(raw.id().as_str())
                .bind(utc(OffsetDateTime::now_utc()))
                .execute(&pool)
                .await
                .expect("update");
        })
    });
    let raw_insert: Op<'_> = Box::new(|| {
        Box::pin(async {
            let r = record();
            sqlx::query(AssertSqlSafe(insert.as_str()))
                .bind(r.id().as_str())
                .bind(r.payload())
                .bind(utc(r.expires_at()))
                .execute(&pool)
                .await
                .expect("insert");
        })
    });
    compare(c, rt, "mysql", &store, raw_load_update, raw_insert);
}

fn sqlite(c: &mut Criterion, rt: &Runtime) {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = rt.block_on(async {
        let store = SqliteStore::connect(&url).await.expect("open");
        store.migrate().await.expect("migrate");
        store
    });
    let pool = store.pool().clone();
    let raw = record();
    rt.block_on(store.create(&raw)).expect("create");
    let raw_load_update: Op<'_> = Box::new(|| {
        Box::pin(async {
            let row = sqlx::query(
                "SELECT payload, expires_at FROM sessions WHERE id = ?1 AND expires_at > ?2",
            )
            .bind(raw.id().as_str())
            .bind(unix_millis(OffsetDateTime::now_utc()))
            .fetch_one(&pool)
            .await
            .expect("select");
            let payload: String = row.get(0);
            let expires_at: i64 = row.get(1);
            sqlx::query(
                "UPDATE sessions SET payload = ?2, expires_at = ?3 WHERE id = ?1 AND expires_at > ?4",
            )
            .bind(raw.id().as_str())
            .bind(black_box(payload))
            .bind(expires_at)
            .bind(unix_millis(OffsetDateTime::now_utc()))
            .execute(&pool)
            .await
            .expect("update");
        })
    });
    let raw_insert: Op<'_> = Box::new(|| {
        Box::pin(async {
            let r = record();
            sqlx::query("INSERT INTO sessions (id, payload, expires_at) VALUES (?1, ?2, ?3)")
                .bind(r.id().as_str())
                .bind(r.payload())
                .bind(r.expires_at_unix_millis())
                .execute(&pool)
                .await
                .expect("insert");
        })
    });
    compare(c, rt, "sqlite", &store, raw_load_update, raw_insert);
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    postgres(c, &rt);
    mysql(c, &rt);
    sqlite(c, &rt);
}

criterion_group!(benches, bench);
criterion_main!(benches);
