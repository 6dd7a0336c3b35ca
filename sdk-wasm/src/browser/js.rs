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
    pub type LockManager;
    /// `locks.request(name, options, callback)`.
    #[wasm_bindgen(catch, method)]
    pub fn request(
        this: &LockManager,
        name: &str,
        options: &JsValue,
        callback: &Function,
    ) -> Result<Promise, JsValue>;

    /// `setTimeout(f, ms)`, for a promise that settles later without a Rust future.
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(f: &Function, ms: f64) -> JsValue;
}

/// `globalThis[name]`, if it is there and reading it does not throw (a blocked
/// `localStorage` throws).
pub fn global(name: &str) -> Option<JsValue> {
    Reflect::get(&js_sys::global(), &JsValue::from_str(name))
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())
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
    let mut resolve = None;
    let promise = Promise::new(&mut |res, _| resolve = Some(res));
    // The executor runs synchronously, so `resolve` is always set.
    (promise, resolve.unwrap_or_else(|| Function::new_no_args("")))
}

/// A promise that resolves after `ms`.
pub fn sleep(ms: f64) -> Promise {
    let (promise, resolve) = promise_pair();
    set_timeout(&resolve, ms);
    promise
}

/// Runs `f` holding the Web Lock `name` (`if_available`: only when it is free; `f` then gets
/// `false` when it was not), keeping it `f`'s returned milliseconds longer, and resolves once
/// `f` has run. A lock manager that refuses (an opaque origin) runs `f` unlocked.
pub async fn with_lock(
    locks: &LockManager,
    name: &str,
    if_available: bool,
    f: impl FnOnce(bool) -> f64 + 'static,
) {
    let (ran, done) = promise_pair();
    let done2 = done.clone();
    let callback = Closure::once_into_js(move |lock: JsValue| -> JsValue {
        let hold = f(!lock.is_null());
        let _ = done2.call0(&JsValue::NULL);
        if hold > 0.0 { sleep(hold).into() } else { JsValue::UNDEFINED }
    });
    let options = Object::new();
    if if_available {
        let _ = Reflect::set(&options, &"ifAvailable".into(), &JsValue::TRUE);
    }
    match locks.request(name, &options, callback.unchecked_ref()) {
        // A request that fails before granting (aborted, refused) must not leave start waiting.
        Ok(p) => wasm_bindgen_futures::spawn_local(async move {
            let _ = wasm_bindgen_futures::JsFuture::from(p).await;
            let _ = done.call0(&JsValue::NULL);
        }),
        Err(_) => {
            let _ = done.call0(&JsValue::NULL);
        }
    }
    let _ = wasm_bindgen_futures::JsFuture::from(ran).await;
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
