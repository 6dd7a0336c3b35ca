//! The embedded store: `analytics.sqlite3` in the data directory (WAL, `synchronous=FULL`).
//!
//! The consumer's transaction (`tx.rs`) is `BEGIN IMMEDIATE` on the writer connection; queries
//! (`read.rs`) use a separate reader connection, which WAL lets run while the consumer writes.
//! [`SqliteError`] says how it fails and which failures are transient.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, params};

use super::links;
use crate::query::Dialect;
use crate::queue::sqlite::{migrate, open_connection};
use crate::store::{ChangeFeed, ShareRow, Store, StoreError, StoreTx};

mod error;
mod read;
mod schema;
mod tx;

pub use error::SqliteError;
use tx::SqliteTx;

/// File name of the analytics database in the data directory.
pub const FILE: &str = "analytics.sqlite3";

/// The SQLite store.
#[derive(Debug)]
pub struct SqliteStore {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    path: std::path::PathBuf,
}

/// How often [`SqliteChanges`] looks at the database's version.
const CHANGE_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// Commits to the database file by any connection, in this process or another: SQLite has no
/// notifications, but `PRAGMA data_version` changes on a connection whenever another one
/// commits, and reading it is a few microseconds.
struct SqliteChanges {
    conn: Connection,
    version: i64,
}

impl ChangeFeed for SqliteChanges {
    fn wait(&mut self, timeout: std::time::Duration) -> Result<bool, StoreError> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let v: i64 = self.conn.pragma_query_value(None, "data_version", |r| r.get(0))?;
            if v != self.version {
                self.version = v;
                return Ok(true);
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            std::thread::sleep(CHANGE_POLL.min(deadline - now));
        }
    }
}

impl SqliteStore {
    /// Opens (creating and migrating forward) the store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        crate::config::create_data_dir(data_dir)?;
        let path = data_dir.join(FILE);
        let mut writer = open_connection(&path)?;
        migrate(&mut writer, schema::MIGRATIONS)?;
        let reader = open_connection(&path)?;
        Ok(SqliteStore { writer: Mutex::new(writer), reader: Mutex::new(reader), path })
    }

    fn read_conn(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        Ok(self.reader.lock().map_err(|_| SqliteError::Poisoned)?)
    }

    fn write_conn(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        Ok(self.writer.lock().map_err(|_| SqliteError::Poisoned)?)
    }
}

impl Store for SqliteStore {
    fn begin(&self) -> Result<Box<dyn StoreTx + '_>, StoreError> {
        Ok(Box::new(SqliteTx::begin(self.write_conn()?)?))
    }

    fn cursor(&self) -> Result<u64, StoreError> {
        let conn = self.read_conn()?;
        Ok(conn.query_row("SELECT cursor FROM consumer_state WHERE id = 1", [], |r| r.get::<_, i64>(0))?
            as u64)
    }

    fn check(&self) -> Result<(), StoreError> {
        self.cursor().map(|_| ())
    }

    fn daily(
        &self,
        project: &str,
        conference_id: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<crate::store::DailySummary>, StoreError> {
        self.read_daily(project, conference_id, from, to)
    }

    fn share_facts(&self, project: &str) -> Result<crate::store::ShareFacts, StoreError> {
        self.read_share_facts(project)
    }

    fn sessions(
        &self,
        project: &str,
        distinct_id: &str,
    ) -> Result<Vec<crate::store::SessionRow>, StoreError> {
        self.read_sessions(project, distinct_id)
    }

    fn events(
        &self,
        project: &str,
        filter: &crate::store::EventFilter,
    ) -> Result<Vec<crate::store::EventRow>, StoreError> {
        self.read_events(project, filter)
    }

    fn create_link(&self, link: &crate::store::LinkRow) -> Result<(), StoreError> {
        self.write_conn()?.prepare_cached(links::INSERT)?.execute(params![
            link.id,
            link.project,
            link.conference_id,
            link.label,
            link.token_hash,
            link.created_at,
            link.expires_at,
            link.revoked_at
        ])?;
        Ok(())
    }

    fn links(&self, project: &str) -> Result<Vec<crate::store::LinkRow>, StoreError> {
        self.read_links(&links::by_project(), project)
    }

    fn revoke_link(&self, project: &str, id: &str, at: i64) -> Result<bool, StoreError> {
        let n = self.write_conn()?.prepare_cached(links::REVOKE)?.execute(params![project, id, at])?;
        Ok(n == 1)
    }

    fn link_by_token(&self, token_hash: &str) -> Result<Option<crate::store::LinkRow>, StoreError> {
        Ok(self.read_links(&links::by_token(), token_hash)?.pop())
    }

    fn changes(&self) -> Result<Box<dyn ChangeFeed>, StoreError> {
        let conn = open_connection(&self.path)?;
        let version = conn.pragma_query_value(None, "data_version", |r| r.get(0))?;
        Ok(Box::new(SqliteChanges { conn, version }))
    }

    fn dialect(&self) -> crate::query::Dialect {
        Dialect::Sqlite
    }

    fn scan(
        &self,
        sql: &str,
        params: &[crate::store::Param],
        deadline: std::time::Instant,
        row: &mut dyn FnMut(&[crate::store::CellRef<'_>]),
    ) -> Result<(), StoreError> {
        self.read_scan(sql, params, deadline, row)
    }
}

/// A [`ShareRow`] from the first seven columns of a row, in the `shares` table's order.
fn share_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ShareRow> {
    Ok(ShareRow {
        code: r.get(0)?,
        sharer: r.get(1)?,
        channel: r.get(2)?,
        target_url: r.get(3)?,
        parent_code: r.get(4)?,
        conference_id: r.get(5)?,
        created_at: r.get(6)?,
    })
}
