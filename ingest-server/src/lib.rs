//! `empmix-server`: the reference EmpMix analytics ingest backend.
//!
//! One process, nothing else installed: the ingest API (`POST /api/analytics/events`, `POST
//! /track`) decodes batches with [`empmix_core::protocol`], writes each accepted batch durably
//! into a queue (group-committed to SQLite) before answering 200, and a consumer drains the
//! queue into analytics tables (deduplication, identity merges, sessions, share attribution,
//! daily summaries) that the query endpoints read. The queue and the store are traits
//! ([`queue::Queue`], [`store::Store`]) so that broker- and database-backed implementations can
//! be added beside the embedded SQLite ones.
//!
//! Other crates' end-to-end tests start a real server in-process on a free loopback port:
//!
//! ```no_run
//! use empmix_server::{Server, ServerConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let data = std::env::temp_dir().join("empmix-example");
//! let server = Server::start(ServerConfig::new(&data))?; // listens on 127.0.0.1:0
//! println!("POST {}/api/analytics/events with key {}", server.base_url(), server.ingest_key());
//! // ... send events, query `server.read_key()`-protected endpoints ...
//! server.shutdown()?;
//! # Ok(())
//! # }
//! ```

pub mod cli;
pub mod config;
pub mod consumer;
pub mod http;
pub mod live;
pub mod loopback;
pub mod query;
pub mod queue;
mod server;
pub mod store;

pub use config::{ProjectConfig, ServerConfig};
pub use consumer::spawn as spawn_consumer;
pub use server::{RunningServer, Server, ServerError, open_queue, open_store};

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
