//! The consumer: drains the queue into the store, one store transaction per group of batches
//! (which also records the queue position, so a crash replays nothing twice), and for every
//! event applies deduplication, identity, sessions, share attribution and the daily summary.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use empmix_core::protocol::{DecodedEvent, decode_batch};
use jiff::tz::TimeZone;
use serde_json::Value;

use crate::config::ProjectConfig;
use crate::http::metrics::Metrics;
use crate::queue::{Delivery, Queue, QueueError};
use crate::store::{DailyField, DayKey, Store, StoreError, StoreTx, StoredEvent};

pub mod attribution;
pub mod broker;
pub mod credit;
pub mod enrich;
pub mod identity;
pub mod tree;

/// Client timestamps further than this before `received_at` are clamped to it (31 days: an
/// offline device's queue may hold events that long).
pub const MAX_PAST_MS: i64 = 31 * 24 * 3600 * 1000;
/// Batches applied in one store transaction.
pub(crate) const BATCHES_PER_TX: usize = 64;

/// Most distinct ids a broker consumer's transaction of several batches resolves. The
/// scale-out store holds a lock per person until commit, and PostgreSQL's lock table is
/// shared by every connection (`max_locks_per_transaction` × `max_connections`, 6,400 by
/// default): a larger group is applied in halves instead ([`StoreError::TooManyPersons`]).
pub(crate) const MAX_PERSONS_PER_TX: usize = 1_024;
/// How often consumed batches are deleted from the queue.
const ACK_EVERY: Duration = Duration::from_millis(500);

/// Why the consumer stopped or skipped work.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// Reading or acknowledging the queue failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// Writing the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What applying some batches did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Events stored.
    pub events: u64,
    /// Events already stored before (same project and event id).
    pub duplicates: u64,
}

/// `server_ts = received_at + (client_ts − sent_at)`: the client's own clock offset is
/// cancelled. Without `sent_at` the client timestamp is taken as is; without a timestamp,
/// `received_at`. The result is clamped to `[received_at − MAX_PAST_MS, received_at]`: nothing
/// happens after the server received it, and older is an absurd clock.
pub fn server_ts(received_at: i64, client_ts: Option<i64>, sent_at: Option<i64>) -> i64 {
    let Some(ts) = client_ts else { return received_at };
    let estimate = match sent_at {
        Some(sent) => received_at.saturating_add(ts.saturating_sub(sent)),
        None => ts,
    };
    estimate.clamp(received_at.saturating_sub(MAX_PAST_MS), received_at)
}

/// The day (`YYYY-MM-DD`) an epoch-ms instant falls on in a time zone.
pub fn day_of(ms: i64, tz: &TimeZone) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.to_zoned(tz.clone()).date().to_string(),
        Err(_) => "1970-01-01".into(),
    }
}

/// Per-project settings the consumer needs: time zones.
#[derive(Debug, Clone, Default)]
pub struct Zones(HashMap<String, TimeZone>);

impl Zones {
    /// Time zones of the configured projects (unknown projects count in UTC).
    pub fn new(projects: &[ProjectConfig]) -> Self {
        Zones(
            projects
                .iter()
                .map(|p| (p.id.clone(), TimeZone::get(&p.time_zone).unwrap_or(TimeZone::UTC)))
                .collect(),
        )
    }

    pub(crate) fn get(&self, project: &str) -> TimeZone {
        self.0.get(project).cloned().unwrap_or(TimeZone::UTC)
    }
}

/// Applies deliveries after the store's cursor in one transaction.
pub fn apply(store: &dyn Store, zones: &Zones, deliveries: &[Delivery]) -> Result<Applied, StoreError> {
    apply_with(store, zones, deliveries, true)
}

/// Applies deliveries from an unordered queue (a broker) in one transaction: no cursor (every
/// delivery is applied; redeliveries are deduplicated by event id). The caller has checked that
/// every batch decodes ([`decodes`]).
pub fn apply_unordered(
    store: &dyn Store,
    zones: &Zones,
    deliveries: &[Delivery],
) -> Result<Applied, StoreError> {
    apply_with(store, zones, deliveries, false)
}

/// Whether a queued batch's body still decodes (a batch that does not is a poison message).
pub fn decodes(delivery: &Delivery) -> bool {
    decode_batch(&delivery.batch.body).is_ok()
}

/// The two ids an identify or alias event joins (`from` goes under `to`'s person), if it
/// names both.
fn merged_ids<'a>(e: &'a StoredEvent<'_>) -> Option<(&'a str, &'a str)> {
    match e.name {
        "identify" => Some((e.anonymous_id.or_else(|| prop(e, "anonymous_id"))?, e.distinct_id?)),
        "alias" => Some((prop(e, "alias")?, e.distinct_id?)),
        _ => None,
    }
}

fn apply_with(
    store: &dyn Store,
    zones: &Zones,
    deliveries: &[Delivery],
    ordered: bool,
) -> Result<Applied, StoreError> {
    let mut decoded = Vec::with_capacity(deliveries.len());
    for d in deliveries {
        match decode_batch(&d.batch.body) {
            Ok(b) => decoded.push((d, b)),
            Err(e) => tracing::error!(seq = d.seq, error = %e, "queued batch no longer decodes; skipped"),
        }
    }
    if !ordered && decoded.len() > 1 {
        let ids: std::collections::HashSet<(&str, &str)> = decoded
            .iter()
            .flat_map(|(d, b)| {
                b.events
                    .iter()
                    .filter_map(|e| e.distinct_id.as_deref().or(e.anonymous_id.as_deref()))
                    .map(|id| (d.batch.project.as_str(), id))
            })
            .collect();
        if ids.len() > MAX_PERSONS_PER_TX {
            return Err(StoreError::TooManyPersons(MAX_PERSONS_PER_TX));
        }
    }
    let mut tx = store.begin_batch()?;
    let cursor = if ordered { tx.cursor()? } else { 0 };
    let mut last = cursor;
    let applicable: Vec<_> = decoded.iter().filter(|(d, _)| !ordered || d.seq > cursor).collect();
    // Derived context (referrer host, campaign), owned here so the stored events can borrow it.
    let contexts: Vec<Vec<Option<serde_json::Map<String, Value>>>> = applicable
        .iter()
        .map(|(_, b)| b.events.iter().map(|ev| enrich::enriched(&ev.properties, &ev.context)).collect())
        .collect();
    let mut events = Vec::new();
    let mut zone_of = Vec::new();
    for ((d, batch), derived) in applicable.iter().zip(&contexts) {
        last = last.max(d.seq);
        let tz = zones.get(&d.batch.project);
        for (ev, context) in batch.events.iter().zip(derived) {
            let event_id = match (&ev.event_id, d.batch.assigned_id(ev.index)) {
                (Some(id), _) => id.to_text(),
                (None, Some(id)) => id.to_string(),
                // Cannot happen for batches written by ingest; stable fallback for others.
                (None, None) => format!("{}-{}", d.seq, ev.index),
            };
            let mut stored = stored_event(&d.batch.project, event_id, ev, d.batch.received_at, batch.sent_at);
            if let Some(c) = context {
                stored.context = c;
            }
            events.push(stored);
            zone_of.push(tz.clone());
        }
    }
    if ordered {
        // The skipped (undecodable) batches advance the cursor too.
        last = deliveries.iter().map(|d| d.seq).fold(last, u64::max);
    }
    let fresh = tx.insert_events(&events)?;
    // The persons of the new events, held (merged ones alone) before anything is decided
    // about them (see `store::postgres`).
    let mut projects: Vec<&str> = events.iter().map(|e| e.project).collect();
    projects.sort_unstable();
    projects.dedup();
    for project in projects {
        let new = events.iter().zip(&fresh).filter(|(e, new)| **new && e.project == project).map(|(e, _)| e);
        let (mut ids, mut merging) = (Vec::new(), Vec::new());
        for e in new {
            ids.extend(e.distinct_id.or(e.anonymous_id));
            if let Some((from, to)) = merged_ids(e) {
                merging.extend([from, to]);
            }
        }
        tx.hold_identities(project, &ids, &merging)?;
    }
    // The share codes this group stores (exclusive) or starts walks from (shared), in one order
    // for every consumer, so these locks cannot deadlock (see `store::postgres`).
    let mut codes: std::collections::BTreeMap<(&str, &str), bool> = std::collections::BTreeMap::new();
    for (e, _) in events.iter().zip(&fresh).filter(|(_, new)| **new) {
        match e.name {
            "share" => {
                if let Some(code) = prop(e, "share_code") {
                    codes.insert((e.project, code), true);
                }
                if let Some(parent) = prop(e, "parent_share_code") {
                    codes.entry((e.project, parent)).or_insert(false);
                }
            }
            "registration" => {
                if let Some(code) = e.attribution.or_else(|| prop(e, "attribution")).filter(|c| !c.is_empty())
                {
                    codes.entry((e.project, code)).or_insert(false);
                }
            }
            _ => {}
        }
    }
    if !codes.is_empty() {
        let codes: Vec<_> = codes.into_iter().map(|((p, c), x)| (p, c, x)).collect();
        tx.lock_share_codes(&codes)?;
    }
    let mut applied = Applied::default();
    for ((e, new), tz) in events.iter().zip(fresh).zip(&zone_of) {
        if new {
            apply_event(tx.as_mut(), tz, e)?;
            applied.events += 1;
        } else {
            applied.duplicates += 1;
        }
    }
    if ordered && last > cursor {
        tx.set_cursor(last)?;
    }
    tx.commit()?;
    Ok(applied)
}

fn stored_event<'a>(
    project: &'a str,
    event_id: String,
    ev: &'a DecodedEvent,
    received_at: i64,
    sent_at: Option<i64>,
) -> StoredEvent<'a> {
    StoredEvent {
        project,
        event_id,
        name: &ev.name,
        distinct_id: ev.distinct_id.as_deref(),
        anonymous_id: ev.anonymous_id.as_deref(),
        session_id: ev.session_id.as_deref(),
        server_ts: server_ts(received_at, ev.timestamp, sent_at),
        received_at,
        client_ts: ev.timestamp,
        conference_id: ev.properties.get("conference_id").and_then(Value::as_str),
        attribution: ev.attribution.as_deref(),
        properties: &ev.properties,
        context: &ev.context,
    }
}

/// A string property.
pub(crate) fn prop<'a>(e: &'a StoredEvent<'_>, key: &str) -> Option<&'a str> {
    e.properties.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Applies the effects of one newly stored event (sessions, identity, attribution, daily).
pub fn apply_event(tx: &mut dyn StoreTx, tz: &TimeZone, e: &StoredEvent<'_>) -> Result<(), StoreError> {
    let fallback;
    let person = match e.distinct_id.or(e.anonymous_id) {
        Some(p) => p,
        None => {
            // Nobody identifiable: the event is its own visitor.
            fallback = format!("event:{}", e.event_id);
            &fallback
        }
    };
    let project = e.project;
    if let Some(session) = e.session_id {
        tx.deferred().touch_session(project, session, person, e.server_ts)?;
    }
    let key =
        || DayKey { conference_id: e.conference_id.unwrap_or("").to_string(), day: day_of(e.server_ts, tz) };
    match e.name {
        "page_view" => {
            let key = key();
            tx.deferred().bump_daily(project, &key, DailyField::Pv, 1)?;
            let visitor = tx.resolve(project, person)?;
            tx.deferred().count_daily_visitor(project, &key, &visitor)?;
        }
        "identify" | "alias" => {
            if let Some((from, to)) = merged_ids(e) {
                identity::merge(tx, project, from, to)?;
            }
        }
        "checkin" => tx.deferred().bump_daily(project, &key(), DailyField::Checkins, 1)?,
        "registration" => attribution::on_registration(tx, project, e, person, key())?,
        "share" => {
            // Counted in the share's conference, which may be its parent's.
            let conference = attribution::on_share(tx, project, e, person)?;
            let key = DayKey { conference_id: conference.unwrap_or_default(), day: day_of(e.server_ts, tz) };
            tx.deferred().bump_daily(project, &key, DailyField::Shares, 1)?;
        }
        "share_open" => {
            if let Some(code) = prop(e, "share_code") {
                tx.deferred().insert_open(project, code, person, &e.event_id, e.server_ts)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// A running consumer thread.
#[derive(Debug)]
pub struct ConsumerHandle {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ConsumerHandle {
    /// Stops after the current transaction and waits for the thread.
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ConsumerHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Starts the consumer on its own thread.
pub fn spawn(
    queue: Arc<dyn Queue>,
    store: Arc<dyn Store>,
    zones: Zones,
    metrics: Arc<Metrics>,
) -> std::io::Result<ConsumerHandle> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("empmix-consumer".into())
        .spawn(move || run(queue.as_ref(), store.as_ref(), &zones, &metrics, &flag))?;
    Ok(ConsumerHandle { stop, thread: Some(thread) })
}

/// The consumer loop, until `stop` is set: in queue order for the embedded queue, or with
/// the broker's concurrent deliveries and acknowledgements (see [`broker`]).
pub fn run(queue: &dyn Queue, store: &dyn Store, zones: &Zones, metrics: &Metrics, stop: &AtomicBool) {
    if queue.ordered() {
        run_ordered(queue, store, zones, metrics, stop);
    } else {
        broker::run(queue, store, zones, metrics, stop);
    }
}

/// The loop over an ordered queue (the embedded one), acknowledging by position.
fn run_ordered(queue: &dyn Queue, store: &dyn Store, zones: &Zones, metrics: &Metrics, stop: &AtomicBool) {
    let mut last_ack = Instant::now();
    let mut acked = 0;
    let mut backoff = Duration::from_millis(50);
    while !stop.load(Ordering::SeqCst) {
        match step(queue, store, zones, metrics) {
            Ok(cursor) => {
                backoff = Duration::from_millis(50);
                if cursor > acked && last_ack.elapsed() >= ACK_EVERY {
                    match queue.ack(cursor) {
                        Ok(()) => acked = cursor,
                        Err(e) => tracing::warn!(error = %e, "queue ack failed; will retry"),
                    }
                    last_ack = Instant::now();
                }
            }
            Err(e) => {
                if disk_full(&e) {
                    tracing::error!(
                        error = %e,
                        retry_in_ms = backoff.as_millis() as u64,
                        "consumer cannot write: disk full; the batches stay queued, retrying until space returns"
                    );
                } else {
                    tracing::error!(error = %e, retry_in_ms = backoff.as_millis() as u64, "consumer step failed; retrying");
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    if let Ok(cursor) = store.cursor() {
        if cursor > acked {
            let _ = queue.ack(cursor);
        }
    }
}

/// Whether a consumer error is the disk being full.
fn disk_full(e: &ConsumerError) -> bool {
    match e {
        ConsumerError::Store(e) => e.is_disk_full(),
        ConsumerError::Queue(e) => e.is_disk_full(),
    }
}

/// Applies everything queued, then returns the number of events stored (and acknowledges
/// them), or stops early when `stop` is set.
pub fn drain(
    queue: &dyn Queue,
    store: &dyn Store,
    zones: &Zones,
    metrics: &Metrics,
    stop: &AtomicBool,
) -> Result<u64, ConsumerError> {
    let mut events = 0;
    while !stop.load(Ordering::SeqCst) {
        let cursor = store.cursor()?;
        let deliveries = queue.receive(cursor, BATCHES_PER_TX, Duration::ZERO)?;
        if deliveries.is_empty() {
            queue.ack(cursor)?;
            break;
        }
        let applied = apply(store, zones, &deliveries)?;
        metrics.consumed(applied.events, applied.duplicates);
        events += applied.events;
    }
    Ok(events)
}

/// One round: waits up to 100 ms for batches after the cursor and applies them. Returns the
/// cursor after.
pub fn step(
    queue: &dyn Queue,
    store: &dyn Store,
    zones: &Zones,
    metrics: &Metrics,
) -> Result<u64, ConsumerError> {
    let cursor = store.cursor()?;
    let deliveries = queue.receive(cursor, BATCHES_PER_TX, Duration::from_millis(100))?;
    let Some(last) = deliveries.last().map(|d| d.seq) else { return Ok(cursor) };
    let applied = apply(store, zones, &deliveries)?;
    metrics.consumed(applied.events, applied.duplicates);
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::QueuedBatch;

    #[test]
    fn server_ts_corrects_skew_and_clamps() {
        let now = 1_781_944_200_000;
        // Client clock one hour fast: an event 2 s before sending happened 2 s before receipt.
        assert_eq!(server_ts(now, Some(now + 3_600_000 - 2000), Some(now + 3_600_000)), now - 2000);
        assert_eq!(server_ts(now, None, Some(5)), now);
        // In the future relative to sending: clamped to receipt.
        assert_eq!(server_ts(now, Some(10_000), Some(5_000)), now);
        // Absurdly old: clamped to the window.
        assert_eq!(server_ts(now, Some(0), Some(now)), now - MAX_PAST_MS);
        assert_eq!(server_ts(now, Some(now - 5), None), now - 5);
    }

    /// A delivery of page views by `ids` distinct persons, `p{first}`….
    fn page_views(seq: u64, first: usize, ids: usize) -> Delivery {
        let events: Vec<String> = (first..first + ids)
            .map(|i| format!(r#"{{"event_id":"{}","type":"page_view","distinct_id":"p{i}","timestamp":1781944200000}}"#, uuid::Uuid::now_v7()))
            .collect();
        let body = format!(r#"{{"events":[{}]}}"#, events.join(","));
        Delivery {
            seq,
            batch: QueuedBatch {
                project: "default".into(),
                received_at: 1_781_944_200_000,
                assigned_ids: Vec::new(),
                body: body.into(),
            },
        }
    }

    #[test]
    fn a_broker_group_touching_too_many_persons_is_refused_whole_and_its_parts_are_not() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = crate::store::sqlite::SqliteStore::open(dir.path()).expect("store");
        let zones = Zones::new(&[]);
        let n = 400; // per batch (at most MAX_EVENTS_PER_BATCH)
        let group = [page_views(1, 0, n), page_views(2, n, n), page_views(3, 2 * n, n)];
        assert!(3 * n > MAX_PERSONS_PER_TX && 2 * n <= MAX_PERSONS_PER_TX);
        let refused = apply_unordered(&store, &zones, &group);
        assert!(matches!(refused, Err(StoreError::TooManyPersons(MAX_PERSONS_PER_TX))), "{refused:?}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let stored = store.aggregate("SELECT COUNT(*) FROM events", &[], deadline).expect("count");
        assert_eq!(stored, vec![vec![crate::store::Cell::Int(0)]], "nothing of the refused group applied");
        // Two batches together are within the limit, the third alone too.
        assert_eq!(apply_unordered(&store, &zones, &group[..2]).expect("applied").events, 2 * n as u64);
        assert_eq!(apply_unordered(&store, &zones, &group[2..]).expect("applied").events, n as u64);
    }

    #[test]
    fn days_are_counted_in_the_project_time_zone() {
        let ms = 1_781_992_800_000; // 2026-06-20T22:00:00Z
        assert_eq!(day_of(ms, &TimeZone::UTC), "2026-06-20");
        assert_eq!(day_of(ms, &TimeZone::get("Asia/Shanghai").unwrap()), "2026-06-21");
    }
}
