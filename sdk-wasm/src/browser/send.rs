//! Requests: `fetch` with a gzip body where the browser has `CompressionStream` (it compresses
//! off the page's JavaScript), `keepalive` for a tab being hidden, and `sendBeacon` for a page
//! going away (a beacon cannot carry `Content-Encoding`, so its body stays plain JSON).

use js_sys::{Array, Date, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, Headers, RequestInit, Response};

use empmix_core::protocol::API_KEY_HEADER;

use super::js::{self, Compressor};
use super::{Shared, pump};
use crate::driver::Request;

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

/// Sends `request` and hands its outcome to the engine.
pub async fn send(page: Shared, request: Request, mode: Mode) {
    let (url, key, gzip) = match page.try_borrow() {
        Ok(p) => (p.url.clone(), p.key.clone(), p.gzip && mode == Mode::Normal),
        Err(_) => return,
    };
    let (status, retry_after, body) = post(&url, &key, request.body, gzip, mode == Mode::Keepalive)
        .await
        .unwrap_or((0, String::new(), String::new()));
    if let Ok(mut p) = page.try_borrow_mut() {
        p.driver.handle_response(Date::now(), request.handle, status, &retry_after, &body);
    }
    pump(&page);
}

/// The status (0: no answer), `Retry-After` as sent, and the body of a `POST`.
async fn post(
    url: &str,
    key: &str,
    body: String,
    gzip: bool,
    keepalive: bool,
) -> Result<(u32, String, String), JsValue> {
    let headers = Headers::new()?;
    headers.set("Content-Type", "application/json")?;
    headers.set(API_KEY_HEADER, key)?;
    let init = RequestInit::new();
    init.set_method("POST");
    if keepalive {
        // web-sys's RequestInit has no setter for it.
        Reflect::set(&init, &"keepalive".into(), &JsValue::TRUE)?;
    }
    if gzip {
        headers.set("Content-Encoding", "gzip")?;
        init.set_body(&compress(&body).await?);
    } else {
        init.set_body(&JsValue::from_str(&body));
    }
    drop(body);
    init.set_headers(&headers);
    let response: Response = JsFuture::from(js::fetch(url, &init)?).await?.unchecked_into();
    let retry_after = response.headers().get("Retry-After")?.unwrap_or_default();
    let mut text = JsFuture::from(response.text()?).await?.as_string().unwrap_or_default();
    if text.len() > MAX_RESPONSE_CHARS {
        let mut end = MAX_RESPONSE_CHARS;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    Ok((u32::from(response.status()), retry_after, text))
}

/// `body` gzipped by the browser, as an `ArrayBuffer`.
async fn compress(body: &str) -> Result<JsValue, JsValue> {
    let blob = Blob::new_with_str_sequence(&Array::of1(&JsValue::from_str(body)))?;
    let gzipped = blob.stream().pipe_through(Compressor::new("gzip")?.unchecked_ref());
    let response = Response::new_with_opt_readable_stream(Some(&gzipped))?;
    JsFuture::from(response.array_buffer()?).await
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
