//! [`ClientBuilder`]: every setting, validated at [`ClientBuilder::build`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use empmix_core::{AttributionModel, Config, ConfigBuilder, Context, Engine, HostContext, OverflowPolicy};
use reqwest::header::HeaderValue;

use crate::client::{Client, Handle};
use crate::error::Error;
use crate::shared::{Shared, now, seeded_entropy};
use crate::store::LogStore;
use crate::transport::{Transport, TransportConfig};
use crate::worker;

/// Default time a request may take, connection included.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time to establish a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time [`Client::flush`] waits.
pub const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time [`Client::shutdown`] waits for the queue to drain.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds a [`Client`]. Start with [`Client::builder`]; every value is checked by
/// [`ClientBuilder::build`], which returns an error instead of panicking.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct ClientBuilder {
    ingest_key: String,
    endpoint: Option<String>,
    core: ConfigBuilder,
    persist_dir: Option<PathBuf>,
    gzip: bool,
    request_timeout: Duration,
    connect_timeout: Duration,
    flush_timeout: Duration,
    shutdown_timeout: Duration,
    debug: bool,
    app: Option<String>,
    locale: Option<String>,
    os: Option<String>,
    host: HostContext,
}

macro_rules! core_setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty;)*) => {
        $($(#[$doc])* pub fn $name(mut self, value: $ty) -> Self {
            self.core = self.core.$name(value);
            self
        })*
    };
}

impl ClientBuilder {
    pub(crate) fn new(ingest_key: String) -> Self {
        ClientBuilder {
            ingest_key,
            endpoint: None,
            core: Config::builder(),
            persist_dir: None,
            gzip: true,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            flush_timeout: DEFAULT_FLUSH_TIMEOUT,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            debug: false,
            app: None,
            locale: None,
            os: None,
            host: HostContext::default(),
        }
    }

    /// The server: its base URL (`https://analytics.example`, or a prefix it is mounted under,
    /// to which `/api/analytics/events` is added) or the full ingest URL (ending in that path
    /// or `/track`), by the rule every SDK shares (`empmix_core::protocol::events_url`).
    /// Required.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    core_setters! {
        /// Send when this many events are queued (default 20).
        flush_at: usize;
        /// Send when the oldest unsent event has waited this long (default 30 s).
        flush_interval: Duration;
        /// Most events held unsent, in memory and on disk (default 10,000).
        max_queue: usize;
        /// What a full queue does with a new event (default: drop the oldest). `track` never
        /// blocks either way.
        overflow: OverflowPolicy;
        /// Most events in one request (default and maximum 500).
        max_batch_events: usize;
        /// Most bytes in one request body before compression (default and maximum 1 MiB).
        max_batch_bytes: usize;
        /// Events older than this are dropped unsent (default 7 days).
        max_event_age: Duration;
        /// Inactivity that starts a new session (default 30 minutes).
        session_timeout: Duration;
        /// First-touch (default) or last-touch share attribution.
        attribution_model: AttributionModel;
        /// How long an opened share keeps the credit (default 30 days).
        attribution_window: Duration;
        /// First retry delay before jitter (default 1 s).
        backoff_base: Duration;
        /// Longest retry delay before jitter (default 5 minutes).
        backoff_cap: Duration;
        /// Requests in flight at once (default 1, which keeps delivery in tracking order).
        max_in_flight: usize;
        /// Send the context once per request instead of in every event (default on; off for
        /// a server older than the batch's `context` field, docs/protocol.md).
        shared_context: bool;
    }

    /// Persist identity, attribution and unsent events in this directory (created if
    /// missing), so they survive restarts and crashes. One client per directory: `build`
    /// returns [`Error::DirectoryInUse`] while another client, in this process or (on Unix)
    /// another one, has it open. Without it the client keeps everything in memory.
    pub fn persistence_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.persist_dir = Some(dir.into());
        self
    }

    /// Compress request bodies of 1 KiB and more with gzip (default on).
    pub fn gzip(mut self, on: bool) -> Self {
        self.gzip = on;
        self
    }

    /// The longest one request may take, connecting included (default 10 s). A request that
    /// times out is retried with backoff.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The longest connecting may take (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long [`Client::flush`] and [`Client::flush_blocking`] wait (default 10 s).
    pub fn flush_timeout(mut self, timeout: Duration) -> Self {
        self.flush_timeout = timeout;
        self
    }

    /// How long [`Client::shutdown`] waits for the queue to drain (default 10 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Emit a `tracing` debug event for every tracked event and every request and answer
    /// (default off; warnings and errors are always emitted).
    pub fn debug(mut self, on: bool) -> Self {
        self.debug = on;
        self
    }

    /// The host application's name and version, sent in every event's context.
    pub fn app(mut self, app: impl Into<String>) -> Self {
        self.app = Some(app.into());
        self
    }

    /// The user's BCP 47 locale (`en-US`), sent in every event's context.
    pub fn locale(mut self, locale: impl Into<String>) -> Self {
        self.locale = Some(locale.into());
        self
    }

    /// The host application's version and build number (`app_version`, `app_build` in every
    /// event's context); empty strings are left out.
    pub fn app_version(mut self, version: impl Into<String>, build: impl Into<String>) -> Self {
        self.host.app_version(&version.into(), &build.into());
        self
    }

    /// The operating system as the host reports it (`iOS`, `17.5`), instead of the one this
    /// library was compiled for: `os` and `os_version` in every event's context.
    pub fn os(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        let name = name.into();
        if !name.is_empty() {
            self.os = Some(name);
        }
        self.host.os_version(&version.into());
        self
    }

    /// The device model (`iPhone15,2`), `device_model` in every event's context.
    pub fn device_model(mut self, model: impl Into<String>) -> Self {
        self.host.device_model(&model.into());
        self
    }

    /// The screen size in points or pixels as the host measures it, `screen` (`390x844`) in
    /// every event's context. Zero leaves it out.
    pub fn screen_size(mut self, width: u32, height: u32) -> Self {
        self.host.screen_size(width, height);
        self
    }

    /// The IANA time zone (`Europe/Berlin`), `timezone` in every event's context.
    pub fn time_zone(mut self, zone: impl Into<String>) -> Self {
        self.host.time_zone(&zone.into());
        self
    }

    /// Checks every setting, opens the persistence directory (restoring what it holds), and
    /// starts the client's background thread.
    pub fn build(self) -> Result<Client, Error> {
        let endpoint_text = self.endpoint.unwrap_or_default();
        let endpoint = reqwest::Url::parse(&endpoint_text)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| Error::InvalidEndpoint(endpoint_text.clone()))?;
        let ingest_key = HeaderValue::from_str(&self.ingest_key)
            .ok()
            .filter(|_| !self.ingest_key.is_empty() && self.ingest_key.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or(Error::InvalidIngestKey)?;
        for (name, d) in [
            ("request_timeout", self.request_timeout),
            ("connect_timeout", self.connect_timeout),
            ("flush_timeout", self.flush_timeout),
            ("shutdown_timeout", self.shutdown_timeout),
        ] {
            if d.is_zero() {
                return Err(Error::ZeroTimeout(name));
            }
        }
        let context = Context {
            library_name: "empmix-rust".into(),
            library_version: env!("CARGO_PKG_VERSION").into(),
            os: Some(self.os.unwrap_or_else(|| std::env::consts::OS.into())),
            app: self.app,
            locale: self.locale,
            extra: self.host.properties(),
            ..Context::default()
        };
        let config =
            self.core.persist(self.persist_dir.is_some()).report_outcomes(false).context(context).build()?;

        let transport = Transport::new(&TransportConfig {
            endpoint,
            ingest_key,
            gzip: self.gzip,
            request_timeout: self.request_timeout,
            connect_timeout: self.connect_timeout,
            debug: self.debug,
        })
        .map_err(|e| Error::Start(format!("HTTP client: {e}")))?;

        let mut rng = seeded_entropy();
        let (engine, store, torn) = match &self.persist_dir {
            Some(dir) => {
                let (store, snapshot, opened) = LogStore::open(dir)?;
                let (engine, report) = Engine::restore(config, &snapshot, now(), &mut rng);
                if report.restored > 0 || report.dropped > 0 || report.corrupt > 0 {
                    tracing::info!(
                        restored = report.restored,
                        dropped = report.dropped,
                        corrupt = report.corrupt,
                        dir = %dir.display(),
                        "restored persisted events"
                    );
                }
                (engine, Some(store), opened.torn)
            }
            None => (Engine::new(config, now(), &mut rng), None, false),
        };
        let shared = Arc::new(Shared::new(engine, rng, store, torn, self.debug));
        // The state and any removals from the restore are on disk before `build` returns.
        shared.lock().collect_ops();
        shared.write_pending();

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Start(format!("Tokio runtime: {e}")))?;
        let (commands, receiver) = tokio::sync::mpsc::unbounded_channel();
        let worker_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("empmix-client".into())
            .spawn(move || runtime.block_on(worker::run(worker_shared, transport, receiver)))
            .map_err(|e| Error::Start(format!("background thread: {e}")))?;
        Ok(Client::from_handle(Handle::new(
            shared,
            commands,
            thread,
            self.flush_timeout,
            self.shutdown_timeout,
        )))
    }
}
