//! `Session` as an axum extractor (feature `axum`). The impl lives here because Rust lets only
//! the crate that owns `Session` implement a foreign trait for it.

use axum_core::extract::FromRequestParts;
use http::StatusCode;
use http::request::Parts;

use crate::Session;

/// Extracts the request's session, put in place by `session_tower::SessionLayer`. Without the
/// layer, the request fails with a 500 that names the missing layer.
impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Session>().cloned().ok_or((
            StatusCode::INTERNAL_SERVER_ERROR,
            "the Session extractor needs session_tower::SessionLayer on this router; add \
             `.layer(SessionLayer::new(store, config))`",
        ))
    }
}

/// A [`SessionError`](crate::SessionError) answers a handler's request: 503 when the store is
/// unavailable, 400 when a concurrent logout interrupted the session, 500 for anything else,
/// each with a short plain-text body (the details go to the log, never to the client). So a
/// handler can return `Result<_, SessionError>` and use `?`.
impl axum_core::response::IntoResponse for crate::SessionError {
    fn into_response(self) -> axum_core::response::Response {
        let status =
            StatusCode::from_u16(self.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let chain = crate::error_chain(&self);
        if status.is_server_error() {
            tracing::error!(error = %chain, status = status.as_u16(), "session error in a handler");
        } else {
            tracing::info!(error = %chain, status = status.as_u16(), "session error in a handler");
        }
        let content_type = (http::header::CONTENT_TYPE, "text/plain; charset=utf-8");
        (status, [content_type], self.http_body()).into_response()
    }
}
