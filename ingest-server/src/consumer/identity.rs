//! Identity: `identify` and `alias` link ids; a visitor is the root its ids resolve to.
//!
//! Links always join two roots (the first id's root goes under the second's), and every id
//! under the old root moves under the new one, so resolving is one lookup. Page-view visitor
//! rows are re-keyed and `uv` fixed where the two were both counted on a day; registrations
//! whose credit may change are re-checked.

use crate::store::{DailyField, StoreError, StoreTx};

use super::attribution;

/// Makes `from` and `to` the same visitor (the visitor of `to`).
pub fn merge(tx: &mut dyn StoreTx, project: &str, from: &str, to: &str) -> Result<(), StoreError> {
    let from_root = tx.resolve(project, from)?;
    let to_root = tx.resolve(project, to)?;
    if from_root == to_root {
        return Ok(());
    }
    tx.link_identity(project, &from_root, &to_root)?;
    for key in tx.rekey_daily_visitors(project, &from_root, &to_root)? {
        tx.deferred().bump_daily(project, &key, DailyField::Uv, -1)?;
    }
    attribution::recheck_visitor(tx, project, &to_root)
}
