//! The consumer's SQLite transaction: `BEGIN IMMEDIATE` on the writer connection. Every
//! operation runs when called, [`DeferredWrites`] included (sessions, visitor rows and opens
//! are written at once), except the daily counter changes, which are summed in memory and
//! written at commit with one upsert per day row.

use std::sync::MutexGuard;

use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::share_row;
use crate::store::{
    DailyDeltas, DailyField, DayKey, DeferredWrites, RegistrationRow, ShareRow, StoreError, StoreTx,
    StoredEvent, add_daily_delta,
};

/// The consumer's transaction.
pub(super) struct SqliteTx<'a> {
    conn: MutexGuard<'a, Connection>,
    open: bool,
    daily: DailyDeltas,
}

impl Drop for SqliteTx<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

fn placeholders(n: usize, first: usize) -> String {
    (0..n).map(|i| format!("?{}", first + i)).collect::<Vec<_>>().join(",")
}

fn registration_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RegistrationRow> {
    Ok(RegistrationRow {
        event_id: r.get(0)?,
        registrant: r.get(1)?,
        key: DayKey { conference_id: r.get(2)?, day: r.get(3)? },
        code: r.get(4)?,
        credited: r.get(5)?,
    })
}

impl<'a> SqliteTx<'a> {
    /// `BEGIN IMMEDIATE` on the writer connection.
    pub(super) fn begin(conn: MutexGuard<'a, Connection>) -> Result<Self, StoreError> {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(SqliteTx { conn, open: true, daily: DailyDeltas::new() })
    }

    /// Stores an event; `false` when (project, event_id) was already stored.
    fn insert_event(&mut self, e: &StoredEvent<'_>) -> Result<bool, StoreError> {
        let properties = serde_json::to_string(e.properties).unwrap_or_else(|_| "{}".into());
        let context = serde_json::to_string(e.context).unwrap_or_else(|_| "{}".into());
        let n = self
            .conn
            .prepare_cached(
                "INSERT OR IGNORE INTO events (project, event_id, name, distinct_id, anonymous_id, session_id, \
                 server_ts, received_at, client_ts, conference_id, attribution, properties, context) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?
            .execute(params![
                e.project,
                e.event_id,
                e.name,
                e.distinct_id,
                e.anonymous_id,
                e.session_id,
                e.server_ts,
                e.received_at,
                e.client_ts,
                e.conference_id,
                e.attribution,
                properties,
                context
            ])?;
        Ok(n == 1)
    }

    /// Records a page-view visitor for a day; `true` when new for that day.
    fn add_daily_visitor(&mut self, project: &str, key: &DayKey, visitor: &str) -> Result<bool, StoreError> {
        let n = self
            .conn
            .prepare_cached(
                "INSERT OR IGNORE INTO daily_visitors (project, conference_id, day, visitor) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![project, key.conference_id, key.day, visitor])?;
        Ok(n == 1)
    }

    fn registrations_where(
        &mut self,
        project: &str,
        column: &str,
        values: &[String],
    ) -> Result<Vec<RegistrationRow>, StoreError> {
        let mut out = Vec::new();
        for chunk in values.chunks(500) {
            let sql = format!(
                "SELECT event_id, registrant, conference_id, day, code, credited FROM registrations \
                 WHERE project = ?1 AND {column} IN ({})",
                placeholders(chunk.len(), 2)
            );
            let mut stmt = self.conn.prepare_cached(&sql)?;
            let args = std::iter::once(project).chain(chunk.iter().map(String::as_str));
            for row in stmt.query_map(params_from_iter(args), registration_from_row)? {
                out.push(row?);
            }
        }
        Ok(out)
    }
}

impl StoreTx for SqliteTx<'_> {
    fn cursor(&mut self) -> Result<u64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT cursor FROM consumer_state WHERE id = 1", [], |r| r.get::<_, i64>(0))?
            as u64)
    }

    fn set_cursor(&mut self, seq: u64) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE consumer_state SET cursor = ?1 WHERE id = 1")?
            .execute([seq as i64])?;
        Ok(())
    }

    fn insert_events(&mut self, events: &[StoredEvent<'_>]) -> Result<Vec<bool>, StoreError> {
        // The `INSERT OR IGNORE` of a repeated id finds the first one stored.
        events.iter().map(|e| self.insert_event(e)).collect()
    }

    fn resolve(&mut self, project: &str, id: &str) -> Result<String, StoreError> {
        let root: Option<String> = self
            .conn
            .prepare_cached("SELECT root FROM identity_links WHERE project = ?1 AND id = ?2")?
            .query_row(params![project, id], |r| r.get(0))
            .optional()?;
        Ok(root.unwrap_or_else(|| id.to_string()))
    }

    fn link_identity(&mut self, project: &str, from: &str, to: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE identity_links SET root = ?3 WHERE project = ?1 AND root = ?2")?
            .execute(params![project, from, to])?;
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO identity_links (project, id, root) VALUES (?1, ?2, ?3)")?
            .execute(params![project, from, to])?;
        Ok(())
    }

    fn identity_members(&mut self, project: &str, root: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt =
            self.conn.prepare_cached("SELECT id FROM identity_links WHERE project = ?1 AND root = ?2")?;
        let mut out = vec![root.to_string()];
        for id in stmt.query_map(params![project, root], |r| r.get::<_, String>(0))? {
            out.push(id?);
        }
        Ok(out)
    }

    fn deferred(&mut self) -> &mut dyn DeferredWrites {
        // Written at once, daily counters excepted (summed until commit).
        self
    }

    fn rekey_daily_visitors(
        &mut self,
        project: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<DayKey>, StoreError> {
        let keys: Vec<DayKey> = {
            let mut stmt = self.conn.prepare_cached(
                "SELECT conference_id, day FROM daily_visitors WHERE project = ?1 AND visitor = ?2",
            )?;
            stmt.query_map(params![project, from], |r| {
                Ok(DayKey { conference_id: r.get(0)?, day: r.get(1)? })
            })?
            .collect::<Result<_, _>>()?
        };
        let mut merged = Vec::new();
        for key in keys {
            if !self.add_daily_visitor(project, &key, to)? {
                merged.push(key);
            }
        }
        self.conn
            .prepare_cached("DELETE FROM daily_visitors WHERE project = ?1 AND visitor = ?2")?
            .execute(params![project, from])?;
        Ok(merged)
    }

    fn insert_share(&mut self, project: &str, s: &ShareRow) -> Result<bool, StoreError> {
        let n = self
            .conn
            .prepare_cached(
                "INSERT OR IGNORE INTO shares (project, code, sharer, channel, target_url, parent_code, \
                 conference_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                project,
                s.code,
                s.sharer,
                s.channel,
                s.target_url,
                s.parent_code,
                s.conference_id,
                s.created_at
            ])?;
        Ok(n == 1)
    }

    fn share(&mut self, project: &str, code: &str) -> Result<Option<ShareRow>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT code, sharer, channel, target_url, parent_code, conference_id, created_at FROM shares \
                 WHERE project = ?1 AND code = ?2",
            )?
            .query_row(params![project, code], share_row)
            .optional()?)
    }

    fn share_subtree(&mut self, project: &str, code: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "WITH RECURSIVE sub(code) AS (SELECT ?2 UNION SELECT s.code FROM shares s JOIN sub \
             ON s.project = ?1 AND s.parent_code = sub.code) SELECT code FROM sub",
        )?;
        let codes =
            stmt.query_map(params![project, code], |r| r.get::<_, String>(0))?.collect::<Result<_, _>>()?;
        Ok(codes)
    }

    fn shares_by(&mut self, project: &str, sharers: &[String]) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for chunk in sharers.chunks(500) {
            let sql = format!(
                "SELECT code FROM shares WHERE project = ?1 AND sharer IN ({})",
                placeholders(chunk.len(), 2)
            );
            let mut stmt = self.conn.prepare_cached(&sql)?;
            let args = std::iter::once(project).chain(chunk.iter().map(String::as_str));
            for code in stmt.query_map(params_from_iter(args), |r| r.get::<_, String>(0))? {
                out.push(code?);
            }
        }
        Ok(out)
    }

    fn insert_registration(&mut self, project: &str, r: &RegistrationRow) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO registrations (project, event_id, registrant, conference_id, day, code, \
                 credited) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![project, r.event_id, r.registrant, r.key.conference_id, r.key.day, r.code, r.credited])?;
        Ok(())
    }

    fn registrations_with_codes(
        &mut self,
        project: &str,
        codes: &[String],
    ) -> Result<Vec<RegistrationRow>, StoreError> {
        self.registrations_where(project, "code", codes)
    }

    fn registrations_by(
        &mut self,
        project: &str,
        registrants: &[String],
    ) -> Result<Vec<RegistrationRow>, StoreError> {
        self.registrations_where(project, "registrant", registrants)
    }

    fn set_credited(&mut self, project: &str, event_id: &str, credited: bool) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE registrations SET credited = ?3 WHERE project = ?1 AND event_id = ?2")?
            .execute(params![project, event_id, credited])?;
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        let daily = std::mem::take(&mut self.daily);
        {
            let mut stmt = self.conn.prepare_cached(
                "INSERT INTO daily (project, conference_id, day, pv, uv, registrations, checkins, shares, \
                 share_conversions) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                 ON CONFLICT (project, conference_id, day) DO UPDATE SET pv = pv + excluded.pv, \
                 uv = uv + excluded.uv, registrations = registrations + excluded.registrations, \
                 checkins = checkins + excluded.checkins, shares = shares + excluded.shares, \
                 share_conversions = share_conversions + excluded.share_conversions",
            )?;
            for ((project, key), d) in &daily {
                stmt.execute(params![
                    project,
                    key.conference_id,
                    key.day,
                    d[0],
                    d[1],
                    d[2],
                    d[3],
                    d[4],
                    d[5]
                ])?;
            }
        }
        self.conn.execute_batch("COMMIT")?;
        self.open = false;
        Ok(())
    }
}

impl DeferredWrites for SqliteTx<'_> {
    fn touch_session(
        &mut self,
        project: &str,
        session_id: &str,
        distinct_id: &str,
        ts: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO sessions (project, session_id, distinct_id, started_at, last_at, event_count) \
                 VALUES (?1, ?2, ?3, ?4, ?4, 1) ON CONFLICT (project, session_id) DO UPDATE SET \
                 started_at = MIN(started_at, excluded.started_at), last_at = MAX(last_at, excluded.last_at), \
                 event_count = event_count + 1",
            )?
            .execute(params![project, session_id, distinct_id, ts])?;
        Ok(())
    }

    fn bump_daily(
        &mut self,
        project: &str,
        key: &DayKey,
        field: DailyField,
        delta: i64,
    ) -> Result<(), StoreError> {
        add_daily_delta(&mut self.daily, project.to_string(), key.clone(), field, delta);
        Ok(())
    }

    fn count_daily_visitor(&mut self, project: &str, key: &DayKey, visitor: &str) -> Result<(), StoreError> {
        if self.add_daily_visitor(project, key, visitor)? {
            self.bump_daily(project, key, DailyField::Uv, 1)?;
        }
        Ok(())
    }

    fn insert_open(
        &mut self,
        project: &str,
        code: &str,
        opener: &str,
        event_id: &str,
        ts: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO share_opens (project, event_id, code, opener, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![project, event_id, code, opener, ts])?;
        Ok(())
    }
}
