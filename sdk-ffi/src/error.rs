//! Result codes and the per-thread last error.

use std::cell::RefCell;
use std::ffi::{CString, c_char};

/// The result of every call. Values never change meaning and are never reused: new codes are
/// added at the end.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmpmixResult {
    /// Success.
    EmpmixOk = 0,
    /// A required pointer argument was NULL.
    EmpmixErrNullArgument = 1,
    /// A string argument was not valid UTF-8.
    EmpmixErrInvalidUtf8 = 2,
    /// A JSON argument was not valid JSON, or not an object where one is required.
    EmpmixErrInvalidJson = 3,
    /// A configuration value was out of range (see the last error for which).
    EmpmixErrInvalidConfig = 4,
    /// The client was shut down; create a new one.
    EmpmixErrShutDown = 5,
    /// The user opted out; nothing was recorded.
    EmpmixErrOptedOut = 6,
    /// The operation did not finish within its timeout; it continues in the background.
    EmpmixErrTimeout = 7,
    /// An event name, user id or channel was empty, too long or had control characters.
    EmpmixErrInvalidName = 8,
    /// A URL was not absolute.
    EmpmixErrInvalidUrl = 9,
    /// The queue is full and the overflow policy refused the event.
    EmpmixErrQueueFull = 10,
    /// The event is larger than 32 KiB encoded.
    EmpmixErrTooLarge = 11,
    /// The persistence directory could not be used.
    EmpmixErrStorage = 12,
    /// The background thread could not be started.
    EmpmixErrRuntime = 13,
    /// A bug inside the library was caught at the boundary; the call had no effect.
    EmpmixErrPanic = 14,
}

impl EmpmixResult {
    /// A static message for the code.
    pub fn message(self) -> &'static std::ffi::CStr {
        match self {
            EmpmixResult::EmpmixOk => c"ok",
            EmpmixResult::EmpmixErrNullArgument => c"a required pointer argument was NULL",
            EmpmixResult::EmpmixErrInvalidUtf8 => c"a string argument was not valid UTF-8",
            EmpmixResult::EmpmixErrInvalidJson => c"a JSON argument was invalid or not an object",
            EmpmixResult::EmpmixErrInvalidConfig => c"a configuration value was out of range",
            EmpmixResult::EmpmixErrShutDown => c"the client was shut down",
            EmpmixResult::EmpmixErrOptedOut => c"the user opted out of tracking",
            EmpmixResult::EmpmixErrTimeout => c"the operation timed out",
            EmpmixResult::EmpmixErrInvalidName => {
                c"a name or id was empty, too long or had control characters"
            }
            EmpmixResult::EmpmixErrInvalidUrl => c"a URL was not absolute",
            EmpmixResult::EmpmixErrQueueFull => c"the event queue is full",
            EmpmixResult::EmpmixErrTooLarge => c"the event is larger than 32 KiB",
            EmpmixResult::EmpmixErrStorage => c"the persistence directory could not be used",
            EmpmixResult::EmpmixErrRuntime => c"the background thread could not be started",
            EmpmixResult::EmpmixErrPanic => c"internal error (caught panic)",
        }
    }
}

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
