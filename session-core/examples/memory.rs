//! Two requests through `SessionManager`, the framework-agnostic lifecycle, on `MemoryStore`:
//! `cargo run -p session-core --example memory`.

use session_core::{MemoryStore, SessionConfig, SessionManager};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manager = SessionManager::try_new(MemoryStore::new(), SessionConfig::new())?;

    // Request 1 carries no cookie; the handler stores who logged in.
    let session = manager.session_from_headers(std::iter::empty::<&[u8]>());
    session.cycle_key().await?;
    session.insert("user_id", 123).await?;
    let outcome = manager.finish(&session, 200).await;
    let set_cookie = outcome
        .set_cookie_header()
        .ok_or("a new session sets its cookie")?;
    println!("Set-Cookie: {set_cookie}");

    // Request 2 sends the cookie back (only its name=value pair).
    let pair = set_cookie.split(';').next().unwrap_or_default();
    let session = manager.session_from_headers([pair]);
    println!("user_id = {:?}", session.get::<u32>("user_id").await?);
    let outcome = manager.finish(&session, 200).await;
    println!(
        "a read-only request sets no cookie: {}",
        outcome.set_cookie.is_none()
    );
    Ok(())
}
