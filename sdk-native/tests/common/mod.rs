//! A fault-injecting ingest server on loopback for the client's tests: answers each request
//! from a script (status, `Retry-After`, delay), records the events of accepted requests, and
//! can refuse oversized batches with 413.

#![allow(dead_code, reason = "each test file uses a different part")]

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<&'static str>,
    pub delay: Duration,
}

impl Answer {
    pub fn status(status: u16) -> Self {
        Answer { status, retry_after: None, delay: Duration::ZERO }
    }
    pub fn retry_after(mut self, value: &'static str) -> Self {
        self.retry_after = Some(value);
        self
    }
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// What one request looked like.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub events: usize,
    pub gzip: bool,
    pub status: u16,
    /// The request sent its events' context once, as the batch's `context`.
    pub shared_context: bool,
}

#[derive(Debug, Default)]
pub struct Recorded {
    /// Scripted answers, used in order; then 200.
    pub script: VecDeque<Answer>,
    /// Refuse requests with more events than this with 413.
    pub max_events: Option<usize>,
    /// Every request.
    pub requests: Vec<Seen>,
    /// Accepted events by id (a duplicate delivery increments the count).
    pub deliveries: HashMap<String, usize>,
    /// Accepted events in arrival order.
    pub events: Vec<Value>,
}

#[derive(Debug, Clone)]
pub struct FakeServer {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<Recorded>>,
    stop: Arc<tokio::sync::Notify>,
}

impl FakeServer {
    /// Starts on a free loopback port.
    pub fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap())
    }

    /// Starts on `addr` (to bring a "down" server back up on the same port).
    pub fn start_on(addr: SocketAddr) -> Self {
        let listener = std::net::TcpListener::bind(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(Recorded::default()));
        let stop = Arc::new(tokio::sync::Notify::new());
        let (app_state, app_stop) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app =
                    axum::Router::new().route("/api/analytics/events", post(ingest)).with_state(app_state);
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move { app_stop.notified().await })
                    .await
                    .unwrap();
            });
        });
        FakeServer { addr, state, stop }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.state.lock().unwrap().script.extend(answers);
    }

    pub fn set_max_events(&self, max: usize) {
        self.state.lock().unwrap().max_events = Some(max);
    }

    pub fn delivered_ids(&self) -> usize {
        self.state.lock().unwrap().deliveries.len()
    }

    pub fn duplicates(&self) -> usize {
        self.state.lock().unwrap().deliveries.values().filter(|&&n| n > 1).count()
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn events(&self) -> Vec<Value> {
        self.state.lock().unwrap().events.clone()
    }

    pub fn stop(&self) {
        self.stop.notify_one();
    }
}

async fn ingest(State(state): State<Arc<Mutex<Recorded>>>, headers: HeaderMap, body: Bytes) -> Response {
    let gzip = headers.get("content-encoding").is_some_and(|v| v == "gzip");
    let text = if gzip {
        let mut out = String::new();
        flate2::read::GzDecoder::new(&body[..]).read_to_string(&mut out).unwrap();
        out
    } else {
        String::from_utf8(body.to_vec()).unwrap()
    };
    let batch: Value = serde_json::from_str(&text).unwrap();
    let mut events = batch["events"].as_array().cloned().unwrap_or_default();
    // The context a request's events share, merged into each as the server does (each event's
    // own keys win; docs/protocol.md).
    let shared_context = batch["context"].is_object();
    if let Some(shared) = batch["context"].as_object() {
        for e in &mut events {
            let own = e["context"].take();
            let mut context = shared.clone();
            context.extend(own.as_object().cloned().unwrap_or_default());
            e["context"] = Value::Object(context);
        }
    }
    let answer = {
        let mut s = state.lock().unwrap();
        let too_many = s.max_events.is_some_and(|max| events.len() > max);
        if too_many { Answer::status(413) } else { s.script.pop_front().unwrap_or(Answer::status(200)) }
    };
    if !answer.delay.is_zero() {
        tokio::time::sleep(answer.delay).await;
    }
    let mut s = state.lock().unwrap();
    s.requests.push(Seen {
        at: Instant::now(),
        events: events.len(),
        gzip,
        status: answer.status,
        shared_context,
    });
    if answer.status == 200 {
        for e in &events {
            *s.deliveries.entry(e["event_id"].as_str().unwrap().to_string()).or_default() += 1;
        }
        s.events.extend(events.iter().cloned());
    }
    let status = StatusCode::from_u16(answer.status).unwrap();
    let body = if answer.status == 200 {
        format!(r#"{{"accepted":{},"rejected":[]}}"#, events.len())
    } else {
        r#"{"error":"scripted"}"#.to_string()
    };
    let mut response = (status, body).into_response();
    if let Some(v) = answer.retry_after {
        response.headers_mut().insert("retry-after", v.parse().unwrap());
    }
    response
}

/// A loopback port with nothing listening (bound, then released).
pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}
