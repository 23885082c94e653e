//! The conformance kit on `DjangoStore`, per database: every case on a table of its own with
//! the structure Django's `migrate` gave `django_session` (PostgreSQL `LIKE … INCLUDING ALL`,
//! MariaDB `LIKE`, SQLite a copy of the migrated database file).
//!
//! Capabilities: the store needs its server and real Django (for the migrated table), and
//! keeps raw keys ([`KeyMapping::RawKey`](session_core::KeyMapping)), which the kit reads
//! from the store itself: its ids are 32-character keys, as Django's `session_key` column
//! (`varchar(40)`) holds. It expires nothing by itself.

mod common;

use common::{Db, SECRET};
use session_django::DjangoStore;
use session_django::signing::Keys;
use session_testkit::{Capabilities, Guarded, Service, session_conformance, store_conformance};
use sqlx::Connection;

const TAG: &str = "dj";

/// Drops this test's tables left by earlier runs (listed by `$listing`), once per process.
macro_rules! drop_stale {
    ($conn:expr, $listing:expr, $drop:expr) => {{
        let tables: Vec<(String,)> = sqlx::query_as($listing)
            .fetch_all(&mut $conn)
            .await
            .unwrap_or_default();
        for (table,) in tables {
            if session_db::testing::stale(&table) {
                let _ = sqlx::query(sqlx::AssertSqlSafe(($drop)(&table)))
                    .execute(&mut $conn)
                    .await;
            }
        }
    }};
}

async fn store_on(db: Db) -> Guarded<DjangoStore, Option<tempfile::TempDir>> {
    static CLEANED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    let django = common::django(db)
        .await
        .expect("Django (required by the capabilities)");
    let table = session_db::testing::unique_table(TAG);
    let keys = Keys::new(SECRET);
    let mut dir = None;
    let url = match db {
        Db::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&django.url)
                .await
                .expect("connect");
            CLEANED
                .get_or_init(|| async {
                    drop_stale!(
                        conn,
                        "SELECT tablename::text FROM pg_tables WHERE tablename LIKE 'kit_dj_%'",
                        |t: &str| format!("DROP TABLE IF EXISTS \"{t}\"")
                    )
                })
                .await;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE TABLE \"{table}\" (LIKE django_session INCLUDING ALL)"
            )))
            .execute(&mut conn)
            .await
            .expect("copy Django's table");
            django.url.clone()
        }
        Db::MySql => {
            let mut conn = sqlx::MySqlConnection::connect(&django.url)
                .await
                .expect("connect");
            CLEANED
                .get_or_init(|| async {
                    drop_stale!(
                        conn,
                        "SELECT CAST(table_name AS CHAR) FROM information_schema.tables \
                         WHERE table_schema = DATABASE() AND table_name LIKE 'kit_dj_%'",
                        |t: &str| format!("DROP TABLE IF EXISTS `{t}`")
                    )
                })
                .await;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE TABLE `{table}` LIKE django_session"
            )))
            .execute(&mut conn)
            .await
            .expect("copy Django's table");
            django.url.clone()
        }
        // A copy of the migrated database, so cases never wait on each other's locks.
        Db::Sqlite => {
            let (url, copy) = common::sqlite_copy(&django);
            dir = Some(copy);
            url
        }
    };
    let store = DjangoStore::connect(&url, keys)
        .await
        .expect("connect the store");
    let store = match db {
        Db::Sqlite => store,
        _ => store.with_table(&table).expect("a valid table name"),
    };
    store.check_table().await.expect("the copied table");
    Guarded::new(store, dir)
}

const SQLITE: Capabilities = Capabilities::new().requires(Service::Django);
const POSTGRES: Capabilities = Capabilities::new()
    .requires(Service::Django)
    .requires(Service::Postgres);
const MYSQL: Capabilities = Capabilities::new()
    .requires(Service::Django)
    .requires(Service::MySql);

store_conformance!(django_sqlite, SQLITE, || store_on(Db::Sqlite));
store_conformance!(django_postgres, POSTGRES, || store_on(Db::Postgres));
store_conformance!(django_mysql, MYSQL, || store_on(Db::MySql));
session_conformance!(django_sqlite_session, SQLITE, || store_on(Db::Sqlite));
session_conformance!(django_postgres_session, POSTGRES, || store_on(Db::Postgres));
session_conformance!(django_mysql_session, MYSQL, || store_on(Db::MySql));
