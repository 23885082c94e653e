//! `MySqlStore` on a real MariaDB or MySQL server: the conformance kit and the dialect's own
//! cases. The server comes from `SESSION_TEST_MYSQL_URL`.

mod common;

use common::live_records;
use session_core::time::{Duration, OffsetDateTime, PrimitiveDateTime};
use session_core::{SessionKey, SessionStore, StoreError};
use session_db::MySqlStore;
use session_db::testing::{self, unique_table};
use session_testkit::services::{self, Service};
use session_testkit::{Capabilities, run_case, store_conformance};
use sqlx::QueryBuilder;
use sqlx::mysql::{MySql, MySqlPool, MySqlPoolOptions};

const TAG: &str = "my";
const CAPS: Capabilities = Capabilities::new().requires(Service::MySql);

fn url() -> String {
    services::url(Service::MySql).expect("checked by Capabilities::requires")
}

async fn pool(connections: u32) -> MySqlPool {
    MySqlPoolOptions::new()
        .max_connections(connections)
        .connect(&url())
        .await
        .expect("connect to MySQL")
}

async fn mysql_store() -> MySqlStore {
    testing::mysql_store(&url(), TAG)
        .await
        .expect("a test table")
}

store_conformance!(mysql, CAPS, mysql_store);
session_testkit::owner_conformance!(mysql_owner, CAPS, mysql_store);

/// Two instances migrating the same new table at once both succeed.
#[test]
fn mysql_concurrent_migrations_succeed() {
    run_case(
        "mysql_concurrent_migrations_succeed",
        CAPS,
        mysql_store,
        |_ctx| async move {
            let pool = pool(4).await;
            for _ in 0..5 {
                let table = unique_table(TAG);
                let a = MySqlStore::new(pool.clone())
                    .with_table(&table)
                    .expect("table");
                let b = MySqlStore::new(pool.clone())
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

/// Two tables in one database each get their own, table-named expiry index.
#[test]
fn mysql_two_tables_get_their_own_index() {
    run_case(
        "mysql_two_tables_get_their_own_index",
        CAPS,
        mysql_store,
        |_ctx| async move {
            let pool = pool(2).await;
            for table in [unique_table(TAG), unique_table(TAG)] {
                let store = MySqlStore::new(pool.clone())
                    .with_table(&table)
                    .expect("table");
                store.migrate().await.expect("migrate");
                let indexes: Vec<String> = sqlx::query_scalar(
                    "SELECT DISTINCT CAST(index_name AS CHAR) FROM information_schema.statistics \
                 WHERE table_schema = DATABASE() AND table_name = ? AND column_name = 'expires_hour'",
                )
                .bind(&table)
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
async fn mysql_hostile_table_name_refused_before_sql() {
    let pool = MySqlPoolOptions::new()
        .connect_lazy("mysql://nobody@127.0.0.1:1/none")
        .expect("a lazy pool");
    for name in ["x; DROP TABLE y", "sessions`--", "", "a.b"] {
        let outcome = MySqlStore::new(pool.clone()).with_table(name);
        assert!(
            matches!(outcome, Err(StoreError::Config { .. })),
            "a bad table name is a configuration error, not an outage: {name:?}"
        );
    }
    assert_eq!(pool.size(), 0, "no connection was ever opened");
}

/// `clear_expired` over 20,000 expired rows returns 20,000 and leaves the live rows.
#[test]
fn mysql_clear_expired_20000_rows() {
    run_case(
        "mysql_clear_expired_20000_rows",
        CAPS,
        mysql_store,
        |_ctx| async move {
            let store = mysql_store().await;
            let live = live_records(&store, 10).await;
            let past = OffsetDateTime::now_utc() - Duration::minutes(5);
            let past = PrimitiveDateTime::new(past.date(), past.time());
            for _ in 0..20 {
                let mut insert: QueryBuilder<MySql> = QueryBuilder::new(format!(
                    "INSERT INTO `{}` (id, payload, expires_at) ",
                    store.table()
                ));
                insert.push_values(0..1_000, |mut row, _| {
                    row.push_bind(SessionKey::generate().record_id().as_str().to_owned())
                        .push_bind("{}")
                        .push_bind(past);
                });
                insert
                    .build()
                    .execute(store.pool())
                    .await
                    .expect("bulk insert");
            }
            assert_eq!(store.clear_expired().await.expect("clear_expired"), 20_000);
            assert_eq!(store.clear_expired().await.expect("again"), 0);
            for record in live {
                assert_eq!(store.load(record.id()).await.expect("load"), Some(record));
            }
        },
    );
}

/// `migrate()` on a table that already exists leaves no note ("Table … already exists") on
/// the connection: it does not issue a `CREATE TABLE IF NOT EXISTS` that would raise one.
#[test]
fn mysql_migrate_on_existing_table_leaves_no_note() {
    run_case(
        "mysql_migrate_on_existing_table_leaves_no_note",
        CAPS,
        mysql_store,
        |_ctx| async move {
            // One connection, so SHOW WARNINGS sees what migrate() left on it.
            let pool = pool(1).await;
            let table = unique_table(TAG);
            let store = MySqlStore::new(pool.clone())
                .with_table(&table)
                .expect("table");
            store.migrate().await.expect("migrate a new table");
            store.migrate().await.expect("migrate an existing table");
            let notes: Vec<(String, u32, String)> = sqlx::query_as("SHOW WARNINGS")
                .fetch_all(&pool)
                .await
                .expect("SHOW WARNINGS");
            assert_eq!(notes, [], "notes left by migrate()");
            // SHOW WARNINGS does see such a note on this connection.
            let sql = format!("CREATE TABLE IF NOT EXISTS `{table}` (id INT)");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .expect("create again");
            let notes: Vec<(String, u32, String)> = sqlx::query_as("SHOW WARNINGS")
                .fetch_all(&pool)
                .await
                .expect("SHOW WARNINGS");
            assert!(
                notes.iter().any(|(_, code, _)| *code == 1050),
                "the probe's note: {notes:?}"
            );
        },
    );
}

/// Concurrent `touch` and `update` of one row never fail: InnoDB may pick one of them as a
/// deadlock victim (error 1213), and the store runs it again (seen once under CI load in the
/// kit's touch-versus-update case).
#[test]
fn mysql_concurrent_touch_and_update_of_one_row_never_fail() {
    run_case(
        "mysql_concurrent_touch_and_update_of_one_row_never_fail",
        CAPS,
        mysql_store,
        |ctx| async move {
            let store = ctx.store().clone();
            let id = SessionKey::generate().record_id();
            let far = || OffsetDateTime::now_utc() + Duration::hours(1);
            let record = |n: usize| {
                session_core::Record::new(
                    id.clone(),
                    format!("{{\"v\":1,\"data\":{{\"n\":{n}}}}}"),
                    far(),
                )
            };
            store.create(&record(0)).await.expect("create");
            let tasks: Vec<_> = (0..16)
                .map(|task| {
                    let (store, id, written) = (store.clone(), id.clone(), record(task));
                    tokio::spawn(async move {
                        for n in 0..150 {
                            if task % 2 == 0 {
                                let at = far() + Duration::milliseconds(n);
                                store.touch(&id, at).await.expect("touch");
                            } else {
                                store.update(&written).await.expect("update");
                            }
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("no write failed");
            }
        },
    );
}

/// A table created by the previous version (no `expires_hour`, an index on `expires_at`)
/// holding live sessions is upgraded in place by `migrate()`: the sessions stay, the new
/// index replaces the old one, and everything works on it.
#[test]
fn mysql_migrate_upgrades_a_previous_version_table_in_place() {
    run_case(
        "mysql_migrate_upgrades_a_previous_version_table_in_place",
        CAPS,
        mysql_store,
        |ctx| async move {
            let _ = ctx;
            let pool = pool(2).await;
            let (table, live, expired) = previous_version_table(&pool, true).await;
            let store = MySqlStore::new(pool.clone())
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
fn mysql_owner_migrate_adds_the_owner_index_in_place() {
    run_case(
        "mysql_owner_migrate_adds_the_owner_index_in_place",
        CAPS,
        mysql_store,
        |ctx| async move {
            let _ = ctx;
            let pool = pool(2).await;
            let table = unique_table(TAG);
            let create = format!(
                "CREATE TABLE `{table}` (\
                 id CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY, \
                 payload LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, \
                 expires_at DATETIME(3) NOT NULL, expires_hour BIGINT NOT NULL DEFAULT 0, \
                 INDEX `{table}_expiry_idx` (expires_hour)) ENGINE = InnoDB"
            );
            sqlx::query(sqlx::AssertSqlSafe(create))
                .execute(&pool)
                .await
                .expect("the schema before the owner index");
            let (live, _) = common::previous_version_rows();
            for record in &live {
                let at = record.expires_at();
                let sql = format!(
                    "INSERT INTO `{table}` (id, payload, expires_at, expires_hour) \
                     VALUES (?, ?, ?, ?)"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(record.id().as_str())
                    .bind(record.payload())
                    .bind(PrimitiveDateTime::new(at.date(), at.time()))
                    .bind(record.expires_at_unix_millis() / 3_600_000)
                    .execute(&pool)
                    .await
                    .expect("a session of the previous version");
            }
            let store = MySqlStore::new(pool.clone())
                .with_table(&table)
                .expect("table");
            upgrade_and_check_indexes(&store, &pool, &table).await;
            common::owner_upgrade_keeps_working(&store, &live).await;
        },
    );
}

/// Migrates an old table twice (the second run has nothing left to do) and checks it ends
/// with exactly the current indexes.
async fn upgrade_and_check_indexes(store: &MySqlStore, pool: &MySqlPool, table: &str) {
    store.migrate().await.expect("upgrade");
    store
        .migrate()
        .await
        .expect("and again: nothing left to do");
    let mut indexes: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT CAST(index_name AS CHAR) FROM information_schema.statistics \
         WHERE table_schema = DATABASE() AND table_name = ?",
    )
    .bind(table)
    .fetch_all(pool)
    .await
    .expect("indexes");
    indexes.sort();
    assert_eq!(
        indexes,
        [
            "PRIMARY".to_owned(),
            format!("{table}_expiry_idx"),
            format!("{table}_owner_idx")
        ]
    );
}

/// A previous-version table whose expiry index someone dropped upgrades too (MySQL has no
/// `DROP INDEX IF EXISTS`, so the upgrade looks before it drops).
#[test]
fn mysql_migrate_upgrades_a_previous_version_table_without_its_index() {
    run_case(
        "mysql_migrate_upgrades_a_previous_version_table_without_its_index",
        CAPS,
        mysql_store,
        |ctx| async move {
            let _ = ctx;
            let pool = pool(2).await;
            let (table, live, expired) = previous_version_table(&pool, false).await;
            let store = MySqlStore::new(pool.clone())
                .with_table(&table)
                .expect("table");
            store
                .migrate()
                .await
                .expect("upgrade without the old index");
            common::upgraded_table_keeps_working(&store, &live, &expired).await;
        },
    );
}

/// A table of the previous version's schema (no `expires_hour`; its `expires_at` index when
/// `with_index`) holding [`common::previous_version_rows`]: its name, the live records and
/// the expired one.
async fn previous_version_table(
    pool: &MySqlPool,
    with_index: bool,
) -> (String, Vec<session_core::Record>, session_core::Record) {
    let table = unique_table(TAG);
    let index = if with_index {
        format!(", INDEX `{table}_expires_at_idx` (expires_at)")
    } else {
        String::new()
    };
    let create = format!(
        "CREATE TABLE `{table}` (\
         id CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY, \
         payload LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, \
         expires_at DATETIME(3) NOT NULL{index}) ENGINE = InnoDB"
    );
    sqlx::query(sqlx::AssertSqlSafe(create))
        .execute(pool)
        .await
        .expect("the previous version's schema");
    let (live, expired) = common::previous_version_rows();
    for record in live.iter().chain([&expired]) {
        let at = record.expires_at();
        let sql = format!("INSERT INTO `{table}` (id, payload, expires_at) VALUES (?, ?, ?)");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(record.id().as_str())
            .bind(record.payload())
            .bind(PrimitiveDateTime::new(at.date(), at.time()))
            .execute(pool)
            .await
            .expect("a session of the previous version");
    }
    (table, live, expired)
}
