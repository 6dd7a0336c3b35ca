//! The live view: visitors active in the last five minutes, page views in the last minute and
//! today, and the newest events — and the signal that they may have changed.
//!
//! The signal comes from the store ([`crate::store::Store::changes`]): PostgreSQL `NOTIFY` sent
//! by whichever consumer process committed, or SQLite's data version, so a stream served by one
//! process sees events stored by another. [`LiveHub`] turns it into a counter that each stream
//! waits on; a stream recomputes its [`LiveSummary`] (absolute numbers, never deltas, so a
//! reconnecting client cannot count anything twice) and sends it when it differs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use jiff::tz::TimeZone;
use serde::Serialize;

use crate::query::{range, sql};
use crate::store::{Cell, EventFilter, Store, StoreError};

/// Visitors count as active this long after their last event.
pub const ACTIVE_WINDOW_MS: i64 = 5 * 60 * 1000;
/// Newest events in a summary.
pub const NEWEST: usize = 5;
/// Longest a summary's queries may run.
const BUDGET: Duration = Duration::from_secs(2);

/// One of the newest events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveEvent {
    /// Its id (a client can tell events it already showed).
    pub event_id: String,
    /// Type.
    #[serde(rename = "type")]
    pub name: String,
    /// Server time, epoch ms.
    pub at: i64,
    /// `properties.url` (or `context.url`, `properties.page`), when it has one.
    pub page: Option<String>,
    /// Who.
    pub distinct_id: Option<String>,
}

/// What the live panel shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveSummary {
    /// The conference (`None`: all of the project).
    pub conference_id: Option<String>,
    /// Distinct persons with an event in the last five minutes.
    pub active_visitors: i64,
    /// Page views in the last minute.
    pub page_views_last_minute: i64,
    /// Page views today (the project's time zone), from the daily summary.
    pub page_views_today: i64,
    /// The newest stored events, newest first.
    pub newest: Vec<LiveEvent>,
}

/// Computes the summary at `now_ms`.
pub fn summary(
    store: &dyn Store,
    project: &str,
    tz: &TimeZone,
    conference: Option<&str>,
    now_ms: i64,
) -> Result<LiveSummary, StoreError> {
    let deadline = Instant::now() + BUDGET;
    let dialect = store.dialect();
    let counts = sql::live_counts(dialect, project, conference, now_ms - ACTIVE_WINDOW_MS, now_ms - 60_000);
    let row = store.aggregate(&counts.sql, &counts.params, deadline)?;
    let today = range::local_date(now_ms, tz).to_string();
    let pv = sql::page_views_on(dialect, project, conference, &today);
    let pv_row = store.aggregate(&pv.sql, &pv.params, deadline)?;
    let int = |rows: &[Vec<Cell>], i: usize| match rows.first().and_then(|r| r.get(i)) {
        Some(Cell::Int(n)) => *n,
        _ => 0,
    };
    let events = store.events(
        project,
        &EventFilter { conference_id: conference.map(String::from), limit: NEWEST, ..EventFilter::default() },
    )?;
    let newest = events
        .into_iter()
        .map(|e| {
            let page = ["url", "page"]
                .iter()
                .find_map(|k| e.properties.get(*k).and_then(|v| v.as_str()))
                .or_else(|| e.context.get("url").and_then(|v| v.as_str()))
                .map(String::from);
            LiveEvent {
                event_id: e.event_id,
                name: e.name,
                at: e.server_ts,
                page,
                distinct_id: e.distinct_id,
            }
        })
        .collect();
    Ok(LiveSummary {
        conference_id: conference.map(String::from),
        active_visitors: int(&row, 0),
        page_views_last_minute: int(&row, 1),
        page_views_today: int(&pv_row, 0),
        newest,
    })
}

/// The change counter streams wait on.
#[derive(Debug)]
pub struct LiveHub {
    changes: tokio::sync::watch::Sender<u64>,
    closed: AtomicBool,
}

impl Default for LiveHub {
    fn default() -> Self {
        LiveHub { changes: tokio::sync::watch::Sender::new(0), closed: AtomicBool::new(false) }
    }
}

impl LiveHub {
    /// A receiver that wakes on every change after now.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The store changed.
    pub fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The server is stopping: streams end (so a graceful shutdown does not wait on them).
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.changed();
    }

    /// Whether [`LiveHub::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

/// A thread feeding the hub from the store's change feed, until stopped.
#[derive(Debug)]
pub struct LiveWatcher {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LiveWatcher {
    /// Starts watching `store` for `hub`.
    pub fn spawn(store: Arc<dyn Store>, hub: Arc<LiveHub>) -> std::io::Result<LiveWatcher> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new().name("empmix-live".into()).spawn(move || {
            let mut feed = None;
            while !flag.load(Ordering::SeqCst) {
                if feed.is_none() {
                    match store.changes() {
                        Ok(f) => feed = Some(f),
                        Err(e) => {
                            tracing::warn!(error = %e, "live stream: cannot watch the store; retrying");
                            std::thread::sleep(Duration::from_secs(1));
                            continue;
                        }
                    }
                }
                let Some(f) = feed.as_mut() else { continue };
                match f.wait(Duration::from_millis(500)) {
                    Ok(true) => hub.changed(),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "live stream: store watch failed; reconnecting");
                        feed = None;
                        // Whatever happened meanwhile is unknown: let streams look.
                        hub.changed();
                    }
                }
            }
        })?;
        Ok(LiveWatcher { stop, thread: Some(thread) })
    }

    /// Stops the thread and waits for it.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for LiveWatcher {
    fn drop(&mut self) {
        self.stop();
    }
}
