//! The query language's JSON, read field by field so every error names the field and what was
//! expected, and nothing unknown is silently ignored.

use serde_json::{Map, Value};

use super::range::DateRange;
use super::{
    DEFAULT_LIMIT, Dimension, Field, Filter, Funnel, Interval, MAX_ROWS, Metric, OrderKey, Query, QueryError,
};
use crate::consumer::credit::CreditModel;

/// Most metrics in one query.
pub const MAX_METRICS: usize = 10;
/// Most dimensions in one query.
pub const MAX_DIMENSIONS: usize = 3;
/// Most nodes in a filter tree.
pub const MAX_FILTER_NODES: usize = 100;
/// Deepest filter tree.
pub const MAX_FILTER_DEPTH: usize = 10;
/// Most values in one filter.
pub const MAX_VALUES: usize = 100;
/// Longest key or value.
pub const MAX_TEXT: usize = 500;
/// Most `*` in a `matches` pattern (each one may make matching backtrack).
pub const MAX_STARS: usize = 4;
/// Most funnel steps.
pub const MAX_STEPS: usize = 8;
/// Longest funnel window.
pub const MAX_WINDOW_MS: i64 = 90 * 86_400_000;

const FIELDS: &str = "metrics, event, date_range, dimensions, filters, order_by, limit, include, funnel, credit, decay, rollups";
const DIMENSIONS: &str = "time:hour, time:day, time:week, time:month, type, distinct_id, attribution, \
                          properties.<key> or context.<key>";

fn invalid(field: impl Into<String>, expected: impl Into<String>) -> QueryError {
    QueryError::invalid(field, expected)
}

/// The name of a dimension in the query language.
pub fn dimension_name(d: &Dimension) -> String {
    match d {
        Dimension::Time(Interval::Hour) => "time:hour".into(),
        Dimension::Time(Interval::Day) => "time:day".into(),
        Dimension::Time(Interval::Week) => "time:week".into(),
        Dimension::Time(Interval::Month) => "time:month".into(),
        Dimension::Field(f) => field_name(f),
    }
}

fn field_name(f: &Field) -> String {
    match f {
        Field::Type => "type".into(),
        Field::DistinctId => "distinct_id".into(),
        Field::Attribution => "attribution".into(),
        Field::Property(k) => format!("properties.{k}"),
        Field::Context(k) => format!("context.{k}"),
    }
}

fn key(at: &str, k: &str) -> Result<String, QueryError> {
    let ok = !k.is_empty() && k.len() <= 200 && !k.chars().any(|c| c == '"' || c == '\\' || c.is_control());
    if ok {
        Ok(k.to_string())
    } else {
        Err(invalid(at, "a key of 1 to 200 characters without quotes, backslashes or control characters"))
    }
}

fn field(at: &str, s: &str) -> Result<Field, QueryError> {
    Ok(match s {
        "type" => Field::Type,
        "distinct_id" => Field::DistinctId,
        "attribution" => Field::Attribution,
        other => {
            if let Some(k) = other.strip_prefix("properties.") {
                Field::Property(key(at, k)?)
            } else if let Some(k) = other.strip_prefix("context.") {
                Field::Context(key(at, k)?)
            } else {
                return Err(invalid(
                    at,
                    format!(
                        "one of type, distinct_id, attribution, properties.<key>, context.<key>; got {other:?}"
                    ),
                ));
            }
        }
    })
}

fn dimension(at: &str, v: &Value) -> Result<Dimension, QueryError> {
    let s = v.as_str().ok_or_else(|| invalid(at, format!("a string: {DIMENSIONS}")))?;
    Ok(match s {
        "time:hour" => Dimension::Time(Interval::Hour),
        "time:day" => Dimension::Time(Interval::Day),
        "time:week" => Dimension::Time(Interval::Week),
        "time:month" => Dimension::Time(Interval::Month),
        "time" => return Err(invalid(at, "time:hour, time:day, time:week or time:month")),
        other => Dimension::Field(
            field(at, other).map_err(|_| invalid(at, format!("one of {DIMENSIONS}; got {other:?}")))?,
        ),
    })
}

fn text(at: &str, v: &Value) -> Result<String, QueryError> {
    match v {
        Value::String(s) if s.len() <= MAX_TEXT => Ok(s.clone()),
        Value::String(_) => Err(invalid(at, format!("a string of at most {MAX_TEXT} bytes"))),
        // Numbers and booleans are matched by their JSON text, as properties are grouped.
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(invalid(at, "a string")),
    }
}

fn values(at: &str, v: Option<&Value>) -> Result<Vec<String>, QueryError> {
    let list = v.and_then(Value::as_array).ok_or_else(|| invalid(at, "a list of values"))?;
    if list.is_empty() || list.len() > MAX_VALUES {
        return Err(invalid(at, format!("a list of 1 to {MAX_VALUES} values")));
    }
    list.iter().enumerate().map(|(i, v)| text(&format!("{at}[{i}]"), v)).collect()
}

struct FilterBudget {
    nodes: usize,
}

fn filter(at: &str, v: &Value, depth: usize, budget: &mut FilterBudget) -> Result<Filter, QueryError> {
    budget.nodes += 1;
    if budget.nodes > MAX_FILTER_NODES {
        return Err(invalid("filters", format!("at most {MAX_FILTER_NODES} conditions")));
    }
    if depth > MAX_FILTER_DEPTH {
        return Err(invalid(at, format!("filters nested at most {MAX_FILTER_DEPTH} deep")));
    }
    let list = v.as_array().ok_or_else(|| {
        invalid(at, "a list: [\"and\"|\"or\", filter…], [\"not\", filter] or [operator, field, values]")
    })?;
    let op = list
        .first()
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{at}[0]"), "an operator name"))?;
    let children = |budget: &mut FilterBudget| -> Result<Vec<Filter>, QueryError> {
        if list.len() < 2 {
            return Err(invalid(at, format!("[\"{op}\", filter, …] with at least one filter")));
        }
        list[1..]
            .iter()
            .enumerate()
            .map(|(i, f)| filter(&format!("{at}[{}]", i + 1), f, depth + 1, budget))
            .collect()
    };
    let leaf = |expected_len: usize| -> Result<Field, QueryError> {
        if list.len() != expected_len {
            return Err(invalid(at, format!("[\"{op}\", field, values] (three items)")));
        }
        let name = list[1].as_str().ok_or_else(|| invalid(format!("{at}[1]"), "a field name"))?;
        field(&format!("{at}[1]"), name)
    };
    let number = || -> Result<f64, QueryError> {
        let at = format!("{at}[2]");
        let v = match &list[2] {
            Value::Array(a) if a.len() == 1 => &a[0],
            other => other,
        };
        v.as_f64().filter(|x| x.is_finite()).ok_or_else(|| invalid(at, "a number (or a list of one number)"))
    };
    Ok(match op {
        "and" => Filter::And(children(budget)?),
        "or" => Filter::Or(children(budget)?),
        "not" => {
            if list.len() != 2 {
                return Err(invalid(at, "[\"not\", filter]"));
            }
            Filter::Not(Box::new(filter(&format!("{at}[1]"), &list[1], depth + 1, budget)?))
        }
        "is" => Filter::Is(leaf(3)?, values(&format!("{at}[2]"), list.get(2))?),
        "is_not" => Filter::IsNot(leaf(3)?, values(&format!("{at}[2]"), list.get(2))?),
        "contains" => Filter::Contains(leaf(3)?, values(&format!("{at}[2]"), list.get(2))?),
        "matches" => {
            let f = leaf(3)?;
            let patterns = values(&format!("{at}[2]"), list.get(2))?;
            if patterns.iter().any(|p| p.matches('*').count() > MAX_STARS) {
                return Err(invalid(format!("{at}[2]"), format!("patterns with at most {MAX_STARS} '*'")));
            }
            Filter::Matches(f, patterns)
        }
        "gt" | "lt" => {
            let f = leaf(3)?;
            if !matches!(f, Field::Property(_) | Field::Context(_)) {
                return Err(invalid(
                    format!("{at}[1]"),
                    "properties.<key> or context.<key> (gt and lt compare numbers)",
                ));
            }
            let n = number()?;
            if op == "gt" { Filter::Gt(f, n) } else { Filter::Lt(f, n) }
        }
        other => {
            return Err(invalid(
                format!("{at}[0]"),
                format!("one of and, or, not, is, is_not, contains, matches, gt, lt; got {other:?}"),
            ));
        }
    })
}

fn date_range(v: Option<&Value>) -> Result<DateRange, QueryError> {
    const EXPECTED: &str =
        "today, yesterday, 7d, 30d, month, year, all, Nd, or [\"YYYY-MM-DD\", \"YYYY-MM-DD\"]";
    match v {
        None => Ok(DateRange::LastDays(30)),
        Some(Value::String(s)) => DateRange::preset(s).ok_or_else(|| invalid("date_range", EXPECTED)),
        Some(Value::Array(a)) if a.len() == 2 => {
            let day = |i: usize| -> Result<jiff::civil::Date, QueryError> {
                a[i].as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| invalid(format!("date_range[{i}]"), "a date YYYY-MM-DD"))
            };
            Ok(DateRange::Custom(day(0)?, day(1)?))
        }
        Some(_) => Err(invalid("date_range", EXPECTED)),
    }
}

fn window(v: Option<&Value>) -> Result<i64, QueryError> {
    const EXPECTED: &str = "a duration such as \"30m\", \"12h\" or \"7d\" (at most 90d)";
    let Some(v) = v else { return Ok(7 * 86_400_000) };
    let s = v.as_str().ok_or_else(|| invalid("funnel.window", EXPECTED))?;
    let (n, ms) = [("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        .into_iter()
        .find_map(|(unit, ms)| s.strip_suffix(unit).map(|n| (n, ms)))
        .ok_or_else(|| invalid("funnel.window", EXPECTED))?;
    let n: i64 = n.parse().map_err(|_| invalid("funnel.window", EXPECTED))?;
    let window = n.checked_mul(ms).filter(|w| (1..=MAX_WINDOW_MS).contains(w));
    window.ok_or_else(|| invalid("funnel.window", EXPECTED))
}

fn funnel(v: &Value) -> Result<Funnel, QueryError> {
    let obj =
        v.as_object().ok_or_else(|| invalid("funnel", "an object {\"steps\": […], \"window\": \"7d\"}"))?;
    only(obj, "funnel", &["steps", "window"])?;
    let steps = obj
        .get("steps")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("funnel.steps", "a list of steps"))?;
    if steps.len() < 2 || steps.len() > MAX_STEPS {
        return Err(invalid("funnel.steps", format!("2 to {MAX_STEPS} steps")));
    }
    let steps = steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let at = format!("funnel.steps[{i}]");
            let o = s.as_object().ok_or_else(|| invalid(&at, "an object {\"event\": \"<type>\"}"))?;
            only(o, &at, &["event"])?;
            o.get("event")
                .and_then(Value::as_str)
                .filter(|e| !e.is_empty() && e.len() <= MAX_TEXT)
                .map(String::from)
                .ok_or_else(|| invalid(format!("{at}.event"), "an event type"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Funnel { steps, window_ms: window(obj.get("window"))? })
}

fn only(obj: &Map<String, Value>, at: &str, known: &[&str]) -> Result<(), QueryError> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => {
            let field = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
            Err(invalid(field, format!("a known field ({})", known.join(", "))))
        }
        None => Ok(()),
    }
}

/// Parses a query body.
pub fn parse(body: &Value) -> Result<Query, QueryError> {
    let obj = body.as_object().ok_or_else(|| invalid("query", "a JSON object"))?;
    only(obj, "", &FIELDS.split(", ").collect::<Vec<_>>())?;
    let funnel = obj.get("funnel").map(funnel).transpose()?;
    let metrics = match (obj.get("metrics"), &funnel) {
        (None, Some(_)) => Vec::new(),
        (Some(_), Some(_)) => {
            return Err(invalid("metrics", "no metrics with a funnel (it counts persons per step)"));
        }
        (v, None) => {
            let names = Metric::ALL.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ");
            let list = v
                .and_then(Value::as_array)
                .ok_or_else(|| invalid("metrics", format!("a list of: {names}")))?;
            if list.is_empty() || list.len() > MAX_METRICS {
                return Err(invalid("metrics", format!("1 to {MAX_METRICS} of: {names}")));
            }
            let mut out = Vec::new();
            for (i, m) in list.iter().enumerate() {
                let at = format!("metrics[{i}]");
                let name = m.as_str().ok_or_else(|| invalid(&at, format!("one of {names}")))?;
                let metric = Metric::ALL
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, m)| *m)
                    .ok_or_else(|| invalid(&at, format!("one of {names}; got {name:?}")))?;
                if out.contains(&metric) {
                    return Err(invalid(&at, format!("each metric once ({name} is repeated)")));
                }
                out.push(metric);
            }
            out
        }
    };
    let event = match obj.get("event") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_TEXT => Some(s.clone()),
        Some(_) => return Err(invalid("event", "an event type (a non-empty string)")),
    };
    let dimensions = match obj.get("dimensions") {
        None => Vec::new(),
        Some(Value::Array(list)) => {
            if funnel.is_some() && !list.is_empty() {
                return Err(invalid("dimensions", "no dimensions with a funnel"));
            }
            if list.len() > MAX_DIMENSIONS {
                return Err(invalid("dimensions", format!("at most {MAX_DIMENSIONS} dimensions")));
            }
            let dims = list
                .iter()
                .enumerate()
                .map(|(i, d)| dimension(&format!("dimensions[{i}]"), d))
                .collect::<Result<Vec<_>, _>>()?;
            if dims.iter().filter(|d| matches!(d, Dimension::Time(_))).count() > 1 {
                return Err(invalid("dimensions", "at most one time dimension"));
            }
            for (i, d) in dims.iter().enumerate() {
                if dims[..i].contains(d) {
                    return Err(invalid(format!("dimensions[{i}]"), "each dimension once"));
                }
            }
            dims
        }
        Some(_) => return Err(invalid("dimensions", format!("a list of: {DIMENSIONS}"))),
    };
    let filters = match obj.get("filters") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) if a.is_empty() => None,
        Some(v) => Some(filter("filters", v, 0, &mut FilterBudget { nodes: 0 })?),
    };
    let order_by = match obj.get("order_by") {
        None => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let at = format!("order_by[{i}]");
                let pair = item.as_array().filter(|p| p.len() == 2).ok_or_else(|| {
                    invalid(&at, "[name, \"asc\"|\"desc\"] with a metric or dimension of the query")
                })?;
                let name = pair[0]
                    .as_str()
                    .ok_or_else(|| invalid(format!("{at}[0]"), "a metric or dimension name"))?;
                let key = if let Some(i) = metrics.iter().position(|m| m.name() == name) {
                    OrderKey::Metric(i)
                } else if let Some(i) = dimensions.iter().position(|d| dimension_name(d) == name) {
                    OrderKey::Dimension(i)
                } else {
                    return Err(invalid(
                        format!("{at}[0]"),
                        format!("a metric or dimension of this query; got {name:?}"),
                    ));
                };
                let desc = match pair[1].as_str() {
                    Some("desc") => true,
                    Some("asc") => false,
                    _ => return Err(invalid(format!("{at}[1]"), "\"asc\" or \"desc\"")),
                };
                Ok((key, desc))
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(invalid("order_by", "a list of [name, \"asc\"|\"desc\"]")),
    };
    let limit = match obj.get("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=MAX_ROWS as u64).contains(n))
            .map(|n| n as usize)
            .ok_or_else(|| invalid("limit", format!("an integer from 1 to {MAX_ROWS}")))?,
    };
    let (mut totals, mut comparison) = (false, false);
    match obj.get("include") {
        None | Some(Value::Null) => {}
        Some(Value::Object(inc)) => {
            only(inc, "include", &["totals", "comparison"])?;
            totals = match inc.get("totals") {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(invalid("include.totals", "true or false")),
            };
            comparison = match inc.get("comparison") {
                None | Some(Value::Null) => false,
                Some(Value::String(s)) if s == "previous_period" => true,
                Some(_) => return Err(invalid("include.comparison", "\"previous_period\" or null")),
            };
        }
        Some(_) => {
            return Err(invalid(
                "include",
                "an object {\"totals\": bool, \"comparison\": \"previous_period\"}",
            ));
        }
    }
    if funnel.is_some() && (totals || comparison || !order_by.is_empty()) {
        return Err(invalid("include", "no totals, comparison or order_by with a funnel"));
    }
    let credit = credit(obj, &metrics, &dimensions, &event, &filters)?;
    let rollups = match obj.get("rollups") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid("rollups", "true or false")),
    };
    Ok(Query {
        metrics,
        event,
        date_range: date_range(obj.get("date_range"))?,
        dimensions,
        filters,
        order_by,
        limit,
        totals,
        comparison,
        funnel,
        credit,
        rollups,
    })
}

/// `credit` and `decay`, which only the `share_credit` metric takes; and what it can be
/// grouped and filtered by (it is computed from the share facts, not from events).
fn credit(
    obj: &Map<String, Value>,
    metrics: &[Metric],
    dimensions: &[Dimension],
    event: &Option<String>,
    filters: &Option<Filter>,
) -> Result<CreditModel, QueryError> {
    let share_credit = metrics.contains(&Metric::ShareCredit);
    if !share_credit {
        if let Some(k) = ["credit", "decay"].into_iter().find(|k| obj.contains_key(*k)) {
            return Err(invalid(k, "only with the share_credit metric"));
        }
        return Ok(CreditModel::Full);
    }
    if metrics.len() > 1 {
        return Err(invalid("metrics", "share_credit alone (it is computed from the share tree)"));
    }
    if event.is_some() {
        return Err(invalid("event", "no event with share_credit (it counts registrations)"));
    }
    for (i, d) in dimensions.iter().enumerate() {
        let ok = match d {
            Dimension::Time(interval) => *interval != Interval::Hour,
            Dimension::Field(Field::DistinctId | Field::Attribution) => true,
            Dimension::Field(Field::Property(k)) => k == "conference_id",
            Dimension::Field(_) => false,
        };
        if !ok {
            return Err(invalid(
                format!("dimensions[{i}]"),
                "with share_credit: distinct_id (the sharer), attribution (the share code), \
                 properties.conference_id or time:day|week|month (of the registration)",
            ));
        }
    }
    if let Some(f) = filters {
        if conference_filter(f).is_none() {
            return Err(invalid(
                "filters",
                "with share_credit: only is on properties.conference_id (and and of those)",
            ));
        }
    }
    let name = match obj.get("credit") {
        None => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(invalid("credit", "one of full, equal, decay, first, last")),
    };
    let decay = match obj.get("decay") {
        None => None,
        Some(v) => Some(v.as_f64().ok_or_else(|| invalid("decay", "a number in (0, 1]"))?),
    };
    CreditModel::parse(name.unwrap_or("full"), decay).map_err(|e| invalid(e.param, e.message))
}

/// The conferences a filter made only of `is` on `properties.conference_id` (under `and`)
/// allows: `Some(None)` for no restriction … `Some(Some(list))`; `None` for any other filter.
pub fn conference_filter(f: &Filter) -> Option<Option<Vec<String>>> {
    match f {
        Filter::Is(Field::Property(k), values) if k == "conference_id" => Some(Some(values.clone())),
        Filter::And(list) => {
            let mut allowed: Option<Vec<String>> = None;
            for f in list {
                if let Some(values) = conference_filter(f)? {
                    allowed = Some(match allowed {
                        None => values,
                        Some(a) => a.into_iter().filter(|c| values.contains(c)).collect(),
                    });
                }
            }
            Some(allowed)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> String {
        parse(&v).unwrap_err().to_string()
    }

    #[test]
    fn the_issue_example_parses() {
        let q = parse(&json!({
            "metrics": ["events", "visitors", "sessions"],
            "event": "page_view",
            "date_range": "30d",
            "dimensions": ["time:day", "properties.conference_id"],
            "filters": ["and", ["is", "context.browser", ["Chrome", "Safari"]],
                               ["contains", "properties.url", ["/agenda"]]],
            "order_by": [["events", "desc"]],
            "limit": 100,
            "include": {"comparison": "previous_period", "totals": true}
        }))
        .unwrap();
        assert_eq!(q.metrics, vec![Metric::Events, Metric::Visitors, Metric::Sessions]);
        assert_eq!(q.dimensions[1], Dimension::Field(Field::Property("conference_id".into())));
        assert_eq!(q.order_by, vec![(OrderKey::Metric(0), true)]);
        assert!(q.totals && q.comparison);
        assert_eq!(q.date_range, DateRange::LastDays(30));
    }

    #[test]
    fn every_error_names_its_field() {
        assert!(err(json!({"metrics": ["pageviews"]})).starts_with("metrics[0]: one of events"));
        assert!(err(json!({"metrics": ["pv"], "dimensions": ["browser"]})).starts_with("dimensions[0]:"));
        assert!(
            err(json!({"metrics": ["pv"], "filters": ["like", "type", ["x"]]})).starts_with("filters[0]:")
        );
        assert!(
            err(json!({"metrics": ["pv"], "filters": ["and", ["is", "type"]]})).starts_with("filters[1]:"),
            "{}",
            err(json!({"metrics": ["pv"], "filters": ["and", ["is", "type"]]}))
        );
        assert!(err(json!({"metrics": ["pv"], "date_range": "lastweek"})).starts_with("date_range:"));
        assert!(
            err(json!({"metrics": ["pv"], "date_range": ["2026-13-01", "2026-06-01"]}))
                .starts_with("date_range[0]:")
        );
        assert!(err(json!({"metrics": ["pv"], "limit": 0})).starts_with("limit:"));
        assert!(err(json!({"metrics": ["pv"], "sort": 1})).starts_with("sort: a known field"));
        assert!(err(json!({"metrics": ["pv"], "include": {"totalz": true}})).starts_with("include.totalz:"));
        assert!(err(json!({"metrics": ["pv"], "order_by": [["uv", "desc"]]})).starts_with("order_by[0][0]:"));
        assert!(err(json!({"metrics": ["pv"], "filters": ["gt", "type", [1]]})).starts_with("filters[1]:"));
        assert!(
            err(json!({"metrics": ["pv"], "filters": ["matches", "type", ["*a*b*c*d*e"]]}))
                .starts_with("filters[2]:")
        );
        assert!(err(json!({"funnel": {"steps": [{"event": "a"}]}})).starts_with("funnel.steps:"));
        assert!(
            err(json!({"funnel": {"steps": [{"event": "a"}, {"event": "b"}], "window": "7w"}}))
                .starts_with("funnel.window:")
        );
        assert!(
            err(json!({"metrics": ["pv"], "dimensions": ["properties.a\"b"]})).starts_with("dimensions[0]:")
        );
    }

    #[test]
    fn filter_trees_are_bounded() {
        let mut deep = json!(["is", "type", ["x"]]);
        for _ in 0..12 {
            deep = json!(["not", deep]);
        }
        assert!(err(json!({"metrics": ["pv"], "filters": deep})).contains("nested at most"));
        let wide: Vec<Value> =
            std::iter::once(json!("or")).chain((0..150).map(|_| json!(["is", "type", ["x"]]))).collect();
        assert!(err(json!({"metrics": ["pv"], "filters": wide})).contains("at most 100 conditions"));
    }

    #[test]
    fn funnels_parse_with_a_window() {
        let q = parse(&json!({"funnel": {"steps": [{"event": "page_view"}, {"event": "registration"}], "window": "12h"}, "date_range": "7d"}))
            .unwrap();
        let f = q.funnel.unwrap();
        assert_eq!(f.steps, vec!["page_view".to_string(), "registration".to_string()]);
        assert_eq!(f.window_ms, 12 * 3_600_000);
    }
}
