//! The client handle and every call on it.

use std::ffi::c_char;
use std::time::Duration;

use empmix_ffi_boundary::{
    EmpmixResult, Failure, clear_outs, free_boxed, guard, optional_str, required_str, write_string,
};
use empmix_native::{Client, Error, Event, Properties};

pub use empmix_ffi_boundary::EmpmixStats;

use crate::config::Settings;

/// An opaque client. Create with `empmix_client_new`, free with `empmix_client_free`.
#[derive(Debug)]
pub struct EmpmixClient {
    pub(crate) inner: Client,
}

/// Deprecated (removed in the next release): use the opaque `EmpmixConfigBuilder`
/// (`empmix_config_new`, `empmix_config_set_*`, `empmix_client_create`), which can gain
/// settings without breaking apps. Client settings: initialise with `empmix_config_init`, then
/// set what you need; zero means "the default" for every number.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct EmpmixConfig {
    /// The project's public ingest key. Required.
    pub ingest_key: *const c_char,
    /// The server's base URL, for example `https://analytics.example`. Required.
    pub endpoint: *const c_char,
    /// A directory for identity, attribution and unsent events (the app's data folder), or
    /// NULL to keep everything in memory.
    pub data_dir: *const c_char,
    /// Send when this many events are queued (default 20).
    pub flush_at: u32,
    /// Send when the oldest unsent event has waited this long, in ms (default 30000).
    pub flush_interval_ms: u32,
    /// Most events kept unsent (default 10000); beyond it the oldest are dropped and counted.
    pub max_queue: u32,
    /// Timeout of one HTTP request, in ms (default 10000).
    pub request_timeout_ms: u32,
    /// Compress request bodies with gzip (default true).
    pub gzip: bool,
    /// Log every event and request (through the library's `tracing` output).
    pub debug: bool,
}

pub(crate) fn map_error(e: Error) -> Failure {
    let code = match &e {
        Error::Config(_) | Error::InvalidEndpoint(_) | Error::InvalidIngestKey | Error::ZeroTimeout(_) => {
            EmpmixResult::InvalidConfig
        }
        Error::DirectoryInUse(_) | Error::Storage { .. } => EmpmixResult::Storage,
        Error::Start(_) => EmpmixResult::Runtime,
        Error::OptedOut => EmpmixResult::OptedOut,
        Error::ShutDown => EmpmixResult::ShutDown,
        Error::InvalidName(_) => EmpmixResult::InvalidName,
        Error::InvalidProperties(_) => EmpmixResult::InvalidJson,
        Error::InvalidUrl(_) => EmpmixResult::InvalidUrl,
        Error::TooLarge { .. } => EmpmixResult::TooLarge,
        Error::QueueFull => EmpmixResult::QueueFull,
        Error::Timeout { .. } => EmpmixResult::Timeout,
        _ => EmpmixResult::Runtime,
    };
    Failure::new(code, e.to_string())
}

pub(crate) fn ms(value: u32) -> Option<Duration> {
    (value > 0).then(|| Duration::from_millis(u64::from(value)))
}

/// The client behind a handle, or `EMPMIX_ERR_NULL_ARGUMENT`.
///
/// # Safety
/// `client` is NULL or a live handle from `empmix_client_new`.
unsafe fn client<'a>(client: *const EmpmixClient) -> Result<&'a Client, Failure> {
    // SAFETY: per the contract, a non-NULL pointer is a live handle.
    unsafe { client.as_ref() }
        .map(|c| &c.inner)
        .ok_or_else(|| Failure::new(EmpmixResult::NullArgument, "client is NULL"))
}

/// The client behind a handle that has not been shut down: `EMPMIX_ERR_SHUT_DOWN` after
/// `empmix_shutdown`, for the calls whose Rust counterparts do not report it themselves (after
/// a shutdown nothing they change is persisted any more).
fn running(c: &Client) -> Result<&Client, Failure> {
    if c.is_shut_down() { Err(map_error(Error::ShutDown)) } else { Ok(c) }
}

/// Properties from an optional JSON object string.
///
/// # Safety
/// As [`optional_str`].
unsafe fn properties(json: *const c_char) -> Result<Properties, Failure> {
    // SAFETY: forwarded.
    unsafe { empmix_ffi_boundary::properties(json, false) }
}

fn tracked<T>(result: Result<T, Error>) -> Result<(), Failure> {
    result.map(drop).map_err(map_error)
}

/// Deprecated with `EmpmixConfig` (use `empmix_config_new`). Fills `config` with the defaults
/// (all NULL and zero, gzip on). NULL is ignored.
///
/// # Safety
/// `config` is NULL or points to writable memory for an `EmpmixConfig`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_config_init(config: *mut EmpmixConfig) {
    let defaults = EmpmixConfig {
        ingest_key: std::ptr::null(),
        endpoint: std::ptr::null(),
        data_dir: std::ptr::null(),
        flush_at: 0,
        flush_interval_ms: 0,
        max_queue: 0,
        request_timeout_ms: 0,
        gzip: true,
        debug: false,
    };
    if !config.is_null() {
        // SAFETY: non-NULL and writable per the contract.
        unsafe { config.write(defaults) };
    }
}

/// Deprecated (removed in the next release): use `empmix_client_create` with an
/// `EmpmixConfigBuilder`. Creates a client from the fixed `EmpmixConfig` struct and starts its
/// background thread. On success `*out_client` is the new handle; on failure it is set to NULL.
///
/// # Safety
/// `config` is NULL or a valid `EmpmixConfig` whose strings are NULL or NUL-terminated;
/// `out_client` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_client_new(
    config: *const EmpmixConfig,
    out_client: *mut *mut EmpmixClient,
) -> EmpmixResult {
    // SAFETY: per the contract.
    guard(|| unsafe {
        Settings::create(config, out_client, |config| {
            // SAFETY: the config's strings follow the contract.
            Ok(Settings {
                ingest_key: Some(required_str(config.ingest_key, "config.ingest_key")?.to_string()),
                endpoint: Some(required_str(config.endpoint, "config.endpoint")?.to_string()),
                data_dir: optional_str(config.data_dir, "config.data_dir")?.map(str::to_string),
                flush_at: config.flush_at,
                flush_interval_ms: config.flush_interval_ms,
                max_queue: config.max_queue,
                request_timeout_ms: config.request_timeout_ms,
                gzip: config.gzip,
                debug: config.debug,
                ..Settings::new()
            })
        })
    })
}

/// Frees a client. NULL is ignored. Without a prior `empmix_shutdown`, the background thread is
/// stopped without draining: unsent events stay in the persistence directory (sent by the next
/// client on it) or, in memory, are lost and logged. The handle must not be used afterwards.
///
/// # Safety
/// `client` is NULL or a live handle, not used by another thread during or after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_client_free(client: *mut EmpmixClient) {
    // SAFETY: a live handle made by `Box::into_raw`, freed once per the contract.
    unsafe { free_boxed(client) }
}

/// Tracks an event named `name` with `properties_json` (a JSON object, or NULL for none).
///
/// # Safety
/// `client` is NULL or a live handle; strings are NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_track(
    client: *const EmpmixClient,
    name: *const c_char,
    properties_json: *const c_char,
) -> EmpmixResult {
    guard(|| {
        // SAFETY: per the contract.
        let (c, name, props) =
            unsafe { (self::client(client)?, required_str(name, "name")?, properties(properties_json)?) };
        let event = Event::custom(name, props).map_err(|e| map_error(Error::InvalidName(e)))?;
        tracked(c.track_event(event))
    })
}

/// Tracks a page view. `conference_id` and `referrer` may be NULL.
///
/// # Safety
/// As `empmix_track`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_page_view(
    client: *const EmpmixClient,
    url: *const c_char,
    conference_id: *const c_char,
    referrer: *const c_char,
) -> EmpmixResult {
    guard(|| {
        // SAFETY: per the contract.
        let (c, url, conf, referrer) = unsafe {
            (
                self::client(client)?,
                required_str(url, "url")?,
                optional_str(conference_id, "conference_id")?,
                optional_str(referrer, "referrer")?,
            )
        };
        tracked(c.page_view(url, conf, referrer))
    })
}

/// Tracks a registration. `form_id` may be NULL.
///
/// # Safety
/// As `empmix_track`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_registration(
    client: *const EmpmixClient,
    conference_id: *const c_char,
    form_id: *const c_char,
) -> EmpmixResult {
    guard(|| {
        // SAFETY: per the contract.
        let (c, conf, form) = unsafe {
            (
                self::client(client)?,
                required_str(conference_id, "conference_id")?,
                optional_str(form_id, "form_id")?,
            )
        };
        tracked(c.registration(conf, form))
    })
}

/// Tracks a check-in by `method` (for example "qr").
///
/// # Safety
/// As `empmix_track`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_checkin(
    client: *const EmpmixClient,
    conference_id: *const c_char,
    method: *const c_char,
) -> EmpmixResult {
    guard(|| {
        // SAFETY: per the contract.
        let (c, conf, method) = unsafe {
            (
                self::client(client)?,
                required_str(conference_id, "conference_id")?,
                required_str(method, "method")?,
            )
        };
        tracked(c.checkin(conf, method))
    })
}

/// Tracks an AI chat message of `message_length` characters.
///
/// # Safety
/// As `empmix_track`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_ai_chat(
    client: *const EmpmixClient,
    conference_id: *const c_char,
    message_length: u64,
) -> EmpmixResult {
    guard(|| {
        // SAFETY: per the contract.
        let (c, conf) = unsafe { (self::client(client)?, required_str(conference_id, "conference_id")?) };
        tracked(c.ai_chat(conf, message_length))
    })
}

/// Identifies the user: later events carry `user_id`, and an `identify` event links the
/// anonymous id to it.
///
/// # Safety
/// As `empmix_track`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_identify(
    client: *const EmpmixClient,
    user_id: *const c_char,
) -> EmpmixResult {
    guard(|| {
        // SAFETY: per the contract.
        let (c, user) = unsafe { (self::client(client)?, required_str(user_id, "user_id")?) };
        tracked(c.identify(user))
    })
}

/// Links another id of this user to the current one.
///
/// # Safety
/// As `empmix_track`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_alias(client: *const EmpmixClient, alias: *const c_char) -> EmpmixResult {
    guard(|| {
        // SAFETY: per the contract.
        let (c, alias) = unsafe { (self::client(client)?, required_str(alias, "alias")?) };
        tracked(c.alias(alias))
    })
}

/// Logout: a new anonymous id, no super properties, a new session, no attribution.
///
/// # Safety
/// `client` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_reset(client: *const EmpmixClient) -> EmpmixResult {
    // SAFETY: per the contract.
    guard(|| unsafe { self::client(client) }.and_then(running).map(Client::reset))
}

/// Registers super properties (a JSON object) sent with every later event; these win over
/// ones already registered.
///
/// # Safety
/// As `empmix_track`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_register(
    client: *const EmpmixClient,
    properties_json: *const c_char,
) -> EmpmixResult {
    guard(|| {
        // SAFETY: per the contract.
        let (c, props) = unsafe { (self::client(client)?, required_props(properties_json)?) };
        tracked(running(c)?.register(props))
    })
}

/// Registers super properties only where none is registered yet.
///
/// # Safety
/// As `empmix_track`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_register_once(
    client: *const EmpmixClient,
    properties_json: *const c_char,
) -> EmpmixResult {
    guard(|| {
        // SAFETY: per the contract.
        let (c, props) = unsafe { (self::client(client)?, required_props(properties_json)?) };
        tracked(running(c)?.register_once(props))
    })
}

/// A required JSON object argument, as a `serde_json` value for the native client.
///
/// # Safety
/// As [`required_str`].
unsafe fn required_props(json: *const c_char) -> Result<serde_json::Value, Failure> {
    // SAFETY: forwarded.
    let text = unsafe { required_str(json, "properties_json") }?;
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        Ok(_) => Err(Failure::new(EmpmixResult::InvalidJson, "properties_json must be a JSON object")),
        Err(e) => Err(Failure::new(EmpmixResult::InvalidJson, format!("properties_json: {e}"))),
    }
}

/// Removes one super property.
///
/// # Safety
/// As `empmix_track`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_unregister(client: *const EmpmixClient, key: *const c_char) -> EmpmixResult {
    guard(|| {
        // SAFETY: per the contract.
        let (c, key) = unsafe { (self::client(client)?, required_str(key, "key")?) };
        running(c)?.unregister(key);
        Ok(())
    })
}

/// Stops tracking and purges unsent events. Persisted.
///
/// # Safety
/// `client` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_opt_out(client: *const EmpmixClient) -> EmpmixResult {
    // SAFETY: per the contract.
    guard(|| unsafe { self::client(client) }.and_then(running).map(Client::opt_out))
}

/// Resumes tracking.
///
/// # Safety
/// `client` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_opt_in(client: *const EmpmixClient) -> EmpmixResult {
    // SAFETY: per the contract.
    guard(|| unsafe { self::client(client) }.and_then(running).map(Client::opt_in))
}

/// Makes a share link for `target_url` on `channel`: `*out_code` is the new share code and
/// `*out_url` the URL with `_s=<code>`; free both with `empmix_string_free`. On failure both
/// are set to NULL. The share counts in `conference_id`; when it is NULL, in the
/// `conference_id` super property.
///
/// # Safety
/// As `empmix_track`; `out_code` and `out_url` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_create_share(
    client: *const EmpmixClient,
    channel: *const c_char,
    target_url: *const c_char,
    conference_id: *const c_char,
    out_code: *mut *mut c_char,
    out_url: *mut *mut c_char,
) -> EmpmixResult {
    guard(|| {
        // SAFETY: each NULL or writable per the contract.
        unsafe { clear_outs(&[(out_code, "out_code"), (out_url, "out_url")]) }?;
        // SAFETY: per the contract.
        let (c, channel, target, conf) = unsafe {
            (
                self::client(client)?,
                required_str(channel, "channel")?,
                required_str(target_url, "target_url")?,
                optional_str(conference_id, "conference_id")?,
            )
        };
        let link = c.create_share(channel, target, conf).map_err(map_error)?;
        // SAFETY: checked non-NULL above.
        unsafe {
            write_string(out_code, link.code.as_str());
            write_string(out_url, &link.url);
        }
        Ok(())
    })
}

/// Handles a URL the app was opened with: records a `share_open` for its `_s` code (unless it
/// is this user's own) and makes it this user's attribution. `*out_clean_url` is the URL
/// without `_s`, to show and to share on; free it with `empmix_string_free`.
///
/// # Safety
/// As `empmix_track`; `out_clean_url` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_handle_incoming_url(
    client: *const EmpmixClient,
    url: *const c_char,
    out_clean_url: *mut *mut c_char,
) -> EmpmixResult {
    guard(|| {
        // SAFETY: NULL or writable per the contract.
        unsafe { clear_outs(&[(out_clean_url, "out_clean_url")]) }?;
        // SAFETY: per the contract.
        let (c, url) = unsafe { (self::client(client)?, required_str(url, "url")?) };
        let incoming = running(c)?.handle_incoming_url(url).map_err(map_error)?;
        // SAFETY: checked non-NULL above.
        unsafe { write_string(out_clean_url, &incoming.url) };
        Ok(())
    })
}

/// Sends everything tracked so far and blocks until it is delivered (or dropped and counted),
/// at most `timeout_ms`. `EMPMIX_ERR_TIMEOUT` leaves the events queued (and persisted).
///
/// # Safety
/// `client` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_flush(client: *const EmpmixClient, timeout_ms: u32) -> EmpmixResult {
    guard(|| {
        // SAFETY: per the contract.
        let c = unsafe { self::client(client) }?;
        c.flush_blocking(Duration::from_millis(u64::from(timeout_ms))).map_err(map_error)
    })
}

/// Call when the app enters the background: flushes for at most `timeout_ms`. Unsent events
/// are already on disk with a persistence directory, so a suspended or killed app loses
/// nothing; the next start sends them.
///
/// # Safety
/// `client` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_enter_background(
    client: *const EmpmixClient,
    timeout_ms: u32,
) -> EmpmixResult {
    // SAFETY: forwarded.
    unsafe { empmix_flush(client, timeout_ms) }
}

/// Stops taking events, sends what is queued for at most `timeout_ms`, and joins the
/// background thread. Later calls on the handle return `EMPMIX_ERR_SHUT_DOWN` (identity,
/// super property and consent calls included: nothing is persisted after a shutdown), except
/// `empmix_stats`, and a second `empmix_shutdown`, which returns `EMPMIX_OK`. The handle must
/// still be freed.
///
/// # Safety
/// `client` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_shutdown(client: *const EmpmixClient, timeout_ms: u32) -> EmpmixResult {
    guard(|| {
        // SAFETY: per the contract.
        let c = unsafe { self::client(client) }?;
        match c.shutdown_blocking(Duration::from_millis(u64::from(timeout_ms))) {
            Ok(()) | Err(Error::ShutDown) => Ok(()),
            Err(e) => Err(map_error(e)),
        }
    })
}

/// Copies the client's counters into `*out_stats`.
///
/// # Safety
/// `client` is NULL or a live handle; `out_stats` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_stats(
    client: *const EmpmixClient,
    out_stats: *mut EmpmixStats,
) -> EmpmixResult {
    guard(|| {
        // SAFETY: per the contract.
        let c = unsafe { self::client(client) }?;
        if out_stats.is_null() {
            return Err(Failure::new(EmpmixResult::NullArgument, "out_stats is NULL"));
        }
        let stats = EmpmixStats::from(c.stats());
        // SAFETY: checked non-NULL and writable per the contract.
        unsafe { out_stats.write(stats) };
        Ok(())
    })
}
