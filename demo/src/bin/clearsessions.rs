//! Django's `clearsessions`: deletes expired sessions and prints how many, for cron.
//! `cargo run -p demo --bin clearsessions`, with the demo's settings. On an engine with
//! nothing to clear (Redis expires sessions itself; the memory engine's sessions live in the
//! serving process) it says so, without connecting to anything.

use std::process::ExitCode;

use demo::{Settings, describe_store, init_logging, open_store, store_location_for_errors};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    init_logging();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("clearsessions: {error}");
            return ExitCode::from(2);
        }
    };
    if let Some(reason) = settings.engine.nothing_to_clear() {
        println!("{} engine: nothing to clear; {reason}.", settings.engine);
        return ExitCode::SUCCESS;
    }
    let cleared = match open_store(&settings).await {
        Ok(store) => store.clear_expired().await,
        Err(error) => Err(error),
    };
    match cleared {
        Ok(count) => {
            let noun = if count == 1 { "session" } else { "sessions" };
            println!(
                "Deleted {count} expired {noun} ({} engine, sessions {}).",
                settings.engine,
                describe_store(&settings)
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            let location = store_location_for_errors(&settings);
            eprintln!(
                "clearsessions: {} engine{location}: {}",
                settings.engine,
                session_core::error_chain(&error)
            );
            ExitCode::from(1)
        }
    }
}
