//! The live stream over real HTTP: a posted page view shows up in the SSE stream and its JSON
//! twin, a reconnect with `Last-Event-ID` is not sent the same numbers again, and in scale-out
//! mode a stream served by one process sees an event that another process consumed.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test assertions: a failure is a test failure")]

mod common;
mod scale_support;

use std::time::Duration;

use common::sse::Stream;
use common::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

fn view(conference: &str, who: &str, url: &str) -> (String, Value) {
    let event_id = id();
    let e = json!({"event_id": event_id, "type": "page_view", "distinct_id": who, "session_id": format!("s-{who}"),
                   "timestamp": now_ms(), "properties": {"conference_id": conference, "url": url}});
    (event_id, e)
}

fn shows(event_id: &str) -> impl Fn(&Value) -> bool + '_ {
    move |v| v["newest"].as_array().is_some_and(|n| n.iter().any(|e| e["event_id"] == event_id))
}

#[test]
fn a_page_view_reaches_the_stream_and_the_summary() {
    let s = start();
    let auth = format!("Bearer {}", s.server.read_key());
    let mut stream =
        Stream::open(s.server.addr(), "/api/analytics/live?conference_id=c1", &[("Authorization", &auth)]);
    assert_eq!(stream.status, 200, "{}", stream.head);
    assert!(stream.head.to_ascii_lowercase().contains("content-type: text/event-stream"), "{}", stream.head);
    let first = stream.next(WAIT).expect("a first summary at once");
    assert_eq!(first.event, "summary");
    assert_eq!(first.retry, Some(2000), "the first message suggests a reconnection delay");
    assert_eq!(first.json()["page_views_today"], 0);

    let (event_id, e) = view("c1", "A", "/agenda");
    let (_, other) = view("c2", "B", "/elsewhere");
    assert_eq!(s.post(&json!({"events": [e, other]}).to_string()).status, 200);
    let m = stream.until(WAIT, shows(&event_id)).expect("the page view on the stream");
    let v = m.json();
    assert_eq!((v["active_visitors"].clone(), v["page_views_last_minute"].clone()), (json!(1), json!(1)));
    assert_eq!(v["page_views_today"], 1, "only conference c1 is counted");
    assert_eq!(v["newest"][0]["page"], "/agenda");
    assert!(v["newest"].as_array().unwrap().iter().all(|e| e["type"] == "page_view"));

    let summary = s.query("/api/analytics/live/summary?conference_id=c1").json();
    for k in ["active_visitors", "page_views_last_minute", "page_views_today", "newest"] {
        assert_eq!(summary[k], v[k], "{k}");
    }

    // Reconnecting where it left off: the same numbers are not sent again; the next change is.
    let last = m.id.clone().expect("messages carry ids");
    drop(stream);
    let mut again = Stream::open(
        s.server.addr(),
        "/api/analytics/live?conference_id=c1",
        &[("Authorization", &auth), ("Last-Event-ID", &last)],
    );
    let (second, e2) = view("c1", "C", "/speakers");
    assert_eq!(s.post(&json!({"events": [e2]}).to_string()).status, 200);
    let next = again.next(WAIT).expect("a message after the next change");
    assert!(
        shows(&second)(&next.json()),
        "the first message after the reconnect is the new state: {}",
        next.data
    );
    assert_eq!(next.json()["page_views_today"], 2);
}

#[test]
fn the_stream_needs_the_read_key() {
    let s = start();
    let stream = Stream::open(s.server.addr(), "/api/analytics/live", &[("Authorization", "Bearer nope")]);
    assert_eq!(stream.status, 401);
    let ingest = format!("Bearer {}", s.server.ingest_key());
    let stream = Stream::open(s.server.addr(), "/api/analytics/live", &[("Authorization", &ingest)]);
    assert_eq!(stream.status, 401);
}

/// Ingest in one process, the consumer in a second, the stream served by a third: the signal
/// crosses processes through PostgreSQL.
#[test]
fn scale_out_stream_sees_an_event_consumed_by_another_process() {
    if !scale_support::services_available("scale_out_stream_sees_an_event_consumed_by_another_process") {
        return;
    }
    let (db, queue) = (scale_support::TestDb::create(), scale_support::TestQueue::new());
    let ingest = scale_support::ingest(&db, &queue);
    let viewer = scale_support::ingest(&db, &queue);
    let _consumer = scale_support::consumer(&db, &queue);
    let auth = format!("Bearer {}", scale_support::READ_KEY);
    let mut stream =
        Stream::open(viewer.addr(), "/api/analytics/live?conference_id=c1", &[("Authorization", &auth)]);
    assert_eq!(stream.status, 200, "{}", stream.head);
    stream.next(WAIT).expect("a first summary");
    let (event_id, e) = view("c1", "A", "/agenda");
    let mut client = ingest.client();
    let r = client
        .request(
            "POST",
            "/api/analytics/events",
            &[("Content-Type", "application/json"), ("X-API-Key", scale_support::INGEST_KEY)],
            json!({"events": [e]}).to_string().as_bytes(),
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let m = stream
        .until(Duration::from_secs(20), shows(&event_id))
        .expect("the event on the other process's stream");
    assert_eq!(m.json()["page_views_today"], 1);
}
