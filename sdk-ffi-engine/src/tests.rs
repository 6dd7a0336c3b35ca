//! The engine ABI on a manual clock: timers, retries with `Retry-After`, persistence
//! operations and restarts, refusals after shutdown, bad input as codes.
#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use std::ffi::{CStr, CString, c_char};
use std::ptr::{null, null_mut};

use crate::config::*;
use crate::engine::*;
use crate::io::*;
use crate::{EmpmixResult, EmpmixStats};

const T0: u64 = 1_750_000_000_000;

fn ok(rc: EmpmixResult) {
    assert_eq!(rc, EmpmixResult::Ok);
}

/// A configuration with a 1 s window and a 100 ms backoff base.
fn config(persist: bool) -> *mut EmpmixEngineConfig {
    let c = empmix_engine_config_new();
    // SAFETY: a live configuration and NUL-terminated strings.
    unsafe {
        ok(empmix_engine_config_set_ingest_key(c, c"pk_test".as_ptr()));
        ok(empmix_engine_config_set_endpoint(c, c"http://127.0.0.1:8000".as_ptr()));
        ok(empmix_engine_config_set_flush_interval_ms(c, 1000));
        ok(empmix_engine_config_set_backoff_base_ms(c, 100));
        ok(empmix_engine_config_set_persist(c, persist));
        ok(empmix_engine_config_set_app(c, c"Tests".as_ptr(), c"1.0".as_ptr(), null()));
    }
    c
}

fn create(persist: bool, state: Option<&str>, records: &[String], now: u64) -> *mut EmpmixEngine {
    let c = config(persist);
    let state = state.map(|s| CString::new(s).unwrap());
    let records: Vec<CString> = records.iter().map(|r| CString::new(r.as_str()).unwrap()).collect();
    let pointers: Vec<*const c_char> = records.iter().map(|r| r.as_ptr()).collect();
    let mut engine = null_mut();
    // SAFETY: live arguments of the right lengths.
    unsafe {
        ok(empmix_engine_create(
            c,
            state.as_ref().map_or(null(), |s| s.as_ptr()),
            pointers.as_ptr(),
            pointers.len(),
            now,
            42,
            &mut engine,
        ));
        empmix_engine_config_free(c);
    }
    assert!(!engine.is_null());
    engine
}

/// What a host's storage holds: the state and the records by id, in append order.
#[derive(Default)]
struct Store {
    state: Option<String>,
    records: Vec<(String, String)>,
}

impl Store {
    /// Applies every pending operation; returns how many there were of each kind.
    fn apply_all(&mut self, engine: *mut EmpmixEngine) -> [usize; 3] {
        let mut counts = [0; 3];
        loop {
            let mut op = null_mut();
            // SAFETY: a live engine; the op is read before it is freed.
            unsafe {
                ok(empmix_engine_poll_persist(engine, &mut op));
                let Some(o) = op.as_ref() else { return counts };
                let text = |p: *const c_char| CStr::from_ptr(p).to_str().unwrap().to_string();
                match o.kind {
                    EmpmixPersistKind::EmpmixPersistAppend => {
                        counts[0] += 1;
                        assert_eq!(CStr::from_ptr(o.data).to_bytes().len(), o.data_len);
                        self.records.push((text(o.event_id), text(o.data)));
                    }
                    EmpmixPersistKind::EmpmixPersistRemove => {
                        counts[1] += 1;
                        let ids = std::slice::from_raw_parts(o.event_ids, o.event_id_count);
                        let ids: Vec<String> = ids.iter().map(|p| text(*p)).collect();
                        self.records.retain(|(id, _)| !ids.contains(id));
                    }
                    EmpmixPersistKind::EmpmixPersistSaveState => {
                        counts[2] += 1;
                        self.state = Some(text(o.data));
                    }
                }
                empmix_engine_persist_op_free(op);
            }
        }
    }

    fn records(&self) -> Vec<String> {
        self.records.iter().map(|(_, r)| r.clone()).collect()
    }
}

/// A request as the host sees it.
struct Sent {
    id: u64,
    events: usize,
    url: String,
    headers: Vec<(String, String)>,
    body: String,
}

/// The next request at `now`.
fn poll(engine: *mut EmpmixEngine, now: u64) -> Option<Sent> {
    let mut req = null_mut();
    // SAFETY: a live engine; the request is read before it is freed.
    unsafe {
        ok(empmix_engine_poll_transmit(engine, now, &mut req));
        let r = req.as_ref()?;
        let text = |p: *const c_char| CStr::from_ptr(p).to_str().unwrap().to_string();
        let headers = std::slice::from_raw_parts(r.headers, r.header_count)
            .iter()
            .map(|h| (text(h.name), text(h.value)))
            .collect();
        let body = String::from_utf8(std::slice::from_raw_parts(r.body, r.body_len).to_vec()).unwrap();
        assert_eq!(text(r.method), "POST");
        let out = Sent { id: r.id, events: r.events, url: text(r.url), headers, body };
        empmix_engine_request_free(req);
        Some(out)
    }
}

fn timeout(engine: *mut EmpmixEngine, now: u64) -> Option<u64> {
    let (mut has, mut at) = (false, 0);
    // SAFETY: a live engine and writable outs.
    ok(unsafe { empmix_engine_poll_timeout(engine, now, &mut has, &mut at) });
    has.then_some(at)
}

fn respond(
    engine: *mut EmpmixEngine,
    now: u64,
    id: u64,
    status: u16,
    retry_after: Option<&CStr>,
    body: &str,
) {
    // SAFETY: a live engine, a NUL-terminated header and a body of its length.
    ok(unsafe {
        empmix_engine_handle_response(
            engine,
            now,
            id,
            status,
            retry_after.map_or(null(), CStr::as_ptr),
            body.as_ptr(),
            body.len(),
        )
    });
}

fn stats(engine: *mut EmpmixEngine) -> EmpmixStats {
    let mut s = EmpmixStats::default();
    // SAFETY: a live engine.
    ok(unsafe { empmix_engine_stats(engine, &mut s) });
    s
}

#[test]
fn the_window_timer_a_retry_after_and_a_delivery_on_a_manual_clock() {
    let engine = create(true, None, &[], T0);
    let mut store = Store::default();
    assert_eq!(store.apply_all(engine), [0, 0, 1], "a start saves the state");
    // SAFETY: a live engine and NUL-terminated strings.
    ok(unsafe {
        empmix_engine_page_view(engine, T0, c"https://m.example/c/1".as_ptr(), c"c1".as_ptr(), null())
    });
    assert_eq!(store.apply_all(engine), [1, 0, 0], "the append is the durability point");
    assert!(poll(engine, T0).is_none(), "one event waits for the window");
    assert_eq!(timeout(engine, T0), Some(T0 + 1000));
    assert!(poll(engine, T0 + 999).is_none());

    // SAFETY: a live engine.
    ok(unsafe { empmix_engine_handle_timeout(engine, T0 + 1000) });
    let Sent { id, events, url, headers, body } = poll(engine, T0 + 1000).unwrap();
    assert_eq!((events, url.as_str()), (1, "http://127.0.0.1:8000/api/analytics/events"));
    assert!(headers.contains(&("X-API-Key".into(), "pk_test".into())), "{headers:?}");
    assert!(headers.contains(&("Content-Type".into(), "application/json".into())));
    let sent: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(sent["events"][0]["type"], "page_view");
    // The context is the request's, shared by its events.
    assert_eq!(sent["context"]["app"], "Tests");
    assert_eq!(sent["context"]["library"]["name"], "empmix-engine");
    assert!(poll(engine, T0 + 1000).is_none(), "one request in flight at a time");

    // 503 with Retry-After: 5 → nothing before 5 s have passed.
    respond(engine, T0 + 1100, id, 503, Some(c"5"), "");
    assert_eq!(stats(engine).retried, 1);
    let at = timeout(engine, T0 + 1100).unwrap();
    assert!(at >= T0 + 6100, "Retry-After is honoured: {}", at - T0);
    assert!(poll(engine, T0 + 6099).is_none());
    // SAFETY: a live engine.
    ok(unsafe { empmix_engine_handle_timeout(engine, at) });
    let Sent { id: again, body: body_again, .. } = poll(engine, at).unwrap();
    assert_ne!(again, id, "each send has its own id");
    let resent: serde_json::Value = serde_json::from_str(&body_again).unwrap();
    assert_eq!(resent["events"][0]["event_id"], sent["events"][0]["event_id"], "the same event");

    // The first id again is ignored; the second is delivered and removed from storage.
    respond(engine, at, id, 200, None, r#"{"accepted":1,"rejected":[]}"#);
    assert_eq!(stats(engine).delivered, 0);
    respond(engine, at, again, 200, None, r#"{"accepted":1,"rejected":[]}"#);
    assert_eq!((stats(engine).delivered, stats(engine).queued, stats(engine).in_flight), (1, 0, 0));
    assert_eq!(store.apply_all(engine)[1], 1);
    assert!(store.records.is_empty());
    assert_eq!(timeout(engine, at), None, "nothing waits on time");
    // SAFETY: a live engine, freed once.
    unsafe { empmix_engine_free(engine) };
}

#[test]
fn a_restart_from_storage_sends_each_stored_event_once_with_its_id() {
    let engine = create(true, None, &[], T0);
    let mut store = Store::default();
    for i in 0..3 {
        let url = CString::new(format!("https://m.example/p/{i}")).unwrap();
        // SAFETY: a live engine and NUL-terminated strings.
        ok(unsafe { empmix_engine_page_view(engine, T0 + i, url.as_ptr(), null(), null()) });
    }
    store.apply_all(engine);
    let mut ticket = 0;
    // SAFETY: a live engine.
    ok(unsafe { empmix_engine_flush(engine, &mut ticket) });
    let Sent { body, .. } = poll(engine, T0 + 10).unwrap();
    // The process dies here: the request's answer never arrives, the engine is gone.
    // SAFETY: a live engine, freed once.
    unsafe { empmix_engine_free(engine) };
    let first: serde_json::Value = serde_json::from_str(&body).unwrap();

    // A torn record (as a killed writer leaves it) is skipped.
    let mut records = store.records();
    records.push("{\"event_id\":\"0193".into());
    let engine = create(true, store.state.as_deref(), &records, T0 + 60_000);
    let Sent { id, events, body, .. } = poll(engine, T0 + 60_000).expect("restored events are sent at once");
    assert_eq!(events, 3);
    let second: serde_json::Value = serde_json::from_str(&body).unwrap();
    for i in 0..3 {
        assert_eq!(second["events"][i]["event_id"], first["events"][i]["event_id"]);
        assert_eq!(second["events"][i]["anonymous_id"], first["events"][i]["anonymous_id"]);
    }
    respond(engine, T0 + 60_100, id, 200, None, r#"{"accepted":3,"rejected":[]}"#);
    store.apply_all(engine);
    assert!(store.records.is_empty(), "delivered records are removed");
    assert_eq!(stats(engine).delivered, 3);
    // SAFETY: a live engine, freed once.
    unsafe { empmix_engine_free(engine) };
}

#[test]
fn flush_tickets_shutdown_refusals_and_unload() {
    let engine = create(false, None, &[], T0);
    // SAFETY: a live engine and NUL-terminated strings throughout.
    unsafe {
        ok(empmix_engine_track(engine, T0, c"a".as_ptr(), c"{\"k\":1}".as_ptr()));
        let (mut t1, mut done) = (0, true);
        ok(empmix_engine_flush(engine, &mut t1));
        ok(empmix_engine_is_flushed(engine, t1, &mut done));
        assert!(!done);
        let mut t_same = 0;
        ok(empmix_engine_flush(engine, &mut t_same));
        assert_eq!(t_same, t1, "nothing new: the same ticket");
        assert_eq!(empmix_engine_is_flushed(engine, t1 + 5, &mut done), EmpmixResult::InvalidConfig);
        let Sent { id, .. } = poll(engine, T0).unwrap();
        respond(engine, T0, id, 200, None, "");
        ok(empmix_engine_is_flushed(engine, t1, &mut done));
        assert!(done);

        ok(empmix_engine_track(engine, T0, c"b".as_ptr(), null()));
        ok(empmix_engine_track(engine, T0, c"c".as_ptr(), null()));
        let mut t2 = 0;
        ok(empmix_engine_shutdown(engine, &mut t2));
        assert!(t2 > t1);
        assert_eq!(empmix_engine_track(engine, T0, c"d".as_ptr(), null()), EmpmixResult::ShutDown);
        assert_eq!(empmix_engine_identify(engine, T0, c"u".as_ptr()), EmpmixResult::ShutDown);
        assert_eq!(empmix_engine_reset(engine, T0), EmpmixResult::ShutDown);
        // Entering the background: everything waiting, whatever the window and limits.
        let mut req = null_mut();
        ok(empmix_engine_poll_unload_transmit(engine, T0, 0, &mut req));
        assert_eq!(req.as_ref().unwrap().events, 2);
        let id = req.as_ref().unwrap().id;
        empmix_engine_request_free(req);
        respond(engine, T0, id, 200, None, "");
        let mut idle = false;
        ok(empmix_engine_is_idle(engine, &mut idle));
        assert!(idle);
        ok(empmix_engine_is_flushed(engine, t1, &mut done));
        assert!(done, "an old ticket stays done");
        empmix_engine_free(engine);
    }
}

#[test]
fn bad_input_is_codes() {
    let bad_utf8 = [b'a', 0xFF, 0];
    let bad = bad_utf8.as_ptr().cast::<c_char>();
    let mut engine = null_mut();
    // SAFETY: NULLs and NUL-terminated strings only.
    unsafe {
        let c = empmix_engine_config_new();
        assert_eq!(
            empmix_engine_create(c, null(), null(), 0, T0, 1, &mut engine),
            EmpmixResult::NullArgument
        );
        assert_eq!(empmix_engine_config_set_locale(c, bad), EmpmixResult::InvalidUtf8);
        assert_eq!(empmix_engine_config_set_endpoint(null_mut(), c"x".as_ptr()), EmpmixResult::NullArgument);
        ok(empmix_engine_config_set_ingest_key(c, c"k".as_ptr()));
        ok(empmix_engine_config_set_endpoint(c, c"not a url".as_ptr()));
        assert_eq!(
            empmix_engine_create(c, null(), null(), 0, T0, 1, &mut engine),
            EmpmixResult::InvalidConfig
        );
        ok(empmix_engine_config_set_endpoint(c, c"http://h".as_ptr()));
        ok(empmix_engine_config_set_flush_at(c, 100_000));
        assert_eq!(
            empmix_engine_create(c, null(), null(), 0, T0, 1, &mut engine),
            EmpmixResult::InvalidConfig
        );
        assert!(engine.is_null());
        ok(empmix_engine_config_set_flush_at(c, 0));
        assert_eq!(
            empmix_engine_create(c, null(), null(), 2, T0, 1, &mut engine),
            EmpmixResult::NullArgument
        );
        // Stored data that is not UTF-8 is corrupt, not an error.
        let records = [bad];
        ok(empmix_engine_create(c, bad, records.as_ptr(), 1, T0, 1, &mut engine));
        empmix_engine_config_free(c);

        assert_eq!(empmix_engine_track(null(), T0, c"a".as_ptr(), null()), EmpmixResult::NullArgument);
        assert_eq!(empmix_engine_track(engine, T0, bad, null()), EmpmixResult::InvalidUtf8);
        assert_eq!(
            empmix_engine_track(engine, T0, c"a".as_ptr(), c"[1]".as_ptr()),
            EmpmixResult::InvalidJson
        );
        assert_eq!(empmix_engine_track(engine, T0, c"".as_ptr(), null()), EmpmixResult::InvalidName);
        assert_eq!(empmix_engine_register(engine, null(), false), EmpmixResult::NullArgument);
        assert_eq!(empmix_engine_register(engine, c"{".as_ptr(), false), EmpmixResult::InvalidJson);
        let (mut code, mut url) = (null_mut(), null_mut());
        assert_eq!(
            empmix_engine_create_share(
                engine,
                T0,
                c"x".as_ptr(),
                c"nope".as_ptr(),
                null(),
                &mut code,
                &mut url
            ),
            EmpmixResult::InvalidUrl
        );
        assert!(code.is_null() && url.is_null());
        assert_eq!(empmix_engine_poll_transmit(engine, T0, null_mut()), EmpmixResult::NullArgument);
        assert_eq!(
            empmix_engine_handle_response(engine, T0, 1, 200, null(), null(), 3),
            EmpmixResult::NullArgument
        );
        // A Retry-After that is not UTF-8 and an unknown id are taken as they come.
        ok(empmix_engine_handle_response(engine, T0, 99, 503, bad, null(), 0));
        ok(empmix_engine_set_opted_out(engine, true));
        assert_eq!(empmix_engine_track(engine, T0, c"a".as_ptr(), null()), EmpmixResult::OptedOut);
        let mut buf = [0 as c_char; 128];
        assert!(crate::empmix_engine_last_error_message(buf.as_mut_ptr(), buf.len()) > 0);
        assert_eq!(
            CStr::from_ptr(crate::empmix_engine_result_message(6)).to_str().unwrap(),
            "the user opted out of tracking"
        );
        assert_eq!(
            CStr::from_ptr(crate::empmix_engine_version()).to_str().unwrap(),
            env!("CARGO_PKG_VERSION")
        );
        empmix_engine_free(engine);
        empmix_engine_free(null_mut());
        empmix_engine_request_free(null_mut());
        empmix_engine_persist_op_free(null_mut());
        crate::empmix_engine_string_free(null_mut());
    }
}

#[test]
fn shares_and_incoming_urls_return_owned_strings() {
    let a = create(false, None, &[], T0);
    let b = create(false, None, &[], T0);
    // SAFETY: live engines, NUL-terminated strings, writable outs; returned strings freed once.
    unsafe {
        let (mut code, mut url) = (null_mut(), null_mut());
        ok(empmix_engine_create_share(
            a,
            T0,
            c"wechat".as_ptr(),
            c"https://m.example/c/1?x=1".as_ptr(),
            c"c1".as_ptr(),
            &mut code,
            &mut url,
        ));
        let code_text = CStr::from_ptr(code).to_str().unwrap().to_string();
        assert!(CStr::from_ptr(url).to_str().unwrap().contains(&format!("_s={code_text}")));
        let mut clean = null_mut();
        ok(empmix_engine_handle_incoming_url(b, T0, url, &mut clean));
        assert_eq!(CStr::from_ptr(clean).to_str().unwrap(), "https://m.example/c/1?x=1");
        let mut ticket = 0;
        ok(empmix_engine_flush(b, &mut ticket));
        let Sent { body, .. } = poll(b, T0).unwrap();
        let sent: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(sent["events"][0]["type"], "share_open");
        assert_eq!(sent["events"][0]["properties"]["share_code"], code_text.as_str());
        for s in [code, url, clean] {
            crate::empmix_engine_string_free(s);
        }
        empmix_engine_free(a);
        empmix_engine_free(b);
    }
}
