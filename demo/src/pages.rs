//! The demo's pages, framework-agnostic: every route of the demo as plain functions over a
//! [`Session`] and the request's method, path, content type and body, answering a
//! [`Reply`]. The axum app ([`crate::app()`]) and the actix-web one (`examples`'s
//! `demo-actix`) are thin glue around [`serve`], so both serve exactly the same pages.
//!
//! | route | does |
//! |---|---|
//! | `GET /` | counts visits in the session; shows who is logged in, the expiry and the forms |
//! | `GET /profile` | the logged-in user; only reads the session (no session starts here) |
//! | `POST /login` | logs in as Django's `login()` does: if the session belongs to another user, `flush` (new key, no data), else `cycle_key` (new key, data kept); then a new CSRF token |
//! | `POST /logout` | `flush`: the record is deleted at once and the cookie removed |
//! | `GET /logout` | does **not** log out (Django 5): 405, and a page with a logout button |
//! | `POST /expiry` | `set_expiry`: `hour`, `browser_close` or `default` |
//! | `GET /sessions` | "Your sessions": the logged-in user's live sessions (this one marked), each with its browser and when it was last seen |
//! | `POST /sessions/end-others` | "Sign out everywhere else": `end_other_sessions`, this session stays |
//!
//! Login sets the session's owner (`set_owner`, the user id), so every engine with an owner
//! index lists and ends a user's sessions; the client-side and Django engines keep none, and
//! the page says so.
//!
//! Every form carries a CSRF synchronizer token: a random value kept in the session under
//! `_csrf_token` and sent back in the hidden field `csrf_token`. A POST whose field does not
//! match (compared in constant time) gets a short 403 page and changes nothing. A form with
//! missing or invalid fields gets a short 400 page saying what is wrong. The logged-in user
//! is `user_id` (the identity login compares, as Django's `_auth_user_id`) and `username`.

use serde::Deserialize;
use session_core::time::Duration;
use session_core::{Expiry, Session, SessionError, SessionKey};
use session_django::auth::DjangoLogin;

/// A request, as the pages need it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `GET`, `POST`, …
    pub method: &'a str,
    /// The path, without the query.
    pub path: &'a str,
    /// The `Content-Type` header, if any.
    pub content_type: Option<&'a str>,
    /// The body.
    pub body: &'a [u8],
}

/// What a page answers: a status, an HTML body (`text/html; charset=utf-8`) or none, and the
/// `Location` or `Allow` header it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The HTML page, if any.
    pub html: Option<String>,
    /// A redirect's `Location`.
    pub location: Option<&'static str>,
    /// A 405's `Allow`.
    pub allow: Option<&'static str>,
}

impl Reply {
    /// A 200 page.
    fn html(html: String) -> Self {
        Self {
            status: 200,
            html: Some(html),
            location: None,
            allow: None,
        }
    }

    /// A `303 See Other` to `location`, as a form's POST answers.
    fn see_other(location: &'static str) -> Self {
        Self {
            status: 303,
            html: None,
            location: Some(location),
            allow: None,
        }
    }

    fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    fn with_allow(mut self, allow: &'static str) -> Self {
        self.allow = Some(allow);
        self
    }
}

/// Serves one request of the demo: the route for its method and path, a 405 (with `Allow`)
/// for a known path with another method, a 404 page otherwise. A session error becomes a
/// 500 page (logged with its source); the session layer itself answers the store's 503s.
pub async fn serve(session: Session, request: Request<'_>) -> Reply {
    let served = match (request.method, request.path) {
        ("GET" | "HEAD", "/") => index(session).await,
        ("GET" | "HEAD", "/profile") => profile(session).await,
        ("GET" | "HEAD", "/sessions") => sessions(session).await,
        ("GET" | "HEAD", "/logout") => logout_page(session).await,
        ("POST", "/login") => login(session, parse_form(&request)).await,
        ("POST", "/logout") => logout(session, parse_form(&request)).await,
        ("POST", "/expiry") => expiry(session, parse_form(&request)).await,
        ("POST", "/sessions/end-others") => end_other_sessions(session, parse_form(&request)).await,
        (_, "/" | "/profile" | "/sessions") => {
            return Reply::html(String::new())
                .with_status(405)
                .with_allow("GET, HEAD");
        }
        (_, "/login" | "/expiry" | "/sessions/end-others") => {
            return Reply::html(String::new())
                .with_status(405)
                .with_allow("POST");
        }
        (_, "/logout") => {
            return Reply::html(String::new())
                .with_status(405)
                .with_allow("GET, HEAD, POST");
        }
        _ => {
            let body = page(
                "Not found",
                &format!("<p>There is no such page.</p>\n{NAV}"),
            );
            return body.with_status(404);
        }
    };
    served.unwrap_or_else(|error| {
        tracing::error!(error = %session_core::error_chain(&error), "session error in a handler");
        page(
            "Server error",
            "<p>The session could not be used. Please try again.</p>",
        )
        .with_status(500)
    })
}

type Page = Result<Reply, SessionError>;

/// The session entry holding the logged-in user's id: the identity `login` compares.
const USER_ID: &str = "user_id";
/// The session entry holding the logged-in user's name.
const USERNAME: &str = "username";
/// The session entry holding the CSRF token.
const CSRF_SESSION_KEY: &str = "_csrf_token";
/// The form field carrying the CSRF token.
const CSRF_FIELD: &str = "csrf_token";

/// The home page: a visit counter kept in the session, who is logged in, the expiry.
async fn index(session: Session) -> Page {
    let visits = session.get::<u64>("visits").await?.unwrap_or(0) + 1;
    session.insert("visits", visits).await?;
    let who = match session.get::<String>(USERNAME).await? {
        Some(name) => format!(
            "Logged in as <strong id=\"user\">{}</strong>.",
            escape(&name)
        ),
        None => String::from("<span id=\"user\">Not logged in.</span>"),
    };
    // A login made by a Django site sharing the session (SESSION_ENGINE=django). A real
    // service also checks `_auth_user_hash` against the user's password hash
    // (`session_django::auth::verify`).
    let django = match DjangoLogin::read(&session).await? {
        Some(login) => format!(
            "<p>Django user <strong id=\"django_user\">{}</strong> (logged in through {}).</p>\n",
            escape(&login.user_id),
            escape(&login.backend)
        ),
        None => String::new(),
    };
    let token = csrf_token(&session).await?;
    let body = format!(
        "<p>Visits in this session: <strong id=\"visits\">{visits}</strong></p>\n<p>{who}</p>\n{django}{}\n{}",
        expiry_section(&session).await?,
        forms(Some(&token))
    );
    Ok(page("Sessions demo", &body))
}

/// The profile: the logged-in user's id and name. When nobody is logged in it only reads
/// the session, so the page a logout redirects to starts no new session (and no cookie);
/// its forms then need the home page, which starts one.
async fn profile(session: Session) -> Page {
    let user_id = session.get::<i64>(USER_ID).await?;
    let username = session.get::<String>(USERNAME).await?;
    let (body, token) = match (user_id, username) {
        (Some(id), Some(name)) => (
            format!(
                "<p>Logged in as <strong id=\"user\">{}</strong> (user id <span id=\"user_id\">{id}</span>).</p>",
                escape(&name)
            ),
            Some(csrf_token(&session).await?),
        ),
        _ => (
            String::from("<p id=\"user\">Not logged in.</p>"),
            existing_csrf_token(&session).await?,
        ),
    };
    Ok(page(
        "Profile",
        &format!(
            "{body}\n{}\n{}",
            expiry_section(&session).await?,
            forms(token.as_deref())
        ),
    ))
}

/// The login form's fields; all optional, so a missing one is a 400 page saying which.
#[derive(Deserialize)]
struct LoginForm {
    csrf_token: Option<String>,
    user_id: Option<String>,
    username: Option<String>,
}

/// Logs in, as Django's `login()`: when the session holds another user's id, `flush` (the
/// old record is deleted, the new user starts from an empty session under a new key);
/// otherwise (anonymous, or the same user again) `cycle_key` (new key against session
/// fixation, data kept). Then the user goes in the session, with a new CSRF token.
async fn login(session: Session, form: Result<LoginForm, Reply>) -> Page {
    let form = match form {
        Ok(form) => form,
        Err(rejected) => return Ok(rejected),
    };
    if let Some(denied) = check_csrf(&session, form.csrf_token.as_deref()).await? {
        return Ok(denied);
    }
    let user_id = match form.user_id.as_deref().map(str::trim) {
        None | Some("") => return Ok(bad_request("Please give a user id.")),
        Some(text) => match text.parse::<i64>() {
            Ok(id) => id,
            Err(_) => {
                return Ok(bad_request(&format!(
                    "The user id must be a whole number, not \u{201c}{}\u{201d}.",
                    escape(text)
                )));
            }
        },
    };
    let username = form.username.as_deref().map(str::trim).unwrap_or_default();
    if username.is_empty() || username.chars().count() > 100 {
        return Ok(bad_request(
            "Please give a user name of 1 to 100 characters.",
        ));
    }
    // A value that is not an id at all counts as another user's.
    let previous = session.get_value(USER_ID).await?;
    match previous {
        Some(stored) if stored.as_i64() != Some(user_id) => session.flush().await?,
        _ => session.cycle_key().await?,
    }
    session.insert(USER_ID, user_id).await?;
    session.insert(USERNAME, username).await?;
    session.insert(CSRF_SESSION_KEY, new_csrf_token()).await?;
    // The owner index lists and ends this user's sessions; engines without one skip it.
    match session.set_owner(Some(&user_id.to_string())).await {
        Ok(()) | Err(SessionError::NoOwnerIndex) => {}
        Err(error) => return Err(error),
    }
    Ok(Reply::see_other("/profile"))
}

/// "Your sessions": the logged-in user's live sessions, most recently seen first, this one
/// marked, with a button that signs out every other one. Only reads the session.
async fn sessions(session: Session) -> Page {
    if session.get::<i64>(USER_ID).await?.is_none() {
        return Ok(page(
            "Your sessions",
            &format!("<p id=\"user\">Not logged in.</p>\n{NAV}"),
        ));
    }
    let listed = match session.owner_sessions().await {
        Ok(listed) => listed,
        Err(SessionError::NoOwnerIndex) => {
            return Ok(page(
                "Your sessions",
                &format!(
                    "<p id=\"no-index\">This session engine keeps no list of a user's sessions \
                     (the session lives in its cookie, or in Django's table).</p>\n{NAV}"
                ),
            ));
        }
        Err(error) => return Err(error),
    };
    let current = session.record_id();
    let now = session_core::time::OffsetDateTime::now_utc();
    let rows: String = listed
        .iter()
        .map(|listed| {
            let this = Some(&listed.id) == current.as_ref();
            let browser = listed
                .ownership
                .user_agent()
                .map_or_else(|| "an unknown browser".to_owned(), escape);
            let seen = ago(now - listed.ownership.last_seen());
            format!(
                "<li class=\"session{}\">{}{browser}, last seen <span class=\"seen\">{seen}</span></li>\n",
                if this { " current" } else { "" },
                if this { "<strong>This browser:</strong> " } else { "" },
            )
        })
        .collect();
    let token = csrf_token(&session).await?;
    let body = format!(
        "<p>Signed in on <strong id=\"session-count\">{}</strong> session(s):</p>\n\
         <ul id=\"sessions\">\n{rows}</ul>\n\
         <form method=\"post\" action=\"/sessions/end-others\">{}\
         <button id=\"end-others\" type=\"submit\">Sign out everywhere else</button></form>\n{NAV}",
        listed.len(),
        token_field(&token)
    );
    Ok(page("Your sessions", &body))
}

/// "Sign out everywhere else": every other session of this user ends; this one stays.
async fn end_other_sessions(session: Session, form: Result<TokenForm, Reply>) -> Page {
    let form = match form {
        Ok(form) => form,
        Err(rejected) => return Ok(rejected),
    };
    if let Some(denied) = check_csrf(&session, form.csrf_token.as_deref()).await? {
        return Ok(denied);
    }
    let ended = session.end_other_sessions().await?;
    tracing::info!(ended, "signed out the user's other sessions");
    Ok(Reply::see_other("/sessions"))
}

/// A past duration as people say it: "just now", "5 minutes ago", "3 hours ago".
fn ago(elapsed: Duration) -> String {
    let minutes = elapsed.whole_minutes();
    match minutes {
        ..1 => "just now".to_owned(),
        1 => "a minute ago".to_owned(),
        2..60 => format!("{minutes} minutes ago"),
        60..120 => "an hour ago".to_owned(),
        120..2880 => format!("{} hours ago", minutes / 60),
        _ => format!("{} days ago", minutes / 1440),
    }
}

/// A form whose only field is the CSRF token.
#[derive(Deserialize)]
struct TokenForm {
    csrf_token: Option<String>,
}

/// Logs out: the session is deleted at once and the cookie removed. The redirect goes to the
/// profile, which only reads the session, so no new session (and cookie) starts.
async fn logout(session: Session, form: Result<TokenForm, Reply>) -> Page {
    let form = match form {
        Ok(form) => form,
        Err(rejected) => return Ok(rejected),
    };
    if let Some(denied) = check_csrf(&session, form.csrf_token.as_deref()).await? {
        return Ok(denied);
    }
    session.flush().await?;
    Ok(Reply::see_other("/profile"))
}

/// `GET /logout` does not log out (a link, an image or a prefetch could): 405, as Django's
/// `LogoutView`, with a page whose button logs out by POST. Starts no session.
async fn logout_page(session: Session) -> Page {
    let token = if session.contains_key(USER_ID).await? {
        Some(csrf_token(&session).await?)
    } else {
        existing_csrf_token(&session).await?
    };
    let body = match token {
        Some(token) => format!(
            "<p>Log out with this button:</p>\n{}\n{NAV}",
            logout_form(&token)
        ),
        None => format!("<p>You are not logged in.</p>\n{NAV}"),
    };
    Ok(page("Log out", &body).with_status(405).with_allow("POST"))
}

/// The expiry form's fields: `expiry` is `hour`, `browser_close` or `default`.
#[derive(Deserialize)]
struct ExpiryForm {
    csrf_token: Option<String>,
    expiry: Option<String>,
}

/// Sets the session's expiry.
async fn expiry(session: Session, form: Result<ExpiryForm, Reply>) -> Page {
    let form = match form {
        Ok(form) => form,
        Err(rejected) => return Ok(rejected),
    };
    if let Some(denied) = check_csrf(&session, form.csrf_token.as_deref()).await? {
        return Ok(denied);
    }
    let expiry = match form.expiry.as_deref() {
        Some("hour") => Expiry::Inactivity(Duration::hours(1)),
        Some("browser_close") => Expiry::BrowserClose,
        Some("default") => Expiry::Default,
        None | Some("") => {
            return Ok(bad_request(
                "Please choose an expiry: hour, browser_close or default.",
            ));
        }
        Some(other) => {
            return Ok(bad_request(&format!(
                "Unknown expiry \u{201c}{}\u{201d}: choose hour, browser_close or default.",
                escape(other)
            )));
        }
    };
    session.set_expiry(expiry).await?;
    Ok(Reply::see_other("/"))
}

/// A fresh CSRF token: 32 characters of `[a-z0-9]` from the OS CSPRNG, like a session key.
fn new_csrf_token() -> String {
    SessionKey::generate().expose_secret().to_owned()
}

/// The session's CSRF token, created (which saves the session) if it has none.
async fn csrf_token(session: &Session) -> Result<String, SessionError> {
    if let Some(token) = existing_csrf_token(session).await? {
        return Ok(token);
    }
    let token = new_csrf_token();
    session.insert(CSRF_SESSION_KEY, &token).await?;
    Ok(token)
}

/// The session's CSRF token, if it has one; never writes.
async fn existing_csrf_token(session: &Session) -> Result<Option<String>, SessionError> {
    // A stored value that is not a string counts as no token (and is replaced when needed).
    let value = session.get_value(CSRF_SESSION_KEY).await?;
    Ok(value
        .as_ref()
        .and_then(|v| v.as_str())
        .filter(|token| !token.is_empty())
        .map(str::to_owned))
}

/// `None` when `sent` matches the session's CSRF token; otherwise the 403 page to answer.
async fn check_csrf(session: &Session, sent: Option<&str>) -> Result<Option<Reply>, SessionError> {
    let expected = existing_csrf_token(session).await?;
    let reason = match (expected, sent) {
        (None, _) => "the session has no CSRF token",
        (Some(_), None) => "the form has no CSRF token",
        (Some(expected), Some(sent)) if constant_time_eq(expected.as_bytes(), sent.as_bytes()) => {
            return Ok(None);
        }
        (Some(_), Some(_)) => "the form's CSRF token is not the session's",
    };
    tracing::warn!(target: "session::security", reason, "POST refused: CSRF check failed");
    let body = page(
        "Forbidden",
        "<p>CSRF verification failed: this form did not come from a page of this session, or \
         the session has ended since. Nothing was changed.</p>\n\
         <p>Open the <a href=\"/\">home page</a> and try again.</p>",
    );
    Ok(Some(body.with_status(403)))
}

/// Byte equality in time independent of where the inputs differ (lengths are not secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

/// A 400 page saying what is wrong with the form; `message` is HTML.
fn bad_request(message: &str) -> Reply {
    let body = page(
        "Bad request",
        &format!("<p id=\"error\">{message}</p>\n{NAV}"),
    );
    body.with_status(400)
}

/// The request's form, or the short page (415 or 400) saying why it cannot be read: the
/// same answer on every framework.
fn parse_form<T: serde::de::DeserializeOwned>(request: &Request<'_>) -> Result<T, Reply> {
    let is_form = request
        .content_type
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    let (status, message) = if !is_form {
        (
            415,
            "Please send the form as application/x-www-form-urlencoded, as a browser does.",
        )
    } else {
        match serde_urlencoded::from_bytes(request.body) {
            Ok(form) => return Ok(form),
            Err(error) => {
                tracing::debug!(%error, "form rejected");
                (
                    400,
                    "The form could not be read: each field must appear once, URL-encoded.",
                )
            }
        }
    };
    let body = page(
        "Bad request",
        &format!("<p id=\"error\">{message}</p>\n{NAV}"),
    );
    Err(body.with_status(status))
}

async fn expiry_section(session: &Session) -> Result<String, SessionError> {
    let age = session.expiry_age().await?.whole_seconds();
    let date = session.expiry_date().await?;
    let browser_close = session.expire_at_browser_close().await?;
    let date = date
        .format(&session_core::time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let when = if browser_close {
        "when the browser closes"
    } else {
        "after the age below"
    };
    Ok(format!(
        "<p>The cookie expires <span id=\"expiry-kind\">{when}</span>; the session expires in \
         <span id=\"expiry-age\">{age}</span> seconds, at <span id=\"expiry-date\">{date}</span>.</p>"
    ))
}

/// The hidden field carrying `token`.
fn token_field(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{CSRF_FIELD}\" value=\"{}\">",
        escape(token)
    )
}

fn logout_form(token: &str) -> String {
    format!(
        "<form method=\"post\" action=\"/logout\">{}<button id=\"logout\" type=\"submit\">Log out</button></form>",
        token_field(token)
    )
}

/// The login, expiry and logout forms with `token`; without one, a pointer to the home page
/// (which starts a session and so has a token).
fn forms(token: Option<&str>) -> String {
    let Some(token) = token else {
        return format!(
            "<p id=\"no-forms\">Open the <a href=\"/\">home page</a> to log in.</p>\n{NAV}"
        );
    };
    let field = token_field(token);
    format!(
        r#"<form method="post" action="/login">
  {field}
  <input name="user_id" id="user_id_input" type="number" value="123">
  <input name="username" id="username_input" value="john_doe">
  <button id="login" type="submit">Log in</button>
</form>
<form method="post" action="/expiry">
  {field}
  <button id="expiry-hour" name="expiry" value="hour">Expire after an hour</button>
  <button id="expiry-browser" name="expiry" value="browser_close">Expire when the browser closes</button>
  <button id="expiry-default" name="expiry" value="default">Default expiry</button>
</form>
{}
{NAV}"#,
        logout_form(token)
    )
}

const NAV: &str = r#"<p><a href="/">Home</a> · <a href="/profile">Profile</a> · <a href="/sessions">Your sessions</a></p>"#;

fn page(title: &str, body: &str) -> Reply {
    Reply::html(format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
         <body><h1>{title}</h1>\n{body}\n</body></html>\n"
    ))
}

/// Escapes text for HTML.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup() {
        assert_eq!(
            escape("<b>\"x\" & 'y'</b>"),
            "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;"
        );
    }

    #[test]
    fn constant_time_eq_compares_bytes() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn ago_reads_like_people_speak() {
        assert_eq!(ago(Duration::seconds(20)), "just now");
        assert_eq!(ago(Duration::minutes(5)), "5 minutes ago");
        assert_eq!(ago(Duration::minutes(90)), "an hour ago");
        assert_eq!(ago(Duration::hours(5)), "5 hours ago");
        assert_eq!(ago(Duration::days(3)), "3 days ago");
    }

    #[test]
    fn csrf_tokens_are_random_and_key_shaped() {
        let (a, b) = (new_csrf_token(), new_csrf_token());
        assert_ne!(a, b);
        assert!(SessionKey::parse(&a).is_some(), "{a}");
    }

    #[test]
    fn every_form_carries_the_token() {
        let html = forms(Some("t0ken"));
        assert_eq!(html.matches("<form ").count(), 3);
        assert_eq!(
            html.matches(r#"<input type="hidden" name="csrf_token" value="t0ken">"#)
                .count(),
            3
        );
        assert!(!forms(None).contains("<form"));
    }
}
