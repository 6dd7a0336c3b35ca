//! The analytics of the scale-out mode through the query endpoints (served from PostgreSQL):
//! an in-process server with `queue_url` and `store_url` set and its own consumer.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test assertions: a failure is a test failure")]

mod common;
mod scale_support;

use common::*;
use serde_json::json;

/// A shares `a`; B opens it and re-shares as `b`; C opens `b` and registers with `b`, sent
/// newest first (one request each) so registrations are consumed before the shares; then an
/// anonymous visitor is identified as C.
#[test]
fn share_tree_identity_sessions_and_events_from_postgres() {
    if !scale_support::services_available("share_tree_identity_sessions_and_events_from_postgres") {
        return;
    }
    let (db, queue) = (scale_support::TestDb::create(), scale_support::TestQueue::new());
    let s = scale_support::start_scaled(&db, &queue, |c| c);
    let conf = "conf1";
    let scenario = share_scenario();
    for e in scenario.into_iter().rev() {
        assert_eq!(s.post(&json!({"events": [e]}).to_string()).status, 200);
    }
    let tree = s.poll("/api/analytics/shares/tree?conference_id=conf1", |v| {
        v["trees"][0]["children"][0]["credited_conversions"] == 1
    });
    let a = &tree["trees"][0];
    assert_eq!(
        (a["share_code"].clone(), a["opens"].clone(), a["credited_conversions"].clone()),
        (json!("a"), json!(1), json!(1))
    );
    let b = &a["children"][0];
    assert_eq!((b["share_code"].clone(), b["direct_registrations"].clone()), (json!("b"), json!(1)));
    let day = s.daily(conf, &today(), |d| d["share_conversions"] == 1);
    assert_eq!((day["registrations"].clone(), day["shares"].clone()), (json!(1), json!(2)));

    // An anonymous visitor views a page, then is identified as C: one visitor, both sessions.
    let view = json!({"event_id": id(), "type": "page_view", "anonymous_id": "anon-c", "session_id": "s-anon",
                      "timestamp": now_ms(), "properties": {"conference_id": conf, "note": "nul\u{0}inside"}});
    let c_view = event("page_view", "C", json!({"conference_id": conf}));
    assert_eq!(s.post(&json!({"events": [view, c_view]}).to_string()).status, 200);
    s.daily(conf, &today(), |d| d["uv"] == 2 && d["pv"] == 2);
    let identify = json!({"event_id": id(), "type": "identify", "distinct_id": "C", "anonymous_id": "anon-c", "timestamp": now_ms()});
    assert_eq!(s.post(&json!({"events": [identify]}).to_string()).status, 200);
    let day = s.daily(conf, &today(), |d| d["uv"] == 1);
    assert_eq!(day["pv"], json!(2));
    let sessions = s.poll("/api/analytics/sessions?distinct_id=C", |v| {
        v["sessions"].as_array().is_some_and(|a| a.len() == 2)
    });
    assert!(sessions["sessions"].as_array().unwrap().iter().any(|x| x["session_id"] == "s-anon"));

    // The events endpoint pages newest first; the NUL character was stored as U+FFFD.
    let page = s.poll("/api/analytics/events?distinct_id=A&limit=1", |v| {
        v["events"].as_array().is_some_and(|a| a.len() == 1)
    });
    let before = page["next_before"].as_i64().expect("a next page");
    let older = s.query(&format!("/api/analytics/events?distinct_id=A&limit=10&before={before}")).json();
    assert_eq!(older["events"].as_array().unwrap().len(), 1, "{older}");
    let views = s.query("/api/analytics/events?type=page_view&limit=10").json();
    let anon = views["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["anonymous_id"] == "anon-c")
        .expect("stored")
        .clone();
    assert_eq!(anon["properties"]["note"], json!("nul\u{FFFD}inside"));
    let ready = s.client().get("/readyz", &[]).unwrap();
    assert_eq!(ready.status, 200, "{}", ready.text());
}
