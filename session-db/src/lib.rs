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
//! an idempotent, concurrency-safe `migrate()`. Every operation is one statement (MySQL's
//! `create` over an expired leftover takes three) with the application's clock bound as a
//! parameter, never the server's `now()`. TLS for remote servers: enable one of sqlx's `tls-*`
//! features in your own `Cargo.toml`.
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
mod plan;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
mod table;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::DbError;
#[cfg(feature = "mysql")]
pub use mysql::MySqlStore;
pub use options::StoreOptions;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use sqlx;
pub use table::DEFAULT_TABLE;
