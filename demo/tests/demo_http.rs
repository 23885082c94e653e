//! The demo's router over HTTP (through `tower::ServiceExt::oneshot`), on every engine:
//! memory, SQLite, PostgreSQL, MariaDB, files, Redis and cached_db. The scenarios every
//! framework passes live in `scenarios` (the actix-web demo runs them too); the ones here
//! add test routes to the axum router.

mod scenarios;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use scenarios::{App, Client, is_live, login, login_as};
use session_cache::{CachedStore, RedisConfig, RedisStore};
use session_core::{MemoryStore, Session, SessionConfig, SessionManager, SessionStore};
use session_db::{PostgresStore, SqliteStore};
use session_file::FileStore;
use session_testkit::services::{self, Service};
use session_testkit::{Capabilities, CaseContext, Guarded};
use session_tower::SessionLayer;

/// The demo on axum, for the shared scenarios.
fn serve(manager: SessionManager) -> App {
    App::Router(demo::app(manager))
}

async fn slow_update(session: Session) -> StatusCode {
    let _ = session.get::<String>("username").await.expect("load");
    tokio::time::sleep(Duration::from_millis(300)).await;
    session.insert("cart", "full").await.expect("insert");
    StatusCode::OK
}

/// A logout racing a slow request on the same session leaves it logged out.
async fn demo_logout_beats_a_slow_request(ctx: CaseContext) {
    let manager =
        SessionManager::from_shared(ctx.store().clone(), Arc::new(SessionConfig::default()));
    let app = demo::routes()
        .route("/slow", post(slow_update))
        .layer(SessionLayer::from_manager(manager));
    let mut client = Client::new(app.clone());
    login(&mut client).await;
    let key = client.key();
    let mut slow = Client {
        app: App::Router(app.clone()),
        cookie: client.cookie.clone(),
        csrf: None,
        user_agent: None,
    };
    let slow = tokio::spawn(async move { slow.send("POST", "/slow", None).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    client.post("/logout", "").await;
    let slow = slow.await.expect("task");
    assert_eq!(
        slow.status,
        StatusCode::BAD_REQUEST,
        "the slow request is interrupted"
    );
    assert!(
        ctx.store()
            .load(&ctx.id_of(&key))
            .await
            .expect("load")
            .is_none()
    );
    client.cookie = Some(key.expose_secret().to_owned());
    let profile = client.send("GET", "/profile", None).await;
    assert!(profile.body.contains("Not logged in."));
}

/// A test page standing for user-specific data: a cart kept in the session.
async fn add_to_cart(session: Session, item: String) -> StatusCode {
    let mut cart = session
        .get::<Vec<String>>("cart")
        .await
        .expect("load")
        .unwrap_or_default();
    cart.push(item);
    session.insert("cart", cart).await.expect("insert");
    StatusCode::OK
}

async fn show_cart(session: Session) -> String {
    let cart = session
        .get::<Vec<String>>("cart")
        .await
        .expect("load")
        .unwrap_or_default();
    cart.join(",")
}

/// The demo with the test cart at `/cart`.
fn demo_with_cart(ctx: &CaseContext) -> Router {
    let manager =
        SessionManager::from_shared(ctx.store().clone(), Arc::new(SessionConfig::default()));
    demo::routes()
        .route("/cart", get(show_cart).post(add_to_cart))
        .layer(SessionLayer::from_manager(manager))
}

/// Logging in as another user in the same browser starts from an empty session under a new
/// key (Django's `login()` flushes): the next user sees nothing of the previous one's data.
async fn demo_login_as_another_user_starts_afresh(ctx: CaseContext) {
    let mut client = Client::new(demo_with_cart(&ctx));
    login_as(&mut client, 1, "ann").await;
    client.send("POST", "/cart", Some("ann's diary")).await;
    client.send("GET", "/", None).await;
    assert_eq!(client.send("GET", "/cart", None).await.body, "ann's diary");
    let ann = client.key();

    login_as(&mut client, 2, "bob").await;
    assert_ne!(client.key(), ann, "the key changes");
    assert!(!is_live(&ctx, &ann).await, "ann's record is deleted");
    let cart = client.send("GET", "/cart", None).await;
    assert_eq!(cart.body, "", "bob sees ann's cart");
    let home = client.send("GET", "/", None).await;
    assert!(
        home.body.contains(r#"<strong id="visits">1</strong>"#),
        "the visit counter starts again: {}",
        home.body
    );
    let profile = client.send("GET", "/profile", None).await;
    assert!(profile.body.contains(r#"<span id="user_id">2</span>"#));
}

/// Logging in again as the same user, or after browsing anonymously, keeps the data under a
/// new key (`cycle_key`), as in Django.
async fn demo_login_again_keeps_the_data(ctx: CaseContext) {
    let mut client = Client::new(demo_with_cart(&ctx));
    client.send("GET", "/", None).await;
    client.send("POST", "/cart", Some("book")).await;
    let anonymous = client.key();
    login_as(&mut client, 1, "ann").await;
    assert_ne!(client.key(), anonymous);
    assert_eq!(client.send("GET", "/cart", None).await.body, "book");
    let first = client.key();
    login_as(&mut client, 1, "ann").await;
    assert_ne!(client.key(), first, "the key changes at every login");
    assert!(!is_live(&ctx, &first).await);
    assert_eq!(client.send("GET", "/cart", None).await.body, "book");
}

macro_rules! demo_tests {
    ($engine:ident, $caps:expr, $factory:expr $(, $owner:ident)?) => {
        mod $engine {
            use super::*;

            shared_demo_tests!(@shared $caps, $factory);
            shared_demo_tests!(@each [scenarios] $caps, $factory; $($owner)?);
            shared_demo_tests!(@each [local] $caps, $factory;
                demo_logout_beats_a_slow_request,
                demo_login_as_another_user_starts_afresh,
                demo_login_again_keeps_the_data,
            );
        }
    };
}

/// Real Django (the session-django tests' harness): its migrated SQLite database, copied.
#[path = "../../session-django/tests/common/mod.rs"]
mod django;

/// The `django` engine on a copy of a database Django's `migrate` made.
async fn django_sqlite() -> Guarded<session_django::DjangoStore, tempfile::TempDir> {
    let django = django::django(django::Db::Sqlite)
        .await
        .expect("checked by Capabilities::requires");
    let (url, dir) = django::sqlite_copy(&django);
    let keys = session_django::signing::Keys::new(django::SECRET);
    let store = session_django::DjangoStore::connect(&url, keys)
        .await
        .expect("connect");
    store.check_table().await.expect("Django's table");
    Guarded::new(store, dir)
}

/// SQLite with every record signed at rest, as the demo runs with `SECRET_KEY` set.
async fn signed_sqlite() -> session_django::SignedStore<Guarded<SqliteStore, tempfile::TempDir>> {
    let keys = session_django::signing::Keys::new("a demo secret");
    session_django::SignedStore::new(sqlite().await, keys)
}

/// A user logged in on the Django site (Django's test client and `login()`) opens the
/// demo, which runs with `SESSION_ENGINE=django` on the same database and `SECRET_KEY`: the
/// page shows the Django user id, and the visit the demo counted is in Django's session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_sqlite_demo_shows_the_django_login() {
    let Some(django) = django::django(django::Db::Sqlite).await else {
        return;
    };
    let login = django
        .one(serde_json::json!({"op": "login", "username": "demo-user", "password": "pw"}))
        .await;
    let key = login["key"].as_str().expect("a key").to_owned();
    let settings = demo::Settings::from_lookup(|name| match name {
        "SESSION_ENGINE" => Some("django".into()),
        "DATABASE_URL" => Some(django.url.clone()),
        "SECRET_KEY" => Some(django::SECRET.into()),
        _ => None,
    })
    .expect("settings");
    let store = demo::open_store(&settings)
        .await
        .expect("the django engine");
    let manager = SessionManager::from_shared(store, Arc::new(settings.session.clone()));
    let mut client = Client::new(demo::app(manager));
    client.cookie = Some(key.clone());
    let page = client.send("GET", "/", None).await;
    assert_eq!(page.status, StatusCode::OK);
    let user_id = login["user_id"].as_str().expect("an id");
    assert!(
        page.body
            .contains(&format!("id=\"django_user\">{user_id}<")),
        "{}",
        page.body
    );
    assert_eq!(
        client.cookie.as_deref(),
        Some(key.as_str()),
        "the same session"
    );
    let seen = django
        .one(serde_json::json!({"op": "read", "key": key}))
        .await;
    assert_eq!(seen["data"]["visits"], serde_json::json!(1));
    assert_eq!(seen["data"]["_auth_user_id"], serde_json::json!(user_id));
}

/// The demo on a client-side engine, as `SESSION_ENGINE=<engine>` with `SECRET_KEY` opens
/// it: login shows the name and user id, the counter counts, another user starts afresh, and
/// logout removes the cookie, with the whole session in the cookie.
async fn demo_on_a_client_side_engine(engine: &str) {
    let settings = demo::Settings::from_lookup(|name| match name {
        "SESSION_ENGINE" => Some(engine.into()),
        "SECRET_KEY" => Some("a demo secret".into()),
        _ => None,
    })
    .expect("settings");
    let manager = demo::open_manager(&settings).await.expect("a manager");
    let mut client = Client::new(demo::app(manager));
    login(&mut client).await;
    let cookie = client.cookie.clone().expect("a cookie");
    assert!(
        cookie.len() > 40,
        "the cookie carries the session: {cookie}"
    );
    // The login helper's first page counted one visit.
    for visits in ["2", "3"] {
        let page = client.send("GET", "/", None).await;
        assert!(
            page.body.contains(&format!(r#"id="visits">{visits}<"#)),
            "{}",
            page.body
        );
    }
    let profile = client.send("GET", "/profile", None).await;
    assert!(
        profile.body.contains(r#"<span id="user_id">123</span>"#),
        "{}",
        profile.body
    );
    login_as(&mut client, 456, "carol").await;
    let page = client.send("GET", "/", None).await;
    assert!(
        page.body.contains(r#"id="visits">1<"#),
        "another user starts afresh"
    );
    let reply = client.post("/logout", "").await;
    let removal = reply.set_cookie.expect("logout removes the cookie");
    assert!(removal.contains("Max-Age=0"), "{removal}");
    let profile = client.send("GET", "/profile", None).await;
    assert!(profile.body.contains("Not logged in."), "{}", profile.body);
}

#[tokio::test]
async fn signed_cookie_demo_login_counter_and_logout() {
    demo_on_a_client_side_engine("signed_cookies").await;
}

#[tokio::test]
async fn encrypted_cookie_demo_login_counter_and_logout() {
    demo_on_a_client_side_engine("encrypted_cookies").await;
}

fn redis() -> RedisStore {
    let url = services::url(Service::Redis).expect("checked by Capabilities::requires");
    let config = RedisConfig::new().prefix(session_testkit::unique_name("demo"));
    RedisStore::new(&url, config).expect("redis")
}

async fn postgres() -> PostgresStore {
    let url = services::url(Service::Postgres).expect("checked by Capabilities::requires");
    session_db::testing::postgres_store(&url, "demo")
        .await
        .expect("postgres")
}

async fn sqlite() -> Guarded<SqliteStore, tempfile::TempDir> {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("sessions.sqlite3").display());
    let store = SqliteStore::connect(&url).await.expect("sqlite");
    store.migrate().await.expect("migrate");
    Guarded::new(store, dir)
}

async fn mysql() -> session_db::MySqlStore {
    let url = services::url(Service::MySql).expect("checked by Capabilities::requires");
    session_db::testing::mysql_store(&url, "demo")
        .await
        .expect("mysql")
}

async fn file() -> Guarded<FileStore, tempfile::TempDir> {
    let dir = tempfile::tempdir().expect("dir");
    Guarded::new(FileStore::new(dir.path()).expect("file store"), dir)
}

demo_tests!(
    memory,
    Capabilities::new(),
    || async { MemoryStore::new() },
    owner_demo_sign_out_everywhere_else
);
demo_tests!(
    sqlite,
    Capabilities::new(),
    sqlite,
    owner_demo_sign_out_everywhere_else
);
demo_tests!(
    signed_sqlite,
    Capabilities::new(),
    signed_sqlite,
    owner_demo_sign_out_everywhere_else
);
demo_tests!(
    django_sqlite,
    Capabilities::new().requires(Service::Django),
    django_sqlite
);
demo_tests!(
    file,
    Capabilities::new(),
    file,
    owner_demo_sign_out_everywhere_else
);
demo_tests!(
    postgres,
    Capabilities::new().requires(Service::Postgres),
    postgres,
    owner_demo_sign_out_everywhere_else
);
demo_tests!(
    mysql,
    Capabilities::new().requires(Service::MySql),
    mysql,
    owner_demo_sign_out_everywhere_else
);
demo_tests!(
    redis,
    Capabilities::new().requires(Service::Redis),
    || async { redis() },
    owner_demo_sign_out_everywhere_else
);
demo_tests!(
    cached,
    Capabilities::new()
        .requires(Service::Redis)
        .requires(Service::Postgres),
    || async { CachedStore::new(redis(), postgres().await) },
    owner_demo_sign_out_everywhere_else
);
