//! What the engine reports: counters, and per-event outcomes when asked for.

use crate::event::EventId;
use crate::protocol::RejectReason;

/// Why an event was dropped without being delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The queue was full (`max_queue`) and the overflow policy chose this event.
    QueueFull,
    /// The event was older than `max_event_age` before it could be delivered.
    Expired,
    /// The event alone is larger than a request may be (at `track`, or a 413 for a single
    /// event).
    TooLarge,
    /// The server accepted the batch but refused this event.
    Rejected(RejectReason),
    /// The server refused the whole batch with this status (a 4xx other than 408, 413, 429).
    RejectedBatch(u16),
    /// The user opted out while the event waited.
    OptedOut,
    /// The event was never handed to the network before the process ended (counted by
    /// drivers at shutdown without persistence).
    Lost,
}

/// Dropped-event counters by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DroppedCounts {
    /// See [`DropReason::QueueFull`].
    pub queue_full: u64,
    /// See [`DropReason::Expired`].
    pub expired: u64,
    /// See [`DropReason::TooLarge`].
    pub too_large: u64,
    /// See [`DropReason::Rejected`] and [`DropReason::RejectedBatch`].
    pub rejected: u64,
    /// See [`DropReason::OptedOut`].
    pub opted_out: u64,
    /// See [`DropReason::Lost`].
    pub lost: u64,
}

impl DroppedCounts {
    /// All drops.
    pub fn total(&self) -> u64 {
        self.queue_full + self.expired + self.too_large + self.rejected + self.opted_out + self.lost
    }

    pub(crate) fn add(&mut self, reason: DropReason, n: u64) {
        let slot = match reason {
            DropReason::QueueFull => &mut self.queue_full,
            DropReason::Expired => &mut self.expired,
            DropReason::TooLarge => &mut self.too_large,
            DropReason::Rejected(_) | DropReason::RejectedBatch(_) => &mut self.rejected,
            DropReason::OptedOut => &mut self.opted_out,
            DropReason::Lost => &mut self.lost,
        };
        *slot += n;
    }
}

/// A snapshot of the engine's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events waiting to be sent (including batches waiting for a retry).
    pub queued: usize,
    /// Events in requests awaiting an outcome.
    pub in_flight: usize,
    /// Events delivered (2xx and not rejected).
    pub delivered: u64,
    /// Event sends that failed and were scheduled again (one per event per failure).
    pub retried: u64,
    /// Requests handed to the driver.
    pub requests: u64,
    /// Events dropped, by reason.
    pub dropped: DroppedCounts,
    /// Stored records skipped at restore because they were torn or corrupt.
    pub corrupt_records: u64,
}

/// A per-event outcome, queued when `report_outcomes` is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// These events were delivered.
    Delivered {
        /// Their ids.
        ids: Vec<EventId>,
    },
    /// These events were dropped.
    Dropped {
        /// Their ids.
        ids: Vec<EventId>,
        /// Why.
        reason: DropReason,
    },
}
