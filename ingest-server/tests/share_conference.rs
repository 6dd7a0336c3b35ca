//! A share counts in its conference: a share event without one takes its parent share's.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test assertions: a failure is a test failure")]

mod common;

use common::*;
use serde_json::{Value, json};

const CONF: &str = "conf-inherit";

/// A shares `pa` in the conference; B opens it and shares on as `pb` naming no conference; C
/// opens `pb` and registers in the conference. No super properties anywhere.
fn chain(s: &TestServer) {
    let share_a = event(
        "share",
        "A",
        json!({"conference_id": CONF, "share_code": "pa", "channel": "wechat", "target_url": "https://m.example/c"}),
    );
    assert_eq!(s.post(&json!({"events": [share_a]}).to_string()).status, 200);
    // The parent is stored before its child arrives.
    s.daily(CONF, &today(), |row| row["shares"] == 1);
    let mut reg = event("registration", "C", json!({"conference_id": CONF}));
    reg["attribution"] = json!("pb");
    let rest = vec![
        event("share_open", "B", json!({"share_code": "pa"})),
        event(
            "share",
            "B",
            json!({"share_code": "pb", "channel": "copy_link", "target_url": "https://m.example/c", "parent_share_code": "pa"}),
        ),
        event("share_open", "C", json!({"share_code": "pb"})),
        reg,
    ];
    assert_eq!(s.post(&json!({"events": rest}).to_string()).status, 200);
}

#[test]
fn a_share_without_a_conference_is_stored_in_its_parents() {
    let s = start();
    chain(&s);
    let tree = s.poll(&format!("/api/analytics/shares/tree?conference_id={CONF}"), |v: &Value| {
        v["trees"][0]["children"][0]["direct_registrations"] == 1
    });
    let root = &tree["trees"][0];
    assert_eq!(root["share_code"], "pa");
    let child = &root["children"][0];
    assert_eq!(child["share_code"], "pb");
    assert_eq!(child["conference_id"], CONF, "pb inherits pa's conference: {tree}");
    assert_eq!(child["credited_conversions"], 1, "{tree}");
}

#[test]
fn a_share_without_a_conference_counts_in_its_parents_daily_row() {
    let s = start();
    chain(&s);
    let row = s.daily(CONF, &today(), |row| row["share_conversions"] == 1);
    assert_eq!(row["shares"], 2, "{row}");
    assert_eq!(row["share_conversions"], 1, "{row}");
}
