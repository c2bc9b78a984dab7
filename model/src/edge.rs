//! Graph edges: how a stage hands Arrow batches to the next one.
//!
//! Stages only see these traits. The embedded default puts a bounded in-memory channel behind
//! them (`phoenix-processors`); the Kafka bus puts a topic behind them. A sender's `send`
//! returns once the transport has taken responsibility for the batch (enqueued in memory, or
//! acknowledged by the broker); a receiver hands out deliveries with an [`AckToken`] and is told
//! through [`EdgeReceiver::commit`] when everything up to a token is durable downstream.

use std::time::Duration;

use arrow::record_batch::RecordBatch;
use async_trait::async_trait;

/// Why an edge did not take a batch.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// The edge is at capacity; the caller should ask its client to retry later.
    #[error("pipeline is full; retry after {retry_after:?}")]
    Full {
        /// A hint for the client.
        retry_after: Duration,
    },
    /// The receiving side has shut down.
    #[error("edge is closed")]
    Closed,
    /// The transport failed (broker unreachable, I/O error); retryable.
    #[error("edge transport failed: {0}")]
    Transport(String),
}

impl EdgeError {
    /// Whether a client may retry the same data later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, EdgeError::Full { .. } | EdgeError::Transport(_))
    }
}

/// Position of a delivery on its edge; opaque to stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct AckToken(pub u64);

/// One batch taken off an edge.
#[derive(Debug)]
pub struct Delivery {
    /// The datapoints, in [`crate::schema::metrics_schema`].
    pub batch: RecordBatch,
    /// Pass to [`EdgeReceiver::commit`] once the batch is durable downstream.
    pub ack: AckToken,
}

/// The bytes a batch was decoded from, with what its decoder needs to decode them again the
/// same way (`header`, written by the decoder's crate): a write-ahead log may store these in
/// place of the batch, which costs a copy where encoding the batch costs a compression pass.
#[derive(Debug, Clone)]
pub struct Replayable {
    /// The decoder's own prefix: format, decode limits, the time "now" was.
    pub header: Vec<u8>,
    /// The request body as received (decompressed).
    pub body: bytes::Bytes,
}

/// The writing end of an edge. Cheap to clone behind an `Arc`.
#[async_trait]
pub trait EdgeSender: Send + Sync + 'static {
    /// Hands a batch to the edge; returns when the transport is responsible for it.
    ///
    /// # Errors
    /// [`EdgeError::Full`] when the edge stays at capacity past its admission timeout,
    /// [`EdgeError::Closed`] after shutdown, [`EdgeError::Transport`] on transport failure.
    async fn send(&self, batch: RecordBatch) -> Result<(), EdgeError>;

    /// As [`EdgeSender::send`], for a batch that `source` decodes to again; an edge that logs
    /// its input may log `source` instead. Others ignore it.
    ///
    /// # Errors
    /// As [`EdgeSender::send`].
    async fn send_replayable(
        &self,
        batch: RecordBatch,
        source: Replayable,
    ) -> Result<(), EdgeError> {
        let _ = source;
        self.send(batch).await
    }

    /// Number of batches queued and not yet received (0 when unknown).
    fn queued(&self) -> usize {
        0
    }
}

/// The reading end of an edge.
#[async_trait]
pub trait EdgeReceiver: Send + 'static {
    /// Next delivery; `None` once every sender is gone and the edge is drained.
    async fn recv(&mut self) -> Option<Delivery>;

    /// Marks every delivery up to and including `upto` as durable downstream.
    ///
    /// # Errors
    /// [`EdgeError::Transport`] when the position could not be recorded.
    async fn commit(&mut self, upto: AckToken) -> Result<(), EdgeError>;
}
