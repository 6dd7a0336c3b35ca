//! The EmpMix browser analytics SDK (`empmix-wasm`).
//!
//! A thin driver around the sans-IO [`empmix_core::Engine`], compiled to WebAssembly and
//! wrapped by a small hand-written ES module (`js/index.js`, published as `pkg/index.js`). The
//! JavaScript side does all IO — `fetch`/`sendBeacon`, timers, `localStorage`, reading the
//! browser context — and the wasm side makes every decision through the engine. The boundary
//! is strings and numbers only: properties cross as `JSON.stringify` text, persistence and
//! requests come back as encoded strings. Nothing here links `serde` or formats with
//! `std::fmt`, to keep the package small (its measured size is in `docs/performance.md`).
//!
//! Build it with `sdk-wasm/scripts/build.sh` (output in `sdk-wasm/pkg/`), then in a page:
//!
//! ```js
//! import { EmpMix } from './pkg/index.js';
//! const mix = await EmpMix.init({ apiKey: 'ingest-key', endpoint: 'https://analytics.example' });
//! mix.track('button_click', { button: 'register', position: 2 });
//! mix.identify('user-42');
//! const { code, url } = mix.createShare({ channel: 'wechat', url: location.href });
//! await mix.flush();
//! ```
//!
//! The same driver in Rust (what the wasm exports call, also usable on the host):
//!
//! ```
//! use empmix_wasm::driver::{Driver, configure, setting_message};
//!
//! // The page's options, as `init` hands them over: decoded by the core, a bad one named.
//! let bad = configure(r#"{"flushAt":"20"}"#, true).unwrap_err();
//! assert_eq!(setting_message(&bad), "flushAt must be a whole number above 0");
//! let config = configure(r#"{"flushAt":20,"flushInterval":5000,"maxQueue":1000}"#, true).unwrap();
//! let mut driver = Driver::start(1.75e12, 7, config, "", Vec::new());
//! assert_eq!(driver.track(1.75e12, "click", r#"{"button":"register"}"#), 0);
//! driver.flush();
//! let body = driver.poll_transmit(1.75e12);
//! assert!(body.contains("\"click\""));
//! ```

pub mod driver;
pub mod tabs;

#[cfg(target_arch = "wasm32")]
mod heap;
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod wasm;

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: heap::Allocator = heap::Allocator::new();
