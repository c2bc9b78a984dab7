//! The processing side: an [`EdgeReceiver`] reading the ingest topic in a consumer group.
//!
//! A dedicated thread polls librdkafka (so rebalance and statistics callbacks are served even
//! while the graph is backpressured) and hands fetched messages over a bounded channel.
//! `recv` gives each message a local, increasing [`AckToken`] and remembers `(token, offset)`
//! per partition; `commit(upto)` commits, per partition, the offset after the last message
//! with a token `≤ upto`. Tokens are not durable: after a restart Kafka redelivers from the
//! committed offsets. A message that cannot be decoded is produced to the dead-letter topic
//! with the reason in a header, counted, and delivered as an empty batch so that committing
//! moves past it like any other message.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use phoenix_model::config::KafkaConfig;
use phoenix_model::{AckToken, Delivery, EdgeError, EdgeReceiver};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics::{COMMIT_ERRORS, CONSUMED_DATAPOINTS, CONSUMED_MESSAGES, DEAD_LETTERS};
use crate::monitor::{BusMonitor, ConsumerCallbacks, Shared};
use crate::payload::{
    self, DecodeError, DLQ_OFFSET_HEADER, DLQ_PARTITION_HEADER, DLQ_REASON_HEADER,
    DLQ_TOPIC_HEADER, SCHEMA_VERSION_HEADER,
};
use crate::topics::{ensure_topics, Topics};
use crate::{client, Error, Result};

/// How long one librdkafka poll blocks the polling thread.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Pause between attempts to put a message on a full channel.
const CHANNEL_RETRY: Duration = Duration::from_millis(5);
/// First wait before retrying a dead letter the broker did not take.
const DLQ_BACKOFF: Duration = Duration::from_millis(200);
/// Minimum time between two warnings about consumer errors.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// A message fetched by the polling thread, with the assignment epoch it was fetched in.
struct Fetched {
    message: OwnedMessage,
    epoch: u64,
}

/// Settings of a [`KafkaReceiver`] beyond `bus.kafka`.
#[derive(Debug, Clone)]
pub struct ReceiverOptions {
    /// Messages fetched ahead of the graph.
    pub prefetch: usize,
    /// How long a revocation waits for delivered messages to become durable before releasing
    /// the partition anyway (set above the sinks' flush interval).
    pub revoke_timeout: Duration,
}

impl Default for ReceiverOptions {
    fn default() -> Self {
        ReceiverOptions {
            prefetch: 32,
            revoke_timeout: Duration::from_secs(30),
        }
    }
}

/// Reads the ingest topic as a member of `bus.kafka.group_id`.
pub struct KafkaReceiver {
    rx: mpsc::Receiver<Fetched>,
    shared: Arc<Shared>,
    /// Weak: the polling thread owns the consumer and closes it when it ends.
    consumer: Weak<BaseConsumer<ConsumerCallbacks>>,
    dlq: FutureProducer,
    topics: Topics,
    next_token: u64,
    handle: ReceiverHandle,
    /// A dead letter being produced, with the token its empty delivery will carry. Kept here
    /// so that `recv` stays cancel-safe: a caller that drops `recv` (a `select!`) resumes it.
    dead_letter: Option<(Origin, JoinHandle<bool>)>,
}

/// Where a delivery came from.
#[derive(Debug, Clone, Copy)]
struct Origin {
    ack: AckToken,
    partition: i32,
    epoch: u64,
    offset: i64,
}

/// A delivery with the partition it came from (see [`KafkaReceiver::recv_partitioned`]).
#[derive(Debug)]
pub struct Routed {
    /// Source partition.
    pub partition: i32,
    /// Assignment epoch it was fetched in; a new epoch means a new ownership.
    pub epoch: u64,
    /// The batch; its ack token is [`crate::position`]`(partition, offset)`.
    pub delivery: Delivery,
}

/// Commits offsets of one partition at a time, for per-partition graphs; cheap to clone.
#[derive(Clone)]
pub struct PartitionCommitter {
    shared: Arc<Shared>,
    consumer: Weak<BaseConsumer<ConsumerCallbacks>>,
}

impl PartitionCommitter {
    /// Commits `partition` up to `position` (made by [`crate::position`]), if the partition is
    /// still owned in `epoch`; a revoked or reassigned partition's commit is skipped.
    ///
    /// # Errors
    /// [`EdgeError::Transport`] when the broker refuses the commit, [`EdgeError::Closed`] when
    /// the consumer is gone.
    pub async fn commit(&self, epoch: u64, position: u64) -> Result<(), EdgeError> {
        let Some((partition, next)) = crate::position::split_position(position) else {
            return Ok(());
        };
        let partition = partition as i32;
        let next = next as i64;
        {
            let st = self.shared.state.lock();
            match st.partitions.get(&partition) {
                Some(ps) if ps.epoch == epoch && !ps.revoking => {
                    if ps.committed.is_some_and(|c| c >= next) {
                        return Ok(());
                    }
                }
                _ => return Ok(()),
            }
        }
        commit_offsets(&self.shared.topic, &self.consumer, &[(partition, next)]).await?;
        let mut st = self.shared.state.lock();
        if let Some(ps) = st.partitions.get_mut(&partition) {
            if ps.epoch == epoch {
                while ps.pending.front().is_some_and(|&(_, o)| o < next) {
                    ps.pending.pop_front();
                }
                ps.committed = Some(ps.committed.map_or(next, |c| c.max(next)));
            }
        }
        drop(st);
        self.shared.drained.notify_all();
        Ok(())
    }
}

/// Stops a [`KafkaReceiver`] from outside the task that owns it; cheap to clone.
#[derive(Debug, Clone)]
pub struct ReceiverHandle {
    stop: CancellationToken,
    poller_stop: Arc<AtomicBool>,
    monitor: BusMonitor,
}

impl ReceiverHandle {
    /// Makes `recv` return `None` from now on (messages not yet delivered are left to Kafka,
    /// which redelivers them from the committed offsets); commits keep working.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Partitions owned and lag, for health.
    pub fn monitor(&self) -> &BusMonitor {
        &self.monitor
    }
}

/// The entry edge of one partition's graph: deliveries routed to it over a channel, commits
/// to Kafka for that partition only (while it is owned in `epoch`).
pub struct PartitionEdge {
    rx: mpsc::Receiver<Delivery>,
    committer: PartitionCommitter,
    epoch: u64,
}

impl PartitionEdge {
    /// An edge reading `rx`, committing through `committer` for ownership `epoch`.
    pub fn new(rx: mpsc::Receiver<Delivery>, committer: PartitionCommitter, epoch: u64) -> Self {
        PartitionEdge {
            rx,
            committer,
            epoch,
        }
    }
}

#[async_trait]
impl EdgeReceiver for PartitionEdge {
    async fn recv(&mut self) -> Option<Delivery> {
        self.rx.recv().await
    }

    async fn commit(&mut self, upto: AckToken) -> Result<(), EdgeError> {
        self.committer.commit(self.epoch, upto.0).await
    }
}

impl KafkaReceiver {
    /// Creates the topics if missing, joins the consumer group and starts fetching.
    ///
    /// # Errors
    /// [`Error`] when the cluster cannot be reached or a client cannot be configured.
    pub async fn connect(cfg: &KafkaConfig, options: ReceiverOptions) -> Result<Self> {
        ensure_topics(cfg).await?;
        Self::subscribe(cfg, &Topics::new(&cfg.topic_prefix), options)
    }

    /// Joins the consumer group on `topics.ingest` (which must exist) and starts fetching.
    ///
    /// # Errors
    /// [`Error::Client`] when a client cannot be configured, [`Error::Kafka`] when the
    /// subscription is refused.
    pub fn subscribe(cfg: &KafkaConfig, topics: &Topics, options: ReceiverOptions) -> Result<Self> {
        let shared = Shared::new(&topics.ingest, &cfg.group_id, options.revoke_timeout);
        let consumer: BaseConsumer<ConsumerCallbacks> = client::consumer(cfg)
            .create_with_context(ConsumerCallbacks {
                shared: shared.clone(),
            })
            .map_err(|e| Error::Client(e.to_string()))?;
        consumer
            .subscribe(&[topics.ingest.as_str()])
            .map_err(|e| Error::kafka("subscribe", e))?;
        let dlq: FutureProducer = client::producer(cfg)
            .create()
            .map_err(|e| Error::Client(e.to_string()))?;
        let consumer = Arc::new(consumer);
        let (tx, rx) = mpsc::channel(options.prefetch.max(1));
        let poller_stop = Arc::new(AtomicBool::new(false));
        let weak = Arc::downgrade(&consumer);
        {
            let shared = shared.clone();
            let stop = poller_stop.clone();
            std::thread::Builder::new()
                .name("phoenix-kafka-poll".into())
                .spawn(move || poll_loop(consumer, shared, tx, stop))
                .map_err(|e| Error::Client(format!("starting the polling thread: {e}")))?;
        }
        tracing::info!(topic = %topics.ingest, group = %cfg.group_id, "Joined Kafka consumer group.");
        Ok(KafkaReceiver {
            rx,
            consumer: weak,
            dlq,
            topics: topics.clone(),
            next_token: 0,
            dead_letter: None,
            handle: ReceiverHandle {
                stop: CancellationToken::new(),
                poller_stop,
                monitor: BusMonitor {
                    shared: shared.clone(),
                },
            },
            shared,
        })
    }

    /// A handle to stop this receiver and watch its partitions.
    pub fn handle(&self) -> ReceiverHandle {
        self.handle.clone()
    }

    /// Commits per partition, for graphs fed by [`KafkaReceiver::recv_partitioned`].
    pub fn committer(&self) -> PartitionCommitter {
        PartitionCommitter {
            shared: self.shared.clone(),
            consumer: self.consumer.clone(),
        }
    }

    /// Partitioned mode: on revocation, `hook` stops the partitions' graphs (and returns once
    /// they are stopped) instead of the revocation waiting for their commits.
    pub fn set_revoke_hook(&self, hook: crate::monitor::RevokeHook) {
        *self.shared.on_revoke.lock() = Some(hook);
    }

    /// Like [`EdgeReceiver::recv`], with the source partition, and the ack token replaced by
    /// [`crate::position`]`(partition, offset)` — increasing per partition, so each partition
    /// can feed its own graph, which commits through [`KafkaReceiver::committer`].
    pub async fn recv_partitioned(&mut self) -> Option<Routed> {
        let (origin, batch) = self.recv_origin().await?;
        Some(Routed {
            partition: origin.partition,
            epoch: origin.epoch,
            delivery: Delivery {
                batch,
                ack: AckToken(crate::position::position(origin.partition, origin.offset)),
            },
        })
    }

    /// The next delivery and where it came from (cancel-safe).
    async fn recv_origin(&mut self) -> Option<(Origin, RecordBatch)> {
        loop {
            if let Some((origin, task)) = self.dead_letter.as_mut() {
                let origin = *origin;
                // Awaiting the handle by reference is cancel-safe: a dropped `recv` resumes here.
                let stored = tokio::select! {
                    biased;
                    () = self.handle.stop.cancelled() => return None,
                    r = task => r.unwrap_or(false),
                };
                self.dead_letter = None;
                if !stored {
                    return None;
                }
                // An empty delivery carries the token, so committing moves past the message.
                return Some((
                    origin,
                    RecordBatch::new_empty(phoenix_model::metrics_schema()),
                ));
            }
            let fetched = tokio::select! {
                biased;
                () = self.handle.stop.cancelled() => return None,
                f = self.rx.recv() => f?,
            };
            let msg = fetched.message;
            let Some(ack) = self.track(msg.partition(), msg.offset(), fetched.epoch) else {
                continue;
            };
            let origin = Origin {
                ack,
                partition: msg.partition(),
                epoch: fetched.epoch,
                offset: msg.offset(),
            };
            metrics::counter!(CONSUMED_MESSAGES, "topic" => self.shared.topic.clone()).increment(1);
            let decoded = payload::check_version(
                msg.headers()
                    .and_then(|h| h.iter().find(|h| h.key == SCHEMA_VERSION_HEADER))
                    .and_then(|h| h.value),
            )
            .and_then(|()| payload::decode(msg.payload()));
            match decoded {
                Ok(batch) => {
                    metrics::counter!(CONSUMED_DATAPOINTS, "topic" => self.shared.topic.clone())
                        .increment(batch.num_rows() as u64);
                    return Some((origin, batch));
                }
                Err(error) => {
                    let task = tokio::spawn(dead_letter(
                        self.dlq.clone(),
                        self.topics.dlq.clone(),
                        msg,
                        error,
                        self.handle.stop.clone(),
                    ));
                    self.dead_letter = Some((origin, task));
                }
            }
        }
    }

    /// Records a fetched message as delivered under a new token, unless its partition was
    /// revoked or reassigned since it was fetched.
    fn track(&mut self, partition: i32, offset: i64, epoch: u64) -> Option<AckToken> {
        let mut st = self.shared.state.lock();
        let ps = st.partitions.get_mut(&partition)?;
        if ps.epoch != epoch || ps.revoking {
            return None;
        }
        self.next_token += 1;
        let token = AckToken(self.next_token);
        ps.pending.push_back((token, offset));
        Some(token)
    }
}

/// Produces an unreadable message to the dead-letter topic, retrying until the broker takes it
/// or `stop` is cancelled. Returns whether it was stored.
async fn dead_letter(
    producer: FutureProducer,
    dlq: String,
    msg: OwnedMessage,
    error: DecodeError,
    stop: CancellationToken,
) -> bool {
    let reason = error.to_string();
    let partition = msg.partition().to_string();
    let offset = msg.offset().to_string();
    let mut backoff = DLQ_BACKOFF;
    loop {
        let mut headers = OwnedHeaders::new();
        if let Some(original) = msg.headers() {
            for h in original.iter() {
                headers = headers.insert(Header {
                    key: h.key,
                    value: h.value,
                });
            }
        }
        let headers = headers
            .insert(Header {
                key: DLQ_REASON_HEADER,
                value: Some(reason.as_bytes()),
            })
            .insert(Header {
                key: DLQ_TOPIC_HEADER,
                value: Some(msg.topic().as_bytes()),
            })
            .insert(Header {
                key: DLQ_PARTITION_HEADER,
                value: Some(partition.as_bytes()),
            })
            .insert(Header {
                key: DLQ_OFFSET_HEADER,
                value: Some(offset.as_bytes()),
            });
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&dlq).headers(headers);
        if let Some(p) = msg.payload() {
            record = record.payload(p);
        }
        if let Some(k) = msg.key() {
            record = record.key(k);
        }
        match producer.send(record, Timeout::After(DLQ_BACKOFF)).await {
            Ok(_) => {
                metrics::counter!(DEAD_LETTERS, "reason" => error.reason()).increment(1);
                tracing::warn!(topic = %msg.topic(), partition = msg.partition(), offset = msg.offset(), %dlq, %reason, "Unreadable message moved to the dead-letter topic.");
                return true;
            }
            Err((e, _)) => {
                tracing::warn!(%dlq, error = %e, "Dead-letter topic did not take a message; retrying.");
                tokio::select! {
                    () = stop.cancelled() => return false,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

impl Drop for KafkaReceiver {
    fn drop(&mut self) {
        // Revocations during the consumer's close must not wait for commits that will not come.
        self.shared.state.lock().closing = true;
        self.shared.drained.notify_all();
        self.handle.poller_stop.store(true, Ordering::Relaxed);
    }
}

#[async_trait]
impl EdgeReceiver for KafkaReceiver {
    async fn recv(&mut self) -> Option<Delivery> {
        let (origin, batch) = self.recv_origin().await?;
        Some(Delivery {
            batch,
            ack: origin.ack,
        })
    }

    async fn commit(&mut self, upto: AckToken) -> Result<(), EdgeError> {
        let offsets: Vec<(i32, i64)> = {
            let st = self.shared.state.lock();
            st.partitions
                .iter()
                .filter_map(|(&p, ps)| {
                    ps.pending
                        .iter()
                        .take_while(|(t, _)| *t <= upto)
                        .last()
                        .map(|&(_, offset)| (p, offset + 1))
                })
                .collect()
        };
        if offsets.is_empty() {
            return Ok(());
        }
        commit_offsets(&self.shared.topic, &self.consumer, &offsets).await?;
        let mut st = self.shared.state.lock();
        for (p, next) in offsets {
            if let Some(ps) = st.partitions.get_mut(&p) {
                while ps.pending.front().is_some_and(|(t, _)| *t <= upto) {
                    ps.pending.pop_front();
                }
                ps.committed = Some(ps.committed.map_or(next, |c| c.max(next)));
            }
        }
        drop(st);
        self.shared.drained.notify_all();
        Ok(())
    }
}

/// Commits `(partition, next offset)` pairs of `topic` synchronously.
async fn commit_offsets(
    topic: &str,
    consumer: &Weak<BaseConsumer<ConsumerCallbacks>>,
    offsets: &[(i32, i64)],
) -> Result<(), EdgeError> {
    let mut tpl = TopicPartitionList::new();
    for &(p, next) in offsets {
        tpl.add_partition_offset(topic, p, Offset::Offset(next))
            .map_err(|e| EdgeError::Transport(e.to_string()))?;
    }
    let consumer = consumer.upgrade().ok_or(EdgeError::Closed)?;
    // A synchronous commit waits for the broker; keep it off the async workers.
    let result = tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync))
        .await
        .map_err(|e| EdgeError::Transport(e.to_string()))?;
    result.map_err(|e| {
        metrics::counter!(COMMIT_ERRORS).increment(1);
        EdgeError::Transport(format!("offset commit: {e}"))
    })
}

/// The polling thread: serves librdkafka's callbacks and moves messages to the channel.
fn poll_loop(
    consumer: Arc<BaseConsumer<ConsumerCallbacks>>,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Fetched>,
    stop: Arc<AtomicBool>,
) {
    let mut last_warn: Option<std::time::Instant> = None;
    'poll: while !stop.load(Ordering::Relaxed) {
        let message = match consumer.poll(POLL_INTERVAL) {
            None => continue,
            Some(Ok(m)) => m.detach(),
            Some(Err(error)) => {
                *shared.last_error.lock() = Some(std::time::Instant::now());
                if last_warn.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                    tracing::warn!(topic = %shared.topic, %error, "Kafka consumer error; retrying.");
                    last_warn = Some(std::time::Instant::now());
                }
                continue;
            }
        };
        // Fetched under the current assignment (librdkafka drops older fetches itself).
        let Some(epoch) = shared.epoch_of(message.partition()) else {
            continue;
        };
        let mut item = Fetched { message, epoch };
        loop {
            match tx.try_send(item) {
                Ok(()) => break,
                Err(mpsc::error::TrySendError::Closed(_)) => break 'poll,
                Err(mpsc::error::TrySendError::Full(back)) => {
                    if stop.load(Ordering::Relaxed) {
                        break 'poll;
                    }
                    item = back;
                    std::thread::sleep(CHANNEL_RETRY);
                }
            }
        }
    }
    tracing::debug!(topic = %shared.topic, "Kafka polling thread stopping; closing the consumer.");
    // Dropping the last strong reference closes the consumer (leaves the group).
    drop(consumer);
}
