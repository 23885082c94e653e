//! The demo web app: `cargo run -p demo`. The start-up line says where
//! sessions are stored (passwords hidden).

use std::process::ExitCode;
use std::sync::Arc;

use demo::{Settings, app, describe_store, init_logging, open_store, store_location_for_errors};
use session_core::SessionManager;

#[tokio::main]
async fn main() -> ExitCode {
    init_logging();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("demo: {error}");
            return ExitCode::from(2);
        }
    };
    let store = match open_store(&settings).await {
        Ok(store) => store,
        Err(error) => {
            let location = store_location_for_errors(&settings);
            eprintln!(
                "demo: cannot open the {} session store{location}: {}",
                settings.engine,
                session_core::error_chain(&error)
            );
            return ExitCode::from(1);
        }
    };
    let manager = match SessionManager::try_from_shared(store, Arc::new(settings.session.clone())) {
        // Expired sessions are cleared on a timer for as long as the manager lives.
        Ok(manager) => manager.with_cleanup(settings.cleanup_interval),
        Err(error) => {
            eprintln!("demo: {error}");
            return ExitCode::from(2);
        }
    };

    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", settings.port)).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "demo: cannot listen on 127.0.0.1:{}: {error}",
                settings.port
            );
            return ExitCode::from(1);
        }
    };
    let url = listener
        .local_addr()
        .map(|addr| format!("http://{addr}"))
        .unwrap_or_default();
    println!(
        "Sessions demo ({} engine, sessions {}) on {url}  (Ctrl-C stops it)",
        settings.engine,
        describe_store(&settings)
    );

    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
        println!("Shutting down.");
    };
    match axum::serve(listener, app(manager))
        .with_graceful_shutdown(shutdown)
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("demo: server error: {error}");
            ExitCode::from(1)
        }
    }
}
