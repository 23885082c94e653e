//! `SqliteStore`: sessions in a SQLite table, on disk or in memory.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use session_core::record::unix_millis;
use session_core::time::OffsetDateTime;
use session_core::{
    OwnedSession, OwnerIndex, Ownership, Record, RecordId, SessionStore, StoreError,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteQueryResult};
use sqlx::{Row, SqlStr};
use tokio::sync::Mutex;

use crate::StoreOptions;
use crate::error::DbServer;
use crate::plan::{Dialect, Plan, Schema, expiry_hour};
use crate::table::{self, CLEAR_BATCH, DEFAULT_TABLE};

pub(crate) const ENGINE: &str = "SQLite";

/// Sessions in a SQLite table: `id TEXT` primary key, `payload TEXT`, `expires_at INTEGER`
/// (Unix milliseconds, so comparisons are numeric), and `expires_hour INTEGER` (the hour of
/// the expiry) with an index named `<table>_expiry_idx`. One statement per operation
/// (`INSERT`, and on a duplicate id `UPDATE … WHERE` it expired; `UPDATE … WHERE expires_at > ?`;
/// `DELETE … RETURNING`); `update` and `touch` first run an `UPDATE` that leaves the hour,
/// and so the index, alone, and set the hour in a second one only when it moved (about once
/// an hour for a sliding expiry). `clear_expired` deletes 5,000 expired rows at a time, found
/// through the index.
///
/// Writes from one store (and its clones) go one at a time through an in-process queue, and
/// reads run beside them (WAL mode): SQLite has one write lock per database, and a writer
/// that finds it taken sleeps in growing steps, up to 100 ms each, before it tries again.
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
    /// One writer at a time from this store (and its clones): SQLite takes one write lock
    /// for the whole database, and a writer that finds it taken sleeps in steps of up to
    /// 100 ms (its busy handler); waiting here instead hands the lock over at once.
    writer: Arc<Mutex<()>>,
    server: DbServer,
    table: String,
    sql: Plan,
}

fn quote(identifier: &str) -> String {
    Dialect::Sqlite.quote(identifier)
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
        let server = DbServer::file(ENGINE, pool.connect_options().get_filename());
        Self {
            pool,
            writer: Arc::new(Mutex::new(())),
            server,
            table: DEFAULT_TABLE.to_owned(),
            sql: Plan::new(Dialect::Sqlite, &quote(DEFAULT_TABLE)),
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
        let server = DbServer::file(ENGINE, connect.get_filename());
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
        self.sql = Plan::new(Dialect::Sqlite, &quote(table));
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

    /// Runs a statement that binds `payload, expires_at, hour, owner, meta, id, now`
    /// (`update`, its same-hour form, `replace_expired`).
    async fn write_record(
        &self,
        sql: &SqlStr,
        record: &Record,
        now: i64,
    ) -> Result<SqliteQueryResult, sqlx::Error> {
        let (owner, meta) = crate::owner::columns(record);
        sqlx::query(sql.clone())
            .bind(record.payload())
            .bind(record.expires_at_unix_millis())
            .bind(expiry_hour(record.expires_at()))
            .bind(owner)
            .bind(meta)
            .bind(record.id().as_str())
            .bind(now)
            .execute(&self.pool)
            .await
    }

    /// Runs `same_hour`, the write that leaves the hour (and so the index) alone, and
    /// `full`, which sets it, only when the first matched no row: the hour moved, or there is
    /// no live row. SQLite rewrites an index entry whenever an `UPDATE` assigns its column,
    /// even to the same value; two statements in-process cost less than that page write.
    async fn same_hour_first<'s, F, Fut>(
        &self,
        same_hour: Option<&'s SqlStr>,
        full: &'s SqlStr,
        run: F,
    ) -> Result<u64, sqlx::Error>
    where
        F: Fn(&'s SqlStr) -> Fut,
        Fut: std::future::Future<Output = Result<SqliteQueryResult, sqlx::Error>>,
    {
        if let Some(sql) = same_hour {
            let rows = run(sql).await?.rows_affected();
            if rows > 0 {
                return Ok(rows);
            }
        }
        Ok(run(full).await?.rows_affected())
    }

    /// Wraps a driver error, naming the database and the pool's acquire bound.
    fn fail(&self, context: &'static str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
        self.server
            .fail(context, self.pool.options().get_acquire_timeout())
    }

    /// Creates the table and its indexes if missing, and upgrades a table created by an
    /// earlier version in place (adds, indexes and fills `expires_hour`, drops the old
    /// `<table>_expires_at_idx`; adds the nullable `owner` and `owner_meta` columns and the
    /// partial `<table>_owner_idx`; live sessions kept). Idempotent, and safe when several
    /// instances run it at once (`BEGIN IMMEDIATE` takes the write lock first).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let err = self.fail("migrating the SQLite session table");
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(&err)?;
        let schema = Schema::new(Dialect::Sqlite, &self.table, quote(&self.table));
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1)",
        )
        .bind(&self.table)
        .fetch_one(&mut *tx)
        .await
        .map_err(&err)?;
        let mut has_column = async |column: &str| {
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
            )
            .bind(&self.table)
            .bind(column)
            .fetch_one(&mut *tx)
            .await
        };
        let has_hour = has_column("expires_hour").await.map_err(&err)?;
        let has_owner = has_column("owner").await.map_err(&err)?;
        let statements = schema.migration(exists, has_hour, has_owner, false);
        for sql in statements {
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
        let meta: Option<&str> = row.try_get(2).map_err(self.fail("reading a session row"))?;
        let ownership = crate::owner::from_meta(id, meta);
        Record::from_unix_millis(id.clone(), payload, millis)
            .map(|record| Some(record.with_ownership(ownership)))
            .ok_or_else(|| {
                StoreError::backend(
                    "reading a session row",
                    format!("expiry {millis} out of range"),
                )
            })
    }

    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        let _writing = self.writer.lock().await;
        let (owner, meta) = crate::owner::columns(record);
        let inserted = sqlx::query(self.sql.create.clone())
            .bind(record.id().as_str())
            .bind(record.payload())
            .bind(record.expires_at_unix_millis())
            .bind(expiry_hour(record.expires_at()))
            .bind(owner)
            .bind(meta)
            .execute(&self.pool)
            .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                let done = self
                    .write_record(&self.sql.replace_expired, record, now_millis())
                    .await
                    .map_err(self.fail("replacing an expired session row"))?;
                table::changed_a_row(done.rows_affected(), StoreError::DuplicateId)
            }
            Err(error) => Err(self.fail("inserting a session row")(error)),
        }
    }

    async fn update(&self, record: &Record) -> Result<(), StoreError> {
        let _writing = self.writer.lock().await;
        let now = now_millis();
        let same_hour = self.sql.same_hour.as_ref().map(|same| &same.update);
        let rows = self
            .same_hour_first(same_hour, &self.sql.update, |sql| {
                self.write_record(sql, record, now)
            })
            .await
            .map_err(self.fail("updating a session row"))?;
        table::changed_a_row(rows, StoreError::NotFound)
    }

    async fn touch(&self, id: &RecordId, expires_at: OffsetDateTime) -> Result<(), StoreError> {
        let _writing = self.writer.lock().await;
        let now = now_millis();
        let same_hour = self.sql.same_hour.as_ref().map(|same| &same.touch);
        let rows = self
            .same_hour_first(same_hour, &self.sql.touch, |sql| {
                sqlx::query(sql.clone())
                    .bind(unix_millis(expires_at))
                    .bind(expiry_hour(expires_at))
                    .bind(id.as_str())
                    .bind(now)
                    .execute(&self.pool)
            })
            .await
            .map_err(self.fail("touching a session row"))?;
        table::changed_a_row(rows, StoreError::NotFound)
    }

    async fn delete(&self, id: &RecordId) -> Result<bool, StoreError> {
        let _writing = self.writer.lock().await;
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
            // Per batch, so requests' writes go between batches.
            let _writing = self.writer.lock().await;
            let done = sqlx::query(self.sql.clear.clone())
                .bind(now.div_euclid(crate::plan::HOUR_MILLIS))
                .bind(now)
                .bind(CLEAR_BATCH)
                .execute(&self.pool)
                .await
                .map_err(self.fail("clearing expired session rows"))?;
            Ok(done.rows_affected())
        })
        .await
    }

    fn owner_index(&self) -> Option<&dyn OwnerIndex> {
        Some(self)
    }
}

#[async_trait]
impl OwnerIndex for SqliteStore {
    async fn sessions_of(&self, owner: &str) -> Result<Vec<OwnedSession>, StoreError> {
        let rows: Vec<(String, i64, Option<String>)> = sqlx::query_as(self.sql.list_owned.clone())
            .bind(owner)
            .bind(now_millis())
            .fetch_all(&self.pool)
            .await
            .map_err(self.fail("listing an owner's session rows"))?;
        let rows = rows.into_iter().filter_map(|(id, millis, meta)| {
            Some((id, session_core::record::from_unix_millis(millis)?, meta))
        });
        Ok(crate::owner::listing(owner, rows))
    }

    async fn delete_sessions_of(
        &self,
        owner: &str,
        keep: Option<&RecordId>,
    ) -> Result<Vec<RecordId>, StoreError> {
        let _writing = self.writer.lock().await;
        let ids: Vec<String> = sqlx::query_scalar(self.sql.delete_owned.clone())
            .bind(owner)
            .bind(crate::owner::keep(keep))
            .fetch_all(&self.pool)
            .await
            .map_err(self.fail("deleting an owner's session rows"))?;
        Ok(crate::owner::ids(ids))
    }

    async fn touch_owned(
        &self,
        id: &RecordId,
        expires_at: OffsetDateTime,
        ownership: &Ownership,
    ) -> Result<(), StoreError> {
        let _writing = self.writer.lock().await;
        let done = sqlx::query(self.sql.touch_owned.clone())
            .bind(unix_millis(expires_at))
            .bind(expiry_hour(expires_at))
            .bind(ownership.owner())
            .bind(ownership.to_json())
            .bind(id.as_str())
            .bind(now_millis())
            .execute(&self.pool)
            .await
            .map_err(self.fail("touching an owned session row"))?;
        table::changed_a_row(done.rows_affected(), StoreError::NotFound)
    }
}
