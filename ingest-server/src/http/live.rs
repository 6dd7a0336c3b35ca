//! `GET /api/analytics/live` (Server-Sent Events) and its polling twin
//! `GET /api/analytics/live/summary` (read key or dashboard link).
//!
//! A stream sends a `summary` event when the store changed (see [`crate::live`]) or the time
//! windows moved and what it shows is different, at most once a second. Each event's id is a
//! hash of what it shows, so a client reconnecting with `Last-Event-ID` is not sent the same
//! numbers again; the numbers are absolute, so nothing is counted twice either way.

use std::convert::Infallible;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use jiff::tz::TimeZone;

use super::access::reader;
use super::{App, auth, error, json};
use crate::live::{self, LiveSummary};

/// At most one message per this long.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Without changes, how often the moving windows are looked at again.
pub const REFRESH: Duration = Duration::from_secs(5);
/// Keep-alive comment interval.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// The reconnection delay suggested to clients.
pub const RETRY: Duration = Duration::from_secs(2);

struct Target {
    app: Arc<App>,
    project: String,
    tz: TimeZone,
    conference: Option<String>,
}

impl Target {
    async fn summary(&self) -> Result<(LiveSummary, i64), StatusCode> {
        let (store, project, tz, conference) =
            (self.app.store.clone(), self.project.clone(), self.tz.clone(), self.conference.clone());
        let now = crate::now_millis();
        match tokio::task::spawn_blocking(move || {
            live::summary(store.as_ref(), &project, &tz, conference.as_deref(), now)
        })
        .await
        {
            Ok(Ok(s)) => Ok((s, now)),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "live summary failed");
                Err(StatusCode::SERVICE_UNAVAILABLE)
            }
            Err(_) => Err(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
}

/// The summary as sent: its fields plus `at`, and its id (a hash of the fields without `at`).
fn encode(summary: &LiveSummary, at: i64) -> (String, String) {
    let mut v = serde_json::to_value(summary).unwrap_or_default();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.to_string().hash(&mut h);
    v["at"] = serde_json::json!(at);
    (v.to_string(), format!("{:016x}", h.finish()))
}

async fn target(app: Arc<App>, headers: &HeaderMap, uri: &Uri) -> Result<Target, Response> {
    let r = reader(&app, headers, uri).await?;
    let conference =
        r.conference_or(auth::query_params(uri).remove("conference_id").filter(|c| !c.is_empty()))?;
    let tz = TimeZone::get(&r.project.time_zone).unwrap_or(TimeZone::UTC);
    Ok(Target { app, project: r.project.id.clone(), tz, conference })
}

/// `GET /api/analytics/live/summary?conference_id=…`.
pub async fn summary(State(app): State<Arc<App>>, headers: HeaderMap, uri: Uri) -> Response {
    let t = match target(app, &headers, &uri).await {
        Ok(t) => t,
        Err(resp) => return resp,
    };
    match t.summary().await {
        Ok((s, at)) => json(StatusCode::OK, encode(&s, at).0),
        Err(status) => error(status, "unavailable", "storage unavailable"),
    }
}

struct StreamState {
    target: Target,
    changes: tokio::sync::watch::Receiver<u64>,
    last_id: Option<String>,
    last_sent: Option<tokio::time::Instant>,
    first: bool,
}

/// `GET /api/analytics/live?conference_id=…`.
pub async fn stream(State(app): State<Arc<App>>, headers: HeaderMap, uri: Uri) -> Response {
    let changes = app.live.subscribe();
    let target = match target(app, &headers, &uri).await {
        Ok(t) => t,
        Err(resp) => return resp,
    };
    let last_id = headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(String::from);
    let state = StreamState { target, changes, last_id, last_sent: None, first: true };
    let events = futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if st.target.app.live.is_closed() {
                return None;
            }
            if !st.first {
                tokio::select! {
                    changed = st.changes.changed() => if changed.is_err() { return None },
                    () = tokio::time::sleep(REFRESH) => {}
                }
                if let Some(at) = st.last_sent {
                    tokio::time::sleep_until(at + MIN_INTERVAL).await;
                }
                // Changes during the wait are covered by what is computed now.
                st.changes.borrow_and_update();
                if st.target.app.live.is_closed() {
                    return None;
                }
            }
            let first = std::mem::replace(&mut st.first, false);
            let Ok((summary, at)) = st.target.summary().await else { continue };
            let (body, id) = encode(&summary, at);
            if st.last_id.as_deref() == Some(id.as_str()) {
                continue;
            }
            st.last_id = Some(id.clone());
            st.last_sent = Some(tokio::time::Instant::now());
            let mut event = Event::default().event("summary").id(id).data(body);
            if first {
                event = event.retry(RETRY);
            }
            return Some((Ok::<_, Infallible>(event), st));
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive")).into_response()
}
