//! Starting an engine from what a driver stored.

use std::collections::HashSet;

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
        let mut seen = HashSet::new();
        for record in &snapshot.events {
            match read_event_header(record) {
                None => report.corrupt += 1,
                Some((id, _)) if !seen.insert(id) => report.duplicates += 1,
                Some((id, timestamp)) => engine.batcher.push(id, timestamp, now, record.clone()),
            }
        }
        engine.stats.corrupt_records = report.corrupt as u64;
        let before = engine.batcher.waiting();
        if engine.identity.opted_out {
            let purged = engine.batcher.remove_waiting(|_| true);
            engine.dropped(purged, DropReason::OptedOut);
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
}
