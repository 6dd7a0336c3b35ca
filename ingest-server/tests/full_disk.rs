//! A full disk: the data directory and the server's log on one small filesystem of the test's
//! own (a tmpfs it mounts, so this needs root; under `CI=true` a failure to mount fails the
//! test, otherwise it is skipped loudly). Every ingest request gets an answer (503 with
//! `Retry-After` and a JSON error body) while the disk is full, `/readyz` says not ready, no
//! thread panics, and once space returns ingest and the consumer resume by themselves with every
//! acknowledged event counted exactly once. Also the free-space floor (`--min-free-disk-mb`).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test assertions: a failure is a test failure")]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use std::time::{Duration, Instant};

use empmix_server::loopback::{Client, HttpResponse};
use empmix_server::{ProjectConfig, Server, ServerConfig};
use serde_json::{Value, json};

const INGEST_KEY: &str = "pk_full_disk";
const READ_KEY: &str = "sk_full_disk";

/// A tmpfs of its own, unmounted on drop (also when the test fails).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`8m`); `None` (skipped loudly) when that is not possible and
    /// `CI` is not `true`.
    fn mount(test: &str, size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755"), "tmpfs"])
            .arg(dir.path())
            .output();
        let why = match out {
            Ok(o) if o.status.success() => return Some(Tmpfs { dir }),
            Ok(o) => format!("mount exited with {}: {}", o.status, String::from_utf8_lossy(&o.stderr).trim()),
            Err(e) => format!("cannot run mount: {e}"),
        };
        let message = format!("{test}: cannot mount a {size} tmpfs ({why}); this test needs root");
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{message} (CI=true: the full-disk tests never skip)");
        }
        eprintln!("\n!!!!!!!! SKIPPED {message} !!!!!!!!\n");
        None
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a filler file until the filesystem is full (ENOSPC); returns its path.
    fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).expect("open filler");
        for chunk in [1 << 16, 4096, 1] {
            let buf = vec![0x5a_u8; chunk];
            loop {
                match f.write(&buf) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.raw_os_error() == Some(28) => break,
                    Err(e) => panic!("filling the disk: {e}"),
                }
            }
        }
        let _ = f.sync_all();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a process of a failed test may still hold files open.
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// The real binary with its data directory and its log (stderr) on `disk`; killed on drop.
struct Proc {
    child: Child,
    addr: std::net::SocketAddr,
}

impl Proc {
    fn start(disk: &Tmpfs, extra: &[&str]) -> Proc {
        let log = std::fs::File::create(disk.path().join("server.log")).expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_empmix-server"))
            .arg("--data-dir")
            .arg(disk.path().join("data"))
            .args(["--ingest-key", INGEST_KEY, "--read-key", READ_KEY, "--listen", "127.0.0.1:0"])
            .args(["--workers", "2"])
            .args(extra)
            // Every request logs; the queue and the consumer log their failures.
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn empmix-server");
        let addr = common::announced_addr(&mut child);
        Proc { child, addr }
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request on a fresh connection: an `Err` is a request that got no HTTP answer. Ingest
/// carries the ingest key, everything else the read key.
fn request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let (name, value) = if path == "/api/analytics/events" && method == "POST" {
        ("X-API-Key", INGEST_KEY.to_string())
    } else {
        ("Authorization", format!("Bearer {READ_KEY}"))
    };
    Client::new(addr).request(method, path, &[("Content-Type", "application/json"), (name, &value)], body)
}

/// A batch of `n` page views of `conference`, each with ~1 KB of padding; returns the body.
fn batch(conference: &str, n: usize) -> String {
    let pad = "x".repeat(1024);
    let events: Vec<Value> = (0..n)
        .map(|i| {
            json!({"event_id": uuid::Uuid::now_v7().to_string(), "type": "page_view",
                   "anonymous_id": format!("a-{i}"), "timestamp": common::now_ms(),
                   "properties": {"conference_id": conference, "url": "https://m.example/c", "pad": pad}})
        })
        .collect();
    json!({"sent_at": common::now_ms(), "events": events}).to_string()
}

/// Asserts a 503 for a batch: `Retry-After` in seconds and the JSON error body.
fn assert_unavailable(r: &HttpResponse) -> Value {
    assert_eq!(r.status, 503, "{}", r.text());
    let retry = r.header("retry-after").expect("a 503 carries Retry-After");
    assert!(retry.parse::<u32>().is_ok_and(|s| s > 0), "Retry-After {retry:?}");
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("application/json")));
    let body: Value = serde_json::from_slice(&r.body).expect("a JSON error body");
    assert_eq!(body["error"], "unavailable", "{body}");
    body
}

fn page_views(addr: std::net::SocketAddr, conference: &str) -> Option<i64> {
    let day = common::today();
    let r = request(
        addr,
        "GET",
        &format!("/api/analytics/daily?conference_id={conference}&from={day}&to={day}"),
        b"",
    )
    .ok()?;
    if r.status != 200 {
        return None;
    }
    let v: Value = serde_json::from_slice(&r.body).ok()?;
    Some(v.as_array()?.first().map_or(0, |d| d["pv"].as_i64().unwrap_or(0)))
}

#[test]
fn a_full_disk_answers_503_then_ingest_and_the_consumer_resume_counting_each_event_once() {
    let Some(disk) = Tmpfs::mount("full_disk", "16m") else { return };
    // No floor: SQLite itself runs out of space (the floor has a test of its own).
    let mut server = Proc::start(&disk, &["--min-free-disk-mb", "0"]);
    let conf = "full-disk";
    let per_batch = 20;
    let mut acknowledged = 0_i64;
    for _ in 0..5 {
        let r =
            request(server.addr, "POST", "/api/analytics/events", batch(conf, per_batch).as_bytes()).unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        acknowledged += per_batch as i64;
    }
    assert!(
        common::poll_until(|| (page_views(server.addr, conf) == Some(acknowledged)).then_some(())).is_some()
    );

    let filler = disk.fill();
    let mut refused = 0;
    let mut not_ready_seen = false;
    for i in 0..40 {
        let r = request(server.addr, "POST", "/api/analytics/events", batch(conf, per_batch).as_bytes())
            .unwrap_or_else(|e| panic!("request {i} on a full disk got no HTTP answer: {e}"));
        if r.status == 200 {
            // SQLite may still have had room in its own files.
            acknowledged += per_batch as i64;
            continue;
        }
        let body = assert_unavailable(&r);
        assert!(body["message"].as_str().is_some_and(|m| m.contains("disk full")), "{body}");
        refused += 1;
        let ready = request(server.addr, "GET", "/readyz", b"").expect("/readyz answers on a full disk");
        if ready.status == 503 {
            not_ready_seen = true;
            assert!(ready.text().contains("disk full"), "{}", ready.text());
        }
        assert_eq!(request(server.addr, "GET", "/healthz", b"").expect("/healthz answers").status, 200);
    }
    assert!(refused > 0, "a full disk refused no batch");
    assert!(not_ready_seen, "/readyz never said not ready while batches were refused");
    assert!(server.alive(), "the server exited on a full disk");

    std::fs::remove_file(&filler).expect("free the space");
    // Clients retry; the first commit after space returns succeeds.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = request(server.addr, "POST", "/api/analytics/events", batch(conf, per_batch).as_bytes())
            .expect("an answer");
        if r.status == 200 {
            acknowledged += per_batch as i64;
            break;
        }
        assert_unavailable(&r);
        assert!(Instant::now() < deadline, "ingest did not resume within 30 s of space returning");
        std::thread::sleep(Duration::from_millis(200));
    }
    for _ in 0..5 {
        let r =
            request(server.addr, "POST", "/api/analytics/events", batch(conf, per_batch).as_bytes()).unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        acknowledged += per_batch as i64;
    }
    let ready = common::poll_until(|| {
        (request(server.addr, "GET", "/readyz", b"").ok()?.status == 200).then_some(())
    });
    assert!(ready.is_some(), "/readyz did not come back once space returned");
    // The consumer backs off up to 5 s between attempts.
    let counted = empmix_test_support::poll(Duration::from_secs(30), || {
        (page_views(server.addr, conf) == Some(acknowledged)).then_some(())
    });
    assert!(
        counted.is_some(),
        "every acknowledged event counted once: want {acknowledged}, have {:?}",
        page_views(server.addr, conf)
    );
    // And not more: nothing refused shows up later.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(page_views(server.addr, conf), Some(acknowledged));
    let r = request(
        server.addr,
        "POST",
        "/api/analytics/query",
        json!({"metrics": ["events"], "date_range": "today"}).to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains(&acknowledged.to_string()), "events metric: {}", r.text());
    assert!(server.alive(), "the server exited");
    let log = std::fs::read_to_string(disk.path().join("server.log")).unwrap_or_default();
    assert!(!log.contains("panicked"), "a thread panicked:\n{log}");
    assert!(!log.contains("is corrupt"), "a full disk was logged as corruption:\n{log}");
}

fn in_process(disk: &Tmpfs, floor_mb: u64) -> empmix_server::RunningServer {
    let mut config = ServerConfig::new(disk.path().join(format!("data-{floor_mb}")))
        .with_project(ProjectConfig::new("default", INGEST_KEY, READ_KEY));
    config.worker_threads = Some(2);
    config.min_free_disk_mb = floor_mb;
    Server::start(config).expect("server starts")
}

#[test]
fn under_the_free_space_floor_ingest_answers_503_naming_the_floor() {
    let Some(disk) = Tmpfs::mount("free_space_floor", "8m") else { return };
    // 8 MB free is under a 64 MB floor.
    let server = in_process(&disk, 64);
    let r = request(server.addr(), "POST", "/api/analytics/events", batch("floor", 3).as_bytes()).unwrap();
    let body = assert_unavailable(&r);
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("floor of 64 MB") && message.contains("--min-free-disk-mb"), "{message}");
    let ready = request(server.addr(), "GET", "/readyz", b"").unwrap();
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert!(ready.text().contains("floor of 64 MB"), "{}", ready.text());
    server.shutdown().unwrap();

    // Over a 1 MB floor on the same disk, batches are taken.
    let server = in_process(&disk, 1);
    let r = request(server.addr(), "POST", "/api/analytics/events", batch("floor", 3).as_bytes()).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(request(server.addr(), "GET", "/readyz", b"").unwrap().status, 200);
    server.shutdown().unwrap();
}
