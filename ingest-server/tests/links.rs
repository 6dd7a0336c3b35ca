//! Read-only dashboard links over real HTTP: created with the read key, they see one
//! conference and nothing else, cannot manage links, survive a restart, and stop working the
//! moment they are revoked or expire.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test assertions: a failure is a test failure")]

mod common;

use common::*;
use empmix_server::{ProjectConfig, Server, ServerConfig};
use serde_json::{Value, json};

const INGEST: &str = "pk_links";
const READ: &str = "sk_links";

fn request(s: &TestServer, method: &str, path: &str, key: &str, body: &str) -> (u16, Value) {
    let auth = format!("Bearer {key}");
    let r = s
        .client()
        .request(
            method,
            path,
            &[("Authorization", &auth), ("Content-Type", "application/json")],
            body.as_bytes(),
        )
        .unwrap();
    let v = if r.body.is_empty() { Value::Null } else { r.json() };
    (r.status, v)
}

fn seed(s: &TestServer) {
    let events: Vec<Value> = [("c1", "A"), ("c1", "B"), ("c2", "C")]
        .iter()
        .map(|(c, who)| {
            json!({"event_id": id(), "type": "page_view", "distinct_id": who, "timestamp": now_ms(),
                   "properties": {"conference_id": c, "url": "/"}})
        })
        .collect();
    assert_eq!(s.post(&json!({"events": events}).to_string()).status, 200);
    poll_until(|| {
        let (_, v) = request(
            s,
            "POST",
            "/api/analytics/query",
            READ,
            r#"{"metrics":["events"],"date_range":"today"}"#,
        );
        (v["results"][0]["metrics"][0] == 3).then_some(())
    })
    .expect("events stored");
}

fn server(dir: &std::path::Path) -> TestServer {
    let mut config = ServerConfig::new(dir).with_project(ProjectConfig::new("links", INGEST, READ));
    config.worker_threads = Some(2);
    TestServer { server: Server::start(config).unwrap(), dir: tempfile::tempdir().unwrap() }
}

#[test]
fn a_link_sees_its_conference_only_until_revoked() {
    let data = tempfile::tempdir().unwrap();
    let s = server(data.path());
    seed(&s);
    let (status, link) =
        request(&s, "POST", "/api/analytics/links", READ, r#"{"conference_id":"c1","label":"press"}"#);
    assert_eq!(status, 201, "{link}");
    let token = link["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("lk_") && !token.contains(READ), "the token reveals nothing of the read key");

    let (status, me) = request(&s, "GET", "/api/analytics/whoami", &token, "");
    assert_eq!(status, 200);
    assert_eq!((me["scope"].clone(), me["conference_id"].clone()), (json!("link"), json!("c1")));

    // Queries are limited to c1, whatever they ask.
    let q = r#"{"metrics":["events"],"dimensions":["properties.conference_id"],"date_range":"today"}"#;
    let (_, all) = request(&s, "POST", "/api/analytics/query", READ, q);
    assert_eq!(all["results"].as_array().unwrap().len(), 2);
    let (status, own) = request(&s, "POST", "/api/analytics/query", &token, q);
    assert_eq!(status, 200);
    assert_eq!(own["results"], json!([{"dimensions": ["c1"], "metrics": [2]}]));
    let other =
        r#"{"metrics":["events"],"date_range":"today","filters":["is","properties.conference_id",["c2"]]}"#;
    assert_eq!(request(&s, "POST", "/api/analytics/query", &token, other).1["results"][0]["metrics"][0], 0);

    // Other endpoints: its conference by default, another one refused, no person lookups.
    let (status, events) = request(&s, "GET", "/api/analytics/events", &token, "");
    assert_eq!(status, 200);
    assert_eq!(events["events"].as_array().unwrap().len(), 2);
    assert_eq!(request(&s, "GET", "/api/analytics/shares/tree?conference_id=c2", &token, "").0, 403);
    assert_eq!(request(&s, "GET", "/api/analytics/shares/tree", &token, "").1["conference_id"], "c1");
    assert_eq!(request(&s, "GET", "/api/analytics/live/summary?conference_id=c2", &token, "").0, 403);
    assert_eq!(request(&s, "GET", "/api/analytics/live/summary", &token, "").1["conference_id"], "c1");
    assert_eq!(request(&s, "GET", "/api/analytics/sessions?distinct_id=A", &token, "").0, 403);

    // A link cannot manage links.
    assert_eq!(request(&s, "POST", "/api/analytics/links", &token, r#"{"conference_id":"c2"}"#).0, 403);
    assert_eq!(request(&s, "GET", "/api/analytics/links", &token, "").0, 403);

    // Listed for the read key, without the token.
    let (status, list) = request(&s, "GET", "/api/analytics/links", READ, "");
    assert_eq!(status, 200);
    let listed = &list["links"][0];
    assert_eq!(
        (listed["id"].clone(), listed["label"].clone(), listed["active"].clone()),
        (link["id"].clone(), json!("press"), json!(true))
    );
    assert!(listed.get("token").is_none() && !list.to_string().contains(&token));

    // Stored server-side: it survives a restart.
    drop(s);
    let s = server(data.path());
    assert_eq!(request(&s, "GET", "/api/analytics/whoami", &token, "").0, 200);

    // Revoked: refused at once, everywhere.
    let id = link["id"].as_str().unwrap();
    assert_eq!(request(&s, "DELETE", &format!("/api/analytics/links/{id}"), READ, "").0, 204);
    assert_eq!(request(&s, "GET", "/api/analytics/whoami", &token, "").0, 401);
    assert_eq!(request(&s, "POST", "/api/analytics/query", &token, q).0, 401);
    assert_eq!(request(&s, "GET", "/api/analytics/links", READ, "").1["links"][0]["revoked"], true);
    assert_eq!(request(&s, "DELETE", "/api/analytics/links/nope", READ, "").0, 404);
}

#[test]
fn an_expired_link_stops_working() {
    let data = tempfile::tempdir().unwrap();
    let s = server(data.path());
    let expires = now_ms() + 1500;
    let (status, link) = request(
        &s,
        "POST",
        "/api/analytics/links",
        READ,
        &json!({"conference_id": "c1", "expires_at": expires}).to_string(),
    );
    assert_eq!(status, 201, "{link}");
    let token = link["token"].as_str().unwrap().to_string();
    assert_eq!(request(&s, "GET", "/api/analytics/whoami", &token, "").0, 200);
    poll_until(|| (request(&s, "GET", "/api/analytics/whoami", &token, "").0 == 401).then_some(()))
        .expect("the link expired");
    assert!(now_ms() >= expires, "refused only after its expiry");
}

#[test]
fn bad_link_requests_say_what_is_wrong() {
    let data = tempfile::tempdir().unwrap();
    let s = server(data.path());
    for (body, field) in [
        ("{}", "conference_id"),
        (r#"{"conference_id":"c1","colour":"red"}"#, "colour"),
        (r#"{"conference_id":"c1","expires_at":1}"#, "expires_at"),
        (r#"{"conference_id":"c1","label":7}"#, "label"),
        ("not json", "invalid JSON"),
    ] {
        let (status, v) = request(&s, "POST", "/api/analytics/links", READ, body);
        assert_eq!(status, 400, "{body}");
        assert!(v["message"].as_str().unwrap().starts_with(field), "{body}: {v}");
    }
    assert_eq!(request(&s, "POST", "/api/analytics/links", INGEST, r#"{"conference_id":"c1"}"#).0, 401);
    assert_eq!(request(&s, "GET", "/api/analytics/whoami", "lk_0000", "").0, 401);
}
