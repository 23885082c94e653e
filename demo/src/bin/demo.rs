//! The demo web app on axum: `cargo run -p demo`. The start-up line says where sessions are
//! stored (passwords hidden). `cargo run -p examples --bin demo-actix` serves the same pages
//! on actix-web.

use std::process::ExitCode;

use demo::{app, banner, prepare};

#[tokio::main]
async fn main() -> ExitCode {
    let (settings, manager) = match prepare("demo").await {
        Ok(prepared) => prepared,
        Err(code) => return code,
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
    println!("{}", banner(&settings, "axum", &url));

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
