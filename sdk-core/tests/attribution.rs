//! Share attribution through the engine: the A → B → C chain, own links, windows, URLs.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails loudly on an unexpected error")]

mod common;

use std::time::Duration;

use common::{Harness, body};
use empmix_core::attribution::AttributionModel;
use empmix_core::attribution::url::UrlError;
use empmix_core::{Config, Engine, Event, SeededEntropy, Timestamp, TrackError};

fn device(seed: u64) -> (Engine, SeededEntropy) {
    let mut rng = SeededEntropy::new(seed);
    let engine =
        Engine::new(Config::builder().build().unwrap(), Timestamp::from_unix_millis(common::T0), &mut rng);
    (engine, rng)
}

fn sent_events(engine: &mut Engine, now: Timestamp, rng: &mut SeededEntropy) -> Vec<serde_json::Value> {
    let _ = engine.flush();
    let mut out = Vec::new();
    while let Some(t) = engine.poll_transmit(now) {
        let b: serde_json::Value = serde_json::from_str(&t.body).unwrap();
        out.extend(b["events"].as_array().unwrap().iter().cloned());
        engine.handle_response(
            now,
            rng,
            t.batch,
            empmix_core::Response::Status { status: 200, retry_after: None, body: "" },
        );
    }
    out
}

#[test]
fn a_shares_b_opens_and_shares_c_registers_with_the_chain() {
    let now = Timestamp::from_unix_millis(common::T0);
    let (mut a, mut ra) = device(1);
    let (mut b, mut rb) = device(2);
    let (mut c, mut rc) = device(3);

    let link_a =
        a.create_share(now, &mut ra, "wechat", "https://m.example/conf/abc?lang=zh#agenda", None).unwrap();
    assert!(link_a.code.as_str().len() >= 11, "at least 64 bits of randomness");
    assert_eq!(link_a.url, format!("https://m.example/conf/abc?lang=zh&_s={}#agenda", link_a.code.as_str()));
    let a_events = sent_events(&mut a, now, &mut ra);
    assert_eq!(a_events[0]["type"], "share");
    assert_eq!(a_events[0]["properties"]["share_code"], link_a.code.as_str());
    assert_eq!(a_events[0]["properties"]["target_url"], "https://m.example/conf/abc?lang=zh#agenda");
    assert!(a_events[0]["properties"].get("parent_share_code").is_none(), "A is the root");

    let opened = b.handle_incoming_url(now, &mut rb, &link_a.url).unwrap();
    assert_eq!(opened.url, "https://m.example/conf/abc?lang=zh#agenda", "_s removed");
    assert!(opened.recorded_open);
    let link_b = b.create_share(now, &mut rb, "link", &opened.url, None).unwrap();
    let b_events = sent_events(&mut b, now, &mut rb);
    assert_eq!(b_events[0]["type"], "share_open");
    assert_eq!(b_events[0]["properties"]["share_code"], link_a.code.as_str());
    assert_eq!(b_events[0]["properties"]["attribution_chain"], serde_json::json!([link_a.code.as_str()]));
    assert_eq!(b_events[0]["attribution"], link_a.code.as_str());
    assert_eq!(b_events[1]["type"], "share");
    assert_eq!(
        b_events[1]["properties"]["parent_share_code"],
        link_a.code.as_str(),
        "B's share hangs under A's"
    );

    c.handle_incoming_url(now, &mut rc, &link_b.url).unwrap();
    c.track(now, &mut rc, Event::registration("abc", Some("form-1"))).unwrap();
    let c_events = sent_events(&mut c, now, &mut rc);
    assert_eq!(c_events[1]["type"], "registration");
    assert_eq!(c_events[1]["attribution"], link_b.code.as_str(), "C's registration carries B's code");
}

#[test]
fn opening_ones_own_link_attributes_nothing() {
    let mut h = Harness::with(|b| b);
    let link = h.engine.create_share(h.now, &mut h.rng, "copy", "https://m.example/c", None).unwrap();
    let r = h.engine.handle_incoming_url(h.now, &mut h.rng, &link.url).unwrap();
    assert_eq!(r.share_code.as_ref(), Some(&link.code));
    assert!(!r.recorded_open);
    assert_eq!(h.engine.attribution(h.now), None);
    assert_eq!(h.engine.stats().queued, 1, "only the share event");
}

#[test]
fn resharing_never_passes_on_someone_elses_code() {
    let mut h = Harness::with(|b| b);
    let link =
        h.engine.create_share(h.now, &mut h.rng, "copy", "https://m.example/c?_s=SOMEONE&x=1", None).unwrap();
    assert_eq!(link.url, format!("https://m.example/c?x=1&_s={}", link.code.as_str()));
}

#[test]
fn attribution_window_and_models() {
    let window = Duration::from_secs(30 * 24 * 3600);
    let mut first = Harness::with(|b| b.attribution_window(window));
    first.engine.handle_incoming_url(first.now, &mut first.rng, "https://m.example/?_s=ONE").unwrap();
    first.engine.handle_incoming_url(first.now, &mut first.rng, "https://m.example/?_s=TWO").unwrap();
    assert_eq!(first.engine.attribution(first.now).unwrap().as_str(), "ONE", "first touch by default");
    first.advance(window);
    assert_eq!(first.engine.attribution(first.now), None, "expired after the window");
    first.track("late");
    let _ = first.engine.flush();
    let mut events = Vec::new();
    while let Some(t) = first.poll() {
        events.extend(body(&t)["events"].as_array().unwrap().clone());
        first.respond(&t, 200);
    }
    assert!(events.last().unwrap().get("attribution").is_none());

    let mut last = Harness::with(|b| b.attribution_model(AttributionModel::LastTouch));
    last.engine.handle_incoming_url(last.now, &mut last.rng, "https://m.example/?_s=ONE").unwrap();
    last.engine.handle_incoming_url(last.now, &mut last.rng, "https://m.example/?_s=TWO").unwrap();
    assert_eq!(last.engine.attribution(last.now).unwrap().as_str(), "TWO");
}

#[test]
fn url_edge_cases_through_the_engine() {
    let mut h = Harness::with(|b| b);
    // Percent-encoded key and value.
    let r = h
        .engine
        .handle_incoming_url(h.now, &mut h.rng, "https://m.example/c?%5Fs=AB%2Dc&q=%E4%BC%9A#x")
        .unwrap();
    assert_eq!(r.url, "https://m.example/c?q=%E4%BC%9A#x");
    assert_eq!(r.share_code.unwrap().as_str(), "AB-c");
    // Non-ASCII path and a malformed code (ignored, still stripped).
    let r = h.engine.handle_incoming_url(h.now, &mut h.rng, "https://m.example/会议?_s=bad%20code").unwrap();
    assert_eq!(r.url, "https://m.example/会议");
    assert_eq!(r.share_code, None);
    assert!(!r.recorded_open);
    // No code at all.
    let r = h.engine.handle_incoming_url(h.now, &mut h.rng, "https://m.example/c").unwrap();
    assert_eq!((r.url.as_str(), r.share_code), ("https://m.example/c", None));
    // Invalid URLs are errors, never panics.
    assert_eq!(h.engine.handle_incoming_url(h.now, &mut h.rng, ""), Err(UrlError::Empty));
    assert_eq!(h.engine.handle_incoming_url(h.now, &mut h.rng, "/c?_s=x"), Err(UrlError::NoScheme));
    assert_eq!(
        h.engine.create_share(h.now, &mut h.rng, "x", "http://", None),
        Err(TrackError::InvalidUrl(UrlError::NoHost))
    );
    assert!(matches!(
        h.engine.create_share(h.now, &mut h.rng, "", "https://m.example/", None),
        Err(TrackError::InvalidEvent(_))
    ));
}

#[test]
fn shares_and_opens_carry_their_conference_explicit_then_configured_then_super_property() {
    let conference = |v: &serde_json::Value| v["properties"]["conference_id"].clone();
    let now = Timestamp::from_unix_millis(common::T0);
    let config = |c: Option<&str>| Config::builder().conference_id(c.map(String::from)).build().unwrap();

    // Explicit wins over the configured conference and the super property.
    let mut rng = SeededEntropy::new(7);
    let mut e = Engine::new(config(Some("configured")), now, &mut rng);
    e.register(&empmix_core::Properties::new().insert("conference_id", "super"));
    e.create_share(now, &mut rng, "copy", "https://m.example/c", Some("explicit")).unwrap();
    e.create_share(now, &mut rng, "copy", "https://m.example/c", None).unwrap();
    e.create_share(now, &mut rng, "copy", "https://m.example/c", Some("")).unwrap();
    e.handle_incoming_url(now, &mut rng, "https://m.example/c?_s=OTHER").unwrap();
    let sent = sent_events(&mut e, now, &mut rng);
    let got: Vec<_> = sent.iter().map(conference).collect();
    assert_eq!(got, ["explicit", "configured", "configured", "configured"]);
    assert_eq!(sent[3]["type"], "share_open");

    // No configuration: the super property, then nothing.
    let mut e = Engine::new(config(None), now, &mut rng);
    e.create_share(now, &mut rng, "copy", "https://m.example/c", None).unwrap();
    e.handle_incoming_url(now, &mut rng, "https://m.example/c?_s=OTHER").unwrap();
    e.register(&empmix_core::Properties::new().insert("conference_id", "super"));
    e.create_share(now, &mut rng, "copy", "https://m.example/c", None).unwrap();
    let sent = sent_events(&mut e, now, &mut rng);
    let got: Vec<_> = sent.iter().map(conference).collect();
    assert_eq!(got, [serde_json::Value::Null, serde_json::Value::Null, "super".into()]);
}
