//! The demo web app and `clearsessions`: Django's sessions guide, end to end, in Rust.
//!
//! - `cargo run -p demo` serves the demo on <http://127.0.0.1:8000> with
//!   sessions in `sessions.sqlite3` (no server needed).
//! - `cargo run -p demo --bin clearsessions` deletes expired sessions (for cron).
//!
//! Both read Django's settings from the environment: `SESSION_ENGINE` (`db`, `file`,
//! `cache`, `cached_db`, `memory`, `django`, `signed_cookies`, `encrypted_cookies`),
//! `DATABASE_URL`, `SECRET_KEY`,
//! `SECRET_KEY_FALLBACKS`, `SESSION_FILE_PATH`, `REDIS_URL`,
//! `SESSION_COOKIE_AGE`, `SESSION_EXPIRE_AT_BROWSER_CLOSE`, `SESSION_SAVE_EVERY_REQUEST`,
//! `SESSION_RECORD_CLIENT` (on by default here: the "Your sessions" page shows each browser),
//! `SESSION_COOKIE_SECURE`, `SESSION_COOKIE_NAME`, `SESSION_COOKIE_DOMAIN`,
//! `SESSION_COOKIE_PATH`, `SESSION_COOKIE_HTTPONLY`, `SESSION_COOKIE_SAMESITE`, and ours:
//! `SESSION_TOUCH_THRESHOLD`, `SESSION_CLEANUP_INTERVAL`, `PORT`.
//!
//! `SESSION_ENGINE=django` shares Django's own `django_session` table at `DATABASE_URL`
//! with a live Django site (same `SECRET_KEY`): the home page shows the Django user id of a
//! Django login. `signed_cookies` (Django's, byte-compatible) and `encrypted_cookies` keep
//! the whole session in the cookie, with `SECRET_KEY`. With any other engine, setting
//! `SECRET_KEY` signs every stored session.
//!
//! The defaults keep sessions private to the user running the demo: the SQLite file
//! `./sessions.sqlite3` is created mode 0600, and the file engine's directory `./sessions`
//! (mode 0700) is under the working directory, not the shared temp directory. The demo's
//! start-up line says where sessions are ([`describe_store`], passwords hidden).
//!
//! The app ([`app()`]; its routes are listed in [`pages`], shared with the actix-web demo) logs in as Django's `login()`
//! does (flush when the session belongs to another user, else `cycle_key`), protects every
//! form with a CSRF token kept in the session, logs out by POST only, and answers bad forms
//! with short 400 pages.

pub mod app;
pub mod engine;
pub mod pages;
pub mod settings;

pub use app::{app, routes};
pub use engine::{OpenError, describe_store, open_manager, open_store, store_location_for_errors};
pub use settings::{BadSetting, Engine, Settings};

/// What both demo binaries do before serving: logging, the settings from the environment,
/// the session manager with its cleanup timer. A problem is printed (naming the setting or
/// the store, passwords hidden) and becomes the exit code: 2 for a setting, 1 for a store
/// that cannot be opened. Call it inside the runtime that will serve.
pub async fn prepare(
    program: &str,
) -> Result<(Settings, session_core::SessionManager), std::process::ExitCode> {
    init_logging();
    let settings = Settings::from_env().map_err(|error| {
        eprintln!("{program}: {error}");
        std::process::ExitCode::from(2)
    })?;
    match open_manager(&settings).await {
        // Expired sessions are cleared on a timer for as long as the manager lives.
        Ok(manager) => {
            let manager = manager.with_cleanup(settings.cleanup_interval);
            Ok((settings, manager))
        }
        Err(OpenError::Config(problem)) => {
            eprintln!("{program}: {problem}");
            Err(std::process::ExitCode::from(2))
        }
        Err(OpenError::Store(error)) => {
            let location = store_location_for_errors(&settings);
            eprintln!(
                "{program}: cannot open the {} session store{location}: {}",
                settings.engine,
                session_core::error_chain(&error)
            );
            Err(std::process::ExitCode::from(1))
        }
    }
}

/// The start-up line both demo binaries print.
pub fn banner(settings: &Settings, framework: &str, url: &str) -> String {
    format!(
        "Sessions demo ({} engine, sessions {}, {framework}) on {url}  (Ctrl-C stops it)",
        settings.engine,
        describe_store(settings)
    )
}

/// Logs to stderr, `info` by default (`RUST_LOG` overrides), in colour only on a terminal.
pub fn init_logging() {
    use std::io::IsTerminal;

    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// Every Rust block of the repository's README, compiled as a doctest so it cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
