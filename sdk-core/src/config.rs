//! Engine settings, built and validated by [`ConfigBuilder`].

use core::time::Duration;

use crate::attribution::AttributionModel;
use crate::event::Context;
use crate::protocol::{MAX_BATCH_BYTES, MAX_EVENT_BYTES, MAX_EVENTS_PER_BATCH};

/// Flush when this many events are queued.
pub const DEFAULT_FLUSH_AT: usize = 20;
/// Flush when the oldest unsent event has waited this long.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(30);
/// Most events held unsent.
pub const DEFAULT_MAX_QUEUE: usize = 10_000;
/// Events older than this are dropped unsent.
pub const DEFAULT_MAX_EVENT_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Inactivity after which a new session starts.
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How long an opened share link keeps the credit.
pub const DEFAULT_ATTRIBUTION_WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);
/// First retry delay (before jitter).
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Longest retry delay (before jitter).
pub const DEFAULT_BACKOFF_CAP: Duration = Duration::from_secs(300);
/// Longest `Retry-After` honoured; a server asking for more is asked again after this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// What to do when a new event arrives and `max_queue` events are already waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverflowPolicy {
    /// Drop the oldest waiting event to make room (recent behaviour matters most).
    #[default]
    DropOldest,
    /// Refuse the new event.
    DropNewest,
}

/// A setting that was out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `flush_at` must be between 1 and `max_batch_events`.
    #[error("flush_at must be between 1 and max_batch_events ({max}), got {got}")]
    FlushAt {
        /// The value given.
        got: usize,
        /// The largest allowed.
        max: usize,
    },
    /// `max_batch_events` must be between 1 and the protocol limit (500).
    #[error("max_batch_events must be between 1 and 500, got {0}")]
    MaxBatchEvents(usize),
    /// `max_batch_bytes` must hold at least one maximal event and stay within the protocol
    /// limit (1 MiB).
    #[error("max_batch_bytes must be between {min} and {max}, got {got}", min = MIN_BATCH_BYTES, max = MAX_BATCH_BYTES)]
    MaxBatchBytes {
        /// The value given.
        got: usize,
    },
    /// `max_queue` must be at least `flush_at` and at most 1,000,000.
    #[error("max_queue must be between flush_at ({min}) and 1000000, got {got}")]
    MaxQueue {
        /// The value given.
        got: usize,
        /// The smallest allowed.
        min: usize,
    },
    /// A duration that must be positive was zero.
    #[error("{0} must be greater than zero")]
    ZeroDuration(&'static str),
    /// `backoff_cap` is smaller than `backoff_base`.
    #[error("backoff_cap must be at least backoff_base")]
    BackoffCap,
    /// `max_in_flight` must be between 1 and 16.
    #[error("max_in_flight must be between 1 and 16, got {0}")]
    MaxInFlight(usize),
}

impl ConfigError {
    /// The setting the error is about, as [`ConfigBuilder`] names it (`flush_at`,
    /// `backoff_cap`, …).
    pub fn setting(&self) -> &'static str {
        match self {
            ConfigError::FlushAt { .. } => "flush_at",
            ConfigError::MaxBatchEvents(_) => "max_batch_events",
            ConfigError::MaxBatchBytes { .. } => "max_batch_bytes",
            ConfigError::MaxQueue { .. } => "max_queue",
            ConfigError::ZeroDuration(name) => name,
            ConfigError::BackoffCap => "backoff_cap",
            ConfigError::MaxInFlight(_) => "max_in_flight",
        }
    }
}

/// Smallest batch byte limit: one maximal event and the batch envelope.
pub const MIN_BATCH_BYTES: usize = MAX_EVENT_BYTES + crate::protocol::BATCH_OVERHEAD_BYTES;

/// Validated engine settings. Build with [`Config::builder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub(crate) flush_at: usize,
    pub(crate) flush_interval: Duration,
    pub(crate) max_queue: usize,
    pub(crate) overflow: OverflowPolicy,
    pub(crate) max_batch_events: usize,
    pub(crate) max_batch_bytes: usize,
    pub(crate) max_event_age: Duration,
    pub(crate) session_timeout: Duration,
    pub(crate) attribution_model: AttributionModel,
    pub(crate) attribution_window: Duration,
    pub(crate) backoff_base: Duration,
    pub(crate) backoff_cap: Duration,
    pub(crate) max_in_flight: usize,
    pub(crate) send_gap: Duration,
    pub(crate) shared_context: bool,
    pub(crate) persist: bool,
    pub(crate) report_outcomes: bool,
    pub(crate) context: Context,
    pub(crate) conference_id: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            flush_at: DEFAULT_FLUSH_AT,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            max_queue: DEFAULT_MAX_QUEUE,
            overflow: OverflowPolicy::DropOldest,
            max_batch_events: MAX_EVENTS_PER_BATCH,
            max_batch_bytes: MAX_BATCH_BYTES,
            max_event_age: DEFAULT_MAX_EVENT_AGE,
            session_timeout: DEFAULT_SESSION_TIMEOUT,
            attribution_model: AttributionModel::FirstTouch,
            attribution_window: DEFAULT_ATTRIBUTION_WINDOW,
            backoff_base: DEFAULT_BACKOFF_BASE,
            backoff_cap: DEFAULT_BACKOFF_CAP,
            max_in_flight: 1,
            send_gap: Duration::ZERO,
            shared_context: true,
            persist: false,
            report_outcomes: false,
            context: Context::default(),
            conference_id: None,
        }
    }
}

impl Config {
    /// A builder starting from the defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder { config: Config::default() }
    }

    /// Flush threshold.
    pub fn flush_at(&self) -> usize {
        self.flush_at
    }
    /// Flush time window.
    pub fn flush_interval(&self) -> Duration {
        self.flush_interval
    }
    /// Queue bound.
    pub fn max_queue(&self) -> usize {
        self.max_queue
    }
    /// Batch event limit.
    pub fn max_batch_events(&self) -> usize {
        self.max_batch_events
    }
    /// Batch byte limit.
    pub fn max_batch_bytes(&self) -> usize {
        self.max_batch_bytes
    }
    /// Whether the engine emits persistence operations.
    pub fn persist(&self) -> bool {
        self.persist
    }
}

/// Builds a [`Config`]; [`ConfigBuilder::build`] checks every value.
#[derive(Debug, Clone)]
pub struct ConfigBuilder {
    pub(crate) config: Config,
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty;)*) => {
        $($(#[$doc])* pub fn $name(mut self, value: $ty) -> Self {
            self.config.$name = value;
            self
        })*
    };
}

impl ConfigBuilder {
    setters! {
        /// Flush when this many events are queued (default 20).
        flush_at: usize;
        /// Flush when the oldest unsent event has waited this long (default 30 s).
        flush_interval: Duration;
        /// Most events held unsent (default 10,000).
        max_queue: usize;
        /// What a full queue does with a new event (default: drop the oldest).
        overflow: OverflowPolicy;
        /// Most events in one request (default and maximum 500).
        max_batch_events: usize;
        /// Most bytes in one request body (default and maximum 1 MiB).
        max_batch_bytes: usize;
        /// Events older than this are dropped unsent (default 7 days).
        max_event_age: Duration;
        /// Inactivity that starts a new session (default 30 minutes).
        session_timeout: Duration;
        /// First-touch (default) or last-touch share attribution.
        attribution_model: AttributionModel;
        /// How long an opened share keeps the credit (default 30 days).
        attribution_window: Duration;
        /// First retry delay (default 1 s).
        backoff_base: Duration;
        /// Longest retry delay (default 5 minutes).
        backoff_cap: Duration;
        /// Requests in flight at once (default 1, which keeps delivery in order).
        max_in_flight: usize;
        /// After a request, a queue that reaches `flush_at` waits this long from it before
        /// the next is cut, unless it holds a full batch (`max_batch_events`): under a burst
        /// of events, requests grow instead of multiplying, each request having a fixed cost
        /// (in a browser, about a millisecond of the page's main thread). The time window,
        /// explicit flushes and shutdown never wait for it. Default 0: no wait.
        send_gap: Duration;
        /// Send the context once per request, as the batch's `context`, when every event of
        /// the batch carries the one this engine encodes (docs/protocol.md), instead of in
        /// each event: a plain body (a beacon) shrinks by the context's size per event. Default
        /// on; turn it off for a server older than that field (2026-12-02), which ignores it.
        shared_context: bool;
        /// Emit persistence operations for the driver's storage (default off: memory only).
        persist: bool;
        /// Queue a per-event [`crate::Report`] for every delivery and drop (default off;
        /// counts are always in [`crate::Stats`]).
        report_outcomes: bool;
        /// Library, device and page context sent with every event.
        context: Context;
        /// The conference this frontend is configured for (the browser's `conferenceId`):
        /// shares and share opens without an explicit conference count under it.
        conference_id: Option<String>;
    }

    /// Checks every value and returns the configuration.
    pub fn build(self) -> Result<Config, ConfigError> {
        let c = self.config;
        if c.max_batch_events == 0 || c.max_batch_events > MAX_EVENTS_PER_BATCH {
            return Err(ConfigError::MaxBatchEvents(c.max_batch_events));
        }
        if c.flush_at == 0 || c.flush_at > c.max_batch_events {
            return Err(ConfigError::FlushAt { got: c.flush_at, max: c.max_batch_events });
        }
        if !(MIN_BATCH_BYTES..=MAX_BATCH_BYTES).contains(&c.max_batch_bytes) {
            return Err(ConfigError::MaxBatchBytes { got: c.max_batch_bytes });
        }
        if c.max_queue < c.flush_at || c.max_queue > 1_000_000 {
            return Err(ConfigError::MaxQueue { got: c.max_queue, min: c.flush_at });
        }
        for (name, d) in [
            ("flush_interval", c.flush_interval),
            ("max_event_age", c.max_event_age),
            ("session_timeout", c.session_timeout),
            ("attribution_window", c.attribution_window),
            ("backoff_base", c.backoff_base),
        ] {
            if d.is_zero() {
                return Err(ConfigError::ZeroDuration(name));
            }
        }
        if c.backoff_cap < c.backoff_base {
            return Err(ConfigError::BackoffCap);
        }
        if c.max_in_flight == 0 || c.max_in_flight > 16 {
            return Err(ConfigError::MaxInFlight(c.max_in_flight));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = Config::builder().build().unwrap();
        assert_eq!(c.flush_at(), 20);
        assert_eq!(c.flush_interval(), Duration::from_secs(30));
        assert_eq!(c.max_queue(), 10_000);
    }

    #[test]
    fn bad_values_are_errors_not_panics() {
        let b = Config::builder;
        assert_eq!(b().flush_at(0).build(), Err(ConfigError::FlushAt { got: 0, max: 500 }));
        assert_eq!(b().flush_at(501).build(), Err(ConfigError::FlushAt { got: 501, max: 500 }));
        assert_eq!(b().max_batch_events(0).build(), Err(ConfigError::MaxBatchEvents(0)));
        assert_eq!(b().max_batch_bytes(10).build(), Err(ConfigError::MaxBatchBytes { got: 10 }));
        assert_eq!(b().max_queue(5).build(), Err(ConfigError::MaxQueue { got: 5, min: 20 }));
        assert_eq!(
            b().flush_interval(Duration::ZERO).build(),
            Err(ConfigError::ZeroDuration("flush_interval"))
        );
        assert_eq!(
            b().backoff_base(Duration::from_secs(10)).backoff_cap(Duration::from_secs(1)).build(),
            Err(ConfigError::BackoffCap)
        );
        assert_eq!(b().max_in_flight(0).build(), Err(ConfigError::MaxInFlight(0)));
    }

    #[test]
    fn every_error_names_its_setting_as_the_builder_does() {
        let b = Config::builder;
        let named = |r: Result<Config, ConfigError>| r.map_err(|e| (e.setting(), e.to_string()));
        for (result, setting) in [
            (b().flush_at(0).build(), "flush_at"),
            (b().max_batch_events(0).build(), "max_batch_events"),
            (b().max_batch_bytes(1).build(), "max_batch_bytes"),
            (b().max_queue(1).build(), "max_queue"),
            (b().session_timeout(Duration::ZERO).build(), "session_timeout"),
            (b().backoff_cap(Duration::ZERO).build(), "backoff_cap"),
            (b().max_in_flight(17).build(), "max_in_flight"),
        ] {
            let (name, message) = named(result).unwrap_err();
            assert_eq!(name, setting);
            assert!(message.starts_with(setting), "{message}");
        }
    }
}
