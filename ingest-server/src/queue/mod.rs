//! The durable queue between the ingest API and the consumer.
//!
//! [`Queue`] is the seam: the embedded implementation is [`sqlite::SqliteQueue`] (one row per
//! accepted batch, group-committed, read in order behind the store's cursor); the scale-out one
//! is [`amqp::AmqpQueue`] (RabbitMQ: one persistent message per batch, publisher confirms,
//! manual acknowledgements, a dead-letter queue), whose deliveries are not ordered and may be
//! redelivered (the store deduplicates).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;

pub mod amqp;
mod envelope;
pub mod sqlite;

/// Why the queue could not do something. Publishing errors become 503 so clients retry.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The underlying database failed (disk full, I/O error, corruption).
    #[error("queue storage: {0}")]
    Storage(#[from] rusqlite::Error),
    /// The queue file or directory could not be opened.
    #[error("queue storage: {0}")]
    Io(#[from] std::io::Error),
    /// The writer has stopped (the server is shutting down or the writer thread died).
    #[error("queue writer stopped")]
    Closed,
    /// The broker is not connected (down, restarting, or unreachable); the connection is being
    /// re-established in the background.
    #[error("message broker unavailable")]
    Unavailable,
    /// The broker failed an operation.
    #[error("message broker: {0}")]
    Broker(#[from] lapin::Error),
    /// The broker refused to take responsibility for a batch (a publisher-confirm nack).
    #[error("message broker refused the batch (nack)")]
    Nacked,
    /// The broker returned a `mandatory` batch: no queue was bound to take it.
    #[error("message broker returned the batch: no queue took it")]
    Unroutable,
    /// The broker did not confirm a batch in time.
    #[error("message broker did not confirm the batch within {0:?}")]
    ConfirmTimeout(Duration),
    /// The queue URL or name is unusable.
    #[error("queue configuration: {0}")]
    Config(String),
    /// A stored batch could not be read back.
    #[error("stored batch {seq} is corrupt: {reason}")]
    Corrupt {
        /// The batch's sequence number.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
}

impl QueueError {
    /// Whether it is the disk being full (SQLite's `SQLITE_FULL`, `ENOSPC`, or the free-space
    /// floor).
    pub fn is_disk_full(&self) -> bool {
        match self {
            QueueError::Storage(e) => e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull),
            QueueError::Io(e) => e.kind() == std::io::ErrorKind::StorageFull,
            _ => false,
        }
    }
}

/// One accepted request, as written to the queue: the decompressed body (the consumer decodes
/// it again with the same decoder, which is deterministic, and skips the events that were
/// rejected), plus what ingest decided about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedBatch {
    /// The project whose ingest key the request carried.
    pub project: String,
    /// When the server received it, epoch ms.
    pub received_at: i64,
    /// UUIDv7 event ids assigned at ingest to events that had none, by index in `events`.
    pub assigned_ids: Vec<(u32, uuid::Uuid)>,
    /// The decompressed request body.
    pub body: Bytes,
}

impl QueuedBatch {
    /// The id assigned at ingest to the event at `index`, if it had none.
    pub fn assigned_id(&self, index: usize) -> Option<uuid::Uuid> {
        self.assigned_ids.iter().find(|(i, _)| *i as usize == index).map(|(_, id)| *id)
    }
}

/// A batch read back from the queue.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Monotonic sequence number within this queue.
    pub seq: u64,
    /// The batch.
    pub batch: QueuedBatch,
}

/// Depth and age of what the consumer has not yet processed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Batches after the given sequence number.
    pub depth: u64,
    /// `received_at` of the oldest of them, epoch ms.
    pub oldest_received_at: Option<i64>,
}

/// Resolves once a published batch is durable (`Ok(seq)`) or could not be made durable.
pub type Publish = Pin<Box<dyn Future<Output = Result<u64, QueueError>> + Send>>;

/// A durable, ordered queue of batches.
pub trait Queue: Send + Sync + fmt::Debug {
    /// Appends a batch. The future resolves only once the batch survives a crash.
    fn publish(&self, batch: QueuedBatch) -> Publish;

    /// Up to `max` batches with a sequence number above `after`, oldest first, waiting up to
    /// `wait` for one to arrive when there is none. Blocking.
    fn receive(&self, after: u64, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError>;

    /// Forgets every batch up to and including `through` (the consumer has committed them).
    /// Blocking.
    fn ack(&self, through: u64) -> Result<(), QueueError>;

    /// Depth and age after `after`. Blocking.
    fn stats(&self, after: u64) -> Result<QueueStats, QueueError>;

    /// Whether the queue can take writes now. Blocking.
    fn check(&self) -> Result<(), QueueError>;

    /// `true` (the embedded queue): sequence numbers are one total order and the consumer
    /// tracks its position in the store's cursor; [`Queue::ack`] forgets everything up to a
    /// sequence number. `false` (a broker): sequence numbers only name this process's
    /// deliveries, which arrive in no global order and may be redelivered (the store
    /// deduplicates); [`Queue::ack`] acknowledges the deliveries handed out up to `through`,
    /// and the consumer acknowledges right after each commit.
    fn ordered(&self) -> bool {
        true
    }

    /// Gives a delivery back after a failure to apply it, for redelivery; a broker dead-letters
    /// it once it has failed too many times. The embedded queue has nothing to do. Blocking.
    fn retry_later(&self, seq: u64) -> Result<(), QueueError> {
        let _ = seq;
        Ok(())
    }

    /// Stops accepting batches (shutdown).
    fn close(&self) {}
}
