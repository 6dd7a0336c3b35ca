//! The `share_credit` metric: each credited registration's credit (under the query's model, see
//! [`crate::consumer::credit`]) summed by sharer (`distinct_id`: the sharer's resolved visitor),
//! share code (`attribution`), the registration's conference or its day. Computed from the
//! share facts, the same ones the tree is drawn from, so the two always agree.

use std::collections::BTreeMap;

use super::parse::conference_filter;
use super::range::{Period, bucket_of_date};
use super::{Dimension, Field, QueryError, RawRow, Scope};
use crate::consumer::credit::{self, round6};
use crate::store::Cell;

/// The grouped credit of the registrations in `period`.
pub fn rows(scope: Scope<'_>, query: &super::Query, period: &Period) -> Result<Vec<RawRow>, QueryError> {
    let facts = scope.store.share_facts(scope.project)?;
    let credits = credit::compute(&facts, query.credit);
    let allowed = query.filters.as_ref().and_then(conference_filter).flatten();
    let (from, to) = (period.from.to_string(), period.to.to_string());
    let mut sums: BTreeMap<Vec<Cell>, f64> = BTreeMap::new();
    for ((_, _, conference, day), credited) in facts.registrations.iter().zip(&credits.per_registration) {
        if *day < from || *day > to || allowed.as_ref().is_some_and(|a| !a.contains(conference)) {
            continue;
        }
        let Ok(date) = day.parse::<jiff::civil::Date>() else { continue };
        for &(share, amount) in credited {
            let dims = query
                .dimensions
                .iter()
                .map(|d| match d {
                    Dimension::Time(interval) => Cell::Int(bucket_of_date(date, *interval)),
                    Dimension::Field(Field::DistinctId) => Cell::Text(facts.shares[share].1.clone()),
                    Dimension::Field(Field::Attribution) => Cell::Text(facts.shares[share].0.code.clone()),
                    Dimension::Field(_) => Cell::Text(conference.clone()),
                })
                .collect();
            *sums.entry(dims).or_default() += amount;
        }
    }
    if query.dimensions.is_empty() && sums.is_empty() {
        sums.insert(Vec::new(), 0.0);
    }
    Ok(sums.into_iter().map(|(d, v)| (d, vec![round6(v)])).collect())
}
