//! Throughput of the whole Rust client against the real server on loopback, in memory and with
//! persistence: how fast `track` accepts 200,000 events and how fast they are all delivered.
//!
//! `cargo bench -p empmix-e2e --bench client_throughput`; results in docs/performance.md.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark fails loudly on setup errors")]

use std::time::{Duration, Instant};

use empmix::Client;
use empmix_server::{ProjectConfig, Server, ServerConfig};
use serde_json::json;

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run only for bench.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let config =
        ServerConfig::new(data.path()).with_project(ProjectConfig::new("bench", "pk_bench", "sk_bench"));
    let server = Server::start(config).unwrap();
    let base = server.base_url();
    for (label, persist) in [("memory", false), ("persistent", true)] {
        let store = tempfile::tempdir().unwrap();
        let mut b =
            Client::builder("pk_bench").endpoint(&base).flush_at(500).max_queue(1_000_000).max_in_flight(4);
        if persist {
            b = b.persistence_dir(store.path());
        }
        let c = b.build().unwrap();
        let n = 200_000u64;
        let props = json!({"conference_id": "tp", "k1": 1, "k2": "two", "k3": true, "k4": 4.5,
            "k5": "five", "k6": 6, "k7": "seven", "k8": null, "k9": "nine"});
        let t0 = Instant::now();
        for _ in 0..n {
            c.track("throughput", &props).unwrap();
        }
        let tracked = t0.elapsed();
        c.flush_blocking(Duration::from_secs(300)).unwrap();
        let delivered = t0.elapsed();
        println!(
            "{label}: tracked {n} in {tracked:?} ({:.0}/s), delivered all in {delivered:?} ({:.0} events/s end to end), requests {}",
            n as f64 / tracked.as_secs_f64(),
            n as f64 / delivered.as_secs_f64(),
            c.stats().requests
        );
        c.shutdown_blocking(Duration::from_secs(60)).unwrap();
    }
    server.shutdown().unwrap();
}
