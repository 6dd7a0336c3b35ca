//! `empmix-loadgen`: drives an `empmix-server` on loopback with batches of page views and
//! reports events/s, request latency percentiles, the server's CPU time (with `--server-pid`)
//! and, with `--probes`, how long an event takes to show in the daily summary after its 200.
//!
//! ```text
//! empmix-loadgen --addr 127.0.0.1:8000 --ingest-key pk_… --batch 50 --connections 4 --seconds 10
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use empmix_server::loopback::Client;

/// Load generator for empmix-server (loopback only).
#[derive(Debug, Parser)]
#[command(name = "empmix-loadgen", version, about)]
struct Args {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:8000")]
    addr: SocketAddr,
    /// Ingest key.
    #[arg(long, env = "EMPMIX_INGEST_KEY")]
    ingest_key: String,
    /// Read key (needed for --probes).
    #[arg(long, env = "EMPMIX_READ_KEY")]
    read_key: Option<String>,
    /// Events per request.
    #[arg(long, default_value_t = 50)]
    batch: usize,
    /// Concurrent keep-alive connections (one thread each).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// How long to send.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Stop after this many requests in all (0: no limit).
    #[arg(long, default_value_t = 0)]
    requests: u64,
    /// Target events/s over all connections (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Measure time-to-visible in the daily summary with this many probe events (one every 100 ms).
    #[arg(long, default_value_t = 0)]
    probes: usize,
    /// PID of the server, to report its CPU time from /proc (Linux).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Send gzip-compressed bodies.
    #[arg(long)]
    gzip: bool,
    /// Build this many bodies per connection up front and cycle through them (events repeat,
    /// so the consumer deduplicates them; measures the accept path without the generator's
    /// own cost). 0: a fresh body, with fresh event ids, per request.
    #[arg(long, default_value_t = 0)]
    pregen: usize,
}

/// User+system CPU seconds of a process, from /proc/PID/stat.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0) // USER_HZ is 100 on Linux
}

fn body(batch: usize, conn: usize, seq: u64, now_ms: i64) -> String {
    let mut out = format!("{{\"sent_at\":{now_ms},\"events\":[");
    for i in 0..batch {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            "{{\"event_id\":\"{}\",\"type\":\"page_view\",\"distinct_id\":\"load-{conn}-{}\",\"anonymous_id\":\"load-{conn}-{}\",\
             \"session_id\":\"s-{conn}-{}\",\"timestamp\":{now_ms},\"properties\":{{\"url\":\"https://m.example/conf/load\",\
             \"conference_id\":\"load\"}},\"context\":{{\"library\":{{\"name\":\"empmix-loadgen\",\"version\":\"1\"}}}}}}",
            uuid::Uuid::now_v7(),
            seq % 1000,
            seq % 1000,
            seq % 100
        ));
    }
    out.push_str("]}");
    out
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

fn main() {
    let args = Args::parse();
    let stop = Arc::new(AtomicBool::new(false));
    let sent_requests = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let cpu_before = args.server_pid.and_then(cpu_seconds);
    let start = Instant::now();
    let per_conn_rate = if args.rate > 0 { args.rate as f64 / args.connections as f64 } else { 0.0 };
    let workers: Vec<_> = (0..args.connections)
        .map(|conn| {
            let (stop, sent_requests, errors) = (stop.clone(), sent_requests.clone(), errors.clone());
            let (addr, key, batch, limit, gz) =
                (args.addr, args.ingest_key.clone(), args.batch, args.requests, args.gzip);
            let pregen = args.pregen as u64;
            std::thread::spawn(move || {
                let make = move |seq: u64| {
                    let text = body(batch, conn, seq, now_ms());
                    if gz { gzip(text.as_bytes()) } else { text.into_bytes() }
                };
                let pool: Vec<Vec<u8>> = (0..pregen).map(make).collect();
                let mut client = Client::new(addr);
                let mut latencies = Vec::new();
                let mut seq = 0u64;
                let began = Instant::now();
                let mut headers = vec![("Content-Type", "application/json"), ("X-API-Key", key.as_str())];
                if gz {
                    headers.push(("Content-Encoding", "gzip"));
                }
                while !stop.load(Ordering::Relaxed) {
                    if limit > 0 && sent_requests.fetch_add(1, Ordering::Relaxed) >= limit {
                        break;
                    }
                    if per_conn_rate > 0.0 {
                        let due =
                            began + Duration::from_secs_f64((seq * batch as u64) as f64 / per_conn_rate);
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                    }
                    let fresh;
                    let payload = if pool.is_empty() {
                        fresh = make(seq);
                        &fresh
                    } else {
                        &pool[seq as usize % pool.len()]
                    };
                    let t = Instant::now();
                    match client.request("POST", "/api/analytics/events", &headers, payload) {
                        Ok(r) if r.status == 200 => latencies.push(t.elapsed().as_micros() as u64),
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    seq += 1;
                }
                latencies
            })
        })
        .collect();
    let probes = (args.probes > 0).then(|| {
        let (addr, ingest, read) =
            (args.addr, args.ingest_key.clone(), args.read_key.clone().unwrap_or_default());
        let n = args.probes;
        std::thread::spawn(move || probe(addr, &ingest, &read, n))
    });
    let deadline = start + Duration::from_secs(args.seconds);
    while Instant::now() < deadline && !workers.iter().all(|w| w.is_finished()) {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let mut latencies: Vec<u64> = workers.into_iter().flat_map(|w| w.join().unwrap_or_default()).collect();
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = match (cpu_before, args.server_pid.and_then(cpu_seconds)) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    latencies.sort_unstable();
    let events = latencies.len() as f64 * args.batch as f64;
    println!("batch size:        {}", args.batch);
    println!("connections:       {}", args.connections);
    println!("duration:          {elapsed:.2} s");
    println!("requests ok:       {} ({} failed)", latencies.len(), errors.load(Ordering::Relaxed));
    println!("events accepted:   {events:.0}");
    println!("events/s:          {:.0}", events / elapsed);
    println!("latency p50:       {:.2} ms", percentile(&latencies, 0.50));
    println!("latency p99:       {:.2} ms", percentile(&latencies, 0.99));
    if let Some(cpu) = cpu {
        println!("server CPU:        {cpu:.2} s ({:.0}% of one core)", cpu / elapsed * 100.0);
        if cpu > 0.0 {
            println!("events/s per core: {:.0}", events / cpu);
        }
    }
    if let Some(p) = probes {
        let mut v = p.join().unwrap_or_default();
        v.sort_unstable();
        if !v.is_empty() {
            println!(
                "visible in daily:  p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} probes)",
                percentile(&v, 0.50),
                percentile(&v, 0.99),
                v.last().copied().unwrap_or(0) as f64 / 1000.0,
                v.len()
            );
        }
    }
}

/// Posts one page view per probe under its own conference and times 200 → visible in daily.
fn probe(addr: SocketAddr, ingest: &str, read: &str, n: usize) -> Vec<u64> {
    let mut client = Client::new(addr);
    let mut out = Vec::new();
    let auth = format!("Bearer {read}");
    let day = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date().to_string();
    let run = uuid::Uuid::now_v7().simple().to_string();
    for i in 0..n {
        std::thread::sleep(Duration::from_millis(100));
        let conf = format!("probe-{run}-{i}");
        let body = format!(
            "{{\"events\":[{{\"type\":\"page_view\",\"properties\":{{\"conference_id\":\"{conf}\"}}}}]}}"
        );
        let ok = client.request("POST", "/api/analytics/events", &[("X-API-Key", ingest)], body.as_bytes());
        if !ok.is_ok_and(|r| r.status == 200) {
            continue;
        }
        let acked = Instant::now();
        let path = format!("/api/analytics/daily?conference_id={conf}&from={day}&to={day}");
        while acked.elapsed() < Duration::from_secs(30) {
            let seen = client.get(&path, &[("Authorization", &auth)]).is_ok_and(|r| r.json()[0]["pv"] == 1);
            if seen {
                out.push(acked.elapsed().as_micros() as u64);
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    out
}
