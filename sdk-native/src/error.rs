//! The one error type of the client.

use std::path::PathBuf;

use empmix_core::{ConfigError, EventError, TrackError, attribution::url::UrlError};

/// Why a client could not be built, or a call was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A builder setting is out of range; fix the setting.
    #[error("invalid setting: {0}")]
    Config(#[from] ConfigError),
    /// The endpoint is not an absolute `http` or `https` URL.
    #[error("invalid endpoint {0:?}: an absolute http or https URL is required")]
    InvalidEndpoint(String),
    /// The ingest key is empty or cannot be sent in an HTTP header.
    #[error("invalid ingest key: it must be non-empty visible ASCII")]
    InvalidIngestKey,
    /// A timeout setting is zero.
    #[error("{0} must be greater than zero")]
    ZeroTimeout(&'static str),
    /// The persistence directory is used by another client, in this process or (on Unix,
    /// where the directory is locked with `flock`) in another one; give each client its own
    /// directory.
    #[error("persistence directory {0} is already used by another client")]
    DirectoryInUse(PathBuf),
    /// The persistence directory or its log could not be created, read or written.
    #[error("persistence directory {path}: {source}")]
    Storage {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The background thread or the HTTP client could not be started.
    #[error("could not start the client: {0}")]
    Start(String),
    /// The user opted out; nothing is recorded until `opt_in`.
    #[error("the user has opted out of tracking")]
    OptedOut,
    /// `shutdown` was called; the client takes no new events and refuses a second shutdown.
    #[error("the client is shut down")]
    ShutDown,
    /// An event name, user id, alias or channel is empty, too long or has control characters.
    #[error(transparent)]
    InvalidName(#[from] EventError),
    /// Properties did not serialize to a JSON object.
    #[error("properties must serialize to a JSON object: {0}")]
    InvalidProperties(String),
    /// A URL given to `create_share` or `handle_incoming_url` is not an absolute URL.
    #[error(transparent)]
    InvalidUrl(#[from] UrlError),
    /// The encoded event is larger than the protocol allows (32 KiB); send less.
    #[error("event is {bytes} bytes encoded; at most 32768 allowed")]
    TooLarge {
        /// Its encoded size.
        bytes: usize,
    },
    /// The queue is full and the overflow policy (`DropNewest`) refused the event.
    #[error("the event queue is full")]
    QueueFull,
    /// `flush` or `shutdown` reached its deadline before everything was delivered. The events
    /// stay queued (and persisted, with a directory).
    #[error("timed out with {pending} events not yet delivered")]
    Timeout {
        /// Events still queued or in flight.
        pending: usize,
    },
}

impl Error {
    /// The builder setting a build error is about (`flush_at`, `endpoint`, `request_timeout`,
    /// …), as [`crate::ClientBuilder`] names it; `None` for errors that are not about a setting.
    /// The message names it too.
    pub fn setting(&self) -> Option<&'static str> {
        match self {
            Error::Config(e) => Some(e.setting()),
            Error::InvalidEndpoint(_) => Some("endpoint"),
            Error::InvalidIngestKey => Some("ingest_key"),
            Error::ZeroTimeout(name) => Some(name),
            _ => None,
        }
    }
}

impl From<TrackError> for Error {
    fn from(e: TrackError) -> Self {
        match e {
            TrackError::OptedOut => Error::OptedOut,
            TrackError::ShutDown => Error::ShutDown,
            TrackError::InvalidEvent(e) => Error::InvalidName(e),
            TrackError::TooLarge { bytes } => Error::TooLarge { bytes },
            TrackError::QueueFull => Error::QueueFull,
            TrackError::InvalidUrl(e) => Error::InvalidUrl(e),
        }
    }
}

impl From<crate::store::OpenError> for Error {
    fn from(e: crate::store::OpenError) -> Self {
        match e {
            crate::store::OpenError::InUse(path) => Error::DirectoryInUse(path),
            crate::store::OpenError::Io { path, source } => Error::Storage { path, source },
        }
    }
}
