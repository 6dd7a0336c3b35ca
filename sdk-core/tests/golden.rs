//! Golden protocol fixtures: what the SDKs encode is byte-for-byte the committed request, the
//! committed requests decode as documented, and the committed responses round-trip. The server
//! tests against the same files.
//!
//! Regenerate after a deliberate protocol change with `UPDATE_GOLDEN=1 cargo test --test golden`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails loudly on an unexpected error")]

mod common;

use std::path::PathBuf;

use common::T0;
use empmix_core::protocol::{BatchResponse, RejectReason, decode_batch, encode_batch};
use empmix_core::{Config, Context, Engine, Event, Properties, Response, SeededEntropy, Timestamp};

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/protocol").join(name)
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixture_path(name)).unwrap()
}

/// The seed scenario on three devices with fixed seeds and a fixed clock: A shares, B opens and
/// shares, C opens B's link and registers, plus a page view, a check-in and an AI chat: the
/// request bodies the three engines send, with the context in each event or (`shared`) once per
/// request.
fn seed_scenario_bodies(shared: bool) -> Vec<String> {
    let now = Timestamp::from_unix_millis(T0);
    let ctx = Context {
        library_name: "empmix-golden".into(),
        library_version: "1.0.0".into(),
        ..Context::default()
    };
    let config = Config::builder().context(ctx).shared_context(shared).build().unwrap();
    let mut devices: Vec<(Engine, SeededEntropy)> = (1..=3)
        .map(|seed| {
            let mut rng = SeededEntropy::new(seed);
            let mut engine = Engine::new(config.clone(), now, &mut rng);
            engine.register(&Properties::new().insert("conference_id", "abc123"));
            (engine, rng)
        })
        .collect();
    let target = "https://m-app.example/conf/abc123";
    let (a, ra) = &mut devices[0];
    a.track(now, ra, Event::page_view(target, Some("abc123"), None)).unwrap();
    let link_a = a.create_share(now, ra, "wechat", target, None).unwrap();
    let (b, rb) = &mut devices[1];
    let opened = b.handle_incoming_url(now, rb, &link_a.url).unwrap();
    let link_b = b.create_share(now, rb, "link", &opened.url, None).unwrap();
    let (c, rc) = &mut devices[2];
    c.handle_incoming_url(now, rc, &link_b.url).unwrap();
    c.identify(now, rc, "user-c").unwrap();
    c.track(now, rc, Event::registration("abc123", Some("form-1"))).unwrap();
    c.track(now, rc, Event::checkin("abc123", "qr")).unwrap();
    c.track(now, rc, Event::ai_chat("abc123", 42)).unwrap();

    let mut bodies = Vec::new();
    for (engine, rng) in &mut devices {
        let _ = engine.flush();
        while let Some(t) = engine.poll_transmit(now) {
            bodies.push(t.body);
            engine.handle_response(
                now,
                rng,
                t.batch,
                Response::Status { status: 200, retry_after: None, body: "" },
            );
        }
    }
    bodies
}

/// The scenario's events, each with its context: the exact bytes the engines encoded, not a
/// re-serialisation.
fn seed_scenario_events() -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Body<'a> {
        #[serde(borrow)]
        events: Vec<&'a serde_json::value::RawValue>,
    }
    let mut events = Vec::new();
    for body in seed_scenario_bodies(false) {
        let body: Body<'_> = serde_json::from_str(&body).unwrap();
        events.extend(body.events.iter().map(|e| e.get().to_string()));
    }
    events
}

#[test]
fn a_shared_context_is_sent_once_per_request_and_decodes_to_the_same_events() {
    let (each, shared) = (seed_scenario_bodies(false), seed_scenario_bodies(true));
    assert_eq!(each.len(), shared.len());
    for (each, shared) in each.iter().zip(&shared) {
        assert_eq!(shared.matches("\"context\":").count(), 1, "{shared}");
        assert!(
            shared
                .contains(r#","context":{"library":{"name":"empmix-golden","version":"1.0.0"}},"events":["#),
            "{shared}"
        );
        assert!(shared.len() < each.len());
        let (each, shared) =
            (decode_batch(each.as_bytes()).unwrap(), decode_batch(shared.as_bytes()).unwrap());
        assert!(shared.events.len() > 1, "a request of one event would not show the sharing");
        assert_eq!(shared.events, each.events);
    }
}

#[test]
fn sdk_batch_matches_the_committed_fixture() {
    let events = seed_scenario_events();
    let body =
        encode_batch(Timestamp::from_unix_millis(T0 + 5), events.iter().map(String::as_str), None) + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(fixture_path("request_sdk_batch.json"), &body).unwrap();
    }
    assert_eq!(body, fixture("request_sdk_batch.json"), "encoder output changed: protocol break?");
}

#[test]
fn sdk_batch_fixture_decodes_with_every_field() {
    let batch = decode_batch(fixture("request_sdk_batch.json").as_bytes()).unwrap();
    assert!(batch.rejected.is_empty());
    assert_eq!(batch.sent_at, Some(T0 as i64 + 5));
    let names: Vec<_> = batch.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "page_view",
            "share",
            "share_open",
            "share",
            "share_open",
            "identify",
            "registration",
            "checkin",
            "ai_chat"
        ]
    );
    for e in &batch.events {
        assert!(e.event_id.is_some() && e.distinct_id.is_some() && e.anonymous_id.is_some());
        assert!(e.session_id.is_some());
        assert_eq!(e.timestamp, Some(T0 as i64));
        assert_eq!(e.properties["conference_id"], "abc123", "super property on {}", e.name);
        assert_eq!(e.context["library"]["name"], "empmix-golden");
    }
    let share_a = &batch.events[1];
    let share_b = &batch.events[3];
    assert_eq!(share_b.properties["parent_share_code"], share_a.properties["share_code"]);
    let registration = &batch.events[6];
    assert_eq!(registration.attribution.as_deref(), share_b.properties["share_code"].as_str());
    assert_eq!(registration.distinct_id.as_deref(), Some("user-c"));
}

#[test]
fn seed_minimal_request_decodes() {
    let batch = decode_batch(fixture("request_seed_minimal.json").as_bytes()).unwrap();
    assert_eq!(batch.events.len(), 1);
    assert_eq!(batch.events[0].name, "page_view");
    assert_eq!(batch.events[0].properties["page"], "/");
}

#[test]
fn partial_invalid_request_yields_the_committed_response() {
    let batch = decode_batch(fixture("request_partial_invalid.json").as_bytes()).unwrap();
    let response = BatchResponse { accepted: batch.events.len() as u64, rejected: batch.rejected };
    let committed = fixture("response_partial_invalid.json");
    assert_eq!(response.encode(), committed.trim_end());
    let parsed = BatchResponse::parse(&committed).unwrap();
    assert_eq!(parsed, response);
    assert_eq!(parsed.rejected[0].reason, RejectReason::MissingType);
}
