//! Starting an engine from what a driver stored.

use super::{DropReason, Engine};
use crate::attribution::Attribution;
use crate::config::Config;
use crate::entropy::Entropy;
use crate::identity::{Identity, Session};
use crate::persist::{Snapshot, decode_state};
use crate::protocol::read_event_header;
use crate::time::Timestamp;

/// What [`Engine::restore`] found in storage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Events restored to the queue.
    pub restored: usize,
    /// Records skipped because they were torn or corrupt.
    pub corrupt: usize,
    /// Records skipped because an earlier record had the same event id.
    pub duplicates: usize,
    /// Restored events dropped at once: too old, or over `max_queue`.
    pub dropped: usize,
    /// Whether the state was missing, corrupt or from a newer version, so a fresh identity
    /// was made.
    pub fresh_identity: bool,
}

impl Engine {
    /// An engine continuing from stored state and events. Restored events keep their ids and
    /// timestamps and are sent at once (they are covered by a flush). Corrupt records are
    /// skipped and counted; dropped events are reported like any other drop. With persistence
    /// on, the resulting removals and state are emitted for the driver to apply.
    pub fn restore(
        config: Config,
        snapshot: &Snapshot,
        now: Timestamp,
        rng: &mut impl Entropy,
    ) -> (Engine, RestoreReport) {
        let mut report = RestoreReport::default();
        let decoded = snapshot.state.as_deref().and_then(decode_state);
        report.fresh_identity = decoded.is_none();
        let (identity, session, attribution) = decoded
            .unwrap_or_else(|| (Identity::new(now, rng), Session::new(now, rng), Attribution::default()));
        let mut engine = Engine::assemble(config, identity, session, attribution, now);
        let mut seen = SeenIds::for_records(snapshot.events.len());
        for record in &snapshot.events {
            match read_event_header(record) {
                None => report.corrupt += 1,
                // Native byte order: any one-to-one map will do, and this one is a plain load.
                Some((id, _)) if !seen.insert(u128::from_ne_bytes(*id.as_uuid().as_bytes())) => {
                    report.duplicates += 1
                }
                Some((id, timestamp)) => engine.batcher.push(id, timestamp, now, record.clone()),
            }
        }
        engine.stats.corrupt_records = report.corrupt as u64;
        let before = engine.batcher.waiting();
        if engine.identity.opted_out {
            engine.purge_for_opt_out();
        }
        engine.expire(now);
        while engine.batcher.waiting() > engine.config.max_queue {
            let oldest: Vec<_> = engine.batcher.pop_oldest().into_iter().collect();
            engine.dropped(oldest, DropReason::QueueFull);
        }
        report.restored = engine.batcher.waiting();
        report.dropped = before - report.restored;
        let _ = engine.flush();
        engine.save_state();
        (engine, report)
    }

    /// Takes the identity, session and attribution from a state record that another engine
    /// sharing this storage saved (another tab of the same site), so that both go on as one
    /// user: an `identify`, `reset`, opt-out or share open in one applies in the other without
    /// a restart. Waiting events keep the identity they were tracked with, but an opt-out
    /// purges them here too. Codes either engine created stay remembered. Nothing is saved
    /// (the record is stored already). Returns false, changing nothing, for a record that is
    /// corrupt or from a newer version.
    pub fn adopt_state(&mut self, state: &str) -> bool {
        let Some((identity, mut session, mut attribution)) = decode_state(state) else {
            return false;
        };
        for code in std::mem::take(&mut self.attribution.own) {
            if !attribution.is_own(&code) {
                attribution.record_created(code);
            }
        }
        // The other engine may have saved its session activity up to a minute late.
        if session.id == self.session.id {
            session.last_activity = session.last_activity.max(self.session.last_activity);
        }
        self.session_saved_at = session.last_activity;
        self.identity = identity;
        self.session = session;
        self.attribution = attribution;
        if self.identity.opted_out {
            self.purge_for_opt_out();
        }
        true
    }
}

/// The event ids restore has seen, to skip a repeated record: a set with a size known up front
/// and no removals.
///
/// Written by hand (open addressing, linear probing) instead of a `HashSet`: the generic table
/// is 1.2 KB gzip of the browser package, the largest single piece this engine links. The
/// table is at most half full, and ids are mixed before use, so a probe is short; the keys are
/// this device's own records, so nobody chooses them to collide.
struct SeenIds {
    /// Ids, or 0 for an empty slot; a power of two long.
    slots: Vec<u128>,
    /// Whether the id 0 (the nil UUID, which marks empty slots) was seen.
    nil_seen: bool,
}

impl SeenIds {
    fn for_records(count: usize) -> Self {
        SeenIds { slots: vec![0; count.saturating_mul(2).next_power_of_two().max(8)], nil_seen: false }
    }

    /// Adds `id`; false when it was already there.
    fn insert(&mut self, id: u128) -> bool {
        if id == 0 {
            return !std::mem::replace(&mut self.nil_seen, true);
        }
        let mask = self.slots.len() - 1;
        // Fold and multiply (Fibonacci hashing), so ids alike in their low bits still spread.
        let folded = (id as u64 ^ (id >> 64) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut i = (folded >> 32) as usize & mask;
        loop {
            match self.slots[i] {
                0 => {
                    self.slots[i] = id;
                    return true;
                }
                seen if seen == id => return false,
                _ => i = (i + 1) & mask,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SeenIds;

    #[test]
    fn seen_ids_report_each_repeat_and_nothing_else() {
        let mut seen = SeenIds::for_records(1_000);
        // Ids alike in their low bits, the nil id, and repeats of each.
        let ids: Vec<u128> = (1..=1_000u128).map(|i| i << 64).chain([0, 7, u128::MAX]).collect();
        for &id in &ids {
            assert!(seen.insert(id), "{id:#x} is new");
        }
        for &id in &ids {
            assert!(!seen.insert(id), "{id:#x} was seen");
        }
        assert!(seen.slots.iter().filter(|s| **s != 0).count() <= seen.slots.len() / 2 + 1);
    }
}
