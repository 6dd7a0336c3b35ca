//! Server configuration: listen address, data directory and projects (keys, allowed browser
//! origins, time zone), from flags, environment, a TOML file, or keys generated on first start.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Name of the file in the data directory holding generated keys.
pub const KEYS_FILE: &str = "keys.toml";
/// Id of the project made from `--ingest-key`/`--read-key` or generated keys.
pub const DEFAULT_PROJECT: &str = "default";

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config or keys file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config or keys file is not valid TOML of the expected shape.
    #[error("{path}: {source}")]
    Toml {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: toml::de::Error,
    },
    /// A project's time zone is not in the bundled tz database.
    #[error("project {project}: unknown time zone {zone:?}")]
    TimeZone {
        /// The project.
        project: String,
        /// The zone name given.
        zone: String,
    },
    /// Two projects share an id or a key, a key is empty, or a project's ingest and read keys
    /// are equal.
    #[error("invalid projects: {0}")]
    Projects(String),
    /// Random bytes for a generated key could not be obtained.
    #[error("no randomness for key generation: {0}")]
    Random(String),
}

/// One project: its keys, the browser origins allowed to send to it, and the time zone its
/// days are counted in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// Stable project id, stored with every event.
    pub id: String,
    /// Public, write-only key that SDKs embed.
    pub ingest_key: String,
    /// Secret key for the query endpoints.
    pub read_key: String,
    /// Browser origins allowed by CORS (`https://m.example`), or `*` for any.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// IANA time zone days are counted in, `UTC` by default.
    #[serde(default = "utc")]
    pub time_zone: String,
    /// Ingest requests per second for the whole project (a token bucket); `None`: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Ingest requests per second from one client address to this project; `None`: the
    /// server's [`ServerConfig::client_rate_limit`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_rate_limit: Option<RateLimit>,
    /// Events accepted per day (in the project's time zone); `None`: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_event_quota: Option<u64>,
}

/// A token bucket: `requests_per_second` tokens flow in, up to `burst`; each ingest request
/// takes one. `requests_per_second = 0` means unlimited.
///
/// ```toml
/// rate_limit = { requests_per_second = 200, burst = 1000 }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained requests per second (0: unlimited).
    pub requests_per_second: u32,
    /// Requests allowed at once after an idle spell; 0 (or absent): `requests_per_second`.
    #[serde(default)]
    pub burst: u32,
}

impl RateLimit {
    /// `requests_per_second` sustained with bursts of `burst`.
    pub const fn new(requests_per_second: u32, burst: u32) -> Self {
        RateLimit { requests_per_second, burst }
    }
}

fn utc() -> String {
    "UTC".into()
}

impl ProjectConfig {
    /// A project allowing any origin, counting days in UTC.
    pub fn new(id: impl Into<String>, ingest_key: impl Into<String>, read_key: impl Into<String>) -> Self {
        ProjectConfig {
            id: id.into(),
            ingest_key: ingest_key.into(),
            read_key: read_key.into(),
            allowed_origins: vec!["*".into()],
            time_zone: utc(),
            rate_limit: None,
            client_rate_limit: None,
            daily_event_quota: None,
        }
    }

    /// Whether a browser `Origin` may send to this project. A configured origin is compared
    /// without surrounding spaces (`--allowed-origins "https://a.example, https://b.example"`)
    /// or a trailing slash (an `Origin` never has a path).
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allowed_origins
            .iter()
            .map(|o| o.trim())
            .any(|o| o == "*" || o.strip_suffix('/').unwrap_or(o).eq_ignore_ascii_case(origin))
    }
}

/// The projects section of a `--config` TOML file.
///
/// ```toml
/// [[projects]]
/// id = "conf-app"
/// ingest_key = "pk_..."
/// read_key = "sk_..."
/// allowed_origins = ["https://m.example"]
/// time_zone = "Asia/Shanghai"
/// rate_limit = { requests_per_second = 500, burst = 2000 }
/// client_rate_limit = { requests_per_second = 20, burst = 100 }
/// daily_event_quota = 5000000
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The projects.
    #[serde(default)]
    pub projects: Vec<ProjectConfig>,
}

impl ConfigFile {
    /// Reads a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: path.into(), source })?;
        toml::from_str(&text).map_err(|source| ConfigError::Toml { path: path.into(), source })
    }
}

/// Everything a server needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen; port 0 picks a free port (see [`crate::RunningServer::addr`]).
    pub listen: SocketAddr,
    /// Where the queue and the analytics database live.
    pub data_dir: PathBuf,
    /// The projects. Empty: [`ServerConfig::default_project`], whose keys are generated on
    /// first start and kept in `data_dir/keys.toml`.
    pub projects: Vec<ProjectConfig>,
    /// The `default` project served when `projects` is empty: its allowed origins, time zone,
    /// rate limits and quota (`--allowed-origins`, `--time-zone`, `--rate-limit`,
    /// `--daily-event-quota` without `--ingest-key`). Its id and keys are not used: the id is
    /// [`DEFAULT_PROJECT`] and the keys are the generated ones.
    pub default_project: ProjectConfig,
    /// Run the consumer in this process (otherwise run `empmix-server consume`).
    pub run_consumer: bool,
    /// Tokio worker threads for HTTP; `None`: one per core.
    pub worker_threads: Option<usize>,
    /// RabbitMQ URL (`amqp://…`) for the scale-out queue; `None`: the embedded SQLite queue.
    pub queue_url: Option<String>,
    /// The RabbitMQ queue's name (its dead-letter queue is `<name>.dlq`).
    pub queue_name: String,
    /// The RabbitMQ consumer's prefetch count.
    pub prefetch: u16,
    /// PostgreSQL URL (`postgres://…`) for the scale-out store; `None`: the embedded SQLite store.
    pub store_url: Option<String>,
    /// How long one query of `POST /api/analytics/query` may run before it is cancelled.
    pub query_budget: std::time::Duration,
    /// Free space (MB) on the data directory's filesystem under which the embedded queue
    /// refuses batches (ingest answers 503) before SQLite runs out; 0: no floor.
    pub min_free_disk_mb: u64,
    /// How long a connection may take to send a request's headers, counted from when it is
    /// accepted or has had its previous response (so also the keep-alive idle timeout).
    pub header_timeout: std::time::Duration,
    /// How long a request's body may take to arrive in full, counted from its headers.
    pub body_timeout: std::time::Duration,
    /// Open connections at most; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// The per-client-address ingest rate limit of projects that set none; `None`: unlimited.
    pub client_rate_limit: Option<RateLimit>,
    /// Take the client address from the last `X-Forwarded-For` entry (behind a trusted proxy).
    pub trust_forwarded_for: bool,
}

/// Default of [`ServerConfig::header_timeout`].
pub const DEFAULT_HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Default of [`ServerConfig::body_timeout`].
pub const DEFAULT_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Default of [`ServerConfig::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 2048;
/// Default of [`ServerConfig::client_rate_limit`].
pub const DEFAULT_CLIENT_RATE_LIMIT: RateLimit = RateLimit::new(100, 500);

/// Default of [`ServerConfig::min_free_disk_mb`].
pub const DEFAULT_MIN_FREE_DISK_MB: u64 = 64;

impl ServerConfig {
    /// Listens on `127.0.0.1:0` with generated keys and the in-process consumer.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            projects: Vec::new(),
            default_project: ProjectConfig::new(DEFAULT_PROJECT, "", ""),
            run_consumer: true,
            worker_threads: None,
            queue_url: None,
            queue_name: crate::queue::amqp::DEFAULT_QUEUE_NAME.into(),
            prefetch: crate::queue::amqp::DEFAULT_PREFETCH,
            store_url: None,
            query_budget: crate::query::DEFAULT_TIME_BUDGET,
            min_free_disk_mb: DEFAULT_MIN_FREE_DISK_MB,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            client_rate_limit: Some(DEFAULT_CLIENT_RATE_LIMIT),
            trust_forwarded_for: false,
        }
    }

    /// Adds a project.
    pub fn with_project(mut self, project: ProjectConfig) -> Self {
        self.projects.push(project);
        self
    }

    /// Sets the listen address.
    pub fn with_listen(mut self, listen: SocketAddr) -> Self {
        self.listen = listen;
        self
    }
}

/// Where the projects' keys came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// Given by flags, environment, config file or [`ServerConfig::projects`].
    Configured,
    /// Generated just now and stored in the data directory.
    Generated,
    /// Generated on an earlier start, read from the data directory.
    Stored,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredKeys {
    ingest_key: String,
    read_key: String,
}

/// The projects to serve: the configured ones, or `default_project`'s settings under the id
/// [`DEFAULT_PROJECT`] with the keys stored in the data directory (generated and stored on first
/// start).
pub fn resolve_projects(
    data_dir: &Path,
    projects: &[ProjectConfig],
    default_project: &ProjectConfig,
) -> Result<(Vec<ProjectConfig>, KeySource), ConfigError> {
    if !projects.is_empty() {
        validate(projects)?;
        return Ok((projects.to_vec(), KeySource::Configured));
    }
    let path = data_dir.join(KEYS_FILE);
    let (keys, source) = match std::fs::read_to_string(&path) {
        Ok(text) => (
            toml::from_str::<StoredKeys>(&text)
                .map_err(|source| ConfigError::Toml { path: path.clone(), source })?,
            KeySource::Stored,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let keys = StoredKeys { ingest_key: generate_key("pk_")?, read_key: generate_key("sk_")? };
            let text = toml::to_string(&keys).map_err(|e| ConfigError::Projects(e.to_string()))?;
            let tmp = data_dir.join("keys.toml.tmp");
            write_private(&tmp, &text).map_err(|source| ConfigError::Io { path: tmp.clone(), source })?;
            std::fs::rename(&tmp, &path).map_err(|source| ConfigError::Io { path: path.clone(), source })?;
            (keys, KeySource::Generated)
        }
        Err(source) => return Err(ConfigError::Io { path, source }),
    };
    let projects = vec![ProjectConfig {
        id: DEFAULT_PROJECT.into(),
        ingest_key: keys.ingest_key,
        read_key: keys.read_key,
        ..default_project.clone()
    }];
    validate(&projects)?;
    Ok((projects, source))
}

/// Creates the data directory (and any missing parents) readable by its owner only, as it
/// holds every raw event and the keys; one that exists keeps the mode its operator gave it
/// (a consumer running as another user, say).
pub fn create_data_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// Writes a file only its owner can read (it holds the secret read key), durably, so the rename
/// that follows never leaves an empty keys file after a crash.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    // A leftover temporary file from an interrupted start keeps its old mode: set it.
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// Checks ids and keys are unique and non-empty and time zones exist.
pub fn validate(projects: &[ProjectConfig]) -> Result<(), ConfigError> {
    let mut ids = HashSet::new();
    let mut keys = HashSet::new();
    for p in projects {
        if p.id.is_empty() || !ids.insert(p.id.as_str()) {
            return Err(ConfigError::Projects(format!("project id {:?} is empty or repeated", p.id)));
        }
        for key in [&p.ingest_key, &p.read_key] {
            if key.is_empty() || !keys.insert(key.as_str()) {
                return Err(ConfigError::Projects(format!("project {}: a key is empty or used twice", p.id)));
            }
        }
        check_time_zone(p)?;
    }
    Ok(())
}

/// Checks that the project's time zone exists (its days are counted in it).
pub fn check_time_zone(p: &ProjectConfig) -> Result<(), ConfigError> {
    match jiff::tz::TimeZone::get(&p.time_zone) {
        Ok(_) => Ok(()),
        Err(_) => Err(ConfigError::TimeZone { project: p.id.clone(), zone: p.time_zone.clone() }),
    }
}

/// A random key: `prefix` and 32 hex digits.
pub fn generate_key(prefix: &str) -> Result<String, ConfigError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| ConfigError::Random(e.to_string()))?;
    let mut key = String::from(prefix);
    for b in bytes {
        key.push_str(&format!("{b:02x}"));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_stored_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let default = ProjectConfig::new(DEFAULT_PROJECT, "", "");
        let (first, source) = resolve_projects(dir.path(), &[], &default).unwrap();
        assert_eq!(source, KeySource::Generated);
        let (second, source) = resolve_projects(dir.path(), &[], &default).unwrap();
        assert_eq!(source, KeySource::Stored);
        assert_eq!(first, second);
        assert!(first[0].ingest_key.starts_with("pk_") && first[0].read_key.starts_with("sk_"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(KEYS_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "the read key is a secret: {mode:o}");
        }
    }

    #[test]
    fn config_file_parses_and_validates() {
        let file: ConfigFile = toml::from_str(
            r#"
            [[projects]]
            id = "a"
            ingest_key = "pa"
            read_key = "sa"
            allowed_origins = ["https://m.example"]
            time_zone = "Asia/Shanghai"
            [[projects]]
            id = "b"
            ingest_key = "pb"
            read_key = "sb"
            "#,
        )
        .unwrap();
        validate(&file.projects).unwrap();
        assert_eq!(file.projects[1].time_zone, "UTC");
        assert!(file.projects[0].allows_origin("https://m.example"));
        assert!(!file.projects[0].allows_origin("https://evil.example"));
        let mut bad = file.projects.clone();
        bad[1].read_key = "pa".into();
        assert!(validate(&bad).is_err());
        bad[1] = ProjectConfig { time_zone: "Mars/Olympus".into(), ..file.projects[1].clone() };
        assert!(matches!(validate(&bad), Err(ConfigError::TimeZone { .. })));
    }
}
