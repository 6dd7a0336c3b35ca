//! `empmix-server`: see `empmix-server --help`.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;
use empmix_server::cli::{Cli, Command};
use empmix_server::config::{KeySource, resolve_projects};
use empmix_server::consumer::{self, Zones};
use empmix_server::http::metrics::Metrics;
use empmix_server::{RunningServer, Server, open_queue, open_store};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Consume { drain }) => consume(&cli, drain),
        Some(Command::Serve) | None => serve(&cli),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("empmix-server: {e}");
            ExitCode::FAILURE
        }
    }
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
    let server = Server::start(cli.server_config()?)?;
    announce(&server);
    wait_for_signal()?;
    tracing::info!("shutting down");
    server.shutdown()?;
    Ok(())
}

fn consume(cli: &Cli, drain: bool) -> Result<(), Box<dyn std::error::Error>> {
    let config = cli.server_config()?;
    std::fs::create_dir_all(&config.data_dir)?;
    let (projects, _) = resolve_projects(&config.data_dir, &config.projects)?;
    let queue = open_queue(&config, true)?;
    let store = open_store(&config)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        let _ = wait_for_signal();
        flag.store(true, Ordering::SeqCst);
    });
    tracing::info!(data_dir = %config.data_dir.display(), ordered = queue.ordered(), "consumer started");
    let zones = Zones::new(&projects);
    let metrics = Metrics::default();
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
        println!(
            "empmix-server consumed {events} events in {secs:.2} s ({:.0} events/s)",
            events as f64 / secs.max(1e-9)
        );
    } else {
        consumer::run(queue, store, &zones, &metrics, &stop);
    }
    queue.close();
    Ok(())
}
