//! The in-memory graph edge: a bounded channel of Arrow batches.
//!
//! Bounded by batch count; a sender waits for room up to its admission timeout and then gets
//! [`EdgeError::Full`], which receivers turn into 503/UNAVAILABLE. Nothing on the data path is
//! unbounded.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use phoenix_model::{AckToken, Delivery, EdgeError, EdgeReceiver, EdgeSender};
use tokio::sync::mpsc;

/// Creates a bounded in-memory edge named `name` holding at most `capacity` batches.
pub fn memory_edge(
    name: &str,
    capacity: usize,
    admission_timeout: Duration,
    retry_after: Duration,
) -> (MemorySender, MemoryReceiver) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let queued = Arc::new(AtomicUsize::new(0));
    let sender = MemorySender {
        tx,
        queued: queued.clone(),
        admission_timeout,
        retry_after,
        name: name.to_string(),
    };
    let receiver = MemoryReceiver {
        rx,
        queued,
        next: 0,
        name: name.to_string(),
    };
    (sender, receiver)
}

/// Writing end of an in-memory edge.
#[derive(Debug)]
pub struct MemorySender {
    tx: mpsc::Sender<RecordBatch>,
    queued: Arc<AtomicUsize>,
    admission_timeout: Duration,
    retry_after: Duration,
    name: String,
}

#[async_trait]
impl EdgeSender for MemorySender {
    async fn send(&self, batch: RecordBatch) -> Result<(), EdgeError> {
        let rows = batch.num_rows() as u64;
        // Reserve first so a full edge is detected without moving the batch.
        let permit = match self.tx.try_reserve() {
            Ok(p) => p,
            Err(mpsc::error::TrySendError::Closed(())) => return Err(EdgeError::Closed),
            Err(mpsc::error::TrySendError::Full(())) => {
                match tokio::time::timeout(self.admission_timeout, self.tx.reserve()).await {
                    Ok(Ok(p)) => p,
                    Ok(Err(_)) => return Err(EdgeError::Closed),
                    Err(_) => {
                        metrics::counter!("phoenix_graph_edge_full_total", "edge" => self.name.clone())
                            .increment(1);
                        return Err(EdgeError::Full {
                            retry_after: self.retry_after,
                        });
                    }
                }
            }
        };
        permit.send(batch);
        let depth = self.queued.fetch_add(1, Ordering::Relaxed) + 1;
        metrics::gauge!("phoenix_graph_edge_queued_batches", "edge" => self.name.clone())
            .set(depth as f64);
        metrics::counter!("phoenix_graph_edge_datapoints_total", "edge" => self.name.clone())
            .increment(rows);
        Ok(())
    }

    fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

/// Reading end of an in-memory edge.
#[derive(Debug)]
pub struct MemoryReceiver {
    rx: mpsc::Receiver<RecordBatch>,
    queued: Arc<AtomicUsize>,
    next: u64,
    name: String,
}

#[async_trait]
impl EdgeReceiver for MemoryReceiver {
    async fn recv(&mut self) -> Option<Delivery> {
        let batch = self.rx.recv().await?;
        let depth = self.queued.fetch_sub(1, Ordering::Relaxed).saturating_sub(1);
        metrics::gauge!("phoenix_graph_edge_queued_batches", "edge" => self.name.clone())
            .set(depth as f64);
        self.next += 1;
        Some(Delivery {
            batch,
            ack: AckToken(self.next),
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

    fn batch(n: i32) -> RecordBatch {
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
            let col = d.batch.column(0).as_any().downcast_ref::<Int32Array>().map(|a| a.value(0));
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
}
