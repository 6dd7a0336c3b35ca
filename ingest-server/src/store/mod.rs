//! The analytics store: processed events and the tables the queries read.
//!
//! [`Store`] is the seam: the consumer's logic ([`crate::consumer`]) is written against
//! [`StoreTx`]'s small operations, so a PostgreSQL store implements those operations rather than
//! the analytics. The embedded implementation is [`sqlite::SqliteStore`]; the scale-out one is
//! [`postgres::PgStore`], which batches the hot operations ([`StoreTx::insert_events`], and the
//! [`DeferredWrites`]: sessions, visitor rows, opens and daily counters) into a few multi-row
//! statements per transaction.
//!
//! Layout: this file holds the traits and [`StoreError`]; [`rows`] the values they take and
//! return; `links` the dashboard-link SQL both backends run; each backend lives in its own
//! folder with its own error type ([`sqlite::SqliteError`], [`postgres::PgError`]), which also
//! decides which of its failures are transient.

use std::fmt;

mod links;
pub mod postgres;
pub mod rows;
pub mod sqlite;

pub use rows::*;

/// Why the store could not do something. Callers act on three questions, each answered by the
/// failing backend's own error type in one place: [`StoreError::is_transient`] (retry later),
/// [`StoreError::is_conflict`] (retry at once) and [`StoreError::is_disk_full`] (tell the
/// operator).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The embedded SQLite store failed.
    #[error(transparent)]
    Sqlite(#[from] sqlite::SqliteError),
    /// The PostgreSQL store failed (or could not be reached, or is misconfigured).
    #[error(transparent)]
    Postgres(#[from] postgres::PgError),
    /// A query ran past its deadline and was cancelled.
    #[error("query cancelled at its deadline")]
    Timeout,
    /// A consumer transaction would touch more persons than one transaction may hold locks
    /// on; apply fewer batches at once.
    #[error("a consumer transaction may touch at most {0} persons")]
    TooManyPersons(usize),
}

impl StoreError {
    /// Whether retrying the same work later can succeed: the database is unreachable, busy,
    /// shutting down or out of resources, or the transaction lost a serialization race or a
    /// deadlock ([`sqlite::SqliteError::is_transient`], [`postgres::PgError::is_transient`]).
    /// Other errors are about the data (the batch is retried a few times, then dead-lettered).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Sqlite(e) => e.is_transient(),
            StoreError::Postgres(e) => e.is_transient(),
            StoreError::Timeout | StoreError::TooManyPersons(_) => false,
        }
    }

    /// Whether it is the disk being full ([`sqlite::SqliteError::is_disk_full`]).
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Sqlite(e) => e.is_disk_full(),
            StoreError::Postgres(_) | StoreError::Timeout | StoreError::TooManyPersons(_) => false,
        }
    }

    /// Whether the transaction lost a serialization race or a deadlock, so retrying at once can
    /// succeed (a kind of [`StoreError::is_transient`]; [`postgres::PgError::is_conflict`]).
    pub fn is_conflict(&self) -> bool {
        match self {
            StoreError::Postgres(e) => e.is_conflict(),
            StoreError::Sqlite(_) | StoreError::Timeout | StoreError::TooManyPersons(_) => false,
        }
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
    /// Starts a consumer's write transaction for queue batches. Stores with several
    /// concurrent writers let it run beside others and isolate what it touches as it goes
    /// ([`StoreTx::hold_identities`], [`StoreTx::lock_share_codes`]); the default is
    /// [`Store::begin`].
    fn begin_batch(&self) -> Result<Box<dyn StoreTx + '_>, StoreError> {
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
    /// Runs a read-only statement compiled by [`crate::query::sql`], handing each row to
    /// `row` as it is read (a million rows need not be held at once); cancels it with
    /// [`StoreError::Timeout`] once `deadline` passes.
    fn scan(
        &self,
        sql: &str,
        params: &[Param],
        deadline: std::time::Instant,
        row: &mut dyn FnMut(&[CellRef<'_>]),
    ) -> Result<(), StoreError>;
    /// [`Store::scan`], the rows collected.
    fn aggregate(
        &self,
        sql: &str,
        params: &[Param],
        deadline: std::time::Instant,
    ) -> Result<Vec<Vec<Cell>>, StoreError> {
        let mut rows = Vec::new();
        self.scan(sql, params, deadline, &mut |r| rows.push(r.iter().map(CellRef::to_owned).collect()))?;
        Ok(rows)
    }
}

/// The consumer's write transaction. Dropping it without [`StoreTx::commit`] rolls back.
///
/// Its operations come in two kinds. The methods here take effect at once: what they write,
/// the next read of this transaction sees. The writes behind [`StoreTx::deferred`] (sessions,
/// daily counters, page-view visitor rows, share opens) may be held back until
/// [`StoreTx::commit`]: no method of this trait reads sessions, counters or opens, and the one
/// that reads visitor rows ([`StoreTx::rekey_daily_visitors`]) applies the pending ones first.
pub trait StoreTx {
    /// Sequence number of the last queue batch applied.
    fn cursor(&mut self) -> Result<u64, StoreError>;
    /// Records the last queue batch applied.
    fn set_cursor(&mut self, seq: u64) -> Result<(), StoreError>;
    /// Stores events in order; for each, `false` when (project, event_id) was already stored
    /// (before, or earlier in `events`). One statement in stores with round trips.
    fn insert_events(&mut self, events: &[StoredEvent<'_>]) -> Result<Vec<bool>, StoreError>;
    /// Resolves these ids now and holds their persons until the transaction ends: no other
    /// transaction merges a person this one has resolved, and none resolves a person of
    /// `merging` (the ids this transaction's identify and alias events join), so a merge and
    /// its re-checks see every fact written about its persons, and nobody acts on a stale
    /// identity. [`StoreTx::resolve`] and [`StoreTx::link_identity`] hold what they touch the
    /// same way. Stores with one writer at a time hold nothing.
    fn hold_identities(&mut self, project: &str, ids: &[&str], merging: &[&str]) -> Result<(), StoreError> {
        let _ = (project, ids, merging);
        Ok(())
    }
    /// The visitor an id belongs to (the root of its identity links; itself when unlinked).
    fn resolve(&mut self, project: &str, id: &str) -> Result<String, StoreError>;
    /// Links root `from` under root `to`; ids linked to `from` follow.
    fn link_identity(&mut self, project: &str, from: &str, to: &str) -> Result<(), StoreError>;
    /// Every id whose visitor is `root`, `root` included.
    fn identity_members(&mut self, project: &str, root: &str) -> Result<Vec<String>, StoreError>;
    /// The writes this transaction may defer until [`StoreTx::commit`] (see [`DeferredWrites`]).
    fn deferred(&mut self) -> &mut dyn DeferredWrites;
    /// Re-keys page-view visitor rows of `from` to `to`; returns the days where `to` already had
    /// a row (so the day's `uv` is one lower now). Sees every visitor counted so far in this
    /// transaction, deferred ones included (a store that defers them writes them first).
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
    /// Applies the deferred writes, then commits everything.
    fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// The writes of a [`StoreTx`] that a store may hold back until commit, to send them in a few
/// multi-row statements. Write-only on purpose: nothing here returns what was stored, and no
/// read of the same transaction may rely on seeing these writes before the commit (only
/// [`StoreTx::rekey_daily_visitors`] does, and it applies the pending visitor rows itself).
/// Every delta is applied exactly once, at commit at the latest; a rollback drops them.
///
/// PostgreSQL buffers all four and writes them at commit (visitor rows also before a
/// re-keying); SQLite writes sessions, visitor rows and opens at once and sums daily counters
/// in memory until commit.
pub trait DeferredWrites {
    /// Counts an event in its session (created with `distinct_id` when new).
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
    /// Records a page-view visitor for a day and counts it in `uv` when new for that day
    /// (decided when the row is written: at commit, or before a re-keying, where deferred).
    fn count_daily_visitor(&mut self, project: &str, key: &DayKey, visitor: &str) -> Result<(), StoreError>;
    /// Records an open of a share code.
    fn insert_open(
        &mut self,
        project: &str,
        code: &str,
        opener: &str,
        event_id: &str,
        ts: i64,
    ) -> Result<(), StoreError>;
}
