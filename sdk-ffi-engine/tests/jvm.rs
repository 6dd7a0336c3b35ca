//! The JVM binding (`jvm/`) as Android would use it, against a real `empmix-server`: the JNI
//! glue compiled with the system C compiler against the JDK's `jni.h` and linked to
//! `libempmix_engine`, the Java sources compiled with `javac`, and `java` processes running
//! `tests/jvm/EngineJvmTest.java`. The Java driver sends with `java.net.http.HttpClient`,
//! stores in a file and keeps its timer on a `ScheduledExecutorService`.
//!
//! Without a JDK the tests say so and pass; under `CI=true` a missing JDK fails them
//! (`scripts/test.sh` installs `openjdk-17-jdk-headless`).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails loudly on an unexpected error")]

#[path = "../../sdk-ffi/tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::OnceLock;

use common::{Cc, assert_seed_chain, assert_success, env_for, server_config, start_server, wait_for_summary};
use empmix_server::{RunningServer, Server, loopback};

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The JDK's home (holding `bin/javac` and `include/jni.h`): `JAVA_HOME`, else where `javac` on
/// the `PATH` really lives.
fn jdk_home() -> Option<PathBuf> {
    let from_env = std::env::var_os("JAVA_HOME").map(PathBuf::from);
    let from_path = || {
        let paths = std::env::var_os("PATH")?;
        let javac = std::env::split_paths(&paths).map(|d| d.join("javac")).find(|p| p.exists())?;
        Some(javac.canonicalize().ok()?.parent()?.parent()?.to_path_buf())
    };
    from_env
        .filter(|h| h.join("include/jni.h").exists())
        .or_else(from_path)
        .filter(|h| h.join("include/jni.h").exists())
}

/// The compiled binding: the glue library's folder, the classes, and `java`.
struct Binding {
    lib_dir: PathBuf,
    classes: PathBuf,
    java: PathBuf,
}

/// Builds the binding once per test binary, under `target/<profile>/jvm-binding`; `None`
/// (after saying so) when no JDK is installed outside CI.
fn binding() -> Option<&'static Binding> {
    static BUILT: OnceLock<Option<Binding>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let Some(home) = jdk_home() else {
                assert!(
                    !common::ci(),
                    "a JDK (javac and include/jni.h) is required under CI=true: apt-get install openjdk-17-jdk-headless"
                );
                eprintln!("no JDK found (JAVA_HOME or javac on the PATH): the JVM binding is not tested");
                return None;
            };
            let engine = common::lib_dir("empmix-ffi-engine", "empmix_engine");
            let out = engine.join("jvm-binding");
            let classes = out.join("classes");
            std::fs::create_dir_all(&classes).unwrap();
            Cc {
                sources: vec![crate_dir().join("jvm/empmix_engine_jni.c")],
                includes: vec![crate_dir().join("include"), home.join("include"), home.join("include/linux")],
                lib: (&engine, "empmix_engine"),
                static_link: false,
                shared: true,
                out: out.join("libempmix_engine_jni.so"),
            }
            .compile();
            let sources = std::fs::read_dir(crate_dir().join("jvm/src/dev/empmix"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .chain([crate_dir().join("tests/jvm/EngineJvmTest.java")]);
            let javac = Command::new(home.join("bin/javac"))
                .args(["-Xlint:all", "-Werror", "-d"])
                .arg(&classes)
                .args(sources)
                .output()
                .unwrap();
            assert_success("javac", &javac);
            Some(Binding { lib_dir: out, classes, java: home.join("bin/java") })
        })
        .as_ref()
}

fn java(b: &Binding, args: &[&str], env: &[(&'static str, String)]) -> Command {
    let mut cmd = Command::new(&b.java);
    cmd.arg(format!("-Djava.library.path={}", b.lib_dir.display()))
        .arg("-cp")
        .arg(&b.classes)
        .arg("EngineJvmTest")
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    cmd
}

fn read_line(out: &mut BufReader<ChildStdout>) -> String {
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    line.trim().to_string()
}

/// The server's own count of events it accepted (its `/metrics`, since this process started).
fn accepted(server: &RunningServer) -> u64 {
    let mut http = loopback::Client::new(server.addr());
    let text = http.get("/metrics", &[]).unwrap().text();
    text.lines()
        .find_map(|l| l.strip_prefix("empmix_events_accepted_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[test]
fn three_jvm_engines_make_the_seed_chain_a_b_c() {
    let Some(b) = binding() else { return };
    let data = tempfile::tempdir().unwrap();
    let server = start_server(data.path());
    let out = java(b, &["seed", "conf-jvm"], &env_for(&server, "conf-jvm")).output().unwrap();
    assert_success("java seed", &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("JVM_OK"), "{stdout}");
    assert_seed_chain(&server, "conf-jvm", &stdout);
}

#[test]
fn the_server_down_and_back_loses_nothing_and_doubles_nothing() {
    let Some(b) = binding() else { return };
    let data = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let server = start_server(data.path());
    let addr = server.addr();
    let dir = store.path().to_string_lossy().to_string();
    let mut child: Child = java(b, &["outage", &dir, "conf-outage"], &env_for(&server, "conf-outage"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    assert_eq!(read_line(&mut stdout), "PHASE1 20");
    assert_eq!(wait_for_summary(&server, "conf-outage", |s| s["pv"] == 20)["pv"], 20);

    server.shutdown().unwrap();
    writeln!(stdin, "DOWN").unwrap();
    let phase2 = read_line(&mut stdout);
    let numbers: Vec<u64> = phase2.split(' ').skip(1).map(|n| n.parse().unwrap()).collect();
    assert_eq!(numbers.len(), 3, "{phase2}");
    let (delivered, retried, pending) = (numbers[0], numbers[1], numbers[2]);
    assert_eq!((delivered, pending), (20, 30), "{phase2}");
    assert!(retried > 0, "the down server's refusals were retried: {phase2}");

    let server = Server::start(server_config(data.path()).with_listen(addr)).unwrap();
    writeln!(stdin, "UP").unwrap();
    assert_eq!(read_line(&mut stdout), "SENT 50 dropped 0");
    assert_eq!(read_line(&mut stdout), "JVM_OK");
    assert!(child.wait().unwrap().success());
    // Nothing lost: all 50 counted. Nothing doubled: the restarted server was sent exactly the
    // 30 it had not seen.
    assert_eq!(wait_for_summary(&server, "conf-outage", |s| s["pv"] == 50)["pv"], 50);
    assert_eq!(accepted(&server), 30);
}

#[test]
fn a_jvm_killed_with_sigkill_sends_every_persisted_event_once_after_restart() {
    let Some(b) = binding() else { return };
    let data = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let server = start_server(data.path());
    let dir = store.path().to_string_lossy().to_string();

    // The tracker has no reachable server: every event waits on disk.
    let mut env = env_for(&server, "conf-jvm-kill");
    env[0].1 = "http://127.0.0.1:9".into();
    let mut child =
        java(b, &["track", &dir, "150", "conf-jvm-kill"], &env).stdout(Stdio::piped()).spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    assert_eq!(read_line(&mut stdout), "READY");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let env = env_for(&server, "conf-jvm-kill");
    let out = java(b, &["send", &dir], &env).output().unwrap();
    assert_success("java send", &out);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("SENT 150"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(wait_for_summary(&server, "conf-jvm-kill", |s| s["pv"] == 150)["pv"], 150);
    // A third start finds nothing left to send: each event went out once.
    let out = java(b, &["send", &dir], &env).output().unwrap();
    assert_success("java send again", &out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("SENT 0"));
    assert_eq!(accepted(&server), 150);
    assert_eq!(wait_for_summary(&server, "conf-jvm-kill", |_| true)["pv"], 150);
}
