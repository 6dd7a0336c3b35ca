//! Identity, super properties, opt-out and sessions on a manual clock.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails loudly on an unexpected error")]

mod common;

use std::time::Duration;

use common::{Harness, body};
use empmix_core::{DropReason, Event, Properties, Report, TrackError};

/// The body of the one request a flush sends, which holds one event.
fn only_request(h: &mut Harness) -> serde_json::Value {
    let _ = h.engine.flush();
    let t = h.poll().unwrap();
    h.respond(&t, 200);
    let b = body(&t);
    assert_eq!(b["events"].as_array().unwrap().len(), 1);
    b
}

fn only_event(h: &mut Harness) -> serde_json::Value {
    only_request(h)["events"][0].clone()
}

#[test]
fn anonymous_then_identified_with_a_linking_event() {
    let mut h = Harness::with(|b| b);
    let anon = h.engine.anonymous_id().to_string();
    assert_eq!(h.engine.distinct_id(), anon);
    h.track("before");
    let before = only_event(&mut h);
    assert_eq!(before["distinct_id"], anon.as_str());
    assert_eq!(before["anonymous_id"], anon.as_str());

    let id = h.engine.identify(h.now, &mut h.rng, "user-42").unwrap();
    assert!(id.is_some());
    let link = only_event(&mut h);
    assert_eq!(link["type"], "identify");
    assert_eq!(link["distinct_id"], "user-42");
    assert_eq!(link["anonymous_id"], anon.as_str());
    assert_eq!(h.engine.identify(h.now, &mut h.rng, "user-42"), Ok(None), "same user: no second event");

    h.track("after");
    let after = only_event(&mut h);
    assert_eq!(after["distinct_id"], "user-42");
    assert_eq!(after["anonymous_id"], anon.as_str());
    assert!(h.engine.identify(h.now, &mut h.rng, "").is_err());
}

#[test]
fn alias_links_another_id() {
    let mut h = Harness::with(|b| b);
    h.engine.alias(h.now, &mut h.rng, "crm-7").unwrap();
    let e = only_event(&mut h);
    assert_eq!(e["type"], "alias");
    assert_eq!(e["properties"]["alias"], "crm-7");
}

#[test]
fn reset_makes_a_new_anonymous_person() {
    let mut h = Harness::with(|b| b);
    let first_anon = h.engine.anonymous_id().to_string();
    let first_session = h.engine.session_id().to_string();
    h.engine.identify(h.now, &mut h.rng, "alice").unwrap();
    h.engine.register(&Properties::new().insert("plan", "pro"));
    h.engine.reset(h.now, &mut h.rng);
    assert_ne!(h.engine.anonymous_id(), first_anon);
    assert_eq!(h.engine.distinct_id(), h.engine.anonymous_id());
    assert_ne!(h.engine.session_id(), first_session);
    let _ = only_event(&mut h); // the identify event
    h.track("after_reset");
    let e = only_event(&mut h);
    assert_eq!(e["properties"], serde_json::json!({}), "super properties cleared");
    assert_ne!(e["distinct_id"], "alice");
}

#[test]
fn super_properties_are_merged_and_event_properties_win() {
    let mut h = Harness::with(|b| b);
    h.engine.register(&Properties::new().insert("conference_id", "abc").insert("plan", "free"));
    h.engine.register_once(&Properties::new().insert("plan", "pro").insert("first_seen", "today"));
    h.track_event(Event::custom("buy", Properties::new().insert("plan", "event-level")).unwrap());
    let e = only_event(&mut h);
    assert_eq!(
        e["properties"],
        serde_json::json!({"conference_id": "abc", "first_seen": "today", "plan": "event-level"})
    );
    h.engine.unregister("first_seen");
    h.track("x");
    let e = only_event(&mut h);
    assert_eq!(e["properties"], serde_json::json!({"conference_id": "abc", "plan": "free"}));
}

#[test]
fn opt_out_purges_the_queue_and_records_nothing_until_opt_in() {
    let mut h = Harness::with(|b| b.report_outcomes(true));
    let queued = h.track("queued");
    h.engine.opt_out();
    assert!(h.engine.is_opted_out());
    assert_eq!(h.engine.stats().queued, 0);
    assert_eq!(h.engine.stats().dropped.opted_out, 1);
    assert_eq!(
        h.engine.poll_report(),
        Some(Report::Dropped { ids: vec![queued], reason: DropReason::OptedOut })
    );
    assert_eq!(h.engine.track(h.now, &mut h.rng, Event::checkin("c", "qr")), Err(TrackError::OptedOut));
    let link = h.engine.create_share(h.now, &mut h.rng, "wechat", "https://m.example/c", None).unwrap();
    assert!(link.url.contains("_s="), "a link is still made for the user");
    let incoming = h.engine.handle_incoming_url(h.now, &mut h.rng, "https://m.example/c?_s=someone").unwrap();
    assert!(!incoming.recorded_open);
    let _ = h.engine.flush();
    assert!(h.poll().is_none(), "nothing is sent while opted out");
    assert_eq!(h.engine.stats().queued, 0);
    h.engine.opt_in();
    h.track("back");
    let e = only_event(&mut h);
    assert_eq!(e["type"], "back");
}

/// One event in flight when the user opts out (and, with `back_in`, opts in again before the
/// answer), whose send then fails with a 503.
fn in_flight_send_fails_after_opt_out(back_in: bool) -> Harness {
    let mut h = Harness::with(|b| b.flush_at(1));
    h.track("before");
    let t = h.poll().unwrap();
    h.engine.opt_out();
    if back_in {
        h.engine.opt_in();
    }
    h.respond(&t, 503);
    h
}

#[test]
fn in_flight_batch_failing_after_opt_out_is_dropped_not_retried() {
    let h = in_flight_send_fails_after_opt_out(false);
    assert_eq!(h.engine.stats().dropped.opted_out, 1);
    assert!(h.engine.is_idle());
}

#[test]
fn in_flight_batch_failing_after_opt_out_and_back_in_is_still_dropped() {
    let mut h = in_flight_send_fails_after_opt_out(true);
    assert_eq!(h.engine.stats().dropped.opted_out, 1, "opting in again does not revive it");
    assert!(h.engine.is_idle(), "nothing tracked before the opt-out is retried");
    h.track("after");
    let t = h.poll().unwrap();
    h.respond(&t, 503);
    assert_eq!(h.engine.stats().retried, 1, "an event tracked after opting in is retried");
}

#[test]
fn session_rolls_over_after_inactivity_and_on_reset() {
    let mut h = Harness::with(|b| b.session_timeout(Duration::from_secs(1800)));
    h.track("a");
    let s1 = only_event(&mut h)["session_id"].clone();
    h.advance(Duration::from_secs(1799));
    h.track("b");
    assert_eq!(only_event(&mut h)["session_id"], s1, "activity within the timeout keeps the session");
    h.advance(Duration::from_secs(1800));
    h.track("c");
    let s2 = only_event(&mut h)["session_id"].clone();
    assert_ne!(s2, s1, "30 minutes of inactivity start a new session");
    h.engine.reset(h.now, &mut h.rng);
    h.track("d");
    assert_ne!(only_event(&mut h)["session_id"], s2);
}

#[test]
fn events_carry_ids_timestamps_and_context() {
    let ctx = empmix_core::Context {
        library_name: "empmix-test".into(),
        library_version: "9.9.9".into(),
        os: Some("Linux".into()),
        url: Some("https://m.example/c".into()),
        ..Default::default()
    };
    let mut h = Harness::with(|b| b.context(ctx));
    let id =
        h.track_event(Event::page_view("https://m.example/c", Some("abc"), Some("https://ref.example/")));
    let b = only_request(&mut h);
    let e = &b["events"][0];
    assert_eq!(e["event_id"], id.to_text().as_str());
    assert_eq!(e["timestamp"], common::T0);
    assert_eq!(e["type"], "page_view");
    assert_eq!(e["properties"]["conference_id"], "abc");
    assert_eq!(e["properties"]["referrer"], "https://ref.example/");
    // Sent once for the request (the engine's default), not in the event.
    assert!(e.get("context").is_none());
    assert_eq!(b["context"]["library"]["version"], "9.9.9");
    assert_eq!(b["context"]["os"], "Linux");
    assert!(e.get("attribution").is_none());
}
