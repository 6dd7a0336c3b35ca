//! The opaque, growable engine configuration: `empmix_engine_config_new`, one setter per
//! setting, `empmix_engine_create`.

use std::ffi::c_char;
use std::time::Duration;

use empmix_core::protocol::events_url;
use empmix_core::{AttributionModel, Config, Context, HostContext};
use empmix_ffi_boundary::{EmpmixResult, Failure, free_boxed, guard, optional_str, required_str};

/// An opaque engine configuration. Create with `empmix_engine_config_new`, set what you need
/// with the `empmix_engine_config_set_*` calls, pass to `empmix_engine_create` (as often as you
/// like), free with `empmix_engine_config_free`. Setters copy their strings; nothing is
/// checked until `empmix_engine_create`, except NULL and UTF-8.
#[derive(Debug, Clone, Default)]
pub struct EmpmixEngineConfig {
    ingest_key: Option<String>,
    endpoint: Option<String>,
    flush_at: u32,
    flush_interval_ms: u32,
    max_queue: u32,
    max_in_flight: u32,
    backoff_base_ms: u32,
    backoff_cap_ms: u32,
    persist: bool,
    last_touch: bool,
    /// Every event of a request keeps its own context (`empmix_engine_config_set_shared_context`
    /// false; the default sends it once, as the batch's `context`).
    per_event_context: bool,
    conference_id: Option<String>,
    library: Option<(String, String)>,
    app: Option<String>,
    os: Option<String>,
    locale: Option<String>,
    /// What the host reports about itself (`app_version`, `screen`, …).
    host: HostContext,
}

/// What `empmix_engine_create` needs besides the core's configuration.
#[derive(Debug)]
pub(crate) struct Built {
    pub config: Config,
    /// The full ingest URL.
    pub url: String,
    pub ingest_key: String,
}

fn ms(value: u32) -> Option<Duration> {
    (value > 0).then(|| Duration::from_millis(u64::from(value)))
}

/// `endpoint` (a base URL or the full ingest URL) as the ingest URL by the core's rule for
/// every SDK ([`events_url`]), or `None` when it is not an `http`/`https` URL with a host.
fn ingest_url(endpoint: &str) -> Option<String> {
    let rest = endpoint.strip_prefix("https://").or_else(|| endpoint.strip_prefix("http://"))?;
    let host = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if host.is_empty() || endpoint.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    Some(events_url(endpoint))
}

impl EmpmixEngineConfig {
    /// Checks every setting.
    pub(crate) fn build(&self) -> Result<Built, Failure> {
        let invalid = |detail: String| Failure::new(EmpmixResult::InvalidConfig, detail);
        let key = self.ingest_key.as_deref().ok_or_else(|| Failure::null("config.ingest_key (not set)"))?;
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid("ingest_key must be printable ASCII without spaces".into()));
        }
        let endpoint = self.endpoint.as_deref().ok_or_else(|| Failure::null("config.endpoint (not set)"))?;
        let url = ingest_url(endpoint)
            .ok_or_else(|| invalid(format!("endpoint must be an http or https URL, got {endpoint:?}")))?;
        let (library_name, library_version) = self
            .library
            .clone()
            .unwrap_or_else(|| ("empmix-engine".into(), env!("CARGO_PKG_VERSION").into()));
        let context = Context {
            library_name,
            library_version,
            os: self.os.clone(),
            app: self.app.clone(),
            locale: self.locale.clone(),
            extra: self.host.properties(),
            ..Context::default()
        };
        let mut core = Config::builder()
            .persist(self.persist)
            .shared_context(!self.per_event_context)
            .context(context)
            .conference_id(self.conference_id.clone().filter(|c| !c.is_empty()))
            .attribution_model(if self.last_touch {
                AttributionModel::LastTouch
            } else {
                AttributionModel::FirstTouch
            });
        if self.flush_at > 0 {
            core = core.flush_at(self.flush_at as usize);
        }
        if let Some(d) = ms(self.flush_interval_ms) {
            core = core.flush_interval(d);
        }
        if self.max_queue > 0 {
            core = core.max_queue(self.max_queue as usize);
        }
        if self.max_in_flight > 0 {
            core = core.max_in_flight(self.max_in_flight as usize);
        }
        if let Some(d) = ms(self.backoff_base_ms) {
            core = core.backoff_base(d);
        }
        if let Some(d) = ms(self.backoff_cap_ms) {
            core = core.backoff_cap(d);
        }
        let config = core.build().map_err(|e| invalid(e.to_string()))?;
        Ok(Built { config, url, ingest_key: key.to_string() })
    }
}

/// A new configuration with the defaults (memory only, every number the core's default).
/// Returns NULL only when a bug was caught.
#[unsafe(no_mangle)]
pub extern "C" fn empmix_engine_config_new() -> *mut EmpmixEngineConfig {
    std::panic::catch_unwind(|| Box::into_raw(Box::<EmpmixEngineConfig>::default()))
        .unwrap_or(std::ptr::null_mut())
}

/// Frees a configuration. NULL is ignored. Engines created from it are not affected.
///
/// # Safety
/// `config` is NULL or from `empmix_engine_config_new`, not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_config_free(config: *mut EmpmixEngineConfig) {
    // SAFETY: made by `Box::into_raw` in `empmix_engine_config_new`, freed once.
    unsafe { free_boxed(config) }
}

/// Runs a setter on a non-NULL configuration.
///
/// # Safety
/// `config` is NULL or a live configuration not used by another thread during the call.
unsafe fn set(
    config: *mut EmpmixEngineConfig,
    body: impl FnOnce(&mut EmpmixEngineConfig) -> Result<(), Failure>,
) -> EmpmixResult {
    guard(|| {
        // SAFETY: per the contract.
        let config = unsafe { config.as_mut() }.ok_or_else(|| Failure::null("config"))?;
        body(config)
    })
}

/// Runs a setter taking one required string.
///
/// # Safety
/// As [`set`]; `value` is NULL or NUL-terminated.
unsafe fn set_str(
    config: *mut EmpmixEngineConfig,
    value: *const c_char,
    what: &str,
    apply: impl FnOnce(&mut EmpmixEngineConfig, &str),
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |c| {
            apply(c, required_str(value, what)?);
            Ok(())
        })
    }
}

/// The project's public ingest key, sent as the `X-API-Key` header. Required.
///
/// # Safety
/// `config` is NULL or a live configuration, not used by another thread during the call;
/// `value` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_config_set_ingest_key(
    config: *mut EmpmixEngineConfig,
    value: *const c_char,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe { set_str(config, value, "ingest_key", |c, v| c.ingest_key = Some(v.to_string())) }
}

/// The server's base URL (`https://analytics.example`, or a prefix it is mounted under, to
/// which `/api/analytics/events` is added) or the full ingest URL (ending in that path or
/// `/track`): requests carry it. Required.
///
/// # Safety
/// `config` is NULL or a live configuration, not used by another thread during the call;
/// `value` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_config_set_endpoint(
    config: *mut EmpmixEngineConfig,
    value: *const c_char,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe { set_str(config, value, "endpoint", |c, v| c.endpoint = Some(v.to_string())) }
}

/// The conference this app is configured for: shares and share opens that name none count
/// under it. Empty for none (the default).
///
/// # Safety
/// `config` is NULL or a live configuration, not used by another thread during the call;
/// `value` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_config_set_conference_id(
    config: *mut EmpmixEngineConfig,
    value: *const c_char,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe { set_str(config, value, "conference_id", |c, v| c.conference_id = Some(v.to_string())) }
}

/// The device model, for example `Pixel 8` (`device_model` in every event's context).
///
/// # Safety
/// `config` is NULL or a live configuration, not used by another thread during the call;
/// `value` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_config_set_device_model(
    config: *mut EmpmixEngineConfig,
    value: *const c_char,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe { set_str(config, value, "device_model", |c, v| c.host.device_model(v)) }
}

/// The user's BCP 47 locale, for example `en-US` (`locale` in every event's context).
///
/// # Safety
/// `config` is NULL or a live configuration, not used by another thread during the call;
/// `value` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_config_set_locale(
    config: *mut EmpmixEngineConfig,
    value: *const c_char,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe {
        set_str(config, value, "locale", |c, v| c.locale = Some(v.to_string()).filter(|l| !l.is_empty()))
    }
}

/// The IANA time zone, for example `Europe/Berlin` (`timezone` in every event's context).
///
/// # Safety
/// `config` is NULL or a live configuration, not used by another thread during the call;
/// `value` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_config_set_time_zone(
    config: *mut EmpmixEngineConfig,
    value: *const c_char,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe { set_str(config, value, "time_zone", |c, v| c.host.time_zone(v)) }
}

/// Send the context a request's events share once, as the batch's `context` (default true;
/// docs/protocol.md). False gives every event its own, for a server older than that field.
///
/// # Safety
/// `config` is NULL or a live configuration, not used by another thread during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_config_set_shared_context(
    config: *mut EmpmixEngineConfig,
    value: bool,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |c| {
            c.per_event_context = !value;
            Ok(())
        })
    }
}

/// Send when this many events are queued (default 20; 0 restores the default).
///
/// # Safety
/// `config` is NULL or a live configuration, not used by another thread during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_config_set_flush_at(
    config: *mut EmpmixEngineConfig,
    value: u32,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |c| {
            c.flush_at = value;
            Ok(())
        })
    }
}

/// Send when the oldest unsent event has waited this long, in ms (default 30000; 0
/// restores the default).
///
/// # Safety
/// `config` is NULL or a live configuration, not used by another thread during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_config_set_flush_interval_ms(
    config: *mut EmpmixEngineConfig,
    value: u32,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |c| {
            c.flush_interval_ms = value;
            Ok(())
        })
    }
}

/// Most events kept unsent (default 10000; 0 restores the default); beyond it the oldest
/// are dropped and counted.
///
/// # Safety
/// `config` is NULL or a live configuration, not used by another thread during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_config_set_max_queue(
    config: *mut EmpmixEngineConfig,
    value: u32,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |c| {
            c.max_queue = value;
            Ok(())
        })
    }
}

/// Requests in flight at once (default 1, which keeps delivery in tracking order; at most
/// 16; 0 restores the default).
///
/// # Safety
/// `config` is NULL or a live configuration, not used by another thread during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_config_set_max_in_flight(
    config: *mut EmpmixEngineConfig,
    value: u32,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |c| {
            c.max_in_flight = value;
            Ok(())
        })
    }
}

/// First retry delay before jitter, in ms (default 1000; 0 restores the default).
///
/// # Safety
/// `config` is NULL or a live configuration, not used by another thread during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_config_set_backoff_base_ms(
    config: *mut EmpmixEngineConfig,
    value: u32,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |c| {
            c.backoff_base_ms = value;
            Ok(())
        })
    }
}

/// Longest retry delay before jitter, in ms (default 300000; 0 restores the default).
///
/// # Safety
/// `config` is NULL or a live configuration, not used by another thread during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_config_set_backoff_cap_ms(
    config: *mut EmpmixEngineConfig,
    value: u32,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |c| {
            c.backoff_cap_ms = value;
            Ok(())
        })
    }
}

/// Emit persistence operations for the app's storage (default false: memory only).
///
/// # Safety
/// `config` is NULL or a live configuration, not used by another thread during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_config_set_persist(
    config: *mut EmpmixEngineConfig,
    value: bool,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |c| {
            c.persist = value;
            Ok(())
        })
    }
}

/// Last-touch share attribution instead of first-touch (default false).
///
/// # Safety
/// `config` is NULL or a live configuration, not used by another thread during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_config_set_last_touch(
    config: *mut EmpmixEngineConfig,
    value: bool,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |c| {
            c.last_touch = value;
            Ok(())
        })
    }
}

/// The SDK sending the events (`library` in every event's context; default `empmix-engine`
/// and this library's version), for bindings such as the JVM one. `version` may be NULL.
///
/// # Safety
/// `config` is NULL or a live configuration, not used by another thread during the call;
/// strings are NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_config_set_library(
    config: *mut EmpmixEngineConfig,
    name: *const c_char,
    version: *const c_char,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |c| {
            let name = required_str(name, "library name")?.to_string();
            let version = optional_str(version, "library version")?.unwrap_or_default().to_string();
            c.library = Some((name, version));
            Ok(())
        })
    }
}

/// The host app: its name, version and build number (`app`, `app_version`, `app_build` in every
/// event's context). `version` and `build` may be NULL.
///
/// # Safety
/// As `empmix_engine_config_set_library`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_config_set_app(
    config: *mut EmpmixEngineConfig,
    name: *const c_char,
    version: *const c_char,
    build: *const c_char,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |c| {
            let name = required_str(name, "app name")?;
            c.app = Some(name.to_string()).filter(|n| !n.is_empty());
            let (version, build) = (optional_str(version, "app version")?, optional_str(build, "app build")?);
            c.host.app_version(version.unwrap_or_default(), build.unwrap_or_default());
            Ok(())
        })
    }
}

/// The operating system as the host reports it, for example `Android` and `14` (`os` and
/// `os_version` in every event's context). `version` may be NULL.
///
/// # Safety
/// As `empmix_engine_config_set_library`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_config_set_os(
    config: *mut EmpmixEngineConfig,
    name: *const c_char,
    version: *const c_char,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |c| {
            let name = required_str(name, "os name")?;
            c.os = Some(name.to_string()).filter(|n| !n.is_empty());
            c.host.os_version(optional_str(version, "os version")?.unwrap_or_default());
            Ok(())
        })
    }
}

/// The screen size as the host measures it (`screen`, for example `1080x2400`, in every event's
/// context); 0 leaves it out.
///
/// # Safety
/// `config` is NULL or a live configuration, not used by another thread during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_engine_config_set_screen_size(
    config: *mut EmpmixEngineConfig,
    width: u32,
    height: u32,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |c| {
            c.host.screen_size(width, height);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::ingest_url;

    #[test]
    fn endpoints_become_ingest_urls() {
        assert_eq!(
            ingest_url("http://127.0.0.1:8000").as_deref(),
            Some("http://127.0.0.1:8000/api/analytics/events")
        );
        assert_eq!(
            ingest_url("https://a.example/").as_deref(),
            Some("https://a.example/api/analytics/events")
        );
        assert_eq!(ingest_url("https://a.example/track").as_deref(), Some("https://a.example/track"));
        // A prefix, as the other SDKs read it (the core's rule).
        assert_eq!(
            ingest_url("https://a.example/x").as_deref(),
            Some("https://a.example/x/api/analytics/events")
        );
        for bad in ["not a url", "ftp://x", "http://", "http:///x", "http://a b"] {
            assert_eq!(ingest_url(bad), None, "{bad}");
        }
    }
}
