//! Test support: stores on fresh, uniquely named tables, for conformance runs against a shared
//! server. Tables are named `kit_<tag>_<pid>_<n>`; the first call in a process drops the
//! `kit_` tables of earlier processes, so test runs do not pile tables up. Pools have the
//! default [`StoreOptions`](crate::StoreOptions) bounds. Not for production.

use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(any(feature = "postgres", feature = "mysql"))]
use sqlx::AssertSqlSafe;

/// A table name no other caller in this process gets.
pub fn unique_table(tag: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "kit_{tag}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Whether `table` is a test table of another process.
#[cfg(any(feature = "postgres", feature = "mysql"))]
fn stale(table: &str) -> bool {
    !table.contains(&format!("_{}_", std::process::id()))
}

/// A [`PostgresStore`](crate::PostgresStore) on a fresh, migrated table.
#[cfg(feature = "postgres")]
pub async fn postgres_store(
    url: &str,
    tag: &str,
) -> Result<crate::PostgresStore, session_core::StoreError> {
    static CLEANED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    const CONTEXT: &str = "preparing a PostgreSQL test table";
    let options = crate::StoreOptions::new();
    let bound = options.get_acquire_timeout();
    let connect: sqlx::postgres::PgConnectOptions = url.parse().map_err(|error| {
        crate::error::Server::unparsed(crate::postgres::ENGINE).error(CONTEXT, bound, error)
    })?;
    let server = crate::postgres::server(&connect);
    let err = server.fail(CONTEXT, bound);
    let pool = options
        .pool_options()
        .max_connections(4)
        .connect_with(connect)
        .await
        .map_err(&err)?;
    CLEANED
        .get_or_try_init(|| async {
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT tablename::text FROM pg_tables \
                 WHERE schemaname = current_schema() AND tablename LIKE 'kit\\_%'",
            )
            .fetch_all(&pool)
            .await?;
            for table in tables.into_iter().filter(|t| stale(t)) {
                let sql = format!("DROP TABLE IF EXISTS \"{table}\"");
                sqlx::query(AssertSqlSafe(sql)).execute(&pool).await?;
            }
            Ok::<_, sqlx::Error>(())
        })
        .await
        .map_err(&err)?;
    let store = crate::PostgresStore::new(pool).with_table(&unique_table(tag))?;
    store.migrate().await?;
    Ok(store)
}

/// A [`MySqlStore`](crate::MySqlStore) on a fresh, migrated table.
#[cfg(feature = "mysql")]
pub async fn mysql_store(
    url: &str,
    tag: &str,
) -> Result<crate::MySqlStore, session_core::StoreError> {
    static CLEANED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    const CONTEXT: &str = "preparing a MySQL test table";
    let options = crate::StoreOptions::new();
    let bound = options.get_acquire_timeout();
    let connect: sqlx::mysql::MySqlConnectOptions = url.parse().map_err(|error| {
        crate::error::Server::unparsed(crate::mysql::ENGINE).error(CONTEXT, bound, error)
    })?;
    let server = crate::mysql::server(&connect);
    let err = server.fail(CONTEXT, bound);
    let pool = options
        .pool_options()
        .max_connections(4)
        .connect_with(connect)
        .await
        .map_err(&err)?;
    CLEANED
        .get_or_try_init(|| async {
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT CAST(table_name AS CHAR) FROM information_schema.tables \
                 WHERE table_schema = DATABASE() AND table_name LIKE 'kit\\_%'",
            )
            .fetch_all(&pool)
            .await?;
            for table in tables.into_iter().filter(|t| stale(t)) {
                let sql = format!("DROP TABLE IF EXISTS `{table}`");
                sqlx::query(AssertSqlSafe(sql)).execute(&pool).await?;
            }
            Ok::<_, sqlx::Error>(())
        })
        .await
        .map_err(&err)?;
    let store = crate::MySqlStore::new(pool).with_table(&unique_table(tag))?;
    store.migrate().await?;
    Ok(store)
}
