//! Core costs: tracking an event with ten properties, and building a 50-event batch body.
//!
//! `cargo bench -p empmix-core --bench engine`; results in docs/performance.md.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark fails loudly on setup errors")]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use empmix_core::{Config, Engine, Event, Properties, Response, SeededEntropy, Timestamp};

#[path = "../tests/common/ten_properties.rs"]
mod ten_properties;
use ten_properties::ten_properties;

fn engine() -> (Engine, SeededEntropy) {
    let mut rng = SeededEntropy::new(1);
    // A large queue and threshold so the measurement is track() alone, not batch cutting.
    let config = Config::builder().flush_at(500).max_queue(1_000_000).build().unwrap();
    let engine = Engine::new(config, Timestamp::from_unix_millis(1_750_000_000_000), &mut rng);
    (engine, rng)
}

fn track(c: &mut Criterion) {
    let props = ten_properties();
    let mut group = c.benchmark_group("core");
    group.bench_function("track_10_properties", |b| {
        let (mut engine, mut rng) = engine();
        let mut now = 1_750_000_000_000u64;
        b.iter_batched_ref(
            || Event::custom("purchase", props.clone()).unwrap(),
            |event| {
                now += 1;
                // Deliver now and then so the queue stays bounded without measuring sends.
                if engine.stats().queued >= 100_000 {
                    let _ = engine.flush();
                    while let Some(t) = engine.poll_transmit(Timestamp::from_unix_millis(now)) {
                        engine.handle_response(
                            Timestamp::from_unix_millis(now),
                            &mut rng,
                            t.batch,
                            Response::Status { status: 200, retry_after: None, body: "" },
                        );
                    }
                }
                black_box(engine.track(Timestamp::from_unix_millis(now), &mut rng, event.clone()).unwrap());
            },
            BatchSize::SmallInput,
        );
    });
    group.bench_function("track_10_properties_with_super_properties", |b| {
        let (mut engine, mut rng) = engine();
        engine.register(&Properties::new().insert("app_version", "2.1.0").insert("tenant", "acme"));
        let mut now = 1_750_000_000_000u64;
        b.iter_batched_ref(
            || Event::custom("purchase", props.clone()).unwrap(),
            |event| {
                now += 1;
                if engine.stats().queued >= 100_000 {
                    engine = self::engine().0;
                }
                black_box(engine.track(Timestamp::from_unix_millis(now), &mut rng, event.clone()).unwrap());
            },
            BatchSize::SmallInput,
        );
    });
    group.bench_function("build_50_event_batch_body", |b| {
        b.iter_batched(
            || {
                let (mut engine, mut rng) = engine();
                for i in 0..50 {
                    engine
                        .track(
                            Timestamp::from_unix_millis(1_750_000_000_000 + i),
                            &mut rng,
                            Event::custom("purchase", props.clone()).unwrap(),
                        )
                        .unwrap();
                }
                let _ = engine.flush();
                engine
            },
            |mut engine| {
                black_box(engine.poll_transmit(Timestamp::from_unix_millis(1_750_000_001_000)).unwrap())
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = track
}
criterion_main!(benches);
