//! The demo web app on actix-web: `cargo run -p examples --bin demo-actix`, with the same
//! engines, settings and pages as `cargo run -p demo` (axum).

use std::process::ExitCode;

use demo::{banner, prepare};

fn main() -> ExitCode {
    actix_web::rt::System::new().block_on(async {
        let (settings, manager) = match prepare("demo-actix").await {
            Ok(prepared) => prepared,
            Err(code) => return code,
        };
        let listener = match std::net::TcpListener::bind(("127.0.0.1", settings.port)) {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!(
                    "demo-actix: cannot listen on 127.0.0.1:{}: {error}",
                    settings.port
                );
                return ExitCode::from(1);
            }
        };
        let url = listener
            .local_addr()
            .map(|addr| format!("http://{addr}"))
            .unwrap_or_default();
        let workers = std::thread::available_parallelism().map_or(2, usize::from);
        let server = match examples::server(manager, listener, workers) {
            Ok(server) => server,
            Err(error) => {
                eprintln!("demo-actix: cannot serve: {error}");
                return ExitCode::from(1);
            }
        };
        println!("{}", banner(&settings, "actix-web", &url));
        // actix-web stops on Ctrl-C by itself, gracefully.
        match server.await {
            Ok(()) => {
                println!("Shutting down.");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("demo-actix: server error: {error}");
                ExitCode::from(1)
            }
        }
    })
}
