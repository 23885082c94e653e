//! Django's database session engine for Rust: one store per SQL dialect on sqlx 0.9, each
//! behind a cargo feature (all on by default).
//!
//! | store | feature | expiry column |
//! |---|---|---|
//! | [`PostgresStore`] | `postgres` | `timestamptz` |
//! | [`MySqlStore`] (MySQL and MariaDB) | `mysql` | `DATETIME(3)`, UTC |
//! | [`SqliteStore`] | `sqlite` | `INTEGER` Unix milliseconds |
//!
//! Each store is built from a pool (`new(pool)`) or a URL (`connect(url)`), takes a validated
//! table name (`with_table`, default `sessions`), and creates its table and expiry index with
//! an idempotent, concurrency-safe `migrate()`, which also upgrades a table of an earlier
//! version in place. Every operation is one statement (`create` over an expired leftover
//! takes two; SQLite's `update` and `touch` take two when the expiry's hour moved)
//! with the application's clock bound as a parameter, never the server's `now()`. TLS for
//! remote servers: enable one of sqlx's `tls-*` features in your own `Cargo.toml`.
//!
//! ## Cheap writes and cheap cleanup
//!
//! Besides the exact `expires_at`, each row keeps `expires_hour`, the hour its expiry falls
//! in, and only that is indexed (`<table>_expiry_idx`). A sliding expiry moves `expires_at`
//! on every save but the hour about once an hour, so a save leaves the index alone:
//! PostgreSQL updates the row in place (a HOT update; tables leave 10 % of each page free for
//! it), InnoDB skips the unchanged index, SQLite runs an `UPDATE` that does not assign the
//! hour. `clear_expired` still reads only the expired rows (and at most one hour of rows not
//! yet expired) through the index, 5,000 per statement with a pause twice as long as the
//! statement between them, so a table of millions is cleared in seconds without a scan while
//! requests keep most of the database. A row whose hour is too low (an older version still writing
//! during a rolling upgrade leaves the column's default, 0) only makes cleanups look at it
//! early; what a load returns depends on `expires_at` alone. Figures: `BENCHMARKS.md`.
//!
//! Every wait is bounded ([`StoreOptions`]): `connect(url)` fails after 5 s without a first
//! connection, and each operation after 5 s without a pooled connection, so a database that
//! is down turns requests into errors in seconds, not sqlx's default 30 s; `connect_with(url,
//! options)` changes both. A store recovers by itself when its server comes back. A failed
//! operation is [`StoreError::Backend`](session_core::StoreError::Backend) whose source is a
//! [`DbError`] naming the engine and the server (`host:port`, never the password), with the
//! driver's message once.

mod error;
#[cfg(feature = "mysql")]
mod mysql;
mod options;
mod owner;
mod plan;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
mod table;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::{DbError, DbServer};
#[cfg(feature = "mysql")]
pub use mysql::MySqlStore;
pub use options::StoreOptions;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use sqlx;
pub use table::DEFAULT_TABLE;
