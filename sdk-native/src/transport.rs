//! Sending request bodies with reqwest: gzip, the ingest key, timeouts, `Retry-After`.

use std::io::Write;
use std::time::Duration;

use empmix_core::protocol::{self, API_KEY_HEADER, retry_after};
use empmix_core::{BatchId, Transmit};
use flate2::Compression;
use flate2::write::GzEncoder;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, RETRY_AFTER};

/// Bodies smaller than this are sent uncompressed even with gzip on: compressing them saves
/// less than the header costs.
const GZIP_MIN_BYTES: usize = 1024;
/// Response bodies are read up to this size (a rejection list for 500 events fits easily).
const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// HTTP settings fixed at build time.
#[derive(Debug, Clone)]
pub(crate) struct TransportConfig {
    pub(crate) endpoint: reqwest::Url,
    pub(crate) ingest_key: HeaderValue,
    pub(crate) gzip: bool,
    pub(crate) request_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) debug: bool,
}

/// What came back for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The server answered.
    Status {
        /// HTTP status.
        status: u16,
        /// Parsed `Retry-After`.
        retry_after: Option<Duration>,
        /// The body (possibly cut short or empty).
        body: String,
    },
    /// No answer: connection error or timeout.
    Failed,
}

/// A reqwest client (one connection pool) and where to send.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    http: reqwest::Client,
    url: reqwest::Url,
    key: HeaderValue,
    gzip: bool,
    debug: bool,
}

impl Transport {
    /// Builds the HTTP client (rustls, connection reuse, timeouts).
    pub(crate) fn new(config: &TransportConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("empmix-rust/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Transport {
            http,
            url: events_url(&config.endpoint),
            key: config.ingest_key.clone(),
            gzip: config.gzip,
            debug: config.debug,
        })
    }

    /// Sends one request and returns its batch with the outcome. Never fails: errors are
    /// [`Outcome::Failed`].
    pub(crate) async fn send(&self, transmit: Transmit) -> (BatchId, Outcome) {
        let Transmit { batch, body, events } = transmit;
        let raw_bytes = body.len();
        let mut request = self
            .http
            .post(self.url.clone())
            .header(API_KEY_HEADER, self.key.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let compressed = if self.gzip && raw_bytes >= GZIP_MIN_BYTES { gzip(body.as_bytes()) } else { None };
        let sent_bytes;
        request = match compressed {
            Some(gz) => {
                sent_bytes = gz.len();
                request.header(CONTENT_ENCODING, HeaderValue::from_static("gzip")).body(gz)
            }
            None => {
                sent_bytes = raw_bytes;
                request.body(body)
            }
        };
        if self.debug {
            tracing::debug!(?batch, events, raw_bytes, sent_bytes, "sending batch");
        }
        let outcome = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| retry_after(v, crate::shared::now()));
                let body = read_body(response).await;
                Outcome::Status { status, retry_after, body }
            }
            Err(error) => {
                tracing::debug!(?batch, %error, "request failed");
                Outcome::Failed
            }
        };
        if self.debug {
            match &outcome {
                Outcome::Status { status, retry_after, .. } => {
                    tracing::debug!(?batch, status, ?retry_after, "batch answered")
                }
                Outcome::Failed => tracing::debug!(?batch, "batch failed"),
            }
        }
        (batch, outcome)
    }
}

/// Where batches go: the core's rule for every SDK ([`protocol::events_url`]).
fn events_url(endpoint: &reqwest::Url) -> reqwest::Url {
    // Adding a path to a URL that parsed keeps it a URL; the fallback is never taken.
    reqwest::Url::parse(&protocol::events_url(endpoint.as_str())).unwrap_or_else(|_| endpoint.clone())
}

async fn read_body(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    // A body that fails or is cut short mid-way still leaves the status, which decides.
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_RESPONSE_BYTES.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    String::from_utf8(body).unwrap_or_default()
}

fn gzip(data: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(data.len() / 4), Compression::fast());
    encoder.write_all(data).ok()?;
    encoder.finish().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use std::io::Read;

    use super::*;

    #[test]
    fn gzip_round_trips_and_urls_get_the_events_path() {
        let data = b"{\"events\":[]}".repeat(100);
        let gz = gzip(&data).unwrap();
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        let base = reqwest::Url::parse("http://127.0.0.1:8000").unwrap();
        assert_eq!(events_url(&base).as_str(), "http://127.0.0.1:8000/api/analytics/events");
        let custom = reqwest::Url::parse("http://h/track").unwrap();
        assert_eq!(events_url(&custom).as_str(), "http://h/track");
        // A prefix the server is mounted under, as every SDK reads it.
        let prefix = reqwest::Url::parse("http://h/analytics/?x=1").unwrap();
        assert_eq!(events_url(&prefix).as_str(), "http://h/analytics/api/analytics/events?x=1");
    }
}
