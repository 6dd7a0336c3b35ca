//! Batching on a manual clock: threshold, time window, explicit flush, shutdown, limits,
//! overflow and maximum age.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails loudly on an unexpected error")]

mod common;

use std::time::Duration;

use common::{Harness, body, ids};
use empmix_core::{DropReason, OverflowPolicy, Report, Timestamp};

#[test]
fn threshold_flush_sends_exactly_flush_at_events() {
    let mut h = Harness::with(|b| b.flush_at(5));
    let tracked: Vec<_> = (0..4).map(|i| h.track(&format!("e{i}"))).collect();
    assert!(h.poll().is_none(), "4 of 5 events must not flush");
    let fifth = h.track("e4");
    let t = h.poll().expect("the 5th event reaches the threshold");
    let mut want = tracked.clone();
    want.push(fifth);
    assert_eq!(ids(&t), want);
    assert_eq!(t.events, 5);
    assert_eq!(body(&t)["sent_at"], common::T0);
}

#[test]
fn a_burst_waits_the_send_gap_and_goes_as_fewer_larger_requests() {
    let gap = Duration::from_millis(200);
    let mut h = Harness::with(|b| {
        b.flush_at(5).max_batch_events(12).send_gap(gap).flush_interval(Duration::from_secs(30))
    });
    for i in 0..5 {
        h.track(&format!("a{i}"));
    }
    let first = h.poll().expect("the first request goes at flush_at, nothing before it to wait for");
    assert_eq!(first.events, 5);
    h.respond(&first, 200);
    // Past flush_at again at once: held until the gap from the first request ends.
    for i in 0..7 {
        h.track(&format!("b{i}"));
    }
    assert!(h.poll().is_none(), "7 waiting, within the gap");
    assert_eq!(h.engine.poll_timeout(h.now), Some(Timestamp::from_unix_millis(common::T0 + 200)));
    h.advance(Duration::from_millis(100));
    for i in 0..3 {
        h.track(&format!("c{i}"));
    }
    assert!(h.poll().is_none(), "10 waiting, still within the gap");
    h.advance(Duration::from_millis(99));
    assert!(h.poll().is_none(), "one millisecond early");
    h.fire_timer();
    let second = h.poll().expect("the gap ended");
    assert_eq!(second.events, 10, "one request for what arrived during the gap");
    h.respond(&second, 200);
    // A full batch does not wait for the gap.
    for i in 0..12 {
        h.track(&format!("d{i}"));
    }
    let full = h.poll().expect("a full batch goes at once");
    assert_eq!(full.events, 12);
    h.respond(&full, 200);
    // Nor does an explicit flush.
    h.track("e");
    let _ = h.engine.flush();
    assert_eq!(h.poll().expect("flush ignores the gap").events, 1);
}

#[test]
fn without_a_send_gap_each_threshold_sends_at_once() {
    let mut h = Harness::with(|b| b.flush_at(2));
    for round in 0..3 {
        h.track("a");
        h.track("b");
        let t = h.poll().unwrap_or_else(|| panic!("round {round}"));
        h.respond(&t, 200);
    }
}

#[test]
fn time_window_flush_after_interval_since_oldest_event() {
    let mut h = Harness::with(|b| b.flush_interval(Duration::from_secs(30)));
    let first = h.track("a");
    h.advance(Duration::from_secs(20));
    let second = h.track("b");
    assert!(h.poll().is_none());
    // The deadline is counted from the oldest unsent event, not the newest.
    let deadline = h.engine.poll_timeout(h.now).unwrap();
    assert_eq!(deadline, Timestamp::from_unix_millis(common::T0 + 30_000));
    h.advance(Duration::from_millis(9_999));
    assert!(h.poll().is_none(), "one millisecond early");
    h.fire_timer();
    assert_eq!(h.now, deadline);
    let t = h.poll().expect("window elapsed");
    assert_eq!(ids(&t), vec![first, second]);
}

#[test]
fn idle_engine_asks_for_no_timer() {
    let mut h = Harness::with(|b| b);
    assert_eq!(h.engine.poll_timeout(h.now), None);
    assert!(h.poll().is_none());
}

#[test]
fn explicit_flush_sends_now_and_ticket_completes_on_delivery() {
    let mut h = Harness::with(|b| b.flush_at(20));
    h.track("a");
    h.track("b");
    let ticket = h.engine.flush();
    let t = h.poll().expect("flush sends below the threshold");
    assert_eq!(t.events, 2);
    // Events tracked after the flush are not part of it.
    h.track("c");
    assert!(!h.engine.is_flushed(ticket));
    h.respond(&t, 200);
    assert!(h.engine.is_flushed(ticket));
    assert!(h.poll().is_none(), "the later event waits for its own trigger");
    assert_eq!(h.engine.stats().delivered, 2);
}

#[test]
fn one_batch_in_flight_by_default() {
    let mut h = Harness::with(|b| b.flush_at(2));
    h.track("a");
    h.track("b");
    let first = h.poll().unwrap();
    h.track("c");
    h.track("d");
    assert!(h.poll().is_none(), "second batch waits for the first outcome");
    assert_eq!(h.engine.poll_timeout(h.now), None, "no timer while the window is full");
    h.respond(&first, 200);
    let second = h.poll().unwrap();
    assert_eq!(second.events, 2);
}

#[test]
fn batches_respect_count_and_byte_limits() {
    let mut h =
        Harness::with(|b| b.flush_at(10).max_batch_events(10).max_batch_bytes(40_000).max_in_flight(16));
    let big = "x".repeat(10_000);
    for _ in 0..12 {
        let e = empmix_core::Event::custom("big", empmix_core::Properties::new().insert("p", big.as_str()))
            .unwrap();
        h.track_event(e);
    }
    let _ = h.engine.flush();
    let mut sizes = Vec::new();
    while let Some(t) = h.poll() {
        assert!(t.body.len() <= 40_000, "body {} bytes", t.body.len());
        assert!(t.events <= 10);
        sizes.push(t.events);
    }
    assert_eq!(sizes.iter().sum::<usize>(), 12);
    assert_eq!(sizes, vec![3, 3, 3, 3]);
}

#[test]
fn oversized_event_is_refused_at_track_and_counted() {
    let mut h = Harness::with(|b| b);
    let huge = "x".repeat(40_000);
    let e = empmix_core::Event::custom("huge", empmix_core::Properties::new().insert("p", huge.as_str()))
        .unwrap();
    let err = h.engine.track(h.now, &mut h.rng, e).unwrap_err();
    assert!(matches!(err, empmix_core::TrackError::TooLarge { bytes } if bytes > 40_000));
    assert_eq!(h.engine.stats().dropped.too_large, 1);
    assert_eq!(h.engine.stats().queued, 0);
}

#[test]
fn overflow_drops_oldest_and_counts_each_drop() {
    let mut h = Harness::with(|b| b.flush_at(3).max_queue(3).report_outcomes(true));
    let a = h.track("a");
    let b = h.track("b");
    let c = h.track("c");
    let in_flight = h.poll().unwrap();
    assert_eq!(ids(&in_flight), vec![a, b, c]);
    // In-flight events do not count against max_queue and are never dropped for room.
    let d = h.track("d");
    let e = h.track("e");
    let f = h.track("f");
    let g = h.track("g");
    assert_eq!(h.engine.stats().dropped.queue_full, 1);
    assert_eq!(h.engine.poll_report(), Some(Report::Dropped { ids: vec![d], reason: DropReason::QueueFull }));
    assert_eq!(h.engine.stats().queued, 3);
    h.respond(&in_flight, 200);
    let _ = h.engine.poll_report();
    let next = h.poll().unwrap();
    assert_eq!(ids(&next), vec![e, f, g]);
}

#[test]
fn overflow_drop_newest_refuses_the_new_event() {
    let mut h = Harness::with(|b| b.flush_at(2).max_queue(2).overflow(OverflowPolicy::DropNewest));
    h.track("a");
    h.track("b");
    let err = h.engine.track(h.now, &mut h.rng, empmix_core::Event::page_view("https://x/", None, None));
    assert_eq!(err, Err(empmix_core::TrackError::QueueFull));
    assert_eq!(h.engine.stats().dropped.queue_full, 1);
    assert_eq!(h.engine.stats().queued, 2);
}

#[test]
fn events_past_max_age_are_dropped_with_a_reason() {
    let mut h = Harness::with(|b| b.max_event_age(Duration::from_secs(3600)).report_outcomes(true));
    let old = h.track("old");
    // The server is unreachable for more than the maximum age.
    let _ = h.engine.flush();
    let t = h.poll().unwrap();
    h.engine.handle_response(h.now, &mut h.rng, t.batch, empmix_core::Response::Failed);
    h.advance(Duration::from_secs(1800));
    let fresh = h.track("fresh");
    h.advance(Duration::from_secs(1801));
    h.engine.handle_timeout(h.now);
    assert_eq!(h.engine.stats().dropped.expired, 1);
    assert_eq!(h.engine.poll_report(), Some(Report::Dropped { ids: vec![old], reason: DropReason::Expired }));
    let _ = h.engine.flush();
    h.fire_timer();
    let t = h.poll().unwrap();
    assert_eq!(ids(&t), vec![fresh]);
}

#[test]
fn shutdown_drains_everything_and_refuses_new_events() {
    let mut h = Harness::with(|b| b.flush_at(4));
    for i in 0..10 {
        h.track(&format!("e{i}"));
    }
    let ticket = h.engine.shutdown();
    assert_eq!(
        h.engine.track(h.now, &mut h.rng, empmix_core::Event::checkin("c", "qr")),
        Err(empmix_core::TrackError::ShutDown)
    );
    let mut sent = 0;
    while let Some(t) = h.poll() {
        sent += t.events;
        h.respond(&t, 200);
    }
    assert_eq!(sent, 10);
    assert!(h.engine.is_idle());
    assert!(h.engine.is_flushed(ticket));
}

#[test]
fn backwards_clock_delays_a_window_flush_by_at_most_one_interval() {
    let mut h = Harness::with(|b| b.flush_interval(Duration::from_secs(30)));
    h.track("a");
    // The clock jumps back a day.
    h.now = Timestamp::from_unix_millis(common::T0 - 86_400_000);
    let deadline = h.engine.poll_timeout(h.now).unwrap();
    assert_eq!(deadline, h.now.saturating_add(Duration::from_secs(30)));
    h.fire_timer();
    assert!(h.poll().is_some());
}
