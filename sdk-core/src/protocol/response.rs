//! Response bodies: the 200 answer with per-event rejections, and the error body of every
//! other status.

use crate::json::{self, JsonError};

/// Why the server refused one event of an otherwise accepted batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The event is not a JSON object.
    NotAnObject,
    /// The event has no `type`.
    MissingType,
    /// The `type` is empty, too long, not a string or contains control characters.
    InvalidType,
    /// The `event_id` is not a UUID.
    InvalidEventId,
    /// The `timestamp` is neither epoch milliseconds nor an RFC 3339 string.
    InvalidTimestamp,
    /// `properties` is not a JSON object.
    InvalidProperties,
    /// An id field or `context` has the wrong type or is too long.
    InvalidField,
    /// The event is larger than `MAX_EVENT_BYTES`.
    TooLarge,
    /// A reason this version does not know (sent by a newer server).
    Other,
}

impl RejectReason {
    const ALL: [(RejectReason, &'static str); 8] = [
        (RejectReason::NotAnObject, "not_an_object"),
        (RejectReason::MissingType, "missing_type"),
        (RejectReason::InvalidType, "invalid_type"),
        (RejectReason::InvalidEventId, "invalid_event_id"),
        (RejectReason::InvalidTimestamp, "invalid_timestamp"),
        (RejectReason::InvalidProperties, "invalid_properties"),
        (RejectReason::InvalidField, "invalid_field"),
        (RejectReason::TooLarge, "event_too_large"),
    ];

    /// The stable wire name.
    pub fn as_str(self) -> &'static str {
        Self::ALL.iter().find(|(r, _)| *r == self).map_or("other", |(_, s)| s)
    }

    /// The reason for a wire name; unknown names are [`RejectReason::Other`].
    pub fn from_wire(name: &str) -> Self {
        Self::ALL.iter().find(|(_, s)| *s == name).map_or(RejectReason::Other, |(r, _)| *r)
    }
}

/// One refused event: its index in the request's `events` array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Index in the request's `events` array.
    pub index: usize,
    /// The event's id, when it had a readable one.
    pub event_id: Option<String>,
    /// Why.
    pub reason: RejectReason,
}

/// The body of a 2xx answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchResponse {
    /// Events accepted (durable on the server).
    pub accepted: u64,
    /// Events refused, each with its reason. They will never be accepted; do not resend them.
    pub rejected: Vec<Rejection>,
}

impl BatchResponse {
    /// Reads a response body.
    pub fn parse(body: &str) -> Result<Self, JsonError> {
        let members = json::members(body)?;
        let accepted = json::get(&members, "accepted").and_then(json::as_u64).unwrap_or(0);
        Ok(BatchResponse { accepted, rejected: rejections(&members, true) })
    }
}

/// The rejections of an answer whose members are `members`, with their event ids when
/// `with_ids`. Inlined, so that the engine's copy (without ids) has no id code.
#[inline(always)]
fn rejections(members: &[json::Member<'_>], with_ids: bool) -> Vec<Rejection> {
    let mut rejected = Vec::new();
    for item in json::items(json::get(members, "rejected").unwrap_or("")) {
        let Ok(r) = json::members(item) else { continue };
        let field = |k| json::get(&r, k).and_then(json::as_str);
        let index = json::get(&r, "index").and_then(json::as_u64).and_then(|i| usize::try_from(i).ok());
        let Some(index) = index else { continue };
        rejected.push(Rejection {
            index,
            event_id: if with_ids { field("event_id").map(String::from) } else { None },
            reason: RejectReason::from_wire(&field("reason").unwrap_or_default()),
        });
    }
    rejected
}

/// What the engine reads of a 2xx answer: the rejected events' indexes and reasons (no event
/// ids, no count), so the browser package links no more of the answer than that. An unreadable
/// body rejects nothing.
pub(crate) fn rejected_events(body: &str) -> Vec<Rejection> {
    json::members(body).map(|members| rejections(&members, false)).unwrap_or_default()
}

impl BatchResponse {
    /// The body as compact JSON.
    pub fn encode(&self) -> String {
        let mut out = String::from("{\"accepted\":");
        json::write_u64(&mut out, self.accepted);
        out.push_str(",\"rejected\":[");
        for (i, r) in self.rejected.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"index\":");
            json::write_u64(&mut out, r.index as u64);
            if let Some(id) = &r.event_id {
                out.push_str(",\"event_id\":");
                json::write_str(&mut out, id);
            }
            out.push_str(",\"reason\":");
            json::write_str(&mut out, r.reason.as_str());
            out.push('}');
        }
        out.push_str("]}");
        out
    }
}

/// The body of every non-2xx answer: a stable machine code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody {
    /// Stable code, for example `unauthorized`, `malformed_json`, `payload_too_large`.
    pub error: String,
    /// What went wrong, for people.
    pub message: String,
}

impl ErrorBody {
    /// The body as compact JSON.
    pub fn encode(&self) -> String {
        let mut out = String::from("{\"error\":");
        json::write_str(&mut out, &self.error);
        out.push_str(",\"message\":");
        json::write_str(&mut out, &self.message);
        out.push('}');
        out
    }

    /// Reads an error body.
    pub fn parse(body: &str) -> Result<Self, JsonError> {
        let members = json::members(body)?;
        let field = |k| json::get(&members, k).and_then(json::as_str).unwrap_or_default().into_owned();
        Ok(ErrorBody { error: field("error"), message: field("message") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip_and_unknown_is_other() {
        for (r, s) in RejectReason::ALL {
            assert_eq!(RejectReason::from_wire(s), r);
            assert_eq!(r.as_str(), s);
        }
        assert_eq!(RejectReason::from_wire("from_the_future"), RejectReason::Other);
    }

    #[test]
    fn response_round_trips() {
        let r = BatchResponse {
            accepted: 2,
            rejected: vec![
                Rejection { index: 1, event_id: None, reason: RejectReason::MissingType },
                Rejection { index: 3, event_id: Some("x".into()), reason: RejectReason::TooLarge },
            ],
        };
        assert_eq!(BatchResponse::parse(&r.encode()).unwrap(), r);
        let engine: Vec<_> =
            rejected_events(&r.encode()).into_iter().map(|r| (r.index, r.event_id, r.reason)).collect();
        assert_eq!(engine, [(1, None, RejectReason::MissingType), (3, None, RejectReason::TooLarge)]);
        assert!(rejected_events("not json").is_empty());
        let e = ErrorBody { error: "unauthorized".into(), message: "bad \"key\"".into() };
        assert_eq!(ErrorBody::parse(&e.encode()).unwrap(), e);
    }
}
