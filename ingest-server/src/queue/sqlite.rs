//! The embedded queue: `queue.sqlite3` in the data directory, WAL with `synchronous=FULL`,
//! one row per batch, written by a single thread that group-commits every batch pending at
//! once in one transaction and then answers all their waiters.
//!
//! A full disk is an expected condition, not corruption: publishing answers a
//! [`QueueError::Io`] of kind [`std::io::ErrorKind::StorageFull`] (ingest answers 503 with
//! `Retry-After`), [`Queue::check`] reports not ready, and the next commit after space returns
//! succeeds. A configurable floor of free space ([`SqliteQueue::open_with_floor`]) refuses
//! batches before SQLite itself runs out.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use super::{Delivery, Publish, Queue, QueueError, QueueStats, QueuedBatch};

/// File name of the queue database in the data directory.
pub const FILE: &str = "queue.sqlite3";
/// Most batches committed in one transaction.
const MAX_GROUP: usize = 512;
/// Most batches waiting for the writer; beyond this, publishers wait (backpressure).
const CHANNEL: usize = 4096;

const MIGRATIONS: &[&str] = &["CREATE TABLE batches (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        project TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        assigned_ids TEXT NOT NULL,
        body BLOB NOT NULL
    );"];

type Job = (QueuedBatch, oneshot::Sender<Result<u64, QueueError>>);

/// How long a measured amount of free space is trusted.
const FREE_SPACE_TTL: Duration = Duration::from_secs(1);
/// How long after a commit failed (a full disk, an I/O error) the queue reports not ready
/// (unless a later commit succeeds): long enough for a load balancer to see it, short enough that a node
/// taken out of rotation is tried again once space returns.
const FULL_DISK_NOT_READY: Duration = Duration::from_secs(5);

/// The free-space floor and the last commit failure, shared by publishers, `check` and the
/// writer thread.
#[derive(Debug)]
struct DiskState {
    dir: PathBuf,
    /// Bytes of free space under which batches are refused; 0: no floor.
    floor: u64,
    /// Last measurement: when, and the free bytes.
    measured: Mutex<Option<(Instant, u64)>>,
    /// When the last commit failed and why, until a commit succeeds.
    failed: Mutex<Option<(Instant, io::ErrorKind, String)>>,
}

impl DiskState {
    /// Free bytes for an unprivileged writer on the data directory's filesystem, measured at
    /// most once per [`FREE_SPACE_TTL`].
    fn free_bytes(&self) -> io::Result<u64> {
        if let Ok(m) = self.measured.lock() {
            if let Some((at, free)) = *m {
                if at.elapsed() < FREE_SPACE_TTL {
                    return Ok(free);
                }
            }
        }
        let vfs = rustix::fs::statvfs(&self.dir).map_err(io::Error::from)?;
        let free = vfs.f_bavail.saturating_mul(vfs.f_frsize);
        if let Ok(mut m) = self.measured.lock() {
            *m = Some((Instant::now(), free));
        }
        Ok(free)
    }

    /// `Err` (kind `StorageFull`) when free space is under the floor.
    fn above_floor(&self) -> Result<(), QueueError> {
        if self.floor == 0 {
            return Ok(());
        }
        match self.free_bytes() {
            Ok(free) if free < self.floor => Err(QueueError::Io(io::Error::new(
                io::ErrorKind::StorageFull,
                format!(
                    "disk full: {} MB free on {}, under the floor of {} MB (--min-free-disk-mb)",
                    free / MB,
                    self.dir.display(),
                    self.floor / MB
                ),
            ))),
            Ok(_) => Ok(()),
            // Not knowing is no reason to refuse: SQLite reports a real failure.
            Err(e) => {
                tracing::debug!(error = %e, dir = %self.dir.display(), "statvfs failed");
                Ok(())
            }
        }
    }

    /// `Err` while the last commit failed recently (and none succeeded since).
    fn last_commit(&self) -> Result<(), QueueError> {
        match self.failed.lock().ok().and_then(|f| f.clone()) {
            Some((at, kind, text)) if at.elapsed() < FULL_DISK_NOT_READY => {
                Err(QueueError::Io(io::Error::new(kind, text)))
            }
            _ => Ok(()),
        }
    }

    fn record(&self, outcome: Option<(io::ErrorKind, String)>) {
        if let Ok(mut f) = self.failed.lock() {
            match outcome {
                None => {
                    if f.take().is_some() {
                        tracing::info!(dir = %self.dir.display(), "queue commits succeed again");
                    }
                }
                Some((kind, text)) => *f = Some((Instant::now(), kind, text)),
            }
        }
        // A failure or a recovery changes the free space: measure again next time.
        if let Ok(mut m) = self.measured.lock() {
            *m = None;
        }
    }
}

const MB: u64 = 1024 * 1024;

/// At most one log line per second for a failure that repeats with every request: on a disk
/// that is filling up, a line per refused batch would use up what space is left (the log is
/// often on the same disk).
#[derive(Debug)]
pub(crate) struct LogThrottle {
    last_ms: std::sync::atomic::AtomicI64,
    suppressed: std::sync::atomic::AtomicU64,
}

impl LogThrottle {
    pub(crate) const fn new() -> Self {
        LogThrottle {
            last_ms: std::sync::atomic::AtomicI64::new(i64::MIN),
            suppressed: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// `Some(n)`: log now, `n` lines were suppressed since the last one; `None`: stay quiet.
    pub(crate) fn allow(&self) -> Option<u64> {
        use std::sync::atomic::Ordering::Relaxed;
        let now = crate::now_millis();
        let last = self.last_ms.load(Relaxed);
        if now.saturating_sub(last) >= 1000
            && self.last_ms.compare_exchange(last, now, Relaxed, Relaxed).is_ok()
        {
            return Some(self.suppressed.swap(0, Relaxed));
        }
        self.suppressed.fetch_add(1, Relaxed);
        None
    }
}

static COMMIT_FAILED: LogThrottle = LogThrottle::new();

/// What a failed commit means, for the log, the waiting publishers and `check`: a full disk
/// says so (SQLite's own text, "database or disk is full", is kept as the detail).
fn commit_failure(e: &rusqlite::Error) -> (io::ErrorKind, String) {
    let code = e.sqlite_error_code();
    match code {
        Some(rusqlite::ErrorCode::DiskFull) => (io::ErrorKind::StorageFull, format!("disk full: {e}")),
        Some(rusqlite::ErrorCode::SystemIoFailure) => (io::ErrorKind::Other, format!("I/O error: {e}")),
        Some(rusqlite::ErrorCode::ReadOnly) => (io::ErrorKind::PermissionDenied, format!("read-only: {e}")),
        _ => (io::ErrorKind::Other, format!("commit failed: {e}")),
    }
}

/// The SQLite queue.
#[derive(Debug)]
pub struct SqliteQueue {
    jobs: Mutex<Option<SyncSender<Job>>>,
    reader: Mutex<Connection>,
    acker: Mutex<Connection>,
    /// Highest committed sequence number, with a condvar to wake `receive`.
    committed: Arc<(Mutex<u64>, Condvar)>,
    disk: Arc<DiskState>,
}

/// Opens a connection with the pragmas every queue and store connection uses.
pub(crate) fn open_connection(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Applies the migrations not yet applied (tracked in `PRAGMA user_version`).
pub(crate) fn migrate(conn: &mut Connection, migrations: &[&str]) -> Result<(), rusqlite::Error> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: usize = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in migrations.iter().enumerate().skip(version) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
    }
    tx.commit()
}

impl SqliteQueue {
    /// Opens (creating and migrating) the queue in `data_dir` and starts its writer thread.
    /// No free-space floor: see [`SqliteQueue::open_with_floor`].
    pub fn open(data_dir: &Path) -> Result<Self, QueueError> {
        Self::open_with_floor(data_dir, 0)
    }

    /// [`SqliteQueue::open`], refusing batches (and reporting not ready) while the data
    /// directory's filesystem has less than `min_free_bytes` free (0: no floor).
    pub fn open_with_floor(data_dir: &Path, min_free_bytes: u64) -> Result<Self, QueueError> {
        crate::config::create_data_dir(data_dir)?;
        let path = data_dir.join(FILE);
        let mut writer = open_connection(&path)?;
        migrate(&mut writer, MIGRATIONS)?;
        let reader = open_connection(&path)?;
        let acker = open_connection(&path)?;
        let last: u64 =
            writer.query_row("SELECT COALESCE(MAX(seq), 0) FROM batches", [], |r| r.get::<_, i64>(0))? as u64;
        let committed = Arc::new((Mutex::new(last), Condvar::new()));
        let (tx, rx) = sync_channel(CHANNEL);
        let notify = committed.clone();
        let disk = Arc::new(DiskState {
            dir: data_dir.to_path_buf(),
            floor: min_free_bytes,
            measured: Mutex::new(None),
            failed: Mutex::new(None),
        });
        let outcomes = disk.clone();
        std::thread::Builder::new()
            .name("empmix-queue-writer".into())
            .spawn(move || writer_loop(writer, rx, notify, &outcomes))?;
        Ok(SqliteQueue {
            jobs: Mutex::new(Some(tx)),
            reader: Mutex::new(reader),
            acker: Mutex::new(acker),
            committed,
            disk,
        })
    }

    /// Stops accepting batches; the writer finishes the pending ones and exits.
    pub fn close(&self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
    }
}

fn writer_loop(
    mut conn: Connection,
    rx: Receiver<Job>,
    committed: Arc<(Mutex<u64>, Condvar)>,
    disk: &DiskState,
) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        match write_group(&mut conn, &group) {
            Ok(seqs) => {
                disk.record(None);
                if let Some(&last) = seqs.last() {
                    let (lock, cvar) = &*committed;
                    if let Ok(mut c) = lock.lock() {
                        *c = (*c).max(last);
                    }
                    cvar.notify_all();
                }
                for ((_, reply), seq) in group.into_iter().zip(seqs) {
                    let _ = reply.send(Ok(seq));
                }
            }
            Err(e) => {
                let (kind, text) = commit_failure(&e);
                if let Some(suppressed) = COMMIT_FAILED.allow() {
                    tracing::error!(
                        error = %text,
                        batches = group.len(),
                        dir = %disk.dir.display(),
                        similar_since_last = suppressed,
                        "queue commit failed, nothing of these batches stored; answering 503"
                    );
                }
                disk.record(Some((kind, text.clone())));
                for (_, reply) in group {
                    let _ = reply.send(Err(QueueError::Io(io::Error::new(kind, text.clone()))));
                }
            }
        }
    }
}

fn write_group(conn: &mut Connection, group: &[Job]) -> Result<Vec<u64>, rusqlite::Error> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut seqs = Vec::with_capacity(group.len());
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO batches (project, received_at, assigned_ids, body) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (batch, _) in group {
            stmt.execute(params![
                batch.project,
                batch.received_at,
                encode_ids(&batch.assigned_ids),
                &batch.body[..]
            ])?;
            seqs.push(tx.last_insert_rowid() as u64);
        }
    }
    tx.commit()?;
    Ok(seqs)
}

fn encode_ids(ids: &[(u32, uuid::Uuid)]) -> String {
    let mut out = String::with_capacity(ids.len() * 42);
    for (i, (index, id)) in ids.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("{index}:{id}"));
    }
    out
}

fn decode_ids(seq: u64, text: &str) -> Result<Vec<(u32, uuid::Uuid)>, QueueError> {
    let corrupt = || QueueError::Corrupt { seq, reason: format!("bad assigned ids {text:?}") };
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|pair| {
            let (i, id) = pair.split_once(':').ok_or_else(corrupt)?;
            Ok((i.parse().map_err(|_| corrupt())?, uuid::Uuid::try_parse(id).map_err(|_| corrupt())?))
        })
        .collect()
}

impl Queue for SqliteQueue {
    fn publish(&self, batch: QueuedBatch) -> Publish {
        let sender = self.jobs.lock().ok().and_then(|j| j.clone());
        let floor = self.disk.above_floor();
        Box::pin(async move {
            let sender = sender.ok_or(QueueError::Closed)?;
            floor?;
            let (reply, answer) = oneshot::channel();
            // A full channel means the disk cannot keep up: wait off the async workers.
            match sender.try_send((batch, reply)) {
                Ok(()) => {}
                Err(std::sync::mpsc::TrySendError::Full(job)) => {
                    tokio::task::spawn_blocking(move || sender.send(job))
                        .await
                        .map_err(|_| QueueError::Closed)?
                        .map_err(|_| QueueError::Closed)?;
                }
                Err(std::sync::mpsc::TrySendError::Disconnected(_)) => return Err(QueueError::Closed),
            }
            answer.await.map_err(|_| QueueError::Closed)?
        })
    }

    fn receive(&self, after: u64, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        let found = self.read_after(after, max)?;
        if !found.is_empty() || wait.is_zero() {
            return Ok(found);
        }
        {
            let (lock, cvar) = &*self.committed;
            if let Ok(c) = lock.lock() {
                if *c <= after {
                    let _ = cvar.wait_timeout_while(c, wait, |c| *c <= after);
                }
            }
        }
        self.read_after(after, max)
    }

    fn ack(&self, through: u64) -> Result<(), QueueError> {
        let conn = self.acker.lock().map_err(|_| QueueError::Closed)?;
        conn.prepare_cached("DELETE FROM batches WHERE seq <= ?1")?.execute([through as i64])?;
        Ok(())
    }

    fn stats(&self, after: u64) -> Result<QueueStats, QueueError> {
        let conn = self.reader.lock().map_err(|_| QueueError::Closed)?;
        let (depth, oldest) = conn.query_row(
            "SELECT COUNT(*), MIN(received_at) FROM batches WHERE seq > ?1",
            [after as i64],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?)),
        )?;
        Ok(QueueStats { depth: depth as u64, oldest_received_at: oldest })
    }

    fn check(&self) -> Result<(), QueueError> {
        if self.jobs.lock().map_err(|_| QueueError::Closed)?.is_none() {
            return Err(QueueError::Closed);
        }
        self.disk.above_floor()?;
        self.disk.last_commit()?;
        let conn = self.reader.lock().map_err(|_| QueueError::Closed)?;
        conn.query_row("SELECT 1 FROM batches LIMIT 1", [], |_| Ok(())).optional()?;
        Ok(())
    }

    fn close(&self) {
        SqliteQueue::close(self);
    }
}

impl SqliteQueue {
    fn read_after(&self, after: u64, max: usize) -> Result<Vec<Delivery>, QueueError> {
        let conn = self.reader.lock().map_err(|_| QueueError::Closed)?;
        let mut stmt = conn.prepare_cached(
            "SELECT seq, project, received_at, assigned_ids, body FROM batches WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after as i64, max as i64], |r| {
            Ok((
                r.get::<_, i64>(0)? as u64,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Vec<u8>>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, project, received_at, ids, body) = row?;
            out.push(Delivery {
                seq,
                batch: QueuedBatch {
                    project,
                    received_at,
                    assigned_ids: decode_ids(seq, &ids)?,
                    body: Bytes::from(body),
                },
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: u8) -> QueuedBatch {
        QueuedBatch {
            project: "p".into(),
            received_at: 1000 + i64::from(n),
            assigned_ids: vec![(0, uuid::Uuid::now_v7()), (3, uuid::Uuid::now_v7())],
            body: Bytes::from(vec![n; 10]),
        }
    }

    #[tokio::test]
    async fn under_the_free_space_floor_batches_are_refused_as_disk_full_and_check_fails() {
        let dir = tempfile::tempdir().unwrap();
        let q = SqliteQueue::open_with_floor(dir.path(), u64::MAX).unwrap();
        let err = q.publish(batch(1)).await.unwrap_err();
        assert!(matches!(&err, QueueError::Io(e) if e.kind() == io::ErrorKind::StorageFull), "{err}");
        assert!(err.to_string().contains("--min-free-disk-mb"), "{err}");
        assert!(q.check().is_err());
        assert_eq!(q.receive(0, 10, Duration::ZERO).unwrap().len(), 0, "nothing was stored");
        let q = SqliteQueue::open_with_floor(dir.path(), 1).unwrap();
        q.publish(batch(2)).await.unwrap();
        q.check().unwrap();
    }

    #[test]
    fn a_full_disk_is_named_as_such() {
        let full =
            rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL), None);
        let (kind, text) = commit_failure(&full);
        assert_eq!(kind, io::ErrorKind::StorageFull);
        assert!(text.starts_with("disk full"), "{text}");
    }

    #[tokio::test]
    async fn published_batches_are_received_in_order_survive_reopen_and_ack_removes_them() {
        let dir = tempfile::tempdir().unwrap();
        let q = SqliteQueue::open(dir.path()).unwrap();
        let (a, b) = tokio::join!(q.publish(batch(1)), q.publish(batch(2)));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(a != b);
        q.close();
        drop(q);
        let q = SqliteQueue::open(dir.path()).unwrap();
        let got = q.receive(0, 10, Duration::ZERO).unwrap();
        assert_eq!(got.len(), 2);
        assert!(got[0].seq < got[1].seq);
        let mut bodies: Vec<_> = got.iter().map(|d| d.batch.clone()).collect();
        bodies.sort_by_key(|b| b.received_at);
        for (got, want) in bodies.iter().zip([batch(1), batch(2)]) {
            assert_eq!(
                (&got.project, got.received_at, &got.body),
                (&want.project, want.received_at, &want.body)
            );
            assert_eq!(got.assigned_ids.len(), 2);
            assert_eq!(got.assigned_ids[1].0, 3);
        }
        assert_eq!(q.stats(0).unwrap().depth, 2);
        q.ack(got[0].seq).unwrap();
        assert_eq!(q.receive(0, 10, Duration::ZERO).unwrap().len(), 1);
        let c = q.publish(batch(3)).await.unwrap();
        assert!(c > got[1].seq, "sequence numbers are never reused");
    }
}
