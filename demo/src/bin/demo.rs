//! The demo web app: `cargo run -p demo`. The start-up line says where
//! sessions are stored (passwords hidden).

use std::process::ExitCode;

use demo::{
    OpenError, Settings, app, describe_store, init_logging, open_manager, store_location_for_errors,
};

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
    let manager = match open_manager(&settings).await {
        // Expired sessions are cleared on a timer for as long as the manager lives.
        Ok(manager) => manager.with_cleanup(settings.cleanup_interval),
        Err(OpenError::Config(problem)) => {
            eprintln!("demo: {problem}");
            return ExitCode::from(2);
        }
        Err(OpenError::Store(error)) => {
            let location = store_location_for_errors(&settings);
            eprintln!(
                "demo: cannot open the {} session store{location}: {}",
                settings.engine,
                session_core::error_chain(&error)
            );
            return ExitCode::from(1);
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
