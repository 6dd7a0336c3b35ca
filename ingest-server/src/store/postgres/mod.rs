//! The scale-out store: PostgreSQL (the synchronous `postgres` client; the consumer and the
//! query endpoints call the store from blocking threads).
//!
//! Several consumers, in several processes, write at once, each transaction READ COMMITTED
//! and beside the others: facts and counters (page views, check-ins, opens, custom events:
//! dedup `INSERT … ON CONFLICT DO NOTHING RETURNING`, visitor rows the same way, counters
//! `ON CONFLICT DO UPDATE SET n = n + excluded.n`) are right whatever runs beside them. What
//! is read to decide something is locked, row by row, with transaction-scoped advisory locks
//! (two-key form, keyed by project and value, which works for rows that do not exist yet):
//!
//! **Persons.** Every person a transaction resolves an id to is held with a shared lock on
//! its root, taken before the resolution is trusted (the root is read again once the lock is
//! held); a merge (identify, alias) holds both roots exclusively. So a merge waits for every
//! transaction that has counted, stored or credited something for either person, then
//! re-keys visitor rows and re-checks credits seeing all of it; and a transaction that
//! resolves a person being merged waits, then reads the merged root. The batch group's ids are
//! locked at once, in key order (`hold_identities`); an id met later (a sharer during a credit
//! walk) only tries its lock, as share codes do below.
//!
//! **Share codes.** A registration's credit reads the shares on
//! the path from its code up to the root; a new share re-checks the registrations below it.
//! Shares are never changed once stored, so the only race is a walk that finds a code missing
//! while another transaction is storing it (each would miss the other's uncommitted row). Both
//! sides therefore lock the code: `insert_share` before the insert, and `share` when the code is missing, then it reads again. Whichever commits first,
//! the other sees it: a walk that waited re-reads the stored share; a share stored after a walk
//! waits for it and its re-check sees the walk's registration. Only the transaction storing the
//! lowest missing code of a chain can reach the registrations below it, so no two transactions
//! re-check one registration at once, and the daily `share_conversions` deltas stay exact. The
//! cycle check (a share whose parent is its descendant) walks the same way, so two shares
//! naming each other as parents conflict (a deadlock PostgreSQL breaks; the consumer retries
//! and the second sees the first).
//!
//! Multi-row statements take their rows in key order and the tables are written in one fixed
//! order. Locks are waited for only in one order (the group's persons, then its share codes,
//! each sorted by key); a lock needed later is only tried, and a transaction that finds one
//! taken fails as a deadlock would (SQLSTATE 40P01) and is retried by the consumer. So no two
//! consumers wait for each other.
//!
//! See `tx.rs` for the transaction, `flush.rs` for its deferred writes, `read.rs` for the queries
//! and [`PgError`] for how it fails and which failures are transient.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use postgres::{Client, NoTls, Statement};

use super::links;
use crate::query::Dialect;
use crate::store::{
    CellRef, ChangeFeed, DailySummary, EventFilter, EventRow, LinkRow, Param, SessionRow, ShareFacts,
    ShareRow, Store, StoreError, StoreTx,
};

mod error;
mod flush;
mod read;
mod schema;
mod tx;

pub use error::PgError;
use schema::MIGRATIONS;
use tx::PgTx;

/// Idle connections kept for reuse.
const MAX_IDLE: usize = 16;
/// Advisory lock key serialising migrations across processes.
const MIGRATION_LOCK: i64 = 0x656d_706d_6978_0001;

/// A pooled connection with its prepared statements.
struct PgConn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl PgConn {
    /// A prepared statement for `sql`, prepared once per connection.
    fn prep(&mut self, sql: &'static str) -> Result<Statement, StoreError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }
}

/// A connection borrowed from the pool; returned on drop unless broken.
struct Lease<'a> {
    store: &'a PgStore,
    conn: Option<PgConn>,
    /// Set when the connection may be in a bad state (an error mid-transaction).
    discard: bool,
}

impl Lease<'_> {
    fn get(&mut self) -> Result<&mut PgConn, StoreError> {
        self.conn.as_mut().ok_or_else(|| PgError::config("connection already returned"))
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if !self.discard && !conn.client.is_closed() {
                if let Ok(mut idle) = self.store.idle.lock() {
                    if idle.len() < MAX_IDLE {
                        idle.push(conn);
                    }
                }
            }
        }
    }
}

/// The PostgreSQL store.
pub struct PgStore {
    config: postgres::Config,
    idle: Mutex<Vec<PgConn>>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Closing a `postgres::Client` blocks on its own runtime, which panics on a thread that
        // drives async tasks (the store can be dropped with the HTTP app): close them elsewhere.
        let idle = self.idle.get_mut().map(std::mem::take).unwrap_or_default();
        if !idle.is_empty() {
            let _ = std::thread::Builder::new()
                .name("empmix-pg-close".into())
                .spawn(move || drop(idle))
                .map(|t| t.join());
        }
    }
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("hosts", &self.config.get_hosts())
            .field("dbname", &self.config.get_dbname())
            .finish_non_exhaustive()
    }
}

/// `s` without NUL characters (PostgreSQL text cannot hold them); U+FFFD in their place.
fn clean(s: &str) -> Cow<'_, str> {
    if s.contains('\0') { Cow::Owned(s.replace('\0', "\u{FFFD}")) } else { Cow::Borrowed(s) }
}

/// JSON text of a map for a `jsonb` column (which cannot hold `\u0000` either).
fn json_text(map: &serde_json::Map<String, serde_json::Value>) -> String {
    let text = serde_json::to_string(map).unwrap_or_else(|_| "{}".into());
    if !text.contains("\\u0000") {
        return text;
    }
    fn scrub(v: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match v {
            Value::String(s) => Value::String(clean(s).into_owned()),
            Value::Array(a) => Value::Array(a.iter().map(scrub).collect()),
            Value::Object(o) => {
                Value::Object(o.iter().map(|(k, v)| (clean(k).into_owned(), scrub(v))).collect())
            }
            other => other.clone(),
        }
    }
    let cleaned: serde_json::Map<_, _> = map.iter().map(|(k, v)| (clean(k).into_owned(), scrub(v))).collect();
    serde_json::to_string(&cleaned).unwrap_or_else(|_| "{}".into())
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`, libpq key/value strings work too) and
    /// applies the missing migrations.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let mut config: postgres::Config = url.parse().map_err(|e| PgError::config(format!("{e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        config.keepalives(true).keepalives_idle(Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("empmix-server");
        }
        let store = PgStore { config, idle: Mutex::new(Vec::new()) };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut lease = self.lease()?;
        let client = &mut lease.get()?.client;
        client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])?;
        let result = (|| -> Result<(), StoreError> {
            client.batch_execute(
                "CREATE TABLE IF NOT EXISTS empmix_schema_migrations (version INTEGER PRIMARY KEY, \
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            )?;
            let row =
                client.query_one("SELECT COALESCE(MAX(version), 0) FROM empmix_schema_migrations", &[])?;
            let applied: i32 = row.try_get(0)?;
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(usize::try_from(applied).unwrap_or(0)) {
                let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
                let mut tx = client.transaction()?;
                tx.batch_execute(sql)?;
                tx.execute("INSERT INTO empmix_schema_migrations (version) VALUES ($1)", &[&version])?;
                tx.commit()?;
                tracing::info!(version, "applied analytics migration");
            }
            Ok(())
        })();
        let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]);
        result?;
        unlocked?;
        Ok(())
    }

    /// A connection from the pool, or a new one.
    fn lease(&self) -> Result<Lease<'_>, StoreError> {
        let pooled = loop {
            let next = self.idle.lock().map_err(|_| PgError::Poisoned)?.pop();
            match next {
                Some(c) if c.client.is_closed() => continue,
                other => break other,
            }
        };
        let conn = match pooled {
            Some(c) => c,
            None => PgConn { client: self.config.connect(NoTls)?, statements: HashMap::new() },
        };
        Ok(Lease { store: self, conn: Some(conn), discard: false })
    }

    /// Runs `f` on a pooled connection; a failing connection is not returned to the pool.
    fn with_conn<T>(&self, f: impl FnOnce(&mut PgConn) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut lease = self.lease()?;
        let result = f(lease.get()?);
        if result.is_err() {
            lease.discard = true;
        }
        result
    }
}

impl Store for PgStore {
    fn begin(&self) -> Result<Box<dyn StoreTx + '_>, StoreError> {
        // Without knowing the projects: serialise with every other writer.
        Ok(Box::new(PgTx::begin(self.lease()?, true)?))
    }

    fn begin_batch(&self) -> Result<Box<dyn StoreTx + '_>, StoreError> {
        Ok(Box::new(PgTx::begin(self.lease()?, false)?))
    }

    fn cursor(&self) -> Result<u64, StoreError> {
        self.with_conn(|c| {
            let st = c.prep("SELECT cursor FROM consumer_state WHERE id = 1")?;
            let cursor: i64 = c.client.query_one(&st, &[])?.try_get(0)?;
            Ok(u64::try_from(cursor).unwrap_or(0))
        })
    }

    fn check(&self) -> Result<(), StoreError> {
        self.with_conn(|c| {
            c.client.simple_query("SELECT 1")?;
            Ok(())
        })
    }

    fn daily(
        &self,
        project: &str,
        conference_id: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<DailySummary>, StoreError> {
        self.with_conn(|c| read::daily(c, project, conference_id, from, to))
    }

    fn share_facts(&self, project: &str) -> Result<ShareFacts, StoreError> {
        self.with_conn(|c| read::share_facts(c, project))
    }

    fn sessions(&self, project: &str, distinct_id: &str) -> Result<Vec<SessionRow>, StoreError> {
        self.with_conn(|c| read::sessions(c, project, distinct_id))
    }

    fn events(&self, project: &str, filter: &EventFilter) -> Result<Vec<EventRow>, StoreError> {
        self.with_conn(|c| read::events(c, project, filter))
    }

    fn create_link(&self, link: &LinkRow) -> Result<(), StoreError> {
        self.with_conn(|c| read::create_link(c, link))
    }

    fn links(&self, project: &str) -> Result<Vec<LinkRow>, StoreError> {
        self.with_conn(|c| read::find_links(c, &links::by_project(), &clean(project)))
    }

    fn revoke_link(&self, project: &str, id: &str, at: i64) -> Result<bool, StoreError> {
        self.with_conn(|c| {
            let n = c.client.execute(
                links::sql(links::REVOKE, Dialect::Postgres).as_ref(),
                &[&clean(project).into_owned(), &clean(id).into_owned(), &at],
            )?;
            Ok(n == 1)
        })
    }

    fn link_by_token(&self, token_hash: &str) -> Result<Option<LinkRow>, StoreError> {
        self.with_conn(|c| Ok(read::find_links(c, &links::by_token(), &clean(token_hash))?.pop()))
    }

    fn changes(&self) -> Result<Box<dyn ChangeFeed>, StoreError> {
        let mut client = self.config.connect(NoTls)?;
        client.batch_execute(&format!("LISTEN {CHANGES_CHANNEL}"))?;
        Ok(Box::new(PgChanges { client: Some(client) }))
    }

    fn dialect(&self) -> crate::query::Dialect {
        Dialect::Postgres
    }

    fn scan(
        &self,
        sql: &str,
        params: &[Param],
        deadline: std::time::Instant,
        row: &mut dyn FnMut(&[CellRef<'_>]),
    ) -> Result<(), StoreError> {
        self.with_conn(|c| read::scan(c, sql, params, deadline, row))
    }
}

/// The `LISTEN`/`NOTIFY` channel every consumer commit notifies (with no payload: listeners
/// re-read what they show).
const CHANGES_CHANNEL: &str = "empmix_changes";

/// Commits by any consumer process, through `LISTEN`.
struct PgChanges {
    client: Option<Client>,
}

impl Drop for PgChanges {
    fn drop(&mut self) {
        // As for the pool: never close a client on a thread that drives async tasks.
        if let Some(c) = self.client.take() {
            let _ = std::thread::Builder::new().name("empmix-pg-close".into()).spawn(move || drop(c));
        }
    }
}

impl ChangeFeed for PgChanges {
    fn wait(&mut self, timeout: Duration) -> Result<bool, StoreError> {
        use postgres::fallible_iterator::FallibleIterator;
        let Some(client) = self.client.as_mut() else { return Ok(false) };
        let mut notifications = client.notifications();
        let any = notifications.timeout_iter(timeout).next()?.is_some();
        // Take whatever else is already queued: one wake-up for a burst of commits.
        while notifications.iter().next()?.is_some() {}
        Ok(any)
    }
}

/// A [`ShareRow`] from the first seven columns of a row, in the `shares` table's order.
fn share_row(r: &postgres::Row) -> Result<ShareRow, postgres::Error> {
    Ok(ShareRow {
        code: r.try_get(0)?,
        sharer: r.try_get(1)?,
        channel: r.try_get(2)?,
        target_url: r.try_get(3)?,
        parent_code: r.try_get(4)?,
        conference_id: r.try_get(5)?,
        created_at: r.try_get(6)?,
    })
}
