//! The demo's HTTP scenarios against `demo-actix` (the same pages on actix-web, behind
//! `session_actix::SessionMiddleware`), over real HTTP on a free port, on memory, SQLite,
//! PostgreSQL and Redis; the same scenarios the axum demo passes (`demo/tests/scenarios`).

#[path = "../../demo/tests/scenarios/mod.rs"]
mod scenarios;

use std::sync::Arc;

use scenarios::App;
use session_cache::{RedisConfig, RedisStore};
use session_core::{MemoryStore, SessionManager};
use session_db::SqliteStore;
use session_testkit::Capabilities;
use session_testkit::services::{self, Service};

/// Stops the demo's server when the last client lets go of it.
struct Running(actix_web::dev::ServerHandle);

impl Drop for Running {
    fn drop(&mut self) {
        // The stop command is sent at once; its completion is not awaited.
        drop(self.0.stop(false));
    }
}

/// `demo-actix`'s server over `manager`, on a free port, in an actix-web runtime of its own.
fn serve(manager: SessionManager) -> App {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    let (started, handle) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = examples::server(manager, listener, 1).expect("the demo server");
            started.send(server.handle()).expect("the test waits");
            server.await.expect("the demo server runs");
        });
    });
    let handle = handle.recv().expect("the demo server starts");
    App::http(base, Arc::new(Running(handle)))
}

async fn sqlite() -> session_testkit::Guarded<SqliteStore, tempfile::TempDir> {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("sessions.sqlite3").display());
    let store = SqliteStore::connect(&url).await.expect("sqlite");
    store.migrate().await.expect("migrate");
    session_testkit::Guarded::new(store, dir)
}

async fn postgres() -> session_db::PostgresStore {
    let url = services::url(Service::Postgres).expect("checked by Capabilities::requires");
    session_db::testing::postgres_store(&url, "actix")
        .await
        .expect("postgres")
}

async fn redis() -> RedisStore {
    let url = services::url(Service::Redis).expect("checked by Capabilities::requires");
    let config = RedisConfig::new().prefix(session_testkit::unique_name("actix"));
    RedisStore::new(&url, config).expect("redis")
}

macro_rules! actix_demo_tests {
    ($engine:ident, $caps:expr, $factory:expr) => {
        mod $engine {
            use super::*;

            shared_demo_tests!(@shared $caps, $factory);
            shared_demo_tests!(@each [scenarios] $caps, $factory;
                owner_demo_sign_out_everywhere_else);
        }
    };
}

actix_demo_tests!(actix_memory, Capabilities::new(), || async {
    MemoryStore::new()
});
actix_demo_tests!(actix_sqlite, Capabilities::new(), sqlite);
actix_demo_tests!(
    actix_postgres,
    Capabilities::new().requires(Service::Postgres),
    postgres
);
actix_demo_tests!(
    actix_redis,
    Capabilities::new().requires(Service::Redis),
    redis
);
