//! The error codes every frontend shows its callers: one stable number per condition.
//!
//! The C library returns these numbers as `EmpmixResult` (its `enum` in `empmix.h` is
//! generated from [`ErrorCode::ALL`]), and the browser package's wasm returns them to its
//! JavaScript, which names them from `sdk-wasm/js/core.js`, also generated from this list
//! ([`crate::frontend::js_module`]).
//! Tests in both frontends fail when their list drifts from this one.
//!
//! A code's number never changes and is never reused: new codes are added at the end.

use core::ffi::CStr;

use crate::TrackError;

macro_rules! error_codes {
    ($( $(#[doc = $doc:literal])+ $variant:ident = $value:literal, $name:literal, $message:literal; )+) => {
        /// One condition a caller can see, with its stable number (see the [module](self)).
        #[repr(u32)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[doc = $doc])+ $variant = $value, )+
        }

        impl ErrorCode {
            /// Every code, in the order of their numbers.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];

            /// The code's name in `snake_case`, as frontends spell it (`opted_out`).
            pub const fn name(self) -> &'static str {
                match self { $(ErrorCode::$variant => $name,)+ }
            }

            /// A short, static message for the code.
            pub const fn message(self) -> &'static str {
                match self { $(ErrorCode::$variant => $message,)+ }
            }

            /// [`message`](Self::message), NUL-terminated, for C.
            pub const fn message_c(self) -> &'static CStr {
                match self {
                    $(ErrorCode::$variant => match CStr::from_bytes_with_nul(concat!($message, "\0").as_bytes()) {
                        Ok(s) => s,
                        Err(_) => c"",
                    },)+
                }
            }

            /// The code's documentation (one line per doc line), which frontends copy into
            /// their generated lists.
            pub const fn doc(self) -> &'static str {
                match self { $(ErrorCode::$variant => concat!($($doc, "\n"),+),)+ }
            }
        }
    };
}

error_codes! {
    /// Success.
    Ok = 0, "ok", "ok";
    /// A required pointer argument was NULL.
    NullArgument = 1, "null_argument", "a required pointer argument was NULL";
    /// A string argument was not valid UTF-8.
    InvalidUtf8 = 2, "invalid_utf8", "a string argument was not valid UTF-8";
    /// A JSON argument was not valid JSON, or not an object where one is required.
    InvalidJson = 3, "invalid_json", "a JSON argument was invalid or not an object";
    /// A configuration value was out of range (see the last error for which).
    InvalidConfig = 4, "invalid_config", "a configuration value was out of range";
    /// The client was shut down; create a new one.
    ShutDown = 5, "shut_down", "the client was shut down";
    /// The user opted out; nothing was recorded.
    OptedOut = 6, "opted_out", "the user opted out of tracking";
    /// The operation did not finish within its timeout; it continues in the background.
    Timeout = 7, "timeout", "the operation timed out";
    /// An event name, user id or channel was empty, too long or had control characters.
    InvalidName = 8, "invalid_name", "a name or id was empty, too long or had control characters";
    /// A URL was not absolute.
    InvalidUrl = 9, "invalid_url", "a URL was not absolute";
    /// The queue is full and the overflow policy refused the event.
    QueueFull = 10, "queue_full", "the event queue is full";
    /// The event is larger than 32 KiB encoded.
    TooLarge = 11, "too_large", "the event is larger than 32 KiB";
    /// The persistence directory could not be used.
    Storage = 12, "storage", "the persistence directory could not be used";
    /// The background thread could not be started.
    Runtime = 13, "runtime", "the background thread could not be started";
    /// A bug inside the library was caught at the boundary; the call had no effect.
    Panic = 14, "panic", "internal error (caught panic)";
    /// The client is not running: not started yet, or called again from inside one of its
    /// own calls (browser).
    NotStarted = 15, "not_started", "the client is not started";
}

impl ErrorCode {
    /// The code with this number, if there is one.
    pub fn from_u32(value: u32) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| *c as u32 == value)
    }
}

impl From<&TrackError> for ErrorCode {
    fn from(e: &TrackError) -> ErrorCode {
        match e {
            TrackError::OptedOut => ErrorCode::OptedOut,
            TrackError::ShutDown => ErrorCode::ShutDown,
            TrackError::InvalidEvent(_) => ErrorCode::InvalidName,
            TrackError::TooLarge { .. } => ErrorCode::TooLarge,
            TrackError::QueueFull => ErrorCode::QueueFull,
            TrackError::InvalidUrl(_) => ErrorCode::InvalidUrl,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_dense_and_in_order() {
        for (i, code) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(*code as u32 as usize, i);
            assert_eq!(ErrorCode::from_u32(i as u32), Some(*code));
            assert_eq!(code.message_c().to_bytes(), code.message().as_bytes());
            assert!(!code.doc().trim().is_empty());
        }
        assert_eq!(ErrorCode::from_u32(ErrorCode::ALL.len() as u32), None);
    }
}
