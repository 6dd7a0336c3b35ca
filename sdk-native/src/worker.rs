//! The background task: owns the timer and the requests, and drives the engine as the core's
//! contract says (persist, transmit, re-arm; report each outcome; resolve flushes; drain at
//! shutdown).
//!
//! It runs on a current-thread Tokio runtime on the client's own thread, so the client works
//! the same from async code, any runtime flavour, and plain threads.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use empmix_core::{BatchId, FlushTicket, Response};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::oneshot;
use tokio::task::{Id, JoinSet};

use crate::error::Error;
use crate::shared::{Shared, now};
use crate::store::SYNC_INTERVAL;
use crate::transport::{Outcome, Transport};

/// After a timer fired without making progress, the next timer is at least this far out, so a
/// deadline that stays in the past cannot make the thread spin.
const MIN_IDLE_TIMER: Duration = Duration::from_millis(10);

/// Where the answer to a flush or shutdown goes.
#[derive(Debug)]
pub(crate) enum Reply {
    /// An `async` caller.
    Async(oneshot::Sender<Result<(), Error>>),
    /// A blocking caller.
    Blocking(std::sync::mpsc::SyncSender<Result<(), Error>>),
}

impl Reply {
    fn send(self, result: Result<(), Error>) {
        // The caller may have given up waiting; nothing to do then.
        match self {
            Reply::Async(tx) => drop(tx.send(result)),
            Reply::Blocking(tx) => drop(tx.send(result)),
        }
    }
}

/// Requests from the handles.
#[derive(Debug)]
pub(crate) enum Command {
    /// Send everything tracked so far; answer when it is settled or at the deadline.
    Flush {
        /// When to give up.
        deadline: Instant,
        /// The answer.
        reply: Reply,
    },
    /// Drain and stop (the engine was already told to shut down, so no new events come).
    Shutdown {
        /// When to stop even if events remain.
        deadline: Instant,
        /// The answer.
        reply: Reply,
    },
    /// The last handle was dropped without a shutdown: stop now.
    Abandon,
}

#[derive(Debug)]
struct Waiter {
    ticket: FlushTicket,
    deadline: Instant,
    reply: Reply,
}

/// Why the loop ended.
enum End {
    Shutdown { deadline: Instant, reply: Reply },
    Abandoned,
}

/// The background task. Returns when shut down or abandoned.
pub(crate) async fn run(shared: Arc<Shared>, transport: Transport, mut commands: UnboundedReceiver<Command>) {
    let mut in_flight: JoinSet<(BatchId, Outcome)> = JoinSet::new();
    let mut batches: HashMap<Id, BatchId> = HashMap::new();
    let mut waiters: Vec<Waiter> = Vec::new();
    let mut shutdown: Option<(Instant, Reply)> = None;
    let mut last_sync = Instant::now();
    let mut timer_made_no_progress = false;
    let end = loop {
        // Step 2 of the contract: persist, transmit, re-arm.
        let now_ts = now();
        let (transmits, deadline, idle) = {
            let mut core = shared.lock();
            let mut transmits = Vec::new();
            while let Some(t) = core.engine.poll_transmit(now_ts) {
                transmits.push(t);
            }
            let deadline = core.engine.poll_timeout(now_ts);
            core.armed = deadline;
            core.collect_ops();
            let instant = Instant::now();
            let pending = pending_events(&core.engine);
            waiters.retain_mut(|w| {
                if core.engine.is_flushed(w.ticket) {
                    take_reply(&mut w.reply).send(Ok(()));
                    false
                } else if instant >= w.deadline {
                    take_reply(&mut w.reply).send(Err(Error::Timeout { pending }));
                    false
                } else {
                    true
                }
            });
            (transmits, deadline, core.engine.is_idle())
        };
        shared.write_pending();
        let progressed = !transmits.is_empty();
        for transmit in transmits {
            let batch = transmit.batch;
            let transport = transport.clone();
            let handle = in_flight.spawn(async move { transport.send(transmit).await });
            batches.insert(handle.id(), batch);
        }
        if let Some((deadline, _)) = &shutdown {
            if idle || Instant::now() >= *deadline {
                if let Some((deadline, reply)) = shutdown.take() {
                    break End::Shutdown { deadline, reply };
                }
            }
        }
        let sync_due = last_sync.elapsed() >= SYNC_INTERVAL;
        let unsynced = shared.maintain_store(sync_due);
        if sync_due {
            last_sync = Instant::now();
        }

        // Step 3/4: wait for an outcome, a command, a wake-up or the timer.
        let mut timer = deadline.and_then(|d| {
            let wait = d.since(now_ts);
            // A deadline too far away to represent is no timer.
            Instant::now().checked_add(if timer_made_no_progress && !progressed {
                wait.max(MIN_IDLE_TIMER)
            } else {
                wait
            })
        });
        let others = waiters.iter().map(|w| w.deadline).chain(shutdown.as_ref().map(|(d, _)| *d));
        let sync_at = unsynced.then(|| last_sync + SYNC_INTERVAL);
        for d in others.chain(sync_at) {
            timer = Some(timer.map_or(d, |t| t.min(d)));
        }
        let sleep = async {
            match timer {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        timer_made_no_progress = false;
        tokio::select! {
            Some(joined) = in_flight.join_next_with_id(), if !in_flight.is_empty() => {
                let (batch, outcome) = match joined {
                    Ok((id, (batch, outcome))) => {
                        batches.remove(&id);
                        (batch, outcome)
                    }
                    Err(error) => match batches.remove(&error.id()) {
                        Some(batch) => {
                            tracing::error!(%error, "request task failed");
                            (batch, Outcome::Failed)
                        }
                        None => continue,
                    },
                };
                handle_outcome(&shared, batch, &outcome);
            }
            command = commands.recv() => match command {
                Some(Command::Flush { deadline, reply }) => {
                    let ticket = shared.lock().engine.flush();
                    waiters.push(Waiter { ticket, deadline, reply });
                }
                Some(Command::Shutdown { deadline, reply }) => shutdown = Some((deadline, reply)),
                Some(Command::Abandon) | None => break End::Abandoned,
            },
            () = shared.wake.notified() => {}
            () = sleep => {
                shared.lock().engine.handle_timeout(now());
                timer_made_no_progress = true;
            }
        }
    };
    // Requests still out are abandoned: their events stay persisted, or are counted as lost
    // (with a directory, those whose records could not be written).
    in_flight.abort_all();
    let (pending, flushed) = {
        let mut core = shared.lock();
        core.collect_ops();
        let flushed: Vec<bool> = waiters.iter().map(|w| core.engine.is_flushed(w.ticket)).collect();
        (pending_events(&core.engine), flushed)
    };
    let (stored, unwritten) = shared.close_store();
    let abandoned = matches!(end, End::Abandoned);
    if shared.persistent() {
        if unwritten > 0 {
            shared.add_lost(unwritten as u64);
            tracing::warn!(
                lost = unwritten,
                abandoned,
                "client stopped with undelivered events the persisted log could not take (a full disk?); they are lost"
            );
        }
        if stored > 0 {
            tracing::info!(
                stored,
                "client stopped; stored events will be sent by the next client using this directory"
            );
        }
    } else if pending > 0 {
        shared.add_lost(pending as u64);
        tracing::warn!(
            lost = pending,
            abandoned,
            "client stopped with undelivered events and no persistence directory; they are lost"
        );
    }
    for (waiter, flushed) in waiters.into_iter().zip(flushed) {
        waiter.reply.send(if flushed { Ok(()) } else { Err(Error::Timeout { pending }) });
    }
    if let End::Shutdown { deadline, reply } = end {
        tracing::debug!(pending, timed_out = Instant::now() >= deadline, "client shut down");
        reply.send(if pending == 0 { Ok(()) } else { Err(Error::Timeout { pending }) });
    }
}

/// Reports one outcome to the engine, logging drops and retries.
fn handle_outcome(shared: &Shared, batch: BatchId, outcome: &Outcome) {
    let response = match outcome {
        Outcome::Status { status, retry_after, body } => {
            Response::Status { status: *status, retry_after: *retry_after, body }
        }
        Outcome::Failed => Response::Failed,
    };
    let mut core = shared.lock();
    let before = core.engine.stats();
    let now_ts = now();
    let core = &mut *core;
    core.engine.handle_response(now_ts, &mut core.rng, batch, response);
    let after = core.engine.stats();
    let dropped = after.dropped.total() - before.dropped.total();
    if dropped > 0 {
        tracing::warn!(dropped, status = ?status_of(outcome), "events dropped by the server's answer");
    }
    if after.retried > before.retried {
        tracing::debug!(events = after.retried - before.retried, status = ?status_of(outcome), "batch will be retried");
    }
}

fn status_of(outcome: &Outcome) -> Option<u16> {
    match outcome {
        Outcome::Status { status, .. } => Some(*status),
        Outcome::Failed => None,
    }
}

fn pending_events(engine: &empmix_core::Engine) -> usize {
    let stats = engine.stats();
    stats.queued + stats.in_flight
}

/// Moves a reply out of a waiter being removed (`retain_mut` gives only `&mut`).
fn take_reply(reply: &mut Reply) -> Reply {
    let (placeholder, _) = oneshot::channel();
    std::mem::replace(reply, Reply::Async(placeholder))
}
