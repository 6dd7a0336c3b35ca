//! The unsent-event queue and the batches cut from it.
//!
//! Events wait in `queue` in tracking order. A batch is cut from its front when a flush is due
//! (threshold, time window, explicit flush, shutdown), within the count and byte limits. A batch
//! keeps its events across retries; a 413 splits it into halves that go back to the front, so
//! delivery order is tracking order when one batch is in flight at a time.

pub(crate) mod retry;

use std::collections::VecDeque;

use core::time::Duration;

use crate::event::EventId;
use crate::protocol::BATCH_OVERHEAD_BYTES;
use crate::time::Timestamp;

/// Identifies one request handed to the driver, to match its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchId(pub(crate) u64);

/// One encoded event waiting to be delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueuedEvent {
    pub id: EventId,
    /// Client time the event happened (for the maximum age).
    pub timestamp: Timestamp,
    /// When it entered the queue (for the flush window).
    pub queued_at: Timestamp,
    /// Tracking order, for flush tickets.
    pub seq: u64,
    /// The event as wire JSON.
    pub json: String,
}

/// Events sent (or to be re-sent) together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Batch {
    pub id: BatchId,
    pub events: Vec<QueuedEvent>,
    /// In flight when the user opted out: if its send fails, it is dropped, never retried, even
    /// when the user has opted in again since.
    pub purged: bool,
}

/// Limits for cutting one batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_events: usize,
    pub max_bytes: usize,
}

/// The queue, batches waiting to be (re)sent, and batches in flight.
#[derive(Debug, Default)]
pub(crate) struct Batcher {
    pub queue: VecDeque<QueuedEvent>,
    /// Split halves and batches waiting for their retry, sent before the queue. The next one
    /// to send is the *last*: a stack, so that no `VecDeque` of batches is compiled in (it
    /// holds one or two batches, and the browser build pays for every generic instance).
    pub ready: Vec<Batch>,
    pub in_flight: Vec<Batch>,
    next_batch: u64,
    next_seq: u64,
    /// Everything tracked up to this sequence number is to be sent without waiting.
    pub flush_through: u64,
}

impl Batcher {
    /// Events not yet delivered and not in flight.
    pub fn waiting(&self) -> usize {
        self.queue.len() + self.ready.iter().map(|b| b.events.len()).sum::<usize>()
    }

    /// Events in requests awaiting an outcome.
    pub fn in_flight_events(&self) -> usize {
        self.in_flight.iter().map(|b| b.events.len()).sum()
    }

    /// Sequence number of the last event tracked (0 before any).
    pub fn last_seq(&self) -> u64 {
        self.next_seq
    }

    /// Adds a newly tracked (or restored) event at the back.
    pub fn push(&mut self, id: EventId, timestamp: Timestamp, queued_at: Timestamp, json: String) {
        self.next_seq += 1;
        self.queue.push_back(QueuedEvent { id, timestamp, queued_at, seq: self.next_seq, json });
    }

    /// Removes the oldest waiting event (never one in flight), for the overflow policy.
    pub fn pop_oldest(&mut self) -> Option<QueuedEvent> {
        if let Some(batch) = self.ready.last_mut() {
            let e = batch.events.remove(0);
            if batch.events.is_empty() {
                self.ready.pop();
            }
            return Some(e);
        }
        self.queue.pop_front()
    }

    /// Whether the queue should be cut into a batch now.
    pub fn flush_due(&self, now: Timestamp, flush_at: usize, interval: Duration, draining: bool) -> bool {
        match self.queue.front() {
            None => false,
            Some(oldest) => {
                draining
                    || self.queue.len() >= flush_at
                    || oldest.seq <= self.flush_through
                    || now >= oldest.queued_at.saturating_add(interval)
            }
        }
    }

    /// When the time window of the oldest queued event ends. An event queued "in the future"
    /// (the clock went backwards) is treated as queued now, so a backwards jump delays a flush
    /// by at most one interval.
    pub fn window_deadline(&mut self, now: Timestamp, interval: Duration) -> Option<Timestamp> {
        let oldest = self.queue.front_mut()?;
        if oldest.queued_at > now {
            oldest.queued_at = now;
        }
        Some(oldest.queued_at.saturating_add(interval))
    }

    /// Takes the next batch to send: a waiting retry or split first, else a new cut from the
    /// queue when `cut` allows. The batch is moved in flight.
    pub fn next_batch(&mut self, limits: Limits, cut: bool) -> Option<&Batch> {
        let batch = match self.ready.pop() {
            Some(b) if batch_fits(&b.events, limits) => b,
            Some(b) => {
                // Cut under tighter limits (a beacon) than when it was made: send its front.
                let (front, back) = split_to_fit(b.events, limits);
                if !back.is_empty() {
                    self.ready.push(Batch { id: b.id, events: back, purged: false });
                }
                let id = self.new_id();
                Batch { id, events: front, purged: false }
            }
            None if cut && !self.queue.is_empty() => {
                let mut events = Vec::new();
                let mut bytes = BATCH_OVERHEAD_BYTES;
                while let Some(e) = self.queue.front() {
                    let extra = e.json.len() + 1;
                    if !events.is_empty()
                        && (events.len() == limits.max_events || bytes + extra > limits.max_bytes)
                    {
                        break;
                    }
                    bytes += extra;
                    events.extend(self.queue.pop_front());
                }
                let id = self.new_id();
                Batch { id, events, purged: false }
            }
            None => return None,
        };
        self.in_flight.push(batch);
        self.in_flight.last()
    }

    fn new_id(&mut self) -> BatchId {
        self.next_batch += 1;
        BatchId(self.next_batch)
    }

    /// Takes a batch out of flight when its outcome arrives.
    pub fn complete(&mut self, id: BatchId) -> Option<Batch> {
        let i = self.in_flight.iter().position(|b| b.id == id)?;
        Some(self.in_flight.remove(i))
    }

    /// Puts a batch back at the front, to be sent before anything else.
    pub fn requeue_front(&mut self, batch: Batch) {
        if !batch.events.is_empty() {
            self.ready.push(batch);
        }
    }

    /// Splits a batch in two halves, both back at the front in order, under fresh ids.
    pub fn split_front(&mut self, mut batch: Batch) {
        let back = batch.events.split_off(batch.events.len() / 2);
        let back_id = self.new_id();
        let front_id = self.new_id();
        self.ready.push(Batch { id: back_id, events: back, purged: batch.purged });
        self.ready.push(Batch { id: front_id, events: batch.events, purged: batch.purged });
    }

    /// Removes every waiting event (not those in flight) matching `pred`. A `dyn` predicate:
    /// one copy of the loops for expiry and opt-out alike (0.3 KB gzip in the browser build),
    /// and neither is a hot path.
    pub fn remove_waiting(&mut self, pred: &dyn Fn(&QueuedEvent) -> bool) -> Vec<QueuedEvent> {
        let mut removed = Vec::new();
        let mut keep = |e: QueuedEvent| {
            if pred(&e) {
                removed.push(e);
                None
            } else {
                Some(e)
            }
        };
        for batch in self.ready.iter_mut().rev() {
            batch.events = std::mem::take(&mut batch.events).into_iter().filter_map(&mut keep).collect();
        }
        self.ready.retain(|b| !b.events.is_empty());
        self.queue = std::mem::take(&mut self.queue).into_iter().filter_map(keep).collect();
        removed
    }

    /// Whether every event up to sequence `seq` has left (delivered or dropped).
    pub fn settled_through(&self, seq: u64) -> bool {
        let pending = |e: &QueuedEvent| e.seq <= seq;
        !self.queue.iter().any(pending)
            && !self.ready.iter().chain(&self.in_flight).any(|b| b.events.iter().any(pending))
    }
}

fn batch_fits(events: &[QueuedEvent], limits: Limits) -> bool {
    events.len() <= limits.max_events
        && events.iter().map(|e| e.json.len() + 1).sum::<usize>() + BATCH_OVERHEAD_BYTES <= limits.max_bytes
}

fn split_to_fit(events: Vec<QueuedEvent>, limits: Limits) -> (Vec<QueuedEvent>, Vec<QueuedEvent>) {
    let mut bytes = BATCH_OVERHEAD_BYTES;
    let mut take = 0;
    for e in &events {
        let extra = e.json.len() + 1;
        if take > 0 && (take == limits.max_events || bytes + extra > limits.max_bytes) {
            break;
        }
        bytes += extra;
        take += 1;
    }
    let mut front = events;
    let back = front.split_off(take);
    (front, back)
}
