//! Persistence: what is durable when, restore after a crash, torn records.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails loudly on an unexpected error")]

mod common;

use std::time::Duration;

use common::{Harness, T0, ids};
use empmix_core::persist::{MemoryStorage, PersistOp, Snapshot, Storage, is_restorable};
use empmix_core::{
    Config, Engine, Event, EventId, Properties, Response, SeededEntropy, Timestamp, TrackError,
};

fn config() -> Config {
    Config::builder().persist(true).flush_at(50).build().unwrap()
}

#[test]
fn tracked_events_survive_a_crash_with_their_ids_and_timestamps() {
    let mut storage = MemoryStorage::new();
    let mut h = Harness::new(config());
    h.engine.identify(h.now, &mut h.rng, "alice").unwrap();
    h.engine.handle_incoming_url(h.now, &mut h.rng, "https://m.example/?_s=CODE1").unwrap();
    h.engine.register(&Properties::new().insert("conference_id", "abc"));
    let mut tracked = Vec::new();
    for i in 0..5 {
        h.advance(Duration::from_secs(1));
        tracked.push((h.track(&format!("e{i}")), h.now));
    }
    h.engine.persist_to(&mut storage).unwrap();
    // One batch was sent but its outcome never came back: the process died.
    let _ = h.engine.flush();
    let _lost_in_flight = h.poll().unwrap();
    drop(h);

    let later = Timestamp::from_unix_millis(T0 + 60_000);
    let mut rng = SeededEntropy::new(7);
    let (mut engine, report) = Engine::restore(config(), &storage.load().unwrap(), later, &mut rng);
    assert_eq!(report.restored, 7, "identify, share_open and five events");
    assert!(!report.fresh_identity);
    assert_eq!(engine.distinct_id(), "alice");
    assert_eq!(engine.attribution(later).unwrap().as_str(), "CODE1");
    let t = engine.poll_transmit(later).expect("restored events are sent at once");
    let body: serde_json::Value = serde_json::from_str(&t.body).unwrap();
    let events = body["events"].as_array().unwrap();
    for (id, ts) in &tracked {
        let e = events.iter().find(|e| e["event_id"] == id.to_text().as_str()).expect("restored");
        assert_eq!(e["timestamp"], ts.as_unix_millis(), "original timestamp");
        assert_eq!(e["properties"]["conference_id"], "abc");
    }
    engine.handle_response(
        later,
        &mut rng,
        t.batch,
        Response::Status { status: 200, retry_after: None, body: "" },
    );
    engine.persist_to(&mut storage).unwrap();
    assert_eq!(storage.event_count(), 0, "delivered events are removed from storage");

    // A third start has nothing left to send: each event was sent once.
    let (mut third, report) = Engine::restore(config(), &storage.load().unwrap(), later, &mut rng);
    assert_eq!(report.restored, 0);
    assert!(third.poll_transmit(later).is_none());
}

#[test]
fn torn_and_duplicate_records_are_skipped_and_counted() {
    let mut storage = MemoryStorage::new();
    let mut h = Harness::new(config());
    let a = h.track("a");
    let b = h.track("b");
    h.engine.persist_to(&mut storage).unwrap();
    let snapshot = storage.load().unwrap();
    let mut raw = MemoryStorage::new();
    raw.apply(&PersistOp::SaveState { state: snapshot.state.clone().unwrap() }).unwrap();
    raw.push_raw_record(&snapshot.events[0]);
    raw.push_raw_record(&snapshot.events[0]);
    raw.push_raw_record(&snapshot.events[1]);
    let torn = &snapshot.events[1][..snapshot.events[1].len() / 2];
    raw.push_raw_record(torn);
    let mut rng = SeededEntropy::new(1);
    let (mut engine, report) = Engine::restore(config(), &raw.load().unwrap(), h.now, &mut rng);
    assert_eq!((report.restored, report.duplicates, report.corrupt), (2, 1, 1));
    assert_eq!(engine.stats().corrupt_records, 1);
    // A driver can tell beforehand which records restore skips as corrupt, to remove them.
    let readable: Vec<bool> = raw.load().unwrap().events.iter().map(|r| is_restorable(r)).collect();
    assert_eq!(readable, [true, true, true, false]);
    let t = engine.poll_transmit(h.now).unwrap();
    assert_eq!(ids(&t), vec![a, b]);
}

#[test]
fn corrupt_state_starts_a_fresh_identity_but_keeps_events() {
    let mut storage = MemoryStorage::new();
    let mut h = Harness::new(config());
    h.track("a");
    h.engine.persist_to(&mut storage).unwrap();
    let mut snapshot = storage.load().unwrap();
    snapshot.state = Some("{\"v\":1,\"anonym".into());
    let mut rng = SeededEntropy::new(1);
    let (engine, report) = Engine::restore(config(), &snapshot, h.now, &mut rng);
    assert!(report.fresh_identity);
    assert_eq!(report.restored, 1);
    assert_ne!(engine.anonymous_id(), h.engine.anonymous_id());
}

#[test]
fn restore_enforces_max_queue_and_max_age() {
    let mut storage = MemoryStorage::new();
    let mut h = Harness::new(Config::builder().persist(true).flush_at(5).max_queue(5000).build().unwrap());
    for i in 0..30 {
        h.track(&format!("e{i}"));
    }
    h.engine.persist_to(&mut storage).unwrap();
    let small = Config::builder().persist(true).flush_at(5).max_queue(10).build().unwrap();
    let mut rng = SeededEntropy::new(1);
    let (mut engine, report) = Engine::restore(small.clone(), &storage.load().unwrap(), h.now, &mut rng);
    assert_eq!((report.restored, report.dropped), (10, 20));
    assert_eq!(engine.stats().dropped.queue_full, 20);
    engine.persist_to(&mut storage).unwrap();
    assert_eq!(storage.event_count(), 10, "storage is bounded by max_queue too");

    let eight_days = Timestamp::from_unix_millis(T0 + 8 * 24 * 3600 * 1000);
    let (engine, report) = Engine::restore(small, &storage.load().unwrap(), eight_days, &mut rng);
    assert_eq!((report.restored, report.dropped), (0, 10));
    assert_eq!(engine.stats().dropped.expired, 10);
}

#[test]
fn opt_out_is_persisted_and_purges_restored_events() {
    let mut storage = MemoryStorage::new();
    let mut h = Harness::new(config());
    h.track("a");
    h.engine.persist_to(&mut storage).unwrap();
    // Simulate a crash after the state was saved as opted out but before removals applied.
    h.engine.opt_out();
    while let Some(op) = h.engine.poll_persist() {
        if matches!(op, PersistOp::SaveState { .. }) {
            storage.apply(&op).unwrap();
        }
    }
    assert_eq!(storage.event_count(), 1);
    let mut rng = SeededEntropy::new(1);
    let (mut engine, _) = Engine::restore(config(), &storage.load().unwrap(), h.now, &mut rng);
    assert!(engine.is_opted_out());
    assert!(engine.poll_transmit(h.now).is_none());
    engine.persist_to(&mut storage).unwrap();
    assert_eq!(storage.event_count(), 0);
}

#[test]
fn without_persistence_no_operations_are_emitted() {
    let mut h = Harness::with(|b| b);
    h.track("a");
    h.engine.register(&Properties::new().insert("k", 1i64));
    assert_eq!(h.engine.poll_persist(), None);
}

#[test]
fn state_saves_are_coalesced_and_session_saves_throttled() {
    let mut h = Harness::new(config());
    let _ = std::iter::from_fn(|| h.engine.poll_persist()).count();
    h.engine.register(&Properties::new().insert("a", 1i64));
    h.engine.register(&Properties::new().insert("b", 2i64));
    let ops: Vec<_> = std::iter::from_fn(|| h.engine.poll_persist()).collect();
    assert_eq!(ops.len(), 1, "two changes in a row give one save: {ops:?}");
    for _ in 0..10 {
        h.advance(Duration::from_secs(1));
        h.track("x");
    }
    let saves = std::iter::from_fn(|| h.engine.poll_persist())
        .filter(|op| matches!(op, PersistOp::SaveState { .. }))
        .count();
    assert_eq!(saves, 0, "ten seconds of activity do not rewrite the state");
    h.advance(Duration::from_secs(60));
    h.track("y");
    let saves = std::iter::from_fn(|| h.engine.poll_persist())
        .filter(|op| matches!(op, PersistOp::SaveState { .. }))
        .count();
    assert_eq!(saves, 1);
}

#[test]
fn changes_are_taken_once_each_in_order_by_polls_and_persist_to_alike() {
    let mut h = Harness::new(config());
    let _ = std::iter::from_fn(|| h.engine.poll_persist()).count();
    let a = h.track("a");
    let b = h.track("b");
    // One taken by a poll, the other by `persist_to`: each exactly once.
    assert!(matches!(h.engine.poll_persist(), Some(PersistOp::Append { id, .. }) if id == a));
    let mut storage = MemoryStorage::new();
    h.engine.persist_to(&mut storage).unwrap();
    assert_eq!(h.engine.poll_persist(), None, "persist_to took the rest");
    let stored = storage.load().unwrap().events;
    assert_eq!(stored.len(), 1, "only b went to storage: a was the poll's");
    assert!(stored[0].contains(&b.to_text()));
    // A state saved while an earlier change is still untaken comes after it, once.
    let c = h.track("c");
    h.engine.register(&Properties::new().insert("k", 1i64));
    h.engine.register(&Properties::new().insert("k", 2i64));
    let ops: Vec<_> = std::iter::from_fn(|| h.engine.poll_persist()).collect();
    assert_eq!(ops.len(), 2, "{ops:?}");
    assert!(matches!(&ops[0], PersistOp::Append { id, .. } if *id == c));
    assert!(matches!(&ops[1], PersistOp::SaveState { state } if state.contains("2")));
    // Many waiting (an app that does not poll for a while) are all taken, in order.
    let tracked: Vec<EventId> = (0..2_000).map(|i| h.track(&format!("e{i}"))).collect();
    let taken: Vec<EventId> = std::iter::from_fn(|| h.engine.poll_persist())
        .filter_map(|op| match op {
            PersistOp::Append { id, .. } => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(taken, tracked);
}

/// The state record an engine saved last.
fn saved_state(engine: &mut Engine) -> String {
    let mut storage = MemoryStorage::new();
    engine.persist_to(&mut storage).unwrap();
    storage.load().unwrap().state.expect("a state record")
}

#[test]
fn a_state_saved_by_another_tab_is_adopted_live() {
    // Two tabs of one site: engines sharing one storage, each started from the same state.
    let mut a = Harness::new(config());
    let shared = saved_state(&mut a.engine);
    let mut rng = SeededEntropy::new(9);
    let snapshot = Snapshot { state: Some(shared), events: Vec::new() };
    let (mut b, _) = Engine::restore(config(), &snapshot, a.now, &mut rng);
    assert_eq!(b.distinct_id(), a.engine.distinct_id());
    let waiting_in_b = b.track(a.now, &mut rng, Event::custom("before", Properties::new()).unwrap()).unwrap();
    let b_code = b.create_share(a.now, &mut rng, "copy", "https://m.example/", None).unwrap().code;

    // Tab A identifies, registers and opens someone's link; tab B sees A's saved state.
    a.engine.identify(a.now, &mut a.rng, "alice").unwrap();
    a.engine.register(&Properties::new().insert("plan", "pro"));
    a.engine.handle_incoming_url(a.now, &mut a.rng, "https://m.example/?_s=CODE1").unwrap();
    assert!(b.adopt_state(&saved_state(&mut a.engine)));

    assert_eq!(b.distinct_id(), "alice");
    assert_eq!(b.anonymous_id(), a.engine.anonymous_id());
    assert_eq!(b.session_id(), a.engine.session_id());
    assert_eq!(b.attribution(a.now).unwrap().as_str(), "CODE1");
    let after = b.track(a.now, &mut rng, Event::custom("after", Properties::new()).unwrap()).unwrap();
    let _ = b.flush();
    let t = b.poll_transmit(a.now).unwrap();
    let body: serde_json::Value = serde_json::from_str(&t.body).unwrap();
    let event = |id: EventId| {
        body["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["event_id"] == id.to_text().as_str())
            .unwrap()
            .clone()
    };
    assert_eq!(event(after)["distinct_id"], "alice");
    assert_eq!(event(after)["properties"]["plan"], "pro");
    assert_ne!(
        event(waiting_in_b)["distinct_id"],
        "alice",
        "queued events keep the identity they were tracked with"
    );

    // B still knows its own code: opening its own link records nothing.
    assert!(!b.open_share(a.now, &mut rng, &b_code));
    assert!(!b.adopt_state("{\"v\":1,"), "a torn record changes nothing");
    assert_eq!(b.distinct_id(), "alice");
}

#[test]
fn an_opt_out_in_another_tab_purges_and_stops_this_one() {
    let mut a = Harness::new(config());
    let mut b = Harness::new(config());
    b.track("waiting");
    a.engine.opt_out();
    assert!(b.engine.adopt_state(&saved_state(&mut a.engine)));
    assert!(b.engine.is_opted_out());
    assert_eq!(b.engine.stats().dropped.opted_out, 1);
    assert_eq!(b.engine.stats().queued, 0);
    assert_eq!(
        b.engine.track(b.now, &mut b.rng, Event::custom("x", Properties::new()).unwrap()),
        Err(TrackError::OptedOut)
    );
    assert!(b.poll().is_none());
}
