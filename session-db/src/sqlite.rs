//! `SqliteStore`: sessions in a SQLite table, on disk or in memory.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use session_core::record::unix_millis;
use session_core::time::OffsetDateTime;
use session_core::{Record, RecordId, SessionStore, StoreError};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool};
use sqlx::{Row, SqlStr};

use crate::StoreOptions;
use crate::error::Server;
use crate::table::{self, CLEAR_BATCH, DEFAULT_TABLE};

const ENGINE: &str = "SQLite";

/// Sessions in a SQLite table: `id TEXT` primary key, `payload TEXT`, `expires_at INTEGER`
/// (Unix milliseconds, so comparisons are numeric) with an index named
/// `<table>_expires_at_idx`. One statement per operation (`INSERT … ON CONFLICT DO UPDATE …
/// WHERE` expired, `UPDATE … WHERE expires_at > ?`, `DELETE … RETURNING`); `clear_expired`
/// deletes 5,000 rows at a time by `rowid`.
///
/// Bounded waits: [`connect`](Self::connect) gives up after 5 s without a first connection,
/// each operation after 5 s without a pooled connection (all of them busy), and a statement
/// waits up to 5 s for another writer's lock (`busy_timeout`). Change the first two with
/// [`connect_with`](Self::connect_with) and [`StoreOptions`]; a pool handed to
/// [`new`](Self::new) keeps its own settings. Errors name the database file through
/// [`DbError`](crate::DbError).
///
/// ```
/// use session_db::SqliteStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), session_core::StoreError> {
/// let store = SqliteStore::connect("sqlite::memory:").await?;
/// store.migrate().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    server: Server,
    table: String,
    sql: Statements,
}

#[derive(Debug, Clone)]
struct Statements {
    load: SqlStr,
    create: SqlStr,
    update: SqlStr,
    touch: SqlStr,
    delete: SqlStr,
    clear: SqlStr,
}

impl Statements {
    fn new(table: &str) -> Self {
        let t = quote(table);
        let s = |text: String| table::statement(text);
        Self {
            load: s(format!(
                "SELECT payload, expires_at FROM {t} WHERE id = ?1 AND expires_at > ?2"
            )),
            create: s(format!(
                "INSERT INTO {t} (id, payload, expires_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (id) DO UPDATE SET payload = excluded.payload, \
                 expires_at = excluded.expires_at WHERE {t}.expires_at <= ?4"
            )),
            update: s(format!(
                "UPDATE {t} SET payload = ?2, expires_at = ?3 WHERE id = ?1 AND expires_at > ?4"
            )),
            touch: s(format!(
                "UPDATE {t} SET expires_at = ?2 WHERE id = ?1 AND expires_at > ?3"
            )),
            delete: s(format!(
                "DELETE FROM {t} WHERE id = ?1 RETURNING expires_at > ?2"
            )),
            clear: s(format!(
                "DELETE FROM {t} WHERE rowid IN \
                 (SELECT rowid FROM {t} WHERE expires_at <= ?1 LIMIT ?2)"
            )),
        }
    }
}

fn quote(identifier: &str) -> String {
    format!("\"{identifier}\"")
}

fn now_millis() -> i64 {
    unix_millis(OffsetDateTime::now_utc())
}

impl SqliteStore {
    /// A store on an existing pool, in table `sessions`. For an in-memory database the pool
    /// must keep one connection open for its whole life (`min_connections(1)`, no idle
    /// timeout or lifetime) and have only one, or the data vanishes. The pool keeps its own
    /// bounds: sqlx's default acquire timeout is 30 s; build the pool from
    /// [`StoreOptions::pool_options`] to get this crate's.
    pub fn new(pool: SqlitePool) -> Self {
        let server = Server::file(ENGINE, pool.connect_options().get_filename());
        Self {
            pool,
            server,
            table: DEFAULT_TABLE.to_owned(),
            sql: Statements::new(DEFAULT_TABLE),
        }
    }

    /// Opens `url` (`sqlite://path/to/file.db`, created if missing, or `sqlite::memory:`)
    /// with the default bounds ([`StoreOptions::default`]: 5 s to open, 5 s per operation to
    /// get a connection). Files use WAL mode and wait up to 5 s for a busy lock; an in-memory
    /// database is kept on one connection that never closes.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, StoreOptions::default()).await
    }

    /// [`connect`](Self::connect) with other bounds.
    pub async fn connect_with(url: &str, options: StoreOptions) -> Result<Self, StoreError> {
        const CONTEXT: &str = "opening the SQLite database";
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(|error| StoreError::config_caused_by("the SQLite URL is not valid", error))?
            .create_if_missing(true)
            .busy_timeout(Duration::from_secs(5));
        let server = Server::file(ENGINE, connect.get_filename());
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let (pool, connect) = if in_memory {
            let pool = options
                .pool_options()
                .min_connections(1)
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
            (pool, connect)
        } else {
            let pool = options.pool_options().max_connections(8);
            (pool, connect.journal_mode(SqliteJournalMode::Wal))
        };
        let pool = options.open(pool, connect, &server, CONTEXT).await?;
        Ok(Self::new(pool))
    }

    /// Uses another table, validated (`[A-Za-z_][A-Za-z0-9_]*`) before any SQL runs.
    pub fn with_table(mut self, table: &str) -> Result<Self, StoreError> {
        table::validate("table", table)?;
        self.table = table.to_owned();
        self.sql = Statements::new(table);
        Ok(self)
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Wraps a driver error, naming the database and the pool's acquire bound.
    fn fail(&self, context: &'static str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
        self.server
            .fail(context, self.pool.options().get_acquire_timeout())
    }

    /// Creates the table and its expiry index if missing. Idempotent, and safe when several
    /// instances run it at once (`BEGIN IMMEDIATE` takes the write lock first).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let err = self.fail("migrating the SQLite session table");
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(&err)?;
        let t = quote(&self.table);
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {t} (\
             id TEXT PRIMARY KEY NOT NULL, payload TEXT NOT NULL, expires_at INTEGER NOT NULL)"
        );
        let index = format!(
            "CREATE INDEX IF NOT EXISTS {} ON {t} (expires_at)",
            quote(&table::index_name(&self.table))
        );
        for sql in [create, index] {
            sqlx::query(table::statement(sql))
                .execute(&mut *tx)
                .await
                .map_err(&err)?;
        }
        tx.commit().await.map_err(err)
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        let row = sqlx::query(self.sql.load.clone())
            .bind(id.as_str())
            .bind(now_millis())
            .fetch_optional(&self.pool)
            .await
            .map_err(self.fail("loading a session row"))?;
        let Some(row) = row else { return Ok(None) };
        let payload: String = row.try_get(0).map_err(self.fail("reading a session row"))?;
        let millis: i64 = row.try_get(1).map_err(self.fail("reading a session row"))?;
        Record::from_unix_millis(id.clone(), payload, millis)
            .map(Some)
            .ok_or_else(|| {
                StoreError::backend(
                    "reading a session row",
                    format!("expiry {millis} out of range"),
                )
            })
    }

    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        let done = sqlx::query(self.sql.create.clone())
            .bind(record.id().as_str())
            .bind(record.payload())
            .bind(record.expires_at_unix_millis())
            .bind(now_millis())
            .execute(&self.pool)
            .await
            .map_err(self.fail("inserting a session row"))?;
        table::changed_a_row(done.rows_affected(), StoreError::DuplicateId)
    }

    async fn update(&self, record: &Record) -> Result<(), StoreError> {
        let done = sqlx::query(self.sql.update.clone())
            .bind(record.id().as_str())
            .bind(record.payload())
            .bind(record.expires_at_unix_millis())
            .bind(now_millis())
            .execute(&self.pool)
            .await
            .map_err(self.fail("updating a session row"))?;
        table::changed_a_row(done.rows_affected(), StoreError::NotFound)
    }

    async fn touch(&self, id: &RecordId, expires_at: OffsetDateTime) -> Result<(), StoreError> {
        let done = sqlx::query(self.sql.touch.clone())
            .bind(id.as_str())
            .bind(unix_millis(expires_at))
            .bind(now_millis())
            .execute(&self.pool)
            .await
            .map_err(self.fail("touching a session row"))?;
        table::changed_a_row(done.rows_affected(), StoreError::NotFound)
    }

    async fn delete(&self, id: &RecordId) -> Result<bool, StoreError> {
        let live: Option<bool> = sqlx::query_scalar(self.sql.delete.clone())
            .bind(id.as_str())
            .bind(now_millis())
            .fetch_optional(&self.pool)
            .await
            .map_err(self.fail("deleting a session row"))?;
        Ok(live == Some(true))
    }

    async fn clear_expired(&self) -> Result<u64, StoreError> {
        let now = now_millis();
        table::clear_in_batches(|| async {
            let done = sqlx::query(self.sql.clear.clone())
                .bind(now)
                .bind(CLEAR_BATCH)
                .execute(&self.pool)
                .await
                .map_err(self.fail("clearing expired session rows"))?;
            Ok(done.rows_affected())
        })
        .await
    }
}
