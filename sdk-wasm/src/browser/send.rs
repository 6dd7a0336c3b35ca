//! Requests: `fetch` with a gzip body where the browser has `CompressionStream` (it compresses
//! off the page's JavaScript), `keepalive` for a tab being hidden, and `sendBeacon` for a page
//! going away (a beacon cannot carry `Content-Encoding`, so its body stays plain JSON).
//!
//! A request's promises are followed with one closure made at start, the page's hook
//! ([`hook`]), bound per step to the request's handle: no future executor, no closure made
//! per request, and nothing left behind by a promise that never settles one way.
//!
//! Bodies are gzipped in a worker where the page can start one (`js/gzip.js`): zlib on the
//! page's main thread cost it milliseconds per batch. The worker answers through the hook too;
//! where there is none, or it fails, the `CompressionStream` runs on the main thread.

use js_sys::{Date, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{Headers, RequestInit, Response};

use empmix_core::protocol::API_KEY_HEADER;

use super::js::{self, Compressor, Pending};
use super::{Shared, pump};
use crate::driver::Request;

#[wasm_bindgen(module = "/js/gzip.js")]
extern "C" {
    /// A worker that gzips bodies and answers `hook` (see `js/gzip.js`), or null.
    #[wasm_bindgen(js_name = gzipWorker)]
    pub fn gzip_worker(hook: &JsValue) -> JsValue;
    /// Hands a copy of `body` to the worker, to be answered as the request `handle`'s body.
    #[wasm_bindgen(js_name = gzipIn)]
    fn gzip_in(worker: &JsValue, handle: u32, body: &[u8]);
}

/// Longest response body handed to the engine (it reads only error details from it).
const MAX_RESPONSE_CHARS: usize = 65_536;

/// How a request goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A plain `fetch`, gzip when the browser can.
    Normal,
    /// The tab is being hidden: `keepalive`, so the answer still arrives if the page is then
    /// closed, and plain, so the request starts in this task.
    Keepalive,
}

/// The steps of a request the hook is called for.
/// (`PUMP` is the one other code queues.)
mod step {
    /// The body is compressed (value: an `ArrayBuffer`).
    pub const BODY: u32 = 0;
    /// The response's headers are in (value: the `Response`).
    pub const RESPONSE: u32 = 1;
    /// Its body is read (value: the text).
    pub const TEXT: u32 = 2;
    /// Compression, the request or reading its body failed.
    pub const FAILED: u32 = 3;
    /// A pump queued by [`super::super::schedule`].
    pub const PUMP: u32 = 4;
    /// The compression worker failed: it could not start, threw, or could not compress.
    pub const NO_WORKER: u32 = 5;
    /// Compressing on the main thread failed.
    pub const NOT_COMPRESSED: u32 = 6;
}

pub(super) use step::PUMP;

/// A request between its steps.
#[derive(Debug)]
pub struct InFlight {
    handle: u32,
    /// Sent plain with `keepalive` (a hidden tab's): it outlives the page.
    keepalive: bool,
    /// Its body is with the compression worker.
    in_worker: bool,
    status: u32,
    retry_after: String,
}

/// The page's hook: every step of every request, queued pumps, and the page's events
/// ([`super::start::event`]).
pub fn hook(page: Shared) -> JsValue {
    Closure::<dyn FnMut(u32, u32, JsValue)>::new(move |step: u32, handle: u32, value: JsValue| match step {
        step::PUMP => pump(page, false),
        step::NO_WORKER => no_worker(page),
        step::NOT_COMPRESSED => not_compressed(page, handle),
        0..step::PUMP => advance(page, step, handle, value),
        _ => super::start::handle_event(page, step, value),
    })
    .into_js_value()
}

/// The hook bound to `step` of the request with `handle`, for a promise's `then`.
pub fn bound(hook: &JsValue, step: u32, handle: u32) -> JsValue {
    js::bind(hook.unchecked_ref(), step, handle)
}

/// `promise.then(step, FAILED)` for the request with `handle` (`NOT_COMPRESSED` for a body).
fn follow(hook: &JsValue, promise: &JsValue, step: u32, handle: u32) {
    let promise: &Pending = promise.unchecked_ref();
    let failed = if step == step::BODY { step::NOT_COMPRESSED } else { step::FAILED };
    let _ = promise.then(&bound(hook, step, handle), &bound(hook, failed, handle));
}

/// Sends `request`; its outcome reaches the engine through the hook.
pub fn send(page: Shared, request: Request, mode: Mode) {
    let Ok(mut p) = page.try_borrow_mut() else {
        return;
    };
    let keepalive = mode == Mode::Keepalive;
    let in_worker = p.gzip && !keepalive && !p.worker.is_null();
    let handle = request.handle;
    p.in_flight.push(InFlight { handle, keepalive, in_worker, status: 0, retry_after: String::new() });
    if in_worker {
        gzip_in(&p.worker, handle, request.body.as_bytes());
    } else if p.gzip && !keepalive {
        match compress(request.body.as_bytes()) {
            Ok(buffer) => follow(&p.hook, &buffer, step::BODY, handle),
            Err(_) => not_compressing(&mut p, handle),
        }
    } else {
        post(&mut p, request.handle, &JsValue::from_str(&request.body), false);
    }
}

/// The worker failed: what it was given fails (the engine retries it, compressed here), and
/// the main thread compresses from now on.
fn no_worker(page: Shared) {
    let Ok(mut p) = page.try_borrow_mut() else {
        return;
    };
    p.worker = JsValue::NULL;
    let stranded: Vec<u32> = p.in_flight.iter().filter(|f| f.in_worker).map(|f| f.handle).collect();
    for handle in stranded {
        fail(&mut p, handle);
    }
}

/// Compressing the body of the request with `handle` failed on the main thread.
fn not_compressed(page: Shared, handle: u32) {
    if let Ok(mut p) = page.try_borrow_mut() {
        not_compressing(&mut p, handle);
    }
}

/// The browser's `CompressionStream` does not work: bodies go plain from now on, the one of
/// the request with `handle` with the engine's retry.
fn not_compressing(p: &mut super::Page, handle: u32) {
    p.gzip = false;
    fail(p, handle);
}

/// Starts the `POST` of `body` for the request with `handle`.
fn post(p: &mut super::Page, handle: u32, body: &JsValue, gzip: bool) {
    let keepalive = p.in_flight.iter().any(|f| f.handle == handle && f.keepalive);
    match request(&p.url, &p.key, body, gzip, keepalive) {
        Ok(promise) => follow(&p.hook, &promise, step::RESPONSE, handle),
        Err(_) => fail(p, handle),
    }
}

fn request(url: &str, key: &str, body: &JsValue, gzip: bool, keepalive: bool) -> Result<JsValue, JsValue> {
    let headers = Headers::new()?;
    headers.set("Content-Type", "application/json")?;
    headers.set(API_KEY_HEADER, key)?;
    if gzip {
        headers.set("Content-Encoding", "gzip")?;
    }
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_headers(&headers);
    init.set_body(body);
    if keepalive {
        // web-sys's RequestInit has no setter for it.
        Reflect::set(&init, &"keepalive".into(), &JsValue::TRUE)?;
    }
    Ok(js::fetch(url, &init)?.into())
}

/// A request step's outcome. A step of a request no longer in flight (one [`abandon`]ed at
/// pagehide whose compression or answer came after all, the page kept in the back/forward
/// cache) goes no further: its events went by beacon.
fn advance(page: Shared, step: u32, handle: u32, value: JsValue) {
    let Ok(mut p) = page.try_borrow_mut() else {
        return;
    };
    let Some(f) = p.in_flight.iter_mut().find(|f| f.handle == handle) else {
        return;
    };
    f.in_worker = false;
    match step {
        step::BODY => post(&mut p, handle, &value, true),
        step::RESPONSE => {
            let response: Response = value.unchecked_into();
            let text = response.text();
            if let Some(f) = p.in_flight.iter_mut().find(|f| f.handle == handle) {
                f.status = u32::from(response.status());
                f.retry_after = response.headers().get("Retry-After").ok().flatten().unwrap_or_default();
            }
            match text {
                Ok(text) => follow(&p.hook, &text.into(), step::TEXT, handle),
                Err(_) => fail(&mut p, handle),
            }
        }
        step::TEXT => {
            let mut text = value.as_string().unwrap_or_default();
            if text.len() > MAX_RESPONSE_CHARS {
                let mut end = MAX_RESPONSE_CHARS;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
            }
            finish(&mut p, handle, &text);
        }
        _ => fail(&mut p, handle),
    }
}

/// The request ends with its recorded status (0 for none) and `body`.
fn finish(p: &mut super::Page, handle: u32, body: &str) {
    if let Some(i) = p.in_flight.iter().position(|f| f.handle == handle) {
        let f = p.in_flight.swap_remove(i);
        p.driver.handle_response(Date::now(), handle, f.status, &f.retry_after, body);
    }
    super::schedule(p);
}

/// The page is going away: every request that dies with it (its body still compressing, or a
/// fetch without `keepalive`, which the browser cancels) fails now, so that the engine hands
/// its events to the beacons of [`super::start`]'s unload with what waits. One whose answer
/// arrives after all is a copy the server dedups.
pub fn abandon(p: &mut super::Page) {
    let doomed: Vec<u32> = p.in_flight.iter().filter(|f| !f.keepalive).map(|f| f.handle).collect();
    for handle in doomed {
        fail(p, handle);
    }
}

/// The request failed: no answer.
fn fail(p: &mut super::Page, handle: u32) {
    if let Some(f) = p.in_flight.iter_mut().find(|f| f.handle == handle) {
        f.status = 0;
    }
    finish(p, handle, "");
}

/// `body` gzipped by the browser: a promise of an `ArrayBuffer`. The bytes are copied out of
/// wasm memory into a `Response`'s body stream: a `Blob` of them (or of the string) cost the
/// main thread about 0.85 ms per 100 KB body in the benchmark, a fifth of all EmpMix's time
/// (docs/performance.md).
fn compress(body: &[u8]) -> Result<JsValue, JsValue> {
    let plain = Response::new_with_opt_js_u8_array(Some(&js_sys::Uint8Array::from(body)))?;
    let gzipped = plain.body().ok_or(JsValue::NULL)?.pipe_through(Compressor::new("gzip")?.unchecked_ref());
    Ok(Response::new_with_opt_readable_stream(Some(&gzipped))?.array_buffer()?.into())
}

/// Whether this browser compresses (`CompressionStream` with gzip).
pub fn can_gzip() -> bool {
    js::global("CompressionStream").is_some() && Compressor::new("gzip").is_ok()
}

/// Sends `body` by beacon to `url` (which carries the key as a parameter); whether the browser
/// queued it.
pub fn beacon(url: &str, body: &str) -> bool {
    js::navigator().is_some_and(|n| n.send_beacon_with_opt_str(url, Some(body)).unwrap_or(false))
}
