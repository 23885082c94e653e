//! `Session` as an actix-web extractor and `SessionError` as an actix-web error (feature
//! `actix`). The impls live here because Rust lets only the crate that owns a type implement
//! a foreign trait for it.

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};

use crate::{Session, SessionError};

/// Extracts the request's session, put in place by `session_actix::SessionMiddleware`.
/// Without the middleware, the request fails with a 500 that names it.
impl FromRequest for Session {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let session = request.extensions().get::<Session>().cloned();
        std::future::ready(session.ok_or_else(|| {
            actix_web::error::ErrorInternalServerError(
                "the Session extractor needs session_actix::SessionMiddleware on this app; add \
                 `.wrap(SessionMiddleware::new(store, config))`",
            )
        }))
    }
}

/// A [`SessionError`] answers a handler's request: 503 when the store is unavailable, 400
/// when a concurrent logout interrupted the session, 500 for anything else, each with a short
/// plain-text body (the details go to the log, never to the client). So a handler can return
/// `Result<_, SessionError>` and use `?`.
impl ResponseError for SessionError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let chain = crate::error_chain(self);
        if status.is_server_error() {
            tracing::error!(error = %chain, status = status.as_u16(), "session error in a handler");
        } else {
            tracing::info!(error = %chain, status = status.as_u16(), "session error in a handler");
        }
        HttpResponse::build(status)
            .content_type("text/plain; charset=utf-8")
            .body(self.http_body())
    }
}
