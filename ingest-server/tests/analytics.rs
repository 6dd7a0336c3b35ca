//! The consumer's analytics over real HTTP: attribution trees, identity merges, sessions.

// Helpers outside #[test] functions panic on purpose too: this is a test crate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{Value, json};

fn check_tree(s: &TestServer) {
    let tree = s.poll("/api/analytics/shares/tree?conference_id=conf1", |v| {
        v["trees"][0]["children"][0]["credited_conversions"] == 1
    });
    let a = &tree["trees"][0];
    assert_eq!(tree["trees"].as_array().unwrap().len(), 1);
    assert_eq!(
        (a["share_code"].clone(), a["sharer"].clone(), a["channel"].clone()),
        (json!("a"), json!("A"), json!("wechat"))
    );
    assert_eq!(
        (a["opens"].clone(), a["direct_registrations"].clone(), a["credited_conversions"].clone()),
        (json!(1), json!(0), json!(1))
    );
    let b = &a["children"][0];
    assert_eq!((b["share_code"].clone(), b["sharer"].clone()), (json!("b"), json!("B")));
    assert_eq!(
        (b["opens"].clone(), b["direct_registrations"].clone(), b["credited_conversions"].clone()),
        (json!(1), json!(1), json!(1))
    );
    let day = s.daily("conf1", &today(), |d| d["share_conversions"] == 1);
    assert_eq!((day["registrations"].clone(), day["shares"].clone()), (json!(1), json!(2)));
}

#[test]
fn a_shares_b_opens_and_reshares_c_registers_and_the_tree_credits_a_and_b() {
    let s = start();
    let r = s.post(&json!({"events": share_scenario()}).to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    check_tree(&s);
}

#[test]
fn the_tree_credits_a_and_b_when_the_events_arrive_in_reverse_order() {
    let s = start();
    // One request per event, newest first, so the registration is consumed before any share.
    for e in share_scenario().into_iter().rev() {
        assert_eq!(s.post(&json!({"events": [e]}).to_string()).status, 200);
    }
    check_tree(&s);
}

#[test]
fn a_share_cannot_become_its_own_ancestor() {
    let s = start();
    let events = vec![
        event("share", "A", json!({"conference_id": "k", "share_code": "x", "parent_share_code": "y"})),
        event("share", "B", json!({"conference_id": "k", "share_code": "y", "parent_share_code": "x"})),
    ];
    assert_eq!(s.post(&json!({"events": events}).to_string()).status, 200);
    let tree = s.poll("/api/analytics/shares/tree?conference_id=k", |v| {
        v["trees"].as_array().is_some_and(|t| !t.is_empty())
    });
    // y's parent link was refused: y is the root and x hangs below it.
    assert_eq!(tree["trees"][0]["share_code"], "y");
    assert_eq!(tree["trees"][0]["children"][0]["share_code"], "x");
}

#[test]
fn identify_merges_the_anonymous_visitor_into_the_user() {
    let s = start();
    let day = today();
    let pv = |who: &str| event("page_view", who, json!({"conference_id": "idc", "url": "/"}));
    assert_eq!(s.post(&json!({"events": [pv("anon-1"), pv("anon-1")]}).to_string()).status, 200);
    s.daily("idc", &day, |d| d["pv"] == 2 && d["uv"] == 1);
    // The same person logs in (identify) and views again as the user: still one visitor.
    let identify = json!({"event_id": id(), "type": "identify", "distinct_id": "user-1", "anonymous_id": "anon-1", "session_id": "s-anon-1", "properties": {}});
    assert_eq!(s.post(&json!({"events": [identify, pv("user-1")]}).to_string()).status, 200);
    let d = s.daily("idc", &day, |d| d["pv"] == 3);
    assert_eq!(d["uv"], 1, "{d}");
    // A second device views first as another anonymous id (two visitors), then is identified
    // as the same user: merged back to one.
    assert_eq!(s.post(&json!({"events": [pv("anon-2")]}).to_string()).status, 200);
    s.daily("idc", &day, |d| d["pv"] == 4 && d["uv"] == 2);
    let identify2 = json!({"event_id": id(), "type": "identify", "distinct_id": "user-1", "anonymous_id": "anon-2", "properties": {}});
    assert_eq!(s.post(&json!({"events": [identify2]}).to_string()).status, 200);
    s.daily("idc", &day, |d| d["pv"] == 4 && d["uv"] == 1);
    // Sessions of the person include the anonymous session.
    let sessions = s.poll("/api/analytics/sessions?distinct_id=user-1", |v| {
        v["sessions"].as_array().is_some_and(|a| a.len() >= 2)
    });
    let ids: Vec<_> = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["session_id"].as_str().unwrap().to_string())
        .collect();
    assert!(ids.contains(&"s-anon-1".to_string()) && ids.contains(&"s-user-1".to_string()), "{ids:?}");
}

#[test]
fn registering_through_ones_own_link_credits_nobody_even_when_identity_is_learned_later() {
    let s = start();
    let mut reg = event("registration", "anon-z", json!({"conference_id": "own"}));
    reg["attribution"] = json!("z");
    let share = event("share", "user-z", json!({"conference_id": "own", "share_code": "z"}));
    assert_eq!(s.post(&json!({"events": [share, reg]}).to_string()).status, 200);
    s.daily("own", &today(), |d| d["registrations"] == 1 && d["share_conversions"] == 1);
    // anon-z turns out to be user-z: the registration was through their own link.
    let identify = json!({"event_id": id(), "type": "identify", "distinct_id": "user-z", "anonymous_id": "anon-z", "properties": {}});
    assert_eq!(s.post(&json!({"events": [identify]}).to_string()).status, 200);
    s.daily("own", &today(), |d| d["share_conversions"] == 0);
    let tree = s
        .poll("/api/analytics/shares/tree?conference_id=own", |v| v["trees"][0]["credited_conversions"] == 0);
    assert_eq!(tree["trees"][0]["direct_registrations"], 0);
}

#[test]
fn days_are_counted_in_the_projects_time_zone_and_events_are_paged() {
    use empmix_server::ProjectConfig;
    let s = start_with(|c| {
        let mut p = ProjectConfig::new("sh", "pk_sh", "sk_sh");
        p.time_zone = "Asia/Shanghai".into();
        c.with_project(p)
    });
    // The client's clock says one hour ago both for the events and for sending them, so the
    // server time is the receive time, and its day is today in Shanghai.
    let ts = now_ms() - 3_600_000;
    let events: Vec<Value> = (0..5)
        .map(|i| json!({"event_id": id(), "type": "page_view", "distinct_id": format!("v{i}"), "timestamp": ts, "properties": {"conference_id": "tz"}}))
        .collect();
    let body = json!({"sent_at": ts, "events": events}).to_string();
    let r = s
        .client()
        .request("POST", "/api/analytics/events", &[("X-API-Key", "pk_sh")], body.as_bytes())
        .unwrap();
    assert_eq!(r.status, 200);
    let shanghai_day =
        jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::get("Asia/Shanghai").unwrap()).date().to_string();
    let path = format!("/api/analytics/daily?conference_id=tz&from={shanghai_day}&to={shanghai_day}");
    let auth = [("X-API-Key", "sk_sh")];
    let got = poll_until(|| {
        let v = s.client().get(&path, &auth).unwrap().json();
        (v[0]["pv"] == 5).then_some(v)
    });
    assert!(got.is_some(), "five page views on the Shanghai day {shanghai_day}");
    // Paging: 2 + 2 + 1.
    let page1 = s.client().get("/api/analytics/events?limit=2", &auth).unwrap().json();
    assert_eq!(page1["events"].as_array().unwrap().len(), 2);
    let before = page1["next_before"].as_i64().unwrap();
    let page2 =
        s.client().get(&format!("/api/analytics/events?limit=2&before={before}"), &auth).unwrap().json();
    let before = page2["next_before"].as_i64().unwrap();
    let page3 =
        s.client().get(&format!("/api/analytics/events?limit=2&before={before}"), &auth).unwrap().json();
    assert_eq!(page3["events"].as_array().unwrap().len(), 1);
    assert_eq!(page3["next_before"], Value::Null);
    // Server time: the client's one-hour-old timestamp sent one hour ago (sent_at == ts) is
    // corrected to the receive time.
    let e = &page3["events"][0];
    assert!((e["server_ts"].as_i64().unwrap() - e["received_at"].as_i64().unwrap()).abs() < 1, "{e}");
}
