//! The C ABI from real foreign callers: C programs compiled with the system C compiler against
//! the committed header and the built library (shared and static), run against a real
//! `empmix-server` on loopback, under valgrind when it is installed (required under `CI=true`);
//! and Python `ctypes` as a second foreign caller.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails loudly on an unexpected error")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use common::{Run, assert_context_placement, assert_seed_chain, env_for, start_server, wait_for_summary};

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `target/<profile>`, holding `libempmix.so` and `libempmix.a` built from the current source.
fn lib_dir() -> PathBuf {
    common::lib_dir("empmix-ffi", "empmix")
}

/// Compiles `tests/c/<name>.c`, linked against the shared library (or the static one).
fn compile(name: &str, static_link: bool, out_dir: &Path) -> PathBuf {
    common::compile_program(crate_dir(), ("empmix-ffi", "empmix"), name, static_link, out_dir)
}

#[test]
fn seed_scenario_from_c_reaches_the_daily_summary_and_the_share_tree() {
    let data = tempfile::tempdir().unwrap();
    let build = tempfile::tempdir().unwrap();
    let server = start_server(data.path());
    let exe = compile("seed_scenario", false, build.path());
    let out = Run { exe: &exe, args: vec![], env: env_for(&server, "conf-c") }.output(true);
    assert_seed_chain(&server, "conf-c", &String::from_utf8_lossy(&out.stdout));
}

/// A loopback ingest stand-in that keeps every request body (gunzipped) and answers each as
/// empmix-server does when it accepts all: for what the real server does not show, the
/// request as sent (the server merges a batch's context into its events before storing).
fn record_bodies() -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut reader = BufReader::new(stream.unwrap());
            let (mut length, mut gzip, mut line) = (0, false, String::new());
            while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                gzip |= lower.starts_with("content-encoding:") && lower.contains("gzip");
                line.clear();
            }
            let mut raw = vec![0; length];
            reader.read_exact(&mut raw).unwrap();
            let mut text = String::new();
            if gzip {
                flate2::read::GzDecoder::new(&raw[..]).read_to_string(&mut text).unwrap();
            } else {
                text = String::from_utf8(raw).unwrap();
            }
            let body: Value = serde_json::from_str(&text).unwrap();
            let answer =
                format!(r#"{{"accepted":{},"rejected":[]}}"#, body["events"].as_array().unwrap().len());
            kept.lock().unwrap().push(body);
            let mut stream = reader.into_inner();
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            )
            .unwrap();
        }
    });
    (url, bodies)
}

#[test]
fn a_c_client_sends_the_context_once_per_request_or_in_every_event() {
    let build = tempfile::tempdir().unwrap();
    let exe = compile("shared_context", false, build.path());
    for shared in [true, false] {
        let (url, bodies) = record_bodies();
        let env = vec![
            ("EMPMIX_ENDPOINT", url),
            ("EMPMIX_INGEST_KEY", "k".to_string()),
            ("EMPMIX_SHARED_CONTEXT", if shared { "1" } else { "0" }.to_string()),
        ];
        let out = Run { exe: &exe, args: vec![], env }.output(true);
        assert!(String::from_utf8_lossy(&out.stdout).contains("SHARED_CONTEXT_OK"));
        let bodies = bodies.lock().unwrap();
        let events: usize = bodies.iter().map(|b| b["events"].as_array().unwrap().len()).sum();
        assert_eq!(events, 3, "{bodies:?}");
        for body in bodies.iter() {
            assert_context_placement(body, shared);
        }
    }
}

#[test]
fn many_c_threads_track_on_one_client() {
    let data = tempfile::tempdir().unwrap();
    let build = tempfile::tempdir().unwrap();
    let server = start_server(data.path());
    let exe = compile("threads", false, build.path());
    Run { exe: &exe, args: vec![], env: env_for(&server, "conf-threads") }.output(true);
    let summary = wait_for_summary(&server, "conf-threads", |s| s["pv"] == 2000);
    assert_eq!(summary["pv"], 2000);
}

#[test]
fn bad_input_returns_codes_and_never_crashes_shared_and_static() {
    let build = tempfile::tempdir().unwrap();
    for static_link in [false, true] {
        let exe = compile("bad_input", static_link, build.path());
        // Nothing listens on port 9: the flush in the program must time out with a code.
        let env = vec![("EMPMIX_ENDPOINT", "http://127.0.0.1:9".to_string())];
        let out = Run { exe: &exe, args: vec![], env }.output(!static_link);
        assert!(String::from_utf8_lossy(&out.stdout).contains("BAD_INPUT_OK"));
    }
}

#[test]
fn a_c_process_killed_with_sigkill_sends_every_persisted_event_once_after_restart() {
    let data = tempfile::tempdir().unwrap();
    let build = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let server = start_server(data.path());
    let exe = compile("persist_child", false, build.path());
    let dir = store.path().to_string_lossy().to_string();

    // The tracker has no reachable server: every event waits on disk.
    let mut env = env_for(&server, "conf-persist");
    env[0].1 = "http://127.0.0.1:9".into();
    let mut child = Command::new(&exe)
        .args(["track", &dir, "150"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line.trim(), "READY");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let out =
        Run { exe: &exe, args: vec!["send".into(), dir.clone()], env: env_for(&server, "conf-persist") }
            .output(true);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("SENT 150"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let summary = wait_for_summary(&server, "conf-persist", |s| s["pv"] == 150);
    assert_eq!(summary["pv"], 150);
    // A third start finds nothing left to send: each event went out once.
    let out = Run { exe: &exe, args: vec!["send".into(), dir], env: env_for(&server, "conf-persist") }
        .output(false);
    assert!(String::from_utf8_lossy(&out.stdout).contains("SENT 0"));
    assert_eq!(wait_for_summary(&server, "conf-persist", |_| true)["pv"], 150);
}

#[test]
fn python_ctypes_tracks_end_to_end() {
    let data = tempfile::tempdir().unwrap();
    let server = start_server(data.path());
    let lib = lib_dir().join("libempmix.so");
    let out = Command::new("python3")
        .arg(crate_dir().join("tests/python/track.py"))
        .arg(&lib)
        .envs(env_for(&server, "conf-python"))
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("PYTHON_OK 0.1.0"));
    let summary = wait_for_summary(&server, "conf-python", |s| s["pv"] == 1);
    assert_eq!(summary["pv"], 1);
}
