//! The engine handle: creation from a snapshot, and the commands.

use std::collections::VecDeque;
use std::ffi::{CStr, c_char};
use std::sync::{Mutex, MutexGuard};

use empmix_core::persist::Snapshot;
use empmix_core::{BatchId, Engine, Event, FlushTicket, SeededEntropy, Timestamp, TrackError};
use empmix_ffi_boundary::{
    EmpmixResult, EmpmixStats, Failure, clear_outs, free_boxed, guard, optional_str, properties,
    required_str, track_failure, write_out, write_string,
};

use crate::config::EmpmixEngineConfig;

/// An opaque engine. Create with `empmix_engine_create`, free with `empmix_engine_free`.
#[derive(Debug)]
pub struct EmpmixEngine {
    state: Mutex<State>,
}

/// Everything behind the engine's lock.
#[derive(Debug)]
pub(crate) struct State {
    pub engine: Engine,
    pub rng: SeededEntropy,
    /// The full ingest URL and the key, copied into each request.
    pub url: String,
    pub ingest_key: String,
    /// Requests handed out and not answered yet: the host's id and the core's batch.
    pub requests: Vec<(u64, BatchId)>,
    pub next_request: u64,
    /// Tickets of flushes not known to be done; `first_ticket` is the number of the front one.
    /// Numbers below it are done.
    tickets: VecDeque<FlushTicket>,
    first_ticket: u64,
    shut_down: bool,
}

impl State {
    /// A host-visible number for a flush ticket (the same number for a ticket equal to the
    /// last one, so repeated flushes of nothing new do not grow the list).
    fn ticket_number(&mut self, ticket: FlushTicket) -> u64 {
        if self.tickets.back() != Some(&ticket) {
            self.tickets.push_back(ticket);
        }
        self.first_ticket + self.tickets.len() as u64 - 1
    }

    /// Whether the flush numbered `number` is done. Done tickets are dropped from the front.
    fn is_flushed(&mut self, number: u64) -> Result<bool, Failure> {
        while let Some(front) = self.tickets.front() {
            if !self.engine.is_flushed(*front) {
                break;
            }
            self.tickets.pop_front();
            self.first_ticket += 1;
        }
        if number < self.first_ticket {
            return Ok(true);
        }
        let index = usize::try_from(number - self.first_ticket).unwrap_or(usize::MAX);
        match self.tickets.get(index) {
            Some(ticket) => Ok(self.engine.is_flushed(*ticket)),
            None => Err(Failure::new(
                EmpmixResult::InvalidConfig,
                format!("flush ticket {number} was not returned by this engine"),
            )),
        }
    }

    /// Refuses a command after shutdown.
    fn running(&mut self) -> Result<&mut Self, Failure> {
        if self.shut_down {
            Err(Failure::new(EmpmixResult::ShutDown, "the engine was shut down"))
        } else {
            Ok(self)
        }
    }
}

/// The state behind a handle, locked.
///
/// # Safety
/// `engine` is NULL or a live handle from `empmix_engine_create`.
pub(crate) unsafe fn lock<'a>(engine: *const EmpmixEngine) -> Result<MutexGuard<'a, State>, Failure> {
    // SAFETY: per the contract, a non-NULL pointer is a live handle.
    let engine = unsafe { engine.as_ref() }.ok_or_else(|| Failure::null("engine"))?;
    engine.state.lock().map_err(|_| {
        Failure::new(EmpmixResult::Panic, "an earlier call on this engine panicked; create a new engine")
    })
}

/// Runs a command on a running engine.
///
/// # Safety
/// `engine` is NULL or a live handle.
unsafe fn command(
    engine: *const EmpmixEngine,
    body: impl FnOnce(&mut State) -> Result<(), Failure>,
) -> EmpmixResult {
    guard(|| {
        // SAFETY: forwarded contract.
        let mut state = unsafe { lock(engine) }?;
        body(state.running()?)
    })
}

/// A clock value from the host.
pub(crate) fn at(now_ms: u64) -> Timestamp {
    Timestamp::from_unix_millis(now_ms)
}

/// Tracks a typed event.
fn track(state: &mut State, now_ms: u64, event: Event) -> Result<(), Failure> {
    let State { engine, rng, .. } = state;
    engine.track(at(now_ms), rng, event).map(drop).map_err(|e| track_failure(&e))
}

/// A stored string read leniently: storage can hold torn bytes, which the core then counts as
/// a corrupt record (or a missing state) instead of failing the start.
///
/// # Safety
/// `ptr` is non-NULL and NUL-terminated.
unsafe fn stored_text(ptr: *const c_char) -> String {
    // SAFETY: per the contract.
    unsafe { CStr::from_ptr(ptr) }.to_str().map(str::to_string).unwrap_or_default()
}

/// Creates an engine from `config`, continuing from what the app stored: `state` (the last
/// `EMPMIX_PERSIST_SAVE_STATE` applied, or NULL) and `records` (`record_count` event records
/// from `EMPMIX_PERSIST_APPEND` operations not yet removed, in the order appended; NULL with
/// 0 for none). `now_ms` is the wall clock, `seed` 64 bits from the OS's randomness (a fixed
/// seed gives every install the same ids). Restored events are sent at once. On success
/// `*out_engine` is the new handle; on failure it is set to NULL. Poll persistence right
/// after: a start saves the state and removes records it dropped.
///
/// # Safety
/// `config` is NULL or a live configuration; `state` is NULL or NUL-terminated; `records` is
/// NULL or points to `record_count` pointers, each NUL-terminated; `out_engine` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_create(
    config: *const EmpmixEngineConfig,
    state: *const c_char,
    records: *const *const c_char,
    record_count: usize,
    now_ms: u64,
    seed: u64,
    out_engine: *mut *mut EmpmixEngine,
) -> EmpmixResult {
    guard(|| {
        // SAFETY: per the contract.
        unsafe { clear_outs(&[(out_engine, "out_engine")]) }?;
        // SAFETY: per the contract.
        let config = unsafe { config.as_ref() }.ok_or_else(|| Failure::null("config"))?;
        let built = config.build()?;
        let mut snapshot = Snapshot::default();
        if !state.is_null() {
            // SAFETY: non-NULL and NUL-terminated per the contract.
            snapshot.state = Some(unsafe { stored_text(state) }).filter(|s| !s.is_empty());
        }
        if record_count > 0 {
            if records.is_null() {
                return Err(Failure::null("records"));
            }
            // SAFETY: `record_count` readable pointers per the contract.
            let pointers = unsafe { std::slice::from_raw_parts(records, record_count) };
            for (i, &record) in pointers.iter().enumerate() {
                if record.is_null() {
                    return Err(Failure::null(&format!("records[{i}]")));
                }
                // SAFETY: non-NULL and NUL-terminated per the contract.
                snapshot.events.push(unsafe { stored_text(record) });
            }
        }
        let mut rng = SeededEntropy::new(seed);
        let (engine, _report) = Engine::restore(built.config, &snapshot, at(now_ms), &mut rng);
        let state = State {
            engine,
            rng,
            url: built.url,
            ingest_key: built.ingest_key,
            requests: Vec::new(),
            next_request: 1,
            tickets: VecDeque::new(),
            first_ticket: 1,
            shut_down: false,
        };
        let handle = Box::into_raw(Box::new(EmpmixEngine { state: Mutex::new(state) }));
        // SAFETY: checked non-NULL and writable above.
        unsafe { *out_engine = handle };
        Ok(())
    })
}

/// Frees an engine. NULL is ignored. Without a prior shutdown drained to idle, what is still
/// unsent is in the app's storage (with persistence on, sent by the next engine created from
/// it) or lost. Requests, operations and strings it returned stay valid; answers to requests
/// still out must not be reported to it (the handle is gone).
///
/// # Safety
/// `engine` is NULL or a live handle, not used by another thread during or after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_free(engine: *mut EmpmixEngine) {
    // SAFETY: a live handle made by `Box::into_raw`, freed once per the contract.
    unsafe { free_boxed(engine) }
}

/// Tracks an event named `name` with `properties_json` (a JSON object, or NULL for none).
///
/// # Safety
/// `engine` is NULL or a live handle; strings are NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_track(
    engine: *const EmpmixEngine,
    now_ms: u64,
    name: *const c_char,
    properties_json: *const c_char,
) -> EmpmixResult {
    // SAFETY: per the contract.
    unsafe {
        command(engine, |s| {
            let (name, props) = (required_str(name, "name")?, properties(properties_json, false)?);
            let event = Event::custom(name, props).map_err(|e| track_failure(&TrackError::from(e)))?;
            track(s, now_ms, event)
        })
    }
}

/// Tracks a page view. `conference_id` and `referrer` may be NULL.
///
/// # Safety
/// As `empmix_engine_track`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_page_view(
    engine: *const EmpmixEngine,
    now_ms: u64,
    url: *const c_char,
    conference_id: *const c_char,
    referrer: *const c_char,
) -> EmpmixResult {
    // SAFETY: per the contract.
    unsafe {
        command(engine, |s| {
            let url = required_str(url, "url")?;
            let conf = optional_str(conference_id, "conference_id")?;
            let referrer = optional_str(referrer, "referrer")?;
            track(s, now_ms, Event::page_view(url, conf, referrer))
        })
    }
}

/// Tracks a registration. `form_id` may be NULL.
///
/// # Safety
/// As `empmix_engine_track`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_registration(
    engine: *const EmpmixEngine,
    now_ms: u64,
    conference_id: *const c_char,
    form_id: *const c_char,
) -> EmpmixResult {
    // SAFETY: per the contract.
    unsafe {
        command(engine, |s| {
            let conf = required_str(conference_id, "conference_id")?;
            let form = optional_str(form_id, "form_id")?;
            track(s, now_ms, Event::registration(conf, form))
        })
    }
}

/// Tracks a check-in by `method` (for example "qr").
///
/// # Safety
/// As `empmix_engine_track`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_checkin(
    engine: *const EmpmixEngine,
    now_ms: u64,
    conference_id: *const c_char,
    method: *const c_char,
) -> EmpmixResult {
    // SAFETY: per the contract.
    unsafe {
        command(engine, |s| {
            let conf = required_str(conference_id, "conference_id")?;
            let method = required_str(method, "method")?;
            track(s, now_ms, Event::checkin(conf, method))
        })
    }
}

/// Tracks an AI chat message of `message_length` characters.
///
/// # Safety
/// As `empmix_engine_track`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_ai_chat(
    engine: *const EmpmixEngine,
    now_ms: u64,
    conference_id: *const c_char,
    message_length: u64,
) -> EmpmixResult {
    // SAFETY: per the contract.
    unsafe {
        command(engine, |s| {
            let conf = required_str(conference_id, "conference_id")?;
            track(s, now_ms, Event::ai_chat(conf, message_length))
        })
    }
}

/// Identifies the user: later events carry `user_id`, and an `identify` event links the
/// anonymous id to it (none when already identified as this user).
///
/// # Safety
/// As `empmix_engine_track`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_identify(
    engine: *const EmpmixEngine,
    now_ms: u64,
    user_id: *const c_char,
) -> EmpmixResult {
    // SAFETY: per the contract.
    unsafe {
        command(engine, |s| {
            let user = required_str(user_id, "user_id")?;
            let State { engine, rng, .. } = s;
            engine.identify(at(now_ms), rng, user).map(drop).map_err(|e| track_failure(&e))
        })
    }
}

/// Links another id of this user to the current one.
///
/// # Safety
/// As `empmix_engine_track`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_alias(
    engine: *const EmpmixEngine,
    now_ms: u64,
    alias: *const c_char,
) -> EmpmixResult {
    // SAFETY: per the contract.
    unsafe {
        command(engine, |s| {
            let alias = required_str(alias, "alias")?;
            let State { engine, rng, .. } = s;
            engine.alias(at(now_ms), rng, alias).map(drop).map_err(|e| track_failure(&e))
        })
    }
}

/// Logout: a new anonymous id, no super properties, a new session, no attribution.
///
/// # Safety
/// `engine` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_reset(engine: *const EmpmixEngine, now_ms: u64) -> EmpmixResult {
    // SAFETY: per the contract.
    unsafe {
        command(engine, |s| {
            let State { engine, rng, .. } = s;
            engine.reset(at(now_ms), rng);
            Ok(())
        })
    }
}

/// Registers super properties (a JSON object) sent with every later event; `once` keeps
/// values already registered, otherwise these win.
///
/// # Safety
/// As `empmix_engine_track`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_register(
    engine: *const EmpmixEngine,
    properties_json: *const c_char,
    once: bool,
) -> EmpmixResult {
    // SAFETY: per the contract.
    unsafe {
        command(engine, |s| {
            let props = properties(properties_json, true)?;
            if once {
                s.engine.register_once(&props);
            } else {
                s.engine.register(&props);
            }
            Ok(())
        })
    }
}

/// Removes one super property.
///
/// # Safety
/// As `empmix_engine_track`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_unregister(
    engine: *const EmpmixEngine,
    key: *const c_char,
) -> EmpmixResult {
    // SAFETY: per the contract.
    unsafe {
        command(engine, |s| {
            s.engine.unregister(required_str(key, "key")?);
            Ok(())
        })
    }
}

/// Opts out (`opted_out` true: stops tracking and purges unsent events) or back in.
/// Persisted.
///
/// # Safety
/// `engine` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_set_opted_out(
    engine: *const EmpmixEngine,
    opted_out: bool,
) -> EmpmixResult {
    // SAFETY: per the contract.
    unsafe {
        command(engine, |s| {
            if opted_out {
                s.engine.opt_out();
            } else {
                s.engine.opt_in();
            }
            Ok(())
        })
    }
}

/// Makes a share link for `target_url` on `channel`: `*out_code` is the new share code and
/// `*out_url` the URL with `_s=<code>`; free both with `empmix_engine_string_free`. On failure
/// both are set to NULL. The share counts in `conference_id`; when it is NULL, in the
/// configured conference, else in the `conference_id` super property.
///
/// # Safety
/// As `empmix_engine_track`; `out_code` and `out_url` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_create_share(
    engine: *const EmpmixEngine,
    now_ms: u64,
    channel: *const c_char,
    target_url: *const c_char,
    conference_id: *const c_char,
    out_code: *mut *mut c_char,
    out_url: *mut *mut c_char,
) -> EmpmixResult {
    // SAFETY: per the contract.
    unsafe {
        command(engine, |s| {
            clear_outs(&[(out_code, "out_code"), (out_url, "out_url")])?;
            let channel = required_str(channel, "channel")?;
            let target = required_str(target_url, "target_url")?;
            let conf = optional_str(conference_id, "conference_id")?;
            let State { engine, rng, .. } = s;
            let link =
                engine.create_share(at(now_ms), rng, channel, target, conf).map_err(|e| track_failure(&e))?;
            write_string(out_code, link.code.as_str());
            write_string(out_url, &link.url);
            Ok(())
        })
    }
}

/// Handles a URL the app was opened with: records a `share_open` for its `_s` code (unless it
/// is this user's own) and makes it this user's attribution. `*out_clean_url` is the URL
/// without `_s`, to show and to share on; free it with `empmix_engine_string_free`.
///
/// # Safety
/// As `empmix_engine_track`; `out_clean_url` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_handle_incoming_url(
    engine: *const EmpmixEngine,
    now_ms: u64,
    url: *const c_char,
    out_clean_url: *mut *mut c_char,
) -> EmpmixResult {
    // SAFETY: per the contract.
    unsafe {
        command(engine, |s| {
            clear_outs(&[(out_clean_url, "out_clean_url")])?;
            let url = required_str(url, "url")?;
            let State { engine, rng, .. } = s;
            let incoming = engine
                .handle_incoming_url(at(now_ms), rng, url)
                .map_err(|e| track_failure(&TrackError::from(e)))?;
            write_string(out_clean_url, &incoming.url);
            Ok(())
        })
    }
}

/// Asks for everything tracked so far to be sent now (backoff still applies): `*out_ticket`
/// is a number for `empmix_engine_is_flushed`. Then drive as after any command.
///
/// # Safety
/// `engine` is NULL or a live handle; `out_ticket` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_flush(
    engine: *const EmpmixEngine,
    out_ticket: *mut u64,
) -> EmpmixResult {
    guard(|| {
        // SAFETY: per the contract.
        let mut s = unsafe { lock(engine) }?;
        let ticket = s.engine.flush();
        let number = s.ticket_number(ticket);
        // SAFETY: per the contract.
        unsafe { write_out(out_ticket, "out_ticket", number) }
    })
}

/// `*out_done` is whether every event tracked before the flush that returned `ticket` is
/// delivered or dropped (and counted). A number this engine never returned is
/// `EMPMIX_ERR_INVALID_CONFIG` (the core has no code for a bad argument value).
///
/// # Safety
/// `engine` is NULL or a live handle; `out_done` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_is_flushed(
    engine: *const EmpmixEngine,
    ticket: u64,
    out_done: *mut bool,
) -> EmpmixResult {
    guard(|| {
        // SAFETY: per the contract.
        let done = unsafe { lock(engine) }?.is_flushed(ticket)?;
        // SAFETY: per the contract.
        unsafe { write_out(out_done, "out_done", done) }
    })
}

/// Stops taking events (later commands return `EMPMIX_ERR_SHUT_DOWN`) and asks for everything
/// waiting to be sent: drive until `empmix_engine_is_idle` or your deadline. `*out_ticket`
/// is as for `empmix_engine_flush`. A second call is harmless.
///
/// # Safety
/// `engine` is NULL or a live handle; `out_ticket` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_shutdown(
    engine: *const EmpmixEngine,
    out_ticket: *mut u64,
) -> EmpmixResult {
    guard(|| {
        // SAFETY: per the contract.
        let mut s = unsafe { lock(engine) }?;
        s.shut_down = true;
        let ticket = s.engine.shutdown();
        let number = s.ticket_number(ticket);
        // SAFETY: per the contract.
        unsafe { write_out(out_ticket, "out_ticket", number) }
    })
}

/// `*out_idle` is whether nothing is waiting or in flight.
///
/// # Safety
/// `engine` is NULL or a live handle; `out_idle` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_is_idle(
    engine: *const EmpmixEngine,
    out_idle: *mut bool,
) -> EmpmixResult {
    guard(|| {
        // SAFETY: per the contract.
        let idle = unsafe { lock(engine) }?.engine.is_idle();
        // SAFETY: per the contract.
        unsafe { write_out(out_idle, "out_idle", idle) }
    })
}

/// Copies the engine's counters into `*out_stats`.
///
/// # Safety
/// `engine` is NULL or a live handle; `out_stats` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_stats(
    engine: *const EmpmixEngine,
    out_stats: *mut EmpmixStats,
) -> EmpmixResult {
    guard(|| {
        // SAFETY: per the contract.
        let stats = EmpmixStats::from(unsafe { lock(engine) }?.engine.stats());
        // SAFETY: per the contract.
        unsafe { write_out(out_stats, "out_stats", stats) }
    })
}
