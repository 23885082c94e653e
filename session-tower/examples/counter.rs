//! A visit counter in one axum app: `cargo run -p session-tower --example counter`, then open
//! <http://127.0.0.1:3000> and reload. `/reset` logs out (a new session starts).

use std::time::Duration;

use axum::{Router, routing::get};
use session_core::{MemoryStore, Session, SessionConfig, SessionError};
use session_tower::SessionLayer;

async fn count(session: Session) -> Result<String, SessionError> {
    let visits = session.get::<u64>("visits").await?.unwrap_or(0) + 1;
    session.insert("visits", visits).await?;
    Ok(format!(
        "You have been here {visits} time(s) in this session."
    ))
}

async fn reset(session: Session) -> Result<&'static str, SessionError> {
    session.flush().await?; // Django's logout(): the record is deleted at once
    Ok("Session ended: the next visit starts a new one.")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let layer = SessionLayer::try_new(MemoryStore::new(), SessionConfig::default())?
        .with_cleanup(Duration::from_secs(3600));
    let app = Router::new()
        .route("/", get(count))
        .route("/reset", get(reset))
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("counter on http://127.0.0.1:3000");
    axum::serve(listener, app).await?;
    Ok(())
}
