//! The raw wasm exports: one engine per page, driven by the hand-written `js/index.js`.
//!
//! The boundary is numbers only, with strings passed through two byte buffers so no binding
//! generator is needed (its glue would cost more than this whole module's budget). JavaScript
//! asks for an input buffer with [`em_in`], writes its string arguments there as UTF-8 one after
//! another, and passes their byte lengths; a function returning a string leaves it in the
//! output buffer ([`em_out`]) and returns its length, or -1 for none. Nothing here can panic:
//! lengths past the input are read as empty strings, invalid UTF-8 as empty, and with no
//! engine every function does nothing and returns [`code::NOT_STARTED`] or -1.

use core::cell::UnsafeCell;

use crate::driver::{Driver, Request, code, configure, write_setting_message};
use empmix_core::Config;
use empmix_core::persist::{PersistOp, is_restorable};

struct Global {
    driver: Option<Driver>,
    config: Option<Config>,
    staged: Vec<String>,
    input: Vec<u8>,
    output: String,
    last_error: u32,
    /// The handle of the request last returned by a poll.
    last_handle: u32,
}

struct Cell(UnsafeCell<Global>);

// SAFETY: wasm32-unknown-unknown without atomics runs on one thread.
unsafe impl Sync for Cell {}

static GLOBAL: Cell = Cell(UnsafeCell::new(Global {
    driver: None,
    config: None,
    staged: Vec::new(),
    input: Vec::new(),
    output: String::new(),
    last_error: 0,
    last_handle: 0,
}));

fn global() -> &'static mut Global {
    // SAFETY: one thread, and every export takes this reference once and calls no JavaScript,
    // so no two references are alive at the same time.
    unsafe { &mut *GLOBAL.0.get() }
}

/// The string arguments: consecutive UTF-8 pieces of the input buffer.
struct Args<'a> {
    input: &'a [u8],
    at: usize,
}

impl<'a> Args<'a> {
    fn next(&mut self, len: usize) -> &'a str {
        let end = self.at.saturating_add(len);
        let piece = self.input.get(self.at..end).unwrap_or(&[]);
        self.at = end;
        core::str::from_utf8(piece).unwrap_or("")
    }
}

fn split(g: &mut Global) -> (Option<&mut Driver>, Args<'_>, &mut String) {
    (g.driver.as_mut(), Args { input: &g.input, at: 0 }, &mut g.output)
}

fn run(f: impl FnOnce(&mut Driver, &mut Args<'_>) -> u32) -> u32 {
    match split(global()) {
        (Some(d), mut args, _) => f(d, &mut args),
        _ => code::NOT_STARTED,
    }
}

fn text(f: impl FnOnce(&mut Driver, &mut Args<'_>) -> Result<String, u32>) -> i32 {
    let g = global();
    let r = match split(g) {
        (Some(d), mut args, _) => f(d, &mut args),
        _ => Err(code::NOT_STARTED),
    };
    match r {
        Ok(s) => {
            g.last_error = code::OK;
            g.output = s;
            i32::try_from(g.output.len()).unwrap_or(-1)
        }
        Err(e) => {
            g.last_error = e;
            -1
        }
    }
}

fn poll(f: impl FnOnce(&mut Driver) -> String) -> i32 {
    text(|d, _| {
        let s = f(d);
        if s.is_empty() { Err(code::OK) } else { Ok(s) }
    })
}

/// The next request's body in the output buffer (its length; -1 for none), its handle kept
/// for [`em_last_handle`].
fn poll_request(f: impl FnOnce(&mut Driver) -> Option<Request>) -> i32 {
    let g = global();
    let Some(d) = g.driver.as_mut() else {
        g.last_error = code::NOT_STARTED;
        return -1;
    };
    g.last_error = code::OK;
    match f(d) {
        Some(r) => {
            g.last_handle = r.handle;
            g.output = r.body;
            i32::try_from(g.output.len()).unwrap_or(-1)
        }
        None => -1,
    }
}

/// A storage change encoded for `js/index.js`: `a<event id><record>`, `r<event ids…>` (36
/// characters each), `s<state>`, or empty for none.
fn encode_persist(op: Option<PersistOp>) -> String {
    let Some(op) = op else {
        return String::new();
    };
    // One shape for the three: the tag, the event ids, the text.
    let (tag, ids, text) = match &op {
        PersistOp::Append { id, record } => ('a', core::slice::from_ref(id), record.as_str()),
        PersistOp::Remove { ids } => ('r', ids.as_slice(), ""),
        PersistOp::SaveState { state } => ('s', &[][..], state.as_str()),
    };
    let mut out = String::with_capacity(1 + 36 * ids.len() + text.len());
    out.push(tag);
    for id in ids {
        id.write_to(&mut out);
    }
    out.push_str(text);
    out
}

/// A buffer of at least `len` bytes for string arguments; returns its address.
#[unsafe(no_mangle)]
pub extern "C" fn em_in(len: usize) -> *mut u8 {
    // Grown (zero-filled) only when too small: the bytes JavaScript writes are the only ones read.
    let input = &mut global().input;
    if input.len() < len {
        input.resize(len, 0);
    }
    input.as_mut_ptr()
}

/// The address of the last string returned.
#[unsafe(no_mangle)]
pub extern "C" fn em_out() -> *const u8 {
    global().output.as_ptr()
}

/// The error code of the last function that returned -1 instead of a string.
#[unsafe(no_mangle)]
pub extern "C" fn em_last_error() -> u32 {
    global().last_error
}

/// Stages one stored event record (the input's first `len` bytes) for the next [`em_start`].
/// Returns 0 for a record the engine will skip as corrupt (it is staged all the same, to be
/// counted), which the caller then removes from its storage; 1 otherwise.
#[unsafe(no_mangle)]
pub extern "C" fn em_stage(len: usize) -> u32 {
    let g = global();
    let record = Args { input: &g.input, at: 0 }.next(len).to_string();
    let restorable = is_restorable(&record);
    g.staged.push(record);
    u32::from(restorable)
}

/// Decodes the page's options (the input's first `len` bytes, a JSON object) for the next
/// [`em_start`], with persistence when `persist` is 1. Returns -1 when every value is good,
/// else the length of the message naming the bad one, left in the output buffer.
#[unsafe(no_mangle)]
pub extern "C" fn em_settings(len: usize, persist: u32) -> i32 {
    let g = global();
    let options = Args { input: &g.input, at: 0 }.next(len);
    match configure(options, persist == 1) {
        Ok(config) => {
            g.config = Some(config);
            -1
        }
        Err(e) => {
            write_setting_message(&e, &mut g.output);
            i32::try_from(g.output.len()).unwrap_or(0)
        }
    }
}

/// Starts (or restarts) the engine with the options of the last good [`em_settings`]
/// ([`code::NOT_STARTED`] without one) from the stored state (input, `state_len` bytes; empty for none) and
/// the staged records. `seed_hi`/`seed_lo` come from `crypto.getRandomValues`.
#[unsafe(no_mangle)]
pub extern "C" fn em_start(now: f64, seed_hi: u32, seed_lo: u32, state_len: usize) -> u32 {
    let seed = u64::from(seed_hi) << 32 | u64::from(seed_lo);
    let g = global();
    let Some(config) = g.config.take() else {
        return code::NOT_STARTED;
    };
    let events = core::mem::take(&mut g.staged);
    let state = Args { input: &g.input, at: 0 }.next(state_len);
    g.driver = Some(Driver::start(now, seed, config, state, events));
    code::OK
}

/// Replaces the browser context: six strings (os, browser, locale, url, referrer, extra JSON).
#[unsafe(no_mangle)]
pub extern "C" fn em_set_context(a: usize, b: usize, c: usize, d: usize, e: usize, f: usize) -> u32 {
    run(|drv, args| {
        drv.set_context([args.next(a), args.next(b), args.next(c), args.next(d), args.next(e), args.next(f)]);
        code::OK
    })
}

/// Tracks an event: name and properties JSON (empty for none). Returns an error code.
#[unsafe(no_mangle)]
pub extern "C" fn em_track(now: f64, name: usize, props: usize) -> u32 {
    run(|d, a| {
        let name = a.next(name);
        d.track(now, name, a.next(props))
    })
}

/// Tracks a typed event built by the core (`kind`: 0 `page_view`, 1 `registration`, 2
/// `checkin`, 3 `ai_chat`) from four strings (conference, the URL / form id / method, the
/// referrer, extra properties JSON) and `count` (the message length). Returns an error code.
#[unsafe(no_mangle)]
pub extern "C" fn em_event(
    now: f64,
    kind: u32,
    conf: usize,
    text: usize,
    referrer: usize,
    props: usize,
    count: f64,
) -> u32 {
    run(|d, a| {
        let (conf, text, referrer) = (a.next(conf), a.next(text), a.next(referrer));
        d.track_typed(now, kind, conf, text, referrer, count, a.next(props))
    })
}

/// Identifies the user.
#[unsafe(no_mangle)]
pub extern "C" fn em_identify(now: f64, user: usize) -> u32 {
    run(|d, a| d.identify(now, a.next(user)))
}

/// Links another id to the current user.
#[unsafe(no_mangle)]
pub extern "C" fn em_alias(now: f64, alias: usize) -> u32 {
    run(|d, a| d.alias(now, a.next(alias)))
}

/// Logout: a fresh anonymous identity.
#[unsafe(no_mangle)]
pub extern "C" fn em_reset(now: f64) -> u32 {
    run(|d, _| {
        d.reset(now);
        code::OK
    })
}

/// Adds super properties (JSON); `once` (1) keeps values already set.
#[unsafe(no_mangle)]
pub extern "C" fn em_register(props: usize, once: u32) -> u32 {
    run(|d, a| d.register(a.next(props), once != 0))
}

/// Removes one super property.
#[unsafe(no_mangle)]
pub extern "C" fn em_unregister(key: usize) -> u32 {
    run(|d, a| {
        d.unregister(a.next(key));
        code::OK
    })
}

/// Opts out (1) or back in (0); any other value only reads. Returns 1 when opted out.
#[unsafe(no_mangle)]
pub extern "C" fn em_opt_out(out: u32) -> u32 {
    run(|d, _| {
        if out < 2 {
            d.set_opted_out(out == 1);
        }
        u32::from(d.is_opted_out())
    })
}

/// A new share code for channel, the target URL without `_s` and the conference (empty for
/// none); -1 when refused.
#[unsafe(no_mangle)]
pub extern "C" fn em_share(now: f64, channel: usize, url: usize, conference: usize) -> i32 {
    text(|d, a| {
        let (channel, url) = (a.next(channel), a.next(url));
        let code = d.new_share_code();
        match d.share(now, &code, channel, url, a.next(conference)) {
            code::OK => Ok(code),
            e => Err(e),
        }
    })
}

/// Records the `_s` code the page was opened with; 1 when a `share_open` was recorded.
#[unsafe(no_mangle)]
pub extern "C" fn em_open_share(now: f64, code: usize) -> u32 {
    run(|d, a| u32::from(d.open_share(now, a.next(code))))
}

/// Takes the identity another tab saved (the state record, `len` bytes of the input); 1 when
/// taken, 0 when the record was not readable.
#[unsafe(no_mangle)]
pub extern "C" fn em_adopt_state(len: usize) -> u32 {
    run(|d, a| u32::from(d.adopt_state(a.next(len))))
}

/// Asks for everything tracked so far to be sent.
#[unsafe(no_mangle)]
pub extern "C" fn em_flush() -> u32 {
    run(|d, _| {
        d.flush();
        code::OK
    })
}

/// 1 when everything before the latest flush is delivered or dropped.
#[unsafe(no_mangle)]
pub extern "C" fn em_is_flushed() -> u32 {
    run(|d, _| u32::from(d.is_flushed()))
}

/// The next storage change (`a<id><record>`, `r<ids>`, `s<state>`), or -1.
#[unsafe(no_mangle)]
pub extern "C" fn em_poll_persist() -> i32 {
    poll(|d| encode_persist(d.poll_persist()))
}

/// The next request body to send, or -1; its handle is [`em_last_handle`].
#[unsafe(no_mangle)]
pub extern "C" fn em_poll_transmit(now: f64) -> i32 {
    poll_request(|d| d.poll_transmit(now))
}

/// The next beacon body of at most `max_bytes`, or -1; its handle is [`em_last_handle`].
#[unsafe(no_mangle)]
pub extern "C" fn em_poll_unload(now: f64, max_bytes: u32) -> i32 {
    poll_request(|d| d.poll_unload_transmit(now, max_bytes))
}

/// The handle of the body last returned by a poll.
#[unsafe(no_mangle)]
pub extern "C" fn em_last_handle() -> u32 {
    global().last_handle
}

/// The outcome of a request: HTTP status, or 0 for a network failure; the `Retry-After`
/// header as sent (empty for none) and the response body in the input.
#[unsafe(no_mangle)]
pub extern "C" fn em_response(now: f64, handle: u32, status: u32, retry_after: usize, body: usize) -> u32 {
    run(|d, a| {
        let retry_after = a.next(retry_after);
        d.handle_response(now, handle, status, retry_after, a.next(body));
        code::OK
    })
}

/// When to call [`em_timeout`] (ms since the epoch), or -1.
#[unsafe(no_mangle)]
pub extern "C" fn em_poll_timeout(now: f64) -> f64 {
    match global().driver.as_mut() {
        Some(d) => d.poll_timeout(now),
        None => -1.0,
    }
}

/// The timer fired.
#[unsafe(no_mangle)]
pub extern "C" fn em_timeout(now: f64) -> u32 {
    run(|d, _| {
        d.handle_timeout(now);
        code::OK
    })
}

/// `distinct_id` (0), `anonymous_id` (1) or `session_id` (2).
#[unsafe(no_mangle)]
pub extern "C" fn em_id(which: u32) -> i32 {
    text(|d, _| Ok(d.id(which)))
}

/// The counters as JSON.
#[unsafe(no_mangle)]
pub extern "C" fn em_stats() -> i32 {
    text(|d, _| Ok(d.stats(&[])))
}
