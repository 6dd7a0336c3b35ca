//! The panic boundary and argument conversion every entry point goes through.

use std::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::{EmpmixResult, Failure, set_last_error};

/// Runs an entry point's body: a panic is caught and becomes `EmpmixErrPanic`, an error is
/// recorded for `empmix_last_error_message` and returned as its code.
pub(crate) fn guard(body: impl FnOnce() -> Result<(), Failure>) -> EmpmixResult {
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
pub(crate) unsafe fn required_str<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::new(EmpmixResult::NullArgument, format!("{what} is NULL")));
    }
    // SAFETY: non-NULL and NUL-terminated per the contract above.
    let bytes = unsafe { CStr::from_ptr(ptr) };
    bytes.to_str().map_err(|e| Failure::new(EmpmixResult::InvalidUtf8, format!("{what} is not UTF-8: {e}")))
}

/// An optional string argument (NULL means absent).
///
/// # Safety
/// As [`required_str`].
pub(crate) unsafe fn optional_str<'a>(ptr: *const c_char, what: &str) -> Result<Option<&'a str>, Failure> {
    if ptr.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract.
        unsafe { required_str(ptr, what) }.map(Some)
    }
}

/// Writes an owned C string to an out-parameter; the caller frees it with
/// `empmix_string_free`.
///
/// # Safety
/// `out` is a valid, writable pointer (checked non-NULL before by the caller).
pub(crate) unsafe fn write_string(out: *mut *mut c_char, value: &str) {
    let c = std::ffi::CString::new(value.replace('\0', "")).unwrap_or_default();
    // SAFETY: per the contract.
    unsafe { *out = c.into_raw() };
}
