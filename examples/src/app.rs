//! The demo's routes: the Django sessions guide as a small web app.

use axum::Form;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use session_core::time::Duration;
use session_core::{Expiry, Session, SessionError, SessionManager};
use session_tower::SessionLayer;

/// The demo app over `manager`'s store and settings.
pub fn app(manager: SessionManager) -> Router {
    routes().layer(SessionLayer::from_manager(manager))
}

/// The demo's routes without the session layer, for tests that add routes of their own.
pub fn routes() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/profile", get(profile))
        .route("/login", post(login))
        .route("/logout", get(logout).post(logout))
        .route("/expiry", post(expiry))
}

/// A session error as a 500 page; the error is logged with its source.
pub struct AppError(SessionError);

impl From<SessionError> for AppError {
    fn from(error: SessionError) -> Self {
        Self(error)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        tracing::error!(error = %session_core::error_chain(&self.0), "session error in a handler");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "The session could not be used. Please try again.",
        )
            .into_response()
    }
}

type Page = Result<Html<String>, AppError>;

/// The home page: a visit counter kept in the session, who is logged in, the expiry.
async fn index(session: Session) -> Page {
    let visits = session.get::<u64>("visits").await?.unwrap_or(0) + 1;
    session.insert("visits", visits).await?;
    let who = match session.get::<String>("username").await? {
        Some(name) => format!(
            "Logged in as <strong id=\"user\">{}</strong>.",
            escape(&name)
        ),
        None => String::from("<span id=\"user\">Not logged in.</span>"),
    };
    let body = format!(
        "<p>Visits in this session: <strong id=\"visits\">{visits}</strong></p>\n<p>{who}</p>\n{}\n{}",
        expiry_section(&session).await?,
        FORMS
    );
    Ok(page("Sessions demo", &body))
}

/// The profile: the logged-in user's id and name.
async fn profile(session: Session) -> Page {
    let user_id = session.get::<i64>("user_id").await?;
    let username = session.get::<String>("username").await?;
    let body = match (user_id, username) {
        (Some(id), Some(name)) => format!(
            "<p>Logged in as <strong id=\"user\">{}</strong> (user id <span id=\"user_id\">{id}</span>).</p>",
            escape(&name)
        ),
        _ => String::from("<p id=\"user\">Not logged in.</p>"),
    };
    Ok(page(
        "Profile",
        &format!("{body}\n{}\n{FORMS}", expiry_section(&session).await?),
    ))
}

/// The login form's fields.
#[derive(Deserialize)]
pub struct LoginForm {
    user_id: i64,
    username: String,
}

/// Logs in: a new key against session fixation, then the user in the session.
async fn login(session: Session, Form(form): Form<LoginForm>) -> Result<Response, AppError> {
    let username = form.username.trim();
    if username.is_empty() || username.chars().count() > 100 {
        let body = page(
            "Login",
            "<p>Please give a user name of 1 to 100 characters.</p>",
        );
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, body).into_response());
    }
    session.cycle_key().await?;
    session.insert("user_id", form.user_id).await?;
    session.insert("username", username).await?;
    Ok(Redirect::to("/profile").into_response())
}

/// Logs out: the session is deleted at once and the cookie removed. The redirect goes to the
/// profile, which only reads the session, so no new session (and cookie) starts.
async fn logout(session: Session) -> Result<Redirect, AppError> {
    session.flush().await?;
    Ok(Redirect::to("/profile"))
}

/// The expiry form's field: `hour`, `browser_close` or `default`.
#[derive(Deserialize)]
pub struct ExpiryForm {
    expiry: String,
}

/// Sets the session's expiry.
async fn expiry(session: Session, Form(form): Form<ExpiryForm>) -> Result<Response, AppError> {
    let expiry = match form.expiry.as_str() {
        "hour" => Expiry::Inactivity(Duration::hours(1)),
        "browser_close" => Expiry::BrowserClose,
        "default" => Expiry::Default,
        _ => return Ok((StatusCode::UNPROCESSABLE_ENTITY, "unknown expiry").into_response()),
    };
    session.set_expiry(expiry).await?;
    Ok(Redirect::to("/").into_response())
}

async fn expiry_section(session: &Session) -> Result<String, SessionError> {
    let age = session.expiry_age().await?;
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

const FORMS: &str = r#"<form method="post" action="/login">
  <input name="user_id" id="user_id_input" type="number" value="123">
  <input name="username" id="username_input" value="john_doe">
  <button id="login" type="submit">Log in</button>
</form>
<form method="post" action="/expiry">
  <button id="expiry-hour" name="expiry" value="hour">Expire after an hour</button>
  <button id="expiry-browser" name="expiry" value="browser_close">Expire when the browser closes</button>
  <button id="expiry-default" name="expiry" value="default">Default expiry</button>
</form>
<form method="post" action="/logout"><button id="logout" type="submit">Log out</button></form>
<p><a href="/">Home</a> · <a href="/profile">Profile</a></p>"#;

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
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
    #[test]
    fn escape_neutralises_markup() {
        assert_eq!(
            super::escape("<b>\"x\" & 'y'</b>"),
            "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;"
        );
    }
}
