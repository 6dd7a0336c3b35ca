//! The deferred writes of [`PgTx`]: [`Pending`] gathers them in memory (it holds no
//! connection, so it cannot write early), and at commit each kind of pending row is written in
//! one multi-row statement (`INSERT … SELECT FROM UNNEST(…)`), rows in key order so that
//! concurrent consumers lock them in the same order. Visitor rows are also written before the
//! transaction reads visitor rows ([`PgTx::flush_visitors`]).

use std::collections::{BTreeSet, HashMap};

use super::clean;
use super::tx::PgTx;
use crate::store::{DailyDeltas, DailyField, DayKey, DeferredWrites, StoreError, add_daily_delta};

/// A session's pending change: distinct id (when new), first and last event time, events.
type Session = (String, i64, i64, i64);

/// The [`DeferredWrites`] of one transaction, not yet sent (all text already [`clean`]).
#[derive(Debug, Default)]
pub(super) struct Pending {
    /// Daily counter changes, one row per (project, day row).
    daily: DailyDeltas,
    /// Session changes by (project, session id).
    sessions: HashMap<(String, String), Session>,
    /// Page-view visitor rows: project, conference, day, visitor (in key order).
    visitors: BTreeSet<(String, String, String, String)>,
    /// Share opens: project, event id, code, opener, time.
    opens: Vec<(String, String, String, String, i64)>,
}

fn own(s: &str) -> String {
    clean(s).into_owned()
}

impl DeferredWrites for Pending {
    fn touch_session(
        &mut self,
        project: &str,
        session_id: &str,
        distinct_id: &str,
        ts: i64,
    ) -> Result<(), StoreError> {
        let entry = self
            .sessions
            .entry((own(project), own(session_id)))
            .or_insert_with(|| (own(distinct_id), ts, ts, 0));
        entry.1 = entry.1.min(ts);
        entry.2 = entry.2.max(ts);
        entry.3 += 1;
        Ok(())
    }

    fn bump_daily(
        &mut self,
        project: &str,
        key: &DayKey,
        field: DailyField,
        delta: i64,
    ) -> Result<(), StoreError> {
        let key = DayKey { conference_id: own(&key.conference_id), day: key.day.clone() };
        add_daily_delta(&mut self.daily, own(project), key, field, delta);
        Ok(())
    }

    fn count_daily_visitor(&mut self, project: &str, key: &DayKey, visitor: &str) -> Result<(), StoreError> {
        // Counted in `uv` when its row is written and turns out new (`flush_visitors`).
        self.visitors.insert((own(project), own(&key.conference_id), key.day.clone(), own(visitor)));
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
        self.opens.push((own(project), own(event_id), own(code), own(opener), ts));
        Ok(())
    }
}

impl PgTx<'_> {
    /// Writes every pending row (at commit): visitors first, whose new rows add to the daily
    /// counters, which go last.
    pub(super) fn flush(&mut self) -> Result<(), StoreError> {
        self.flush_visitors()?;
        self.flush_sessions()?;
        self.flush_opens()?;
        self.flush_daily()
    }

    /// Writes the pending visitor rows; the new ones count in `uv`. Called before any read of
    /// visitor rows in the transaction, and at commit.
    pub(super) fn flush_visitors(&mut self) -> Result<(), StoreError> {
        if self.pending.visitors.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending.visitors);
        let mut cols: [Vec<String>; 4] = Default::default();
        for (p, c, d, v) in pending {
            cols[0].push(p);
            cols[1].push(c);
            cols[2].push(d);
            cols[3].push(v);
        }
        let rows = self.query(
            "INSERT INTO daily_visitors (project, conference_id, day, visitor) \
             SELECT p, c, d, v FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) AS t(p, c, d, v) \
             ORDER BY p, c, d, v ON CONFLICT DO NOTHING RETURNING project, conference_id, day",
            &[&cols[0], &cols[1], &cols[2], &cols[3]],
        )?;
        for r in rows {
            let key = DayKey { conference_id: r.try_get(1)?, day: r.try_get(2)? };
            add_daily_delta(&mut self.pending.daily, r.try_get(0)?, key, DailyField::Uv, 1);
        }
        Ok(())
    }

    fn flush_sessions(&mut self) -> Result<(), StoreError> {
        if self.pending.sessions.is_empty() {
            return Ok(());
        }
        let (mut p, mut s, mut d): (Vec<String>, Vec<String>, Vec<String>) = Default::default();
        let (mut a, mut b, mut n): (Vec<i64>, Vec<i64>, Vec<i64>) = Default::default();
        for ((project, session), (distinct, first, last, count)) in std::mem::take(&mut self.pending.sessions)
        {
            p.push(project);
            s.push(session);
            d.push(distinct);
            a.push(first);
            b.push(last);
            n.push(count);
        }
        self.execute(
            "INSERT INTO sessions (project, session_id, distinct_id, started_at, last_at, event_count) \
             SELECT p, s, d, a, b, n FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::int8[]) \
             AS t(p, s, d, a, b, n) ORDER BY p, s \
             ON CONFLICT (project, session_id) DO UPDATE SET \
             started_at = LEAST(sessions.started_at, excluded.started_at), \
             last_at = GREATEST(sessions.last_at, excluded.last_at), \
             event_count = sessions.event_count + excluded.event_count",
            &[&p, &s, &d, &a, &b, &n],
        )?;
        Ok(())
    }

    fn flush_opens(&mut self) -> Result<(), StoreError> {
        if self.pending.opens.is_empty() {
            return Ok(());
        }
        let (mut p, mut e, mut c, mut o): (Vec<String>, Vec<String>, Vec<String>, Vec<String>) =
            Default::default();
        let mut at: Vec<i64> = Vec::new();
        for (project, event, code, opener, ts) in std::mem::take(&mut self.pending.opens) {
            p.push(project);
            e.push(event);
            c.push(code);
            o.push(opener);
            at.push(ts);
        }
        self.execute(
            "INSERT INTO share_opens (project, event_id, code, opener, at) \
             SELECT p, e, c, o, a FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[]) \
             AS t(p, e, c, o, a) ORDER BY p, e ON CONFLICT DO NOTHING",
            &[&p, &e, &c, &o, &at],
        )?;
        Ok(())
    }

    fn flush_daily(&mut self) -> Result<(), StoreError> {
        if self.pending.daily.is_empty() {
            return Ok(());
        }
        let mut text: [Vec<String>; 3] = Default::default();
        let mut nums: [Vec<i64>; 6] = Default::default();
        for ((project, key), d) in std::mem::take(&mut self.pending.daily) {
            text[0].push(project);
            text[1].push(key.conference_id);
            text[2].push(key.day);
            for (col, v) in nums.iter_mut().zip(d) {
                col.push(v);
            }
        }
        self.execute(
            "INSERT INTO daily (project, conference_id, day, pv, uv, registrations, checkins, shares, share_conversions) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::int8[], $7::int8[], \
             $8::int8[], $9::int8[]) AS t(p, c, d, pv, uv, r, ci, s, sc) ORDER BY p, c, d \
             ON CONFLICT (project, conference_id, day) DO UPDATE SET pv = daily.pv + excluded.pv, \
             uv = daily.uv + excluded.uv, registrations = daily.registrations + excluded.registrations, \
             checkins = daily.checkins + excluded.checkins, shares = daily.shares + excluded.shares, \
             share_conversions = daily.share_conversions + excluded.share_conversions",
            &[&text[0], &text[1], &text[2], &nums[0], &nums[1], &nums[2], &nums[3], &nums[4], &nums[5]],
        )?;
        Ok(())
    }
}
