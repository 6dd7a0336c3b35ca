//! The browser driver: the [`Client`] class the loader (`js/index.js`) drives through
//! wasm-bindgen. It does the IO the engine asks for — requests ([`send`]), `localStorage`
//! through [`crate::tabs`], timers through gloo-timers, the page's lifecycle ([`start`]) —
//! and nothing else decides: every rule is the engine's or [`crate::tabs`]'s.
//!
//! Each method takes the time of the call (`at`, from `Date.now()` when the page made it) so
//! that calls the loader kept while the wasm loaded keep their own timestamps. Methods never
//! throw: a call that arrives while another is running (a page callback re-entering) gets
//! [`code::NOT_STARTED`].

mod js;
mod send;
mod start;

use std::cell::RefCell;

use gloo_timers::callback::Timeout;
use js_sys::{Date, Function, Promise};
use wasm_bindgen::prelude::*;

use crate::driver::{Driver, code, command};
use crate::tabs::TabStorage;
use js::LocalStorage;

/// The driver's state, shared by the client, its timers and its event listeners. It lives as
/// long as the page: the page's hook (a closure the browser holds) refers to it, so it could
/// never be freed, and leaking it at start spares the reference counting and drop code.
type Shared = &'static RefCell<Page>;

/// Everything one page's client holds.
struct Page {
    driver: Driver,
    /// This tab's stored events, when the page persists.
    store: Option<(TabStorage, LocalStorage)>,
    /// `<endpoint>/api/analytics/events`.
    url: String,
    /// The same with the key as a parameter, for beacons (which cannot set headers).
    beacon_url: String,
    key: String,
    /// Bodies go gzip: the browser has `CompressionStream`, and it has not failed.
    gzip: bool,
    /// The compression worker (`js/gzip.js`), or null: none, or it failed to start.
    worker: JsValue,
    /// The pending engine timer and when it fires.
    timer: Option<(f64, Timeout)>,
    /// A pump is queued for the end of this task.
    scheduled: bool,
    /// Beacons sent at `pagehide`, their outcome unknown: (handle, events).
    beaconed: Vec<(u32, usize)>,
    /// Requests between their steps.
    in_flight: Vec<send::InFlight>,
    /// The closure every request step and queued pump calls (see [`send::hook`]).
    hook: JsValue,
    /// `flush()` promises waiting: (id, resolve).
    waiters: Vec<Waiter>,
    next_waiter: u32,
    counts: Counts,
}

/// A `flush()` promise waiting: settled by the engine (`true`) or its timer (`false`), whichever
/// comes first; either way the waiter goes, and with it the timer (dropping a gloo `Timeout`
/// clears it and frees its closure, even from inside that closure).
struct Waiter {
    id: u32,
    resolve: Function,
    /// Held only to be dropped with the waiter.
    _timer: Timeout,
}

/// The driver's own counters, reported by `stats()` beside the engine's.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    /// Calls refused for bad input (names, JSON, sizes).
    invalid: u64,
    /// Beacons the browser queued.
    beacons: u64,
    /// Events sent a second time because a beacon's outcome was unknown.
    resent: u64,
}

impl Page {
    /// Applies every storage change the engine has pending, as one chunk write.
    fn persist(&mut self) {
        match &mut self.store {
            Some((tabs, ls)) => {
                while let Some(op) = self.driver.poll_persist() {
                    tabs.apply(ls, op);
                }
                tabs.commit(ls);
            }
            None => while self.driver.poll_persist().is_some() {},
        }
    }

    fn count(&mut self, code: u32) -> u32 {
        if matches!(code, code::BAD_NAME | code::BAD_PROPERTIES | code::TOO_LARGE) {
            self.counts.invalid += 1;
        }
        code
    }
}

/// Step 2 of the driver contract, once per task (a microtask), so that a burst of calls costs
/// one storage write and one look for due requests.
fn schedule(p: &mut Page) {
    if !p.scheduled {
        p.scheduled = true;
        js::queue_microtask(&send::bound(&p.hook, send::PUMP, 0));
    }
}

/// Persists, sets the engine's timer and settles finished flushes; with `send`, first sends
/// what is due. The microtask after a burst of calls does not send: its events are stored
/// before the task ends (nothing accepted waits in memory only), and a request due now goes
/// from the timer, set for now, in a task of its own, so the page's task that tracked the
/// events stays short (cutting, encoding and compressing a batch of hundreds of events is a
/// few milliseconds).
fn pump(page: Shared, send: bool) {
    let Ok(mut p) = page.try_borrow_mut() else {
        return;
    };
    p.scheduled = false;
    let now = Date::now();
    p.persist();
    let mut due = Vec::new();
    while let Some(r) = send.then(|| p.driver.poll_transmit(now)).flatten() {
        due.push(r);
    }
    let next = p.driver.poll_timeout(now);
    if next < 0.0 {
        p.timer = None;
    } else if p.timer.as_ref().is_none_or(|(at, _)| *at != next) {
        // At most about 24 days (setTimeout's limit); the engine asks again after.
        let delay = (next - now).clamp(0.0, 2e9) as u32;
        p.timer = Some((
            next,
            Timeout::new(delay, move || {
                if let Ok(mut p) = page.try_borrow_mut() {
                    p.timer = None;
                    p.driver.handle_timeout(Date::now());
                }
                pump(page, true);
            }),
        ));
    }
    let settled = if p.waiters.is_empty() || !p.driver.is_flushed() {
        Vec::new()
    } else {
        std::mem::take(&mut p.waiters)
    };
    drop(p);
    for r in due {
        send::send(page, r, send::Mode::Normal);
    }
    for w in settled {
        let _ = w.resolve.call1(&JsValue::NULL, &JsValue::TRUE);
    }
}

/// One page's analytics client. Made by [`Client::start`]; the loader wraps it in the
/// documented API (`index.d.ts`).
#[wasm_bindgen]
#[derive(Debug)]
pub struct Client {
    page: Shared,
}

impl core::fmt::Debug for Page {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Page")
    }
}

#[wasm_bindgen]
impl Client {
    /// Runs the page's command `op` ([`command`]; one export for them all, as each is a shim
    /// in the wasm and a wrapper in the glue) made at `at`, with the number `n` and the strings
    /// `a`–`d` (a missing one is empty, so the loader passes only what a command reads).
    /// Returns an error code, or the command's answer; [`code::NOT_STARTED`] when the state is
    /// busy (a call from inside a callback of this client). Schedules a pump.
    #[allow(clippy::too_many_arguments)]
    pub fn call(
        &self,
        op: u32,
        at: f64,
        n: f64,
        a: Option<String>,
        b: Option<String>,
        c: Option<String>,
        d: Option<String>,
    ) -> u32 {
        let [a, b, c, d] = [&a, &b, &c, &d].map(|s| s.as_deref().unwrap_or(""));
        let Ok(mut p) = self.page.try_borrow_mut() else {
            return code::NOT_STARTED;
        };
        if op == command::EVENT + crate::driver::kind::PAGE_VIEW {
            start::refresh_context(&mut p.driver);
        }
        let answer = p.driver.command(op, at, n, a, b, c, d);
        schedule(&mut p);
        p.count(answer)
    }

    /// Resolves `true` once everything tracked so far is delivered or dropped, `false` after
    /// `timeout_ms` (whichever comes first).
    pub fn flush(&self, timeout_ms: f64) -> Promise {
        let (promise, resolve) = js::promise_pair();
        let Ok(mut p) = self.page.try_borrow_mut() else {
            let _ = resolve.call1(&JsValue::NULL, &JsValue::FALSE);
            return promise;
        };
        p.driver.flush();
        p.next_waiter = p.next_waiter.wrapping_add(1);
        let id = p.next_waiter;
        let page = self.page;
        let ms = if (0.0..2e9).contains(&timeout_ms) { timeout_ms as u32 } else { 10_000 };
        let timer = Timeout::new(ms, move || {
            let waiter = page.try_borrow_mut().ok().and_then(|mut p| {
                let i = p.waiters.iter().position(|w| w.id == id)?;
                Some(p.waiters.swap_remove(i))
            });
            if let Some(w) = waiter {
                let _ = w.resolve.call1(&JsValue::NULL, &JsValue::FALSE);
            }
        });
        p.waiters.push(Waiter { id, resolve, _timer: timer });
        drop(p);
        pump(self.page, false);
        promise
    }

    /// The name of an error code a method returned (`opted_out`), for the loader's debug
    /// warnings: from the core's list, so the loader carries no copy of it.
    #[wasm_bindgen(js_name = errorName)]
    pub fn error_name(code: u32) -> String {
        empmix_core::ErrorCode::ALL.iter().find(|c| **c as u32 == code).map_or("", |c| c.name()).into()
    }

    /// `distinct_id` (0), `anonymous_id` (1) or `session_id` (2).
    pub fn id(&self, which: u32) -> String {
        self.page.try_borrow().map(|p| p.driver.id(which)).unwrap_or_default()
    }

    /// The counters as JSON text: the engine's, then the driver's and its storage's.
    pub fn stats(&self) -> String {
        let Ok(p) = self.page.try_borrow() else {
            return "{}".into();
        };
        let stored = p.store.as_ref().map_or(0, |(t, _)| t.stored() as u64);
        let storage = p.store.as_ref().map(|(t, _)| t.counts()).unwrap_or_default();
        let c = p.counts;
        let mut out = p.driver.stats(&[
            ("invalid", c.invalid),
            ("storageErrors", storage.storage_errors),
            ("notPersisted", storage.not_persisted),
            ("beacons", c.beacons),
            ("resent", c.resent),
            ("stored", stored),
        ]);
        // `persistent` is a boolean in the API (index.d.ts), the counters numbers.
        out.pop();
        out.push_str(if p.store.is_some() { ",\"persistent\":true}" } else { ",\"persistent\":false}" });
        out
    }
}
