//! The real binary as a child process: durability across SIGKILL, and the consumer run as its
//! own process (`empmix-server consume`).

// Helpers outside #[test] functions panic on purpose too: this is a test crate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use empmix_server::loopback::Client;
use serde_json::json;

struct Spawned {
    child: Child,
    addr: SocketAddr,
    ingest_key: String,
    read_key: String,
}

fn spawn(dir: &std::path::Path) -> Spawned {
    spawn_with(dir, &[])
}

fn spawn_with(dir: &std::path::Path, extra: &[&str]) -> Spawned {
    let mut child = Command::new(env!("CARGO_BIN_EXE_empmix-server"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(extra)
        .env_remove("EMPMIX_INGEST_KEY")
        .env_remove("EMPMIX_READ_KEY")
        .env_remove("EMPMIX_CONFIG")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut addr, mut ingest_key, mut read_key) = (None, None, None);
    while addr.is_none() || ingest_key.is_none() || read_key.is_none() {
        let line = lines.next().expect("server exited before printing its address and keys").unwrap();
        if let Some(url) = line.strip_prefix("empmix-server listening on http://") {
            addr = Some(url.parse().unwrap());
        } else if let Some(k) = line.strip_prefix("empmix-server ingest key: ") {
            ingest_key = Some(k.to_string());
        } else if let Some(k) = line.strip_prefix("empmix-server read key: ") {
            read_key = Some(k.to_string());
        }
    }
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Spawned { child, addr: addr.unwrap(), ingest_key: ingest_key.unwrap(), read_key: read_key.unwrap() }
}

#[test]
fn sigkill_right_after_200_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = spawn(dir.path());
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..4)
        .map(|t| {
            let (acked, stop, key, addr) = (acked.clone(), stop.clone(), server.ingest_key.clone(), server.addr);
            std::thread::spawn(move || {
                let mut c = Client::new(addr);
                for _ in 0..200 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let ids: Vec<String> = (0..20).map(|_| id()).collect();
                    let events: Vec<_> = ids
                        .iter()
                        .map(|i| json!({"event_id": i, "type": "page_view", "distinct_id": format!("t{t}"), "properties": {"conference_id": "crash"}}))
                        .collect();
                    let body = json!({"events": events}).to_string();
                    match c.request("POST", "/api/analytics/events", &[("X-API-Key", &key)], body.as_bytes()) {
                        Ok(r) if r.status == 200 => acked.lock().unwrap().extend(ids),
                        // The kill cuts requests in flight: those were never acknowledged.
                        _ => break,
                    }
                }
            })
        })
        .collect();
    // Kill while requests are still in flight, right after at least 40 batches were answered.
    let enough = poll_until(|| (acked.lock().unwrap().len() >= 800).then_some(()));
    assert!(enough.is_some(), "the server acknowledged too little");
    server.child.kill().unwrap(); // SIGKILL on Unix
    server.child.wait().unwrap();
    stop.store(true, Ordering::SeqCst);
    for s in senders {
        s.join().unwrap();
    }
    let acked: HashSet<String> = acked.lock().unwrap().iter().cloned().collect();

    let mut restarted = spawn(dir.path());
    assert_eq!(restarted.ingest_key, server.ingest_key, "keys are kept in the data directory");
    let mut c = Client::new(restarted.addr);
    let auth = format!("Bearer {}", restarted.read_key);
    let day = today();
    let path = format!("/api/analytics/daily?conference_id=crash&from={day}&to={day}");
    // Wait for the consumer to drain the queue, not only for pv to reach the acknowledged count:
    // batches whose 200 the kill cut off may be durable too, and are consumed after those.
    let pv = poll_until(|| {
        let metrics = c.get("/metrics", &[]).unwrap().text();
        if !metrics.lines().any(|l| l == "empmix_queue_depth 0") {
            return None;
        }
        let v = c.get(&path, &[("Authorization", &auth)]).unwrap().json();
        let pv = v[0]["pv"].as_u64()?;
        (pv as usize >= acked.len()).then_some(pv)
    });
    assert!(pv.is_some(), "daily pv never reached the {} acknowledged events", acked.len());
    // Every acknowledged id is stored exactly once.
    let mut stored = Vec::new();
    let mut before = String::new();
    loop {
        let page = c
            .get(&format!("/api/analytics/events?limit=1000{before}"), &[("Authorization", &auth)])
            .unwrap()
            .json();
        for e in page["events"].as_array().unwrap() {
            stored.push(e["event_id"].as_str().unwrap().to_string());
        }
        match page["next_before"].as_i64() {
            Some(b) => before = format!("&before={b}"),
            None => break,
        }
    }
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "an event was stored twice");
    let missing = acked.iter().filter(|i| !unique.contains(i)).count();
    assert_eq!(missing, 0, "{missing} of {} acknowledged events lost", acked.len());
    assert_eq!(pv.unwrap() as usize, stored.len(), "daily pv counts each stored event once");
    restarted.child.kill().unwrap();
    restarted.child.wait().unwrap();
}

#[test]
fn the_consume_subcommand_drains_a_queue_filled_by_a_server_without_consumer() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = spawn_with(dir.path(), &["--no-consumer"]);
    let mut c = Client::new(server.addr);
    let events: Vec<_> = (0..30)
        .map(|i| json!({"event_id": id(), "type": "page_view", "distinct_id": format!("v{}", i % 7), "properties": {"conference_id": "sub"}}))
        .collect();
    let body = json!({"events": events}).to_string();
    let r = c
        .request("POST", "/api/analytics/events", &[("X-API-Key", &server.ingest_key)], body.as_bytes())
        .unwrap();
    assert_eq!(r.status, 200);
    let out = Command::new(env!("CARGO_BIN_EXE_empmix-server"))
        .args(["--data-dir"])
        .arg(dir.path())
        .args(["consume", "--drain"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("consumed 30 events"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The running server reads what the other process wrote.
    let day = today();
    let auth = format!("Bearer {}", server.read_key);
    let v = c
        .get(
            &format!("/api/analytics/daily?conference_id=sub&from={day}&to={day}"),
            &[("Authorization", &auth)],
        )
        .unwrap()
        .json();
    assert_eq!((v[0]["pv"].clone(), v[0]["uv"].clone()), (json!(30), json!(7)));
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

#[test]
fn default_project_flags_apply_to_the_project_with_generated_keys() {
    // The README's set-up: no keys given, so they are generated; the flags of project
    // "default" must still be its settings, not silently dropped.
    let parent = tempfile::tempdir().unwrap();
    // A data directory the server creates (with a parent missing too).
    let dir = parent.path().join("new").join("data");
    let flags = [
        "--time-zone",
        "Asia/Shanghai",
        "--allowed-origins",
        // As an operator types it: a space after the comma, a trailing slash.
        "https://other.example, https://m.example/",
        "--daily-event-quota",
        "1",
    ];
    let mut server = spawn_with(&dir, &flags);
    let mut c = Client::new(server.addr);
    let auth = format!("Bearer {}", server.read_key);
    let who = c.get("/api/analytics/whoami", &[("Authorization", &auth)]).unwrap().json();
    assert_eq!(who["time_zone"], "Asia/Shanghai", "{who}");
    // The generated keys file holds the secret read key: its owner's only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join("keys.toml")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "keys.toml is {mode:o}");
        // The directory holds every raw event: its owner's only, too.
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "the data directory is {mode:o}");
    }
    let body = json!({"events": [{"event_id": id(), "type": "page_view"}]}).to_string();
    let post = |c: &mut Client, origin: &str| {
        let headers = [("X-API-Key", server.ingest_key.as_str()), ("Origin", origin)];
        c.request("POST", "/api/analytics/events", &headers, body.as_bytes()).unwrap()
    };
    let r = post(&mut c, "https://evil.example");
    assert_eq!((r.status, r.json()["error"].clone()), (403, json!("origin_not_allowed")), "{}", r.text());
    assert_eq!(post(&mut c, "https://m.example").status, 200);
    let r = post(&mut c, "https://m.example");
    assert_eq!((r.status, r.json()["error"].clone()), (429, json!("quota_exceeded")), "{}", r.text());
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    // A zone that does not exist is refused at start, keys or not.
    let out = Command::new(env!("CARGO_BIN_EXE_empmix-server"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .args(["--time-zone", "Mars/Olympus"])
        .env_remove("EMPMIX_INGEST_KEY")
        .env_remove("EMPMIX_READ_KEY")
        .env_remove("EMPMIX_CONFIG")
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started with an unknown zone: {stderr}");
    assert!(stderr.contains("unknown time zone \"Mars/Olympus\""), "{stderr}");
}
