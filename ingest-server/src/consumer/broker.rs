//! The consumer loop for an unordered queue (RabbitMQ): several consumers, in one process or
//! many, each take deliveries, apply up to [`BATCHES_PER_TX`] batches in one store transaction
//! (dedup check included) and acknowledge them right after the commit.
//!
//! - **Store unavailable** (connection refused or broken, shutdown, out of resources): the
//!   deliveries stay held and unacknowledged (so they stay in the broker), and the same group is
//!   retried with backoff up to 5 s until the store answers.
//! - **Serialization failure or deadlock**: retried at once (a few times, then with backoff).
//! - **Any other error** (about the data): the group is split and each batch applied alone; the
//!   one that fails is given back for redelivery (`nack` with requeue) and the broker
//!   dead-letters it after its delivery limit. A batch that no longer decodes is given back the
//!   same way. So a poison batch never blocks the queue.
//! - **Crash**: unacknowledged deliveries are redelivered; the store deduplicates by event id.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Applied, BATCHES_PER_TX, ConsumerError, Zones, apply_unordered, decodes};
use crate::http::metrics::Metrics;
use crate::queue::{Delivery, Queue};
use crate::store::{Store, StoreError};

/// Longest pause between retries while the store is unavailable.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Sleeps up to `d`, returning early when `stop` is set.
fn pause(d: Duration, stop: &AtomicBool) {
    let until = Instant::now() + d;
    while !stop.load(Ordering::SeqCst) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// The outcome of one attempt at a group of deliveries.
enum Attempt {
    /// Committed and acknowledged.
    Done(Applied),
    /// Not applied; retry the same deliveries after a pause.
    Hold(StoreError),
}

/// Applies a group; on a data error, isolates the failing batches.
fn attempt(queue: &dyn Queue, store: &dyn Store, zones: &Zones, group: &[Delivery]) -> Attempt {
    let mut conflicts = 0;
    loop {
        match apply_unordered(store, zones, group) {
            Ok(applied) => {
                if let Some(last) = group.iter().map(|d| d.seq).max() {
                    if let Err(e) = queue.ack(last) {
                        tracing::warn!(error = %e, "acknowledgement failed; the batches will be redelivered");
                    }
                }
                return Attempt::Done(applied);
            }
            Err(e) if e.is_conflict() && conflicts < 5 => {
                conflicts += 1;
                tracing::debug!(error = %e, "transaction conflict; retrying");
                // A lock another consumer holds is held for one transaction: give it that long.
                std::thread::sleep(std::time::Duration::from_millis(1 << conflicts));
            }
            Err(StoreError::TooManyPersons(_)) if group.len() > 1 => {
                let (a, b) = group.split_at(group.len() / 2);
                return attempt_each(queue, store, zones, [a, b]);
            }
            Err(e) if e.is_transient() => return Attempt::Hold(e),
            Err(e) if group.len() > 1 => {
                tracing::warn!(error = %e, batches = group.len(), "group failed; applying its batches one by one");
                return attempt_each(queue, store, zones, group.chunks(1));
            }
            Err(e) => {
                tracing::error!(error = %e, seq = group.first().map(|d| d.seq),
                    "batch cannot be applied; returned to the broker (dead-lettered after its delivery limit)");
                if let Some(d) = group.first() {
                    if let Err(e) = queue.retry_later(d.seq) {
                        tracing::warn!(error = %e, "could not return the batch; it will be redelivered");
                    }
                }
                return Attempt::Done(Applied::default());
            }
        }
    }
}

/// Applies parts of a group one after the other; holds the rest once the store goes away (the
/// parts already committed are acknowledged; applying them again is a no-op).
fn attempt_each<'a>(
    queue: &dyn Queue,
    store: &dyn Store,
    zones: &Zones,
    parts: impl IntoIterator<Item = &'a [Delivery]>,
) -> Attempt {
    let mut total = Applied::default();
    for part in parts {
        match attempt(queue, store, zones, part) {
            Attempt::Done(a) => {
                total.events += a.events;
                total.duplicates += a.duplicates;
            }
            Attempt::Hold(e) => return Attempt::Hold(e),
        }
    }
    Attempt::Done(total)
}

/// Takes the next group: up to [`BATCHES_PER_TX`] deliveries, waiting up to `wait`; batches that
/// no longer decode are given back to the broker at once.
fn next_group(queue: &dyn Queue, wait: Duration) -> Result<Vec<Delivery>, ConsumerError> {
    let mut group = queue.receive(0, BATCHES_PER_TX, wait)?;
    group.retain(|d| {
        if decodes(d) {
            return true;
        }
        tracing::error!(
            seq = d.seq,
            "batch body does not decode; returned (dead-lettered after its delivery limit)"
        );
        if let Err(e) = queue.retry_later(d.seq) {
            tracing::warn!(error = %e, "could not return the batch");
        }
        false
    });
    Ok(group)
}

/// The consumer loop, until `stop` is set.
pub fn run(queue: &dyn Queue, store: &dyn Store, zones: &Zones, metrics: &Metrics, stop: &AtomicBool) {
    metrics.broker_consumer_started();
    let mut held: Vec<Delivery> = Vec::new();
    let mut backoff = Duration::from_millis(100);
    while !stop.load(Ordering::SeqCst) {
        if held.is_empty() {
            match next_group(queue, Duration::from_millis(100)) {
                Ok(g) => held = g,
                Err(e) => {
                    tracing::warn!(error = %e, "receiving from the queue failed; retrying");
                    pause(backoff, stop);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            }
            if held.is_empty() {
                continue;
            }
        }
        match attempt(queue, store, zones, &held) {
            Attempt::Done(applied) => {
                metrics.consumed(applied.events, applied.duplicates);
                held.clear();
                backoff = Duration::from_millis(100);
            }
            Attempt::Hold(e) => {
                tracing::warn!(error = %e, batches = held.len(), retry_in = ?backoff,
                    "store unavailable; holding the batches (they stay in the broker) and retrying");
                pause(backoff, stop);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Applies deliveries until none arrives for `idle`, then returns the number of events stored
/// and the time from the first delivery to the last commit (the idle wait excluded).
pub fn drain(
    queue: &dyn Queue,
    store: &dyn Store,
    zones: &Zones,
    metrics: &Metrics,
    stop: &AtomicBool,
    idle: Duration,
) -> Result<(u64, Duration), ConsumerError> {
    let mut events = 0;
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    let mut backoff = Duration::from_millis(100);
    while !stop.load(Ordering::SeqCst) {
        let group = next_group(queue, idle)?;
        if group.is_empty() {
            break;
        }
        first.get_or_insert_with(Instant::now);
        loop {
            match attempt(queue, store, zones, &group) {
                Attempt::Done(applied) => {
                    metrics.consumed(applied.events, applied.duplicates);
                    events += applied.events;
                    last = Instant::now();
                    break;
                }
                Attempt::Hold(e) if !stop.load(Ordering::SeqCst) => {
                    tracing::warn!(error = %e, "store unavailable; retrying");
                    pause(backoff, stop);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Attempt::Hold(e) => return Err(e.into()),
            }
        }
    }
    Ok((events, first.map_or(Duration::ZERO, |f| last.saturating_duration_since(f))))
}
