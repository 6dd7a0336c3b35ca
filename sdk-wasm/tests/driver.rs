//! The driver behind the wasm exports. The same tests run on the host (`cargo test`) and as
//! wasm in Node and headless Chromium (`wasm-bindgen-test`, see `scripts/test.sh`); a panic
//! in wasm would fail them.

#![allow(clippy::expect_used, clippy::unwrap_used)]

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use empmix_wasm::driver::{Driver, Settings, code};

const NOW: f64 = 1_750_000_000_000.0;

fn settings(persist: bool) -> Settings {
    Settings { flush_at: 20, flush_interval_ms: 5_000.0, max_queue: 100, last_touch: false, persist }
}

fn start(persist: bool) -> Driver {
    let (d, c) = Driver::start(NOW, 42, settings(persist), "", "", Vec::new());
    assert_eq!(c, code::OK);
    d
}

fn drain_persist(d: &mut Driver) -> Vec<String> {
    let mut ops = Vec::new();
    loop {
        let op = d.poll_persist();
        if op.is_empty() {
            return ops;
        }
        ops.push(op);
    }
}

#[test]
fn track_persist_send_and_forget() {
    let mut d = start(true);
    let _ = drain_persist(&mut d);
    assert_eq!(d.track(NOW, "click", r#"{"button":"register","n":2}"#), code::OK);
    let ops = drain_persist(&mut d);
    let append = ops.iter().find(|o| o.starts_with('a')).expect("an append");
    let id = &append[1..37];
    assert!(append[37..].contains("\"click\""));
    assert_eq!(d.poll_transmit(NOW), "", "not due before the window");
    d.flush();
    assert!(!d.is_flushed());
    let body = d.poll_transmit(NOW);
    assert!(body.starts_with("{\"sent_at\":") && body.contains(id), "{body}");
    let handle = d.last_handle;
    d.handle_response(NOW, handle, 200, -1.0, r#"{"accepted":1,"rejected":[]}"#);
    assert!(d.is_flushed());
    let ops = drain_persist(&mut d);
    assert!(ops.iter().any(|o| o == &format!("r{id}")), "{ops:?}");
    assert!(d.stats().contains("\"delivered\":1"));
}

#[test]
fn failures_are_retried_and_the_window_arms_a_timer() {
    let mut d = start(false);
    assert_eq!(d.track(NOW, "a", ""), code::OK);
    assert_eq!(d.poll_timeout(NOW), NOW + 5_000.0);
    let later = NOW + 5_000.0;
    d.handle_timeout(later);
    let body = d.poll_transmit(later);
    assert!(!body.is_empty());
    d.handle_response(later, d.last_handle, 0, -1.0, "");
    assert!(d.stats().contains("\"retried\":1"));
    assert!(d.poll_timeout(later) > later);
}

#[test]
fn restore_keeps_identity_and_unsent_events() {
    let mut d = start(true);
    assert_eq!(d.identify(NOW, "user-1"), code::OK);
    assert_eq!(d.track(NOW, "kept", "{}"), code::OK);
    let mut state = String::new();
    let mut records = Vec::new();
    for op in drain_persist(&mut d) {
        match op.as_bytes()[0] {
            b's' => state = op[1..].to_string(),
            b'a' => records.push(op[37..].to_string()),
            _ => {}
        }
    }
    records.push("{torn".to_string());
    let (mut d2, _) = Driver::start(NOW + 1.0, 7, settings(true), "", &state, records);
    assert_eq!(d2.id(0), "user-1");
    assert_eq!(d2.id(1), d.id(1));
    let body = d2.poll_transmit(NOW + 1.0);
    assert!(body.contains("\"kept\"") && body.contains("\"identify\""), "{body}");
    assert!(d2.stats().contains("\"corruptRecords\":1"));
}

#[test]
fn a_state_saved_by_another_tab_is_adopted() {
    let mut a = start(true);
    let (mut b, _) = Driver::start(NOW, 43, settings(true), "", "", Vec::new());
    assert_ne!(a.id(1), b.id(1));
    assert_eq!(a.identify(NOW, "user-2"), code::OK);
    let state =
        drain_persist(&mut a).into_iter().rev().find_map(|op| op.strip_prefix('s').map(str::to_string));
    assert!(b.adopt_state(&state.expect("a saved state")));
    assert_eq!((b.id(0), b.id(1)), ("user-2".to_string(), a.id(1)));
    assert!(!b.adopt_state("{torn"));
    assert_eq!(b.id(0), "user-2");
}

#[test]
fn shares_and_incoming_links() {
    let mut a = start(false);
    let code_a = a.share(NOW, "wechat", "https://x.example/c/1#top", "").expect("code");
    assert_eq!(code_a.len(), 12);
    let mut b = start(false);
    assert!(b.open_share(NOW, &code_a));
    assert!(!b.open_share(NOW, "not a code"));
    let code_b = b.share(NOW, "copy", "https://x.example/c/1", "").expect("code");
    assert!(!b.open_share(NOW, &code_b), "opening one's own link records nothing");
    b.flush();
    let body = b.poll_transmit(NOW);
    assert!(body.contains("\"share_open\"") && body.contains(&format!("\"parent_share_code\":\"{code_a}\"")));
    assert_eq!(a.share(NOW, "", "https://x", ""), Err(code::BAD_NAME));
}

#[test]
fn opt_out_and_errors_are_codes() {
    let mut d = start(false);
    assert_eq!(d.track(NOW, "", "{}"), code::BAD_NAME);
    assert_eq!(d.track(NOW, "x", "[1]"), code::BAD_PROPERTIES);
    assert_eq!(d.track(NOW, "x", &format!("{{\"s\":\"{}\"}}", "y".repeat(40_000))), code::TOO_LARGE);
    d.set_opted_out(true);
    assert!(d.is_opted_out());
    assert_eq!(d.track(NOW, "x", ""), code::OPTED_OUT);
    d.set_opted_out(false);
    assert_eq!(d.track(NOW, "x", ""), code::OK);
    let (_, c) = Driver::start(NOW, 1, Settings { flush_at: 0, ..settings(false) }, "", "", Vec::new());
    assert_eq!(c, code::BAD_CONFIG);
}

/// Every entry point with hostile values: nothing may panic (a panic in wasm is a trap that
/// leaves the module unusable).
#[test]
fn hostile_input_does_not_panic() {
    let huge = "\u{1F600}".repeat(100_000);
    let strings = [
        "",
        " ",
        "\0",
        "\u{7f}",
        "{",
        "}",
        "{\"a\":",
        "{\"a\":1}",
        "[]",
        "null",
        "1e999",
        "\"\\ud800\"",
        "{\"a\":\"\\ud800\"}",
        "{\"a\":1,\"a\":2}",
        "{\"__proto__\":{}}",
        "http://",
        "https://?_s=",
        "https://h/?_s=%ZZ",
        "https://h/?_s=\u{1F600}",
        "x:y",
        &huge,
    ];
    let times = [f64::NAN, f64::INFINITY, -1.0, 0.0, 1e300, NOW];
    for (i, &t) in times.iter().enumerate() {
        let settings = Settings {
            flush_at: [0, 1, u32::MAX][i % 3],
            flush_interval_ms: t,
            max_queue: [0, 1, u32::MAX][i % 3],
            last_touch: i % 2 == 0,
            persist: i % 2 == 1,
        };
        let (mut d, _) = Driver::start(
            t,
            i as u64,
            settings,
            strings[i % strings.len()],
            strings[i % strings.len()],
            vec![huge.clone()],
        );
        for s in strings {
            d.set_context([s, s, s, s, s, s]);
            let _ = d.track(t, s, s);
            let _ = d.identify(t, s);
            let _ = d.alias(t, s);
            let _ = d.register(s, i % 2 == 0);
            d.unregister(s);
            let _ = d.share(t, s, s, s);
            let _ = d.share(t, "c", s, "");
            let _ = d.open_share(t, s);
            let _ = d.adopt_state(s);
            d.handle_response(t, d.last_handle, [0, 200, 413, 429, 500, 1000, u32::MAX][i % 7], t, s);
            d.handle_response(t, u32::MAX, 200, -1.0, s);
            let _ = d.poll_transmit(t);
            let _ = d.poll_unload_transmit(t, [0, 1, u32::MAX][i % 3]);
            let _ = d.poll_timeout(t);
            d.handle_timeout(t);
            let _ = d.poll_persist();
            let _ = d.id(u32::MAX);
        }
        d.reset(t);
        d.flush();
        let _ = d.is_flushed();
        let _ = d.stats();
    }
}

/// The raw exports with lengths that run past the input: read as empty, never out of bounds.
#[cfg(target_arch = "wasm32")]
#[test]
fn raw_exports_tolerate_bad_lengths() {
    use empmix_wasm::wasm::*;
    assert_eq!(em_track(NOW, 1, 1), code::NOT_STARTED);
    assert_eq!(em_poll_transmit(NOW), -1);
    let p = em_in(8);
    // SAFETY: em_in returned a buffer of at least 8 bytes.
    unsafe { core::ptr::copy_nonoverlapping(b"click{}x".as_ptr(), p, 8) };
    assert_eq!(em_start(NOW, 1, 2, 20, 1000.0, 100, 0, 0, 0), code::OK);
    assert_eq!(em_track(NOW, 5, 2), code::OK);
    assert_eq!(em_track(NOW, usize::MAX, usize::MAX), code::BAD_NAME);
    assert_eq!(em_identify(NOW, 1 << 30), code::BAD_NAME);
    let _ = em_share(NOW, usize::MAX, 3, usize::MAX);
    let _ = em_open_share(NOW, usize::MAX);
    assert_eq!(em_stage(usize::MAX), 0, "an empty record is not restorable");
    assert!(em_stats() > 0);
}
