//! Sessions in Redis, written through to SQLite with `CachedStore` (Django's `cached_db`):
//! `REDIS_URL=redis://127.0.0.1:6379 cargo run -p session-cache --example redis`.

use std::sync::Arc;

use session_cache::{CachedStore, RedisConfig, RedisStore};
use session_core::{Session, SessionConfig};
use session_db::SqliteStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let cache = RedisStore::new(&url, RedisConfig::new().prefix("example:"))?; // connects lazily
    let durable = SqliteStore::connect("sqlite::memory:").await?;
    durable.migrate().await?;
    let store = Arc::new(CachedStore::new(cache, durable));

    let session = Session::new(store.clone(), Arc::new(SessionConfig::new()));
    session.insert("theme", "dark").await?;
    session.save().await?;
    let key = session.session_key().ok_or("saved")?;
    let next = Session::from_cookie(store, Arc::new(SessionConfig::new()), key.expose_secret());
    println!(
        "theme = {:?} (from the cache)",
        next.get::<String>("theme").await?
    );
    next.flush().await?;
    Ok(())
}
