//! What the engine asks the driver to store, and how it reads it back.
//!
//! With persistence on, the engine emits [`PersistOp`]s: append an event, remove events,
//! save the state (identity, super properties, session, attribution, opt-out). The driver
//! applies them in order to its storage (a file, `localStorage`, an app's data folder), and on
//! start hands the stored [`Snapshot`] to [`crate::Engine::restore`].
//!
//! **When an event is durable.** An event is durable once the driver has applied the
//! [`PersistOp::Append`] that its `track` call emitted. A crash after that point loses nothing:
//! on restart the event is restored with its original `event_id` and timestamp and sent. An
//! event is removed from storage only after a 2xx for it, or when it is dropped with a reported
//! reason; a crash between the 2xx and applying the removal sends it again, and the backend's
//! deduplication on `event_id` makes the second delivery count once.

mod state;

pub use state::STATE_VERSION;
pub(crate) use state::{decode_state, encode_state};

use std::collections::BTreeMap;

use crate::event::EventId;

/// One change to apply to storage, in the order emitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersistOp {
    /// Store this event (its wire JSON, which carries its id and timestamp).
    Append {
        /// The event's id, to find it again for removal.
        id: EventId,
        /// The event as wire JSON; hand it back unchanged in [`Snapshot::events`].
        record: String,
    },
    /// Remove these events: delivered or dropped.
    Remove {
        /// The events' ids.
        ids: Vec<EventId>,
    },
    /// Replace the stored state with this text.
    SaveState {
        /// The versioned state, opaque to the driver.
        state: String,
    },
}

/// What a driver read back from storage at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The last saved state, if any.
    pub state: Option<String>,
    /// Stored event records in the order they were appended. Torn or corrupt records may be
    /// included; the engine skips them and counts them.
    pub events: Vec<String>,
}

/// Whether [`crate::Engine::restore`] can read `record` back. Restore skips a record it cannot
/// read (counting it as corrupt) and no [`PersistOp::Remove`] will ever name it, so a driver
/// that stores records under keys of its own removes such a record itself.
pub fn is_restorable(record: &str) -> bool {
    crate::protocol::read_event_header(record).is_some()
}

/// A storage a driver implements. Optional: a driver may also apply [`PersistOp`]s itself.
pub trait Storage {
    /// The storage's own error.
    type Error;

    /// Reads everything stored.
    fn load(&mut self) -> Result<Snapshot, Self::Error>;

    /// Applies one change. On error, the engine keeps the operation and offers it again.
    fn apply(&mut self, op: &PersistOp) -> Result<(), Self::Error>;
}

/// Storage in memory: for tests, and for drivers that have nowhere else.
#[derive(Debug, Clone, Default)]
pub struct MemoryStorage {
    state: Option<String>,
    /// Records by append order; `None` ids are raw records added by tests.
    events: BTreeMap<u64, (Option<EventId>, String)>,
    next: u64,
}

impl MemoryStorage {
    /// Empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of stored events.
    pub fn event_count(&self) -> usize {
        self.events.len()
    }

    /// Appends a raw record as a crashed writer might leave it (for tests of torn writes).
    pub fn push_raw_record(&mut self, record: &str) {
        self.next += 1;
        self.events.insert(self.next, (None, record.to_string()));
    }
}

impl Storage for MemoryStorage {
    type Error = core::convert::Infallible;

    fn load(&mut self) -> Result<Snapshot, Self::Error> {
        Ok(Snapshot {
            state: self.state.clone(),
            events: self.events.values().map(|(_, r)| r.clone()).collect(),
        })
    }

    fn apply(&mut self, op: &PersistOp) -> Result<(), Self::Error> {
        match op {
            PersistOp::Append { id, record } => {
                self.next += 1;
                self.events.insert(self.next, (Some(*id), record.clone()));
            }
            PersistOp::Remove { ids } => {
                self.events.retain(|_, (id, _)| id.is_none_or(|id| !ids.contains(&id)))
            }
            PersistOp::SaveState { state } => self.state = Some(state.clone()),
        }
        Ok(())
    }
}
