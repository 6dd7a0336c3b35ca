//! The driving calls: requests out and their outcomes in, the timer, storage operations.

use std::ffi::{CStr, CString, c_char};

use empmix_core::persist::PersistOp;
use empmix_core::protocol::{API_KEY_HEADER, retry_after};
use empmix_core::{Response, Transmit};
use empmix_ffi_boundary::{EmpmixResult, Failure, clear_outs, free_boxed, guard, write_out};

use crate::engine::{EmpmixEngine, State, at, lock};

/// One HTTP header of a request.
#[repr(C)]
#[derive(Debug)]
pub struct EmpmixHeader {
    /// The header's name, for example `Content-Type`.
    pub name: *const c_char,
    /// Its value.
    pub value: *const c_char,
}

/// A request to send: `method` (always `POST`) `url` with `headers` and the body. Free with
/// `empmix_engine_request_free`; its strings and body live until then.
#[repr(C)]
#[derive(Debug)]
pub struct EmpmixRequest {
    /// Pass to `empmix_engine_handle_response` with the outcome.
    pub id: u64,
    /// Events in the body.
    pub events: usize,
    /// `POST`.
    pub method: *const c_char,
    /// The ingest URL.
    pub url: *const c_char,
    /// `Content-Type: application/json` and `X-API-Key`. The app may add its own (a
    /// `User-Agent`) and may gzip the body with `Content-Encoding: gzip`.
    pub headers: *const EmpmixHeader,
    /// Entries in `headers`.
    pub header_count: usize,
    /// The JSON body, `body_len` bytes (not NUL-terminated).
    pub body: *const u8,
    /// Bytes in `body`.
    pub body_len: usize,
}

/// A request and the memory its pointers point into.
#[repr(C)]
struct OwnedRequest {
    /// First, so that a pointer to it is a pointer to this.
    public: EmpmixRequest,
    _strings: Vec<CString>,
    _headers: Vec<EmpmixHeader>,
    _body: String,
}

/// Which change an `EmpmixPersistOp` asks for.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmpmixPersistKind {
    /// Store `data` (an event record) under `event_id`. The event is durable once this is
    /// applied.
    EmpmixPersistAppend = 1,
    /// Remove the records stored under `event_ids` (delivered, or dropped and counted).
    EmpmixPersistRemove = 2,
    /// Replace the stored state with `data` (identity, session, attribution, opt-out).
    EmpmixPersistSaveState = 3,
}

/// One change to apply to the app's storage, in the order polled. Free with
/// `empmix_engine_persist_op_free`.
#[repr(C)]
#[derive(Debug)]
pub struct EmpmixPersistOp {
    /// What to do.
    pub kind: EmpmixPersistKind,
    /// APPEND: the event's id, the key to store the record under; NULL otherwise.
    pub event_id: *const c_char,
    /// APPEND: the record; SAVE_STATE: the state. NUL-terminated UTF-8 text of `data_len`
    /// bytes, to hand back unchanged to `empmix_engine_create`. NULL for REMOVE.
    pub data: *const c_char,
    /// Bytes in `data` without the NUL.
    pub data_len: usize,
    /// REMOVE: the ids of the records to remove; NULL otherwise.
    pub event_ids: *const *const c_char,
    /// Entries in `event_ids`.
    pub event_id_count: usize,
}

#[repr(C)]
struct OwnedPersistOp {
    /// First, so that a pointer to it is a pointer to this.
    public: EmpmixPersistOp,
    _strings: Vec<CString>,
    _pointers: Vec<*const c_char>,
}

/// Text as a C string (the engine's texts never hold NUL; one would be dropped).
fn c_string(text: &str) -> CString {
    CString::new(text).unwrap_or_else(|_| CString::new(text.replace('\0', "")).unwrap_or_default())
}

fn request(state: &mut State, transmit: Transmit) -> *mut EmpmixRequest {
    let id = state.next_request;
    state.next_request += 1;
    state.requests.push((id, transmit.batch));
    let strings = vec![
        c_string("POST"),
        c_string(&state.url),
        c_string("Content-Type"),
        c_string("application/json"),
        c_string(API_KEY_HEADER),
        c_string(&state.ingest_key),
    ];
    let headers = vec![
        EmpmixHeader { name: strings[2].as_ptr(), value: strings[3].as_ptr() },
        EmpmixHeader { name: strings[4].as_ptr(), value: strings[5].as_ptr() },
    ];
    let body = transmit.body;
    let owned = Box::new(OwnedRequest {
        public: EmpmixRequest {
            id,
            events: transmit.events,
            method: strings[0].as_ptr(),
            url: strings[1].as_ptr(),
            headers: headers.as_ptr(),
            header_count: headers.len(),
            body: body.as_ptr(),
            body_len: body.len(),
        },
        _strings: strings,
        _headers: headers,
        _body: body,
    });
    Box::into_raw(owned).cast::<EmpmixRequest>()
}

/// The next request to send at `now_ms`, if one is due: `*out_request` is it, or NULL when
/// nothing is due. Call until NULL after every command and input; send each without waiting
/// for the answer.
///
/// # Safety
/// `engine` is NULL or a live handle; `out_request` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_poll_transmit(
    engine: *const EmpmixEngine,
    now_ms: u64,
    out_request: *mut *mut EmpmixRequest,
) -> EmpmixResult {
    guard(|| {
        // SAFETY: per the contract.
        unsafe { clear_outs(&[(out_request, "out_request")]) }?;
        // SAFETY: per the contract.
        let mut s = unsafe { lock(engine) }?;
        if let Some(transmit) = s.engine.poll_transmit(at(now_ms)) {
            let req = request(&mut s, transmit);
            // SAFETY: checked writable above.
            unsafe { *out_request = req };
        }
        Ok(())
    })
}

/// For an app entering the background: everything still waiting, in bodies of at most
/// `max_bytes` (0 for the protocol's limit), ignoring thresholds, backoff and the in-flight
/// limit. Call until NULL and send each inside a background task. Report outcomes that arrive;
/// events whose outcome never arrives stay in storage and are sent again by the next start.
///
/// # Safety
/// As `empmix_engine_poll_transmit`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_poll_unload_transmit(
    engine: *const EmpmixEngine,
    now_ms: u64,
    max_bytes: usize,
    out_request: *mut *mut EmpmixRequest,
) -> EmpmixResult {
    guard(|| {
        // SAFETY: per the contract.
        unsafe { clear_outs(&[(out_request, "out_request")]) }?;
        // SAFETY: per the contract.
        let mut s = unsafe { lock(engine) }?;
        let max_bytes = if max_bytes == 0 { usize::MAX } else { max_bytes };
        if let Some(transmit) = s.engine.poll_unload_transmit(at(now_ms), max_bytes) {
            let req = request(&mut s, transmit);
            // SAFETY: checked writable above.
            unsafe { *out_request = req };
        }
        Ok(())
    })
}

/// Frees a request. NULL is ignored.
///
/// # Safety
/// `request` is NULL or from a poll of this library, not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_request_free(request: *mut EmpmixRequest) {
    // SAFETY: made by `Box::into_raw` of an `OwnedRequest` (whose first field it points to,
    // `repr(C)`), freed once per the contract.
    unsafe { free_boxed(request.cast::<OwnedRequest>()) }
}

/// Reports the outcome of request `request_id`: the HTTP `status` with its `Retry-After`
/// header value (NULL when absent) and the response body (`body_len` bytes; NULL with 0 for
/// none), or `status` 0 when there was no answer (connection refused or reset, DNS, TLS,
/// timeout). 2xx: delivered (except events the body lists as rejected); 408, 429, 5xx and 0:
/// retried after a backoff of at least `Retry-After`; 413: split; others: dropped and counted.
/// An id that is unknown or already answered is ignored. Then drive as after any input.
///
/// # Safety
/// `engine` is NULL or a live handle; `retry_after` is NULL or NUL-terminated; `body` is NULL
/// or readable for `body_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_handle_response(
    engine: *const EmpmixEngine,
    now_ms: u64,
    request_id: u64,
    status: u16,
    retry_after_header: *const c_char,
    body: *const u8,
    body_len: usize,
) -> EmpmixResult {
    guard(|| {
        if body.is_null() && body_len > 0 {
            return Err(Failure::null("body (with body_len > 0)"));
        }
        // SAFETY: per the contract.
        let mut s = unsafe { lock(engine) }?;
        let Some(i) = s.requests.iter().position(|(id, _)| *id == request_id) else {
            return Ok(());
        };
        let (_, batch) = s.requests.swap_remove(i);
        let now = at(now_ms);
        let text;
        let response = if status == 0 {
            Response::Failed
        } else {
            // Network data is taken as it comes: a header that is not UTF-8 is ignored.
            let retry = (!retry_after_header.is_null())
                // SAFETY: non-NULL and NUL-terminated per the contract.
                .then(|| unsafe { CStr::from_ptr(retry_after_header) })
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry_after(v, now));
            let bytes = if body_len == 0 {
                &[][..]
            } else {
                // SAFETY: non-NULL (checked) and readable for `body_len` bytes per the contract.
                unsafe { std::slice::from_raw_parts(body, body_len) }
            };
            text = String::from_utf8_lossy(bytes);
            Response::Status { status, retry_after: retry, body: &text }
        };
        let State { engine, rng, .. } = &mut *s;
        engine.handle_response(now, rng, batch, response);
        Ok(())
    })
}

/// When to call `empmix_engine_handle_timeout` next: `*out_has_deadline` is false when
/// nothing waits on time (cancel the timer), else `*out_deadline_ms` is the wall-clock time
/// (possibly already past: fire at once). Keep one timer; re-arm it after every call.
///
/// # Safety
/// `engine` is NULL or a live handle; the out-pointers are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_poll_timeout(
    engine: *const EmpmixEngine,
    now_ms: u64,
    out_has_deadline: *mut bool,
    out_deadline_ms: *mut u64,
) -> EmpmixResult {
    guard(|| {
        if out_has_deadline.is_null() || out_deadline_ms.is_null() {
            return Err(Failure::null("out_has_deadline or out_deadline_ms"));
        }
        // SAFETY: per the contract.
        let deadline = unsafe { lock(engine) }?.engine.poll_timeout(at(now_ms));
        // SAFETY: both checked non-NULL; writable per the contract.
        unsafe {
            write_out(out_has_deadline, "out_has_deadline", deadline.is_some())?;
            write_out(out_deadline_ms, "out_deadline_ms", deadline.map_or(0, |d| d.as_unix_millis()))
        }
    })
}

/// The timer fired: drops expired events. Then drive as after any input.
///
/// # Safety
/// `engine` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_handle_timeout(
    engine: *const EmpmixEngine,
    now_ms: u64,
) -> EmpmixResult {
    guard(|| {
        // SAFETY: per the contract.
        unsafe { lock(engine) }?.engine.handle_timeout(at(now_ms));
        Ok(())
    })
}

fn persist_op(op: PersistOp) -> *mut EmpmixPersistOp {
    let mut public = EmpmixPersistOp {
        kind: EmpmixPersistKind::EmpmixPersistRemove,
        event_id: std::ptr::null(),
        data: std::ptr::null(),
        data_len: 0,
        event_ids: std::ptr::null(),
        event_id_count: 0,
    };
    let mut strings = Vec::new();
    let mut pointers = Vec::new();
    let data = |public: &mut EmpmixPersistOp, text: CString| {
        public.data = text.as_ptr();
        public.data_len = text.as_bytes().len();
        text
    };
    match op {
        PersistOp::Append { id, record } => {
            public.kind = EmpmixPersistKind::EmpmixPersistAppend;
            let id = c_string(&id.to_text());
            public.event_id = id.as_ptr();
            strings.push(id);
            strings.push(data(&mut public, c_string(&record)));
        }
        PersistOp::SaveState { state } => {
            public.kind = EmpmixPersistKind::EmpmixPersistSaveState;
            strings.push(data(&mut public, c_string(&state)));
        }
        PersistOp::Remove { ids } => {
            strings.extend(ids.iter().map(|id| c_string(&id.to_text())));
            pointers.extend(strings.iter().map(|s| s.as_ptr()));
            public.event_ids = pointers.as_ptr();
            public.event_id_count = pointers.len();
        }
    }
    let owned = Box::new(OwnedPersistOp { public, _strings: strings, _pointers: pointers });
    Box::into_raw(owned).cast::<EmpmixPersistOp>()
}

/// The next change to apply to storage: `*out_op` is it, or NULL when none is pending. Only
/// produced with persistence on. Apply in order (see the header's durability notes).
///
/// # Safety
/// `engine` is NULL or a live handle; `out_op` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_poll_persist(
    engine: *const EmpmixEngine,
    out_op: *mut *mut EmpmixPersistOp,
) -> EmpmixResult {
    guard(|| {
        // SAFETY: per the contract.
        unsafe { clear_outs(&[(out_op, "out_op")]) }?;
        // SAFETY: per the contract.
        if let Some(op) = unsafe { lock(engine) }?.engine.poll_persist() {
            // SAFETY: checked writable above.
            unsafe { *out_op = persist_op(op) };
        }
        Ok(())
    })
}

/// Frees a persistence operation. NULL is ignored.
///
/// # Safety
/// `op` is NULL or from `empmix_engine_poll_persist`, not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_persist_op_free(op: *mut EmpmixPersistOp) {
    // SAFETY: made by `Box::into_raw` of an `OwnedPersistOp` (whose first field it points to,
    // `repr(C)`), freed once per the contract.
    unsafe { free_boxed(op.cast::<OwnedPersistOp>()) }
}
