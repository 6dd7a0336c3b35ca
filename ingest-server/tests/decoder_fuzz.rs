//! Property tests of the request decoding path (gzip + protocol decode): arbitrary input never
//! panics, and the decompressed-size limit always holds.

// Helpers outside #[test] functions panic on purpose too: this is a test crate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;

use empmix_server::http::body::{BodyError, decode_body, gunzip};
use proptest::prelude::*;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn json_event() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        Just("null".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        "[a-z\"\\\\{}:, ]{0,12}".prop_map(|s| format!("{s:?}")),
        Just("{}".to_string()),
        Just("[1,2]".to_string()),
    ];
    let key = prop_oneof![
        Just("type"),
        Just("event_id"),
        Just("timestamp"),
        Just("distinct_id"),
        Just("properties"),
        Just("context"),
        Just("attribution"),
        Just("session_id"),
        Just("x")
    ];
    prop::collection::vec((key, value), 0..6).prop_map(|fields| {
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", body.join(","))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(raw in prop::collection::vec(any::<u8>(), 0..2048), gz in any::<bool>()) {
        let _ = decode_body(raw.into(), gz, 4096);
    }

    #[test]
    fn gzipped_arbitrary_bytes_never_panic_and_respect_the_limit(raw in prop::collection::vec(any::<u8>(), 0..4096)) {
        match decode_body(gzip(&raw).into(), true, 1024) {
            Err(BodyError::TooLarge { .. }) => prop_assert!(raw.len() > 1024),
            Ok((body, _)) => prop_assert_eq!(&body[..], &raw[..]),
            Err(_) => prop_assert!(raw.len() <= 1024),
        }
    }

    #[test]
    fn near_valid_batches_decode_or_fail_cleanly(events in prop::collection::vec(json_event(), 0..20), sent in any::<Option<i64>>(), gz in any::<bool>()) {
        let sent = sent.map_or("null".to_string(), |s| s.to_string());
        let body = format!("{{\"sent_at\":{sent},\"events\":[{}]}}", events.join(","));
        let raw = if gz { gzip(body.as_bytes()) } else { body.clone().into_bytes() };
        if let Ok((_, batch)) = decode_body(raw.into(), gz, 1 << 20) {
            prop_assert_eq!(batch.events.len() + batch.rejected.len(), events.len());
        }
    }

    #[test]
    fn truncated_gzip_never_panics(raw in prop::collection::vec(any::<u8>(), 1..2048), cut in any::<prop::sample::Index>()) {
        let z = gzip(&raw);
        let _ = gunzip(&z[..cut.index(z.len())], 1 << 20);
    }
}
