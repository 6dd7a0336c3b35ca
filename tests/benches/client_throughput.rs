//! Throughput of the whole Rust client against the real server on loopback: track N events and
//! flush until the server has acknowledged every one, in memory and with persistence.
//!
//! `cargo bench -p empmix-e2e --bench client_throughput`; results in docs/performance.md.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark fails loudly on setup errors")]

use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use empmix::Client;
use empmix_server::{ProjectConfig, Server, ServerConfig};
use serde_json::json;

const EVENTS: u64 = 20_000;

fn throughput(c: &mut Criterion) {
    let data = tempfile::tempdir().unwrap();
    let config =
        ServerConfig::new(data.path()).with_project(ProjectConfig::new("bench", "pk_bench", "sk_bench"));
    let server = Server::start(config).unwrap();
    let base = server.base_url();
    let props = json!({"conference_id": "tp", "k1": 1, "k2": "two", "k3": true, "k4": 4.5,
        "k5": "five", "k6": 6, "k7": "seven", "k8": null, "k9": "nine"});

    let mut group = c.benchmark_group("client_against_local_server");
    group.throughput(Throughput::Elements(EVENTS));
    group.sample_size(10).measurement_time(Duration::from_secs(20)).warm_up_time(Duration::from_secs(2));
    for persist in [false, true] {
        let name = if persist { "track_and_deliver_persistent" } else { "track_and_deliver_memory" };
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let store = tempfile::tempdir().unwrap();
                    let mut builder = Client::builder("pk_bench")
                        .endpoint(&base)
                        .flush_at(500)
                        .max_queue(1_000_000)
                        .max_in_flight(4);
                    if persist {
                        builder = builder.persistence_dir(store.path());
                    }
                    (builder.build().unwrap(), store)
                },
                |(client, _store)| {
                    for _ in 0..EVENTS {
                        client.track("throughput", &props).unwrap();
                    }
                    client.flush_blocking(Duration::from_secs(120)).unwrap();
                    assert_eq!(client.stats().delivered, EVENTS);
                    client
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
    server.shutdown().unwrap();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
