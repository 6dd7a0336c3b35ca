//! `POST /api/analytics/query`: the query language of [`crate::query`] over HTTP (read key or
//! dashboard link; a link's queries are limited to its conference).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use http_body_util::BodyExt;

use super::access::reader;
use super::{App, error, json};
use crate::query::{self, Field, Filter, MAX_BODY_BYTES, QueryError, Scope};

/// The status and error code a query error is answered with.
pub fn status_of(e: &QueryError) -> (StatusCode, &'static str) {
    match e {
        QueryError::Invalid { .. } => (StatusCode::BAD_REQUEST, "invalid_query"),
        QueryError::TooLarge(_) => (StatusCode::UNPROCESSABLE_ENTITY, "query_too_large"),
        QueryError::Timeout(_) => (StatusCode::UNPROCESSABLE_ENTITY, "query_timeout"),
        QueryError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    }
}

/// The handler.
pub async fn query(State(app): State<Arc<App>>, headers: HeaderMap, uri: Uri, body: Body) -> Response {
    let started = Instant::now();
    let run = async {
        let r = reader(&app, &headers, &uri).await?;
        let body = http_body_util::Limited::new(body, MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|_| {
                error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("query body over {MAX_BODY_BYTES} bytes"),
                )
            })?
            .to_bytes();
        let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
            error(StatusCode::BAD_REQUEST, "malformed_json", format!("the body is not JSON: {e}"))
        })?;
        let mut q = query::parse(&value).map_err(|e| {
            let (status, code) = status_of(&e);
            error(status, code, e.to_string())
        })?;
        if let Some(conference) = r.conference() {
            // A dashboard link sees its conference only, whatever the query says.
            let own = Filter::Is(Field::Property("conference_id".into()), vec![conference.to_string()]);
            q.filters = Some(match q.filters.take() {
                Some(f) => Filter::And(vec![own, f]),
                None => own,
            });
        }
        let store = app.store.clone();
        let project = r.project.clone();
        let budget = app.query_budget;
        let answer = tokio::task::spawn_blocking(move || {
            let tz = jiff::tz::TimeZone::get(&project.time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
            let scope = Scope {
                store: store.as_ref(),
                project: &project.id,
                time_zone: &project.time_zone,
                tz: &tz,
                budget,
            };
            query::run(scope, &q, crate::now_millis())
        })
        .await
        .map_err(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "query panicked"))?;
        let answer = answer.map_err(|e| {
            let (status, code) = status_of(&e);
            if status == StatusCode::SERVICE_UNAVAILABLE {
                tracing::error!(error = %e, "query failed");
                return error(status, code, "storage unavailable");
            }
            error(status, code, e.to_string())
        })?;
        serde_json::to_string(&answer)
            .map(|body| json(StatusCode::OK, body))
            .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))
    };
    let resp = run.await.unwrap_or_else(|e| e);
    app.metrics.query_took(started.elapsed(), resp.status());
    resp
}
