//! The scale-out queue: RabbitMQ through `lapin`.
//!
//! - **Topology**: a durable quorum queue (`x-queue-type=quorum`, falling back to a classic
//!   durable queue on brokers without quorum queues) with `x-delivery-limit` and a dead-letter
//!   route (default exchange, routing key `<queue>.dlq`) into the durable queue `<queue>.dlq`.
//! - **Publishing**: one persistent message per accepted HTTP batch (`delivery_mode` 2,
//!   `mandatory`), on [`PUBLISHER_CHANNELS`] channels in confirm mode. Every request awaits its
//!   own confirm, so up to [`PUBLISH_WINDOW`] confirms are in flight at once. A nack, a returned
//!   (unroutable) message, a confirm slower than [`CONFIRM_TIMEOUT`] or a broker that is not
//!   connected fails the publish, and ingest answers 503 so the client retries.
//! - **Consuming**: manual acknowledgements, sent by the consumer after its database commit;
//!   `basic_qos` prefetch ([`DEFAULT_PREFETCH`] by default). A batch the consumer cannot apply is
//!   nacked with requeue; after [`DELIVERY_LIMIT`] deliveries the broker dead-letters it.
//! - **Lag**: RabbitMQ does not tell the age of its messages, so the queue carries it: every
//!   message holds its batch's `received_at`, and this process tracks each delivery it has been
//!   handed (prefetched, being applied, or held while the store is down) until it is settled
//!   (acknowledged or given back). [`Queue::stats`] reports the oldest of them. That is the exact
//!   age of the oldest unconsumed batch: the queue is FIFO and a consumer is always sent messages
//!   while it has prefetch room, so a ready message is newer than every delivery already handed
//!   out, and while messages are ready every consumer's prefetch window is full (not empty). With
//!   several consumer processes each reports the oldest batch it holds; the deployment's lag is
//!   the maximum over them. A process that does not consume cannot know it (see
//!   [`QueueStats::oldest_received_at`]).
//! - **Recovery**: a supervisor task on the queue's own runtime reconnects (backoff up to 2 s),
//!   redeclares the topology and reopens the channels and the consumer after a broker restart or
//!   a lost connection. Deliveries that were in flight on the old connection are redelivered by
//!   the broker; the store deduplicates them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::acker::Acker;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

use super::{Delivery, Publish, Queue, QueueError, QueueStats, QueuedBatch, envelope};

/// Queue name when none is configured.
pub const DEFAULT_QUEUE_NAME: &str = "empmix.batches";
/// Deliveries after which the broker dead-letters a batch (quorum queues).
pub const DELIVERY_LIMIT: i64 = 10;
/// Most publishes awaiting their confirm at once, per process.
pub const PUBLISH_WINDOW: usize = 8192;
/// How long a publish waits for the broker's confirm before answering 503.
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);
/// Channels in confirm mode publishes are spread over.
pub const PUBLISHER_CHANNELS: usize = 4;
/// Unacknowledged deliveries the broker sends a consumer ahead (`basic_qos`).
pub const DEFAULT_PREFETCH: u16 = 256;
/// How long [`AmqpQueue::connect`] waits for the first connection before returning anyway (the
/// supervisor keeps trying; publishes answer 503 meanwhile).
const FIRST_CONNECT: Duration = Duration::from_secs(10);

/// How to reach and use the broker.
#[derive(Debug, Clone)]
pub struct AmqpOptions {
    /// `amqp://user:pass@host:port/vhost` (lapin's URI syntax, e.g. `?heartbeat=10`).
    pub url: String,
    /// The queue; its dead-letter queue is `<queue>.dlq`.
    pub queue: String,
    /// Whether this process consumes (otherwise it only publishes).
    pub consume: bool,
    /// `basic_qos` prefetch count of the consumer.
    pub prefetch: u16,
    /// Connection name shown in the broker's management UI.
    pub connection_name: String,
}

impl AmqpOptions {
    /// Options with the default queue name and prefetch.
    pub fn new(url: impl Into<String>, consume: bool) -> Self {
        AmqpOptions {
            url: url.into(),
            queue: DEFAULT_QUEUE_NAME.into(),
            consume,
            prefetch: DEFAULT_PREFETCH,
            connection_name: format!("empmix-server pid {}", std::process::id()),
        }
    }

    /// The dead-letter queue's name.
    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dlq", self.queue)
    }
}

/// One live connection with its channels.
struct Link {
    conn: Connection,
    /// Signalled when this connection or one of its channels fails.
    broken: Arc<tokio::sync::Notify>,
    admin: Channel,
    publishers: Vec<Channel>,
    next: AtomicUsize,
}

impl Link {
    fn publisher(&self) -> &Channel {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.publishers.len().max(1);
        &self.publishers[i.min(self.publishers.len().saturating_sub(1))]
    }

    fn healthy(&self) -> bool {
        self.conn.status().connected()
            && self.admin.status().connected()
            && self.publishers.iter().all(|c| c.status().connected())
    }
}

struct Shared {
    opts: AmqpOptions,
    link: RwLock<Option<Arc<Link>>>,
    window: tokio::sync::Semaphore,
    /// Deliveries handed to the consumer, by sequence number: their acker and tracking id.
    handed: Mutex<BTreeMap<u64, (Acker, u64)>>,
    /// Every delivery received from the broker and not yet settled, by tracking id: its batch's
    /// `received_at` (epoch ms), for the lag.
    unsettled: Mutex<BTreeMap<u64, i64>>,
    next_track: AtomicU64,
    next_seq: AtomicU64,
    published: AtomicU64,
    closed: AtomicBool,
    /// Wakes the supervisor (on close).
    wake: tokio::sync::Notify,
    incoming: Mutex<mpsc::Sender<(u64, lapin::message::Delivery)>>,
}

impl Shared {
    fn current(&self) -> Option<Arc<Link>> {
        self.link.read().ok().and_then(|l| l.clone())
    }

    fn set_link(&self, link: Option<Arc<Link>>) {
        if let Ok(mut l) = self.link.write() {
            *l = link;
        }
    }

    /// Starts tracking a delivery just received from the broker; returns its tracking id.
    fn track(&self, data: &[u8]) -> u64 {
        let id = self.next_track.fetch_add(1, Ordering::Relaxed);
        // A message that is not an empmix batch is given back at once by `receive`.
        if let (Some(t), Ok(mut u)) = (envelope_received_at(data), self.unsettled.lock()) {
            u.insert(id, t);
        }
        id
    }

    /// Stops tracking deliveries that were acknowledged or given back.
    fn untrack(&self, ids: impl IntoIterator<Item = u64>) {
        if let Ok(mut u) = self.unsettled.lock() {
            for id in ids {
                u.remove(&id);
            }
        }
    }

    /// The oldest `received_at` of the deliveries not yet settled.
    fn oldest_unsettled(&self) -> Option<i64> {
        self.unsettled.lock().ok().and_then(|u| u.values().min().copied())
    }
}

/// The `received_at` in a message's header (see `envelope`), without decoding the rest.
fn envelope_received_at(data: &[u8]) -> Option<i64> {
    let rest = data.strip_prefix(b"EMB1")?;
    let len = usize::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?));
    let at = rest.get(2 + len..2 + len + 8)?;
    Some(i64::from_be_bytes(at.try_into().ok()?))
}

/// The RabbitMQ queue.
pub struct AmqpQueue {
    shared: Arc<Shared>,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    handle: tokio::runtime::Handle,
    deliveries: Mutex<mpsc::Receiver<(u64, lapin::message::Delivery)>>,
}

impl fmt::Debug for AmqpQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpQueue")
            .field("queue", &self.shared.opts.queue)
            .field("consume", &self.shared.opts.consume)
            .field("connected", &self.shared.current().is_some())
            .finish_non_exhaustive()
    }
}

fn quorum_args(opts: &AmqpOptions, quorum: bool) -> FieldTable {
    let mut args = FieldTable::default();
    if quorum {
        args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
        args.insert("x-delivery-limit".into(), AMQPValue::LongLongInt(DELIVERY_LIMIT));
    }
    args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString("".into()));
    args.insert("x-dead-letter-routing-key".into(), AMQPValue::LongString(opts.dead_letter_queue().into()));
    args
}

/// Declares the queue and its dead-letter queue; returns the admin channel (a failed quorum
/// declaration closes the channel it was tried on).
async fn declare(conn: &Connection, opts: &AmqpOptions) -> Result<Channel, lapin::Error> {
    let durable = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
    let admin = conn.create_channel().await?;
    admin.queue_declare(&opts.dead_letter_queue(), durable, FieldTable::default()).await?;
    match admin.queue_declare(&opts.queue, durable, quorum_args(opts, true)).await {
        Ok(_) => Ok(admin),
        Err(e) => {
            tracing::warn!(queue = %opts.queue, error = %e,
                "quorum queue declaration failed; using a classic durable queue (no broker-side delivery limit)");
            let admin = conn.create_channel().await?;
            admin.queue_declare(&opts.queue, durable, quorum_args(opts, false)).await?;
            Ok(admin)
        }
    }
}

async fn connect_once(shared: &Arc<Shared>) -> Result<Arc<Link>, lapin::Error> {
    let opts = &shared.opts;
    let props = ConnectionProperties::default().with_connection_name(opts.connection_name.clone().into());
    let conn = Connection::connect(&opts.url, props).await?;
    let broken = Arc::new(tokio::sync::Notify::new());
    let admin = declare(&conn, opts).await?;
    let mut publishers = Vec::with_capacity(PUBLISHER_CHANNELS);
    for _ in 0..PUBLISHER_CHANNELS {
        let ch = conn.create_channel().await?;
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        publishers.push(ch);
    }
    if opts.consume {
        let ch = conn.create_channel().await?;
        ch.basic_qos(opts.prefetch, BasicQosOptions::default()).await?;
        let tag = format!("empmix-{}-{}", std::process::id(), shared.next_seq.load(Ordering::Relaxed));
        let mut consumer = ch
            .basic_consume(&opts.queue, &tag, BasicConsumeOptions::default(), FieldTable::default())
            .await?;
        let sender = shared.incoming.lock().map(|s| s.clone()).ok();
        let notify = broken.clone();
        let tracker = shared.clone();
        tokio::spawn(async move {
            let _keep = ch;
            while let Some(item) = consumer.next().await {
                match item {
                    Ok(delivery) => {
                        let id = tracker.track(&delivery.data);
                        if sender.as_ref().is_none_or(|s| s.send((id, delivery)).is_err()) {
                            tracker.untrack([id]);
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "broker consumer stopped");
                        break;
                    }
                }
            }
            notify.notify_one();
        });
    }
    let on_error = broken.clone();
    conn.on_error(move |e| {
        tracing::warn!(error = %e, "broker connection error");
        on_error.notify_one();
    });
    Ok(Arc::new(Link { conn, broken, admin, publishers, next: AtomicUsize::new(0) }))
}

/// Keeps a connection up until the queue is closed.
async fn supervise(shared: Arc<Shared>) {
    let mut backoff = Duration::from_millis(100);
    while !shared.closed.load(Ordering::SeqCst) {
        match connect_once(&shared).await {
            Ok(link) => {
                tracing::info!(queue = %shared.opts.queue, consume = shared.opts.consume, "connected to the broker");
                backoff = Duration::from_millis(100);
                shared.set_link(Some(link.clone()));
                loop {
                    tokio::select! {
                        _ = link.broken.notified() => break,
                        _ = shared.wake.notified() => {}
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    }
                    if shared.closed.load(Ordering::SeqCst) || !link.healthy() {
                        break;
                    }
                }
                shared.set_link(None);
                if shared.closed.load(Ordering::SeqCst) {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(2), link.conn.close(200, "shutdown")).await;
                    return;
                }
                tracing::warn!("broker connection lost; reconnecting");
                let _ =
                    tokio::time::timeout(Duration::from_secs(1), link.conn.close(320, "reconnecting")).await;
            }
            Err(e) => tracing::warn!(error = %e, retry_in = ?backoff, "cannot connect to the broker"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

impl AmqpQueue {
    /// Starts the connection supervisor and waits (up to 10 s) for the first connection. A broker
    /// that is down is not an error: publishes answer 503 until it is reachable.
    pub fn connect(opts: AmqpOptions) -> Result<Self, QueueError> {
        opts.url
            .parse::<lapin::uri::AMQPUri>()
            .map_err(|e| QueueError::Config(format!("{}: {e}", opts.url)))?;
        if opts.queue.is_empty() || opts.queue.len() > 200 {
            return Err(QueueError::Config(format!("queue name {:?} must be 1-200 bytes", opts.queue)));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("empmix-amqp")
            .enable_all()
            .build()?;
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            opts,
            link: RwLock::new(None),
            window: tokio::sync::Semaphore::new(PUBLISH_WINDOW),
            handed: Mutex::new(BTreeMap::new()),
            unsettled: Mutex::new(BTreeMap::new()),
            next_track: AtomicU64::new(0),
            next_seq: AtomicU64::new(1),
            published: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
            incoming: Mutex::new(tx),
        });
        runtime.spawn(supervise(shared.clone()));
        let deadline = Instant::now() + FIRST_CONNECT;
        while shared.current().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if shared.current().is_none() {
            tracing::warn!("broker not reachable yet; ingest answers 503 until it is");
        }
        let handle = runtime.handle().clone();
        Ok(AmqpQueue { shared, runtime: Mutex::new(Some(runtime)), handle, deliveries: Mutex::new(rx) })
    }

    /// Whether a connection is up now.
    pub fn connected(&self) -> bool {
        self.shared.current().is_some_and(|l| l.healthy())
    }

    fn settle(&self, ackers: Vec<Acker>, requeue: Option<bool>) {
        if ackers.is_empty() {
            return;
        }
        let results =
            self.handle.block_on(futures_util::future::join_all(ackers.iter().map(|a| async move {
                match requeue {
                    None => a.ack(BasicAckOptions::default()).await,
                    Some(requeue) => a.nack(BasicNackOptions { multiple: false, requeue }).await,
                }
            })));
        let failed = results.iter().filter(|r| r.is_err()).count();
        if failed > 0 {
            // The channel is gone: the broker redelivers these and the store deduplicates.
            tracing::warn!(failed, "acknowledgements not sent (connection lost); the broker will redeliver");
        }
    }
}

impl Drop for AmqpQueue {
    fn drop(&mut self) {
        self.close();
        if let Some(rt) = self.runtime.lock().ok().and_then(|mut r| r.take()) {
            rt.shutdown_background();
        }
    }
}

impl Queue for AmqpQueue {
    fn publish(&self, batch: QueuedBatch) -> Publish {
        let shared = self.shared.clone();
        Box::pin(async move {
            if shared.closed.load(Ordering::SeqCst) {
                return Err(QueueError::Closed);
            }
            let link = shared.current().ok_or(QueueError::Unavailable)?;
            let _permit = shared.window.acquire().await.map_err(|_| QueueError::Closed)?;
            let payload = envelope::encode(&batch);
            let props = BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type("application/x-empmix-batch".into())
                .with_timestamp(u64::try_from(batch.received_at / 1000).unwrap_or(0));
            let options = BasicPublishOptions { mandatory: true, immediate: false };
            let channel = link.publisher();
            let confirmed = tokio::time::timeout(CONFIRM_TIMEOUT, async {
                channel.basic_publish("", &shared.opts.queue, options, &payload, props).await?.await
            })
            .await;
            match confirmed {
                Err(_) => Err(QueueError::ConfirmTimeout(CONFIRM_TIMEOUT)),
                Ok(Err(e)) => {
                    link.broken.notify_one();
                    Err(QueueError::Broker(e))
                }
                Ok(Ok(Confirmation::Ack(None))) => Ok(shared.published.fetch_add(1, Ordering::Relaxed) + 1),
                Ok(Ok(Confirmation::Ack(Some(_)))) => Err(QueueError::Unroutable),
                Ok(Ok(Confirmation::Nack(_) | Confirmation::NotRequested)) => Err(QueueError::Nacked),
            }
        })
    }

    fn receive(&self, _after: u64, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        let raw = {
            let rx = self.deliveries.lock().map_err(|_| QueueError::Closed)?;
            let first = match rx.recv_timeout(wait) {
                Ok(d) => d,
                Err(RecvTimeoutError::Timeout) => return Ok(Vec::new()),
                Err(RecvTimeoutError::Disconnected) => return Err(QueueError::Closed),
            };
            let mut raw = vec![first];
            while raw.len() < max {
                match rx.try_recv() {
                    Ok(d) => raw.push(d),
                    Err(_) => break,
                }
            }
            raw
        };
        let mut out = Vec::with_capacity(raw.len());
        let mut bad = Vec::new();
        let mut bad_ids = Vec::new();
        let mut handed = self.shared.handed.lock().map_err(|_| QueueError::Closed)?;
        for (id, d) in raw {
            let seq = self.shared.next_seq.fetch_add(1, Ordering::Relaxed);
            match envelope::decode(&d.data) {
                Ok(batch) => {
                    handed.insert(seq, (d.acker, id));
                    out.push(Delivery { seq, batch });
                }
                Err(reason) => {
                    tracing::error!(
                        reason,
                        redelivered = d.redelivered,
                        "message is not an empmix batch; returned (dead-lettered after {DELIVERY_LIMIT} deliveries)"
                    );
                    bad.push(d.acker);
                    bad_ids.push(id);
                }
            }
        }
        drop(handed);
        self.settle(bad, Some(true));
        self.shared.untrack(bad_ids);
        Ok(out)
    }

    fn ack(&self, through: u64) -> Result<(), QueueError> {
        let (ackers, ids): (Vec<Acker>, Vec<u64>) = {
            let mut handed = self.shared.handed.lock().map_err(|_| QueueError::Closed)?;
            let rest = handed.split_off(&through.saturating_add(1));
            std::mem::replace(&mut *handed, rest).into_values().unzip()
        };
        self.settle(ackers, None);
        // Settled even when the acknowledgement was lost with the connection: the broker
        // redelivers the batch, and it is tracked again when it arrives.
        self.shared.untrack(ids);
        Ok(())
    }

    fn retry_later(&self, seq: u64) -> Result<(), QueueError> {
        let entry = self.shared.handed.lock().map_err(|_| QueueError::Closed)?.remove(&seq);
        let (acker, id) = entry.unzip();
        self.settle(acker.into_iter().collect(), Some(true));
        self.shared.untrack(id);
        Ok(())
    }

    fn stats(&self, _after: u64) -> Result<QueueStats, QueueError> {
        let link = self.shared.current().ok_or(QueueError::Unavailable)?;
        let passive = QueueDeclareOptions { passive: true, durable: true, ..QueueDeclareOptions::default() };
        let queue = self.handle.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(2),
                link.admin.queue_declare(&self.shared.opts.queue, passive, FieldTable::default()),
            )
            .await
        });
        match queue {
            Ok(Ok(q)) => {
                let depth = u64::from(q.message_count());
                if !self.shared.opts.consume {
                    return Ok(QueueStats { depth, oldest_received_at: None });
                }
                let mut oldest = self.shared.oldest_unsettled();
                // Ready messages and nothing handed to this consumer: the broker is sending
                // some this very moment (prefetch has room); wait briefly for them.
                let until = Instant::now() + Duration::from_millis(250);
                while oldest.is_none() && depth > 0 && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(5));
                    oldest = self.shared.oldest_unsettled();
                }
                Ok(QueueStats { depth, oldest_received_at: oldest })
            }
            Ok(Err(e)) => Err(QueueError::Broker(e)),
            Err(_) => Err(QueueError::Unavailable),
        }
    }

    fn check(&self) -> Result<(), QueueError> {
        if self.shared.closed.load(Ordering::SeqCst) {
            return Err(QueueError::Closed);
        }
        if self.connected() { Ok(()) } else { Err(QueueError::Unavailable) }
    }

    fn ordered(&self) -> bool {
        false
    }

    fn close(&self) {
        if self.shared.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        self.shared.wake.notify_one();
        // Give the supervisor a moment to close the connection cleanly (unacknowledged
        // deliveries go back to the queue at once instead of at the heartbeat timeout).
        let deadline = Instant::now() + Duration::from_secs(3);
        while self.shared.current().is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
