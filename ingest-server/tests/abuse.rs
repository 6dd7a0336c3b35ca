//! Slow and greedy clients against a real server on loopback: trickling and idle connections
//! are cut by the header and body timeouts while real clients are served, the connection bound
//! holds, floods past a rate limit get 429 + `Retry-After` while the Rust SDK behind them loses
//! nothing, and a daily quota refuses the event after it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{TestServer, event, start_with};
use empmix_server::ProjectConfig;
use empmix_server::config::RateLimit;
use serde_json::{Value, json};

const SHORT: Duration = Duration::from_millis(500);

fn one_event(who: &str) -> String {
    json!({"events": [event("page_view", who, json!({"url": "https://m.example/"}))]}).to_string()
}

fn post_with(
    s: &TestServer,
    key: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> empmix_server::loopback::HttpResponse {
    let mut headers = vec![("Content-Type", "application/json"), ("X-API-Key", key)];
    headers.extend_from_slice(extra);
    s.client().request("POST", "/api/analytics/events", &headers, body.as_bytes()).unwrap()
}

fn metrics(s: &TestServer) -> String {
    s.client().get("/metrics", &[]).unwrap().text()
}

/// Events stored today for the project of `read_key`.
fn stored_today(s: &TestServer, read_key: &str) -> i64 {
    let auth = format!("Bearer {read_key}");
    let r = s
        .client()
        .request(
            "POST",
            "/api/analytics/query",
            &[("Authorization", &auth), ("Content-Type", "application/json")],
            json!({"metrics": ["events"], "date_range": "today"}).to_string().as_bytes(),
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["results"][0]["metrics"][0].as_i64().unwrap_or(0)
}

/// A connection that sent `prefix` and then nothing.
struct Trickler {
    stream: TcpStream,
    read: Vec<u8>,
    closed_after: Option<Duration>,
}

impl Trickler {
    fn open(addr: std::net::SocketAddr, prefix: &[u8]) -> Trickler {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.write_all(prefix).unwrap();
        stream.set_nonblocking(true).unwrap();
        Trickler { stream, read: Vec::new(), closed_after: None }
    }

    /// Reads what is there; notes when the server closed the connection.
    fn poll(&mut self, started: Instant) {
        if self.closed_after.is_some() {
            return;
        }
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.read.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => break,
            }
        }
        self.closed_after = Some(started.elapsed());
    }
}

/// Waits (up to `limit`) until the server closed every trickler.
fn wait_closed(ts: &mut [Trickler], started: Instant, limit: Duration) -> bool {
    empmix_test_support::wait_until(limit, || {
        ts.iter_mut().for_each(|t| t.poll(started));
        ts.iter().all(|t| t.closed_after.is_some())
    })
}

#[test]
fn trickling_connections_are_cut_while_real_clients_are_served() {
    let s = start_with(|mut c| {
        c.header_timeout = SHORT;
        c.body_timeout = SHORT;
        c
    });
    let addr = s.server.addr();
    let key = s.server.ingest_key().to_string();
    let started = Instant::now();
    let mut heads = Vec::new();
    let mut bodies = Vec::new();
    for i in 0..120 {
        // Half a request head, then nothing.
        heads.push(Trickler::open(
            addr,
            format!("POST /api/analytics/events HTTP/1.1\r\nHost: t{i}\r\nX-A").as_bytes(),
        ));
        // A whole head announcing 1000 bytes of body, then one byte of it.
        let head = format!(
            "POST /api/analytics/events HTTP/1.1\r\nHost: t{i}\r\nX-API-Key: {key}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
        );
        bodies.push(Trickler::open(addr, head.as_bytes()));
    }
    // Meanwhile a real client is served promptly, on fresh connections and a kept-alive one.
    let mut kept = s.client();
    for i in 0..20 {
        let t = Instant::now();
        assert_eq!(s.post(&one_event(&format!("real-{i}"))).status, 200);
        let r = kept
            .request(
                "POST",
                "/api/analytics/events",
                &[("X-API-Key", &key), ("Content-Type", "application/json")],
                one_event(&format!("kept-{i}")).as_bytes(),
            )
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(t.elapsed() < Duration::from_secs(2), "a real request took {:?}", t.elapsed());
    }
    // 500 ms timeouts: every trickler is gone well within 5 s (slack for a loaded 2-core box).
    assert!(wait_closed(&mut heads, started, Duration::from_secs(5)), "slow headers were not cut");
    assert!(wait_closed(&mut bodies, started, Duration::from_secs(5)), "slow bodies were not cut");
    for t in &bodies {
        let text = String::from_utf8_lossy(&t.read);
        assert!(text.starts_with("HTTP/1.1 408"), "a slow body got {text:?}");
        assert!(text.contains("request_timeout"), "{text}");
    }
    for t in heads.iter().chain(&bodies) {
        assert!(
            t.closed_after.unwrap() >= Duration::from_millis(400),
            "closed too early: {:?}",
            t.closed_after
        );
    }
    let m = metrics(&s);
    assert!(m.contains("empmix_http_timeouts_total{phase=\"body\"} 120"), "{m}");
    let header_timeouts: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("empmix_http_timeouts_total{phase=\"header\"} "))
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(header_timeouts >= 120, "{m}");
    assert_eq!(stored_total(&s, 40), 40);
}

/// Waits for `n` events stored today in the first project.
fn stored_total(s: &TestServer, n: i64) -> i64 {
    let read = s.server.read_key().to_string();
    common::poll_until(|| (stored_today(s, &read) >= n).then_some(())).expect("events not stored");
    stored_today(s, &read)
}

#[test]
fn idle_connections_past_the_bound_do_not_lock_out_a_client() {
    const BOUND: usize = 16;
    let s = start_with(|mut c| {
        c.header_timeout = SHORT;
        c.max_connections = BOUND;
        c
    });
    let addr = s.server.addr();
    let started = Instant::now();
    // BOUND + 8 connections that never send a byte: the first BOUND take every slot, the
    // rest wait in the backlog ahead of the real client.
    let mut idle: Vec<Trickler> = (0..BOUND + 8).map(|_| Trickler::open(addr, b"")).collect();
    let t = Instant::now();
    assert_eq!(s.post(&one_event("patient")).status, 200);
    let waited = t.elapsed();
    // The client got a slot only once the first idle ones timed out, and not long after.
    assert!(waited >= Duration::from_millis(300), "the bound did not hold: served after {waited:?}");
    assert!(waited < Duration::from_secs(5), "served only after {waited:?}");
    assert!(wait_closed(&mut idle, started, Duration::from_secs(5)), "idle connections were not closed");
    // And with the idle ones gone, requests are prompt again.
    let t = Instant::now();
    assert_eq!(s.post(&one_event("prompt")).status, 200);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    // A kept-alive connection idle after its response is closed after the header timeout too.
    let started = Instant::now();
    let mut kept = [Trickler::open(addr, b"GET /healthz HTTP/1.1\r\nHost: k\r\n\r\n")];
    assert!(
        wait_closed(&mut kept, started, Duration::from_secs(5)),
        "an idle keep-alive connection stayed open"
    );
    assert!(String::from_utf8_lossy(&kept[0].read).starts_with("HTTP/1.1 200"));
    assert!(kept[0].closed_after.unwrap() >= Duration::from_millis(400), "{:?}", kept[0].closed_after);
}

fn limited_project(id: &str, limit: RateLimit) -> ProjectConfig {
    let mut p = ProjectConfig::new(id, format!("pk_{id}"), format!("sk_{id}"));
    p.rate_limit = Some(limit);
    p
}

#[test]
fn a_flood_gets_429_and_the_sdk_behind_it_loses_nothing() {
    // One request a second after a burst of 10: the bucket the flood empties stays empty for a
    // second, far longer than the SDK takes to send, however loaded the machine.
    let s = start_with(|c| c.with_project(limited_project("limited", RateLimit::new(1, 10))));
    // The SDK's 300 events wait first (nothing is due: the batch size and window are far off),
    // so that its first request goes right after the flood, into the empty bucket.
    let sdk = empmix::Client::builder("pk_limited")
        .endpoint(s.server.base_url())
        .flush_at(500)
        .flush_interval(Duration::from_secs(600))
        .backoff_base(Duration::from_millis(10))
        .backoff_cap(Duration::from_millis(200))
        .request_timeout(Duration::from_secs(5))
        .flush_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut ids = std::collections::HashSet::new();
    for i in 0..300 {
        ids.insert(sdk.track("flood_test", json!({"i": i})).unwrap().to_string());
    }
    // A flood of empty batches (no events, but each a request).
    let mut flood = s.client();
    let mut statuses = Vec::new();
    for _ in 0..80 {
        let r = flood
            .request("POST", "/api/analytics/events", &[("X-API-Key", "pk_limited")], br#"{"events":[]}"#)
            .unwrap();
        if r.status == 429 {
            let retry: u64 = r.header("retry-after").expect("429 without Retry-After").parse().unwrap();
            assert!((1..=60).contains(&retry), "{retry}");
            assert_eq!(r.json()["error"], "rate_limited", "{}", r.text());
            assert!(r.json()["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
        statuses.push(r.status);
    }
    assert!(statuses.iter().all(|&st| st == 200 || st == 429), "{statuses:?}");
    assert!(statuses.iter().filter(|&&st| st == 429).count() >= 20, "{statuses:?}");

    sdk.flush_blocking(Duration::from_secs(60)).unwrap();
    let stats = sdk.stats();
    sdk.shutdown_blocking(Duration::from_secs(10)).unwrap();
    assert_eq!(ids.len(), 300);
    assert_eq!(stats.dropped.total(), 0, "{stats:?}");
    assert_eq!(stats.delivered, 300, "{stats:?}");
    assert!(stats.retried > 0, "the SDK never hit the limit: {stats:?}");
    // Every event stored exactly once.
    let stored = common::poll_until(|| {
        let n = stored_today(&s, "sk_limited");
        (n >= 300).then_some(n)
    })
    .expect("the SDK's events were not all stored");
    assert_eq!(stored, 300);
    let m = metrics(&s);
    let limited: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("empmix_rate_limited_total{project=\"limited\",scope=\"project\"} "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{m}"));
    assert!(limited >= 20, "{m}");
}

#[test]
fn per_address_limit_counts_forwarded_addresses_and_spares_loopback() {
    let s = start_with(|mut c| {
        c.trust_forwarded_for = true;
        c.client_rate_limit = Some(RateLimit::new(1, 2));
        c
    });
    let key = s.server.ingest_key().to_string();
    // From a page on another origin, which must be able to read how long to wait.
    let from = |ip: &str, who: &str| {
        post_with(&s, &key, &[("X-Forwarded-For", ip), ("Origin", "https://m.example")], &one_event(who))
    };
    assert_eq!(from("10.0.0.1, 203.0.113.7", "a1").status, 200);
    assert_eq!(from("203.0.113.7", "a2").status, 200);
    let r = from("203.0.113.7", "a3");
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.header("access-control-expose-headers"), Some("retry-after"));
    assert_eq!(r.json()["error"], "rate_limited");
    // Another address has its own bucket; loopback (a local proxy) is not limited per address.
    assert_eq!(from("203.0.113.8", "b1").status, 200);
    for i in 0..10 {
        assert_eq!(post_with(&s, &key, &[], &one_event(&format!("local-{i}"))).status, 200);
    }
    // IPv6 addresses count by their /64.
    assert_eq!(from("2001:db8:1:2::1", "c1").status, 200);
    assert_eq!(from("2001:db8:1:2::2", "c2").status, 200);
    assert_eq!(from("2001:db8:1:2:ffff::3", "c3").status, 429);
    assert!(metrics(&s).contains("empmix_rate_limited_total{project=\"default\",scope=\"client\"} 2"));
}

#[test]
fn the_daily_quota_refuses_the_eleventh_event() {
    let mut p = ProjectConfig::new("quota", "pk_quota", "sk_quota");
    p.daily_event_quota = Some(10);
    p.time_zone = "Asia/Shanghai".into();
    let s = start_with(|c| c.with_project(p));
    for i in 0..10 {
        let r = post_with(&s, "pk_quota", &[], &one_event(&format!("q{i}")));
        assert_eq!(r.status, 200, "event {i}: {}", r.text());
    }
    let r = post_with(&s, "pk_quota", &[], &one_event("q10"));
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()["error"], "quota_exceeded");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    // Until the next midnight in Shanghai.
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::get("Asia/Shanghai").unwrap());
    let midnight = now.date().tomorrow().unwrap().to_zoned(now.time_zone().clone()).unwrap();
    let expected = (midnight.timestamp().as_second() - now.timestamp().as_second()) as u64;
    assert!(retry.abs_diff(expected) <= 2, "Retry-After {retry}, expected {expected}");
    // A beacon with its key in the body is refused too, and nothing past the quota is stored.
    let mut beacon: Value = serde_json::from_str(&one_event("q11")).unwrap();
    beacon["api_key"] = json!("pk_quota");
    let r = s
        .client()
        .request("POST", "/track", &[("Content-Type", "text/plain")], beacon.to_string().as_bytes())
        .unwrap();
    assert_eq!(r.status, 429, "{}", r.text());
    let n = common::poll_until(|| {
        let n = stored_today(&s, "sk_quota");
        (n >= 10).then_some(n)
    })
    .unwrap();
    assert_eq!(n, 10);
    assert!(metrics(&s).contains("empmix_rate_limited_total{project=\"quota\",scope=\"quota\"} 2"));
}
