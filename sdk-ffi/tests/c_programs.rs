//! The C ABI from real foreign callers: C programs compiled with the system C compiler against
//! the committed header and the built library (shared and static), run against a real
//! `empmix-server` on loopback, under valgrind when it is installed (required under `CI=true`);
//! and Python `ctypes` as a second foreign caller.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails loudly on an unexpected error")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use empmix_server::loopback;
use empmix_server::{ProjectConfig, RunningServer, Server, ServerConfig};
use serde_json::Value;

const INGEST_KEY: &str = "pk_ffi_ingest";
const READ_KEY: &str = "sk_ffi_read";

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `target/<profile>`, holding `libempmix.so` and `libempmix.a` built from the current source.
///
/// `cargo test` builds only what Rust code links, and nothing links a cdylib, so the library
/// is built here (once per test binary; a no-op when it is up to date).
fn lib_dir() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().unwrap();
            // target/<profile>/deps/c_programs-<hash>
            let dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
            let target_dir = dir.parent().unwrap();
            let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            cargo.args(["build", "-p", "empmix-ffi", "--target-dir"]).arg(target_dir);
            if dir.file_name().is_some_and(|p| p == "release") {
                cargo.arg("--release");
            }
            let out = cargo.current_dir(crate_dir()).output().unwrap();
            assert!(
                out.status.success(),
                "building libempmix failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(dir.join("libempmix.so").exists(), "libempmix.so not built in {}", dir.display());
            dir
        })
        .clone()
}

fn valgrind() -> Option<PathBuf> {
    let found = Command::new("valgrind").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("valgrind is required under CI=true (apt-get install valgrind)");
    }
    found.then(|| PathBuf::from("valgrind"))
}

/// Compiles `tests/c/<name>.c`, linked against the shared library (or the static one).
fn compile(name: &str, static_link: bool, out_dir: &Path) -> PathBuf {
    let lib = lib_dir();
    let exe = out_dir.join(if static_link { format!("{name}-static") } else { name.to_string() });
    let mut cc = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()));
    cc.args(["-std=c11", "-D_DEFAULT_SOURCE", "-Wall", "-Wextra", "-Werror", "-g"])
        .arg("-I")
        .arg(crate_dir().join("include"))
        .arg(crate_dir().join("tests/c").join(format!("{name}.c")))
        .arg("-o")
        .arg(&exe);
    if static_link {
        cc.arg(lib.join("libempmix.a")).args(["-lpthread", "-ldl", "-lm"]);
    } else {
        cc.arg("-L").arg(&lib).arg("-lempmix").arg(format!("-Wl,-rpath,{}", lib.display())).arg("-lpthread");
    }
    let out = cc.output().expect("the system C compiler (cc) runs");
    assert!(out.status.success(), "compiling {name}.c failed:\n{}", String::from_utf8_lossy(&out.stderr));
    exe
}

struct Run<'a> {
    exe: &'a Path,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
}

impl Run<'_> {
    /// Runs to completion (under valgrind when `checked`), asserting success.
    fn output(&self, checked: bool) -> Output {
        let mut cmd = match valgrind().filter(|_| checked) {
            Some(vg) => {
                let mut c = Command::new(vg);
                c.args([
                    "--quiet",
                    "--error-exitcode=99",
                    "--leak-check=full",
                    "--errors-for-leak-kinds=definite",
                    "--show-leak-kinds=definite",
                ])
                .arg(self.exe);
                c
            }
            None => Command::new(self.exe),
        };
        cmd.args(&self.args).envs(self.env.iter().map(|(k, v)| (*k, v.as_str())));
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.exe.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

fn start_server(data: &Path) -> RunningServer {
    Server::start(ServerConfig::new(data).with_project(ProjectConfig::new("ffi", INGEST_KEY, READ_KEY)))
        .unwrap()
}

fn env_for(server: &RunningServer, conference: &str) -> Vec<(&'static str, String)> {
    vec![
        ("EMPMIX_ENDPOINT", server.base_url()),
        ("EMPMIX_INGEST_KEY", INGEST_KEY.to_string()),
        ("EMPMIX_CONFERENCE", conference.to_string()),
    ]
}

fn query(server: &RunningServer, path: &str) -> Value {
    let mut http = loopback::Client::new(server.addr());
    let response = http.get(path, &[("X-API-Key", READ_KEY)]).unwrap();
    assert_eq!(response.status, 200, "{path}: {}", response.text());
    response.json()
}

/// Polls the daily summary (summed over days) until `want` holds or the deadline passes.
fn wait_for_summary(server: &RunningServer, conference: &str, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = query(server, &format!("/api/analytics/daily?conference_id={conference}"));
        let mut sum = serde_json::Map::new();
        for row in rows.as_array().unwrap() {
            for key in ["pv", "uv", "registrations", "checkins", "shares", "share_conversions"] {
                let total =
                    sum.get(key).and_then(Value::as_u64).unwrap_or(0) + row[key].as_u64().unwrap_or(0);
                sum.insert(key.into(), total.into());
            }
        }
        let sum = Value::Object(sum);
        if want(&sum) || Instant::now() > deadline {
            return sum;
        }
        std::thread::yield_now();
    }
}

#[test]
fn seed_scenario_from_c_reaches_the_daily_summary_and_the_share_tree() {
    let data = tempfile::tempdir().unwrap();
    let build = tempfile::tempdir().unwrap();
    let server = start_server(data.path());
    let exe = compile("seed_scenario", false, build.path());
    let out = Run { exe: &exe, args: vec![], env: env_for(&server, "conf-c") }.output(true);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let code = |label: &str| {
        stdout.lines().find_map(|l| l.strip_prefix(label)).map(|c| c.trim().to_string()).unwrap()
    };
    let (code_a, code_b) = (code("CODE_A "), code("CODE_B "));

    let want = serde_json::json!({"pv": 3, "uv": 3, "registrations": 1, "checkins": 1, "shares": 2, "share_conversions": 1});
    let summary = wait_for_summary(&server, "conf-c", |s| *s == want);
    assert_eq!(summary, want);

    let tree = query(&server, "/api/analytics/shares/tree?conference_id=conf-c");
    let root = &tree["trees"][0];
    assert_eq!(root["share_code"], code_a.as_str());
    assert_eq!(root["channel"], "wechat");
    assert_eq!(root["credited_conversions"], 1, "A is credited: {tree}");
    let child = &root["children"][0];
    assert_eq!(child["share_code"], code_b.as_str());
    assert_eq!(child["opens"], 1);
    assert_eq!(child["direct_registrations"], 1);
    assert_eq!(child["credited_conversions"], 1, "B is credited: {tree}");
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
