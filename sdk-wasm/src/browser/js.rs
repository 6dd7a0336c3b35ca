//! The browser's APIs the driver calls that `web-sys` has no stable binding for, or reaches
//! only through `Window` (which Node, where the package is tested too, does not have): each
//! looked up on `globalThis` when used, so a missing one is an `Err`/`None`, never a trap.
//! web-sys keeps `CompressionStream` and `navigator.locks` behind `--cfg=web_sys_unstable_apis`;
//! declaring the three calls used here is smaller and keeps the build flags plain.

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use crate::tabs;

#[wasm_bindgen]
extern "C" {
    /// `fetch(url, init)`.
    #[wasm_bindgen(catch, js_name = fetch)]
    pub fn fetch(url: &str, init: &web_sys::RequestInit) -> Result<Promise, JsValue>;

    /// `crypto.getRandomValues(bytes)`.
    #[wasm_bindgen(catch, js_namespace = crypto, js_name = getRandomValues)]
    pub fn random_values(bytes: &mut [u8]) -> Result<JsValue, JsValue>;

    /// A gzip `CompressionStream`: a readable/writable pair for `pipeThrough`.
    #[wasm_bindgen(js_name = CompressionStream)]
    pub type Compressor;
    #[wasm_bindgen(catch, constructor, js_class = CompressionStream)]
    pub fn new(format: &str) -> Result<Compressor, JsValue>;

    /// `navigator.locks`.
    #[derive(Clone)]
    pub type LockManager;
    /// `locks.request(name, options, callback)`.
    #[wasm_bindgen(catch, method)]
    pub fn request(
        this: &LockManager,
        name: &str,
        options: &JsValue,
        callback: &Function,
    ) -> Result<Promise, JsValue>;

    /// `setTimeout(f, ms)`, for a promise that settles later (a lock's hold).
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(f: &Function, ms: f64) -> JsValue;

    /// `queueMicrotask(f)`.
    #[wasm_bindgen(js_name = queueMicrotask)]
    pub fn queue_microtask(f: &JsValue);

    /// A promise, for `then` with plain functions (the page's hook, bound).
    #[wasm_bindgen(js_name = Promise)]
    pub type Pending;
    #[wasm_bindgen(method)]
    pub fn then(this: &Pending, ok: &JsValue, failed: &JsValue) -> JsValue;

    /// `globalThis`: every browser and Node has it, so none of `js_sys::global`'s fallbacks
    /// (four more imports and their code) are needed.
    #[wasm_bindgen(thread_local_v2, js_name = globalThis)]
    static GLOBAL_THIS: JsValue;

    /// A function of (step, handle, value), for `bind`.
    #[wasm_bindgen(js_name = Function)]
    pub type Hook;
    #[wasm_bindgen(method, js_name = bind)]
    fn bind_to(this: &Hook, this_arg: &JsValue, step: u32, handle: u32) -> JsValue;
}

/// `hook` with its first two arguments bound.
pub fn bind(hook: &Hook, step: u32, handle: u32) -> JsValue {
    hook.bind_to(&JsValue::NULL, step, handle)
}

/// `globalThis`.
pub fn global_this() -> JsValue {
    GLOBAL_THIS.with(JsValue::clone)
}

/// `globalThis[name]`, if it is there and reading it does not throw (a blocked
/// `localStorage` throws).
pub fn global(name: &str) -> Option<JsValue> {
    Reflect::get(&global_this(), &JsValue::from_str(name)).ok().filter(|v| !v.is_undefined() && !v.is_null())
}

/// `navigator`, as web-sys types it (the methods used exist on Node's too, or are checked).
pub fn navigator() -> Option<web_sys::Navigator> {
    global("navigator").map(JsCast::unchecked_into)
}

/// Web Locks, where the page has them (secure contexts of current browsers).
pub fn locks() -> Option<LockManager> {
    let n = global("navigator")?;
    Reflect::get(&n, &"locks".into()).ok().filter(|l| l.is_object()).map(JsCast::unchecked_into)
}

/// A promise and the function that resolves it.
pub fn promise_pair() -> (Promise, Function) {
    let (promise, resolve, _) = promise_triple();
    (promise, resolve)
}

/// A promise and the functions that resolve and reject it.
pub fn promise_triple() -> (Promise, Function, Function) {
    let mut pair = (JsValue::UNDEFINED, JsValue::UNDEFINED);
    // The executor runs synchronously, so `pair` is always set (were it not, calling undefined
    // would be an `Err` of `call1`, which every caller ignores).
    let promise = Promise::new(&mut |res, rej| pair = (res.into(), rej.into()));
    (promise, pair.0.unchecked_into(), pair.1.unchecked_into())
}

/// A promise that resolves after `ms`.
pub fn sleep(ms: f64) -> Promise {
    let (promise, resolve) = promise_pair();
    set_timeout(&resolve, ms);
    promise
}

/// Runs `f` holding the Web Lock `name` (`if_available`: only when it is free; `f` then gets
/// `false` when it was not), keeping it `f`'s returned milliseconds longer. A lock manager
/// that refuses, at once or by rejecting its promise (an opaque origin's `SecurityError`),
/// runs `f` unlocked, with `false`: start never waits on a lock that will not come.
// `f` is boxed so that this and its closure are made once, not once per caller.
pub fn lock(locks: &LockManager, name: &str, if_available: bool, f: Box<dyn FnOnce(bool) -> f64>) {
    // One closure for every outcome, called exactly once: as the lock's callback (with the
    // `Lock`, or null when `ifAvailable` found it taken), or with the request's refusal (its
    // promise's rejection, or null when it throws), when the callback never runs.
    let callback = Closure::once_into_js(move |lock: JsValue| -> JsValue {
        // Only a `Lock` has a mode; `Reflect.has` of null throws, which is `false` too.
        let hold = f(Reflect::has(&lock, &"mode".into()).unwrap_or(false));
        if hold > 0.0 { sleep(hold).into() } else { JsValue::UNDEFINED }
    });
    let options = Object::new();
    if if_available {
        let _ = Reflect::set(&options, &"ifAvailable".into(), &JsValue::TRUE);
    }
    match locks.request(name, &options, callback.unchecked_ref()) {
        Ok(granted) => {
            let granted: &Pending = granted.unchecked_ref();
            let _ = granted.then(&JsValue::UNDEFINED, &callback);
        }
        Err(_) => {
            let _ = callback.unchecked_ref::<Function>().call1(&JsValue::NULL, &JsValue::NULL);
        }
    }
}

/// The page's `localStorage`, when it can be written (not in private modes that block it,
/// sandboxed frames, Node).
pub fn local_storage() -> Option<LocalStorage> {
    let s: web_sys::Storage = global("localStorage")?.unchecked_into();
    let probe = "empmix:probe";
    s.set_item(probe, probe).ok()?;
    s.remove_item(probe).ok()?;
    Some(LocalStorage(s))
}

/// `localStorage` as [`tabs::Storage`]: every call behind its `Result`, as a full quota or a
/// storage blocked after start throws.
#[derive(Debug, Clone)]
pub struct LocalStorage(pub web_sys::Storage);

impl tabs::Storage for LocalStorage {
    fn get(&self, key: &str) -> Option<String> {
        self.0.get_item(key).ok().flatten()
    }

    fn set(&mut self, key: &str, value: &str) -> bool {
        self.0.set_item(key, value).is_ok()
    }

    fn remove(&mut self, key: &str) {
        let _ = self.0.remove_item(key);
    }

    fn keys(&self) -> Vec<String> {
        let n = self.0.length().unwrap_or(0);
        (0..n).filter_map(|i| self.0.key(i).ok().flatten()).collect()
    }
}
