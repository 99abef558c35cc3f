//! The HTTP API (`/api/v1`), health, metrics and the live dashboard.
//!
//! Handlers are thin: they check the token, parse and bound the request,
//! call the control plane ([`Engine`]) and shape the answer. JSON by
//! default; MessagePack when the request says `Content-Type:
//! application/msgpack` (bodies) or `Accept: application/msgpack` (answers).
//! No request can crash the process: every outside input is parsed with
//! limits and every failure is an [`ApiError`].

mod auth;
mod body;
mod dashboard;
mod debug;
pub mod error;
mod jobs;
pub mod metrics_text;
mod openapi;
mod plugins;
mod records;
mod topics;
mod views;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::job::engine::Engine;
pub use error::ApiError;

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
}

/// All routes.
pub fn router(engine: Arc<Engine>) -> Router {
    let state = AppState { engine };
    Router::new()
        .route("/", get(dashboard::page))
        .route("/dashboard.js", get(dashboard::script))
        .route("/healthz", get(dashboard::healthz))
        .route("/readyz", get(dashboard::readyz))
        .route("/metrics", get(metrics_text::metrics))
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/api/v1/events", get(dashboard::events))
        .route("/api/v1/status", get(dashboard::status))
        .route("/api/v1/topics", get(topics::list).post(topics::create))
        .route(
            "/api/v1/topics/{name}",
            get(topics::describe).delete(topics::delete),
        )
        .route(
            "/api/v1/topics/{name}/records",
            post(records::ingest).get(records::read),
        )
        .route("/api/v1/topics/{name}/tail", get(records::tail))
        .route("/api/v1/plugins", get(plugins::list).post(plugins::upload))
        .route(
            "/api/v1/plugins/{name}/{version}",
            get(plugins::describe).delete(plugins::delete),
        )
        .route("/api/v1/jobs", get(jobs::list).post(jobs::create))
        .route(
            "/api/v1/jobs/{name}",
            get(jobs::describe).delete(jobs::delete),
        )
        .route("/api/v1/jobs/{name}/stop", post(jobs::stop))
        .route("/api/v1/jobs/{name}/resume", post(jobs::resume))
        .route("/api/v1/jobs/{name}/upgrade", post(jobs::upgrade))
        .route("/api/v1/jobs/{name}/checkpoint", post(jobs::checkpoint))
        .route("/api/v1/views", get(views::list))
        .route("/api/v1/views/{name}", get(views::query))
        .route("/api/v1/debug/hang", post(debug::hang))
        .route("/api/v1/debug/panic", post(debug::panic))
        .fallback(|| async { ApiError::not_found("no such route; see /api/v1/openapi.json") })
        .with_state(state)
}

/// Serves the API until `shutdown` resolves.
pub async fn serve(
    engine: Arc<Engine>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(engine);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
