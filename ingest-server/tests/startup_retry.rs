//! Scale-out processes started while a service is down wait for it instead of exiting (and an
//! ingest process answers 503, `/readyz` included, meanwhile): a `consume` process and an
//! ingest process started during a PostgreSQL outage, and during a RabbitMQ outage, consume
//! once it ends. These
//! stop shared services, so they run one at a time (a static mutex), and a drop guard restarts
//! the service even when the test fails.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test assertions: a failure is a test failure")]

mod common;
mod scale_support;

use std::sync::Mutex;
use std::time::Duration;

use scale_support::*;

static SERIAL: Mutex<()> = Mutex::new(());

fn events(db: &TestDb, conference: &str) -> Option<i64> {
    db.scalar(&format!("SELECT COUNT(*) FROM events WHERE conference_id = '{conference}'"))
}

/// Posts `batches` batches of 5 page views until each is answered 200; returns the events.
fn post_batches(proc: &Proc, conference: &str, batches: usize) -> i64 {
    let mut client = proc.client();
    for _ in 0..batches {
        let now = now_ms();
        let events: Vec<String> = (0..5)
            .map(|i| page_view(&uuid::Uuid::now_v7().to_string(), conference, None, &format!("a{i}"), now))
            .collect();
        post_until_ok(&mut client, &batch_body(&events, now));
    }
    (batches * 5) as i64
}

fn assert_alive(proc: &mut Proc, what: &str) {
    assert!(
        proc.child.try_wait().expect("try_wait").is_none(),
        "the {what} process exited during the outage"
    );
}

#[test]
fn processes_started_while_postgres_is_down_wait_for_it() {
    if !services_available("processes_started_while_postgres_is_down_wait_for_it") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (db, queue) = (TestDb::create(), TestQueue::new());
    let mut outage = PostgresOutage::begin();
    let mut consumer = consumer(&db, &queue);
    // The ingest process answers at once: 503 with Retry-After, /readyz saying what it waits for.
    let mut ingest = ingest(&db, &queue);
    std::thread::sleep(Duration::from_secs(2));
    let ready = ingest.client().get("/readyz", &[]).expect("/readyz answers while waiting");
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert!(ready.text().contains("waiting for the analytics database"), "{}", ready.text());
    let r = ingest
        .client()
        .request("POST", "/api/analytics/events", &[("X-API-Key", INGEST_KEY)], b"{\"events\":[]}")
        .expect("ingest answers while waiting");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.header("retry-after").is_some(), "a 503 carries Retry-After");
    assert_alive(&mut consumer, "consume");
    assert_alive(&mut ingest, "ingest");
    outage.end();
    let up = poll(Duration::from_secs(60), || {
        (ingest.client().get("/readyz", &[]).ok()?.status == 200).then_some(())
    });
    assert!(up.is_some(), "/readyz did not come back with PostgreSQL");
    assert_alive(&mut ingest, "ingest");
    let sent = post_batches(&ingest, "startup-pg", 10);
    let counted = poll(Duration::from_secs(30), || (events(&db, "startup-pg") == Some(sent)).then_some(()));
    assert!(counted.is_some(), "want {sent} events, have {:?}", events(&db, "startup-pg"));
    assert_alive(&mut consumer, "consume");
}

#[test]
fn processes_started_while_the_broker_is_down_wait_for_it() {
    if !services_available("processes_started_while_the_broker_is_down_wait_for_it") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (db, queue) = (TestDb::create(), TestQueue::new());
    let mut outage = BrokerOutage::begin();
    let mut consumer = consumer(&db, &queue);
    // Ingest starts (after its first-connect wait) and says not ready until the broker is back.
    let mut ingest = ingest(&db, &queue);
    let ready = ingest.client().get("/readyz", &[]).expect("/readyz answers");
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert_alive(&mut consumer, "consume");
    outage.end();
    let up = poll(Duration::from_secs(60), || {
        (ingest.client().get("/readyz", &[]).ok()?.status == 200).then_some(())
    });
    assert!(up.is_some(), "/readyz did not come back with the broker");
    assert_alive(&mut ingest, "ingest");
    let sent = post_batches(&ingest, "startup-mq", 10);
    let counted = poll(Duration::from_secs(60), || (events(&db, "startup-mq") == Some(sent)).then_some(()));
    assert!(counted.is_some(), "want {sent} events, have {:?}", events(&db, "startup-mq"));
    assert_alive(&mut consumer, "consume");
}
