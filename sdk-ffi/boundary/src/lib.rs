//! The boundary both EmpMix C libraries share: `libempmix` (`sdk-ffi`, the batteries-included
//! client) and `libempmix_engine` (`sdk-ffi-engine`, the engine a host drives with its own
//! networking). One rule, one place:
//!
//! - [`guard`] runs every entry point's body: a panic becomes `EMPMIX_ERR_PANIC`, an error is
//!   kept for the thread's last-error call and returned as its stable code
//!   ([`empmix_core::ErrorCode`]);
//! - [`required_str`], [`optional_str`] and [`properties`] turn C arguments into Rust values,
//!   with NULL, bad UTF-8 and bad JSON as codes, never as crashes;
//! - [`write_string`] hands an owned string to C;
//! - [`EmpmixStats`] is the counters struct both headers declare;
//! - [`result_message`], [`last_error_into`] and [`string_free`] are the bodies of each
//!   library's `*_result_message`, `*_last_error_message` and `*_string_free` (written out in
//!   each library, under its own names, so that cbindgen sees them);
//! - with the `header` feature, `header::generate` and `header::check` are the cbindgen run
//!   both drift tests use.
//!
//! ```
//! use empmix_ffi_boundary::{EmpmixResult, Failure, guard, required_str};
//!
//! /// An entry point: checks its argument, never unwinds into C.
//! unsafe extern "C" fn name_length(name: *const std::ffi::c_char, out: *mut usize) -> EmpmixResult {
//!     guard(|| {
//!         // SAFETY: the caller passes NULL or a NUL-terminated string.
//!         let name = unsafe { required_str(name, "name") }?;
//!         if out.is_null() {
//!             return Err(Failure::new(EmpmixResult::NullArgument, "out is NULL"));
//!         }
//!         // SAFETY: checked non-NULL; the caller passes writable memory.
//!         unsafe { *out = name.len() };
//!         Ok(())
//!     })
//! }
//!
//! let mut len = 0;
//! assert_eq!(unsafe { name_length(c"page_view".as_ptr(), &mut len) }, EmpmixResult::Ok);
//! assert_eq!(len, 9);
//! assert_eq!(unsafe { name_length(std::ptr::null(), &mut len) }, EmpmixResult::NullArgument);
//! ```

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use empmix_core::{Properties, Stats};

#[cfg(feature = "header")]
pub mod header;

/// The result of every call: the core's [`ErrorCode`](empmix_core::ErrorCode), whose numbers
/// never change meaning and are never reused. Both headers' `enum EmpmixResult` is generated
/// from [`empmix_core::ErrorCode::ALL`] (see `header`).
pub use empmix_core::ErrorCode as EmpmixResult;

/// A failed call: its code and the detail kept for the last-error call.
#[derive(Debug)]
pub struct Failure {
    /// The code returned to C.
    pub code: EmpmixResult,
    /// The detail for the thread's last error.
    pub detail: String,
}

impl Failure {
    /// A failure with this code and detail.
    pub fn new(code: EmpmixResult, detail: impl Into<String>) -> Self {
        Failure { code, detail: detail.into() }
    }

    /// A NULL where a pointer is required.
    pub fn null(what: &str) -> Self {
        Failure::new(EmpmixResult::NullArgument, format!("{what} is NULL"))
    }
}

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// Records the detail of this thread's last failure.
pub fn set_last_error(detail: &str) {
    // Interior NULs cannot be represented in a C string; replace them.
    let text = CString::new(detail.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|slot| *slot.borrow_mut() = Some(text));
}

/// Copies this thread's last error detail into `buf` (NUL-terminated, truncated to fit).
/// Returns the length the full message needs, without the NUL, so a caller can retry with a
/// larger buffer; 0 when there is no error detail.
///
/// # Safety
/// `buf` is NULL or writable for `len` bytes.
pub unsafe fn last_error_into(buf: *mut c_char, len: usize) -> usize {
    LAST_ERROR.with(|slot| {
        let slot = slot.borrow();
        let Some(msg) = slot.as_ref() else {
            if !buf.is_null() && len > 0 {
                // SAFETY: the caller gives a writable buffer of `len` > 0 bytes.
                unsafe { *buf = 0 };
            }
            return 0;
        };
        let bytes = msg.as_bytes();
        if !buf.is_null() && len > 0 {
            let n = bytes.len().min(len - 1);
            // SAFETY: the caller gives a writable buffer of `len` bytes; we write n + 1 <= len.
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr().cast::<c_char>(), buf, n);
                *buf.add(n) = 0;
            }
        }
        bytes.len()
    })
}

/// Runs an entry point's body: a panic is caught and becomes `EmpmixResult::Panic`, an error
/// is recorded for the last-error call and returned as its code.
pub fn guard(body: impl FnOnce() -> Result<(), Failure>) -> EmpmixResult {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => EmpmixResult::Ok,
        Ok(Err(failure)) => {
            set_last_error(&failure.detail);
            failure.code
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            set_last_error(&format!("internal error: {what}"));
            EmpmixResult::Panic
        }
    }
}

/// A required string argument.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that stays valid for the call.
pub unsafe fn required_str<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: non-NULL and NUL-terminated per the contract above.
    let bytes = unsafe { CStr::from_ptr(ptr) };
    bytes.to_str().map_err(|e| Failure::new(EmpmixResult::InvalidUtf8, format!("{what} is not UTF-8: {e}")))
}

/// An optional string argument (NULL means absent).
///
/// # Safety
/// As [`required_str`].
pub unsafe fn optional_str<'a>(ptr: *const c_char, what: &str) -> Result<Option<&'a str>, Failure> {
    if ptr.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract.
        unsafe { required_str(ptr, what) }.map(Some)
    }
}

/// Properties from a JSON object string; NULL is no properties when `required` is false.
///
/// # Safety
/// As [`required_str`].
pub unsafe fn properties(json: *const c_char, required: bool) -> Result<Properties, Failure> {
    // SAFETY: forwarded.
    let text = unsafe { optional_str(json, "properties_json") }?;
    match text {
        None if required => Err(Failure::null("properties_json")),
        None => Ok(Properties::new()),
        Some(text) => Properties::from_json(text).map_err(|e| {
            Failure::new(EmpmixResult::InvalidJson, format!("properties_json must be a JSON object: {e}"))
        }),
    }
}

/// Writes an owned C string to an out-parameter; the caller frees it with the library's
/// `*_string_free`.
///
/// # Safety
/// `out` is a valid, writable pointer (checked non-NULL before by the caller).
pub unsafe fn write_string(out: *mut *mut c_char, value: &str) {
    let c = CString::new(value.replace('\0', "")).unwrap_or_default();
    // SAFETY: per the contract.
    unsafe { *out = c.into_raw() };
}

/// Clears out-parameters to NULL, so they stay NULL on failure; `EMPMIX_ERR_NULL_ARGUMENT` when
/// one of them is NULL (the others are cleared all the same).
///
/// # Safety
/// Each pointer is NULL or writable.
pub unsafe fn clear_outs<T>(outs: &[(*mut *mut T, &str)]) -> Result<(), Failure> {
    for (out, _) in outs {
        if !out.is_null() {
            // SAFETY: non-NULL; writable per the contract.
            unsafe { **out = std::ptr::null_mut() };
        }
    }
    match outs.iter().find(|(out, _)| out.is_null()) {
        Some((_, what)) => Err(Failure::null(what)),
        None => Ok(()),
    }
}

/// Writes `value` to a required out-parameter.
///
/// # Safety
/// `out` is NULL or writable.
pub unsafe fn write_out<T>(out: *mut T, what: &str, value: T) -> Result<(), Failure> {
    if out.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: checked non-NULL; writable per the contract.
    unsafe { out.write(value) };
    Ok(())
}

/// The engine's [`TrackError`](empmix_core::TrackError) as a failure with its stable code.
pub fn track_failure(e: &empmix_core::TrackError) -> Failure {
    Failure::new(EmpmixResult::from(e), e.to_string())
}

/// Counters of a client or engine, as returned by `empmix_stats` and `empmix_engine_stats`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmpmixStats {
    /// Events waiting to be sent.
    pub queued: u64,
    /// Events in requests awaiting an answer.
    pub in_flight: u64,
    /// Events delivered.
    pub delivered: u64,
    /// Event sends that failed and were scheduled again.
    pub retried: u64,
    /// Events dropped because the queue was full.
    pub dropped_queue_full: u64,
    /// Events dropped because they were older than the maximum age (7 days).
    pub dropped_expired: u64,
    /// Events dropped because they were too large.
    pub dropped_too_large: u64,
    /// Events the server refused.
    pub dropped_rejected: u64,
    /// Events dropped by opting out.
    pub dropped_opted_out: u64,
    /// Events unsent when a client stopped that were in memory only (no persistence
    /// directory, or a log that could not take them: a full disk).
    pub dropped_lost: u64,
}

impl From<Stats> for EmpmixStats {
    fn from(s: Stats) -> Self {
        EmpmixStats {
            queued: s.queued as u64,
            in_flight: s.in_flight as u64,
            delivered: s.delivered,
            retried: s.retried,
            dropped_queue_full: s.dropped.queue_full,
            dropped_expired: s.dropped.expired,
            dropped_too_large: s.dropped.too_large,
            dropped_rejected: s.dropped.rejected,
            dropped_opted_out: s.dropped.opted_out,
            dropped_lost: s.dropped.lost,
        }
    }
}

/// The static, NUL-terminated message for a result code (unknown codes get a generic message).
pub fn result_message(code: u32) -> *const c_char {
    match EmpmixResult::from_u32(code) {
        Some(r) => r.message_c().as_ptr(),
        None => c"unknown result code".as_ptr(),
    }
}

/// Frees a value the library handed out with `Box::into_raw` (a handle, a configuration, a
/// request). NULL is ignored; a panic while dropping it (a client's thread) stays here.
///
/// # Safety
/// `ptr` is NULL or from `Box::into_raw` of a `T`, not freed before and not used afterwards.
pub unsafe fn free_boxed<T>(ptr: *mut T) {
    if ptr.is_null() {
        return;
    }
    let _ = guard(|| {
        // SAFETY: made by `Box::into_raw`, freed once per the contract.
        drop(unsafe { Box::from_raw(ptr) });
        Ok(())
    });
}

/// Frees a string made by [`write_string`]. NULL is ignored.
///
/// # Safety
/// `s` is NULL or a string from [`write_string`], not freed before.
pub unsafe fn string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: made by `CString::into_raw` in `write_string`, freed once per the contract.
        drop(unsafe { CString::from_raw(s) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_and_failures_become_codes_with_details() {
        assert_eq!(guard(|| panic!("boom")), EmpmixResult::Panic);
        let mut buf = [0 as c_char; 64];
        // SAFETY: a writable buffer of its length.
        let n = unsafe { last_error_into(buf.as_mut_ptr(), buf.len()) };
        // SAFETY: NUL-terminated by `last_error_into`.
        let text = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
        assert_eq!(text, "internal error: boom");
        assert_eq!(n, text.len());
        assert_eq!(guard(|| Err(Failure::null("x"))), EmpmixResult::NullArgument);
        // SAFETY: NULL asks for the length only.
        assert_eq!(unsafe { last_error_into(std::ptr::null_mut(), 0) }, "x is NULL".len());
    }

    #[test]
    fn out_parameters_are_cleared_even_when_one_is_null() {
        let mut kept = 1u8;
        let mut out: *mut u8 = &raw mut kept;
        // SAFETY: `out` is writable; the other is NULL.
        let result = unsafe { clear_outs(&[(&raw mut out, "out_code"), (std::ptr::null_mut(), "out_url")]) };
        assert_eq!(result.unwrap_err().detail, "out_url is NULL");
        assert!(out.is_null());
    }

    #[test]
    fn strings_and_json_are_checked() {
        let bad = [0xC3u8, 0x28, 0];
        // SAFETY: NUL-terminated buffers.
        unsafe {
            assert_eq!(required_str(bad.as_ptr().cast(), "s").unwrap_err().code, EmpmixResult::InvalidUtf8);
            assert_eq!(optional_str(std::ptr::null(), "s").unwrap(), None);
            assert_eq!(properties(c"[1]".as_ptr(), false).unwrap_err().code, EmpmixResult::InvalidJson);
            assert_eq!(properties(std::ptr::null(), true).unwrap_err().code, EmpmixResult::NullArgument);
            assert!(properties(std::ptr::null(), false).unwrap().is_empty());
        }
    }
}
