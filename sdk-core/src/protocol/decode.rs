//! Request decoding for servers (feature `decode`).
//!
//! Lenient where a raw `curl` needs it (a missing `event_id`, the seed's minimal shape with
//! fields at the top level of the event), strict per event: one bad event is rejected with a
//! reason and the others are kept.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{MAX_EVENT_BYTES, MAX_EVENTS_PER_BATCH, RejectReason, Rejection};
use crate::event::{EventId, MAX_NAME_BYTES, validate_name};

/// Longest id (`distinct_id`, `anonymous_id`, `session_id`, `attribution`) accepted, in bytes.
const MAX_ID_BYTES: usize = 200;

/// Why a whole request body was refused.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The body is not JSON; line and column of the first error.
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser found.
        message: String,
    },
    /// The body is JSON but not `{"events": [...]}`.
    #[error("body must be an object with an \"events\" array")]
    Shape,
    /// The batch's shared `context` is not an object.
    #[error("\"context\" of the batch must be an object (context every event of the batch shares)")]
    Context,
    /// More events than [`MAX_EVENTS_PER_BATCH`].
    #[error("{count} events in one request; at most {max} allowed")]
    TooManyEvents {
        /// Events sent.
        count: usize,
        /// The limit.
        max: usize,
    },
}

/// A decoded request.
#[derive(Debug)]
pub struct DecodedBatch {
    /// The `api_key` body field, for beacons.
    pub api_key: Option<String>,
    /// When the client sent the request, in its own clock (epoch ms).
    pub sent_at: Option<i64>,
    /// The valid events.
    pub events: Vec<DecodedEvent>,
    /// The refused events.
    pub rejected: Vec<Rejection>,
}

/// One valid event.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedEvent {
    /// Index in the request's `events` array.
    pub index: usize,
    /// The client's id, or `None` for the server to assign one.
    pub event_id: Option<EventId>,
    /// The type name.
    pub name: String,
    /// Who did it.
    pub distinct_id: Option<String>,
    /// The device's anonymous id.
    pub anonymous_id: Option<String>,
    /// The session.
    pub session_id: Option<String>,
    /// Client time, epoch ms.
    pub timestamp: Option<i64>,
    /// Properties, with any unknown top-level fields of the event moved in.
    pub properties: Map<String, Value>,
    /// The share code the user is attributed to.
    pub attribution: Option<String>,
    /// Context.
    pub context: Map<String, Value>,
}

#[derive(Deserialize)]
struct RawBatch<'a> {
    #[serde(borrow)]
    events: Option<Vec<&'a RawValue>>,
    #[serde(default)]
    sent_at: Option<Value>,
    #[serde(default)]
    api_key: Option<String>,
    /// Context every event of the batch shares, sent once (an additive v1 field).
    #[serde(default)]
    context: Option<Value>,
}

/// Decodes a request body (already decompressed).
pub fn decode_batch(body: &[u8]) -> Result<DecodedBatch, DecodeError> {
    let raw: RawBatch<'_> = serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => DecodeError::Shape,
        _ => DecodeError::Json { line: e.line(), column: e.column(), message: e.to_string() },
    })?;
    let events = raw.events.ok_or(DecodeError::Shape)?;
    if events.len() > MAX_EVENTS_PER_BATCH {
        return Err(DecodeError::TooManyEvents { count: events.len(), max: MAX_EVENTS_PER_BATCH });
    }
    let mut batch = DecodedBatch {
        api_key: raw.api_key,
        sent_at: raw.sent_at.as_ref().and_then(timestamp_millis),
        events: Vec::with_capacity(events.len()),
        rejected: Vec::new(),
    };
    let shared = match raw.context {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(DecodeError::Context),
    };
    for (index, raw_event) in events.into_iter().enumerate() {
        match decode_event(index, raw_event) {
            Ok(mut e) => {
                // The event's own context wins, key by key.
                for (k, v) in &shared {
                    e.context.entry(k.clone()).or_insert_with(|| v.clone());
                }
                batch.events.push(e);
            }
            Err((event_id, reason)) => batch.rejected.push(Rejection { index, event_id, reason }),
        }
    }
    Ok(batch)
}

fn decode_event(index: usize, raw: &RawValue) -> Result<DecodedEvent, (Option<String>, RejectReason)> {
    let Ok(Value::Object(mut obj)) = serde_json::from_str::<Value>(raw.get()) else {
        return Err((None, RejectReason::NotAnObject));
    };
    let id_text = match obj.get("event_id") {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    let fail = |reason| Err((id_text.clone(), reason));
    if raw.get().len() > MAX_EVENT_BYTES {
        return fail(RejectReason::TooLarge);
    }
    let name = match obj.remove("type").or_else(|| obj.remove("event")) {
        None | Some(Value::Null) => return fail(RejectReason::MissingType),
        Some(Value::String(s)) if s.len() <= MAX_NAME_BYTES && validate_name(&s).is_ok() => s,
        Some(_) => return fail(RejectReason::InvalidType),
    };
    let event_id = match obj.remove("event_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match EventId::parse(&s) {
            Some(id) => Some(id),
            None => return fail(RejectReason::InvalidEventId),
        },
        Some(_) => return fail(RejectReason::InvalidEventId),
    };
    let timestamp = match obj.remove("timestamp") {
        None | Some(Value::Null) => None,
        Some(v) => match timestamp_millis(&v) {
            Some(ms) => Some(ms),
            None => return fail(RejectReason::InvalidTimestamp),
        },
    };
    let mut id_field = |key: &str| -> Result<Option<String>, RejectReason> {
        match obj.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.len() <= MAX_ID_BYTES && !s.is_empty() => Ok(Some(s)),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(RejectReason::InvalidField),
        }
    };
    let ids = (|| {
        Ok((
            id_field("distinct_id")?,
            id_field("anonymous_id")?,
            id_field("session_id")?,
            id_field("attribution")?,
        ))
    })();
    let (distinct_id, anonymous_id, session_id, attribution) = match ids {
        Ok(ids) => ids,
        Err(reason) => return fail(reason),
    };
    let mut properties = match obj.remove("properties") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return fail(RejectReason::InvalidProperties),
    };
    let context = match obj.remove("context") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return fail(RejectReason::InvalidField),
    };
    // The seed's minimal shape puts properties at the top level of the event.
    for (k, v) in obj {
        properties.entry(k).or_insert(v);
    }
    Ok(DecodedEvent {
        index,
        event_id,
        name,
        distinct_id,
        anonymous_id,
        session_id,
        timestamp,
        properties,
        attribution,
        context,
    })
}

/// Epoch milliseconds from a number or an RFC 3339 string.
fn timestamp_millis(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().filter(|ms| *ms >= 0),
        Value::String(s) => parse_rfc3339_millis(s),
        _ => None,
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` into epoch milliseconds.
///
/// Hand-written to keep the protocol module free of a date-time dependency; servers that want
/// full calendar support convert afterwards.
pub fn parse_rfc3339_millis(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: core::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes().all(|c| c.is_ascii_digit()).then(|| t.parse().ok())?
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut pos = 19;
    let mut millis = 0;
    if b.get(pos) == Some(&b'.') {
        let start = pos + 1;
        pos = start;
        while b.get(pos).is_some_and(u8::is_ascii_digit) {
            pos += 1;
        }
        if pos == start {
            return None;
        }
        let frac = &s[start..pos.min(start + 3)];
        millis = frac.parse::<i64>().ok()? * 10i64.pow(3 - frac.len() as u32);
    }
    let offset_secs = match b.get(pos)? {
        b'Z' | b'z' if pos + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if pos + 6 == b.len() && b[pos + 3] == b':' => {
            let (h, m) = (num(pos + 1..pos + 3)?, num(pos + 4..pos + 6)?);
            let secs = h * 3600 + m * 60;
            if *sign == b'+' { secs } else { -secs }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    let ms = secs.checked_mul(1000)?.checked_add(millis)?;
    (ms >= 0).then_some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_parses_offsets_and_fractions() {
        assert_eq!(parse_rfc3339_millis("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_millis("2026-06-20T08:30:00.5Z"), Some(1_781_944_200_500));
        assert_eq!(parse_rfc3339_millis("2026-06-20T10:30:00.500+02:00"), Some(1_781_944_200_500));
        assert_eq!(parse_rfc3339_millis("2000-02-29T00:00:00Z"), Some(951_782_400_000));
        for bad in ["2026-13-01T00:00:00Z", "2026-06-20", "2026-06-20T08:30:00", "2026-06-20T08:30:00.Z", "x"]
        {
            assert_eq!(parse_rfc3339_millis(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_batch_context_reaches_every_event_under_its_own() {
        let b = decode_batch(
            br#"{"context": {"browser": "Chrome", "locale": "en"}, "events": [
                {"type": "a"}, {"type": "b", "context": {"locale": "zh-CN", "os": "iOS"}}]}"#,
        )
        .unwrap();
        assert_eq!(
            Value::Object(b.events[0].context.clone()),
            serde_json::json!({"browser": "Chrome", "locale": "en"})
        );
        assert_eq!(
            Value::Object(b.events[1].context.clone()),
            serde_json::json!({"browser": "Chrome", "locale": "zh-CN", "os": "iOS"})
        );
        assert!(matches!(decode_batch(br#"{"context": 3, "events": []}"#), Err(DecodeError::Context)));
        assert!(
            decode_batch(br#"{"context": null, "events": [{"type": "a"}]}"#).unwrap().events[0]
                .context
                .is_empty()
        );
    }

    #[test]
    fn seed_minimal_shape_is_accepted() {
        let b = decode_batch(br#"{"events": [{"type": "page_view", "conference_id": "test", "page": "/"}]}"#)
            .unwrap();
        assert!(b.rejected.is_empty());
        let e = &b.events[0];
        assert_eq!(e.name, "page_view");
        assert_eq!(e.event_id, None);
        assert_eq!(e.properties["conference_id"], "test");
        assert_eq!(e.properties["page"], "/");
    }

    #[test]
    fn bad_events_are_rejected_one_by_one() {
        let body = br#"{"events": [
            {"type": "ok"},
            3,
            {"page": "/"},
            {"type": ""},
            {"type": "x", "event_id": "not-a-uuid"},
            {"type": "x", "timestamp": "yesterday"},
            {"type": "x", "properties": [1]},
            {"type": "x", "distinct_id": {"a": 1}}
        ]}"#;
        let b = decode_batch(body).unwrap();
        assert_eq!(b.events.len(), 1);
        let reasons: Vec<_> = b.rejected.iter().map(|r| (r.index, r.reason)).collect();
        assert_eq!(
            reasons,
            vec![
                (1, RejectReason::NotAnObject),
                (2, RejectReason::MissingType),
                (3, RejectReason::InvalidType),
                (4, RejectReason::InvalidEventId),
                (5, RejectReason::InvalidTimestamp),
                (6, RejectReason::InvalidProperties),
                (7, RejectReason::InvalidField),
            ]
        );
        assert_eq!(b.rejected[3].event_id.as_deref(), Some("not-a-uuid"));
    }

    #[test]
    fn whole_body_errors() {
        match decode_batch(b"{\"events\": [").unwrap_err() {
            DecodeError::Json { line, column, .. } => assert_eq!((line, column), (1, 12)),
            e => panic!("{e}"),
        }
        assert!(matches!(decode_batch(b"[1]"), Err(DecodeError::Shape)));
        assert!(matches!(decode_batch(b"{}"), Err(DecodeError::Shape)));
        let many = format!("{{\"events\":[{}]}}", vec!["{\"type\":\"x\"}"; 501].join(","));
        assert!(matches!(decode_batch(many.as_bytes()), Err(DecodeError::TooManyEvents { count: 501, .. })));
        let big = format!("{{\"events\":[{{\"type\":\"x\",\"p\":\"{}\"}}]}}", "a".repeat(MAX_EVENT_BYTES));
        assert_eq!(decode_batch(big.as_bytes()).unwrap().rejected[0].reason, RejectReason::TooLarge);
    }
}
