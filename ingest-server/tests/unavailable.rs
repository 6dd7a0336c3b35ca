//! A queue that cannot make batches durable turns into 503 (clients retry), and readiness
//! reports it.

// Helpers outside #[test] functions panic on purpose too: this is a test crate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use empmix_server::ProjectConfig;
use empmix_server::http::{App, auth::Projects, metrics::Metrics, router};
use empmix_server::loopback::Client;
use empmix_server::queue::{Delivery, Publish, Queue, QueueError, QueueStats, QueuedBatch};
use empmix_server::store::sqlite::SqliteStore;

/// A queue whose disk is gone.
#[derive(Debug)]
struct BrokenQueue;

impl Queue for BrokenQueue {
    fn publish(&self, _batch: QueuedBatch) -> Publish {
        Box::pin(async { Err(QueueError::Io(std::io::Error::other("disk full"))) })
    }
    fn receive(&self, _after: u64, _max: usize, _wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        Ok(Vec::new())
    }
    fn ack(&self, _through: u64) -> Result<(), QueueError> {
        Ok(())
    }
    fn stats(&self, _after: u64) -> Result<QueueStats, QueueError> {
        Ok(QueueStats::default())
    }
    fn check(&self) -> Result<(), QueueError> {
        Err(QueueError::Io(std::io::Error::other("disk full")))
    }
}

#[test]
fn a_queue_failure_is_503_and_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(App {
        projects: Projects::new(&[ProjectConfig::new("p", "pk", "sk")]),
        queue: Arc::new(BrokenQueue),
        store: Arc::new(SqliteStore::open(dir.path()).unwrap()),
        metrics: Arc::new(Metrics::default()),
        live: Arc::default(),
        query_budget: std::time::Duration::from_secs(5),
    });
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move { axum::serve(listener, router(app)).await });
    let mut c = Client::new(addr);
    let body = br#"{"events": [{"type": "page_view", "conference_id": "test"}]}"#;
    // From a browser page on another origin, as the browser package sends.
    let headers = [("X-API-Key", "pk"), ("Origin", "https://m.example")];
    let r = c.request("POST", "/api/analytics/events", &headers, body).unwrap();
    assert_eq!((r.status, r.json()["error"].clone()), (503, serde_json::json!("unavailable")));
    assert_eq!(r.header("retry-after"), Some("5"));
    // Retry-After is not CORS-safelisted: unexposed, the page's fetch() would read null.
    assert_eq!(r.header("access-control-allow-origin"), Some("https://m.example"));
    assert_eq!(r.header("access-control-expose-headers"), Some("retry-after"));
    assert_eq!(c.get("/readyz", &[]).unwrap().status, 503);
    assert_eq!(c.get("/healthz", &[]).unwrap().status, 200);
    // Nothing to make durable (an empty batch) is still a 200.
    let r = c.request("POST", "/api/analytics/events", &[("X-API-Key", "pk")], br#"{"events": []}"#).unwrap();
    assert_eq!(r.status, 200);
}
