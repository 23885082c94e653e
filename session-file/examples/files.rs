//! Sessions as files (Django's `file` engine) in `./sessions-example`, one per session,
//! readable with `cat`: `cargo run -p session-file --example files`.

use std::sync::Arc;

use session_core::{Session, SessionConfig, SessionStore};
use session_file::FileStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Created 0700 if missing; refused if another user owns it or may write to it.
    let store: Arc<dyn SessionStore> = Arc::new(FileStore::new("sessions-example")?);
    let session = Session::new(store.clone(), Arc::new(SessionConfig::new()));
    session.insert("cart", vec!["book", "pen"]).await?;
    session.save().await?;
    let key = session.session_key().ok_or("saved")?;
    println!(
        "saved under sessions-example/sessionid{} (the file name is the SHA-256 of the key)",
        key.record_id()
    );
    session.flush().await?; // the file is removed at once
    Ok(())
}
