//! The ingest API over real HTTP on loopback against a temp data directory.

// Helpers outside #[test] functions panic on purpose too: this is a test crate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{Value, json};

const SEED_CURL_BODY: &str = r#"{"events": [{"type": "page_view", "conference_id": "test", "page": "/"}]}"#;

#[test]
fn seed_curl_example_is_accepted_and_visible_in_the_daily_summary() {
    let s = start();
    assert_eq!(common::fixture("request_seed_minimal.json").trim(), SEED_CURL_BODY);
    let r = s.post(SEED_CURL_BODY);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"accepted": 1, "rejected": []}));
    let day = s.daily("test", &today(), |d| d["pv"] == 1);
    assert_eq!(
        day,
        json!({"date": today(), "conference_id": "test", "pv": 1, "uv": 1, "registrations": 0, "checkins": 0, "shares": 0, "share_conversions": 0})
    );
    // The server assigned a UUIDv7 event id.
    let events = s.query("/api/analytics/events?type=page_view").json();
    let assigned = events["events"][0]["event_id"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(assigned).unwrap().get_version_num(), 7);
}

#[test]
fn partially_invalid_batch_answers_the_golden_response_and_keeps_the_valid_events() {
    let s = start();
    let r = s.post(&fixture("request_partial_invalid.json"));
    assert_eq!(r.status, 200, "{}", r.text());
    let want: Value = serde_json::from_str(&fixture("response_partial_invalid.json")).unwrap();
    assert_eq!(r.json(), want);
    // The two valid events (a page view and a registration, conference abc) are stored; their
    // client times are a second before the fixture's sent_at, so they count on today's date.
    let day = s.daily("abc", &today(), |d| d["pv"] == 1 && d["registrations"] == 1);
    assert_eq!(day["uv"], 1);
}

#[test]
fn the_same_batch_posted_twice_is_counted_once() {
    let s = start();
    let body = json!({"sent_at": now_ms(), "events": [
        {"event_id": id(), "type": "page_view", "distinct_id": "u1", "timestamp": now_ms(), "properties": {"conference_id": "dup"}},
        {"event_id": id(), "type": "checkin", "distinct_id": "u1", "timestamp": now_ms(), "properties": {"conference_id": "dup"}},
    ]})
    .to_string();
    assert_eq!(s.post(&body).status, 200);
    assert_eq!(s.post(&body).status, 200);
    // A third, different event proves the consumer went past both copies.
    let marker = json!({"events": [{"event_id": id(), "type": "page_view", "distinct_id": "u2", "properties": {"conference_id": "dup"}}]});
    assert_eq!(s.post(&marker.to_string()).status, 200);
    let day = s.daily("dup", &today(), |d| d["pv"] == 2);
    assert_eq!(
        (day["pv"].clone(), day["uv"].clone(), day["checkins"].clone()),
        (json!(2), json!(2), json!(1))
    );
    let text = s.client().get("/metrics", &[]).unwrap().text();
    assert!(text.contains("empmix_events_deduplicated_total 2"), "{text}");
    assert!(text.contains("empmix_events_accepted_total 5"), "{text}");
}

#[test]
fn keys_are_checked_from_every_place_a_client_can_put_them() {
    let s = start();
    let key = s.server.ingest_key().to_string();
    let mut c = s.client();
    let body = SEED_CURL_BODY.as_bytes();
    let path = "/api/analytics/events";
    let json_ct = ("Content-Type", "application/json");
    let status = |r: std::io::Result<empmix_server::loopback::HttpResponse>| r.unwrap().status;
    assert_eq!(status(c.request("POST", path, &[json_ct], body)), 401, "missing key");
    assert_eq!(status(c.request("POST", path, &[json_ct, ("X-API-Key", "nope")], body)), 401, "wrong key");
    let read = s.server.read_key().to_string();
    assert_eq!(
        status(c.request("POST", path, &[json_ct, ("X-API-Key", &read)], body)),
        401,
        "read key cannot ingest"
    );
    let r = c.request("POST", path, &[json_ct, ("X-API-Key", "nope")], body).unwrap();
    assert_eq!(r.json()["error"], "unauthorized");
    let bearer = format!("Bearer {key}");
    assert_eq!(status(c.request("POST", path, &[json_ct, ("Authorization", &bearer)], body)), 200);
    assert_eq!(status(c.request("POST", path, &[json_ct, ("X-API-Key", &key)], body)), 200);
    assert_eq!(status(c.request("POST", &format!("{path}?api_key={key}"), &[json_ct], body)), 200);
    assert_eq!(status(c.request("POST", &format!("/track?api_key={key}"), &[json_ct], body)), 200);
    // sendBeacon: text/plain and the key in the body.
    let beacon =
        json!({"api_key": key, "events": [{"type": "page_view", "conference_id": "test"}]}).to_string();
    assert_eq!(
        status(c.request("POST", path, &[("Content-Type", "text/plain;charset=UTF-8")], beacon.as_bytes())),
        200
    );
    let wrong = json!({"api_key": "nope", "events": [{"type": "page_view"}]}).to_string();
    assert_eq!(status(c.request("POST", path, &[("Content-Type", "text/plain")], wrong.as_bytes())), 401);
    // Query endpoints need the read key, not the ingest key.
    assert_eq!(c.get("/api/analytics/daily?conference_id=test", &[]).unwrap().status, 401);
    assert_eq!(c.get("/api/analytics/daily?conference_id=test", &[("X-API-Key", &key)]).unwrap().status, 401);
    assert_eq!(
        c.get(&format!("/api/analytics/daily?conference_id=test&api_key={read}"), &[]).unwrap().status,
        200
    );
    for p in ["/api/analytics/shares/tree", "/api/analytics/sessions?distinct_id=x", "/api/analytics/events"]
    {
        assert_eq!(c.get(p, &[]).unwrap().status, 401, "{p}");
    }
}

#[test]
fn malformed_json_is_400_with_the_error_position() {
    let s = start();
    let r = s.post("{\"events\": [\n{\"type\": \"page_view\",}]}");
    assert_eq!(r.status, 400);
    let body = r.json();
    assert_eq!(body["error"], "malformed_json");
    assert!(body["message"].as_str().unwrap().contains("line 2, column"), "{body}");
    let r = s.post("[1, 2]");
    assert_eq!((r.status, r.json()["error"].clone()), (400, json!("invalid_body")));
}

#[test]
fn gzip_bodies_are_accepted_and_a_gzip_bomb_is_refused_with_413() {
    let s = start();
    let key = s.server.ingest_key().to_string();
    let headers =
        [("Content-Type", "application/json"), ("Content-Encoding", "gzip"), ("X-API-Key", key.as_str())];
    let mut c = s.client();
    let r = c.request("POST", "/api/analytics/events", &headers, &gzip(SEED_CURL_BODY.as_bytes())).unwrap();
    assert_eq!((r.status, r.json()["accepted"].clone()), (200, json!(1)));
    // 64 MiB of spaces inside valid JSON compresses to about 64 KiB.
    let mut bomb = b"{\"events\": [".to_vec();
    bomb.extend(std::iter::repeat_n(b' ', 64 << 20));
    bomb.extend(b"]}");
    let compressed = gzip(&bomb);
    assert!(compressed.len() < 200_000);
    let r = c.request("POST", "/api/analytics/events", &headers, &compressed).unwrap();
    assert_eq!((r.status, r.json()["error"].clone()), (413, json!("payload_too_large")));
    let r = c.request("POST", "/api/analytics/events", &headers, b"not gzip at all").unwrap();
    assert_eq!((r.status, r.json()["error"].clone()), (400, json!("invalid_gzip")));
}

#[test]
fn oversized_too_many_and_empty_batches() {
    let s = start();
    let big = format!(r#"{{"events": [{{"type": "x", "p": "{}"}}]}}"#, "a".repeat(1024 * 1024));
    let r = s.post(&big);
    assert_eq!((r.status, r.json()["error"].clone()), (413, json!("payload_too_large")));
    let many = format!(r#"{{"events": [{}]}}"#, vec![r#"{"type":"x"}"#; 501].join(","));
    let r = s.post(&many);
    assert_eq!((r.status, r.json()["error"].clone()), (413, json!("too_many_events")));
    let r = s.post(r#"{"events": []}"#);
    assert_eq!((r.status, r.json()), (200, json!({"accepted": 0, "rejected": []})));
}

#[test]
fn wrong_content_types_are_415() {
    let s = start();
    let key = s.server.ingest_key().to_string();
    let mut c = s.client();
    for ct in ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml"] {
        let r = c
            .request("POST", "/api/analytics/events", &[("Content-Type", ct), ("X-API-Key", &key)], b"{}")
            .unwrap();
        assert_eq!((r.status, r.json()["error"].clone()), (415, json!("unsupported_media_type")), "{ct}");
    }
    let r = c
        .request("POST", "/api/analytics/events", &[("Content-Encoding", "br"), ("X-API-Key", &key)], b"{}")
        .unwrap();
    assert_eq!(r.status, 415);
    // No content type at all is read as JSON.
    let r = c
        .request("POST", "/api/analytics/events", &[("X-API-Key", &key)], SEED_CURL_BODY.as_bytes())
        .unwrap();
    assert_eq!(r.status, 200);
}

#[test]
fn a_known_path_with_another_method_is_a_json_405() {
    let s = start();
    let mut c = s.client();
    for (method, path) in
        [("GET", "/track"), ("PUT", "/api/analytics/events"), ("DELETE", "/api/analytics/query")]
    {
        let r = c.request(method, path, &[], b"").unwrap();
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(r.header("content-type"), Some("application/json"), "{method} {path}");
        assert_eq!(r.json()["error"], "method_not_allowed", "{method} {path}: {}", r.text());
        assert!(r.header("allow").is_some_and(|a| a.contains("POST")), "{method} {path}");
    }
    assert_eq!(c.get("/no/such/endpoint", &[]).unwrap().json()["error"], "not_found");

    // The operator endpoints of `consume --metrics-listen` answer alike.
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let operator = empmix_server::http::operator::OperatorServer::start(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(empmix_server::queue::sqlite::SqliteQueue::open(dir.path()).unwrap()),
        Arc::new(empmix_server::store::sqlite::SqliteStore::open(dir.path()).unwrap()),
        Arc::default(),
    )
    .unwrap();
    let r =
        empmix_server::loopback::Client::new(operator.addr()).request("POST", "/metrics", &[], b"").unwrap();
    assert_eq!((r.status, r.json()["error"].clone()), (405, json!("method_not_allowed")), "{}", r.text());
}

#[test]
fn cors_preflight_and_origin_checks_follow_each_projects_origins() {
    use empmix_server::ProjectConfig;
    let s = start_with(|c| {
        let mut a = ProjectConfig::new("a", "pk_a", "sk_a");
        a.allowed_origins = vec!["https://a.example".into()];
        let mut b = ProjectConfig::new("b", "pk_b", "sk_b");
        b.allowed_origins = vec!["https://b.example".into()];
        c.with_project(a).with_project(b)
    });
    let mut c = s.client();
    let preflight = |c: &mut empmix_server::loopback::Client, origin: &str| {
        c.request(
            "OPTIONS",
            "/api/analytics/events",
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "content-type, x-api-key"),
            ],
            b"",
        )
        .unwrap()
    };
    for origin in ["https://a.example", "https://b.example"] {
        let r = preflight(&mut c, origin);
        assert_eq!(r.status, 204);
        assert_eq!(r.header("access-control-allow-origin"), Some(origin));
        assert!(r.header("access-control-allow-methods").unwrap().contains("POST"));
        assert!(r.header("access-control-allow-headers").unwrap().contains("x-api-key"));
    }
    let r = preflight(&mut c, "https://evil.example");
    assert_eq!(r.status, 403);
    assert_eq!(r.header("access-control-allow-origin"), None);
    let send = |c: &mut empmix_server::loopback::Client, origin: &str, key: &str| {
        c.request(
            "POST",
            "/api/analytics/events",
            &[("Origin", origin), ("X-API-Key", key)],
            SEED_CURL_BODY.as_bytes(),
        )
        .unwrap()
    };
    let r = send(&mut c, "https://a.example", "pk_a");
    assert_eq!((r.status, r.header("access-control-allow-origin")), (200, Some("https://a.example")));
    // Browser code must be able to read Retry-After of a cross-origin 429 or 503.
    assert_eq!(r.header("access-control-expose-headers"), Some("retry-after"));
    assert_eq!(send(&mut c, "https://b.example", "pk_a").status, 403, "origin of another project");
}

#[test]
fn health_readiness_and_metrics_answer() {
    let s = start();
    let mut c = s.client();
    assert_eq!(c.get("/healthz", &[]).unwrap().status, 200);
    assert_eq!(c.get("/readyz", &[]).unwrap().status, 200);
    assert_eq!(s.post(SEED_CURL_BODY).status, 200);
    assert_eq!(s.post("{").status, 400);
    let text = c.get("/metrics", &[]).unwrap().text();
    for needle in [
        "empmix_http_requests_total{status=\"200\"}",
        "empmix_http_requests_total{status=\"400\"} 1",
        "empmix_events_accepted_total 1",
        "empmix_events_rejected_total 0",
        "empmix_queue_depth",
        "empmix_consumer_lag_seconds",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
}

#[test]
fn sdk_produced_batch_fixture_is_accepted_and_credits_a_and_b() {
    let s = start();
    let r = s.post(&fixture("request_sdk_batch.json"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"accepted": 9, "rejected": []}));
    // A shares; B opens and re-shares; C opens, identifies as user-c and registers.
    let tree = s.poll("/api/analytics/shares/tree?conference_id=abc123", |v| {
        v["trees"][0]["children"][0]["credited_conversions"] == 1
    });
    let a = &tree["trees"][0];
    assert_eq!(a["share_code"], "pTw212zsmeB1");
    assert_eq!(
        (a["opens"].clone(), a["direct_registrations"].clone(), a["credited_conversions"].clone()),
        (json!(1), json!(0), json!(1))
    );
    let b = &a["children"][0];
    assert_eq!(b["share_code"], "hmVKrntP8rmD");
    assert_eq!(
        (b["opens"].clone(), b["direct_registrations"].clone(), b["credited_conversions"].clone()),
        (json!(1), json!(1), json!(1))
    );
    // Client times are 5 ms before sent_at, so everything counts today.
    let day = s.daily("abc123", &today(), |d| d["share_conversions"] == 1);
    assert_eq!(
        day,
        json!({"date": today(), "conference_id": "abc123", "pv": 1, "uv": 1, "registrations": 1, "checkins": 1, "shares": 2, "share_conversions": 1})
    );
}
