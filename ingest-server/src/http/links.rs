//! Read-only dashboard links (`/api/analytics/links`, read key only) and `whoami`, which tells a
//! dashboard what its key may see.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use super::access::{LINK_TOKEN_PREFIX, reader, token_hash};
use super::{App, error, json as json_response};
use crate::store::{LinkRow, StoreError};

/// Largest body of a link request.
const MAX_LINK_BODY: usize = 4096;
/// Most links a project keeps (revoked ones included).
pub const MAX_LINKS: usize = 1000;

fn bad_request(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "bad_request", message)
}

fn unavailable(e: &StoreError) -> Response {
    tracing::error!(error = %e, "link storage failed");
    error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "storage unavailable")
}

async fn blocking<T: Send + 'static>(
    app: &App,
    f: impl FnOnce(&dyn crate::store::Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Response> {
    let store = app.store.clone();
    match tokio::task::spawn_blocking(move || f(store.as_ref())).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(unavailable(&e)),
        Err(_) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "link storage panicked")),
    }
}

/// `GET /api/analytics/whoami`: the project, the time zone, and for a link its conference.
pub async fn whoami(State(app): State<Arc<App>>, headers: HeaderMap, uri: Uri) -> Response {
    match reader(&app, &headers, &uri).await {
        Ok(r) => {
            let link =
                r.link.as_ref().map(|l| json!({"id": l.id, "expires_at": l.expires_at, "label": l.label}));
            json_response(
                StatusCode::OK,
                json!({
                    "project": r.project.id,
                    "scope": if r.link.is_some() { "link" } else { "read" },
                    "conference_id": r.conference(),
                    "time_zone": r.project.time_zone,
                    "link": link,
                })
                .to_string(),
            )
        }
        Err(resp) => resp,
    }
}

/// Parses `{"conference_id", "expires_at"?, "label"?}`.
#[expect(clippy::result_large_err, reason = "the error is the finished response")]
fn link_request(body: &[u8], now: i64) -> Result<(String, Option<i64>, Option<String>), Response> {
    let v: Value = serde_json::from_slice(body).map_err(|e| bad_request(format!("invalid JSON: {e}")))?;
    let obj = v.as_object().ok_or_else(|| bad_request("a JSON object {\"conference_id\": …}"))?;
    if let Some(k) = obj.keys().find(|k| !["conference_id", "expires_at", "label"].contains(&k.as_str())) {
        return Err(bad_request(format!("{k}: unknown field (expected conference_id, expires_at, label)")));
    }
    let conference = obj
        .get("conference_id")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty() && c.len() <= 200)
        .ok_or_else(|| bad_request("conference_id: a conference id (1 to 200 characters)"))?;
    let expires_at = match obj.get("expires_at") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .filter(|t| *t > now)
                .ok_or_else(|| bad_request("expires_at: a time in the future, epoch ms, or null"))?,
        ),
    };
    let label = match obj.get("label") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.len() <= 200 => Some(s.clone()),
        Some(_) => return Err(bad_request("label: a string of at most 200 bytes")),
    };
    Ok((conference.to_string(), expires_at, label))
}

/// `POST /api/analytics/links`: creates a link; the token is in this answer only.
pub async fn create(State(app): State<Arc<App>>, headers: HeaderMap, uri: Uri, body: Body) -> Response {
    let run = async {
        let r = reader(&app, &headers, &uri).await?;
        r.require_read_key()?;
        let body = http_body_util::Limited::new(body, MAX_LINK_BODY)
            .collect()
            .await
            .map_err(|_| {
                error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "link request over 4096 bytes")
            })?
            .to_bytes();
        let now = crate::now_millis();
        let (conference_id, expires_at, label) = link_request(&body, now)?;
        let token = crate::config::generate_key(LINK_TOKEN_PREFIX)
            .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e.to_string()))?;
        let link = LinkRow {
            id: uuid::Uuid::now_v7().simple().to_string(),
            project: r.project.id.clone(),
            conference_id,
            label,
            token_hash: token_hash(&token),
            created_at: now,
            expires_at,
            revoked_at: None,
        };
        let stored = link.clone();
        let project = r.project.id.clone();
        blocking(&app, move |s| {
            if s.links(&project)?.len() >= MAX_LINKS {
                return Ok(false);
            }
            s.create_link(&stored).map(|()| true)
        })
        .await?
        .then_some(())
        .ok_or_else(|| {
            error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "too_many_links",
                format!("at most {MAX_LINKS} links per project"),
            )
        })?;
        let mut v = serde_json::to_value(&link).unwrap_or_default();
        v["token"] = json!(token);
        v["revoked"] = json!(false);
        Ok::<_, Response>(json_response(StatusCode::CREATED, v.to_string()))
    };
    run.await.unwrap_or_else(|e| e)
}

/// `GET /api/analytics/links`: the project's links, newest first (without tokens).
pub async fn list(State(app): State<Arc<App>>, headers: HeaderMap, uri: Uri) -> Response {
    let run = async {
        let r = reader(&app, &headers, &uri).await?;
        r.require_read_key()?;
        let project = r.project.id.clone();
        let links = blocking(&app, move |s| s.links(&project)).await?;
        let now = crate::now_millis();
        let list: Vec<Value> = links
            .iter()
            .map(|l| {
                let mut v = serde_json::to_value(l).unwrap_or_default();
                v["revoked"] = json!(l.revoked_at.is_some());
                v["active"] = json!(l.active(now));
                v
            })
            .collect();
        Ok::<_, Response>(json_response(StatusCode::OK, json!({ "links": list }).to_string()))
    };
    run.await.unwrap_or_else(|e| e)
}

/// `DELETE /api/analytics/links/{id}`: revokes a link at once.
pub async fn revoke(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let run = async {
        let r = reader(&app, &headers, &uri).await?;
        r.require_read_key()?;
        let project = r.project.id.clone();
        let found = blocking(&app, move |s| s.revoke_link(&project, &id, crate::now_millis())).await?;
        if !found {
            return Err(error(StatusCode::NOT_FOUND, "not_found", "no such link"));
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    };
    run.await.unwrap_or_else(|e| e)
}
