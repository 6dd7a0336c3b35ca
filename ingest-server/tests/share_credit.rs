//! Share credit models, generations and the sharer leaderboard over real HTTP: from the
//! embedded store in any arrival order, and from the scale-out mode (RabbitMQ + PostgreSQL),
//! which must give identical answers.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test assertions: a failure is a test failure")]

mod common;
mod scale_support;

use common::*;
use serde_json::{Value, json};

const TREE: &str = "/api/analytics/shares/tree?conference_id=conf1";
const BOARD: &str = "/api/analytics/shares/leaderboard?conference_id=conf1";

/// A model's query, the credits of `a` and `b`, the leaderboard's order with credits, and the
/// `decay` the response echoes.
type Case = (&'static str, Value, Value, Vec<(&'static str, Value)>, Option<Value>);

fn expected() -> Vec<Case> {
    vec![
        ("", json!(1), json!(1), vec![("B", json!(1)), ("A", json!(1))], None),
        ("&credit=full", json!(1), json!(1), vec![("B", json!(1)), ("A", json!(1))], None),
        ("&credit=equal", json!(0.5), json!(0.5), vec![("B", json!(0.5)), ("A", json!(0.5))], None),
        (
            "&credit=decay",
            json!(0.333333),
            json!(0.666667),
            vec![("B", json!(0.666667)), ("A", json!(0.333333))],
            Some(json!(0.5)),
        ),
        (
            "&credit=decay&decay=0.25",
            json!(0.2),
            json!(0.8),
            vec![("B", json!(0.8)), ("A", json!(0.2))],
            Some(json!(0.25)),
        ),
        (
            "&credit=decay&decay=1",
            json!(0.5),
            json!(0.5),
            vec![("B", json!(0.5)), ("A", json!(0.5))],
            Some(json!(1.0)),
        ),
        ("&credit=first", json!(1), json!(0), vec![("A", json!(1)), ("B", json!(0))], None),
        ("&credit=last", json!(0), json!(1), vec![("B", json!(1)), ("A", json!(0))], None),
    ]
}

/// Waits until the whole scenario is consumed, checks every model's tree and leaderboard, and
/// returns all the answers.
fn answers(s: &TestServer) -> Vec<Value> {
    let full = s.poll(TREE, |v| {
        v["totals"] == json!({"shares": 2, "opens": 2, "registrations": 1, "credited_conversions": 2})
    });
    let node = |code: &str, sharer: &str, channel: &str, depth: u64, registrations: u64, reshares: u64| {
        json!({"share_code": code, "sharer": sharer, "channel": channel, "target_url": "https://m.example/c",
               "conference_id": "conf1", "depth": depth, "opens": 1, "direct_registrations": registrations,
               "credited_conversions": 1, "reshares": reshares, "children": []})
    };
    let mut a = node("a", "A", "wechat", 0, 0, 1);
    a["children"] = json!([node("b", "B", "copy_link", 1, 1, 0)]);
    assert_eq!(
        full,
        json!({
            "conference_id": "conf1",
            "credit": "full",
            "trees": [a],
            "generations": [
                {"depth": 0, "shares": 1, "sharers": 1, "opens": 1, "registrations": 0, "k_factor": 0},
                {"depth": 1, "shares": 1, "sharers": 1, "opens": 1, "registrations": 1, "k_factor": 1},
            ],
            "totals": {"shares": 2, "opens": 2, "registrations": 1, "credited_conversions": 2},
        })
    );
    let mut out = Vec::new();
    for (query, credit_a, credit_b, board, decay) in expected() {
        let tree = s.query(&format!("{TREE}{query}"));
        assert_eq!(tree.status, 200, "{query}: {}", tree.text());
        let tree = tree.json();
        let a = &tree["trees"][0];
        let b = &a["children"][0];
        assert_eq!(
            (&a["credited_conversions"], &b["credited_conversions"]),
            (&credit_a, &credit_b),
            "{query}"
        );
        assert_eq!(tree["decay"], decay.clone().unwrap_or(Value::Null), "{query}");
        let model = query.strip_prefix("&credit=").map_or("full", |q| q.split('&').next().unwrap());
        assert_eq!(tree["credit"], json!(model), "{query}");
        let total = if model == "full" { json!(2) } else { json!(1) };
        assert_eq!(tree["totals"]["credited_conversions"], total, "{query}");
        assert_eq!(tree["generations"], full["generations"], "generations do not depend on the model");

        let r = s.query(&format!("{BOARD}{query}"));
        assert_eq!(r.status, 200, "{query}: {}", r.text());
        let leaders = r.json();
        assert_eq!((&leaders["credit"], &leaders["decay"]), (&tree["credit"], &tree["decay"]), "{query}");
        let rows = leaders["sharers"].as_array().unwrap();
        let got: Vec<(&str, Value)> =
            rows.iter().map(|r| (r["sharer"].as_str().unwrap(), r["credited_conversions"].clone())).collect();
        assert_eq!(got, board, "{query}");
        let b_row = rows.iter().find(|r| r["sharer"] == "B").unwrap();
        assert_eq!(
            (&b_row["shares"], &b_row["opens"], &b_row["direct_registrations"]),
            (&json!(1), &json!(1), &json!(1)),
            "{query}"
        );
        out.extend([tree, leaders]);
    }
    let one = s.query(&format!("{BOARD}&limit=1")).json();
    assert_eq!(
        one,
        json!({"conference_id": "conf1", "credit": "full", "sharers": [
            {"sharer": "B", "shares": 1, "opens": 1, "direct_registrations": 1, "credited_conversions": 1}]})
    );
    out.push(one);
    out
}

fn bad_parameters_are_400(s: &TestServer) {
    let cases = [
        ("&credit=linear", "credit", "full, equal, decay, first, last"),
        ("&credit=", "credit", "full, equal, decay, first, last"),
        ("&credit=decay&decay=0", "decay", "(0, 1]"),
        ("&credit=decay&decay=1.5", "decay", "(0, 1]"),
        ("&credit=decay&decay=-1", "decay", "(0, 1]"),
        ("&credit=decay&decay=half", "decay", "(0, 1]"),
        ("&decay=NaN", "decay", "(0, 1]"),
    ];
    for path in [TREE, BOARD] {
        for (query, param, allowed) in cases {
            let r = s.query(&format!("{path}{query}"));
            assert_eq!(r.status, 400, "{path}{query}: {}", r.text());
            let body = r.json();
            let message = body["message"].as_str().unwrap();
            assert!(message.starts_with(param) && message.contains(allowed), "{path}{query}: {message}");
            assert_eq!(body["error"], "bad_request");
        }
    }
    let r = s.query(&format!("{BOARD}&limit=many"));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.json()["message"].as_str().unwrap().contains("limit"));
    let r = s.client().get(BOARD, &[]).unwrap();
    assert_eq!(r.status, 401, "the leaderboard needs the read key");
}

#[test]
fn every_credit_model_on_the_tree_and_leaderboard_in_any_arrival_order() {
    let at_once = start();
    assert_eq!(at_once.post(&json!({"events": share_scenario()}).to_string()).status, 200);
    // One request per event, newest first, so the registration is consumed before any share.
    let reversed = start();
    for e in share_scenario().into_iter().rev() {
        assert_eq!(reversed.post(&json!({"events": [e]}).to_string()).status, 200);
    }
    let expected = answers(&at_once);
    assert_eq!(answers(&reversed), expected);
    bad_parameters_are_400(&at_once);
}

#[test]
fn the_scale_out_mode_gives_identical_answers() {
    if !scale_support::services_available("the_scale_out_mode_gives_identical_answers") {
        return;
    }
    let (db, queue) = (scale_support::TestDb::create(), scale_support::TestQueue::new());
    let scaled = scale_support::start_scaled(&db, &queue, |c| c);
    let embedded = start();
    for e in share_scenario().into_iter().rev() {
        assert_eq!(scaled.post(&json!({"events": [e]}).to_string()).status, 200);
    }
    assert_eq!(embedded.post(&json!({"events": share_scenario()}).to_string()).status, 200);
    let from_postgres = answers(&scaled);
    assert_eq!(from_postgres, answers(&embedded));
    bad_parameters_are_400(&scaled);
}
