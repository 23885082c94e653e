#![doc = include_str!("../README.md")]
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
#[cfg(feature = "sqlite")]
mod sqlite_writes;
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
