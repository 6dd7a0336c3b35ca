//! [`Client`]: the handle an application tracks with.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use empmix_core::{Event, EventId, IncomingUrl, Properties, ShareCode, ShareLink, Stats};
use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

use crate::builder::ClientBuilder;
use crate::error::Error;
use crate::shared::{Shared, now};
use crate::worker::{Command, Reply};

/// An EmpMix client: tracks events and delivers them in the background.
///
/// Cheap to clone (all clones share one queue and one background thread) and usable from any
/// thread, inside or outside a Tokio runtime. Tracking calls are synchronous and never wait
/// on the network: they take a short in-memory lock, and with a persistence directory append
/// one record to the log file (a buffered `write`, no `fsync`) before returning.
///
/// **Stopping.** Call [`Client::shutdown`] to deliver what is queued. If the last clone is
/// dropped without it, the background thread stops at once (the drop waits for it, a few
/// milliseconds): with a persistence directory every unsent event is on disk and is sent by
/// the next client that opens the directory (but for those the log could not take, a full
/// disk); without one, unsent events are counted in [`Stats::dropped`]`.lost` and logged as
/// lost.
#[derive(Debug, Clone)]
pub struct Client {
    handle: Arc<Handle>,
}

/// What the clones share; its drop stops the background thread.
#[derive(Debug)]
pub(crate) struct Handle {
    shared: Arc<Shared>,
    commands: UnboundedSender<Command>,
    thread: Mutex<Option<JoinHandle<()>>>,
    shutdown_started: AtomicBool,
    flush_timeout: Duration,
    shutdown_timeout: Duration,
}

impl Handle {
    pub(crate) fn new(
        shared: Arc<Shared>,
        commands: UnboundedSender<Command>,
        thread: JoinHandle<()>,
        flush_timeout: Duration,
        shutdown_timeout: Duration,
    ) -> Self {
        Handle {
            shared,
            commands,
            thread: Mutex::new(Some(thread)),
            shutdown_started: AtomicBool::new(false),
            flush_timeout,
            shutdown_timeout,
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // Stops the background thread (after a shutdown it is already gone) and waits for it
        // to write what is pending, so the directory is free when this returns.
        let _ = self.commands.send(Command::Abandon);
        let thread = self.thread.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(thread) = thread {
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

/// The instant `timeout` from now. A timeout too long to represent (`Duration::MAX`: "no
/// limit") is a deadline a century away instead of an overflow panic.
fn deadline_after(timeout: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    let now = Instant::now();
    now.checked_add(timeout).or_else(|| now.checked_add(CENTURY)).unwrap_or(now)
}

/// Serializes properties to a JSON object (`()` and `null` are no properties).
fn to_properties(properties: impl Serialize) -> Result<Properties, Error> {
    let text = serde_json::to_string(&properties).map_err(|e| Error::InvalidProperties(e.to_string()))?;
    if text == "null" {
        return Ok(Properties::new());
    }
    Properties::from_json(text).map_err(|e| Error::InvalidProperties(e.to_string()))
}

impl Client {
    /// A builder for a client sending with `ingest_key` (the project's public ingest key).
    pub fn builder(ingest_key: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(ingest_key.into())
    }

    pub(crate) fn from_handle(handle: Handle) -> Self {
        Client { handle: Arc::new(handle) }
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    // ----- tracking -----

    /// Tracks an event named `name` with `properties`: a `serde_json::Value` object, any
    /// `Serialize` type that serializes to an object (a struct or map), or `()` for none.
    /// Returns the event's id. Never waits on the network.
    pub fn track(&self, name: &str, properties: impl Serialize) -> Result<EventId, Error> {
        let event = Event::custom(name, to_properties(properties)?)?;
        self.track_event(event)
    }

    /// Tracks a prepared [`Event`] (a typed seed event, or one built with
    /// [`Event::custom`] and [`Properties`], which skips serde).
    pub fn track_event(&self, event: Event) -> Result<EventId, Error> {
        let debug = self.shared().debug;
        let name = debug.then(|| event.name().to_string());
        let id = self.shared().command(|engine, now, rng| engine.track(now, rng, event))?;
        if let Some(name) = name {
            tracing::debug!(event = %name, %id, "tracked");
        }
        Ok(id)
    }

    /// A page was viewed.
    pub fn page_view(
        &self,
        url: &str,
        conference_id: Option<&str>,
        referrer: Option<&str>,
    ) -> Result<EventId, Error> {
        self.track_event(Event::page_view(url, conference_id, referrer))
    }

    /// A registration was submitted.
    pub fn registration(&self, conference_id: &str, form_id: Option<&str>) -> Result<EventId, Error> {
        self.track_event(Event::registration(conference_id, form_id))
    }

    /// An attendee checked in, by `method` (`qr`, `manual`, …).
    pub fn checkin(&self, conference_id: &str, method: &str) -> Result<EventId, Error> {
        self.track_event(Event::checkin(conference_id, method))
    }

    /// An AI chat message of `message_length` characters was sent.
    pub fn ai_chat(&self, conference_id: &str, message_length: u64) -> Result<EventId, Error> {
        self.track_event(Event::ai_chat(conference_id, message_length))
    }

    // ----- identity -----

    /// Identifies the user: later events carry `user_id` as their `distinct_id`, and an
    /// `identify` event links the anonymous id to it. `None` when already identified as this
    /// user. Call [`Client::reset`] before identifying someone else.
    pub fn identify(&self, user_id: &str) -> Result<Option<EventId>, Error> {
        Ok(self.shared().command(|engine, now, rng| engine.identify(now, rng, user_id))?)
    }

    /// Links another id of this user (an email hash, a CRM id) with an `alias` event.
    pub fn alias(&self, alias: &str) -> Result<EventId, Error> {
        Ok(self.shared().command(|engine, now, rng| engine.alias(now, rng, alias))?)
    }

    /// Logout: a new anonymous id, no user, no super properties, no attribution. Queued events
    /// keep the identity they were tracked with.
    pub fn reset(&self) {
        self.shared().command(|engine, now, rng| engine.reset(now, rng));
    }

    /// Adds super properties (a JSON object) merged into every later event, replacing values
    /// registered before.
    pub fn register(&self, properties: impl Serialize) -> Result<(), Error> {
        let properties = to_properties(properties)?;
        self.shared().command(|engine, _, _| engine.register(&properties));
        Ok(())
    }

    /// Adds super properties only where no value is registered yet.
    pub fn register_once(&self, properties: impl Serialize) -> Result<(), Error> {
        let properties = to_properties(properties)?;
        self.shared().command(|engine, _, _| engine.register_once(&properties));
        Ok(())
    }

    /// Removes one super property.
    pub fn unregister(&self, key: &str) {
        self.shared().command(|engine, _, _| engine.unregister(key));
    }

    /// Stops all tracking and discards every waiting event (counted as opted out). Persisted.
    pub fn opt_out(&self) {
        self.shared().command(|engine, _, _| engine.opt_out());
    }

    /// Resumes tracking.
    pub fn opt_in(&self) {
        self.shared().command(|engine, _, _| engine.opt_in());
    }

    /// Whether the user opted out.
    pub fn is_opted_out(&self) -> bool {
        self.shared().lock().engine.is_opted_out()
    }

    /// The id events are attributed to now: the user id once identified, else the anonymous id.
    pub fn distinct_id(&self) -> String {
        self.shared().lock().engine.distinct_id().to_string()
    }

    /// This device's anonymous id.
    pub fn anonymous_id(&self) -> String {
        self.shared().lock().engine.anonymous_id().to_string()
    }

    /// The current session id.
    pub fn session_id(&self) -> String {
        self.shared().lock().engine.session_id().to_string()
    }

    // ----- sharing -----

    /// Makes a share link for `target_url` shared on `channel` (`wechat`, `email`, …): a fresh
    /// code, a `share` event carrying it, and the URL with `_s=<code>`. The share counts in
    /// `conference_id`, or without it in the `conference_id` super property.
    pub fn create_share(
        &self,
        channel: &str,
        target_url: &str,
        conference_id: Option<&str>,
    ) -> Result<ShareLink, Error> {
        Ok(self
            .shared()
            .command(|engine, now, rng| engine.create_share(now, rng, channel, target_url, conference_id))?)
    }

    /// Reads the share code from a URL the app was opened with: records a `share_open` (in the
    /// `conference_id` super property's conference, when registered) and credits later events
    /// to the code. Returns the URL without `_s`.
    pub fn handle_incoming_url(&self, url: &str) -> Result<IncomingUrl, Error> {
        Ok(self.shared().command(|engine, now, rng| engine.handle_incoming_url(now, rng, url))?)
    }

    /// The share code this user is credited to now, if any.
    pub fn attribution(&self) -> Option<ShareCode> {
        self.shared().lock().engine.attribution(now()).cloned()
    }

    /// Whether [`Client::shutdown`] (or one of its variants) was called on this client or a
    /// clone. After it, tracking calls return [`Error::ShutDown`], and calls that return
    /// nothing (`reset`, `opt_out`, `opt_in`, `unregister`) change only the stopped client's
    /// memory: nothing more is persisted.
    pub fn is_shut_down(&self) -> bool {
        self.handle.shutdown_started.load(Ordering::Acquire)
    }

    // ----- delivery -----

    /// Counters: queued, in flight, delivered, retried, dropped by reason.
    pub fn stats(&self) -> Stats {
        self.shared().stats()
    }

    /// Sends everything tracked before this call and resolves when all of it is delivered or
    /// dropped (see [`Client::stats`]), or with [`Error::Timeout`] after the builder's
    /// `flush_timeout`. Works on any executor.
    pub async fn flush(&self) -> Result<(), Error> {
        self.flush_within(self.handle.flush_timeout).await
    }

    /// [`Client::flush`] with its own timeout.
    pub async fn flush_within(&self, timeout: Duration) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Flush { deadline: deadline_after(timeout), reply: Reply::Async(tx) })?;
        rx.await.unwrap_or(Err(Error::ShutDown))
    }

    /// [`Client::flush`] for synchronous code: blocks the calling thread (do not call it on
    /// an async executor's thread).
    pub fn flush_blocking(&self, timeout: Duration) -> Result<(), Error> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.send(Command::Flush { deadline: deadline_after(timeout), reply: Reply::Blocking(tx) })?;
        rx.recv().unwrap_or(Err(Error::ShutDown))
    }

    /// Stops taking events, delivers what is queued, and stops the background thread. Resolves
    /// when the queue is empty, or with [`Error::Timeout`] after the builder's
    /// `shutdown_timeout` (what is left stays persisted, or is counted as lost without a
    /// directory). Only the first call shuts down; later calls return [`Error::ShutDown`].
    pub async fn shutdown(&self) -> Result<(), Error> {
        self.shutdown_within(self.handle.shutdown_timeout).await
    }

    /// [`Client::shutdown`] with its own timeout.
    pub async fn shutdown_within(&self, timeout: Duration) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.begin_shutdown(timeout, Reply::Async(tx))?;
        let result = rx.await.unwrap_or(Ok(()));
        self.join_thread();
        result
    }

    /// [`Client::shutdown`] for synchronous code: blocks the calling thread.
    pub fn shutdown_blocking(&self, timeout: Duration) -> Result<(), Error> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.begin_shutdown(timeout, Reply::Blocking(tx))?;
        let result = rx.recv().unwrap_or(Ok(()));
        self.join_thread();
        result
    }

    fn begin_shutdown(&self, timeout: Duration, reply: Reply) -> Result<(), Error> {
        if self.handle.shutdown_started.swap(true, Ordering::AcqRel) {
            return Err(Error::ShutDown);
        }
        self.shared().command(|engine, _, _| {
            let _ = engine.shutdown();
        });
        self.send(Command::Shutdown { deadline: deadline_after(timeout), reply })
    }

    /// The background thread has answered and is about to exit; reap it so nothing outlives
    /// the shutdown.
    fn join_thread(&self) {
        let thread = self.handle.thread.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    fn send(&self, command: Command) -> Result<(), Error> {
        self.handle.commands.send(command).map_err(|_| Error::ShutDown)
    }
}
