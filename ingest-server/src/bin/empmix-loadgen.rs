//! `empmix-loadgen`: drives an `empmix-server` on loopback with batches of page views and
//! reports events/s, request latency percentiles, the server's CPU time (with `--server-pid`)
//! and, with `--probes`, how long an event takes to show in the daily summary after its 200.
//!
//! ```text
//! empmix-loadgen --addr 127.0.0.1:8000 --ingest-key pk_… --batch 50 --connections 4 --seconds 10
//! ```
//!
//! `--mix seed` sends the seed scenario's event mix instead (mostly page views, some shares,
//! share opens, registrations, check-ins and identifies, over 20 conferences, ~50 pages and a
//! few thousand users with sessions); `--spread-days N` gives events client timestamps spread
//! uniformly over the last N days (and omits `sent_at`, so the server takes them as they are).
//!
//! Two read-side modes replace the load (they run instead of it, query bench first):
//! `--query-bench` times a fixed set of `POST /api/analytics/query` queries (`--query-runs`
//! each), and `--live-probes N` times 200 → first `summary` of `GET /api/analytics/live`
//! listing the probe among its `newest` (that includes the consumer's work).
//!
//! ```text
//! empmix-loadgen --ingest-key pk_… --mix seed --spread-days 30 --batch 50 --requests 20000 --seconds 3600
//! empmix-loadgen --ingest-key pk_… --read-key sk_… --query-bench --live-probes 50
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
    /// Ingest key (needed for the load, --probes and --live-probes).
    #[arg(long, env = "EMPMIX_INGEST_KEY")]
    ingest_key: Option<String>,
    /// Read key (needed for --probes, --query-bench and --live-probes).
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
    /// What the load sends: `pageview` (one page view shape) or `seed` (the seed's event mix).
    #[arg(long, value_enum, default_value_t = Mix::Pageview)]
    mix: Mix,
    /// Spread client timestamps uniformly over the last N days (1 to 30; `sent_at` omitted).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=30))]
    spread_days: Option<u32>,
    /// Order of the spread timestamps (seed mix): `random` (a backfill: time order unrelated
    /// to arrival order) or `ascending` (time advances with the requests sent, a few minutes of
    /// jitter, as live traffic arrives; needs `--requests`).
    #[arg(long, value_enum, default_value_t = SpreadOrder::Random)]
    spread_order: SpreadOrder,
    /// Distinct users of the seed mix.
    #[arg(long, default_value_t = 3000)]
    users: u64,
    /// Instead of load: time the query set against `POST /api/analytics/query`.
    #[arg(long)]
    query_bench: bool,
    /// Timed runs per query of --query-bench (after one untimed warm-up run).
    #[arg(long, default_value_t = 20)]
    query_runs: usize,
    /// Instead of load: time this many probe page views from 200 to the live stream.
    #[arg(long, default_value_t = 0)]
    live_probes: usize,
}

/// How spread timestamps are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SpreadOrder {
    /// Uniformly random in the window, whatever the arrival order.
    Random,
    /// Oldest first: the window is walked from its start to now over the run.
    Ascending,
}

/// Event mixes of the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mix {
    /// One page view shape (fixed url and conference).
    Pageview,
    /// The seed scenario's mix.
    Seed,
}

/// User+system CPU seconds of a process, from /proc/PID/stat.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0) // USER_HZ is 100 on Linux
}

fn body(batch: usize, conn: usize, seq: u64, now_ms: i64, spread_days: Option<u32>) -> String {
    let mut out = match spread_days {
        Some(_) => String::from("{\"events\":["),
        None => format!("{{\"sent_at\":{now_ms},\"events\":["),
    };
    let mut rng = Rng::new(conn as u64 ^ seq.rotate_left(20));
    for i in 0..batch {
        if i > 0 {
            out.push(',');
        }
        let ts = spread_days.map_or(now_ms, |d| now_ms - rng.below(u64::from(d) * DAY_MS) as i64);
        out.push_str(&format!(
            "{{\"event_id\":\"{}\",\"type\":\"page_view\",\"distinct_id\":\"load-{conn}-{}\",\"anonymous_id\":\"load-{conn}-{}\",\
             \"session_id\":\"s-{conn}-{}\",\"timestamp\":{ts},\"properties\":{{\"url\":\"https://m.example/conf/load\",\
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
    if args.query_bench || args.live_probes > 0 {
        let read = args.read_key.clone().unwrap_or_else(|| fail("--read-key is needed"));
        if args.query_bench {
            query_bench(args.addr, &read, args.query_runs.max(1));
        }
        if args.live_probes > 0 {
            let ingest = args.ingest_key.clone().unwrap_or_else(|| fail("--ingest-key is needed"));
            live_probes(args.addr, &ingest, &read, args.live_probes);
        }
        return;
    }
    let ingest_key = args.ingest_key.clone().unwrap_or_else(|| fail("--ingest-key is needed"));
    if args.spread_order == SpreadOrder::Ascending && (args.requests == 0 || args.mix != Mix::Seed) {
        fail("--spread-order ascending needs --requests and --mix seed");
    }
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
                (args.addr, ingest_key.clone(), args.batch, args.requests, args.gzip);
            let pregen = args.pregen as u64;
            let progress =
                (args.spread_order == SpreadOrder::Ascending).then(|| (sent_requests.clone(), args.requests));
            let mut seed =
                (args.mix == Mix::Seed).then(|| SeedMix::new(conn, args.users, args.spread_days, progress));
            let spread = args.spread_days;
            std::thread::spawn(move || {
                let mut make = move |seq: u64| {
                    let text = match seed.as_mut() {
                        Some(m) => m.body(batch, now_ms()),
                        None => body(batch, conn, seq, now_ms(), spread),
                    };
                    if gz { gzip(text.as_bytes()) } else { text.into_bytes() }
                };
                let pool: Vec<Vec<u8>> = (0..pregen).map(&mut make).collect();
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
        let (addr, ingest, read) = (args.addr, ingest_key.clone(), args.read_key.clone().unwrap_or_default());
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

fn fail(msg: &str) -> ! {
    eprintln!("empmix-loadgen: {msg}");
    std::process::exit(2)
}

const DAY_MS: u64 = 86_400_000;

/// splitmix64: a small, fast, seedable generator (the load needs variety, not quality).
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the modulo bias is irrelevant here).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const CONFERENCES: u64 = 20;
/// How far an ascending spread timestamp may fall behind its place in the window.
const ASCENDING_JITTER_MS: u64 = 5 * 60_000;
const SECTIONS: [&str; 10] =
    ["home", "agenda", "speakers", "venue", "tickets", "sponsors", "faq", "news", "live", "my"];
const BROWSERS: [&str; 5] = ["Chrome", "Safari", "WeChat", "Firefox", "Edge"];
const OSES: [&str; 5] = ["iOS", "Android", "Windows", "macOS", "Linux"];
const CHANNELS: [&str; 4] = ["wechat", "moments", "email", "link"];
/// Share codes remembered per connection, for parents, opens and registrations to refer to.
const RECENT_CODES: usize = 512;

/// The seed scenario's event mix: per 100 events about 85 page views, 4 shares (half of them
/// re-shares under a recent code), 5 share opens, 4 registrations (most attributed to a
/// recent share), 1.5 check-ins and 0.5 identifies. Users have a home conference (80% of their
/// events), a browser and OS; a third are identified (`distinct_id` `user-N`, `anonymous_id`
/// `anon-N`); sessions are 30-minute buckets of a user's time.
#[derive(Debug)]
struct SeedMix {
    rng: Rng,
    users: u64,
    spread_ms: Option<u64>,
    /// For ascending spread: requests started by all connections, and how many there will be.
    progress: Option<(Arc<AtomicU64>, u64)>,
    codes: Vec<String>,
}

impl SeedMix {
    fn new(
        conn: usize,
        users: u64,
        spread_days: Option<u32>,
        progress: Option<(Arc<AtomicU64>, u64)>,
    ) -> Self {
        let seed = (conn as u64).wrapping_mul(0x1000_0000_01b3) ^ now_ms() as u64;
        SeedMix {
            rng: Rng::new(seed),
            users: users.max(1),
            spread_ms: spread_days.map(|d| u64::from(d) * DAY_MS),
            progress,
            codes: Vec::with_capacity(RECENT_CODES),
        }
    }

    /// A page of ~50: ten sections, five pages each, the first pages of each more often.
    fn url(&mut self) -> String {
        let section = self.rng.pick(&SECTIONS);
        let r = self.rng.below(1000) as f64 / 1000.0;
        let page = (r * r * 5.0) as u32;
        format!("https://m.example/{section}/{page}")
    }

    fn recent_code(&mut self) -> Option<String> {
        if self.codes.is_empty() {
            return None;
        }
        let i = self.rng.below(self.codes.len() as u64) as usize;
        Some(self.codes[i].clone())
    }

    fn remember(&mut self, code: &str) {
        if self.codes.len() < RECENT_CODES {
            self.codes.push(code.to_string());
        } else {
            let i = self.rng.below(RECENT_CODES as u64) as usize;
            self.codes[i] = code.to_string();
        }
    }

    fn body(&mut self, batch: usize, now_ms: i64) -> String {
        let mut out = match self.spread_ms {
            Some(_) => String::from("{\"events\":["),
            None => format!("{{\"sent_at\":{now_ms},\"events\":["),
        };
        for i in 0..batch {
            if i > 0 {
                out.push(',');
            }
            self.event(&mut out, now_ms);
        }
        out.push_str("]}");
        out
    }

    fn event(&mut self, out: &mut String, now_ms: i64) {
        use std::fmt::Write;
        let u = self.rng.below(self.users);
        let ts = match (self.spread_ms, &self.progress) {
            (Some(span), Some((sent, total))) => {
                let done = (sent.load(Ordering::Relaxed) as f64 / (*total).max(1) as f64).min(1.0);
                let at =
                    now_ms - ((1.0 - done) * span as f64) as i64 - self.rng.below(ASCENDING_JITTER_MS) as i64;
                at.max(now_ms - span as i64)
            }
            (Some(span), None) => now_ms - self.rng.below(span) as i64,
            (None, _) => now_ms,
        };
        let conf = if self.rng.below(10) < 8 { u % CONFERENCES } else { self.rng.below(CONFERENCES) };
        let identified = u % 3 == 0;
        let roll = self.rng.below(1000);
        let name = match roll {
            0..850 => "page_view",
            850..890 => "share",
            890..940 => "share_open",
            940..980 => "registration",
            980..995 => "checkin",
            _ if identified => "identify",
            _ => "page_view",
        };
        let mut props = format!("\"conference_id\":\"conf-{conf}\"");
        let mut attribution = None;
        match name {
            "page_view" => {
                let url = self.url();
                let _ = write!(props, ",\"url\":\"{url}\"");
                if self.rng.below(4) == 0 {
                    let _ = write!(props, ",\"referrer\":\"https://search.example/\"");
                }
            }
            "share" => {
                let code = format!("{:012x}", self.rng.next() & 0xffff_ffff_ffff);
                let channel = self.rng.pick(&CHANNELS);
                let url = self.url();
                let _ = write!(
                    props,
                    ",\"share_code\":\"{code}\",\"channel\":\"{channel}\",\"target_url\":\"{url}?s={code}\""
                );
                if self.rng.below(2) == 0 {
                    if let Some(parent) = self.recent_code() {
                        let _ = write!(props, ",\"parent_share_code\":\"{parent}\"");
                        attribution = Some(parent);
                    }
                }
                self.remember(&code);
            }
            "share_open" => {
                let url = self.url();
                let _ = write!(props, ",\"url\":\"{url}\"");
                if let Some(code) = self.recent_code() {
                    let _ = write!(props, ",\"share_code\":\"{code}\",\"attribution_chain\":[\"{code}\"]");
                    attribution = Some(code);
                }
            }
            "registration" => {
                props.push_str(",\"form_id\":\"signup-form\"");
                if self.rng.below(10) < 7 {
                    attribution = self.recent_code();
                }
            }
            "checkin" => props.push_str(",\"method\":\"qr\""),
            _ => {}
        }
        let distinct = if identified { format!("user-{u}") } else { format!("anon-{u}") };
        let _ = write!(
            out,
            "{{\"event_id\":\"{}\",\"type\":\"{name}\",\"distinct_id\":\"{distinct}\",\"anonymous_id\":\"anon-{u}\",\
             \"session_id\":\"s-{u}-{}\",\"timestamp\":{ts},\"properties\":{{{props}}},",
            uuid::Uuid::now_v7(),
            ts / 1_800_000
        );
        if let Some(code) = attribution {
            let _ = write!(out, "\"attribution\":\"{code}\",");
        }
        let _ = write!(
            out,
            "\"context\":{{\"library\":{{\"name\":\"empmix-loadgen\",\"version\":\"1\"}},\"browser\":\"{}\",\"os\":\"{}\",\
             \"locale\":\"en-US\"}}}}",
            BROWSERS[(u % BROWSERS.len() as u64) as usize],
            OSES[((u / 5) % OSES.len() as u64) as usize]
        );
    }
}

/// The queries `--query-bench` times: (name, body).
fn bench_queries() -> Vec<(&'static str, serde_json::Value)> {
    use serde_json::json;
    vec![
        (
            "30d daily pv+uv by properties.conference_id",
            json!({"metrics": ["pv", "uv"], "date_range": "30d", "dimensions": ["time:day", "properties.conference_id"]}),
        ),
        (
            "30d daily pv+uv by properties.url",
            json!({"metrics": ["pv", "uv"], "date_range": "30d", "dimensions": ["time:day", "properties.url"]}),
        ),
        (
            "30d events by context.browser",
            json!({"metrics": ["events"], "date_range": "30d", "dimensions": ["context.browser"]}),
        ),
        (
            "30d top pages (pv by properties.url, limit 10)",
            json!({"metrics": ["pv"], "date_range": "30d", "dimensions": ["properties.url"],
                   "order_by": [["pv", "desc"]], "limit": 10}),
        ),
        (
            "30d funnel page_view > share_open > registration > checkin",
            json!({"date_range": "30d", "funnel": {"steps": [{"event": "page_view"}, {"event": "share_open"},
                   {"event": "registration"}, {"event": "checkin"}], "window": "7d"}}),
        ),
        (
            "7d hourly pv+uv (time:hour)",
            json!({"metrics": ["pv", "uv"], "date_range": "7d", "dimensions": ["time:hour"]}),
        ),
    ]
}

/// Runs every query once untimed, then `runs` times, and prints wall-clock percentiles
/// (request to full response, one keep-alive connection) and the server's own `took_ms`.
fn query_bench(addr: SocketAddr, read: &str, runs: usize) {
    let mut client = Client::new(addr);
    let auth = format!("Bearer {read}");
    let headers = [("Content-Type", "application/json"), ("Authorization", auth.as_str())];
    println!(
        "query bench: {runs} timed runs per query after one warm-up; times in ms (wall clock at the client)"
    );
    println!(
        "{:<60} {:>6} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "query", "rows", "first", "p50", "p95", "max", "took p50"
    );
    for (name, q) in bench_queries() {
        let body = q.to_string();
        // Ok: (µs, answer); Err: (µs, what failed).
        let mut once = || -> Result<(u64, serde_json::Value), (u64, String)> {
            let t = Instant::now();
            let r = client.request("POST", "/api/analytics/query", &headers, body.as_bytes());
            let us = t.elapsed().as_micros() as u64;
            match r {
                Ok(r) if r.status == 200 => Ok((us, r.json())),
                Ok(r) => {
                    Err((us, format!("status {}: {}", r.status, r.json()["error"].as_str().unwrap_or("?"))))
                }
                Err(e) => Err((us, e.to_string())),
            }
        };
        let (first, answer, mut runs_left) = match once() {
            Ok((us, a)) => (us, a, runs),
            // Slow enough to fail (the server's budget is 5 s): a few more tries tell enough.
            Err((us, e)) => {
                println!("{name:<60} first run failed after {:.0} ms: {e}", us as f64 / 1000.0);
                (us, serde_json::Value::Null, runs.min(3))
            }
        };
        let rows = answer["funnel"].as_array().or_else(|| answer["results"].as_array()).map_or(0, Vec::len);
        let (mut times, mut took, mut failures) = (Vec::new(), Vec::new(), Vec::new());
        while runs_left > 0 {
            runs_left -= 1;
            match once() {
                Ok((us, a)) => {
                    times.push(us);
                    took.push(a["meta"]["took_ms"].as_u64().unwrap_or(0) * 1000);
                }
                Err((us, e)) => {
                    // A failed run counts at the time it failed (for a timeout, a lower bound).
                    times.push(us);
                    failures.push(e);
                    if failures.len() == 3 {
                        runs_left = 0;
                    }
                }
            }
        }
        times.sort_unstable();
        took.sort_unstable();
        println!(
            "{name:<60} {rows:>6} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>9.0}",
            first as f64 / 1000.0,
            percentile(&times, 0.50),
            percentile(&times, 0.95),
            times.last().copied().unwrap_or(0) as f64 / 1000.0,
            percentile(&took, 0.50)
        );
        if !failures.is_empty() {
            println!(
                "  {} of {} timed runs failed ({}); each counts at its time to failure; took p50 is of the others",
                failures.len(),
                times.len(),
                failures[0]
            );
        }
        if name.contains("funnel") {
            let steps: Vec<String> = answer["funnel"]
                .as_array()
                .map(|s| s.iter().map(|x| format!("{} {}", x["event"], x["visitors"])).collect())
                .unwrap_or_default();
            println!("  funnel steps: {}", steps.join(", "));
        }
    }
}

/// Reads `GET /api/analytics/live` (one HTTP/1.1 request, chunked or not) and hands every
/// `summary` message's data, with the instant it was read, to `tx`, until the stream ends or
/// the receiver is gone.
fn sse_reader(
    addr: SocketAddr,
    read: &str,
    tx: std::sync::mpsc::Sender<(Instant, String)>,
) -> std::io::Result<()> {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    write!(
        stream,
        "GET /api/analytics/live HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {read}\r\nAccept: text/event-stream\r\n\r\n"
    )?;
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line)?;
    if line.split_whitespace().nth(1) != Some("200") {
        return Err(std::io::Error::other(format!("live stream answered {}", line.trim())));
    }
    let mut chunked = false;
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.trim().eq_ignore_ascii_case("transfer-encoding") && v.trim().eq_ignore_ascii_case("chunked")
            {
                chunked = true;
            }
        }
    }
    let mut pending = String::new();
    loop {
        let data = if chunked {
            line.clear();
            if r.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| std::io::Error::other("bad chunk size"))?;
            if size == 0 {
                return Ok(());
            }
            let mut buf = vec![0; size];
            r.read_exact(&mut buf)?;
            line.clear();
            r.read_line(&mut line)?;
            buf
        } else {
            let buf = r.fill_buf()?.to_vec();
            if buf.is_empty() {
                return Ok(());
            }
            r.consume(buf.len());
            buf
        };
        let at = Instant::now();
        pending.push_str(&String::from_utf8_lossy(&data).replace("\r\n", "\n"));
        while let Some(end) = pending.find("\n\n") {
            let message: String = pending.drain(..end + 2).collect();
            let (mut event, mut body) = (String::new(), String::new());
            for l in message.lines() {
                if let Some(v) = l.strip_prefix("event:") {
                    event = v.trim().to_string();
                } else if let Some(v) = l.strip_prefix("data:") {
                    body.push_str(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            if event == "summary" && tx.send((at, body)).is_err() {
                return Ok(());
            }
        }
    }
}

/// Posts `n` page views, each with its own `properties.url` and event id, one at a time, and
/// times each from its 200 to the first live `summary` whose `newest` lists it. Between
/// probes it waits a random 0–1.5 s, so probes fall at every phase of the stream's
/// once-a-second message limit.
fn live_probes(addr: SocketAddr, ingest: &str, read: &str, n: usize) {
    let (tx, rx) = std::sync::mpsc::channel();
    let key = read.to_string();
    std::thread::spawn(move || {
        if let Err(e) = sse_reader(addr, &key, tx) {
            eprintln!("empmix-loadgen: live stream: {e}");
        }
    });
    if rx.recv_timeout(Duration::from_secs(10)).is_err() {
        println!("live probes: no first summary from GET /api/analytics/live within 10 s");
        return;
    }
    let mut client = Client::new(addr);
    let mut rng = Rng::new(now_ms() as u64);
    let run = uuid::Uuid::now_v7().simple().to_string();
    let (mut lat, mut missed, mut failed, mut summaries) = (Vec::new(), 0, 0, 0usize);
    for i in 0..n {
        std::thread::sleep(Duration::from_millis(rng.below(1500)));
        while rx.try_recv().is_ok() {}
        let id = uuid::Uuid::now_v7().to_string();
        let body = format!(
            "{{\"events\":[{{\"event_id\":\"{id}\",\"type\":\"page_view\",\"distinct_id\":\"probe-{run}\",\
             \"properties\":{{\"url\":\"https://m.example/probe/{run}/{i}\"}}}}]}}"
        );
        let ok = client.request("POST", "/api/analytics/events", &[("X-API-Key", ingest)], body.as_bytes());
        if !ok.is_ok_and(|r| r.status == 200) {
            failed += 1;
            continue;
        }
        let acked = Instant::now();
        let deadline = acked + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((at, data)) => {
                    summaries += 1;
                    let v: serde_json::Value = serde_json::from_str(&data).unwrap_or_default();
                    let seen = v["newest"]
                        .as_array()
                        .is_some_and(|list| list.iter().any(|e| e["event_id"].as_str() == Some(id.as_str())));
                    if seen {
                        lat.push(at.saturating_duration_since(acked).as_micros() as u64);
                        break;
                    }
                }
                Err(_) => {
                    missed += 1;
                    break;
                }
            }
        }
    }
    lat.sort_unstable();
    println!(
        "live stream: 200 -> first summary listing the event (includes the consumer storing it): \
         p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms, min {:.0} ms ({} probes seen, {missed} not within 30 s, {failed} posts failed, {summaries} summaries read)",
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(0) as f64 / 1000.0,
        lat.first().copied().unwrap_or(0) as f64 / 1000.0,
        lat.len()
    );
}
