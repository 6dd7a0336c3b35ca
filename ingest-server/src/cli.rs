//! Command-line flags (each also read from an environment variable).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{ConfigError, ConfigFile, DEFAULT_PROJECT, ProjectConfig, ServerConfig};

/// The EmpMix analytics ingest server: ingest API, durable queue, consumer and analytics
/// queries in one process, storing everything in SQLite under the data directory.
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
    },
}

impl Cli {
    /// The server configuration these flags describe.
    pub fn server_config(&self) -> Result<ServerConfig, ConfigError> {
        let mut projects = match &self.config {
            Some(path) => ConfigFile::load(path)?.projects,
            None => Vec::new(),
        };
        if let (Some(ingest), Some(read)) = (&self.ingest_key, &self.read_key) {
            projects.push(ProjectConfig {
                id: DEFAULT_PROJECT.into(),
                ingest_key: ingest.clone(),
                read_key: read.clone(),
                allowed_origins: self.allowed_origins.clone(),
                time_zone: self.time_zone.clone(),
            });
        }
        crate::config::validate(&projects)?;
        Ok(ServerConfig {
            listen: self.listen,
            data_dir: self.data_dir.clone(),
            projects,
            run_consumer: !self.no_consumer,
            worker_threads: self.workers,
        })
    }
}
