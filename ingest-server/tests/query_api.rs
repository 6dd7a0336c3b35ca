//! The query endpoint over real HTTP: one set of cases (`fixtures/query_cases.json`: events in,
//! expected answers out) run against the embedded store and against PostgreSQL, so both give
//! identical answers; and the errors a bad query gets.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test assertions: a failure is a test failure")]

mod common;
mod scale_support;

use common::*;
use empmix_server::ProjectConfig;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use serde_json::{Value, json};

const INGEST: &str = "pk_query";
const READ: &str = "sk_query";

fn cases() -> Value {
    let path = format!("{}/tests/fixtures/query_cases.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Local dates relative to today in the fixture's zone.
struct Days {
    today: Date,
    tz: TimeZone,
}

impl Days {
    fn new(zone: &str) -> Days {
        let tz = TimeZone::get(zone).unwrap();
        Days { today: jiff::Timestamp::now().to_zoned(tz.clone()).date(), tz }
    }

    fn date(&self, offset: i64) -> Date {
        self.today.checked_add(jiff::Span::new().days(offset)).unwrap()
    }

    fn ms(&self, offset: i64, time: &str) -> i64 {
        let t: Time = time.parse().unwrap();
        self.date(offset).to_datetime(t).to_zoned(self.tz.clone()).unwrap().timestamp().as_millisecond()
    }

    /// `{N}` → the date N days from today, in every string of a JSON value.
    fn resolve(&self, v: &Value) -> Value {
        match v {
            Value::String(s) if s.starts_with('{') => {
                let end = s.find('}').unwrap();
                let n: i64 = s[1..end].parse().unwrap();
                Value::String(format!("{}{}", self.date(n), &s[end + 1..]))
            }
            Value::Array(a) => Value::Array(a.iter().map(|x| self.resolve(x)).collect()),
            Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), self.resolve(x))).collect()),
            other => other.clone(),
        }
    }
}

fn batch(fixture: &Value, days: &Days) -> Value {
    let mut events: Vec<Value> = fixture["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let mut out = json!({
                "event_id": id(),
                "type": e["type"],
                "distinct_id": e["distinct_id"],
                "timestamp": days.ms(e["day"].as_i64().unwrap(), e["time"].as_str().unwrap()),
            });
            for k in ["anonymous_id", "session_id", "properties", "context", "attribution"] {
                if let Some(v) = e.get(k) {
                    out[k] = v.clone();
                }
            }
            out
        })
        .collect();
    // Newest first: the answers must not depend on the order events arrive in.
    events.reverse();
    json!({ "events": events })
}

fn post_query(s: &TestServer, body: &Value) -> (u16, Value) {
    let auth = format!("Bearer {}", s.server.read_key());
    let r = s
        .client()
        .request(
            "POST",
            "/api/analytics/query",
            &[("Authorization", &auth), ("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
        .unwrap();
    (r.status, r.json())
}

/// Loads the fixture events and checks every case; returns the answers for comparison.
fn run_cases(s: &TestServer) -> Vec<Value> {
    let fixture = cases();
    let days = Days::new(fixture["time_zone"].as_str().unwrap());
    let r = s.post(&batch(&fixture, &days).to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let total = fixture["events"].as_array().unwrap().len() as i64;
    poll_until(|| {
        let (status, v) = post_query(s, &json!({"metrics": ["events"], "date_range": "all"}));
        (status == 200 && v["results"][0]["metrics"][0] == total).then_some(())
    })
    .expect("the fixture events were never all stored");
    let mut answers = Vec::new();
    for case in fixture["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (status, mut answer) = post_query(s, &days.resolve(&case["query"]));
        assert_eq!(status, 200, "{name}: {answer}");
        let expected = days.resolve(&case["expected"]);
        assert_eq!(answer["meta"]["date_range"], expected["date_range"], "{name}: date range");
        assert_eq!(answer["meta"]["time_zone"], fixture["time_zone"], "{name}: time zone");
        assert_eq!(answer["results"], expected["results"], "{name}: results");
        for k in ["totals", "comparison", "funnel"] {
            if let Some(e) = expected.get(k) {
                assert_eq!(&answer[k], e, "{name}: {k}");
            }
        }
        answer["meta"]["took_ms"] = json!(0);
        // The same answer from the events, where the rollups answered it.
        let mut raw_query = days.resolve(&case["query"]);
        if raw_query.get("funnel").is_none() && raw_query["metrics"] != json!(["share_credit"]) {
            raw_query["rollups"] = json!(false);
            let (status, mut raw) = post_query(s, &raw_query);
            assert_eq!(status, 200, "{name} (events): {raw}");
            raw["meta"]["took_ms"] = json!(0);
            assert_eq!(raw, answer, "{name}: the rollups and the events disagree");
        }
        answers.push(answer);
    }
    answers
}

fn project() -> ProjectConfig {
    let mut p = ProjectConfig::new("query", INGEST, READ);
    p.time_zone = cases()["time_zone"].as_str().unwrap().into();
    p
}

#[test]
fn fixture_cases_on_the_embedded_store() {
    let s = start_with(|c| c.with_project(project()));
    run_cases(&s);
}

#[test]
fn fixture_cases_give_identical_answers_on_postgresql() {
    if !scale_support::services_available("fixture_cases_give_identical_answers_on_postgresql") {
        return;
    }
    let embedded = start_with(|c| c.with_project(project()));
    let expected = run_cases(&embedded);
    let (db, queue) = (scale_support::TestDb::create(), scale_support::TestQueue::new());
    let s = scale_support::start_scaled(&db, &queue, |c| c.with_project(project()));
    assert_eq!(run_cases(&s), expected);
}

#[test]
fn bad_queries_are_400s_that_name_the_field() {
    let s = start_with(|c| c.with_project(project()));
    let cases = [
        (json!({"metrics": ["pageviews"]}), "metrics[0]"),
        (json!({"metrics": ["pv"], "dimensions": ["browser"]}), "dimensions[0]"),
        (json!({"metrics": ["pv"], "filters": ["like", "type", ["x"]]}), "filters[0]"),
        (json!({"metrics": ["pv"], "date_range": "lastweek"}), "date_range"),
        (json!({"metrics": ["pv"], "colour": "red"}), "colour"),
        (json!({"metrics": ["pv"], "order_by": [["uv", "desc"]]}), "order_by[0][0]"),
        (json!({"metrics": ["pv"], "limit": 100_000}), "limit"),
        (json!([1, 2]), "query"),
    ];
    for (body, field) in cases {
        let (status, v) = post_query(&s, &body);
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["error"], "invalid_query", "{body}: {v}");
        assert!(v["message"].as_str().unwrap().starts_with(&format!("{field}:")), "{body}: {v}");
    }
    let auth = format!("Bearer {READ}");
    let raw = |body: &[u8]| {
        s.client().request("POST", "/api/analytics/query", &[("Authorization", &auth)], body).unwrap()
    };
    let r = raw(b"{not json");
    assert_eq!((r.status, r.json()["error"].clone()), (400, json!("malformed_json")));
    let r = raw(&vec![b' '; 70_000]);
    assert_eq!(r.status, 413);
    let r = s.client().request("POST", "/api/analytics/query", &[], br#"{"metrics":["pv"]}"#).unwrap();
    assert_eq!(r.status, 401);
    let r = s
        .client()
        .request(
            "POST",
            "/api/analytics/query",
            &[("Authorization", "Bearer pk_query")],
            br#"{"metrics":["pv"]}"#,
        )
        .unwrap();
    assert_eq!(r.status, 401, "the ingest key cannot read");
}

#[test]
fn answers_past_the_limits_are_422() {
    let s = start_with(|c| c.with_project(project()));
    // An hourly series over ten years has more buckets than one answer may hold.
    let (status, v) =
        post_query(&s, &json!({"metrics": ["pv"], "dimensions": ["time:hour"], "date_range": "3650d"}));
    assert_eq!((status, v["error"].clone()), (422, json!("query_too_large")), "{v}");
    assert!(v["message"].as_str().unwrap().contains("coarser interval"), "{v}");
}

#[test]
fn results_past_the_limit_are_cut_and_say_so() {
    let s = start_with(|c| c.with_project(project()));
    let events: Vec<Value> = (0..5)
        .map(|i| json!({"event_id": id(), "type": "page_view", "distinct_id": format!("u{i}"), "timestamp": now_ms()}))
        .collect();
    assert_eq!(s.post(&json!({"events": events}).to_string()).status, 200);
    let q = json!({"metrics": ["events"], "dimensions": ["distinct_id"], "date_range": "today", "limit": 3});
    let v = poll_until(|| {
        let (_, v) = post_query(&s, &q);
        (v["meta"]["truncated"] == true).then_some(v)
    })
    .expect("never truncated");
    let ids: Vec<&str> =
        v["results"].as_array().unwrap().iter().map(|r| r["dimensions"][0].as_str().unwrap()).collect();
    assert_eq!(ids, ["u0", "u1", "u2"]);
}

#[test]
fn a_query_past_its_time_budget_is_cancelled_with_a_422() {
    let s = start_with(|mut c| {
        c.query_budget = std::time::Duration::from_millis(1);
        c.with_project(project())
    });
    let events: Vec<Value> = (0..3000)
        .map(|i| {
            json!({"event_id": id(), "type": "page_view", "distinct_id": format!("u{i}"), "timestamp": now_ms(),
                   "properties": {"url": format!("/page/{}", i % 97)}})
        })
        .collect();
    for chunk in events.chunks(500) {
        assert_eq!(s.post(&json!({"events": chunk}).to_string()).status, 200);
    }
    // Distinct visitors by a JSON property over 3,000 events takes far more than 1 ms.
    let q = json!({"metrics": ["visitors", "events"], "dimensions": ["properties.url", "context.browser"], "date_range": "all"});
    let v = poll_until(|| {
        let (status, v) = post_query(&s, &q);
        (status == 422).then_some(v)
    })
    .expect("the query was never cancelled");
    assert_eq!(v["error"], "query_timeout", "{v}");
    assert!(v["message"].as_str().unwrap().contains("1 ms budget"), "{v}");
}

#[test]
fn metrics_time_requests_by_route_and_queries_by_outcome() {
    let s = start_with(|c| c.with_project(project()));
    assert_eq!(post_query(&s, &json!({"metrics": ["pv"], "date_range": "7d"})).0, 200);
    assert_eq!(post_query(&s, &json!({"metrics": ["pv"], "date_range": "7d"})).0, 200);
    assert_eq!(post_query(&s, &json!({"metrics": ["nope"]})).0, 400);
    let _ = s.client().get("/no/such/path", &[]).unwrap();
    let text = s.client().get("/metrics", &[]).unwrap().text();
    let line = |prefix: &str| text.lines().find(|l| l.starts_with(prefix)).map(str::to_string);
    assert_eq!(
        line("empmix_http_request_duration_seconds_count{route=\"/api/analytics/query\"}").as_deref(),
        Some("empmix_http_request_duration_seconds_count{route=\"/api/analytics/query\"} 3"),
        "{text}"
    );
    assert!(
        line("empmix_http_request_duration_seconds_bucket{route=\"/api/analytics/query\",le=\"+Inf\"} 3")
            .is_some()
    );
    assert!(line("empmix_http_request_duration_seconds_count{route=\"unmatched\"} 1").is_some(), "{text}");
    assert!(line("empmix_query_duration_seconds_count{outcome=\"ok\"} 2").is_some(), "{text}");
    assert!(line("empmix_query_duration_seconds_count{outcome=\"invalid\"} 1").is_some(), "{text}");
    assert!(!text.contains("/no/such/path"), "made-up paths add no series");
}

/// The funnel by its definition, by brute force: a person reaches step `k` when some events
/// `e0 < e1 < … < ek` (distinct, in time order) have the steps' types and `ek` comes at most
/// `window` after `e0`. For a fixed `e0`, taking the earliest fitting event for each next step
/// reaches furthest, so trying every `e0` is exact.
fn funnel_reference(events: &[(usize, &str, i64)], steps: &[&str], window: i64) -> Vec<i64> {
    let mut reached = vec![0i64; steps.len()];
    let persons: std::collections::BTreeSet<usize> = events.iter().map(|e| e.0).collect();
    for p in persons {
        let mut mine: Vec<(&str, i64)> = events.iter().filter(|e| e.0 == p).map(|e| (e.1, e.2)).collect();
        mine.sort_by_key(|e| e.1);
        let mut best = 0;
        for (i, &(name, start)) in mine.iter().enumerate() {
            if name != steps[0] {
                continue;
            }
            let (mut k, mut at) = (1, i);
            while k < steps.len() {
                match mine[at + 1..].iter().position(|&(n, ts)| n == steps[k] && ts - start <= window) {
                    Some(j) => {
                        at += 1 + j;
                        k += 1;
                    }
                    None => break,
                }
            }
            best = best.max(k);
        }
        for r in &mut reached[..best] {
            *r += 1;
        }
    }
    reached
}

/// Random traffic (page views nine times in ten, as in the seed's mix, so the SQL side's
/// dropping of first steps is exercised) against the brute-force definition, for funnels
/// with repeated steps, a first step that is not the commonest type, and short windows.
fn funnels_match_the_definition(s: &TestServer) {
    let mut state = 0x5eed_u64;
    let mut next = move |n: u64| {
        // splitmix64: enough variety for a test, repeatable.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    };
    let now = now_ms();
    let hour = 3_600_000;
    let mut events = Vec::new();
    for person in 0..40 {
        // At most 35 steps of at most 2 h from five days ago: all in the past, all in range.
        let mut ts = now - 5 * 24 * hour + next(hour as u64) as i64;
        for _ in 0..(5 + next(30)) {
            // Distinct, increasing times per person, so "in order" has one meaning.
            ts += 1 + next(2 * hour as u64) as i64;
            let kind = match next(100) {
                0..=69 => "page_view",
                70..=81 => "share_open",
                82..=93 => "registration",
                _ => "checkin",
            };
            events.push((person, kind, ts));
        }
    }
    let body: Vec<Value> = events
        .iter()
        .map(|&(p, kind, ts)| {
            json!({"event_id": id(), "type": kind, "distinct_id": format!("p{p}"), "timestamp": ts,
                   "properties": {"conference_id": "c"}})
        })
        .collect();
    for chunk in body.chunks(100) {
        let r = s.post(&json!({ "events": chunk }).to_string());
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let total = events.len() as i64;
    poll_until(|| {
        let (status, v) = post_query(s, &json!({"metrics": ["events"], "date_range": "all"}));
        (status == 200 && v["results"][0]["metrics"][0] == total).then_some(())
    })
    .expect("the events were never all stored");
    let funnels: [(&[&str], &str, i64); 5] = [
        (&["page_view", "share_open", "registration", "checkin"], "1d", 24 * hour),
        (&["page_view", "page_view", "registration"], "2h", 2 * hour),
        (&["share_open", "page_view", "page_view"], "3d", 72 * hour),
        (&["page_view", "registration", "page_view", "checkin"], "12h", 12 * hour),
        (&["registration", "checkin"], "4h", 4 * hour),
    ];
    for (steps, window, window_ms) in funnels {
        let query = json!({"date_range": "7d", "funnel": {
            "steps": steps.iter().map(|e| json!({"event": e})).collect::<Vec<_>>(), "window": window}});
        let (status, answer) = post_query(s, &query);
        assert_eq!(status, 200, "{query}: {answer}");
        let got: Vec<i64> =
            answer["funnel"].as_array().unwrap().iter().map(|x| x["visitors"].as_i64().unwrap()).collect();
        assert_eq!(got, funnel_reference(&events, steps, window_ms), "{steps:?} within {window}");
    }
}

/// A visitor arriving by a share link is recorded `share_open` then `page_view`, in one
/// millisecond: the funnel page view -> share open counts it (events of one time count in the
/// funnel's order), while a share opened a millisecond before the page view does not.
fn same_millisecond_events_count_in_the_funnels_order(s: &TestServer) {
    let t = now_ms() - 3_600_000;
    let ev = |kind: &str, who: &str, ts: i64| json!({"event_id": id(), "type": kind, "distinct_id": who, "timestamp": ts, "properties": {"conference_id": "c"}});
    let batch = json!({"events": [
        ev("share_open", "arrived", t), ev("page_view", "arrived", t), ev("registration", "arrived", t + 60_000),
        ev("share_open", "earlier", t), ev("page_view", "earlier", t + 1), ev("registration", "earlier", t + 60_000),
    ]});
    assert_eq!(s.post(&batch.to_string()).status, 200);
    poll_until(|| {
        let (status, v) = post_query(s, &json!({"metrics": ["events"], "date_range": "all"}));
        (status == 200 && v["results"][0]["metrics"][0] == 6).then_some(())
    })
    .expect("the events were never all stored");
    let funnel = |steps: [&str; 3]| {
        let q = json!({"date_range": "7d", "funnel": {"steps": steps.map(|e| json!({"event": e})), "window": "1d"}});
        let (status, answer) = post_query(s, &q);
        assert_eq!(status, 200, "{answer}");
        answer["funnel"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["visitors"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(funnel(["page_view", "share_open", "registration"]), [2, 1, 1]);
    // And the other way round: both persons opened the share before, or with, the page view.
    assert_eq!(funnel(["share_open", "page_view", "registration"]), [2, 2, 2]);
}

#[test]
fn same_millisecond_events_count_in_the_funnels_order_on_sqlite() {
    let s = start_with(|c| c.with_project(ProjectConfig::new("query", INGEST, READ)));
    same_millisecond_events_count_in_the_funnels_order(&s);
}

#[test]
fn same_millisecond_events_count_in_the_funnels_order_on_postgresql() {
    if !scale_support::services_available("same_millisecond_events_count_in_the_funnels_order_on_postgresql")
    {
        return;
    }
    let (db, queue) = (scale_support::TestDb::create(), scale_support::TestQueue::new());
    let s = scale_support::start_scaled(&db, &queue, |c| {
        c.with_project(ProjectConfig::new("query", INGEST, READ))
    });
    same_millisecond_events_count_in_the_funnels_order(&s);
}

#[test]
fn funnels_match_their_definition_on_random_traffic() {
    let s = start_with(|c| c.with_project(ProjectConfig::new("query", INGEST, READ)));
    funnels_match_the_definition(&s);
}

#[test]
fn funnels_match_their_definition_on_random_traffic_on_postgresql() {
    if !scale_support::services_available("funnels_match_their_definition_on_random_traffic_on_postgresql") {
        return;
    }
    let (db, queue) = (scale_support::TestDb::create(), scale_support::TestQueue::new());
    let s = scale_support::start_scaled(&db, &queue, |c| {
        c.with_project(ProjectConfig::new("query", INGEST, READ))
    });
    funnels_match_the_definition(&s);
}

/// A batch's shared `context` (sent once per request) is stored with each of its events, under
/// the event's own keys, and queried like any context.
#[test]
fn a_batch_context_is_stored_with_each_event_under_its_own() {
    let s = start_with(|c| c.with_project(ProjectConfig::new("query", INGEST, READ)));
    let mut own = event("page_view", "ctx-b", json!({}));
    own["context"] = json!({"browser": "Chrome"});
    let body = json!({"context": {"browser": "Safari", "os": "iOS"},
                      "events": [event("page_view", "ctx-a", json!({})), own]});
    let r = s.post(&body.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let query =
        json!({"metrics": ["events"], "dimensions": ["context.browser", "context.os"], "date_range": "all"});
    let answer = poll_until(|| {
        let (status, v) = post_query(&s, &query);
        (status == 200 && v["results"].as_array().is_some_and(|r| r.len() == 2)).then_some(v)
    })
    .expect("both events stored");
    let mut rows: Vec<String> = answer["results"].as_array().unwrap().iter().map(|r| r.to_string()).collect();
    rows.sort();
    assert_eq!(
        rows,
        vec![
            json!({"dimensions": ["Chrome", "iOS"], "metrics": [1]}).to_string(),
            json!({"dimensions": ["Safari", "iOS"], "metrics": [1]}).to_string(),
        ]
    );
    let bad = s.post(&json!({"context": "Safari", "events": []}).to_string());
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert!(bad.text().contains("context"), "{}", bad.text());
}
