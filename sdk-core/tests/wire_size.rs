//! Bytes on the wire: a 50-event batch of ten-property events costs at most 100 bytes per event
//! after gzip (the target in `docs/performance.md`, "Bytes on the wire"), and what one queued
//! event holds in memory.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails loudly on an unexpected error")]

use std::io::Write;

use empmix_core::{Config, Context, Engine, Event, SeededEntropy, Timestamp};

#[path = "common/ten_properties.rs"]
mod ten_properties;
use ten_properties::ten_properties;

#[test]
fn gzip_batch_of_fifty_costs_under_100_bytes_per_event() {
    let mut rng = SeededEntropy::new(1);
    let context = Context {
        library_name: "empmix-rust".into(),
        library_version: "0.1.0".into(),
        os: Some("Linux".into()),
        locale: Some("en-US".into()),
        ..Context::default()
    };
    let config = Config::builder().flush_at(50).context(context).build().unwrap();
    let start = 1_750_000_000_000;
    let mut engine = Engine::new(config, Timestamp::from_unix_millis(start), &mut rng);
    let props = ten_properties();
    for i in 0..50 {
        let event = Event::custom("purchase", props.clone()).unwrap();
        engine.track(Timestamp::from_unix_millis(start + i * 137), &mut rng, event).unwrap();
    }
    let t = engine.poll_transmit(Timestamp::from_unix_millis(start + 10_000)).unwrap();
    assert_eq!(t.events, 50);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(t.body.as_bytes()).unwrap();
    let gzipped = gz.finish().unwrap().len();
    println!(
        "batch of 50: {} bytes JSON ({} per event), {} bytes gzip ({} per event)",
        t.body.len(),
        t.body.len() / 50,
        gzipped,
        gzipped / 50
    );
    assert!(gzipped / 50 <= 100, "{} bytes per event gzipped", gzipped / 50);
}
