//! Command-line flags (each also read from an environment variable).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{ConfigError, ConfigFile, DEFAULT_PROJECT, ProjectConfig, RateLimit, ServerConfig};

/// The EmpMix analytics ingest server: ingest API, durable queue, consumer and analytics
/// queries in one process, storing everything in SQLite under the data directory; or, with
/// --queue amqp://… and --store postgres://…, one of several ingest or consumer processes
/// over RabbitMQ and PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "empmix-server", version, about, long_about = None)]
pub struct Cli {
    /// What to run; the server by default.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(long, env = "EMPMIX_LISTEN", default_value = "127.0.0.1:8000", global = true)]
    pub listen: SocketAddr,

    /// Directory holding the queue, the analytics database and generated keys.
    #[arg(long, env = "EMPMIX_DATA_DIR", default_value = "./empmix-data", global = true)]
    pub data_dir: PathBuf,

    /// Public write-only key SDKs embed (project "default"). With neither key nor --config,
    /// keys are generated on first start, stored in the data directory and printed.
    #[arg(long, env = "EMPMIX_INGEST_KEY", global = true, requires = "read_key")]
    pub ingest_key: Option<String>,

    /// Secret key for the query endpoints (project "default").
    #[arg(long, env = "EMPMIX_READ_KEY", global = true, requires = "ingest_key")]
    pub read_key: Option<String>,

    /// Browser origins allowed to send to project "default", comma-separated, `*` for any.
    #[arg(long, env = "EMPMIX_ALLOWED_ORIGINS", default_value = "*", value_delimiter = ',', global = true)]
    pub allowed_origins: Vec<String>,

    /// IANA time zone project "default" counts its days in.
    #[arg(long, env = "EMPMIX_TIME_ZONE", default_value = "UTC", global = true)]
    pub time_zone: String,

    /// TOML file with several projects (`[[projects]]` with id, ingest_key, read_key,
    /// allowed_origins, time_zone), used in addition to --ingest-key/--read-key.
    #[arg(long, env = "EMPMIX_CONFIG", global = true)]
    pub config: Option<PathBuf>,

    /// Do not run the consumer in this process (run `empmix-server consume` instead).
    #[arg(long, env = "EMPMIX_NO_CONSUMER", global = true)]
    pub no_consumer: bool,

    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "EMPMIX_WORKERS", global = true)]
    pub workers: Option<usize>,

    /// Scale-out queue: a RabbitMQ URL (`amqp://user:pass@host:5672/%2f`). Default: the
    /// embedded SQLite queue in the data directory.
    #[arg(long = "queue", env = "EMPMIX_QUEUE_URL", global = true, value_name = "URL")]
    pub queue_url: Option<String>,

    /// RabbitMQ queue name (with --queue); its dead-letter queue is `<name>.dlq`.
    #[arg(long, env = "EMPMIX_QUEUE_NAME", default_value = crate::queue::amqp::DEFAULT_QUEUE_NAME, global = true)]
    pub queue_name: String,

    /// RabbitMQ consumer prefetch (unacknowledged batches in flight per consumer).
    #[arg(long, env = "EMPMIX_PREFETCH", default_value_t = crate::queue::amqp::DEFAULT_PREFETCH, global = true)]
    pub prefetch: u16,

    /// Scale-out store: a PostgreSQL URL (`postgres://user@host:5432/db`). Default: the
    /// embedded SQLite store in the data directory.
    #[arg(long = "store", env = "EMPMIX_STORE_URL", global = true, value_name = "URL")]
    pub store_url: Option<String>,

    /// How long one analytics query may run before it is cancelled (answered 422), ms.
    #[arg(long, env = "EMPMIX_QUERY_BUDGET_MS", default_value_t = 5000, global = true)]
    pub query_budget_ms: u64,

    /// Free space (MB) on the data directory's disk under which ingest answers 503 (and
    /// /readyz not ready) before the embedded queue runs out of space; 0: no floor.
    #[arg(long, env = "EMPMIX_MIN_FREE_DISK_MB", default_value_t = crate::config::DEFAULT_MIN_FREE_DISK_MB, global = true)]
    pub min_free_disk_mb: u64,

    /// How long a connection may take to send a request's headers (also how long a kept-alive
    /// connection may sit idle between requests), ms.
    #[arg(long, env = "EMPMIX_HEADER_TIMEOUT_MS", default_value_t = 5000, global = true)]
    pub header_timeout_ms: u64,

    /// How long a request body may take to arrive in full (answered 408 after), ms.
    #[arg(long, env = "EMPMIX_BODY_TIMEOUT_MS", default_value_t = 30000, global = true)]
    pub body_timeout_ms: u64,

    /// Open connections at most; further ones wait in the listen backlog until one closes.
    #[arg(long, env = "EMPMIX_MAX_CONNECTIONS", default_value_t = crate::config::DEFAULT_MAX_CONNECTIONS, global = true)]
    pub max_connections: usize,

    /// Ingest requests per second from one client address, as `RATE/BURST` (`100/500`), for
    /// projects that set no `client_rate_limit`; `0`: unlimited.
    #[arg(long, env = "EMPMIX_CLIENT_RATE_LIMIT", default_value = "100/500", value_parser = parse_rate_limit, global = true)]
    // The full path keeps clap from treating the field as an optional flag: `0` parses to `None`.
    pub client_rate_limit: ::std::option::Option<RateLimit>,

    /// Ingest requests per second for project "default", as `RATE/BURST`; `0`: unlimited.
    #[arg(long, env = "EMPMIX_RATE_LIMIT", default_value = "0", value_parser = parse_rate_limit, global = true)]
    pub rate_limit: ::std::option::Option<RateLimit>,

    /// Events project "default" may send per day (in its time zone); 0: unlimited.
    #[arg(long, env = "EMPMIX_DAILY_EVENT_QUOTA", default_value_t = 0, global = true)]
    pub daily_event_quota: u64,

    /// Take the client address of the per-address rate limit from the last
    /// `X-Forwarded-For` entry (only behind a proxy that sets it; otherwise clients choose it).
    #[arg(long, env = "EMPMIX_TRUST_FORWARDED_FOR", global = true)]
    pub trust_forwarded_for: bool,
}

/// `RATE/BURST` or `RATE` (burst = rate); `0`: no limit (`None`).
fn parse_rate_limit(text: &str) -> Result<Option<RateLimit>, String> {
    let (rate, burst) = text.split_once('/').unwrap_or((text, "0"));
    let number = |s: &str| s.trim().parse::<u32>().map_err(|e| format!("{s:?}: {e} (expected RATE/BURST)"));
    let (rate, burst) = (number(rate)?, number(burst)?);
    Ok((rate > 0).then_some(RateLimit::new(rate, burst)))
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (and the consumer unless --no-consumer). The default.
    Serve,
    /// Run only the consumer against the data directory, until interrupted.
    Consume {
        /// Exit once the queue is drained (catch-up runs and benchmarks).
        #[arg(long)]
        drain: bool,
        /// Serve `/metrics`, `/healthz` and `/readyz` of this consumer on this address (port 0:
        /// any free port; the address is printed). Without it, the process serves nothing.
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<std::net::SocketAddr>,
    },
}

impl Cli {
    /// Whether flags of project "default" were given that configure nothing: with --config and
    /// without both keys, the file's projects are served and no project "default".
    fn ignores_default_project_flags(&self, default_project: &ProjectConfig) -> bool {
        let unset =
            ProjectConfig::new(DEFAULT_PROJECT, &default_project.ingest_key, &default_project.read_key);
        self.config.is_some()
            && !(self.ingest_key.is_some() && self.read_key.is_some())
            && *default_project != unset
    }

    /// The server configuration these flags describe.
    pub fn server_config(&self) -> Result<ServerConfig, ConfigError> {
        let mut projects = match &self.config {
            Some(path) => ConfigFile::load(path)?.projects,
            None => Vec::new(),
        };
        // Project "default": with the keys given, or (with neither keys nor --config) with the
        // keys generated on first start; either way these flags are its settings.
        let default_project = ProjectConfig {
            id: DEFAULT_PROJECT.into(),
            ingest_key: self.ingest_key.clone().unwrap_or_default(),
            read_key: self.read_key.clone().unwrap_or_default(),
            allowed_origins: self.allowed_origins.clone(),
            time_zone: self.time_zone.clone(),
            rate_limit: self.rate_limit,
            client_rate_limit: None,
            daily_event_quota: (self.daily_event_quota > 0).then_some(self.daily_event_quota),
        };
        if self.ingest_key.is_some() && self.read_key.is_some() {
            projects.push(default_project.clone());
        } else if self.ignores_default_project_flags(&default_project) {
            tracing::warn!(
                "--allowed-origins, --time-zone, --rate-limit and --daily-event-quota configure project \"default\", \
                 which --config without --ingest-key and --read-key does not serve: they are ignored \
                 (set them per project in the file)"
            );
        }
        crate::config::validate(&projects)?;
        // With generated keys, which come at start, its time zone is checked now all the same.
        crate::config::check_time_zone(&default_project)?;
        Ok(ServerConfig {
            listen: self.listen,
            data_dir: self.data_dir.clone(),
            projects,
            default_project,
            run_consumer: !self.no_consumer,
            worker_threads: self.workers,
            queue_url: self.queue_url.clone(),
            queue_name: self.queue_name.clone(),
            prefetch: self.prefetch,
            store_url: self.store_url.clone(),
            query_budget: std::time::Duration::from_millis(self.query_budget_ms.max(1)),
            min_free_disk_mb: self.min_free_disk_mb,
            header_timeout: std::time::Duration::from_millis(self.header_timeout_ms.max(1)),
            body_timeout: std::time::Duration::from_millis(self.body_timeout_ms.max(1)),
            max_connections: self.max_connections.max(1),
            client_rate_limit: self.client_rate_limit,
            trust_forwarded_for: self.trust_forwarded_for,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[test]
    fn default_project_flags_beside_a_config_file_without_keys_are_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("projects.toml");
        std::fs::write(&file, "[[projects]]\nid = \"a\"\ningest_key = \"pk_a\"\nread_key = \"sk_a\"\n")
            .unwrap();
        let ignored = |extra: &[&str]| {
            let mut args = vec!["empmix-server", "--config", file.to_str().unwrap()];
            args.extend(extra);
            let cli = Cli::try_parse_from(args).unwrap();
            let config = cli.server_config().unwrap();
            cli.ignores_default_project_flags(&config.default_project)
        };
        assert!(ignored(&["--time-zone", "Asia/Shanghai"]));
        assert!(ignored(&["--daily-event-quota", "5"]));
        assert!(!ignored(&[]), "no such flag given");
        // With both keys the flags configure the project "default" the server then serves.
        assert!(!ignored(&["--time-zone", "Asia/Shanghai", "--ingest-key", "pk_d", "--read-key", "sk_d"]));
    }
}
