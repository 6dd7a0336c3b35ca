//! Starting a page's client: the options, taking over the events of gone tabs, creating or
//! restoring the identity under a Web Lock (so two tabs opened at once on a first visit are
//! one anonymous user), and the page's lifecycle: `storage` events from other tabs,
//! `visibilitychange`, `pagehide`/`pageshow`, `online`, the heartbeat.

use std::cell::RefCell;

use gloo_timers::callback::Interval;
use js_sys::{Date, Function, Promise, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{EventTarget, StorageEvent};

use empmix_core::persist::is_restorable;
use empmix_core::protocol::{API_KEY_PARAM, BEACON_MAX_BYTES, events_url};
use empmix_core::settings::{API_KEY, ENDPOINT, MAX_STORED_BYTES, MAX_STORED_EVENTS, PERSIST, PROJECT};

use super::js::{self, LocalStorage, LockManager};
use super::send::{self, Mode};
use super::{Client, Counts, Page, Shared, pump, schedule};
use crate::driver::{Driver, configure, setting_message};
use crate::tabs::{BEAT_EVERY_MS, CLAIM_HOLD_MS, TabStorage};

#[wasm_bindgen(module = "/js/context.js")]
extern "C" {
    /// The six context strings (os, browser, locale, url, referrer, extra JSON) of the page, a
    /// line each: JavaScript's regular expressions read the user agent in far fewer bytes than
    /// Rust would.
    #[wasm_bindgen(js_name = browserContext)]
    fn context_lines() -> String;
}

/// How long the first tab of a first visit keeps the identity lock after saving the new
/// identity: Chromium hands each renderer its copy of `localStorage` asynchronously, and a
/// tab granted the lock the moment it is released could read its copy before the write
/// reached it. Only a first visit pays it, and only other tabs starting at once wait.
const FRESH_IDENTITY_HOLD_MS: f64 = 250.0;

/// Replaces the engine's browser context with the page's current one.
pub(super) fn refresh_context(driver: &mut Driver) {
    driver.set_context_lines(&context_lines());
}

/// An option by the name the core's decoder checked it under.
fn option(options: &JsValue, name: &str) -> JsValue {
    Reflect::get(options, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

/// A count option the core's decoder has checked, or `default`.
fn count(options: &JsValue, name: &str, default: usize) -> usize {
    option(options, name).as_f64().map_or(default, |n| n as usize)
}

/// A client on its way: what start has read, while it waits for the locks. Each lock's
/// callback takes it on; the identity's builds the [`Page`] from it.
struct Starting {
    config: empmix_core::Config,
    store: Option<(TabStorage, LocalStorage)>,
    /// (event id, record) taken over from gone tabs.
    entries: Vec<(String, String)>,
    seed: u64,
    url: String,
    key: String,
    project: String,
    locks: Option<LockManager>,
    /// Takeovers still waiting for their lock's answer.
    waiting: usize,
    resolve: Function,
}

/// Leaked like the page it becomes (a few words once per page): no reference counts to keep
/// for the lock callbacks that share it.
type Step = &'static RefCell<Option<Starting>>;

/// Takes over the events of tabs that are gone, then goes on to the identity. Which tab takes
/// a gone tab's events is settled by a Web Lock named after it, taken only when free and held
/// [`CLAIM_HOLD_MS`] past the takeover: localStorage alone cannot settle it, as each renderer
/// reads its own copy. Without Web Locks a lease in storage decides, best effort.
fn take_over(start: Step) {
    let (gone, locks, prefix) = {
        let mut guard = start.borrow_mut();
        let Some(s) = guard.as_mut() else {
            return;
        };
        let Some((tabs, ls)) = &mut s.store else {
            drop(guard);
            return identity(start);
        };
        (tabs.gone_tabs(ls, Date::now()), s.locks.clone(), tabs.prefix().to_string())
    };
    let Some(locks) = locks else {
        if let Some(s) = start.borrow_mut().as_mut()
            && let Some((tabs, ls)) = &mut s.store
        {
            for tab in &gone {
                if !tabs.take_lease(ls, Date::now()) {
                    break;
                }
                s.entries.extend(tabs.adopt(ls, tab));
            }
        }
        return identity(start);
    };
    if gone.is_empty() {
        return identity(start);
    }
    if let Some(s) = start.borrow_mut().as_mut() {
        s.waiting = gone.len();
    }
    for tab in gone {
        js::lock(
            &locks,
            &(prefix.clone() + "claim:" + &tab.tab),
            true,
            Box::new(move |granted| {
                let done = {
                    let mut guard = start.borrow_mut();
                    let Some(s) = guard.as_mut() else {
                        return 0.0;
                    };
                    if granted && let Some((tabs, ls)) = &mut s.store {
                        s.entries.extend(tabs.adopt(ls, &tab));
                    }
                    s.waiting -= 1;
                    s.waiting == 0
                };
                if done {
                    identity(start);
                }
                if granted { CLAIM_HOLD_MS } else { 0.0 }
            }),
        );
    }
}

/// Reads the identity, or creates and saves it, under one lock for the whole site.
fn identity(start: Step) {
    let (locks, name) = match start.borrow().as_ref() {
        Some(s) => (s.locks.clone(), "empmix:".to_string() + &s.project + ":identity"),
        None => return,
    };
    match locks {
        Some(locks) => js::lock(&locks, &name, false, Box::new(move |_| finish(start))),
        None => drop(finish(start)),
    }
}

/// Builds the page from what start gathered and resolves start's promise with the client.
/// Returns how long to keep the identity lock.
fn finish(start: Step) -> f64 {
    let Some(s) = start.borrow_mut().take() else {
        return 0.0;
    };
    let mut store = s.store;
    // A record the engine cannot read is skipped at start, and no removal will name it: it
    // goes from storage here.
    if let Some((tabs, ls)) = &mut store {
        let unreadable: Vec<&str> =
            s.entries.iter().filter(|(_, r)| !is_restorable(r)).map(|(id, _)| id.as_str()).collect();
        tabs.forget(ls, &unreadable);
    }
    let records = s.entries.into_iter().map(|(_, r)| r).collect();
    let state = store.as_ref().and_then(|(t, ls)| t.state(ls));
    let hold = if store.is_some() && state.is_none() { FRESH_IDENTITY_HOLD_MS } else { 0.0 };
    let driver = Driver::start(Date::now(), s.seed, s.config, state.as_deref().unwrap_or(""), records);
    // After the endpoint's own query, if it has one.
    let beacon_url = s.url.clone()
        + if s.url.contains('?') { "&" } else { "?" }
        + API_KEY_PARAM
        + "="
        + &String::from(js_sys::encode_uri_component(&s.key));
    let page: Shared = Box::leak(Box::new(RefCell::new(Page {
        driver,
        store,
        url: s.url,
        beacon_url,
        key: s.key,
        gzip: send::can_gzip(),
        worker: JsValue::NULL,
        timer: None,
        scheduled: false,
        beaconed: Vec::new(),
        in_flight: Vec::new(),
        hook: JsValue::UNDEFINED,
        waiters: Vec::new(),
        next_waiter: 0,
        counts: Counts::default(),
    })));
    let hook = send::hook(page);
    if let Ok(mut p) = page.try_borrow_mut() {
        if p.gzip {
            p.worker = send::gzip_worker(&hook);
        }
        p.hook = hook;
        p.persist();
        refresh_context(&mut p.driver);
    }
    listen(page);
    pump(page, false);
    let _ = s.resolve.call1(&JsValue::NULL, &Client { page }.into());
    hold
}

/// Eight base-36 characters naming this tab in storage keys.
fn tab_id(seed: u64) -> String {
    let mut n = seed;
    (0..8)
        .map(|_| {
            let c = b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize];
            n /= 36;
            c as char
        })
        .collect()
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    let _ = js::random_values(&mut b);
    u64::from_le_bytes(b)
}

#[wasm_bindgen]
impl Client {
    /// Starts the client for the page's `options` (an object; see `index.d.ts`): a promise of
    /// the client. Decodes the options with the core's settings decoder (a bad one rejects,
    /// naming it), takes over what gone tabs stored, restores or creates the identity, and
    /// listens to the page.
    pub fn start(options: JsValue) -> Promise {
        let (promise, resolve, reject) = js::promise_triple();
        let text = js_sys::JSON::stringify(&options).ok().and_then(|s| s.as_string());
        let storage = if option(&options, PERSIST) == JsValue::FALSE { None } else { js::local_storage() };
        let config = match configure(text.as_deref().unwrap_or("!"), storage.is_some()) {
            Ok(config) => config,
            Err(e) => {
                let _ = reject.call1(
                    &JsValue::NULL,
                    &JsError::new(&("[empmix] ".to_string() + &setting_message(&e))).into(),
                );
                return promise;
            }
        };
        let project = option(&options, PROJECT).as_string().unwrap_or_else(|| "default".into());
        let endpoint = option(&options, ENDPOINT).as_string().unwrap_or_default();
        let store = storage.map(|mut ls| {
            let mut tabs = TabStorage::new(
                &("empmix:".to_string() + &project + ":"),
                &tab_id(random_u64()),
                count(&options, MAX_STORED_EVENTS, 1000),
                count(&options, MAX_STORED_BYTES, 2_000_000),
            );
            tabs.beat(&mut ls, Date::now());
            (tabs, ls)
        });
        take_over(Box::leak(Box::new(RefCell::new(Some(Starting {
            config,
            store,
            entries: Vec::new(),
            seed: random_u64(),
            url: events_url(&endpoint),
            key: option(&options, API_KEY).as_string().unwrap_or_default(),
            project,
            locks: js::locks(),
            waiting: 0,
            resolve,
        })))));
        promise
    }
}

/// The page events the client listens to, as steps of the page's hook (see
/// [`super::send::hook`]): one closure for them all.
pub(super) mod event {
    /// `storage` on the window: another tab saved something.
    pub const STORAGE: u32 = 10;
    /// `pagehide` on the window.
    pub const PAGEHIDE: u32 = 11;
    /// `pageshow` on the window.
    pub const PAGESHOW: u32 = 12;
    /// `online` on the window.
    pub const ONLINE: u32 = 13;
    /// `visibilitychange` on the document.
    pub const VISIBILITY: u32 = 14;
}

/// Listens for the page's lifetime: `step` of the hook is called for `name` on `target`.
fn on(page: Shared, target: &JsValue, name: &str, step: u32) {
    let Ok(p) = page.try_borrow() else {
        return;
    };
    let target: &EventTarget = target.unchecked_ref();
    let _ = target.add_event_listener_with_callback(name, send::bound(&p.hook, step, 0).unchecked_ref());
}

fn listen(page: Shared) {
    let Some(document) = js::global("addEventListener").and(js::global("document")) else {
        return;
    };
    let window = js::global_this();
    if page.borrow().store.is_some() {
        on(page, &window, "storage", event::STORAGE);
        Interval::new(BEAT_EVERY_MS as u32, move || beat(page)).forget();
    }
    on(page, &window, "pagehide", event::PAGEHIDE);
    on(page, &window, "pageshow", event::PAGESHOW);
    on(page, &window, "online", event::ONLINE);
    on(page, &document, "visibilitychange", event::VISIBILITY);
}

/// A page event (see [`event`]).
pub(super) fn handle_event(page: Shared, step: u32, e: JsValue) {
    match step {
        event::STORAGE => adopt(page, e.unchecked_into()),
        event::PAGEHIDE => unload(page),
        event::PAGESHOW => back(page),
        event::VISIBILITY => {
            let hidden = js::global("document")
                .and_then(|d| Reflect::get(&d, &"visibilityState".into()).ok())
                .and_then(|v| v.as_string())
                .is_some_and(|v| v == "hidden");
            if hidden { hide(page) } else { back(page) }
        }
        _ => pump(page, false),
    }
}

/// Another tab of this site saved its state (identify, reset, opt-out, a link opened): adopt
/// it, so the tabs stay one user without a reload. A record this version cannot read (a newer
/// release's) leaves this tab as it was.
fn adopt(page: Shared, e: StorageEvent) {
    let Ok(mut p) = page.try_borrow_mut() else {
        return;
    };
    let ours = p
        .store
        .as_ref()
        .is_some_and(|(t, _)| e.key().is_some_and(|k| k.strip_prefix(t.prefix()) == Some("s")));
    if ours && let Some(state) = e.new_value() {
        p.driver.adopt_state(&state);
        schedule(&mut p);
    }
}

fn beat(page: Shared) {
    if let Ok(mut p) = page.try_borrow_mut()
        && let Some((tabs, ls)) = &mut p.store
    {
        tabs.beat(ls, Date::now());
    }
}

/// The tab is hidden (switched away, minimised, or about to close): everything waiting goes
/// now by `keepalive` fetch, whose answer arrives while the page lives, so coming back
/// resends nothing.
fn hide(page: Shared) {
    let due = {
        let Ok(mut p) = page.try_borrow_mut() else {
            return;
        };
        p.persist();
        let now = Date::now();
        let mut due = Vec::new();
        while let Some(r) = p.driver.poll_unload_transmit(now, BEACON_MAX_BYTES as u32) {
            due.push(r);
        }
        due
    };
    for r in due {
        send::send(page, r, Mode::Keepalive);
    }
}

/// The page is going away: what still waits goes by beacon, with the events of requests that
/// die with the page ([`send::abandon`]; without storage nothing else would ever send them).
/// A beacon's outcome is unknown, so the events stay stored and, if the page comes back (the
/// back/forward cache), are sent again (the server dedups) and counted as resent. The
/// heartbeat goes too, so the next page of the site takes over what is stored without waiting
/// for it to run out.
fn unload(page: Shared) {
    let Ok(mut p) = page.try_borrow_mut() else {
        return;
    };
    let p = &mut *p;
    send::abandon(p);
    p.persist();
    let now = Date::now();
    while let Some(r) = p.driver.poll_unload_transmit(now, BEACON_MAX_BYTES as u32) {
        p.beaconed.push((r.handle, r.events));
        if send::beacon(&p.beacon_url, &r.body) {
            p.counts.beacons += 1;
        }
    }
    if let Some((tabs, ls)) = &mut p.store {
        tabs.leave(ls);
    }
}

/// Visible again, or back from the back/forward cache.
fn back(page: Shared) {
    if let Ok(mut p) = page.try_borrow_mut() {
        let now = Date::now();
        if let Some((tabs, ls)) = &mut p.store {
            tabs.beat(ls, now);
        }
        for (handle, events) in std::mem::take(&mut p.beaconed) {
            p.driver.handle_response(now, handle, 0, "", "");
            p.counts.resent += events as u64;
        }
    }
    pump(page, false);
}
