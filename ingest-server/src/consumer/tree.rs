//! The share attribution tree, computed at query time from stored facts, so it never depends
//! on the order events arrived in (or the order of the facts): with each share's credit under
//! a [`CreditModel`], statistics per generation, and a leaderboard of sharers.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use super::attribution::MAX_DEPTH;
use super::credit::{self, Amount, CreditModel, ShareIndex};
use crate::store::ShareFacts;

/// One share code in the tree.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TreeNode {
    /// The code.
    pub share_code: String,
    /// Distinct id of who shared it (as sent, not resolved).
    pub sharer: String,
    /// Channel.
    pub channel: Option<String>,
    /// The shared URL.
    pub target_url: Option<String>,
    /// Conference of the share event.
    pub conference_id: Option<String>,
    /// Generation: 0 for a root, one more per re-share.
    pub depth: usize,
    /// Opens of this code by anyone but its sharer.
    pub opens: u64,
    /// Registrations carrying this code, by anyone but its sharer.
    pub direct_registrations: u64,
    /// This share's credit under the model from the registrations at or below it (never from
    /// its sharer's own).
    pub credited_conversions: Amount,
    /// How many codes were re-shared from this one.
    pub reshares: usize,
    /// Codes re-shared from this one.
    pub children: Vec<TreeNode>,
    /// The sharer's resolved visitor.
    #[serde(skip)]
    pub visitor: String,
    /// Server time of the share event.
    #[serde(skip)]
    pub created_at: i64,
}

/// The shares of one generation (depth) of a forest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Generation {
    /// 0 for the roots.
    pub depth: usize,
    /// Shares at this depth.
    pub shares: u64,
    /// Distinct sharers (resolved visitors) of those shares.
    pub sharers: u64,
    /// Opens of those shares (by anyone but the sharer).
    pub opens: u64,
    /// Registrations directly on those codes (registrant ≠ sharer).
    pub registrations: u64,
    /// The K-factor of the next generation: its registrations per sharer of this one
    /// (`registrations / sharers`).
    pub k_factor: Amount,
}

/// Sums over a forest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    /// Shares.
    pub shares: u64,
    /// Opens.
    pub opens: u64,
    /// Direct registrations.
    pub registrations: u64,
    /// The shares' credits (under `full` a registration counts once per eligible share).
    pub credited_conversions: Amount,
}

/// One sharer (resolved visitor) on the leaderboard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SharerRow {
    /// The distinct id (as sent) of the visitor's first share.
    pub sharer: String,
    /// Their shares.
    pub shares: u64,
    /// Opens of those.
    pub opens: u64,
    /// Registrations directly on those codes.
    pub direct_registrations: u64,
    /// Their shares' credits.
    pub credited_conversions: Amount,
}

/// The forest of share trees with full credit; see [`build_with`].
pub fn build(facts: &ShareFacts, conference_id: Option<&str>) -> Vec<TreeNode> {
    build_with(facts, conference_id, CreditModel::Full)
}

/// The forest of share trees, credited under `model`; with `conference_id`, only trees where a
/// share or a credited registration belongs to that conference. Roots and children are ordered
/// by share time, then code.
pub fn build_with(facts: &ShareFacts, conference_id: Option<&str>, model: CreditModel) -> Vec<TreeNode> {
    let index = ShareIndex::new(facts);
    let n = facts.shares.len();
    let mut opens = vec![0u64; n];
    for (code, opener) in &facts.opens {
        if let Some(i) = index.get(code) {
            if facts.shares[i].1 != *opener {
                opens[i] += 1;
            }
        }
    }
    let credits = credit::compute(facts, model);
    let mut direct = vec![0u64; n];
    let mut conference_hit: Vec<bool> = facts
        .shares
        .iter()
        .map(|(s, _)| conference_id.is_none() || s.conference_id.as_deref() == conference_id)
        .collect();
    for ((code, registrant, conference, _), credited) in
        facts.registrations.iter().zip(&credits.per_registration)
    {
        let Some(start) = index.get(code) else { continue };
        if facts.shares[start].1 != *registrant {
            direct[start] += 1;
        }
        if !credited.is_empty() && Some(conference.as_str()) == conference_id {
            conference_hit[start] = true;
        }
    }
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut roots = Vec::new();
    for i in 0..n {
        match index.parent_of(i) {
            Some(p) => children[p].push(i),
            None => roots.push(i),
        }
    }
    let key = |&i: &usize| (facts.shares[i].0.created_at, facts.shares[i].0.code.as_str());
    for c in &mut children {
        c.sort_by_key(key);
    }
    roots.sort_by_key(key);
    let node = |i: usize, depth: usize, kids: Vec<TreeNode>| {
        let (s, visitor) = &facts.shares[i];
        TreeNode {
            share_code: s.code.clone(),
            sharer: s.sharer.clone(),
            channel: s.channel.clone(),
            target_url: s.target_url.clone(),
            conference_id: s.conference_id.clone(),
            depth,
            opens: opens[i],
            direct_registrations: direct[i],
            credited_conversions: Amount(credits.per_share[i]),
            reshares: children[i].len(),
            children: kids,
            visitor: visitor.clone(),
            created_at: s.created_at,
        }
    };
    // Build bottom-up without recursion: post-order over each root's subtree.
    let mut out = Vec::new();
    for root in roots {
        let mut order = Vec::new();
        let mut stack = vec![(root, 0usize)];
        while let Some((i, depth)) = stack.pop() {
            order.push((i, depth));
            if depth < MAX_DEPTH {
                stack.extend(children[i].iter().rev().map(|&c| (c, depth + 1)));
            }
        }
        if !order.iter().any(|&(i, _)| conference_hit[i]) {
            continue;
        }
        let mut built: HashMap<usize, TreeNode> = HashMap::new();
        for &(i, depth) in order.iter().rev() {
            let kids = children[i].iter().filter_map(|c| built.remove(c)).collect();
            built.insert(i, node(i, depth, kids));
        }
        if let Some(t) = built.remove(&root) {
            out.push(t);
        }
    }
    out
}

/// Every node of a forest, in pre-order (without recursion).
pub fn nodes(forest: &[TreeNode]) -> Vec<&TreeNode> {
    let mut out = Vec::new();
    let mut stack: Vec<&TreeNode> = forest.iter().rev().collect();
    while let Some(t) = stack.pop() {
        out.push(t);
        stack.extend(t.children.iter().rev());
    }
    out
}

/// Statistics of each generation (depth) of a forest, shallowest first.
pub fn generations(forest: &[TreeNode]) -> Vec<Generation> {
    let mut by_depth: BTreeMap<usize, (u64, BTreeSet<&str>, u64, u64)> = BTreeMap::new();
    for t in nodes(forest) {
        let g = by_depth.entry(t.depth).or_default();
        g.0 += 1;
        g.1.insert(t.visitor.as_str());
        g.2 += t.opens;
        g.3 += t.direct_registrations;
    }
    by_depth
        .into_iter()
        .map(|(depth, (shares, sharers, opens, registrations))| {
            let sharers = sharers.len() as u64;
            Generation {
                depth,
                shares,
                sharers,
                opens,
                registrations,
                k_factor: Amount(if sharers == 0 { 0.0 } else { registrations as f64 / sharers as f64 }),
            }
        })
        .collect()
}

/// Sums over a forest.
pub fn totals(forest: &[TreeNode]) -> Totals {
    let mut t = Totals { shares: 0, opens: 0, registrations: 0, credited_conversions: Amount(0.0) };
    for n in nodes(forest) {
        t.shares += 1;
        t.opens += n.opens;
        t.registrations += n.direct_registrations;
        t.credited_conversions.0 += n.credited_conversions.0;
    }
    t
}

/// The sharers (resolved visitors) of a forest's shares, by credited conversions (as served,
/// rounded), then direct registrations, both descending, then sharer; at most `limit`.
pub fn leaderboard(forest: &[TreeNode], limit: usize) -> Vec<SharerRow> {
    let mut by_visitor: HashMap<&str, (SharerRow, (i64, &str))> = HashMap::new();
    for t in nodes(forest) {
        let first = (t.created_at, t.share_code.as_str());
        let (row, at) = by_visitor.entry(t.visitor.as_str()).or_insert_with(|| {
            let row = SharerRow {
                sharer: t.sharer.clone(),
                shares: 0,
                opens: 0,
                direct_registrations: 0,
                credited_conversions: Amount(0.0),
            };
            (row, first)
        });
        if first < *at {
            *at = first;
            row.sharer.clone_from(&t.sharer);
        }
        row.shares += 1;
        row.opens += t.opens;
        row.direct_registrations += t.direct_registrations;
        row.credited_conversions.0 += t.credited_conversions.0;
    }
    let mut rows: Vec<SharerRow> = by_visitor.into_values().map(|(r, _)| r).collect();
    rows.sort_by(|a, b| {
        b.credited_conversions
            .rounded()
            .total_cmp(&a.credited_conversions.rounded())
            .then(b.direct_registrations.cmp(&a.direct_registrations))
            .then_with(|| a.sharer.cmp(&b.sharer))
    });
    rows.truncate(limit);
    rows
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;
    use crate::consumer::credit::tests::{facts_strategy, self_ancestor_facts, share, shuffled};

    const MODELS: [CreditModel; 6] = [
        CreditModel::Full,
        CreditModel::Equal,
        CreditModel::Decay(0.5),
        CreditModel::Decay(0.2),
        CreditModel::First,
        CreditModel::Last,
    ];

    fn reg(code: &str, who: &str, conference: &str) -> (String, String, String, String) {
        (code.into(), who.into(), conference.into(), "2026-06-20".into())
    }

    fn to_json(v: &impl Serialize) -> Value {
        serde_json::to_value(v).unwrap()
    }

    #[test]
    fn conversions_credit_every_other_sharer_up_the_chain() {
        let facts = ShareFacts {
            shares: vec![share("b", "B", "B", Some("a"), 2), share("a", "A", "A", None, 1)],
            opens: vec![("a".into(), "B".into()), ("a".into(), "A".into()), ("b".into(), "C".into())],
            registrations: vec![reg("b", "C", "c1"), reg("b", "B", "c1")],
        };
        let forest = build(&facts, Some("c1"));
        assert_eq!(forest.len(), 1);
        let a = &forest[0];
        assert_eq!(
            (
                a.share_code.as_str(),
                a.depth,
                a.reshares,
                a.opens,
                a.direct_registrations,
                a.credited_conversions
            ),
            ("a", 0, 1, 1, 0, Amount(2.0))
        );
        let b = &a.children[0];
        assert_eq!(
            (
                b.share_code.as_str(),
                b.depth,
                b.reshares,
                b.opens,
                b.direct_registrations,
                b.credited_conversions
            ),
            ("b", 1, 0, 1, 1, Amount(1.0))
        );
        assert_eq!(to_json(a)["credited_conversions"], json!(2));
        assert!(build(&facts, Some("other")).is_empty());
    }

    #[test]
    fn a_registrant_who_is_an_ancestors_sharer_never_credits_themself() {
        let facts = self_ancestor_facts();
        let expected = [
            (CreditModel::Full, [json!(1), json!(2), json!(1)]),
            (CreditModel::Equal, [json!(0.333333), json!(1.333333), json!(0.333333)]),
            (CreditModel::Decay(0.5), [json!(0.142857), json!(1.285714), json!(0.571429)]),
            (CreditModel::First, [json!(1), json!(1), json!(0)]),
            (CreditModel::Last, [json!(0), json!(1), json!(1)]),
        ];
        for (model, [a, b, c]) in expected {
            let forest = to_json(&build_with(&facts, Some("c1"), model));
            let (na, nb) = (&forest[0], &forest[0]["children"][0]);
            let nc = &nb["children"][0];
            assert_eq!([&na["share_code"], &nb["share_code"], &nc["share_code"]], ["a", "b", "c"]);
            assert_eq!([&na["depth"], &nb["depth"], &nc["depth"]], [0, 1, 2]);
            assert_eq!([&na["reshares"], &nb["reshares"], &nc["reshares"]], [1, 1, 0]);
            assert_eq!(na["sharer"], "anon-a");
            assert_eq!(nc["direct_registrations"], 1, "A registering via A's own code is not direct");
            assert_eq!(
                [&na["credited_conversions"], &nb["credited_conversions"], &nc["credited_conversions"]],
                [&a, &b, &c],
                "{model:?}"
            );
        }
    }

    #[test]
    fn generations_count_shares_sharers_and_the_next_generations_k_factor() {
        let facts = ShareFacts {
            shares: vec![
                share("r1", "A", "A", None, 1),
                share("r2", "B", "B", None, 2),
                share("r3", "A-phone", "A", None, 3),
                share("x", "C", "C", Some("r1"), 4),
                share("y", "C-phone", "C", Some("r2"), 5),
                share("z", "D", "D", Some("y"), 6),
            ],
            opens: vec![("r1".into(), "C".into()), ("r1".into(), "A".into()), ("y".into(), "D".into())],
            registrations: vec![
                reg("r1", "C", "c1"),
                reg("r2", "C", "c1"),
                reg("r3", "E", "c1"),
                reg("r3", "A", "c1"), // the sharer's own: not a registration of this generation
                reg("x", "F", "c1"),
            ],
        };
        let forest = build(&facts, Some("c1"));
        assert_eq!(
            to_json(&generations(&forest)),
            json!([
                {"depth": 0, "shares": 3, "sharers": 2, "opens": 1, "registrations": 3, "k_factor": 1.5},
                {"depth": 1, "shares": 2, "sharers": 1, "opens": 1, "registrations": 1, "k_factor": 1},
                {"depth": 2, "shares": 1, "sharers": 1, "opens": 0, "registrations": 0, "k_factor": 0},
            ])
        );
        // Full credit: r1 ← C, F (via x); r2 ← C; r3 ← E; x ← F.
        assert_eq!(
            to_json(&totals(&forest)),
            json!({"shares": 6, "opens": 2, "registrations": 4, "credited_conversions": 5})
        );
        let equal = build_with(&facts, Some("c1"), CreditModel::Equal);
        assert_eq!(to_json(&totals(&equal))["credited_conversions"], json!(4));
    }

    #[test]
    fn the_leaderboard_ranks_by_credit_then_direct_registrations_then_sharer() {
        let facts = self_ancestor_facts();
        let board = |model| to_json(&leaderboard(&build_with(&facts, None, model), 20));
        // Full: A (a + c) 2 credits and 1 direct registration; B 2 and none.
        assert_eq!(
            board(CreditModel::Full),
            json!([
                {"sharer": "anon-a", "shares": 2, "opens": 2, "direct_registrations": 1, "credited_conversions": 2},
                {"sharer": "B", "shares": 1, "opens": 1, "direct_registrations": 0, "credited_conversions": 2},
            ])
        );
        let equal = board(CreditModel::Equal);
        assert_eq!((&equal[0]["sharer"], &equal[0]["credited_conversions"]), (&json!("B"), &json!(1.333333)));
        assert_eq!(equal[1]["credited_conversions"], json!(0.666667));
        let tied = ShareFacts {
            shares: vec![
                share("y", "Y", "Y", None, 1),
                share("x", "X", "X", None, 2),
                share("w", "W", "W", None, 3),
            ],
            opens: vec![],
            registrations: vec![reg("y", "Z", "c1"), reg("x", "Z", "c1")],
        };
        let rows = leaderboard(&build(&tied, None), 20);
        let order: Vec<&str> = rows.iter().map(|r| r.sharer.as_str()).collect();
        assert_eq!(order, ["X", "Y", "W"]);
        assert_eq!(leaderboard(&build(&tied, None), 1).len(), 1);
    }

    proptest! {
        #[test]
        fn results_do_not_depend_on_fact_order_and_each_registration_credits_one(
            (facts, other) in facts_strategy().prop_flat_map(shuffled)
        ) {
            for model in MODELS {
                for conference in [None, Some("c1"), Some("c2")] {
                    let (a, b) = (build_with(&facts, conference, model), build_with(&other, conference, model));
                    prop_assert_eq!(to_json(&a), to_json(&b));
                    prop_assert_eq!(&a, &b);
                    prop_assert_eq!(to_json(&generations(&a)), to_json(&generations(&b)));
                    prop_assert_eq!(to_json(&totals(&a)), to_json(&totals(&b)));
                    prop_assert_eq!(to_json(&leaderboard(&a, 1000)), to_json(&leaderboard(&b, 1000)));
                }
                prop_assert_eq!(credit::by_code(&facts, model), credit::by_code(&other, model));
                let full = credit::compute(&facts, CreditModel::Full).per_registration;
                for (credits, full) in credit::compute(&facts, model).per_registration.iter().zip(&full) {
                    prop_assert_eq!(credits.is_empty(), full.is_empty());
                    let sum: f64 = credits.iter().map(|(_, c)| c).sum();
                    if model != CreditModel::Full && !credits.is_empty() {
                        prop_assert!((sum - 1.0).abs() < 1e-9, "{model:?}: {credits:?}");
                    }
                }
            }
        }
    }
}
