//! `MySqlStore`: sessions in a MySQL or MariaDB table.

use async_trait::async_trait;
use session_core::time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};
use session_core::{
    OwnedSession, OwnerIndex, Ownership, Record, RecordId, SessionStore, StoreError,
};
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlQueryResult};
use sqlx::{Row, SqlStr};

use crate::StoreOptions;
use crate::error::DbServer;
use crate::plan::{Dialect, Plan, Schema, expiry_hour};
use crate::table::{self, CLEAR_BATCH, DEFAULT_TABLE};

/// How many times a write chosen as a deadlock victim runs again.
const DEADLOCK_RETRIES: u64 = 5;

pub(crate) const ENGINE: &str = "MySQL";

/// Sessions in a MySQL or MariaDB table: `id CHAR(64)` primary key, `payload LONGTEXT`
/// (utf8mb4), `expires_at DATETIME(3)` in UTC, and `expires_hour BIGINT` (the hour of the
/// expiry) with an index named `<table>_expiry_idx`. A sliding expiry changes the hour about
/// once an hour, so most saves leave the secondary index alone (InnoDB writes only changed
/// index entries), while `clear_expired` still finds expired rows through the index. Only
/// syntax both servers share is used.
///
/// `create` is a plain `INSERT`; on a duplicate key an `UPDATE … WHERE` the row has expired
/// overwrites a leftover (an upsert's row count cannot tell a live duplicate apart, because
/// sqlx sets `CLIENT_FOUND_ROWS`). `update` and `touch` are `UPDATE … WHERE expires_at > ?`;
/// `delete` is `DELETE … WHERE expires_at > ?`, so its row count says whether a live record
/// existed (an expired row is left for `clear_expired`, and is never loaded). `clear_expired`
/// reads up to 5,000 expired keys through the index after the previous batch's last one and
/// deletes them by primary key, pausing between batches.
///
/// Bounded waits: [`connect`](Self::connect) gives up after 5 s without a first connection,
/// and each operation after 5 s without a pooled connection (so with the server down, a
/// request fails in 5 s instead of sqlx's 30). Change them with
/// [`connect_with`](Self::connect_with) and [`StoreOptions`]; a pool handed to
/// [`new`](Self::new) keeps its own settings. Errors name the server (`host:port`, never the
/// password) through [`DbError`](crate::DbError).
///
/// ```no_run
/// use std::time::Duration;
/// use session_db::{MySqlStore, StoreOptions};
///
/// # async fn run() -> Result<(), session_core::StoreError> {
/// let store = MySqlStore::connect("mysql://root@127.0.0.1/app").await?;
/// store.migrate().await?;
///
/// // Wait up to 30 s at start-up for a server that is still starting.
/// let options = StoreOptions::new().connect_timeout(Duration::from_secs(30));
/// let store = MySqlStore::connect_with("mysql://root@127.0.0.1/app", options).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct MySqlStore {
    pool: MySqlPool,
    server: DbServer,
    table: String,
    sql: Plan,
}

fn quote(identifier: &str) -> String {
    Dialect::MySql.quote(identifier)
}

/// Where the server is, for errors: `host:port`, or the Unix socket's path.
pub(crate) fn server(options: &MySqlConnectOptions) -> DbServer {
    DbServer::mysql(options)
}

/// A UTC moment as the zone-less `DATETIME(3)` value MySQL stores.
fn utc(at: OffsetDateTime) -> PrimitiveDateTime {
    let at = at.to_offset(UtcOffset::UTC);
    PrimitiveDateTime::new(at.date(), at.time())
}

fn now() -> PrimitiveDateTime {
    utc(OffsetDateTime::now_utc())
}

impl MySqlStore {
    /// A store on an existing pool, in table `sessions`. The pool keeps its own bounds:
    /// sqlx's default acquire timeout is 30 s; build the pool from
    /// [`StoreOptions::pool_options`] to get this crate's.
    pub fn new(pool: MySqlPool) -> Self {
        let server = server(&pool.connect_options());
        Self {
            pool,
            server,
            table: DEFAULT_TABLE.to_owned(),
            sql: Plan::new(Dialect::MySql, &quote(DEFAULT_TABLE)),
        }
    }

    /// Connects a pool (up to 10 connections) to `url`, with the default bounds
    /// ([`StoreOptions::default`]: 5 s to connect, 5 s per operation to get a connection).
    /// Fails within the connect bound when the server is down; the error names its host and
    /// port, never the password.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, StoreOptions::default()).await
    }

    /// [`connect`](Self::connect) with other bounds.
    pub async fn connect_with(url: &str, options: StoreOptions) -> Result<Self, StoreError> {
        const CONTEXT: &str = "connecting to MySQL";
        let connect: MySqlConnectOptions = url
            .parse()
            .map_err(|error| StoreError::config_caused_by("the MySQL URL is not valid", error))?;
        let server = server(&connect);
        let pool = options
            .open(
                options.pool_options().max_connections(10),
                connect,
                &server,
                CONTEXT,
            )
            .await?;
        Ok(Self::new(pool))
    }

    /// Uses another table, validated (`[A-Za-z_][A-Za-z0-9_]*`) before any SQL runs.
    pub fn with_table(mut self, table: &str) -> Result<Self, StoreError> {
        table::validate("table", table)?;
        self.table = table.to_owned();
        self.sql = Plan::new(Dialect::MySql, &quote(table));
        Ok(self)
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The pool.
    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    /// Wraps a driver error, naming the server and the pool's acquire bound.
    /// Runs a one-statement write again when InnoDB chose it as a deadlock victim (error
    /// 1213, SQLSTATE 40001): a `touch` and an `update` of one row at once can each lock the
    /// row and an entry of the expiry index in opposite order. The victim was rolled back
    /// whole, so running it again is safe; after [`DEADLOCK_RETRIES`] it is an error.
    async fn retrying_deadlocks<F, Fut>(
        &self,
        statement: F,
    ) -> Result<MySqlQueryResult, sqlx::Error>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<MySqlQueryResult, sqlx::Error>>,
    {
        let mut attempt = 0;
        loop {
            match statement().await {
                Err(sqlx::Error::Database(error))
                    if error.code().as_deref() == Some("40001") && attempt < DEADLOCK_RETRIES =>
                {
                    attempt += 1;
                    tracing::debug!(
                        attempt,
                        "MySQL deadlock on a session row; running the statement again"
                    );
                    tokio::time::sleep(std::time::Duration::from_millis(attempt)).await;
                }
                other => return other,
            }
        }
    }

    fn fail(&self, context: &'static str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
        self.server
            .fail(context, self.pool.options().get_acquire_timeout())
    }

    /// Creates the table with its indexes if missing, and upgrades a table created by an
    /// earlier version in place (adds, indexes and fills `expires_hour`, drops the old
    /// `<table>_expires_at_idx`; adds the nullable `owner` and `owner_meta` columns and
    /// `<table>_owner_idx`; live sessions kept). Idempotent, and safe when several
    /// instances run it at once (`GET_LOCK` on one connection around the DDL). An existing
    /// table is found in `information_schema` first, so a start leaves no "already exists"
    /// note.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let err = self.fail("migrating the MySQL session table");
        let mut conn = self.pool.acquire().await.map_err(&err)?;
        let lock = format!("session_db_migrate_{}", self.table);
        let locked: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, 30)")
            .bind(&lock)
            .fetch_one(&mut *conn)
            .await
            .map_err(&err)?;
        if locked != Some(1) {
            return Err(StoreError::backend(
                "migrating the MySQL session table",
                format!("could not take the migration lock {lock:?} within 30 s"),
            ));
        }
        let schema = Schema::new(Dialect::MySql, &self.table, quote(&self.table));
        // `CREATE TABLE IF NOT EXISTS` on an existing table leaves a note ("Table … already
        // exists") on every start: look first, under the lock. Compared byte for byte, as
        // table names are on Linux; a server that folds names to lower case finds no match
        // for a mixed-case name and runs the (harmless) `IF NOT EXISTS` again.
        let created = async {
            let exists: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() \
                 AND CAST(table_name AS BINARY) = CAST(? AS BINARY)",
            )
            .bind(&self.table)
            .fetch_one(&mut *conn)
            .await?;
            let mut has_column = async |column: &str| {
                sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) FROM information_schema.columns \
                     WHERE table_schema = DATABASE() \
                     AND CAST(table_name AS BINARY) = CAST(? AS BINARY) \
                     AND column_name = ?",
                )
                .bind(&self.table)
                .bind(column)
                .fetch_one(&mut *conn)
                .await
                .map(|count| count > 0)
            };
            let has_hour = has_column("expires_hour").await?;
            let has_owner = has_column("owner").await?;
            let upgrading = exists > 0 && !has_hour;
            for sql in schema.migration(exists > 0, has_hour, has_owner, false) {
                sqlx::query(table::statement(sql))
                    .execute(&mut *conn)
                    .await?;
            }
            if upgrading {
                let old_index: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM information_schema.statistics \
                     WHERE table_schema = DATABASE() \
                     AND CAST(table_name AS BINARY) = CAST(? AS BINARY) \
                     AND CAST(index_name AS BINARY) = CAST(? AS BINARY)",
                )
                .bind(&self.table)
                .bind(table::old_index_name(&self.table))
                .fetch_one(&mut *conn)
                .await?;
                if old_index > 0 {
                    sqlx::query(table::statement(schema.drop_old_index()))
                        .execute(&mut *conn)
                        .await?;
                }
            }
            Ok(())
        }
        .await
        .map_err(&err);
        let released = sqlx::query("SELECT RELEASE_LOCK(?)")
            .bind(&lock)
            .execute(&mut *conn)
            .await
            .map_err(&err);
        created?;
        released.map(drop)
    }

    /// Runs a statement that binds `payload, expires_at, hour, owner, meta, id, now`
    /// (`update`, `replace_expired`), again on a deadlock; returns how many rows it matched
    /// (sqlx sets `CLIENT_FOUND_ROWS`).
    async fn write_record(&self, sql: &SqlStr, record: &Record) -> Result<u64, sqlx::Error> {
        let (owner, meta) = crate::owner::columns(record);
        let done = self
            .retrying_deadlocks(|| {
                sqlx::query(sql.clone())
                    .bind(record.payload())
                    .bind(utc(record.expires_at()))
                    .bind(expiry_hour(record.expires_at()))
                    .bind(owner)
                    .bind(&meta)
                    .bind(record.id().as_str())
                    .bind(now())
                    .execute(&self.pool)
            })
            .await?;
        Ok(done.rows_affected())
    }

    async fn insert(&self, record: &Record) -> Result<bool, StoreError> {
        let (owner, meta) = crate::owner::columns(record);
        let outcome = sqlx::query(self.sql.create.clone())
            .bind(record.id().as_str())
            .bind(record.payload())
            .bind(utc(record.expires_at()))
            .bind(expiry_hour(record.expires_at()))
            .bind(owner)
            .bind(meta)
            .execute(&self.pool)
            .await;
        match outcome {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => Ok(false),
            Err(error) => Err(self.fail("inserting a session row")(error)),
        }
    }
}

#[async_trait]
impl SessionStore for MySqlStore {
    async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        let row = sqlx::query(self.sql.load.clone())
            .bind(id.as_str())
            .bind(now())
            .fetch_optional(&self.pool)
            .await
            .map_err(self.fail("loading a session row"))?;
        let Some(row) = row else { return Ok(None) };
        let payload: String = row.try_get(0).map_err(self.fail("reading a session row"))?;
        let expires_at: PrimitiveDateTime =
            row.try_get(1).map_err(self.fail("reading a session row"))?;
        let meta: Option<&str> = row.try_get(2).map_err(self.fail("reading a session row"))?;
        let ownership = crate::owner::from_meta(id, meta);
        Ok(Some(
            Record::new(id.clone(), payload, expires_at.assume_utc()).with_ownership(ownership),
        ))
    }

    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        if self.insert(record).await? {
            return Ok(());
        }
        // A row with this id exists: overwrite it only if it has expired.
        let done = self
            .write_record(&self.sql.replace_expired, record)
            .await
            .map_err(self.fail("replacing an expired session row"))?;
        table::changed_a_row(done, StoreError::DuplicateId)
    }

    async fn update(&self, record: &Record) -> Result<(), StoreError> {
        let done = self
            .write_record(&self.sql.update, record)
            .await
            .map_err(self.fail("updating a session row"))?;
        table::changed_a_row(done, StoreError::NotFound)
    }

    async fn touch(&self, id: &RecordId, expires_at: OffsetDateTime) -> Result<(), StoreError> {
        let done = self
            .retrying_deadlocks(|| {
                sqlx::query(self.sql.touch.clone())
                    .bind(utc(expires_at))
                    .bind(expiry_hour(expires_at))
                    .bind(id.as_str())
                    .bind(now())
                    .execute(&self.pool)
            })
            .await
            .map_err(self.fail("touching a session row"))?;
        table::changed_a_row(done.rows_affected(), StoreError::NotFound)
    }

    async fn delete(&self, id: &RecordId) -> Result<bool, StoreError> {
        let done = self
            .retrying_deadlocks(|| {
                sqlx::query(self.sql.delete.clone())
                    .bind(id.as_str())
                    .bind(now())
                    .execute(&self.pool)
            })
            .await
            .map_err(self.fail("deleting a session row"))?;
        Ok(done.rows_affected() > 0)
    }

    async fn clear_expired(&self) -> Result<u64, StoreError> {
        let at = OffsetDateTime::now_utc();
        let now = utc(at);
        let err = self.fail("clearing expired session rows");
        // Keyset batches: InnoDB keeps deleted index entries until its purge runs, so a
        // `DELETE … LIMIT` repeated from the start of the range would step over every
        // earlier batch's rows again. Each batch starts after the last key of the one before.
        let mut after: (i64, String) = (i64::MIN, String::new());
        let mut total = 0;
        loop {
            let started = tokio::time::Instant::now();
            let batch: Vec<(i64, String)> = sqlx::query_as(self.sql.clear.clone())
                .bind(expiry_hour(at))
                .bind(now)
                .bind(after.0)
                .bind(after.0)
                .bind(&after.1)
                .bind(CLEAR_BATCH)
                .fetch_all(&self.pool)
                .await
                .map_err(&err)?;
            let Some(last) = batch.last().cloned() else {
                return Ok(total);
            };
            let delete = table::statement(format!(
                "DELETE FROM {} WHERE expires_at <= ? AND id IN ({})",
                quote(&self.table),
                vec!["?"; batch.len()].join(", ")
            ));
            let done = self
                .retrying_deadlocks(|| {
                    let mut query = sqlx::query(delete.clone()).persistent(false).bind(now);
                    for (_, id) in &batch {
                        query = query.bind(id.as_str());
                    }
                    query.execute(&self.pool)
                })
                .await
                .map_err(&err)?;
            total += done.rows_affected();
            if batch.len() < CLEAR_BATCH as usize {
                return Ok(total);
            }
            after = last;
            table::pause_after_batch(started).await;
        }
    }

    fn owner_index(&self) -> Option<&dyn OwnerIndex> {
        Some(self)
    }
}

#[async_trait]
impl OwnerIndex for MySqlStore {
    async fn sessions_of(&self, owner: &str) -> Result<Vec<OwnedSession>, StoreError> {
        let rows: Vec<(String, PrimitiveDateTime, Option<String>)> =
            sqlx::query_as(self.sql.list_owned.clone())
                .bind(owner)
                .bind(now())
                .fetch_all(&self.pool)
                .await
                .map_err(self.fail("listing an owner's session rows"))?;
        let rows = rows
            .into_iter()
            .map(|(id, expires_at, meta)| (id, expires_at.assume_utc(), meta));
        Ok(crate::owner::listing(owner, rows))
    }

    /// In one transaction: the owner's rows are selected `FOR UPDATE` (InnoDB then also locks
    /// the gap, so a login of that owner waits) and deleted, so the ids returned are exactly
    /// the rows deleted.
    async fn delete_sessions_of(
        &self,
        owner: &str,
        keep: Option<&RecordId>,
    ) -> Result<Vec<RecordId>, StoreError> {
        let err = self.fail("deleting an owner's session rows");
        let keep = crate::owner::keep(keep);
        let Some(delete_rows) = &self.sql.delete_owned_rows else {
            return Err(StoreError::backend(
                "deleting an owner's session rows",
                "the MySQL plan has no delete statement",
            ));
        };
        let mut tx = self.pool.begin().await.map_err(&err)?;
        let ids: Vec<String> = sqlx::query_scalar(self.sql.delete_owned.clone())
            .bind(owner)
            .bind(keep)
            .fetch_all(&mut *tx)
            .await
            .map_err(&err)?;
        if !ids.is_empty() {
            sqlx::query(delete_rows.clone())
                .bind(owner)
                .bind(keep)
                .execute(&mut *tx)
                .await
                .map_err(&err)?;
        }
        tx.commit().await.map_err(&err)?;
        Ok(crate::owner::ids(ids))
    }

    async fn touch_owned(
        &self,
        id: &RecordId,
        expires_at: OffsetDateTime,
        ownership: &Ownership,
    ) -> Result<(), StoreError> {
        let meta = ownership.to_json();
        let done = self
            .retrying_deadlocks(|| {
                sqlx::query(self.sql.touch_owned.clone())
                    .bind(utc(expires_at))
                    .bind(expiry_hour(expires_at))
                    .bind(ownership.owner())
                    .bind(&meta)
                    .bind(id.as_str())
                    .bind(now())
                    .execute(&self.pool)
            })
            .await
            .map_err(self.fail("touching an owned session row"))?;
        table::changed_a_row(done.rows_affected(), StoreError::NotFound)
    }
}
