//! Test support (feature `testing`): stores on fresh, uniquely named tables, for conformance
//! runs against a shared server. Tables are named `kit_<tag>_<unix seconds>_<pid>_<n>`; the
//! first call in a process drops `kit_` tables created more than [`STALE_AFTER`] ago (and
//! tables named by older versions, which carry no time), so test runs do not pile tables up
//! while runs in other processes (cargo-nextest, two CI jobs on one database) keep theirs.
//! Pools have the default [`StoreOptions`](crate::StoreOptions) bounds. Not for production.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[cfg(any(feature = "postgres", feature = "mysql"))]
use sqlx::AssertSqlSafe;

/// How old another process's test table must be before a new run drops it.
pub const STALE_AFTER: Duration = Duration::from_secs(3600);

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// A table name no other caller gets: `kit_<tag>_<unix seconds>_<pid>_<n>`.
pub fn unique_table(tag: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "kit_{tag}_{}_{}_{}",
        unix_seconds(),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Whether `table` is a test table that no running test can still be using: another
/// process's, created more than [`STALE_AFTER`] ago, or named by an older version.
pub fn stale(table: &str) -> bool {
    let mut parts = table.rsplit('_');
    let (_n, pid, created) = (parts.next(), parts.next(), parts.next());
    let pid = pid.and_then(|p| p.parse::<u32>().ok());
    let created = created.and_then(|c| c.parse::<u64>().ok());
    match (pid, created) {
        (Some(pid), _) if pid == std::process::id() && created.is_some() => false,
        (Some(_), Some(created)) if created > 1_000_000_000 => {
            unix_seconds().saturating_sub(created) > STALE_AFTER.as_secs()
        }
        // `kit_<tag>_<pid>_<n>`, from before tables carried their time.
        _ => true,
    }
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
        session_core::StoreError::config_caused_by("the PostgreSQL URL is not valid", error)
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
        session_core::StoreError::config_caused_by("the MySQL URL is not valid", error)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn testing_tables_of_running_processes_are_kept() {
        let mine = unique_table("kit");
        assert!(!stale(&mine), "{mine}");
        let now = unix_seconds();
        let other = |age: u64| format!("kit_cached_{}_{}_3", now - age, std::process::id() + 1);
        assert!(!stale(&other(60)), "another run's fresh table is kept");
        assert!(
            stale(&other(STALE_AFTER.as_secs() + 60)),
            "an hour-old one is dropped"
        );
        assert!(
            stale("kit_cached_4242_7"),
            "a table from before tables carried their time"
        );
        assert!(mine.len() <= 48, "{mine} must pass the table-name check");
    }
}
