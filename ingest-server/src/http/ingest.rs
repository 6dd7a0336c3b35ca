//! `POST /api/analytics/events` and `POST /track`: authenticate, read the body with limits,
//! decode, and answer 200 only once the accepted batch is durable in the queue.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use empmix_core::protocol::{BatchResponse, DecodeError, MAX_BATCH_BYTES};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::body::{BodyError, decode_body};
use super::{App, auth, error, json};
use crate::queue::sqlite::LogThrottle;
use crate::queue::{QueueError, QueuedBatch};

static NOT_DURABLE: LogThrottle = LogThrottle::new();

/// Seconds a client is told to wait after a 503 (the SDKs honour `Retry-After`).
pub const RETRY_AFTER_SECS: u32 = 5;
/// Seconds to wait when the disk is full: space takes an operator to come back.
pub const RETRY_AFTER_DISK_FULL_SECS: u32 = 30;

/// Whether the content type is one ingest reads: JSON, `text/plain` (beacons) or none.
fn content_type_ok(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else { return true };
    let Ok(value) = value.to_str() else { return false };
    let media = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    media.is_empty() || media == "application/json" || media == "text/plain" || media.ends_with("+json")
}

/// `Some(true)` for gzip, `Some(false)` for none, `None` for an encoding ingest cannot read.
fn gzip_encoded(headers: &HeaderMap) -> Option<bool> {
    match headers.get(header::CONTENT_ENCODING).map(|v| v.to_str().map(|s| s.trim().to_ascii_lowercase())) {
        None => Some(false),
        Some(Ok(e)) if e.is_empty() || e == "identity" => Some(false),
        Some(Ok(e)) if e == "gzip" || e == "x-gzip" => Some(true),
        _ => None,
    }
}

/// The 503 for a batch that could not be made durable, with `Retry-After` and a message that
/// says why when that is the disk (the queue's own text names the floor or SQLite's error).
fn unavailable(e: &QueueError) -> Response {
    let (message, retry) = match e {
        e if e.is_disk_full() => (format!("{e}; retry later"), RETRY_AFTER_DISK_FULL_SECS),
        _ => ("storage unavailable; retry later".to_string(), RETRY_AFTER_SECS),
    };
    let mut resp = error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
    resp.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(retry));
    resp
}

fn unauthorized() -> Response {
    error(StatusCode::UNAUTHORIZED, "unauthorized", "missing or wrong ingest key")
}

/// The ingest handler.
pub async fn ingest(State(app): State<Arc<App>>, req: Request) -> Response {
    let received_at = crate::now_millis();
    let (parts, body) = req.into_parts();
    if !content_type_ok(&parts.headers) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send application/json or text/plain",
        );
    }
    let Some(gzip) = gzip_encoded(&parts.headers) else {
        return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_encoding", "only gzip is supported");
    };
    // A key in a header or the query is checked before the body is read.
    let early = match auth::presented_key(&parts.headers, &parts.uri) {
        Some(key) => match app.projects.by_ingest_key(&key) {
            Some(p) => Some(p.clone()),
            None => return unauthorized(),
        },
        None => None,
    };
    let raw = match Limited::new(body, MAX_BATCH_BYTES).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("body over {MAX_BATCH_BYTES} bytes"),
            );
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_body", format!("could not read body: {e}")),
    };
    let (body, batch) = match decode_body(raw, gzip, MAX_BATCH_BYTES) {
        Ok(ok) => ok,
        Err(BodyError::TooLarge { limit }) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("body over {limit} bytes after decompression"),
            );
        }
        Err(BodyError::Gzip(e)) => return error(StatusCode::BAD_REQUEST, "invalid_gzip", e.to_string()),
        Err(BodyError::Decode(e @ DecodeError::Json { .. })) => {
            return error(StatusCode::BAD_REQUEST, "malformed_json", e.to_string());
        }
        Err(BodyError::Decode(e @ (DecodeError::Shape | DecodeError::Context))) => {
            return error(StatusCode::BAD_REQUEST, "invalid_body", e.to_string());
        }
        Err(BodyError::Decode(e @ DecodeError::TooManyEvents { .. })) => {
            return error(StatusCode::PAYLOAD_TOO_LARGE, "too_many_events", e.to_string());
        }
    };
    let project = match early {
        Some(p) => p,
        None => match batch.api_key.as_deref().and_then(|k| app.projects.by_ingest_key(k)) {
            Some(p) => p.clone(),
            None => return unauthorized(),
        },
    };
    if let Some(origin) = parts.headers.get(header::ORIGIN) {
        if !origin.to_str().is_ok_and(|o| project.allows_origin(o)) {
            return error(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "this project does not allow that origin",
            );
        }
    }
    let accepted = batch.events.len() as u64;
    app.metrics.ingested(0, batch.rejected.len() as u64);
    if accepted > 0 {
        let assigned_ids = batch
            .events
            .iter()
            .filter(|e| e.event_id.is_none())
            .map(|e| (e.index as u32, uuid::Uuid::now_v7()))
            .collect();
        let queued = QueuedBatch { project: project.id.clone(), received_at, assigned_ids, body };
        if let Err(e) = app.queue.publish(queued).await {
            if let Some(suppressed) = NOT_DURABLE.allow() {
                tracing::error!(
                    error = %e,
                    project = %project.id,
                    similar_since_last = suppressed,
                    "batch not durable; answering 503"
                );
            }
            return unavailable(&e);
        }
        app.metrics.ingested(accepted, 0);
    }
    json(StatusCode::OK, BatchResponse { accepted, rejected: batch.rejected }.encode())
}
