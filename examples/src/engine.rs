//! The store a `SESSION_ENGINE` setting stands for, opened and migrated.

use std::sync::Arc;

use session_cache::{CachedStore, RedisConfig, RedisStore};
use session_core::{MemoryStore, SessionStore, StoreError};
use session_db::{MySqlStore, PostgresStore, SqliteStore};
use session_file::FileStore;

use crate::settings::{Engine, Settings};

/// Opens the configured store and creates its table if it is a database.
pub async fn open_store(settings: &Settings) -> Result<Arc<dyn SessionStore>, StoreError> {
    Ok(match settings.engine {
        Engine::Memory => Arc::new(MemoryStore::new()),
        Engine::File => Arc::new(FileStore::new(&settings.file_path)?),
        Engine::Cache => Arc::new(redis(settings)?),
        Engine::Db => database(&settings.database_url).await?.into(),
        Engine::CachedDb => {
            let cache = redis(settings)?;
            match database(&settings.database_url).await? {
                Database::Postgres(db) => Arc::new(CachedStore::new(cache, db)),
                Database::MySql(db) => Arc::new(CachedStore::new(cache, db)),
                Database::Sqlite(db) => Arc::new(CachedStore::new(cache, db)),
            }
        }
    })
}

fn redis(settings: &Settings) -> Result<RedisStore, StoreError> {
    RedisStore::connect(&settings.redis_url, RedisConfig::default())
}

/// A migrated database store, by the URL's scheme.
enum Database {
    Postgres(PostgresStore),
    MySql(MySqlStore),
    Sqlite(SqliteStore),
}

impl From<Database> for Arc<dyn SessionStore> {
    fn from(database: Database) -> Self {
        match database {
            Database::Postgres(db) => Arc::new(db),
            Database::MySql(db) => Arc::new(db),
            Database::Sqlite(db) => Arc::new(db),
        }
    }
}

async fn database(url: &str) -> Result<Database, StoreError> {
    let scheme = url.split(':').next().unwrap_or_default();
    let database = match scheme {
        "postgres" | "postgresql" => {
            let store = PostgresStore::connect(url).await?;
            store.migrate().await?;
            Database::Postgres(store)
        }
        "mysql" | "mariadb" => {
            let store = MySqlStore::connect(&url.replacen("mariadb:", "mysql:", 1)).await?;
            store.migrate().await?;
            Database::MySql(store)
        }
        "sqlite" => {
            let store = SqliteStore::connect(url).await?;
            store.migrate().await?;
            Database::Sqlite(store)
        }
        _ => {
            return Err(StoreError::backend(
                "opening the session database",
                format!(
                    "DATABASE_URL must start with sqlite:, postgres:, mysql: or mariadb:, not {scheme:?}"
                ),
            ));
        }
    };
    Ok(database)
}
