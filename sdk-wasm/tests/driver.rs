//! The driver behind the wasm exports (the shipped package's raw ones and the web build's). The same tests run on the host (`cargo test`) and as
//! wasm in Node and headless Chromium (`wasm-bindgen-test`, see `scripts/test.sh`); a panic
//! in wasm would fail them.

#![allow(clippy::expect_used, clippy::unwrap_used)]

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use empmix_core::Config;
use empmix_core::persist::PersistOp;
use empmix_wasm::driver::{Driver, code, command, configure, kind, setting_message};

const NOW: f64 = 1_750_000_000_000.0;

fn config(persist: bool) -> Config {
    configure(r#"{"flushAt":20,"flushInterval":5000,"maxQueue":100}"#, persist).expect("good options")
}

fn start(persist: bool) -> Driver {
    Driver::start(NOW, 42, config(persist), "", Vec::new())
}

/// The storage changes, as `a<id><record>`, `r<ids>` or `s<state>` text for short assertions.
fn drain_persist(d: &mut Driver) -> Vec<String> {
    let mut ops = Vec::new();
    while let Some(op) = d.poll_persist() {
        ops.push(match op {
            PersistOp::Append { id, record } => format!("a{id}{record}"),
            PersistOp::Remove { ids } => ids.iter().fold("r".to_string(), |s, id| s + &id.to_string()),
            PersistOp::SaveState { state } => format!("s{state}"),
        });
    }
    ops
}

/// The next request's body and handle; empty and 0 for none.
fn poll(d: &mut Driver, now: f64) -> (String, u32) {
    d.poll_transmit(now).map_or((String::new(), 0), |r| (r.body, r.handle))
}

/// A share with a code the test makes, as the loader does: the code, or the refusal.
fn share(d: &mut Driver, now: f64, channel: &str, url: &str, conference: &str) -> Result<String, u32> {
    let code = d.new_share_code();
    match d.share(now, &code, channel, url, conference) {
        code::OK => Ok(code),
        e => Err(e),
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
    assert_eq!(poll(&mut d, NOW).0, "", "not due before the window");
    d.flush();
    assert!(!d.is_flushed());
    let (body, handle) = poll(&mut d, NOW);
    assert!(body.starts_with("{\"sent_at\":") && body.contains(id), "{body}");
    d.handle_response(NOW, handle, 200, "", r#"{"accepted":1,"rejected":[]}"#);
    assert!(d.is_flushed());
    let ops = drain_persist(&mut d);
    assert!(ops.iter().any(|o| o == &format!("r{id}")), "{ops:?}");
    assert!(d.stats(&[]).contains("\"delivered\":1"));
}

#[test]
fn failures_are_retried_and_the_window_arms_a_timer() {
    let mut d = start(false);
    assert_eq!(d.track(NOW, "a", ""), code::OK);
    assert_eq!(d.poll_timeout(NOW), NOW + 5_000.0);
    let later = NOW + 5_000.0;
    d.handle_timeout(later);
    let (body, handle) = poll(&mut d, later);
    assert!(!body.is_empty());
    d.handle_response(later, handle, 0, "", "");
    assert!(d.stats(&[]).contains("\"retried\":1"));
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
    let mut d2 = Driver::start(NOW + 1.0, 7, config(true), &state, records);
    assert_eq!(d2.id(0), "user-1");
    assert_eq!(d2.id(1), d.id(1));
    let body = poll(&mut d2, NOW + 1.0).0;
    assert!(body.contains("\"kept\"") && body.contains("\"identify\""), "{body}");
    assert!(d2.stats(&[]).contains("\"corruptRecords\":1"));
}

#[test]
fn a_state_saved_by_another_tab_is_adopted() {
    let mut a = start(true);
    let mut b = Driver::start(NOW, 43, config(true), "", Vec::new());
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
    let code_a = share(&mut a, NOW, "wechat", "https://x.example/c/1#top", "").expect("code");
    assert_eq!(code_a.len(), 12);
    let mut b = start(false);
    assert!(b.open_share(NOW, &code_a));
    assert!(!b.open_share(NOW, "not a code"));
    let code_b = share(&mut b, NOW, "copy", "https://x.example/c/1", "").expect("code");
    assert!(!b.open_share(NOW, &code_b), "opening one's own link records nothing");
    b.flush();
    let body = poll(&mut b, NOW).0;
    assert!(body.contains("\"share_open\"") && body.contains(&format!("\"parent_share_code\":\"{code_a}\"")));
    assert_eq!(share(&mut a, NOW, "", "https://x", ""), Err(code::BAD_NAME));
    assert_eq!(a.share(NOW, "not a code", "copy", "https://x", ""), code::BAD_NAME);
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
}

#[test]
fn commands_by_number_do_what_the_methods_do() {
    let mut d = start(false);
    assert_eq!(d.command(command::TRACK, NOW, 0.0, "click", r#"{"b":1}"#, "", ""), code::OK);
    assert_eq!(d.command(command::TRACK, NOW, 0.0, "", "", "", ""), code::BAD_NAME);
    assert_eq!(d.command(command::REGISTER, 0.0, 0.0, r#"{"plan":"pro"}"#, "", "", ""), code::OK);
    assert_eq!(d.command(command::REGISTER, 0.0, 1.0, r#"{"plan":"free"}"#, "", "", ""), code::OK);
    assert_eq!(d.command(command::IDENTIFY, NOW, 0.0, "user-1", "", "", ""), code::OK);
    assert_eq!(d.id(0), "user-1");
    assert_eq!(d.command(command::ALIAS, NOW, 0.0, "", "", "", ""), code::BAD_NAME);
    assert_eq!(
        d.command(command::EVENT + kind::CHECKIN, NOW, 0.0, "conf-1", "qr", "", r#"{"x":2}"#),
        code::OK
    );
    assert_eq!(d.command(command::EVENT + kind::AI_CHAT, NOW, 0.5, "", "", "", ""), code::BAD_PROPERTIES);
    assert_eq!(d.command(command::EVENT + 4, NOW, 3.0, "", "", "", ""), code::BAD_NAME, "no such kind");
    assert_eq!(d.command(99, NOW, 0.0, "", "", "", ""), code::BAD_NAME);
    d.flush();
    let (text, handle) = poll(&mut d, NOW);
    d.handle_response(NOW, handle, 200, "", "");
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    let events = body["events"].as_array().unwrap();
    assert_eq!(events.len(), 3, "{body}");
    assert_eq!(events[0]["type"], "click");
    assert_eq!(events[1]["type"], "identify");
    assert_eq!(events[1]["properties"]["plan"], "pro", "register once kept the value");
    assert_eq!(events[2]["type"], "checkin");
    assert_eq!(events[2]["properties"]["x"], 2);
    // Opt: 1 out, 0 in, anything else only reads; the answer is whether the user is out.
    assert_eq!(d.command(command::OPT, 0.0, 2.0, "", "", "", ""), 0);
    assert_eq!(d.command(command::OPT, 0.0, 1.0, "", "", "", ""), 1);
    assert_eq!(d.command(command::TRACK, NOW, 0.0, "x", "", "", ""), code::OPTED_OUT);
    assert_eq!(d.command(command::OPT, 0.0, 2.0, "", "", "", ""), 1);
    assert_eq!(d.command(command::OPT, 0.0, 0.0, "", "", "", ""), 0);
    assert_eq!(d.command(command::UNREGISTER, 0.0, 0.0, "plan", "", "", ""), code::OK);
    assert_eq!(d.command(command::RESET, NOW, 0.0, "", "", "", ""), code::OK);
    assert_ne!(d.id(0), "user-1");
    assert_eq!(d.command(command::OPEN_SHARE, NOW, 0.0, "not a code", "", "", ""), 0, "malformed");
    assert_eq!(d.command(command::OPEN_SHARE, NOW, 0.0, "AbCdEfGhIjKl", "", "", ""), 1);
    let code = "ZyXwVuTsRqPo";
    assert_eq!(d.command(command::SHARE, NOW, 0.0, code, "wechat", "https://x.test/a", ""), code::OK);
    assert_eq!(
        d.command(command::SHARE, NOW, 0.0, "not a code", "wechat", "https://x.test/a", ""),
        code::BAD_NAME
    );
    let body = sent(&mut d);
    let share = body["events"].as_array().unwrap().iter().find(|e| e["type"] == "share").unwrap();
    assert_eq!(share["properties"]["share_code"], code, "{share}");
}

#[test]
fn the_context_arrives_as_six_lines() {
    let mut d = start(false);
    d.set_context_lines("Linux\nChrome\nde-DE\nhttps://x.test/a?b=1\n\n{\"title\":\"Two\\nlines\"}");
    assert_eq!(d.track(NOW, "x", ""), code::OK);
    d.flush();
    let (text, handle) = poll(&mut d, NOW);
    d.handle_response(NOW, handle, 200, "", "");
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    // The context is the request's, shared by its events.
    let c = &body["context"];
    assert_eq!(
        (c["os"].as_str(), c["browser"].as_str(), c["locale"].as_str()),
        (Some("Linux"), Some("Chrome"), Some("de-DE")),
        "{c}"
    );
    assert_eq!(c["url"], "https://x.test/a?b=1");
    assert!(c.get("referrer").is_none(), "an empty line is no referrer: {c}");
    assert_eq!(c["title"], "Two\nlines", "the extra JSON's members: {c}");
    // Fewer lines: the rest are unknown.
    d.set_context_lines("Android");
    assert_eq!(d.track(NOW, "y", ""), code::OK);
    let body = sent(&mut d);
    let c = &body["context"];
    assert_eq!(c["os"], "Android");
    assert!(c.get("browser").is_none() && c.get("url").is_none() && c.get("title").is_none(), "{c}");
}

/// The web build's loader calls the commands by these numbers (`C_*` in `js/loader.js`), and
/// names them in debug warnings by its `NAMES` list, indexed by the same numbers.
#[test]
fn the_loader_numbers_the_commands_as_the_driver_does() {
    let loader = include_str!("../js/loader.js");
    let names: Vec<String> = loader
        .split_once("const NAMES = '")
        .and_then(|(_, rest)| rest.split_once('\''))
        .map(|(list, _)| list.split(' ').map(str::to_ascii_lowercase).collect())
        .expect("the loader's NAMES list");
    for (name, n) in [
        ("TRACK", command::TRACK),
        ("IDENTIFY", command::IDENTIFY),
        ("ALIAS", command::ALIAS),
        ("RESET", command::RESET),
        ("REGISTER", command::REGISTER),
        ("UNREGISTER", command::UNREGISTER),
        ("OPT", command::OPT),
        ("SHARE", command::SHARE),
        ("OPEN_SHARE", command::OPEN_SHARE),
        ("EVENT", command::EVENT),
    ] {
        let decl = format!("C_{name} = {n}");
        assert!(
            loader.contains(&(decl.clone() + ",")) || loader.contains(&(decl.clone() + ";")),
            "{decl} missing"
        );
        if name != "EVENT" {
            assert_eq!(
                names.get(n as usize),
                Some(&name.replace('_', "").to_ascii_lowercase()),
                "NAMES[{n}]"
            );
        }
    }
    assert_eq!(names.len(), command::OPEN_SHARE as usize + 1, "NAMES: {names:?}");
}

/// The body of the one request the driver has out after a flush, as JSON.
fn sent(d: &mut Driver) -> serde_json::Value {
    d.flush();
    serde_json::from_str(&poll(d, NOW).0).expect("a request body")
}

#[test]
fn typed_events_are_built_by_the_core_from_arguments() {
    let options = r#"{"flushAt":20,"conferenceId":"c-init"}"#;
    let mut d = Driver::start(NOW, 5, configure(options, false).expect("good options"), "", Vec::new());
    let ok = code::OK;
    assert_eq!(
        d.track_typed(
            NOW,
            kind::PAGE_VIEW,
            "",
            "https://x.example/p",
            "https://r.example/",
            0.0,
            r#"{"title":"T"}"#
        ),
        ok
    );
    assert_eq!(d.track_typed(NOW, kind::REGISTRATION, "c1", "form-1", "", 0.0, ""), ok);
    assert_eq!(d.track_typed(NOW, kind::CHECKIN, "", "qr", "", 0.0, r#"{"method":"manual","gate":2}"#), ok);
    assert_eq!(d.track_typed(NOW, kind::AI_CHAT, "c2", "", "", 42.0, "{}"), ok);
    for bad in [f64::NAN, -1.0, 2.5, f64::INFINITY] {
        assert_eq!(d.track_typed(NOW, kind::AI_CHAT, "c2", "", "", bad, ""), code::BAD_PROPERTIES, "{bad}");
    }
    assert_eq!(d.track_typed(NOW, kind::REGISTRATION, "c1", "", "", 0.0, "[1]"), code::BAD_PROPERTIES);
    let body = sent(&mut d);
    let events = body["events"].as_array().expect("events");
    let typed: Vec<(&str, &serde_json::Value)> =
        events.iter().map(|e| (e["type"].as_str().unwrap_or(""), &e["properties"])).collect();
    assert_eq!(typed.len(), 4, "{body}");
    assert_eq!(typed[0].0, "page_view");
    assert_eq!(
        typed[0].1,
        &serde_json::json!({"url": "https://x.example/p", "conference_id": "c-init", "referrer": "https://r.example/", "title": "T"})
    );
    assert_eq!(typed[1], ("registration", &serde_json::json!({"conference_id": "c1", "form_id": "form-1"})));
    // The caller's properties win over the typed ones, as they did in the JavaScript before.
    assert_eq!(
        typed[2],
        ("checkin", &serde_json::json!({"conference_id": "c-init", "method": "manual", "gate": 2}))
    );
    assert_eq!(typed[3], ("ai_chat", &serde_json::json!({"conference_id": "c2", "message_length": 42})));

    // Without a configured conference an event without one has none (no empty string).
    let mut d = start(false);
    assert_eq!(d.track_typed(NOW, kind::REGISTRATION, "", "", "", 0.0, ""), ok);
    assert_eq!(sent(&mut d)["events"][0]["properties"], serde_json::json!({}));
}

#[test]
fn retry_after_is_read_by_the_core_in_seconds_and_as_an_http_date() {
    // NOW is 2025-06-15T15:06:40Z; the date is ten minutes later.
    for (header, wait_ms) in [("120", 120_000.0), ("Sun, 15 Jun 2025 15:16:40 GMT", 600_000.0)] {
        let mut d = start(false);
        assert_eq!(d.track(NOW, "a", ""), code::OK);
        d.flush();
        let (body, handle) = poll(&mut d, NOW);
        assert!(!body.is_empty());
        d.handle_response(NOW, handle, 503, header, "");
        assert_eq!(d.poll_timeout(NOW), NOW + wait_ms, "Retry-After: {header}");
        assert_eq!(poll(&mut d, NOW + wait_ms - 1.0).0, "", "nothing before the server's time");
        d.handle_timeout(NOW + wait_ms);
        assert!(!poll(&mut d, NOW + wait_ms).0.is_empty(), "sent again at the server's time");
    }
    // Without a usable header the retry is the backoff's (about a second), not the server's.
    let mut d = start(false);
    assert_eq!(d.track(NOW, "a", ""), code::OK);
    d.flush();
    let (body, handle) = poll(&mut d, NOW);
    assert!(!body.is_empty());
    d.handle_response(NOW, handle, 503, "soon", "");
    assert!(d.poll_timeout(NOW) < NOW + 10_000.0);
}

#[test]
fn a_bad_option_is_an_error_naming_it() {
    let message = |options: &str| configure(options, false).map(|_| ()).map_err(|e| setting_message(&e));
    assert_eq!(message(r#"{"flushAt":"20"}"#), Err("flushAt must be a whole number above 0".into()));
    assert_eq!(message(r#"{"flushAt":501}"#), Err("flushAt must be a whole number from 1 to 500".into()));
    assert_eq!(
        message(r#"{"maxQueue":1,"flushAt":5}"#),
        Err("maxQueue must be a whole number from flushAt to 1000000".into())
    );
    assert_eq!(message(r#"{"api_key":"k"}"#), Err("api_key is spelled apiKey".into()));
    assert_eq!(
        message(r#"{"flushInterval":null}"#),
        Err("flushInterval must be a whole number of milliseconds above 0".into())
    );
    assert_eq!(message(r#"{"attribution":"lst"}"#), Err("attribution must be \"first\" or \"last\"".into()));
    assert_eq!(message(r#"{"cleanUrl":"false"}"#), Err("cleanUrl must be true or false".into()));
    assert_eq!(message(r#"{"apiKey":"k","endpoint":"","flushAt":1,"attribution":"last","wasm":{}}"#), Ok(()));
    // The browser's own default window, not the core's 30 s.
    let mut d = Driver::start(NOW, 1, configure("{}", false).expect("defaults"), "", Vec::new());
    assert_eq!(d.track(NOW, "a", ""), code::OK);
    assert_eq!(d.poll_timeout(NOW), NOW + 10_000.0);
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
        let options = strings[i % strings.len()];
        let config = configure(options, i % 2 == 1)
            .or_else(|_| configure(r#"{"flushAt":1,"maxQueue":1,"attribution":"last"}"#, i % 2 == 1))
            .expect("good options");
        let mut d = Driver::start(t, i as u64, config, strings[i % strings.len()], vec![huge.clone()]);
        for s in strings {
            d.set_context([s, s, s, s, s, s]);
            let _ = d.track(t, s, s);
            for k in [kind::PAGE_VIEW, kind::REGISTRATION, kind::CHECKIN, kind::AI_CHAT, u32::MAX] {
                let _ = d.track_typed(t, k, s, s, s, t, s);
            }
            let _ = configure(s, true);
            let _ = d.identify(t, s);
            let _ = d.alias(t, s);
            let _ = d.register(s, i % 2 == 0);
            d.unregister(s);
            let _ = d.share(t, s, s, s, s);
            let _ = share(&mut d, t, "c", s, "");
            let _ = d.open_share(t, s);
            let _ = d.adopt_state(s);
            d.handle_response(t, i as u32, [0, 200, 413, 429, 500, 1000, u32::MAX][i % 7], s, s);
            d.handle_response(t, u32::MAX, 200, "", s);
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
        let _ = d.stats(&[("extra", 1)]);
    }
}

/// The raw exports with lengths that run past the input: read as empty, never out of bounds.
#[cfg(all(target_arch = "wasm32", not(feature = "web")))]
#[test]
fn raw_exports_tolerate_bad_lengths() {
    use empmix_wasm::wasm::*;
    assert_eq!(em_track(NOW, 1, 1), code::NOT_STARTED);
    assert_eq!(em_poll_transmit(NOW), -1);
    let p = em_in(8);
    // SAFETY: em_in returned a buffer of at least 8 bytes.
    let write = |bytes: &[u8; 8]| unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), p, 8) };
    write(b"{}      ");
    assert_eq!(em_settings(usize::MAX, 0), 30, "no options: `settings must be a JSON object`");
    assert_eq!(em_start(NOW, 1, 2, 0), code::NOT_STARTED, "no good options yet");
    assert_eq!(em_settings(2, 0), -1, "`{{}}` is good options");
    write(b"click{}x");
    assert_eq!(em_track(NOW, 5, 2), code::NOT_STARTED);
    assert_eq!(em_start(NOW, 1, 2, 0), code::OK);
    assert_eq!(em_track(NOW, 5, 2), code::OK);
    assert_eq!(em_track(NOW, usize::MAX, usize::MAX), code::BAD_NAME);
    assert_eq!(em_identify(NOW, 1 << 30), code::BAD_NAME);
    assert_eq!(em_event(NOW, 3, usize::MAX, 1, 1, 1, f64::NAN), code::BAD_PROPERTIES);
    assert_eq!(em_event(NOW, 1, usize::MAX, usize::MAX, usize::MAX, usize::MAX, 0.0), code::OK);
    assert_eq!(em_response(NOW, 1, 503, usize::MAX, usize::MAX), code::OK);
    let _ = em_share(NOW, usize::MAX, 3, usize::MAX);
    let _ = em_open_share(NOW, usize::MAX);
    assert_eq!(em_stage(usize::MAX), 0, "an empty record is not restorable");
    assert!(em_stats() > 0);
}
