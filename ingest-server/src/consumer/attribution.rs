//! Share attribution while consuming: stores share, open and registration facts, and keeps
//! each registration's "credited to at least one share" flag (and so the daily
//! `share_conversions`) exact whatever order the facts arrive in.
//!
//! A registration with code `c` is credited when some share on the path from `c` up to its
//! root was shared by a visitor other than the registrant. That can change when a share on the
//! path arrives (re-checked for the registrations below it) or when identities merge
//! (re-checked for the merged visitor's registrations and those below their shares).

use std::collections::HashSet;

use crate::store::{DailyField, DayKey, RegistrationRow, ShareRow, StoreError, StoreTx, StoredEvent};

use super::prop;

/// Longest share chain followed (a guard; parent links never form cycles).
pub const MAX_DEPTH: usize = 1000;

/// Whether a registration by `registrant` with `code` is credited to at least one share.
pub fn credited(
    tx: &mut dyn StoreTx,
    project: &str,
    code: &str,
    registrant: &str,
) -> Result<bool, StoreError> {
    let visitor = tx.resolve(project, registrant)?;
    let mut code = code.to_string();
    for _ in 0..MAX_DEPTH {
        let Some(share) = tx.share(project, &code)? else { return Ok(false) };
        if tx.resolve(project, &share.sharer)? != visitor {
            return Ok(true);
        }
        match share.parent_code {
            Some(parent) => code = parent,
            None => return Ok(false),
        }
    }
    Ok(false)
}

/// A `registration`: counted, stored, and credited when its code leads to someone else's share.
pub fn on_registration(
    tx: &mut dyn StoreTx,
    project: &str,
    e: &StoredEvent<'_>,
    person: &str,
    key: DayKey,
) -> Result<(), StoreError> {
    tx.deferred().bump_daily(project, &key, DailyField::Registrations, 1)?;
    let code = e.attribution.or_else(|| prop(e, "attribution")).filter(|c| !c.is_empty());
    let credited = match code {
        Some(code) => credited(tx, project, code, person)?,
        None => false,
    };
    if credited {
        tx.deferred().bump_daily(project, &key, DailyField::ShareConversions, 1)?;
    }
    tx.insert_registration(
        project,
        &RegistrationRow {
            event_id: e.event_id.clone(),
            registrant: person.to_string(),
            key,
            code: code.map(String::from),
            credited,
        },
    )
}

/// A `share`: stored under its parent unless that would make the code its own ancestor; the
/// registrations below it are re-checked. A share event without a conference takes its
/// parent's, when the parent is stored with one. Returns the conference the share counts in.
pub fn on_share(
    tx: &mut dyn StoreTx,
    project: &str,
    e: &StoredEvent<'_>,
    person: &str,
) -> Result<Option<String>, StoreError> {
    let own = e.conference_id.filter(|c| !c.is_empty()).map(String::from);
    let Some(code) = prop(e, "share_code") else { return Ok(own) };
    let mut parent = prop(e, "parent_share_code").map(String::from);
    if let Some(p) = parent.clone() {
        if would_cycle(tx, project, code, &p)? {
            tracing::warn!(project, code, parent = %p, "share parent link refused: it would make a cycle");
            parent = None;
        }
    }
    let conference = match (own, &parent) {
        (None, Some(p)) => tx.share(project, p)?.and_then(|s| s.conference_id),
        (own, _) => own,
    };
    let share = ShareRow {
        code: code.to_string(),
        sharer: person.to_string(),
        channel: prop(e, "channel").map(String::from),
        target_url: prop(e, "target_url").map(String::from),
        parent_code: parent,
        conference_id: conference.clone(),
        created_at: e.server_ts,
    };
    if !tx.insert_share(project, &share)? {
        return Ok(conference); // The first share of a code wins.
    }
    let below = tx.share_subtree(project, code)?;
    let regs = tx.registrations_with_codes(project, &below)?;
    recheck(tx, project, regs)?;
    Ok(conference)
}

/// Whether `code` is `parent` or one of its ancestors.
fn would_cycle(tx: &mut dyn StoreTx, project: &str, code: &str, parent: &str) -> Result<bool, StoreError> {
    let mut current = parent.to_string();
    for _ in 0..MAX_DEPTH {
        if current == code {
            return Ok(true);
        }
        match tx.share(project, &current)?.and_then(|s| s.parent_code) {
            Some(p) => current = p,
            None => return Ok(false),
        }
    }
    Ok(true)
}

/// Re-checks the registrations a merge into `root` may affect.
pub fn recheck_visitor(tx: &mut dyn StoreTx, project: &str, root: &str) -> Result<(), StoreError> {
    let members = tx.identity_members(project, root)?;
    let mut regs = tx.registrations_by(project, &members)?;
    let mut codes = HashSet::new();
    for code in tx.shares_by(project, &members)? {
        codes.extend(tx.share_subtree(project, &code)?);
    }
    let codes: Vec<String> = codes.into_iter().collect();
    regs.extend(tx.registrations_with_codes(project, &codes)?);
    recheck(tx, project, regs)
}

fn recheck(tx: &mut dyn StoreTx, project: &str, regs: Vec<RegistrationRow>) -> Result<(), StoreError> {
    let mut seen = HashSet::new();
    for reg in regs {
        if !seen.insert(reg.event_id.clone()) {
            continue;
        }
        let Some(code) = &reg.code else { continue };
        let now = credited(tx, project, code, &reg.registrant)?;
        if now != reg.credited {
            tx.set_credited(project, &reg.event_id, now)?;
            tx.deferred().bump_daily(
                project,
                &reg.key,
                DailyField::ShareConversions,
                if now { 1 } else { -1 },
            )?;
        }
    }
    Ok(())
}
