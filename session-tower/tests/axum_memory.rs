//! The middleware in a real axum `Router`, driven through `tower::ServiceExt::oneshot`, on
//! `MemoryStore`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, Response, StatusCode, header};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use session_core::{MemoryStore, Session, SessionConfig, SessionStore};
use session_testkit::{CountingStore, Faults, FaultyStore};
use session_tower::SessionLayer;
use tower::ServiceExt;

async fn login(session: Session) -> StatusCode {
    session.cycle_key().await.expect("cycle_key");
    session.insert("user_id", 123).await.expect("insert");
    session
        .insert("username", "john_doe")
        .await
        .expect("insert");
    StatusCode::OK
}

async fn whoami(session: Session) -> String {
    let name = session.get::<String>("username").await.expect("get");
    name.unwrap_or_else(|| "anonymous".into())
}

async fn logout(session: Session) -> StatusCode {
    session.flush().await.expect("flush");
    StatusCode::OK
}

async fn broken(session: Session) -> StatusCode {
    session.insert("half", "done").await.expect("insert");
    StatusCode::INTERNAL_SERVER_ERROR
}

async fn health() -> &'static str {
    "ok"
}

fn routes() -> Router {
    Router::new()
        .route("/login", post(login))
        .route("/whoami", get(whoami))
        .route("/logout", post(logout))
        .route("/broken", get(broken))
        .route("/health", get(health))
}

fn app(store: Arc<dyn SessionStore>) -> Router {
    routes().layer(SessionLayer::new(store, SessionConfig::default()))
}

async fn send(app: &Router, method: &str, uri: &str, cookies: &[&str]) -> Response<Body> {
    let mut request = Request::builder().method(method).uri(uri);
    for cookie in cookies {
        request = request.header(header::COOKIE, *cookie);
    }
    let request = request.body(Body::empty()).expect("request");
    app.clone().oneshot(request).await.expect("infallible")
}

fn set_cookie(response: &Response<Body>) -> Option<String> {
    let values: Vec<_> = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .collect();
    assert!(values.len() <= 1, "at most one Set-Cookie: {values:?}");
    values
        .first()
        .map(|v| v.to_str().expect("ascii").to_owned())
}

/// `name=value` of a Set-Cookie header, as the browser sends it back.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().expect("pair").to_owned()
}

async fn body_text(response: Response<Body>) -> String {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

fn varies_on_cookie(response: &Response<Body>) -> bool {
    response
        .headers()
        .get_all(header::VARY)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains("Cookie")))
}

#[tokio::test]
async fn memory_login_then_next_request_reads_through_cookie() {
    let app = app(Arc::new(MemoryStore::new()));
    let response = send(&app, "POST", "/login", &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let header = set_cookie(&response).expect("login sets the cookie");
    assert!(
        header.contains("HttpOnly") && header.contains("SameSite=Lax"),
        "{header}"
    );
    assert!(varies_on_cookie(&response));

    let response = send(&app, "GET", "/whoami", &[&cookie_pair(&header)]).await;
    assert_eq!(
        set_cookie(&response),
        None,
        "a read-only request sets no cookie"
    );
    assert!(varies_on_cookie(&response));
    assert_eq!(body_text(response).await, "john_doe");
}

#[tokio::test]
async fn memory_logout_removes_cookie_and_session() {
    let store = Arc::new(MemoryStore::new());
    let app = app(store.clone());
    let header = set_cookie(&send(&app, "POST", "/login", &[]).await).expect("cookie");
    let pair = cookie_pair(&header);

    let response = send(&app, "POST", "/logout", &[&pair]).await;
    let removal = set_cookie(&response).expect("logout removes the cookie");
    assert!(removal.starts_with("sessionid=;"), "{removal}");
    assert!(removal.contains("Max-Age=0"), "{removal}");
    assert!(store.is_empty());

    let response = send(&app, "GET", "/whoami", &[&pair]).await;
    assert_eq!(
        body_text(response).await,
        "anonymous",
        "the old key no longer loads"
    );
}

#[tokio::test]
async fn memory_server_error_saves_nothing() {
    let store = Arc::new(MemoryStore::new());
    let app = app(store.clone());
    let response = send(&app, "GET", "/broken", &[]).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(set_cookie(&response), None);
    assert!(store.is_empty());
}

#[tokio::test]
async fn memory_reads_two_cookie_headers() {
    let app = app(Arc::new(MemoryStore::new()));
    let header = set_cookie(&send(&app, "POST", "/login", &[]).await).expect("cookie");
    let pair = cookie_pair(&header);
    let response = send(&app, "GET", "/whoami", &["theme=dark; lang=en", &pair]).await;
    assert_eq!(body_text(response).await, "john_doe");
}

#[tokio::test]
async fn memory_untouched_handler_costs_no_store_call() {
    let counting = Arc::new(CountingStore::new(MemoryStore::new()));
    let app = app(counting.clone());
    let header = set_cookie(&send(&app, "POST", "/login", &[]).await).expect("cookie");
    counting.reset();

    for cookies in [vec![], vec![cookie_pair(&header)]] {
        let cookies: Vec<&str> = cookies.iter().map(String::as_str).collect();
        let response = send(&app, "GET", "/health", &cookies).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(set_cookie(&response), None);
        assert!(!varies_on_cookie(&response));
    }
    assert_eq!(counting.counts().total(), 0);
}

#[tokio::test]
async fn memory_missing_layer_is_a_500_naming_the_layer() {
    let response = send(&routes(), "GET", "/whoami", &[]).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body_text(response).await.contains("SessionLayer"));
}

#[derive(Clone)]
struct AppState {
    greeting: &'static str,
}

async fn greet(State(state): State<AppState>, session: Session) -> String {
    let name = session.get::<String>("username").await.expect("get");
    format!("{} {}", state.greeting, name.unwrap_or_default())
}

#[tokio::test]
async fn memory_works_with_nested_routers_and_state() {
    let api = Router::new()
        .route("/greet", get(greet))
        .with_state(AppState { greeting: "hello" });
    let app = Router::new()
        .route("/login", post(login))
        .nest("/api", api)
        .layer(SessionLayer::new(
            MemoryStore::new(),
            SessionConfig::default(),
        ));
    let header = set_cookie(&send(&app, "POST", "/login", &[]).await).expect("cookie");
    let response = send(&app, "GET", "/api/greet", &[&cookie_pair(&header)]).await;
    assert_eq!(body_text(response).await, "hello john_doe");
}

#[tokio::test]
async fn memory_store_failure_on_save_is_a_503() {
    let faulty = Arc::new(FaultyStore::new(MemoryStore::new()));
    let app = app(faulty.clone());
    faulty.set_faults(Faults::Writes);
    let response = send(&app, "POST", "/login", &[]).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(set_cookie(&response), None);
}

async fn slow_update(session: Session) -> StatusCode {
    session.get::<String>("username").await.expect("get");
    // A logout in another request lands while this one works.
    let store = SLOW_STORE.get().expect("store");
    store
        .delete(&session.session_key().expect("key").record_id())
        .await
        .expect("delete");
    session.insert("cart", "full").await.expect("insert");
    StatusCode::OK
}

static SLOW_STORE: std::sync::OnceLock<Arc<MemoryStore>> = std::sync::OnceLock::new();

#[tokio::test]
async fn memory_save_after_concurrent_logout_is_a_400() {
    let store = SLOW_STORE
        .get_or_init(|| Arc::new(MemoryStore::new()))
        .clone();
    let app = routes()
        .route("/slow", post(slow_update))
        .layer(SessionLayer::new(store.clone(), SessionConfig::default()));
    let header = set_cookie(&send(&app, "POST", "/login", &[]).await).expect("cookie");
    let response = send(&app, "POST", "/slow", &[&cookie_pair(&header)]).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let removal = set_cookie(&response).expect("removal cookie");
    assert!(removal.contains("Max-Age=0"));
    assert!(store.is_empty(), "the logout stays a logout");
}

async fn send_raw(app: &Router, uri: &str, cookie: &[u8]) -> Response<Body> {
    let value = header::HeaderValue::from_bytes(cookie).expect("a header value");
    let request = Request::builder()
        .uri(uri)
        .header(header::COOKIE, value)
        .body(Body::empty())
        .expect("request");
    app.clone().oneshot(request).await.expect("infallible")
}

#[tokio::test]
async fn memory_non_ascii_cookie_header_keeps_the_session() {
    let app = app(Arc::new(MemoryStore::new()));
    let header = set_cookie(&send(&app, "POST", "/login", &[]).await).expect("cookie");
    let pair = cookie_pair(&header);
    for cookie in [
        format!("pref=café; {pair}").into_bytes(),
        [&b"raw=\xff\x80; "[..], pair.as_bytes()].concat(),
    ] {
        let response = send_raw(&app, "/whoami", &cookie).await;
        assert_eq!(set_cookie(&response), None, "no new key over the real one");
        assert_eq!(body_text(response).await, "john_doe");
    }
}

#[tokio::test]
async fn memory_planted_unknown_cookie_does_not_log_out() {
    let app = app(Arc::new(MemoryStore::new()));
    let header = set_cookie(&send(&app, "POST", "/login", &[]).await).expect("cookie");
    let live = cookie_pair(&header);
    let planted = format!(
        "sessionid={}",
        session_core::SessionKey::generate().expose_secret()
    );
    for cookies in [
        vec![format!("{planted}; {live}")],
        vec![format!("{live}; {planted}")],
        vec![planted.clone(), live.clone()],
    ] {
        let cookies: Vec<&str> = cookies.iter().map(String::as_str).collect();
        let response = send(&app, "GET", "/whoami", &cookies).await;
        assert_eq!(
            set_cookie(&response),
            None,
            "no removal cookie: {cookies:?}"
        );
        assert_eq!(body_text(response).await, "john_doe", "{cookies:?}");
    }
}

async fn visits(session: Session) -> Result<String, session_core::SessionError> {
    let count = session.get::<u64>("visits").await?.unwrap_or(0) + 1;
    session.insert("visits", count).await?;
    Ok(format!("visit number {count}"))
}

#[tokio::test]
async fn memory_handler_session_error_is_a_503_with_plain_text() {
    let faulty = Arc::new(FaultyStore::new(MemoryStore::new()));
    let app = routes()
        .route("/visits", get(visits))
        .layer(SessionLayer::new(faulty.clone(), SessionConfig::default()));
    let header = set_cookie(&send(&app, "GET", "/visits", &[]).await).expect("cookie");
    faulty.set_faults(Faults::All);
    let response = send(&app, "GET", "/visits", &[&cookie_pair(&header)]).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/plain; charset=utf-8"
    );
    assert_eq!(set_cookie(&response), None);
    assert_eq!(
        body_text(response).await,
        "The session store is unavailable. Please try again."
    );
}

#[tokio::test]
async fn memory_layer_503_and_400_have_the_same_bodies_as_handler_errors() {
    let faulty = Arc::new(FaultyStore::new(MemoryStore::new()));
    let app = app(faulty.clone());
    faulty.set_faults(Faults::Writes);
    let response = send(&app, "POST", "/login", &[]).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let unavailable = session_core::SessionError::Poisoned;
    assert_eq!(body_text(response).await, unavailable.http_body());

    let store = SLOW_STORE
        .get_or_init(|| Arc::new(MemoryStore::new()))
        .clone();
    let app = routes()
        .route("/slow", post(slow_update))
        .layer(SessionLayer::new(store, SessionConfig::default()));
    let header = set_cookie(&send(&app, "POST", "/login", &[]).await).expect("cookie");
    let response = send(&app, "POST", "/slow", &[&cookie_pair(&header)]).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        body_text(response).await,
        session_core::SessionError::Interrupted.http_body()
    );
}

async fn grow(session: Session) -> Result<&'static str, session_core::SessionError> {
    session.insert("blob", "x".repeat(2 << 20)).await?;
    Ok("grown")
}

#[tokio::test]
async fn memory_oversized_session_is_a_500_and_keeps_the_record() {
    let store = Arc::new(MemoryStore::new());
    let app = routes()
        .route("/grow", post(grow))
        .layer(SessionLayer::new(store.clone(), SessionConfig::default()));
    let header = set_cookie(&send(&app, "POST", "/login", &[]).await).expect("cookie");
    let pair = cookie_pair(&header);
    let response = send(&app, "POST", "/grow", &[&pair]).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(set_cookie(&response), None);
    let response = send(&app, "GET", "/whoami", &[&pair]).await;
    assert_eq!(
        body_text(response).await,
        "john_doe",
        "the record is as it was"
    );
}

#[test]
fn memory_cookie_prefix_rules_are_checked_at_start() {
    let refused = [
        SessionConfig::new().cookie_name("__Secure-id"),
        SessionConfig::new()
            .cookie_name("__Host-id")
            .cookie_secure(true)
            .cookie_path("/app"),
        SessionConfig::new()
            .cookie_name("__Host-id")
            .cookie_secure(true)
            .cookie_domain(Some("example.com".into())),
        SessionConfig::new().cookie_name("session id"),
        SessionConfig::new().touch_threshold(Some(f64::NAN)),
    ];
    for config in refused {
        let error = SessionLayer::try_new(MemoryStore::new(), config.clone())
            .expect_err("an invalid configuration is refused at start");
        assert!(
            error.to_string().contains("cookie_") || error.to_string().contains("touch_threshold"),
            "{error}"
        );
    }
    let fine = SessionConfig::new()
        .cookie_name("__Host-id")
        .cookie_secure(true);
    assert!(SessionLayer::try_new(MemoryStore::new(), fine).is_ok());
}

#[tokio::test]
async fn memory_layer_runs_the_cleanup_while_it_lives() {
    let store = MemoryStore::new();
    let expired = session_core::Record::new(
        session_core::SessionKey::generate().record_id(),
        "{}",
        session_core::time::OffsetDateTime::now_utc() - session_core::time::Duration::hours(1),
    );
    store.create(&expired).await.expect("create");
    assert_eq!(store.len(), 1);
    // One store, cheaply cloned: the layer, its cleanup task and this test share it.
    let layer = SessionLayer::new(store.clone(), SessionConfig::default())
        .with_cleanup(std::time::Duration::from_millis(20));
    let app = routes().layer(layer);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !store.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the cleanup never ran"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    drop(app);
    tokio::task::yield_now().await;
    // Stopped with the layer: a new expired record stays.
    store.create(&expired).await.expect("create again");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(store.len(), 1, "the cleanup task outlived the layer");
}
