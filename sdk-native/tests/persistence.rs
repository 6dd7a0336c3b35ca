//! Persistence: restarts and torn writes (SIGKILL is tested against the real server in
//! `tests/tests/native_sdk.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
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

/// Stores five events in `dir`, then leaves the log as a crash in the middle of an append
/// would: a frame header promising more than is there.
fn five_events_and_a_torn_tail(endpoint: &str, dir: &std::path::Path) {
    {
        let client = fast(endpoint, dir).build().unwrap();
        for i in 0..5 {
            client.track("e", json!({"i": i})).unwrap();
        }
    }
    let mut log = std::fs::OpenOptions::new().append(true).open(dir.join("events.log")).unwrap();
    log.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, 1, b'x']).unwrap();
}

#[test]
fn a_torn_record_at_the_end_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let endpoint = format!("http://{addr}");
    five_events_and_a_torn_tail(&endpoint, dir.path());
    let server = FakeServer::start_on(addr);
    let client = fast(&endpoint, dir.path()).build().unwrap();
    assert_eq!(client.stats().corrupt_records, 1);
    client.flush_blocking(WAIT).unwrap();
    assert_eq!(server.delivered_ids(), 5);
}

/// Not a test of its own: the second process of
/// `a_directory_a_client_of_another_process_holds_is_refused`. With `EMPMIX_HOLD_DIR` set, it
/// opens a client on that directory, tracks one event, says `HOLDING` and keeps the client
/// until its stdin closes; without, it does nothing.
#[test]
fn hold_a_directory_for_another_process() {
    let Some(dir) = std::env::var_os("EMPMIX_HOLD_DIR") else {
        return;
    };
    let client = fast(&format!("http://{}", free_addr()), std::path::Path::new(&dir)).build().unwrap();
    client.track("held", json!({})).unwrap();
    println!("HOLDING");
    std::io::stdout().flush().unwrap();
    let _ = std::io::stdin().read(&mut [0u8]);
    drop(client);
}

#[cfg(unix)]
#[test]
fn a_directory_a_client_of_another_process_holds_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("http://{}", free_addr());
    let mut holder = Command::new(std::env::current_exe().unwrap())
        .args(["hold_a_directory_for_another_process", "--exact", "--nocapture", "--test-threads=1"])
        .env("EMPMIX_HOLD_DIR", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
    assert!(lines.any(|line| line.unwrap().contains("HOLDING")), "the holder did not start");
    // Sharing it would lose events: one client's compaction renames a new log over the file the
    // other still appends to.
    let refused = fast(&endpoint, dir.path()).build();
    assert!(matches!(refused, Err(Error::DirectoryInUse(_))), "{refused:?}");
    drop(holder.stdin.take());
    assert!(holder.wait().unwrap().success());
    // Released when the holder stopped, with its event stored for the next client.
    let client = fast(&endpoint, dir.path()).build().unwrap();
    let stats = client.stats();
    assert_eq!(stats.queued + stats.in_flight, 1, "{stats:?}");
}

/// A full disk stands in: writing the compacted copy of the log fails with `ENOSPC`.
#[cfg(target_os = "linux")]
#[test]
fn a_log_that_cannot_be_compacted_for_a_full_disk_is_opened_as_it_is_and_sent() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let endpoint = format!("http://{addr}");
    // The torn tail must not hide what is appended after it.
    five_events_and_a_torn_tail(&endpoint, dir.path());
    let tmp = dir.path().join("events.log.tmp");
    std::os::unix::fs::symlink("/dev/full", &tmp).unwrap();

    let server = FakeServer::start_on(addr);
    let client = fast(&endpoint, dir.path()).build().expect("a log without room to compact still opens");
    assert!(tmp.symlink_metadata().is_err(), "the failed copy does not keep the space");
    assert_eq!(client.stats().corrupt_records, 1);
    client.flush_blocking(WAIT).unwrap();
    assert_eq!(server.delivered_ids(), 5);
    client.shutdown_blocking(WAIT).unwrap();
    drop(client);
    // The removals appended to the uncompacted log count: nothing is sent a second time.
    let again = fast(&endpoint, dir.path()).build().unwrap();
    let stats = again.stats();
    assert_eq!((stats.queued, stats.in_flight, stats.corrupt_records), (0, 0, 0), "{stats:?}");
}

/// Events the child of `events_a_full_disk_kept_out_of_the_log_are_counted_as_lost` tracks.
const TRACKED_ON_A_FULL_DISK: u64 = 40;

/// Not a test of its own: the child of
/// `events_a_full_disk_kept_out_of_the_log_are_counted_as_lost`, run with a file size limit.
/// With `EMPMIX_FULL_DIR` set, tracks into that directory until the log cannot grow, stops and
/// says how many events it lost; without, it does nothing.
#[test]
fn track_into_a_log_that_cannot_grow() {
    let Some(dir) = std::env::var_os("EMPMIX_FULL_DIR") else {
        return;
    };
    let client = fast(&format!("http://{}", free_addr()), std::path::Path::new(&dir)).build().unwrap();
    for i in 0..TRACKED_ON_A_FULL_DISK {
        client.track("e", json!({"i": i, "pad": "x".repeat(500)})).unwrap();
    }
    let _ = client.shutdown_blocking(Duration::from_millis(200));
    println!("LOST {}", client.stats().dropped.lost);
}

#[cfg(target_os = "linux")]
#[test]
fn events_a_full_disk_kept_out_of_the_log_are_counted_as_lost() {
    let dir = tempfile::tempdir().unwrap();
    // A file size limit (SIGXFSZ ignored) makes the log's appends fail as a full disk does.
    let out = Command::new("sh")
        .args(["-c", r#"trap '' XFSZ; ulimit -f 4 && exec "$0" "$@""#])
        .arg(std::env::current_exe().unwrap())
        .args(["track_into_a_log_that_cannot_grow", "--exact", "--nocapture", "--test-threads=1"])
        .env("EMPMIX_FULL_DIR", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let lost: u64 =
        stdout.split("LOST ").nth(1).and_then(|s| s.split_whitespace().next()).unwrap().parse().unwrap();
    let client = fast(&format!("http://{}", free_addr()), dir.path()).build().unwrap();
    let stats = client.stats();
    let stored = (stats.queued + stats.in_flight) as u64;
    assert!(lost > 0 && stored > 0, "lost {lost}, stored {stored}");
    // Every tracked event is either in the log or counted: none disappears unseen.
    assert_eq!(lost + stored, TRACKED_ON_A_FULL_DISK);
}
