//! `libempmix`: the EmpMix analytics SDK as a C library.
//!
//! iOS and Android apps (and anything else with a C FFI) link `libempmix.a` or
//! `libempmix.so` and include `include/empmix.h`, generated from this crate by a pinned
//! cbindgen. Underneath is the same engine as the Rust and browser SDKs: this crate is a thin
//! C ABI over the Rust client ([`empmix_native::Client`], the `empmix` crate in `sdk-native/`),
//! which runs one background thread per client for timers and HTTP. Apps that bring their own
//! networking link the engine-only `libempmix_engine` (`sdk-ffi-engine/`) instead.
//!
//! Every entry point runs inside a panic boundary, checks its pointers, and returns an
//! [`EmpmixResult`] whose values never change; `empmix_last_error_message` gives the detail of
//! the calling thread's last failure. See the header for the threading and memory contract, and
//! `docs/mobile.md` for Swift and Kotlin.
//!
//! ```c
//! #include "empmix.h"
//!
//! EmpmixConfigBuilder *config = empmix_config_new();
//! empmix_config_set_ingest_key(config, "pk_live_…");
//! empmix_config_set_endpoint(config, "https://analytics.example");
//! empmix_config_set_data_dir(config, app_data_dir); /* survives restarts and crashes */
//! empmix_config_set_app(config, "Conference App", "2.4.0", "118");
//! empmix_config_set_os(config, "iOS", "17.5");
//! EmpmixClient *client = NULL;
//! EmpmixResult rc = empmix_client_create(config, &client);
//! empmix_config_free(config);
//! if (rc != EMPMIX_OK) { /* empmix_last_error_message */ }
//! empmix_page_view(client, "app://conf/abc", "abc", NULL);
//! empmix_track(client, "ticket_viewed", "{\"tier\":\"vip\"}");
//! empmix_enter_background(client, 2000); /* from the app's lifecycle callback */
//! empmix_shutdown(client, 5000);
//! empmix_client_free(client);
//! ```
//!
//! (The example is C: the crate builds only a `cdylib` and a `staticlib`, so its examples and
//! tests are the C programs in `tests/c/`, compiled and run by `tests/c_programs.rs`.)

mod client;
mod config;

use std::ffi::c_char;

pub use client::{EmpmixClient, EmpmixConfig, EmpmixStats};
pub use config::EmpmixConfigBuilder;
pub use empmix_ffi_boundary::EmpmixResult;

/// A static, NUL-terminated message for a result code (unknown codes get a generic message).
#[unsafe(no_mangle)]
pub extern "C" fn empmix_result_message(code: u32) -> *const c_char {
    empmix_ffi_boundary::result_message(code)
}

/// Copies the calling thread's last error detail into `buf` (always NUL-terminated when
/// `len > 0`, truncated to fit) and returns the full detail's length without the NUL, so a
/// caller can retry with a larger buffer. Returns 0 when this thread has had no failure.
/// `buf` may be NULL (with any `len`) to ask for the length only.
///
/// # Safety
/// `buf` is NULL or writable for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_last_error_message(buf: *mut c_char, len: usize) -> usize {
    // SAFETY: forwarded contract.
    std::panic::catch_unwind(|| unsafe { empmix_ffi_boundary::last_error_into(buf, len) }).unwrap_or(0)
}

/// Frees a string the library returned. NULL is ignored.
///
/// # Safety
/// `s` is NULL or a string returned by this library, not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_string_free(s: *mut c_char) {
    // SAFETY: forwarded contract (every string this library returns is made by
    // `empmix_ffi_boundary::write_string`).
    unsafe { empmix_ffi_boundary::string_free(s) }
}

/// The library version, for example "0.1.0" (the same as `EMPMIX_VERSION`).
#[unsafe(no_mangle)]
pub extern "C" fn empmix_version() -> *const c_char {
    const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    VERSION.as_ptr().cast()
}
