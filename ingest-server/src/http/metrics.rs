//! Counters and `GET /metrics` in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::App;

/// Upper bounds of the duration histograms' buckets, seconds.
pub const DURATION_BUCKETS: [f64; 12] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// A Prometheus histogram of durations.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    counts: [u64; DURATION_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        for (c, bound) in self.counts.iter_mut().zip(DURATION_BUCKETS) {
            if s <= bound {
                *c += 1;
            }
        }
        self.count += 1;
        self.sum += s;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (c, bound) in self.counts.iter().zip(DURATION_BUCKETS) {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {c}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// Process-wide counters.
#[derive(Debug)]
pub struct Metrics {
    statuses: Vec<AtomicU64>,
    /// Request durations by route pattern.
    routes: Mutex<BTreeMap<String, Histogram>>,
    /// Query endpoint durations by outcome.
    queries: Mutex<BTreeMap<&'static str, Histogram>>,
    accepted: AtomicU64,
    rejected: AtomicU64,
    consumed: AtomicU64,
    deduplicated: AtomicU64,
    /// Whether this process runs a broker consumer (which is what knows the broker-mode lag).
    broker_consumer: AtomicBool,
    /// Ingest requests answered 429, by project and by which limit (`project`, `client`, `quota`).
    rate_limited: Mutex<BTreeMap<(String, &'static str), u64>>,
    connections_open: AtomicI64,
    header_timeouts: AtomicU64,
    body_timeouts: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            statuses: (0..600).map(|_| AtomicU64::new(0)).collect(),
            routes: Mutex::new(BTreeMap::new()),
            queries: Mutex::new(BTreeMap::new()),
            accepted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            consumed: AtomicU64::new(0),
            deduplicated: AtomicU64::new(0),
            broker_consumer: AtomicBool::new(false),
            rate_limited: Mutex::new(BTreeMap::new()),
            connections_open: AtomicI64::new(0),
            header_timeouts: AtomicU64::new(0),
            body_timeouts: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Events accepted (made durable) and rejected by ingest.
    pub fn ingested(&self, accepted: u64, rejected: u64) {
        self.accepted.fetch_add(accepted, Relaxed);
        self.rejected.fetch_add(rejected, Relaxed);
    }

    /// Events stored and duplicates skipped by the consumer.
    pub fn consumed(&self, stored: u64, duplicates: u64) {
        self.consumed.fetch_add(stored, Relaxed);
        self.deduplicated.fetch_add(duplicates, Relaxed);
    }

    /// A broker consumer runs in this process: the queue's stats carry the age of the oldest
    /// batch it holds (see `queue::amqp`), so the lag is known here.
    pub fn broker_consumer_started(&self) {
        self.broker_consumer.store(true, Relaxed);
    }

    /// A query endpoint request took `d` and was answered with `status`.
    pub fn query_took(&self, d: Duration, status: axum::http::StatusCode) {
        let outcome = match status.as_u16() {
            200 => "ok",
            400 | 413 => "invalid",
            401 | 403 => "unauthorized",
            422 => "refused",
            _ => "failed",
        };
        if let Ok(mut q) = self.queries.lock() {
            q.entry(outcome).or_default().observe(d);
        }
    }

    /// An ingest request of `project` was answered 429 by the `scope` limit.
    pub fn rate_limited(&self, project: &str, scope: &'static str) {
        if let Ok(mut r) = self.rate_limited.lock() {
            *r.entry((project.to_string(), scope)).or_default() += 1;
        }
    }

    /// A connection was accepted (`+1`) or closed (`-1`).
    pub fn connections(&self, delta: i64) {
        self.connections_open.fetch_add(delta, Relaxed);
    }

    /// A connection was closed for sending its request headers too slowly (or idling too long).
    pub fn header_timed_out(&self) {
        self.header_timeouts.fetch_add(1, Relaxed);
    }

    /// A request was answered 408 for sending its body too slowly.
    pub fn body_timed_out(&self) {
        self.body_timeouts.fetch_add(1, Relaxed);
    }

    fn route_took(&self, route: &str, d: Duration) {
        if let Ok(mut r) = self.routes.lock() {
            match r.get_mut(route) {
                Some(h) => h.observe(d),
                None => {
                    r.entry(route.to_string()).or_default().observe(d);
                }
            }
        }
    }

    fn status(&self, code: u16) {
        if let Some(c) = self.statuses.get(usize::from(code)) {
            c.fetch_add(1, Relaxed);
        }
    }
}

/// Middleware counting responses by status and timing them by route pattern (a request that
/// matched no route counts as `unmatched`, so paths a client makes up add no series).
pub async fn count_status(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    let resp = next.run(req).await;
    app.metrics.status(resp.status().as_u16());
    app.metrics.route_took(route.as_deref().unwrap_or("unmatched"), started.elapsed());
    resp
}

/// `GET /metrics`.
pub async fn render(State(app): State<Arc<App>>) -> Response {
    let (queue, store) = (app.queue.clone(), app.store.clone());
    let storage = tokio::task::spawn_blocking(move || {
        let cursor = store.cursor().ok()?;
        Some((cursor, queue.stats(cursor).ok()?))
    })
    .await
    .ok()
    .flatten();
    let m = &app.metrics;
    let mut out = String::new();
    out.push_str("# HELP empmix_http_requests_total HTTP responses by status.\n");
    out.push_str("# TYPE empmix_http_requests_total counter\n");
    for (code, c) in m.statuses.iter().enumerate() {
        let n = c.load(Relaxed);
        if n > 0 {
            let _ = writeln!(out, "empmix_http_requests_total{{status=\"{code}\"}} {n}");
        }
    }
    let counters = [
        ("empmix_events_accepted_total", "Events accepted by ingest (durable in the queue).", &m.accepted),
        ("empmix_events_rejected_total", "Events rejected by ingest as invalid.", &m.rejected),
        ("empmix_events_consumed_total", "Events stored by this process's consumer.", &m.consumed),
        (
            "empmix_events_deduplicated_total",
            "Duplicate events skipped by this process's consumer.",
            &m.deduplicated,
        ),
    ];
    for (name, help, c) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", c.load(Relaxed));
    }
    out.push_str("# HELP empmix_rate_limited_total Ingest requests answered 429, by project and limit.\n");
    out.push_str("# TYPE empmix_rate_limited_total counter\n");
    if let Ok(limited) = m.rate_limited.lock() {
        for ((project, scope), n) in limited.iter() {
            let project = project.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(out, "empmix_rate_limited_total{{project=\"{project}\",scope=\"{scope}\"}} {n}");
        }
    }
    let _ = writeln!(
        out,
        "# HELP empmix_http_connections Open HTTP connections.\n# TYPE empmix_http_connections gauge\nempmix_http_connections {}",
        m.connections_open.load(Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP empmix_http_timeouts_total Connections closed for slow headers or idling, requests answered 408 for a slow body.\n# TYPE empmix_http_timeouts_total counter\nempmix_http_timeouts_total{{phase=\"header\"}} {}\nempmix_http_timeouts_total{{phase=\"body\"}} {}",
        m.header_timeouts.load(Relaxed),
        m.body_timeouts.load(Relaxed)
    );
    out.push_str("# HELP empmix_http_request_duration_seconds HTTP request durations by route.\n");
    out.push_str("# TYPE empmix_http_request_duration_seconds histogram\n");
    if let Ok(routes) = m.routes.lock() {
        for (route, h) in routes.iter() {
            h.render(&mut out, "empmix_http_request_duration_seconds", &format!("route=\"{route}\""));
        }
    }
    out.push_str("# HELP empmix_query_duration_seconds Query endpoint durations by outcome.\n");
    out.push_str("# TYPE empmix_query_duration_seconds histogram\n");
    if let Ok(queries) = m.queries.lock() {
        for (outcome, h) in queries.iter() {
            h.render(&mut out, "empmix_query_duration_seconds", &format!("outcome=\"{outcome}\""));
        }
    }
    let (depth, lag) = match storage {
        Some((_, stats)) => (
            stats.depth as f64,
            match stats.oldest_received_at {
                // The embedded queue: its oldest row. A broker consumer: the oldest batch handed
                // to it and not yet acknowledged, which is older than any ready message (FIFO).
                Some(t) => (crate::now_millis() - t).max(0) as f64 / 1000.0,
                // Nothing unconsumed (a broker consumer holding nothing with no message ready).
                None if stats.depth == 0 && (app.queue.ordered() || m.broker_consumer.load(Relaxed)) => 0.0,
                // A broker process without a consumer sees neither the batches the consumers hold
                // nor the age of ready messages: not known here (read it from the consumers).
                None => f64::NAN,
            },
        ),
        None => (f64::NAN, f64::NAN),
    };
    let _ = writeln!(
        out,
        "# HELP empmix_queue_depth Batches in the queue not yet consumed.\n# TYPE empmix_queue_depth gauge\nempmix_queue_depth {depth}"
    );
    let _ = writeln!(
        out,
        "# HELP empmix_consumer_lag_seconds Age of the oldest unconsumed batch (broker mode: of those this process's consumer holds; NaN without a consumer).\n# TYPE empmix_consumer_lag_seconds gauge\nempmix_consumer_lag_seconds {lag}"
    );
    let mut resp = (StatusCode::OK, out).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    resp
}
