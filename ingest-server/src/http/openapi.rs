//! `GET /api/openapi.json`: the OpenAPI 3.1 document of every API endpoint
//! (`ingest-server/openapi.json`, written by hand), and [`ROUTES`], the endpoints the router
//! serves, which a test holds the document and the router to.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use empmix_core::protocol::{EVENTS_PATH, TRACK_PATH};

/// The document.
pub const DOCUMENT: &str = include_str!("../../openapi.json");

/// Every API route the router serves: (method, path in the OpenAPI `{param}` form). The
/// dashboard's static files (`/`, `/dashboard/…`) are not API and are not listed.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", EVENTS_PATH),
    ("GET", EVENTS_PATH),
    ("POST", TRACK_PATH),
    ("GET", "/api/analytics/daily"),
    ("GET", "/api/analytics/shares/tree"),
    ("GET", "/api/analytics/shares/leaderboard"),
    ("GET", "/api/analytics/sessions"),
    ("POST", "/api/analytics/query"),
    ("GET", "/api/analytics/whoami"),
    ("GET", "/api/analytics/live"),
    ("GET", "/api/analytics/live/summary"),
    ("POST", "/api/analytics/links"),
    ("GET", "/api/analytics/links"),
    ("DELETE", "/api/analytics/links/{id}"),
    ("GET", "/api/openapi.json"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
];

/// The handler.
pub async fn document() -> Response {
    let mut resp = (StatusCode::OK, DOCUMENT).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}
