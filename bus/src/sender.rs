//! The ingest side: an [`EdgeSender`] that produces batches to the ingest topic.
//!
//! A batch is split by partition (series affinity), each part encoded as one compressed Arrow
//! IPC message (split further by rows if it would exceed `bus.kafka.max_message_bytes`), and
//! `send` returns only once the broker acknowledged every message (acks=all, idempotent
//! producer). Anything else — broker unreachable, delivery timeout, local queue full past the
//! admission timeout — is [`EdgeError::Full`], which ingest answers with 503/UNAVAILABLE, so
//! the client retries and nothing it was told is accepted is lost.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use phoenix_model::config::{KafkaCompression, KafkaConfig};
use phoenix_model::schema::SCHEMA_VERSION;
use phoenix_model::{EdgeError, EdgeSender};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;

use crate::metrics::{PRODUCED_BYTES, PRODUCED_MESSAGES, PRODUCE_ERRORS, PRODUCE_SECONDS};
use crate::partition::split_by_partition;
use crate::payload::{self, PRODUCER_HEADER, SCHEMA_VERSION_HEADER};
use crate::topics::{ensure_topics, Topics};
use crate::{client, Error, Result};

/// Writes batches to the ingest topic, partitioned by series.
pub struct KafkaSender {
    producer: FutureProducer,
    topic: String,
    partitions: u32,
    compression: KafkaCompression,
    max_message_bytes: usize,
    producer_name: String,
    admission_timeout: Duration,
    retry_after: Duration,
    in_flight: AtomicUsize,
    /// When a batch was last refused because Kafka did not acknowledge it.
    last_failure: parking_lot::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for KafkaSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSender")
            .field("topic", &self.topic)
            .field("partitions", &self.partitions)
            .finish_non_exhaustive()
    }
}

impl KafkaSender {
    /// Creates the topics if missing and a sender to the ingest topic. `admission_timeout`
    /// bounds the wait for room in the client's local queue; `retry_after` is the hint given
    /// with [`EdgeError::Full`].
    ///
    /// # Errors
    /// [`Error`] when the cluster cannot be reached or the client cannot be configured.
    pub async fn connect(
        cfg: &KafkaConfig,
        admission_timeout: Duration,
        retry_after: Duration,
    ) -> Result<Self> {
        let partitions = ensure_topics(cfg).await?;
        Self::new(
            cfg,
            &Topics::new(&cfg.topic_prefix).ingest,
            partitions,
            admission_timeout,
            retry_after,
        )
    }

    /// A sender to `topic`, which has `partitions` partitions (no cluster round trip).
    ///
    /// # Errors
    /// [`Error::Client`] when the producer cannot be configured.
    pub fn new(
        cfg: &KafkaConfig,
        topic: &str,
        partitions: i32,
        admission_timeout: Duration,
        retry_after: Duration,
    ) -> Result<Self> {
        let producer: FutureProducer = client::producer(cfg)
            .create()
            .map_err(|e| Error::Client(e.to_string()))?;
        Ok(KafkaSender {
            producer,
            topic: topic.to_string(),
            partitions: u32::try_from(partitions.max(1)).unwrap_or(1),
            compression: cfg.compression,
            max_message_bytes: cfg.max_message_bytes,
            producer_name: client::producer_name(),
            admission_timeout,
            retry_after,
            in_flight: AtomicUsize::new(0),
            last_failure: parking_lot::Mutex::new(None),
        })
    }

    /// Partitions of the topic this sender spreads series over.
    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// Time since Kafka last failed to acknowledge a batch, if it ever did.
    pub fn since_last_failure(&self) -> Option<Duration> {
        self.last_failure.lock().map(|t| t.elapsed())
    }

    /// The topic this sender writes.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Encodes `batch` into messages of at most `max_message_bytes` (a single row that is
    /// larger still goes as one message; the broker decides).
    fn encode_bounded(&self, batch: &RecordBatch, out: &mut Vec<Vec<u8>>) -> Result<()> {
        let bytes = payload::encode(batch, self.compression)?;
        let rows = batch.num_rows();
        if bytes.len() <= self.max_message_bytes || rows <= 1 {
            out.push(bytes);
            return Ok(());
        }
        // Aim under the limit with some slack; parts still too large split again.
        let chunks = (bytes.len() * 5 / 4 / self.max_message_bytes + 1).clamp(2, rows);
        let per = rows.div_ceil(chunks);
        let mut start = 0;
        while start < rows {
            let len = per.min(rows - start);
            self.encode_bounded(&batch.slice(start, len), out)?;
            start += len;
        }
        Ok(())
    }

    fn headers(&self) -> OwnedHeaders {
        OwnedHeaders::new_with_capacity(2)
            .insert(Header {
                key: SCHEMA_VERSION_HEADER,
                value: Some(SCHEMA_VERSION.to_string().as_bytes()),
            })
            .insert(Header {
                key: PRODUCER_HEADER,
                value: Some(self.producer_name.as_bytes()),
            })
    }

    async fn produce(&self, batch: &RecordBatch) -> Result<(), EdgeError> {
        let parts = split_by_partition(batch, self.partitions)
            .map_err(|e| EdgeError::Transport(e.to_string()))?;
        let mut messages: Vec<(i32, Vec<u8>)> = Vec::with_capacity(parts.len());
        for (partition, part) in &parts {
            let mut encoded = Vec::new();
            self.encode_bounded(part, &mut encoded)
                .map_err(|e| EdgeError::Transport(e.to_string()))?;
            messages.extend(encoded.into_iter().map(|m| (*partition, m)));
        }
        let sends = messages.iter().map(|(partition, bytes)| {
            let record: FutureRecord<'_, (), [u8]> = FutureRecord::to(&self.topic)
                .partition(*partition)
                .payload(bytes.as_slice())
                .headers(self.headers());
            self.producer
                .send(record, Timeout::After(self.admission_timeout))
        });
        let results = futures::future::join_all(sends).await;
        let mut failure: Option<KafkaError> = None;
        let mut bytes_ok = 0u64;
        let mut acked = 0u64;
        for (result, (_, bytes)) in results.into_iter().zip(&messages) {
            match result {
                Ok(_) => {
                    acked += 1;
                    bytes_ok += bytes.len() as u64;
                }
                Err((e, _)) => {
                    metrics::counter!(PRODUCE_ERRORS, "reason" => error_reason(&e)).increment(1);
                    failure.get_or_insert(e);
                }
            }
        }
        metrics::counter!(PRODUCED_MESSAGES, "topic" => self.topic.clone()).increment(acked);
        metrics::counter!(PRODUCED_BYTES, "topic" => self.topic.clone()).increment(bytes_ok);
        match failure {
            None => Ok(()),
            Some(e) => {
                *self.last_failure.lock() = Some(Instant::now());
                tracing::warn!(topic = %self.topic, error = %e, messages = messages.len(), acked, "Kafka did not acknowledge a batch; the client will be asked to retry.");
                Err(EdgeError::Full {
                    retry_after: self.retry_after,
                })
            }
        }
    }
}

/// Metric label for a produce failure.
fn error_reason(e: &KafkaError) -> &'static str {
    match e {
        KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull) => "queue_full",
        KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut) => "timeout",
        KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge) => "too_large",
        _ => "broker",
    }
}

#[async_trait]
impl EdgeSender for KafkaSender {
    async fn send(&self, batch: RecordBatch) -> Result<(), EdgeError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let started = Instant::now();
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let result = self.produce(&batch).await;
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        if result.is_ok() {
            metrics::histogram!(PRODUCE_SECONDS).record(started.elapsed().as_secs_f64());
        }
        result
    }

    fn queued(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}
