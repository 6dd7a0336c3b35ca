//! The driver state behind the wasm exports, in plain Rust so that it builds and is tested on
//! the host too. Every input arrives as a string or a number from JavaScript and every output
//! leaves as one; nothing here may panic on any input.

use core::time::Duration;

use empmix_core::persist::{PersistOp, Snapshot};
use empmix_core::{
    AttributionModel, BatchId, Config, Context, Engine, ErrorCode, Event, EventError, FlushTicket,
    Properties, Response, SeededEntropy, ShareCode, Timestamp, TrackError, json,
};

/// Error codes returned by commands (`0` is success): the core's [`ErrorCode`] numbers, which
/// the JS wrapper names from `js/codes.js` (generated from the same list).
pub mod code {
    use empmix_core::ErrorCode;

    /// Done.
    pub const OK: u32 = ErrorCode::Ok as u32;
    /// No engine: `start` was not called, or a call is already running.
    pub const NOT_STARTED: u32 = ErrorCode::NotStarted as u32;
    /// Properties were not a JSON object.
    pub const BAD_PROPERTIES: u32 = ErrorCode::InvalidJson as u32;
    /// The user has opted out.
    pub const OPTED_OUT: u32 = ErrorCode::OptedOut as u32;
    /// The client is shut down.
    pub const SHUT_DOWN: u32 = ErrorCode::ShutDown as u32;
    /// An event name, user id, alias or channel is empty, too long or has control characters.
    pub const BAD_NAME: u32 = ErrorCode::InvalidName as u32;
    /// The event is over 32 KiB encoded.
    pub const TOO_LARGE: u32 = ErrorCode::TooLarge as u32;
    /// The queue is full.
    pub const QUEUE_FULL: u32 = ErrorCode::QueueFull as u32;
    /// A URL is not absolute.
    pub const BAD_URL: u32 = ErrorCode::InvalidUrl as u32;
    /// A setting was out of range; defaults were used.
    pub const BAD_CONFIG: u32 = ErrorCode::InvalidConfig as u32;
}

/// Settings from the page, as plain numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Flush when this many events are queued.
    pub flush_at: u32,
    /// Flush when the oldest event waited this long, in milliseconds.
    pub flush_interval_ms: f64,
    /// Most events held unsent.
    pub max_queue: u32,
    /// Last-touch instead of first-touch attribution.
    pub last_touch: bool,
    /// Emit storage operations.
    pub persist: bool,
}

/// Milliseconds from JavaScript (`Date.now()`) as a timestamp; NaN and negatives become 0.
pub fn ts(ms: f64) -> Timestamp {
    Timestamp::from_unix_millis(ms as u64)
}

fn error_code(e: &TrackError) -> u32 {
    ErrorCode::from(e) as u32
}

fn status<T>(r: Result<T, TrackError>) -> u32 {
    match r {
        Ok(_) => code::OK,
        Err(e) => error_code(&e),
    }
}

fn opt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// One engine, its entropy and the requests it has out.
#[derive(Debug)]
pub struct Driver {
    engine: Engine,
    rng: SeededEntropy,
    in_flight: Vec<(u32, BatchId)>,
    ticket: Option<FlushTicket>,
    next_handle: u32,
    /// The handle of the request last returned by a poll.
    pub last_handle: u32,
    /// Restored records skipped as corrupt at start.
    pub restored: u32,
}

impl Driver {
    /// Starts from stored state and events (empty for none), for the page's configured
    /// `conference` (empty for none). Returns the driver and [`code::BAD_CONFIG`] when a
    /// setting was out of range (defaults are used then).
    pub fn start(
        now: f64,
        seed: u64,
        settings: Settings,
        conference: &str,
        state: &str,
        events: Vec<String>,
    ) -> (Driver, u32) {
        let model =
            if settings.last_touch { AttributionModel::LastTouch } else { AttributionModel::FirstTouch };
        let base = || {
            Config::builder()
                .persist(settings.persist)
                .context(library_context())
                .conference_id(opt(conference))
        };
        let built = base()
            .flush_at(settings.flush_at as usize)
            .flush_interval(Duration::from_millis(settings.flush_interval_ms as u64))
            .max_queue(settings.max_queue as usize)
            .attribution_model(model)
            .build();
        let (config, result) = match built {
            Ok(c) => (c, code::OK),
            Err(_) => (base().build().unwrap_or_default(), code::BAD_CONFIG),
        };
        let mut rng = SeededEntropy::new(seed);
        let snapshot = Snapshot { state: opt(state), events };
        let (engine, report) = Engine::restore(config, &snapshot, ts(now), &mut rng);
        let driver = Driver {
            engine,
            rng,
            in_flight: Vec::new(),
            ticket: None,
            next_handle: 0,
            last_handle: 0,
            restored: report.restored as u32,
        };
        (driver, result)
    }

    /// Replaces the browser context. Empty strings mean unknown; `extra` is a JSON object.
    pub fn set_context(&mut self, fields: [&str; 6]) {
        let [os, browser, locale, url, referrer, extra] = fields;
        let mut ctx = library_context();
        ctx.os = opt(os);
        ctx.browser = opt(browser);
        ctx.locale = opt(locale);
        ctx.url = opt(url);
        ctx.referrer = opt(referrer);
        ctx.extra = Properties::from_json(extra).unwrap_or_default();
        self.engine.set_context(ctx);
    }

    /// Tracks an event with properties given as JSON text (empty for none).
    pub fn track(&mut self, now: f64, name: &str, properties: &str) -> u32 {
        let props =
            if properties.is_empty() { Ok(Properties::new()) } else { Properties::from_json(properties) };
        let Ok(props) = props else {
            return code::BAD_PROPERTIES;
        };
        match Event::custom(name, props) {
            Ok(event) => status(self.engine.track(ts(now), &mut self.rng, event)),
            Err(EventError::EmptyName | EventError::NameTooLong | EventError::NameHasControlChars) => {
                code::BAD_NAME
            }
        }
    }

    /// See [`Engine::identify`].
    pub fn identify(&mut self, now: f64, user_id: &str) -> u32 {
        status(self.engine.identify(ts(now), &mut self.rng, user_id))
    }

    /// See [`Engine::alias`].
    pub fn alias(&mut self, now: f64, alias: &str) -> u32 {
        status(self.engine.alias(ts(now), &mut self.rng, alias))
    }

    /// See [`Engine::reset`].
    pub fn reset(&mut self, now: f64) {
        self.engine.reset(ts(now), &mut self.rng);
    }

    /// Super properties as JSON text; `once` keeps values already registered.
    pub fn register(&mut self, properties: &str, once: bool) -> u32 {
        let Ok(props) = Properties::from_json(properties) else {
            return code::BAD_PROPERTIES;
        };
        if once {
            self.engine.register_once(&props);
        } else {
            self.engine.register(&props);
        }
        code::OK
    }

    /// See [`Engine::unregister`].
    pub fn unregister(&mut self, key: &str) {
        self.engine.unregister(key);
    }

    /// Opts out (`true`) or back in.
    pub fn set_opted_out(&mut self, out: bool) {
        if out {
            self.engine.opt_out();
        } else {
            self.engine.opt_in();
        }
    }

    /// Whether the user opted out.
    pub fn is_opted_out(&self) -> bool {
        self.engine.is_opted_out()
    }

    /// A fresh share code and its `share` event for `clean_target` (JavaScript has removed
    /// `_s` from it and adds `_s=<code>` itself, with the browser's own URL parsing), in
    /// `conference` (empty: the engine's fallbacks).
    pub fn share(
        &mut self,
        now: f64,
        channel: &str,
        clean_target: &str,
        conference: &str,
    ) -> Result<String, u32> {
        match self.engine.share(ts(now), &mut self.rng, channel, clean_target, Some(conference)) {
            Ok(code) => Ok(code.as_str().to_string()),
            Err(e) => Err(error_code(&e)),
        }
    }

    /// The `_s` value of the address the page was opened with: records the open when it is a
    /// well-formed code that is not this device's own. Returns whether it was recorded.
    pub fn open_share(&mut self, now: f64, code: &str) -> bool {
        ShareCode::parse(code).is_some_and(|code| self.engine.open_share(ts(now), &mut self.rng, &code))
    }

    /// The state record another tab of this site saved (its `storage` event): see
    /// [`Engine::adopt_state`]. Returns whether it was taken.
    pub fn adopt_state(&mut self, state: &str) -> bool {
        self.engine.adopt_state(state)
    }

    /// Asks for everything tracked so far to be sent (see [`Driver::is_flushed`]).
    pub fn flush(&mut self) {
        self.ticket = Some(self.engine.flush());
    }

    /// Whether everything tracked before the latest flush is delivered or dropped (a later
    /// flush covers every earlier one).
    pub fn is_flushed(&self) -> bool {
        self.ticket.is_none_or(|t| self.engine.is_flushed(t))
    }

    /// The next storage change, encoded: `a<event id><record>`, `r<event ids…>` (36 characters
    /// each), `s<state>`, or empty for none.
    pub fn poll_persist(&mut self) -> String {
        match self.engine.poll_persist() {
            None => String::new(),
            Some(PersistOp::Append { id, record }) => {
                let mut out = String::with_capacity(37 + record.len());
                out.push('a');
                id.write_to(&mut out);
                out.push_str(&record);
                out
            }
            Some(PersistOp::Remove { ids }) => {
                let mut out = String::with_capacity(1 + 36 * ids.len());
                out.push('r');
                for id in ids {
                    id.write_to(&mut out);
                }
                out
            }
            Some(PersistOp::SaveState { state }) => {
                let mut out = String::with_capacity(1 + state.len());
                out.push('s');
                out.push_str(&state);
                out
            }
        }
    }

    fn hand_out(&mut self, t: Option<empmix_core::Transmit>) -> String {
        match t {
            None => String::new(),
            Some(t) => {
                self.next_handle = self.next_handle.wrapping_add(1);
                self.in_flight.push((self.next_handle, t.batch));
                self.last_handle = self.next_handle;
                t.body
            }
        }
    }

    /// The next request body to `POST`, or empty; its handle is then in `last_handle`.
    pub fn poll_transmit(&mut self, now: f64) -> String {
        let t = self.engine.poll_transmit(ts(now));
        self.hand_out(t)
    }

    /// The next body of at most `max_bytes` for a beacon at unload, or empty.
    pub fn poll_unload_transmit(&mut self, now: f64, max_bytes: u32) -> String {
        let t = self.engine.poll_unload_transmit(ts(now), max_bytes as usize);
        self.hand_out(t)
    }

    /// The outcome of the request with `handle`: an HTTP status, or 0 for a network failure.
    /// `retry_after_ms` below zero means no `Retry-After`.
    pub fn handle_response(&mut self, now: f64, handle: u32, status: u32, retry_after_ms: f64, body: &str) {
        let Some(pos) = self.in_flight.iter().position(|(h, _)| *h == handle) else {
            return;
        };
        let (_, batch) = self.in_flight.swap_remove(pos);
        let response = if status == 0 || status > 999 {
            Response::Failed
        } else {
            let retry_after = (retry_after_ms >= 0.0).then(|| Duration::from_millis(retry_after_ms as u64));
            Response::Status { status: status as u16, retry_after, body }
        };
        self.engine.handle_response(ts(now), &mut self.rng, batch, response);
    }

    /// When to call [`Driver::handle_timeout`] next (ms since the epoch), or -1 for never.
    pub fn poll_timeout(&mut self, now: f64) -> f64 {
        match self.engine.poll_timeout(ts(now)) {
            Some(t) => t.as_unix_millis() as f64,
            None => -1.0,
        }
    }

    /// The timer fired.
    pub fn handle_timeout(&mut self, now: f64) {
        self.engine.handle_timeout(ts(now));
    }

    /// `distinct_id`, `anonymous_id` or `session_id` (by `which`: 0, 1, 2).
    pub fn id(&self, which: u32) -> String {
        match which {
            0 => self.engine.distinct_id(),
            1 => self.engine.anonymous_id(),
            _ => self.engine.session_id(),
        }
        .to_string()
    }

    /// The counters as a JSON object.
    pub fn stats(&self) -> String {
        let s = self.engine.stats();
        let d = s.dropped;
        let fields: [(&str, u64); 13] = [
            ("queued", s.queued as u64),
            ("inFlight", s.in_flight as u64),
            ("delivered", s.delivered),
            ("retried", s.retried),
            ("requests", s.requests),
            ("dropped", d.total()),
            ("droppedQueueFull", d.queue_full),
            ("droppedExpired", d.expired),
            ("droppedTooLarge", d.too_large),
            ("droppedRejected", d.rejected),
            ("droppedOptedOut", d.opted_out),
            ("corruptRecords", s.corrupt_records),
            ("restored", u64::from(self.restored)),
        ];
        let mut out = String::with_capacity(300);
        out.push('{');
        for (i, (key, value)) in fields.into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json::write_key(&mut out, key);
            json::write_u64(&mut out, value);
        }
        out.push('}');
        out
    }
}

fn library_context() -> Context {
    Context {
        library_name: "empmix-web".into(),
        library_version: env!("CARGO_PKG_VERSION").into(),
        ..Context::default()
    }
}
