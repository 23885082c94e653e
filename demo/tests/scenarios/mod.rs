//! The demo's HTTP scenarios, shared by the axum demo's tests (`demo/tests/demo_http.rs`) and
//! the actix-web demo's (`examples/tests/demo_actix_http.rs`): each including file defines
//! `fn serve(SessionManager) -> App`, the demo on its framework. The client plays a browser:
//! it keeps the session cookie and sends the CSRF token of the last page it saw with every
//! form it posts.

#![allow(dead_code)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use session_core::time::OffsetDateTime;
use session_core::{SessionConfig, SessionKey, SessionManager};
use session_testkit::CaseContext;
use tower::ServiceExt;

/// A demo to send requests to: an axum router called in process, or a server on a port.
#[derive(Clone)]
pub enum App {
    /// The axum app, called through `tower::ServiceExt::oneshot`.
    Router(Router),
    /// A server listening at `base` (`http://127.0.0.1:port`), kept running by `guard`.
    Http {
        base: String,
        client: hyper_util::client::legacy::Client<
            hyper_util::client::legacy::connect::HttpConnector,
            Body,
        >,
        guard: Arc<dyn std::any::Any + Send + Sync>,
    },
}

impl From<Router> for App {
    fn from(router: Router) -> Self {
        Self::Router(router)
    }
}

impl App {
    /// A server at `base`, kept alive (and stopped when the last clone goes) by `guard`.
    pub fn http(base: String, guard: Arc<dyn std::any::Any + Send + Sync>) -> Self {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        Self::Http {
            base,
            client,
            guard,
        }
    }

    /// Sends one request and returns the response with its whole body.
    pub async fn call(&self, request: Request<Body>) -> Response<Body> {
        match self {
            Self::Router(router) => router.clone().oneshot(request).await.expect("infallible"),
            Self::Http { base, client, .. } => {
                let (mut parts, body) = request.into_parts();
                parts.uri = format!("{base}{}", parts.uri).parse().expect("a URI");
                let response = client
                    .request(Request::from_parts(parts, body))
                    .await
                    .expect("the demo server answers");
                let (parts, body) = response.into_parts();
                let bytes = body.collect().await.expect("a body").to_bytes();
                Response::from_parts(parts, Body::from(bytes))
            }
        }
    }
}

/// The demo over the case's store, served by the including test file's framework.
pub fn demo(ctx: &CaseContext) -> App {
    let manager =
        SessionManager::from_shared(ctx.store().clone(), Arc::new(SessionConfig::default()));
    super::serve(manager)
}

impl Client {
    pub fn new(app: impl Into<App>) -> Self {
        Self {
            app: app.into(),
            cookie: None,
            csrf: None,
            user_agent: None,
        }
    }

    /// Posts a form as a browser submits it from the last page: with its CSRF token.
    pub async fn post(&mut self, uri: &str, form: &str) -> Reply {
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

    pub async fn send(&mut self, method: &str, uri: &str, form: Option<&str>) -> Reply {
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
        let response = self.app.call(request.body(body).expect("request")).await;
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

    pub fn key(&self) -> SessionKey {
        SessionKey::parse(self.cookie.as_deref().expect("a cookie")).expect("a session key")
    }
}

/// The value of the first hidden `csrf_token` field in a page.
pub fn csrf_token_in(body: &str) -> Option<String> {
    let start = body.find(r#"name="csrf_token" value=""#)? + r#"name="csrf_token" value=""#.len();
    let rest = &body[start..];
    Some(rest[..rest.find('"')?].to_owned())
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub set_cookie: Option<String>,
    pub body: String,
}

/// A browser in miniature: remembers the session cookie between requests, and the CSRF
/// token of the last page that carried one.
pub struct Client {
    pub app: App,
    pub cookie: Option<String>,
    pub csrf: Option<String>,
    pub user_agent: Option<&'static str>,
}

/// Login sets a cookie under a new key, and the profile shows the name.
pub async fn demo_login_shows_the_name(ctx: CaseContext) {
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
pub async fn demo_logout_removes_cookie(ctx: CaseContext) {
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
pub async fn demo_counter_counts(ctx: CaseContext) {
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
pub async fn demo_expired_session_is_logged_out(ctx: CaseContext) {
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

/// A POST without the page's CSRF token (missing, wrong, or another session's) is refused
/// with a short 403 page and changes nothing.
pub async fn demo_post_without_csrf_token_is_forbidden(ctx: CaseContext) {
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
pub async fn demo_logout_needs_post(ctx: CaseContext) {
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
pub async fn demo_bad_form_is_a_400_page(ctx: CaseContext) {
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
        .call(request.body(Body::from(body)).expect("request"))
        .await;
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

/// "Your sessions" and "Sign out everywhere else": two browsers log in as one user; the
/// first sees both sessions (itself marked, each browser named), signs out the other, which
/// is logged out on its next request, and stays logged in itself.
pub async fn owner_demo_sign_out_everywhere_else(ctx: CaseContext) {
    let config = SessionConfig::default().record_client(true);
    let manager = SessionManager::from_shared(ctx.store().clone(), Arc::new(config));
    let app = super::serve(manager);
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

pub async fn login(client: &mut Client) {
    login_as(client, 123, "john_doe").await;
}

/// Logs in through the form, as a browser does: the home page first when no page with the
/// form was seen yet, then the profile the login redirects to.
pub async fn login_as(client: &mut Client, user_id: i64, username: &str) {
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
pub async fn is_live(ctx: &CaseContext, key: &SessionKey) -> bool {
    ctx.store()
        .load(&ctx.id_of(key))
        .await
        .expect("load")
        .is_some()
}

/// Test functions for scenarios, on one engine: `shared_demo_tests!(@shared caps, factory)`
/// for the scenarios every framework's demo passes, and `shared_demo_tests!(@each [path]
/// caps, factory; case, …)` for more cases, at `path` `scenarios` or `local` (the test file's own).
#[macro_export]
macro_rules! shared_demo_tests {
    (@shared $caps:expr, $factory:expr) => {
        $crate::shared_demo_tests!(@each [scenarios] $caps, $factory;
            demo_login_shows_the_name,
            demo_logout_removes_cookie,
            demo_counter_counts,
            demo_expired_session_is_logged_out,
            demo_post_without_csrf_token_is_forbidden,
            demo_logout_needs_post,
            demo_bad_form_is_a_400_page,
        );
    };
    (@each [scenarios] $caps:expr, $factory:expr; $($case:ident),* $(,)?) => {$(
        #[test]
        fn $case() {
            session_testkit::run_case(
                concat!(module_path!(), "::", stringify!($case)),
                $caps,
                $factory,
                $crate::scenarios::$case,
            );
        }
    )*};
    (@each [local] $caps:expr, $factory:expr; $($case:ident),* $(,)?) => {$(
        #[test]
        fn $case() {
            session_testkit::run_case(
                concat!(module_path!(), "::", stringify!($case)),
                $caps,
                $factory,
                super::$case,
            );
        }
    )*};
}
