//! Crash-safe file persistence: an append-only, checksummed event log in the persistence
//! directory.
//!
//! The engine emits [`PersistOp`]s (append an event, remove events, save the state); the
//! client applies them here in the order emitted. Each op becomes one framed record (see
//! [`frame`]) appended to `events.log` with a single `write` — no `fsync` on the hot path, so a
//! record is safe from a process crash (SIGKILL, panic, OOM kill) as soon as it is written, and
//! from a power loss once the background thread's periodic `fsync` ran (at most
//! [`SYNC_INTERVAL`] later).
//!
//! The log is compacted — its live records rewritten to a temporary file that is synced and
//! renamed over the log — when opened, and when dead records (delivered events, removals, old
//! states) outnumber live ones. Live records are bounded by the engine's `max_queue`, so the
//! file stays within about twice that many records.

mod frame;

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use empmix_core::EventId;
use empmix_core::persist::{PersistOp, Snapshot, is_restorable};

use frame::{Frame, FrameReader};

/// The log's file name inside the persistence directory.
pub(crate) const LOG_FILE: &str = "events.log";
/// The longest a written record waits for an `fsync` (power-loss durability bound).
pub(crate) const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// Compaction never runs for fewer dead records than this.
const MIN_DEAD_FOR_COMPACTION: usize = 1024;

/// The file in the persistence directory a store holds an exclusive `flock` on while open, so
/// that a client in another process cannot append to (or compact away) the same log. Never
/// renamed, so the lock outlives compactions; the kernel releases it when the process dies.
pub(crate) const LOCK_FILE: &str = "events.lock";

/// Directories opened by a store in this process: two clients must not share a log.
static OPEN_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    /// Another client, in this process or another one, uses the directory.
    #[error("persistence directory {0} is already used by another client")]
    InUse(PathBuf),
    /// The directory or log could not be created, read or written.
    #[error("persistence directory {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

/// What opening the store found.
#[derive(Debug, Default)]
pub(crate) struct OpenReport {
    /// Whether the log ended in a torn or corrupt record (skipped), or was not a log at all
    /// (moved aside).
    pub(crate) torn: bool,
}

/// The event log of one client.
#[derive(Debug)]
pub(crate) struct LogStore {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    /// The locked [`LOCK_FILE`] (`None` where there is no `flock`); dropping it unlocks.
    lock: Option<File>,
    /// A second handle to the same file, synced by the background thread outside the lock.
    sync_handle: Arc<File>,
    len: u64,
    /// Events stored and not removed.
    live: HashMap<EventId, ()>,
    /// Events whose record could not be written (a full disk) and that were not removed
    /// since: queued in memory only.
    unwritten: HashSet<EventId>,
    /// Frames in the file.
    frames: usize,
    /// No compaction before the file holds this many frames (raised after one failed, so that
    /// a full disk is not rewritten on every round of the background thread).
    compact_at_frames: usize,
    /// Whether anything was written since the last sync.
    dirty: bool,
    buf: Vec<u8>,
    closed: bool,
}

impl LogStore {
    /// Opens (creating if needed) the log in `dir`, reads it back, and compacts it.
    pub(crate) fn open(dir: &Path) -> Result<(LogStore, Snapshot, OpenReport), OpenError> {
        let io_err = |source| OpenError::Io { path: dir.to_path_buf(), source };
        fs::create_dir_all(dir).map_err(io_err)?;
        let dir = fs::canonicalize(dir).map_err(io_err)?;
        register(&dir)?;
        let lock = match lock_dir(&dir) {
            Ok(lock) => lock,
            Err(source) => {
                unregister(&dir);
                return Err(if source.kind() == io::ErrorKind::WouldBlock {
                    OpenError::InUse(dir)
                } else {
                    OpenError::Io { path: dir, source }
                });
            }
        };
        match Self::open_registered(&dir, lock) {
            Ok(opened) => Ok(opened),
            Err(source) => {
                unregister(&dir);
                Err(OpenError::Io { path: dir, source })
            }
        }
    }

    fn open_registered(dir: &Path, lock: Option<File>) -> io::Result<(LogStore, Snapshot, OpenReport)> {
        let path = dir.join(LOG_FILE);
        let data = match fs::read(&path) {
            Ok(data) => data,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut report = OpenReport::default();
        let mut is_log = true;
        let mut folded = match fold(&data) {
            Some(folded) => folded,
            // Empty, or a crash while the file was first written: nothing stored.
            None if frame::MAGIC.starts_with(&data) => {
                is_log = false;
                Folded::default()
            }
            None => {
                is_log = false;
                // Not a log: keep it for inspection, start a new one.
                let aside = dir.join(format!("{LOG_FILE}.corrupt"));
                tracing::warn!(path = %path.display(), aside = %aside.display(), "persisted event log is not an EmpMix log; moved aside");
                fs::rename(&path, &aside)?;
                report.torn = true;
                Folded::default()
            }
        };
        report.torn |= folded.torn;
        if folded.torn {
            tracing::warn!(path = %path.display(), "persisted event log ends in a torn or corrupt record; skipped");
        }
        let snapshot = Snapshot {
            state: folded.state.clone(),
            events: folded.events.iter().map(|(_, record)| record.clone()).collect(),
        };
        // A record the engine cannot read is skipped (and counted) at restore, and no removal
        // will name it: it is left out of the compacted log.
        folded.events.retain(|(_, record)| is_restorable(record));
        let live_frames = folded.events.len() + usize::from(folded.state.is_some());
        let (file, len, frames) = match write_temp(dir, &folded) {
            Ok((tmp, len)) => (install(dir, &path, &tmp)?, len, live_frames),
            // No room for the compacted copy (a full disk), but the log is there: append to it
            // as it is, without its torn tail (cutting needs no space), and compact it later.
            // Failing instead would leave its events unsent until the disk has room again.
            Err(error) if is_log => {
                tracing::warn!(%error, path = %path.display(), "could not compact the persisted event log; appending to it as it is");
                let file = OpenOptions::new().append(true).open(&path)?;
                file.set_len(folded.valid_len)?;
                (file, folded.valid_len, folded.frames)
            }
            Err(error) => return Err(error),
        };
        let sync_handle = Arc::new(file.try_clone()?);
        let live =
            folded.events.iter().filter_map(|(id, _)| frame::parse_id(id)).map(|id| (id, ())).collect();
        let store = LogStore {
            dir: dir.to_path_buf(),
            path,
            file,
            lock,
            sync_handle,
            len,
            live,
            unwritten: HashSet::new(),
            frames,
            compact_at_frames: 0,
            dirty: false,
            buf: Vec::new(),
            closed: false,
        };
        Ok((store, snapshot, report))
    }

    /// Appends `ops` in order with one write. On failure the file is cut back to where it was,
    /// so a partial write never hides later records.
    pub(crate) fn apply(&mut self, ops: &[PersistOp]) -> io::Result<()> {
        if self.closed || ops.is_empty() {
            return Ok(());
        }
        self.buf.clear();
        for op in ops {
            frame::encode_op(op, &mut self.buf);
        }
        if let Err(e) = self.file.write_all(&self.buf) {
            // Best effort: if even this fails, the next open skips the torn tail.
            let _ = self.file.set_len(self.len);
            for op in ops {
                match op {
                    PersistOp::Append { id, .. } => {
                        self.unwritten.insert(*id);
                    }
                    PersistOp::Remove { ids } => {
                        for id in ids {
                            self.unwritten.remove(id);
                        }
                    }
                    PersistOp::SaveState { .. } => {}
                }
            }
            return Err(e);
        }
        self.len += self.buf.len() as u64;
        self.frames += ops.len();
        self.dirty = true;
        for op in ops {
            match op {
                PersistOp::Append { id, .. } => {
                    self.live.insert(*id, ());
                }
                PersistOp::Remove { ids } => {
                    for id in ids {
                        self.live.remove(id);
                        self.unwritten.remove(id);
                    }
                }
                PersistOp::SaveState { .. } => {}
            }
        }
        Ok(())
    }

    /// Events stored and not removed.
    pub(crate) fn live_events(&self) -> usize {
        self.live.len()
    }

    /// Events still queued whose record could not be written: lost if the client stops now.
    pub(crate) fn unwritten_events(&self) -> usize {
        self.unwritten.len()
    }

    /// Whether dead records dominate the file.
    pub(crate) fn needs_compaction(&self) -> bool {
        let dead = self.frames.saturating_sub(self.live.len() + 1);
        !self.closed
            && dead >= MIN_DEAD_FOR_COMPACTION.max(self.live.len())
            && self.frames >= self.compact_at_frames
    }

    /// Rewrites the log with only its live records (temporary file, sync, rename).
    pub(crate) fn compact(&mut self) -> io::Result<()> {
        let data = fs::read(&self.path)?;
        let folded = fold(&data).unwrap_or_default();
        let (tmp, len) = match write_temp(&self.dir, &folded) {
            Ok(written) => written,
            Err(e) => {
                self.compact_at_frames = self.frames + MIN_DEAD_FOR_COMPACTION;
                return Err(e);
            }
        };
        let file = install(&self.dir, &self.path, &tmp)?;
        self.sync_handle = Arc::new(file.try_clone()?);
        self.file = file;
        self.len = len;
        self.frames = folded.events.len() + usize::from(folded.state.is_some());
        self.dirty = false;
        tracing::debug!(live = folded.events.len(), bytes = len, "compacted the persisted event log");
        Ok(())
    }

    /// Whether anything was written since the last sync.
    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// A handle to `fsync` outside the lock, if anything was written since the last one.
    pub(crate) fn take_sync_handle(&mut self) -> Option<Arc<File>> {
        std::mem::take(&mut self.dirty).then(|| self.sync_handle.clone())
    }

    /// Syncs what was written and releases the directory for another client. Later writes are
    /// ignored.
    pub(crate) fn close(&mut self) -> io::Result<()> {
        if std::mem::replace(&mut self.closed, true) {
            return Ok(());
        }
        let synced = self.file.sync_data();
        self.lock = None;
        unregister(&self.dir);
        synced
    }
}

impl Drop for LogStore {
    fn drop(&mut self) {
        if !self.closed {
            unregister(&self.dir);
        }
    }
}

/// The live contents of a log.
#[derive(Debug, Default)]
struct Folded {
    state: Option<String>,
    /// (id text, record), in append order.
    events: Vec<(String, String)>,
    torn: bool,
    /// Valid frames read, live or dead.
    frames: usize,
    /// Bytes of the magic and the valid frames: where a torn tail starts.
    valid_len: u64,
}

/// Replays a log's frames; `None` when `data` does not start with the magic.
fn fold(data: &[u8]) -> Option<Folded> {
    let mut reader = FrameReader::new(data)?;
    let mut state = None;
    let mut slots: Vec<Option<(&str, &str)>> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut frames = 0;
    for frame in reader.by_ref() {
        frames += 1;
        match frame {
            Frame::Append { id, record } => {
                index.insert(id, slots.len());
                slots.push(Some((id, record)));
            }
            Frame::Remove { ids } => {
                for id in Frame::removed_ids(ids) {
                    if let Some(slot) = index.remove(id) {
                        slots[slot] = None;
                    }
                }
            }
            Frame::State(s) => state = Some(s),
        }
    }
    Some(Folded {
        state: state.map(str::to_string),
        events: slots.into_iter().flatten().map(|(id, r)| (id.to_string(), r.to_string())).collect(),
        torn: reader.torn,
        frames,
        valid_len: reader.valid_len() as u64,
    })
}

/// Writes `folded` to a temporary file and syncs it. On failure (a full disk) the temporary
/// file is removed, so that it does not keep the space the log needs to grow.
fn write_temp(dir: &Path, folded: &Folded) -> io::Result<(PathBuf, u64)> {
    let mut data = frame::MAGIC.to_vec();
    if let Some(state) = &folded.state {
        frame::encode_state(state, &mut data);
    }
    for (id, record) in &folded.events {
        frame::encode_append(id, record, &mut data);
    }
    let tmp = dir.join(format!("{LOG_FILE}.tmp"));
    let written = File::create(&tmp).and_then(|mut file| {
        file.write_all(&data)?;
        file.sync_all()
    });
    match written {
        Ok(()) => Ok((tmp, data.len() as u64)),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Renames the synced temporary file `tmp` over `path` and syncs the directory. Returns the
/// new log opened for appending.
fn install(dir: &Path, path: &Path, tmp: &Path) -> io::Result<File> {
    fs::rename(tmp, path)?;
    // Makes the rename durable; not supported everywhere (Windows), where it is not needed.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    OpenOptions::new().append(true).open(path)
}

/// Takes the exclusive lock on the directory's [`LOCK_FILE`] without waiting: `WouldBlock`
/// when another process holds it. A file system without `flock` (some network ones) gets no
/// lock, with a warning, rather than no persistence.
#[cfg(unix)]
fn lock_dir(dir: &Path) -> io::Result<Option<File>> {
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(dir.join(LOCK_FILE))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(file)),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Err(e.into()),
        Err(error) => {
            tracing::warn!(%error, dir = %dir.display(), "cannot lock the persistence directory; only clients of this process are kept apart");
            Ok(None)
        }
    }
}

/// Without `flock`, only clients of this process are kept apart.
#[cfg(not(unix))]
fn lock_dir(_dir: &Path) -> io::Result<Option<File>> {
    Ok(None)
}

fn register(dir: &Path) -> Result<(), OpenError> {
    let mut open = OPEN_DIRS.lock().unwrap_or_else(PoisonError::into_inner);
    if open.iter().any(|d| d == dir) {
        return Err(OpenError::InUse(dir.to_path_buf()));
    }
    open.push(dir.to_path_buf());
    Ok(())
}

fn unregister(dir: &Path) {
    OPEN_DIRS.lock().unwrap_or_else(PoisonError::into_inner).retain(|d| d != dir);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use empmix_core::{SeededEntropy, Timestamp};

    use super::*;

    /// A record as the engine writes one: restore reads its id and timestamp.
    fn record(id: EventId, n: u64) -> String {
        format!("{{\"event_id\":\"{}\",\"timestamp\":{},\"n\":{n}}}", id.as_uuid(), 1_750_000_000_000 + n)
    }

    fn op_append(n: u64) -> (EventId, PersistOp) {
        let id = EventId::new(Timestamp::from_unix_millis(1_750_000_000_000 + n), &mut SeededEntropy::new(n));
        (id, PersistOp::Append { id, record: record(id, n) })
    }

    #[test]
    fn records_survive_reopen_removals_stick_and_a_torn_tail_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let (a, op_a) = op_append(1);
        let (b, op_b) = op_append(2);
        {
            let (mut store, snapshot, report) = LogStore::open(dir.path()).unwrap();
            assert!(snapshot.events.is_empty() && snapshot.state.is_none() && !report.torn);
            assert!(matches!(LogStore::open(dir.path()), Err(OpenError::InUse(_))));
            store.apply(&[op_a, PersistOp::SaveState { state: "s1".into() }, op_b]).unwrap();
            store.apply(&[PersistOp::Remove { ids: vec![a] }]).unwrap();
            assert_eq!(store.live_events(), 1);
        }
        // A crash mid-append leaves half a frame.
        let path = dir.path().join(LOG_FILE);
        let mut torn = Vec::new();
        frame::encode_op(&op_append(3).1, &mut torn);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&torn[..torn.len() - 4]).unwrap();
        drop(f);

        let (store, snapshot, report) = LogStore::open(dir.path()).unwrap();
        assert!(report.torn);
        assert_eq!(snapshot.state.as_deref(), Some("s1"));
        assert_eq!(snapshot.events, vec![record(b, 2)]);
        drop(store);
        // The tear was cut away by the compaction at open.
        let (_, snapshot, report) = LogStore::open(dir.path()).unwrap();
        assert!(!report.torn);
        assert_eq!(snapshot.events.len(), 1);
    }

    #[test]
    fn compaction_keeps_live_records_in_order_and_bounds_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _, _) = LogStore::open(dir.path()).unwrap();
        let mut kept = Vec::new();
        for n in 0..3000 {
            let (id, op) = op_append(n);
            store.apply(&[op]).unwrap();
            if n % 100 == 0 {
                kept.push(record(id, n));
            } else {
                store.apply(&[PersistOp::Remove { ids: vec![id] }]).unwrap();
            }
            if store.needs_compaction() {
                store.compact().unwrap();
            }
        }
        assert!(store.frames < 2 * MIN_DEAD_FOR_COMPACTION + kept.len() + 2, "{}", store.frames);
        store.apply(&[PersistOp::SaveState { state: "last".into() }]).unwrap();
        drop(store);
        let (_, snapshot, _) = LogStore::open(dir.path()).unwrap();
        assert_eq!(snapshot.events, kept);
        assert_eq!(snapshot.state.as_deref(), Some("last"));
    }

    #[test]
    fn a_record_restore_cannot_read_is_handed_back_once_then_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (good, op_good) = op_append(1);
        let (bad, _) = op_append(2);
        {
            let (mut store, _, _) = LogStore::open(dir.path()).unwrap();
            store.apply(&[op_good, PersistOp::Append { id: bad, record: "{\"n\":2}".into() }]).unwrap();
        }
        // Handed back, so that restore counts it as corrupt; no removal will ever name it.
        let (store, snapshot, _) = LogStore::open(dir.path()).unwrap();
        assert_eq!(snapshot.events, vec![record(good, 1), "{\"n\":2}".to_string()]);
        assert_eq!(store.live_events(), 1);
        drop(store);
        let (_, snapshot, _) = LogStore::open(dir.path()).unwrap();
        assert_eq!(snapshot.events, vec![record(good, 1)]);
    }

    #[test]
    fn a_file_that_is_not_a_log_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(LOG_FILE), b"hello world").unwrap();
        let (_, snapshot, report) = LogStore::open(dir.path()).unwrap();
        assert!(report.torn && snapshot.events.is_empty());
        assert!(dir.path().join(format!("{LOG_FILE}.corrupt")).exists());
    }
}
