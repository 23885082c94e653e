//! `PostgresStore` on a real PostgreSQL server: the conformance kit and the dialect's own
//! cases. The server comes from `SESSION_TEST_POSTGRES_URL`.

mod common;

use common::live_records;
use session_core::time::{Duration, OffsetDateTime};
use session_core::{SessionStore, StoreError};
use session_db::PostgresStore;
use session_db::testing::{self, unique_table};
use session_testkit::services::{self, Service};
use session_testkit::{Capabilities, owner_conformance, run_case, store_conformance};
use sqlx::postgres::PgPoolOptions;

const TAG: &str = "pg";

fn url() -> String {
    services::url(Service::Postgres).expect("checked by Capabilities::requires")
}

async fn store_on(pool: PgPoolOptions) -> PostgresStore {
    let fresh = testing::postgres_store(&url(), TAG)
        .await
        .expect("a test table");
    let pool = pool.connect(&url()).await.expect("connect to PostgreSQL");
    PostgresStore::new(pool)
        .with_table(fresh.table())
        .expect("table")
}

async fn postgres_store() -> PostgresStore {
    testing::postgres_store(&url(), TAG)
        .await
        .expect("a test table")
}

const CAPS: Capabilities = Capabilities::new().requires(Service::Postgres);

store_conformance!(postgres, CAPS, postgres_store);
owner_conformance!(postgres_owner, CAPS, postgres_store);

/// Two instances migrating the same new table at once both succeed.
#[test]
fn postgres_concurrent_migrations_succeed() {
    run_case(
        "postgres_concurrent_migrations_succeed",
        CAPS,
        postgres_store,
        |ctx| async move {
            let _ = ctx;
            let pool = PgPoolOptions::new()
                .max_connections(4)
                .connect(&url())
                .await
                .expect("connect");
            for _ in 0..5 {
                let table = unique_table(TAG);
                let a = PostgresStore::new(pool.clone())
                    .with_table(&table)
                    .expect("table");
                let b = PostgresStore::new(pool.clone())
                    .with_table(&table)
                    .expect("table");
                let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
                ra.expect("first migrate");
                rb.expect("second migrate");
                a.migrate().await.expect("and again");
                live_records(&b, 1).await;
            }
        },
    );
}

/// Two tables in one database each get their own expiry index.
#[test]
fn postgres_two_tables_get_their_own_index() {
    run_case(
        "postgres_two_tables_get_their_own_index",
        CAPS,
        postgres_store,
        |_ctx| async move {
            let pool = PgPoolOptions::new()
                .max_connections(2)
                .connect(&url())
                .await
                .expect("connect");
            let (first, second) = (unique_table(TAG), unique_table(TAG));
            for table in [&first, &second] {
                let store = PostgresStore::new(pool.clone())
                    .with_table(table)
                    .expect("table");
                store.migrate().await.expect("migrate");
                let indexes: Vec<String> = sqlx::query_scalar(
                "SELECT indexname::text FROM pg_indexes WHERE tablename = $1 AND indexdef LIKE '%expires_hour%'",
            )
            .bind(table)
            .fetch_all(&pool)
            .await
            .expect("indexes");
                assert_eq!(indexes, [format!("{table}_expiry_idx")]);
            }
        },
    );
}

/// A hostile table name is refused before any SQL runs (the pool never connects).
#[tokio::test]
async fn postgres_hostile_table_name_refused_before_sql() {
    let pool = PgPoolOptions::new()
        .connect_lazy("postgres://nobody@127.0.0.1:1/none")
        .expect("a lazy pool");
    for name in ["x; DROP TABLE y", "sessions\"--", "", "a.b"] {
        let outcome = PostgresStore::new(pool.clone()).with_table(name);
        assert!(
            matches!(outcome, Err(StoreError::Config { .. })),
            "a bad table name is a configuration error, not an outage: {name:?}"
        );
        let outcome = PostgresStore::new(pool.clone()).with_schema(name);
        assert!(
            matches!(outcome, Err(StoreError::Config { .. })),
            "schema {name:?}"
        );
    }
    assert_eq!(pool.size(), 0, "no connection was ever opened");
}

async fn tokyo_store() -> PostgresStore {
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                sqlx::query("SET TIME ZONE 'Asia/Tokyo'")
                    .execute(conn)
                    .await
                    .map(drop)
            })
        });
    let store = store_on(pool).await;
    let zone: String = sqlx::query_scalar("SHOW TimeZone")
        .fetch_one(store.pool())
        .await
        .expect("SHOW TimeZone");
    assert_eq!(zone, "Asia/Tokyo");
    store
}

/// With the connection's `TimeZone` set to Asia/Tokyo, expiry still behaves.
#[test]
fn postgres_tokyo_timezone_expiry_roundtrip() {
    use session_testkit::cases::store_expires_at_roundtrips_to_the_millisecond as case;
    run_case(
        "postgres_tokyo_timezone_expiry_roundtrip",
        CAPS,
        tokyo_store,
        case,
    );
}

/// With the connection's `TimeZone` set to Asia/Tokyo, a record expires when it should.
#[test]
fn postgres_tokyo_timezone_record_expires() {
    use session_testkit::cases::store_record_expires_after_deadline as case;
    run_case(
        "postgres_tokyo_timezone_record_expires",
        CAPS,
        tokyo_store,
        case,
    );
}

/// With the connection's `TimeZone` set to Asia/Tokyo, clear_expired removes exactly the
/// expired records.
#[test]
fn postgres_tokyo_timezone_clear_expired() {
    use session_testkit::cases::store_clear_expired_removes_only_expired as case;
    run_case(
        "postgres_tokyo_timezone_clear_expired",
        CAPS,
        tokyo_store,
        case,
    );
}

/// `clear_expired` over 20,000 expired rows returns 20,000 and leaves the live rows.
#[test]
fn postgres_clear_expired_20000_rows() {
    run_case(
        "postgres_clear_expired_20000_rows",
        CAPS,
        postgres_store,
        |ctx| async move {
            let _ = ctx;
            let store = postgres_store().await;
            let live = live_records(&store, 10).await;
            let sql = format!(
                "INSERT INTO \"{}\" (id, payload, expires_at) \
             SELECT md5(i::text) || md5((-i)::text), '{{}}', $1 FROM generate_series(1, 20000) AS i",
                store.table()
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(OffsetDateTime::now_utc() - Duration::minutes(5))
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

/// The speed opt-in creates an UNLOGGED table, in the requested schema.
#[test]
fn postgres_unlogged_table_in_schema() {
    run_case(
        "postgres_unlogged_table_in_schema",
        CAPS,
        postgres_store,
        |_ctx| async move {
            let pool = PgPoolOptions::new()
                .max_connections(2)
                .connect(&url())
                .await
                .expect("connect");
            let table = unique_table(TAG);
            let schema = format!("{table}_schema");
            let store = PostgresStore::new(pool.clone())
                .with_schema(&schema)
                .and_then(|s| s.with_table(&table))
                .expect("names")
                .unlogged(true);
            store.migrate().await.expect("migrate");
            let kind: String = sqlx::query_scalar(
                "SELECT c.relpersistence::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
            )
            .bind(&schema)
            .bind(&table)
            .fetch_one(&pool)
            .await
            .expect("relpersistence");
            assert_eq!(kind, "u", "an UNLOGGED table");
            live_records(&store, 3).await;
            let sql = format!("DROP SCHEMA \"{schema}\" CASCADE");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .expect("drop schema");
        },
    );
}

/// Records the events of targets under `sqlx::postgres::notice` (PostgreSQL's NOTICEs, which
/// sqlx logs) on the thread it is the default subscriber of.
struct NoticeCapture(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl tracing::Subscriber for NoticeCapture {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target().starts_with("sqlx::postgres::notice")
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        struct Text(String);
        impl tracing::field::Visit for Text {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!("{}={value:?} ", field.name()));
            }
        }
        let mut text = Text(format!("{} ", event.metadata().level()));
        event.record(&mut text);
        if let Ok(mut events) = self.0.lock() {
            events.push(text.0);
        }
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// `migrate()` on tables, indexes and a schema that already exist makes PostgreSQL send no
/// NOTICE ("relation … already exists, skipping"), which sqlx would log on every start.
#[test]
fn postgres_migrate_on_existing_table_logs_no_notice() {
    let Some(url) = services::require(Service::Postgres) else {
        return;
    };
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let _capture = tracing::subscriber::set_default(NoticeCapture(events.clone()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let probe = runtime.block_on(async {
        tokio::time::timeout(std::time::Duration::from_secs(20), async {
            let pool = PgPoolOptions::new()
                .max_connections(2)
                .connect(&url)
                .await
                .expect("connect");
            let table = unique_table(TAG);
            let schema = format!("{table}_schema");
            let plain = PostgresStore::new(pool.clone())
                .with_table(&table)
                .expect("table");
            let in_schema = PostgresStore::new(pool.clone())
                .with_schema(&schema)
                .and_then(|s| s.with_table(&table))
                .expect("names");
            for store in [&plain, &in_schema] {
                store.migrate().await.expect("migrate a new table");
                store.migrate().await.expect("migrate an existing table");
            }
            let notices = std::mem::take(&mut *events.lock().expect("events"));
            let sql = format!("DROP SCHEMA \"{schema}\" CASCADE");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .expect("drop schema");
            let sql = format!("DROP TABLE \"{table}\"");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .expect("drop table");
            events.lock().expect("events").clear(); // DROP … CASCADE's own notice
            // The capture does see notices: a deliberate one arrives.
            sqlx::query("DO $$ BEGIN RAISE NOTICE 'capture probe'; END $$")
                .execute(&pool)
                .await
                .expect("probe");
            notices
        })
        .await
        .expect("within 20 s")
    });
    assert_eq!(probe, Vec::<String>::new(), "notices from migrate()");
    let events = events.lock().expect("events");
    assert!(
        events.len() == 1 && events[0].contains("capture probe"),
        "the capture works: {events:?}"
    );
}

/// A table created by the previous version (no `expires_hour`, an index on `expires_at`)
/// holding live sessions is upgraded in place by `migrate()`: the sessions stay, the new
/// index replaces the old one, and everything works on it.
#[test]
fn postgres_migrate_upgrades_a_previous_version_table_in_place() {
    run_case(
        "postgres_migrate_upgrades_a_previous_version_table_in_place",
        CAPS,
        postgres_store,
        |ctx| async move {
            let _ = ctx;
            let pool = PgPoolOptions::new().connect(&url()).await.expect("connect");
            let table = unique_table(TAG);
            for sql in [
                format!(
                    "CREATE TABLE \"{table}\" (id CHAR(64) PRIMARY KEY, payload TEXT NOT NULL, \
                     expires_at TIMESTAMPTZ NOT NULL)"
                ),
                format!("CREATE INDEX \"{table}_expires_at_idx\" ON \"{table}\" (expires_at)"),
            ] {
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&pool)
                    .await
                    .expect("the previous version's schema");
            }
            let (live, expired) = common::previous_version_rows();
            for record in live.iter().chain([&expired]) {
                let sql = format!(
                    "INSERT INTO \"{table}\" (id, payload, expires_at) VALUES ($1, $2, $3)"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(record.id().as_str())
                    .bind(record.payload())
                    .bind(record.expires_at())
                    .execute(&pool)
                    .await
                    .expect("a session of the previous version");
            }
            let store = PostgresStore::new(pool.clone())
                .with_table(&table)
                .expect("table");
            upgrade_and_check_indexes(&store, &pool, &table).await;
            common::upgraded_table_keeps_working(&store, &live, &expired).await;
        },
    );
}

/// A table created by the version before the owner index (`expires_hour`, no `owner`)
/// holding live sessions gets the owner columns and index from `migrate()`, in place.
#[test]
fn postgres_owner_migrate_adds_the_owner_index_in_place() {
    run_case(
        "postgres_owner_migrate_adds_the_owner_index_in_place",
        CAPS,
        postgres_store,
        |ctx| async move {
            let _ = ctx;
            let pool = PgPoolOptions::new().connect(&url()).await.expect("connect");
            let table = unique_table(TAG);
            for sql in [
                format!(
                    "CREATE TABLE \"{table}\" (id CHAR(64) PRIMARY KEY, payload TEXT NOT NULL, \
                     expires_at TIMESTAMPTZ NOT NULL, expires_hour BIGINT NOT NULL DEFAULT 0) \
                     WITH (fillfactor = 90)"
                ),
                format!("CREATE INDEX \"{table}_expiry_idx\" ON \"{table}\" (expires_hour)"),
            ] {
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&pool)
                    .await
                    .expect("the schema before the owner index");
            }
            let (live, _) = common::previous_version_rows();
            for record in &live {
                let sql = format!(
                    "INSERT INTO \"{table}\" (id, payload, expires_at, expires_hour) \
                     VALUES ($1, $2, $3, $4)"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(record.id().as_str())
                    .bind(record.payload())
                    .bind(record.expires_at())
                    .bind(record.expires_at_unix_millis() / 3_600_000)
                    .execute(&pool)
                    .await
                    .expect("a session of the previous version");
            }
            let store = PostgresStore::new(pool.clone())
                .with_table(&table)
                .expect("table");
            upgrade_and_check_indexes(&store, &pool, &table).await;
            common::owner_upgrade_keeps_working(&store, &live).await;
        },
    );
}

/// Migrates an old table twice (the second run has nothing left to do) and checks it ends
/// with exactly the current indexes.
async fn upgrade_and_check_indexes(store: &PostgresStore, pool: &sqlx::PgPool, table: &str) {
    store.migrate().await.expect("upgrade");
    store
        .migrate()
        .await
        .expect("and again: nothing left to do");
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE tablename = $1 ORDER BY 1",
    )
    .bind(table)
    .fetch_all(pool)
    .await
    .expect("indexes");
    assert_eq!(
        indexes,
        [
            format!("{table}_expiry_idx"),
            format!("{table}_owner_idx"),
            format!("{table}_pkey")
        ]
    );
}

/// `clear_expired` finds expired rows through the expiry index, not by reading the table.
#[test]
fn postgres_clear_expired_uses_the_expiry_index() {
    run_case(
        "postgres_clear_expired_uses_the_expiry_index",
        CAPS,
        postgres_store,
        |ctx| async move {
            let _ = ctx;
            let store = postgres_store().await;
            let t = store.table().to_owned();
            let fill = format!(
                "INSERT INTO \"{t}\" (id, payload, expires_at, expires_hour) \
                 SELECT lpad(n::text, 64, '0'), '{{}}', now() + interval '14 days', \
                 floor(extract(epoch FROM now() + interval '14 days') / 3600) \
                 FROM generate_series(1, 20000) AS n"
            );
            sqlx::query(sqlx::AssertSqlSafe(fill))
                .execute(store.pool())
                .await
                .expect("fill");
            sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE \"{t}\"")))
                .execute(store.pool())
                .await
                .expect("analyze");
            let explain = format!(
                "EXPLAIN DELETE FROM \"{t}\" WHERE id IN (SELECT id FROM \"{t}\" \
                 WHERE expires_hour <= $1 AND expires_at <= $2 ORDER BY expires_hour LIMIT $3)"
            );
            let now = OffsetDateTime::now_utc();
            let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(explain))
                .bind(session_core::record::unix_millis(now).div_euclid(3_600_000))
                .bind(now)
                .bind(5000_i64)
                .fetch_all(store.pool())
                .await
                .expect("explain");
            let plan = plan.join("\n");
            assert!(
                plan.contains(&format!("{t}_expiry_idx"))
                    && !plan.contains(&format!("Seq Scan on {t}")),
                "the cleanup reads the expiry index, not the table:\n{plan}"
            );
        },
    );
}

/// A pooled connection that the server closed while it sat idle is noticed before use (the
/// ping after 100 ms idle) and replaced: the next operation succeeds.
#[test]
fn postgres_idle_connection_closed_by_the_server_is_replaced() {
    run_case(
        "postgres_idle_connection_closed_by_the_server_is_replaced",
        CAPS,
        postgres_store,
        |ctx| async move {
            let _ = ctx;
            let pool = session_db::StoreOptions::new()
                .pool_options::<sqlx::Postgres>()
                .max_connections(1)
                .connect(&url())
                .await
                .expect("connect");
            let store = PostgresStore::new(pool.clone())
                .with_table(postgres_store().await.table())
                .expect("table");
            let record = live_records(&store, 1).await.remove(0);
            let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                .fetch_one(&pool)
                .await
                .expect("pid");
            let admin = PgPoolOptions::new().connect(&url()).await.expect("connect");
            let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
                .bind(backend)
                .fetch_one(&admin)
                .await
                .expect("terminate");
            assert!(killed, "the store's connection was closed by the server");
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            assert_eq!(
                store
                    .load(record.id())
                    .await
                    .expect("load on a fresh connection"),
                Some(record)
            );
        },
    );
}
