//! The HTTP accept loop: a bound on open connections (over it, new ones wait in the kernel's
//! listen backlog), a header timeout that is also the keep-alive idle timeout, and graceful
//! shutdown bounded by a grace period. Per-request limits are [`super::limits`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;

use super::limits::Limiter;
use crate::config::ServerConfig;
use crate::http::metrics::Metrics;

/// What the accept loop needs.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// See [`ServerConfig::header_timeout`].
    pub header_timeout: Duration,
    /// See [`ServerConfig::max_connections`].
    pub max_connections: usize,
    /// How long shutdown waits for open connections before dropping them.
    pub shutdown_grace: Duration,
}

impl ConnLimits {
    /// The limits a configuration sets.
    pub fn new(config: &ServerConfig) -> Self {
        ConnLimits {
            header_timeout: config.header_timeout,
            max_connections: config.max_connections.max(1),
            shutdown_grace: config.header_timeout + config.body_timeout + Duration::from_secs(10),
        }
    }
}

/// Serves `router` on `listener` until `stop` resolves, then stops accepting, lets in-flight
/// requests finish (idle connections close at once) and returns once every connection closed
/// or [`ConnLimits::shutdown_grace`] passed.
///
/// At most `max_connections` connections are open: the loop accepts only while it holds a
/// permit, so further clients wait in the kernel's listen backlog (and are refused by it once
/// that is full) until a connection closes.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: ConnLimits,
    limiter: Arc<Limiter>,
    metrics: Arc<Metrics>,
    stop: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            biased;
            () = &mut stop => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors or a connection reset before it was accepted:
                    // back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (router, limiter) = (router.clone(), limiter.clone());
        let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut().insert(limiter.clone());
            tower_call(router.clone(), req)
        });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        let metrics = metrics.clone();
        tokio::spawn(async move {
            metrics.connections(1);
            if let Err(e) = conn.await {
                if e.is_timeout() {
                    metrics.header_timed_out();
                }
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            metrics.connections(-1);
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(grace = ?limits.shutdown_grace, "connections still open at shutdown; dropping them");
    }
    Ok(())
}

async fn tower_call(
    router: Router,
    req: Request<hyper::body::Incoming>,
) -> Result<Response, std::convert::Infallible> {
    use tower::ServiceExt as _;
    router.oneshot(req.map(Body::new)).await
}
