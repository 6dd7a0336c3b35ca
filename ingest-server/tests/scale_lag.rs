//! Broker-mode lag: `empmix_consumer_lag_seconds` is the exact age of the oldest batch not yet
//! consumed, also while the consumer holds batches it cannot commit (and the broker's ready count
//! is 0, since they are delivered but unacknowledged).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test assertions: a failure is a test failure")]

mod common;
mod scale_support;

use std::time::Duration;

use scale_support::*;

fn lag(server: &common::TestServer) -> f64 {
    let text = server.client().get("/metrics", &[]).unwrap().text();
    text.lines()
        .find_map(|l| l.strip_prefix("empmix_consumer_lag_seconds "))
        .expect("lag sample")
        .parse()
        .expect("a number")
}

fn stored(db: &TestDb) -> i64 {
    db.scalar("SELECT COUNT(*) FROM events").unwrap_or(-1)
}

fn post(server: &common::TestServer, conference: &str) {
    let now = now_ms();
    let body =
        batch_body(&[page_view(&uuid::Uuid::now_v7().to_string(), conference, None, "a-lag", now)], now);
    let resp = server.post(&body);
    assert_eq!(resp.status, 200, "{}", resp.text());
}

#[test]
fn broker_lag_is_the_age_of_the_oldest_unacknowledged_batch() {
    if !services_available("broker_lag_is_the_age_of_the_oldest_unacknowledged_batch") {
        return;
    }
    let (db, queue) = (TestDb::create(), TestQueue::new());
    let server = start_scaled(&db, &queue, |c| c);
    post(&server, "lag-warmup");
    assert!(common::poll_until(|| (stored(&db) == 1).then_some(())).is_some(), "warm-up batch stored");
    assert!(
        common::poll_until(|| (lag(&server) == 0.0).then_some(())).is_some(),
        "lag 0 once everything is consumed"
    );

    // Block the consumer's commits: it receives the next batches but cannot store them.
    let mut blocker = db.client();
    let mut tx = blocker.transaction().unwrap();
    tx.batch_execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE").unwrap();

    let before = now_ms();
    post(&server, "lag-a");
    let after = now_ms();
    std::thread::sleep(Duration::from_millis(1500));
    post(&server, "lag-b"); // newer: must not lower the lag
    std::thread::sleep(Duration::from_millis(1000));

    for _ in 0..3 {
        let s0 = now_ms();
        let l = lag(&server);
        let s1 = now_ms();
        // received_at of batch A is in [before, after]; the sample is taken in [s0, s1].
        let (lo, hi) = ((s0 - after) as f64 / 1000.0 - 0.002, (s1 - before) as f64 / 1000.0 + 0.002);
        assert!(lo <= l && l <= hi, "lag {l} s not within [{lo}, {hi}] (age of batch A)");
        assert!(l >= 2.4, "lag {l} s: batch A has waited 2.5 s");
        std::thread::sleep(Duration::from_millis(300));
    }

    tx.rollback().unwrap();
    drop(blocker);
    assert!(common::poll_until(|| (stored(&db) == 3).then_some(())).is_some(), "held batches stored");
    assert!(
        common::poll_until(|| (lag(&server) == 0.0).then_some(())).is_some(),
        "lag back to 0 once the held batches are acknowledged"
    );
}

/// An ingest process without a consumer cannot know the broker-mode lag: NaN, not 0.
#[test]
fn broker_lag_is_not_known_without_a_consumer() {
    if !services_available("broker_lag_is_not_known_without_a_consumer") {
        return;
    }
    let (db, queue) = (TestDb::create(), TestQueue::new());
    let server = start_scaled(&db, &queue, |mut c| {
        c.run_consumer = false;
        c
    });
    post(&server, "lag-nobody");
    assert!(lag(&server).is_nan());
}

fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// A `consume` process serves `/metrics` (its own counters and the broker lag it knows
/// exactly) and `/readyz` when asked to, beside an ingest process that has no consumer.
#[test]
fn a_consume_process_serves_its_metrics_and_readiness() {
    if !services_available("a_consume_process_serves_its_metrics_and_readiness") {
        return;
    }
    let (db, queue) = (TestDb::create(), TestQueue::new());
    let ingest = start_scaled(&db, &queue, |mut c| {
        c.run_consumer = false;
        c
    });
    let consumer = consumer_with_metrics(&db, &queue);
    let ready = consumer.client().get("/readyz", &[]).unwrap();
    assert_eq!(ready.status, 200, "{}", ready.text());
    for i in 0..3 {
        post(&ingest, &format!("metrics-{i}"));
    }
    let text = common::poll_until(|| {
        let text = consumer.client().get("/metrics", &[]).unwrap().text();
        (sample(&text, "empmix_events_consumed_total") == Some(3.0)).then_some(text)
    })
    .expect("the consumer's /metrics counts the 3 stored events");
    assert_eq!(stored(&db), 3);
    assert_eq!(sample(&text, "empmix_events_deduplicated_total"), Some(0.0));
    let lag = common::poll_until(|| {
        let text = consumer.client().get("/metrics", &[]).unwrap().text();
        sample(&text, "empmix_consumer_lag_seconds").filter(|l| *l == 0.0)
    });
    assert_eq!(lag, Some(0.0), "a consumer holding nothing knows its lag is 0");
    assert_eq!(consumer.client().get("/api/analytics/summary", &[]).unwrap().status, 404);
}
