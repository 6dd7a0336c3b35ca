//! The analytics store: processed events and the tables the queries read.
//!
//! [`Store`] is the seam: the consumer's logic ([`crate::consumer`]) is written against
//! [`StoreTx`]'s small operations, so a PostgreSQL store implements those operations rather than
//! the analytics. The embedded implementation is [`sqlite::SqliteStore`]; the scale-out one is
//! [`postgres::PgStore`], which batches the hot operations ([`StoreTx::insert_events`],
//! [`StoreTx::count_daily_visitor`], sessions, opens and counters) into a few multi-row
//! statements per transaction.

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

pub mod postgres;
mod postgres_flush;
mod postgres_read;
mod postgres_schema;
mod postgres_tx;
mod read;
mod schema;
pub mod sqlite;

/// Why the store could not do something.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The underlying database failed.
    #[error("analytics storage: {0}")]
    Storage(#[from] rusqlite::Error),
    /// The database file or directory could not be opened.
    #[error("analytics storage: {0}")]
    Io(#[from] std::io::Error),
    /// A lock was poisoned by a panic in another thread.
    #[error("analytics storage lock poisoned")]
    Poisoned,
    /// PostgreSQL failed (or could not be reached).
    #[error("analytics database: {0}")]
    Postgres(#[from] ::postgres::Error),
    /// The store URL is unusable.
    #[error("analytics database configuration: {0}")]
    Config(String),
    /// A query ran past its deadline and was cancelled.
    #[error("query cancelled at its deadline")]
    Timeout,
}

impl StoreError {
    /// Whether retrying the same work later can succeed: the database is unreachable, shutting
    /// down or out of resources, or the transaction lost a serialization race or a deadlock.
    /// Other errors are about the data (the batch is retried a few times, then dead-lettered).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Postgres(e) => match e.code() {
                // No SQLSTATE: connecting failed, the connection broke, or I/O failed.
                None => true,
                Some(code) => {
                    let c = code.code();
                    c.starts_with("08") || c.starts_with("40") || c.starts_with("53") || c.starts_with("57")
                }
            },
            StoreError::Io(_) => true,
            StoreError::Storage(rusqlite::Error::SqliteFailure(e, _)) => {
                matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            }
            _ => false,
        }
    }

    /// Whether it is the disk being full (SQLite's `SQLITE_FULL` or `ENOSPC`).
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Storage(e) => e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull),
            StoreError::Io(e) => e.kind() == std::io::ErrorKind::StorageFull,
            _ => false,
        }
    }

    /// Whether the transaction lost a serialization race or a deadlock (retry at once).
    pub fn is_conflict(&self) -> bool {
        match self {
            StoreError::Postgres(e) => e.code().is_some_and(|c| c.code() == "40001" || c.code() == "40P01"),
            _ => false,
        }
    }
}

/// How a consumer transaction must be isolated from other consumers writing the same project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectLock {
    /// The project.
    pub project: String,
    /// The batch group merges identities (identify, alias), which may change every resolution
    /// and credit: the transaction must run alone for this project (shares and registrations
    /// lock their share codes instead, [`StoreTx::lock_share_codes`]). Otherwise it only adds
    /// facts and counters and may run beside other non-exclusive ones.
    pub exclusive: bool,
}

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

    /// Column name.
    pub fn column(self) -> &'static str {
        match self {
            DailyField::Pv => "pv",
            DailyField::Uv => "uv",
            DailyField::Registrations => "registrations",
            DailyField::Checkins => "checkins",
            DailyField::Shares => "shares",
            DailyField::ShareConversions => "share_conversions",
        }
    }
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

/// A value in a row of [`Store::aggregate`]'s answer. Ordered (NULL first, then numbers, then
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

/// A parameter of an [`Store::aggregate`] statement.
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

/// Tells when the store changed, whichever process wrote it.
pub trait ChangeFeed: Send {
    /// Waits up to `timeout` for a commit after the last call; `true` when there was one.
    fn wait(&mut self, timeout: std::time::Duration) -> Result<bool, StoreError>;
}

/// An analytics store.
pub trait Store: Send + Sync + fmt::Debug {
    /// Starts the consumer's write transaction (exclusive).
    fn begin(&self) -> Result<Box<dyn StoreTx + '_>, StoreError>;
    /// Starts the consumer's write transaction for batches of these projects. Stores with
    /// several concurrent writers isolate it as `locks` say; the default is [`Store::begin`].
    fn begin_batch(&self, locks: &[ProjectLock]) -> Result<Box<dyn StoreTx + '_>, StoreError> {
        let _ = locks;
        self.begin()
    }
    /// Sequence number of the last queue batch applied.
    fn cursor(&self) -> Result<u64, StoreError>;
    /// Whether the store answers now.
    fn check(&self) -> Result<(), StoreError>;
    /// Daily summaries of a conference between two days (inclusive), by day.
    fn daily(
        &self,
        project: &str,
        conference_id: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<DailySummary>, StoreError>;
    /// The facts the share tree is computed from.
    fn share_facts(&self, project: &str) -> Result<ShareFacts, StoreError>;
    /// Sessions of a person (every id linked to `distinct_id`), newest first.
    fn sessions(&self, project: &str, distinct_id: &str) -> Result<Vec<SessionRow>, StoreError>;
    /// Stored events, newest first.
    fn events(&self, project: &str, filter: &EventFilter) -> Result<Vec<EventRow>, StoreError>;
    /// Stores a new dashboard link.
    fn create_link(&self, link: &LinkRow) -> Result<(), StoreError>;
    /// A project's links, newest first.
    fn links(&self, project: &str) -> Result<Vec<LinkRow>, StoreError>;
    /// Revokes a link at `at`; `false` when the project has no such link.
    fn revoke_link(&self, project: &str, id: &str, at: i64) -> Result<bool, StoreError>;
    /// The link a token hash belongs to.
    fn link_by_token(&self, token_hash: &str) -> Result<Option<LinkRow>, StoreError>;
    /// A feed of commits by any process (the live stream's signal).
    fn changes(&self) -> Result<Box<dyn ChangeFeed>, StoreError>;
    /// The SQL this store's [`Store::aggregate`] runs.
    fn dialect(&self) -> crate::query::Dialect;
    /// Runs a read-only statement compiled by [`crate::query::sql`] and returns its rows;
    /// cancels it with [`StoreError::Timeout`] once `deadline` passes.
    fn aggregate(
        &self,
        sql: &str,
        params: &[Param],
        deadline: std::time::Instant,
    ) -> Result<Vec<Vec<Cell>>, StoreError>;
}

/// The consumer's write transaction. Dropping it without [`StoreTx::commit`] rolls back.
pub trait StoreTx {
    /// Sequence number of the last queue batch applied.
    fn cursor(&mut self) -> Result<u64, StoreError>;
    /// Records the last queue batch applied.
    fn set_cursor(&mut self, seq: u64) -> Result<(), StoreError>;
    /// Stores an event; `false` when (project, event_id) was already stored (a duplicate).
    fn insert_event(&mut self, event: &StoredEvent<'_>) -> Result<bool, StoreError>;
    /// Stores events in order; for each, `false` when (project, event_id) was already stored
    /// (before, or earlier in `events`). One statement in stores with round trips.
    fn insert_events(&mut self, events: &[StoredEvent<'_>]) -> Result<Vec<bool>, StoreError> {
        events.iter().map(|e| self.insert_event(e)).collect()
    }
    /// Hints that these ids will be resolved (stores with round trips load them at once).
    fn prefetch_identities(&mut self, project: &str, ids: &[&str]) -> Result<(), StoreError> {
        let _ = (project, ids);
        Ok(())
    }
    /// The visitor an id belongs to (the root of its identity links; itself when unlinked).
    fn resolve(&mut self, project: &str, id: &str) -> Result<String, StoreError>;
    /// Links root `from` under root `to`; ids linked to `from` follow.
    fn link_identity(&mut self, project: &str, from: &str, to: &str) -> Result<(), StoreError>;
    /// Every id whose visitor is `root`, `root` included.
    fn identity_members(&mut self, project: &str, root: &str) -> Result<Vec<String>, StoreError>;
    /// Counts an event in its session.
    fn touch_session(
        &mut self,
        project: &str,
        session_id: &str,
        distinct_id: &str,
        ts: i64,
    ) -> Result<(), StoreError>;
    /// Adds `delta` to a daily counter.
    fn bump_daily(
        &mut self,
        project: &str,
        key: &DayKey,
        field: DailyField,
        delta: i64,
    ) -> Result<(), StoreError>;
    /// Records a page-view visitor for a day; `true` when new for that day.
    fn add_daily_visitor(&mut self, project: &str, key: &DayKey, visitor: &str) -> Result<bool, StoreError>;
    /// Records a page-view visitor for a day and counts it in `uv` when new. Stores with round
    /// trips defer both to one statement at commit (or before the next re-keying).
    fn count_daily_visitor(&mut self, project: &str, key: &DayKey, visitor: &str) -> Result<(), StoreError> {
        if self.add_daily_visitor(project, key, visitor)? {
            self.bump_daily(project, key, DailyField::Uv, 1)?;
        }
        Ok(())
    }
    /// Re-keys page-view visitor rows of `from` to `to`; returns the days where `to` already had
    /// a row (so the day's `uv` is one lower now).
    fn rekey_daily_visitors(
        &mut self,
        project: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<DayKey>, StoreError>;
    /// Stores a share; `false` when the code already existed (the first share wins).
    fn insert_share(&mut self, project: &str, share: &ShareRow) -> Result<bool, StoreError>;
    /// A share by code.
    fn share(&mut self, project: &str, code: &str) -> Result<Option<ShareRow>, StoreError>;
    /// Locks the share codes (project, code, `true` for a code this transaction may store) a
    /// batch group stores or starts attribution walks from, in one fixed order, before applying
    /// it (stores with concurrent writers; see `postgres`). A no-op by default.
    fn lock_share_codes(&mut self, codes: &[(&str, &str, bool)]) -> Result<(), StoreError> {
        let _ = codes;
        Ok(())
    }
    /// `code` and every code below it.
    fn share_subtree(&mut self, project: &str, code: &str) -> Result<Vec<String>, StoreError>;
    /// Codes shared by any of `sharers`.
    fn shares_by(&mut self, project: &str, sharers: &[String]) -> Result<Vec<String>, StoreError>;
    /// Records an open of a share code.
    fn insert_open(
        &mut self,
        project: &str,
        code: &str,
        opener: &str,
        event_id: &str,
        ts: i64,
    ) -> Result<(), StoreError>;
    /// Records a registration.
    fn insert_registration(&mut self, project: &str, reg: &RegistrationRow) -> Result<(), StoreError>;
    /// Registrations carrying any of `codes`.
    fn registrations_with_codes(
        &mut self,
        project: &str,
        codes: &[String],
    ) -> Result<Vec<RegistrationRow>, StoreError>;
    /// Registrations by any of `registrants`.
    fn registrations_by(
        &mut self,
        project: &str,
        registrants: &[String],
    ) -> Result<Vec<RegistrationRow>, StoreError>;
    /// Marks whether a registration counts in `share_conversions`.
    fn set_credited(&mut self, project: &str, event_id: &str, credited: bool) -> Result<(), StoreError>;
    /// Commits everything.
    fn commit(self: Box<Self>) -> Result<(), StoreError>;
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
