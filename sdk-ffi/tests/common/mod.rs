//! What the foreign-caller tests of both C libraries share (`sdk-ffi/tests/c_programs.rs`,
//! `sdk-ffi-engine/tests/{c_programs,jvm}.rs`, the latter through `#[path]`): building a
//! library from the current source, compiling C against it, running under valgrind, a real
//! `empmix-server` on loopback, and the server-side checks of the seed scenario.
#![allow(dead_code, reason = "each test binary uses a part")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails loudly on an unexpected error")]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::Duration;

use empmix_server::loopback;
use empmix_server::{ProjectConfig, RunningServer, Server, ServerConfig};
use serde_json::Value;

pub const INGEST_KEY: &str = "pk_ffi_ingest";
pub const READ_KEY: &str = "sk_ffi_read";

/// Whether the run must have every tool (`CI=true`): a missing one fails instead of skipping.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `target/<profile>`, holding `lib<name>.so` and `lib<name>.a` of `package`, built from the
/// current source.
///
/// `cargo test` builds only what Rust code links, and nothing links a cdylib, so the library
/// is built here (once per package and test binary; a no-op when it is up to date).
pub fn lib_dir(package: &str, lib_name: &str) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(dir) = built.get_or_insert_with(HashMap::new).get(package) {
        return dir.clone();
    }
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test>-<hash>
    let dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let target_dir = dir.parent().unwrap();
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo.args(["build", "-p", package, "--target-dir"]).arg(target_dir);
    if dir.file_name().is_some_and(|p| p == "release") {
        cargo.arg("--release");
    }
    let out = cargo.output().unwrap();
    assert!(out.status.success(), "building {package} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let so = dir.join(format!("lib{lib_name}.so"));
    assert!(so.exists(), "{} not built", so.display());
    built.get_or_insert_with(HashMap::new).insert(package.to_string(), dir.clone());
    dir
}

pub fn valgrind() -> Option<PathBuf> {
    let found = Command::new("valgrind").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found && ci() {
        panic!("valgrind is required under CI=true (apt-get install valgrind)");
    }
    found.then(|| PathBuf::from("valgrind"))
}

/// A C compilation: sources, include folders, the library to link, and the output.
pub struct Cc<'a> {
    pub sources: Vec<PathBuf>,
    pub includes: Vec<PathBuf>,
    /// The library's folder and name (`empmix` for `libempmix`).
    pub lib: (&'a Path, &'a str),
    /// Link `lib<name>.a` instead of the shared library.
    pub static_link: bool,
    /// Build a shared library (`-shared -fPIC`) instead of a program.
    pub shared: bool,
    pub out: PathBuf,
}

impl Cc<'_> {
    /// Compiles with the system C compiler, strictly (`-Wall -Wextra -Werror`).
    pub fn compile(&self) -> PathBuf {
        let mut cc = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()));
        cc.args(["-std=c11", "-D_DEFAULT_SOURCE", "-Wall", "-Wextra", "-Werror", "-g"]);
        for dir in &self.includes {
            cc.arg("-I").arg(dir);
        }
        if self.shared {
            cc.args(["-shared", "-fPIC"]);
        }
        cc.args(&self.sources).arg("-o").arg(&self.out);
        let (dir, name) = self.lib;
        if self.static_link {
            cc.arg(dir.join(format!("lib{name}.a"))).args(["-lpthread", "-ldl", "-lm"]);
        } else {
            cc.arg("-L").arg(dir).arg(format!("-l{name}")).arg(format!("-Wl,-rpath,{}", dir.display()));
            cc.arg("-lpthread");
        }
        let out = cc.output().expect("the system C compiler (cc) runs");
        assert!(
            out.status.success(),
            "compiling {:?} failed:\n{}",
            self.sources,
            String::from_utf8_lossy(&out.stderr)
        );
        self.out.clone()
    }
}

/// Compiles the test program `<crate_dir>/tests/c/<name>.c` against the library `lib_name` of
/// `package` (shared, or static), with the crate's `include/` and this folder's `expect.h`.
pub fn compile_program(
    crate_dir: &Path,
    (package, lib_name): (&str, &str),
    name: &str,
    static_link: bool,
    out_dir: &Path,
) -> PathBuf {
    let lib = lib_dir(package, lib_name);
    Cc {
        sources: vec![crate_dir.join("tests/c").join(format!("{name}.c"))],
        includes: vec![
            crate_dir.join("include"),
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk-ffi/tests/c"),
        ],
        lib: (&lib, lib_name),
        static_link,
        shared: false,
        out: out_dir.join(if static_link { format!("{name}-static") } else { name.to_string() }),
    }
    .compile()
}

pub struct Run<'a> {
    pub exe: &'a Path,
    pub args: Vec<String>,
    pub env: Vec<(&'static str, String)>,
}

impl Run<'_> {
    /// Runs to completion (under valgrind when `checked`), asserting success.
    pub fn output(&self, checked: bool) -> Output {
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
        assert_success(&self.exe.display().to_string(), &out);
        out
    }
}

pub fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn server_config(data: &Path) -> ServerConfig {
    ServerConfig::new(data).with_project(ProjectConfig::new("ffi", INGEST_KEY, READ_KEY))
}

pub fn start_server(data: &Path) -> RunningServer {
    Server::start(server_config(data)).unwrap()
}

pub fn env_for(server: &RunningServer, conference: &str) -> Vec<(&'static str, String)> {
    vec![
        ("EMPMIX_ENDPOINT", server.base_url()),
        ("EMPMIX_INGEST_KEY", INGEST_KEY.to_string()),
        ("EMPMIX_CONFERENCE", conference.to_string()),
    ]
}

pub fn query(server: &RunningServer, path: &str) -> Value {
    let mut http = loopback::Client::new(server.addr());
    let response = http.get(path, &[("X-API-Key", READ_KEY)]).unwrap();
    assert_eq!(response.status, 200, "{path}: {}", response.text());
    response.json()
}

/// Polls the daily summary (summed over days) until `want` holds or 20 s pass; returns the
/// last sum read.
pub fn wait_for_summary(server: &RunningServer, conference: &str, want: impl Fn(&Value) -> bool) -> Value {
    let sum = || {
        let rows = query(server, &format!("/api/analytics/daily?conference_id={conference}"));
        let mut sum = serde_json::Map::new();
        for row in rows.as_array().unwrap() {
            for key in ["pv", "uv", "registrations", "checkins", "shares", "share_conversions"] {
                let total =
                    sum.get(key).and_then(Value::as_u64).unwrap_or(0) + row[key].as_u64().unwrap_or(0);
                sum.insert(key.into(), total.into());
            }
        }
        Value::Object(sum)
    };
    empmix_test_support::poll(Duration::from_secs(20), || Some(sum()).filter(|s| want(s))).unwrap_or_else(sum)
}

/// The server's view of the seed chain A → B → C in `conference`, after a program that printed
/// `CODE_A <code>` and `CODE_B <code>`: three visitors, one registration credited to both
/// sharers, B's share a child of A's.
pub fn assert_seed_chain(server: &RunningServer, conference: &str, stdout: &str) {
    let code = |label: &str| {
        stdout.lines().find_map(|l| l.strip_prefix(label)).map(|c| c.trim().to_string()).unwrap()
    };
    let (code_a, code_b) = (code("CODE_A "), code("CODE_B "));

    let want = serde_json::json!({"pv": 3, "uv": 3, "registrations": 1, "checkins": 1, "shares": 2, "share_conversions": 1});
    let summary = wait_for_summary(server, conference, |s| *s == want);
    assert_eq!(summary, want);

    let tree = query(server, &format!("/api/analytics/shares/tree?conference_id={conference}"));
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

/// Checks where a request body carries its events' context: with `shared`, once, as the
/// batch's `context`, and in no event; without, in every event and not in the batch. Either
/// way each event ends up with the library's context (the server merges a batch's into each).
pub fn assert_context_placement(body: &Value, shared: bool) {
    let events = body["events"].as_array().unwrap();
    assert!(!events.is_empty(), "{body}");
    if shared {
        assert!(body["context"]["library"]["name"].is_string(), "no batch context: {body}");
        assert!(events.iter().all(|e| e.get("context").is_none()), "an event kept its context: {body}");
    } else {
        assert!(body.get("context").is_none(), "a batch context: {body}");
        assert!(
            events.iter().all(|e| e["context"]["library"]["name"].is_string()),
            "an event without its context: {body}"
        );
    }
}
