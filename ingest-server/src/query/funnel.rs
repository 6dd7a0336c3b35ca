//! Funnels: persons who did the steps in order, each within the window after their first step.
//!
//! SQL selects the steps' events, each with the id its person is known by and the steps its
//! type is; here they are put in time order and their ids resolved to persons with the
//! project's identity links (so merged identities are one person). The walk keeps, per person
//! and step, the latest start of a chain that reached the step in order. The latest start
//! leaves the most window for the steps after, so one pass finds the furthest step any start
//! reaches. Events arrive in any order, so the walk is over `server_ts`, never arrival.

use std::collections::HashMap;
use std::time::Instant;

use super::range::Period;
use super::{Dialect, Funnel, FunnelStep, Query, QueryError, Scope, sql};
use crate::store::{Cell, CellRef};

/// Counts persons per step.
pub fn count(
    scope: Scope<'_>,
    dialect: Dialect,
    query: &Query,
    funnel: &Funnel,
    period: &Period,
    deadline: Instant,
) -> Result<Vec<FunnelStep>, QueryError> {
    let links = sql::identity_links(dialect, scope.project);
    let links = scope.store.aggregate(&links.sql, &links.params, deadline)?;
    let roots: HashMap<&str, &str> = links
        .iter()
        .filter_map(|r| match r.as_slice() {
            [Cell::Text(id), Cell::Text(root)] => Some((id.as_str(), root.as_str())),
            _ => None,
        })
        .collect();
    let stmt = sql::funnel_events(dialect, scope.project, query, &funnel.steps, period)?;
    let mut persons = Persons { roots: &roots, of_id: HashMap::new(), of_root: HashMap::new(), count: 0 };
    // (time, seq, person, steps) per event.
    let mut events: Vec<(i64, i64, usize, i64)> = Vec::new();
    scope.store.scan(&stmt.sql, &stmt.params, deadline, &mut |row| {
        if let [id, CellRef::Int(steps), CellRef::Int(ts), CellRef::Int(seq)] = row {
            let id = match id {
                CellRef::Text(id) => Some(id.as_ref()),
                _ => None,
            };
            events.push((*ts, *seq, persons.of(id), *steps));
        }
    })?;
    // Already in this order from SQLite (a linear check then); see `sql::funnel_events`.
    events.sort_unstable_by_key(|&(ts, seq, _, _)| (ts, seq));
    in_step_order_within_a_millisecond(&mut events);
    let events = events.into_iter().map(|(ts, _, person, steps)| (person, steps, ts));
    let reached = walk(funnel.steps.len(), funnel.window_ms, events);
    Ok(steps(&funnel.steps, &reached))
}

/// Client clocks count milliseconds, and what one call of an SDK records together lands in the
/// same one: a visitor arriving by a share link gets its `share_open` and then its `page_view`.
/// Within a millisecond the order of a person's events is unknown, so events with the same time
/// count in the funnel's order (by their first step; stable, so arrival order otherwise).
/// Linear: the runs of equal times are short.
fn in_step_order_within_a_millisecond(events: &mut [(i64, i64, usize, i64)]) {
    for run in events.chunk_by_mut(|a, b| a.0 == b.0) {
        if run.len() > 1 {
            run.sort_by_key(|&(_, _, _, steps)| steps.trailing_zeros());
        }
    }
}

/// Numbers persons as their ids are met: merged ids (by the project's identity links) get
/// their root's number, an event without an id a number of its own.
struct Persons<'a> {
    roots: &'a HashMap<&'a str, &'a str>,
    of_id: HashMap<String, usize>,
    of_root: HashMap<String, usize>,
    count: usize,
}

impl Persons<'_> {
    fn of(&mut self, id: Option<&str>) -> usize {
        let Some(id) = id else { return self.fresh() };
        if let Some(&n) = self.of_id.get(id) {
            return n;
        }
        let root = self.roots.get(id).copied().unwrap_or(id);
        let n = match self.of_root.get(root) {
            Some(&n) => n,
            None => {
                let n = self.fresh();
                self.of_root.insert(root.to_string(), n);
                n
            }
        };
        self.of_id.insert(id.to_string(), n);
        n
    }

    fn fresh(&mut self) -> usize {
        self.count += 1;
        self.count - 1
    }
}

/// For each of `n` steps, how many persons reached it (in order, within the window). `events`
/// are `(person, steps, time)` sorted by time, persons numbered from 0 as they are met, and
/// bit `i` of `steps` says the event is step `i`.
pub fn walk(n: usize, window_ms: i64, events: impl Iterator<Item = (usize, i64, i64)>) -> Vec<i64> {
    // Per person, `n` slots: for each step, the latest start of a chain reaching it.
    let mut chains: Vec<Option<i64>> = Vec::new();
    for (person, bits, ts) in events {
        let at = person * n;
        if chains.len() < at + n {
            chains.resize(at + n, None);
        }
        let chain = &mut chains[at..at + n];
        // Later steps first, so one event never serves as two consecutive steps.
        for i in (0..n).rev() {
            if bits & (1 << i) == 0 {
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
    for chain in chains.chunks(n.max(1)) {
        for (r, c) in reached.iter_mut().zip(chain) {
            *r += i64::from(c.is_some());
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

    /// Events as SQL hands them over: the step bits of each type, in time order.
    fn walk_events(steps: &[&str], window_ms: i64, events: &[(&'static str, &str, i64)]) -> Vec<i64> {
        let mut numbers: Vec<&str> = Vec::new();
        let mut rows: Vec<(usize, i64, i64)> = events
            .iter()
            .map(|&(p, name, ts)| {
                let bits = steps.iter().enumerate().filter(|(_, s)| **s == name).map(|(i, _)| 1 << i).sum();
                let person = numbers.iter().position(|x| *x == p).unwrap_or_else(|| {
                    numbers.push(p);
                    numbers.len() - 1
                });
                (person, bits, ts)
            })
            .collect();
        rows.sort_by_key(|&(_, _, ts)| ts);
        walk(steps.len(), window_ms, rows.into_iter())
    }

    #[test]
    fn steps_count_only_in_order_and_within_the_window() {
        let steps = ["page_view", "share_open", "registration"];
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
        assert_eq!(walk_events(&steps, 100, &events), vec![4, 2, 2]);
    }

    #[test]
    fn one_event_never_fills_two_steps() {
        let steps = ["page_view", "page_view"];
        assert_eq!(walk_events(&steps, 100, &[("A", "page_view", 1)]), vec![1, 0]);
        assert_eq!(walk_events(&steps, 100, &[("A", "page_view", 1), ("A", "page_view", 5)]), vec![1, 1]);
    }

    #[test]
    fn one_persons_steps_do_not_complete_anothers() {
        let steps = ["page_view", "share_open"];
        assert_eq!(walk_events(&steps, 100, &[("A", "page_view", 1), ("B", "share_open", 2)]), vec![1, 0]);
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
