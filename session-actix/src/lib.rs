#![doc = include_str!("../README.md")]
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::{COOKIE, HeaderValue, SET_COOKIE, USER_AGENT, VARY};
use actix_web::{Error, HttpMessage, HttpResponse};
use session_core::{ConfigError, Outcome, SessionConfig, SessionManager, SessionStore};

pub use session_core::Session;

#[doc = include_str!("../docs/migrating-from-actix-session.md")]
pub mod migrating_from_actix_session {}

/// The actix-web middleware that gives every request a [`Session`]: `App::new().wrap(..)`.
/// Cheap to clone (the manager is shared), as `HttpServer::new`'s factory needs.
#[derive(Clone, Debug)]
pub struct SessionMiddleware {
    manager: Arc<SessionManager>,
}

impl SessionMiddleware {
    /// Sessions in `store`, with these settings.
    ///
    /// # Panics
    ///
    /// When the settings are invalid (see `SessionConfig::validate`), with the reason, so a
    /// misconfiguration stops start-up. Use [`try_new`](Self::try_new) to handle it.
    pub fn new(store: impl SessionStore, config: SessionConfig) -> Self {
        Self::from_manager(SessionManager::new(store, config))
    }

    /// Sessions in `store`, or the reason the settings cannot work.
    pub fn try_new(store: impl SessionStore, config: SessionConfig) -> Result<Self, ConfigError> {
        SessionManager::try_new(store, config).map(Self::from_manager)
    }

    /// The middleware over an existing manager (a client-side engine, a shared store, a
    /// manager with a cleanup task).
    pub fn from_manager(manager: SessionManager) -> Self {
        Self {
            manager: Arc::new(manager),
        }
    }

    /// The manager: the store and the settings.
    pub fn manager(&self) -> &SessionManager {
        &self.manager
    }
}

impl<S, B> Transform<S, ServiceRequest> for SessionMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = SessionService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(SessionService {
            service: Rc::new(service),
            manager: self.manager.clone(),
        }))
    }
}

/// The service [`SessionMiddleware`] wraps around the app's.
#[derive(Debug)]
pub struct SessionService<S> {
    service: Rc<S>,
    manager: Arc<SessionManager>,
}

impl<S, B> Service<ServiceRequest> for SessionService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        // As bytes: another cookie's non-ASCII value must not hide the session cookie.
        let cookies = request.headers().get_all(COOKIE).map(HeaderValue::as_bytes);
        let session = self.manager.session_from_headers(cookies);
        // Kept beside an owned session only under `SessionConfig::record_client`.
        let user_agent = request.headers().get(USER_AGENT);
        session.set_user_agent(user_agent.and_then(|value| value.to_str().ok()));
        request.extensions_mut().insert(session.clone());
        // No clone of the request is kept across the call: actix's router needs the only
        // reference to fill in the path's parameters.
        let service = self.service.clone();
        let manager = self.manager.clone();
        Box::pin(async move {
            // Handlers' errors arrive as responses; an `Err` comes from a middleware inside
            // this one and has no request left to answer with: nothing is written, as for
            // any failed request.
            let response = service.call(request).await?.map_into_left_body();
            let outcome = manager.finish(&session, response.status().as_u16()).await;
            Ok(apply(outcome, response))
        })
    }
}

/// Applies the lifecycle's outcome to the response.
fn apply<B>(
    outcome: Outcome,
    response: ServiceResponse<EitherBody<B>>,
) -> ServiceResponse<EitherBody<B>> {
    let mut response = match outcome.replace_with {
        Some(replacement) => {
            let status = StatusCode::from_u16(replacement.status())
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let replaced = HttpResponse::build(status)
                .content_type("text/plain; charset=utf-8")
                .body(replacement.message());
            response.into_response(replaced).map_into_right_body()
        }
        None => response,
    };
    let headers = response.headers_mut();
    if let Some(header) = outcome.set_cookie_header() {
        match HeaderValue::from_str(&header) {
            Ok(value) => headers.append(SET_COOKIE, value),
            // Cookie names and values come from the config and from [a-z0-9] keys; a config
            // with characters not allowed in headers cannot produce a cookie.
            Err(_) => tracing::error!(
                cookie_name = outcome.set_cookie.as_ref().map(|c| c.name().to_owned()),
                "the session cookie is not a valid header value; check the cookie settings"
            ),
        }
    }
    let existing = headers
        .get_all(VARY)
        .filter_map(|value| value.to_str().ok());
    if outcome.needs_vary_header(existing) {
        headers.append(VARY, HeaderValue::from_static("Cookie"));
    }
    response
}
