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
