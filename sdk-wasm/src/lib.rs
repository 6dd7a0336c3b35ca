//! The EmpMix browser analytics SDK (`empmix-wasm`).
//!
//! A driver around the sans-IO [`empmix_core::Engine`], compiled to WebAssembly. Two builds
//! of it exist while the browser driver moves into Rust (issue 16):
//!
//! - the shipped package (`scripts/build.sh`, `pkg/`): raw exports (`src/wasm.rs`) wrapped by a
//!   hand-written ES module (`js/index.js`) that does the IO — `fetch`/`sendBeacon`, timers,
//!   `localStorage`, the page's lifecycle. The boundary is strings and numbers only.
//! - the web build (feature `web`, `scripts/build.sh --web`, `pkg-web/`): the IO in Rust too
//!   (`src/browser`: wasm-bindgen, web-sys, gloo-timers), its storage decisions in [`tabs`],
//!   behind a small loader (`js/loader.js`) whose client works before the wasm has loaded.
//!   It is not shipped yet: it is over the package's size ceiling (`docs/performance.md`).
//!
//! Nothing here links `serde` or formats with `std::fmt`, to keep the package small.
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
//! let request = driver.poll_transmit(1.75e12).unwrap();
//! assert!(request.body.contains("\"click\""));
//! ```

pub mod driver;
pub mod tabs;
mod text;

#[cfg(all(target_arch = "wasm32", feature = "web"))]
mod browser;
#[cfg(all(target_arch = "wasm32", feature = "web"))]
pub use browser::Client;
#[cfg(target_arch = "wasm32")]
mod heap;
#[cfg(all(target_arch = "wasm32", not(feature = "web")))]
#[doc(hidden)]
pub mod wasm;

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: heap::Allocator = heap::Allocator::new();
