//! The in-memory graph edge: a bounded channel of Arrow batches.
//!
//! Bounded by batch count; a sender waits for room up to its admission timeout and then gets
//! [`EdgeError::Full`], which receivers turn into 503/UNAVAILABLE. Nothing on the data path is
//! unbounded. Room is reserved before a batch is committed anywhere ([`MemorySender::reserve`]),
//! so a sender that also writes the batch elsewhere (the WAL) never has to undo that write.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use phoenix_model::{AckToken, Delivery, EdgeError, EdgeReceiver, EdgeSender};
use tokio::sync::mpsc;

/// A batch and, when the sender has one, its durable position (WAL sequence number).
type Item = (RecordBatch, Option<u64>);

/// Creates a bounded in-memory edge named `name` holding at most `capacity` batches.
pub fn memory_edge(
    name: &str,
    capacity: usize,
    admission_timeout: Duration,
    retry_after: Duration,
) -> (MemorySender, MemoryReceiver) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let queued = Arc::new(AtomicUsize::new(0));
    let name: Arc<str> = Arc::from(name);
    let sender = MemorySender {
        tx,
        queued: queued.clone(),
        admission_timeout,
        retry_after,
        name: name.clone(),
    };
    let receiver = MemoryReceiver {
        rx,
        queued,
        next: 0,
        name,
    };
    (sender, receiver)
}

/// Writing end of an in-memory edge.
#[derive(Debug)]
pub struct MemorySender {
    tx: mpsc::Sender<Item>,
    queued: Arc<AtomicUsize>,
    admission_timeout: Duration,
    retry_after: Duration,
    name: Arc<str>,
}

/// Room for one batch on an edge, reserved ahead of sending it.
#[derive(Debug)]
pub struct EdgePermit {
    permit: mpsc::OwnedPermit<Item>,
    queued: Arc<AtomicUsize>,
    name: Arc<str>,
}

impl EdgePermit {
    /// Puts the batch on the edge; never waits, the room is already reserved.
    pub fn send(self, batch: RecordBatch, position: Option<u64>) {
        let rows = batch.num_rows() as u64;
        // Count before sending: the receiver may take the batch (and decrement) at once.
        let depth = self.queued.fetch_add(1, Ordering::Relaxed) + 1;
        self.permit.send((batch, position));
        metrics::gauge!("phoenix_graph_edge_queued_batches", "edge" => self.name.to_string())
            .set(depth as f64);
        metrics::counter!("phoenix_graph_edge_datapoints_total", "edge" => self.name.to_string())
            .increment(rows);
    }
}

impl MemorySender {
    /// Reserves room for one batch, waiting at most the admission timeout.
    ///
    /// # Errors
    /// [`EdgeError::Full`] when no room appeared in time, [`EdgeError::Closed`] after the
    /// receiver is gone.
    pub async fn reserve(&self) -> Result<EdgePermit, EdgeError> {
        let permit = match self.tx.clone().try_reserve_owned() {
            Ok(p) => p,
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(EdgeError::Closed),
            Err(mpsc::error::TrySendError::Full(tx)) => {
                match tokio::time::timeout(self.admission_timeout, tx.reserve_owned()).await {
                    Ok(Ok(p)) => p,
                    Ok(Err(_)) => return Err(EdgeError::Closed),
                    Err(_) => {
                        metrics::counter!("phoenix_graph_edge_full_total", "edge" => self.name.to_string())
                            .increment(1);
                        return Err(EdgeError::Full {
                            retry_after: self.retry_after,
                        });
                    }
                }
            }
        };
        Ok(self.permit(permit))
    }

    /// Reserves room for one batch, waiting as long as it takes (startup replay).
    ///
    /// # Errors
    /// [`EdgeError::Closed`] after the receiver is gone.
    pub async fn reserve_unbounded_wait(&self) -> Result<EdgePermit, EdgeError> {
        let permit = self
            .tx
            .clone()
            .reserve_owned()
            .await
            .map_err(|_| EdgeError::Closed)?;
        Ok(self.permit(permit))
    }

    fn permit(&self, permit: mpsc::OwnedPermit<Item>) -> EdgePermit {
        EdgePermit {
            permit,
            queued: self.queued.clone(),
            name: self.name.clone(),
        }
    }
}

#[async_trait]
impl EdgeSender for MemorySender {
    async fn send(&self, batch: RecordBatch) -> Result<(), EdgeError> {
        self.reserve().await?.send(batch, None);
        Ok(())
    }

    fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

/// Reading end of an in-memory edge.
#[derive(Debug)]
pub struct MemoryReceiver {
    rx: mpsc::Receiver<Item>,
    queued: Arc<AtomicUsize>,
    next: u64,
    name: Arc<str>,
}

#[async_trait]
impl EdgeReceiver for MemoryReceiver {
    async fn recv(&mut self) -> Option<Delivery> {
        let (batch, position) = self.rx.recv().await?;
        let depth = self
            .queued
            .fetch_sub(1, Ordering::Relaxed)
            .saturating_sub(1);
        metrics::gauge!("phoenix_graph_edge_queued_batches", "edge" => self.name.to_string())
            .set(depth as f64);
        self.next += 1;
        Some(Delivery {
            batch,
            ack: AckToken(position.unwrap_or(self.next)),
        })
    }

    async fn commit(&mut self, _upto: AckToken) -> Result<(), EdgeError> {
        // Nothing to record: an in-memory edge has no durable position.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int32Array;
    use arrow::datatypes::{DataType, Field, Schema};

    pub(crate) fn batch(n: i32) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int32Array::from(vec![n]))])
            .expect("valid batch")
    }

    /// Batches arrive in order with increasing ack tokens; the edge closes when senders drop.
    #[tokio::test]
    async fn delivers_in_order_then_closes() {
        let (tx, mut rx) = memory_edge("t", 4, Duration::from_millis(10), Duration::from_secs(1));
        for i in 0..3 {
            tx.send(batch(i)).await.expect("room");
        }
        assert_eq!(tx.queued(), 3);
        drop(tx);
        let mut seen = Vec::new();
        while let Some(d) = rx.recv().await {
            let col = d
                .batch
                .column(0)
                .as_any()
                .downcast_ref::<Int32Array>()
                .map(|a| a.value(0));
            seen.push((col, d.ack.0));
        }
        assert_eq!(seen, vec![(Some(0), 1), (Some(1), 2), (Some(2), 3)]);
    }

    /// A full edge answers `Full` after the admission timeout instead of queueing without bound.
    #[tokio::test]
    async fn full_edge_refuses_after_timeout() {
        let (tx, mut rx) = memory_edge("t", 1, Duration::from_millis(20), Duration::from_secs(2));
        tx.send(batch(1)).await.expect("room");
        match tx.send(batch(2)).await {
            Err(EdgeError::Full { retry_after }) => assert_eq!(retry_after, Duration::from_secs(2)),
            other => panic!("expected Full, got {other:?}"),
        }
        // Room again once the receiver takes a batch.
        assert!(rx.recv().await.is_some());
        tx.send(batch(3)).await.expect("room after recv");
    }

    /// Sending to an edge whose receiver is gone reports `Closed`, a non-retryable error.
    #[tokio::test]
    async fn closed_edge() {
        let (tx, rx) = memory_edge("t", 1, Duration::from_millis(5), Duration::from_secs(1));
        drop(rx);
        let err = tx.send(batch(1)).await.expect_err("closed");
        assert!(matches!(err, EdgeError::Closed));
        assert!(!err.is_retryable());
    }

    /// A batch sent with a position is delivered with that position as its ack token.
    #[tokio::test]
    async fn explicit_position_becomes_ack() {
        let (tx, mut rx) = memory_edge("t", 2, Duration::from_millis(5), Duration::from_secs(1));
        tx.reserve().await.expect("room").send(batch(7), Some(42));
        let d = rx.recv().await.expect("delivery");
        assert_eq!(d.ack, AckToken(42));
    }
}
