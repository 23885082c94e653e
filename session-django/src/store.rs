//! [`DjangoStore`]: Django's own `django_session` table as a session engine, on PostgreSQL,
//! MySQL/MariaDB and SQLite, shared live with the Django site that migrated it.

use std::time::Duration;

use async_trait::async_trait;
use session_core::codec::Codec;
use session_core::time::OffsetDateTime;
use session_core::{KeyMapping, Record, RecordId, SessionStore, StoreError};
use session_db::{DbServer, StoreOptions};
use sqlx::{Row, SqlStr};

use crate::codec::DjangoCodec;
use crate::signing::Keys;

/// The table Django's `sessions` app creates.
pub const DJANGO_TABLE: &str = "django_session";

/// Rows `clear_expired` deletes per statement.
const CLEAR_BATCH: u64 = 5000;

/// Django's `django_session` table as a session engine: a Rust service reads the sessions
/// a Django site writes (who is logged in, the cart), writes values Django then sees, and
/// logs a user out for both.
///
/// # This engine stores raw session keys
///
/// **Every other engine of these crates keeps only the SHA-256 of a session key; this one
/// keeps the key itself**, because Django does: its `session_key` column holds the value of
/// the `sessionid` cookie, and Django looks sessions up by it. Sharing the table means
/// sharing that format ([`KeyMapping::RawKey`]). Whoever can read the table (a backup, a
/// read replica, an SQL injection elsewhere in either application) can take over every
/// live session in it, and lookups are not hidden behind a hash. Behind a `CachedStore`, the
/// cache's keys hold raw session keys too. Use it while Django and
/// Rust share sessions; once Django is gone, move to `session-db`'s stores.
///
/// # What it reads and writes
///
/// - `session_key` is the 32-character key, `session_data` Django's signed encoding
///   ([`DjangoCodec`], so the same `SECRET_KEY` and `SECRET_KEY_FALLBACKS` as the Django
///   site), `expire_date` the expiry as Django writes it with `USE_TZ = True`:
///   `timestamp with time zone` on PostgreSQL, `datetime(6)` in UTC on MySQL/MariaDB, and
///   on SQLite the text `YYYY-MM-DD HH:MM:SS[.ffffff]` in UTC, which Django compares as text.
/// - It never creates or alters the table: Django's migrations own it.
///   [`check_table`](Self::check_table) says what to run when it is missing.
/// - Live means `expire_date > now` with the application's clock, as Django's `load`.
///   `create` inserts (an expired leftover under the same key is replaced), `update` and
///   `touch` change only a live row (a session Django deleted stays deleted), `delete` as
///   Django's. `clear_expired` is Django's `clearsessions` (`DELETE … WHERE expire_date <
///   now`, here `<=` so the moment of expiry itself counts, in batches of 5,000 through
///   Django's `expire_date` index).
/// - Moments are kept to the millisecond, as by every engine: a row Django wrote with
///   microseconds loads with them truncated.
///
/// ```no_run
/// use session_core::{SessionConfig, SessionManager};
/// use session_django::{DjangoStore, signing::Keys};
///
/// # async fn run() -> Result<(), session_core::StoreError> {
/// let keys = Keys::new(std::env::var("SECRET_KEY").unwrap_or_default());
/// let store = DjangoStore::connect("postgres://app@127.0.0.1/app", keys).await?;
/// store.check_table().await?;
/// let manager = SessionManager::new(store, SessionConfig::default());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct DjangoStore {
    pool: Pool,
    server: DbServer,
    table: String,
    sql: Statements,
    codec: DjangoCodec,
    /// SQLite allows one writer at a time; writes of this store (and its clones) queue here
    /// instead of in SQLite's busy handler, which sleeps up to 100 ms a step.
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
}

#[derive(Debug, Clone)]
enum Pool {
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
    #[cfg(feature = "mysql")]
    MySql(sqlx::MySqlPool),
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
}

/// The statements, written once with `{t}` for the table and `?` for parameters; each
/// dialect's spelling is made from them.
#[derive(Debug, Clone)]
struct Statements {
    check: SqlStr,
    load: SqlStr,
    insert: SqlStr,
    replace_expired: SqlStr,
    update: SqlStr,
    touch: SqlStr,
    delete: SqlStr,
    clear: SqlStr,
}

/// Which SQL spelling; a build without some database features never names their variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)]
enum Dialect {
    Postgres,
    MySql,
    Sqlite,
}

impl Statements {
    fn new(dialect: Dialect, table: &str) -> Self {
        let quoted = match dialect {
            Dialect::MySql => format!("`{table}`"),
            Dialect::Postgres | Dialect::Sqlite => format!("\"{table}\""),
        };
        let spell = |text: &str| {
            let text = text.replace("{t}", &quoted);
            if dialect != Dialect::Postgres {
                return statement(text);
            }
            // PostgreSQL numbers its parameters.
            let mut out = String::with_capacity(text.len() + 8);
            let mut n = 0;
            for ch in text.chars() {
                if ch == '?' {
                    n += 1;
                    out.push_str(&format!("${n}"));
                } else {
                    out.push(ch);
                }
            }
            statement(out)
        };
        let delete = match dialect {
            // No RETURNING: an expired row stays for clear_expired and is never loaded.
            Dialect::MySql => "DELETE FROM {t} WHERE session_key = ? AND expire_date > ?",
            Dialect::Postgres | Dialect::Sqlite => {
                "DELETE FROM {t} WHERE session_key = ? RETURNING expire_date > ?"
            }
        };
        let clear = match dialect {
            Dialect::MySql => {
                "DELETE FROM {t} WHERE expire_date <= ? ORDER BY expire_date LIMIT 5000"
            }
            Dialect::Postgres | Dialect::Sqlite => {
                "DELETE FROM {t} WHERE session_key IN \
                 (SELECT session_key FROM {t} WHERE expire_date <= ? ORDER BY expire_date LIMIT 5000)"
            }
        };
        Self {
            check: spell("SELECT session_key, session_data, expire_date FROM {t} WHERE 1 = 0"),
            load: spell(
                "SELECT session_data, expire_date FROM {t} WHERE session_key = ? AND expire_date > ?",
            ),
            insert: spell(
                "INSERT INTO {t} (session_key, session_data, expire_date) VALUES (?, ?, ?)",
            ),
            replace_expired: spell(
                "UPDATE {t} SET session_data = ?, expire_date = ? \
                 WHERE session_key = ? AND expire_date <= ?",
            ),
            update: spell(
                "UPDATE {t} SET session_data = ?, expire_date = ? \
                 WHERE session_key = ? AND expire_date > ?",
            ),
            touch: spell(
                "UPDATE {t} SET expire_date = ? WHERE session_key = ? AND expire_date > ?",
            ),
            delete: spell(delete),
            clear: spell(clear),
        }
    }
}

/// A statement built once from constant SQL and a validated, quoted table name.
fn statement(text: String) -> SqlStr {
    use sqlx::SqlSafeStr;
    sqlx::AssertSqlSafe(std::sync::Arc::<str>::from(text)).into_sql_str()
}

/// A moment as each database keeps Django's `expire_date`.
mod moment {
    use super::*;

    #[cfg(feature = "postgres")]
    pub(super) fn postgres(at: OffsetDateTime) -> OffsetDateTime {
        at
    }

    #[cfg(feature = "mysql")]
    pub(super) fn mysql(at: OffsetDateTime) -> session_core::time::PrimitiveDateTime {
        let at = at.to_offset(session_core::time::UtcOffset::UTC);
        session_core::time::PrimitiveDateTime::new(at.date(), at.time())
    }

    /// `str()` of a naive UTC datetime, as Django's SQLite backend writes it: the fraction
    /// only when there is one, always six digits.
    #[cfg(feature = "sqlite")]
    pub(super) fn sqlite(at: OffsetDateTime) -> String {
        let text = crate::codec::isoformat(at);
        // "YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00" → "YYYY-MM-DD HH:MM:SS[.ffffff]"
        let text = text.strip_suffix("+00:00").unwrap_or(&text);
        text.replacen('T', " ", 1)
    }

    #[cfg(feature = "sqlite")]
    pub(super) fn from_sqlite(text: &str) -> Option<OffsetDateTime> {
        crate::codec::fromisoformat(text)
    }
}

/// Runs `$body` once per dialect, with `$pool` the pool and `$at` the function that turns a
/// moment into the value the dialect binds for `expire_date`.
macro_rules! on_pool {
    ($store:expr, |$pool:ident, $at:ident| $body:expr) => {
        match &$store.pool {
            #[cfg(feature = "postgres")]
            Pool::Postgres($pool) => {
                let $at = moment::postgres;
                $body
            }
            #[cfg(feature = "mysql")]
            Pool::MySql($pool) => {
                let $at = moment::mysql;
                $body
            }
            #[cfg(feature = "sqlite")]
            Pool::Sqlite($pool) => {
                let $at = moment::sqlite;
                $body
            }
        }
    };
}

fn validate_table(table: &str) -> Result<(), StoreError> {
    let mut bytes = table.bytes();
    let valid = matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && table.len() <= 63;
    if valid {
        Ok(())
    } else {
        Err(StoreError::config(format!(
            "session table name {table:?} must match [A-Za-z_][A-Za-z0-9_]* (at most 63 characters)"
        )))
    }
}

/// The table is missing or is not Django's.
#[derive(Debug, thiserror::Error)]
#[error(
    "Django's session table {table} is missing or lacks the columns session_key, \
     session_data and expire_date: run `python manage.py migrate sessions` in the Django \
     project that owns this database (this engine never creates or alters Django's tables)"
)]
struct MissingTable {
    table: String,
}

impl DjangoStore {
    #[cfg(feature = "postgres")]
    /// Django's table on a PostgreSQL pool.
    pub fn postgres(pool: sqlx::PgPool, keys: Keys) -> Self {
        let server = DbServer::postgres(&pool.connect_options());
        Self::build(Pool::Postgres(pool), Dialect::Postgres, server, keys)
    }

    #[cfg(feature = "mysql")]
    /// Django's table on a MySQL or MariaDB pool.
    pub fn mysql(pool: sqlx::MySqlPool, keys: Keys) -> Self {
        let server = DbServer::mysql(&pool.connect_options());
        Self::build(Pool::MySql(pool), Dialect::MySql, server, keys)
    }

    #[cfg(feature = "sqlite")]
    /// Django's table on a SQLite pool (the Django project's database file). The journal
    /// mode is the file's own; this engine does not change it. Django creates files in
    /// rollback-journal mode, where each write costs several fsyncs and readers wait on
    /// writers: for shared sessions, switch the file to WAL once (`PRAGMA journal_mode = WAL`,
    /// or Django 5.1+'s `OPTIONS = {"init_command": "PRAGMA journal_mode=WAL;"}`).
    pub fn sqlite(pool: sqlx::SqlitePool, keys: Keys) -> Self {
        let server = DbServer::sqlite(&pool.connect_options());
        Self::build(Pool::Sqlite(pool), Dialect::Sqlite, server, keys)
    }

    fn build(pool: Pool, dialect: Dialect, server: DbServer, keys: Keys) -> Self {
        Self {
            pool,
            server,
            table: DJANGO_TABLE.to_owned(),
            sql: Statements::new(dialect, DJANGO_TABLE),
            codec: DjangoCodec::new(keys),
            writer: Default::default(),
        }
    }

    /// Connects to the database at `url` (`postgres://`, `mysql://`/`mariadb://` or
    /// `sqlite:`), with the bounded waits of [`StoreOptions::default`].
    pub async fn connect(url: &str, keys: Keys) -> Result<Self, StoreError> {
        Self::connect_with(url, keys, StoreOptions::default()).await
    }

    /// [`connect`](Self::connect) with other bounds.
    pub async fn connect_with(
        url: &str,
        keys: Keys,
        options: StoreOptions,
    ) -> Result<Self, StoreError> {
        let scheme = url.split(':').next().unwrap_or_default();
        let bad_url = |error: sqlx::Error| {
            StoreError::config_caused_by("the database URL does not parse", error)
        };
        // Parses the URL as `$options`, connects a pool with the bounds, builds with `$build`.
        macro_rules! connect {
            ($url:expr, $options:ty, $server:path, $build:path) => {{
                let connect: $options = $url.parse().map_err(bad_url)?;
                let server = $server(&connect);
                let pool = options
                    .pool_options()
                    .connect_with(connect)
                    .await
                    .map_err(|error| {
                        server.error("connecting", options.get_connect_timeout(), error)
                    })?;
                Ok($build(pool, keys))
            }};
        }
        match scheme {
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => connect!(
                url,
                sqlx::postgres::PgConnectOptions,
                DbServer::postgres,
                Self::postgres
            ),
            #[cfg(feature = "mysql")]
            "mysql" | "mariadb" => connect!(
                url.replacen("mariadb:", "mysql:", 1),
                sqlx::mysql::MySqlConnectOptions,
                DbServer::mysql,
                Self::mysql
            ),
            #[cfg(feature = "sqlite")]
            "sqlite" => connect!(
                url,
                sqlx::sqlite::SqliteConnectOptions,
                DbServer::sqlite,
                Self::sqlite
            ),
            _ => Err(StoreError::config(format!(
                "unsupported database URL scheme {scheme:?}: use postgres://, mysql:// or \
                 sqlite: (with the matching feature of session-django)"
            ))),
        }
    }

    /// Uses another table: a custom session model (`AbstractBaseSession`) of the Django
    /// project. The name is validated.
    pub fn with_table(mut self, table: &str) -> Result<Self, StoreError> {
        validate_table(table)?;
        let dialect = match self.pool {
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => Dialect::Postgres,
            #[cfg(feature = "mysql")]
            Pool::MySql(_) => Dialect::MySql,
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => Dialect::Sqlite,
        };
        self.table = table.to_owned();
        self.sql = Statements::new(dialect, table);
        Ok(self)
    }

    /// Uses another codec: Django's encoding with another salt (a custom `SessionStore`
    /// class), see [`DjangoCodec::with_salt`].
    pub fn with_codec(mut self, codec: DjangoCodec) -> Self {
        self.codec = codec;
        self
    }

    /// The table.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Checks that Django's table is there with its three columns; when it is not, the
    /// error says to run Django's `migrate`.
    pub async fn check_table(&self) -> Result<(), StoreError> {
        let checked = on_pool!(self, |pool, _at| sqlx::query(self.sql.check.clone())
            .fetch_optional(pool)
            .await
            .map(drop));
        match checked {
            Ok(()) => Ok(()),
            Err(sqlx::Error::Database(error)) => Err(StoreError::config_caused_by(
                MissingTable {
                    table: self.table.clone(),
                }
                .to_string(),
                error.to_string(),
            )),
            Err(error) => Err(self.fail("checking Django's session table")(error)),
        }
    }

    /// Taken around every write on SQLite; nothing elsewhere.
    async fn writing(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => Some(self.writer.lock().await),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    fn bound(&self) -> Duration {
        on_pool!(self, |pool, _at| pool.options().get_acquire_timeout())
    }

    fn fail(&self, context: &'static str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
        let bound = self.bound();
        move |error| self.server.error(context, bound, error)
    }

    /// `UPDATE … SET session_data, expire_date WHERE session_key AND <condition on now>`:
    /// rows changed.
    async fn write(
        &self,
        sql: &SqlStr,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<u64, sqlx::Error> {
        let id = record.id().as_str();
        let data = record.payload();
        let expires_at = record.expires_at();
        on_pool!(self, |pool, at| sqlx::query(sql.clone())
            .bind(data)
            .bind(at(expires_at))
            .bind(id)
            .bind(at(now))
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))
    }
}

/// A stored `expire_date` that does not read as a moment.
#[derive(Debug, thiserror::Error)]
#[error("expire_date {0:?} is not a datetime Django writes")]
struct BadExpireDate(String);

#[async_trait]
impl SessionStore for DjangoStore {
    async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let sql = &self.sql.load;
        let fail = self.fail("loading a django_session row");
        let row: Option<(String, OffsetDateTime)> = match &self.pool {
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => sqlx::query(sql.clone())
                .bind(id.as_str())
                .bind(now)
                .fetch_optional(pool)
                .await
                .and_then(|row| {
                    row.map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                        .transpose()
                })
                .map_err(fail)?,
            #[cfg(feature = "mysql")]
            Pool::MySql(pool) => sqlx::query(sql.clone())
                .bind(id.as_str())
                .bind(moment::mysql(now))
                .fetch_optional(pool)
                .await
                .and_then(|row| {
                    row.map(|row| {
                        let at: session_core::time::PrimitiveDateTime = row.try_get(1)?;
                        Ok((row.try_get(0)?, at.assume_utc()))
                    })
                    .transpose()
                })
                .map_err(fail)?,
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(pool) => {
                let row = sqlx::query(sql.clone())
                    .bind(id.as_str())
                    .bind(moment::sqlite(now))
                    .fetch_optional(pool)
                    .await
                    .and_then(|row| {
                        row.map(|row| {
                            Ok((row.try_get::<String, _>(0)?, row.try_get::<String, _>(1)?))
                        })
                        .transpose()
                    })
                    .map_err(fail)?;
                match row {
                    None => None,
                    Some((data, text)) => match moment::from_sqlite(&text) {
                        Some(at) => Some((data, at)),
                        None => {
                            return Err(StoreError::backend(
                                "reading a django_session row",
                                BadExpireDate(text),
                            ));
                        }
                    },
                }
            }
        };
        Ok(row.map(|(data, at)| Record::new(id.clone(), data, at)))
    }

    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        let _writer = self.writing().await;
        let id = record.id().as_str();
        let data = record.payload();
        let expires_at = record.expires_at();
        let sql = &self.sql.insert;
        let inserted = on_pool!(self, |pool, at| sqlx::query(sql.clone())
            .bind(id)
            .bind(data)
            .bind(at(expires_at))
            .execute(pool)
            .await
            .map(drop));
        match inserted {
            Ok(()) => Ok(()),
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                let replaced = self
                    .write(&self.sql.replace_expired, record, OffsetDateTime::now_utc())
                    .await
                    .map_err(self.fail("replacing an expired django_session row"))?;
                if replaced == 0 {
                    Err(StoreError::DuplicateId)
                } else {
                    Ok(())
                }
            }
            Err(error) => Err(self.fail("inserting a django_session row")(error)),
        }
    }

    async fn update(&self, record: &Record) -> Result<(), StoreError> {
        let _writer = self.writing().await;
        let changed = self
            .write(&self.sql.update, record, OffsetDateTime::now_utc())
            .await
            .map_err(self.fail("updating a django_session row"))?;
        if changed == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }

    async fn touch(&self, id: &RecordId, expires_at: OffsetDateTime) -> Result<(), StoreError> {
        let _writer = self.writing().await;
        let now = OffsetDateTime::now_utc();
        let sql = &self.sql.touch;
        let changed = on_pool!(self, |pool, at| sqlx::query(sql.clone())
            .bind(at(expires_at))
            .bind(id.as_str())
            .bind(at(now))
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))
        .map_err(self.fail("touching a django_session row"))?;
        if changed == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }

    async fn delete(&self, id: &RecordId) -> Result<bool, StoreError> {
        let _writer = self.writing().await;
        let now = OffsetDateTime::now_utc();
        let sql = &self.sql.delete;
        let fail = self.fail("deleting a django_session row");
        match &self.pool {
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => sqlx::query(sql.clone())
                .bind(id.as_str())
                .bind(now)
                .fetch_optional(pool)
                .await
                .and_then(|row| row.map(|row| row.try_get::<bool, _>(0)).transpose())
                .map(|live| live.unwrap_or(false))
                .map_err(fail),
            #[cfg(feature = "mysql")]
            Pool::MySql(pool) => sqlx::query(sql.clone())
                .bind(id.as_str())
                .bind(moment::mysql(now))
                .execute(pool)
                .await
                .map(|done| done.rows_affected() > 0)
                .map_err(fail),
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(pool) => sqlx::query(sql.clone())
                .bind(id.as_str())
                .bind(moment::sqlite(now))
                .fetch_optional(pool)
                .await
                .and_then(|row| row.map(|row| row.try_get::<bool, _>(0)).transpose())
                .map(|live| live.unwrap_or(false))
                .map_err(fail),
        }
    }

    async fn clear_expired(&self) -> Result<u64, StoreError> {
        let _writer = self.writing().await;
        let now = OffsetDateTime::now_utc();
        let sql = &self.sql.clear;
        let mut total = 0;
        loop {
            let deleted = on_pool!(self, |pool, at| sqlx::query(sql.clone())
                .bind(at(now))
                .execute(pool)
                .await
                .map(|done| done.rows_affected()))
            .map_err(self.fail("clearing expired django_session rows"))?;
            total += deleted;
            if deleted < CLEAR_BATCH {
                return Ok(total);
            }
        }
    }

    fn key_mapping(&self) -> KeyMapping {
        KeyMapping::RawKey
    }

    fn codec(&self) -> &dyn Codec {
        &self.codec
    }
}
