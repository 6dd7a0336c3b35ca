//! The state shared by client handles and the background thread: the engine under a short
//! mutex, the wake-up signal, and the file store.
//!
//! Lock order: the store lock, then the engine lock — never the other way round. The engine
//! lock is never held across IO: commands run on the engine and move its persistence ops to a
//! list; whoever then holds the store lock takes the whole list, in order, and writes it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use empmix_core::persist::PersistOp;
use empmix_core::{Engine, SeededEntropy, Stats, Timestamp};
use tokio::sync::Notify;

use crate::store::LogStore;

/// The wall clock as the engine wants it.
pub(crate) fn now() -> Timestamp {
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    Timestamp::from_unix_millis(u64::try_from(millis).unwrap_or(u64::MAX))
}

/// A generator seeded from the operating system (falling back to the clock and an address,
/// which is still unique enough for ids when the OS has no randomness to give).
pub(crate) fn seeded_entropy() -> SeededEntropy {
    let seed = getrandom::u64().unwrap_or_else(|_| {
        let local = 0u8;
        now().as_unix_millis() ^ (&raw const local as u64).rotate_left(32) ^ u64::from(std::process::id())
    });
    SeededEntropy::new(seed)
}

/// What the engine lock guards.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) engine: Engine,
    pub(crate) rng: SeededEntropy,
    /// The deadline the background thread's timer is set for (`None`: no timer). A command
    /// that makes the engine's next deadline earlier wakes the thread.
    pub(crate) armed: Option<Timestamp>,
    /// Persistence ops taken from the engine and not yet written, in order.
    pending_ops: Vec<PersistOp>,
}

impl Core {
    /// Moves the engine's persistence ops to the pending list; whether any are pending.
    pub(crate) fn collect_ops(&mut self) -> bool {
        while let Some(op) = self.engine.poll_persist() {
            self.pending_ops.push(op);
        }
        !self.pending_ops.is_empty()
    }

    /// Whether the background thread must look again because the engine's next deadline is
    /// earlier than its timer; records the new deadline when so.
    fn needs_wake(&mut self, now: Timestamp) -> bool {
        let Some(deadline) = self.engine.poll_timeout(now) else {
            return false;
        };
        if self.armed.is_some_and(|armed| armed <= deadline) {
            return false;
        }
        self.armed = Some(deadline);
        true
    }
}

/// The store and a reusable list for the ops being written.
#[derive(Debug)]
pub(crate) struct StoreSlot {
    pub(crate) log: LogStore,
    writing: Vec<PersistOp>,
    failures: u64,
}

/// Everything the handles and the background thread share.
#[derive(Debug)]
pub(crate) struct Shared {
    core: Mutex<Core>,
    /// Wakes the background thread.
    pub(crate) wake: Notify,
    store: Option<Mutex<StoreSlot>>,
    /// Events abandoned at shutdown or drop without persistence.
    lost: AtomicU64,
    /// Torn or corrupt records skipped when the store was opened.
    torn_records: u64,
    /// Log every tracked event at `debug` level.
    pub(crate) debug: bool,
}

impl Shared {
    pub(crate) fn new(
        engine: Engine,
        rng: SeededEntropy,
        store: Option<LogStore>,
        torn: bool,
        debug: bool,
    ) -> Self {
        Shared {
            core: Mutex::new(Core { engine, rng, armed: None, pending_ops: Vec::new() }),
            wake: Notify::new(),
            store: store.map(|log| Mutex::new(StoreSlot { log, writing: Vec::new(), failures: 0 })),
            lost: AtomicU64::new(0),
            torn_records: u64::from(torn),
            debug,
        }
    }

    /// The engine lock. A panic while it was held cannot leave the engine half-updated in a
    /// way that matters more than losing the client, so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_store(&self) -> Option<MutexGuard<'_, StoreSlot>> {
        self.store.as_ref().map(|s| s.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Whether events are persisted.
    pub(crate) fn persistent(&self) -> bool {
        self.store.is_some()
    }

    /// Runs a command on the engine under the lock, then writes its persistence ops (outside
    /// the engine lock) and wakes the background thread if the command made something due
    /// sooner. Never waits on the network.
    pub(crate) fn command<R>(&self, f: impl FnOnce(&mut Engine, Timestamp, &mut SeededEntropy) -> R) -> R {
        let now = now();
        let (result, persist, wake) = {
            let mut core = self.lock();
            let Core { engine, rng, .. } = &mut *core;
            let result = f(engine, now, rng);
            let persist = core.collect_ops();
            (result, persist, core.needs_wake(now))
        };
        if persist {
            self.write_pending();
        }
        if wake {
            self.wake.notify_one();
        }
        result
    }

    /// Writes every pending persistence op to the store, in order. A write error is logged
    /// (the events stay queued in memory and are still sent; counted as lost if the client
    /// stops before).
    pub(crate) fn write_pending(&self) {
        let Some(mut slot) = self.lock_store() else {
            return;
        };
        let slot = &mut *slot;
        std::mem::swap(&mut slot.writing, &mut self.lock().pending_ops);
        if slot.writing.is_empty() {
            return;
        }
        if let Err(error) = slot.log.apply(&slot.writing) {
            slot.failures += 1;
            if slot.failures.is_power_of_two() {
                tracing::warn!(%error, failures = slot.failures, "could not write to the persisted event log; events stay in memory only");
            }
        }
        slot.writing.clear();
    }

    /// Background upkeep: compacts the log when dead records dominate, and syncs it to disk
    /// when `sync` is set and anything was written. Returns whether written data still awaits
    /// a sync.
    pub(crate) fn maintain_store(&self, sync: bool) -> bool {
        let handle = {
            let Some(mut slot) = self.lock_store() else {
                return false;
            };
            if slot.log.needs_compaction() {
                if let Err(error) = slot.log.compact() {
                    tracing::warn!(%error, "could not compact the persisted event log");
                }
            }
            if !sync {
                return slot.log.is_dirty();
            }
            slot.log.take_sync_handle()
        };
        if let Some(file) = handle {
            if let Err(error) = file.sync_data() {
                tracing::warn!(%error, "could not sync the persisted event log");
            }
        }
        false
    }

    /// Writes what is pending, syncs, and releases the directory. Returns the events left in
    /// the store, and the events still queued that the store could not take (a full disk).
    pub(crate) fn close_store(&self) -> (usize, usize) {
        self.write_pending();
        let Some(mut slot) = self.lock_store() else {
            return (0, 0);
        };
        if let Err(error) = slot.log.close() {
            tracing::warn!(%error, "could not sync the persisted event log at close");
        }
        (slot.log.live_events(), slot.log.unwritten_events())
    }

    /// Counts events that will never be sent.
    pub(crate) fn add_lost(&self, n: u64) {
        self.lost.fetch_add(n, Ordering::Relaxed);
    }

    /// The engine's counters plus what only the driver knows.
    pub(crate) fn stats(&self) -> Stats {
        let mut stats = self.lock().engine.stats();
        stats.dropped.lost += self.lost.load(Ordering::Relaxed);
        stats.corrupt_records += self.torn_records;
        stats
    }
}
