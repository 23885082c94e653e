#![doc = include_str!("../README.md")]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{CONTENT_TYPE, COOKIE, HeaderValue, SET_COOKIE, VARY};
use http::{Request, Response, StatusCode};
use session_core::{ConfigError, Outcome, SessionConfig, SessionManager, SessionStore};
use tower::{Layer, Service};

pub use session_core::Session;

#[doc = include_str!("../docs/migrating-from-tower-sessions.md")]
pub mod migrating_from_tower_sessions {}

/// The tower layer that gives every request a [`Session`].
#[derive(Clone, Debug)]
pub struct SessionLayer {
    manager: Arc<SessionManager>,
}

impl SessionLayer {
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

    /// Sessions run by an existing manager (to share one store with other code).
    pub fn from_manager(manager: SessionManager) -> Self {
        Self {
            manager: Arc::new(manager),
        }
    }

    /// Also deletes expired sessions every `period` for as long as the layer (or a service
    /// made from it) lives: Django's `clearsessions` on a timer, with no handle to keep.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, or with a zero `period`.
    pub fn with_cleanup(self, period: std::time::Duration) -> Self {
        let manager = Arc::unwrap_or_clone(self.manager).with_cleanup(period);
        Self::from_manager(manager)
    }

    /// The manager behind the layer.
    pub fn manager(&self) -> &SessionManager {
        &self.manager
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            manager: self.manager.clone(),
        }
    }
}

/// The service [`SessionLayer`] wraps around a handler.
#[derive(Clone, Debug)]
pub struct SessionService<S> {
    inner: S,
    manager: Arc<SessionManager>,
}

/// The boxed future of a [`SessionService`] call.
pub type ResponseFuture<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: From<&'static str> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let headers = request.headers().get_all(COOKIE);
        // As bytes: another cookie's non-ASCII value must not hide the session cookie.
        let session = self
            .manager
            .session_from_headers(headers.iter().map(HeaderValue::as_bytes));
        // Kept beside an owned session only under `SessionConfig::record_client`.
        let user_agent = request.headers().get(http::header::USER_AGENT);
        session.set_user_agent(user_agent.and_then(|value| value.to_str().ok()));
        request.extensions_mut().insert(session.clone());

        // The clone that was polled ready serves this call; a fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let manager = self.manager.clone();
        Box::pin(async move {
            let response = inner.call(request).await?;
            let outcome = manager.finish(&session, response.status().as_u16()).await;
            Ok(apply(outcome, response))
        })
    }
}

/// Applies the lifecycle's outcome to the handler's response.
fn apply<B: From<&'static str>>(outcome: Outcome, mut response: Response<B>) -> Response<B> {
    if let Some(replacement) = outcome.replace_with {
        response = Response::new(B::from(replacement.message()));
        *response.status_mut() =
            StatusCode::from_u16(replacement.status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    let headers = response.headers_mut();
    if let Some(header) = outcome.set_cookie_header() {
        match HeaderValue::from_str(&header) {
            Ok(value) => {
                headers.append(SET_COOKIE, value);
            }
            // Cookie names and values come from the config and from [a-z0-9] keys; a config
            // with characters not allowed in headers cannot produce a cookie.
            Err(_) => tracing::error!(
                cookie_name = outcome.set_cookie.as_ref().map(|c| c.name().to_owned()),
                "the session cookie is not a valid header value; check the cookie settings"
            ),
        }
    }
    let existing = headers.get_all(VARY).iter().filter_map(|v| v.to_str().ok());
    if outcome.needs_vary_header(existing) {
        headers.append(VARY, HeaderValue::from_static("Cookie"));
    }
    response
}
