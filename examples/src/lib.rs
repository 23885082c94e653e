//! The demo on actix-web: the pages of `demo::pages`, shared with the axum demo, behind
//! `session_actix::SessionMiddleware`. `cargo run -p examples --bin demo-actix` serves it
//! with the same engines and settings as `cargo run -p demo`.

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::http::header::{ALLOW, CONTENT_TYPE, LOCATION};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use demo::pages::{self, Reply};
use session_actix::SessionMiddleware;
use session_core::{Session, SessionManager};

/// Hands every request to [`pages::serve`].
pub async fn handle(session: Session, request: HttpRequest, body: web::Bytes) -> HttpResponse {
    let page = pages::Request {
        method: request.method().as_str(),
        path: request.path(),
        content_type: request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok()),
        body: &body,
    };
    into_response(pages::serve(session, page).await)
}

/// A page's reply as an actix-web response.
fn into_response(reply: Reply) -> HttpResponse {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    if let Some(location) = reply.location {
        response.insert_header((LOCATION, location));
    }
    if let Some(allow) = reply.allow {
        response.insert_header((ALLOW, allow));
    }
    match reply.html {
        Some(html) => response.content_type("text/html; charset=utf-8").body(html),
        None => response.finish(),
    }
}

/// The demo's server on `listener` over `manager`, with `workers` worker threads; run it
/// (await it) inside an actix-web runtime (`actix_web::rt::System`).
pub fn server(
    manager: SessionManager,
    listener: std::net::TcpListener,
    workers: usize,
) -> std::io::Result<Server> {
    let sessions = SessionMiddleware::from_manager(manager);
    Ok(HttpServer::new(move || {
        App::new()
            .wrap(sessions.clone())
            .default_service(web::to(handle))
    })
    .workers(workers)
    .listen(listener)?
    .run())
}
