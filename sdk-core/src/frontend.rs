//! What a frontend would otherwise copy from the core by hand, as generated source.
//!
//! The browser package's `sdk-wasm/js/core.js` is [`js_module`]: the error codes
//! ([`crate::ErrorCode`]), the protocol's paths, names and limits ([`crate::protocol`]) and the
//! length of an event id's text. (Its options need no list: `init` hands them all to the
//! core's settings decoder, [`crate::settings`], which knows their names.)
//! `sdk-core/tests/frontend_codes.rs` keeps the committed file equal to it (`UPDATE_CODES=1`
//! rewrites it), so a change here reaches the JavaScript or fails that test. The C header's
//! codes are checked by the same test.

use core::fmt::Write;

use crate::attribution::ShareCode;
use crate::attribution::url::SHARE_PARAM;
use crate::code::ErrorCode;
use crate::protocol::{API_KEY_HEADER, API_KEY_PARAM, BEACON_MAX_BYTES, EVENTS_PATH, TRACK_PATH};

/// Length of an event id's text (a hyphenated UUID), as drivers slice it out of storage ops.
pub const EVENT_ID_LEN: usize = uuid::fmt::Hyphenated::LENGTH;

/// A JavaScript string literal (single quotes).
fn js_str(s: &str) -> String {
    let mut out = String::from("'");
    for c in s.chars() {
        if matches!(c, '\'' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// The browser package's `js/core.js`: plain `const` declarations that `scripts/build.sh` puts
/// before `js/index.js` (terser inlines them).
pub fn js_module() -> String {
    let mut out = String::from(
        "// Generated from the core (empmix_core::frontend::js_module); do not edit by hand.\n\
         // UPDATE_CODES=1 cargo test -p empmix-core --test frontend_codes rewrites it.\n\
         // The error codes (sdk-core/src/code.rs) and their names by number:\n",
    );
    for code in ErrorCode::ALL {
        let _ = writeln!(out, "const E_{} = {};", code.name().to_ascii_uppercase(), *code as u32);
    }
    let names: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.name()).collect();
    // Pure, so a module that never names a code (the web build's loader) drops the list.
    let _ = writeln!(out, "const ERRORS = /*#__PURE__*/ {}.split(',');", js_str(&names.join(",")));
    out.push_str("// The protocol (sdk-core/src/protocol/mod.rs, docs/protocol.md):\n");
    for (name, value) in [
        ("EVENTS_PATH", EVENTS_PATH),
        ("TRACK_PATH", TRACK_PATH),
        ("API_KEY_HEADER", API_KEY_HEADER),
        ("API_KEY_PARAM", API_KEY_PARAM),
        ("SHARE_PARAM", SHARE_PARAM),
    ] {
        let _ = writeln!(out, "const {name} = {};", js_str(value));
    }
    let _ = writeln!(out, "const BEACON_MAX_BYTES = {BEACON_MAX_BYTES};");
    let _ = writeln!(out, "const EVENT_ID_LEN = {EVENT_ID_LEN};");
    // The loader makes share codes itself (crate::Engine::share_with_code).
    let alphabet = core::str::from_utf8(ShareCode::ALPHABET).unwrap_or_default();
    let _ = writeln!(out, "const SHARE_ALPHABET = {};", js_str(alphabet));
    let _ = writeln!(out, "const SHARE_CODE_LEN = {};", ShareCode::GENERATED_LEN);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_and_the_constants_are_there() {
        assert_eq!(js_str(r"a'b\c"), r"'a\'b\\c'");
        let js = js_module();
        assert!(js.contains("const EVENTS_PATH = '/api/analytics/events';"), "{js}");
        assert!(js.contains("const EVENT_ID_LEN = 36;"), "{js}");
    }
}
