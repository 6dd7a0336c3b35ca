//! Query endpoints (read key required) and readiness.

// Early returns carry the finished error response; it is built once per failed request.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::json;

use super::access::{Reader, reader};
use super::{App, auth, error};
use crate::config::ProjectConfig;
use crate::consumer::credit::CreditModel;
use crate::consumer::tree;
use crate::store::{EventFilter, Store, StoreError};

/// Most events one page of `GET /api/analytics/events` returns.
pub const MAX_EVENTS_PAGE: usize = 1000;

/// The reader (read key or dashboard link) and the query parameters, with `conference_id`
/// replaced by the link's conference (a link asking for another one is refused).
async fn authorize(
    app: &App,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<(Arc<ProjectConfig>, HashMap<String, String>, Reader), Response> {
    let r = reader(app, headers, uri).await?;
    let mut params = auth::query_params(uri);
    match r.conference_or(params.remove("conference_id"))? {
        Some(c) => params.insert("conference_id".into(), c),
        None => None,
    };
    Ok((r.project.clone(), params, r))
}

fn bad_request(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "bad_request", message)
}

/// Runs a blocking store read off the async workers; storage errors are 503.
async fn read<T: Send + 'static>(
    app: &App,
    f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Response> {
    let store = app.store.clone();
    match tokio::task::spawn_blocking(move || f(store.as_ref())).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "query failed");
            Err(error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "storage unavailable"))
        }
        Err(_) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "query panicked")),
    }
}

/// A 200 with `value` serialized in field declaration order.
fn ok(value: &impl serde::Serialize) -> Response {
    match serde_json::to_string(value) {
        Ok(body) => super::json(StatusCode::OK, body),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

fn date_param(params: &HashMap<String, String>, key: &str, default: &str) -> Result<String, Response> {
    match params.get(key) {
        None => Ok(default.to_string()),
        Some(d) => match d.parse::<jiff::civil::Date>() {
            Ok(date) => Ok(date.to_string()),
            Err(_) => Err(bad_request(format!("{key} must be YYYY-MM-DD"))),
        },
    }
}

/// `GET /api/analytics/daily?conference_id=…&from=YYYY-MM-DD&to=YYYY-MM-DD`: a JSON array of
/// daily summaries (days without events are absent).
pub async fn daily(State(app): State<Arc<App>>, headers: HeaderMap, uri: Uri) -> Response {
    let run = async {
        let (project, params, _) = authorize(&app, &headers, &uri).await?;
        let conference =
            params.get("conference_id").cloned().ok_or_else(|| bad_request("conference_id is required"))?;
        let from = date_param(&params, "from", "0000-01-01")?;
        let to = date_param(&params, "to", "9999-12-31")?;
        let rows = read(&app, move |s| s.daily(&project.id, &conference, &from, &to)).await?;
        Ok(ok(&rows))
    };
    run.await.unwrap_or_else(|e| e)
}

/// The forest of the request's conference under the request's credit model (`credit`, `decay`).
async fn share_forest(
    app: &App,
    project: Arc<ProjectConfig>,
    params: &HashMap<String, String>,
) -> Result<(Option<String>, CreditModel, Vec<tree::TreeNode>), Response> {
    let conference = params.get("conference_id").cloned();
    let model = CreditModel::from_query(
        params.get("credit").map(String::as_str),
        params.get("decay").map(String::as_str),
    )
    .map_err(|e| bad_request(e.to_string()))?;
    let facts = read(app, move |s| s.share_facts(&project.id)).await?;
    let forest = tree::build_with(&facts, conference.as_deref(), model);
    Ok((conference, model, forest))
}

/// `GET /api/analytics/shares/tree?conference_id=…&credit=full|equal|decay|first|last&decay=0.5`:
/// the attribution forest with each share's credit under the model, statistics per generation
/// (depth) and totals.
pub async fn share_tree(State(app): State<Arc<App>>, headers: HeaderMap, uri: Uri) -> Response {
    let run = async {
        let (project, params, _) = authorize(&app, &headers, &uri).await?;
        let (conference, model, forest) = share_forest(&app, project, &params).await?;
        #[derive(serde::Serialize)]
        struct Forest {
            conference_id: Option<String>,
            credit: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            decay: Option<f64>,
            trees: Vec<tree::TreeNode>,
            generations: Vec<tree::Generation>,
            totals: tree::Totals,
        }
        let (generations, totals) = (tree::generations(&forest), tree::totals(&forest));
        Ok(ok(&Forest {
            conference_id: conference,
            credit: model.name(),
            decay: model.decay(),
            trees: forest,
            generations,
            totals,
        }))
    };
    run.await.unwrap_or_else(|e| e)
}

/// `GET /api/analytics/shares/leaderboard?conference_id=…&credit=…&decay=…&limit=20`: the
/// sharers (resolved visitors) of the tree's shares, by credited conversions, then direct
/// registrations (both descending), then sharer; `limit` (default 20) is clamped to 1..=1000.
pub async fn share_leaderboard(State(app): State<Arc<App>>, headers: HeaderMap, uri: Uri) -> Response {
    let run = async {
        let (project, params, _) = authorize(&app, &headers, &uri).await?;
        let limit = match params.get("limit") {
            None => 20,
            Some(l) => {
                l.parse::<usize>().map_err(|_| bad_request("limit must be an integer"))?.clamp(1, 1000)
            }
        };
        let (conference, model, forest) = share_forest(&app, project, &params).await?;
        #[derive(serde::Serialize)]
        struct Board {
            conference_id: Option<String>,
            credit: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            decay: Option<f64>,
            sharers: Vec<tree::SharerRow>,
        }
        Ok(ok(&Board {
            conference_id: conference,
            credit: model.name(),
            decay: model.decay(),
            sharers: tree::leaderboard(&forest, limit),
        }))
    };
    run.await.unwrap_or_else(|e| e)
}

/// `GET /api/analytics/sessions?distinct_id=…`: the person's sessions, newest first.
pub async fn sessions(State(app): State<Arc<App>>, headers: HeaderMap, uri: Uri) -> Response {
    let run = async {
        let (project, params, r) = authorize(&app, &headers, &uri).await?;
        // A person's sessions cross conferences: not for a one-conference link.
        r.require_read_key()?;
        let id = params.get("distinct_id").cloned().ok_or_else(|| bad_request("distinct_id is required"))?;
        let lookup = id.clone();
        let rows = read(&app, move |s| s.sessions(&project.id, &lookup)).await?;
        Ok(ok(&json!({ "distinct_id": id, "sessions": rows })))
    };
    run.await.unwrap_or_else(|e| e)
}

/// `GET /api/analytics/events?distinct_id=&type=&conference_id=&before=&limit=`: stored events,
/// newest first; pass `next_before` as `before` for the next page.
pub async fn events(State(app): State<Arc<App>>, headers: HeaderMap, uri: Uri) -> Response {
    let run = async {
        let (project, params, _) = authorize(&app, &headers, &uri).await?;
        let number = |k: &str| -> Result<Option<i64>, Response> {
            params
                .get(k)
                .map(|v| v.parse::<i64>().map_err(|_| bad_request(format!("{k} must be an integer"))))
                .transpose()
        };
        let limit = number("limit")?.unwrap_or(100).clamp(1, MAX_EVENTS_PAGE as i64) as usize;
        let filter = EventFilter {
            distinct_id: params.get("distinct_id").cloned(),
            name: params.get("type").cloned(),
            conference_id: params.get("conference_id").cloned(),
            before: number("before")?,
            limit,
        };
        let rows = read(&app, move |s| s.events(&project.id, &filter)).await?;
        let next = if rows.len() == limit { rows.last().map(|r| r.cursor) } else { None };
        Ok(ok(&json!({ "events": rows, "next_before": next })))
    };
    run.await.unwrap_or_else(|e| e)
}

/// `GET /readyz`: 200 only when the queue and the store answer.
pub async fn readyz(State(app): State<Arc<App>>) -> Response {
    let (queue, store) = (app.queue.clone(), app.store.clone());
    let result = tokio::task::spawn_blocking(move || -> Result<(), String> {
        queue.check().map_err(|e| e.to_string())?;
        store.check().map_err(|e| e.to_string())
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    match result {
        Ok(()) => super::json(StatusCode::OK, r#"{"status":"ready"}"#.into()),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "not_ready", e),
    }
}
