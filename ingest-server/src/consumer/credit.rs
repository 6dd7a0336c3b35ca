//! Share credit models: how a registration's conversion is credited to the shares on the path
//! from its attribution code up to the root.
//!
//! Only *eligible* shares take part: those whose sharer (resolved visitor) is not the
//! registrant (resolved visitor), so nobody is credited for their own registration, even when
//! they also shared further up the chain. Everything here is computed from [`ShareFacts`] and
//! does not depend on the order of the facts' vectors.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Serialize, Serializer};

use super::attribution::MAX_DEPTH;
use crate::store::ShareFacts;

/// `decay` when the parameter is absent.
pub const DEFAULT_DECAY: f64 = 0.5;

/// How a conversion is credited to the eligible shares on its path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CreditModel {
    /// Every eligible share on the path gets 1 (the sum over shares exceeds the conversions).
    Full,
    /// The conversion's 1 split equally among the eligible shares on its path.
    Equal,
    /// Going up the path each eligible share gets `decay` times the one below it (the lowest
    /// gets the most), normalised so the conversion's credits sum to 1. `decay` is in (0, 1].
    Decay(f64),
    /// Only the root-most eligible share gets 1.
    First,
    /// Only the lowest (direct) eligible share gets 1.
    Last,
}

/// A bad `credit` or `decay` parameter; the message names the parameter and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CreditParamError {
    /// `credit` or `decay`.
    pub param: &'static str,
    /// What was wrong and what is expected.
    pub message: String,
}

impl CreditModel {
    /// The model names, as the `credit` parameter spells them.
    pub const NAMES: [&'static str; 5] = ["full", "equal", "decay", "first", "last"];

    /// The model called `name`; `decay` (default [`DEFAULT_DECAY`]) must be in (0, 1] whenever
    /// it is given, and is used only by `decay`.
    pub fn parse(name: &str, decay: Option<f64>) -> Result<CreditModel, CreditParamError> {
        let decay = match decay {
            None => DEFAULT_DECAY,
            Some(d) if d > 0.0 && d <= 1.0 => d,
            Some(d) => return Err(bad_decay(&d.to_string())),
        };
        Ok(match name {
            "full" => CreditModel::Full,
            "equal" => CreditModel::Equal,
            "decay" => CreditModel::Decay(decay),
            "first" => CreditModel::First,
            "last" => CreditModel::Last,
            other => {
                return Err(CreditParamError {
                    param: "credit",
                    message: format!("credit must be one of {} (got {other:?})", Self::NAMES.join(", ")),
                });
            }
        })
    }

    /// The model from raw query parameters: `credit` (default `full`) and `decay` (a number).
    pub fn from_query(credit: Option<&str>, decay: Option<&str>) -> Result<CreditModel, CreditParamError> {
        let decay = match decay {
            None => None,
            Some(d) => Some(d.trim().parse::<f64>().map_err(|_| bad_decay(d))?),
        };
        CreditModel::parse(credit.unwrap_or("full"), decay)
    }

    /// The model's name.
    pub fn name(&self) -> &'static str {
        match self {
            CreditModel::Full => "full",
            CreditModel::Equal => "equal",
            CreditModel::Decay(_) => "decay",
            CreditModel::First => "first",
            CreditModel::Last => "last",
        }
    }

    /// The decay factor, for the `decay` model only.
    pub fn decay(&self) -> Option<f64> {
        match self {
            CreditModel::Decay(d) => Some(*d),
            _ => None,
        }
    }

    /// The credits of `n` eligible shares on one path, lowest (direct) first.
    pub fn weights(&self, n: usize) -> Vec<f64> {
        let mut w = vec![0.0; n];
        if n == 0 {
            return w;
        }
        match *self {
            CreditModel::Full => w.fill(1.0),
            CreditModel::Equal => w.fill(1.0 / n as f64),
            CreditModel::Decay(d) => {
                let mut x = 1.0;
                for v in &mut w {
                    *v = x;
                    x *= d;
                }
                let sum: f64 = w.iter().sum();
                w.iter_mut().for_each(|v| *v /= sum);
            }
            CreditModel::First => w[n - 1] = 1.0,
            CreditModel::Last => w[0] = 1.0,
        }
        w
    }
}

fn bad_decay(got: &str) -> CreditParamError {
    CreditParamError { param: "decay", message: format!("decay must be a number in (0, 1] (got {got:?})") }
}

/// Rounds to 6 decimals, so output does not depend on floating-point noise.
pub fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// A credited amount (or ratio) in responses: rounded to 6 decimals, and a JSON integer when
/// whole (so full-model credits stay `1`, not `1.0`).
#[derive(Debug, Clone, Copy, Default, PartialEq, PartialOrd)]
pub struct Amount(pub f64);

impl Amount {
    /// The value as served (rounded to 6 decimals).
    pub fn rounded(self) -> f64 {
        round6(self.0)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.rounded();
        if r.fract() == 0.0 && r.abs() < 9.0e15 {
            if r >= 0.0 { s.serialize_u64(r as u64) } else { s.serialize_i64(r as i64) }
        } else {
            s.serialize_f64(r)
        }
    }
}

/// Share codes to their index in `facts.shares`, and the parent links.
#[derive(Debug)]
pub(crate) struct ShareIndex<'a> {
    facts: &'a ShareFacts,
    by_code: HashMap<&'a str, usize>,
}

impl<'a> ShareIndex<'a> {
    pub(crate) fn new(facts: &'a ShareFacts) -> Self {
        let by_code = facts.shares.iter().enumerate().map(|(i, (s, _))| (s.code.as_str(), i)).collect();
        ShareIndex { facts, by_code }
    }

    /// The index of a code's share.
    pub(crate) fn get(&self, code: &str) -> Option<usize> {
        self.by_code.get(code).copied()
    }

    /// The index of a share's parent share, when it is stored.
    pub(crate) fn parent_of(&self, i: usize) -> Option<usize> {
        self.facts.shares[i].0.parent_code.as_deref().and_then(|p| self.get(p)).filter(|&p| p != i)
    }

    /// The eligible shares (sharer ≠ `registrant`) on the path from `code` up, lowest first.
    pub(crate) fn eligible_path(&self, code: &str, registrant: &str) -> Vec<usize> {
        let mut path = Vec::new();
        let mut at = self.get(code);
        let mut seen = HashSet::new();
        for _ in 0..MAX_DEPTH {
            let Some(i) = at else { break };
            if !seen.insert(i) {
                break; // A cycle (never stored): each share counts once.
            }
            if self.facts.shares[i].1 != registrant {
                path.push(i);
            }
            at = self.parent_of(i);
        }
        path
    }
}

/// Credits under one model, by index into the facts.
#[derive(Debug, Clone, PartialEq)]
pub struct Credits {
    /// Each share's credit, indexed like `facts.shares`.
    pub per_share: Vec<f64>,
    /// Each registration's credited shares (indices into `facts.shares`, lowest first, with the
    /// credit), indexed like `facts.registrations`; empty when no eligible share is on its path.
    pub per_registration: Vec<Vec<(usize, f64)>>,
}

/// Credits of every share and registration under `model`. Registrations are summed in a
/// canonical order, so `per_share` is bit-for-bit the same however the facts are ordered.
pub fn compute(facts: &ShareFacts, model: CreditModel) -> Credits {
    let index = ShareIndex::new(facts);
    let mut per_share = vec![0.0; facts.shares.len()];
    let mut per_registration = vec![Vec::new(); facts.registrations.len()];
    let mut order: Vec<usize> = (0..facts.registrations.len()).collect();
    order.sort_by(|&a, &b| facts.registrations[a].cmp(&facts.registrations[b]));
    for r in order {
        let (code, registrant, ..) = &facts.registrations[r];
        let path = index.eligible_path(code, registrant);
        let weights = model.weights(path.len());
        for (&i, &w) in path.iter().zip(&weights) {
            per_share[i] += w;
        }
        per_registration[r] = path.into_iter().zip(weights).filter(|(_, w)| *w != 0.0).collect();
    }
    Credits { per_share, per_registration }
}

/// Every share code's credit under `model` (0 for codes credited nothing).
pub fn by_code(facts: &ShareFacts, model: CreditModel) -> BTreeMap<String, f64> {
    let credits = compute(facts, model);
    facts.shares.iter().zip(credits.per_share).map(|((s, _), c)| (s.code.clone(), c)).collect()
}

/// For each registration (indexed like `facts.registrations`), the credited share codes with
/// their credit, lowest share first.
pub fn per_registration(facts: &ShareFacts, model: CreditModel) -> Vec<Vec<(String, f64)>> {
    compute(facts, model)
        .per_registration
        .into_iter()
        .map(|v| v.into_iter().map(|(i, c)| (facts.shares[i].0.code.clone(), c)).collect())
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::store::ShareRow;

    pub(crate) fn share(
        code: &str,
        raw: &str,
        visitor: &str,
        parent: Option<&str>,
        at: i64,
    ) -> (ShareRow, String) {
        (
            ShareRow {
                code: code.into(),
                sharer: raw.into(),
                channel: Some("wechat".into()),
                target_url: None,
                parent_code: parent.map(String::from),
                conference_id: Some("c1".into()),
                created_at: at,
            },
            visitor.into(),
        )
    }

    fn reg(code: &str, who: &str) -> (String, String, String, String) {
        (code.into(), who.into(), "c1".into(), "2026-06-20".into())
    }

    /// A shares `a`; B re-shares `b` from `a`; A re-shares `c` from `b`; A and then C register
    /// via `c`.
    pub(crate) fn self_ancestor_facts() -> ShareFacts {
        ShareFacts {
            shares: vec![
                share("c", "A", "A", Some("b"), 3),
                share("a", "anon-a", "A", None, 1),
                share("b", "B", "B", Some("a"), 2),
            ],
            opens: vec![("a".into(), "B".into()), ("b".into(), "A".into()), ("c".into(), "C".into())],
            registrations: vec![reg("c", "A"), reg("c", "C")],
        }
    }

    /// Facts as the store gives them: unique codes, parents that never make a cycle (some
    /// missing), raw ids each resolving to one visitor, and duplicate opens and registrations.
    pub(crate) fn facts_strategy() -> impl Strategy<Value = ShareFacts> {
        (1usize..8)
            .prop_flat_map(|n| {
                (
                    prop::collection::vec(
                        (any::<Option<u8>>(), 0usize..3, any::<bool>(), 0usize..3, 0i64..3),
                        n,
                    ),
                    prop::collection::vec((0..=n, 0usize..4), 0..10),
                    prop::collection::vec((0..=n, 0usize..4, 0usize..2), 0..10),
                )
            })
            .prop_map(|(shares, opens, regs)| {
                let n = shares.len();
                let code = |i: usize| if i < n { format!("s{i}") } else { "missing".to_string() };
                let visitor = |v: usize| ["A", "B", "C", "D"][v].to_string();
                let conf = |c: usize| ["c1", "c2"].get(c).map(|c| c.to_string());
                let shares = shares
                    .into_iter()
                    .enumerate()
                    .map(|(i, (parent, v, phone, c, at))| {
                        let parent = parent.map(|p| if i > 0 { code(p as usize % (i + 1)) } else { code(n) });
                        let raw = if phone { format!("{}-phone", visitor(v)) } else { visitor(v) };
                        let mut s = share(&code(i), &raw, &visitor(v), None, at);
                        // `p % (i + 1) == i` points at the share itself: kept, as a self-loop.
                        s.0.parent_code = parent;
                        s.0.conference_id = conf(c);
                        s
                    })
                    .collect();
                ShareFacts {
                    shares,
                    opens: opens.into_iter().map(|(c, v)| (code(c), visitor(v))).collect(),
                    registrations: regs
                        .into_iter()
                        .map(|(c, v, k)| {
                            (code(c), visitor(v), ["c1", "c2"][k].to_string(), "2026-06-20".to_string())
                        })
                        .collect(),
                }
            })
    }

    pub(crate) fn shuffled(f: ShareFacts) -> impl Strategy<Value = (ShareFacts, ShareFacts)> {
        let parts = (
            Just(f.shares.clone()).prop_shuffle(),
            Just(f.opens.clone()).prop_shuffle(),
            Just(f.registrations.clone()).prop_shuffle(),
        );
        (
            Just(f),
            parts.prop_map(|(shares, opens, registrations)| ShareFacts { shares, opens, registrations }),
        )
    }

    fn rounded(v: Vec<(String, f64)>) -> Vec<(String, f64)> {
        v.into_iter().map(|(c, x)| (c, round6(x))).collect()
    }

    #[test]
    fn every_model_on_a_chain_where_the_registrant_is_an_ancestors_sharer() {
        let facts = self_ancestor_facts();
        let s = |x: &str| x.to_string();
        let cases = [
            (CreditModel::Full, vec![(s("c"), 1.0), (s("b"), 1.0), (s("a"), 1.0)], [1.0, 2.0, 1.0]),
            (
                CreditModel::Equal,
                vec![(s("c"), 0.333333), (s("b"), 0.333333), (s("a"), 0.333333)],
                [1.0 / 3.0, 4.0 / 3.0, 1.0 / 3.0],
            ),
            (
                CreditModel::Decay(0.5),
                vec![(s("c"), 0.571429), (s("b"), 0.285714), (s("a"), 0.142857)],
                [1.0 / 7.0, 1.0 + 2.0 / 7.0, 4.0 / 7.0],
            ),
            (CreditModel::First, vec![(s("a"), 1.0)], [1.0, 1.0, 0.0]),
            (CreditModel::Last, vec![(s("c"), 1.0)], [0.0, 1.0, 1.0]),
        ];
        for (model, c_reg, [a, b, c]) in cases {
            let regs = per_registration(&facts, model);
            // A's own registration via `c` credits only B's `b`, whatever the model.
            assert_eq!(regs[0], vec![(s("b"), 1.0)], "{model:?}");
            assert_eq!(rounded(regs[1].clone()), c_reg, "{model:?}");
            let codes = by_code(&facts, model);
            let got: Vec<f64> = ["a", "b", "c"].iter().map(|k| round6(codes[*k])).collect();
            assert_eq!(got, vec![round6(a), round6(b), round6(c)], "{model:?}");
        }
    }

    #[test]
    fn decay_one_is_equal_and_weights_sum_to_one() {
        assert_eq!(CreditModel::Decay(1.0).weights(4), CreditModel::Equal.weights(4));
        for model in [CreditModel::Equal, CreditModel::Decay(0.3), CreditModel::First, CreditModel::Last] {
            for n in 1..6 {
                assert!((model.weights(n).iter().sum::<f64>() - 1.0).abs() < 1e-12, "{model:?} {n}");
            }
        }
        assert!(CreditModel::Full.weights(0).is_empty());
    }

    #[test]
    fn parameters_parse_with_defaults_and_name_what_is_wrong() {
        assert_eq!(CreditModel::from_query(None, None), Ok(CreditModel::Full));
        assert_eq!(CreditModel::from_query(Some("decay"), None), Ok(CreditModel::Decay(0.5)));
        assert_eq!(CreditModel::from_query(Some("decay"), Some("0.25")), Ok(CreditModel::Decay(0.25)));
        assert_eq!(CreditModel::from_query(Some("decay"), Some("1")), Ok(CreditModel::Decay(1.0)));
        assert_eq!(CreditModel::from_query(Some("last"), Some("0.9")), Ok(CreditModel::Last));
        let e = CreditModel::from_query(Some("linear"), None).unwrap_err();
        assert_eq!(e.param, "credit");
        assert!(e.message.contains("full, equal, decay, first, last"), "{}", e.message);
        for bad in ["0", "1.5", "-0.2", "abc", "NaN", "inf"] {
            let e = CreditModel::from_query(Some("decay"), Some(bad)).unwrap_err();
            assert_eq!(e.param, "decay", "{bad}");
            assert!(e.to_string().starts_with("decay must be a number in (0, 1]"), "{e}");
        }
    }

    #[test]
    fn amounts_serialise_as_integers_when_whole() {
        let json = serde_json::to_string(&[Amount(1.0), Amount(2.0 / 3.0), Amount(0.0), Amount(1.0 - 1e-12)]);
        assert_eq!(json.unwrap(), "[1,0.666667,0,1]");
    }
}
