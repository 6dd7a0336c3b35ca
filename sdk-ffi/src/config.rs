//! The opaque, growable configuration: `empmix_config_new`, one setter per setting,
//! `empmix_client_create`. New settings are new setters, so an app compiled against an older
//! header keeps working with a newer library.

use std::ffi::c_char;

use empmix_ffi_boundary::{EmpmixResult, Failure, free_boxed, guard, optional_str, required_str};
use empmix_native::{Client, ClientBuilder};

use crate::client::{EmpmixClient, map_error, ms};

/// Every setting of a client, owned.
#[derive(Debug, Clone, Default)]
pub(crate) struct Settings {
    pub ingest_key: Option<String>,
    pub endpoint: Option<String>,
    pub data_dir: Option<String>,
    pub flush_at: u32,
    pub flush_interval_ms: u32,
    pub max_queue: u32,
    pub request_timeout_ms: u32,
    pub gzip: bool,
    pub shared_context: bool,
    pub debug: bool,
    pub app: Option<(String, String, String)>,
    pub os: Option<(String, String)>,
    pub device_model: Option<String>,
    pub locale: Option<String>,
    pub screen: (u32, u32),
    pub time_zone: Option<String>,
}

impl Settings {
    pub(crate) fn new() -> Self {
        Settings { gzip: true, shared_context: true, ..Settings::default() }
    }

    /// What both client constructors do: refuse a NULL `out_client`, set `*out_client` to NULL
    /// (it stays so on failure), refuse a NULL `config`, then start a client from the settings
    /// `settings` reads out of it.
    ///
    /// # Safety
    /// `config` is NULL or points to a live `C`; `out_client` is NULL or writable.
    pub(crate) unsafe fn create<C>(
        config: *const C,
        out_client: *mut *mut EmpmixClient,
        settings: impl FnOnce(&C) -> Result<Settings, Failure>,
    ) -> Result<(), Failure> {
        if out_client.is_null() {
            return Err(Failure::new(EmpmixResult::NullArgument, "out_client is NULL"));
        }
        // SAFETY: non-NULL and writable per the contract.
        unsafe { *out_client = std::ptr::null_mut() };
        // SAFETY: per the contract.
        let config = unsafe { config.as_ref() }
            .ok_or_else(|| Failure::new(EmpmixResult::NullArgument, "config is NULL"))?;
        // SAFETY: checked non-NULL above.
        unsafe { settings(config)?.start(out_client) }
    }

    /// Checks the settings and starts a client, written to `*out_client`.
    ///
    /// # Safety
    /// `out_client` is NULL or writable.
    pub(crate) unsafe fn start(&self, out_client: *mut *mut EmpmixClient) -> Result<(), Failure> {
        let key = self
            .ingest_key
            .as_deref()
            .ok_or_else(|| Failure::new(EmpmixResult::NullArgument, "config.ingest_key is not set"))?;
        let endpoint = self
            .endpoint
            .as_deref()
            .ok_or_else(|| Failure::new(EmpmixResult::NullArgument, "config.endpoint is not set"))?;
        let mut builder: ClientBuilder = Client::builder(key)
            .endpoint(endpoint)
            .gzip(self.gzip)
            .shared_context(self.shared_context)
            .debug(self.debug);
        if let Some(dir) = &self.data_dir {
            builder = builder.persistence_dir(dir);
        }
        if self.flush_at > 0 {
            builder = builder.flush_at(self.flush_at as usize);
        }
        if let Some(d) = ms(self.flush_interval_ms) {
            builder = builder.flush_interval(d);
        }
        if self.max_queue > 0 {
            builder = builder.max_queue(self.max_queue as usize);
        }
        if let Some(d) = ms(self.request_timeout_ms) {
            builder = builder.request_timeout(d);
        }
        if let Some((name, version, build)) = &self.app {
            if !name.is_empty() {
                builder = builder.app(name);
            }
            builder = builder.app_version(version, build);
        }
        if let Some((name, version)) = &self.os {
            builder = builder.os(name, version);
        }
        if let Some(model) = &self.device_model {
            builder = builder.device_model(model);
        }
        if let Some(locale) = self.locale.as_ref().filter(|l| !l.is_empty()) {
            builder = builder.locale(locale);
        }
        builder = builder.screen_size(self.screen.0, self.screen.1);
        if let Some(zone) = &self.time_zone {
            builder = builder.time_zone(zone);
        }
        let inner = builder.build().map_err(map_error)?;
        let handle = Box::into_raw(Box::new(EmpmixClient { inner }));
        // SAFETY: checked non-NULL by the caller.
        unsafe { *out_client = handle };
        Ok(())
    }
}

/// An opaque client configuration. Create with `empmix_config_new`, set what you need with the
/// `empmix_config_set_*` calls, pass to `empmix_client_create` (as often as you like), free with
/// `empmix_config_free`. Setters copy their strings; nothing is checked until
/// `empmix_client_create`, except NULL and UTF-8.
#[derive(Debug)]
pub struct EmpmixConfigBuilder {
    settings: Settings,
}

/// A new configuration with the defaults (gzip on, every number the library's default).
/// Returns NULL only when memory ran out or a bug was caught.
#[unsafe(no_mangle)]
pub extern "C" fn empmix_config_new() -> *mut EmpmixConfigBuilder {
    std::panic::catch_unwind(|| Box::into_raw(Box::new(EmpmixConfigBuilder { settings: Settings::new() })))
        .unwrap_or(std::ptr::null_mut())
}

/// Frees a configuration. NULL is ignored. Clients created from it are not affected.
///
/// # Safety
/// `config` is NULL or from `empmix_config_new`, not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_config_free(config: *mut EmpmixConfigBuilder) {
    // SAFETY: made by `Box::into_raw` in `empmix_config_new`, freed once per the contract.
    unsafe { free_boxed(config) }
}

/// Runs a setter on a non-NULL configuration.
///
/// # Safety
/// `config` is NULL or a live configuration not used by another thread during the call.
unsafe fn set(
    config: *mut EmpmixConfigBuilder,
    body: impl FnOnce(&mut Settings) -> Result<(), Failure>,
) -> EmpmixResult {
    guard(|| {
        // SAFETY: per the contract.
        let config = unsafe { config.as_mut() }
            .ok_or_else(|| Failure::new(EmpmixResult::NullArgument, "config is NULL"))?;
        body(&mut config.settings)
    })
}

/// The project's public ingest key. Required.
///
/// # Safety
/// `config` is NULL or a live configuration, not used by another thread during the call;
/// `value` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_config_set_ingest_key(
    config: *mut EmpmixConfigBuilder,
    value: *const c_char,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |s| {
            s.ingest_key = Some(required_str(value, "ingest_key")?.to_string());
            Ok(())
        })
    }
}

/// The server's base URL, for example `https://analytics.example`. Required.
///
/// # Safety
/// `config` is NULL or a live configuration, not used by another thread during the call;
/// `value` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_config_set_endpoint(
    config: *mut EmpmixConfigBuilder,
    value: *const c_char,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |s| {
            s.endpoint = Some(required_str(value, "endpoint")?.to_string());
            Ok(())
        })
    }
}

/// The device model, for example `iPhone15,2` (`device_model` in every event's context).
///
/// # Safety
/// `config` is NULL or a live configuration, not used by another thread during the call;
/// `value` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_config_set_device_model(
    config: *mut EmpmixConfigBuilder,
    value: *const c_char,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |s| {
            s.device_model = Some(required_str(value, "device_model")?.to_string());
            Ok(())
        })
    }
}

/// The user's BCP 47 locale, for example `en-US` (`locale` in every event's context).
///
/// # Safety
/// `config` is NULL or a live configuration, not used by another thread during the call;
/// `value` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_config_set_locale(
    config: *mut EmpmixConfigBuilder,
    value: *const c_char,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |s| {
            s.locale = Some(required_str(value, "locale")?.to_string());
            Ok(())
        })
    }
}

/// The IANA time zone, for example `Europe/Berlin` (`timezone` in every event's context).
///
/// # Safety
/// `config` is NULL or a live configuration, not used by another thread during the call;
/// `value` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_config_set_time_zone(
    config: *mut EmpmixConfigBuilder,
    value: *const c_char,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |s| {
            s.time_zone = Some(required_str(value, "time_zone")?.to_string());
            Ok(())
        })
    }
}

/// A directory for identity, attribution and unsent events (the app's data folder); NULL (the
/// default) keeps everything in memory.
///
/// # Safety
/// `config` is NULL or a live configuration, not used by another thread during the call;
/// `dir` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_config_set_data_dir(
    config: *mut EmpmixConfigBuilder,
    dir: *const c_char,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |s| {
            s.data_dir = optional_str(dir, "data_dir")?.map(str::to_string);
            Ok(())
        })
    }
}

/// Send when this many events are queued (default 20; 0 restores the default).
///
/// # Safety
/// `config` is NULL or a live configuration, not used by another thread during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_config_set_flush_at(
    config: *mut EmpmixConfigBuilder,
    value: u32,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |s| {
            s.flush_at = value;
            Ok(())
        })
    }
}

/// Send when the oldest unsent event has waited this long, in ms (default 30000; 0 restores
/// the default).
///
/// # Safety
/// `config` is NULL or a live configuration, not used by another thread during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_config_set_flush_interval_ms(
    config: *mut EmpmixConfigBuilder,
    value: u32,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |s| {
            s.flush_interval_ms = value;
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
pub unsafe extern "C" fn empmix_config_set_max_queue(
    config: *mut EmpmixConfigBuilder,
    value: u32,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |s| {
            s.max_queue = value;
            Ok(())
        })
    }
}

/// Timeout of one HTTP request, in ms (default 10000; 0 restores the default).
///
/// # Safety
/// `config` is NULL or a live configuration, not used by another thread during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_config_set_request_timeout_ms(
    config: *mut EmpmixConfigBuilder,
    value: u32,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |s| {
            s.request_timeout_ms = value;
            Ok(())
        })
    }
}

/// Compress request bodies with gzip (default true).
///
/// # Safety
/// `config` is NULL or a live configuration, not used by another thread during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_config_set_gzip(
    config: *mut EmpmixConfigBuilder,
    value: bool,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |s| {
            s.gzip = value;
            Ok(())
        })
    }
}

/// Send the context a request's events share once, as the batch's `context` (default true;
/// docs/protocol.md). False gives every event its own, for a server older than that field.
///
/// # Safety
/// `config` is NULL or a live configuration, not used by another thread during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_config_set_shared_context(
    config: *mut EmpmixConfigBuilder,
    value: bool,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |s| {
            s.shared_context = value;
            Ok(())
        })
    }
}

/// Log every event and request (through the library's `tracing` output; default false).
///
/// # Safety
/// `config` is NULL or a live configuration, not used by another thread during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_config_set_debug(
    config: *mut EmpmixConfigBuilder,
    value: bool,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |s| {
            s.debug = value;
            Ok(())
        })
    }
}

/// The host app: its name, version and build number (`app`, `app_version`, `app_build` in every
/// event's context). `version` and `build` may be NULL.
///
/// # Safety
/// `config` is NULL or a live configuration, not used by another thread during the call;
/// strings are NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_config_set_app(
    config: *mut EmpmixConfigBuilder,
    name: *const c_char,
    version: *const c_char,
    build: *const c_char,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |s| {
            let name = required_str(name, "app name")?.to_string();
            let version = optional_str(version, "app version")?.unwrap_or_default().to_string();
            let build = optional_str(build, "app build")?.unwrap_or_default().to_string();
            s.app = Some((name, version, build));
            Ok(())
        })
    }
}

/// The operating system as the host reports it, for example `iOS` and `17.5` (`os` and
/// `os_version` in every event's context; without it, `os` is the one the library was built
/// for). `version` may be NULL.
///
/// # Safety
/// As `empmix_config_set_app`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_config_set_os(
    config: *mut EmpmixConfigBuilder,
    name: *const c_char,
    version: *const c_char,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |s| {
            let name = required_str(name, "os name")?.to_string();
            let version = optional_str(version, "os version")?.unwrap_or_default().to_string();
            s.os = Some((name, version));
            Ok(())
        })
    }
}

/// The screen size as the host measures it (`screen`, for example `390x844`, in every event's
/// context); 0 leaves it out.
///
/// # Safety
/// `config` is NULL or a live configuration, not used by another thread during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_config_set_screen_size(
    config: *mut EmpmixConfigBuilder,
    width: u32,
    height: u32,
) -> EmpmixResult {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |s| {
            s.screen = (width, height);
            Ok(())
        })
    }
}

/// Creates a client from `config` and starts its background thread. On success `*out_client`
/// is the new handle; on failure it is set to NULL. `config` is only read: free it when you no
/// longer need it.
///
/// # Safety
/// `config` is NULL or a live configuration, not written by another thread during the call;
/// `out_client` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn empmix_client_create(
    config: *const EmpmixConfigBuilder,
    out_client: *mut *mut EmpmixClient,
) -> EmpmixResult {
    // SAFETY: per the contract.
    guard(|| unsafe { Settings::create(config, out_client, |c| Ok(c.settings.clone())) })
}
