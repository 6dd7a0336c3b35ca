//! The driver state behind the wasm exports, in plain Rust so that it builds and is tested on
//! the host too. Every input arrives as a string or a number from JavaScript and every output
//! leaves as one; nothing here may panic on any input.

use core::time::Duration;

use empmix_core::persist::{PersistOp, Snapshot};
use empmix_core::{
    BatchId, Config, Context, Engine, ErrorCode, Event, EventError, FlushTicket, Properties, Response,
    SeededEntropy, SettingError, ShareCode, Timestamp, TrackError, json, protocol, settings,
};

/// Error codes returned by commands (`0` is success): the core's [`ErrorCode`] numbers, which
/// the JS wrapper names from `js/core.js` (generated from the same list).
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
}

/// The typed events [`Driver::track_typed`] builds, by number.
pub mod kind {
    /// `page_view`: the URL, the referrer.
    pub const PAGE_VIEW: u32 = 0;
    /// `registration`: the form id.
    pub const REGISTRATION: u32 = 1;
    /// `checkin`: the method.
    pub const CHECKIN: u32 = 2;
    /// `ai_chat`: the message length.
    pub const AI_CHAT: u32 = 3;
}

/// The commands [`Driver::command`] runs, by number: one entry point for a frontend that pays
/// per export (the web build's `Client.call`; its loader, `js/loader.js`, names them `C_*`, and
/// a test checks the two agree). `at` is the call's time, `n` a number, `a`–`d` strings.
pub mod command {
    /// `track`: name `a`, properties `b` (JSON text, empty for none).
    pub const TRACK: u32 = 0;
    /// `identify`: user id `a`.
    pub const IDENTIFY: u32 = 1;
    /// `alias`: id `a`.
    pub const ALIAS: u32 = 2;
    /// `reset` (logout).
    pub const RESET: u32 = 3;
    /// `register`: super properties `a` (JSON text), keeping values already set when `n` is 1.
    pub const REGISTER: u32 = 4;
    /// `unregister`: key `a`.
    pub const UNREGISTER: u32 = 5;
    /// Opt out (`n` 1) or back in (`n` 0); any other `n` only reads. Returns 1 when opted out.
    pub const OPT: u32 = 6;
    /// `share` (see [`super::Driver::share`]): code `a`, channel `b`, clean target `c`,
    /// conference `d`.
    pub const SHARE: u32 = 7;
    /// The `_s` code `a` the page was opened with; returns 1 when a `share_open` was recorded.
    pub const OPEN_SHARE: u32 = 8;
    /// A typed event: `EVENT` + its [`super::kind`], in conference `a`, with text `b`, referrer
    /// `c`, properties `d` and count `n` (see [`super::Driver::track_typed`]).
    pub const EVENT: u32 = 16;
}

/// The largest whole number JavaScript holds exactly (`Number.MAX_SAFE_INTEGER`).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// The browser's default flush window: shorter than the core's, as a page may close any time.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(10);

/// The browser's send gap ([`empmix_core::ConfigBuilder::send_gap`]): each request costs the
/// page about a millisecond of main thread whatever its size, so under a burst a queue past
/// `flushAt` waits up to this long after the last request (a full batch never waits).
pub const SEND_GAP: Duration = Duration::from_millis(250);

/// The engine's configuration from the page's options (a JSON object, decoded by the core's
/// [`settings::decode`], so a bad value is an error naming it), with persistence when
/// `persist` (the page has storage and did not switch it off).
pub fn configure(options: &str, persist: bool) -> Result<Config, SettingError> {
    let base = Config::builder()
        .persist(persist)
        .context(library_context([""; 6]))
        .flush_interval(DEFAULT_FLUSH_INTERVAL)
        .send_gap(SEND_GAP);
    settings::decode(options, base)
}

/// A [`SettingError`] as the text JavaScript throws (`flushAt must be a whole number above 0`),
/// built without `core::fmt`.
pub fn setting_message(e: &SettingError) -> String {
    let mut out = String::new();
    write_setting_message(e, &mut out);
    out
}

/// [`setting_message`] in place of what `out` held.
pub fn write_setting_message(e: &SettingError, out: &mut String) {
    out.clear();
    let (first, middle, last) = match e {
        SettingError::BadValue { name, expected } => (*name, " must be ", *expected),
        SettingError::Misspelt { written, name } => (written.as_str(), " is spelled ", *name),
    };
    out.push_str(first);
    out.push_str(middle);
    out.push_str(last);
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

/// Properties from JSON text; empty text is none.
fn properties_json(text: &str) -> Result<Properties, json::JsonError> {
    if text.is_empty() { Ok(Properties::new()) } else { Properties::from_json(text) }
}

/// A request body to `POST` and what to hand back with its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Hand this to [`Driver::handle_response`] with the outcome.
    pub handle: u32,
    /// The JSON body.
    pub body: String,
    /// Events in it.
    pub events: usize,
}

/// One engine, its entropy and the requests it has out.
#[derive(Debug)]
pub struct Driver {
    engine: Engine,
    rng: SeededEntropy,
    in_flight: Vec<(u32, BatchId)>,
    ticket: Option<FlushTicket>,
    next_handle: u32,
    /// Restored records skipped as corrupt at start.
    pub restored: u32,
}

impl Driver {
    /// Starts from stored state and events (empty for none) with `config` (see [`configure`]).
    pub fn start(now: f64, seed: u64, config: Config, state: &str, events: Vec<String>) -> Driver {
        let mut rng = SeededEntropy::new(seed);
        let snapshot = Snapshot { state: opt(state), events };
        let (engine, report) = Engine::restore(config, &snapshot, ts(now), &mut rng);
        Driver {
            engine,
            rng,
            in_flight: Vec::new(),
            ticket: None,
            next_handle: 0,
            restored: report.restored as u32,
        }
    }

    /// Replaces the browser context. Empty strings mean unknown; `extra` is a JSON object.
    pub fn set_context(&mut self, fields: [&str; 6]) {
        self.engine.set_context(library_context(fields));
    }

    /// [`Driver::set_context`] from one string, the six fields a line each (missing ones empty).
    pub fn set_context_lines(&mut self, text: &str) {
        let mut lines = crate::text::pieces(text, b'\n');
        let mut next = || lines.next().unwrap_or("");
        self.set_context([next(), next(), next(), next(), next(), next()]);
    }

    /// Tracks an event with properties given as JSON text (empty for none).
    pub fn track(&mut self, now: f64, name: &str, properties: &str) -> u32 {
        let Ok(props) = properties_json(properties) else {
            return code::BAD_PROPERTIES;
        };
        match Event::custom(name, props) {
            Ok(event) => status(self.engine.track(ts(now), &mut self.rng, event)),
            Err(EventError::EmptyName | EventError::NameTooLong | EventError::NameHasControlChars) => {
                code::BAD_NAME
            }
        }
    }

    /// Tracks a typed event ([`kind`]) built by the core's constructor from the arguments: in
    /// `conference` (empty: the configured one, as for shares; with neither, none), with `text`
    /// (the URL, form id or check-in method), `referrer` (page views) and `count` (the chat
    /// message length, a whole number), and `properties` (JSON, empty for none) added on top.
    #[allow(clippy::too_many_arguments)]
    pub fn track_typed(
        &mut self,
        now: f64,
        kind: u32,
        conference: &str,
        text: &str,
        referrer: &str,
        count: f64,
        properties: &str,
    ) -> u32 {
        let Ok(extra) = properties_json(properties) else {
            return code::BAD_PROPERTIES;
        };
        // The event copies the conference, so the engine is free again once it is built.
        let event = {
            let conf = self.engine.share_conference(Some(conference));
            let c = conf.unwrap_or("");
            match kind {
                kind::PAGE_VIEW => Event::page_view(text, conf, Some(referrer).filter(|r| !r.is_empty())),
                kind::REGISTRATION => Event::registration(c, Some(text).filter(|f| !f.is_empty())),
                kind::CHECKIN => Event::checkin(c, text),
                // A length must be a whole number; NaN, negatives and fractions are refused.
                _ if (0.0..=MAX_SAFE_INTEGER).contains(&count) && count == count.trunc() => {
                    Event::ai_chat(c, count as u64)
                }
                _ => return code::BAD_PROPERTIES,
            }
        };
        let event = if extra.is_empty() { event } else { event.with_properties(&extra) };
        status(self.engine.track(ts(now), &mut self.rng, event))
    }

    /// Runs [`command`] `op`; an unknown one is refused as [`code::BAD_NAME`].
    #[allow(clippy::too_many_arguments)]
    pub fn command(&mut self, op: u32, at: f64, n: f64, a: &str, b: &str, c: &str, d: &str) -> u32 {
        match op {
            command::TRACK => self.track(at, a, b),
            command::IDENTIFY => self.identify(at, a),
            command::ALIAS => self.alias(at, a),
            command::RESET => {
                self.reset(at);
                code::OK
            }
            command::REGISTER => self.register(a, n == 1.0),
            command::UNREGISTER => {
                self.unregister(a);
                code::OK
            }
            command::OPT => {
                if n == 0.0 || n == 1.0 {
                    self.set_opted_out(n == 1.0);
                }
                u32::from(self.is_opted_out())
            }
            command::SHARE => self.share(at, a, b, c, d),
            command::OPEN_SHARE => u32::from(self.open_share(at, a)),
            _ if (command::EVENT..=command::EVENT + kind::AI_CHAT).contains(&op) => {
                self.track_typed(at, op - command::EVENT, a, b, c, n, d)
            }
            _ => code::BAD_NAME,
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

    /// The `share` event for `code` (made by the loader from [`ShareCode::ALPHABET`], so that
    /// `createShare` can return its link before the engine runs) and `clean_target` (the loader
    /// has removed `_s` from it and adds `_s=<code>` itself), in `conference` (empty: the
    /// engine's fallbacks). A malformed code is refused as a bad name.
    pub fn share(
        &mut self,
        now: f64,
        code: &str,
        channel: &str,
        clean_target: &str,
        conference: &str,
    ) -> u32 {
        let Some(code) = ShareCode::parse(code) else {
            return code::BAD_NAME;
        };
        status(self.engine.share_with_code(
            ts(now),
            &mut self.rng,
            &code,
            channel,
            clean_target,
            Some(conference),
        ))
    }

    /// A fresh share code from the engine's entropy, for a driver that makes its links after
    /// the engine runs (the raw-exports package) and hands it to [`Driver::share`].
    pub fn new_share_code(&mut self) -> String {
        ShareCode::generate(&mut self.rng).as_str().to_string()
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

    /// The next storage change for the page's storage (see [`crate::tabs`]).
    pub fn poll_persist(&mut self) -> Option<PersistOp> {
        self.engine.poll_persist()
    }

    fn hand_out(&mut self, t: Option<empmix_core::Transmit>) -> Option<Request> {
        let t = t?;
        self.next_handle = self.next_handle.wrapping_add(1);
        self.in_flight.push((self.next_handle, t.batch));
        Some(Request { handle: self.next_handle, body: t.body, events: t.events })
    }

    /// The next request to `POST`, if one is due.
    pub fn poll_transmit(&mut self, now: f64) -> Option<Request> {
        let t = self.engine.poll_transmit(ts(now));
        self.hand_out(t)
    }

    /// The next request of at most `max_bytes` for a page that is going away (a beacon, or a
    /// `keepalive` fetch), if any is waiting.
    pub fn poll_unload_transmit(&mut self, now: f64, max_bytes: u32) -> Option<Request> {
        let t = self.engine.poll_unload_transmit(ts(now), max_bytes as usize);
        self.hand_out(t)
    }

    /// The outcome of the request with `handle`: an HTTP status, or 0 for a network failure,
    /// with the `Retry-After` header as sent (empty for none; seconds or an HTTP date, read by
    /// the core's [`protocol::retry_after`]) and the body.
    pub fn handle_response(&mut self, now: f64, handle: u32, status: u32, retry_after: &str, body: &str) {
        let Some(pos) = self.in_flight.iter().position(|(h, _)| *h == handle) else {
            return;
        };
        let (_, batch) = self.in_flight.swap_remove(pos);
        let response = if status == 0 || status > 999 {
            Response::Failed
        } else {
            let retry_after = protocol::retry_after(retry_after, ts(now));
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

    /// The counters as a JSON object, with the driver's own (`extra`) after the engine's.
    pub fn stats(&self, extra: &[(&str, u64)]) -> String {
        // The keys apart from the values, so that the keys are one piece of data, not code.
        static KEYS: [&str; 13] = [
            "queued",
            "inFlight",
            "delivered",
            "retried",
            "requests",
            "dropped",
            "droppedQueueFull",
            "droppedExpired",
            "droppedTooLarge",
            "droppedRejected",
            "droppedOptedOut",
            "corruptRecords",
            "restored",
        ];
        let s = self.engine.stats();
        let d = s.dropped;
        let values: [u64; 13] = [
            s.queued as u64,
            s.in_flight as u64,
            s.delivered,
            s.retried,
            s.requests,
            d.total(),
            d.queue_full,
            d.expired,
            d.too_large,
            d.rejected,
            d.opted_out,
            s.corrupt_records,
            u64::from(self.restored),
        ];
        let mut out = String::with_capacity(300);
        let mut sep = '{';
        for (key, value) in KEYS.iter().zip(values) {
            out.push(sep);
            sep = ',';
            json::write_key(&mut out, key);
            json::write_u64(&mut out, value);
        }
        for (key, value) in extra {
            out.push(sep);
            sep = ',';
            json::write_key(&mut out, key);
            json::write_u64(&mut out, *value);
        }
        out.push('}');
        out
    }
}

/// The context with this library's name and version and the browser's fields (os, browser,
/// locale, url, referrer, extra JSON object; empty strings are unknown), each set once.
fn library_context(fields: [&str; 6]) -> Context {
    let [os, browser, locale, url, referrer, extra] = fields;
    Context {
        library_name: "empmix-web".into(),
        library_version: env!("CARGO_PKG_VERSION").into(),
        os: opt(os),
        browser: opt(browser),
        app: None,
        locale: opt(locale),
        url: opt(url),
        referrer: opt(referrer),
        extra: Properties::from_json(extra).unwrap_or_default(),
    }
}
