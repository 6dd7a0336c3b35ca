//! Scale-out mode against the real services: several ingest and consumer processes (the real
//! binary) over RabbitMQ and PostgreSQL. Each test uses its own queue and database. The tests
//! take turns (a static mutex) so the two shared cores are not oversubscribed.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test assertions: a failure is a test failure")]

mod common;
mod scale_support;

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use scale_support::*;

static SERIAL: Mutex<()> = Mutex::new(());

/// An event sent: its id, a page view's (conference, person), an identify's person number.
type Sent = (String, Option<(String, String)>, Option<usize>);

fn id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// 100,000 events (with deliberate duplicates: resent batches and ids repeated inside a batch)
/// from 8 concurrent clients through two ingest processes and two consumers; identity merges
/// race page views on other consumers. Stored counts and daily summaries are exact.
#[test]
fn two_ingest_two_consumers_exact_counts() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !services_available("two_ingest_two_consumers_exact_counts") {
        return;
    }
    let (db, queue) = (TestDb::create(), TestQueue::new());
    let ingests = [ingest(&db, &queue), ingest(&db, &queue)];
    let _consumers = [consumer(&db, &queue), consumer(&db, &queue)];
    let addrs: Vec<_> = ingests.iter().map(Proc::addr).collect();

    const CLIENTS: usize = 8;
    const BATCHES: usize = 250; // per client, 50 events each: 100,000 sent
    const PERSONS: usize = 400;
    let conferences = ["c0", "c1", "c2", "c3"];
    let now = now_ms();
    // Persons k: anonymous a-k, user u-k. Even k are identified (a-k and u-k merge).
    let workers: Vec<_> = (0..CLIENTS)
        .map(|w| {
            let addrs = addrs.clone();
            std::thread::spawn(move || {
                let mut clients: Vec<_> =
                    addrs.iter().map(|a| empmix_server::loopback::Client::new(*a)).collect();
                // (event id, a page view's (conference, person), an identify's person number)
                let mut sent: Vec<Sent> = Vec::new();
                let mut previous: Option<String> = None;
                for b in 0..BATCHES {
                    let body = if b % 25 == 24 {
                        // Resend the previous batch verbatim (same event ids).
                        previous.clone().unwrap()
                    } else {
                        let mut events = Vec::new();
                        let mut i = 0;
                        while events.len() < 50 {
                            let k = (w * 7919 + b * 131 + i * 17) % PERSONS;
                            let conf = conferences[(w + b + i) % 4];
                            let ev = id();
                            let body = if i % 10 == 3 && k % 2 == 0 {
                                format!(
                                    "{{\"event_id\":\"{ev}\",\"type\":\"identify\",\"distinct_id\":\"u-{k}\",\
                                     \"anonymous_id\":\"a-{k}\",\"timestamp\":{now}}}"
                                )
                            } else if i % 3 == 0 {
                                page_view(&ev, conf, Some(&format!("u-{k}")), &format!("a-{k}"), now)
                            } else {
                                page_view(&ev, conf, None, &format!("a-{k}"), now)
                            };
                            let view = (!body.contains("identify")).then(|| {
                                let person = if i % 3 == 0 { format!("u-{k}") } else { format!("a-{k}") };
                                (conf.to_string(), person)
                            });
                            let merged = view.is_none().then_some(k);
                            sent.push((ev.clone(), view, merged));
                            events.push(body.clone());
                            if i % 20 == 5 && events.len() < 50 {
                                events.push(body); // the same id twice in one batch
                            }
                            i += 1;
                        }
                        batch_body(&events, now)
                    };
                    let n = clients.len();
                    let c = &mut clients[b % n];
                    post_until_ok(c, &body);
                    previous = Some(body);
                }
                sent
            })
        })
        .collect();
    let mut unique = HashSet::new();
    let mut views = 0i64;
    let mut pv: BTreeMap<String, i64> = BTreeMap::new();
    let mut visitors: BTreeMap<String, HashSet<String>> = BTreeMap::new();
    let sent: Vec<_> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    let merged: HashSet<usize> = sent.iter().filter_map(|(_, _, k)| *k).collect();
    for (ev, view, _) in sent {
        {
            if !unique.insert(ev) {
                continue;
            }
            if let Some((conf, person)) = view {
                views += 1;
                *pv.entry(conf.clone()).or_default() += 1;
                // Identified persons: a-k and u-k are one visitor.
                let k: usize = person[2..].parse().unwrap();
                let visitor = if merged.contains(&k) { format!("u-{k}") } else { person };
                visitors.entry(conf).or_default().insert(visitor);
            }
        }
    }
    let expected_events = unique.len() as i64;
    eprintln!(
        "sent 100,000 events: {expected_events} unique ({views} page views), {} persons merged",
        merged.len()
    );
    assert!(expected_events > 90_000 && expected_events < 100_000 && !merged.is_empty());
    let stored = poll(Duration::from_secs(180), || {
        let n = db.scalar("SELECT COUNT(*) FROM events")?;
        let pv_total = db.scalar("SELECT COALESCE(SUM(pv), 0)::int8 FROM daily")?;
        (n >= expected_events && pv_total == pv.values().sum::<i64>()).then_some(n)
    });
    assert_eq!(stored, Some(expected_events), "every unique event stored once");
    // Daily summaries, through the query endpoint of either ingest process (served from PostgreSQL).
    for (i, conf) in conferences.iter().enumerate() {
        let r = ingests[i % 2]
            .client()
            .get(
                &format!("/api/analytics/daily?conference_id={conf}"),
                &[("Authorization", &format!("Bearer {READ_KEY}"))],
            )
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        let days = r.json();
        let days = days.as_array().unwrap();
        let sum = |f: &str| days.iter().map(|d| d[f].as_i64().unwrap()).sum::<i64>();
        assert_eq!(sum("pv"), pv[*conf], "pv of {conf}");
        assert_eq!(sum("uv"), visitors[*conf].len() as i64, "uv of {conf}: merged visitors counted once");
    }
    // Nothing else counted twice: visitor rows agree with uv, sessions with events.
    let uv_rows = db.scalar("SELECT COUNT(*) FROM daily_visitors").unwrap();
    let uv_sum = db.scalar("SELECT SUM(uv)::int8 FROM daily").unwrap();
    assert_eq!(uv_rows, uv_sum);
    let session_events = db.scalar("SELECT SUM(event_count)::int8 FROM sessions").unwrap();
    assert_eq!(session_events, views, "every page view counted once in its session");
}

/// Sends `batches` batches of 50 unique page views of `conference` through `ingest`, one
/// client; returns the number of events.
fn send_views(addr: std::net::SocketAddr, conference: &str, batches: usize) -> i64 {
    let mut client = empmix_server::loopback::Client::new(addr);
    let now = now_ms();
    for b in 0..batches {
        let events: Vec<String> = (0..50)
            .map(|i| page_view(&id(), conference, None, &format!("v-{}", (b * 50 + i) % 997), now))
            .collect();
        post_until_ok(&mut client, &batch_body(&events, now));
    }
    (batches * 50) as i64
}

fn pv_of(db: &TestDb, conference: &str) -> Option<i64> {
    db.scalar(&format!("SELECT COALESCE(SUM(pv), 0)::int8 FROM daily WHERE conference_id = '{conference}'"))
}

/// A consumer killed with SIGKILL mid-stream: its unacknowledged batches are redelivered to the
/// other consumer; nothing is lost and nothing counted twice.
#[test]
fn consumer_sigkill_mid_stream_loses_and_doubles_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !services_available("consumer_sigkill_mid_stream_loses_and_doubles_nothing") {
        return;
    }
    let (db, queue) = (TestDb::create(), TestQueue::new());
    let ingest = ingest(&db, &queue);
    let mut victim = consumer(&db, &queue);
    let _survivor = consumer(&db, &queue);
    let addr = ingest.addr();
    let sender = std::thread::spawn(move || send_views(addr, "kill", 600));
    let mid =
        poll(Duration::from_secs(60), || db.scalar("SELECT COUNT(*) FROM events").filter(|n| *n >= 2_000));
    assert!(mid.is_some(), "consumers started storing");
    victim.kill(); // SIGKILL
    let at_kill = db.scalar("SELECT COUNT(*) FROM events").unwrap();
    assert!(!sender.is_finished() || at_kill < 30_000, "the kill happened mid-stream");
    let sent = sender.join().unwrap();
    let done = poll(Duration::from_secs(120), || {
        let n = db.scalar("SELECT COUNT(*) FROM events")?;
        (n >= sent && pv_of(&db, "kill")? >= sent).then_some(n)
    });
    assert_eq!(done, Some(sent), "every event stored once");
    assert_eq!(pv_of(&db, "kill"), Some(sent), "no page view counted twice");
    assert_eq!(db.scalar("SELECT SUM(event_count)::int8 FROM sessions"), Some(sent));
    let redelivered = db.scalar("SELECT COUNT(*) FROM events").unwrap();
    assert_eq!(redelivered, sent);
}

/// Messages that are not batches (garbage, or a batch whose body does not decode) are returned
/// until their delivery limit and then land in the dead-letter queue; the rest flow on.
#[test]
fn poison_messages_are_dead_lettered_and_the_rest_flows() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !services_available("poison_messages_are_dead_lettered_and_the_rest_flows") {
        return;
    }
    let (db, queue) = (TestDb::create(), TestQueue::new());
    let ingest = ingest(&db, &queue);
    let _consumer = consumer(&db, &queue);
    let first = send_views(ingest.addr(), "poison", 2);
    assert!(poll(Duration::from_secs(30), || (pv_of(&db, "poison")? == first).then_some(())).is_some());
    // Garbage, and a well-formed envelope around a body that is not a batch.
    queue.publish_raw(b"\x00\x01 definitely not a batch");
    let mut envelope = b"EMB1".to_vec();
    envelope.extend_from_slice(&7u16.to_be_bytes());
    envelope.extend_from_slice(b"default");
    envelope.extend_from_slice(&now_ms().to_be_bytes());
    envelope.extend_from_slice(&0u32.to_be_bytes());
    envelope.extend_from_slice(b"{\"events\": this is not json");
    queue.publish_raw(&envelope);
    let rest = send_views(ingest.addr(), "poison", 20);
    let total = first + rest;
    let flowed = poll(Duration::from_secs(60), || (pv_of(&db, "poison")? == total).then_some(()));
    assert!(
        flowed.is_some(),
        "the good batches flowed past the poison ones: pv {:?} of {total}",
        pv_of(&db, "poison")
    );
    let dead = poll(Duration::from_secs(60), || queue.ready(&queue.dlq()).filter(|n| *n >= 2));
    assert_eq!(dead, Some(2), "both poison messages dead-lettered");
    assert_eq!(queue.ready(&queue.name), Some(0), "nothing left blocking the queue");
    assert_eq!(db.scalar("SELECT COUNT(*) FROM events"), Some(total));
}
