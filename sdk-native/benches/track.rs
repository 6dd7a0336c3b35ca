//! `track` cost: one thread and several threads, ten properties, with the queue full (the
//! overflow path must stay as cheap as the normal one), in memory and with persistence; plus
//! per-call latency percentiles and the whole client's throughput against a loopback sink.
//!
//! `cargo bench -p empmix --bench track`
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmarks fail loudly")]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use empmix::{Client, Event, Properties};
use serde::Serialize;
use serde_json::json;

/// A loopback port with nothing listening: requests fail fast and back off, so the queue
/// stays full and every `track` takes the overflow path.
fn dead_endpoint() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

fn idle_client(persist: Option<&std::path::Path>) -> Client {
    let mut b = Client::builder("pk_bench")
        .endpoint(dead_endpoint())
        .flush_at(500)
        .flush_interval(Duration::from_secs(3600))
        .max_queue(10_000)
        .backoff_base(Duration::from_secs(60))
        .backoff_cap(Duration::from_secs(600));
    if let Some(dir) = persist {
        b = b.persistence_dir(dir);
    }
    b.build().unwrap()
}

fn ten_properties() -> serde_json::Value {
    json!({
        "conference_id": "conf-2025", "url": "https://conf.example/c/abc", "plan": "pro",
        "seats": 3, "price": 199.5, "vip": true, "ref": "newsletter", "locale": "en-US",
        "step": 4, "coupon": null
    })
}

#[derive(Serialize)]
struct Purchase<'a> {
    conference_id: &'a str,
    url: &'a str,
    plan: &'a str,
    seats: u32,
    price: f64,
    vip: bool,
    referrer: &'a str,
    locale: &'a str,
    step: u32,
    coupon: Option<&'a str>,
}

const PURCHASE: Purchase<'static> = Purchase {
    conference_id: "conf-2025",
    url: "https://conf.example/c/abc",
    plan: "pro",
    seats: 3,
    price: 199.5,
    vip: true,
    referrer: "newsletter",
    locale: "en-US",
    step: 4,
    coupon: None,
};

fn core_properties() -> Properties {
    Properties::new()
        .insert("conference_id", "conf-2025")
        .insert("url", "https://conf.example/c/abc")
        .insert("plan", "pro")
        .insert("seats", 3u64)
        .insert("price", 199.5)
        .insert("vip", true)
        .insert("ref", "newsletter")
        .insert("locale", "en-US")
        .insert("step", 4u64)
        .insert("coupon", empmix::PropertyValue::Null)
}

fn fill(client: &Client) {
    for _ in 0..10_000 {
        let _ = client.track("warmup", ());
    }
}

fn bench_track(c: &mut Criterion) {
    let client = idle_client(None);
    fill(&client);
    let value = ten_properties();
    let mut g = c.benchmark_group("track_one_thread");
    g.throughput(Throughput::Elements(1));
    g.bench_function("serde_json_value_10_props", |b| b.iter(|| client.track("purchase", black_box(&value))));
    g.bench_function("serialize_struct_10_props", |b| {
        b.iter(|| client.track("purchase", black_box(&PURCHASE)))
    });
    let props = core_properties();
    g.bench_function("prebuilt_event_10_props", |b| {
        b.iter(|| client.track_event(Event::custom("purchase", black_box(props.clone())).unwrap()))
    });
    let dir = tempfile::tempdir().unwrap();
    let persistent = idle_client(Some(dir.path()));
    g.bench_function("persistent_serde_json_value_10_props", |b| {
        b.iter(|| persistent.track("purchase", black_box(&value)))
    });
    g.finish();

    let mut g = c.benchmark_group("track_threads");
    for threads in [2usize, 4] {
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("{threads}_threads_serde_json_value_10_props"), |b| {
            b.iter_custom(|iters| {
                let per_thread = iters.div_ceil(threads as u64);
                let start = Arc::new(std::sync::Barrier::new(threads + 1));
                let handles: Vec<_> = (0..threads)
                    .map(|_| {
                        let (client, value, start) = (client.clone(), value.clone(), start.clone());
                        std::thread::spawn(move || {
                            start.wait();
                            for _ in 0..per_thread {
                                let _ = black_box(client.track("purchase", &value));
                            }
                        })
                    })
                    .collect();
                start.wait();
                let t0 = Instant::now();
                for h in handles {
                    h.join().unwrap();
                }
                // Wall time per call across all threads (aggregate throughput).
                t0.elapsed()
            })
        });
    }
    g.finish();
}

/// Per-call latency percentiles (each call timed on its own).
fn percentiles() {
    let client = idle_client(None);
    fill(&client);
    let value = ten_properties();
    for threads in [1usize, 4] {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (client, value) = (client.clone(), value.clone());
                std::thread::spawn(move || {
                    let mut samples = Vec::with_capacity(200_000);
                    for _ in 0..200_000 {
                        let t = Instant::now();
                        let _ = black_box(client.track("purchase", &value));
                        samples.push(t.elapsed());
                    }
                    samples
                })
            })
            .collect();
        let mut all: Vec<Duration> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
        all.sort();
        let p = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
        println!(
            "track latency, {threads} thread(s), queue full, 10 props (serde_json::Value): p50 {:?}  p90 {:?}  p99 {:?}  p99.9 {:?}  max {:?}",
            p(0.5),
            p(0.9),
            p(0.99),
            p(0.999),
            all[all.len() - 1]
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_track(&mut c);
    percentiles();
    c.final_summary();
}
