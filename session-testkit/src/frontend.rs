//! How the kit's lifecycle cases send a request: straight to `SessionManager`, or through a
//! framework adapter (`session-actix`'s middleware, say), so one set of cases checks that
//! every adapter applies the lifecycle as the manager decides it.

use std::future::Future;
use std::pin::Pin;

use session_core::{Outcome, Replacement, Session, SessionManager};

/// A request handler, boxed: it runs on the request's session.
pub type Handler = Box<dyn FnOnce(Session) -> Pin<Box<dyn Future<Output = ()>>>>;

/// A request of a lifecycle case: its `Cookie` headers, the handler, and the status the
/// handler answers.
pub struct TestRequest {
    /// The raw `Cookie` header values, in order.
    pub cookie_headers: Vec<Vec<u8>>,
    /// What the handler does with the session.
    pub handler: Handler,
    /// The status the handler answers.
    pub status: u16,
}

/// Serves the kit's lifecycle requests. [`Direct`] calls the manager itself; an adapter's
/// frontend sends each request through its framework and reads the lifecycle's outcome back
/// from the response with [`outcome_from_response`].
pub trait Frontend: Send + Sync + 'static {
    /// Serves `request` through `manager` and returns the outcome the response carries.
    fn serve<'a>(
        &'a self,
        manager: &'a SessionManager,
        request: TestRequest,
    ) -> Pin<Box<dyn Future<Output = Outcome> + 'a>>;
}

/// The manager itself, no framework: what `session_conformance!` uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct Direct;

impl Frontend for Direct {
    fn serve<'a>(
        &'a self,
        manager: &'a SessionManager,
        request: TestRequest,
    ) -> Pin<Box<dyn Future<Output = Outcome> + 'a>> {
        Box::pin(async move {
            let session = manager.session_from_headers(&request.cookie_headers);
            (request.handler)(session.clone()).await;
            manager.finish(&session, request.status).await
        })
    }
}

/// The [`Outcome`] an HTTP response carries: its `Set-Cookie` (one at most), whether its
/// `Vary` names `Cookie`, and, when its status is not the handler's, the replacement that
/// status stands for (400, 503, 500).
pub fn outcome_from_response<'a>(
    handler_status: u16,
    status: u16,
    set_cookies: impl IntoIterator<Item = &'a str>,
    vary: impl IntoIterator<Item = &'a str>,
) -> Outcome {
    let mut set_cookies = set_cookies.into_iter();
    let set_cookie = set_cookies.next().map(|header| {
        session_core::cookie::Cookie::parse(header.to_owned())
            .unwrap_or_else(|error| panic!("the response's Set-Cookie {header:?} parses: {error}"))
    });
    assert!(
        set_cookies.next().is_none(),
        "a response carries one Set-Cookie at most"
    );
    let vary_cookie = vary
        .into_iter()
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case("cookie"));
    let replace_with = (status != handler_status).then(|| match status {
        400 => Replacement::Interrupted,
        503 => Replacement::StoreUnavailable,
        500 => Replacement::ServerError,
        other => panic!("the response's status {other} is neither the handler's nor a replacement"),
    });
    Outcome {
        set_cookie,
        vary_cookie,
        replace_with,
    }
}
