//! What a process without the HTTP API (`empmix-server consume`) serves to its operator:
//! `/metrics`, `/healthz` and `/readyz`, with the same handlers as the server's, so a scraper
//! and a readiness probe treat every process of a deployment alike.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;

use super::{App, error, metrics, query};
use crate::live::LiveHub;
use crate::queue::Queue;
use crate::store::Store;

/// The operator endpoints, serving until dropped.
#[derive(Debug)]
pub struct OperatorServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OperatorServer {
    /// Binds `addr` and serves `/metrics` (the given counters and the queue's depth and lag),
    /// `/healthz` and `/readyz` (the queue and the store answer) from a thread of its own.
    pub fn start(
        addr: SocketAddr,
        queue: Arc<dyn Queue>,
        store: Arc<dyn Store>,
        metrics: Arc<metrics::Metrics>,
    ) -> std::io::Result<OperatorServer> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind(addr))?;
        let addr = listener.local_addr()?;
        let app = Arc::new(App {
            projects: super::auth::Projects::new(&[]),
            queue,
            store,
            metrics,
            live: Arc::new(LiveHub::default()),
            query_budget: std::time::Duration::from_secs(1),
        });
        let router = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(query::readyz))
            .route("/metrics", get(metrics::render))
            .method_not_allowed_fallback(super::method_not_allowed)
            .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such endpoint") })
            .with_state(app);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name("empmix-operator".into()).spawn(move || {
            let served = runtime.block_on(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await
            });
            if let Err(e) = served {
                tracing::error!("the operator endpoints stopped: {e}");
            }
        })?;
        Ok(OperatorServer { addr, stop: Some(stop), thread: Some(thread) })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for OperatorServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
