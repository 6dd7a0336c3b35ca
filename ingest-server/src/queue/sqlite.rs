//! The embedded queue: `queue.sqlite3` in the data directory, WAL with `synchronous=FULL`,
//! one row per batch, written by a single thread that group-commits every batch pending at
//! once in one transaction and then answers all their waiters.

use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

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

/// The SQLite queue.
#[derive(Debug)]
pub struct SqliteQueue {
    jobs: Mutex<Option<SyncSender<Job>>>,
    reader: Mutex<Connection>,
    acker: Mutex<Connection>,
    /// Highest committed sequence number, with a condvar to wake `receive`.
    committed: Arc<(Mutex<u64>, Condvar)>,
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
    pub fn open(data_dir: &Path) -> Result<Self, QueueError> {
        std::fs::create_dir_all(data_dir)?;
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
        std::thread::Builder::new()
            .name("empmix-queue-writer".into())
            .spawn(move || writer_loop(writer, rx, notify))?;
        Ok(SqliteQueue {
            jobs: Mutex::new(Some(tx)),
            reader: Mutex::new(reader),
            acker: Mutex::new(acker),
            committed,
        })
    }

    /// Stops accepting batches; the writer finishes the pending ones and exits.
    pub fn close(&self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
    }
}

fn writer_loop(mut conn: Connection, rx: Receiver<Job>, committed: Arc<(Mutex<u64>, Condvar)>) {
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
                tracing::error!(error = %e, batches = group.len(), "queue commit failed; answering 503");
                let text = e.to_string();
                for (_, reply) in group {
                    let _ = reply.send(Err(QueueError::Corrupt { seq: 0, reason: text.clone() }));
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
        Box::pin(async move {
            let sender = sender.ok_or(QueueError::Closed)?;
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
