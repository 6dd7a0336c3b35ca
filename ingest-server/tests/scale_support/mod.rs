//! Helpers for the scale-out tests: the real services (RabbitMQ on 127.0.0.1:5672, PostgreSQL on
//! 127.0.0.1:5432, started by `scripts/services.sh`), a fresh database and queue per test, and
//! the real `empmix-server` binary as ingest and consumer child processes.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};

use std::time::{Duration, Instant};

use empmix_server::loopback::Client;
use lapin::options::{BasicPublishOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const INGEST_KEY: &str = "pk_scale_test";
pub const READ_KEY: &str = "sk_scale_test";

fn reachable(port: u16) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_secs(2)).is_ok()
}

/// Whether RabbitMQ and PostgreSQL answer. Under `CI=true` a missing service fails the test;
/// otherwise the test is skipped with a loud message.
pub fn services_available(test: &str) -> bool {
    let missing: Vec<&str> = [(5672, "RabbitMQ (127.0.0.1:5672)"), (5432, "PostgreSQL (127.0.0.1:5432)")]
        .into_iter()
        .filter(|(port, _)| !reachable(*port))
        .map(|(_, name)| name)
        .collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!(
        "{test}: {} not reachable; run `bash scripts/services.sh` (install: apt-get install rabbitmq-server postgresql)",
        missing.join(" and ")
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message} (CI=true: the scale-out tests never skip)");
    }
    eprintln!("\n!!!!!!!! SKIPPED {message} !!!!!!!!\n");
    false
}

pub use crate::common::poll;

pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// A database of its own, dropped afterwards.
pub struct TestDb {
    pub name: String,
}

const ADMIN: &str = "host=127.0.0.1 port=5432 user=postgres dbname=postgres";

impl TestDb {
    pub fn create() -> TestDb {
        let name = unique("empmix_test");
        let mut admin =
            postgres::Client::connect(ADMIN, postgres::NoTls).expect("connect to PostgreSQL as postgres");
        admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("create test database");
        TestDb { name }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }

    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(
            &format!("host=127.0.0.1 port=5432 user=postgres dbname={}", self.name),
            postgres::NoTls,
        )
        .expect("connect to the test database")
    }

    /// One number from a query, or `None` when the database does not answer.
    pub fn scalar(&self, sql: &str) -> Option<i64> {
        let mut c = postgres::Client::connect(
            &format!("host=127.0.0.1 port=5432 user=postgres dbname={} connect_timeout=2", self.name),
            postgres::NoTls,
        )
        .ok()?;
        c.query_one(sql, &[]).ok()?.try_get::<_, i64>(0).ok()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(ADMIN, postgres::NoTls) {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

/// An in-process server in scale-out mode over `db` and `queue`, with its own consumer;
/// `config` adjusts the rest.
pub fn start_scaled(
    db: &TestDb,
    queue: &TestQueue,
    config: impl FnOnce(empmix_server::ServerConfig) -> empmix_server::ServerConfig,
) -> crate::common::TestServer {
    crate::common::start_with(|mut c| {
        c.queue_url = Some(AMQP_URL.into());
        c.queue_name.clone_from(&queue.name);
        c.store_url = Some(db.url());
        config(c)
    })
}

/// A queue name of its own; the queue and its dead-letter queue are deleted afterwards.
pub struct TestQueue {
    pub name: String,
}

fn amqp<T>(f: impl AsyncFnOnce(&lapin::Channel) -> lapin::Result<T>) -> lapin::Result<T> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let conn = Connection::connect(AMQP_URL, ConnectionProperties::default()).await?;
        let ch = conn.create_channel().await?;
        let out = f(&ch).await;
        let _ = conn.close(200, "done").await;
        out
    })
}

impl TestQueue {
    pub fn new() -> TestQueue {
        TestQueue { name: unique("empmix.test") }
    }

    pub fn dlq(&self) -> String {
        format!("{}.dlq", self.name)
    }

    /// Ready messages in a queue (passive declare), `None` when the broker does not answer.
    pub fn ready(&self, queue: &str) -> Option<u32> {
        let opts = QueueDeclareOptions { passive: true, durable: true, ..QueueDeclareOptions::default() };
        amqp(async |ch| ch.queue_declare(queue, opts, FieldTable::default()).await)
            .ok()
            .map(|q| q.message_count())
    }

    /// Ready plus unacknowledged messages of the main queue, from `rabbitmqctl`.
    pub fn total_messages(&self) -> Option<u64> {
        let out =
            Command::new("rabbitmqctl").args(["-q", "list_queues", "name", "messages"]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
            let mut parts = l.split_whitespace();
            (parts.next() == Some(self.name.as_str())).then(|| parts.next()?.parse().ok()).flatten()
        })
    }

    /// Publishes raw bytes straight to the queue (default exchange).
    pub fn publish_raw(&self, payload: &[u8]) {
        amqp(async |ch| {
            ch.basic_publish(
                "",
                &self.name,
                BasicPublishOptions::default(),
                payload,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await?
            .await
        })
        .expect("publish a raw message");
    }
}

impl Drop for TestQueue {
    fn drop(&mut self) {
        let (main, dlq) = (self.name.clone(), self.dlq());
        let _ = amqp(async |ch| {
            ch.queue_delete(&main, QueueDeleteOptions::default()).await?;
            ch.queue_delete(&dlq, QueueDeleteOptions::default()).await
        });
    }
}

/// A child process, killed (SIGKILL) on drop.
pub struct Proc {
    pub child: Child,
    pub addr: Option<SocketAddr>,
    _dir: tempfile::TempDir,
}

impl Proc {
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("an ingest process (or a consumer with --metrics-listen) has an address")
    }

    pub fn client(&self) -> Client {
        Client::new(self.addr())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn command(db: &TestDb, queue: &TestQueue, dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_empmix-server"));
    cmd.args(["--data-dir"])
        .arg(dir)
        .args(["--ingest-key", INGEST_KEY, "--read-key", READ_KEY, "--queue", AMQP_URL, "--queue-name"])
        .arg(&queue.name)
        .arg("--store")
        .arg(db.url())
        .env("RUST_LOG", std::env::var("EMPMIX_TEST_LOG").unwrap_or_else(|_| "warn".into()))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    cmd
}

/// An ingest process (`--no-consumer`) on a free port.
pub fn ingest(db: &TestDb, queue: &TestQueue) -> Proc {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = command(db, queue, dir.path())
        .args(["--listen", "127.0.0.1:0", "--no-consumer", "--workers", "2"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn empmix-server");
    let addr = crate::common::announced_addr(&mut child);
    Proc { child, addr: Some(addr), _dir: dir }
}

/// A consumer process (`consume`).
pub fn consumer(db: &TestDb, queue: &TestQueue) -> Proc {
    let dir = tempfile::tempdir().expect("temp dir");
    let child =
        command(db, queue, dir.path()).arg("consume").stdout(Stdio::null()).spawn().expect("spawn consumer");
    Proc { child, addr: None, _dir: dir }
}

/// A consumer process serving its operator endpoints (`consume --metrics-listen`) on a free
/// port.
pub fn consumer_with_metrics(db: &TestDb, queue: &TestQueue) -> Proc {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = command(db, queue, dir.path())
        .args(["consume", "--metrics-listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn consumer");
    let addr = crate::common::announced(&mut child, "empmix-server consumer metrics on http://");
    Proc { child, addr: Some(addr), _dir: dir }
}

/// A page view body.
pub fn page_view(event_id: &str, conference: &str, distinct: Option<&str>, anon: &str, now: i64) -> String {
    let distinct = distinct.map_or(String::new(), |d| format!("\"distinct_id\":\"{d}\","));
    format!(
        "{{\"event_id\":\"{event_id}\",\"type\":\"page_view\",{distinct}\"anonymous_id\":\"{anon}\",\
         \"session_id\":\"s-{anon}\",\"timestamp\":{now},\"properties\":{{\"conference_id\":\"{conference}\",\
         \"url\":\"https://m.example/c\"}}}}"
    )
}

pub fn batch_body(events: &[String], now: i64) -> String {
    format!("{{\"sent_at\":{now},\"events\":[{}]}}", events.join(","))
}

pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// POSTs a batch until it is answered 200 (retrying 503s and connection errors, up to 60 s).
/// Returns how many attempts were not 200.
pub fn post_until_ok(client: &mut Client, body: &str) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut failures = 0;
    loop {
        match client.request(
            "POST",
            "/api/analytics/events",
            &[("Content-Type", "application/json"), ("X-API-Key", INGEST_KEY)],
            body.as_bytes(),
        ) {
            Ok(r) if r.status == 200 => return failures,
            Ok(r) => assert!(r.status == 503, "unexpected status {}: {}", r.status, r.text()),
            Err(_) => {}
        }
        failures += 1;
        assert!(Instant::now() < deadline, "batch not accepted within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn run(cmd: &str, args: &[&str]) -> bool {
    match Command::new(cmd).args(args).stdout(Stdio::null()).stderr(Stdio::inherit()).status() {
        Ok(s) => s.success(),
        Err(e) => {
            eprintln!("{cmd} {args:?}: {e}");
            false
        }
    }
}

fn pg_version() -> String {
    std::fs::read_dir("/etc/postgresql")
        .ok()
        .and_then(|d| d.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).max())
        .unwrap_or_else(|| "15".into())
}

/// Stops PostgreSQL now and starts it again on drop (also when the test fails).
pub struct PostgresOutage {
    running: bool,
}

impl PostgresOutage {
    pub fn begin() -> PostgresOutage {
        let v = pg_version();
        assert!(
            run("pg_ctlcluster", &["--skip-systemctl-redirect", &v, "main", "stop", "-m", "fast"]),
            "stop PostgreSQL"
        );
        PostgresOutage { running: false }
    }

    pub fn end(&mut self) {
        if self.running {
            return;
        }
        let v = pg_version();
        run("pg_ctlcluster", &["--skip-systemctl-redirect", &v, "main", "start"]);
        let up = poll(Duration::from_secs(60), || reachable(5432).then_some(()));
        assert!(up.is_some(), "PostgreSQL did not come back");
        self.running = true;
    }
}

impl Drop for PostgresOutage {
    fn drop(&mut self) {
        if !self.running {
            let v = pg_version();
            run("pg_ctlcluster", &["--skip-systemctl-redirect", &v, "main", "start"]);
            let _ = poll(Duration::from_secs(60), || reachable(5432).then_some(()));
        }
    }
}

/// Stops the RabbitMQ application now (`rabbitmqctl stop_app`) and starts it again on drop.
pub struct BrokerOutage {
    running: bool,
}

fn broker_up() -> bool {
    run("rabbitmqctl", &["-q", "start_app"]);
    poll(Duration::from_secs(60), || reachable(5672).then_some(())).is_some()
}

impl BrokerOutage {
    pub fn begin() -> BrokerOutage {
        assert!(run("rabbitmqctl", &["-q", "stop_app"]), "rabbitmqctl stop_app");
        BrokerOutage { running: false }
    }

    pub fn end(&mut self) {
        if !self.running {
            assert!(broker_up(), "RabbitMQ did not come back");
            self.running = true;
        }
    }
}

impl Drop for BrokerOutage {
    fn drop(&mut self) {
        if !self.running {
            broker_up();
        }
    }
}
