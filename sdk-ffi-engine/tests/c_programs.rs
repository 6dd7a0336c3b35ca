//! The engine ABI from a real foreign caller: `tests/c/engine_seed.c`, compiled with the system
//! C compiler against the committed header and the built library (shared and static), drives
//! three engines through the seed chain and a persisted engine through a "crash" and restart
//! with a tiny blocking HTTP client against a real `empmix-server`, under valgrind when it is
//! installed (required under `CI=true`); and where a body carries its context, by the program
//! `tests/c/engine_context.c`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails loudly on an unexpected error")]

#[path = "../../sdk-ffi/tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};

use common::{Run, assert_context_placement, assert_seed_chain, env_for, start_server, wait_for_summary};

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Compiles `tests/c/<name>.c` (with libempmix's assertion helpers, `expect.h`).
fn compile(name: &str, static_link: bool, out_dir: &Path) -> PathBuf {
    common::compile_program(crate_dir(), ("empmix-ffi-engine", "empmix_engine"), name, static_link, out_dir)
}

#[test]
fn a_c_host_drives_engines_through_the_seed_chain_and_a_restart_shared_and_static() {
    let build = tempfile::tempdir().unwrap();
    for (static_link, conference) in [(false, "conf-engine-c"), (true, "conf-engine-c-static")] {
        let data = tempfile::tempdir().unwrap();
        let server = start_server(data.path());
        let exe = compile("engine_seed", static_link, build.path());
        // valgrind checks the shared build; the static one runs as it is.
        let out = Run { exe: &exe, args: vec![], env: env_for(&server, conference) }.output(!static_link);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("ENGINE_C_OK"), "{stdout}");
        assert!(stdout.contains("PERSIST_SENT 40"), "{stdout}");
        assert_seed_chain(&server, conference, &stdout);
        let persisted = format!("{conference}-persist");
        let summary = wait_for_summary(&server, &persisted, |s| s["pv"] == 40);
        assert_eq!(summary["pv"], 40, "every stored event once");
    }
}

#[test]
fn a_c_host_gets_bodies_with_the_context_once_per_request_or_in_every_event() {
    let build = tempfile::tempdir().unwrap();
    let exe = compile("engine_context", false, build.path());
    for shared in [true, false] {
        let env = vec![("EMPMIX_SHARED_CONTEXT", if shared { "1" } else { "0" }.to_string())];
        let out = Run { exe: &exe, args: vec![], env }.output(true);
        let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(body["events"].as_array().unwrap().len(), 3, "{body}");
        assert_context_placement(&body, shared);
    }
}
