//! `empmix`: the Rust client SDK for EmpMix analytics.
//!
//! Add it to a Rust service or app to track events (page views, shares, registrations,
//! check-ins, AI chats, anything custom), identify users, follow share-link attribution, and
//! have it all delivered to an EmpMix ingest server in batches — retried with backoff, never
//! blocking the caller, and optionally persisted so that a crash or restart loses nothing.
//!
//! It is a thin driver around the sans-IO engine in [`empmix_core`]: the engine makes every
//! decision (batching, retry, identity, sessions, attribution, what to persist), and this crate
//! supplies the clock, randomness, a background thread with its own small Tokio runtime that
//! sends requests with `reqwest` (rustls, gzip bodies, connection reuse, timeouts), and a
//! crash-safe file store.
//!
//! ```no_run
//! use std::time::Duration;
//! use empmix::Client;
//! use serde_json::json;
//!
//! # async fn run() -> Result<(), empmix::Error> {
//! let client = Client::builder("pk_live_…")
//!     .endpoint("https://analytics.example")
//!     .flush_interval(Duration::from_secs(5))
//!     .persistence_dir("/var/lib/my-app/empmix")
//!     .build()?;
//!
//! client.identify("user-42")?;
//! client.page_view("https://conf.example/c/abc", Some("abc"), None)?;
//! let id = client.track("ticket_viewed", json!({ "conference_id": "abc", "tier": "vip" }))?;
//! println!("tracked {id}");
//! let link = client.create_share("wechat", "https://conf.example/c/abc", Some("abc"))?;
//! println!("share {}", link.url);
//!
//! client.flush().await?; // everything above is delivered (or reported dropped)
//! client.shutdown().await?; // drain and stop before the process exits
//! # Ok(())
//! # }
//! ```
//!
//! # Threads, blocking and overload
//!
//! [`Client`] is `Clone + Send + Sync`. Tracking calls (`track`, `identify`, `create_share`,
//! …) are plain synchronous functions usable from any thread, from async code on any runtime
//! (multi-thread or current-thread), or from code with no runtime at all. They run the engine
//! under a short in-memory lock (no IO is ever done while holding it) and return the event's id.
//! Network IO happens only on the client's background thread. When requests cannot keep up,
//! the queue grows to `max_queue` events; beyond that the overflow policy drops the oldest
//! (default) or refuses the new event with [`Error::QueueFull`] — `track` never blocks and
//! memory stays bounded. Drops are counted in [`Client::stats`].
//!
//! `flush` and `shutdown` are `async` and work on any executor (they wait on a channel, not on
//! a timer of the caller's runtime); `flush_blocking` and `shutdown_blocking` serve synchronous
//! code.
//!
//! # Durability
//!
//! With [`ClientBuilder::persistence_dir`], identity, attribution and unsent events live in an
//! append-only log (`events.log`, records framed with length and CRC-32). An event is durable
//! against a process crash (including SIGKILL) **once `track` returns**: its record was written
//! to the file by that call. It is durable against power loss once the background thread has
//! synced the file, which it does within about a second of a write while it is active and at
//! the latest at its next flush. A torn record at the end of the log is detected and skipped.
//! The next client opening the directory sends every stored event exactly once with its
//! original id and timestamp (a crash between a server's 200 and the removal being written
//! sends it again; the server deduplicates by event id). The log is compacted when delivered
//! records dominate, so it stays bounded by `max_queue`.
//!
//! When the log cannot be written (a full disk), `track` still succeeds: the event is queued in
//! memory only and sent while the client runs, a warning is logged, and if the client stops
//! before sending it, it is counted as lost ([`Stats::dropped`]). A log the client cannot
//! compact at start for want of space is used as it is.
//!
//! Without a directory everything is in memory; events still unsent when the client stops are
//! counted as lost ([`Stats::dropped`]) and logged.
//!
//! # Diagnostics
//!
//! The client logs with [`tracing`]: warnings for dropped events, storage errors and lost
//! events; with [`ClientBuilder::debug`] also a debug event per tracked event and per request.
#![forbid(unsafe_code)]

mod builder;
mod client;
mod error;
mod shared;
mod store;
mod transport;
mod worker;

pub use builder::{
    ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_FLUSH_TIMEOUT, DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_SHUTDOWN_TIMEOUT,
};
pub use client::Client;
pub use error::Error;

pub use empmix_core::{
    AttributionModel, DroppedCounts, Event, EventId, IncomingUrl, OverflowPolicy, Properties, PropertyValue,
    ShareCode, ShareLink, Stats,
};
