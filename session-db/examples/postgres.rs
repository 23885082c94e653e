//! Sessions in PostgreSQL without a web framework: one request saves, the next reads it back
//! through the key a cookie would carry. `DATABASE_URL=postgres://postgres@127.0.0.1/test
//! cargo run -p session-db --example postgres`.

use std::sync::Arc;

use session_core::{Session, SessionConfig, SessionStore};
use session_db::PostgresStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let store = PostgresStore::connect(&url).await?; // fails within 5 s if the server is down
    store.migrate().await?; // creates the `sessions` table once
    let store: Arc<dyn SessionStore> = Arc::new(store);
    let config = Arc::new(SessionConfig::default());

    // Request 1: log in.
    let session = Session::new(store.clone(), config.clone());
    session.insert("user_id", 123).await?;
    session.cycle_key().await?; // against session fixation
    session.save().await?;
    let key = session.session_key().ok_or("a saved session has a key")?;

    // Request 2: the browser sends the key back in its cookie.
    let next = Session::from_cookie(store.clone(), config, key.expose_secret());
    println!("user_id = {:?}", next.get::<u32>("user_id").await?);

    next.flush().await?; // logout
    println!("expired sessions cleared: {}", store.clear_expired().await?);
    Ok(())
}
