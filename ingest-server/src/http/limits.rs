//! Slow and greedy clients, per request: a deadline for request bodies (408), and ingest rate
//! limits per project and per client address plus a per-project daily event quota (429 with
//! `Retry-After`). The connection side (a bound on open connections, the header and idle
//! timeout) is [`super::connections`].
//!
//! Rate limits count ingest *requests* (a batch of up to the protocol's batch limit of events
//! is one request), so a flood is refused before its body is read. The daily quota counts
//! *events*: a batch arriving while the day's count is under the quota is accepted whole.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use empmix_core::protocol::{EVENTS_PATH, MAX_BATCH_BYTES, TRACK_PATH};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Body as _, Frame, SizeHint};

use super::{App, auth, error};
use crate::config::{ProjectConfig, RateLimit, ServerConfig};
use crate::http::metrics::Metrics;

/// Client-address buckets kept at most; past it, idle (full) buckets are dropped, then the
/// least recently used half.
pub const MAX_CLIENT_BUCKETS: usize = 65_536;

/// A request body that fails once `deadline` passes before it has arrived in full.
struct DeadlineBody {
    inner: Body,
    deadline: tokio::time::Instant,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    fired: Arc<AtomicBool>,
}

/// The error a body that missed its deadline reads with.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimeout;

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        let deadline = this.deadline;
        let sleep = this.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_ready() {
            this.fired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimeout))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Rate-limit state: per-project buckets and quotas, per-address buckets.
#[derive(Debug)]
pub struct Limiter {
    body_timeout: Duration,
    trust_forwarded_for: bool,
    projects: HashMap<String, ProjectLimits>,
    /// For requests whose key names no project.
    unknown_client_limit: Option<RateLimit>,
    clients: Mutex<ClientTable>,
}

#[derive(Debug)]
struct ProjectLimits {
    index: u32,
    bucket: Option<(RateLimit, Mutex<Bucket>)>,
    client_limit: Option<RateLimit>,
    quota: Option<Quota>,
}

#[derive(Debug)]
struct Quota {
    limit: u64,
    zone: jiff::tz::TimeZone,
    /// The day counted and the events accepted on it.
    used: Mutex<(jiff::civil::Date, u64)>,
}

impl Quota {
    fn today(&self) -> jiff::Zoned {
        jiff::Timestamp::now().to_zoned(self.zone.clone())
    }

    /// `Err(seconds until the next day)` when today's quota is used up.
    fn check(&self) -> Result<(), u64> {
        let now = self.today();
        let Ok(mut used) = self.used.lock() else { return Ok(()) };
        if used.0 != now.date() {
            *used = (now.date(), 0);
        }
        if used.1 < self.limit {
            return Ok(());
        }
        let next = now.date().tomorrow().ok().and_then(|d| d.to_zoned(self.zone.clone()).ok());
        let secs = next.map_or(3600, |n| {
            let left = n.timestamp().as_millisecond() - now.timestamp().as_millisecond();
            u64::try_from(left.max(0)).unwrap_or(0).div_ceil(1000)
        });
        Err(secs.max(1))
    }

    fn add(&self, events: u64) {
        let today = self.today().date();
        if let Ok(mut used) = self.used.lock() {
            if used.0 != today {
                *used = (today, 0);
            }
            used.1 = used.1.saturating_add(events);
        }
    }
}

/// A token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn full(limit: RateLimit, now: Instant) -> Self {
        Bucket { tokens: capacity(limit), last: now }
    }

    fn refill(&mut self, limit: RateLimit, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * f64::from(limit.requests_per_second)).min(capacity(limit));
        self.last = now;
    }

    /// Takes a token, or says in how many whole seconds one is there.
    fn take(&mut self, limit: RateLimit, now: Instant) -> Result<(), u64> {
        self.refill(limit, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - self.tokens) / f64::from(limit.requests_per_second.max(1));
        Err((wait.ceil() as u64).max(1))
    }

    /// Whether the bucket has refilled completely (so forgetting it changes nothing).
    fn is_idle(&self, limit: RateLimit, now: Instant) -> bool {
        let mut b = *self;
        b.refill(limit, now);
        b.tokens >= capacity(limit)
    }
}

fn capacity(limit: RateLimit) -> f64 {
    f64::from(if limit.burst == 0 { limit.requests_per_second } else { limit.burst }.max(1))
}

fn active(limit: Option<RateLimit>) -> Option<RateLimit> {
    limit.filter(|l| l.requests_per_second > 0)
}

#[derive(Debug, Default)]
struct ClientTable {
    buckets: HashMap<(u32, IpAddr), (Bucket, RateLimit)>,
}

impl ClientTable {
    fn take(&mut self, key: (u32, IpAddr), limit: RateLimit, now: Instant) -> Result<(), u64> {
        if !self.buckets.contains_key(&key) && self.buckets.len() >= MAX_CLIENT_BUCKETS {
            self.evict(now);
        }
        let (bucket, _) = self.buckets.entry(key).or_insert_with(|| (Bucket::full(limit, now), limit));
        bucket.take(limit, now)
    }

    /// Drops full buckets; if that frees too little, the least recently used half.
    fn evict(&mut self, now: Instant) {
        self.buckets.retain(|_, (b, l)| !b.is_idle(*l, now));
        if self.buckets.len() >= MAX_CLIENT_BUCKETS / 2 {
            let mut lasts: Vec<Instant> = self.buckets.values().map(|(b, _)| b.last).collect();
            let middle = lasts.len() / 2;
            let (_, cut, _) = lasts.select_nth_unstable(middle);
            let cut = *cut;
            self.buckets.retain(|_, (b, _)| b.last > cut);
        }
    }
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Project,
    Client,
    Quota,
}

impl Scope {
    fn label(self) -> &'static str {
        match self {
            Scope::Project => "project",
            Scope::Client => "client",
            Scope::Quota => "quota",
        }
    }
}

impl Limiter {
    /// The limits of these (validated) projects under this configuration.
    pub fn new(config: &ServerConfig, projects: &[ProjectConfig]) -> Self {
        let now = Instant::now();
        let projects = projects
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let limits = ProjectLimits {
                    index: u32::try_from(i).unwrap_or(u32::MAX - 1),
                    bucket: active(p.rate_limit).map(|l| (l, Mutex::new(Bucket::full(l, now)))),
                    client_limit: active(p.client_rate_limit.or(config.client_rate_limit)),
                    quota: p.daily_event_quota.map(|limit| {
                        let zone = jiff::tz::TimeZone::get(&p.time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
                        let today = jiff::Timestamp::now().to_zoned(zone.clone()).date();
                        Quota { limit, zone, used: Mutex::new((today, 0)) }
                    }),
                };
                (p.id.clone(), limits)
            })
            .collect();
        Limiter {
            body_timeout: config.body_timeout,
            trust_forwarded_for: config.trust_forwarded_for,
            projects,
            unknown_client_limit: active(config.client_rate_limit),
            clients: Mutex::new(ClientTable::default()),
        }
    }

    /// The address a request's per-address limit counts: the TCP peer, or with
    /// `trust_forwarded_for` the last valid `X-Forwarded-For` entry. IPv6 addresses count by
    /// their /64 (one host usually holds a whole /64).
    fn client_address(&self, req: &Request) -> Option<IpAddr> {
        let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let forwarded = self
            .trust_forwarded_for
            .then(|| {
                req.headers()
                    .get_all("x-forwarded-for")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(','))
                    .filter_map(|a| a.trim().parse::<IpAddr>().ok())
                    .next_back()
            })
            .flatten();
        let ip = forwarded.or(peer)?;
        Some(match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let s = v6.segments();
                    IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
                }
            },
            v4 => v4,
        })
    }

    /// Checks the quota, then the client address's bucket, then the project's.
    fn admit(&self, project: Option<&ProjectLimits>, client: Option<IpAddr>) -> Result<(), (Scope, u64)> {
        if let Some(q) = project.and_then(|p| p.quota.as_ref()) {
            q.check().map_err(|s| (Scope::Quota, s))?;
        }
        let client_limit = match project {
            Some(p) => p.client_limit,
            None => self.unknown_client_limit,
        };
        // Loopback peers are a proxy on this host or a local tool, not clients.
        if let (Some(limit), Some(ip)) = (client_limit, client.filter(|ip| !ip.is_loopback())) {
            let key = (project.map_or(u32::MAX, |p| p.index), ip);
            if let Ok(mut table) = self.clients.lock() {
                table.take(key, limit, Instant::now()).map_err(|s| (Scope::Client, s))?;
            }
        }
        if let Some((limit, bucket)) = project.and_then(|p| p.bucket.as_ref()) {
            if let Ok(mut b) = bucket.lock() {
                b.take(*limit, Instant::now()).map_err(|s| (Scope::Project, s))?;
            }
        }
        Ok(())
    }
}

/// Middleware: the body deadline of every request (408 once it passes); for ingest, the
/// project's daily quota and the client address's and project's rate limits (429 with
/// `Retry-After`), checked before the body is read when the key is in a header or the query.
/// Does nothing for requests not served by [`serve`] (no [`Limiter`] in their extensions).
pub async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let Some(limiter) = req.extensions().get::<Arc<Limiter>>().cloned() else {
        return next.run(req).await;
    };
    let fired = Arc::new(AtomicBool::new(false));
    let (parts, body) = req.into_parts();
    let body = if body.is_end_stream() {
        body
    } else {
        Body::new(DeadlineBody {
            inner: body,
            deadline: tokio::time::Instant::now() + limiter.body_timeout,
            sleep: None,
            fired: fired.clone(),
        })
    };
    let mut req = Request::from_parts(parts, body);
    let ingest = req.method() == Method::POST && matches!(req.uri().path(), EVENTS_PATH | TRACK_PATH);
    let mut quota = None;
    if ingest {
        let key = match auth::presented_key(req.headers(), req.uri()) {
            Some(key) => Some(key),
            // A beacon carries its key in the body: read it here (the handler reads the copy).
            None => match peek_body_key(req).await {
                Ok((r, key)) => {
                    req = r;
                    key
                }
                Err(resp) => return timed_out(resp, &fired, &app.metrics),
            },
        };
        let project = key
            .as_deref()
            .and_then(|k| app.projects.by_ingest_key(k))
            .and_then(|p| limiter.projects.get_key_value(&p.id));
        let client = limiter.client_address(&req);
        if let Err((scope, secs)) = limiter.admit(project.map(|(_, l)| l), client) {
            app.metrics.rate_limited(project.map_or("unknown", |(id, _)| id.as_str()), scope.label());
            return too_many(scope, secs);
        }
        quota = project.and_then(|(_, l)| l.quota.as_ref());
    }
    let resp = timed_out(next.run(req).await, &fired, &app.metrics);
    match quota {
        Some(q) if resp.status() == StatusCode::OK => {
            let (parts, body) = resp.into_parts();
            let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
            let accepted = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("accepted")?.as_u64())
                .unwrap_or(0);
            q.add(accepted);
            Response::from_parts(parts, Body::from(bytes))
        }
        _ => resp,
    }
}

/// `resp`, or a 408 (closing the connection) when the body missed its deadline.
fn timed_out(resp: Response, fired: &AtomicBool, metrics: &Metrics) -> Response {
    if !fired.load(Ordering::Relaxed) {
        return resp;
    }
    metrics.body_timed_out();
    let mut resp =
        error(StatusCode::REQUEST_TIMEOUT, "request_timeout", "the request body did not arrive in time");
    resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

fn too_many(scope: Scope, retry_after_secs: u64) -> Response {
    let (code, message) = match scope {
        Scope::Project => ("rate_limited", "too many requests for this project; retry later"),
        Scope::Client => ("rate_limited", "too many requests from this address; retry later"),
        Scope::Quota => ("quota_exceeded", "this project's daily event quota is used up; retry tomorrow"),
    };
    let mut resp = error(StatusCode::TOO_MANY_REQUESTS, code, message);
    // Exposed to browser code on another origin by the CORS layer (`cors.rs`).
    resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    resp
}

#[derive(serde::Deserialize)]
struct KeyOnly {
    #[serde(default)]
    api_key: Option<String>,
}

/// Reads the body (with ingest's size limit) and the `api_key` field in it, if any.
async fn peek_body_key(req: Request) -> Result<(Request, Option<String>), Response> {
    let (parts, body) = req.into_parts();
    let raw = match Limited::new(body, MAX_BATCH_BYTES).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("body over {MAX_BATCH_BYTES} bytes"),
            ));
        }
        Err(e) => {
            return Err(error(StatusCode::BAD_REQUEST, "bad_body", format!("could not read body: {e}")));
        }
    };
    let gzip = parts
        .headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|e| matches!(e.trim().to_ascii_lowercase().as_str(), "gzip" | "x-gzip"));
    let plain = if gzip {
        super::body::gunzip(&raw, MAX_BATCH_BYTES).ok().map(Bytes::from)
    } else {
        Some(raw.clone())
    };
    let key = plain.and_then(|b| serde_json::from_slice::<KeyOnly>(&b).ok()).and_then(|k| k.api_key);
    Ok((Request::from_parts(parts, Body::from(raw)), key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_rate() {
        let limit = RateLimit::new(10, 3);
        let t0 = Instant::now();
        let mut b = Bucket::full(limit, t0);
        assert!((0..3).all(|_| b.take(limit, t0).is_ok()));
        assert_eq!(b.take(limit, t0), Err(1));
        assert!(b.take(limit, t0 + Duration::from_millis(110)).is_ok());
        assert!(!b.is_idle(limit, t0 + Duration::from_millis(110)));
        assert!(b.is_idle(limit, t0 + Duration::from_secs(1)));
    }

    #[test]
    fn client_table_stays_bounded() {
        let limit = RateLimit::new(1, 1);
        let now = Instant::now();
        let mut table = ClientTable::default();
        for i in 0..(MAX_CLIENT_BUCKETS as u32 + 10) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(i));
            let _ = table.take((0, ip), limit, now + Duration::from_micros(u64::from(i)));
        }
        assert!(table.buckets.len() <= MAX_CLIENT_BUCKETS);
    }

    #[test]
    fn limits_come_from_toml_and_flags() {
        let file: crate::config::ConfigFile = toml::from_str(
            r#"
            [[projects]]
            id = "a"
            ingest_key = "pa"
            read_key = "sa"
            rate_limit = { requests_per_second = 5, burst = 10 }
            client_rate_limit = { requests_per_second = 0 }
            daily_event_quota = 1_000
            "#,
        )
        .unwrap();
        let p = &file.projects[0];
        assert_eq!(p.rate_limit, Some(RateLimit::new(5, 10)));
        assert_eq!(p.daily_event_quota, Some(1000));
        let limiter = Limiter::new(&ServerConfig::new("/nonexistent"), &file.projects);
        let a = &limiter.projects["a"];
        assert!(a.client_limit.is_none(), "0 turns the per-address limit off");
        assert!(a.bucket.is_some() && a.quota.is_some());
        assert!(
            toml::from_str::<crate::config::ConfigFile>(
                "[[projects]]\nid = \"b\"\ningest_key = \"p\"\nread_key = \"s\"\nrate_limit = { rps = 1 }"
            )
            .is_err()
        );

        use clap::Parser as _;
        let cli = crate::cli::Cli::try_parse_from([
            "empmix-server",
            "--ingest-key=pk",
            "--read-key=sk",
            "--client-rate-limit=0",
            "--rate-limit=7/20",
            "--daily-event-quota=9",
            "--header-timeout-ms=250",
            "--max-connections=3",
            "--trust-forwarded-for",
        ])
        .unwrap();
        let c = cli.server_config().unwrap();
        assert_eq!(c.client_rate_limit, None);
        assert_eq!(c.projects[0].rate_limit, Some(RateLimit::new(7, 20)));
        assert_eq!(c.projects[0].daily_event_quota, Some(9));
        assert_eq!(
            (c.header_timeout, c.max_connections, c.trust_forwarded_for),
            (Duration::from_millis(250), 3, true)
        );
        let defaults = crate::cli::Cli::try_parse_from(["empmix-server"]).unwrap().server_config().unwrap();
        assert_eq!(defaults.client_rate_limit, Some(crate::config::DEFAULT_CLIENT_RATE_LIMIT));
        assert_eq!(defaults.body_timeout, crate::config::DEFAULT_BODY_TIMEOUT);
        assert!(crate::cli::Cli::try_parse_from(["empmix-server", "--client-rate-limit=fast"]).is_err());
    }

    #[test]
    fn quota_refuses_until_tomorrow() {
        let zone = jiff::tz::TimeZone::UTC;
        let today = jiff::Timestamp::now().to_zoned(zone.clone()).date();
        let q = Quota { limit: 2, zone, used: Mutex::new((today, 0)) };
        assert!(q.check().is_ok());
        q.add(2);
        let secs = q.check().unwrap_err();
        assert!((1..=86_400).contains(&secs), "{secs}");
    }
}
