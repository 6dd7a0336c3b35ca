//! Starting and stopping a whole server: queue, store, consumer and HTTP.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::oneshot;

use crate::config::{ConfigError, KeySource, ProjectConfig, ServerConfig, resolve_projects};
use crate::consumer::{self, ConsumerHandle, Zones};
use crate::http::{self, App, auth::Projects, metrics::Metrics};
use crate::live::{LiveHub, LiveWatcher};
use crate::queue::amqp::{AmqpOptions, AmqpQueue};
use crate::queue::{Queue, QueueError, sqlite::SqliteQueue};
use crate::store::{Store, StoreError, postgres::PgStore, sqlite::SqliteStore};

/// The queue the configuration names: RabbitMQ with `queue_url`, else the embedded SQLite queue.
/// `consume`: this process runs a consumer (a RabbitMQ consumer is only started then).
pub fn open_queue(config: &ServerConfig, consume: bool) -> Result<Arc<dyn Queue>, QueueError> {
    Ok(match &config.queue_url {
        Some(url) => {
            let mut opts = AmqpOptions::new(url.clone(), consume);
            opts.queue.clone_from(&config.queue_name);
            opts.prefetch = config.prefetch.max(1);
            Arc::new(AmqpQueue::connect(opts)?)
        }
        None => Arc::new(SqliteQueue::open_with_floor(
            &config.data_dir,
            config.min_free_disk_mb.saturating_mul(1024 * 1024),
        )?),
    })
}

/// The store the configuration names: PostgreSQL with `store_url`, else the embedded SQLite store.
pub fn open_store(config: &ServerConfig) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match &config.store_url {
        Some(url) => Arc::new(PgStore::open(url)?),
        None => Arc::new(SqliteStore::open(&config.data_dir)?),
    })
}

/// Why a server could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration is invalid or the keys file unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The queue could not be opened.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The store could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The listen address could not be bound, or a thread or runtime could not be started.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The HTTP thread panicked.
    #[error("the HTTP server thread panicked")]
    Panicked,
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServerError {
    let context = context.into();
    move |source| ServerError::Io { context, source }
}

/// Starts servers.
#[derive(Debug)]
pub struct Server;

/// A server running on its own threads. Dropping it shuts it down (as [`RunningServer::shutdown`]).
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    projects: Vec<ProjectConfig>,
    key_source: KeySource,
    stop: Option<oneshot::Sender<()>>,
    http: Option<std::thread::JoinHandle<std::io::Result<()>>>,
    consumer: Option<ConsumerHandle>,
    watcher: Option<LiveWatcher>,
    live: Arc<LiveHub>,
    queue: Arc<dyn Queue>,
}

impl Server {
    /// Opens the data directory (creating and migrating it), binds the listen address, and
    /// starts HTTP (on its own Tokio runtime thread) and, unless disabled, the consumer. Returns
    /// once the server accepts connections. Callable from sync or async code.
    pub fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
        crate::config::create_data_dir(&config.data_dir)
            .map_err(io(format!("creating data directory {}", config.data_dir.display())))?;
        let (projects, key_source) =
            resolve_projects(&config.data_dir, &config.projects, &config.default_project)?;
        let queue = open_queue(&config, config.run_consumer)?;
        let store = open_store(&config)?;
        let metrics = Arc::new(Metrics::default());
        let listener =
            std::net::TcpListener::bind(config.listen).map_err(io(format!("binding {}", config.listen)))?;
        listener.set_nonblocking(true).map_err(io("configuring the listener"))?;
        let addr = listener.local_addr().map_err(io("reading the bound address"))?;
        let consumer = if config.run_consumer {
            Some(
                consumer::spawn(queue.clone(), store.clone(), Zones::new(&projects), metrics.clone())
                    .map_err(io("starting the consumer"))?,
            )
        } else {
            None
        };
        let live = Arc::new(LiveHub::default());
        let watcher =
            LiveWatcher::spawn(store.clone(), live.clone()).map_err(io("starting the live watcher"))?;
        let app = Arc::new(App {
            projects: Projects::new(&projects),
            queue: queue.clone(),
            store,
            metrics,
            live: live.clone(),
            query_budget: config.query_budget,
        });
        let mut runtime = tokio::runtime::Builder::new_multi_thread();
        runtime.enable_all().thread_name("empmix-http");
        if let Some(n) = config.worker_threads {
            runtime.worker_threads(n.max(1));
        }
        let runtime = runtime.build().map_err(io("starting the Tokio runtime"))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let conn_limits = http::connections::ConnLimits::new(&config);
        let limiter = Arc::new(http::limits::Limiter::new(&config, &projects));
        let http = std::thread::Builder::new()
            .name("empmix-http-main".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    let stop = async move {
                        let _ = stopped.await;
                    };
                    let metrics = app.metrics.clone();
                    http::connections::serve(listener, http::router(app), conn_limits, limiter, metrics, stop)
                        .await
                })
            })
            .map_err(io("starting the HTTP thread"))?;
        tracing::info!(%addr, data_dir = %config.data_dir.display(), "empmix-server started");
        Ok(RunningServer {
            addr,
            projects,
            key_source,
            stop: Some(stop),
            http: Some(http),
            consumer,
            watcher: Some(watcher),
            live,
            queue,
        })
    }
}

impl RunningServer {
    /// The bound address (the real port when listening on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The projects served, with their keys.
    pub fn projects(&self) -> &[ProjectConfig] {
        &self.projects
    }

    /// The first project's ingest key.
    pub fn ingest_key(&self) -> &str {
        self.projects.first().map_or("", |p| p.ingest_key.as_str())
    }

    /// The first project's read key.
    pub fn read_key(&self) -> &str {
        self.projects.first().map_or("", |p| p.read_key.as_str())
    }

    /// Where the keys came from (generated keys are worth printing).
    pub fn key_source(&self) -> KeySource {
        self.key_source
    }

    /// Stops accepting connections, finishes in-flight requests (every 200 already sent is
    /// durable), stops the consumer and closes the queue.
    pub fn shutdown(mut self) -> Result<(), ServerError> {
        self.stop_all()
    }

    fn stop_all(&mut self) -> Result<(), ServerError> {
        if let Some(stop) = self.stop.take() {
            self.live.close();
            let _ = stop.send(());
        }
        let result = match self.http.take().map(|t| t.join()) {
            Some(Ok(Ok(()))) | None => Ok(()),
            Some(Ok(Err(e))) => Err(ServerError::Io { context: "serving HTTP".into(), source: e }),
            Some(Err(_)) => Err(ServerError::Panicked),
        };
        if let Some(c) = self.consumer.take() {
            c.stop();
        }
        if let Some(mut w) = self.watcher.take() {
            w.stop();
        }
        self.queue.close();
        result
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.stop_all();
    }
}
