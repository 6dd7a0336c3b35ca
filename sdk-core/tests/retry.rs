//! Delivery outcomes on a manual clock: backoff with jitter, Retry-After, 413 splitting,
//! rejections.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails loudly on an unexpected error")]

mod common;

use std::time::Duration;

use common::{Harness, ids};
use empmix_core::protocol::RejectReason;
use empmix_core::{DropReason, Report, Response, Timestamp};

fn failing_harness(seed_events: usize) -> Harness {
    let mut h = Harness::with(|b| b.flush_at(1).report_outcomes(true));
    for i in 0..seed_events {
        h.track(&format!("e{i}"));
    }
    h
}

#[test]
fn server_errors_back_off_exponentially_with_full_jitter_then_deliver() {
    let mut h = failing_harness(1);
    let mut t = h.poll().unwrap();
    let id = ids(&t);
    let mut delays = Vec::new();
    for failure in 1..=12u32 {
        let failed_at = h.now;
        h.respond(&t, if failure % 2 == 0 { 503 } else { 500 });
        assert!(h.poll().is_none(), "no resend before the backoff ends");
        let deadline = h.fire_timer().expect("a retry timer");
        let delay = deadline.as_unix_millis() - failed_at.as_unix_millis();
        let ceiling = (1000u64 << (failure - 1)).min(300_000);
        assert!(delay <= ceiling, "failure {failure}: delay {delay} ms above ceiling {ceiling}");
        delays.push(delay);
        t = h.poll().expect("resend after the backoff");
        assert_eq!(ids(&t), id, "a retry resends the same events with the same ids");
    }
    // Later delays reach well beyond the first ones (the ceiling grows, jitter is random).
    assert!(delays[8..].iter().any(|d| *d > 8_000), "{delays:?}");
    h.respond(&t, 200);
    assert_eq!(h.engine.stats().retried, 12);
    assert_eq!(h.engine.stats().delivered, 1);
    assert_eq!(h.engine.poll_report(), Some(Report::Delivered { ids: id }));
    // Success resets the backoff: the next failure starts from the base again.
    h.track("next");
    let t = h.poll().unwrap();
    let failed_at = h.now;
    h.respond(&t, 502);
    let deadline = h.fire_timer().unwrap();
    assert!(deadline.as_unix_millis() - failed_at.as_unix_millis() <= 1000);
}

#[test]
fn network_failures_and_408_429_are_retried() {
    let mut h = failing_harness(1);
    for outcome in [None, Some(408u16), Some(429)] {
        let t = h.poll().unwrap();
        match outcome {
            None => h.engine.handle_response(h.now, &mut h.rng, t.batch, Response::Failed),
            Some(s) => h.respond(&t, s),
        }
        h.fire_timer();
    }
    let t = h.poll().unwrap();
    h.respond(&t, 204);
    assert_eq!(h.engine.stats().delivered, 1);
    assert_eq!(h.engine.stats().dropped.total(), 0);
}

#[test]
fn retry_after_is_honoured_as_a_minimum() {
    let mut h = failing_harness(1);
    let t = h.poll().unwrap();
    h.respond_with(&t, 429, Some(Duration::from_secs(120)), "");
    h.advance(Duration::from_secs(119));
    assert!(h.poll().is_none(), "must wait out Retry-After");
    let deadline = h.engine.poll_timeout(h.now).unwrap();
    assert_eq!(deadline, Timestamp::from_unix_millis(common::T0 + 120_000));
    h.advance(Duration::from_secs(1));
    assert!(h.poll().is_some());
}

#[test]
fn payload_too_large_splits_in_half_until_single_events_drop() {
    let mut h = Harness::with(|b| b.flush_at(8).report_outcomes(true));
    let all: Vec<_> = (0..8).map(|i| h.track(&format!("e{i}"))).collect();
    let t = h.poll().unwrap();
    h.respond(&t, 413);
    let half = h.poll().expect("first half at once, no backoff");
    assert_eq!(ids(&half), all[..4].to_vec());
    h.respond(&half, 200);
    let second = h.poll().unwrap();
    assert_eq!(ids(&second), all[4..].to_vec());
    h.respond(&second, 413);
    let q = h.poll().unwrap();
    assert_eq!(ids(&q), all[4..6].to_vec());
    h.respond(&q, 413);
    let single = h.poll().unwrap();
    assert_eq!(ids(&single), vec![all[4]]);
    h.respond(&single, 413);
    let stats = h.engine.stats();
    assert_eq!(stats.dropped.too_large, 1);
    let mut rest = Vec::new();
    while let Some(t) = h.poll() {
        rest.extend(ids(&t));
        h.respond(&t, 200);
    }
    assert_eq!(rest, all[5..].to_vec());
    assert_eq!(h.engine.stats().delivered, 7);
    let reports: Vec<_> = std::iter::from_fn(|| h.engine.poll_report()).collect();
    assert!(reports.contains(&Report::Dropped { ids: vec![all[4]], reason: DropReason::TooLarge }));
}

#[test]
fn per_event_rejections_in_a_200_are_reported_and_the_rest_delivered() {
    let mut h = Harness::with(|b| b.flush_at(3).report_outcomes(true));
    let all: Vec<_> = (0..3).map(|i| h.track(&format!("e{i}"))).collect();
    let t = h.poll().unwrap();
    let body = r#"{"accepted":2,"rejected":[{"index":1,"reason":"invalid_properties"}]}"#;
    h.respond_with(&t, 200, None, body);
    let stats = h.engine.stats();
    assert_eq!((stats.delivered, stats.dropped.rejected), (2, 1));
    assert_eq!(
        h.engine.poll_report(),
        Some(Report::Dropped {
            ids: vec![all[1]],
            reason: DropReason::Rejected(RejectReason::InvalidProperties)
        })
    );
    assert_eq!(h.engine.poll_report(), Some(Report::Delivered { ids: vec![all[0], all[2]] }));
}

#[test]
fn other_client_errors_drop_the_batch_and_never_retry() {
    let mut h = Harness::with(|b| b.flush_at(2).report_outcomes(true));
    let all: Vec<_> = (0..2).map(|i| h.track(&format!("e{i}"))).collect();
    let t = h.poll().unwrap();
    h.respond_with(&t, 400, None, r#"{"error":"malformed_json","message":"x"}"#);
    assert_eq!(h.engine.stats().dropped.rejected, 2);
    assert_eq!(
        h.engine.poll_report(),
        Some(Report::Dropped { ids: all, reason: DropReason::RejectedBatch(400) })
    );
    assert!(h.poll().is_none());
    assert_eq!(h.engine.poll_timeout(h.now), None);
    assert!(h.engine.is_idle());
}

#[test]
fn unknown_or_repeated_outcomes_are_ignored() {
    let mut h = failing_harness(1);
    let t = h.poll().unwrap();
    h.respond(&t, 200);
    h.respond(&t, 200);
    h.respond(&t, 500);
    assert_eq!(h.engine.stats().delivered, 1);
    assert!(h.poll().is_none());
}
