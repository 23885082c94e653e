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
use sqlx::SqliteConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool};
use sqlx::{Row, SqlStr};

use crate::StoreOptions;
use crate::error::DbServer;
use crate::plan::{Dialect, Plan, Schema, expiry_hour};
use crate::sqlite_writes::WriteQueue;
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
/// Writes from one store (and its clones) go through an in-process queue, and reads run
/// beside them (WAL mode): SQLite has one write lock per database, and a writer that finds it
/// taken sleeps in growing steps, up to 100 ms each, before it tries again. Writes that queue
/// behind one another share one transaction (group commit): one fsync for all of them, and
/// each caller answered only once its write is committed.
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
    /// The writes of this store (and its clones), one group at a time: SQLite takes one
    /// write lock for the whole database, and a writer that finds it taken sleeps in steps of
    /// up to 100 ms (its busy handler); queueing here instead hands the lock over at once.
    writes: Arc<WriteQueue>,
    server: DbServer,
    table: String,
    sql: Arc<Plan>,
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
            writes: Arc::new(WriteQueue::new(pool.clone(), server.clone())),
            pool,
            server,
            table: DEFAULT_TABLE.to_owned(),
            sql: Arc::new(Plan::new(Dialect::Sqlite, &quote(DEFAULT_TABLE))),
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
            (
                pool,
                connect.journal_mode(SqliteJournalMode::Wal).pragma(
                    "cache_size",
                    std::env::var("XCACHE").unwrap_or("-2000".into()),
                ),
            )
        };
        let pool = options.open(pool, connect, &server, CONTEXT).await?;
        Ok(Self::new(pool))
    }

    /// Uses another table, validated (`[A-Za-z_][A-Za-z0-9_]*`) before any SQL runs.
    pub fn with_table(mut self, table: &str) -> Result<Self, StoreError> {
        table::validate("table", table)?;
        self.table = table.to_owned();
        self.sql = Arc::new(Plan::new(Dialect::Sqlite, &quote(table)));
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
        let data = (Arc::clone(&self.sql), record.clone());
        self.writes
            .write("inserting a session row", data, |(sql, record), conn| {
                Box::pin(async move {
                    let (owner, meta) = crate::owner::columns(record);
                    let inserted = sqlx::query(sql.create.clone())
                        .bind(record.id().as_str())
                        .bind(record.payload())
                        .bind(record.expires_at_unix_millis())
                        .bind(expiry_hour(record.expires_at()))
                        .bind(owner)
                        .bind(meta)
                        .execute(&mut *conn)
                        .await;
                    match inserted {
                        Ok(_) => Ok(Ok(())),
                        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                            let sql = &sql.replace_expired;
                            let done = write_record(conn, sql, record, now_millis()).await?;
                            Ok(table::changed_a_row(done, StoreError::DuplicateId))
                        }
                        Err(error) => Err(error),
                    }
                })
            })
            .await
    }

    async fn update(&self, record: &Record) -> Result<(), StoreError> {
        let data = (Arc::clone(&self.sql), record.clone());
        self.writes
            .write("updating a session row", data, |(sql, record), conn| {
                Box::pin(async move {
                    let now = now_millis();
                    if let Some(same) = &sql.same_hour
                        && write_record(conn, &same.update, record, now).await? > 0
                    {
                        return Ok(Ok(()));
                    }
                    let rows = write_record(conn, &sql.update, record, now).await?;
                    Ok(table::changed_a_row(rows, StoreError::NotFound))
                })
            })
            .await
    }

    async fn touch(&self, id: &RecordId, expires_at: OffsetDateTime) -> Result<(), StoreError> {
        let data = (Arc::clone(&self.sql), id.clone(), expires_at);
        let context = "touching a session row";
        self.writes
            .write(context, data, |(sql, id, expires_at), conn| {
                Box::pin(async move {
                    let now = now_millis();
                    if let Some(same) = &sql.same_hour
                        && touch_row(conn, &same.touch, id, *expires_at, now).await? > 0
                    {
                        return Ok(Ok(()));
                    }
                    let rows = touch_row(conn, &sql.touch, id, *expires_at, now).await?;
                    Ok(table::changed_a_row(rows, StoreError::NotFound))
                })
            })
            .await
    }

    async fn delete(&self, id: &RecordId) -> Result<bool, StoreError> {
        let data = (Arc::clone(&self.sql), id.clone());
        self.writes
            .write("deleting a session row", data, |(sql, id), conn| {
                Box::pin(async move {
                    let live: Option<bool> = sqlx::query_scalar(sql.delete.clone())
                        .bind(id.as_str())
                        .bind(now_millis())
                        .fetch_optional(&mut *conn)
                        .await?;
                    Ok(Ok(live == Some(true)))
                })
            })
            .await
    }

    async fn clear_expired(&self) -> Result<u64, StoreError> {
        let now = now_millis();
        table::clear_in_batches(|| async {
            // One write per batch, so requests' writes go between batches.
            let data = (Arc::clone(&self.sql), now);
            self.writes
                .write("clearing expired session rows", data, |(sql, now), conn| {
                    Box::pin(async move {
                        let done = sqlx::query(sql.clear.clone())
                            .bind(now.div_euclid(crate::plan::HOUR_MILLIS))
                            .bind(*now)
                            .bind(CLEAR_BATCH)
                            .execute(&mut *conn)
                            .await?;
                        Ok(Ok(done.rows_affected()))
                    })
                })
                .await
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
        let data = (Arc::clone(&self.sql), owner.to_owned(), keep.cloned());
        let context = "deleting an owner's session rows";
        self.writes
            .write(context, data, |(sql, owner, keep), conn| {
                Box::pin(async move {
                    let ids: Vec<String> = sqlx::query_scalar(sql.delete_owned.clone())
                        .bind(owner.as_str())
                        .bind(crate::owner::keep(keep.as_ref()))
                        .fetch_all(&mut *conn)
                        .await?;
                    Ok(Ok(crate::owner::ids(ids)))
                })
            })
            .await
    }

    async fn touch_owned(
        &self,
        id: &RecordId,
        expires_at: OffsetDateTime,
        ownership: &Ownership,
    ) -> Result<(), StoreError> {
        let data = (
            Arc::clone(&self.sql),
            id.clone(),
            expires_at,
            ownership.clone(),
        );
        let context = "touching an owned session row";
        self.writes
            .write(context, data, |(sql, id, expires_at, ownership), conn| {
                Box::pin(async move {
                    let done = sqlx::query(sql.touch_owned.clone())
                        .bind(unix_millis(*expires_at))
                        .bind(expiry_hour(*expires_at))
                        .bind(ownership.owner())
                        .bind(ownership.to_json())
                        .bind(id.as_str())
                        .bind(now_millis())
                        .execute(&mut *conn)
                        .await?;
                    Ok(table::changed_a_row(
                        done.rows_affected(),
                        StoreError::NotFound,
                    ))
                })
            })
            .await
    }
}

/// Runs a statement that binds `payload, expires_at, hour, owner, meta, id, now`
/// (`update`, its same-hour form, `replace_expired`), and counts the rows it changed.
async fn write_record(
    conn: &mut SqliteConnection,
    sql: &SqlStr,
    record: &Record,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let (owner, meta) = crate::owner::columns(record);
    let done = sqlx::query(sql.clone())
        .bind(record.payload())
        .bind(record.expires_at_unix_millis())
        .bind(expiry_hour(record.expires_at()))
        .bind(owner)
        .bind(meta)
        .bind(record.id().as_str())
        .bind(now)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// Runs a statement that binds `expires_at, hour, id, now` (`touch`, its same-hour form), and
/// counts the rows it changed.
///
/// `update` and `touch` run the same-hour form first, which leaves the hour (and so the
/// index) alone, and the full one only when it matched no row: the hour moved, or there is no
/// live row. SQLite rewrites an index entry whenever an `UPDATE` assigns its column, even to
/// the same value; two statements in-process cost less than that page write.
async fn touch_row(
    conn: &mut SqliteConnection,
    sql: &SqlStr,
    id: &RecordId,
    expires_at: OffsetDateTime,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(sql.clone())
        .bind(unix_millis(expires_at))
        .bind(expiry_hour(expires_at))
        .bind(id.as_str())
        .bind(now)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}
