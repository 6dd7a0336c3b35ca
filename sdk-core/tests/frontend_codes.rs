//! Every frontend's list of error codes is the core's ([`empmix_core::ErrorCode::ALL`]): the C
//! header's `EmpmixResult` and the browser package's `sdk-wasm/js/core.js`, which also holds the
//! protocol's paths and limits and the option names of the settings decoder
//! ([`empmix_core::frontend::js_module`]). After changing any of them:
//! `UPDATE_CODES=1 cargo test -p empmix-core --test frontend_codes` (the JS module) and
//! `UPDATE_HEADER=1 cargo test -p empmix-ffi --test header` (the C header).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails loudly on an unexpected error")]

use std::path::Path;

use empmix_core::ErrorCode;

fn workspace_file(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// The C name of a code: `EMPMIX_OK`, `EMPMIX_ERR_<NAME>`.
fn c_name(code: ErrorCode) -> String {
    match code {
        ErrorCode::Ok => "EMPMIX_OK".to_string(),
        c => format!("EMPMIX_ERR_{}", c.name().to_ascii_uppercase()),
    }
}

#[test]
fn the_c_header_lists_the_core_codes() {
    let header = std::fs::read_to_string(workspace_file("sdk-ffi/include/empmix.h")).unwrap();
    let start = header.find("enum EmpmixResult").expect("EmpmixResult in empmix.h");
    let body = &header[start..];
    let body = &body[body.find('{').unwrap() + 1..body.find("};").unwrap()];
    let listed: Vec<(String, u32)> = body
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("EMPMIX_"))
        .map(|l| {
            let (name, value) = l.trim_end_matches(',').split_once(" = ").unwrap();
            (name.to_string(), value.parse().unwrap())
        })
        .collect();
    let core: Vec<(String, u32)> = ErrorCode::ALL.iter().map(|c| (c_name(*c), *c as u32)).collect();
    assert_eq!(listed, core, "empmix.h's EmpmixResult drifted from empmix_core::ErrorCode");
}

#[test]
fn the_browser_module_is_the_cores() {
    let path = workspace_file("sdk-wasm/js/core.js");
    let generated = empmix_core::frontend::js_module();
    if std::env::var_os("UPDATE_CODES").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "sdk-wasm/js/core.js drifted from empmix_core::frontend::js_module: run UPDATE_CODES=1 cargo test -p empmix-core --test frontend_codes"
    );
}
