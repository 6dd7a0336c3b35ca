//! Helpers shared by the integration tests: a real server on loopback over a temp data
//! directory, requests, and polling with a deadline.

#![allow(dead_code)]

pub mod sse;

use std::io::Write;
use std::time::Duration;

use empmix_server::loopback::{Client, HttpResponse};
use empmix_server::{RunningServer, Server, ServerConfig};
use serde_json::{Value, json};

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

/// The address a spawned `empmix-server` announces on stdout (within 30 s); stdout is drained
/// afterwards so the child never blocks on a full pipe.
pub fn announced_addr(child: &mut std::process::Child) -> std::net::SocketAddr {
    announced(child, "empmix-server listening on http://")
}

/// The address a child prints after `prefix` on its standard output.
pub fn announced(child: &mut std::process::Child, prefix: &'static str) -> std::net::SocketAddr {
    use std::io::{BufRead, BufReader};
    let stdout = child.stdout.take().expect("the child's stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix(prefix) {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(30)).expect("the server announced its address");
    addr.parse().expect("an address")
}

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

/// An event of `who` (also its anonymous id and session) now.
pub fn event(kind: &str, who: &str, props: Value) -> Value {
    json!({"event_id": id(), "type": kind, "distinct_id": who, "anonymous_id": who, "session_id": format!("s-{who}"),
           "timestamp": now_ms(), "properties": props})
}

/// A shares code `a`; B opens it and re-shares as `b`; C opens `b` and registers with `b`.
pub fn share_scenario() -> Vec<Value> {
    let conf = "conf1";
    let mut reg = event("registration", "C", json!({"conference_id": conf}));
    reg["attribution"] = json!("b");
    vec![
        event(
            "share",
            "A",
            json!({"conference_id": conf, "share_code": "a", "channel": "wechat", "target_url": "https://m.example/c"}),
        ),
        event("share_open", "B", json!({"share_code": "a"})),
        event(
            "share",
            "B",
            json!({"conference_id": conf, "share_code": "b", "channel": "copy_link", "target_url": "https://m.example/c", "parent_share_code": "a"}),
        ),
        event("share_open", "C", json!({"share_code": "b"})),
        // A opening their own link credits nobody.
        event("share_open", "A", json!({"share_code": "a"})),
        reg,
    ]
}
