//! Helpers shared by the integration tests: a real server on loopback over a temp data
//! directory, requests, and polling with a deadline.

#![allow(dead_code)]

pub mod sse;

use std::io::Write;
use std::time::Duration;

use empmix_server::loopback::{Client, HttpResponse};
use empmix_server::{RunningServer, Server, ServerConfig};
use serde_json::Value;

pub struct TestServer {
    pub server: RunningServer,
    pub dir: tempfile::TempDir,
}

pub fn start() -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new(dir.path());
    config.worker_threads = Some(2);
    let server = Server::start(config).unwrap();
    TestServer { server, dir }
}

pub fn start_with(config: impl FnOnce(ServerConfig) -> ServerConfig) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut base = ServerConfig::new(dir.path());
    base.worker_threads = Some(2);
    let server = Server::start(config(base)).unwrap();
    TestServer { server, dir }
}

impl TestServer {
    pub fn client(&self) -> Client {
        Client::new(self.server.addr())
    }

    /// POSTs a JSON body to the ingest endpoint with the ingest key in `X-API-Key`.
    pub fn post(&self, body: &str) -> HttpResponse {
        let key = self.server.ingest_key().to_string();
        self.client()
            .request(
                "POST",
                "/api/analytics/events",
                &[("Content-Type", "application/json"), ("X-API-Key", &key)],
                body.as_bytes(),
            )
            .unwrap()
    }

    /// GETs a query endpoint with the read key.
    pub fn query(&self, path: &str) -> HttpResponse {
        let auth = format!("Bearer {}", self.server.read_key());
        self.client().get(path, &[("Authorization", &auth)]).unwrap()
    }

    /// Polls a query endpoint until `done` holds for its JSON body, failing after 10 s.
    pub fn poll(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        poll_until(|| {
            let r = self.query(path);
            assert_eq!(r.status, 200, "{path}: {}", r.text());
            let v = r.json();
            done(&v).then_some(v)
        })
        .unwrap_or_else(|| panic!("{path} never satisfied the condition; last: {}", self.query(path).text()))
    }

    /// The daily summary of one conference and day, once it satisfies `done`.
    pub fn daily(&self, conference: &str, day: &str, done: impl Fn(&Value) -> bool) -> Value {
        let path = format!("/api/analytics/daily?conference_id={conference}&from={day}&to={day}");
        let v = self.poll(&path, |v| v.as_array().and_then(|a| a.first()).is_some_and(&done));
        v[0].clone()
    }
}

pub use empmix_test_support::poll;

/// [`poll`] for at most 10 s.
pub fn poll_until<T>(f: impl FnMut() -> Option<T>) -> Option<T> {
    poll(Duration::from_secs(10), f)
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// Today in UTC as `YYYY-MM-DD`.
pub fn today() -> String {
    jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date().to_string()
}

/// Epoch ms now.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

pub fn fixture(name: &str) -> String {
    let path = format!("{}/../sdk-core/fixtures/protocol/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A fresh UUIDv7 event id.
pub fn id() -> String {
    uuid::Uuid::now_v7().to_string()
}
