//! The demo on axum: one fallback handler hands every request to [`pages::serve`],
//! the framework-agnostic pages shared with the actix-web demo (`examples`'s `demo-actix`).
//! The routes are listed in [`crate::pages`].

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use session_core::{Session, SessionManager};
use session_tower::SessionLayer;

use crate::pages::{self, Reply};

/// The demo app over `manager`'s store and settings.
pub fn app(manager: SessionManager) -> Router {
    routes().layer(SessionLayer::from_manager(manager))
}

/// The demo's routes without the session layer, for tests that add routes of their own.
pub fn routes() -> Router {
    Router::new().fallback(handle)
}

async fn handle(
    session: Session,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = pages::Request {
        method: method.as_str(),
        path: uri.path(),
        content_type: headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok()),
        body: &body,
    };
    into_response(pages::serve(session, request).await)
}

/// A page's reply as an axum response.
fn into_response(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match reply.html {
        Some(html) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response(),
        None => (status, Body::empty()).into_response(),
    };
    let headers = response.headers_mut();
    if let Some(location) = reply.location {
        headers.insert(header::LOCATION, HeaderValue::from_static(location));
    }
    if let Some(allow) = reply.allow {
        headers.insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    response
}
