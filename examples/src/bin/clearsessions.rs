//! Django's `clearsessions`: deletes expired sessions and prints how many, for cron.
//! `cargo run -p examples --bin clearsessions`, with the demo's settings.

use std::process::ExitCode;

use examples::{Settings, init_logging, open_store};

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
    let cleared = match open_store(&settings).await {
        Ok(store) => store.clear_expired().await,
        Err(error) => Err(error),
    };
    match cleared {
        Ok(count) => {
            println!(
                "Deleted {count} expired sessions ({} engine).",
                settings.engine
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("clearsessions: {}", session_core::error_chain(&error));
            ExitCode::from(1)
        }
    }
}
