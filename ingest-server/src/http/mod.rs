//! The HTTP API: ingest, queries, health and metrics, with CORS for browsers.

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use empmix_core::protocol::{EVENTS_PATH, ErrorBody, TRACK_PATH};

use crate::queue::Queue;
use crate::store::Store;

pub mod access;
pub mod auth;
pub mod body;
pub mod connections;
pub mod cors;
pub mod dashboard;
pub mod ingest;
pub mod limits;
pub mod links;
pub mod live;
pub mod metrics;
pub mod openapi;
pub mod operator;
pub mod query;
pub mod query_endpoint;

/// What every handler shares.
#[derive(Debug)]
pub struct App {
    /// Projects by key.
    pub projects: auth::Projects,
    /// Where accepted batches go.
    pub queue: Arc<dyn Queue>,
    /// What queries read.
    pub store: Arc<dyn Store>,
    /// Counters for `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// What live streams wait on.
    pub live: Arc<crate::live::LiveHub>,
    /// How long one analytics query may run.
    pub query_budget: std::time::Duration,
}

/// The router with every endpoint.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(EVENTS_PATH, post(ingest::ingest).get(query::events))
        .route(TRACK_PATH, post(ingest::ingest))
        .route("/api/analytics/daily", get(query::daily))
        .route("/api/analytics/shares/tree", get(query::share_tree))
        .route("/api/analytics/shares/leaderboard", get(query::share_leaderboard))
        .route("/api/analytics/sessions", get(query::sessions))
        .route("/api/analytics/query", post(query_endpoint::query))
        .route("/api/analytics/whoami", get(links::whoami))
        .route("/api/analytics/live", get(live::stream))
        .route("/api/analytics/live/summary", get(live::summary))
        .route("/api/analytics/links", post(links::create).get(links::list))
        .route("/api/analytics/links/{id}", delete(links::revoke))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(query::readyz))
        .route("/metrics", get(metrics::render))
        .route("/api/openapi.json", get(openapi::document))
        .merge(dashboard::routes())
        // After every route (it applies to the routes added so far): a known path with another
        // method gets the JSON error body every other status has (axum still adds `Allow`).
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such endpoint") })
        .layer(axum::middleware::from_fn_with_state(app.clone(), limits::guard))
        .layer(axum::middleware::from_fn_with_state(app.clone(), cors::cors))
        .layer(axum::middleware::from_fn_with_state(app.clone(), metrics::count_status))
        .with_state(app)
}

/// The 405 of a known path asked with another method (axum adds `Allow`).
pub(crate) async fn method_not_allowed() -> Response {
    error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this endpoint does not take that method")
}

/// A JSON response.
pub(crate) fn json(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// An error response with an [`ErrorBody`].
pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    json(status, ErrorBody { error: code.into(), message: message.into() }.encode())
}
