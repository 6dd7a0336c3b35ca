//! The query side of [`SqliteStore`]: reads on the reader connection.

use rusqlite::{params, params_from_iter, types::Value as SqlValue};

use super::{SqliteStore, share_row};
use crate::store::{
    CellRef, DailySummary, EventFilter, EventRow, LinkRow, Param, SessionRow, ShareFacts, StoreError,
};

impl SqliteStore {
    pub(super) fn read_daily(
        &self,
        project: &str,
        conference_id: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<DailySummary>, StoreError> {
        let conn = self.read_conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT day, conference_id, pv, uv, registrations, checkins, shares, share_conversions FROM daily \
             WHERE project = ?1 AND conference_id = ?2 AND day >= ?3 AND day <= ?4 ORDER BY day",
        )?;
        let rows = stmt.query_map(params![project, conference_id, from, to], |r| {
            Ok(DailySummary {
                date: r.get(0)?,
                conference_id: r.get(1)?,
                pv: r.get(2)?,
                uv: r.get(3)?,
                registrations: r.get(4)?,
                checkins: r.get(5)?,
                shares: r.get(6)?,
                share_conversions: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(super) fn read_share_facts(&self, project: &str) -> Result<ShareFacts, StoreError> {
        let conn = self.read_conn()?;
        // Taken in one read transaction so the three lists agree.
        conn.execute_batch("BEGIN")?;
        let result = (|| {
            let mut facts = ShareFacts::default();
            let mut stmt = conn.prepare_cached(
                "SELECT s.code, s.sharer, s.channel, s.target_url, s.parent_code, s.conference_id, s.created_at, \
                 COALESCE(l.root, s.sharer) FROM shares s LEFT JOIN identity_links l \
                 ON l.project = s.project AND l.id = s.sharer WHERE s.project = ?1",
            )?;
            for row in stmt.query_map([project], |r| Ok((share_row(r)?, r.get(7)?)))? {
                facts.shares.push(row?);
            }
            let mut stmt = conn.prepare_cached(
                "SELECT o.code, COALESCE(l.root, o.opener) FROM share_opens o LEFT JOIN identity_links l \
                 ON l.project = o.project AND l.id = o.opener WHERE o.project = ?1",
            )?;
            for row in stmt.query_map([project], |r| Ok((r.get(0)?, r.get(1)?)))? {
                facts.opens.push(row?);
            }
            let mut stmt = conn.prepare_cached(
                "SELECT r.code, COALESCE(l.root, r.registrant), r.conference_id, r.day FROM registrations r \
                 LEFT JOIN identity_links l ON l.project = r.project AND l.id = r.registrant \
                 WHERE r.project = ?1 AND r.code IS NOT NULL",
            )?;
            for row in stmt.query_map([project], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))? {
                facts.registrations.push(row?);
            }
            Ok(facts)
        })();
        conn.execute_batch("COMMIT")?;
        result
    }

    pub(super) fn read_sessions(
        &self,
        project: &str,
        distinct_id: &str,
    ) -> Result<Vec<SessionRow>, StoreError> {
        let conn = self.read_conn()?;
        let mut stmt = conn.prepare_cached(
            "WITH person(root) AS (SELECT COALESCE((SELECT root FROM identity_links WHERE project = ?1 AND id = ?2), ?2)), \
             ids(id) AS (SELECT root FROM person UNION SELECT l.id FROM identity_links l, person \
             WHERE l.project = ?1 AND l.root = person.root) \
             SELECT session_id, distinct_id, started_at, last_at, event_count FROM sessions \
             WHERE project = ?1 AND distinct_id IN (SELECT id FROM ids) ORDER BY last_at DESC LIMIT 1000",
        )?;
        let rows = stmt.query_map(params![project, distinct_id], |r| {
            let (started_at, last_activity_at): (i64, i64) = (r.get(2)?, r.get(3)?);
            Ok(SessionRow {
                session_id: r.get(0)?,
                distinct_id: r.get(1)?,
                started_at,
                last_activity_at,
                duration_ms: last_activity_at - started_at,
                event_count: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(super) fn read_events(&self, project: &str, f: &EventFilter) -> Result<Vec<EventRow>, StoreError> {
        let conn = self.read_conn()?;
        let mut sql = String::from(
            "SELECT seq, event_id, name, distinct_id, anonymous_id, session_id, server_ts, received_at, client_ts, \
             attribution, properties, context FROM events WHERE project = ?",
        );
        let mut args: Vec<SqlValue> = vec![project.to_string().into()];
        for (column, value) in
            [("distinct_id", &f.distinct_id), ("name", &f.name), ("conference_id", &f.conference_id)]
        {
            if let Some(v) = value {
                sql.push_str(&format!(" AND {column} = ?"));
                args.push(v.clone().into());
            }
        }
        if let Some(before) = f.before {
            sql.push_str(" AND seq < ?");
            args.push(before.into());
        }
        sql.push_str(" ORDER BY seq DESC LIMIT ?");
        args.push((f.limit as i64).into());
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(args), |r| {
            let json = |i: usize| -> rusqlite::Result<serde_json::Value> {
                Ok(serde_json::from_str(&r.get::<_, String>(i)?).unwrap_or(serde_json::Value::Null))
            };
            Ok(EventRow {
                cursor: r.get(0)?,
                event_id: r.get(1)?,
                name: r.get(2)?,
                distinct_id: r.get(3)?,
                anonymous_id: r.get(4)?,
                session_id: r.get(5)?,
                server_ts: r.get(6)?,
                received_at: r.get(7)?,
                client_ts: r.get(8)?,
                attribution: r.get(9)?,
                properties: json(10)?,
                context: json(11)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Runs an aggregate statement; a progress handler cancels it at `deadline`.
    pub(super) fn read_scan(
        &self,
        sql: &str,
        params: &[Param],
        deadline: std::time::Instant,
        each: &mut dyn FnMut(&[CellRef<'_>]),
    ) -> Result<(), StoreError> {
        let conn = self.read_conn()?;
        // Checked every 10,000 virtual-machine steps: well under a millisecond apart.
        conn.progress_handler(10_000, Some(move || std::time::Instant::now() >= deadline));
        let result = (|| -> Result<(), rusqlite::Error> {
            let mut stmt = conn.prepare(sql)?;
            let args = params.iter().map(|p| match p {
                Param::Text(s) => SqlValue::Text(s.clone()),
                Param::Real(x) => SqlValue::Real(*x),
            });
            let width = stmt.column_count();
            let mut rows = stmt.query(params_from_iter(args))?;
            while let Some(row) = rows.next()? {
                let mut cells = Vec::with_capacity(width);
                for i in 0..width {
                    cells.push(match row.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => CellRef::Null,
                        rusqlite::types::ValueRef::Integer(n) => CellRef::Int(n),
                        rusqlite::types::ValueRef::Real(x) => CellRef::Real(x),
                        rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                            CellRef::Text(String::from_utf8_lossy(t))
                        }
                    });
                }
                each(&cells);
            }
            Ok(())
        })();
        conn.progress_handler(0, None::<fn() -> bool>);
        result.map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::OperationInterrupted => {
                StoreError::Timeout
            }
            e => StoreError::from(e),
        })
    }

    /// The links a `share_links` query with one parameter finds (see `store::links`).
    pub(super) fn read_links(&self, sql: &str, arg: &str) -> Result<Vec<LinkRow>, StoreError> {
        let conn = self.read_conn()?;
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map([arg], |r| {
            Ok(LinkRow {
                id: r.get(0)?,
                project: r.get(1)?,
                conference_id: r.get(2)?,
                label: r.get(3)?,
                token_hash: r.get(4)?,
                created_at: r.get(5)?,
                expires_at: r.get(6)?,
                revoked_at: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
