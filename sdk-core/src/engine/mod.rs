//! The engine: one state machine holding every SDK decision. See the crate docs for the
//! driver's contract.

mod restore;
mod stats;
mod transmit;

pub use restore::RestoreReport;
pub use stats::{DropReason, DroppedCounts, Report, Stats};
pub use transmit::{Response, Transmit};

use core::time::Duration;

use crate::attribution::url::{take_share_param, with_share_param};
use crate::attribution::{Attribution, IncomingUrl, ShareCode, ShareLink, url::UrlError};
use crate::batching::retry::Backoff;
use crate::batching::{Batcher, QueuedEvent};
use crate::config::{Config, OverflowPolicy};
use crate::entropy::Entropy;
use crate::event::{Context, Event, EventError, EventId, Properties, names, validate_name};
use crate::identity::{Identity, Session};
use crate::persist::{PersistOp, Storage, encode_state};
use crate::protocol::{EventEnvelope, MAX_EVENT_BYTES};
use crate::time::Timestamp;

/// Session activity is saved at most this often (other state changes are saved at once), so
/// `track` does not rewrite the state on every call. A restart can misjudge session expiry by
/// at most this much.
const SESSION_SAVE_INTERVAL: Duration = Duration::from_secs(60);

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackError {
    /// The user has opted out; nothing is recorded.
    #[error("the user has opted out of tracking")]
    OptedOut,
    /// `shutdown` was called; the engine takes no new events.
    #[error("the client is shut down")]
    ShutDown,
    /// The event name, user id or channel is not acceptable.
    #[error(transparent)]
    InvalidEvent(#[from] EventError),
    /// The encoded event is larger than the protocol's per-event limit.
    #[error("event is {bytes} bytes encoded; at most 32768 allowed")]
    TooLarge {
        /// Its encoded size.
        bytes: usize,
    },
    /// The queue is full and the overflow policy refuses new events.
    #[error("the event queue is full")]
    QueueFull,
    /// A URL given to `create_share` is not an absolute URL.
    #[error(transparent)]
    InvalidUrl(#[from] UrlError),
}

/// Marks the events tracked before a [`Engine::flush`]; see [`Engine::is_flushed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[must_use = "a flush ticket tells when the flush is complete"]
pub struct FlushTicket(u64);

/// The sans-IO SDK engine. One per client; see the crate docs for how a driver calls it.
#[derive(Debug)]
pub struct Engine {
    config: Config,
    context_json: String,
    identity: Identity,
    session: Session,
    attribution: Attribution,
    batcher: Batcher,
    backoff: Backoff,
    stats: Stats,
    /// Storage changes, oldest first, from `persist_read` on (those before it were taken): a
    /// `Vec` read by a cursor and emptied once all are taken, not a `VecDeque` instance, which
    /// the browser build would pay for.
    persist_ops: Vec<PersistOp>,
    persist_read: usize,
    /// Outcomes not yet polled, oldest first, taken from the front: one per request, not per
    /// event, so the list stays short (the browser build never asks for reports).
    reports: Vec<Report>,
    session_saved_at: Timestamp,
    next_expiry_check: Timestamp,
    /// Until when the queue waits for a full batch after the last request
    /// ([`crate::ConfigBuilder::send_gap`]).
    gap_until: Timestamp,
    shutting_down: bool,
}

impl Engine {
    /// A new engine with a fresh anonymous identity (no stored state).
    pub fn new(config: Config, now: Timestamp, rng: &mut impl Entropy) -> Self {
        let identity = Identity::new(now, rng);
        let session = Session::new(now, rng);
        let mut engine = Engine::assemble(config, identity, session, Attribution::default(), now);
        engine.save_state();
        engine
    }

    fn assemble(
        config: Config,
        identity: Identity,
        session: Session,
        attribution: Attribution,
        now: Timestamp,
    ) -> Self {
        Engine {
            context_json: config.context.encode(),
            config,
            identity,
            session,
            attribution,
            batcher: Batcher::default(),
            backoff: Backoff::default(),
            stats: Stats::default(),
            persist_ops: Vec::new(),
            persist_read: 0,
            reports: Vec::new(),
            session_saved_at: now,
            next_expiry_check: now,
            gap_until: now,
            shutting_down: false,
        }
    }

    // ----- getters -----

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// The id events are attributed to now.
    pub fn distinct_id(&self) -> &str {
        self.identity.distinct_id()
    }
    /// The device's anonymous id.
    pub fn anonymous_id(&self) -> &str {
        &self.identity.anonymous_id
    }
    /// The current session id (a new one starts on the next event after the timeout).
    pub fn session_id(&self) -> &str {
        &self.session.id
    }
    /// Whether the user opted out.
    pub fn is_opted_out(&self) -> bool {
        self.identity.opted_out
    }
    /// The share code this user is credited to at `now`.
    pub fn attribution(&self, now: Timestamp) -> Option<&ShareCode> {
        self.attribution.active(now, self.config.attribution_window)
    }
    /// Counters.
    pub fn stats(&self) -> Stats {
        Stats { queued: self.batcher.waiting(), in_flight: self.batcher.in_flight_events(), ..self.stats }
    }
    /// Whether nothing is waiting or in flight.
    pub fn is_idle(&self) -> bool {
        self.batcher.waiting() == 0 && self.batcher.in_flight.is_empty()
    }

    // ----- commands -----

    /// Records an event. It is queued (and, with persistence, an append is emitted) before
    /// this returns. Never waits and never does IO.
    pub fn track(
        &mut self,
        now: Timestamp,
        rng: &mut impl Entropy,
        event: Event,
    ) -> Result<EventId, TrackError> {
        if self.shutting_down {
            return Err(TrackError::ShutDown);
        }
        if self.identity.opted_out {
            return Err(TrackError::OptedOut);
        }
        if self.session.touch(now, self.config.session_timeout, rng)
            || now.since(self.session_saved_at) >= SESSION_SAVE_INTERVAL
        {
            self.save_state();
        }
        let id = EventId::new(now, rng);
        let mut properties = String::with_capacity(
            event.properties().as_json().len() + self.identity.super_properties.as_json().len(),
        );
        event.properties().write_merged(&self.identity.super_properties, &mut properties);
        let json = EventEnvelope {
            event_id: id,
            name: event.name(),
            distinct_id: self.identity.distinct_id(),
            anonymous_id: &self.identity.anonymous_id,
            session_id: &self.session.id,
            timestamp: now,
            properties_json: &properties,
            attribution: self.attribution.active(now, self.config.attribution_window).map(ShareCode::as_str),
            context_json: &self.context_json,
        }
        .encode();
        if json.len() > MAX_EVENT_BYTES {
            self.stats.dropped.add(DropReason::TooLarge, 1);
            return Err(TrackError::TooLarge { bytes: json.len() });
        }
        if self.batcher.waiting() >= self.config.max_queue {
            match self.config.overflow {
                OverflowPolicy::DropNewest => {
                    self.stats.dropped.add(DropReason::QueueFull, 1);
                    return Err(TrackError::QueueFull);
                }
                OverflowPolicy::DropOldest => {
                    let oldest: Vec<_> = self.batcher.pop_oldest().into_iter().collect();
                    self.dropped(oldest, DropReason::QueueFull);
                }
            }
        }
        if self.config.persist {
            self.persist_ops.push(PersistOp::Append { id, record: json.clone() });
        }
        self.batcher.push(id, now, now, json);
        Ok(id)
    }

    /// Identifies the user: events from now on carry `user_id` as their `distinct_id`, and an
    /// `identify` event links the anonymous id to it. Returns `None` when already identified
    /// as this user. Call [`Engine::reset`] before identifying a different person.
    pub fn identify(
        &mut self,
        now: Timestamp,
        rng: &mut impl Entropy,
        user_id: &str,
    ) -> Result<Option<EventId>, TrackError> {
        validate_name(user_id)?;
        if self.identity.user_id.as_deref() == Some(user_id) {
            return Ok(None);
        }
        if self.identity.opted_out {
            return Err(TrackError::OptedOut);
        }
        self.identity.user_id = Some(user_id.to_string());
        self.save_state();
        self.track(now, rng, Event::custom(names::IDENTIFY, Properties::new())?).map(Some)
    }

    /// Links `alias` (another id of this user, for example an email hash or a CRM id) to the
    /// current `distinct_id` with an `alias` event.
    pub fn alias(
        &mut self,
        now: Timestamp,
        rng: &mut impl Entropy,
        alias: &str,
    ) -> Result<EventId, TrackError> {
        validate_name(alias)?;
        self.track(now, rng, Event::custom(names::ALIAS, Properties::new().insert("alias", alias))?)
    }

    /// Logout: a new anonymous id, no user, no super properties, a new session and no
    /// attribution (the next person on this device starts clean). Queued events keep the
    /// identity they were tracked with. Codes this device created stay remembered.
    pub fn reset(&mut self, now: Timestamp, rng: &mut impl Entropy) {
        let opted_out = self.identity.opted_out;
        self.identity = Identity::new(now, rng);
        self.identity.opted_out = opted_out;
        self.session = Session::new(now, rng);
        self.attribution.current = None;
        self.attribution.chain.clear();
        self.save_state();
    }

    /// Adds super properties, merged into every later event; these win over ones already
    /// registered.
    pub fn register(&mut self, properties: &Properties) {
        self.identity.register(properties, true);
        self.save_state();
    }

    /// Adds super properties only where no value is registered yet.
    pub fn register_once(&mut self, properties: &Properties) {
        self.identity.register(properties, false);
        self.save_state();
    }

    /// Removes one super property.
    pub fn unregister(&mut self, key: &str) {
        self.identity.unregister(key);
        self.save_state();
    }

    /// Stops all tracking and purges every waiting event (reported as
    /// [`DropReason::OptedOut`]). Requests already in flight finish; if one fails, its events
    /// are dropped the same way, not retried. Persisted.
    pub fn opt_out(&mut self) {
        self.identity.opted_out = true;
        self.purge_for_opt_out();
        self.save_state();
    }

    /// Resumes tracking.
    pub fn opt_in(&mut self) {
        self.identity.opted_out = false;
        self.save_state();
    }

    /// The conference a share or a share open names: `explicit` (the caller's argument), else
    /// the configured one ([`crate::ConfigBuilder::conference_id`]); empty strings count as
    /// none. With neither, the event gets the `conference_id` super property, if registered,
    /// as [`Engine::track`] merges super properties into every event under its own.
    pub fn share_conference<'a>(&'a self, explicit: Option<&'a str>) -> Option<&'a str> {
        let configured = self.config.conference_id.as_deref();
        explicit.filter(|c| !c.is_empty()).or(configured.filter(|c| !c.is_empty()))
    }

    /// Makes a share link: a fresh code, a `share` event carrying it (with the code this user
    /// arrived through as its parent, and the conference by [`Engine::share_conference`]), and
    /// `target_url` with `_s=<code>`, keeping its query and fragment and replacing any `_s`
    /// already there. While opted out the link is made but nothing is recorded.
    pub fn create_share(
        &mut self,
        now: Timestamp,
        rng: &mut impl Entropy,
        channel: &str,
        target_url: &str,
        conference_id: Option<&str>,
    ) -> Result<ShareLink, TrackError> {
        // Validate and clean the target first: a link must never pass on someone else's code.
        // (`share` checks the channel.)
        let (clean_target, _) = take_share_param(target_url)?;
        let code = self.share(now, rng, channel, &clean_target, conference_id)?;
        let url = with_share_param(&clean_target, code.as_str())?;
        Ok(ShareLink { code, url })
    }

    /// The decision half of [`Engine::create_share`], for drivers whose platform edits URLs
    /// (the browser's `URL`): a fresh code and its `share` event for `clean_target`, which
    /// the driver has already stripped of `_s`. The driver then adds `_s=<code>` itself.
    pub fn share(
        &mut self,
        now: Timestamp,
        rng: &mut impl Entropy,
        channel: &str,
        clean_target: &str,
        conference_id: Option<&str>,
    ) -> Result<ShareCode, TrackError> {
        let code = ShareCode::generate(rng);
        self.share_with_code(now, rng, &code, channel, clean_target, conference_id)?;
        Ok(code)
    }

    /// [`Engine::share`] with a code the driver made ([`ShareCode::ALPHABET`], of
    /// [`ShareCode::GENERATED_LEN`]): for a driver that hands out the link before the engine
    /// runs (the browser's loader returns it synchronously while the wasm loads). The code
    /// becomes this device's own, as a generated one does.
    pub fn share_with_code(
        &mut self,
        now: Timestamp,
        rng: &mut impl Entropy,
        code: &ShareCode,
        channel: &str,
        clean_target: &str,
        conference_id: Option<&str>,
    ) -> Result<(), TrackError> {
        validate_name(channel)?;
        if !self.identity.opted_out {
            let parent = self.attribution.active(now, self.config.attribution_window).cloned();
            let conference = self.share_conference(conference_id);
            let event = Event::share(code, channel, clean_target, parent.as_ref(), conference);
            self.track(now, rng, event)?;
            self.attribution.record_created(code.clone());
            self.save_state();
        }
        Ok(())
    }

    /// Reads `_s` from a URL the app was opened with: records a `share_open` with the code, the
    /// chain known so far and the conference when known (see [`Engine::share_conference`]),
    /// and makes the code this user's attribution (first- or last-touch, within the window).
    /// Opening one's own link records nothing. Returns the URL without `_s` to show and to
    /// share on.
    pub fn handle_incoming_url(
        &mut self,
        now: Timestamp,
        rng: &mut impl Entropy,
        url: &str,
    ) -> Result<IncomingUrl, UrlError> {
        let (clean, raw_code) = take_share_param(url)?;
        let share_code = raw_code.as_deref().and_then(ShareCode::parse);
        let recorded_open = share_code.as_ref().is_some_and(|code| self.open_share(now, rng, code));
        Ok(IncomingUrl { url: clean, share_code, recorded_open })
    }

    /// The decision half of [`Engine::handle_incoming_url`], for drivers that read `_s` from
    /// the address themselves. Returns whether a `share_open` was recorded.
    pub fn open_share(&mut self, now: Timestamp, rng: &mut impl Entropy, code: &ShareCode) -> bool {
        if self.attribution.is_own(code) || self.identity.opted_out || self.shutting_down {
            return false;
        }
        let window = self.config.attribution_window;
        self.attribution.record_open(code, now, self.config.attribution_model, window);
        self.save_state();
        let open = Event::share_open(code, &self.attribution.chain, self.share_conference(None));
        self.track(now, rng, open).is_ok()
    }

    /// Replaces the context sent with later events (for example when the page changes).
    pub fn set_context(&mut self, context: Context) {
        self.context_json = context.encode();
        self.config.context = context;
    }

    /// Asks for everything tracked so far to be sent without waiting for the threshold or
    /// the time window (backoff still applies). The ticket tells when that is done.
    pub fn flush(&mut self) -> FlushTicket {
        self.batcher.flush_through = self.batcher.last_seq();
        FlushTicket(self.batcher.last_seq())
    }

    /// Whether every event tracked before the ticket's flush is delivered or dropped.
    pub fn is_flushed(&self, ticket: FlushTicket) -> bool {
        self.batcher.settled_through(ticket.0)
    }

    /// Stops taking events and sends everything waiting. The driver keeps polling until
    /// [`Engine::is_idle`] or its own deadline.
    pub fn shutdown(&mut self) -> FlushTicket {
        self.shutting_down = true;
        self.flush()
    }

    // ----- persistence and reports -----

    /// The next storage change to apply, in order. Only produced with `persist` on.
    pub fn poll_persist(&mut self) -> Option<PersistOp> {
        // A taken change leaves an empty removal behind (no allocation), dropped with the rest.
        let op = self.persist_ops.get_mut(self.persist_read)?;
        let op = core::mem::replace(op, PersistOp::Remove { ids: Vec::new() });
        self.persist_read += 1;
        if self.persist_read == self.persist_ops.len() {
            self.persist_ops.clear();
            self.persist_read = 0;
        }
        Some(op)
    }

    /// Applies every pending storage change to `storage`, stopping at the first error (the
    /// failed change stays pending and is offered again next time).
    pub fn persist_to<S: Storage>(&mut self, storage: &mut S) -> Result<(), S::Error> {
        while let Some(op) = self.persist_ops.get(self.persist_read) {
            storage.apply(op)?;
            self.persist_read += 1;
        }
        self.persist_ops.clear();
        self.persist_read = 0;
        Ok(())
    }

    /// The next per-event outcome. Only produced with `report_outcomes` on.
    pub fn poll_report(&mut self) -> Option<Report> {
        (!self.reports.is_empty()).then(|| self.reports.remove(0))
    }

    fn save_state(&mut self) {
        if !self.config.persist {
            return;
        }
        self.session_saved_at = self.session.last_activity;
        let state = encode_state(&self.identity, &self.session, &self.attribution);
        // Only the latest state matters: replace one not yet taken by the driver.
        // The last change is never one already taken: taking the last empties the list.
        if let Some(PersistOp::SaveState { state: pending }) = self.persist_ops.last_mut() {
            *pending = state;
        } else {
            self.persist_ops.push(PersistOp::SaveState { state });
        }
    }

    /// Opting out: drops every waiting event, and marks the batches in flight so that a failed
    /// send drops them instead of retrying (an opt-in before the answer does not revive them).
    fn purge_for_opt_out(&mut self) {
        let purged = self.batcher.remove_waiting(&|_| true);
        self.dropped(purged, DropReason::OptedOut);
        for batch in &mut self.batcher.in_flight {
            batch.purged = true;
        }
    }

    fn dropped(&mut self, events: Vec<QueuedEvent>, reason: DropReason) {
        if events.is_empty() {
            return;
        }
        self.stats.dropped.add(reason, events.len() as u64);
        self.forget(events, |ids| Report::Dropped { ids, reason });
    }

    fn delivered(&mut self, events: Vec<QueuedEvent>) {
        self.stats.delivered += events.len() as u64;
        self.forget(events, |ids| Report::Delivered { ids });
    }

    /// Removes finished events from storage and reports them.
    fn forget(&mut self, events: Vec<QueuedEvent>, report: impl FnOnce(Vec<EventId>) -> Report) {
        if events.is_empty() || !(self.config.persist || self.config.report_outcomes) {
            return;
        }
        let ids: Vec<EventId> = events.iter().map(|e| e.id).collect();
        if self.config.report_outcomes {
            self.reports.push(report(ids.clone()));
        }
        if self.config.persist {
            self.persist_ops.push(PersistOp::Remove { ids });
        }
    }
}
