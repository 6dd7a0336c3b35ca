//! Outputs to the network and the outcomes reported back.

use core::time::Duration;

use super::{DropReason, Engine};
use crate::batching::{BatchId, Limits};
use crate::config::{MAX_RETRY_AFTER, MIN_BATCH_BYTES};
use crate::entropy::Entropy;
use crate::protocol::{StatusClass, classify_status, encode_batch, rejected_events};
use crate::time::Timestamp;

/// A request for the driver to send: `POST` the body to the ingest endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Hand this back to [`Engine::handle_response`] with the outcome.
    pub batch: BatchId,
    /// The JSON body (`Content-Type: application/json`); the driver may gzip it.
    pub body: String,
    /// Events in the body.
    pub events: usize,
}

/// The outcome of a [`Transmit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response<'a> {
    /// The server answered.
    Status {
        /// HTTP status.
        status: u16,
        /// The `Retry-After` header, if any, as a delay.
        retry_after: Option<Duration>,
        /// The response body (may be empty).
        body: &'a str,
    },
    /// No answer: connection refused or reset, DNS failure, timeout. Retried.
    Failed,
}

/// How often waiting events are checked for their maximum age.
const EXPIRY_CHECK_INTERVAL: Duration = Duration::from_secs(60);

impl Engine {
    /// The next request to send, if one is due at `now`. Call until it returns `None` after
    /// every input. Due means: a batch waiting for its retry whose backoff has passed, or a
    /// queue that reached `flush_at`, whose oldest event waited `flush_interval`, that an
    /// explicit flush covers, or a shutdown. At most `max_in_flight` requests are outstanding.
    pub fn poll_transmit(&mut self, now: Timestamp) -> Option<Transmit> {
        self.expire(now);
        if self.batcher.in_flight.len() >= self.config.max_in_flight {
            return None;
        }
        let longest = self.config.backoff_cap.max(MAX_RETRY_AFTER);
        if !self.backoff.ready(now, longest) {
            return None;
        }
        let cut =
            self.batcher.flush_due(now, self.flush_at(now), self.config.flush_interval, self.shutting_down);
        let limits =
            Limits { max_events: self.config.max_batch_events, max_bytes: self.config.max_batch_bytes };
        self.take_transmit(now, limits, cut)
    }

    /// Everything still waiting, for a page or app that is about to be suspended or closed:
    /// ignores thresholds, the window, backoff and the in-flight limit, and cuts bodies of at
    /// most `max_bytes` (for example [`crate::protocol::BEACON_MAX_BYTES`]). Call until `None`.
    /// Report each outcome if one arrives; events whose outcome never arrives stay persisted
    /// and are sent again by the next start (the backend deduplicates).
    pub fn poll_unload_transmit(&mut self, now: Timestamp, max_bytes: usize) -> Option<Transmit> {
        self.expire(now);
        // Never below one maximal event, so every event fits in some body.
        let max_bytes = max_bytes.min(self.config.max_batch_bytes).max(MIN_BATCH_BYTES);
        let limits = Limits { max_events: self.config.max_batch_events, max_bytes };
        self.take_transmit(now, limits, true)
    }

    /// The queue's length that cuts a batch at `now`: `flush_at`, or a full batch while the
    /// send gap after the last request runs.
    fn flush_at(&self, now: Timestamp) -> usize {
        if self.in_gap(now) {
            self.config.max_batch_events.max(self.config.flush_at)
        } else {
            self.config.flush_at
        }
    }

    /// Whether the send gap after the last request still runs.
    fn in_gap(&self, now: Timestamp) -> bool {
        now < self.gap_until
    }

    fn take_transmit(&mut self, now: Timestamp, limits: Limits, cut: bool) -> Option<Transmit> {
        let batch = self.batcher.next_batch(limits, cut)?;
        self.stats.requests += 1;
        self.gap_until = now.saturating_add(self.config.send_gap);
        Some(Transmit {
            batch: batch.id,
            body: encode_batch(
                now,
                batch.events.iter().map(|e| e.json.as_str()),
                self.config.shared_context.then_some(self.context_json.as_str()),
            ),
            events: batch.events.len(),
        })
    }

    /// When the driver should call [`Engine::handle_timeout`] next, if anything is waiting on
    /// time: the end of a backoff, of the send gap for a queue past `flush_at`, or the time
    /// window of the oldest queued event. `None` means nothing waits on a timer (an idle
    /// queue, or a full in-flight window).
    pub fn poll_timeout(&mut self, now: Timestamp) -> Option<Timestamp> {
        if self.batcher.in_flight.len() >= self.config.max_in_flight {
            return None;
        }
        let flush_now = !self.batcher.ready.is_empty()
            || self.batcher.flush_due(
                now,
                self.flush_at(now),
                self.config.flush_interval,
                self.shutting_down,
            );
        let window =
            if flush_now { Some(now) } else { self.batcher.window_deadline(now, self.config.flush_interval) };
        let window = window?;
        // A queue held back only by the gap is due when it ends.
        let window = if self.in_gap(now) && self.batcher.queue.len() >= self.config.flush_at {
            window.min(self.gap_until)
        } else {
            window
        };
        Some(match self.backoff.until {
            Some(until) => window.max(until),
            None => window,
        })
    }

    /// The timer set from [`Engine::poll_timeout`] fired. Drops expired events; then call
    /// [`Engine::poll_transmit`].
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.expire(now);
    }

    /// Reports what happened to a [`Transmit`]. 2xx: delivered, except the events the body
    /// lists as rejected. 408, 429, 5xx and failures: the same batch is retried after a backoff
    /// (full jitter, at least `Retry-After`). 413: the batch is split in half; a single event
    /// is dropped as too large. Other statuses: the batch is dropped and reported.
    pub fn handle_response(
        &mut self,
        now: Timestamp,
        rng: &mut impl Entropy,
        batch: BatchId,
        response: Response<'_>,
    ) {
        let Some(batch) = self.batcher.complete(batch) else {
            return;
        };
        let (status, retry_after, body) = match response {
            Response::Status { status, retry_after, body } => (status, retry_after, body),
            Response::Failed => (0, None, ""),
        };
        let class = if status == 0 { StatusClass::Retry } else { classify_status(status) };
        match class {
            StatusClass::Delivered => {
                self.backoff.succeed();
                let mut events = batch.events;
                for rejection in rejected_events(body).iter().rev() {
                    if rejection.index < events.len() {
                        let e = events.remove(rejection.index);
                        self.dropped(vec![e], DropReason::Rejected(rejection.reason));
                    }
                }
                self.delivered(events);
            }
            StatusClass::Retry | StatusClass::TooLarge if batch.purged => {
                self.dropped(batch.events, DropReason::OptedOut);
            }
            StatusClass::Retry => {
                self.stats.retried += batch.events.len() as u64;
                let (base, cap) = (self.config.backoff_base, self.config.backoff_cap);
                self.backoff.fail(now, base, cap, retry_after, rng);
                self.batcher.requeue_front(batch);
            }
            StatusClass::TooLarge if batch.events.len() > 1 => self.batcher.split_front(batch),
            StatusClass::TooLarge => self.dropped(batch.events, DropReason::TooLarge),
            StatusClass::Rejected => self.dropped(batch.events, DropReason::RejectedBatch(status)),
        }
    }

    /// Drops waiting events older than `max_event_age`. Scans at most once per
    /// [`EXPIRY_CHECK_INTERVAL`] so that polling stays cheap; ages are days, so a minute of
    /// slack does not matter.
    pub(super) fn expire(&mut self, now: Timestamp) {
        let next = self.next_expiry_check.min(now.saturating_add(EXPIRY_CHECK_INTERVAL));
        if now < next {
            self.next_expiry_check = next;
            return;
        }
        self.next_expiry_check = now.saturating_add(EXPIRY_CHECK_INTERVAL);
        let oldest_allowed = now.saturating_sub(self.config.max_event_age);
        let expired = self.batcher.remove_waiting(&|e| e.timestamp < oldest_allowed);
        self.dropped(expired, DropReason::Expired);
    }
}
