//! The demo web app and `clearsessions`: Django's sessions guide, end to end, in Rust.
//!
//! - `cargo run -p examples --bin demo` serves the demo on <http://127.0.0.1:8000> with
//!   sessions in `sessions.sqlite3` (no server needed).
//! - `cargo run -p examples --bin clearsessions` deletes expired sessions (for cron).
//!
//! Both read Django's settings from the environment: `SESSION_ENGINE` (`db`, `file`,
//! `cache`, `cached_db`, `memory`), `DATABASE_URL`, `SESSION_FILE_PATH`, `REDIS_URL`,
//! `SESSION_COOKIE_AGE`, `SESSION_EXPIRE_AT_BROWSER_CLOSE`, `SESSION_SAVE_EVERY_REQUEST`,
//! `SESSION_COOKIE_SECURE`, `SESSION_COOKIE_NAME`, `SESSION_COOKIE_DOMAIN`,
//! `SESSION_COOKIE_PATH`, `SESSION_COOKIE_HTTPONLY`, `SESSION_COOKIE_SAMESITE`, and ours:
//! `SESSION_TOUCH_THRESHOLD`, `SESSION_CLEANUP_INTERVAL`, `PORT`.

pub mod app;
pub mod engine;
pub mod settings;

pub use app::{app, routes};
pub use engine::open_store;
pub use settings::{BadSetting, Engine, Settings};

/// Logs to stderr, `info` by default (`RUST_LOG` overrides).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
