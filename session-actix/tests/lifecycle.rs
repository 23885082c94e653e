//! The kit's request-lifecycle cases through the actix middleware, on memory and SQLite: each
//! request goes through an actix-web app wrapped in `SessionMiddleware`, and the response's
//! `Set-Cookie`, `Vary` and status must carry exactly what `SessionManager` decided.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{COOKIE, HeaderValue, SET_COOKIE, VARY};
use actix_web::{App, HttpResponse, test, web};
use session_actix::SessionMiddleware;
use session_core::{MemoryStore, Outcome, Session, SessionManager};
use session_db::SqliteStore;
use session_testkit::frontend::{Frontend, TestRequest, outcome_from_response};
use session_testkit::{Capabilities, Guarded, lifecycle_conformance};

/// Serves each kit request through an actix-web app wrapped in the middleware.
struct Actix;

impl Frontend for Actix {
    fn serve<'a>(
        &'a self,
        manager: &'a SessionManager,
        request: TestRequest,
    ) -> Pin<Box<dyn Future<Output = Outcome> + 'a>> {
        Box::pin(async move {
            let TestRequest {
                cookie_headers,
                handler,
                status,
            } = request;
            let handler = Rc::new(RefCell::new(Some(handler)));
            let app = test::init_service(
                App::new()
                    .wrap(SessionMiddleware::from_manager(manager.clone()))
                    // A routed path, as apps have: the router must be able to fill in its
                    // parameters behind the middleware.
                    .route(
                        "/{page}",
                        web::to(move |session: Session| {
                            let handler = handler.borrow_mut().take();
                            async move {
                                if let Some(handler) = handler {
                                    handler(session).await;
                                }
                                let status = StatusCode::from_u16(status).expect("a status");
                                HttpResponse::build(status).body("handler")
                            }
                        }),
                    ),
            )
            .await;
            let mut sent = test::TestRequest::get().uri("/page");
            for header in &cookie_headers {
                let value = HeaderValue::from_bytes(header).expect("a header value");
                sent = sent.append_header((COOKIE, value));
            }
            let response = test::call_service(&app, sent.to_request()).await;
            let text = |name| -> Vec<String> {
                response
                    .headers()
                    .get_all(name)
                    .map(|value| value.to_str().expect("ASCII").to_owned())
                    .collect()
            };
            let (set_cookies, vary) = (text(SET_COOKIE), text(VARY));
            outcome_from_response(
                status,
                response.status().as_u16(),
                set_cookies.iter().map(String::as_str),
                vary.iter().map(String::as_str),
            )
        })
    }
}

async fn sqlite() -> Guarded<SqliteStore, tempfile::TempDir> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("sessions.sqlite3").display());
    let store = SqliteStore::connect(&url).await.expect("sqlite");
    store.migrate().await.expect("migrate");
    Guarded::new(store, dir)
}

lifecycle_conformance!(
    actix_memory,
    Capabilities::new(),
    || async { MemoryStore::new() },
    Arc::new(Actix)
);
lifecycle_conformance!(actix_sqlite, Capabilities::new(), sqlite, Arc::new(Actix));
