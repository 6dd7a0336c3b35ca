//! Persistence: restarts and torn writes (SIGKILL is tested against the real server in
//! `tests/tests/native_sdk.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::io::Write;
use std::time::Duration;

use common::{FakeServer, free_addr};
use empmix::{Client, ClientBuilder, Error};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

fn fast(endpoint: &str, dir: &std::path::Path) -> ClientBuilder {
    Client::builder("pk_test")
        .endpoint(endpoint)
        .persistence_dir(dir)
        .flush_at(10)
        .flush_interval(Duration::from_millis(20))
        .backoff_base(Duration::from_millis(10))
        .backoff_cap(Duration::from_millis(50))
        .request_timeout(Duration::from_secs(2))
}

/// The millisecond timestamp inside a UUIDv7 event id.
fn id_millis(id: &str) -> u64 {
    let hex: String = id.chars().filter(|c| *c != '-').take(12).collect();
    u64::from_str_radix(&hex, 16).unwrap()
}

#[test]
fn stored_events_and_identity_survive_a_restart_with_their_ids_and_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let endpoint = format!("http://{addr}");
    let mut ids = Vec::new();
    {
        let client = fast(&endpoint, dir.path()).build().unwrap();
        assert!(matches!(fast(&endpoint, dir.path()).build(), Err(Error::DirectoryInUse(_))));
        client.identify("bob").unwrap();
        for i in 0..25 {
            ids.push(client.track("e", json!({"i": i})).unwrap().to_string());
        }
        // Dropped without shutdown while the server is down.
    }
    let server = FakeServer::start_on(addr);
    let client = fast(&endpoint, dir.path()).build().unwrap();
    assert_eq!(client.distinct_id(), "bob");
    client.flush_blocking(WAIT).unwrap();
    let events = server.events();
    let delivered: Vec<String> = events
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_string())
        .filter(|id| ids.contains(id))
        .collect();
    assert_eq!(delivered.len(), 25);
    assert_eq!(server.duplicates(), 0);
    for e in events.iter().filter(|e| e["type"] == "e") {
        assert_eq!(e["timestamp"].as_u64().unwrap(), id_millis(e["event_id"].as_str().unwrap()));
        assert_eq!(e["distinct_id"], "bob");
    }
    client.shutdown_blocking(WAIT).unwrap();
    drop(client);
    // Nothing is left to send a third time.
    let again = fast(&endpoint, dir.path()).build().unwrap();
    assert_eq!(again.stats().queued, 0);
}

#[test]
fn a_torn_record_at_the_end_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let endpoint = format!("http://{addr}");
    {
        let client = fast(&endpoint, dir.path()).build().unwrap();
        for i in 0..5 {
            client.track("e", json!({"i": i})).unwrap();
        }
    }
    // A crash in the middle of an append: a frame header promising more than is there.
    let mut log = std::fs::OpenOptions::new().append(true).open(dir.path().join("events.log")).unwrap();
    log.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, 1, b'x']).unwrap();
    drop(log);
    let server = FakeServer::start_on(addr);
    let client = fast(&endpoint, dir.path()).build().unwrap();
    assert_eq!(client.stats().corrupt_records, 1);
    client.flush_blocking(WAIT).unwrap();
    assert_eq!(server.delivered_ids(), 5);
}
