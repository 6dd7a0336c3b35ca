//! Funnels: persons who did the steps in order, each within the window after their first step.
//!
//! SQL selects the steps' events with each one's resolved person, oldest first; the walk here
//! keeps, per person and step, the latest start of a chain that reached the step in order. The
//! latest start leaves the most window for the steps after, so one pass finds the furthest step
//! any start reaches. Events arrive in any order, so the walk is over `server_ts`, never
//! arrival; merged identities are one person because SQL resolves them.

use std::collections::HashMap;
use std::time::Instant;

use super::range::Period;
use super::{Dialect, Funnel, FunnelStep, Query, QueryError, Scope, sql};
use crate::store::Cell;

/// Counts persons per step.
pub fn count(
    scope: Scope<'_>,
    dialect: Dialect,
    query: &Query,
    funnel: &Funnel,
    period: &Period,
    deadline: Instant,
) -> Result<Vec<FunnelStep>, QueryError> {
    let stmt = sql::funnel_events(dialect, scope.project, query, &funnel.steps, period)?;
    let rows = scope.store.aggregate(&stmt.sql, &stmt.params, deadline)?;
    let events = rows.iter().filter_map(|r| match r.as_slice() {
        [Cell::Text(person), Cell::Text(name), Cell::Int(ts)] => Some((person.as_str(), name.as_str(), *ts)),
        _ => None,
    });
    let reached = walk(&funnel.steps, funnel.window_ms, events);
    Ok(steps(&funnel.steps, &reached))
}

/// For each step, how many persons reached it (in order, within the window). `events` must be
/// sorted by time.
pub fn walk<'a>(
    steps: &[String],
    window_ms: i64,
    events: impl Iterator<Item = (&'a str, &'a str, i64)>,
) -> Vec<i64> {
    let n = steps.len();
    // Per person: for each step, the latest start of a chain reaching it.
    let mut chains: HashMap<&str, Vec<Option<i64>>> = HashMap::new();
    for (person, name, ts) in events {
        let chain = chains.entry(person).or_insert_with(|| vec![None; n]);
        // Later steps first, so one event never serves as two consecutive steps.
        for i in (0..n).rev() {
            if steps[i] != name {
                continue;
            }
            if i == 0 {
                chain[0] = Some(ts);
            } else if let Some(start) = chain[i - 1] {
                if ts - start <= window_ms {
                    chain[i] = Some(chain[i].map_or(start, |s| s.max(start)));
                }
            }
        }
    }
    let mut reached = vec![0i64; n];
    for chain in chains.values() {
        for (i, c) in chain.iter().enumerate() {
            if c.is_some() {
                reached[i] += 1;
            }
        }
    }
    reached
}

fn ratio(a: i64, b: i64) -> Option<f64> {
    (b > 0).then(|| (a as f64 / b as f64 * 10_000.0).round() / 10_000.0)
}

fn steps(names: &[String], reached: &[i64]) -> Vec<FunnelStep> {
    names
        .iter()
        .zip(reached)
        .enumerate()
        .map(|(i, (event, &visitors))| FunnelStep {
            event: event.clone(),
            visitors,
            conversion: if i == 0 { None } else { ratio(visitors, reached[i - 1]) },
            conversion_from_first: ratio(visitors, reached[0]),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn steps_count_only_in_order_and_within_the_window() {
        let steps = names(&["page_view", "share_open", "registration"]);
        let events = [
            // A: in order.
            ("A", "page_view", 1),
            ("A", "share_open", 2),
            ("A", "registration", 3),
            // B: registered before viewing: only the first step.
            ("B", "registration", 1),
            ("B", "page_view", 2),
            // C: the open comes after the window.
            ("C", "page_view", 1),
            ("C", "share_open", 200),
            // D: a later page view restarts the window and then completes.
            ("D", "page_view", 1),
            ("D", "page_view", 150),
            ("D", "share_open", 160),
            ("D", "registration", 170),
        ];
        assert_eq!(walk(&steps, 100, events.into_iter()), vec![4, 2, 2]);
    }

    #[test]
    fn one_event_never_fills_two_steps() {
        let steps = names(&["page_view", "page_view"]);
        assert_eq!(walk(&steps, 100, [("A", "page_view", 1)].into_iter()), vec![1, 0]);
        assert_eq!(walk(&steps, 100, [("A", "page_view", 1), ("A", "page_view", 5)].into_iter()), vec![1, 1]);
    }

    #[test]
    fn conversions_are_from_the_previous_and_the_first_step() {
        let s = steps(&names(&["a", "b", "c"]), &[10, 4, 0]);
        assert_eq!(s[0].conversion, None);
        assert_eq!(s[1].conversion, Some(0.4));
        assert_eq!(s[2].conversion, Some(0.0));
        assert_eq!(s[2].conversion_from_first, Some(0.0));
    }
}
