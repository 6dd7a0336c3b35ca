//! Links the whole engine into a wasm module so the test command can check what the browser
//! would ship: no `serde_json`, no imports from `env` (which would mean a missing symbol), and
//! its size. Built by `scripts/check-core-wasm.sh`; not an API example.
//!
//! ```
//! assert!(empmix_core_wasm_check::empmix_smoke(1) > 0);
//! ```
//!
//! Every engine path a browser driver uses is exercised so nothing is stripped as dead code.

use empmix_core::{Config, Engine, Event, Properties, Response, SeededEntropy, Timestamp};

/// Tracks `n` events through a full engine cycle and returns the bytes sent.
#[unsafe(no_mangle)]
pub extern "C" fn empmix_smoke(n: u32) -> u32 {
    let mut rng = SeededEntropy::new(u64::from(n));
    let now = Timestamp::from_unix_millis(1_750_000_000_000 + u64::from(n));
    let Ok(config) = Config::builder().persist(true).report_outcomes(true).build() else {
        return 0;
    };
    let mut engine = Engine::new(config, now, &mut rng);
    let _ = engine.handle_incoming_url(now, &mut rng, "https://example.com/c?_s=abc");
    let _ = engine.create_share(now, &mut rng, "copy", "https://example.com/c", None);
    engine.register(&Properties::new().insert("conference_id", "abc"));
    if let Ok(props) = Properties::from_json(r#"{"a":1,"b":"two","c":[true,null]}"#) {
        for _ in 0..n {
            if let Ok(e) = Event::custom("smoke", props.clone()) {
                let _ = engine.track(now, &mut rng, e);
            }
        }
    }
    let _ = engine.identify(now, &mut rng, "user");
    let _ = engine.flush();
    let mut sent = 0usize;
    while let Some(t) = engine.poll_transmit(now) {
        sent += t.body.len();
        engine.handle_response(
            now,
            &mut rng,
            t.batch,
            Response::Status {
                status: 200,
                retry_after: None,
                body: r#"{"accepted":1,"rejected":[{"index":0,"reason":"too_large"}]}"#,
            },
        );
    }
    while let Some(op) = engine.poll_persist() {
        sent += usize::from(matches!(op, empmix_core::persist::PersistOp::SaveState { .. }));
    }
    let _ = engine.poll_unload_transmit(now, empmix_core::protocol::BEACON_MAX_BYTES);
    let _ = engine.poll_timeout(now);
    u32::try_from(sent).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_smoke_cycle_sends_bytes() {
        assert!(super::empmix_smoke(3) > 100);
    }
}
