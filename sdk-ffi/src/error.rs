//! Result codes and the per-thread last error.

use std::cell::RefCell;
use std::ffi::{CString, c_char};

/// The result of every call: the core's [`ErrorCode`](empmix_core::ErrorCode), whose numbers
/// never change meaning and are never reused. The header's `enum EmpmixResult` is generated from
/// [`empmix_core::ErrorCode::ALL`] by `tests/header.rs`.
pub use empmix_core::ErrorCode as EmpmixResult;

/// A failed call: its code and the detail kept for `empmix_last_error_message`.
#[derive(Debug)]
pub(crate) struct Failure {
    pub code: EmpmixResult,
    pub detail: String,
}

impl Failure {
    pub fn new(code: EmpmixResult, detail: impl Into<String>) -> Self {
        Failure { code, detail: detail.into() }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// Records the detail of this thread's last failure.
pub(crate) fn set_last_error(detail: &str) {
    // Interior NULs cannot be represented in a C string; replace them.
    let text = CString::new(detail.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|slot| *slot.borrow_mut() = Some(text));
}

/// Copies this thread's last error detail into `buf` (NUL-terminated, truncated to fit).
/// Returns the length the full message needs, without the NUL, so a caller can retry with a
/// larger buffer; 0 when there is no error detail.
pub(crate) fn last_error_into(buf: *mut c_char, len: usize) -> usize {
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
