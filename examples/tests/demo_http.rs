//! The demo's router over HTTP (through `tower::ServiceExt::oneshot`), on every engine:
//! memory, SQLite, PostgreSQL, MariaDB, files, Redis and cached_db.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use axum::routing::post;
use http_body_util::BodyExt;
use session_cache::{CachedStore, RedisConfig, RedisStore};
use session_core::time::OffsetDateTime;
use session_core::{MemoryStore, Session, SessionConfig, SessionKey, SessionManager, SessionStore};
use session_db::{PostgresStore, SqliteStore};
use session_file::FileStore;
use session_testkit::services::{self, Service};
use session_testkit::{Caps, Ctx, Guarded, run_case};
use session_tower::SessionLayer;
use tower::ServiceExt;

/// A browser in miniature: remembers the session cookie between requests.
struct Client {
    app: Router,
    cookie: Option<String>,
}

struct Reply {
    status: StatusCode,
    set_cookie: Option<String>,
    body: String,
}

impl Client {
    fn new(app: Router) -> Self {
        Self { app, cookie: None }
    }

    async fn send(&mut self, method: &str, uri: &str, form: Option<&str>) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(cookie) = &self.cookie {
            request = request.header(header::COOKIE, format!("sessionid={cookie}"));
        }
        let body = match form {
            Some(form) => {
                request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Body::from(form.to_owned())
            }
            None => Body::empty(),
        };
        let response: Response<Body> = self
            .app
            .clone()
            .oneshot(request.body(body).expect("request"))
            .await
            .expect("infallible");
        let status = response.status();
        let set_cookie = response
            .headers()
            .get(header::SET_COOKIE)
            .map(|v| v.to_str().expect("ascii").to_owned());
        if let Some(header) = &set_cookie {
            let value = header
                .split(';')
                .next()
                .and_then(|pair| pair.strip_prefix("sessionid="))
                .expect("a sessionid cookie");
            let removed = header.contains("Max-Age=0");
            self.cookie = (!removed).then(|| value.to_owned());
        }
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        Reply {
            status,
            set_cookie,
            body: String::from_utf8(bytes.to_vec()).expect("utf-8"),
        }
    }

    fn key(&self) -> SessionKey {
        SessionKey::parse(self.cookie.as_deref().expect("a cookie")).expect("a session key")
    }
}

fn demo(ctx: &Ctx) -> Router {
    let manager =
        SessionManager::from_shared(ctx.store().clone(), Arc::new(SessionConfig::default()));
    examples::app(manager)
}

async fn login(client: &mut Client) {
    let reply = client
        .send("POST", "/login", Some("user_id=123&username=john_doe"))
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert!(reply.set_cookie.is_some(), "login sets the cookie");
}

/// Login sets a cookie under a new key, and the profile shows the name.
async fn demo_login_shows_the_name(ctx: Ctx) {
    let mut client = Client::new(demo(&ctx));
    client.send("GET", "/", None).await;
    let before = client.key();
    login(&mut client).await;
    assert_ne!(client.key(), before, "the key changes at login");
    assert!(
        ctx.store()
            .load(&before.record_id())
            .await
            .expect("load")
            .is_none()
    );
    let profile = client.send("GET", "/profile", None).await;
    assert!(
        profile
            .body
            .contains(r#"<strong id="user">john_doe</strong>"#),
        "{}",
        profile.body
    );
    assert!(profile.body.contains(r#"<span id="user_id">123</span>"#));
}

/// Logout removes the cookie and the old key no longer loads.
async fn demo_logout_removes_cookie(ctx: Ctx) {
    let mut client = Client::new(demo(&ctx));
    login(&mut client).await;
    let key = client.key();
    let reply = client.send("POST", "/logout", None).await;
    let removal = reply.set_cookie.expect("logout removes the cookie");
    assert!(removal.contains("Max-Age=0"), "{removal}");
    assert!(
        ctx.store()
            .load(&key.record_id())
            .await
            .expect("load")
            .is_none()
    );
    client.cookie = Some(key.expose_secret().to_owned());
    let profile = client.send("GET", "/profile", None).await;
    assert!(profile.body.contains("Not logged in."));
    assert!(
        profile.set_cookie.is_some_and(|c| c.contains("Max-Age=0")),
        "the stale cookie is removed"
    );
}

/// The counter counts, and the expiry shows Django's default age.
async fn demo_counter_counts(ctx: Ctx) {
    let mut client = Client::new(demo(&ctx));
    for expected in 1..=3 {
        let page = client.send("GET", "/", None).await;
        assert!(
            page.body
                .contains(&format!(r#"<strong id="visits">{expected}</strong>"#)),
            "{}",
            page.body
        );
    }
    let page = client.send("GET", "/", None).await;
    assert!(
        page.body
            .contains(r#"<span id="expiry-age">1209600</span>"#)
    );
    client.send("POST", "/expiry", Some("expiry=hour")).await;
    let page = client.send("GET", "/", None).await;
    assert!(
        page.body.contains(r#"<span id="expiry-age">3600</span>"#),
        "{}",
        page.body
    );
}

/// An expired session shows the logged-out page.
async fn demo_expired_session_is_logged_out(ctx: Ctx) {
    let mut client = Client::new(demo(&ctx));
    login(&mut client).await;
    let past = OffsetDateTime::now_utc() - session_core::time::Duration::seconds(1);
    ctx.store()
        .touch(&client.key().record_id(), past)
        .await
        .expect("expire the record");
    let profile = client.send("GET", "/profile", None).await;
    assert!(profile.body.contains("Not logged in."), "{}", profile.body);
}

async fn slow_update(session: Session) -> StatusCode {
    let _ = session.get::<String>("username").await.expect("load");
    tokio::time::sleep(Duration::from_millis(300)).await;
    session.insert("cart", "full").await.expect("insert");
    StatusCode::OK
}

/// A logout racing a slow request on the same session leaves it logged out.
async fn demo_logout_beats_a_slow_request(ctx: Ctx) {
    let manager =
        SessionManager::from_shared(ctx.store().clone(), Arc::new(SessionConfig::default()));
    let app = examples::routes()
        .route("/slow", post(slow_update))
        .layer(SessionLayer::from_manager(manager));
    let mut client = Client::new(app.clone());
    login(&mut client).await;
    let key = client.key();
    let mut slow = Client {
        app: app.clone(),
        cookie: client.cookie.clone(),
    };
    let slow = tokio::spawn(async move { slow.send("POST", "/slow", None).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    client.send("POST", "/logout", None).await;
    let slow = slow.await.expect("task");
    assert_eq!(
        slow.status,
        StatusCode::BAD_REQUEST,
        "the slow request is interrupted"
    );
    assert!(
        ctx.store()
            .load(&key.record_id())
            .await
            .expect("load")
            .is_none()
    );
    client.cookie = Some(key.expose_secret().to_owned());
    let profile = client.send("GET", "/profile", None).await;
    assert!(profile.body.contains("Not logged in."));
}

macro_rules! demo_tests {
    ($engine:ident, $caps:expr, $factory:expr) => {
        mod $engine {
            use super::*;

            #[test]
            fn demo_login_shows_the_name() {
                run_case(
                    stringify!($engine),
                    $caps,
                    $factory,
                    super::demo_login_shows_the_name,
                );
            }
            #[test]
            fn demo_logout_removes_cookie() {
                run_case(
                    stringify!($engine),
                    $caps,
                    $factory,
                    super::demo_logout_removes_cookie,
                );
            }
            #[test]
            fn demo_counter_counts() {
                run_case(
                    stringify!($engine),
                    $caps,
                    $factory,
                    super::demo_counter_counts,
                );
            }
            #[test]
            fn demo_expired_session_is_logged_out() {
                run_case(
                    stringify!($engine),
                    $caps,
                    $factory,
                    super::demo_expired_session_is_logged_out,
                );
            }
            #[test]
            fn demo_logout_beats_a_slow_request() {
                run_case(
                    stringify!($engine),
                    $caps,
                    $factory,
                    super::demo_logout_beats_a_slow_request,
                );
            }
        }
    };
}

fn redis() -> RedisStore {
    let url = services::url(Service::Redis).expect("checked by Caps::requires");
    let config = RedisConfig {
        prefix: session_testkit::unique_name("demo"),
        ..RedisConfig::default()
    };
    RedisStore::connect(&url, config).expect("redis")
}

async fn postgres() -> PostgresStore {
    let url = services::url(Service::Postgres).expect("checked by Caps::requires");
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

async fn file() -> Guarded<FileStore, tempfile::TempDir> {
    let dir = tempfile::tempdir().expect("dir");
    Guarded::new(FileStore::new(dir.path()).expect("file store"), dir)
}

demo_tests!(memory, Caps::new(), || async { MemoryStore::new() });
demo_tests!(sqlite, Caps::new(), sqlite);
demo_tests!(file, Caps::new(), file);
demo_tests!(postgres, Caps::new().requires(Service::Postgres), postgres);
demo_tests!(mysql, Caps::new().requires(Service::MySql), || async {
    let url = services::url(Service::MySql).expect("checked by Caps::requires");
    session_db::testing::mysql_store(&url, "demo")
        .await
        .expect("mysql")
});
demo_tests!(redis, Caps::new().requires(Service::Redis), || async {
    redis()
});
demo_tests!(
    cached,
    Caps::new()
        .requires(Service::Redis)
        .requires(Service::Postgres),
    || async { CachedStore::new(redis(), postgres().await) }
);
