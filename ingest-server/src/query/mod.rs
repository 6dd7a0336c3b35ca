//! The query engine behind `POST /api/analytics/query`: one JSON query language for every chart
//! (shaped like Plausible's Stats API v2), compiled once to SQL for both stores.
//!
//! - [`parse`] turns the request body into a typed [`Query`], refusing anything it does not know
//!   with an error that names the field and what was expected ([`QueryError::Invalid`]).
//! - [`range`] resolves date ranges and time buckets in the project's time zone.
//! - [`sql`] compiles a query to one aggregate statement per period, in the store's
//!   [`Dialect`]; the store only runs it ([`crate::store::Store::aggregate`]) within a time budget.
//! - [`funnel`] counts persons through ordered steps in Rust from the rows SQL selects.
//! - [`rollup`] answers the daily summary's metrics by day, week, month and conference from the
//!   rollups the consumer keeps, instead of from every event.
//! - [`share_credit`] answers the `share_credit` metric from the share facts.
//! - `rows` shapes a period's rows: zero-filled time series, one order for both stores.
//! - [`run`] puts it together: results, totals, the comparison period.

use std::time::{Duration, Instant};

use jiff::tz::TimeZone;
use serde::Serialize;
use serde_json::Value;

use crate::consumer::credit::{Amount, CreditModel};
use crate::store::{Store, StoreError};

pub mod funnel;
pub mod parse;
pub mod range;
pub mod rollup;
mod rows;
pub mod share_credit;
pub mod sql;

pub use parse::parse;
pub use range::DateRange;
pub(crate) use rows::RawRow;
use rows::{period_rows, period_totals};
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
    /// Answer from the rollups when they can (`false`: always from the events).
    pub rollups: bool,
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
