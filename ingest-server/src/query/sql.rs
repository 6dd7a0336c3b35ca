//! Compiling a [`Query`] to SQL, once for both stores: the [`Dialect`] decides only spelling
//! (placeholders, JSON access, substring and pattern functions, text collation).
//!
//! Every value a user wrote goes in as a parameter; what is written into the SQL text is ours
//! (column names, numbers we computed). Leaf conditions are made two-valued with `COALESCE`,
//! so `not` of a condition on a missing key holds, as `is_not` does.

use super::range::Period;
use super::{Dimension, Field, Filter, Interval, Metric, OrderKey, Query, QueryError};
use crate::store::Param;

/// Which SQL a store speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite 3.46 (the embedded store).
    Sqlite,
    /// PostgreSQL 13 or later (the scale-out store).
    Postgres,
}

/// A statement and its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// The SQL.
    pub sql: String,
    /// Its parameters, `?1`/`$1` first.
    pub params: Vec<Param>,
}

/// The resolved person of an event, as the consumer counts `uv`: the identity root of its
/// distinct id (or anonymous id), else the event itself.
const VISITOR: &str = "COALESCE(l.root, e.distinct_id, e.anonymous_id, 'event:' || e.event_id)";
const JOIN_IDENTITY: &str =
    " LEFT JOIN identity_links l ON l.project = e.project AND l.id = COALESCE(e.distinct_id, e.anonymous_id)";
const JOIN_REGISTRATION: &str =
    " LEFT JOIN registrations r ON r.project = e.project AND r.event_id = e.event_id";

/// Collects parameters while SQL text is written.
pub(super) struct Builder {
    dialect: Dialect,
    params: Vec<Param>,
}

impl Builder {
    pub(super) fn new(dialect: Dialect) -> Self {
        Builder { dialect, params: Vec::new() }
    }

    /// The statement, with the parameters collected.
    pub(super) fn finish(self, sql: String) -> Statement {
        Statement { sql, params: self.params }
    }

    /// A text parameter's placeholder.
    pub(super) fn text(&mut self, s: &str) -> String {
        self.params.push(Param::Text(s.to_string()));
        match self.dialect {
            Dialect::Sqlite => format!("?{}", self.params.len()),
            Dialect::Postgres => format!("${}::text", self.params.len()),
        }
    }

    fn real(&mut self, x: f64) -> String {
        self.params.push(Param::Real(x));
        match self.dialect {
            Dialect::Sqlite => format!("?{}", self.params.len()),
            Dialect::Postgres => format!("${}::float8", self.params.len()),
        }
    }

    /// A JSON member as text (`true`/`false` for booleans, JSON text for objects), or NULL.
    fn json_text(&mut self, column: &str, key: &str) -> String {
        match self.dialect {
            Dialect::Sqlite => {
                let path = self.text(&sqlite_path(key));
                format!(
                    "(CASE json_type({column}, {path}) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' \
                     ELSE CAST(json_extract({column}, {path}) AS TEXT) END)"
                )
            }
            Dialect::Postgres => {
                let k = self.text(key);
                format!("({column} ->> {k})")
            }
        }
    }

    /// A JSON member as a number, or NULL when it is not one.
    fn json_number(&mut self, column: &str, key: &str) -> String {
        match self.dialect {
            Dialect::Sqlite => {
                let path = self.text(&sqlite_path(key));
                format!(
                    "(CASE WHEN json_type({column}, {path}) IN ('integer', 'real') THEN json_extract({column}, {path}) END)"
                )
            }
            Dialect::Postgres => {
                let k = self.text(key);
                format!(
                    "(CASE WHEN jsonb_typeof({column} -> {k}) = 'number' THEN ({column} ->> {k})::float8 END)"
                )
            }
        }
    }

    fn field(&mut self, f: &Field) -> String {
        match f {
            Field::Type => "e.name".into(),
            Field::DistinctId => "e.distinct_id".into(),
            Field::Attribution => "e.attribution".into(),
            // The consumer stores a string conference id in its own column (what the daily
            // summary counts by). A share open without one belongs to its share's conference,
            // looked up here, at query time, so it does not matter which arrived first.
            // A share without one belongs to its parent's (as stored with the share), and
            // the daily summary counts it there too.
            Field::Property(k) if k == "conference_id" => {
                let code = match self.dialect {
                    Dialect::Sqlite => "json_extract(e.properties, '$.share_code')",
                    Dialect::Postgres => "(e.properties ->> 'share_code')",
                };
                format!(
                    "COALESCE(e.conference_id, CASE WHEN e.name IN ('share_open', 'share') THEN (SELECT s.conference_id \
                     FROM shares s WHERE s.project = e.project AND s.code = {code}) END)"
                )
            }
            Field::Property(k) => self.json_text("e.properties", k),
            Field::Context(k) => self.json_text("e.context", k),
        }
    }

    fn number(&mut self, f: &Field) -> Result<String, QueryError> {
        match f {
            Field::Property(k) => Ok(self.json_number("e.properties", k)),
            Field::Context(k) => Ok(self.json_number("e.context", k)),
            _ => Err(QueryError::invalid("filters", "gt and lt compare properties.* or context.* numbers")),
        }
    }

    fn condition(&mut self, f: &Filter) -> Result<String, QueryError> {
        let any = |parts: Vec<String>| format!("({})", parts.join(" OR "));
        Ok(match f {
            Filter::And(list) => {
                let parts = list.iter().map(|f| self.condition(f)).collect::<Result<Vec<_>, _>>()?;
                format!("({})", parts.join(" AND "))
            }
            Filter::Or(list) => {
                let parts = list.iter().map(|f| self.condition(f)).collect::<Result<Vec<_>, _>>()?;
                any(parts)
            }
            Filter::Not(inner) => format!("(NOT {})", self.condition(inner)?),
            Filter::Is(field, values) => {
                let x = self.field(field);
                let list: Vec<String> = values.iter().map(|v| self.text(v)).collect();
                format!("COALESCE({x} IN ({}), 1 = 0)", list.join(", "))
            }
            Filter::IsNot(field, values) => {
                let x = self.field(field);
                let list: Vec<String> = values.iter().map(|v| self.text(v)).collect();
                format!("COALESCE({x} NOT IN ({}), 1 = 1)", list.join(", "))
            }
            Filter::Contains(field, values) => {
                let x = self.field(field);
                let parts = values
                    .iter()
                    .map(|v| {
                        let p = self.text(v);
                        match self.dialect {
                            Dialect::Sqlite => format!("COALESCE(instr({x}, {p}) > 0, 1 = 0)"),
                            Dialect::Postgres => format!("COALESCE(strpos({x}, {p}) > 0, 1 = 0)"),
                        }
                    })
                    .collect();
                any(parts)
            }
            Filter::Matches(field, patterns) => {
                let x = self.field(field);
                let parts = patterns
                    .iter()
                    .map(|pat| match self.dialect {
                        Dialect::Sqlite => {
                            let p = self.text(&glob_pattern(pat));
                            format!("COALESCE({x} GLOB {p}, 1 = 0)")
                        }
                        Dialect::Postgres => {
                            let p = self.text(&like_pattern(pat));
                            format!("COALESCE({x} LIKE {p}, 1 = 0)")
                        }
                    })
                    .collect();
                any(parts)
            }
            Filter::Gt(field, n) => {
                let x = self.number(field)?;
                let v = self.real(*n);
                format!("COALESCE({x} > {v}, 1 = 0)")
            }
            Filter::Lt(field, n) => {
                let x = self.number(field)?;
                let v = self.real(*n);
                format!("COALESCE({x} < {v}, 1 = 0)")
            }
        })
    }

    /// `e.server_ts` shifted to the project's local time in the period.
    fn local_ms(period: &Period) -> String {
        match period.segments.as_slice() {
            [(_, offset)] => format!("(e.server_ts + {offset})"),
            segments => {
                let mut case = String::from("(e.server_ts + CASE");
                let last = segments.len() - 1;
                for (i, (until, offset)) in segments.iter().enumerate() {
                    if i == last {
                        case.push_str(&format!(" ELSE {offset} END)"));
                    } else {
                        case.push_str(&format!(" WHEN e.server_ts < {until} THEN {offset}"));
                    }
                }
                case
            }
        }
    }

    fn bucket(period: &Period, interval: Interval) -> String {
        let local = Self::local_ms(period);
        match interval {
            Interval::Hour => format!("({local} / 3600000)"),
            Interval::Day => format!("({local} / 86400000)"),
            Interval::Week => format!("(({local} / 86400000 + 3) / 7)"),
            Interval::Month => {
                let mut case = String::from("(CASE");
                for (until, id) in period.month_starts() {
                    case.push_str(&format!(" WHEN {local} < {until} THEN {id}"));
                }
                case.push_str(" END)");
                case
            }
        }
    }

    /// The conditions every statement over a period starts with.
    fn scope(&mut self, project: &str, period: &Period) -> String {
        let p = self.text(project);
        format!("e.project = {p} AND e.server_ts >= {} AND e.server_ts < {}", period.from_ms, period.to_ms)
    }
}

/// A SQLite JSON path for one top-level key (quoted, so dots and spaces are part of the key).
fn sqlite_path(key: &str) -> String {
    format!("$.\"{key}\"")
}

/// The event type a metric counts, when it counts only one.
fn metric_type(m: Metric) -> Option<&'static str> {
    match m {
        Metric::Pv | Metric::Uv => Some("page_view"),
        Metric::Registrations | Metric::ShareConversions => Some("registration"),
        Metric::Checkins => Some("checkin"),
        Metric::Shares => Some("share"),
        Metric::Events | Metric::Visitors | Metric::Sessions | Metric::ShareCredit => None,
    }
}

fn metric_sql(m: Metric) -> String {
    let of = |t: &str| format!("COUNT(*) FILTER (WHERE e.name = '{t}')");
    match m {
        Metric::Events => "COUNT(*)".into(),
        Metric::Visitors => format!("COUNT(DISTINCT {VISITOR})"),
        Metric::Sessions => "COUNT(DISTINCT e.session_id)".into(),
        Metric::Uv => format!("COUNT(DISTINCT {VISITOR}) FILTER (WHERE e.name = 'page_view')"),
        Metric::ShareConversions => "COUNT(*) FILTER (WHERE e.name = 'registration' AND r.credited)".into(),
        // Computed from the share facts (see `share_credit`); parsing keeps it out of SQL queries.
        Metric::ShareCredit => "NULL".into(),
        other => of(metric_type(other).unwrap_or("")),
    }
}

/// A pattern of the query language (a prefix, or a `*` glob of the whole value) as a SQLite
/// `GLOB` pattern (case-sensitive, like PostgreSQL's `LIKE`).
pub fn glob_pattern(pattern: &str) -> String {
    let mut out = String::new();
    for c in pattern.chars() {
        match c {
            '?' => out.push_str("[?]"),
            '[' => out.push_str("[[]"),
            c => out.push(c),
        }
    }
    if !pattern.contains('*') {
        out.push('*');
    }
    out
}

/// The same pattern for PostgreSQL's `LIKE` (backslash escapes).
pub fn like_pattern(pattern: &str) -> String {
    let mut out = String::new();
    for c in pattern.chars() {
        match c {
            '*' => out.push('%'),
            '%' | '_' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    if !pattern.contains('*') {
        out.push('%');
    }
    out
}

/// The conditions of `query` over `period`, with the joins they need (`FROM … WHERE …`).
fn from_where(
    b: &mut Builder,
    project: &str,
    query: &Query,
    period: &Period,
    visitor: bool,
) -> Result<String, QueryError> {
    let mut sql = String::from(" FROM events e");
    if visitor {
        sql.push_str(JOIN_IDENTITY);
    }
    if query.metrics.contains(&Metric::ShareConversions) {
        sql.push_str(JOIN_REGISTRATION);
    }
    sql.push_str(" WHERE ");
    sql.push_str(&b.scope(project, period));
    if let Some(t) = &query.event {
        let p = b.text(t);
        sql.push_str(&format!(" AND e.name = {p}"));
    } else {
        // Metrics of given types only: let the (project, name, server_ts) index find them.
        let types: Option<Vec<&str>> = query.metrics.iter().map(|m| metric_type(*m)).collect();
        if let Some(mut types) = types.filter(|t| !t.is_empty()) {
            types.sort_unstable();
            types.dedup();
            let list: Vec<String> = types.iter().map(|t| format!("'{t}'")).collect();
            sql.push_str(&format!(" AND e.name IN ({})", list.join(", ")));
        }
    }
    if let Some(f) = &query.filters {
        let c = b.condition(f)?;
        sql.push_str(" AND ");
        sql.push_str(&c);
    }
    Ok(sql)
}

/// The grouped statement of a query over a period: dimensions first (`d0…`, time buckets as
/// numbers), then metrics (`m0…`); sorted and cut at `limit` rows unless it has a time
/// dimension (the caller fills in and sorts the series).
pub fn aggregate(
    dialect: Dialect,
    project: &str,
    query: &Query,
    period: &Period,
    limit: usize,
) -> Result<Statement, QueryError> {
    let mut b = Builder { dialect, params: Vec::new() };
    let visitor = query.metrics.iter().any(|m| m.needs_visitor());
    let mut select = Vec::new();
    for (i, d) in query.dimensions.iter().enumerate() {
        let expr = match d {
            Dimension::Time(interval) => Builder::bucket(period, *interval),
            Dimension::Field(f) => {
                let x = b.field(f);
                // Byte order, as SQLite's default, so both stores sort the same.
                if dialect == Dialect::Postgres { format!("{x} COLLATE \"C\"") } else { x }
            }
        };
        select.push(format!("{expr} AS d{i}"));
    }
    for (i, m) in query.metrics.iter().enumerate() {
        select.push(format!("{} AS m{i}", metric_sql(*m)));
    }
    let mut sql = format!("SELECT {}", select.join(", "));
    sql.push_str(&from_where(&mut b, project, query, period, visitor)?);
    if !query.dimensions.is_empty() {
        let groups: Vec<String> = (1..=query.dimensions.len()).map(|i| i.to_string()).collect();
        sql.push_str(&format!(" GROUP BY {}", groups.join(", ")));
        if !query.dimensions.iter().any(|d| matches!(d, Dimension::Time(_))) {
            let mut order: Vec<String> = query
                .order_by
                .iter()
                .map(|&(k, desc)| match (k, desc) {
                    (OrderKey::Metric(i), true) => format!("m{i} DESC"),
                    (OrderKey::Metric(i), false) => format!("m{i} ASC"),
                    (OrderKey::Dimension(i), true) => format!("d{i} DESC NULLS LAST"),
                    (OrderKey::Dimension(i), false) => format!("d{i} ASC NULLS FIRST"),
                })
                .collect();
            if query.order_by.is_empty() {
                order.push("m0 DESC".into());
            }
            order.extend((0..query.dimensions.len()).map(|i| format!("d{i} ASC NULLS FIRST")));
            sql.push_str(&format!(" ORDER BY {}", order.join(", ")));
        }
    }
    sql.push_str(&format!(" LIMIT {limit}"));
    Ok(Statement { sql, params: b.params })
}

/// The funnel's step events: the id its person is known by (distinct id, else anonymous id;
/// `NULL` for an event that is its own person), the bit set of the steps its type is (bit `i`
/// for step `i`), its time and its sequence number. Ids are resolved to persons by the
/// caller, with [`identity_links`]: joining the links here costs an index lookup per event,
/// for a table that holds one row per merged id. Both stores read these columns from the
/// `events_time_ids` index alone when there are no filters. The caller sorts by (time, seq):
/// SQLite reads that order from the index anyway; PostgreSQL, when it plans a sequential
/// scan instead (no visibility map yet), would sort a million rows on disk with a default
/// `work_mem`, three times slower than reading them.
pub fn funnel_events(
    dialect: Dialect,
    project: &str,
    query: &Query,
    steps: &[String],
    period: &Period,
) -> Result<Statement, QueryError> {
    let mut b = Builder { dialect, params: Vec::new() };
    let mut types: Vec<&String> = steps.iter().collect();
    types.sort();
    types.dedup();
    let mut bits = String::from("CASE e.name");
    for t in &types {
        let set: i64 = steps.iter().enumerate().filter(|(_, s)| s == t).map(|(i, _)| 1i64 << i).sum();
        let v = b.text(t);
        bits.push_str(&format!(" WHEN {v} THEN {set}"));
    }
    bits.push_str(" END");
    let mut sql = format!(
        "SELECT COALESCE(e.distinct_id, e.anonymous_id), {bits}, e.server_ts, e.seq FROM events e WHERE "
    );
    sql.push_str(&b.scope(project, period));
    let list: Vec<String> = types.iter().map(|t| b.text(t)).collect();
    sql.push_str(&format!(" AND e.name IN ({})", list.join(", ")));
    if let Some(f) = &query.filters {
        let c = b.condition(f)?;
        sql.push_str(" AND ");
        sql.push_str(&c);
    }
    if dialect == Dialect::Sqlite {
        sql.push_str(" ORDER BY e.server_ts, e.seq");
    }
    Ok(Statement { sql, params: b.params })
}

/// A project's merged ids and the root (person) each resolves to; an id without a row is its
/// own person.
pub fn identity_links(dialect: Dialect, project: &str) -> Statement {
    let mut b = Builder { dialect, params: Vec::new() };
    let p = b.text(project);
    Statement { sql: format!("SELECT id, root FROM identity_links WHERE project = {p}"), params: b.params }
}

/// One row: distinct persons with an event since `active_since`, page views since
/// `minute_since` (both epoch ms), of a project or one conference.
pub fn live_counts(
    dialect: Dialect,
    project: &str,
    conference: Option<&str>,
    active_since: i64,
    minute_since: i64,
) -> Statement {
    let mut b = Builder { dialect, params: Vec::new() };
    let p = b.text(project);
    let mut sql = format!(
        "SELECT COUNT(DISTINCT {VISITOR}), COUNT(*) FILTER (WHERE e.name = 'page_view' AND e.server_ts >= {minute_since}) \
         FROM events e{JOIN_IDENTITY} WHERE e.project = {p} AND e.server_ts >= {}",
        active_since.min(minute_since)
    );
    if let Some(c) = conference {
        let x = b.field(&Field::Property("conference_id".into()));
        let c = b.text(c);
        sql.push_str(&format!(" AND {x} = {c}"));
    }
    Statement { sql, params: b.params }
}

/// One row: the daily summary's page views of a day, of a project or one conference.
pub fn page_views_on(dialect: Dialect, project: &str, conference: Option<&str>, day: &str) -> Statement {
    let mut b = Builder { dialect, params: Vec::new() };
    let p = b.text(project);
    let d = b.text(day);
    let mut sql =
        format!("SELECT CAST(COALESCE(SUM(pv), 0) AS BIGINT) FROM daily WHERE project = {p} AND day = {d}");
    if let Some(c) = conference {
        let c = b.text(c);
        sql.push_str(&format!(" AND conference_id = {c}"));
    }
    Statement { sql, params: b.params }
}

/// The first stored event's time of a project (`NULL` when it has none).
pub fn first_event(dialect: Dialect, project: &str) -> Statement {
    let mut b = Builder { dialect, params: Vec::new() };
    let p = b.text(project);
    Statement {
        sql: format!("SELECT MIN(e.server_ts) FROM events e WHERE e.project = {p}"),
        params: b.params,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_prefixes_or_whole_value_globs_with_no_other_metacharacters() {
        assert_eq!(glob_pattern("/agenda"), "/agenda*");
        assert_eq!(glob_pattern("/conf/*/agenda"), "/conf/*/agenda");
        assert_eq!(glob_pattern("a?[b"), "a[?][[]b*");
        assert_eq!(like_pattern("/agenda"), "/agenda%");
        assert_eq!(like_pattern("/conf/*/x_y%"), "/conf/%/x\\_y\\%");
    }

    #[test]
    fn user_values_are_parameters_never_sql_text() {
        let period = Period::new(
            jiff::civil::Date::constant(2026, 6, 1),
            jiff::civil::Date::constant(2026, 6, 2),
            &jiff::tz::TimeZone::UTC,
        )
        .unwrap();
        let evil = "x'); DROP TABLE events; --";
        let query = Query {
            metrics: vec![Metric::Events],
            event: Some(evil.into()),
            date_range: super::super::DateRange::Today,
            dimensions: vec![Dimension::Field(Field::Property(evil.into()))],
            filters: Some(Filter::Is(Field::Context(evil.into()), vec![evil.into()])),
            order_by: Vec::new(),
            limit: 10,
            totals: false,
            comparison: false,
            funnel: None,
            credit: crate::consumer::credit::CreditModel::Full,
            rollups: true,
        };
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            let s = aggregate(dialect, evil, &query, &period, 11).unwrap();
            assert!(!s.sql.contains("DROP"), "{}", s.sql);
            assert!(s.params.iter().any(|p| *p == Param::Text(evil.into())));
        }
    }
}
