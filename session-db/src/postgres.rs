//! `PostgresStore`: sessions in a PostgreSQL table.

use async_trait::async_trait;
use session_core::time::OffsetDateTime;
use session_core::{
    OwnedSession, OwnerIndex, Ownership, Record, RecordId, SessionStore, StoreError,
};
use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::{Row, SqlStr};

use crate::StoreOptions;
use crate::error::DbServer;
use crate::plan::{Dialect, Plan, Schema, expiry_hour};
use crate::table::{self, CLEAR_BATCH, DEFAULT_TABLE};

pub(crate) const ENGINE: &str = "PostgreSQL";

/// Sessions in a PostgreSQL table: `id char(64)` primary key, `payload text`,
/// `expires_at timestamptz`, and `expires_hour bigint` (the hour of the expiry) with an index
/// named `<table>_expiry_idx`, in a table that leaves a tenth of each page free
/// (`fillfactor = 90`). A sliding expiry changes the hour about once an hour, so most saves
/// change no indexed column and PostgreSQL updates the row in place (a HOT update: no index
/// write, less WAL), while `clear_expired` still finds expired rows through the index.
///
/// Ids are bound as `$1::CHAR(64)`: compared as `text`, the column would be cast and its
/// primary-key index left unused (a sequential scan per request).
///
/// Every operation is one statement with the application's clock bound as a parameter:
/// `create` is a plain `INSERT` (on a duplicate id, an `UPDATE … WHERE` the old row has
/// expired replaces a leftover), `update`
/// and `touch` are `UPDATE … WHERE expires_at > $now`, `delete` is `DELETE … RETURNING` whether
/// the row was live. `clear_expired` deletes in batches of 5,000 rows found by the index,
/// pausing between them.
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
/// use session_db::{PostgresStore, StoreOptions};
///
/// # async fn run() -> Result<(), session_core::StoreError> {
/// let store = PostgresStore::connect("postgres://postgres@127.0.0.1/app").await?;
/// store.migrate().await?;
///
/// // Fail each operation after 2 s without a connection instead of 5 s.
/// let options = StoreOptions::new().acquire_timeout(Duration::from_secs(2));
/// let store = PostgresStore::connect_with("postgres://postgres@127.0.0.1/app", options).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    server: DbServer,
    schema: Option<String>,
    table: String,
    unlogged: bool,
    sql: Plan,
}

fn quote(identifier: &str) -> String {
    Dialect::Postgres.quote(identifier)
}

fn qualified(schema: Option<&str>, table: &str) -> String {
    match schema {
        Some(schema) => format!("{}.{}", quote(schema), quote(table)),
        None => quote(table),
    }
}

impl PostgresStore {
    /// A store on an existing pool, in table `sessions` of the connection's search path. The
    /// pool keeps its own bounds: sqlx's default acquire timeout is 30 s; build the pool from
    /// [`StoreOptions::pool_options`] to get this crate's.
    pub fn new(pool: PgPool) -> Self {
        let server = server(&pool.connect_options());
        Self {
            pool,
            server,
            schema: None,
            table: DEFAULT_TABLE.to_owned(),
            unlogged: false,
            sql: Plan::new(Dialect::Postgres, &quote(DEFAULT_TABLE)),
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
        const CONTEXT: &str = "connecting to PostgreSQL";
        let connect: PgConnectOptions = url.parse().map_err(|error| {
            StoreError::config_caused_by("the PostgreSQL URL is not valid", error)
        })?;
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
        self.sql = Plan::new(Dialect::Postgres, &qualified(self.schema.as_deref(), table));
        Ok(self)
    }

    /// Puts the table in this schema (created by [`migrate`](Self::migrate) if missing).
    pub fn with_schema(mut self, schema: &str) -> Result<Self, StoreError> {
        table::validate("schema", schema)?;
        self.schema = Some(schema.to_owned());
        self.sql = Plan::new(Dialect::Postgres, &qualified(Some(schema), &self.table));
        Ok(self)
    }

    /// Speed over crash durability: [`migrate`](Self::migrate) creates the table `UNLOGGED`.
    /// PostgreSQL then skips the write-ahead log for it: writes are much cheaper, but after a
    /// server crash (not a clean restart) the table comes back empty, logging every user out,
    /// and it is not copied to replicas. An existing table is not converted; use
    /// `ALTER TABLE … SET UNLOGGED` for that.
    pub fn unlogged(mut self, unlogged: bool) -> Self {
        self.unlogged = unlogged;
        self
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs a statement that binds `payload, expires_at, hour, owner, meta, id, now`
    /// (`update`, `replace_expired`); returns how many rows it changed.
    async fn write_record(&self, sql: &SqlStr, record: &Record) -> Result<u64, sqlx::Error> {
        let (owner, meta) = crate::owner::columns(record);
        let done = sqlx::query(sql.clone())
            .bind(record.payload())
            .bind(record.expires_at())
            .bind(expiry_hour(record.expires_at()))
            .bind(owner)
            .bind(meta)
            .bind(record.id().as_str())
            .bind(OffsetDateTime::now_utc())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Wraps a driver error, naming the server and the pool's acquire bound.
    fn fail(&self, context: &'static str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
        self.server
            .fail(context, self.pool.options().get_acquire_timeout())
    }

    /// Creates the schema, the table and its indexes if they are missing, and upgrades a
    /// table created by an earlier version in place (adds and fills `expires_hour`, indexes
    /// it, drops the old `<table>_expires_at_idx`: one pass over the table; adds the nullable
    /// `owner` and `owner_meta` columns and the partial `<table>_owner_idx`; live sessions
    /// kept). Idempotent, and safe when several instances run it at once (a
    /// transaction-scoped advisory lock).
    /// `client_min_messages = warning` for the migration's transaction keeps PostgreSQL's
    /// "already exists, skipping" notices, which sqlx would log, off every start.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let err = self.fail("migrating the PostgreSQL session table");
        let t = qualified(self.schema.as_deref(), &self.table);
        let mut tx = self.pool.begin().await.map_err(&err)?;
        // `IF NOT EXISTS` on an existing object sends a NOTICE, which sqlx logs: keep them
        // off, for this transaction only.
        sqlx::query("SET LOCAL client_min_messages = warning")
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(lock_key(&t))
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
        if let Some(schema) = &self.schema {
            let sql = format!("CREATE SCHEMA IF NOT EXISTS {}", quote(schema));
            sqlx::query(table::statement(sql))
                .execute(&mut *tx)
                .await
                .map_err(&err)?;
        }
        let schema = Schema::new(Dialect::Postgres, &self.table, t);
        let mut has_column = async |column: &str| {
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) \
                 AND attname = $2 AND NOT attisdropped)",
            )
            .bind(qualified(self.schema.as_deref(), &self.table))
            .bind(column)
            .fetch_one(&mut *tx)
            .await
        };
        let has_hour = has_column("expires_hour").await.map_err(&err)?;
        let has_owner = has_column("owner").await.map_err(&err)?;
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(qualified(self.schema.as_deref(), &self.table))
            .fetch_one(&mut *tx)
            .await
            .map_err(&err)?;
        let statements = schema.migration(exists, has_hour, has_owner, self.unlogged);
        for sql in statements {
            sqlx::query(table::statement(sql))
                .execute(&mut *tx)
                .await
                .map_err(&err)?;
        }
        tx.commit().await.map_err(err)
    }
}

/// Where the server is, for errors: `host:port`, or the Unix socket's path.
pub(crate) fn server(options: &PgConnectOptions) -> DbServer {
    DbServer::postgres(options)
}

/// The advisory lock key of a table: a stable 64-bit FNV-1a hash of its qualified name.
fn lock_key(qualified: &str) -> i64 {
    let hash = qualified
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    i64::from_ne_bytes(hash.to_ne_bytes())
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        let row = sqlx::query(self.sql.load.clone())
            .bind(id.as_str())
            .bind(OffsetDateTime::now_utc())
            .fetch_optional(&self.pool)
            .await
            .map_err(self.fail("loading a session row"))?;
        let Some(row) = row else { return Ok(None) };
        let payload: String = row.try_get(0).map_err(self.fail("reading a session row"))?;
        let expires_at: OffsetDateTime =
            row.try_get(1).map_err(self.fail("reading a session row"))?;
        let meta: Option<&str> = row.try_get(2).map_err(self.fail("reading a session row"))?;
        let ownership = crate::owner::from_meta(id, meta);
        Ok(Some(
            Record::new(id.clone(), payload, expires_at).with_ownership(ownership),
        ))
    }

    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        let (owner, meta) = crate::owner::columns(record);
        let inserted = sqlx::query(self.sql.create.clone())
            .bind(record.id().as_str())
            .bind(record.payload())
            .bind(record.expires_at())
            .bind(expiry_hour(record.expires_at()))
            .bind(owner)
            .bind(&meta)
            .execute(&self.pool)
            .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                let done = self
                    .write_record(&self.sql.replace_expired, record)
                    .await
                    .map_err(self.fail("replacing an expired session row"))?;
                table::changed_a_row(done, StoreError::DuplicateId)
            }
            Err(error) => Err(self.fail("inserting a session row")(error)),
        }
    }

    async fn update(&self, record: &Record) -> Result<(), StoreError> {
        let done = self
            .write_record(&self.sql.update, record)
            .await
            .map_err(self.fail("updating a session row"))?;
        table::changed_a_row(done, StoreError::NotFound)
    }

    async fn touch(&self, id: &RecordId, expires_at: OffsetDateTime) -> Result<(), StoreError> {
        let done = sqlx::query(self.sql.touch.clone())
            .bind(expires_at)
            .bind(expiry_hour(expires_at))
            .bind(id.as_str())
            .bind(OffsetDateTime::now_utc())
            .execute(&self.pool)
            .await
            .map_err(self.fail("touching a session row"))?;
        table::changed_a_row(done.rows_affected(), StoreError::NotFound)
    }

    async fn delete(&self, id: &RecordId) -> Result<bool, StoreError> {
        let live: Option<bool> = sqlx::query_scalar(self.sql.delete.clone())
            .bind(id.as_str())
            .bind(OffsetDateTime::now_utc())
            .fetch_optional(&self.pool)
            .await
            .map_err(self.fail("deleting a session row"))?;
        Ok(live == Some(true))
    }

    async fn clear_expired(&self) -> Result<u64, StoreError> {
        let now = OffsetDateTime::now_utc();
        table::clear_in_batches(|| async {
            let done = sqlx::query(self.sql.clear.clone())
                .bind(expiry_hour(now))
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
impl OwnerIndex for PostgresStore {
    async fn sessions_of(&self, owner: &str) -> Result<Vec<OwnedSession>, StoreError> {
        let rows: Vec<(String, OffsetDateTime, Option<String>)> =
            sqlx::query_as(self.sql.list_owned.clone())
                .bind(owner)
                .bind(OffsetDateTime::now_utc())
                .fetch_all(&self.pool)
                .await
                .map_err(self.fail("listing an owner's session rows"))?;
        Ok(crate::owner::listing(owner, rows))
    }

    async fn delete_sessions_of(
        &self,
        owner: &str,
        keep: Option<&RecordId>,
    ) -> Result<Vec<RecordId>, StoreError> {
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
        let done = sqlx::query(self.sql.touch_owned.clone())
            .bind(expires_at)
            .bind(expiry_hour(expires_at))
            .bind(ownership.owner())
            .bind(ownership.to_json())
            .bind(id.as_str())
            .bind(OffsetDateTime::now_utc())
            .execute(&self.pool)
            .await
            .map_err(self.fail("touching an owned session row"))?;
        table::changed_a_row(done.rows_affected(), StoreError::NotFound)
    }
}
