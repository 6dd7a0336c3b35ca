//! The sans-IO engine behind every EmpMix SDK.
//!
//! `empmix-core` holds every decision an analytics SDK makes — the event model, batching by
//! time window and queue threshold, retry with backoff, identity and sessions, share-code
//! attribution, the persisted state and the v1 wire protocol — and does no IO at all. It reads
//! no clock, draws no randomness, starts no thread and touches no file or socket: time comes
//! in as `now`, randomness through [`Entropy`], and requests to send and state to persist come
//! out as values. The browser (`empmix-wasm`), Rust (`empmix`) and C (`empmix-ffi`) SDKs are
//! thin drivers around one [`Engine`], so they behave the same.
//!
//! # Where things live
//!
//! | module | what |
//! |---|---|
//! | [`event`] | event ids (UUIDv7), properties, context, typed seed events |
//! | `batching` | the queue, batch cutting, backoff |
//! | `identity` | anonymous id, identify, super properties, opt-out, sessions |
//! | [`attribution`] | share codes, the `_s` URL parameter, first/last touch |
//! | [`persist`] | storage operations, snapshots, the state record |
//! | [`protocol`] | the v1 wire format, limits, status classes, golden fixtures |
//! | [`config`] | validated settings and their defaults |
//! | [`settings`] | the one decoder of settings given by name (the browser's options) |
//! | [`code`] | the stable error codes every frontend returns |
//! | [`frontend`] | the source frontends take from the core, generated (the browser's `js/core.js`) |
//! | [`json`] | the small JSON reader/writer that keeps `serde_json` out of the browser |
//!
//! # The driver's contract
//!
//! The engine's methods fall into getters, commands (`track`, `identify`, `flush`, …),
//! inputs (`handle_response`, `handle_timeout`) and outputs (`poll_transmit`,
//! `poll_timeout`, `poll_persist`, `poll_report`). A driver:
//!
//! 1. **Starts** with [`Engine::restore`] from its storage's [`persist::Snapshot`] (or
//!    [`Engine::new`] without storage), passing the wall-clock time and its entropy source.
//! 2. **After every command or input**, in this order:
//!    - applies every [`Engine::poll_persist`] operation to its storage (with persistence on),
//!      so an event is durable once its `Append` is applied (see [`persist`]);
//!    - sends every [`Engine::poll_transmit`] request (`POST` the body to
//!      [`protocol::EVENTS_PATH`] with the ingest key) without waiting for the answers;
//!    - re-arms one timer for [`Engine::poll_timeout`] (no timer when it returns `None`).
//! 3. **When a request finishes**, calls [`Engine::handle_response`] with its status,
//!    `Retry-After` and body (or [`Response::Failed`] for a network error or timeout), then
//!    repeats step 2.
//! 4. **When the timer fires**, calls [`Engine::handle_timeout`], then repeats step 2.
//! 5. **To flush**, calls [`Engine::flush`] and waits (with its own deadline) until
//!    [`Engine::is_flushed`] says the ticket is done; **to stop**, calls
//!    [`Engine::shutdown`] and drives until [`Engine::is_idle`] or its deadline. Anything still
//!    unsent then is in storage (sent by the next start) or, without storage, lost and counted.
//! 6. **When the page or app is being suspended**, sends every
//!    [`Engine::poll_unload_transmit`] request with whatever the platform offers
//!    (`sendBeacon`, a background task).
//! 7. **When another engine shares its storage** (browser tabs of one site) and saves a new
//!    state record, passes it to [`Engine::adopt_state`], so both go on as one user.
//!
//! Every method that needs time takes `now`; a clock that jumps backwards or forwards is
//! tolerated (a backwards jump delays a flush by at most one interval; a forward jump may
//! expire old events, which are reported).
//!
//! # Example: a minimal driver loop
//!
//! ```
//! use std::time::Duration;
//! use empmix_core::{Config, Engine, Event, Response, SeededEntropy, Timestamp};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::builder().flush_at(2).flush_interval(Duration::from_secs(10)).build()?;
//! let mut now = Timestamp::from_unix_millis(1_750_000_000_000); // the driver's clock
//! let mut rng = SeededEntropy::new(0x5eed); // seed from OS randomness in a real driver
//! let mut engine = Engine::new(config, now, &mut rng);
//!
//! engine.track(now, &mut rng, Event::page_view("https://example.com/conf/abc", Some("abc"), None))?;
//! engine.track(now, &mut rng, Event::registration("abc", Some("form-1")))?;
//!
//! let mut delivered = 0;
//! loop {
//!     while let Some(request) = engine.poll_transmit(now) {
//!         // A real driver POSTs `request.body` and reports the real outcome later.
//!         let status = 200;
//!         delivered += request.events;
//!         engine.handle_response(now, &mut rng, request.batch, Response::Status {
//!             status,
//!             retry_after: None,
//!             body: r#"{"accepted":2,"rejected":[]}"#,
//!         });
//!     }
//!     match engine.poll_timeout(now) {
//!         Some(deadline) => {
//!             now = now.max(deadline); // a real driver sleeps until then
//!             engine.handle_timeout(now);
//!         }
//!         None => break,
//!     }
//! }
//! assert_eq!(delivered, 2);
//! assert_eq!(engine.stats().delivered, 2);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod attribution;
mod batching;
pub mod code;
pub mod config;
mod engine;
pub mod entropy;
pub mod event;
pub mod frontend;
mod identity;
pub mod json;
pub mod persist;
pub mod protocol;
pub mod settings;
pub mod time;

pub use attribution::{AttributionModel, IncomingUrl, ShareCode, ShareLink};
pub use batching::BatchId;
pub use code::ErrorCode;
pub use config::{Config, ConfigBuilder, ConfigError, OverflowPolicy};
pub use engine::{
    DropReason, DroppedCounts, Engine, FlushTicket, Report, Response, RestoreReport, Stats, TrackError,
    Transmit,
};
pub use entropy::{Entropy, SeededEntropy};
pub use event::{Context, Event, EventError, EventId, HostContext, Properties, PropertyValue};
pub use settings::SettingError;
pub use time::Timestamp;
