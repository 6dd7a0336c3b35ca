//! Protocol v1: the one definition of what travels between an SDK and an ingest server.
//!
//! SDKs encode with this module and servers decode with it (the `decode` feature), and both
//! test against the golden fixtures in `sdk-core/fixtures/protocol/`. `docs/protocol.md` is the
//! same contract written for people.
//!
//! A request is `POST` [`EVENTS_PATH`] (or its alias [`TRACK_PATH`]) with a JSON body
//! `{"sent_at": <ms>, "events": [<event>, …]}`, optionally gzip-compressed
//! (`Content-Encoding: gzip`). Each event is an object with `event_id`, `type`,
//! `distinct_id`, `anonymous_id`, `session_id`, `timestamp`, `properties`, optionally
//! `attribution`, and `context`.

#[cfg(feature = "decode")]
mod decode;
mod http_date;
mod response;

#[cfg(feature = "decode")]
pub use decode::{DecodeError, DecodedBatch, DecodedEvent, decode_batch, parse_rfc3339_millis};
pub use http_date::retry_after;
pub(crate) use response::rejected_events;
pub use response::{BatchResponse, ErrorBody, RejectReason, Rejection};

use crate::event::EventId;
use crate::json;
use crate::time::Timestamp;

/// Protocol version implemented by this module.
pub const VERSION: u32 = 1;
/// The ingest endpoint.
pub const EVENTS_PATH: &str = "/api/analytics/events";
/// An alias of [`EVENTS_PATH`] (the seed architecture's `POST /track`).
pub const TRACK_PATH: &str = "/track";
/// Header carrying the ingest key (alternatively `Authorization: Bearer <key>`).
pub const API_KEY_HEADER: &str = "X-API-Key";
/// Query parameter, or top-level body field, carrying the ingest key where headers cannot be
/// set (`navigator.sendBeacon`).
pub const API_KEY_PARAM: &str = "api_key";
/// Most events in one request.
pub const MAX_EVENTS_PER_BATCH: usize = 500;
/// Most bytes in one request body, counted after decompression.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;
/// Most bytes in one encoded event.
pub const MAX_EVENT_BYTES: usize = 32 * 1024;
/// Largest body a browser beacon carries reliably (browsers cap queued keepalive data at 64 KiB).
pub const BEACON_MAX_BYTES: usize = 60 * 1024;
/// Bytes of a batch body besides its events: `{"sent_at":…,"events":[…]}`.
pub const BATCH_OVERHEAD_BYTES: usize = 48;

/// Where an SDK configured with `endpoint` sends its batches, the one rule for every SDK: a
/// URL whose path already ends in [`EVENTS_PATH`] or [`TRACK_PATH`] is the ingest URL itself;
/// any other is the server's base URL (`https://analytics.example.com`, or a prefix it is
/// mounted under, `https://example.com/analytics`), to which [`EVENTS_PATH`] is added after
/// the trailing slashes go. A query string or fragment stays at the end. A relative endpoint
/// (the browser's `""` for the page's own origin) follows the same rule. Nothing is checked:
/// each SDK checks what it accepts (a scheme, a host) itself. The cases:
/// `sdk-core/fixtures/endpoints.json`.
pub fn events_url(endpoint: &str) -> String {
    // The path part ends at the query or fragment, which only `?` or `#` begins.
    let end = endpoint.bytes().position(|b| b == b'?' || b == b'#').unwrap_or(endpoint.len());
    let (path, rest) = endpoint.split_at(end);
    if path.ends_with(EVENTS_PATH) || path.ends_with(TRACK_PATH) {
        return endpoint.to_string();
    }
    // Trailing slashes, by bytes (`trim_end_matches` links a char searcher into the browser's
    // build); the `//` of `https://` only when nothing follows it.
    let base = &path[..path.bytes().rposition(|b| b != b'/').map_or(0, |i| i + 1)];
    let mut url = String::with_capacity(endpoint.len() + EVENTS_PATH.len());
    url.push_str(base);
    url.push_str(EVENTS_PATH);
    url.push_str(rest);
    url
}

/// What an HTTP status means for the client that sent a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    /// 2xx: the batch is durable on the server; rejected events are listed in the body.
    Delivered,
    /// 408, 429, 5xx: try again later with backoff, honouring `Retry-After`.
    Retry,
    /// 413: the request was too large; split it.
    TooLarge,
    /// Any other status: the server will never accept this batch; drop it and report.
    Rejected,
}

/// Classifies an HTTP status for a client.
pub fn classify_status(status: u16) -> StatusClass {
    match status {
        200..=299 => StatusClass::Delivered,
        408 | 429 | 500..=599 => StatusClass::Retry,
        413 => StatusClass::TooLarge,
        _ => StatusClass::Rejected,
    }
}

/// The fields of one event on the wire.
#[derive(Debug, Clone, Copy)]
pub struct EventEnvelope<'a> {
    /// The event's id.
    pub event_id: EventId,
    /// The type name.
    pub name: &'a str,
    /// Who did it: the user id once identified, the anonymous id before.
    pub distinct_id: &'a str,
    /// The device's anonymous id.
    pub anonymous_id: &'a str,
    /// The session it belongs to.
    pub session_id: &'a str,
    /// The client time it happened.
    pub timestamp: Timestamp,
    /// The properties, a JSON object.
    pub properties_json: &'a str,
    /// The share code this user is attributed to, if any.
    pub attribution: Option<&'a str>,
    /// The context, a JSON object.
    pub context_json: &'a str,
}

impl EventEnvelope<'_> {
    /// The encoded length when no character needs escaping, so that encoding allocates once:
    /// the fixed keys and punctuation take 106 bytes, the event id and timestamp at most 56,
    /// the quotes of the five strings 10, and `attribution` 18 more than its code.
    fn encoded_len_estimate(&self) -> usize {
        176 + self.name.len()
            + self.distinct_id.len()
            + self.anonymous_id.len()
            + self.session_id.len()
            + self.properties_json.len()
            + self.attribution.map_or(0, |a| a.len() + 18)
            + self.context_json.len()
    }

    /// The event as one compact JSON object.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(self.encoded_len_estimate());
        out.push_str("{\"event_id\":\"");
        self.event_id.write_to(&mut out);
        out.push_str("\",\"type\":");
        json::write_str(&mut out, self.name);
        out.push_str(",\"distinct_id\":");
        json::write_str(&mut out, self.distinct_id);
        out.push_str(",\"anonymous_id\":");
        json::write_str(&mut out, self.anonymous_id);
        out.push_str(",\"session_id\":");
        json::write_str(&mut out, self.session_id);
        out.push_str(",\"timestamp\":");
        json::write_u64(&mut out, self.timestamp.as_unix_millis());
        out.push_str(",\"properties\":");
        out.push_str(self.properties_json);
        if let Some(code) = self.attribution {
            out.push_str(",\"attribution\":");
            json::write_str(&mut out, code);
        }
        out.push_str(CONTEXT_KEY);
        out.push_str(self.context_json);
        out.push('}');
        out
    }
}

/// A request body from already-encoded events: a concatenation, no re-encoding. With
/// `shared`, the context the events were encoded with: when every event ends with it, it is
/// sent once, as the batch's `context`, and cut from each event (the server merges it back
/// into each; docs/protocol.md).
pub fn encode_batch<'e, E>(sent_at: Timestamp, events: E, shared: Option<&str>) -> String
where
    E: IntoIterator<Item = &'e str>,
    E::IntoIter: Clone,
{
    let events = events.into_iter();
    let mut shared = shared;
    let mut out = String::with_capacity(BATCH_OVERHEAD_BYTES + events.size_hint().0 * 512);
    // One pass that cuts the context as it goes (each event's tail compared once, not once to
    // decide and again to cut: the comparison was 3 % of the browser's main-thread time); an
    // event without it (restored from an earlier page) starts the body again, each event
    // keeping its own, so no event gains keys it did not have.
    'body: loop {
        out.clear();
        out.push_str("{\"sent_at\":");
        json::write_u64(&mut out, sent_at.as_unix_millis());
        if let Some(context) = shared {
            out.push_str(CONTEXT_KEY);
            out.push_str(context);
        }
        out.push_str(",\"events\":[");
        for (i, e) in events.clone().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match shared.map(|c| without_context(e, c)) {
                None => out.push_str(e),
                Some(Some(rest)) => {
                    out.push_str(rest);
                    out.push('}');
                }
                Some(None) => {
                    shared = None;
                    continue 'body;
                }
            }
        }
        out.push_str("]}");
        return out;
    }
}

/// The key before a context, in an event and in a batch.
const CONTEXT_KEY: &str = ",\"context\":";

/// An encoded event without its closing brace and its `context`, when that is `context`
/// ([`EventEnvelope::encode`] writes it last).
fn without_context<'e>(event: &'e str, context: &str) -> Option<&'e str> {
    event.strip_suffix('}')?.strip_suffix(context)?.strip_suffix(CONTEXT_KEY)
}

/// The event id and client timestamp of an encoded event, as the engine reads them back from
/// persisted storage.
pub(crate) fn read_event_header(encoded: &str) -> Option<(EventId, Timestamp)> {
    let members = json::members(encoded).ok()?;
    let id = EventId::parse_hyphenated(&json::as_str(json::get(&members, "event_id")?)?)?;
    let ts = json::as_u64(json::get(&members, "timestamp")?)?;
    Some((id, Timestamp::from_unix_millis(ts)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_become_one_ingest_url_for_every_sdk() {
        // The same table the browser package's hand-written driver is tested against.
        let cases: Vec<serde_json::Value> =
            serde_json::from_str(include_str!("../../fixtures/endpoints.json")).unwrap();
        assert!(cases.len() >= 10);
        for case in cases {
            let (endpoint, url) = (case["endpoint"].as_str().unwrap(), case["url"].as_str().unwrap());
            assert_eq!(events_url(endpoint), url, "{endpoint:?}");
        }
    }

    #[test]
    fn statuses_are_classified_as_documented() {
        assert_eq!(classify_status(200), StatusClass::Delivered);
        assert_eq!(classify_status(204), StatusClass::Delivered);
        for s in [408, 429, 500, 502, 503, 504] {
            assert_eq!(classify_status(s), StatusClass::Retry, "{s}");
        }
        assert_eq!(classify_status(413), StatusClass::TooLarge);
        for s in [400, 401, 403, 404, 415, 422, 301] {
            assert_eq!(classify_status(s), StatusClass::Rejected, "{s}");
        }
    }

    #[test]
    fn encoding_allocates_once_for_unescaped_text() {
        let mut rng = crate::entropy::SeededEntropy::new(1);
        let id = EventId::new(Timestamp::from_unix_millis(1 << 47), &mut rng);
        for attribution in [None, Some("CODE_1234567")] {
            let envelope = EventEnvelope {
                event_id: id,
                name: "purchase",
                distinct_id: "user-1",
                anonymous_id: "0193a1b2-0000-7000-8000-000000000000",
                session_id: "0193a1b2-0000-7000-8000-000000000001",
                timestamp: Timestamp::from_unix_millis(u64::MAX),
                properties_json: "{\"k\":1}",
                attribution,
                context_json: "{\"library\":{}}",
            };
            let encoded = envelope.encode();
            assert!(encoded.len() <= envelope.encoded_len_estimate(), "{} bytes: {encoded}", encoded.len());
            assert_eq!(encoded.capacity(), envelope.encoded_len_estimate(), "the string grew");
        }
    }

    #[test]
    fn a_context_is_shared_only_when_every_event_of_the_batch_has_it() {
        let (a, b) = (r#"{"type":"a","context":{"os":"iOS"}}"#, r#"{"type":"b","context":{"os":"iOS"}}"#);
        let shared = encode_batch(Timestamp::from_unix_millis(5), [a, b], Some(r#"{"os":"iOS"}"#));
        assert_eq!(shared, r#"{"sent_at":5,"context":{"os":"iOS"},"events":[{"type":"a"},{"type":"b"}]}"#);
        // An event restored from an earlier page, with another context, keeps every event's own.
        let other = r#"{"type":"c","context":{"os":"Android"}}"#;
        let each = encode_batch(Timestamp::from_unix_millis(5), [a, other], Some(r#"{"os":"iOS"}"#));
        assert_eq!(each, format!(r#"{{"sent_at":5,"events":[{a},{other}]}}"#));
        let first = encode_batch(Timestamp::from_unix_millis(5), [other, a, b], Some(r#"{"os":"iOS"}"#));
        assert_eq!(first, format!(r#"{{"sent_at":5,"events":[{other},{a},{b}]}}"#));
        assert_eq!(
            encode_batch(Timestamp::from_unix_millis(5), [a, b], None),
            format!(r#"{{"sent_at":5,"events":[{a},{b}]}}"#)
        );
    }

    #[test]
    fn batch_overhead_constant_covers_the_envelope() {
        let body = encode_batch(Timestamp::from_unix_millis(u64::MAX), ["{}"], None);
        assert!(body.len() - 2 <= BATCH_OVERHEAD_BYTES, "{}", body.len());
    }
}
