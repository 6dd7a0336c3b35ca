//! The query side of [`super::PgStore`]: what the query endpoints read.

use postgres::types::ToSql;

use super::{PgConn, clean, share_row};
use crate::query::Dialect;
use crate::store::links;
use crate::store::{
    CellRef, DailySummary, EventFilter, EventRow, LinkRow, Param, SessionRow, ShareFacts, StoreError,
};

pub(super) fn daily(
    c: &mut PgConn,
    project: &str,
    conference_id: &str,
    from: &str,
    to: &str,
) -> Result<Vec<DailySummary>, StoreError> {
    let st = c.prep(
        "SELECT day, conference_id, pv, uv, registrations, checkins, shares, share_conversions FROM daily \
         WHERE project = $1 AND conference_id = $2 AND day >= $3 AND day <= $4 ORDER BY day",
    )?;
    let rows = c
        .client
        .query(&st, &[&clean(project).into_owned(), &clean(conference_id).into_owned(), &from, &to])?;
    rows.iter()
        .map(|r| {
            Ok(DailySummary {
                date: r.try_get(0)?,
                conference_id: r.try_get(1)?,
                pv: r.try_get(2)?,
                uv: r.try_get(3)?,
                registrations: r.try_get(4)?,
                checkins: r.try_get(5)?,
                shares: r.try_get(6)?,
                share_conversions: r.try_get(7)?,
            })
        })
        .collect()
}

pub(super) fn share_facts(c: &mut PgConn, project: &str) -> Result<ShareFacts, StoreError> {
    let project = clean(project).into_owned();
    // One snapshot, so the three lists agree.
    let mut tx = c
        .client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let mut facts = ShareFacts::default();
    for r in tx.query(
        "SELECT s.code, s.sharer, s.channel, s.target_url, s.parent_code, s.conference_id, s.created_at, \
         COALESCE(l.root, s.sharer) FROM shares s LEFT JOIN identity_links l \
         ON l.project = s.project AND l.id = s.sharer WHERE s.project = $1",
        &[&project],
    )? {
        facts.shares.push((share_row(&r)?, r.try_get(7)?));
    }
    for r in tx.query(
        "SELECT o.code, COALESCE(l.root, o.opener) FROM share_opens o LEFT JOIN identity_links l \
         ON l.project = o.project AND l.id = o.opener WHERE o.project = $1",
        &[&project],
    )? {
        facts.opens.push((r.try_get(0)?, r.try_get(1)?));
    }
    for r in tx.query(
        "SELECT r.code, COALESCE(l.root, r.registrant), r.conference_id, r.day FROM registrations r \
         LEFT JOIN identity_links l ON l.project = r.project AND l.id = r.registrant \
         WHERE r.project = $1 AND r.code IS NOT NULL",
        &[&project],
    )? {
        facts.registrations.push((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?));
    }
    tx.commit()?;
    Ok(facts)
}

pub(super) fn sessions(
    c: &mut PgConn,
    project: &str,
    distinct_id: &str,
) -> Result<Vec<SessionRow>, StoreError> {
    let st = c.prep(
        "WITH person(root) AS (SELECT COALESCE((SELECT root FROM identity_links WHERE project = $1 AND id = $2), $2)), \
         ids(id) AS (SELECT root FROM person UNION SELECT l.id FROM identity_links l, person \
         WHERE l.project = $1 AND l.root = person.root) \
         SELECT session_id, distinct_id, started_at, last_at, event_count FROM sessions \
         WHERE project = $1 AND distinct_id IN (SELECT id FROM ids) ORDER BY last_at DESC LIMIT 1000",
    )?;
    let rows = c.client.query(&st, &[&clean(project).into_owned(), &clean(distinct_id).into_owned()])?;
    rows.iter()
        .map(|r| {
            let (started_at, last_activity_at): (i64, i64) = (r.try_get(2)?, r.try_get(3)?);
            Ok(SessionRow {
                session_id: r.try_get(0)?,
                distinct_id: r.try_get(1)?,
                started_at,
                last_activity_at,
                duration_ms: last_activity_at - started_at,
                event_count: r.try_get(4)?,
            })
        })
        .collect()
}

pub(super) fn events(c: &mut PgConn, project: &str, f: &EventFilter) -> Result<Vec<EventRow>, StoreError> {
    let mut sql = String::from(
        "SELECT seq, event_id, name, distinct_id, anonymous_id, session_id, server_ts, received_at, client_ts, \
         attribution, properties::text, context::text FROM events WHERE project = $1",
    );
    let mut args: Vec<Box<dyn ToSql + Sync>> = vec![Box::new(clean(project).into_owned())];
    for (column, value) in
        [("distinct_id", &f.distinct_id), ("name", &f.name), ("conference_id", &f.conference_id)]
    {
        if let Some(v) = value {
            args.push(Box::new(clean(v).into_owned()));
            sql.push_str(&format!(" AND {column} = ${}", args.len()));
        }
    }
    if let Some(before) = f.before {
        args.push(Box::new(before));
        sql.push_str(&format!(" AND seq < ${}", args.len()));
    }
    args.push(Box::new(i64::try_from(f.limit).unwrap_or(i64::MAX)));
    sql.push_str(&format!(" ORDER BY seq DESC LIMIT ${}", args.len()));
    let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref()).collect();
    let rows = c.client.query(&sql, &params)?;
    rows.iter()
        .map(|r| {
            let json = |i: usize| -> Result<serde_json::Value, StoreError> {
                Ok(serde_json::from_str(&r.try_get::<_, String>(i)?).unwrap_or(serde_json::Value::Null))
            };
            Ok(EventRow {
                cursor: r.try_get(0)?,
                event_id: r.try_get(1)?,
                name: r.try_get(2)?,
                distinct_id: r.try_get(3)?,
                anonymous_id: r.try_get(4)?,
                session_id: r.try_get(5)?,
                server_ts: r.try_get(6)?,
                received_at: r.try_get(7)?,
                client_ts: r.try_get(8)?,
                attribution: r.try_get(9)?,
                properties: json(10)?,
                context: json(11)?,
            })
        })
        .collect()
}

/// Runs an aggregate statement in a read-only transaction whose `statement_timeout` ends at
/// `deadline`, handing each row to `each`.
pub(super) fn scan(
    c: &mut PgConn,
    sql: &str,
    params: &[Param],
    deadline: std::time::Instant,
    each: &mut dyn FnMut(&[CellRef<'_>]),
) -> Result<(), StoreError> {
    use postgres::types::Type;
    let left = deadline.saturating_duration_since(std::time::Instant::now()).as_millis().max(1);
    let args: Vec<Box<dyn ToSql + Sync>> = params
        .iter()
        .map(|p| -> Box<dyn ToSql + Sync> {
            match p {
                Param::Text(s) => Box::new(clean(s).into_owned()),
                Param::Real(x) => Box::new(*x),
            }
        })
        .collect();
    let refs: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref()).collect();
    let timed_out = |e: &postgres::Error| e.code().is_some_and(|c| c.code() == "57014");
    let mut tx = c.client.build_transaction().read_only(true).start()?;
    tx.batch_execute(&format!("SET LOCAL statement_timeout = {left}"))?;
    // All rows at once, then handed over one by one (see the measurement in
    // docs/performance.md: the synchronous client's row iterator costs more per row).
    let rows = match tx.query(sql, &refs) {
        Ok(rows) => rows,
        Err(e) if timed_out(&e) => return Err(StoreError::Timeout),
        Err(e) => return Err(e.into()),
    };
    for r in &rows {
        let mut cells = Vec::with_capacity(r.len());
        for (i, col) in r.columns().iter().enumerate() {
            let t = col.type_();
            cells.push(if *t == Type::INT8 {
                r.try_get::<_, Option<i64>>(i)?.map_or(CellRef::Null, CellRef::Int)
            } else if *t == Type::INT4 {
                r.try_get::<_, Option<i32>>(i)?.map_or(CellRef::Null, |n| CellRef::Int(i64::from(n)))
            } else if *t == Type::FLOAT8 {
                r.try_get::<_, Option<f64>>(i)?.map_or(CellRef::Null, CellRef::Real)
            } else {
                r.try_get::<_, Option<&str>>(i)?.map_or(CellRef::Null, |t| CellRef::Text(t.into()))
            });
        }
        each(&cells);
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn create_link(c: &mut PgConn, l: &LinkRow) -> Result<(), StoreError> {
    c.client.execute(
        links::sql(links::INSERT, Dialect::Postgres).as_ref(),
        &[
            &l.id,
            &clean(&l.project).into_owned(),
            &clean(&l.conference_id).into_owned(),
            &l.label.as_deref().map(|s| clean(s).into_owned()),
            &l.token_hash,
            &l.created_at,
            &l.expires_at,
            &l.revoked_at,
        ],
    )?;
    Ok(())
}

/// The links a `share_links` query with one text parameter finds (see `store::links`).
pub(super) fn find_links(c: &mut PgConn, sql: &str, arg: &str) -> Result<Vec<LinkRow>, StoreError> {
    let rows = c.client.query(links::sql(sql, Dialect::Postgres).as_ref(), &[&arg])?;
    rows.iter()
        .map(|r| {
            Ok(LinkRow {
                id: r.try_get(0)?,
                project: r.try_get(1)?,
                conference_id: r.try_get(2)?,
                label: r.try_get(3)?,
                token_hash: r.try_get(4)?,
                created_at: r.try_get(5)?,
                expires_at: r.try_get(6)?,
                revoked_at: r.try_get(7)?,
            })
        })
        .collect()
}
