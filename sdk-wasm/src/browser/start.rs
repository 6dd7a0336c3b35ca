//! Starting a page's client: the options, taking over the events of gone tabs, creating or
//! restoring the identity under a Web Lock (so two tabs opened at once on a first visit are
//! one anonymous user), and the page's lifecycle: `storage` events from other tabs,
//! `visibilitychange`, `pagehide`/`pageshow`, `online`, the heartbeat.

use std::cell::RefCell;
use std::rc::Rc;

use gloo_timers::callback::Interval;
use js_sys::{Array, Date, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{EventTarget, StorageEvent};

use empmix_core::persist::is_restorable;
use empmix_core::protocol::{API_KEY_PARAM, BEACON_MAX_BYTES, EVENTS_PATH};

use super::js::{self, LocalStorage, LockManager};
use super::send::{self, Mode};
use super::{Client, Counts, Page, Shared, pump, schedule};
use crate::driver::{Driver, configure, setting_message};
use crate::tabs::{BEAT_EVERY_MS, CLAIM_HOLD_MS, GoneTab, TabStorage};

#[wasm_bindgen(module = "/js/context.js")]
extern "C" {
    /// The six context strings (os, browser, locale, url, referrer, extra JSON) of the page:
    /// JavaScript's regular expressions read the user agent in far fewer bytes than Rust would.
    #[wasm_bindgen(js_name = browserContext)]
    fn browser_context() -> Array;
}

/// How long the first tab of a first visit keeps the identity lock after saving the new
/// identity: Chromium hands each renderer its copy of `localStorage` asynchronously, and a
/// tab granted the lock the moment it is released could read its copy before the write
/// reached it. Only a first visit pays it, and only other tabs starting at once wait.
const FRESH_IDENTITY_HOLD_MS: f64 = 250.0;

/// Replaces the engine's browser context with the page's current one.
pub(super) fn refresh_context(driver: &mut Driver) {
    let fields: Vec<String> = browser_context().iter().map(|v| v.as_string().unwrap_or_default()).collect();
    if let [os, browser, locale, url, referrer, extra] = &fields[..] {
        driver.set_context([os, browser, locale, url, referrer, extra]);
    }
}

fn option(options: &JsValue, name: &str) -> JsValue {
    Reflect::get(options, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

/// A count option the core's decoder has checked, or `default`.
fn count(options: &JsValue, name: &str, default: usize) -> usize {
    option(options, name).as_f64().map_or(default, |n| n as usize)
}

/// Events taken over from gone tabs, gathered while the locks are held.
type Stored = Rc<RefCell<(TabStorage, LocalStorage, Vec<(String, String)>)>>;

fn adopt(stored: &Stored, gone: &GoneTab) {
    let (tabs, ls, entries) = &mut *stored.borrow_mut();
    entries.extend(tabs.adopt(ls, gone));
}

/// Takes over the events of tabs that are gone. Which tab takes a gone tab's events is
/// settled by a Web Lock named after it, taken only when free and held [`CLAIM_HOLD_MS`] past
/// the takeover: localStorage alone cannot settle it, as each renderer reads its own copy.
/// Without Web Locks a lease in storage decides, best effort.
async fn take_over(stored: &Stored, locks: Option<&LockManager>) {
    let gone = {
        let (tabs, ls, _) = &mut *stored.borrow_mut();
        tabs.gone_tabs(ls, Date::now())
    };
    for tab in gone {
        match locks {
            Some(locks) => {
                let name = { stored.borrow().0.prefix().to_string() } + "claim:" + &tab.tab;
                let stored = stored.clone();
                js::with_lock(locks, &name, true, move |granted| {
                    if granted {
                        adopt(&stored, &tab);
                        CLAIM_HOLD_MS
                    } else {
                        0.0
                    }
                })
                .await;
            }
            None => {
                let leased = {
                    let (tabs, ls, _) = &mut *stored.borrow_mut();
                    tabs.take_lease(ls, Date::now())
                };
                if !leased {
                    break;
                }
                adopt(stored, &tab);
            }
        }
    }
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
    /// Starts the client for the page's `options` (an object; see `index.d.ts`): decodes them
    /// with the core's settings decoder (a bad one rejects, naming it), takes over what gone
    /// tabs stored, restores or creates the identity, and listens to the page.
    pub async fn start(options: JsValue) -> Result<Client, JsError> {
        let text = js_sys::JSON::stringify(&options).ok().and_then(|s| s.as_string());
        let storage = if option(&options, "persist") == JsValue::FALSE { None } else { js::local_storage() };
        let config = configure(text.as_deref().unwrap_or("!"), storage.is_some())
            .map_err(|e| JsError::new(&("[empmix] ".to_string() + &setting_message(&e))))?;
        let project = option(&options, "project").as_string().unwrap_or_else(|| "default".into());
        let key = option(&options, "apiKey").as_string().unwrap_or_default();
        let endpoint = option(&options, "endpoint").as_string().unwrap_or_default();
        let url = endpoint.trim_end_matches('/').to_string() + EVENTS_PATH;
        let seed = random_u64();
        let locks = js::locks();

        let mut records = Vec::new();
        let mut store = None;
        if let Some(ls) = storage {
            let prefix = "empmix:".to_string() + &project + ":";
            let mut tabs = TabStorage::new(
                &prefix,
                &tab_id(random_u64()),
                count(&options, "maxStoredEvents", 1000),
                count(&options, "maxStoredBytes", 2_000_000),
            );
            let mut ls = ls;
            tabs.beat(&mut ls, Date::now());
            let stored: Stored = Rc::new(RefCell::new((tabs, ls, Vec::new())));
            take_over(&stored, locks.as_ref()).await;
            let (mut tabs, mut ls, entries) =
                Rc::try_unwrap(stored).map(RefCell::into_inner).map_err(|_| JsError::new("[empmix] busy"))?;
            // A record the engine cannot read is skipped at start, and no removal will name it:
            // it goes from storage here.
            let unreadable: Vec<&str> =
                entries.iter().filter(|(_, r)| !is_restorable(r)).map(|(id, _)| id.as_str()).collect();
            tabs.forget(&mut ls, &unreadable);
            records = entries.into_iter().map(|(_, r)| r).collect();
            store = Some((tabs, ls));
        }

        // The identity is read, or created and saved, under one lock for the whole site.
        let cell: Rc<RefCell<Option<Page>>> = Rc::new(RefCell::new(None));
        let make = {
            let cell = cell.clone();
            move |_: bool| {
                let state = store.as_ref().and_then(|(t, ls)| t.state(ls));
                let hold = if store.is_some() && state.is_none() { FRESH_IDENTITY_HOLD_MS } else { 0.0 };
                let driver =
                    Driver::start(Date::now(), seed, config, state.as_deref().unwrap_or(""), records);
                let beacon_url = url.clone()
                    + "?"
                    + API_KEY_PARAM
                    + "="
                    + &String::from(js_sys::encode_uri_component(&key));
                let mut page = Page {
                    driver,
                    store,
                    url,
                    beacon_url,
                    key,
                    gzip: send::can_gzip(),
                    timer: None,
                    scheduled: false,
                    beaconed: Vec::new(),
                    waiters: Vec::new(),
                    next_waiter: 0,
                    counts: Counts::default(),
                };
                page.persist();
                *cell.borrow_mut() = Some(page);
                hold
            }
        };
        match &locks {
            Some(locks) => {
                js::with_lock(locks, &("empmix:".to_string() + &project + ":identity"), false, make).await
            }
            None => drop(make(true)),
        }
        let page =
            cell.borrow_mut().take().ok_or_else(|| JsError::new("[empmix] the identity lock was refused"))?;
        let page: Shared = Rc::new(RefCell::new(page));
        if let Ok(mut p) = page.try_borrow_mut() {
            refresh_context(&mut p.driver);
        }
        listen(&page);
        pump(&page);
        Ok(Client { page })
    }
}

/// Adds `f` as a listener for `event` on `target` for the page's lifetime.
fn on(target: &JsValue, event: &str, f: impl FnMut(JsValue) + 'static) {
    let f = Closure::<dyn FnMut(JsValue)>::new(f);
    let target: &EventTarget = target.unchecked_ref();
    if target.add_event_listener_with_callback(event, f.as_ref().unchecked_ref()).is_ok() {
        f.forget();
    }
}

fn listen(page: &Shared) {
    let Some(window) =
        js::global("addEventListener").and(js::global("document")).map(|_| js_sys::global().into())
    else {
        return;
    };
    let window: JsValue = window;
    let persists = page.borrow().store.as_ref().map(|(t, _)| t.prefix().to_string() + "s");
    if let Some(state_key) = persists {
        // Another tab of this site saved its state (identify, reset, opt-out, a link opened):
        // adopt it, so the tabs stay one user without a reload. A record this version cannot
        // read (a newer release's) leaves this tab as it was.
        let p = page.clone();
        on(&window, "storage", move |e| {
            let e: StorageEvent = e.unchecked_into();
            if e.key().as_deref() == Some(state_key.as_str())
                && let Some(state) = e.new_value()
                && let Ok(mut page) = p.try_borrow_mut()
            {
                page.driver.adopt_state(&state);
                schedule(&p, &mut page);
            }
        });
        let p = page.clone();
        Interval::new(BEAT_EVERY_MS as u32, move || beat(&p)).forget();
    }
    let p = page.clone();
    on(&window, "pagehide", move |_| unload(&p));
    let p = page.clone();
    on(&window, "pageshow", move |_| back(&p));
    let p = page.clone();
    on(&window, "online", move |_| pump(&p));
    if let Some(document) = js::global("document") {
        let p = page.clone();
        let d = document.clone();
        on(&document, "visibilitychange", move |_| {
            if Reflect::get(&d, &"visibilityState".into()).ok().and_then(|v| v.as_string()).as_deref()
                == Some("hidden")
            {
                hide(&p);
            } else {
                back(&p);
            }
        });
    }
}

fn beat(page: &Shared) {
    if let Ok(mut p) = page.try_borrow_mut()
        && let Some((tabs, ls)) = &mut p.store
    {
        tabs.beat(ls, Date::now());
    }
}

/// The tab is hidden (switched away, minimised, or about to close): everything waiting goes
/// now by `keepalive` fetch, whose answer arrives while the page lives, so coming back
/// resends nothing.
fn hide(page: &Shared) {
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
        wasm_bindgen_futures::spawn_local(send::send(page.clone(), r, Mode::Keepalive));
    }
}

/// The page is going away: what still waits goes by beacon. Its outcome is unknown, so the
/// events stay stored and, if the page comes back (the back/forward cache), are sent again
/// (the server dedups) and counted as resent. The heartbeat goes too, so the next page of the
/// site takes over what is stored without waiting for it to run out.
fn unload(page: &Shared) {
    let Ok(mut p) = page.try_borrow_mut() else {
        return;
    };
    let p = &mut *p;
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
fn back(page: &Shared) {
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
    pump(page);
}
