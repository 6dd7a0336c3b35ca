//! The rows of one period: fetched (grouped in SQL, or from the share facts for
//! `share_credit`), time buckets zero-filled and labelled, sorted the same way whichever store
//! answered, and cut at `limit`; and the period's totals.

use std::time::Instant;

use serde_json::Value;

use super::{
    Dialect, Dimension, MAX_ROWS, Metric, OrderKey, Query, QueryError, ResultRow, Scope, range, rollup,
    share_credit, sql,
};
use crate::consumer::credit::Amount;
use crate::store::Cell;

fn number(cell: &Cell) -> f64 {
    match cell {
        Cell::Int(n) => *n as f64,
        Cell::Real(x) => *x,
        _ => 0.0,
    }
}

/// Rows before shaping: dimension cells (time buckets as numbers) and metric values.
pub(crate) type RawRow = (Vec<Cell>, Vec<f64>);

pub(super) fn period_totals(
    scope: Scope<'_>,
    dialect: Dialect,
    query: &Query,
    period: &range::Period,
    deadline: Instant,
) -> Result<Vec<Amount>, QueryError> {
    let flat = Query { dimensions: Vec::new(), order_by: Vec::new(), limit: 1, ..query.clone() };
    let rows = fetch(scope, dialect, &flat, period, 1, deadline)?.0;
    Ok(match rows.into_iter().next() {
        Some((_, m)) => m.into_iter().map(Amount).collect(),
        None => vec![Amount(0.0); query.metrics.len()],
    })
}

/// The grouped rows of a period, and whether they are already sorted and cut at `limit`.
fn fetch(
    scope: Scope<'_>,
    dialect: Dialect,
    query: &Query,
    period: &range::Period,
    limit: usize,
    deadline: Instant,
) -> Result<(Vec<RawRow>, bool), QueryError> {
    if query.metrics == [Metric::ShareCredit] {
        return Ok((share_credit::rows(scope, query, period)?, false));
    }
    if rollup::answers(query) {
        return Ok((rollup::rows(scope, dialect, query, period, deadline)?, false));
    }
    let stmt = sql::aggregate(dialect, scope.project, query, period, limit)?;
    let raw = scope.store.aggregate(&stmt.sql, &stmt.params, deadline)?;
    let dims = query.dimensions.len();
    let rows =
        raw.into_iter().map(|mut r| (r.drain(..dims).collect(), r.iter().map(number).collect())).collect();
    Ok((rows, true))
}

/// The rows of one period: grouped in SQL, time buckets labelled and zero-filled here.
pub(super) fn period_rows(
    scope: Scope<'_>,
    dialect: Dialect,
    query: &Query,
    period: &range::Period,
    deadline: Instant,
) -> Result<(Vec<ResultRow>, bool), QueryError> {
    let time = query.dimensions.iter().position(|d| matches!(d, Dimension::Time(_)));
    // With a time series every bucket is filled in afterwards, so SQL may not cut rows; it is
    // bounded by MAX_ROWS instead. Without one, SQL sorts and cuts at `limit`.
    let cap = if time.is_some() { MAX_ROWS + 1 } else { query.limit + 1 };
    let (mut rows, sorted) = fetch(scope, dialect, query, period, cap, deadline)?;
    let dims = query.dimensions.len();
    if time.is_some() && rows.len() > MAX_ROWS {
        return Err(QueryError::TooLarge(format!(
            "more than {MAX_ROWS} result rows; add a filter, fewer dimensions or a coarser interval"
        )));
    }
    let amounts = |m: Vec<f64>| m.into_iter().map(Amount).collect::<Vec<_>>();
    let Some(t) = time else {
        if !sorted {
            sort_rows(&mut rows, None, &query.order_by);
        }
        let truncated = rows.len() > query.limit;
        rows.truncate(query.limit);
        let results = rows
            .into_iter()
            .map(|(d, m)| ResultRow { dimensions: d.iter().map(text_value).collect(), metrics: amounts(m) })
            .collect();
        return Ok((results, truncated));
    };
    let Dimension::Time(interval) = query.dimensions[t] else { return Ok((Vec::new(), false)) };
    let buckets = period.buckets(interval)?;
    zero_fill(&mut rows, dims, t, &buckets, query.metrics.len())?;
    sort_rows(&mut rows, Some(t), &query.order_by);
    let truncated = rows.len() > query.limit;
    rows.truncate(query.limit);
    let label = |c: &Cell| match c {
        Cell::Int(b) => Value::String(range::bucket_label(interval, *b)),
        other => text_value(other),
    };
    let results = rows
        .into_iter()
        .map(|(d, m)| ResultRow {
            dimensions: d
                .iter()
                .enumerate()
                .map(|(i, c)| if i == t { label(c) } else { text_value(c) })
                .collect(),
            metrics: amounts(m),
        })
        .collect();
    Ok((results, truncated))
}

fn text_value(c: &Cell) -> Value {
    match c {
        Cell::Null => Value::Null,
        Cell::Text(s) => Value::String(s.clone()),
        Cell::Int(n) => Value::String(n.to_string()),
        Cell::Real(x) => Value::String(x.to_string()),
    }
}

/// Adds a zero row for every bucket missing from each combination of the other dimensions
/// (`dims` dimensions in all, the time one at `t`).
fn zero_fill(
    rows: &mut Vec<RawRow>,
    dims: usize,
    t: usize,
    buckets: &[i64],
    metrics: usize,
) -> Result<(), QueryError> {
    use std::collections::HashSet;
    let others = |d: &[Cell]| -> Vec<Cell> {
        d.iter().enumerate().filter(|(i, _)| *i != t).map(|(_, c)| c.clone()).collect()
    };
    let present: HashSet<Vec<Cell>> = rows.iter().map(|(d, _)| d.clone()).collect();
    let mut combos: Vec<Vec<Cell>> = Vec::new();
    let mut seen = HashSet::new();
    for (d, _) in rows.iter() {
        let k = others(d);
        if seen.insert(k.clone()) {
            combos.push(k);
        }
    }
    if dims == 1 && combos.is_empty() {
        // A plain series with no events still has every bucket.
        combos.push(Vec::new());
    }
    let total = combos.len().saturating_mul(buckets.len());
    if total > MAX_ROWS {
        return Err(QueryError::TooLarge(format!(
            "the series would have {total} rows (at most {MAX_ROWS}); add a filter or a coarser interval"
        )));
    }
    for combo in &combos {
        for &b in buckets {
            let mut d = combo.clone();
            d.insert(t, Cell::Int(b));
            if !present.contains(&d) {
                rows.push((d, vec![0.0; metrics]));
            }
        }
    }
    Ok(())
}

/// By `order_by`; else time ascending with a time dimension (at `t`), the first metric
/// descending without; then dimension values ascending, so the order never depends on the store.
fn sort_rows(rows: &mut [RawRow], t: Option<usize>, order_by: &[(OrderKey, bool)]) {
    rows.sort_by(|a, b| {
        for &(k, desc) in order_by {
            let ord = match k {
                OrderKey::Metric(i) => a.1[i].total_cmp(&b.1[i]),
                OrderKey::Dimension(i) => a.0[i].cmp(&b.0[i]),
            };
            let ord = if desc { ord.reverse() } else { ord };
            if ord.is_ne() {
                return ord;
            }
        }
        let default = match t {
            Some(t) => a.0[t].cmp(&b.0[t]),
            None => match (a.1.first(), b.1.first()) {
                (Some(x), Some(y)) => y.total_cmp(x),
                _ => std::cmp::Ordering::Equal,
            },
        };
        default.then_with(|| a.0.cmp(&b.0))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_fill_adds_every_missing_bucket_per_breakdown_value() {
        let mut rows = vec![
            (vec![Cell::Int(10), Cell::Text("a".into())], vec![3.0]),
            (vec![Cell::Int(12), Cell::Text("b".into())], vec![1.0]),
        ];
        zero_fill(&mut rows, 2, 0, &[10, 11, 12], 1).unwrap();
        sort_rows(&mut rows, Some(0), &[]);
        let flat: Vec<(i64, String, f64)> = rows
            .iter()
            .map(|(d, m)| {
                let Cell::Int(b) = d[0] else { panic!() };
                let Cell::Text(s) = &d[1] else { panic!() };
                (b, s.clone(), m[0])
            })
            .collect();
        assert_eq!(
            flat,
            vec![
                (10, "a".into(), 3.0),
                (10, "b".into(), 0.0),
                (11, "a".into(), 0.0),
                (11, "b".into(), 0.0),
                (12, "a".into(), 0.0),
                (12, "b".into(), 1.0)
            ]
        );
    }

    #[test]
    fn an_empty_series_is_all_zeros() {
        let mut rows = Vec::new();
        zero_fill(&mut rows, 1, 0, &[1, 2], 2).unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|(_, m)| m == &vec![0.0, 0.0]));
    }

    #[test]
    fn a_series_past_the_row_limit_is_refused() {
        let mut rows: Vec<RawRow> = (0..3).map(|i| (vec![Cell::Int(0), Cell::Int(i)], vec![1.0])).collect();
        let buckets: Vec<i64> = (0..4000).collect();
        assert!(matches!(zero_fill(&mut rows, 2, 0, &buckets, 1), Err(QueryError::TooLarge(_))));
    }
}
