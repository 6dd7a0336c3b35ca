//! The consumer's PostgreSQL transaction: advisory locks first (see [`super`]), then one
//! multi-row statement for the dedup insert of every event of the batch group, one for the
//! identities it will resolve, and at commit one each for the deferred writes (`flush.rs`):
//! visitor rows (whose inserted rows count in `uv`), sessions, share opens and daily counters.
//! The persons the group's ids resolve to are locked in one more (see [`super`]); identity
//! merges, shares and registrations take round trips of their own.

use std::collections::{HashMap, HashSet};

use postgres::types::ToSql;

use super::PgError;
use super::flush::Pending;
use super::{CHANGES_CHANNEL, Lease, PgConn, clean, json_text, share_row};
use crate::store::{DayKey, DeferredWrites, RegistrationRow, ShareRow, StoreError, StoreTx, StoredEvent};

/// Advisory lock key every consumer transaction takes (shared) and [`crate::store::Store::begin`]
/// takes exclusively.
const GLOBAL_LOCK: i64 = 0x656d_706d_6978_0002;

/// FNV-1a of the project: its advisory lock key.
fn lock_key(project: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in project.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// A two-key advisory lock: a lock space apart from the one-key global lock. A hash collision
/// only serialises two unrelated codes or persons.
type RowLock = (i32, i32);

fn row_lock(kind: char, project: &str, value: &str) -> RowLock {
    let h = lock_key(&format!("{project}{kind}{value}")) as u64;
    ((h >> 32) as u32 as i32, h as u32 as i32)
}

/// The lock on a share code of `project`.
fn code_lock(project: &str, code: &str) -> RowLock {
    row_lock('\u{0}', project, code)
}

/// The lock on a person (an identity root) of `project`.
fn person_lock(project: &str, root: &str) -> RowLock {
    row_lock('\u{1}', project, root)
}

/// How often a transaction re-reads roots that moved while it locked them before it gives up
/// as a conflict (each round means another merge committed in between).
const MAX_HOLD_ROUNDS: usize = 4;

type Opts = Vec<Option<String>>;
type Strs = Vec<String>;

/// The transaction.
pub(super) struct PgTx<'a> {
    lease: Lease<'a>,
    /// Until committed or rolled back.
    open: bool,
    /// The deferred writes, sent at commit (`flush.rs`).
    pub(super) pending: Pending,
    /// Identity roots resolved (or prefetched) so far, by (project, id).
    ids: HashMap<(String, String), String>,
    /// Share-code and person locks held, by key: `true` exclusive.
    row_locks: HashMap<RowLock, bool>,
}

impl Drop for PgTx<'_> {
    fn drop(&mut self) {
        if self.open {
            let ok = self.lease.get().is_ok_and(|c| c.client.batch_execute("ROLLBACK").is_ok());
            if !ok {
                self.lease.discard = true;
            }
        }
    }
}

impl<'a> PgTx<'a> {
    /// `BEGIN` and the global lock (exclusive: alone; else beside other consumers), in one
    /// round trip.
    pub(super) fn begin(mut lease: Lease<'a>, exclusive: bool) -> Result<Self, StoreError> {
        let f = if exclusive { "pg_advisory_xact_lock" } else { "pg_advisory_xact_lock_shared" };
        let sql = format!("BEGIN ISOLATION LEVEL READ COMMITTED; SELECT {f}({GLOBAL_LOCK});");
        if let Err(e) = lease.get()?.client.batch_execute(&sql) {
            lease.discard = true;
            return Err(e.into());
        }
        Ok(PgTx {
            lease,
            open: true,
            pending: Pending::default(),
            ids: HashMap::new(),
            row_locks: HashMap::new(),
        })
    }

    fn conn(&mut self) -> Result<&mut PgConn, StoreError> {
        self.lease.get()
    }

    /// Takes a lock met out of the group's sorted order (a share code a walk meets, a person a
    /// walk resolves), unless held already. Out of order, it only tries: when another
    /// transaction holds it, this one fails as a deadlock would (SQLSTATE 40P01) and the
    /// consumer retries it, instead of waiting and risking a real deadlock (which PostgreSQL
    /// detects only after `deadlock_timeout`).
    fn try_lock(&mut self, key: RowLock, exclusive: bool) -> Result<(), StoreError> {
        if self.row_locks.get(&key).is_some_and(|held| *held || !exclusive) {
            return Ok(());
        }
        let f = if exclusive { "pg_try_advisory_xact_lock" } else { "pg_try_advisory_xact_lock_shared" };
        let sql = format!(
            "DO $$BEGIN IF NOT {f}({}, {}) THEN RAISE EXCEPTION 'locked by another consumer' \
             USING ERRCODE = '40P01'; END IF; END$$",
            key.0, key.1
        );
        self.conn()?.client.batch_execute(&sql)?;
        self.row_locks.insert(key, exclusive);
        Ok(())
    }

    /// Waits for these locks, in key order (the one order every transaction waits in), and
    /// holds them.
    fn lock_sorted(&mut self, keys: impl IntoIterator<Item = (RowLock, bool)>) -> Result<(), StoreError> {
        let mut wanted: std::collections::BTreeMap<RowLock, bool> = std::collections::BTreeMap::new();
        for (key, exclusive) in keys {
            *wanted.entry(key).or_insert(false) |= exclusive;
        }
        wanted.retain(|key, exclusive| !self.row_locks.get(key).is_some_and(|held| *held || !*exclusive));
        if wanted.is_empty() {
            return Ok(());
        }
        let mut sql = String::new();
        for ((a, b), exclusive) in &wanted {
            let f = if *exclusive { "pg_advisory_xact_lock" } else { "pg_advisory_xact_lock_shared" };
            sql.push_str(&format!("SELECT {f}({a}, {b});"));
        }
        self.conn()?.client.batch_execute(&sql)?;
        self.row_locks.extend(wanted);
        Ok(())
    }

    /// Reads the roots of these ids (of one project) into the cache, unlinked ids as their own.
    fn read_roots(&mut self, project: &str, ids: &[String]) -> Result<(), StoreError> {
        let project = own(project);
        let rows = self.query(
            "SELECT id, root FROM identity_links WHERE project = $1 AND id = ANY($2)",
            &[&project, &ids],
        )?;
        for id in ids {
            self.ids.insert((project.clone(), id.clone()), id.clone());
        }
        for r in rows {
            self.ids.insert((project.clone(), r.try_get(0)?), r.try_get(1)?);
        }
        Ok(())
    }

    /// The cached root of an id read by [`Self::read_roots`].
    fn cached_root(&self, project: &str, id: &str) -> String {
        self.ids.get(&(project.to_string(), id.to_string())).cloned().unwrap_or_else(|| id.to_string())
    }

    /// Locks the persons of `ids` (exclusively those of `merging`), then reads their roots
    /// again: a root that moved meanwhile (a merge committed between the read and the lock) is
    /// locked in turn. The first round waits in key order; later ones only try.
    fn hold(&mut self, project: &str, ids: &[String], merging: &HashSet<String>) -> Result<(), StoreError> {
        for round in 0..MAX_HOLD_ROUNDS {
            let keys: Vec<(RowLock, bool, String, String)> = ids
                .iter()
                .map(|id| {
                    let root = self.cached_root(project, id);
                    (person_lock(project, &root), merging.contains(id), id.clone(), root)
                })
                .collect();
            if round == 0 {
                self.lock_sorted(keys.iter().map(|k| (k.0, k.1)))?;
            } else {
                for (key, exclusive, _, _) in &keys {
                    self.try_lock(*key, *exclusive)?;
                }
            }
            self.read_roots(project, ids)?;
            if keys.iter().all(|(_, _, id, root)| self.cached_root(project, id) == *root) {
                return Ok(());
            }
        }
        Err(StoreError::Postgres(PgError::Contended("identities kept moving while they were locked")))
    }

    pub(super) fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let c = self.conn()?;
        let st = c.prep(sql)?;
        Ok(c.client.execute(&st, params)?)
    }

    pub(super) fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>, StoreError> {
        let c = self.conn()?;
        let st = c.prep(sql)?;
        Ok(c.client.query(&st, params)?)
    }

    fn strings(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<String>, StoreError> {
        self.query(sql, params)?.iter().map(|r| r.try_get::<_, String>(0).map_err(StoreError::from)).collect()
    }

    fn registrations_where(
        &mut self,
        sql: &'static str,
        project: &str,
        values: &[String],
    ) -> Result<Vec<RegistrationRow>, StoreError> {
        let values: Vec<String> = values.iter().map(|v| clean(v).into_owned()).collect();
        let project = clean(project).into_owned();
        let rows = self.query(sql, &[&project, &values])?;
        rows.iter()
            .map(|r| {
                Ok(RegistrationRow {
                    event_id: r.try_get(0)?,
                    registrant: r.try_get(1)?,
                    key: DayKey { conference_id: r.try_get(2)?, day: r.try_get(3)? },
                    code: r.try_get(4)?,
                    credited: r.try_get(5)?,
                })
            })
            .collect()
    }
}

fn opt(s: Option<&str>) -> Option<String> {
    s.map(|s| clean(s).into_owned())
}

fn own(s: &str) -> String {
    clean(s).into_owned()
}

impl StoreTx for PgTx<'_> {
    fn cursor(&mut self) -> Result<u64, StoreError> {
        let rows = self.query("SELECT cursor FROM consumer_state WHERE id = 1 FOR UPDATE", &[])?;
        let cursor: i64 = rows.first().map(|r| r.try_get(0)).transpose()?.unwrap_or(0);
        Ok(u64::try_from(cursor).unwrap_or(0))
    }

    fn set_cursor(&mut self, seq: u64) -> Result<(), StoreError> {
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        self.execute("UPDATE consumer_state SET cursor = $1 WHERE id = 1", &[&seq])?;
        Ok(())
    }

    fn insert_events(&mut self, events: &[StoredEvent<'_>]) -> Result<Vec<bool>, StoreError> {
        // The first of repeated ids in `events` is the one inserted.
        let mut seen = HashSet::new();
        let mut first = Vec::with_capacity(events.len());
        let (mut p, mut id, mut n, mut pr, mut cx): (Strs, Strs, Strs, Strs, Strs) = Default::default();
        let (mut d, mut a, mut s, mut c, mut at): (Opts, Opts, Opts, Opts, Opts) = Default::default();
        let (mut st, mut ra, mut ct): (Vec<i64>, Vec<i64>, Vec<Option<i64>>) = Default::default();
        for e in events {
            let key = (own(e.project), own(&e.event_id));
            let new = seen.insert(key.clone());
            first.push(new.then(|| key.clone()));
            if !new {
                continue;
            }
            p.push(key.0);
            id.push(key.1);
            n.push(own(e.name));
            d.push(opt(e.distinct_id));
            a.push(opt(e.anonymous_id));
            s.push(opt(e.session_id));
            st.push(e.server_ts);
            ra.push(e.received_at);
            ct.push(e.client_ts);
            c.push(opt(e.conference_id));
            at.push(opt(e.attribution));
            pr.push(json_text(e.properties));
            cx.push(json_text(e.context));
        }
        if p.is_empty() {
            return Ok(vec![false; events.len()]);
        }
        let rows = self.query(
            "INSERT INTO events (project, event_id, name, distinct_id, anonymous_id, session_id, server_ts, \
             received_at, client_ts, conference_id, attribution, properties, context) \
             SELECT p, e, n, d, a, s, st, ra, ct, c, at, pr::jsonb, cx::jsonb FROM UNNEST($1::text[], $2::text[], \
             $3::text[], $4::text[], $5::text[], $6::text[], $7::int8[], $8::int8[], $9::int8[], $10::text[], \
             $11::text[], $12::text[], $13::text[]) AS t(p, e, n, d, a, s, st, ra, ct, c, at, pr, cx) ORDER BY p, e \
             ON CONFLICT (project, event_id) DO NOTHING RETURNING project, event_id",
            &[&p, &id, &n, &d, &a, &s, &st, &ra, &ct, &c, &at, &pr, &cx],
        )?;
        let mut inserted = HashSet::with_capacity(rows.len());
        for r in rows {
            inserted.insert((r.try_get::<_, String>(0)?, r.try_get::<_, String>(1)?));
        }
        Ok(first.into_iter().map(|k| k.is_some_and(|k| inserted.contains(&k))).collect())
    }

    fn hold_identities(&mut self, project: &str, ids: &[&str], merging: &[&str]) -> Result<(), StoreError> {
        let project = own(project);
        let merging: HashSet<String> = merging.iter().map(|i| own(i)).collect();
        let mut all: Vec<String> = ids.iter().map(|i| own(i)).chain(merging.iter().cloned()).collect();
        all.sort_unstable();
        all.dedup();
        if all.is_empty() {
            return Ok(());
        }
        self.read_roots(&project, &all)?;
        self.hold(&project, &all, &merging)
    }

    fn resolve(&mut self, project: &str, id: &str) -> Result<String, StoreError> {
        let key = (own(project), own(id));
        let root = match self.ids.get(&key) {
            Some(root) => root.clone(),
            None => {
                self.read_roots(&key.0, std::slice::from_ref(&key.1))?;
                self.cached_root(&key.0, &key.1)
            }
        };
        if self.row_locks.contains_key(&person_lock(&key.0, &root)) {
            return Ok(root);
        }
        // Met outside the group's ids (a sharer of a credit walk): held as the group's are.
        self.hold(&key.0, std::slice::from_ref(&key.1), &HashSet::new())?;
        Ok(self.cached_root(&key.0, &key.1))
    }

    fn link_identity(&mut self, project: &str, from: &str, to: &str) -> Result<(), StoreError> {
        let (project, from, to) = (own(project), own(from), own(to));
        // Both persons alone (normally held so since `hold_identities`).
        self.try_lock(person_lock(&project, &from), true)?;
        self.try_lock(person_lock(&project, &to), true)?;
        self.execute(
            "UPDATE identity_links SET root = $3 WHERE project = $1 AND root = $2",
            &[&project, &from, &to],
        )?;
        self.execute(
            "INSERT INTO identity_links (project, id, root) VALUES ($1, $2, $3) \
             ON CONFLICT (project, id) DO UPDATE SET root = excluded.root",
            &[&project, &from, &to],
        )?;
        for ((p, _), root) in self.ids.iter_mut() {
            if *p == project && *root == from {
                root.clone_from(&to);
            }
        }
        self.ids.insert((project, from), to);
        Ok(())
    }

    fn identity_members(&mut self, project: &str, root: &str) -> Result<Vec<String>, StoreError> {
        let (project, root) = (own(project), own(root));
        let mut out = vec![root.clone()];
        out.extend(
            self.strings(
                "SELECT id FROM identity_links WHERE project = $1 AND root = $2",
                &[&project, &root],
            )?,
        );
        Ok(out)
    }

    fn deferred(&mut self) -> &mut dyn DeferredWrites {
        // Buffered until commit; `flush_visitors` before visitor rows are read.
        &mut self.pending
    }

    fn rekey_daily_visitors(
        &mut self,
        project: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<DayKey>, StoreError> {
        self.flush_visitors()?;
        let rows = self.query(
            "WITH moved AS (DELETE FROM daily_visitors WHERE project = $1 AND visitor = $2 \
             RETURNING conference_id, day), \
             added AS (INSERT INTO daily_visitors (project, conference_id, day, visitor) \
             SELECT $1, conference_id, day, $3 FROM moved ORDER BY conference_id, day \
             ON CONFLICT DO NOTHING RETURNING conference_id, day) \
             SELECT conference_id, day FROM moved EXCEPT SELECT conference_id, day FROM added",
            &[&own(project), &own(from), &own(to)],
        )?;
        rows.iter().map(|r| Ok(DayKey { conference_id: r.try_get(0)?, day: r.try_get(1)? })).collect()
    }

    fn insert_share(&mut self, project: &str, s: &ShareRow) -> Result<bool, StoreError> {
        // Before the share is visible to anyone: a walk that found the code missing holds this
        // lock until it commits, so this share's re-check (which follows) sees its registration.
        self.try_lock(code_lock(project, &s.code), true)?;
        let n = self.execute(
            "INSERT INTO shares (project, code, sharer, channel, target_url, parent_code, conference_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
            &[
                &own(project),
                &own(&s.code),
                &own(&s.sharer),
                &opt(s.channel.as_deref()),
                &opt(s.target_url.as_deref()),
                &opt(s.parent_code.as_deref()),
                &opt(s.conference_id.as_deref()),
                &s.created_at,
            ],
        )?;
        Ok(n == 1)
    }

    fn lock_share_codes(&mut self, codes: &[(&str, &str, bool)]) -> Result<(), StoreError> {
        self.lock_sorted(codes.iter().map(|(p, c, x)| (code_lock(p, c), *x)))
    }

    fn share(&mut self, project: &str, code: &str) -> Result<Option<ShareRow>, StoreError> {
        const SQL: &str = "SELECT code, sharer, channel, target_url, parent_code, conference_id, created_at \
                           FROM shares WHERE project = $1 AND code = $2";
        let rows = self.query(SQL, &[&own(project), &own(code)])?;
        if let Some(row) = rows.first() {
            // Shares are never changed once stored: nothing to lock.
            return Ok(Some(share_row(row)?));
        }
        // Missing: lock the code (waiting for a transaction storing it now), then read again
        // (READ COMMITTED: a new snapshot). Whoever stores it later waits for this transaction,
        // so its re-check sees what this one stores (see `super`).
        self.try_lock(code_lock(project, code), false)?;
        let rows = self.query(SQL, &[&own(project), &own(code)])?;
        Ok(rows.first().map(share_row).transpose()?)
    }

    fn share_subtree(&mut self, project: &str, code: &str) -> Result<Vec<String>, StoreError> {
        self.strings(
            "WITH RECURSIVE sub(code) AS (SELECT $2::text UNION SELECT s.code FROM shares s JOIN sub \
             ON s.project = $1 AND s.parent_code = sub.code) SELECT code FROM sub",
            &[&own(project), &own(code)],
        )
    }

    fn shares_by(&mut self, project: &str, sharers: &[String]) -> Result<Vec<String>, StoreError> {
        let sharers: Vec<String> = sharers.iter().map(|s| own(s)).collect();
        self.strings(
            "SELECT code FROM shares WHERE project = $1 AND sharer = ANY($2)",
            &[&own(project), &sharers],
        )
    }

    fn insert_registration(&mut self, project: &str, r: &RegistrationRow) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO registrations (project, event_id, registrant, conference_id, day, code, credited) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            &[
                &own(project),
                &own(&r.event_id),
                &own(&r.registrant),
                &own(&r.key.conference_id),
                &r.key.day,
                &opt(r.code.as_deref()),
                &r.credited,
            ],
        )?;
        Ok(())
    }

    fn registrations_with_codes(
        &mut self,
        project: &str,
        codes: &[String],
    ) -> Result<Vec<RegistrationRow>, StoreError> {
        self.registrations_where(
            "SELECT event_id, registrant, conference_id, day, code, credited FROM registrations \
             WHERE project = $1 AND code = ANY($2)",
            project,
            codes,
        )
    }

    fn registrations_by(
        &mut self,
        project: &str,
        registrants: &[String],
    ) -> Result<Vec<RegistrationRow>, StoreError> {
        self.registrations_where(
            "SELECT event_id, registrant, conference_id, day, code, credited FROM registrations \
             WHERE project = $1 AND registrant = ANY($2)",
            project,
            registrants,
        )
    }

    fn set_credited(&mut self, project: &str, event_id: &str, credited: bool) -> Result<(), StoreError> {
        self.execute(
            "UPDATE registrations SET credited = $3 WHERE project = $1 AND event_id = $2",
            &[&own(project), &own(event_id), &credited],
        )?;
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        self.flush()?;
        // Delivered to listeners (the live streams of every process) when the commit is.
        self.conn()?.client.batch_execute(&format!("NOTIFY {CHANGES_CHANNEL}; COMMIT"))?;
        self.open = false;
        Ok(())
    }
}
