//! The backend-neutral values the store traits take and return: events to store, rows read
//! back, daily counters, query cells and dashboard links.

use serde::Serialize;
use serde_json::{Map, Value};

/// An event ready to be stored: decoded, with its final id and server time.
#[derive(Debug, Clone)]
pub struct StoredEvent<'a> {
    /// The project.
    pub project: &'a str,
    /// The client's event id, or the one assigned at ingest.
    pub event_id: String,
    /// Type name.
    pub name: &'a str,
    /// Who did it.
    pub distinct_id: Option<&'a str>,
    /// The device's anonymous id.
    pub anonymous_id: Option<&'a str>,
    /// The session.
    pub session_id: Option<&'a str>,
    /// Corrected time, epoch ms (see [`crate::consumer::server_ts`]).
    pub server_ts: i64,
    /// When the server received the batch, epoch ms.
    pub received_at: i64,
    /// The client's own timestamp, epoch ms.
    pub client_ts: Option<i64>,
    /// `properties.conference_id`.
    pub conference_id: Option<&'a str>,
    /// The share code the user is attributed to.
    pub attribution: Option<&'a str>,
    /// Properties.
    pub properties: &'a Map<String, Value>,
    /// Context.
    pub context: &'a Map<String, Value>,
}

/// A conference and a day (`YYYY-MM-DD` in the project's time zone).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DayKey {
    /// `properties.conference_id`, empty when the event had none.
    pub conference_id: String,
    /// The day.
    pub day: String,
}

/// A counter of the daily summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DailyField {
    /// Page views.
    Pv,
    /// Distinct resolved visitors with a page view.
    Uv,
    /// Registrations.
    Registrations,
    /// Check-ins.
    Checkins,
    /// Share events.
    Shares,
    /// Registrations credited to at least one share.
    ShareConversions,
}

/// Daily counter changes gathered during one transaction and written at commit with one
/// upsert per (project, day row), so counters are never bumped a statement at a time. Each row
/// holds the six counters in [`DailyField::ALL`] order.
pub type DailyDeltas = std::collections::HashMap<(String, DayKey), [i64; 6]>;

/// Adds `delta` to one counter of a day row in `deltas`.
pub(crate) fn add_daily_delta(
    deltas: &mut DailyDeltas,
    project: String,
    key: DayKey,
    field: DailyField,
    delta: i64,
) {
    deltas.entry((project, key)).or_insert([0; 6])[field.slot()] += delta;
}

impl DailyField {
    /// Position in [`DailyField::ALL`] and in a [`DailyDeltas`] row.
    pub fn slot(self) -> usize {
        self as usize
    }

    /// All fields, in summary order.
    pub const ALL: [DailyField; 6] = [
        DailyField::Pv,
        DailyField::Uv,
        DailyField::Registrations,
        DailyField::Checkins,
        DailyField::Shares,
        DailyField::ShareConversions,
    ];
}

/// A share link as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareRow {
    /// The code.
    pub code: String,
    /// Distinct id of who shared it.
    pub sharer: String,
    /// Channel (`wechat`, `copy_link`, ...).
    pub channel: Option<String>,
    /// The shared URL.
    pub target_url: Option<String>,
    /// The code this one was re-shared from (never making a cycle).
    pub parent_code: Option<String>,
    /// `properties.conference_id` of the share event.
    pub conference_id: Option<String>,
    /// Server time of the share event.
    pub created_at: i64,
}

/// A registration as stored, with whether it is currently credited to a share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationRow {
    /// The registration event.
    pub event_id: String,
    /// Distinct id of who registered.
    pub registrant: String,
    /// Conference and day it counts in.
    pub key: DayKey,
    /// The attribution code it carried.
    pub code: Option<String>,
    /// Counted in `share_conversions`.
    pub credited: bool,
}

/// One daily summary, in the seed's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DailySummary {
    /// `YYYY-MM-DD` in the project's time zone.
    pub date: String,
    /// The conference.
    pub conference_id: String,
    /// Page views.
    pub pv: i64,
    /// Distinct resolved visitors with a page view.
    pub uv: i64,
    /// Registrations.
    pub registrations: i64,
    /// Check-ins.
    pub checkins: i64,
    /// Share events.
    pub shares: i64,
    /// Registrations credited to at least one share.
    pub share_conversions: i64,
}

/// Everything the share tree is computed from, with every person already resolved to their
/// visitor (identity root).
#[derive(Debug, Clone, Default)]
pub struct ShareFacts {
    /// Shares with their sharer's visitor.
    pub shares: Vec<(ShareRow, String)>,
    /// Opens: code and opener's visitor.
    pub opens: Vec<(String, String)>,
    /// Registrations with a code: code, registrant's visitor, conference, day.
    pub registrations: Vec<(String, String, String, String)>,
}

/// One session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionRow {
    /// The session id.
    pub session_id: String,
    /// Distinct id of its first event.
    pub distinct_id: String,
    /// First event, epoch ms.
    pub started_at: i64,
    /// Last event, epoch ms.
    pub last_activity_at: i64,
    /// `last_activity_at - started_at`, ms.
    pub duration_ms: i64,
    /// Events in it.
    pub event_count: i64,
}

/// Which stored events to list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only this distinct id.
    pub distinct_id: Option<String>,
    /// Only this type.
    pub name: Option<String>,
    /// Only this conference.
    pub conference_id: Option<String>,
    /// Only events stored before this cursor (paging, newest first).
    pub before: Option<i64>,
    /// At most this many.
    pub limit: usize,
}

/// A stored event, for the debugging endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct EventRow {
    /// Paging cursor: pass as `before` to get older events.
    pub cursor: i64,
    /// Event id.
    pub event_id: String,
    /// Type.
    #[serde(rename = "type")]
    pub name: String,
    /// Distinct id.
    pub distinct_id: Option<String>,
    /// Anonymous id.
    pub anonymous_id: Option<String>,
    /// Session id.
    pub session_id: Option<String>,
    /// Server time, epoch ms.
    pub server_ts: i64,
    /// Receive time, epoch ms.
    pub received_at: i64,
    /// Client time, epoch ms.
    pub client_ts: Option<i64>,
    /// Attribution code.
    pub attribution: Option<String>,
    /// Properties.
    pub properties: Value,
    /// Context.
    pub context: Value,
}

/// A value in a row of [`super::Store::aggregate`]'s answer. Ordered (NULL first, then numbers, then
/// text by bytes) so results sort the same whichever store computed them.
#[derive(Debug, Clone)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Real(f64),
    /// Text.
    Text(String),
}

/// A [`Cell`] borrowed from the row being read.
#[derive(Debug, Clone, PartialEq)]
pub enum CellRef<'a> {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Real(f64),
    /// Text (bytes that are not UTF-8 replaced, as `String::from_utf8_lossy` does).
    Text(std::borrow::Cow<'a, str>),
}

impl CellRef<'_> {
    /// The owned cell.
    pub fn to_owned(&self) -> Cell {
        match self {
            CellRef::Null => Cell::Null,
            CellRef::Int(n) => Cell::Int(*n),
            CellRef::Real(x) => Cell::Real(*x),
            CellRef::Text(t) => Cell::Text(t.to_string()),
        }
    }
}

impl Cell {
    fn rank(&self) -> u8 {
        match self {
            Cell::Null => 0,
            Cell::Int(_) => 1,
            Cell::Real(_) => 2,
            Cell::Text(_) => 3,
        }
    }
}

impl PartialEq for Cell {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Cell {}

impl PartialOrd for Cell {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Cell {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (self, other) {
            (Cell::Int(a), Cell::Int(b)) => a.cmp(b),
            (Cell::Real(a), Cell::Real(b)) => a.total_cmp(b),
            (Cell::Text(a), Cell::Text(b)) => a.as_bytes().cmp(b.as_bytes()),
            (a, b) => a.rank().cmp(&b.rank()),
        }
    }
}

impl std::hash::Hash for Cell {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.rank().hash(state);
        match self {
            Cell::Null => {}
            Cell::Int(n) => n.hash(state),
            Cell::Real(x) => x.to_bits().hash(state),
            Cell::Text(s) => s.hash(state),
        }
    }
}

/// A parameter of an [`super::Store::aggregate`] statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// Text.
    Text(String),
    /// A number.
    Real(f64),
}

/// A read-only dashboard link: whoever holds its token sees one conference of one project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkRow {
    /// Public id (for listing and revoking).
    pub id: String,
    /// The project.
    #[serde(skip)]
    pub project: String,
    /// The one conference it shows.
    pub conference_id: String,
    /// A name for the organizer's list.
    pub label: Option<String>,
    /// SHA-256 of the token, hex (the token itself is shown once, at creation).
    #[serde(skip)]
    pub token_hash: String,
    /// Created, epoch ms.
    pub created_at: i64,
    /// Stops working at, epoch ms.
    pub expires_at: Option<i64>,
    /// Revoked at, epoch ms.
    pub revoked_at: Option<i64>,
}

impl LinkRow {
    /// Whether the link still works at `now_ms`.
    pub fn active(&self, now_ms: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now_ms < e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_deltas_follow_the_summary_order() {
        for (i, field) in DailyField::ALL.into_iter().enumerate() {
            assert_eq!(field.slot(), i);
        }
        let mut deltas = DailyDeltas::new();
        let key = DayKey { conference_id: "c".into(), day: "2026-06-20".into() };
        add_daily_delta(&mut deltas, "p".into(), key.clone(), DailyField::Shares, 2);
        add_daily_delta(&mut deltas, "p".into(), key.clone(), DailyField::Pv, 1);
        add_daily_delta(&mut deltas, "p".into(), key.clone(), DailyField::Shares, -1);
        assert_eq!(deltas[&("p".to_string(), key)], [1, 0, 0, 0, 1, 0]);
    }
}
