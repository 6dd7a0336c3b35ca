//! `empmix-server`: see `empmix-server --help`.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;
use empmix_server::cli::{Cli, Command};
use empmix_server::config::{KeySource, resolve_projects};
use empmix_server::consumer::{self, Zones};
use empmix_server::http::metrics::Metrics;
use empmix_server::http::operator::OperatorServer;
use empmix_server::store::StoreError;
use empmix_server::{RunningServer, Server, ServerError, open_queue, open_store};

/// Standard error for the log, never failing: a log line that cannot be written (the disk
/// holding a redirected log is full, the reading end of a pipe is gone) is dropped instead of
/// failing the caller. `tracing-subscriber` reports a failed write with `eprintln!`, which
/// panics when standard error fails, in whatever thread logged (an HTTP worker, the queue
/// writer), so the request in flight would get no answer.
#[derive(Debug, Clone, Copy)]
struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().lock().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().lock().flush();
        Ok(())
    }
}

/// Writes a line to standard error, ignoring failure (unlike `eprintln!`, which panics).
fn say(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(|| LogWriter)
        .log_internal_errors(false)
        // Colours only on a terminal: a log redirected to a file or a collector stays plain.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Consume { drain, metrics_listen }) => consume(&cli, drain, metrics_listen),
        Some(Command::Serve) | None => serve(&cli),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            say(format_args!("empmix-server: {e}"));
            ExitCode::FAILURE
        }
    }
}

/// How long to wait between attempts to reach PostgreSQL at startup, at most.
const STARTUP_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs `open` until it succeeds, fails for good (`retry` says no), or `stop` is set; logs
/// what it waits for on the first failure and then every ~30 s.
fn wait_for<T, E: std::error::Error>(
    what: &str,
    stop: &AtomicBool,
    retry: impl Fn(&E) -> bool,
    mut open: impl FnMut() -> Result<T, E>,
) -> Result<Option<T>, E> {
    let started = std::time::Instant::now();
    let mut backoff = std::time::Duration::from_millis(250);
    let mut last_log: Option<std::time::Instant> = None;
    loop {
        match open() {
            Ok(v) => {
                if last_log.is_some() {
                    tracing::info!(waited_s = started.elapsed().as_secs(), "{what} reachable; starting");
                }
                return Ok(Some(v));
            }
            Err(e) if retry(&e) => {
                if last_log.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(30)) {
                    tracing::warn!(error = %chain(&e), "waiting for {what}; retrying until it is reachable");
                    last_log = Some(std::time::Instant::now());
                }
            }
            Err(e) => return Err(e),
        }
        let until = std::time::Instant::now() + backoff;
        while std::time::Instant::now() < until {
            if stop.load(Ordering::SeqCst) {
                return Ok(None);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        backoff = (backoff * 2).min(STARTUP_RETRY_MAX);
    }
}

/// An error with its causes (`error connecting to server: Connection refused …`).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// While an HTTP process waits for PostgreSQL at startup, its address already answers: 503
/// with `Retry-After` (the SDKs retry) and `/readyz` saying what it waits for; `/healthz` 200.
/// The real server takes the address over once the database answers.
#[derive(Debug)]
struct Waiting {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Waiting {
    fn start(listen: std::net::SocketAddr, reason: String) -> std::io::Result<Waiting> {
        use axum::http::{HeaderValue, StatusCode, header};
        use axum::response::IntoResponse as _;
        let listener = std::net::TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let body = empmix_core::protocol::ErrorBody { error: "not_ready".into(), message: reason }.encode();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name("empmix-waiting".into()).spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                let not_ready = move || {
                    let body = body.clone();
                    async move {
                        let mut resp = (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
                        let headers = resp.headers_mut();
                        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                        headers.insert(header::RETRY_AFTER, HeaderValue::from(5));
                        resp
                    }
                };
                let app = axum::Router::new()
                    .route("/healthz", axum::routing::get(|| async { "ok" }))
                    .fallback(not_ready);
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await;
            });
        })?;
        Ok(Waiting { addr, stop: Some(stop), thread: Some(thread) })
    }

    /// Stops answering and frees the address.
    fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Whether a store error at startup is worth waiting out: PostgreSQL unreachable, starting or
/// shutting down. The embedded store's errors are not (they are about the data directory).
fn store_down(config_has_url: bool, e: &StoreError) -> bool {
    config_has_url && e.is_transient()
}

/// A flag set on SIGINT or SIGTERM (by a thread of its own).
fn stop_on_signal() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        let _ = wait_for_signal();
        flag.store(true, Ordering::SeqCst);
    });
    stop
}

/// Blocks until SIGINT or SIGTERM.
fn wait_for_signal() -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        #[cfg(unix)]
        {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                r = tokio::signal::ctrl_c() => r,
                _ = term.recv() => Ok(()),
            }
        }
        #[cfg(not(unix))]
        tokio::signal::ctrl_c().await
    })?;
    Ok(())
}

fn announce(server: &RunningServer) {
    let base = server.base_url();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "empmix-server listening on {base}");
    let _ = writeln!(out, "empmix-server dashboard: {base}/ (sign in with the read key)");
    if server.key_source() != KeySource::Configured {
        let what = if server.key_source() == KeySource::Generated { "generated" } else { "stored" };
        let _ = writeln!(out, "empmix-server ingest key: {}", server.ingest_key());
        let _ = writeln!(out, "empmix-server read key: {}", server.read_key());
        let _ = writeln!(out, "# keys {what} in the data directory (keys.toml); try:");
        let _ = writeln!(
            out,
            "curl -X POST {base}/api/analytics/events -H 'Content-Type: application/json' -H 'X-API-Key: {}' \
             -d '{{\"events\":[{{\"type\":\"page_view\",\"conference_id\":\"test\",\"page\":\"/\"}}]}}'",
            server.ingest_key()
        );
        let _ = writeln!(
            out,
            "curl '{base}/api/analytics/daily?conference_id=test' -H 'Authorization: Bearer {}'",
            server.read_key()
        );
    }
    let _ = out.flush();
}

fn serve(cli: &Cli) -> Result<(), Box<dyn std::error::Error>> {
    let mut config = cli.server_config()?;
    let stop = stop_on_signal();
    let has_url = config.store_url.is_some();
    if has_url {
        match open_store(&config) {
            Ok(_) => {}
            Err(e) if store_down(has_url, &e) => {
                let what = "the analytics database (PostgreSQL)";
                let waiting = Waiting::start(config.listen, format!("waiting for {what}: {}", chain(&e)))?;
                // Port 0: the real server takes over the port the waiting one got.
                config.listen = waiting.addr;
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "empmix-server listening on http://{}", waiting.addr);
                let _ = writeln!(out, "# not ready (/readyz 503) until {what} is reachable");
                let _ = out.flush();
                drop(out);
                let reached =
                    wait_for(what, &stop, |e: &StoreError| store_down(has_url, e), || open_store(&config));
                waiting.stop();
                if reached?.is_none() {
                    return Ok(());
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    let started = wait_for(
        "the analytics database (PostgreSQL)",
        &stop,
        |e: &ServerError| matches!(e, ServerError::Store(e) if store_down(has_url, e)),
        || Server::start(config.clone()),
    )?;
    let Some(server) = started else { return Ok(()) };
    announce(&server);
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    tracing::info!("shutting down");
    server.shutdown()?;
    Ok(())
}

fn consume(
    cli: &Cli,
    drain: bool,
    metrics_listen: Option<std::net::SocketAddr>,
) -> Result<(), Box<dyn std::error::Error>> {
    let config = cli.server_config()?;
    empmix_server::config::create_data_dir(&config.data_dir)?;
    let (projects, _) = resolve_projects(&config.data_dir, &config.projects, &config.default_project)?;
    let stop = stop_on_signal();
    // A broker that is down is waited for by the queue itself (its supervisor reconnects).
    let queue = open_queue(&config, true)?;
    let has_url = config.store_url.is_some();
    let opened = wait_for(
        "the analytics database (PostgreSQL)",
        &stop,
        |e: &StoreError| store_down(has_url, e),
        || open_store(&config),
    )?;
    let Some(store) = opened else {
        queue.close();
        return Ok(());
    };
    tracing::info!(data_dir = %config.data_dir.display(), ordered = queue.ordered(), "consumer started");
    let zones = Zones::new(&projects);
    let metrics = Arc::new(Metrics::default());
    let operator = match metrics_listen {
        Some(addr) => {
            let operator = OperatorServer::start(addr, queue.clone(), store.clone(), metrics.clone())?;
            let _ = writeln!(
                std::io::stdout().lock(),
                "empmix-server consumer metrics on http://{}",
                operator.addr()
            );
            Some(operator)
        }
        None => None,
    };
    let (queue, store) = (queue.as_ref(), store.as_ref());
    if drain {
        let started = std::time::Instant::now();
        let (events, secs) = if queue.ordered() {
            let events = consumer::drain(queue, store, &zones, &metrics, &stop)?;
            (events, started.elapsed().as_secs_f64())
        } else {
            // Until no batch arrives for 2 s; the time excludes that wait.
            let (events, busy) = consumer::broker::drain(
                queue,
                store,
                &zones,
                &metrics,
                &stop,
                std::time::Duration::from_secs(2),
            )?;
            (events, busy.as_secs_f64())
        };
        let _ = writeln!(
            std::io::stdout().lock(),
            "empmix-server consumed {events} events in {secs:.2} s ({:.0} events/s)",
            events as f64 / secs.max(1e-9)
        );
    } else {
        consumer::run(queue, store, &zones, &metrics, &stop);
    }
    drop(operator);
    queue.close();
    Ok(())
}
