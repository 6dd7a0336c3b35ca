//! The query engine behind `POST /api/analytics/query`: one JSON query language for every chart
//! (shaped like Plausible's Stats API v2), compiled once to SQL for both stores.
//!
//! - [`parse`] turns the request body into a typed [`Query`], refusing anything it does not know
//!   with an error that names the field and what was expected ([`QueryError::Invalid`]).
//! - [`range`] resolves date ranges and time buckets in the project's time zone.
//! - [`sql`] compiles a query to one aggregate statement per period, in the store's
//!   [`Dialect`]; the store only runs it ([`crate::store::Store::aggregate`]) within a time budget.
//! - [`funnel`] counts persons through ordered steps in Rust from the rows SQL selects.
//! - [`run`] puts it together: results, totals, the comparison period, zero-filled time series.

use std::time::{Duration, Instant};

use jiff::tz::TimeZone;
use serde::Serialize;
use serde_json::Value;

use crate::consumer::credit::{Amount, CreditModel};
use crate::store::{Cell, Store, StoreError};

pub mod funnel;
pub mod parse;
pub mod range;
pub mod share_credit;
pub mod sql;

pub use parse::parse;
pub use range::DateRange;
pub use sql::Dialect;

/// Most rows one answer holds (after zero-filling a time series).
pub const MAX_ROWS: usize = 10_000;
/// Default `limit`.
pub const DEFAULT_LIMIT: usize = 1000;
/// Most time buckets one series spans.
pub const MAX_BUCKETS: usize = 10_000;
/// How long one query may run before it is cancelled, unless configured otherwise.
pub const DEFAULT_TIME_BUDGET: Duration = Duration::from_secs(5);
/// Largest query body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Why a query was not answered.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query is malformed: which field, and what was expected (400).
    #[error("{field}: {expected}")]
    Invalid {
        /// The field, as a path into the query (`filters[1][2]`).
        field: String,
        /// What was expected there.
        expected: String,
    },
    /// Valid, but its answer would be larger than the limits allow (422).
    #[error("{0}")]
    TooLarge(String),
    /// It ran longer than the time budget and was cancelled (422).
    #[error(
        "the query ran longer than its {0} ms budget and was cancelled; narrow the date range or add filters"
    )]
    Timeout(u128),
    /// The store failed (503).
    #[error(transparent)]
    Store(StoreError),
}

impl QueryError {
    pub(crate) fn invalid(field: impl Into<String>, expected: impl Into<String>) -> Self {
        QueryError::Invalid { field: field.into(), expected: expected.into() }
    }
}

impl From<StoreError> for QueryError {
    fn from(e: StoreError) -> Self {
        match e {
            // The budget is filled in by `run`, which knows it.
            StoreError::Timeout => QueryError::Timeout(0),
            e => QueryError::Store(e),
        }
    }
}

/// What to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Events.
    Events,
    /// Distinct resolved persons (identity merges apply).
    Visitors,
    /// Distinct sessions.
    Sessions,
    /// Page views.
    Pv,
    /// Distinct resolved persons with a page view.
    Uv,
    /// Registrations.
    Registrations,
    /// Check-ins.
    Checkins,
    /// Share events.
    Shares,
    /// Registrations credited to at least one share.
    ShareConversions,
    /// Conversion credit of sharers under [`Query::credit`] (fractional under most models).
    ShareCredit,
}

impl Metric {
    /// Every metric with its name in the query language.
    pub const ALL: [(&'static str, Metric); 10] = [
        ("events", Metric::Events),
        ("visitors", Metric::Visitors),
        ("sessions", Metric::Sessions),
        ("pv", Metric::Pv),
        ("uv", Metric::Uv),
        ("registrations", Metric::Registrations),
        ("checkins", Metric::Checkins),
        ("shares", Metric::Shares),
        ("share_conversions", Metric::ShareConversions),
        ("share_credit", Metric::ShareCredit),
    ];

    /// The name in the query language.
    pub fn name(self) -> &'static str {
        Metric::ALL.iter().find(|(_, m)| *m == self).map_or("", |(n, _)| n)
    }

    /// Whether it counts distinct persons (and so needs identities resolved).
    pub fn needs_visitor(self) -> bool {
        matches!(self, Metric::Visitors | Metric::Uv)
    }
}

/// A time bucket size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    /// Hours of the local day.
    Hour,
    /// Local days.
    Day,
    /// Weeks starting on Monday, labelled by their Monday.
    Week,
    /// Calendar months.
    Month,
}

/// Something an event is grouped or filtered by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// The event type.
    Type,
    /// The distinct id as sent.
    DistinctId,
    /// The share code the event is attributed to.
    Attribution,
    /// `properties.<key>` (`properties.conference_id` is the stored conference column).
    Property(String),
    /// `context.<key>`.
    Context(String),
}

/// A grouping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dimension {
    /// Time buckets, every one present.
    Time(Interval),
    /// A field's value (text, or null when absent).
    Field(Field),
}

/// A condition on events.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// All hold.
    And(Vec<Filter>),
    /// One holds.
    Or(Vec<Filter>),
    /// It does not hold.
    Not(Box<Filter>),
    /// The value is one of these.
    Is(Field, Vec<String>),
    /// The value is absent or none of these.
    IsNot(Field, Vec<String>),
    /// The value contains one of these (case-sensitive).
    Contains(Field, Vec<String>),
    /// The value matches one of these patterns: a prefix, or with `*` a whole-value glob.
    Matches(Field, Vec<String>),
    /// The value is a number greater than this.
    Gt(Field, f64),
    /// The value is a number less than this.
    Lt(Field, f64),
}

/// What the results are sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderKey {
    /// The n-th metric.
    Metric(usize),
    /// The n-th dimension.
    Dimension(usize),
}

/// Ordered steps of a funnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Funnel {
    /// Event types, in order.
    pub steps: Vec<String>,
    /// How long after the first step the last may come, ms.
    pub window_ms: i64,
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// What to count, in answer order.
    pub metrics: Vec<Metric>,
    /// Only events of this type.
    pub event: Option<String>,
    /// Which days.
    pub date_range: DateRange,
    /// Groupings, in answer order.
    pub dimensions: Vec<Dimension>,
    /// Which events count.
    pub filters: Option<Filter>,
    /// Sort keys, `true` for descending.
    pub order_by: Vec<(OrderKey, bool)>,
    /// Most result rows.
    pub limit: usize,
    /// Also answer the totals over the whole range.
    pub totals: bool,
    /// Also answer the previous period of the same length.
    pub comparison: bool,
    /// A funnel instead of metrics.
    pub funnel: Option<Funnel>,
    /// The credit model of the `share_credit` metric.
    pub credit: CreditModel,
}

/// One result row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResultRow {
    /// Dimension values, in query order.
    pub dimensions: Vec<Value>,
    /// Metric values, in query order (integers but for `share_credit`).
    pub metrics: Vec<Amount>,
}

/// The results of one period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Period {
    /// `[from, to]`, inclusive days.
    pub date_range: [String; 2],
    /// Rows.
    pub results: Vec<ResultRow>,
    /// Metrics over the whole period, when asked for.
    pub totals: Option<Vec<Amount>>,
}

/// How an answer was computed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Meta {
    /// The project's time zone, in which days are counted.
    pub time_zone: String,
    /// `[from, to]`, inclusive days.
    pub date_range: [String; 2],
    /// Metric names, in answer order.
    pub metrics: Vec<&'static str>,
    /// Dimension names, in answer order.
    pub dimensions: Vec<String>,
    /// More rows matched than `limit`.
    pub truncated: bool,
    /// Time spent, ms.
    pub took_ms: u64,
}

/// A funnel step's count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunnelStep {
    /// The step's event type.
    pub event: String,
    /// Persons who reached it, in order, within the window.
    pub visitors: i64,
    /// `visitors` over the previous step's (`null` for the first step, or after a zero).
    pub conversion: Option<f64>,
    /// `visitors` over the first step's.
    pub conversion_from_first: Option<f64>,
}

/// The answer to a query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    /// Rows (empty for a funnel).
    pub results: Vec<ResultRow>,
    /// Metrics over the whole range, when asked for.
    pub totals: Option<Vec<Amount>>,
    /// The previous period, when asked for.
    pub comparison: Option<Period>,
    /// Funnel steps, for a funnel query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub funnel: Option<Vec<FunnelStep>>,
    /// How it was computed.
    pub meta: Meta,
}

/// A store and the project a query runs for.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// Where events are.
    pub store: &'a dyn Store,
    /// The project.
    pub project: &'a str,
    /// Its time zone name.
    pub time_zone: &'a str,
    /// Its time zone.
    pub tz: &'a TimeZone,
    /// How long the query may run.
    pub budget: Duration,
}

/// Runs a query at `now_ms` (the clock is the caller's, so tests can fix it).
pub fn run(scope: Scope<'_>, query: &Query, now_ms: i64) -> Result<Answer, QueryError> {
    let started = Instant::now();
    run_until(scope, query, now_ms, started, started + scope.budget).map_err(|e| match e {
        QueryError::Timeout(_) => QueryError::Timeout(scope.budget.as_millis()),
        e => e,
    })
}

fn run_until(
    scope: Scope<'_>,
    query: &Query,
    now_ms: i64,
    started: Instant,
    deadline: Instant,
) -> Result<Answer, QueryError> {
    let dialect = scope.store.dialect();
    let period = range::resolve(&query.date_range, scope, now_ms, deadline)?;
    let mut meta = Meta {
        time_zone: scope.time_zone.to_string(),
        date_range: period.labels(),
        metrics: query.metrics.iter().map(|m| m.name()).collect(),
        dimensions: query.dimensions.iter().map(parse::dimension_name).collect(),
        truncated: false,
        took_ms: 0,
    };
    if let Some(f) = &query.funnel {
        let steps = funnel::count(scope, dialect, query, f, &period, deadline)?;
        meta.took_ms = elapsed_ms(started);
        return Ok(Answer { results: Vec::new(), totals: None, comparison: None, funnel: Some(steps), meta });
    }
    let (results, truncated) = period_rows(scope, dialect, query, &period, deadline)?;
    meta.truncated = truncated;
    let totals =
        if query.totals { Some(period_totals(scope, dialect, query, &period, deadline)?) } else { None };
    let comparison = if query.comparison {
        let previous = period.previous(scope.tz)?;
        let (results, _) = period_rows(scope, dialect, query, &previous, deadline)?;
        let totals = if query.totals {
            Some(period_totals(scope, dialect, query, &previous, deadline)?)
        } else {
            None
        };
        Some(Period { date_range: previous.labels(), results, totals })
    } else {
        None
    };
    meta.took_ms = elapsed_ms(started);
    Ok(Answer { results, totals, comparison, funnel: None, meta })
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn number(cell: &Cell) -> f64 {
    match cell {
        Cell::Int(n) => *n as f64,
        Cell::Real(x) => *x,
        _ => 0.0,
    }
}

/// Rows before shaping: dimension cells (time buckets as numbers) and metric values.
pub(crate) type RawRow = (Vec<Cell>, Vec<f64>);

fn period_totals(
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
    let stmt = sql::aggregate(dialect, scope.project, query, period, limit)?;
    let raw = scope.store.aggregate(&stmt.sql, &stmt.params, deadline)?;
    let dims = query.dimensions.len();
    let rows =
        raw.into_iter().map(|mut r| (r.drain(..dims).collect(), r.iter().map(number).collect())).collect();
    Ok((rows, true))
}

/// The rows of one period: grouped in SQL, time buckets labelled and zero-filled here.
fn period_rows(
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
