//! The share attribution tree, computed at query time from stored facts, so it never depends
//! on the order events arrived in.

use std::collections::HashMap;

use serde::Serialize;

use super::attribution::MAX_DEPTH;
use crate::store::ShareFacts;

/// One share code in the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreeNode {
    /// The code.
    pub share_code: String,
    /// Distinct id of who shared it.
    pub sharer: String,
    /// Channel.
    pub channel: Option<String>,
    /// The shared URL.
    pub target_url: Option<String>,
    /// Conference of the share event.
    pub conference_id: Option<String>,
    /// Opens of this code by anyone but its sharer.
    pub opens: u64,
    /// Registrations carrying this code, by anyone but its sharer.
    pub direct_registrations: u64,
    /// Registrations at or below this code credited to this sharer (not the sharer's own).
    pub credited_conversions: u64,
    /// Codes re-shared from this one.
    pub children: Vec<TreeNode>,
}

/// The forest of share trees; with `conference_id`, only trees where a share or a credited
/// registration belongs to that conference.
pub fn build(facts: &ShareFacts, conference_id: Option<&str>) -> Vec<TreeNode> {
    let index: HashMap<&str, usize> =
        facts.shares.iter().enumerate().map(|(i, (s, _))| (s.code.as_str(), i)).collect();
    let n = facts.shares.len();
    let parent_of = |i: usize| -> Option<usize> {
        facts.shares[i].0.parent_code.as_deref().and_then(|p| index.get(p).copied()).filter(|&p| p != i)
    };
    let mut opens = vec![0u64; n];
    for (code, opener) in &facts.opens {
        if let Some(&i) = index.get(code.as_str()) {
            if facts.shares[i].1 != *opener {
                opens[i] += 1;
            }
        }
    }
    let mut direct = vec![0u64; n];
    let mut credited = vec![0u64; n];
    let mut conference_hit = vec![false; n];
    for (i, (share, _)) in facts.shares.iter().enumerate() {
        conference_hit[i] = conference_id.is_none() || share.conference_id.as_deref() == conference_id;
    }
    for (code, registrant, conference) in &facts.registrations {
        let Some(&start) = index.get(code.as_str()) else { continue };
        if facts.shares[start].1 != *registrant {
            direct[start] += 1;
        }
        let mut at = Some(start);
        let mut any = false;
        for _ in 0..MAX_DEPTH {
            let Some(i) = at else { break };
            if facts.shares[i].1 != *registrant {
                credited[i] += 1;
                any = true;
            }
            at = parent_of(i);
        }
        if any && Some(conference.as_str()) == conference_id {
            conference_hit[start] = true;
        }
    }
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut roots = Vec::new();
    for i in 0..n {
        match parent_of(i) {
            Some(p) => children[p].push(i),
            None => roots.push(i),
        }
    }
    for c in &mut children {
        c.sort_by_key(|&i| (facts.shares[i].0.created_at, i));
    }
    roots.sort_by_key(|&i| (facts.shares[i].0.created_at, i));
    let node = |i: usize, kids: Vec<TreeNode>| {
        let s = &facts.shares[i].0;
        TreeNode {
            share_code: s.code.clone(),
            sharer: s.sharer.clone(),
            channel: s.channel.clone(),
            target_url: s.target_url.clone(),
            conference_id: s.conference_id.clone(),
            opens: opens[i],
            direct_registrations: direct[i],
            credited_conversions: credited[i],
            children: kids,
        }
    };
    // Build bottom-up without recursion: post-order over each root's subtree.
    let mut out = Vec::new();
    for root in roots {
        let mut order = Vec::new();
        let mut stack = vec![(root, 0usize)];
        while let Some((i, depth)) = stack.pop() {
            order.push(i);
            if depth < MAX_DEPTH {
                stack.extend(children[i].iter().rev().map(|&c| (c, depth + 1)));
            }
        }
        if !order.iter().any(|&i| conference_hit[i]) {
            continue;
        }
        let mut built: HashMap<usize, TreeNode> = HashMap::new();
        for &i in order.iter().rev() {
            let kids = children[i].iter().filter_map(|c| built.remove(c)).collect();
            built.insert(i, node(i, kids));
        }
        if let Some(t) = built.remove(&root) {
            out.push(t);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ShareRow;

    fn share(code: &str, sharer: &str, parent: Option<&str>, at: i64) -> (ShareRow, String) {
        (
            ShareRow {
                code: code.into(),
                sharer: sharer.into(),
                channel: Some("wechat".into()),
                target_url: None,
                parent_code: parent.map(String::from),
                conference_id: Some("c1".into()),
                created_at: at,
            },
            sharer.into(),
        )
    }

    #[test]
    fn conversions_credit_every_other_sharer_up_the_chain() {
        let facts = ShareFacts {
            shares: vec![share("b", "B", Some("a"), 2), share("a", "A", None, 1)],
            opens: vec![("a".into(), "B".into()), ("a".into(), "A".into()), ("b".into(), "C".into())],
            registrations: vec![("b".into(), "C".into(), "c1".into()), ("b".into(), "B".into(), "c1".into())],
        };
        let forest = build(&facts, Some("c1"));
        assert_eq!(forest.len(), 1);
        let a = &forest[0];
        assert_eq!(
            (a.share_code.as_str(), a.opens, a.direct_registrations, a.credited_conversions),
            ("a", 1, 0, 2)
        );
        let b = &a.children[0];
        assert_eq!(
            (b.share_code.as_str(), b.opens, b.direct_registrations, b.credited_conversions),
            ("b", 1, 1, 1)
        );
        assert!(build(&facts, Some("other")).is_empty());
    }
}
