//! Answers from the rollups the consumer keeps up to date: the daily summary (`daily`: page
//! views, registrations, check-ins, shares and share conversions per conference and day) and
//! its page-view visitors (`daily_visitors`, identities already resolved and re-keyed at every
//! merge, so `uv` over any span is a distinct count of it). A query is answered here when it
//! asks only for those metrics, groups only by day, week, month or conference and filters only
//! by conference: it then reads a row per conference and day instead of every event. The
//! answers are the same as from the events (the fixture cases run both ways).

use std::collections::HashMap;
use std::time::Instant;

use super::parse::conference_filter;
use super::range::Period;
use super::sql::Builder;
use super::{Dialect, Dimension, Field, Interval, Metric, Query, QueryError, RawRow, Scope};
use crate::store::Cell;

/// The `daily` column of a summary metric (`uv` is counted from `daily_visitors`).
fn column(m: Metric) -> Option<&'static str> {
    Some(match m {
        Metric::Pv => "pv",
        Metric::Registrations => "registrations",
        Metric::Checkins => "checkins",
        Metric::Shares => "shares",
        Metric::ShareConversions => "share_conversions",
        _ => return None,
    })
}

/// Whether every group is one conference on one day, where the summary's own `uv` column is
/// the distinct count (no need to count `daily_visitors`).
fn one_conference_day_per_group(query: &Query) -> bool {
    let by_day = query.dimensions.contains(&Dimension::Time(Interval::Day));
    let by_conference = query.dimensions.iter().any(|d| matches!(d, Dimension::Field(_)));
    let one_conference = matches!(
        query.filters.as_ref().and_then(conference_filter),
        Some(Some(list)) if list.len() == 1
    );
    by_day && (by_conference || one_conference)
}

/// Whether the rollups answer `query`.
pub fn answers(query: &Query) -> bool {
    let metrics = query.metrics.iter().all(|m| *m == Metric::Uv || column(*m).is_some());
    let dimensions = query.dimensions.iter().all(|d| match d {
        Dimension::Time(i) => *i != Interval::Hour,
        Dimension::Field(Field::Property(k)) => k == "conference_id",
        Dimension::Field(_) => false,
    });
    let filters = query.filters.as_ref().is_none_or(|f| conference_filter(f).is_some());
    query.rollups && metrics && dimensions && filters && query.event.is_none() && query.funnel.is_none()
}

/// The SQL of one dimension over a rollup table aliased `d` (days are `YYYY-MM-DD` text).
fn dimension(dialect: Dialect, d: &Dimension) -> String {
    let day_number = match dialect {
        Dialect::Sqlite => "CAST(julianday(d.day) - 2440587.5 AS INTEGER)",
        Dialect::Postgres => "(d.day::date - DATE '1970-01-01')",
    };
    match d {
        Dimension::Time(Interval::Week) => format!("(({day_number} + 3) / 7)"),
        Dimension::Time(Interval::Month) => {
            "(CAST(substr(d.day, 1, 4) AS INTEGER) * 12 + CAST(substr(d.day, 6, 2) AS INTEGER) - 1)".into()
        }
        Dimension::Time(_) => day_number.into(),
        // The summary files events without a conference under ''.
        Dimension::Field(_) => "NULLIF(d.conference_id, '')".into(),
    }
}

/// One grouped statement over `table` with these aggregate columns.
fn statement(
    dialect: Dialect,
    project: &str,
    query: &Query,
    period: &Period,
    table: &str,
    aggregates: &[String],
) -> super::sql::Statement {
    let mut b = Builder::new(dialect);
    let mut select: Vec<String> = query.dimensions.iter().map(|d| dimension(dialect, d)).collect();
    select.extend(aggregates.iter().cloned());
    let (p, from, to) = (b.text(project), b.text(&period.from.to_string()), b.text(&period.to.to_string()));
    let mut sql = format!(
        "SELECT {} FROM {table} d WHERE d.project = {p} AND d.day >= {from} AND d.day <= {to}",
        select.join(", ")
    );
    if let Some(Some(allowed)) = query.filters.as_ref().and_then(conference_filter) {
        let list: Vec<String> = allowed.iter().map(|c| b.text(c)).collect();
        sql.push_str(&if list.is_empty() {
            " AND 1 = 0".to_string()
        } else {
            format!(" AND NULLIF(d.conference_id, '') IN ({})", list.join(", "))
        });
    }
    if !query.dimensions.is_empty() {
        let groups: Vec<String> = (1..=query.dimensions.len()).map(|i| i.to_string()).collect();
        sql.push_str(&format!(" GROUP BY {}", groups.join(", ")));
        // As from the events, a group is there only when it counted something (a summary row
        // may hold other counters only).
        sql.push_str(&format!(" HAVING {} > 0", aggregates.join(" + ")));
    }
    b.finish(sql)
}

/// The grouped rows of a period (unsorted).
pub fn rows(
    scope: Scope<'_>,
    dialect: Dialect,
    query: &Query,
    period: &Period,
    deadline: Instant,
) -> Result<Vec<RawRow>, QueryError> {
    let dims = query.dimensions.len();
    let n = query.metrics.len();
    // (metric position, aggregate) per table.
    let uv_in_daily = one_conference_day_per_group(query);
    let daily_column = |m: Metric| if m == Metric::Uv && uv_in_daily { Some("uv") } else { column(m) };
    let daily: Vec<(usize, String)> = query
        .metrics
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            daily_column(*m).map(|c| (i, format!("CAST(COALESCE(SUM(d.{c}), 0) AS BIGINT)")))
        })
        .collect();
    let visitors: Vec<(usize, String)> = query
        .metrics
        .iter()
        .enumerate()
        .filter(|(_, m)| **m == Metric::Uv && !uv_in_daily)
        .map(|(i, _)| (i, "COUNT(DISTINCT d.visitor)".to_string()))
        .collect();
    let mut merged: HashMap<Vec<Cell>, Vec<f64>> = HashMap::new();
    let mut order: Vec<Vec<Cell>> = Vec::new();
    for (table, wanted) in [("daily", &daily), ("daily_visitors", &visitors)] {
        if wanted.is_empty() {
            continue;
        }
        let aggregates: Vec<String> = wanted.iter().map(|(_, a)| a.clone()).collect();
        let stmt = statement(dialect, scope.project, query, period, table, &aggregates);
        for mut row in scope.store.aggregate(&stmt.sql, &stmt.params, deadline)? {
            let values = row.split_off(dims);
            let slot = merged.entry(row.clone()).or_insert_with(|| {
                order.push(row);
                vec![0.0; n]
            });
            for ((i, _), v) in wanted.iter().zip(values) {
                slot[*i] = match v {
                    Cell::Int(x) => x as f64,
                    Cell::Real(x) => x,
                    _ => 0.0,
                };
            }
        }
    }
    if dims == 0 && order.is_empty() {
        return Ok(vec![(Vec::new(), vec![0.0; n])]);
    }
    Ok(order
        .into_iter()
        .map(|k| {
            let m = merged.remove(&k).unwrap_or_default();
            (k, m)
        })
        .collect())
}
