//! Scale-out mode when a service goes away: the broker (`rabbitmqctl stop_app`) during ingest,
//! and PostgreSQL (`pg_ctlcluster … stop`) while consumers run. These stop shared services, so
//! they run one at a time (a static mutex) in this binary only, and a drop guard restarts the
//! service even when the test fails.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test assertions: a failure is a test failure")]

mod common;
mod scale_support;

use std::sync::Mutex;
use std::time::Duration;

use scale_support::*;

static SERIAL: Mutex<()> = Mutex::new(());

fn count(db: &TestDb, conference: &str) -> Option<(i64, i64)> {
    let events = db.scalar(&format!("SELECT COUNT(*) FROM events WHERE conference_id = '{conference}'"))?;
    let pv = db.scalar(&format!(
        "SELECT COALESCE(SUM(pv), 0)::int8 FROM daily WHERE conference_id = '{conference}'"
    ))?;
    Some((events, pv))
}

fn post_status(client: &mut empmix_server::loopback::Client, body: &str) -> Option<u16> {
    client
        .request(
            "POST",
            "/api/analytics/events",
            &[("Content-Type", "application/json"), ("X-API-Key", INGEST_KEY)],
            body.as_bytes(),
        )
        .ok()
        .map(|r| r.status)
}

/// The broker stops during ingest: ingest answers 503 while it is down, the native SDK
/// (`empmix::Client`) retries, and once the broker is back (ingest and consumer reconnect on
/// their own) every event is stored exactly once.
#[test]
fn broker_outage_answers_503_sdk_retries_every_event_stored_once() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !services_available("broker_outage_answers_503_sdk_retries_every_event_stored_once") {
        return;
    }
    let (db, queue) = (TestDb::create(), TestQueue::new());
    let ingest = ingest(&db, &queue);
    let _consumer = consumer(&db, &queue);
    let sdk = empmix::Client::builder(INGEST_KEY)
        .endpoint(format!("http://{}", ingest.addr()))
        .flush_at(50)
        .flush_interval(Duration::from_millis(100))
        .max_in_flight(4)
        .max_queue(100_000)
        .backoff_base(Duration::from_millis(100))
        .backoff_cap(Duration::from_millis(500))
        .build()
        .unwrap();
    for i in 0..2_000 {
        sdk.page_view(&format!("https://m.example/{i}"), Some("outage"), None).unwrap();
    }
    sdk.flush_blocking(Duration::from_secs(30)).unwrap();

    let mut outage = BrokerOutage::begin();
    let mut probe = ingest.client();
    let body =
        batch_body(&[page_view(&uuid::Uuid::now_v7().to_string(), "probe", None, "p", now_ms())], now_ms());
    let refused = poll(Duration::from_secs(30), || (post_status(&mut probe, &body)? == 503).then_some(()));
    assert!(refused.is_some(), "ingest answers 503 while the broker is down");
    for i in 2_000..5_000 {
        sdk.page_view(&format!("https://m.example/{i}"), Some("outage"), None).unwrap();
    }
    let retried = poll(Duration::from_secs(30), || (sdk.stats().retried > 0).then_some(()));
    assert!(retried.is_some(), "the SDK got 503s and retries");
    outage.end();
    sdk.flush_blocking(Duration::from_secs(90)).expect("the SDK delivers everything once the broker is back");
    let stats = sdk.stats();
    assert_eq!(stats.delivered, 5_000, "{stats:?}");
    let stored =
        poll(Duration::from_secs(90), || count(&db, "outage").filter(|(e, pv)| *e >= 5_000 && *pv >= 5_000));
    assert_eq!(stored, Some((5_000, 5_000)), "every event stored once");
    assert_eq!(count(&db, "outage"), Some((5_000, 5_000)));
}

/// PostgreSQL stops while a consumer runs: ingest still accepts (the broker holds the batches),
/// the consumer backs off with the batches unacknowledged, and nothing is lost when the
/// database returns.
#[test]
fn database_outage_consumers_back_off_nothing_lost() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !services_available("database_outage_consumers_back_off_nothing_lost") {
        return;
    }
    let (db, queue) = (TestDb::create(), TestQueue::new());
    let ingest = ingest(&db, &queue);
    let _consumers = [consumer(&db, &queue), consumer(&db, &queue)];
    let mut client = ingest.client();
    let now = now_ms();
    let batch = |n: usize| {
        let events: Vec<String> = (0..50)
            .map(|i| {
                page_view(
                    &uuid::Uuid::now_v7().to_string(),
                    "pgdown",
                    None,
                    &format!("v{}", (n * 50 + i) % 300),
                    now,
                )
            })
            .collect();
        batch_body(&events, now)
    };
    for n in 0..4 {
        assert_eq!(post_until_ok(&mut client, &batch(n)), 0);
    }
    assert!(poll(Duration::from_secs(30), || count(&db, "pgdown").filter(|c| *c == (200, 200))).is_some());

    let mut outage = PostgresOutage::begin();
    for n in 4..40 {
        assert_eq!(post_until_ok(&mut client, &batch(n)), 0, "ingest does not need the database");
    }
    let held = poll(Duration::from_secs(30), || queue.total_messages().filter(|m| *m > 0));
    assert!(held.is_some(), "the batches stay in the broker while the database is down");
    outage.end();
    let stored =
        poll(Duration::from_secs(90), || count(&db, "pgdown").filter(|(e, pv)| *e >= 2_000 && *pv >= 2_000));
    assert_eq!(stored, Some((2_000, 2_000)), "nothing lost, nothing doubled");
    let drained = poll(Duration::from_secs(30), || (queue.total_messages()? == 0).then_some(()));
    assert!(drained.is_some(), "every batch acknowledged after its commit");
}
