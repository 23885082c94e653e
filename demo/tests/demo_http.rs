//! The demo's router over HTTP (through `tower::ServiceExt::oneshot`), on every engine:
//! memory, SQLite, PostgreSQL, MariaDB, files, Redis and cached_db. The client plays a
//! browser: it keeps the session cookie and sends the CSRF token of the last page it saw
//! with every form it posts.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, Response, StatusCode, header};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use session_cache::{CachedStore, RedisConfig, RedisStore};
use session_core::time::OffsetDateTime;
use session_core::{MemoryStore, Session, SessionConfig, SessionKey, SessionManager, SessionStore};
use session_db::{PostgresStore, SqliteStore};
use session_file::FileStore;
use session_testkit::services::{self, Service};
use session_testkit::{Capabilities, CaseContext, Guarded, run_case};
use session_tower::SessionLayer;
use tower::ServiceExt;

/// A browser in miniature: remembers the session cookie between requests, and the CSRF
/// token of the last page that carried one.
struct Client {
    app: Router,
    cookie: Option<String>,
    csrf: Option<String>,
    user_agent: Option<&'static str>,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    set_cookie: Option<String>,
    body: String,
}

/// The value of the first hidden `csrf_token` field in a page.
fn csrf_token_in(body: &str) -> Option<String> {
    let start = body.find(r#"name="csrf_token" value=""#)? + r#"name="csrf_token" value=""#.len();
    let rest = &body[start..];
    Some(rest[..rest.find('"')?].to_owned())
}

impl Client {
    fn new(app: Router) -> Self {
        Self {
            app,
            cookie: None,
            csrf: None,
            user_agent: None,
        }
    }

    /// Posts a form as a browser submits it from the last page: with its CSRF token.
    async fn post(&mut self, uri: &str, form: &str) -> Reply {
        let mut body = form.to_owned();
        if let Some(token) = &self.csrf {
            if !body.is_empty() {
                body.push('&');
            }
            body.push_str("csrf_token=");
            body.push_str(token);
        }
        self.send("POST", uri, Some(&body)).await
    }

    async fn send(&mut self, method: &str, uri: &str, form: Option<&str>) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(cookie) = &self.cookie {
            request = request.header(header::COOKIE, format!("sessionid={cookie}"));
        }
        if let Some(user_agent) = self.user_agent {
            request = request.header(header::USER_AGENT, user_agent);
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
        let headers = response.headers().clone();
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
        let body = String::from_utf8(bytes.to_vec()).expect("utf-8");
        if let Some(token) = csrf_token_in(&body) {
            self.csrf = Some(token);
        }
        Reply {
            status,
            headers,
            set_cookie,
            body,
        }
    }

    fn key(&self) -> SessionKey {
        SessionKey::parse(self.cookie.as_deref().expect("a cookie")).expect("a session key")
    }
}

fn demo(ctx: &CaseContext) -> Router {
    let manager =
        SessionManager::from_shared(ctx.store().clone(), Arc::new(SessionConfig::default()));
    demo::app(manager)
}

async fn login(client: &mut Client) {
    login_as(client, 123, "john_doe").await;
}

/// Logs in through the form, as a browser does: the home page first when no page with the
/// form was seen yet, then the profile the login redirects to.
async fn login_as(client: &mut Client, user_id: i64, username: &str) {
    if client.csrf.is_none() {
        client.send("GET", "/", None).await;
    }
    let reply = client
        .post("/login", &format!("user_id={user_id}&username={username}"))
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert!(reply.set_cookie.is_some(), "login sets the cookie");
    let profile = client.send("GET", "/profile", None).await;
    assert!(
        profile
            .body
            .contains(&format!(r#"<strong id="user">{username}</strong>"#)),
        "{}",
        profile.body
    );
}

/// Whether the record of `key` is live in the store.
async fn is_live(ctx: &CaseContext, key: &SessionKey) -> bool {
    ctx.store()
        .load(&ctx.id_of(key))
        .await
        .expect("load")
        .is_some()
}

/// Login sets a cookie under a new key, and the profile shows the name.
async fn demo_login_shows_the_name(ctx: CaseContext) {
    let mut client = Client::new(demo(&ctx));
    client.send("GET", "/", None).await;
    let before = client.key();
    login(&mut client).await;
    assert_ne!(client.key(), before, "the key changes at login");
    assert!(
        ctx.store()
            .load(&ctx.id_of(&before))
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
async fn demo_logout_removes_cookie(ctx: CaseContext) {
    let mut client = Client::new(demo(&ctx));
    login(&mut client).await;
    let key = client.key();
    let reply = client.post("/logout", "").await;
    let removal = reply.set_cookie.expect("logout removes the cookie");
    assert!(removal.contains("Max-Age=0"), "{removal}");
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
    assert!(
        profile.set_cookie.is_some_and(|c| c.contains("Max-Age=0")),
        "the stale cookie is removed"
    );
}

/// The counter counts, and the expiry shows Django's default age.
async fn demo_counter_counts(ctx: CaseContext) {
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
    client.post("/expiry", "expiry=hour").await;
    let page = client.send("GET", "/", None).await;
    assert!(
        page.body.contains(r#"<span id="expiry-age">3600</span>"#),
        "{}",
        page.body
    );
}

/// An expired session shows the logged-out page.
async fn demo_expired_session_is_logged_out(ctx: CaseContext) {
    let mut client = Client::new(demo(&ctx));
    login(&mut client).await;
    let past = OffsetDateTime::now_utc() - session_core::time::Duration::seconds(1);
    ctx.store()
        .touch(&ctx.id_of(&client.key()), past)
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
        app: app.clone(),
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

/// A POST without the page's CSRF token (missing, wrong, or another session's) is refused
/// with a short 403 page and changes nothing.
async fn demo_post_without_csrf_token_is_forbidden(ctx: CaseContext) {
    let mut client = Client::new(demo(&ctx));
    login(&mut client).await;
    let key = client.key();
    let mut other = Client::new(demo(&ctx));
    other.send("GET", "/", None).await;
    let foreign = other.csrf.clone().expect("a token on the home page");
    assert_ne!(
        Some(&foreign),
        client.csrf.as_ref(),
        "tokens are per session"
    );

    for (uri, form) in [
        ("/logout", String::new()),
        ("/logout", "csrf_token=".to_owned()),
        (
            "/logout",
            "csrf_token=0123456789abcdefghijklmnopqrstuv".to_owned(),
        ),
        ("/logout", format!("csrf_token={foreign}")),
        ("/expiry", "expiry=hour".to_owned()),
        ("/login", "user_id=9&username=mallory".to_owned()),
        (
            "/login",
            format!("user_id=9&username=mallory&csrf_token={foreign}"),
        ),
    ] {
        let reply = client.send("POST", uri, Some(&form)).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{uri} {form}");
        assert!(
            reply.body.contains("<html") && reply.body.contains("CSRF"),
            "{}",
            reply.body
        );
        assert!(reply.body.len() < 2000, "a short page");
        assert!(
            reply.set_cookie.is_none(),
            "{uri} {form}: {:?}",
            reply.set_cookie
        );
    }
    assert_eq!(client.key(), key);
    let profile = client.send("GET", "/profile", None).await;
    assert!(
        profile
            .body
            .contains(r#"<strong id="user">john_doe</strong>"#)
    );
    assert!(
        profile
            .body
            .contains(r#"<span id="expiry-age">1209600</span>"#)
    );

    // A browser with no session at all cannot be logged in from another site either.
    let mut stranger = Client::new(demo(&ctx));
    let reply = stranger
        .send("POST", "/login", Some("user_id=9&username=mallory"))
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.set_cookie.is_none());
}

/// `GET /logout` (a link, an image, a prefetch) does not log out: 405 with a page whose
/// button logs out with a POST.
async fn demo_logout_needs_post(ctx: CaseContext) {
    let mut client = Client::new(demo(&ctx));
    login(&mut client).await;
    let key = client.key();
    let reply = client.send("GET", "/logout", None).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        reply.headers.get(header::ALLOW).map(|v| v.as_bytes()),
        Some(&b"POST"[..])
    );
    assert!(reply.set_cookie.is_none(), "{:?}", reply.set_cookie);
    assert!(
        reply
            .body
            .contains(r#"<form method="post" action="/logout">"#),
        "{}",
        reply.body
    );
    assert!(is_live(&ctx, &key).await);
    let profile = client.send("GET", "/profile", None).await;
    assert!(
        profile
            .body
            .contains(r#"<strong id="user">john_doe</strong>"#)
    );

    // Without a session, the page starts none.
    let mut stranger = Client::new(demo(&ctx));
    let reply = stranger.send("GET", "/logout", None).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(reply.set_cookie.is_none() && reply.body.contains("not logged in"));

    // The page's own button logs out.
    client.send("GET", "/logout", None).await;
    let reply = client.post("/logout", "").await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert!(!is_live(&ctx, &key).await);
}

/// Missing or invalid fields give a short HTML page with 400 saying what is wrong, never
/// axum's plain-text deserialization error, and change nothing.
async fn demo_bad_form_is_a_400_page(ctx: CaseContext) {
    let mut client = Client::new(demo(&ctx));
    login(&mut client).await;
    let key = client.key();
    for (uri, form, says) in [
        ("/login", "username=ann", "user id"),
        ("/login", "user_id=abc&username=ann", "whole number"),
        ("/login", "user_id=1", "user name"),
        ("/login", "user_id=1&username=", "user name"),
        ("/login", "user_id=1&username=%20%20", "user name"),
        ("/expiry", "", "expiry"),
        ("/expiry", "expiry=forever", "forever"),
    ] {
        let reply = client.post(uri, form).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{uri} {form}");
        assert_eq!(
            reply
                .headers
                .get(header::CONTENT_TYPE)
                .map(|v| v.as_bytes()),
            Some(&b"text/html; charset=utf-8"[..]),
            "{uri} {form}"
        );
        assert!(reply.body.contains(says), "{uri} {form}: {}", reply.body);
        assert!(!reply.body.contains("deserialize"), "{}", reply.body);
        assert!(reply.set_cookie.is_none());
    }
    // A body that is not a form at all.
    let token = client.csrf.clone().expect("token");
    let mut request = Request::builder()
        .method("POST")
        .uri("/login")
        .header(header::COOKIE, format!("sessionid={}", key.expose_secret()));
    request = request.header(header::CONTENT_TYPE, "application/json");
    let body = format!(r#"{{"csrf_token":"{token}","user_id":1,"username":"ann"}}"#);
    let response = client
        .app
        .clone()
        .oneshot(request.body(Body::from(body)).expect("request"))
        .await
        .expect("infallible");
    assert!(response.status().is_client_error(), "{}", response.status());
    assert_eq!(
        response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.as_bytes()),
        Some(&b"text/html; charset=utf-8"[..])
    );
    assert_eq!(client.key(), key);
    let profile = client.send("GET", "/profile", None).await;
    assert!(
        profile
            .body
            .contains(r#"<strong id="user">john_doe</strong>"#)
    );
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
            #[test]
            fn demo_login_as_another_user_starts_afresh() {
                run_case(
                    stringify!($engine),
                    $caps,
                    $factory,
                    super::demo_login_as_another_user_starts_afresh,
                );
            }
            #[test]
            fn demo_login_again_keeps_the_data() {
                run_case(
                    stringify!($engine),
                    $caps,
                    $factory,
                    super::demo_login_again_keeps_the_data,
                );
            }
            #[test]
            fn demo_post_without_csrf_token_is_forbidden() {
                run_case(
                    stringify!($engine),
                    $caps,
                    $factory,
                    super::demo_post_without_csrf_token_is_forbidden,
                );
            }
            #[test]
            fn demo_logout_needs_post() {
                run_case(
                    stringify!($engine),
                    $caps,
                    $factory,
                    super::demo_logout_needs_post,
                );
            }
            #[test]
            fn demo_bad_form_is_a_400_page() {
                run_case(
                    stringify!($engine),
                    $caps,
                    $factory,
                    super::demo_bad_form_is_a_400_page,
                );
            }
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

async fn file() -> Guarded<FileStore, tempfile::TempDir> {
    let dir = tempfile::tempdir().expect("dir");
    Guarded::new(FileStore::new(dir.path()).expect("file store"), dir)
}

/// "Your sessions" and "Sign out everywhere else": two browsers log in as one user; the
/// first sees both sessions (itself marked, each browser named), signs out the other, which
/// is logged out on its next request, and stays logged in itself.
async fn owner_demo_sign_out_everywhere_else(ctx: CaseContext) {
    let config = SessionConfig::default().record_client(true);
    let manager = SessionManager::from_shared(ctx.store().clone(), Arc::new(config));
    let app = demo::app(manager);
    let mut laptop = Client::new(app.clone());
    laptop.user_agent = Some("Laptop Browser/1.0");
    let mut phone = Client::new(app);
    phone.user_agent = Some("Phone Browser/2.0");
    login(&mut laptop).await;
    login(&mut phone).await;
    let page = laptop.send("GET", "/sessions", None).await;
    assert!(
        page.body
            .contains(r#"<strong id="session-count">2</strong>"#),
        "{}",
        page.body
    );
    assert_eq!(page.body.matches(r#"class="session current""#).count(), 1);
    assert!(
        page.body
            .contains("<strong>This browser:</strong> Laptop Browser/1.0"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("Phone Browser/2.0, last seen"),
        "{}",
        page.body
    );

    // Without the page's token nothing happens.
    let token = laptop.csrf.take();
    let refused = laptop.post("/sessions/end-others", "").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(is_live(&ctx, &phone.key()).await);
    laptop.csrf = token;

    let phone_key = phone.key();
    let reply = laptop.post("/sessions/end-others", "").await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert!(
        !is_live(&ctx, &phone_key).await,
        "the other session is deleted"
    );
    let page = laptop.send("GET", "/sessions", None).await;
    assert!(
        page.body
            .contains(r#"<strong id="session-count">1</strong>"#),
        "{}",
        page.body
    );
    let profile = phone.send("GET", "/profile", None).await;
    assert!(profile.body.contains("Not logged in."), "{}", profile.body);
    assert!(
        profile.set_cookie.is_some_and(|c| c.contains("Max-Age=0")),
        "the phone's cookie is removed"
    );
    let profile = laptop.send("GET", "/profile", None).await;
    assert!(
        profile
            .body
            .contains(r#"<strong id="user">john_doe</strong>"#),
        "this browser stays logged in: {}",
        profile.body
    );
    // Logging out ends this one too.
    let laptop_key = laptop.key();
    laptop.post("/logout", "").await;
    assert!(!is_live(&ctx, &laptop_key).await);
    let page = laptop.send("GET", "/sessions", None).await;
    assert!(page.body.contains("Not logged in."), "{}", page.body);
}

macro_rules! owner_demo_tests {
    ($($engine:ident, $caps:expr, $factory:expr;)*) => {$(
        mod $engine {
            use super::*;

            #[test]
            fn owner_demo_sign_out_everywhere_else() {
                run_case(
                    stringify!($engine),
                    $caps,
                    $factory,
                    super::owner_demo_sign_out_everywhere_else,
                );
            }
        }
    )*};
}

owner_demo_tests! {
    memory_owner, Capabilities::new(), || async { MemoryStore::new() };
    sqlite_owner, Capabilities::new(), sqlite;
    file_owner, Capabilities::new(), file;
    postgres_owner, Capabilities::new().requires(Service::Postgres), postgres;
    mysql_owner, Capabilities::new().requires(Service::MySql), || async {
        let url = services::url(Service::MySql).expect("checked by Capabilities::requires");
        session_db::testing::mysql_store(&url, "demo").await.expect("mysql")
    };
    redis_owner, Capabilities::new().requires(Service::Redis), || async { redis() };
    cached_owner, Capabilities::new().requires(Service::Redis).requires(Service::Postgres),
        || async { CachedStore::new(redis(), postgres().await) };
}

demo_tests!(memory, Capabilities::new(), || async { MemoryStore::new() });
demo_tests!(sqlite, Capabilities::new(), sqlite);
demo_tests!(signed_sqlite, Capabilities::new(), signed_sqlite);
demo_tests!(
    django_sqlite,
    Capabilities::new().requires(Service::Django),
    django_sqlite
);
demo_tests!(file, Capabilities::new(), file);
demo_tests!(
    postgres,
    Capabilities::new().requires(Service::Postgres),
    postgres
);
demo_tests!(
    mysql,
    Capabilities::new().requires(Service::MySql),
    || async {
        let url = services::url(Service::MySql).expect("checked by Capabilities::requires");
        session_db::testing::mysql_store(&url, "demo")
            .await
            .expect("mysql")
    }
);
demo_tests!(
    redis,
    Capabilities::new().requires(Service::Redis),
    || async { redis() }
);
demo_tests!(
    cached,
    Capabilities::new()
        .requires(Service::Redis)
        .requires(Service::Postgres),
    || async { CachedStore::new(redis(), postgres().await) }
);
